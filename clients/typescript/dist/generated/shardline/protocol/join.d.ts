import * as flatbuffers from 'flatbuffers';
/**
 * Join an instance. With `instance_id`, join it (creating it when
 * `create_if_missing` is true and it does not exist); without, the server
 * places the player in the least-loaded instance with room.
 * Ids: 1..64 bytes of [A-Za-z0-9_.-].
 */
export declare class Join {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Join;
    static getRootAsJoin(bb: flatbuffers.ByteBuffer, obj?: Join): Join;
    static getSizePrefixedRootAsJoin(bb: flatbuffers.ByteBuffer, obj?: Join): Join;
    instanceId(): string | null;
    instanceId(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    createIfMissing(): boolean;
    static startJoin(builder: flatbuffers.Builder): void;
    static addInstanceId(builder: flatbuffers.Builder, instanceIdOffset: flatbuffers.Offset): void;
    static addCreateIfMissing(builder: flatbuffers.Builder, createIfMissing: boolean): void;
    static endJoin(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createJoin(builder: flatbuffers.Builder, instanceIdOffset: flatbuffers.Offset, createIfMissing: boolean): flatbuffers.Offset;
}
