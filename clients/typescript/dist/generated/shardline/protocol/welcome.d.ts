import * as flatbuffers from 'flatbuffers';
import { Limits } from '../../shardline/protocol/limits.js';
export declare class Welcome {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Welcome;
    static getRootAsWelcome(bb: flatbuffers.ByteBuffer, obj?: Welcome): Welcome;
    static getSizePrefixedRootAsWelcome(bb: flatbuffers.ByteBuffer, obj?: Welcome): Welcome;
    playerId(): bigint;
    /**
     * Opaque, unguessable (128 random bits, hex). Send it in Hello to resume.
     */
    resumeToken(): string | null;
    resumeToken(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    nodeId(): string | null;
    nodeId(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    region(): string | null;
    region(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    shard(): number;
    tickRateHz(): number;
    limits(obj?: Limits): Limits | null;
    /**
     * True when Hello carried a token and the player got its seat back; a
     * Joined with the full state follows.
     */
    resumed(): boolean;
    static startWelcome(builder: flatbuffers.Builder): void;
    static addPlayerId(builder: flatbuffers.Builder, playerId: bigint): void;
    static addResumeToken(builder: flatbuffers.Builder, resumeTokenOffset: flatbuffers.Offset): void;
    static addNodeId(builder: flatbuffers.Builder, nodeIdOffset: flatbuffers.Offset): void;
    static addRegion(builder: flatbuffers.Builder, regionOffset: flatbuffers.Offset): void;
    static addShard(builder: flatbuffers.Builder, shard: number): void;
    static addTickRateHz(builder: flatbuffers.Builder, tickRateHz: number): void;
    static addLimits(builder: flatbuffers.Builder, limitsOffset: flatbuffers.Offset): void;
    static addResumed(builder: flatbuffers.Builder, resumed: boolean): void;
    static endWelcome(builder: flatbuffers.Builder): flatbuffers.Offset;
}
