// A plain load client for shardline's /play, written from docs/protocol.md
// and schemas/shardline.fbs only (no code of the server, its load generator
// or its TypeScript SDK), to check what `shardline loadgen` measures against
// a client that shares none of its code. scripts/bench.sh runs both against
// the same server in the same minutes (the "check" step).
//
// Each player: WebSocket to /play?instance=ID, Hello, Welcome, Join, Joined,
// then one Input per tick period on its own phase, until the run ends, then
// Leave and a close 1000.
//
// Latency, as loadgen defines it: from an input's intended send time to the
// arrival of the first StateUpdate whose last_input_seq covers it. Open loop
// (coordinated-omission correct): every input has an intended time on a fixed
// grid; a client that wakes late sends what it owes at once and the delay
// counts. Phases: the players' grids are spread evenly over the period
// (player k gets slot perm(k) of N, perm a fixed shuffle so an instance's
// players are not side by side), against the client's own time zero, as real
// clients' frame timers are unrelated to the server's tick.
//
//   node client.mjs --url ws://127.0.0.1:9000/play --players 200 \
//       --players-per-instance 16 --prefix ic --rate 30 --duration 30 --ramp 2000
//
// Prints one JSON object on stdout (percentiles in ms).

import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import * as flatbuffers from 'flatbuffers';
import WebSocket from 'ws';

const { values: opt } = parseArgs({
  options: {
    url: { type: 'string' },
    players: { type: 'string', default: '100' },
    'players-per-instance': { type: 'string', default: '16' },
    prefix: { type: 'string', default: 'ic' },
    rate: { type: 'string', default: '30' },
    duration: { type: 'string', default: '10' },
    ramp: { type: 'string', default: '2000' },
    'connect-timeout': { type: 'string', default: '10' },
    seed: { type: 'string', default: '1' },
  },
});
if (!opt.url) {
  console.error('usage: node client.mjs --url ws://HOST:PORT/play [--players N] [--players-per-instance P] ' +
    '[--prefix ID_PREFIX] [--rate HZ] [--duration S] [--ramp PER_S] [--connect-timeout S] [--seed N]');
  process.exit(2);
}
const N = positiveInt('players');
const PER_INSTANCE = positiveInt('players-per-instance');
const RATE_HZ = positiveNumber('rate');
const DURATION_MS = positiveNumber('duration') * 1000;
const RAMP_PER_S = positiveNumber('ramp');
const CONNECT_TIMEOUT_MS = positiveNumber('connect-timeout') * 1000;
const PERIOD_MS = 1000 / RATE_HZ;
// Time allowed after the run for the server's close to answer ours.
const CLOSE_TIMEOUT_MS = 3000;
// Startup slack before time zero, so every timer is set up before the first
// connection is due.
const START_SLACK_MS = 100;

function positiveNumber(name) {
  const v = Number(opt[name]);
  if (!Number.isFinite(v) || v <= 0) {
    console.error(`--${name} must be a positive number, got ${JSON.stringify(opt[name])}`);
    process.exit(2);
  }
  return v;
}
function positiveInt(name) {
  const v = positiveNumber(name);
  if (!Number.isInteger(v)) {
    console.error(`--${name} must be a whole number, got ${opt[name]}`);
    process.exit(2);
  }
  return v;
}

// ---------------------------------------------------------------- schema
// Union member numbers and field slots, in the order schemas/shardline.fbs
// declares them (a union field takes two slots: its type, then its value).
const CLIENT_BODY = { Hello: 1, Join: 2, Leave: 3, Input: 4, Ping: 5 };
const SERVER_BODY = {
  Welcome: 1, Joined: 2, StateUpdate: 3, PlayerJoined: 4, PlayerLeft: 5,
  Pong: 6, Error: 7, Notice: 8, Transfer: 9,
};
const PROTOCOL_VERSION = 1;

const builder = new flatbuffers.Builder(256);

