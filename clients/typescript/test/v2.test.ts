// Protocol version 2 in the client, against a fake node (test/fake-node.ts)
// that sends StateDeltas and GameEvents on cue and records what the client
// answers: the rebuilt world as `state` events with what entered and left,
// an acknowledgement of every applied tick (Ack, or Input.ack_tick when an
// input goes out first), game messages both ways, and a delta the client
// cannot apply (a protocol error: drop, reconnect, full state again).
// The same against a real server is in server-v2.test.ts.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import { CLOSE_BAD_DELTA, type ClientEvents, type ShardlineClient, type State } from '../src/index.js';
import { FakeNode, type FakeConn } from './fake-node.js';
import { eventually, newClient, waitForEvent } from './helpers.js';

// The fake sends no updates unless told and answers no pings: no liveness checks.
const QUIET = { pingIntervalMs: 0, deadAfterMs: 0 };
const FAST_RECONNECT = { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 20 };

const cleanup: (() => unknown)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

async function node(id: string): Promise<FakeNode> {
  const n = await FakeNode.start(id);
  cleanup.push(() => n.stop());
  return n;
}

function client(...args: Parameters<typeof newClient>): ShardlineClient {
  const c = newClient(...args);
  cleanup.push(() => c.close());
  return c;
}

/** A client joined to `instance` on `n`, and the node's side of its connection. */
async function seated(c: ShardlineClient, n: FakeNode, instance: string): Promise<FakeConn> {
  await c.connect(n.url);
  await c.hello('v2');
  await c.join(instance);
  return n.conns[n.conns.length - 1];
}

// Hand-encoded `entities` bytes (docs/protocol.md): removed_count, ids,
// record_count, records of (id_gap, mask, fields). 0x80 entered, 0x01 x,
// 0x02 y; sv(n) = zigzag: 2n for n >= 0. The fake's Joined seats entity 1 at (500, 500).
// Full state: entity 1 at (500, 500) = (32000, 32000), entity 9 at (1, 2) = (64, 128).
const FULL = [0, 2, 1, 0x83, 0x80, 0xf4, 0x03, 0x80, 0xf4, 0x03, 8, 0x83, 0x80, 0x01, 0x80, 0x02];
// Against FULL: 9 removed; 1 moves x by +1 unit (+64: zigzag 128 = 0x80 0x01); 12 enters at x = 3 (192: 384 = 0x80 0x03).
const STEP = [1, 9, 2, 1, 0x01, 0x80, 0x01, 11, 0x81, 0x80, 0x03];

test('version 2: Hello says 2; deltas become state events with entered and left; every applied tick is acknowledged', async () => {
  const n = await node('fake-v2');
  const c = client(QUIET);
  const conn = await seated(c, n, 'room');
  assert.equal(conn.version, 2, 'Hello.protocol_version');
  assert.equal(c.protocolVersion, 2);
  const states: State[] = [];
  c.on('state', (s) => states.push(s));

  n.delta(conn, { tick: 5, entities: FULL, customFull: [1, 2] });
  await eventually('the full state is acknowledged', () => conn.acks.length === 1);
  assert.deepEqual(conn.acks, [{ via: 'ack', tick: 5 }]);
  const s5 = states[0];
  assert.equal(s5.tick, 5);
  assert.equal(s5.baselineTick, 0);
  assert.deepEqual(
    s5.entities.map((e) => [e.id, e.x, e.y]),
    [
      [1, 500, 500],
      [9, 1, 2],
    ],
  );
  assert.deepEqual(s5.entered, [9], 'entity 1 was in Joined already');
  assert.deepEqual(s5.left, []);
  assert.deepEqual(s5.custom, new Uint8Array([1, 2]));
  assert.ok(s5.frameBytes > FULL.length, `frameBytes ${s5.frameBytes}`);
  assert.equal(c.tick, 5);
  assert.equal(c.state, s5);

  // A listener that sends an input: the input carries the ack, no Ack follows.
  const off = c.on('state', () => c.sendInput(1, 0));
  n.delta(conn, { tick: 6, baselineTick: 5, entities: STEP, lastInputSeq: 0 });
  await eventually('tick 6 is acknowledged', () => conn.acks.length === 2);
  off();
  assert.deepEqual(conn.acks[1], { via: 'input', tick: 6 });
  const s6 = states[1];
  assert.deepEqual(
    s6.entities.map((e) => [e.id, e.x, e.y]),
    [
      [1, 501, 500],
      [12, 3, 0],
    ],
  );
  assert.deepEqual(s6.entered, [12]);
  assert.deepEqual(s6.left, [9]);
  assert.deepEqual(s6.custom, new Uint8Array([1, 2]), 'unchanged custom state');
  // An input with nothing left to acknowledge carries ack_tick 0.
  c.sendInput(0, 0);
  // A delta against the older tick 5 (the server had not seen the ack of 6 yet).
  n.delta(conn, { tick: 7, baselineTick: 5, entities: [0, 0] });
  await eventually('tick 7 is acknowledged', () => conn.acks.length === 3);
  assert.deepEqual(conn.acks[2], { via: 'ack', tick: 7 });
  assert.deepEqual(states[2].entered, [9], 'against tick 5 entity 9 is back, and 12 is not there');
  assert.deepEqual(states[2].left, [12]);
  assert.equal(conn.acks.length, 3, 'the input without a new tick acknowledged nothing');
});

