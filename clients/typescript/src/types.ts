// Plain-data views of the server's messages, as the client hands them to a
// game: numbers and strings instead of FlatBuffers accessors, so they can be
// kept after the frame they came in is gone.

import { ErrorCode } from './generated/shardline/protocol/error-code.js';
import { LeaveReason } from './generated/shardline/protocol/leave-reason.js';

export { ErrorCode, LeaveReason };

/** Limits that apply to this client (Welcome.limits). */
export interface Limits {
  maxPayloadBytes: number;
  inputsPerTickMax: number;
  playersPerInstanceMax: number;
  /** The server pings this often; two silent intervals and it drops you (close 4001). */
  heartbeatMs: number;
  connectTimeoutMs: number;
  /** How long a dropped player's seat is kept for a resume. */
  reconnectGraceMs: number;
  /**
   * Protocol version 2: how many recent ticks the server can encode a delta
   * against; the client keeps the world of its last this many applied ticks.
   */
  deltaHistoryTicks: number;
  /** Largest body of a game message (`send(kind, body)`), bytes. */
  messageBytesMax: number;
  /** Game messages the server takes from one player per tick. */
  messagesPerTickMax: number;
}

export interface Welcome {
  /**
   * The player's id on this node (a bigint: the wire type is 64-bit; servers
   * keep ids below 2^53, so `Number(playerId)` is exact). A Transfer to
   * another node gives the player a new id there.
   */
  playerId: bigint;
  /** Send it in Hello on a new connection to take the seat back. */
  resumeToken: string;
  nodeId: string;
  region: string;
  shard: number;
  tickRateHz: number;
  limits: Limits;
  /** True when this Welcome answered a Hello with a token that got the seat back. */
  resumed: boolean;
}

/**
 * One entity: position and velocity in arena units (velocity per second).
 * Protocol version 2 quantizes them to 1/64 of a unit (error at most 1/128).
 */
export interface Entity {
  id: number;
  kind: number;
  flags: number;
  x: number;
  y: number;
  vx: number;
  vy: number;
  /** Height, arena units (0 in a 2D game). */
  z: number;
  /** Facing, radians in [0, 2π) (0 in a 2D game; version 2: in steps of 2π/65536). */
  facing: number;
}

export interface Joined {
  instanceId: string;
  /** The entity this player controls. */
  entityId: number;
  /** Tick number (exact up to 2^53 ticks: ~9 million years at 30 Hz). */
  tick: number;
  arenaWidth: number;
  arenaHeight: number;
  entities: Entity[];
  /** Game-specific state beyond entities (empty for the reference arena). */
  custom: Uint8Array;
}

/** The world as of one server tick, as the server sent it (version 1) or as the client rebuilt it (version 2). */
export interface StateUpdate {
  tick: number;
  /** Highest input seq the world has applied for this player (0 = none yet). */
  lastInputSeq: number;
  inputsApplied: number;
  /** In ascending id order when rebuilt from deltas (version 2); as sent in version 1. */
  entities: Entity[];
  custom: Uint8Array;
}

/**
 * What the `state` event carries: the StateUpdate, and what changed since
 * the previous `state` (or, for the first after a `joined`, since Joined).
 */
export interface State extends StateUpdate {
  /** Ids of the entities that are here and were not in the previous state: entered the player's view. */
  entered: number[];
  /** Ids of the entities of the previous state that are gone: left the player's view. */
  left: number[];
  /** Version 2: the tick the delta was encoded against (0: a full state). Version 1: always 0. */
  baselineTick: number;
  /** Size of the WebSocket message this state came in, bytes. */
  frameBytes: number;
}

/**
 * Version 2: a StateDelta as it came (src/delta.ts rebuilds the world from
 * it; the bytes' format is in docs/protocol.md).
 */
export interface StateDelta {
  tick: number;
  /** The tick this delta applies to; 0 = a full state (start from an empty world). */
  baselineTick: number;
  lastInputSeq: number;
  inputsApplied: number;
  /** Removed, entered and changed entities, quantized. */
  entities: Uint8Array;
  /** When not null: the custom state replaces the baseline's. */
  customFull: Uint8Array | null;
  /** When not null: runs of bytes changed in the baseline's custom state. */
  customPatch: Uint8Array | null;
}

/** Version 2: an event from the game (`message` event), after the state of the tick that produced it. */
export interface GameEvent {
  tick: number;
  /** The game's own kind. */
  kind: number;
  body: Uint8Array;
}

export interface PlayerJoined {
  playerId: bigint;
  entityId: number;
  name: string;
}

export interface PlayerLeft {
  playerId: bigint;
  entityId: number;
  reason: LeaveReason;
}

export interface Pong {
  /** The Ping's client_time, echoed. */
  clientTime: number;
  /** Server wall clock, µs since the Unix epoch. */
  serverTimeUs: bigint;
}

export interface ServerError {
  code: ErrorCode;
  /** For humans; act on `code`. */
  message: string;
}

/** An operators' message to every player of a region, or of the whole fleet (`shardline fleet broadcast`). */
export interface Notice {
  /** UTF-8 text for the player, at most 1024 bytes. */
  message: string;
  /** The region it was sent to; empty when sent to every region. */
  region: string;
  /** When it was sent, µs since the Unix epoch (the sender's clock). */
  sentAtUs: bigint;
}

/** The player's seat moved to `instanceId` on another node of the fleet (`shardline fleet move`). */
export interface Transfer {
  /** That node's WebSocket base URL. */
  url: string;
  instanceId: string;
}

/** A decoded server message. */
export type ServerMessage =
  | { type: 'welcome'; welcome: Welcome }
  | { type: 'joined'; joined: Joined }
  | { type: 'state'; state: StateUpdate }
  | { type: 'delta'; delta: StateDelta }
  | { type: 'event'; event: GameEvent }
  | { type: 'playerJoined'; playerJoined: PlayerJoined }
  | { type: 'playerLeft'; playerLeft: PlayerLeft }
  | { type: 'pong'; pong: Pong }
  | { type: 'error'; error: ServerError }
  | { type: 'notice'; notice: Notice }
  | { type: 'transfer'; transfer: Transfer };

/** A region the client may connect to; `url` is the node's base, e.g. `wss://eu.example.com`. */
export interface Region {
  name: string;
  url: string;
}

/** What probing one region's /echo measured. */
export interface RegionProbe {
  region: Region;
  /** Median round trip of the echo samples, ms; null when the region did not answer. */
  rttMs: number | null;
  error?: string;
}

/** Thrown (as a rejected promise) by requests the server refused or that the connection did not outlive. */
export class ShardlineError extends Error {
  /** The server's ErrorCode, when the server refused the request. */
  readonly code: ErrorCode | null;
  /** The WebSocket close code, when the connection closed under the request. */
  readonly closeCode: number | null;

  constructor(message: string, code: ErrorCode | null = null, closeCode: number | null = null) {
    super(message);
    this.name = 'ShardlineError';
    this.code = code;
    this.closeCode = closeCode;
  }
}

/** Name of an ErrorCode value, e.g. `InstanceFull`. */
export function errorCodeName(code: ErrorCode): string {
  return ErrorCode[code] ?? `code ${code}`;
}
