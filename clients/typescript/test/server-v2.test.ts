// Protocol version 2 against a real shardline server: a version 2 client
// rebuilds from deltas the same world a version 1 client in the same
// instance gets in full (within the quantization: 1/128 of a unit), its
// acknowledgements make the server send deltas rather than full states, a
// still world costs a few bytes, entities entering and leaving come as
// entered and left, and game messages are taken from both versions. (Game
// events need a game that emits them; the reference arena emits none: the
// client's side of GameEvent is tested against a fake node in v2.test.ts.)

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import type { Entity, ShardlineClient, State } from '../src/index.js';
import { newClient, startServer, waitForEvent, WAIT_MS_MAX, type Server } from './helpers.js';

// Quantization error bound of positions and velocities, arena units.
const QUANTUM_HALF = 1 / 128;
// Ticks both clients must have seen to compare the worlds.
const COMMON_TICKS_MIN = 30;

let server: Server;
const clients: ShardlineClient[] = [];

before(async () => {
  server = await startServer(['--tick-rate', '30']);
});

after(async () => {
  for (const c of clients) c.close();
  await server.stop();
});

async function player(name: string, instance: string, protocolVersion: 1 | 2): Promise<ShardlineClient> {
  const c = newClient({ protocolVersion });
  clients.push(c);
  await c.connect(server.url);
  await c.hello(name);
  await c.join(instance);
  return c;
}

/** Every state `c` emits from now on, by tick. */
function recordStates(c: ShardlineClient): Map<number, State> {
  const byTick = new Map<number, State>();
  c.on('state', (s) => byTick.set(s.tick, s));
  return byTick;
}

function sameWithinQuantum(tick: number, v1: Entity, v2: Entity): void {
  const what = `tick ${tick}, entity ${v1.id}: v1 ${JSON.stringify(v1)} v2 ${JSON.stringify(v2)}`;
  assert.equal(v2.kind, v1.kind, what);
  assert.equal(v2.flags, v1.flags, what);
  for (const k of ['x', 'y', 'vx', 'vy', 'z'] as const) {
    assert.ok(Math.abs(v2[k] - v1[k]) <= QUANTUM_HALF, `${k}: ${what}`);
  }
  assert.ok(Math.abs(v2.facing - v1.facing) <= Math.PI / 65536 + 1e-6, `facing: ${what}`);
}

test('version 2 rebuilds the world a version 1 client gets in full, within 1/128 of a unit, from deltas it acknowledged', async () => {
  const old = await player('full', 'sdk-v2-world', 1);
  const v2 = await player('delta', 'sdk-v2-world', 2);
  assert.equal(v2.welcome!.limits.deltaHistoryTicks > 0, true, `limits.deltaHistoryTicks ${v2.welcome!.limits.deltaHistoryTicks}`);
  const fullStates = recordStates(old);
  const deltaStates = recordStates(v2);
  // Both move, at angles that make positions of every fraction.
  old.sendInput(0.7, 0.3);
  v2.sendInput(-0.45, 0.9);
  const common = () => [...deltaStates.keys()].filter((t) => fullStates.has(t));
  await waitForEvent(v2, 'state', () => common().length >= COMMON_TICKS_MIN, WAIT_MS_MAX * 2);
  old.sendInput(0, 0);
  v2.sendInput(0, 0);

  const ticks = common();
  for (const tick of ticks) {
    const a = fullStates.get(tick)!;
    const b = deltaStates.get(tick)!;
    // The whole instance is in view (no --interest-radius), and two
    // entities are far under the update budget: the same entities, each
    // up to date.
    assert.deepEqual(
      b.entities.map((e) => e.id),
      [...a.entities].sort((p, q) => p.id - q.id).map((e) => e.id),
      `tick ${tick}: the same entities`,
    );
    for (const e of b.entities) sameWithinQuantum(tick, a.entities.find((x) => x.id === e.id)!, e);
  }
  const deltas = [...deltaStates.values()];
  const fromBaseline = deltas.filter((s) => s.baselineTick > 0);
  assert.ok(
    fromBaseline.length >= deltas.length / 2,
    `most states came as deltas against an acknowledged tick: ${fromBaseline.length} of ${deltas.length} (baselines ${deltas.map((s) => s.baselineTick).join(',')})`,
  );
  for (const s of fromBaseline) assert.ok(s.baselineTick < s.tick);
  assert.equal(v2.protocolVersion, 2);
  console.log(`compared ${ticks.length} ticks; ${fromBaseline.length} of ${deltas.length} v2 states were deltas`);
});

