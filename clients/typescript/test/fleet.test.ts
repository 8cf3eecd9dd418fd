// The SDK in a fleet: a real redis-server and three shardline nodes sharing
// it as their directory (two in region eu, one in us). Joining an instance
// that runs on the other node follows the server's Error(WrongNode) to the
// owner; `shardline fleet broadcast` reaches players as notices, by region;
// `shardline fleet move` sends a player a Transfer, and the client resumes
// its seat on the other node by itself.
// A machine without redis-server fails these tests, naming the package
// (bash scripts/test.sh installs it).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import { LeaveReason, type Notice, type ShardlineClient } from '../src/index.js';
import { newClient, shardlineBin, spawnTied, startRedis, startServer, waitForEvent, WAIT_MS_MAX, type Redis, type Server } from './helpers.js';

let redis: Redis | null = null;
let nodeA: Server | null = null;
let nodeB: Server | null = null;
let nodeC: Server | null = null;
let directory = '';
// Clients of the broadcast and move tests, closed even when a test fails.
const clients: ShardlineClient[] = [];

async function routeOwner(node: Server, instance: string): Promise<string | null> {
  const res = await fetch(`http://127.0.0.1:${node.port}/v1/route?instance=${instance}`);
  if (res.status !== 200) return null;
  return ((await res.json()) as { url: string }).url;
}

before(async () => {
  redis = await startRedis();
  // Replicas every heartbeat (the helper turns snapshot files off).
  directory = redis.url;
  // A TTL far above the heartbeat: a node that a loaded machine starves for
  // a second must not look dead (a take-over would move its games); the
  // take-over test stops its node gracefully, which hands over at once.
  const dir = ['--directory', directory, '--directory-heartbeat-ms', '200', '--directory-ttl-ms', '10000'];
  nodeA = await startServer([...dir, '--region', 'eu', '--node-id', 'sdk-a']);
  nodeB = await startServer([...dir, '--region', 'eu', '--node-id', 'sdk-b']);
  nodeC = await startServer([...dir, '--region', 'us', '--node-id', 'sdk-c']);
});

after(async () => {
  for (const c of clients) c.close();
  await nodeA?.stop();
  await nodeB?.stop();
  await nodeC?.stop();
  redis?.stop();
});

