// Protocol version 2: rebuilds the world from StateDelta messages. Pure
// code: no sockets, no clock. The format (docs/protocol.md, "Protocol
// version 2"):
//
//   entities:  removed_count uv, removed_count × id_gap uv,
//              record_count uv, record_count × (id_gap uv, mask u8, fields)
//   mask:      0x01 x  0x02 y  0x04 z  0x08 vx  0x10 vy  0x20 facing
//              0x40 kind and flags  0x80 entered (absolute, others 0)
//   fields:    kind uv, flags uv; x y z vx vy sv (entered: the value,
//              otherwise the change, wrapping i32); facing uv (u16)
//   uv:        LEB128, at most 5 bytes; sv: zigzag over 32 bits, then uv
//   custom_patch: new_len uv, then runs (gap uv, len uv, len bytes)
//
// Positions and velocities travel as round(v × 64), facing as
// round(facing / 2π × 65536) mod 65536.
/** Positions (x, y, z) and velocities travel in 1/64 of an arena unit. */
export const POSITION_SCALE = 64;
/** Facing travels in 1/65536 of a turn. */
export const FACING_STEPS = 65536;
/**
 * Largest custom state a custom_patch may make, bytes (16 MiB, the client's
 * memory per kept world at worst): a larger new_len is a protocol error.
 */
export const CUSTOM_STATE_BYTES_MAX = 1 << 24;
// Mask bits of a record.
const X = 0x01;
const Y = 0x02;
const Z = 0x04;
const VX = 0x08;
const VY = 0x10;
const FACING = 0x20;
const KIND_FLAGS = 0x40;
const ENTERED = 0x80;
const U16_MAX = 0xffff;
const U32_MAX = 4294967295;
/** A delta the client cannot apply: a protocol violation by the server. */
export class DeltaError extends Error {
    constructor(message) {
        super(message);
        this.name = 'DeltaError';
    }
}
/** The world a full state (baseline_tick 0) starts from. */
export const EMPTY_WORLD = { tick: 0, entities: new Map(), custom: new Uint8Array(0) };
/** round(v × 64), halves away from zero (Rust's `f32::round`), as the server quantizes a position or velocity. */
export function quantizePosition(v) {
    const q = Math.round(Math.abs(v) * POSITION_SCALE);
    return (v < 0 ? -q : q) | 0;
}
/** round(facing / 2π × 65536) mod 65536 (halves away from zero). */
export function quantizeFacing(radians) {
    const steps = (Math.abs(radians) / (2 * Math.PI)) * FACING_STEPS;
    const q = (radians < 0 ? -Math.round(steps) : Math.round(steps)) % FACING_STEPS;
    return q < 0 ? q + FACING_STEPS : q;
}
/** An entity in arena units. */
export function toEntity(q) {
    return {
        id: q.id,
        kind: q.kind,
        flags: q.flags,
        x: q.x / POSITION_SCALE,
        y: q.y / POSITION_SCALE,
        vx: q.vx / POSITION_SCALE,
        vy: q.vy / POSITION_SCALE,
        z: q.z / POSITION_SCALE,
        facing: (q.facing * 2 * Math.PI) / FACING_STEPS,
    };
}
/** Reads the varints of one byte field; every read past its end is a DeltaError. */
class Reader {
    constructor(bytes, what) {
        this.bytes = bytes;
        this.what = what;
        this.pos = 0;
    }
    get done() {
        return this.pos >= this.bytes.length;
    }
    /** Bytes not read yet. */
    get left() {
        return this.bytes.length - this.pos;
    }
    /** An unsigned LEB128 varint of at most 32 bits (5 bytes). */
    uv() {
        let value = 0;
        for (let i = 0; i < 5; i++) {
            if (this.pos >= this.bytes.length)
                this.fail('a varint runs past the end');
            const b = this.bytes[this.pos++];
            if (i === 4 && b > 0x0f)
                this.fail('a varint over 32 bits');
            value += (b & 0x7f) * 2 ** (7 * i);
            if ((b & 0x80) === 0)
                return value;
        }
        return this.fail('a varint over 32 bits');
    }
    /** A zigzag-encoded signed varint: an i32. */
    sv() {
        const u = this.uv();
        return (u >>> 1) ^ -(u & 1);
    }
    byte() {
        if (this.pos >= this.bytes.length)
            this.fail('a record runs past the end');
        return this.bytes[this.pos++];
    }
    take(n) {
        if (n > this.left)
            this.fail(`a run of ${n} bytes runs past the end`);
        const out = this.bytes.subarray(this.pos, this.pos + n);
        this.pos += n;
        return out;
    }
    fail(why) {
        throw new DeltaError(`${this.what}: ${why} (at byte ${this.pos} of ${this.bytes.length})`);
    }
}
/** A count of items of at least one byte each: more than the bytes left is a lie. */
function count(r, what) {
    const n = r.uv();
    if (n > r.left)
        r.fail(`${what} ${n} with ${r.left} bytes left`);
    return n;
}
/**
 * The world `delta` describes, from `baseline` (the world of
 * `delta.baselineTick`, or EMPTY_WORLD for a full state). Throws DeltaError
 * when the delta breaks the format; `baseline` is left as it was.
 */
