// End-to-end browser tests: Debian's Chromium, headless, driven by
// playwright-core, against a real shardline binary that serves the pages
// itself (GET / on the game listener, GET /dashboard on the admin listener).
//
//   SHARDLINE_BIN=target/release/shardline node tests/browser/e2e.mjs
//
// - two demo pages join the same instance; holding ArrowRight in page A
//   moves A's entity, and page B sees it move; both speak protocol version
//   2 (the SDK rebuilds the world from deltas it acknowledged);
// - the ops dashboard, after traffic on every shard (the two pages above
//   and a third), plots non-empty latency percentile curves for every shard
//   and for the merged histograms, and its live view shows the instance;
//   then these four pages close;
// - a version 1 page (?protocol=1) and a version 2 page in one instance
//   show the same world, within the quantization of version 2 (1/128 of a
//   unit), and each shows its bytes per update;
// - a demo page whose server drops its connections tries five times, then
//   says it could not join;
// - screenshots go to target/browser-screenshots/{demo-a,demo-b,dashboard}.png;
// - in a fleet (a redis-server and two nodes; a machine without redis-server
//   fails the test, naming the package),
//   `shardline fleet broadcast` shows in the demo page, and after `shardline
//   fleet move` the page plays on the other node, and node A's dashboard lists the fleet (screenshots fleet-move.png, fleet-dashboard.png).
//
// Every test closes its pages on every path (pages that draw every frame
// beside two CPU hogs starve the next test's pages). Every wait is bounded.
// CHROMIUM_PATH overrides /usr/bin/chromium; SCREENSHOT_DIR overrides
// target/browser-screenshots. Every process started here (servers,
// redis-server, Chromium) dies with this one, even when it is killed: on
// Linux each runs with the kernel's parent-death signal (util-linux
// `setpriv --pdeathsig KILL`).
//
// Chromium is started here, in this process's session and process group,
// and playwright connects to it over the DevTools protocol. playwright's
// own launch puts the browser in a session of its own, and with the
// kernel's autogroup scheduling (Linux's default) a new session beside a
// busy one starved: on the 2-core test machine, beside two `yes` started
// from the test's shell, a busy loop in a new session got 1 % of a core
// and one in the test's session 46 %; Chromium's pages stopped answering
// for tens of seconds.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { after, afterEach, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.SHARDLINE_BIN || resolve(REPO, 'target/release/shardline');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SETPRIV = process.platform === 'linux' && spawnSync('setpriv', ['--version']).status === 0;
const SHOTS = process.env.SCREENSHOT_DIR || resolve(REPO, 'target/browser-screenshots');
// Chromium's throw-away profiles, one per run (removed at its end, or by
// the next run when it was killed).
const PROFILES = resolve(REPO, 'target/chromium-profiles');
const SHARDS = 2;
// Bound on every single wait, ms: generous, because beside two CPU hogs on
// a 2-core machine a page's first join took over 15 s, and a fleet node's
// first page load over 30 s (Chromium's processes share two cores with the
// hogs and both shards).
const WAIT_MS = 60_000;
// Bound on Chromium's start: a cold start beside two CPU hogs and a build
// took over 15 s once (it reads ~200 MB and starts several processes).
const LAUNCH_MS = 60_000;
// Chromium's switches: headless, no GPU, nothing in the background, and no
// throttling of pages playwright does not show (the switches playwright's
// own launch would add that matter here).
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--no-first-run',
  '--no-default-browser-check',
  '--disable-background-networking',
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-sync',
  '--mute-audio',
  '--remote-debugging-port=0',
];
// How long page A holds ArrowRight, ms, at least (the arena moves a disc
// 200 units per second of ticks)...
const HOLD_MS = 1000;
// ...and until A's entity has moved this far right, arena units.
const MOVED_MIN = 100;

// Every server this file started, with the tail of its output, for the
// message of a failure.
const servers = [];
const LOG_TAIL_BYTES = 16_384;