test('joining an instance that runs on another node follows the server to it', async () => {
  const a = nodeA as Server;
  const b = nodeB as Server;
  const owner = newClient();
  await owner.connect(a.url);
  await owner.hello('owner');
  await owner.join('fleet-room');
  let url: string | null = null;
  for (const deadline = Date.now() + 10_000; url === null && Date.now() < deadline; ) {
    url = await routeOwner(b, 'fleet-room');
    if (url === null) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(url, a.url, 'the directory names node A');

  const visitor = newClient();
  await visitor.connect(b.url);
  const first = await visitor.hello('visitor');
  assert.equal(first.nodeId, 'sdk-b');
  const joined = await visitor.join('fleet-room');
  assert.equal(joined.instanceId, 'fleet-room');
  assert.equal(visitor.welcome?.nodeId, 'sdk-a', 'now on the owner node');
  assert.ok(joined.entities.length >= 2, 'sees the owner player too');
  owner.close();
  visitor.close();
});

/** `shardline fleet --directory … ARGS`, bounded by WAIT_MS_MAX. */
function fleet(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnTied(shardlineBin(), ['fleet', '--directory', directory, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), WAIT_MS_MAX);
    child.on('close', (code) => {
      clearTimeout(kill);
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * Waits until every node's fleet subscriber listens (a broadcast published
 * before that reaches nobody): each node subscribes to its own channel,
 * `sl:to-node:ID`, last.
 */
async function fleetListening(nodeIds: string[]): Promise<void> {
  const channels = nodeIds.map((id) => `sl:to-node:${id}`);
  let counts: string[] = [];
  for (const deadline = Date.now() + WAIT_MS_MAX; Date.now() < deadline; ) {
    const r = spawnSync('redis-cli', ['-u', directory, 'PUBSUB', 'NUMSUB', ...channels], { encoding: 'utf8', timeout: WAIT_MS_MAX });
    // Lines: channel, count, channel, count, ...
    counts = (r.stdout ?? '').trim().split('\n').filter((_, i) => i % 2 === 1);
    if (counts.length === channels.length && counts.every((n) => n === '1')) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`fleet subscribers of ${nodeIds.join(', ')}: ${JSON.stringify(counts)}`);
}

/** The JSON line of `fleet move` (player ids are below 2^53: exact as JavaScript numbers). */
function moveOutcome(stdout: string): Record<string, string | number> {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, `no JSON outcome in: ${stdout}`);
  return JSON.parse(line) as Record<string, string | number>;
}

/** A client with every notice it gets. */
async function listener(node: Server, name: string, instance?: string): Promise<{ c: ShardlineClient; notices: Notice[] }> {
  const c = newClient();
  clients.push(c);
  const notices: Notice[] = [];
  c.on('notice', (n) => notices.push(n));
  await c.connect(node.url);
  await c.hello(name);
  if (instance) await c.join(instance);
  return { c, notices };
}

/** Resolves once `c` has a notice saying `message`. */
function noticeOf(c: ShardlineClient, message: string): Promise<Notice> {
  return waitForEvent(c, 'notice', (n) => n.message === message);
}

test('fleet broadcast reaches every player of the region, or of every region without --region', async () => {
  await fleetListening(['sdk-a', 'sdk-b', 'sdk-c']);
  const inEu = await listener(nodeA as Server, 'eu-player', 'notice-room');
  const alsoEu = await listener(nodeB as Server, 'eu-lobby'); // welcomed, in no instance
  const inUs = await listener(nodeC as Server, 'us-player', 'us-room');

  const sentFrom = BigInt(Date.now()) * 1000n;
  const euGot = [noticeOf(inEu.c, 'eu maintenance at 04:00'), noticeOf(alsoEu.c, 'eu maintenance at 04:00')];
  const eu = await fleet('broadcast', '--region', 'eu', 'eu maintenance at 04:00');
  assert.equal(eu.code, 0, `broadcast --region eu: ${eu.stdout}${eu.stderr}`);
  for (const n of await Promise.all(euGot)) {
    assert.equal(n.region, 'eu');
    assert.ok(n.sentAtUs >= sentFrom - 1_000_000n && n.sentAtUs <= BigInt(Date.now()) * 1000n + 1_000_000n, `sentAtUs ${n.sentAtUs} is about now`);
  }

  const allGot = [inEu, alsoEu, inUs].map((l) => noticeOf(l.c, 'hello, everyone'));
  const all = await fleet('broadcast', 'hello, everyone');
  assert.equal(all.code, 0, `broadcast: ${all.stdout}${all.stderr}`);
  for (const n of await Promise.all(allGot)) assert.equal(n.region, '', 'sent to every region');

  // The us player got the fleet-wide notice only; the eu players both, in order.
  assert.deepEqual(inUs.notices.map((n) => n.message), ['hello, everyone']);
  for (const l of [inEu, alsoEu]) assert.deepEqual(l.notices.map((n) => n.message), ['eu maintenance at 04:00', 'hello, everyone']);
  assert.equal(inEu.c.status, 'joined', 'a notice changes nothing else');
});

test('fleet move: the player gets a Transfer and resumes its seat in the instance on the other node', async () => {
  const a = nodeA as Server;
  const b = nodeB as Server;
  // move-from runs on A (its first player joined there), move-to on B.
  const [stayer, host, mover] = [newClient(), newClient(), newClient()];
  clients.push(stayer, host, mover);
  await stayer.connect(a.url);
  await stayer.hello('stayer');
  await stayer.join('move-from');
  await host.connect(b.url);
  await host.hello('host');
  const hostJoined = await host.join('move-to');
  for (const [asked, instance, owner] of [[b, 'move-from', a], [a, 'move-to', b]] as const) {
    let url: string | null = null;
    for (const deadline = Date.now() + WAIT_MS_MAX; url !== owner.url && Date.now() < deadline; ) {
      url = await routeOwner(asked, instance);
      if (url !== owner.url) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(url, owner.url, `the directory names the owner of ${instance}`);
  }

  const events: string[] = [];
  for (const name of ['transfer', 'disconnected', 'reconnecting', 'reconnected', 'closed'] as const) mover.on(name, () => events.push(name));
  await mover.connect(a.url);
  const welcome = await mover.hello('mover');
  const seen = waitForEvent(stayer, 'playerJoined', (p) => p.playerId === welcome.playerId);
  await mover.join('move-from');
  await seen;

  const transfer = waitForEvent(mover, 'transfer');
  const reconnected = waitForEvent(mover, 'reconnected');
  const left = waitForEvent(stayer, 'playerLeft', (p) => p.playerId === welcome.playerId);
  const arrived = waitForEvent(host, 'playerJoined', (p) => p.name === 'mover');
  const moved = await fleet('move', '--instance', 'move-from', '--player', String(welcome.playerId), '--to', 'move-to');
  assert.equal(moved.code, 0, `fleet move: ${moved.stdout}${moved.stderr}`);
  const out = moveOutcome(moved.stdout);
  assert.deepEqual(
    { player: out.player, from: out.from_node, to: out.to_node, url: out.url, instance: out.instance },
    { player: Number(welcome.playerId), from: 'sdk-a', to: 'sdk-b', url: b.url, instance: 'move-to' },
  );
  const newPlayer = BigInt(out.new_player); // the player's id on B

  assert.deepEqual(await transfer, { url: b.url, instanceId: 'move-to' });
  const r = await reconnected;
  assert.equal(r.resumed, true, 'the reserved seat, with the resume token');
  assert.equal(r.welcome.nodeId, 'sdk-b');
  assert.equal(r.welcome.playerId, newPlayer, 'the player B seated');
  assert.equal(r.joined?.instanceId, 'move-to');
  assert.ok(r.joined?.entities.some((e) => e.id === hostJoined.entityId), 'with the players already there');
  assert.deepEqual(events, ['transfer', 'reconnected'], 'no drop, no backoff');
  assert.equal(mover.url, b.url, 'the new node is the base URL now');
  assert.equal((await left).reason, LeaveReason.Moved, 'the players left behind see it moved');
  assert.equal((await arrived).playerId, newPlayer, 'the players there see it arrive');

  // It plays there: an input moves its entity, and the host sees it.
  const me = r.joined?.entityId as number;
  const seq = mover.sendInput(1, 0);
  assert.ok(seq !== null, 'inputs go out again');
  await waitForEvent(mover, 'state', (u) => u.lastInputSeq >= seq);
  await waitForEvent(host, 'state', (u) => u.entities.some((e) => e.id === me && e.vx > 0));

  // A move of a player nobody has fails, and says so.
  const none = await fleet('move', '--instance', 'move-from', '--player', '12345', '--to', 'move-to');
  // (The CLI exits 2 on every error, as `shardline` does.)
  assert.notEqual(none.code, 0, `fleet move of an unknown player: ${none.stdout}${none.stderr}`);
  assert.match(none.stderr, /no player 12345/);
});

test('when its node stops, the client finds the instance on the node that took it over and resumes', async () => {
  const a = nodeA as Server;
  const b = nodeB as Server;
  const player = newClient({ fleet: [b.url], reconnect: { baseDelayMs: 100, maxDelayMs: 500, maxAttempts: 60 } });
  await player.connect(a.url);
  const welcome = await player.hello('survivor');
  const joined = await player.join('failover-room');
  assert.equal(welcome.nodeId, 'sdk-a');
  // Let the game run for 30 ticks (about five replication periods), so the
  // directory holds a replica of the instance.
  await waitForEvent(player, 'state', (s) => s.tick >= joined.tick + 30);
  const reconnected = waitForEvent(player, 'reconnected', () => true, 30_000);
  await a.stop();
  const r = await reconnected;
  assert.equal(r.resumed, true, 'the seat came back with the token');
  assert.equal(r.welcome.nodeId, 'sdk-b', 'on the node that took the instance over');
  assert.equal(r.joined?.entityId, joined.entityId, 'its own entity');
  player.close();
});
