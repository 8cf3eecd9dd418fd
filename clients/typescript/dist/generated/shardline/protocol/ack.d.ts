import * as flatbuffers from 'flatbuffers';
/**
 * V2: the newest StateDelta.tick this client has applied. The server encodes
 * later deltas against that tick (its baseline). A tick the server never sent
 * to this client, or one older than its history, is ignored (counted).
 */
export declare class Ack {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Ack;
    static getRootAsAck(bb: flatbuffers.ByteBuffer, obj?: Ack): Ack;
    static getSizePrefixedRootAsAck(bb: flatbuffers.ByteBuffer, obj?: Ack): Ack;
    tick(): bigint;
    static startAck(builder: flatbuffers.Builder): void;
    static addTick(builder: flatbuffers.Builder, tick: bigint): void;
    static endAck(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createAck(builder: flatbuffers.Builder, tick: bigint): flatbuffers.Offset;
}
