// The SDK in a fleet: a real redis-server and two shardline nodes sharing it
// as their directory. Joining an instance that runs on the other node
// follows the server's Error(WrongNode) to the owner.
// Skipped when redis-server is not installed (CI installs it).

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { after, before, test } from 'node:test';

import { newClient, startServer, waitForEvent, type Server } from './helpers.js';

const haveRedis = spawnSync('redis-server', ['--version']).status === 0;

let redis: ChildProcess | null = null;
let nodeA: Server | null = null;
let nodeB: Server | null = null;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

async function routeOwner(node: Server, instance: string): Promise<string | null> {
  const res = await fetch(`http://127.0.0.1:${node.port}/v1/route?instance=${instance}`);
  if (res.status !== 200) return null;
  return ((await res.json()) as { url: string }).url;
}

before(async () => {
  if (!haveRedis) return;
  const port = await freePort();
  redis = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  let up = false;
  for (const deadline = Date.now() + 10_000; !up && Date.now() < deadline; ) {
    up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => (s.end(), resolve(true)));
      s.on('error', () => resolve(false));
    });
    if (!up) await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(up, 'redis-server did not start');
  // Replicas every heartbeat (the helper turns snapshot files off).
  const dir = ['--directory', `redis://127.0.0.1:${port}`, '--region', 'eu', '--directory-heartbeat-ms', '200', '--directory-ttl-ms', '1000'];
  nodeA = await startServer([...dir, '--node-id', 'sdk-a']);
  nodeB = await startServer([...dir, '--node-id', 'sdk-b']);
});

after(async () => {
  await nodeA?.stop();
  await nodeB?.stop();
  redis?.kill('SIGKILL');
});

test('joining an instance that runs on another node follows the server to it', { skip: !haveRedis && 'redis-server not installed' }, async () => {
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

test('when its node stops, the client finds the instance on the node that took it over and resumes', { skip: !haveRedis && 'redis-server not installed' }, async () => {
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
