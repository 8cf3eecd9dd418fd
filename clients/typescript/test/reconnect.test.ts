// Reconnecting against a real server: the server drops a client that stopped
// answering its heartbeat, the network resets or goes silent, the seat
// expires, another connection takes the seat. Each time the client either
// resumes with its token (Welcome.resumed, same player and entity) or says
// clearly why it will not.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import WebSocket from 'ws';

import {
  CLOSE_NO_TRAFFIC,
  Encoder,
  LeaveReason,
  playUrl,
  type ShardlineClient,
  type WebSocketConstructor,
} from '../src/index.js';
import { newClient, startServer, TcpProxy, waitForEvent, type Server } from './helpers.js';

// Server heartbeat, ms: a client silent for two intervals is dropped (4001).
const HEARTBEAT_MS = 300;
const FAST_RECONNECT = { baseDelayMs: 50, maxDelayMs: 400, maxAttempts: 50 };

let server: Server;
const cleanup: (() => unknown)[] = [];

before(async () => {
  server = await startServer(['--heartbeat-ms', String(HEARTBEAT_MS)]);
});

after(async () => {
  for (const f of cleanup.reverse()) await f();
  await server.stop();
});

function client(...args: Parameters<typeof newClient>): ShardlineClient {
  const c = newClient(...args);
  cleanup.push(() => c.close());
  return c;
}

async function proxy(target = server): Promise<TcpProxy> {
  const p = await TcpProxy.start(target.port);
  cleanup.push(() => p.close());
  return p;
}

/** Joins `instance` and moves right until the world has applied it. */
async function joinAndMove(c: ShardlineClient, url: string, name: string, instance: string) {
  await c.connect(url);
  const welcome = await c.hello(name);
  const joined = await c.join(instance);
  const seq = c.sendInput(1, 0)!;
  await waitForEvent(c, 'state', (u) => u.lastInputSeq >= seq);
  return { welcome, joined };
}

/** After a reconnect: a new input is applied to the same entity. */
async function stillControls(c: ShardlineClient, entityId: number) {
  const seq = c.sendInput(-1, 0);
  assert.ok(seq !== null, 'inputs are sent again after the reconnect');
  const u = await waitForEvent(c, 'state', (s) => s.lastInputSeq >= seq);
  const me = u.entities.find((e) => e.id === entityId);
  assert.ok(me && me.vx < 0, `entity ${entityId} moves left: ${JSON.stringify(me)}`);
}

test('the server drops a client that stops answering; it resumes with its token and gets its entity back', async () => {
  // The first connection does not answer the server's WebSocket pings, and
  // once the player moves it sends nothing more either (a frozen tab: no
  // acknowledgements of protocol version 2, which would keep it alive); the
  // connections after it behave.
  const sockets: WebSocket[] = [];
  let frozen = false;
  class FirstIsDeaf extends WebSocket {
    private readonly first: boolean;
    constructor(url: string) {
      super(url, { autoPong: sockets.length > 0 });
      this.first = sockets.length === 0;
      sockets.push(this);
    }
    override send(data: Uint8Array): void {
      if (!(this.first && frozen)) super.send(data);
    }
  }
  const c = client({
    WebSocket: FirstIsDeaf as unknown as WebSocketConstructor,
    pingIntervalMs: 0,
    reconnect: FAST_RECONNECT,
  });
  const { welcome, joined } = await joinAndMove(c, server.url, 'deaf', 'sdk-resume-heartbeat');
  frozen = true;

  const dropped = await waitForEvent(c, 'disconnected');
  assert.deepEqual(dropped, { code: 4001, reason: dropped.reason, willReconnect: true });
  assert.equal(c.status, 'reconnecting');
  assert.equal(c.sendInput(1, 0), null, 'no input while reconnecting');

  const back = await waitForEvent(c, 'reconnected');
  assert.equal(back.resumed, true);
  assert.equal(back.welcome.resumed, true);
  assert.equal(back.welcome.playerId, welcome.playerId);
  assert.equal(back.joined?.instanceId, 'sdk-resume-heartbeat');
  assert.equal(back.joined?.entityId, joined.entityId);
  const me = back.joined!.entities.find((e) => e.id === joined.entityId)!;
  const start = joined.entities.find((e) => e.id === joined.entityId)!;
  assert.ok(me.x > start.x, 'the entity kept its state (it moved right before and during the drop)');
  assert.equal(c.status, 'joined');
  assert.equal(sockets.length, 2);
  await stillControls(c, joined.entityId);
});

