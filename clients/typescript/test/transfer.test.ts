// Fleet messages against fake nodes (test/fake-node.ts) that send them on
// cue: Notice, a body from a newer schema, and Transfer, after which the
// client goes to the other node at once, resumes its reserved seat there and
// keeps that node for later reconnects. Also: a refused or unreachable
// target, a chain of Transfers, a Transfer with an unusable URL. The same
// flow against real nodes is in fleet.test.ts.

import assert from 'node:assert/strict';
import { after, test } from 'node:test';

import type { ClientEvents, ShardlineClient } from '../src/index.js';
import { FakeNode, type FakeConn } from './fake-node.js';
import { newClient, recordingWebSocket, waitForEvent } from './helpers.js';

// The fakes send no StateUpdates and answer no pings: no liveness checks.
const QUIET = { pingIntervalMs: 0, deadAfterMs: 0 };
const FAST_RECONNECT = { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 20 };
// The client's bound on a chain of Transfers (MAX_REDIRECTS in src/client.ts).
const TRANSFERS_IN_A_ROW_MAX = 3;

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

/** Every event the client emits, in order, by name (`status:joined` for status). */
function record(c: ShardlineClient): string[] {
  const seen: string[] = [];
  const names: (keyof ClientEvents)[] = [
    'status', 'welcome', 'joined', 'notice', 'transfer', 'serverError', 'disconnected', 'reconnecting', 'reconnected', 'closed',
  ];
  for (const name of names) c.on(name, (p) => seen.push(name === 'status' ? `status:${String(p)}` : name));
  return seen;
}

/** A client joined to `instance` on `n`; returns its Welcome and the node's side of the connection. */
async function seated(c: ShardlineClient, n: FakeNode, instance: string) {
  await c.connect(n.url);
  const welcome = await c.hello('mover');
  await c.join(instance);
  return { welcome, conn: n.conns[n.conns.length - 1] as FakeConn };
}

test('Notice becomes a notice event; a body from a newer schema is skipped', async () => {
  const a = await node('fake-a');
  const c = client(QUIET);
  const { conn } = await seated(c, a, 'room-a');
  const events = record(c);
  const noticed = waitForEvent(c, 'notice');
  a.unknownBody(conn, 200);
  a.notice(conn, 'maintenance at 04:00 UTC', 'eu', 1_700_000_000_000_001n);
  assert.deepEqual(await noticed, { message: 'maintenance at 04:00 UTC', region: 'eu', sentAtUs: 1_700_000_000_000_001n });
  assert.deepEqual(events, ['notice'], 'nothing else happened: the unknown body was skipped');
  assert.equal(c.status, 'joined');
});

test('Transfer: the client goes to the new node at once, resumes its seat there and reconnects there later', async () => {
  const a = await node('fake-a');
  const b = await node('fake-b');
  const c = client({ ...QUIET, reconnect: FAST_RECONNECT });
  const { welcome, conn } = await seated(c, a, 'room-a');
  const events = record(c);
  const transfers: ClientEvents['transfer'][] = [];
  c.on('transfer', (t) => transfers.push(t));

  const seat = b.reserve(welcome.resumeToken, { playerId: welcome.playerId, instanceId: 'room-b' });
  const reconnected = waitForEvent(c, 'reconnected');
  a.transfer(conn, b.url, 'room-b');
  const r = await reconnected;

  assert.deepEqual(transfers, [{ url: b.url, instanceId: 'room-b' }]);
  assert.deepEqual(events, ['transfer', 'status:reconnecting', 'welcome', 'joined', 'status:joined', 'reconnected'], 'no drop, no backoff');
  assert.equal(r.resumed, true);
  assert.equal(r.welcome.nodeId, 'fake-b');
  assert.equal(r.welcome.playerId, welcome.playerId, 'the same player');
  assert.equal(r.joined?.instanceId, 'room-b');
  assert.equal(r.joined?.entityId, seat.entityId, 'the reserved seat');
  assert.equal(b.conns.length, 1);
  assert.equal(b.conns[0].path, '/play?instance=room-b', 'connected to the instance on the new node');
  assert.equal(b.conns[0].helloToken, welcome.resumeToken, 'with the same resume token');
  assert.equal(c.url, b.url, 'the new node is the base URL now');
  assert.equal(c.instanceId, 'room-b');
  assert.equal(c.status, 'joined');

  // A later drop reconnects to the new node, not the old one.
  const back = waitForEvent(c, 'reconnected');
  b.conns[0].ws.terminate();
  assert.equal((await back).resumed, true);
  assert.equal(b.conns.length, 2);
  assert.equal(b.conns[1].path, '/play?instance=room-b');
  assert.equal(a.conns.length, 1, 'never back to the old node');
});

test('Transfer to a node that refuses the token: Hello as a new player and join the target instance, as a reconnect does', async () => {
  const a = await node('fake-a');
  const b = await node('fake-b');
  const c = client({ ...QUIET, reconnect: FAST_RECONNECT });
  const { welcome, conn } = await seated(c, a, 'room-a');
  const reconnected = waitForEvent(c, 'reconnected');
  a.transfer(conn, b.url, 'room-b'); // no seat reserved on b: ResumeRefused
  const r = await reconnected;
  assert.equal(r.resumed, false);
  assert.notEqual(r.welcome.resumeToken, welcome.resumeToken, 'a new player');
  assert.equal(r.joined?.instanceId, 'room-b');
  assert.equal(b.conns.length, 1, 'on the same connection');
  assert.equal(b.conns[0].helloToken, null, 'the second Hello, without a token');
  assert.equal(c.url, b.url);
});

