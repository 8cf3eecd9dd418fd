// The ops dashboard, served by the shardline binary at GET /dashboard on the
// admin listener. Everything it shows comes from the admin API of the same
// origin: GET /stats (a sample per second, kept in a ring for the time
// series), GET /histograms?shard=N (HdrHistograms, decoded here and drawn as
// latency-by-percentile plots), GET /instances and GET /instances/{id}, and
// GET /fleet (with --directory: the regions and nodes of the fleet as this
// node last saw them; the section stays hidden on a standalone node).
//
// With --admin-token, open it as /dashboard?token=TOKEN: the page sends the
// token as a bearer header on every request.
//
// For tests: window.__dashboard = { plotted: {shard: points}, plottedBy:
// {shard: {histogram: points}}, samples, refreshes, lastError, fleet:
// {up, regions, nodes} or null }.

import { decodeBase64 } from './hdr.js';
import { COLORS, drawChart, formatCount, formatUs, MERGED_COLOR, percentileAxis } from './plot.js';

const HISTOGRAMS = [
  ['tick_duration', 'Tick duration', 'step + encode of every instance of the shard'],
  ['input_to_update', 'Input → update', 'input read to the StateUpdate that applied it being written'],
  ['rtt', 'RTT', 'server WebSocket ping to pong'],
];
const STATS_EVERY_MS = 1000;
const HISTOGRAMS_EVERY_MS = 2000;
const INSTANCES_EVERY_MS = 2000;
const FLEET_EVERY_MS = 2000;
const LIVE_EVERY_MS = 200;
const FETCH_TIMEOUT_MS = 5000;
// 5 minutes of one-second samples.
const RING_SAMPLES = 300;
// The time axis spans the samples kept, in whole minutes: 1 to 5.
const SERIES_WINDOW_S_MIN = 60;
const SERIES_WINDOW_S_MAX = 300;

const token = new URLSearchParams(location.search).get('token');
const $ = (id) => document.getElementById(id);

const samples = []; // {t: ms, shards: [{shard, conns, players, instances, msgIn, msgOut, updates}]}
let shardIds = [];
const hist = {}; // key ('0', '1', …, 'all') → {name → Histogram}
const dash = { plotted: {}, plottedBy: {}, samples: 0, refreshes: 0, lastError: null, fleet: null };
window.__dashboard = dash;