let server;
let browser;
let chromiumProcess;
// Chromium's throw-away profile directory.
let profile;
const pageErrors = [];
// Requests a page aborted itself (see openPage).
const pageAborts = [];

before(async () => {
  assert.ok(existsSync(BIN), `no shardline binary at ${BIN}: cargo build --release, or set SHARDLINE_BIN`);
  assert.ok(
    existsSync(CHROMIUM),
    `no Chromium at ${CHROMIUM}: install Debian's package (apt-get install -y chromium) or set CHROMIUM_PATH`,
  );
  mkdirSync(SHOTS, { recursive: true });
  server = await startServer();
  profile = freshProfile();
  const endpoint = await startChromium(profile);
  browser = await chromium.connectOverCDP(endpoint, { timeout: LAUNCH_MS });
});

// Pages open now. After each test, pass or fail, they are closed, except
// those the test handed to the next one.
const openPages = new Set();
let handedOver = new Set();
afterEach(async () => {
  const keep = handedOver;
  handedOver = new Set();
  for (const p of [...openPages]) if (!keep.has(p)) await p.close().catch(() => {});
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopChild(chromiumProcess);
  await server?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/**
 * A new Chromium profile directory under PROFILES, named after this
 * process; those of runs that are gone (killed: no cleanup ran) are
 * removed first.
 */
function freshProfile() {
  mkdirSync(PROFILES, { recursive: true });
  for (const name of readdirSync(PROFILES)) {
    const pid = Number.parseInt(name, 10);
    let alive = false;
    try {
      process.kill(pid, 0);
      alive = true;
    } catch {
      // ESRCH: that run is gone.
    }
    if (!alive) rmSync(join(PROFILES, name), { recursive: true, force: true });
  }
  return mkdtempSync(join(PROFILES, `${process.pid}-`));
}

/**
 * Starts Chromium (tied to this process, see the top of this file) with a
 * throw-away profile, and resolves with its DevTools WebSocket URL.
 */
function startChromium(dir) {
  const child = spawnTied(CHROMIUM, [...CHROMIUM_ARGS, `--user-data-dir=${dir}`, 'about:blank'], { stdio: ['ignore', 'ignore', 'pipe'] });
  chromiumProcess = child;
  return new Promise((resolvePromise, reject) => {
    let err = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`Chromium did not open its DevTools port within ${LAUNCH_MS} ms:\n${err.slice(-LOG_TAIL_BYTES)}`));
    }, LAUNCH_MS);
    child.stderr.on('data', (chunk) => {
      err = (err + chunk.toString()).slice(-4 * LOG_TAIL_BYTES);
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolvePromise(m[1]);
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`Chromium exited (${code ?? signal}) before opening its DevTools port:\n${err.slice(-LOG_TAIL_BYTES)}`));
    });
  });
}

