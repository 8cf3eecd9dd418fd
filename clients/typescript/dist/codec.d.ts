import type { ServerMessage } from './types.js';
/**
 * The protocol version this client speaks unless told otherwise
 * (ProtocolVersion.V2: deltas, game events, z and facing).
 */
export declare const PROTOCOL_VERSION = 2;
/** The versions this client can speak. */
export type ProtocolVersion = 1 | 2;
/** Largest game message kind (a u16). */
export declare const MESSAGE_KIND_MAX = 65535;
/** Longest player name the server accepts, in UTF-8 bytes. */
export declare const PLAYER_NAME_BYTES_MAX = 32;
/** Instance ids: 1–64 bytes of [A-Za-z0-9_.-]. */
export declare const INSTANCE_ID_PATTERN: RegExp;
/** Builds client messages, reusing one FlatBuffers builder. */
export declare class Encoder {
    readonly version: ProtocolVersion;
    private readonly b;
    /** `version`: what Hello says (default PROTOCOL_VERSION). */
    constructor(version?: ProtocolVersion);
    /** Hello: a new player (with a join ticket when the server requires one), or a resume with a token. */
    hello(name: string, resumeToken?: string, ticket?: string): Uint8Array;
    join(instanceId?: string, createIfMissing?: boolean): Uint8Array;
    leave(): Uint8Array;
    /** `ackTick`: version 2, the newest StateDelta tick applied and not acknowledged yet (0: none). */
    input(seq: number, moveX: number, moveY: number, buttons: number, ackTick?: number): Uint8Array;
    /** Version 2: the newest StateDelta tick this client applied. */
    ack(tick: number): Uint8Array;
    /** A game message: `kind` is the game's own (u16). */
    message(kind: number, body: Uint8Array): Uint8Array;
    ping(clientTime: number): Uint8Array;
    private start;
    private finish;
}
/** UTF-8 length of a string, in bytes. */
export declare function utf8Bytes(s: string): number;
/**
 * Decodes one server frame. Returns null for a body this client does not
 * know (a newer server), so it can be skipped. FlatBuffers' TypeScript
 * runtime has no verifier: a malformed frame may throw, which the caller
 * treats as a protocol error.
 */
export declare function decodeServerMessage(bytes: Uint8Array): ServerMessage | null;