// ClientMessage { body_type: ubyte (slot 0), body: table (slot 1) }.
function clientMessage(type, body) {
  const b = builder;
  b.startObject(2);
  b.addFieldOffset(1, body, 0);
  b.addFieldInt8(0, type, 0);
  b.finish(b.endObject());
  const bytes = b.asUint8Array().slice();
  b.clear();
  return bytes;
}

// Hello { protocol_version: ushort = 1, player_name: string, resume_token, ticket }.
function encodeHello(name) {
  const b = builder;
  const nameOff = b.createString(name);
  b.startObject(4);
  b.addFieldOffset(1, nameOff, 0);
  b.addFieldInt16(0, PROTOCOL_VERSION, 1);
  return clientMessage(CLIENT_BODY.Hello, b.endObject());
}

// Join { instance_id: string, create_if_missing: bool = true }.
function encodeJoin(instance) {
  const b = builder;
  const idOff = b.createString(instance);
  b.startObject(2);
  b.addFieldOffset(0, idOff, 0);
  return clientMessage(CLIENT_BODY.Join, b.endObject());
}

function encodeLeave() {
  builder.startObject(0);
  return clientMessage(CLIENT_BODY.Leave, builder.endObject());
}

// Input { seq: uint, move_x: float, move_y: float, buttons: uint }.
function encodeInput(seq, x, y) {
  const b = builder;
  b.startObject(4);
  b.addFieldInt32(0, seq, 0);
  b.addFieldFloat32(1, x, 0);
  b.addFieldFloat32(2, y, 0);
  return clientMessage(CLIENT_BODY.Input, b.endObject());
}

// A table's field position, or 0 when absent (the vtable's slot is empty).
function field(bb, table, slot) {
  const o = bb.__offset(table, 4 + 2 * slot);
  return o ? table + o : 0;
}

// ServerMessage -> { type, bb, table } of its body.
function decodeServer(bytes) {
  const bb = new flatbuffers.ByteBuffer(bytes);
  const root = bb.readInt32(bb.position()) + bb.position();
  const t = field(bb, root, 0);
  const type = t ? bb.readUint8(t) : 0;
  const v = field(bb, root, 1);
  return { type, bb, table: v ? bb.__indirect(v) : 0 };
}

// Welcome.tick_rate_hz: ushort, slot 5.
function welcomeTickRate({ bb, table }) {
  const f = field(bb, table, 5);
  return f ? bb.readUint16(f) : 0;
}

// StateUpdate.last_input_seq: uint, slot 1.
function lastInputSeq({ bb, table }) {
  const f = field(bb, table, 1);
  return f ? bb.readUint32(f) : 0;
}

// Error.code: ushort, slot 0.
function errorCode({ bb, table }) {
  const f = field(bb, table, 0);
  return f ? bb.readUint16(f) : 0;
}

// ---------------------------------------------------------------- stats
class Samples {
  constructor() {
    this.data = new Float64Array(1 << 16);
    this.n = 0;
  }
  add(v) {
    if (this.n === this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.n++] = v;
  }
  // Nearest rank: the smallest sample with at least q of all samples at or
  // below it (HdrHistogram's value_at_quantile, without its buckets).
  summary() {
    const s = this.data.subarray(0, this.n).sort();
    const at = (q) => (this.n ? s[Math.max(0, Math.ceil(q * this.n) - 1)] : null);
    const round = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
    return {
      count: this.n,
      p50_ms: round(at(0.5)),
      p90_ms: round(at(0.9)),
      p99_ms: round(at(0.99)),
      p999_ms: round(at(0.999)),
      max_ms: round(this.n ? s[this.n - 1] : null),
    };
  }
}

const latency = new Samples();
const sendLag = new Samples();
const counts = {
  players_joined: 0, inputs_sent: 0, updates_received: 0, inputs_unanswered: 0,
  closes_unanswered: 0,
};
const errors = {};
let serverTickRateHz = null;
const error = (why) => { errors[why] = (errors[why] || 0) + 1; };