async function openPage(url, viewport = { width: 820, height: 1000 }) {
  const page = await browser.newPage({ viewport });
  openPages.add(page);
  page.on('close', () => openPages.delete(page));
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (e) => pageErrors.push(`${url}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${url}: console: ${m.text()}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) pageErrors.push(`${url}: GET ${r.url()}: HTTP ${r.status()}`);
  });
  // Requests not finished yet, so a load that does not come names what it
  // waits for.
  const pending = new Map();
  const started = Date.now();
  page.on('request', (r) => pending.set(r, Date.now() - started));
  page.on('requestfinished', (r) => pending.delete(r));
  page.on('requestfailed', (r) => {
    pending.delete(r);
    const what = `${url}: ${r.url()}: failed ${Date.now() - started} ms after the page opened: ${r.failure()?.errorText}`;
    // An abort is the page's own doing: the dashboard gives up on a fetch
    // after 5 s (beside two CPU hogs /stats once took longer), says so and
    // tries again. Kept for a failure's message, not an error.
    if (r.failure()?.errorText === 'net::ERR_ABORTED') pageAborts.push(what);
    else pageErrors.push(what);
  });
  let res;
  try {
    res = await page.goto(url, { waitUntil: 'load' });
  } catch (e) {
    const waiting = [...pending].map(([r, at]) => `${r.url()} (requested at ${at} ms)`);
    e.message += `\nrequests still pending: ${JSON.stringify(waiting)}\npage errors: ${JSON.stringify(pageErrors)}\n${serverLogs()}`;
    throw e;
  }
  assert.equal(res.status(), 200, `GET ${url}`);
  return page;
}

/**
 * Runs `check`; when it throws, adds what the pages and the server saw, so
 * a failure in CI says why (a reconnect, inputs not applied, a shard late).
 */
async function explained(pages, check) {
  try {
    return await check();
  } catch (e) {
    const seen = await Promise.all(
      pages.map((p) => p.evaluate(() => JSON.stringify({ url: location.href, view: window.__shardline, dash: window.__dashboard })).catch((x) => String(x))),
    );
    // Every server's shards (the fleet test runs three).
    const stats = await Promise.all(
      servers
        .filter((s) => s.admin && !s.stopped)
        .map((s) =>
          fetch(`${s.admin}/stats`, { signal: AbortSignal.timeout(WAIT_MS) })
            .then((r) => r.json())
            .then((st) => st.shards.map((x) => ({ shard: x.shard, closed: x.closed, counters: x.counters, tick_rate: x.tick_rate_measured })))
            .catch((x) => String(x))
            .then((shards) => `server ${s.name} shards: ${JSON.stringify(shards)}`),
        ),
    );
    e.message += `\npages: ${seen.join('\n')}\n${stats.join('\n')}\npage errors: ${JSON.stringify(pageErrors)}\nrequests pages aborted: ${JSON.stringify(pageAborts)}\n${serverLogs()}`;
    throw e;
  }
}

// A screenshot waits for the page's next frame; beside two CPU hogs and a
// build Chromium once took over 60 s to paint one, so a screenshot gets
// twice the bound of other waits.
const SHOT_MS = 2 * WAIT_MS;
const shot = (page, path, opts = {}) => page.screenshot({ path, timeout: SHOT_MS, ...opts });

const joinedIn = async (page) => {
  await explained([page], () =>
    page.waitForFunction(() => window.__shardline?.status === 'joined' && window.__shardline.entities.length > 0, null, { timeout: WAIT_MS }),
  );
  // The demo tries a failed first connection again (a busy machine); say so.
  const attempts = await page.evaluate(() => window.__shardline.startAttempts);
  if (attempts > 1) console.log(`${page.url()}: joined at connection attempt ${attempts}`);
};

const entityX = (page, id) => page.evaluate((id) => window.__shardline.entities.find((e) => e.id === id)?.x ?? null, id);

test('two browser pages join the same instance; a key pressed in one moves its entity in the other', async () => {
  const a = await openPage(`${server.game}/?instance=e2e&name=alice`);
  await joinedIn(a);
  const b = await openPage(`${server.game}/?instance=e2e&name=bob`);
  await joinedIn(b);
  const idA = await a.evaluate(() => window.__shardline.myEntity);
  const idB = await b.evaluate(() => window.__shardline.myEntity);
  assert.notEqual(idA, idB);
  assert.equal(await a.evaluate(() => window.__shardline.instanceId), 'e2e');
  assert.equal(await b.evaluate(() => window.__shardline.instanceId), 'e2e');
  // Each page sees both entities.
  for (const p of [a, b]) {
    await p.waitForFunction(([x, y]) => [x, y].every((id) => window.__shardline.entities.some((e) => e.id === id)), [idA, idB]);
  }
  const before = await entityX(b, idA);
  const bBefore = await entityX(b, idB);

  // Hold ArrowRight for about a second, and in any case until A's own view
  // shows its entity MOVED_MIN to the right: the world moves in ticks, and a
  // starved machine ticks slower than the wall clock.
  const movedRight = ([id, x0, d]) => (window.__shardline.entities.find((e) => e.id === id)?.x ?? -1) >= x0 + d;
  await a.keyboard.down('ArrowRight');
  await explained([a, b], () =>
    Promise.all([a.waitForTimeout(HOLD_MS), a.waitForFunction(movedRight, [idA, before, MOVED_MIN])]),
  );
  await a.keyboard.up('ArrowRight');

  // B sees A's entity as far right (the same world), and its own entity where it was.
  await explained([a, b], () => b.waitForFunction(movedRight, [idA, before, MOVED_MIN]));
  const after = await entityX(b, idA);
  assert.ok(after >= before + MOVED_MIN, `A's entity as B sees it: x ${before} → ${after}`);
  assert.ok(Math.abs((await entityX(b, idB)) - bBefore) < 1, "B's own entity did not move");
  // A's RTT and the server tick are shown.
  await a.waitForFunction(() => window.__shardline.rtt !== null && window.__shardline.tick > 0);
  const hud = await a.evaluate(() => ({ rtt: document.getElementById('rtt').textContent, tick: document.getElementById('tick').textContent }));
  assert.match(hud.rtt, /^\d+\.\d$/);
  assert.match(hud.tick, /^\d+$/);

  // Both pages spoke version 2 and rebuilt the world from deltas against
  // ticks they acknowledged, without a protocol error.
  for (const p of [a, b]) {
    const v = await p.evaluate(() => ({ protocol: window.__shardline.protocol, deltas: window.__shardline.deltas, errors: window.__shardline.protocolErrors }));
    assert.equal(v.protocol, 2);
    assert.ok(v.deltas > 0, `deltas applied: ${v.deltas}`);
    assert.deepEqual(v.errors, []);
    assert.match(await p.evaluate(() => document.getElementById('bytes').textContent), /^\d+$/);
  }

  await shot(a, `${SHOTS}/demo-a.png`);
  await shot(b, `${SHOTS}/demo-b.png`);
  // The dashboard test, next, needs their traffic.
  server.demoPages = [a, b];
  handedOver = new Set([a, b]);
});

