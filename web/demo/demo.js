// The playable demo: joins an arena instance with the SDK, draws every
// entity on a canvas, sends arrow keys / WASD as inputs, and shows RTT and
// the server tick. Served by the shardline binary at GET / (game listener).
//
// URL parameters: ?instance=ID (default "arena"), ?name=NAME,
// ?server=ws://host:port (default: the page's own origin), ?ticket=TICKET
// (a join ticket, for a server run with --join-secret), ?protocol=1 (speak
// protocol version 1: every entity in full each tick; default 2: the SDK
// rebuilds the world from deltas).
//
// The arena is 2D: the z and facing the SDK reports are not drawn. The HUD
// shows the bytes per state update (a moving average of the WebSocket
// messages' sizes), so versions 1 and 2 can be compared side by side.
//
// Operators' notices (`shardline fleet broadcast`) show above the arena for
// NOTICE_SHOWN_MS; a Transfer (`shardline fleet move`) shows in the status
// line while the SDK moves the player to the other node.
//
// For tests and the curious, the live view is window.__shardline:
// { status, playerId (a decimal string), nodeId, tick, myEntity,
//   entities: [{id, x, y, vx, vy}], rtt, instanceId, updates, disconnects,
//   notices: [{message, region}], transfers: [{url, instanceId}],
//   protocol (1 or 2), bytesPerUpdate (moving average), deltas (updates
//   that came as a delta against an acknowledged tick), protocolErrors,
//   startAttempts (connections tried before the first join), frames (times
//   the arena was drawn: only when its picture changes) }.

import { ShardlineClient } from './shardline.js';

const params = new URLSearchParams(location.search);
const instance = params.get('instance') || 'arena';
const name = params.get('name') || `player-${Math.random().toString(36).slice(2, 6)}`;
const server = params.get('server') || location.origin;
const ticket = params.get('ticket') || undefined;
const protocol = params.get('protocol') === '1' ? 1 : 2;

// The reference arena's disc radius, arena units (src/game/arena.rs).
const DISC_RADIUS = 10;
// Dead reckoning between updates is bounded: a late update must not let a
// disc run off on its own.
const EXTRAPOLATE_S_MAX = 0.1;
const GRID_STEP = 100;
// How long a notice stays on screen, ms.
const NOTICE_SHOWN_MS = 15_000;
// Notices kept in window.__shardline.notices (the oldest go first).
const NOTICES_KEPT_MAX = 20;
// Weight of a new sample in the bytes-per-update moving average.
const BYTES_SMOOTHING = 1 / 16;

const KEYS = {
  ArrowLeft: [-1, 0], KeyA: [-1, 0],
  ArrowRight: [1, 0], KeyD: [1, 0],
  ArrowUp: [0, -1], KeyW: [0, -1],
  ArrowDown: [0, 1], KeyS: [0, 1],
};

const $ = (id) => document.getElementById(id);
const canvas = $('arena');
const ctx = canvas.getContext('2d');

const view = {
  status: 'connecting',
  playerId: null,
  nodeId: null,
  tick: 0,
  myEntity: null,
  entities: [],
  rtt: null,
  instanceId: null,
  updates: 0,
  error: null,
  /** Every drop, as {code, reason, willReconnect}. */
  disconnects: [],
  /** The last NOTICES_KEPT_MAX notices, as {message, region}. */
  notices: [],
  /** Every Transfer, as {url, instanceId}. */
  transfers: [],
  protocol,
  /** Moving average of the state updates' sizes, bytes (null before the first). */
  bytesPerUpdate: null,
  /** Updates that came as a delta against an acknowledged tick (version 2). */
  deltas: 0,
  /** Deltas the SDK could not apply (it reconnects after each). */
  protocolErrors: [],
  /** Times the arena was drawn (only when its picture changed). */
  frames: 0,
};
window.__shardline = view;

const client = new ShardlineClient({ pingIntervalMs: 1000, protocolVersion: protocol });
$('bytes-label').textContent = `bytes / update (v${protocol})`;
const names = new Map(); // entity id → player name (known for players who joined after us)
let arena = { w: 1000, h: 1000 };
let updatedAt = performance.now();
let shownInstance = null; // the instance `names` is about
// The arena is drawn again only when its picture changes (new positions,
// names, size) or while a disc moves between updates: a still world costs
// no drawing, so a page left open does not burn a core.
let redraw = true;