test('version 1 on request: Hello says 1 and nothing is acknowledged', async () => {
  const n = await node('fake-v1');
  const c = client({ ...QUIET, protocolVersion: 1 });
  const conn = await seated(c, n, 'room');
  assert.equal(conn.version, 1);
  const state = waitForEvent(c, 'state');
  n.state(conn, 3n);
  const s = await state;
  assert.deepEqual([s.tick, s.baselineTick, s.entities, s.entered, s.left], [3, 0, [], [], [c.entityId]]);
  c.sendInput(1, 0);
  await eventually('the input arrived', () => conn.inputs === 1);
  assert.deepEqual(conn.acks, []);
  assert.throws(() => client({ protocolVersion: 3 as 1 }), RangeError);
});

test('game events become message events in order; send(kind, body) goes out as a Message within the limits', async () => {
  const n = await node('fake-msg');
  const c = client(QUIET);
  const conn = await seated(c, n, 'room');
  const events: ClientEvents['message'][] = [];
  c.on('message', (e) => events.push(e));
  n.delta(conn, { tick: 4, entities: FULL });
  n.gameEvent(conn, 4, 7, [1, 2, 3]);
  n.gameEvent(conn, 4, 65535, []);
  await eventually('two events', () => events.length === 2);
  assert.deepEqual(events, [
    { tick: 4, kind: 7, body: new Uint8Array([1, 2, 3]) },
    { tick: 4, kind: 65535, body: new Uint8Array(0) },
  ]);

  assert.equal(c.send(3, new Uint8Array([9, 8])), true);
  assert.equal(c.send(65535), true);
  const max = c.welcome!.limits.messageBytesMax;
  assert.equal(max, 64, 'the fake node says 64');
  assert.equal(c.send(1, new Uint8Array(max)), true);
  await eventually('three messages', () => conn.messages.length === 3);
  assert.deepEqual(conn.messages, [
    { kind: 3, body: [9, 8] },
    { kind: 65535, body: [] },
    { kind: 1, body: new Array(max).fill(0) },
  ]);
  assert.throws(() => c.send(1, new Uint8Array(max + 1)), /over limits.messageBytesMax/);
  assert.throws(() => c.send(65536), RangeError);
  assert.throws(() => c.send(-1), RangeError);
  assert.throws(() => c.send(1.5), RangeError);
  c.leave();
  assert.equal(c.send(1), false, 'not in an instance: not sent');
});

test('a delta against a baseline the client does not have: protocolError, a drop with 4901, and the resume brings a full state', async () => {
  const n = await node('fake-bad');
  const c = client({ ...QUIET, reconnect: FAST_RECONNECT });
  const conn = await seated(c, n, 'room');
  n.delta(conn, { tick: 5, entities: FULL });
  await eventually('tick 5 applied', () => c.tick === 5);

  const errors: string[] = [];
  c.on('protocolError', (e) => errors.push(e.message));
  const dropped = waitForEvent(c, 'disconnected');
  const reconnected = waitForEvent(c, 'reconnected');
  n.delta(conn, { tick: 8, baselineTick: 6, entities: [0, 0] });
  const d = await dropped;
  assert.deepEqual(errors.length, 1);
  assert.match(errors[0], /baseline tick 6 is not among the ticks kept: 5\.\.5/);
  assert.equal(d.code, CLOSE_BAD_DELTA);
  assert.equal(d.willReconnect, true);
  const r = await reconnected;
  assert.equal(r.resumed, true);
  const again = n.conns[n.conns.length - 1];
  assert.notEqual(again, conn);
  assert.equal(again.helloToken, conn.token, 'resumed with the token');

  // After Joined the client keeps nothing of the old connection: a delta
  // against tick 5 is refused too, and a full state is what it takes.
  const state = waitForEvent(c, 'state');
  n.delta(again, { tick: 20, entities: FULL });
  assert.equal((await state).tick, 20);
  await eventually('tick 20 acknowledged on the new connection', () => again.acks.some((a) => a.tick === 20));
  assert.deepEqual(conn.acks, [{ via: 'ack', tick: 5 }], 'nothing acknowledged for the bad delta');
});

test('a delta still in flight after leave() is ignored, not an error', async () => {
  const n = await node('fake-leave');
  const c = client(QUIET);
  const conn = await seated(c, n, 'room');
  n.delta(conn, { tick: 5, entities: FULL });
  await eventually('tick 5 applied', () => c.tick === 5);
  const errors: string[] = [];
  c.on('protocolError', (e) => errors.push(e.message));
  c.leave();
  n.delta(conn, { tick: 6, baselineTick: 5, entities: STEP });
  n.delta(conn, { tick: 7, baselineTick: 3, entities: [0, 0] });
  const rejoined = await c.join('room');
  assert.equal(rejoined.instanceId, 'room');
  n.delta(conn, { tick: 30, entities: FULL });
  await eventually('tick 30 applied', () => c.tick === 30);
  assert.deepEqual(errors, []);
  assert.equal(c.status, 'joined');
  assert.deepEqual(
    conn.acks.map((a) => a.tick),
    [5, 30],
  );
});
