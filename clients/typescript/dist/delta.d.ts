import type { Entity, StateDelta } from './types.js';
/** Positions (x, y, z) and velocities travel in 1/64 of an arena unit. */
export declare const POSITION_SCALE = 64;
/** Facing travels in 1/65536 of a turn. */
export declare const FACING_STEPS = 65536;
/**
 * Largest custom state a custom_patch may make, bytes (16 MiB, the client's
 * memory per kept world at worst): a larger new_len is a protocol error.
 */
export declare const CUSTOM_STATE_BYTES_MAX: number;
/** A delta the client cannot apply: a protocol violation by the server. */
export declare class DeltaError extends Error {
    constructor(message: string);
}
/** One entity as the wire carries it: quantized integers. */
export interface QuantizedEntity {
    readonly id: number;
    readonly kind: number;
    readonly flags: number;
    /** round(v × 64), i32. */
    readonly x: number;
    readonly y: number;
    readonly z: number;
    readonly vx: number;
    readonly vy: number;
    /** round(facing / 2π × 65536) mod 65536. */
    readonly facing: number;
}
/** The world of one tick, as rebuilt from deltas. Never modified once made. */
export interface World {
    readonly tick: number;
    /** By id, in ascending id order. */
    readonly entities: ReadonlyMap<number, QuantizedEntity>;
    readonly custom: Uint8Array;
}
/** The world a full state (baseline_tick 0) starts from. */
export declare const EMPTY_WORLD: World;
/** round(v × 64), halves away from zero (Rust's `f32::round`), as the server quantizes a position or velocity. */
export declare function quantizePosition(v: number): number;
/** round(facing / 2π × 65536) mod 65536 (halves away from zero). */
export declare function quantizeFacing(radians: number): number;
/** An entity in arena units. */
export declare function toEntity(q: QuantizedEntity): Entity;
/**
 * The world `delta` describes, from `baseline` (the world of
 * `delta.baselineTick`, or EMPTY_WORLD for a full state). Throws DeltaError
 * when the delta breaks the format; `baseline` is left as it was.
 */
export declare function applyDelta(baseline: World, delta: StateDelta): World;
/**
 * The worlds of the last `capacity` ticks applied (Limits.delta_history_ticks):
 * every delta names one of them as its baseline. Applying a delta keeps its
 * world and forgets the oldest beyond `capacity`.
 */
export declare class WorldHistory {
    private readonly worlds;
    private capacityValue;
    constructor(capacity: number);
    private static check;
    get capacity(): number;
    /** Ticks kept, oldest first. */
    get ticks(): number[];
    /** The newest world applied, or null. */
    get latest(): World | null;
    get(tick: number): World | undefined;
    /** Changes how many worlds are kept (a new Welcome); the oldest beyond it go. */
    resize(capacity: number): void;
    /** Forgets every world (a new Joined: the next delta is a full state). */
    clear(): void;
    /**
     * Applies `delta` to its baseline and keeps the result. Throws DeltaError
     * when the baseline is not kept (the server encoded against a tick this
     * client never applied or forgot) or the delta is malformed.
     */
    apply(delta: StateDelta): World;
    private evict;
}
