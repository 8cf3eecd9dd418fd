import * as flatbuffers from 'flatbuffers';
/**
 * One entity as the game exposes it: position and velocity in arena units
 * (per second for velocity). `kind` and `flags` are the game's own.
 */
export declare class EntityState {
    bb: flatbuffers.ByteBuffer | null;
    bb_pos: number;
    __init(i: number, bb: flatbuffers.ByteBuffer): EntityState;
    id(): number;
    kind(): number;
    flags(): number;
    x(): number;
    y(): number;
    vx(): number;
    vy(): number;
    static sizeOf(): number;
    static createEntityState(builder: flatbuffers.Builder, id: number, kind: number, flags: number, x: number, y: number, vx: number, vy: number): flatbuffers.Offset;
}
