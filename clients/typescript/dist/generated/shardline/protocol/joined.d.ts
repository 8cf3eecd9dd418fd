import * as flatbuffers from 'flatbuffers';
import { EntityPose } from '../../shardline/protocol/entity-pose.js';
import { EntityState } from '../../shardline/protocol/entity-state.js';
export declare class Joined {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): Joined;
    static getRootAsJoined(bb: flatbuffers.ByteBuffer, obj?: Joined): Joined;
    static getSizePrefixedRootAsJoined(bb: flatbuffers.ByteBuffer, obj?: Joined): Joined;
    instanceId(): string | null;
    instanceId(optionalEncoding: flatbuffers.Encoding): string | Uint8Array | null;
    /**
     * The entity this player controls.
     */
    entityId(): number;
    tick(): bigint;
    arenaWidth(): number;
    arenaHeight(): number;
    entities(index: number, obj?: EntityState): EntityState | null;
    entitiesLength(): number;
    /**
     * Game-specific state beyond entities (the game trait's own encoding).
     */
    custom(index: number): number | null;
    customLength(): number;
    customArray(): Uint8Array | null;
    /**
     * z and facing of `entities`, same length and order; absent when every
     * entity has z = 0 and facing = 0 (a 2D game).
     */
    poses(index: number, obj?: EntityPose): EntityPose | null;
    posesLength(): number;
    static startJoined(builder: flatbuffers.Builder): void;
    static addInstanceId(builder: flatbuffers.Builder, instanceIdOffset: flatbuffers.Offset): void;
    static addEntityId(builder: flatbuffers.Builder, entityId: number): void;
    static addTick(builder: flatbuffers.Builder, tick: bigint): void;
    static addArenaWidth(builder: flatbuffers.Builder, arenaWidth: number): void;
    static addArenaHeight(builder: flatbuffers.Builder, arenaHeight: number): void;
    static addEntities(builder: flatbuffers.Builder, entitiesOffset: flatbuffers.Offset): void;
    static startEntitiesVector(builder: flatbuffers.Builder, numElems: number): void;
    static addCustom(builder: flatbuffers.Builder, customOffset: flatbuffers.Offset): void;
    static createCustomVector(builder: flatbuffers.Builder, data: number[] | Uint8Array): flatbuffers.Offset;
    static startCustomVector(builder: flatbuffers.Builder, numElems: number): void;
    static addPoses(builder: flatbuffers.Builder, posesOffset: flatbuffers.Offset): void;
    static startPosesVector(builder: flatbuffers.Builder, numElems: number): void;
    static endJoined(builder: flatbuffers.Builder): flatbuffers.Offset;
    static createJoined(builder: flatbuffers.Builder, instanceIdOffset: flatbuffers.Offset, entityId: number, tick: bigint, arenaWidth: number, arenaHeight: number, entitiesOffset: flatbuffers.Offset, customOffset: flatbuffers.Offset, posesOffset: flatbuffers.Offset): flatbuffers.Offset;
}