test('the dashboard plots non-empty latency percentiles for every shard after traffic', async () => {
  // Traffic on the other shard too: a third page in an instance that shard owns.
  const home = (await getJson(`${server.admin}/instances/e2e`)).shard;
  const otherId = Array.from({ length: 64 }, (_, i) => `e2e-${i}`).find((id) => shardFor(id, SHARDS) !== home);
  const c = await openPage(`${server.game}/?instance=${otherId}&name=carol`);
  await joinedIn(c);
  const otherShard = (await getJson(`${server.admin}/instances/${otherId}`)).shard;
  assert.notEqual(otherShard, home, `instance ${otherId} should live on the other shard`);
  await c.keyboard.down('ArrowDown');
  await c.waitForFunction(() => window.__shardline.entities.some((e) => e.id === window.__shardline.myEntity && e.vy > 0));
  await c.keyboard.up('ArrowDown');

  const dash = await openPage(`${server.admin}/dashboard`, { width: 1400, height: 1100 });
  const keys = [...Array.from({ length: SHARDS }, (_, i) => String(i)), 'all'];
  const names = ['tick_duration', 'input_to_update', 'rtt'];
  // Histograms are fetched every 2 s and the server pings every second (RTT).
  await explained([dash, ...(server.demoPages ?? []), c], () =>
    dash.waitForFunction(
      ([keys, names]) => {
        const d = window.__dashboard;
        return d && d.samples >= 3 && keys.every((k) => names.every((n) => (d.plottedBy[k]?.[n] ?? 0) > 0));
      },
      [keys, names],
      { timeout: WAIT_MS * 2 },
    ),
  );
  const plotted = await dash.evaluate(() => window.__dashboard.plotted);
  for (const k of keys) assert.ok(plotted[k] > 0, `shard ${k} plotted ${plotted[k]} points`);
  console.log(`dashboard plotted points per shard: ${JSON.stringify(plotted)}`);

  // The canvases really hold drawn pixels, not only numbers.
  const inked = await dash.evaluate((names) =>
    names.map((n) => {
      const cv = document.getElementById(`pct-${n}`);
      const px = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
      let lit = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) lit++;
      return lit;
    }),
  names);
  for (const [i, lit] of inked.entries()) assert.ok(lit > 1000, `${names[i]} canvas: ${lit} pixels drawn`);

  // The instance list links to a live view of the instance.
  await dash.waitForSelector(`#instances a[href="#instance=e2e"]`);
  await dash.click(`#instances a[href="#instance=e2e"]`);
  await dash.waitForFunction(() => document.querySelectorAll('#live-seats tbody tr').length === 2);
  const seatNames = await dash.$$eval('#live-seats tbody tr td:first-child', (tds) => tds.map((t) => t.textContent).sort());
  assert.deepEqual(seatNames, ['alice', 'bob']);

  await shot(dash, `${SHOTS}/dashboard.png`, { fullPage: true });
  assert.deepEqual(pageErrors, [], 'no script errors in any page');
  console.log(`screenshots: ${SHOTS}/{demo-a,demo-b,dashboard}.png`);
});