// ---------------------------------------------------------------- phases
// A fixed shuffle of 0..N-1 (xorshift32 seeded by --seed, Fisher-Yates).
function shuffled(n, seed) {
  let x = (seed >>> 0) || 1;
  const next = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
const slot = shuffled(N, Number(opt.seed));

// ---------------------------------------------------------------- players
const t0 = performance.now() + START_SLACK_MS;
const end = t0 + (N / RAMP_PER_S) * 1000 + DURATION_MS;

// Players whose inputs are due, earliest first (a binary heap on `due`).
const heap = [];
function heapPush(p) {
  heap.push(p);
  let i = heap.length - 1;
  while (i > 0) {
    const up = (i - 1) >> 1;
    if (heap[up].due <= heap[i].due) break;
    [heap[up], heap[i]] = [heap[i], heap[up]];
    i = up;
  }
}
function heapPop() {
  const top = heap[0];
  const last = heap.pop();
  if (heap.length) {
    heap[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && heap[l].due < heap[m].due) m = l;
      if (r < heap.length && heap[r].due < heap[m].due) m = r;
      if (m === i) break;
      [heap[m], heap[i]] = [heap[i], heap[m]];
      i = m;
    }
  }
  return top;
}

class Player {
  constructor(k) {
    this.k = k;
    this.instance = `${opt.prefix}-${Math.floor(k / PER_INSTANCE)}`;
    this.phase = (slot[k] / N) * PERIOD_MS;
    this.state = 'connecting';
    this.first = 0; // intended time of input 1
    this.due = Infinity; // intended time of the next input
    this.sent = 0; // highest seq sent
    this.acked = 0; // highest seq an update covered
    this.closed = false;
  }

  start() {
    const url = `${opt.url}${opt.url.includes('?') ? '&' : '?'}instance=${this.instance}`;
    const ws = new WebSocket(url, { perMessageDeflate: false });
    ws.binaryType = 'nodebuffer';
    this.ws = ws;
    this.timeout = setTimeout(() => this.fail(`${this.state}_timeout`), CONNECT_TIMEOUT_MS);
    ws.on('open', () => {
      this.state = 'welcome';
      ws.send(encodeHello(`ic${this.k}`));
    });
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary, performance.now()));
    ws.on('error', (e) => this.fail(`${this.state}_${e.code || 'error'}`));
    ws.on('close', (code) => this.onClose(code));
  }

  onMessage(data, isBinary, now) {
    if (!isBinary) return this.fail('unexpected_text_message');
    const msg = decodeServer(new Uint8Array(data.buffer, data.byteOffset, data.length));
    switch (msg.type) {
      case SERVER_BODY.StateUpdate: {
        if (this.state !== 'running' && this.state !== 'closing') return;
        counts.updates_received++;
        const upto = Math.min(lastInputSeq(msg), this.sent);
        for (let seq = this.acked + 1; seq <= upto; seq++) {
          latency.add(now - this.intended(seq));
        }
        if (upto > this.acked) this.acked = upto;
        return;
      }
      case SERVER_BODY.Welcome:
        if (this.state !== 'welcome') return;
        serverTickRateHz = welcomeTickRate(msg);
        this.state = 'joined';
        this.ws.send(encodeJoin(this.instance));
        return;
      case SERVER_BODY.Joined: {
        if (this.state !== 'joined') return;
        clearTimeout(this.timeout);
        this.state = 'running';
        counts.players_joined++;
        // The first grid time at or after now: nothing is owed from before.
        const grid0 = t0 + this.phase;
        this.first = grid0 + Math.max(0, Math.ceil((now - grid0) / PERIOD_MS)) * PERIOD_MS;
        this.due = this.first;
        if (this.due < end) heapPush(this);
        armTimer();
        return;
      }
      case SERVER_BODY.Error:
        return error(`server_error_${errorCode(msg)}`);
      default:
        return; // PlayerJoined, PlayerLeft, Pong, Notice, and bodies added later
    }
  }

  intended(seq) {
    return this.first + (seq - 1) * PERIOD_MS;
  }

  // Every input due at `now`, oldest first, each with its intended time.
  sendDue(now) {
    while (this.due <= now && this.due < end) {
      const seq = ++this.sent;
      sendLag.add(now - this.due);
      const angle = seq * 0.05;
      this.ws.send(encodeInput(seq, Math.cos(angle), Math.sin(angle)));
      counts.inputs_sent++;
      this.due = this.intended(seq + 1);
    }
  }

  finish() {
    if (this.state !== 'running') return;
    this.state = 'closing';
    this.ws.send(encodeLeave());
    this.ws.close(1000, 'load run over');
  }

  fail(why) {
    if (this.state === 'done' || this.state === 'closing') return;
    clearTimeout(this.timeout);
    error(why);
    this.state = 'done';
    this.due = Infinity;
    this.ws?.terminate();
    settle();
  }

  onClose(code) {
    clearTimeout(this.timeout);
    if (this.state === 'running') error(`closed_by_server_${code}`);
    else if (this.state !== 'closing' && this.state !== 'done') error(`${this.state}_closed_${code}`);
    this.state = 'done';
    this.closed = true;
    settle();
  }
}

