import * as flatbuffers from 'flatbuffers';
/**
 * Latency probe; answered with Pong echoing `client_time`.
 */
export declare class Ping {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Ping;
    static getRootAsPing(bb: flatbuffers.ByteBuffer, obj?: Ping): Ping;
    static getSizePrefixedRootAsPing(bb: flatbuffers.ByteBuffer, obj?: Ping): Ping;
    clientTime(): number;
    static startPing(builder: flatbuffers.Builder): void;
    static addClientTime(builder: flatbuffers.Builder, clientTime: number): void;
    static endPing(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createPing(builder: flatbuffers.Builder, clientTime: number): flatbuffers.Offset;
}