export function applyDelta(baseline, delta) {
    const r = new Reader(delta.entities, `StateDelta ${delta.tick} entities`);
    const base = baseline.entities;
    const removed = new Set();
    const removedCount = count(r, 'removed_count');
    let id = 0;
    for (let i = 0; i < removedCount; i++) {
        id = nextId(r, id, i, 'removed');
        // An id the baseline does not have is ignored (the format says so).
        if (base.has(id))
            removed.add(id);
    }
    const records = [];
    const recordCount = count(r, 'record_count');
    id = 0;
    for (let i = 0; i < recordCount; i++) {
        id = nextId(r, id, i, 'record');
        if (removed.has(id))
            r.fail(`entity ${id} is both removed and recorded`);
        const mask = r.byte();
        const entered = (mask & ENTERED) !== 0;
        const was = entered ? undefined : base.get(id);
        if (!entered && was === undefined)
            r.fail(`entity ${id} changed but is not in baseline ${delta.baselineTick}`);
        let kind = was?.kind ?? 0;
        let flags = was?.flags ?? 0;
        if (mask & KIND_FLAGS) {
            kind = r.uv();
            flags = r.uv();
            if (kind > U16_MAX || flags > U16_MAX)
                r.fail(`entity ${id}: kind ${kind} or flags ${flags} over 16 bits`);
        }
        // Entered: the value itself; otherwise the change (wrapping i32).
        const field = (bit, old) => (mask & bit ? (r.sv() + old) | 0 : old);
        const x = field(X, was?.x ?? 0);
        const y = field(Y, was?.y ?? 0);
        const z = field(Z, was?.z ?? 0);
        const vx = field(VX, was?.vx ?? 0);
        const vy = field(VY, was?.vy ?? 0);
        let facing = was?.facing ?? 0;
        if (mask & FACING) {
            facing = r.uv();
            if (facing > U16_MAX)
                r.fail(`entity ${id}: facing ${facing} over 16 bits`);
        }
        records.push({ id, kind, flags, x, y, z, vx, vy, facing });
    }
    if (!r.done)
        r.fail(`${r.left} bytes after the last record`);
    // Merge: baseline entities (ascending) minus removed, with the records
    // (ascending) put in or over them; the result stays in ascending order.
    const out = new Map();
    let j = 0;
    for (const [bid, e] of base) {
        while (j < records.length && records[j].id < bid) {
            out.set(records[j].id, records[j]);
            j++;
        }
        if (j < records.length && records[j].id === bid) {
            out.set(bid, records[j]);
            j++;
        }
        else if (!removed.has(bid)) {
            out.set(bid, e);
        }
    }
    for (; j < records.length; j++)
        out.set(records[j].id, records[j]);
    return { tick: delta.tick, entities: out, custom: customState(baseline.custom, delta) };
}
/** The next id of an ascending list: previous + gap, at most u32; after the first, gaps are at least 1. */
function nextId(r, previous, index, what) {
    const gap = r.uv();
    if (index > 0 && gap === 0)
        r.fail(`${what} ids not ascending (${previous} twice)`);
    const id = previous + gap;
    if (id > U32_MAX)
        r.fail(`${what} id ${id} over 32 bits`);
    return id;
}
/** The custom state after `delta`: custom_full, or the baseline's patched, or the baseline's. */
function customState(base, delta) {
    if (delta.customFull !== null)
        return delta.customFull;
    if (delta.customPatch === null)
        return base;
    const r = new Reader(delta.customPatch, `StateDelta ${delta.tick} custom_patch`);
    const len = r.uv();
    if (len > CUSTOM_STATE_BYTES_MAX)
        r.fail(`new_len ${len} over ${CUSTOM_STATE_BYTES_MAX} bytes`);
    const out = new Uint8Array(len);
    out.set(base.length > len ? base.subarray(0, len) : base);
    let end = 0;
    while (!r.done) {
        const start = end + r.uv();
        const n = r.uv();
        if (start + n > len)
            r.fail(`a run [${start}, ${start + n}) past new_len ${len}`);
        out.set(r.take(n), start);
        end = start + n;
    }
    return out;
}
/**
 * The worlds of the last `capacity` ticks applied (Limits.delta_history_ticks):
 * every delta names one of them as its baseline. Applying a delta keeps its
 * world and forgets the oldest beyond `capacity`.
 */