const players = Array.from({ length: N }, (_, k) => new Player(k));

// ---------------------------------------------------------------- the send loop
// One timer for all players. Node's timers have 1 ms resolution and never
// fire early by more than that resolution: an input goes out 0–1 ms after
// its intended time (the send lag below), which its latency includes, as a
// browser's would. The client sleeps between timers (no spinning), so it
// does not lose its place on a busy core.
const SPIN_MS = 0.05;
let timer = null;
let immediate = null;
function armTimer() {
  if (timer !== null || immediate !== null || heap.length === 0) return;
  const left = heap[0].due - performance.now();
  // A timer that fired a hair early (the loop's clock is in whole ms) is
  // waited out in one setImmediate turn rather than a whole extra ms.
  if (left <= SPIN_MS) immediate = setImmediate(onTimer);
  else timer = setTimeout(onTimer, Math.max(1, Math.ceil(left)));
}
function onTimer() {
  timer = null;
  immediate = null;
  const now = performance.now();
  while (heap.length && heap[0].due <= now) {
    const p = heapPop();
    if (p.state !== 'running') continue;
    p.sendDue(now);
    if (p.due < end) heapPush(p);
  }
  armTimer();
}

// ---------------------------------------------------------------- the run
let finished = false;
function settle() {
  if (!finished) return;
  if (players.every((p) => p.state === 'done')) report();
}

let reported = false;
function report() {
  if (reported) return;
  reported = true;
  for (const p of players) counts.inputs_unanswered += p.sent - p.acked;
  const cpu = process.cpuUsage();
  const out = {
    tool: 'independent-client (Node.js, ws)',
    url: opt.url,
    players: N,
    rate_hz: RATE_HZ,
    server_tick_rate_hz: serverTickRateHz,
    run_s: (end - t0) / 1000,
    ...counts,
    errors,
    cpu_s: (cpu.user + cpu.system) / 1e6,
    input_to_update: latency.summary(),
    send_lag: sendLag.summary(),
  };
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
}

players.forEach((p, k) => {
  setTimeout(() => p.start(), Math.max(0, t0 + (k / RAMP_PER_S) * 1000 - performance.now()));
});
setTimeout(() => {
  finished = true;
  for (const p of players) {
    if (p.state === 'running') p.finish();
    else if (p.state !== 'closing' && p.state !== 'done') p.fail(`${p.state}_unfinished`);
  }
  settle();
  setTimeout(() => {
    for (const p of players) {
      if (p.state === 'closing') {
        counts.closes_unanswered++;
        p.state = 'done';
        p.ws.terminate();
      }
    }
    report();
  }, CLOSE_TIMEOUT_MS).unref();
}, end - performance.now());
