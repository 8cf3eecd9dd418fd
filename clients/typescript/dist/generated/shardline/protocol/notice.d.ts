import * as flatbuffers from 'flatbuffers';
/**
 * A message from the studio's operators to every player of a region (or of
 * the whole fleet): `shardline fleet broadcast`. Show it; nothing to answer.
 */
export declare class Notice {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Notice;
    static getRootAsNotice(bb: flatbuffers.ByteBuffer, obj?: Notice): Notice;
    static getSizePrefixedRootAsNotice(bb: flatbuffers.ByteBuffer, obj?: Notice): Notice;
    /**
     * UTF-8, at most 1024 bytes.
     */
    message(): string | null;
    message(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    /**
     * The region it was sent to; empty when sent to every region.
     */
    region(): string | null;
    region(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    /**
     * When it was sent, microseconds since the Unix epoch (sender's clock).
     */
    sentAtUs(): bigint;
    static startNotice(builder: flatbuffers.Builder): void;
    static addMessage(builder: flatbuffers.Builder, messageOffset: flatbuffers.Offset): void;
    static addRegion(builder: flatbuffers.Builder, regionOffset: flatbuffers.Offset): void;
    static addSentAtUs(builder: flatbuffers.Builder, sentAtUs: bigint): void;
    static endNotice(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createNotice(builder: flatbuffers.Builder, messageOffset: flatbuffers.Offset, regionOffset: flatbuffers.Offset, sentAtUs: bigint): flatbuffers.Offset;
}