test('a still world: the delta is a few bytes against the full update', async () => {
  const old = await player('still-full', 'sdk-v2-still', 1);
  const v2 = await player('still-delta', 'sdk-v2-still', 2);
  // Nobody has moved: wait for a delta against a baseline (acknowledged).
  const still = await waitForEvent(v2, 'state', (s) => s.baselineTick > 0 && s.entities.length === 2);
  const full = await waitForEvent(old, 'state', (s) => s.entities.length === 2);
  assert.ok(still.entities.every((e) => e.vx === 0 && e.vy === 0));
  assert.ok(
    still.frameBytes < full.frameBytes,
    `a delta of a still world (${still.frameBytes} bytes) is smaller than the full update (${full.frameBytes} bytes)`,
  );
  console.log(`two still entities: StateDelta ${still.frameBytes} bytes, StateUpdate ${full.frameBytes} bytes`);
});

test('entities entering and leaving the view come as entered and left', async () => {
  const a = await player('stayer', 'sdk-v2-enter', 2);
  // A's acknowledgements have reached the server: it gets deltas now.
  await waitForEvent(a, 'state', (s) => s.baselineTick > 0);
  const entered = waitForEvent(a, 'state', (s) => s.entered.length > 0);
  const b = await player('visitor', 'sdk-v2-enter', 2);
  const bId = b.entityId!;
  const s = await entered;
  assert.deepEqual(s.entered, [bId]);
  assert.ok(s.baselineTick > 0, 'entered by a record of a delta, not in a full state');
  assert.ok(s.entities.some((e) => e.id === bId));
  const left = waitForEvent(a, 'state', (x) => x.left.length > 0);
  b.leave();
  const l = await left;
  assert.deepEqual(l.left, [bId]);
  assert.ok(l.baselineTick > 0, 'removed by a delta');
  assert.ok(!l.entities.some((e) => e.id === bId));
});

test('game messages go out within the limits and the connection stays; version 1 gets no game events', async () => {
  const old = await player('msg-v1', 'sdk-v2-msg', 1);
  const v2 = await player('msg-v2', 'sdk-v2-msg', 2);
  const limits = v2.welcome!.limits;
  assert.ok(limits.messageBytesMax > 0 && limits.messagesPerTickMax > 0, `limits ${JSON.stringify(limits)}`);
  assert.deepEqual(
    [old.welcome!.limits.messageBytesMax, old.welcome!.limits.deltaHistoryTicks],
    [limits.messageBytesMax, limits.deltaHistoryTicks],
    'version 1 clients get the same limits',
  );
  const oldEvents: unknown[] = [];
  old.on('message', (e) => oldEvents.push(e));
  const errors: unknown[] = [];
  for (const c of [old, v2]) c.on('serverError', (e) => errors.push(e));
  // The reference arena takes messages and ignores them: what this shows is
  // that the server accepts them, from either version, at the largest size.
  assert.equal(v2.send(1, new Uint8Array([104, 105])), true);
  assert.equal(v2.send(65535, new Uint8Array(limits.messageBytesMax)), true);
  assert.equal(old.send(2), true);
  assert.throws(() => v2.send(1, new Uint8Array(limits.messageBytesMax + 1)), RangeError);
  const seq = v2.sendInput(0, 1)!;
  const applied = await waitForEvent(v2, 'state', (s) => s.lastInputSeq >= seq);
  await waitForEvent(old, 'state', (s) => s.tick > applied.tick + 3);
  assert.equal(v2.status, 'joined');
  assert.equal(old.status, 'joined');
  assert.deepEqual(errors, []);
  assert.deepEqual(oldEvents, []);
});