test('a connection reset under the client: it reconnects with backoff and resumes', async () => {
  const p = await proxy();
  const c = client({ reconnect: FAST_RECONNECT });
  const { welcome, joined } = await joinAndMove(c, p.url, 'reset', 'sdk-resume-reset');
  const attempts: number[] = [];
  c.on('reconnecting', (r) => attempts.push(r.attempt));
  const dropped = waitForEvent(c, 'disconnected');
  const back = waitForEvent(c, 'reconnected');
  p.cut();
  assert.equal((await dropped).willReconnect, true);
  const r = await back;
  assert.equal(r.resumed, true);
  assert.equal(r.welcome.playerId, welcome.playerId);
  assert.equal(r.joined?.entityId, joined.entityId);
  assert.deepEqual(attempts, [1]);
  assert.equal(p.accepted, 2);
  await stillControls(c, joined.entityId);
});

test('a connection that goes silent is given up after deadAfterMs; the resume takes the seat from it', async () => {
  const p = await proxy();
  const c = client({ reconnect: FAST_RECONNECT, pingIntervalMs: 0, deadAfterMs: 500 });
  const { welcome, joined } = await joinAndMove(c, p.url, 'silent', 'sdk-resume-silent');
  const dropped = waitForEvent(c, 'disconnected');
  const back = waitForEvent(c, 'reconnected');
  p.stall(); // the old connection stays open on both ends but carries nothing
  const d = await dropped;
  assert.equal(d.code, CLOSE_NO_TRAFFIC);
  assert.match(d.reason, /no message from the server/);
  const r = await back;
  assert.equal(r.resumed, true);
  assert.equal(r.welcome.playerId, welcome.playerId);
  assert.equal(r.joined?.entityId, joined.entityId);
  await stillControls(c, joined.entityId);
});

test('when the seat has expired, the client comes back as a new player in the same instance', async () => {
  const shortGrace = await startServer(['--reconnect-grace-ms', '200']);
  cleanup.push(() => shortGrace.stop());
  const p = await proxy(shortGrace);
  const c = client({ reconnect: FAST_RECONNECT });
  const { welcome, joined } = await joinAndMove(c, p.url, 'late', 'sdk-grace');
  const watcher = client();
  await watcher.connect(shortGrace.url);
  await watcher.hello('watcher');
  await watcher.join('sdk-grace');

  const expired = waitForEvent(watcher, 'playerLeft', (l) => l.entityId === joined.entityId && l.reason === LeaveReason.TimedOut);
  p.refusing = true;
  p.cut();
  await expired; // the server gave the seat up
  const back = waitForEvent(c, 'reconnected');
  const rejoined = waitForEvent(watcher, 'playerJoined', (j) => j.name === 'late');
  p.refusing = false;
  const r = await back;
  assert.equal(r.resumed, false);
  assert.notEqual(r.welcome.playerId, welcome.playerId);
  assert.equal(r.joined?.instanceId, 'sdk-grace');
  assert.equal((await rejoined).entityId, r.joined?.entityId);
  assert.equal(c.status, 'joined');
  await stillControls(c, r.joined!.entityId);
});

test('another connection resuming the seat closes this one with 4003, and it does not fight back', async () => {
  const c = client({ reconnect: FAST_RECONNECT });
  const { welcome } = await joinAndMove(c, server.url, 'victim', 'sdk-replaced');
  const closed = waitForEvent(c, 'closed');
  const dropped = waitForEvent(c, 'disconnected');
  const thief = new WebSocket(playUrl(server.url, 'sdk-replaced'));
  cleanup.push(() => thief.terminate());
  thief.on('open', () => thief.send(new Encoder().hello('thief', welcome.resumeToken)));
  assert.deepEqual(await dropped, { code: 4003, reason: (await dropped).reason, willReconnect: false });
  assert.equal((await closed).code, 4003);
  assert.equal(c.status, 'closed');
});

test('reconnecting gives up after maxAttempts and says so', async () => {
  const p = await proxy();
  const c = client({ reconnect: { baseDelayMs: 10, maxDelayMs: 40, maxAttempts: 3 } });
  await joinAndMove(c, p.url, 'stranded', 'sdk-give-up');
  const attempts: number[] = [];
  c.on('reconnecting', (r) => attempts.push(r.attempt));
  const closed = waitForEvent(c, 'closed');
  p.refusing = true;
  p.cut();
  const e = await closed;
  assert.match(e.reason, /gave up after 3 reconnect attempts/);
  assert.deepEqual(attempts, [1, 2, 3]);
  assert.equal(c.status, 'closed');
});