async function get(path, as = 'json') {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
  try {
    const res = await fetch(path, { signal: ctl.signal, cache: 'no-store', headers: token ? { Authorization: `Bearer ${token}` } : {} });
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    return as === 'json' ? await res.json() : await res.text();
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fn` now and then `ms` after each run ends (never two at once). */
function every(ms, fn) {
  const run = async () => {
    try {
      await fn();
      dash.refreshes++;
      const el = $('refresh');
      el.textContent = `updated ${new Date().toLocaleTimeString()}`;
      el.classList.remove('bad');
    } catch (e) {
      dash.lastError = String(e?.message ?? e);
      const el = $('refresh');
      el.textContent = `refresh failed: ${dash.lastError}`;
      el.classList.add('bad');
    }
    setTimeout(run, ms);
  };
  run();
}

// ------------------------------------------------------------------ /stats

async function refreshStats() {
  const s = await get('/stats');
  const ids = s.shards.map((x) => x.shard);
  if (ids.join() !== shardIds.join()) {
    shardIds = ids;
    buildPercentilePanels();
    refreshHistograms().catch(() => {}); // first plots now, not at the next round
  }
  samples.push({
    t: Date.now(),
    shards: s.shards.map((x) => ({
      shard: x.shard,
      conns: x.connections_open,
      players: x.players_connected,
      instances: x.instances,
      msgIn: x.counters.messages_in,
      msgOut: x.counters.messages_out,
      updates: x.counters.state_updates,
    })),
  });
  if (samples.length > RING_SAMPLES) samples.shift();
  dash.samples = samples.length;

  $('node').textContent = `node ${s.node_id} · region ${s.region} · ${s.shards.length} shards · ${s.tick_rate_hz} Hz · up ${formatDuration(s.uptime_s)}`;
  const ready = $('ready');
  ready.textContent = s.draining ? 'draining' : s.ready ? 'ready' : 'not ready';
  ready.className = `badge ${s.ready && !s.draining ? 'ok' : 'bad'}`;
  const sum = (f) => s.shards.reduce((a, x) => a + f(x), 0);
  const cards = [
    [s.connections_open, 'connections'],
    [sum((x) => x.players_connected), 'players connected'],
    [sum((x) => x.players_active), 'players active'],
    [sum((x) => x.instances), 'instances'],
    [sum((x) => x.update_rate).toFixed(0), 'state updates / s'],
    [`${(s.process_cpu_usage * 100).toFixed(0)}%`, 'process CPU'],
    [`${(s.memory.process_rss_bytes / 2 ** 20).toFixed(0)} MiB`, 'resident memory'],
    ...s.shards.map((x) => [
      `${x.tick_rate_measured.toFixed(1)} Hz`,
      `shard ${x.shard}${x.core !== null ? ` (core ${x.core})` : ''} ticks · CPU ${(x.cpu_usage * 100).toFixed(0)}%${x.shedding ? ' · shedding' : ''}`,
    ]),
  ];
  $('cards').innerHTML = cards.map(([v, l]) => `<div class="card"><b>${esc(String(v))}</b><span>${esc(l)}</span></div>`).join('');
  drawSeries();
}

// ------------------------------------------------------------------ time series

const SERIES = [
  ['conns', 'Connections', (x) => x.conns],
  ['players', 'Players connected', (x) => x.players],
  ['instances', 'Instances', (x) => x.instances],
  ['msgs', 'Messages / s (in + out)', null],
];

function buildSeriesPanels() {
  $('series').innerHTML = SERIES.map(
    ([key, title]) => `<div class="panel series"><h3>${esc(title)}</h3><canvas id="series-${key}"></canvas></div>`,
  ).join('');
}

function drawSeries() {
  const now = Date.now();
  const keptS = samples.length ? (now - samples[0].t) / 1000 : 0;
  const windowS = Math.min(SERIES_WINDOW_S_MAX, Math.max(SERIES_WINDOW_S_MIN, Math.ceil(keptS / 60) * 60));
  const x = {
    min: -windowS,
    max: 0,
    ticks: [5, 4, 3, 2, 1, 0].map((k) => {
      const v = (-windowS * k) / 5;
      return { v, label: v === 0 ? 'now' : windowS > 120 ? `${v / 60}m` : `${v}s` };
    }),
  };
  const ago = (t) => (t - now) / 1000;
  for (const [key, , pick] of SERIES) {
    const series = [];
    if (pick) {
      shardIds.forEach((id, i) =>
        series.push({ label: `shard ${id}`, color: COLORS[i % COLORS.length], points: samples.map((s) => [ago(s.t), pick(s.shards[i] ?? {}) ?? 0]) }),
      );
      series.push({
        label: 'total',
        color: MERGED_COLOR,
        width: 2,
        points: samples.map((s) => [ago(s.t), s.shards.reduce((a, sh) => a + pick(sh), 0)]),
      });
    } else {
      const rate = (f) => {
        const pts = [];
        for (let i = 1; i < samples.length; i++) {
          const dt = (samples[i].t - samples[i - 1].t) / 1000;
          if (dt <= 0) continue;
          pts.push([ago(samples[i].t), Math.max(0, f(samples[i]) - f(samples[i - 1])) / dt]);
        }
        return pts;
      };
      const total = (field) => (s) => s.shards.reduce((a, sh) => a + sh[field], 0);
      series.push({ label: 'in', color: COLORS[0], points: rate(total('msgIn')) });
      series.push({ label: 'out', color: COLORS[1], points: rate(total('msgOut')) });
      series.push({ label: 'state updates', color: COLORS[2], points: rate(total('updates')) });
    }
    drawChart($(`series-${key}`), { series, x, y: { format: formatCount } });
  }
}

// ------------------------------------------------------------------ percentiles

function buildPercentilePanels() {
  $('percentiles').innerHTML = HISTOGRAMS.map(
    ([name, title, what]) => `
    <div class="panel">
      <h3>${esc(title)} <small>${esc(what)}</small></h3>
      <canvas id="pct-${name}" data-histogram="${name}"></canvas>
      <table id="pct-table-${name}"><thead><tr><th></th><th>count</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr></thead><tbody></tbody></table>
    </div>`,
  ).join('');
}

async function refreshHistograms() {
  if (shardIds.length === 0) return;
  const keys = [...shardIds.map(String), 'all'];
  const answers = await Promise.all(keys.map((k) => get(`/histograms?shard=${k}`)));
  for (let i = 0; i < keys.length; i++) {
    const decoded = {};
    for (const [name] of HISTOGRAMS) {
      const b64 = answers[i].histograms[name];
      if (b64) decoded[name] = await decodeBase64(b64);
    }
    hist[keys[i]] = decoded;
  }
  drawPercentiles(keys);
}

function drawPercentiles(keys) {
  const plottedBy = {};
  for (const k of keys) plottedBy[k] = {};
  for (const [name] of HISTOGRAMS) {
    const curves = keys.map((k) => ({ k, h: hist[k]?.[name], points: hist[k]?.[name]?.percentileCurve() ?? [] }));
    const xMax = Math.max(1, ...curves.flatMap((c) => c.points.map((p) => p[0])));
    const series = curves.map((c, i) => ({
      label: c.k === 'all' ? 'all shards (merged)' : `shard ${c.k}`,
      color: c.k === 'all' ? MERGED_COLOR : COLORS[i % COLORS.length],
      width: c.k === 'all' ? 2.5 : 1.5,
      points: c.points,
    }));
    drawChart($(`pct-${name}`), { series, x: percentileAxis(xMax), y: { format: formatUs } });
    for (const c of curves) plottedBy[c.k][name] = c.points.length;
    $(`pct-table-${name}`).querySelector('tbody').innerHTML = curves
      .map((c) => {
        const h = c.h;
        const cell = (v) => `<td>${h && h.totalCount ? formatUs(v) : '–'}</td>`;
        return `<tr><td>${c.k === 'all' ? 'all' : `shard ${c.k}`}</td><td>${h ? formatCount(h.totalCount) : '–'}</td>${[50, 90, 99, 99.9]
          .map((p) => cell(h ? h.valueAtPercentile(p) : 0))
          .join('')}${cell(h ? h.max : 0)}</tr>`;
      })
      .join('');
  }
  dash.plottedBy = plottedBy;
  dash.plotted = Object.fromEntries(Object.entries(plottedBy).map(([k, v]) => [k, Object.values(v).reduce((a, n) => a + n, 0)]));
}

// ------------------------------------------------------------------ instances

async function refreshInstances() {
  const { instances } = await get('/instances');
  instances.sort((a, b) => a.shard - b.shard || a.id.localeCompare(b.id));
  $('instances').querySelector('tbody').innerHTML =
    instances
      .map(
        (i) => `<tr>
        <td><a href="#instance=${encodeURIComponent(i.id)}">${esc(i.id)}</a></td>
        <td>${i.shard}</td><td>${i.players} / ${i.players_max}</td><td>${i.entities}</td>
        <td>${i.tick}</td><td>${formatUs(i.tick_us_p99)}</td><td>${formatCount(i.state_bytes)} B</td></tr>`,
      )
      .join('') || '<tr><td class="dim" colspan="7">no instances</td></tr>';
}

async function refreshFleet() {
  const f = await get('/fleet');
  if (!f.directory) return; // standalone: no fleet to show
  $('fleet').hidden = false;
  dash.fleet = { up: f.up, regions: f.regions.length, nodes: f.nodes.length };
  $('fleet-meta').textContent =
    `(node ${f.node} in ${f.region}; directory ${f.up ? 'up' : 'UNREACHABLE: showing the last view'})`;
  $('fleet-regions').querySelector('tbody').innerHTML =
    f.regions
      .map(
        (r) => `<tr><td>${esc(r.name)}</td><td>${r.nodes}</td><td>${esc(r.locations.join(', '))}</td>
        <td>${r.instances}</td><td>${r.load} / ${r.capacity}</td><td>${r.healthy ? 'yes' : '<b>full or draining</b>'}</td></tr>`,
      )
      .join('') || '<tr><td class="dim" colspan="6">no live node</td></tr>';
  $('fleet-nodes').querySelector('tbody').innerHTML = f.nodes
    .map((n) => {
      const state = n.draining ? 'draining' : n.healthy ? 'healthy' : 'shedding';
      return `<tr><td>${esc(n.id)}${n.id === f.node ? ' <span class="dim">(this)</span>' : ''}</td><td>${esc(n.region)}</td>
        <td>${esc(n.location)}</td><td>${esc(n.url)}</td><td>${n.shards}</td><td>${n.instances}</td>
        <td>${n.load} / ${n.capacity}</td><td>${state}</td></tr>`;
    })
    .join('');
}

let liveId = null;
let liveTimer = null;

function openLive() {
  const m = /^#instance=(.+)$/.exec(location.hash);
  liveId = m ? decodeURIComponent(m[1]) : null;
  clearTimeout(liveTimer);
  $('live').classList.toggle('open', liveId !== null);
  if (liveId !== null) {
    $('live-title').textContent = `instance ${liveId}`;
    pollLive(liveId);
    $('live').scrollIntoView({ block: 'nearest' });
  }
}

async function pollLive(id) {
  if (id !== liveId) return;
  try {
    const d = await get(`/instances/${encodeURIComponent(id)}`);
    if (id !== liveId) return;
    drawLive(d);
  } catch (e) {
    $('live-title').textContent = `instance ${id}: ${e.message}`;
  }
  liveTimer = setTimeout(() => pollLive(id), LIVE_EVERY_MS);
}

function drawLive(d) {
  const [w, h] = d.bounds;
  $('live-title').textContent = `instance ${d.id} · shard ${d.shard} · tick ${d.tick} · ${d.seats.length} / ${d.players_max} players`;
  const canvas = $('live-canvas');
  const dpr = window.devicePixelRatio || 1;
  const size = Math.round((canvas.clientWidth || 460) * dpr);
  if (canvas.width !== size) canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d');
  const s = size / Math.max(w, h);
  ctx.clearRect(0, 0, size, size);
  ctx.strokeStyle = '#26303a';
  ctx.strokeRect(0.5, 0.5, w * s - 1, h * s - 1);
  const names = new Map(d.seats.map((seat) => [seat.entity, seat]));
  ctx.font = `${Math.round(11 * dpr)}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  for (const e of d.entities) {
    const seat = names.get(e.id);
    ctx.fillStyle = seat && !seat.connected ? '#8a96a3' : '#4fb3ff';
    ctx.beginPath();
    ctx.arc(e.x * s, e.y * s, Math.max(10 * s, 3 * dpr), 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = '#d8dee6';
    ctx.fillText(seat ? seat.name : `#${e.id}`, e.x * s, e.y * s - 12 * dpr);
  }
  const pos = new Map(d.entities.map((e) => [e.id, e]));
  $('live-seats').querySelector('tbody').innerHTML = d.seats
    .map((seat) => {
      const e = pos.get(seat.entity);
      return `<tr><td>${esc(seat.name)}</td><td>${seat.entity}</td><td>${seat.connected ? 'yes' : 'no (grace)'}</td>
        <td>${seat.last_input_seq}</td><td>${seat.inputs_applied}</td><td>${e ? `${e.x.toFixed(0)}, ${e.y.toFixed(0)}` : '–'}</td></tr>`;
    })
    .join('');
}

// ------------------------------------------------------------------ helpers

function esc(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function formatDuration(s) {
  if (s < 120) return `${s.toFixed(0)} s`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

// ------------------------------------------------------------------ start

buildSeriesPanels();
addEventListener('hashchange', openLive);
$('live-close').addEventListener('click', (e) => {
  e.preventDefault();
  history.replaceState(null, '', location.pathname + location.search);
  openLive();
});
addEventListener('resize', () => {
  drawSeries();
  if (shardIds.length) drawPercentiles([...shardIds.map(String), 'all']);
});
every(STATS_EVERY_MS, refreshStats);
every(HISTOGRAMS_EVERY_MS, refreshHistograms);
every(INSTANCES_EVERY_MS, refreshInstances);
every(FLEET_EVERY_MS, refreshFleet);
openLive();
