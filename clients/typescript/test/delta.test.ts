// Protocol version 2's delta decoder, no server: StateDelta frames built
// with the flatc-generated TypeScript builder, their `entities` and
// `custom_patch` bytes encoded here by hand from the format in
// docs/protocol.md (LEB128 varints, zigzag, the record masks), decoded by
// decodeServerMessage and applied by WorldHistory.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as flatbuffers from 'flatbuffers';

import {
  applyDelta,
  decodeServerMessage,
  DeltaError,
  EMPTY_WORLD,
  protocol,
  quantizeFacing,
  quantizePosition,
  toEntity,
  WorldHistory,
  type Entity,
  type StateDelta,
  type World,
} from '../src/index.js';

// ------------------------------------------------------------ the format, by hand

/** Unsigned LEB128 of a u32. */
function uv(n: number): number[] {
  assert.ok(Number.isInteger(n) && n >= 0 && n <= 0xffff_ffff, `uv ${n}`);
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

/** Zigzag over 32 bits, then uv. */
function sv(n: number): number[] {
  return uv(((n << 1) ^ (n >> 31)) >>> 0);
}

const X = 0x01;
const Y = 0x02;
const Z = 0x04;
const VX = 0x08;
const VY = 0x10;
const FACING = 0x20;
const KIND = 0x40;
const ENTERED = 0x80;

/** One record: the fields whose bit is in `mask`, as the wire carries them (quantized; changes for a non-entered record). */
interface Rec {
  id: number;
  mask: number;
  kind?: number;
  flags?: number;
  x?: number;
  y?: number;
  z?: number;
  vx?: number;
  vy?: number;
  facing?: number;
}

function entitiesBytes(removed: number[], records: Rec[]): number[] {
  const out = [...uv(removed.length)];
  let prev = 0;
  for (const id of removed) {
    out.push(...uv(id - prev));
    prev = id;
  }
  out.push(...uv(records.length));
  prev = 0;
  for (const r of records) {
    out.push(...uv(r.id - prev), r.mask);
    prev = r.id;
    if (r.mask & KIND) out.push(...uv(r.kind ?? 0), ...uv(r.flags ?? 0));
    for (const [bit, v] of [
      [X, r.x],
      [Y, r.y],
      [Z, r.z],
      [VX, r.vx],
      [VY, r.vy],
    ] as const) {
      if (r.mask & bit) out.push(...sv(v ?? 0));
    }
    if (r.mask & FACING) out.push(...uv(r.facing ?? 0));
  }
  return out;
}

/** A ServerMessage{StateDelta} frame, built with the generated code. */
function deltaFrame(d: {
  tick: number;
  baseline?: number;
  seq?: number;
  entities: number[];
  customFull?: number[];
  customPatch?: number[];
}): Uint8Array {
  const b = new flatbuffers.Builder(256);
  const ents = protocol.StateDelta.createEntitiesVector(b, d.entities);
  const full = d.customFull ? protocol.StateDelta.createCustomFullVector(b, d.customFull) : 0;
  const patch = d.customPatch ? protocol.StateDelta.createCustomPatchVector(b, d.customPatch) : 0;
  protocol.StateDelta.startStateDelta(b);
  protocol.StateDelta.addTick(b, BigInt(d.tick));
  protocol.StateDelta.addBaselineTick(b, BigInt(d.baseline ?? 0));
  protocol.StateDelta.addLastInputSeq(b, d.seq ?? 0);
  protocol.StateDelta.addInputsApplied(b, d.seq ?? 0);
  protocol.StateDelta.addEntities(b, ents);
  if (full) protocol.StateDelta.addCustomFull(b, full);
  if (patch) protocol.StateDelta.addCustomPatch(b, patch);
  const body = protocol.StateDelta.endStateDelta(b);
  b.finish(protocol.ServerMessage.createServerMessage(b, protocol.ServerBody.StateDelta, body));
  return b.asUint8Array().slice();
}

/** The frame, decoded as the client decodes it. */
function decode(frame: Uint8Array): StateDelta {
  const m = decodeServerMessage(frame);
  assert.ok(m && m.type === 'delta', `a StateDelta frame decodes as a delta: ${JSON.stringify(m)}`);
  return m.delta;
}

function entities(w: World): Entity[] {
  return [...w.entities.values()].map(toEntity);
}

function ent(id: number, fields: Partial<Entity> = {}): Entity {
  return { id, kind: 0, flags: 0, x: 0, y: 0, vx: 0, vy: 0, z: 0, facing: 0, ...fields };
}

// A full state of three entities (ids 1, 2, 5).
const FULL_1 = {
  tick: 10,
  entities: entitiesBytes(
    [],
    [
      { id: 1, mask: ENTERED | KIND | X | Y | VX, kind: 1, flags: 3, x: 640, y: 1280, vx: 12800 },
      { id: 2, mask: ENTERED | X | Y | VY, x: -64, y: 32, vy: -12800 },
      { id: 5, mask: ENTERED | KIND | X | Y | Z | FACING, kind: 2, flags: 0, x: 6400, y: 6400, z: 96, facing: 16384 },
    ],
  ),
  customFull: [7, 7, 7],
};

// ------------------------------------------------------------ tests

test('the hand encoding matches the format: varints, zigzag, a record', () => {
  // The examples docs/protocol.md gives, byte for byte.
  assert.deepEqual(uv(0), [0]);
  assert.deepEqual(uv(127), [0x7f]);
  assert.deepEqual(uv(128), [0x80, 0x01]);
  assert.deepEqual(uv(0xffff_ffff), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  assert.deepEqual(sv(0), [0]);
  assert.deepEqual(sv(-1), [1]);
  assert.deepEqual(sv(1), [2]);
  assert.deepEqual(sv(-2147483648), [0xff, 0xff, 0xff, 0xff, 0x0f]);
  // Entity 1 enters at (10, 20): x = 640 → zigzag 1280, y = 1280 → 2560.
  assert.deepEqual(entitiesBytes([], [{ id: 1, mask: ENTERED | X | Y, x: 640, y: 1280 }]), [0, 1, 1, 0x83, 0x80, 0x0a, 0x80, 0x14]);
  const w = applyDelta(EMPTY_WORLD, decode(deltaFrame({ tick: 3, entities: [0, 1, 1, 0x83, 0x80, 0x0a, 0x80, 0x14] })));
  assert.deepEqual(entities(w), [ent(1, { x: 10, y: 20 })]);
});

test('a full state: every entity entered, absolute, in arena units; custom_full is the custom state', () => {
  const d = decode(deltaFrame(FULL_1));
  assert.equal(d.tick, 10);
  assert.equal(d.baselineTick, 0);
  const h = new WorldHistory(4);
  const w = h.apply(d);
  assert.equal(w.tick, 10);
  assert.deepEqual(entities(w), [
    ent(1, { kind: 1, flags: 3, x: 10, y: 20, vx: 200 }),
    ent(2, { x: -1, y: 0.5, vy: -200 }),
    ent(5, { kind: 2, x: 100, y: 100, z: 1.5, facing: Math.PI / 2 }),
  ]);
  assert.deepEqual(w.custom, new Uint8Array([7, 7, 7]));
  // A full state with custom_full present but empty: the custom state is empty.
  const empty = h.apply(decode(deltaFrame({ tick: 11, entities: [0, 0], customFull: [] })));
  assert.deepEqual(empty.custom, new Uint8Array(0));
  assert.equal(empty.entities.size, 0);
});

test('a delta: entered, changed and removed entities against the baseline; the rest keep their values', () => {
  const h = new WorldHistory(4);
  const base = h.apply(decode(deltaFrame(FULL_1)));
  const before = JSON.stringify(entities(base));
  const d = decode(
    deltaFrame({
      tick: 12,
      baseline: 10,
      seq: 4,
      entities: entitiesBytes(
        [2],
        [
          // 1 moves by (+1/64, -2) and turns: changes against the baseline.
          { id: 1, mask: X | Y | FACING, x: 1, y: -128, facing: 65535 },
          // 3 enters with only x: every other field is 0.
          { id: 3, mask: ENTERED | X, x: 320 },
          // 5 is replaced by a new entity under the same id: absolute, not a change.
          { id: 5, mask: ENTERED | KIND | Y, kind: 9, flags: 1, y: 64 },
          // 7 enters, above every baseline id.
          { id: 7, mask: ENTERED | VX | VY, vx: -64, vy: 64 },
        ],
      ),
    }),
  );
  assert.equal(d.lastInputSeq, 4);
  const w = h.apply(d);
  assert.deepEqual(entities(w), [
    ent(1, { kind: 1, flags: 3, x: 10 + 1 / 64, y: 18, vx: 200, facing: (65535 * 2 * Math.PI) / 65536 }),
    ent(3, { x: 5 }),
    ent(5, { kind: 9, flags: 1, y: 1 }),
    ent(7, { vx: -1, vy: 1 }),
  ]);
  // Entity 1's untouched fields (kind, flags, vx) came from the baseline; the
  // custom state is unchanged (neither custom field present).
  assert.deepEqual(w.custom, new Uint8Array([7, 7, 7]));
  // The baseline's world is not modified: later deltas may name it again.
  assert.equal(JSON.stringify(entities(base)), before);
  // An unchanged entity (2 here, against tick 10) is kept as it was.
  const again = h.apply(decode(deltaFrame({ tick: 13, baseline: 10, entities: entitiesBytes([], [{ id: 5, mask: X, x: 64 }]) })));
  assert.deepEqual(
    entities(again).map((e) => [e.id, e.x]),
    [
      [1, 10],
      [2, -1],
      [5, 101],
    ],
  );
});

test('changes wrap around the i32 range', () => {
  const max = 2147483647;
  const min = -2147483648;
  const h = new WorldHistory(4);
  h.apply(decode(deltaFrame({ tick: 1, entities: entitiesBytes([], [{ id: 1, mask: ENTERED | X | Y, x: max, y: min }]) })));
  const w = h.apply(decode(deltaFrame({ tick: 2, baseline: 1, entities: entitiesBytes([], [{ id: 1, mask: X | Y, x: 1, y: -1 }]) })));
  const q = w.entities.get(1)!;
  assert.equal(q.x, min, 'max + 1 wraps to min');
  assert.equal(q.y, max, 'min - 1 wraps to max');
  // The largest change there is: from min to max is -1 after wrapping, and back.
  const w3 = h.apply(decode(deltaFrame({ tick: 3, baseline: 2, entities: entitiesBytes([], [{ id: 1, mask: X, x: min }]) })));
  assert.equal(w3.entities.get(1)!.x, 0);
});

test('custom_patch resizes and writes runs over the baseline; custom_full replaces it; neither keeps it', () => {
  const h = new WorldHistory(8);
  const base = [10, 11, 12, 13, 14, 15, 16, 17];
  h.apply(decode(deltaFrame({ tick: 1, entities: [0, 0], customFull: base })));
  // Same length, runs at 1..3 and 6..7: gaps are from the end of the previous run.
  const p1 = [...uv(8), ...uv(1), ...uv(2), 21, 22, ...uv(3), ...uv(2), 26, 27];
  assert.deepEqual(h.apply(decode(deltaFrame({ tick: 2, baseline: 1, entities: [0, 0], customPatch: p1 }))).custom, new Uint8Array([10, 21, 22, 13, 14, 15, 26, 27]));
  // Grown to 11 (zeros), one run at 9.
  const p2 = [...uv(11), ...uv(9), ...uv(1), 99];
  assert.deepEqual(
    h.apply(decode(deltaFrame({ tick: 3, baseline: 1, entities: [0, 0], customPatch: p2 }))).custom,
    new Uint8Array([10, 11, 12, 13, 14, 15, 16, 17, 0, 99, 0]),
  );
  // Truncated to 3, no runs.
  assert.deepEqual(h.apply(decode(deltaFrame({ tick: 4, baseline: 1, entities: [0, 0], customPatch: uv(3) }))).custom, new Uint8Array([10, 11, 12]));
  // Emptied.
  assert.deepEqual(h.apply(decode(deltaFrame({ tick: 5, baseline: 4, entities: [0, 0], customPatch: uv(0) }))).custom, new Uint8Array(0));
  // Neither: the baseline's (tick 2's) custom state.
  assert.deepEqual(h.apply(decode(deltaFrame({ tick: 6, baseline: 2, entities: [0, 0] }))).custom, new Uint8Array([10, 21, 22, 13, 14, 15, 26, 27]));
  // custom_full over a baseline.
  assert.deepEqual(h.apply(decode(deltaFrame({ tick: 7, baseline: 6, entities: [0, 0], customFull: [1] }))).custom, new Uint8Array([1]));
  // A run past new_len is a protocol error.
  assert.throws(() => h.apply(decode(deltaFrame({ tick: 8, baseline: 1, entities: [0, 0], customPatch: [...uv(2), ...uv(1), ...uv(2), 5, 5] }))), DeltaError);
});

test('the history keeps the last N ticks applied; a delta against a tick it does not keep is a DeltaError', () => {
  const h = new WorldHistory(3);
  h.apply(decode(deltaFrame(FULL_1))); // tick 10
  for (const tick of [11, 12, 13]) {
    h.apply(decode(deltaFrame({ tick, baseline: tick - 1, entities: entitiesBytes([], [{ id: 1, mask: X, x: 64 }]) })));
  }
  assert.deepEqual(h.ticks, [11, 12, 13]);
  assert.equal(h.latest?.tick, 13);
  assert.equal(h.get(13)!.entities.get(1)!.x, 640 + 3 * 64);
  // 10 was evicted by the fourth tick.
  assert.throws(
    () => h.apply(decode(deltaFrame({ tick: 14, baseline: 10, entities: [0, 0] }))),
    (e: unknown) => e instanceof DeltaError && /baseline tick 10 is not among the ticks kept: 11\.\.13 \(3\)/.test(e.message),
  );
  // A tick never applied, likewise; the history is unchanged by a failed apply.
  assert.throws(() => h.apply(decode(deltaFrame({ tick: 14, baseline: 9, entities: [0, 0] }))), DeltaError);
  assert.deepEqual(h.ticks, [11, 12, 13]);
  // The oldest kept one still works, and applying makes room by evicting 11.
  h.apply(decode(deltaFrame({ tick: 14, baseline: 11, entities: [0, 0] })));
  assert.deepEqual(h.ticks, [12, 13, 14]);
  // A full state needs no baseline; clear() forgets everything.
  h.apply(decode(deltaFrame({ tick: 20, entities: [0, 0] })));
  h.clear();
  assert.throws(() => h.apply(decode(deltaFrame({ tick: 21, baseline: 20, entities: [0, 0] }))), DeltaError);
  // A smaller capacity evicts at once.
  const g = new WorldHistory(4);
  for (const tick of [1, 2, 3, 4]) g.apply(decode(deltaFrame({ tick, entities: [0, 0] })));
  g.resize(2);
  assert.deepEqual(g.ticks, [3, 4]);
  assert.throws(() => new WorldHistory(0), RangeError);
});

test('malformed entities bytes are DeltaErrors, and leave the history as it was', () => {
  const cases: [string, number[], RegExp][] = [
    ['a truncated varint', [0, 1, 1, ENTERED | X, 0x80], /runs past the end/],
    ['a varint over 32 bits', [0, 1, 1, ENTERED | X, 0xff, 0xff, 0xff, 0xff, 0x1f], /over 32 bits/],
    ['a record cut before its mask', [0, 1, 1], /runs past the end/],
    ['bytes after the last record', [0, 0, 0], /1 bytes after the last record/],
    ['a count larger than the bytes', [0, 9, 1, ENTERED], /record_count 9/],
    ['record ids not ascending', entitiesBytes([], [{ id: 3, mask: ENTERED }]).slice(0, 1).concat([2, 3, ENTERED, 0, ENTERED]), /not ascending/],
    ['a change to an entity the baseline lacks', entitiesBytes([], [{ id: 4, mask: X, x: 1 }]), /entity 4 changed but is not in baseline 10/],
    ['an id both removed and recorded', entitiesBytes([2], [{ id: 2, mask: X, x: 1 }]), /both removed and recorded/],
    ['facing over 16 bits', entitiesBytes([], [{ id: 1, mask: FACING, facing: 65536 }]), /facing 65536 over 16 bits/],
    ['kind over 16 bits', entitiesBytes([], [{ id: 1, mask: KIND, kind: 70000 }]), /over 16 bits/],
    ['an id over 32 bits', [0, 2, ...uv(0xffff_fff0), ENTERED, ...uv(0x20), ENTERED], /over 32 bits/],
  ];
  for (const [what, bytes, why] of cases) {
    const h = new WorldHistory(4);
    h.apply(decode(deltaFrame(FULL_1)));
    assert.throws(
      () => h.apply(decode(deltaFrame({ tick: 11, baseline: 10, entities: bytes }))),
      (e: unknown) => e instanceof DeltaError && why.test(e.message),
      what,
    );
    assert.deepEqual(h.ticks, [10], `${what}: nothing kept`);
  }
  // Not after its baseline.
  const h = new WorldHistory(4);
  h.apply(decode(deltaFrame(FULL_1)));
  assert.throws(() => h.apply(decode(deltaFrame({ tick: 10, baseline: 10, entities: [0, 0] }))), /not after its baseline/);
});

test('a removed id the baseline does not have is ignored', () => {
  const h = new WorldHistory(4);
  h.apply(decode(deltaFrame(FULL_1)));
  const w = h.apply(decode(deltaFrame({ tick: 11, baseline: 10, entities: entitiesBytes([3, 5, 1000], []) })));
  assert.deepEqual([...w.entities.keys()], [1, 2]);
});

test('quantization: positions within 1/128 of a unit, facing within half a step, as the server rounds', () => {
  let worst = 0;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  for (let i = 0; i < 10_000; i++) {
    const v = rand() * 5000;
    const back = toEntity({ id: 1, kind: 0, flags: 0, x: quantizePosition(v), y: 0, z: 0, vx: 0, vy: 0, facing: 0 }).x;
    worst = Math.max(worst, Math.abs(back - v));
  }
  assert.ok(worst <= 1 / 128, `worst error ${worst}`);
  // Halves round away from zero (Rust's f32::round).
  assert.equal(quantizePosition(0.5 / 64), 1);
  assert.equal(quantizePosition(-0.5 / 64), -1);
  assert.equal(quantizeFacing(0), 0);
  assert.equal(quantizeFacing(Math.PI), 32768);
  assert.equal(quantizeFacing(2 * Math.PI), 0, 'a full turn is 0');
  assert.equal(quantizeFacing(-Math.PI / 2), 49152, 'negative angles wrap');
  const f = 1.234;
  const back = toEntity({ id: 1, kind: 0, flags: 0, x: 0, y: 0, z: 0, vx: 0, vy: 0, facing: quantizeFacing(f) }).facing;
  assert.ok(Math.abs(back - f) <= Math.PI / 65536, `facing ${f} → ${back}`);
});

test('the examples of docs/protocol.md ("Delta format", "Custom state") decode as it says', () => {
  const h = new WorldHistory(4);
  // Baseline: id 1 at (1, -1), ids 5 and 9 at 0; custom state 01..08.
  h.apply(
    decode(
      deltaFrame({
        tick: 1,
        entities: entitiesBytes(
          [],
          [
            { id: 1, mask: ENTERED | X | Y, x: 64, y: -64 },
            { id: 5, mask: ENTERED },
            { id: 9, mask: ENTERED },
          ],
        ),
        customFull: [1, 2, 3, 4, 5, 6, 7, 8],
      }),
    ),
  );
  const example = [0x01, 0x09, 0x02, 0x01, 0x03, 0x80, 0x01, 0x7f, 0x0b, 0xc3, 0x01, 0x00, 0x02, 0x01];
  const w = h.apply(decode(deltaFrame({ tick: 2, baseline: 1, entities: example, customPatch: [0x0a, 0x01, 0x01, 0x09, 0x07, 0x01, 0x04] })));
  assert.deepEqual(entities(w), [ent(1, { x: 2, y: -2 }), ent(5), ent(12, { kind: 1, x: 1 / 64, y: -1 / 64 })]);
  assert.deepEqual(w.custom, new Uint8Array([1, 9, 3, 4, 5, 6, 7, 8, 0, 4]));
  // A tick where nothing changed is 00 00.
  assert.deepEqual(entities(h.apply(decode(deltaFrame({ tick: 3, baseline: 2, entities: [0, 0] })))), entities(w));
});
