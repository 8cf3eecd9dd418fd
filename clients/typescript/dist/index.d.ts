export { ShardlineClient, FINAL_CLOSE_CODES, CLOSE_NO_TRAFFIC, CLOSE_BAD_DELTA, type ClientEvents, type ClientOptions, type ClientStatus, type ConnectResult, } from './client.js';
export { backoffDelayMs, RECONNECT_DEFAULTS, type ReconnectOptions } from './backoff.js';
export { Encoder, decodeServerMessage, PROTOCOL_VERSION, PLAYER_NAME_BYTES_MAX, INSTANCE_ID_PATTERN, MESSAGE_KIND_MAX, type ProtocolVersion, } from './codec.js';
export { applyDelta, DeltaError, EMPTY_WORLD, CUSTOM_STATE_BYTES_MAX, FACING_STEPS, POSITION_SCALE, quantizeFacing, quantizePosition, toEntity, WorldHistory, type QuantizedEntity, type World, } from './delta.js';
export { Emitter, type Listener } from './events.js';
export { probeRegions, fastest, PROBE_DEFAULTS, type ProbeOptions } from './regions.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export { baseUrl, playUrl, echoUrl } from './urls.js';
export { ErrorCode, LeaveReason, ShardlineError, errorCodeName, type Entity, type GameEvent, type Joined, type Limits, type Notice, type PlayerJoined, type PlayerLeft, type Pong, type Region, type RegionProbe, type ServerError, type ServerMessage, type State, type StateDelta, type StateUpdate, type Transfer, type Welcome, } from './types.js';
/** The flatc-generated protocol classes, for code that builds or reads frames itself. */
export * as protocol from './generated/shardline/protocol.js';