test('a version 1 page and a version 2 page in one instance show the same world, within 1/128 of a unit', async () => {
  const v1 = await openPage(`${server.game}/?instance=e2e-versions&name=uno&protocol=1`);
  await joinedIn(v1);
  const v2 = await openPage(`${server.game}/?instance=e2e-versions&name=dos`);
  await joinedIn(v2);
  assert.equal(await v1.evaluate(() => window.__shardline.protocol), 1);
  assert.equal(await v2.evaluate(() => window.__shardline.protocol), 2);
  const id2 = await v2.evaluate(() => window.__shardline.myEntity);
  const x0 = await entityX(v2, id2);

  // The version 2 player moves right, then stops; both pages then hold a
  // still world, which must be the same one.
  await v2.keyboard.down('ArrowRight');
  await explained([v1, v2], () => v2.waitForFunction(([id, x]) => (window.__shardline.entities.find((e) => e.id === id)?.x ?? -1) >= x, [id2, x0 + MOVED_MIN / 2]));
  await v2.keyboard.up('ArrowRight');
  // A page's world once the mover has stopped there: {tick, entities}.
  const still = (page) =>
    explained([v1, v2], async () =>
      (
        await page.waitForFunction((id) => {
          const v = window.__shardline;
          const me = v.entities.find((e) => e.id === id);
          return me && me.vx === 0 && me.vy === 0 && v.entities.length === 2 ? { tick: v.tick, entities: v.entities } : null;
        }, id2)
      ).jsonValue(),
    );
  const [w1, w2] = [await still(v1), await still(v2)];
  const byId = (w) => Object.fromEntries(w.entities.map((e) => [e.id, e]));
  const e1 = byId(w1);
  const e2 = byId(w2);
  assert.deepEqual(Object.keys(e2).sort(), Object.keys(e1).sort(), 'the same entities');
  for (const id of Object.keys(e1)) {
    for (const k of ['x', 'y', 'vx', 'vy']) {
      assert.ok(Math.abs(e1[id][k] - e2[id][k]) <= 1 / 128, `entity ${id} ${k}: ${e1[id][k]} (v1, tick ${w1.tick}) vs ${e2[id][k]} (v2, tick ${w2.tick})`);
    }
  }
  assert.ok(e2[id2].x >= x0 + MOVED_MIN / 2);
  // A still world is not drawn again: over a second of updates that
  // change nothing, the page draws at most a frame or two (the end of a
  // glide; a reconnect's Joined), not one per update or per display frame.
  const framesBefore = await v1.evaluate(() => window.__shardline.frames);
  const ticksBefore = await v1.evaluate(() => window.__shardline.tick);
  await v1.waitForTimeout(1000);
  const [framesAfter, ticksAfter] = await v1.evaluate(() => [window.__shardline.frames, window.__shardline.tick]);
  assert.ok(framesAfter - framesBefore <= 2, `a still world drawn ${framesAfter - framesBefore} times in 1 s (${ticksAfter - ticksBefore} updates)`);
  const bytes = await Promise.all([v1, v2].map((p) => p.evaluate(() => ({ shown: document.getElementById('bytes').textContent, deltas: window.__shardline.deltas, errors: window.__shardline.protocolErrors }))));
  assert.match(bytes[0].shown, /^\d+$/);
  assert.match(bytes[1].shown, /^\d+$/);
  assert.equal(bytes[0].deltas, 0, 'version 1 gets no deltas');
  assert.ok(bytes[1].deltas > 0);
  assert.deepEqual(bytes[1].errors, []);
  console.log(`bytes per update, two players: version 1 ${bytes[0].shown}, version 2 ${bytes[1].shown}`);
  await shot(v2, `${SHOTS}/demo-v2.png`);
});