test('Transfer to a node that does not answer: a drop, with backoff reconnects to the new node, then closed', async () => {
  const a = await node('fake-a');
  const gone = await FakeNode.start('fake-gone');
  await gone.stop();
  const { WebSocket, sockets } = recordingWebSocket();
  const c = client({ ...QUIET, WebSocket, reconnect: { baseDelayMs: 10, maxDelayMs: 20, maxAttempts: 2 } });
  const { conn } = await seated(c, a, 'room-a');
  const events = record(c);
  const closed = waitForEvent(c, 'closed');
  a.transfer(conn, gone.url, 'room-b');
  const cl = await closed;
  assert.match(cl.reason, /gave up after 2 reconnect attempts/);
  assert.deepEqual(events, ['transfer', 'status:reconnecting', 'disconnected', 'reconnecting', 'reconnecting', 'status:closed', 'closed']);
  const tried = sockets.slice(1).map((s) => s.url);
  assert.deepEqual(tried, Array(3).fill(`${gone.url}/play?instance=room-b`), 'the transfer and both retries went to the new node');

  // Without reconnects, the failed transfer closes the client at once.
  const a2 = await node('fake-a2');
  const once = client({ ...QUIET, reconnect: false });
  const s2 = await seated(once, a2, 'room-a');
  const events2 = record(once);
  const closed2 = waitForEvent(once, 'closed');
  a2.transfer(s2.conn, gone.url, 'room-b');
  assert.match((await closed2).reason, /could not connect/);
  assert.deepEqual(events2, ['transfer', 'status:reconnecting', 'disconnected', 'status:closed', 'closed']);
});

test(`a chain of more than ${TRANSFERS_IN_A_ROW_MAX} Transfers with no StateUpdate between them closes the client`, async () => {
  const a = await node('fake-a');
  const b = await node('fake-b');
  // Each node passes a resumed player straight on to the other.
  const bounce = (from: FakeNode, to: FakeNode, withState: boolean) => (conn: FakeConn) => {
    if (conn.helloToken === null || !conn.seat) return;
    to.reserve(conn.token as string, { playerId: conn.playerId, instanceId: conn.seat.instanceId });
    if (withState) from.state(conn, 2n);
    from.transfer(conn, to.url, conn.seat.instanceId);
  };
  a.onSeated = bounce(a, b, false);
  b.onSeated = bounce(b, a, false);
  const c = client({ ...QUIET, reconnect: FAST_RECONNECT });
  const { welcome, conn } = await seated(c, a, 'ping-pong');
  let transfers = 0;
  c.on('transfer', () => transfers++);
  const closed = waitForEvent(c, 'closed');
  b.reserve(welcome.resumeToken, { playerId: welcome.playerId, instanceId: 'ping-pong' });
  a.transfer(conn, b.url, 'ping-pong');
  const cl = await closed;
  assert.match(cl.reason, new RegExp(`more than ${TRANSFERS_IN_A_ROW_MAX} Transfers in a row`));
  assert.equal(transfers, TRANSFERS_IN_A_ROW_MAX + 1);
  assert.equal(a.conns.length + b.conns.length, 1 + TRANSFERS_IN_A_ROW_MAX, 'followed exactly the allowed ones');

  // With the game running (a StateUpdate) between moves, there is no chain.
  const a2 = await node('fake-a2');
  const b2 = await node('fake-b2');
  const moves = 2 * TRANSFERS_IN_A_ROW_MAX;
  let left = moves;
  const bounceSome = (from: FakeNode, to: FakeNode) => {
    const next = bounce(from, to, true);
    return (conn: FakeConn) => {
      if (conn.helloToken !== null && left-- > 0) next(conn);
    };
  };
  a2.onSeated = bounceSome(a2, b2);
  b2.onSeated = bounceSome(b2, a2);
  const c2 = client({ ...QUIET, reconnect: FAST_RECONNECT });
  const s2 = await seated(c2, a2, 'relay');
  let transfers2 = 0;
  c2.on('transfer', () => transfers2++);
  const done = waitForEvent(c2, 'reconnected', () => transfers2 === moves + 1);
  b2.reserve(s2.welcome.resumeToken, { playerId: s2.welcome.playerId, instanceId: 'relay' });
  a2.transfer(s2.conn, b2.url, 'relay');
  const r = await done;
  assert.equal(r.resumed, true);
  assert.equal(c2.status, 'joined');
  assert.equal(transfers2, moves + 1);
});

test('a Transfer with an unusable URL is a protocol error (1002), not a move', async () => {
  const a = await node('fake-a');
  const c = client({ ...QUIET, reconnect: FAST_RECONNECT });
  const { conn } = await seated(c, a, 'room-a');
  const events = record(c);
  const closed = waitForEvent(c, 'closed');
  a.transfer(conn, 'ftp://elsewhere', 'room-b');
  assert.equal((await closed).code, 1002);
  assert.deepEqual(events, ['disconnected', 'status:closed', 'closed']);
  assert.equal(a.conns.length, 1, 'no reconnect');
});
