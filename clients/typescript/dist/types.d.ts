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
/** One entity: position and velocity in arena units (velocity per second). */
export interface Entity {
    id: number;
    kind: number;
    flags: number;
    x: number;
    y: number;
    vx: number;
    vy: number;
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
export interface StateUpdate {
    tick: number;
    /** Highest input seq the world has applied for this player (0 = none yet). */
    lastInputSeq: number;
    inputsApplied: number;
    entities: Entity[];
    custom: Uint8Array;
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
export type ServerMessage = {
    type: 'welcome';
    welcome: Welcome;
} | {
    type: 'joined';
    joined: Joined;
} | {
    type: 'state';
    state: StateUpdate;
} | {
    type: 'playerJoined';
    playerJoined: PlayerJoined;
} | {
    type: 'playerLeft';
    playerLeft: PlayerLeft;
} | {
    type: 'pong';
    pong: Pong;
} | {
    type: 'error';
    error: ServerError;
} | {
    type: 'notice';
    notice: Notice;
} | {
    type: 'transfer';
    transfer: Transfer;
};
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
export declare class ShardlineError extends Error {
    /** The server's ErrorCode, when the server refused the request. */
    readonly code: ErrorCode | null;
    /** The WebSocket close code, when the connection closed under the request. */
    readonly closeCode: number | null;
    constructor(message: string, code?: ErrorCode | null, closeCode?: number | null);
}
/** Name of an ErrorCode value, e.g. `InstanceFull`. */
export declare function errorCodeName(code: ErrorCode): string;
