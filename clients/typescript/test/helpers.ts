// Test support: a real shardline server on 127.0.0.1:0, a TCP proxy that
// can cut, stall or delay connections, and bounded waits on client events.

import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

import WebSocket from 'ws';

import { ShardlineClient, type ClientEvents, type ClientOptions, type WebSocketConstructor } from '../src/index.js';

// Every wait in these tests is bounded by this, or less.
export const WAIT_MS_MAX = 10_000;

/** The package directory (tests run from build/test/). */
const PKG_DIR = fileURLToPath(new URL('../../', import.meta.url));

export function shardlineBin(): string {
  const bin = process.env.SHARDLINE_BIN ?? `${PKG_DIR}../../target/release/shardline`;
  if (!existsSync(bin)) {
    throw new Error(`no shardline binary at ${bin}: build it (cargo build --release) or set SHARDLINE_BIN`);
  }
  return bin;
}

// util-linux's setpriv, when this is Linux and it is installed.
const SETPRIV = process.platform === 'linux' && spawnSync('setpriv', ['--version']).status === 0;

/**
 * Spawns `program` so that it dies with this process even when this process
 * is killed (SIGKILL, the test runner's timeout): on Linux it runs under
 * `setpriv --pdeathsig KILL`, which execs it with the kernel's parent-death
 * signal set (same pid). Elsewhere it is a plain spawn.
 */
export function spawnTied(program: string, args: string[], options: SpawnOptions): ChildProcess {
  return SETPRIV ? spawn('setpriv', ['--pdeathsig', 'KILL', '--', program, ...args], options) : spawn(program, args, options);
}

/** A port that was free a moment ago (for redis-server, which cannot bind port 0). */
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

export interface Redis {
  /** redis://127.0.0.1:PORT */
  url: string;
  stop(): void;
}

/**
 * A throw-away redis-server (no persistence) for a fleet's directory. It
 * cannot bind port 0 (`--port 0` turns TCP off), so a free port is picked;
 * if another process takes it first, redis-server says so and exits, and
 * another port is tried. A machine without redis-server fails the test,
 * naming the package.
 */
export async function startRedis(): Promise<Redis> {
  const attempts = 10;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = await freePort();
    const child = spawnTied('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const outcome = await new Promise<string>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve(`redis-server did not start within ${WAIT_MS_MAX} ms:\n${out}`), WAIT_MS_MAX);
      const done = (why: string) => {
        clearTimeout(timer);
        resolve(why);
      };
      child.on('error', (e) =>
        done(`cannot run redis-server (${e.message}): install Debian's package: apt-get install -y redis-server (bash scripts/test.sh does, as root)`),
      );
      const onData = (c: Buffer) => {
        out += c.toString();
        if (/ready to accept connections/i.test(out)) done('ready');
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.on('exit', () => done(/Address already in use/.test(out) ? 'in use' : `redis-server exited:\n${out}`));
    });
    if (outcome === 'ready') {
      child.stdout?.resume();
      child.stderr?.resume();
      return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
    }
    child.kill('SIGKILL');
    if (outcome !== 'in use') throw new Error(outcome);
  }
  throw new Error(`redis-server found no free port in ${attempts} attempts`);
}

export interface Server {
  /** ws://127.0.0.1:PORT */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/** Starts `shardline serve` on a free port; resolves once it listens. */
export function startServer(extraArgs: string[] = []): Promise<Server> {
  const args = [
    'serve',
    '--listen', '127.0.0.1:0',
    '--shards', '2',
    '--admin-listen', 'off',
    '--snapshot-interval-ms', '0',
    '--no-restore',
    '--load-shedding', 'off',
    ...extraArgs,
  ];
  const child = spawnTied(shardlineBin(), args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, RUST_LOG: 'info' } });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`shardline did not report listening within ${WAIT_MS_MAX} ms; output:\n${out}`));
    }, WAIT_MS_MAX);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /shardline listening on (127\.0\.0\.1:(\d+))/.exec(out);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        child.stdout?.resume();
        resolve({ url: `ws://${m[1]}`, port: Number(m[2]), stop: () => stopChild(child) });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`shardline exited (${code}) before listening; output:\n${out}`));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), WAIT_MS_MAX);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** `ws` constructor that records every socket it makes, so a test can reach under the client. */
export function recordingWebSocket(): { WebSocket: WebSocketConstructor; sockets: WebSocket[] } {
  const sockets: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
  }
  return { WebSocket: Recording as unknown as WebSocketConstructor, sockets };
}

export function newClient(options: ClientOptions = {}): ShardlineClient {
  return new ShardlineClient({ WebSocket: WebSocket as unknown as WebSocketConstructor, ...options });
}

/** Resolves with the first `event` whose payload passes `pred`; rejects after `ms`. */
export function waitForEvent<K extends keyof ClientEvents>(
  client: ShardlineClient,
  event: K,
  pred: (p: ClientEvents[K]) => boolean = () => true,
  ms = WAIT_MS_MAX,
): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${String(event)}' event passing the test within ${ms} ms (status ${client.status})`));
    }, ms);
    const off = client.on(event, (p) => {
      if (!pred(p)) return;
      clearTimeout(timer);
      off();
      resolve(p);
    });
  });
}

/**
 * A TCP proxy in front of the server. It can cut every connection (both
 * sides see the TCP connection end), stall them (bytes are swallowed: a
 * network that went quiet without a FIN), refuse new ones, or delay every
 * chunk (a far-away region).
 */
export class TcpProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<{ client: net.Socket; upstream: net.Socket; stalled: boolean }>();
  refusing = false;
  delayMs = 0;
  port = 0;
  accepted = 0;

  private constructor(private readonly targetPort: number) {
    this.server = net.createServer((client) => this.onConnection(client));
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const p = new TcpProxy(targetPort);
    await new Promise<void>((resolve) => p.server.listen(0, '127.0.0.1', resolve));
    p.port = (p.server.address() as net.AddressInfo).port;
    return p;
  }

  get url(): string {
    return `ws://127.0.0.1:${this.port}`;
  }

  get open(): number {
    return this.pairs.size;
  }

  /** Resets every connection now (RST to both sides). */
  cut(): void {
    for (const p of this.pairs) {
      p.client.resetAndDestroy();
      p.upstream.resetAndDestroy();
    }
    this.pairs.clear();
  }

  /** Existing connections stay open but carry nothing more, either way. */
  stall(): void {
    for (const p of this.pairs) p.stalled = true;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(client: net.Socket): void {
    if (this.refusing) {
      client.resetAndDestroy();
      return;
    }
    this.accepted++;
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    const pair = { client, upstream, stalled: false };
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk) => {
        if (pair.stalled) return;
        if (this.delayMs > 0) setTimeout(() => to.destroyed || to.write(chunk), this.delayMs);
        else to.write(chunk);
      });
      from.on('close', () => {
        this.pairs.delete(pair);
        to.destroy();
      });
      from.on('error', () => to.destroy());
    };
    forward(client, upstream);
    forward(upstream, client);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` every 20 ms until it holds; throws after `ms`. */
export async function eventually(what: string, cond: () => boolean, ms = WAIT_MS_MAX): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(20);
  }
}
