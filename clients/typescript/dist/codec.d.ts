import type { ServerMessage } from './types.js';
/** The protocol version this client speaks (ProtocolVersion.V1). */
export declare const PROTOCOL_VERSION = 1;
/** Longest player name the server accepts, in UTF-8 bytes. */
export declare const PLAYER_NAME_BYTES_MAX = 32;
/** Instance ids: 1–64 bytes of [A-Za-z0-9_.-]. */
export declare const INSTANCE_ID_PATTERN: RegExp;
/** Builds client messages, reusing one FlatBuffers builder. */
export declare class Encoder {
    private readonly b;
    /** Hello: a new player (with a join ticket when the server requires one), or a resume with a token. */
    hello(name: string, resumeToken?: string, ticket?: string): Uint8Array;
    join(instanceId?: string, createIfMissing?: boolean): Uint8Array;
    leave(): Uint8Array;
    input(seq: number, moveX: number, moveY: number, buttons: number): Uint8Array;
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