test('a demo page whose server drops every connection tries five times, then says it could not join', async () => {
  // A listener that accepts and at once drops every connection (the page
  // sees 1006, as from a server too busy to upgrade).
  let connections = 0;
  const dropper = net.createServer((sock) => {
    connections++;
    sock.destroy();
  });
  await new Promise((ok) => dropper.listen(0, '127.0.0.1', ok));
  try {
    const page = await openPage(`${server.game}/?instance=unreachable&server=ws://127.0.0.1:${dropper.address().port}`);
    // Four waits between five attempts: 0.5 + 1 + 2 + 4 s.
    await explained([page], () => page.waitForFunction(() => document.getElementById('status').textContent.startsWith('could not join:'), null, { timeout: WAIT_MS }));
    assert.equal(await page.evaluate(() => window.__shardline.startAttempts), 5);
    assert.equal(connections, 5, 'one connection per attempt');
    assert.notEqual(await page.evaluate(() => window.__shardline.error), null);
    // Chromium logs each failed connection as a console error: expected
    // here, and nothing else.
    const url = page.url();
    const mine = pageErrors.filter((e) => e.startsWith(`${url}: `));
    pageErrors.splice(0, pageErrors.length, ...pageErrors.filter((e) => !mine.includes(e)));
    for (const e of mine) assert.match(e, /console: WebSocket connection to '[^']+\/play' failed/);
  } finally {
    dropper.close();
  }
});

