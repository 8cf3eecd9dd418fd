import * as flatbuffers from 'flatbuffers';
/**
 * Leave the current instance; the connection stays open and may Join again.
 */
export declare class Leave {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Leave;
    static getRootAsLeave(bb: flatbuffers.ByteBuffer, obj?: Leave): Leave;
    static getSizePrefixedRootAsLeave(bb: flatbuffers.ByteBuffer, obj?: Leave): Leave;
    static startLeave(builder: flatbuffers.Builder): void;
    static endLeave(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createLeave(builder: flatbuffers.Builder): flatbuffers.Offset;
}