client.on('status', (s) => {
  view.status = s;
  setStatus(s, s === 'reconnecting' || s === 'closed');
});
client.on('welcome', (w) => {
  view.playerId = String(w.playerId);
  view.nodeId = w.nodeId;
  $('node').textContent = `node ${w.nodeId} · region ${w.region} · shard ${w.shard} · ${w.tickRateHz} Hz`;
});
client.on('joined', (j) => {
  arena = { w: j.arenaWidth, h: j.arenaHeight };
  view.myEntity = j.entityId;
  view.instanceId = j.instanceId;
  // Entity ids are per instance: names from another one (before a Transfer
  // or a join elsewhere) would label the wrong discs.
  if (j.instanceId !== shownInstance) names.clear();
  shownInstance = j.instanceId;
  names.set(j.entityId, `${name} (you)`);
  redraw = true;
  $('where').textContent = `· ${j.instanceId}`;
  take(j.tick, j.entities);
});
client.on('state', (u) => {
  view.updates++;
  if (u.baselineTick > 0) view.deltas++;
  view.bytesPerUpdate = view.bytesPerUpdate === null ? u.frameBytes : view.bytesPerUpdate + (u.frameBytes - view.bytesPerUpdate) * BYTES_SMOOTHING;
  take(u.tick, u.entities);
});
client.on('protocolError', (e) => {
  view.protocolErrors.push(e.message);
  console.warn('protocol error', e.message);
});
client.on('playerJoined', (p) => {
  names.set(p.entityId, p.name);
  redraw = true;
});
client.on('playerLeft', (p) => {
  names.delete(p.entityId);
  redraw = true;
});
client.on('rtt', () => {
  view.rtt = client.rtt;
});
client.on('disconnected', (d) => view.disconnects.push(d));
client.on('disconnected', (d) => setStatus(`disconnected (${d.code})${d.willReconnect ? ', reconnecting…' : ''}`, true));
client.on('reconnected', (r) => {
  setStatus(r.resumed ? 'reconnected: seat resumed' : 'reconnected as a new player', false);
  lastSent = null;
  steer();
});
client.on('closed', (c) => setStatus(`closed (${c.code}${c.reason ? `: ${c.reason}` : ''})`, true));
client.on('serverError', (e) => console.warn('server error', e));
client.on('notice', (n) => showNotice(n));
client.on('transfer', (t) => {
  view.transfers.push({ url: t.url, instanceId: t.instanceId });
  setStatus(`moving to ${t.instanceId} on another node…`, false);
});

let noticeTimer = null;

function showNotice(n) {
  view.notices.push({ message: n.message, region: n.region });
  if (view.notices.length > NOTICES_KEPT_MAX) view.notices.shift();
  const el = $('notice');
  const sentAt = new Date(Number(n.sentAtUs / 1000n));
  const who = n.region ? `to region ${n.region}` : 'to everyone';
  const small = document.createElement('small');
  small.textContent = `${who}, ${sentAt.toLocaleTimeString()}`;
  el.replaceChildren(document.createTextNode(n.message), small);
  el.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (el.hidden = true), NOTICE_SHOWN_MS);
}

function take(tick, entities) {
  view.tick = tick;
  const next = entities.map((e) => ({ id: e.id, x: e.x, y: e.y, vx: e.vx, vy: e.vy }));
  const same =
    next.length === view.entities.length &&
    next.every((e, i) => {
      const o = view.entities[i];
      return e.id === o.id && e.x === o.x && e.y === o.y && e.vx === o.vx && e.vy === o.vy;
    });
  view.entities = next;
  updatedAt = performance.now();
  if (!same) redraw = true;
}

function setStatus(text, bad) {
  const el = $('status');
  el.textContent = text;
  el.classList.toggle('bad', !!bad);
}

// ------------------------------------------------------------------ input

const pressed = new Set();
let lastSent = null;

function steer() {
  let dx = 0;
  let dy = 0;
  for (const code of pressed) {
    dx += KEYS[code][0];
    dy += KEYS[code][1];
  }
  dx = Math.sign(dx);
  dy = Math.sign(dy);
  const key = `${dx},${dy}`;
  if (key === lastSent) return;
  // The arena keeps a disc's velocity until the next input: send changes only.
  if (client.sendInput(dx, dy) !== null) lastSent = key;
}

addEventListener('keydown', (e) => {
  if (!(e.code in KEYS)) return;
  e.preventDefault();
  pressed.add(e.code);
  steer();
});
addEventListener('keyup', (e) => {
  if (!(e.code in KEYS)) return;
  e.preventDefault();
  pressed.delete(e.code);
  steer();
});
addEventListener('blur', () => {
  pressed.clear();
  steer();
});