test('in a fleet, the demo shows a broadcast notice and follows a move to the other node', async () => {
  const redis = await startRedis();
  // A TTL far above the heartbeat: a node that a loaded machine starves
  // for a second must not look dead (that would move its games to the
  // other node, a take-over this test is not about).
  const dir = ['--directory', redis.url, '--region', 'eu', '--directory-heartbeat-ms', '200', '--directory-ttl-ms', '10000'];
  const nodes = [];
  try {
    // The fleet's pages need no RTT histogram: a 5 s heartbeat, so a page
    // whose browser a loaded machine starves for 2 s keeps its connection
    // (beside two CPU hogs the 1 s default closed one mid-test: the move
    // then found its player detached).
    const fleetNode = { heartbeatMs: 5000 };
    const a = await startServer([...dir, '--node-id', 'web-a'], fleetNode);
    nodes.push(a);
    const b = await startServer([...dir, '--node-id', 'web-b'], fleetNode);
    nodes.push(b);
    const mover = await openPage(`${a.game}/?instance=web-from&name=erin`);
    await joinedIn(mover);
    const host = await openPage(`${b.game}/?instance=web-to&name=frank`);
    await joinedIn(host);
    await fleetListening(redis.url, ['web-a', 'web-b']);

    const text = 'Servers restart at 04:00 UTC';
    await fleetCli(redis.url, ['broadcast', '--region', 'eu', text]);
    await explained([mover], () =>
      mover.waitForFunction((t) => {
        const el = document.getElementById('notice');
        return !el.hidden && el.textContent.includes(t) && el.textContent.includes('region eu');
      }, text),
    );
    assert.deepEqual(await mover.evaluate(() => window.__shardline.notices), [{ message: text, region: 'eu' }]);

    const playerId = await mover.evaluate(() => window.__shardline.playerId);
    const out = await fleetCli(redis.url, ['move', '--instance', 'web-from', '--player', playerId, '--to', 'web-to']);
    assert.match(out, /"to_node":"web-b"/);
    await explained([mover, host], () =>
      mover.waitForFunction(
        () => {
          const v = window.__shardline;
          return v.transfers.length === 1 && v.status === 'joined' && v.instanceId === 'web-to' && v.nodeId === 'web-b';
        },
        null,
        { timeout: WAIT_MS },
      ),
    );
    // Both pages now see both players, in the instance on node B.
    for (const p of [mover, host]) await p.waitForFunction(() => window.__shardline.entities.length === 2);
    assert.match(await mover.evaluate(() => document.getElementById('node').textContent), /node web-b/);
    await shot(mover, `${SHOTS}/fleet-move.png`);

    // The ops dashboard of node A shows the fleet: one region, both nodes.
    const dash = await openPage(`${a.admin}/dashboard`, { width: 1400, height: 1100 });
    await explained([dash], () =>
      dash.waitForFunction(() => {
        const f = window.__dashboard.fleet;
        return f && f.up && f.regions === 1 && f.nodes === 2;
      }, null, { timeout: WAIT_MS }),
    );
    assert.match(await dash.evaluate(() => document.getElementById('fleet-nodes').textContent), /web-a \(this\)[\s\S]*web-b/);
    await shot(dash, `${SHOTS}/fleet-dashboard.png`, { fullPage: true });
    assert.deepEqual(pageErrors, [], 'no script errors in any page');
  } finally {
    for (const n of nodes) await n.stop();
    redis.stop();
  }
});

// ------------------------------------------------------------------ helpers

/** Spawns `program` so that it dies with this process (see the top of this file). */
function spawnTied(program, args, options) {
  return SETPRIV ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', program, ...args], options) : spawn(program, args, options);
}

/**
 * A throw-away redis-server for the fleet's directory. It cannot bind port 0
 * (`--port 0` turns TCP off), so a free port is picked; if another process
 * takes it first, redis-server says so and exits, and another port is tried.
 */
async function startRedis() {
  const attempts = 10;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await new Promise((res, rej) => {
      const srv = net.createServer();
      srv.listen(0, '127.0.0.1', () => {
        const p = srv.address().port;
        srv.close(() => res(p));
      });
      srv.on('error', rej);
    });
    const child = spawnTied('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const outcome = await new Promise((res) => {
      let out = '';
      const timer = setTimeout(() => res(`redis-server did not start within ${WAIT_MS} ms:\n${out}`), WAIT_MS);
      const done = (why) => {
        clearTimeout(timer);
        res(why);
      };
      child.on('error', (e) =>
        done(`cannot run redis-server (${e.message}): install Debian's package: apt-get install -y redis-server (bash scripts/test.sh does, as root)`),
      );
      const onData = (c) => {
        out += c.toString();
        if (/ready to accept connections/i.test(out)) done('ready');
      };
      child.stdout.on('data', onData);
      child.stderr.on('data', onData);
      child.on('exit', () => done(/Address already in use/.test(out) ? 'in use' : `redis-server exited:\n${out}`));
    });
    if (outcome === 'ready') {
      child.stdout.resume();
      child.stderr.resume();
      return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
    }
    child.kill('SIGKILL');
    assert.equal(outcome, 'in use', outcome);
  }
  assert.fail(`redis-server found no free port in ${attempts} attempts`);
}

