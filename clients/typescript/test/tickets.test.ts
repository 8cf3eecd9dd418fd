// Join tickets (a server run with --join-secret): Hello carries the ticket
// the game's backend issued; a resume needs none (the token is the
// credential); a reconnect after the seat expired needs a fresh ticket.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, test } from 'node:test';

import { ErrorCode, ShardlineError, type ShardlineClient } from '../src/index.js';
import { newClient, shardlineBin, startServer, TcpProxy, waitForEvent, type Server } from './helpers.js';

const SECRET = 'sdk-test-secret';
const FAST_RECONNECT = { baseDelayMs: 50, maxDelayMs: 400, maxAttempts: 50 };

let server: Server;
const cleanup: (() => unknown)[] = [];

before(async () => {
  server = await startServer(['--join-secret', SECRET, '--reconnect-grace-ms', '200']);
});

after(async () => {
  for (const f of cleanup.reverse()) await f();
  await server.stop();
});

/** A ticket as a studio's backend would mint it (`shardline ticket issue`). */
function ticket(player: string, instance: string): string {
  return execFileSync(shardlineBin(), ['ticket', 'issue', '--secret', SECRET, '--player', player, '--instance', instance], {
    encoding: 'utf8',
    timeout: 10_000,
  }).trim();
}

function client(...args: Parameters<typeof newClient>): ShardlineClient {
  const c = newClient(...args);
  cleanup.push(() => c.close());
  return c;
}

async function proxy(): Promise<TcpProxy> {
  const p = await TcpProxy.start(server.port);
  cleanup.push(() => p.close());
  return p;
}

test('Hello without a ticket is refused; with one the player joins the instance it names', async () => {
  const refused = client();
  await refused.connect(server.url);
  const closed = waitForEvent(refused, 'closed');
  await assert.rejects(refused.hello('gatecrasher'), (e: unknown) => e instanceof ShardlineError && e.code === ErrorCode.TicketRequired);
  assert.equal((await closed).code, 1008);

  const c = client();
  await c.connect(server.url);
  await c.hello('invited', { ticket: ticket('p1', 'sdk-vip') });
  const j = await c.join(); // the ticket decides where
  assert.equal(j.instanceId, 'sdk-vip');
  await assert.rejects(c.join('sdk-elsewhere'), (e: unknown) => e instanceof ShardlineError && e.code === ErrorCode.TicketWrongInstance);
});

test('a resume needs no new ticket', async () => {
  const p = await proxy();
  const c = client({ reconnect: FAST_RECONNECT });
  await c.connect(p.url);
  const w = await c.hello('resumer', { ticket: ticket('p2', 'sdk-vip') });
  const j = await c.join('sdk-vip');
  const back = waitForEvent(c, 'reconnected');
  p.cut();
  const r = await back;
  assert.equal(r.resumed, true);
  assert.equal(r.welcome.playerId, w.playerId);
  assert.equal(r.joined?.entityId, j.entityId);
});

test('after the seat expired, a reconnect asks renewTicket for a fresh ticket; without one it ends', async () => {
  let renewals = 0;
  for (const withRenewal of [true, false]) {
    const p = await proxy();
    const c = client({
      reconnect: FAST_RECONNECT,
      renewTicket: withRenewal
        ? () => {
            renewals++;
            return ticket('p3', 'sdk-vip');
          }
        : undefined,
    });
    await c.connect(p.url);
    await c.hello('expiring', { ticket: ticket('p3', 'sdk-vip') });
    const j = await c.join();
    const watcher = client();
    await watcher.connect(server.url);
    await watcher.hello('watcher', { ticket: ticket('w', 'sdk-vip') });
    await watcher.join();
    const expired = waitForEvent(watcher, 'playerLeft', (l) => l.entityId === j.entityId);
    p.refusing = true;
    p.cut();
    await expired;
    p.refusing = false;
    if (withRenewal) {
      const r = await waitForEvent(c, 'reconnected');
      assert.equal(r.resumed, false);
      assert.equal(r.joined?.instanceId, 'sdk-vip');
      assert.equal(renewals, 1);
    } else {
      const e = await waitForEvent(c, 'closed');
      assert.equal(e.code, 1008);
      assert.match(e.reason, /TicketRequired/);
    }
    watcher.close();
  }
});
