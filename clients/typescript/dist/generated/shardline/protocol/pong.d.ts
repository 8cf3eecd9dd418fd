import * as flatbuffers from 'flatbuffers';
export declare class Pong {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Pong;
    static getRootAsPong(bb: flatbuffers.ByteBuffer, obj?: Pong): Pong;
    static getSizePrefixedRootAsPong(bb: flatbuffers.ByteBuffer, obj?: Pong): Pong;
    clientTime(): number;
    /**
     * Server wall clock, microseconds since the Unix epoch.
     */
    serverTimeUs(): bigint;
    static startPong(builder: flatbuffers.Builder): void;
    static addClientTime(builder: flatbuffers.Builder, clientTime: number): void;
    static addServerTimeUs(builder: flatbuffers.Builder, serverTimeUs: bigint): void;
    static endPong(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createPong(builder: flatbuffers.Builder, clientTime: number, serverTimeUs: bigint): flatbuffers.Offset;
}
