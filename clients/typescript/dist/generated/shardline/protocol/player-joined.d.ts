import * as flatbuffers from 'flatbuffers';
export declare class PlayerJoined {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): PlayerJoined;
    static getRootAsPlayerJoined(bb: flatbuffers.ByteBuffer, obj?: PlayerJoined): PlayerJoined;
    static getSizePrefixedRootAsPlayerJoined(bb: flatbuffers.ByteBuffer, obj?: PlayerJoined): PlayerJoined;
    playerId(): bigint;
    entityId(): number;
    name(): string | null;
    name(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    static startPlayerJoined(builder: flatbuffers.Builder): void;
    static addPlayerId(builder: flatbuffers.Builder, playerId: bigint): void;
    static addEntityId(builder: flatbuffers.Builder, entityId: number): void;
    static addName(builder: flatbuffers.Builder, nameOffset: flatbuffers.Offset): void;
    static endPlayerJoined(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createPlayerJoined(builder: flatbuffers.Builder, playerId: bigint, entityId: number, nameOffset: flatbuffers.Offset): flatbuffers.Offset;
}
