import * as flatbuffers from 'flatbuffers';
import { LeaveReason } from '../../shardline/protocol/leave-reason.js';
export declare class PlayerLeft {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): PlayerLeft;
    static getRootAsPlayerLeft(bb: flatbuffers.ByteBuffer, obj?: PlayerLeft): PlayerLeft;
    static getSizePrefixedRootAsPlayerLeft(bb: flatbuffers.ByteBuffer, obj?: PlayerLeft): PlayerLeft;
    playerId(): bigint;
    entityId(): number;
    reason(): LeaveReason;
    static startPlayerLeft(builder: flatbuffers.Builder): void;
    static addPlayerId(builder: flatbuffers.Builder, playerId: bigint): void;
    static addEntityId(builder: flatbuffers.Builder, entityId: number): void;
    static addReason(builder: flatbuffers.Builder, reason: LeaveReason): void;
    static endPlayerLeft(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createPlayerLeft(builder: flatbuffers.Builder, playerId: bigint, entityId: number, reason: LeaveReason): flatbuffers.Offset;
}
