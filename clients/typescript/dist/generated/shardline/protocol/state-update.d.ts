import * as flatbuffers from 'flatbuffers';
import { EntityPose } from '../../shardline/protocol/entity-pose.js';
import { EntityState } from '../../shardline/protocol/entity-state.js';
/**
 * Sent to every player of an instance once per tick.
 */
export declare class StateUpdate {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): StateUpdate;
    static getRootAsStateUpdate(bb: flatbuffers.ByteBuffer, obj?: StateUpdate): StateUpdate;
    static getSizePrefixedRootAsStateUpdate(bb: flatbuffers.ByteBuffer, obj?: StateUpdate): StateUpdate;
    tick(): bigint;
    /**
     * Highest Input.seq applied for this player (0 = none yet).
     */
    lastInputSeq(): number;
    /**
     * Inputs applied for this player since it joined this instance.
     */
    inputsApplied(): number;
    entities(index: number, obj?: EntityState): EntityState | null;
    entitiesLength(): number;
    custom(index: number): number | null;
    customLength(): number;
    customArray(): Uint8Array | null;
    /**
     * As Joined.poses.
     */
    poses(index: number, obj?: EntityPose): EntityPose | null;
    posesLength(): number;
    static startStateUpdate(builder: flatbuffers.Builder): void;
    static addTick(builder: flatbuffers.Builder, tick: bigint): void;
    static addLastInputSeq(builder: flatbuffers.Builder, lastInputSeq: number): void;
    static addInputsApplied(builder: flatbuffers.Builder, inputsApplied: number): void;
    static addEntities(builder: flatbuffers.Builder, entitiesOffset: flatbuffers.Offset): void;
    static startEntitiesVector(builder: flatbuffers.Builder, numElems: number): void;
    static addCustom(builder: flatbuffers.Builder, customOffset: flatbuffers.Offset): void;
    static createCustomVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startCustomVector(builder: flatbuffers.Builder, numElems: number): void;
    static addPoses(builder: flatbuffers.Builder, posesOffset: flatbuffers.Offset): void;
    static startPosesVector(builder: flatbuffers.Builder, numElems: number): void;
    static endStateUpdate(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createStateUpdate(builder: flatbuffers.Builder, tick: bigint, lastInputSeq: number, inputsApplied: number, entitiesOffset: flatbuffers.Offset, customOffset: flatbuffers.Offset, posesOffset: flatbuffers.Offset): flatbuffers.Offset;
}