/** Waits until the nodes' fleet subscribers listen (each subscribes to its own channel last). */
async function fleetListening(redisUrl, nodeIds) {
  const channels = nodeIds.map((id) => `sl:to-node:${id}`);
  let counts = [];
  for (const deadline = Date.now() + WAIT_MS; Date.now() < deadline; ) {
    const r = spawnSync('redis-cli', ['-u', redisUrl, 'PUBSUB', 'NUMSUB', ...channels], { encoding: 'utf8', timeout: WAIT_MS });
    counts = (r.stdout ?? '').trim().split('\n').filter((_, i) => i % 2 === 1);
    if (counts.length === channels.length && counts.every((n) => n === '1')) return;
    await new Promise((res) => setTimeout(res, 50));
  }
  assert.fail(`fleet subscribers of ${nodeIds.join(', ')}: ${JSON.stringify(counts)}`);
}

/** `shardline fleet --directory URL ARGS`: its stdout; fails the test on a non-zero exit. */
async function fleetCli(redisUrl, args) {
  const child = spawnTied(BIN, ['fleet', '--directory', redisUrl, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c) => (out += c.toString()));
  child.stderr.on('data', (c) => (out += c.toString()));
  const kill = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
  const code = await new Promise((res) => child.on('close', res));
  clearTimeout(kill);
  assert.equal(code, 0, `shardline fleet ${args.join(' ')}: ${out}`);
  return out;
}

function serverLogs() {
  return servers.map((s) => `--- server ${s.name} (last ${LOG_TAIL_BYTES} bytes of its output):\n${s.out.slice(-LOG_TAIL_BYTES)}`).join('\n');
}

function startServer(extraArgs = [], { heartbeatMs = 3000 } = {}) {
  const args = [
    'serve',
    '--listen', '127.0.0.1:0',
    '--shards', String(SHARDS),
    '--admin-listen', '127.0.0.1:0',
    '--snapshot-interval-ms', '0',
    '--no-restore',
    '--load-shedding', 'off',
    // The server pings every 3 s here, so the dashboard's RTT histograms
    // fill within seconds; a page silent for two intervals is closed
    // (4001). With 1 s, beside two CPU hogs, Chromium left pages silent
    // for over 2 s and the server closed them mid-test.
    '--heartbeat-ms', String(heartbeatMs),
    ...extraArgs,
  ];
  const child = spawnTied(BIN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
  const record = { name: extraArgs.includes('--node-id') ? extraArgs[extraArgs.indexOf('--node-id') + 1] : 'main', out: '' };
  servers.push(record);
  const keep = (chunk) => {
    record.out = (record.out + chunk.toString()).slice(-4 * LOG_TAIL_BYTES);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return new Promise((resolvePromise, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`shardline did not report both listeners within ${WAIT_MS} ms:\n${out}`));
    }, WAIT_MS);
    const onData = (chunk) => {
      out += chunk.toString();
      const game = /shardline listening on (\S+)/.exec(out);
      const admin = /admin listening on (\S+)/.exec(out);
      if (game && admin) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        record.admin = `http://${admin[1]}`;
        resolvePromise({
          game: `http://${game[1]}`,
          admin: `http://${admin[1]}`,
          stop: () => stopChild(child),
        });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (c) => (out += c.toString()));
    child.on('exit', (code) => {
      record.stopped = true;
      clearTimeout(timer);
      reject(new Error(`shardline exited (${code}) before listening:\n${out}`));
    });
  });
}

function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((res) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), WAIT_MS);
    child.once('exit', () => {
      clearTimeout(kill);
      res();
    });
    child.kill('SIGTERM');
  });
}

async function getJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(WAIT_MS) });
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

/** The server's `shard_for` (src/game/placement.rs): FNV-1a 64, MurmurHash3 fmix64, scaled by the high bits. */
function shardFor(id, shards) {
  const MASK = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  for (const b of new TextEncoder().encode(id)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & MASK;
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & MASK;
  h ^= h >> 33n;
  h = (h * 0xc4ceb9fe1a85ec53n) & MASK;
  h ^= h >> 33n;
  return Number((h * BigInt(shards)) >> 64n);
}
