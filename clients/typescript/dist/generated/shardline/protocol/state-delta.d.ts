import * as flatbuffers from 'flatbuffers';
/**
 * V2: the state of the tick as a change to a state this client acknowledged
 * (docs/protocol.md "Delta format"). Sent instead of StateUpdate.
 */
export declare class StateDelta {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): StateDelta;
    static getRootAsStateDelta(bb: flatbuffers.ByteBuffer, obj?: StateDelta): StateDelta;
    static getSizePrefixedRootAsStateDelta(bb: flatbuffers.ByteBuffer, obj?: StateDelta): StateDelta;
    tick(): bigint;
    /**
     * The tick this delta applies to (one the client acknowledged); 0 = a full
     * state: start from an empty world.
     */
    baselineTick(): bigint;
    /**
     * As StateUpdate.
     */
    lastInputSeq(): number;
    inputsApplied(): number;
    /**
     * Entities removed, then entities entered or changed, quantized
     * (docs/protocol.md "Delta format").
     */
    entities(index: number): number | null;
    entitiesLength(): number;
    entitiesArray(): Uint8Array | null;
    /**
     * When present: the game's custom state replaces the baseline's.
     */
    customFull(index: number): number | null;
    customFullLength(): number;
    customFullArray(): Uint8Array | null;
    /**
     * When present: runs of bytes changed in the baseline's custom state
     * (docs/protocol.md "Custom state patch"). Absent with custom_full
     * absent: custom state unchanged.
     */
    customPatch(index: number): number | null;
    customPatchLength(): number;
    customPatchArray(): Uint8Array | null;
    static startStateDelta(builder: flatbuffers.Builder): void;
    static addTick(builder: flatbuffers.Builder, tick: bigint): void;
    static addBaselineTick(builder: flatbuffers.Builder, baselineTick: bigint): void;
    static addLastInputSeq(builder: flatbuffers.Builder, lastInputSeq: number): void;
    static addInputsApplied(builder: flatbuffers.Builder, inputsApplied: number): void;
    static addEntities(builder: flatbuffers.Builder, entitiesOffset: flatbuffers.Offset): void;
    static createEntitiesVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startEntitiesVector(builder: flatbuffers.Builder, numElems: number): void;
    static addCustomFull(builder: flatbuffers.Builder, customFullOffset: flatbuffers.Offset): void;
    static createCustomFullVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startCustomFullVector(builder: flatbuffers.Builder, numElems: number): void;
    static addCustomPatch(builder: flatbuffers.Builder, customPatchOffset: flatbuffers.Offset): void;
    static createCustomPatchVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startCustomPatchVector(builder: flatbuffers.Builder, numElems: number): void;
    static endStateDelta(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createStateDelta(builder: flatbuffers.Builder, tick: bigint, baselineTick: bigint, lastInputSeq: number, inputsApplied: number, entitiesOffset: flatbuffers.Offset, customFullOffset: flatbuffers.Offset, customPatchOffset: flatbuffers.Offset): flatbuffers.Offset;
}
