import * as flatbuffers from 'flatbuffers';
/**
 * First message on every /play connection, within --connect-timeout-ms of the
 * TCP connect. Anything else first is Error(OutOfOrder) + close 1008.
 */
export declare class Hello {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Hello;
    static getRootAsHello(bb: flatbuffers.ByteBuffer, obj?: Hello): Hello;
    static getSizePrefixedRootAsHello(bb: flatbuffers.ByteBuffer, obj?: Hello): Hello;
    protocolVersion(): number;
    /**
     * Display name, at most 32 bytes of UTF-8 (longer: Error(BadMessage)).
     */
    playerName(): string | null;
    playerName(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    /**
     * Resume token from an earlier Welcome: takes the player's seat back.
     */
    resumeToken(): string | null;
    resumeToken(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    /**
     * Join ticket signed by the studio's backend; required when the server
     * runs with --join-secret (see SECURITY.md for the format).
     */
    ticket(): string | null;
    ticket(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startHello(builder: flatbuffers.Builder): void;
    static addProtocolVersion(builder: flatbuffers.Builder, protocolVersion: number): void;
    static addPlayerName(builder: flatbuffers.Builder, playerNameOffset: flatbuffers.Offset): void;
    static addResumeToken(builder: flatbuffers.Builder, resumeTokenOffset: flatbuffers.Offset): void;
    static addTicket(builder: flatbuffers.Builder, ticketOffset: flatbuffers.Offset): void;
    static endHello(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createHello(builder: flatbuffers.Builder, protocolVersion: number, playerNameOffset: flatbuffers.Offset, resumeTokenOffset: flatbuffers.Offset, ticketOffset: flatbuffers.Offset): flatbuffers.Offset;
}