export class WorldHistory {
    constructor(capacity) {
        this.worlds = new Map();
        this.capacityValue = WorldHistory.check(capacity);
    }
    static check(capacity) {
        if (!Number.isInteger(capacity) || capacity < 1)
            throw new RangeError(`history capacity must be a positive integer (got ${capacity})`);
        return capacity;
    }
    get capacity() {
        return this.capacityValue;
    }
    /** Ticks kept, oldest first. */
    get ticks() {
        return [...this.worlds.keys()];
    }
    /** The newest world applied, or null. */
    get latest() {
        let last = null;
        for (const w of this.worlds.values())
            last = w;
        return last;
    }
    get(tick) {
        return this.worlds.get(tick);
    }
    /** Changes how many worlds are kept (a new Welcome); the oldest beyond it go. */
    resize(capacity) {
        this.capacityValue = WorldHistory.check(capacity);
        this.evict();
    }
    /** Forgets every world (a new Joined: the next delta is a full state). */
    clear() {
        this.worlds.clear();
    }
    /**
     * Applies `delta` to its baseline and keeps the result. Throws DeltaError
     * when the baseline is not kept (the server encoded against a tick this
     * client never applied or forgot) or the delta is malformed.
     */
    apply(delta) {
        let baseline = EMPTY_WORLD;
        if (delta.baselineTick !== 0) {
            const kept = this.worlds.get(delta.baselineTick);
            if (kept === undefined) {
                const ticks = this.ticks;
                const have = ticks.length === 0 ? 'none' : `${ticks[0]}..${ticks[ticks.length - 1]} (${ticks.length})`;
                throw new DeltaError(`StateDelta ${delta.tick}: baseline tick ${delta.baselineTick} is not among the ticks kept: ${have}`);
            }
            if (delta.tick <= delta.baselineTick) {
                throw new DeltaError(`StateDelta ${delta.tick}: not after its baseline tick ${delta.baselineTick}`);
            }
            baseline = kept;
        }
        const world = applyDelta(baseline, delta);
        this.worlds.delete(world.tick); // re-inserted as the newest
        this.worlds.set(world.tick, world);
        this.evict();
        return world;
    }
    evict() {
        for (const tick of this.worlds.keys()) {
            if (this.worlds.size <= this.capacityValue)
                break;
            this.worlds.delete(tick);
        }
    }
}
