// shardline-client: connect a browser (or Node) game to a shardline node.
//
//   const client = new ShardlineClient();
//   await client.connect('wss://eu.example.com');   // or { regions: [...] }
//   await client.hello('ann');
//   const { entityId } = await client.join('arena');  // or join(): placed
//   client.on('state', (u) => draw(u.entities, entityId));
//   client.sendInput(1, 0);                           // move right
//   client.on('message', (ev) => onGameEvent(ev.kind, ev.body));
//   client.send(7, new Uint8Array([1, 2]));           // a game message
export { ShardlineClient, FINAL_CLOSE_CODES, CLOSE_NO_TRAFFIC, CLOSE_BAD_DELTA, } from './client.js';
export { backoffDelayMs, RECONNECT_DEFAULTS } from './backoff.js';
export { Encoder, decodeServerMessage, PROTOCOL_VERSION, PLAYER_NAME_BYTES_MAX, INSTANCE_ID_PATTERN, MESSAGE_KIND_MAX, } from './codec.js';
export { applyDelta, DeltaError, EMPTY_WORLD, CUSTOM_STATE_BYTES_MAX, FACING_STEPS, POSITION_SCALE, quantizeFacing, quantizePosition, toEntity, WorldHistory, } from './delta.js';
export { Emitter } from './events.js';
export { probeRegions, fastest, PROBE_DEFAULTS } from './regions.js';
export { baseUrl, playUrl, echoUrl } from './urls.js';
export { ErrorCode, LeaveReason, ShardlineError, errorCodeName, } from './types.js';
/** The flatc-generated protocol classes, for code that builds or reads frames itself. */
export * as protocol from './generated/shardline/protocol.js';
