import * as flatbuffers from 'flatbuffers';
/**
 * The 3D part of an entity: height in arena units and facing in radians,
 * [0, 2*pi). A struct cannot grow, so it travels beside EntityState.
 */
export declare class EntityPose {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): EntityPose;
    z(): number;
    facing(): number;
    static sizeOf(): number;
    static createEntityPose(builder: flatbuffers.Builder, z: number, facing: number): flatbuffers.Offset;
}