// ------------------------------------------------------------------ drawing

// Sets an element's text only when it changes (a write costs a layout).
function show(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

function frame() {
  requestAnimationFrame(frame);
  const me = view.entities.find((e) => e.id === view.myEntity);
  show('rtt', view.rtt === null ? '–' : view.rtt.toFixed(1));
  show('tick', String(view.tick));
  show('players', String(view.entities.length));
  show('pos', me ? `${me.x.toFixed(0)}, ${me.y.toFixed(0)}` : '–');
  show('seq', `${client.inputSeq} / ${client.state?.lastInputSeq ?? 0}`);
  show('bytes', view.bytesPerUpdate === null ? '–' : view.bytesPerUpdate.toFixed(0));

  const dpr = window.devicePixelRatio || 1;
  const size = Math.round(canvas.clientWidth * dpr);
  if (canvas.width !== size) {
    canvas.width = canvas.height = size;
    redraw = true;
  }
  // Between updates moving discs are dead-reckoned for up to
  // EXTRAPOLATE_S_MAX; after that they stand still until the next update.
  const sinceUpdate = (performance.now() - updatedAt) / 1000;
  const gliding = sinceUpdate <= EXTRAPOLATE_S_MAX && view.entities.some((e) => e.vx !== 0 || e.vy !== 0);
  if (!redraw && !gliding) return;
  redraw = gliding; // one more frame after the last glide, at its end
  view.frames++;
  const s = size / Math.max(arena.w, arena.h);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.clearRect(0, 0, size, size);

  ctx.strokeStyle = '#1c232b';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let g = GRID_STEP; g < arena.w; g += GRID_STEP) {
    ctx.moveTo(g * s, 0);
    ctx.lineTo(g * s, arena.h * s);
  }
  for (let g = GRID_STEP; g < arena.h; g += GRID_STEP) {
    ctx.moveTo(0, g * s);
    ctx.lineTo(arena.w * s, g * s);
  }
  ctx.stroke();

  const dt = Math.min(sinceUpdate, EXTRAPOLATE_S_MAX);
  ctx.font = `${Math.round(12 * dpr)}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  for (const e of view.entities) {
    const x = clamp(e.x + e.vx * dt, DISC_RADIUS, arena.w - DISC_RADIUS) * s;
    const y = clamp(e.y + e.vy * dt, DISC_RADIUS, arena.h - DISC_RADIUS) * s;
    const mine = e.id === view.myEntity;
    ctx.fillStyle = mine ? '#ffcc33' : '#4fb3ff';
    ctx.beginPath();
    ctx.arc(x, y, Math.max(DISC_RADIUS * s, 4 * dpr), 0, Math.PI * 2);
    ctx.fill();
    if (mine) {
      ctx.strokeStyle = '#fff';
      ctx.lineWidth = 2 * dpr;
      ctx.stroke();
    }
    ctx.fillStyle = '#d8dee6';
    ctx.fillText(names.get(e.id) ?? `#${e.id}`, x, y - (DISC_RADIUS * s + 6 * dpr));
  }
}

function clamp(v, lo, hi) {
  return Math.min(hi, Math.max(lo, v));
}

requestAnimationFrame(frame);

// ------------------------------------------------------------------ start

// The SDK takes a seat back by itself once it has been welcomed; before
// that (the server unreachable, busy with HTTP 503, or the connection
// dropped during Hello) the page tries again, START_ATTEMPTS_MAX times in
// all, waiting START_RETRY_MS, then twice as long each time. A refusal by
// the server (a bad ticket, a full instance) is final.
const START_ATTEMPTS_MAX = 5;
const START_RETRY_MS = 500;
view.startAttempts = 0;
for (;;) {
  view.startAttempts++;
  try {
    await client.connect(server);
    await client.hello(name, { ticket });
    await client.join(instance);
    view.error = null;
    canvas.focus();
    break;
  } catch (e) {
    view.error = String(e?.message ?? e);
    const again = e?.code == null && client.status === 'closed' && view.startAttempts < START_ATTEMPTS_MAX;
    if (!again) {
      setStatus(`could not join: ${view.error}`, true);
      break;
    }
    const waitMs = START_RETRY_MS * 2 ** (view.startAttempts - 1);
    setStatus(`could not join (${view.error}); trying again in ${(waitMs / 1000).toFixed(1)} s`, true);
    await new Promise((r) => setTimeout(r, waitMs));
  }
}
