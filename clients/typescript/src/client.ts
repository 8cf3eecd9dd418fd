// ShardlineClient: one player's connection to a shardline node. Typed
// requests (hello, join, ping) as promises, server pushes (state updates,
// players joining and leaving) as events, and automatic reconnection that
// takes the player's seat back with the resume token.

import { backoffDelayMs, RECONNECT_DEFAULTS, type ReconnectOptions } from './backoff.js';
import {
  decodeServerMessage,
  Encoder,
  INSTANCE_ID_PATTERN,
  MESSAGE_KIND_MAX,
  PLAYER_NAME_BYTES_MAX,
  PROTOCOL_VERSION,
  utf8Bytes,
  type ProtocolVersion,
} from './codec.js';
import { DeltaError, toEntity, WorldHistory } from './delta.js';
import { Emitter } from './events.js';
import { fastest, PROBE_DEFAULTS, probeRegions, type ProbeOptions } from './regions.js';
import { abandon, defaultWebSocket, messageBytes, OPEN, type WebSocketConstructor, type WebSocketLike } from './socket.js';
import {
  ErrorCode,
  errorCodeName,
  ShardlineError,
  type Entity,
  type GameEvent,
  type Joined,
  type Notice,
  type PlayerJoined,
  type PlayerLeft,
  type Region,
  type RegionProbe,
  type ServerError,
  type ServerMessage,
  type State,
  type StateDelta,
  type Transfer,
  type Welcome,
} from './types.js';
import { baseUrl, playUrl } from './urls.js';

/**
 * - `idle`: not connected yet; `connecting`: opening the socket;
 * - `connected`: socket open, Hello not answered yet;
 * - `welcomed`: Welcome received, not in an instance; `joined`: in an instance;
 * - `reconnecting`: the connection dropped; taking the seat back;
 * - `closed`: closed by `close()`, by a final close code, or reconnecting gave up.
 */
export type ClientStatus = 'idle' | 'connecting' | 'connected' | 'welcomed' | 'joined' | 'reconnecting' | 'closed';

export interface ClientEvents {
  status: ClientStatus;
  /** Every Welcome, including the one of a reconnect. */
  welcome: Welcome;
  /** Every Joined (after join(), and after a resume): the full state of the instance. */
  joined: Joined;
  /**
   * One per server tick while in an instance: the world as the server sent
   * it (version 1) or as the client rebuilt it from a delta (version 2),
   * with the ids that entered and left the player's view since the last one.
   */
  state: State;
  /** Version 2: an event from the game (GameEvent), after the `state` of its tick. */
  message: GameEvent;
  /**
   * Version 2: the server sent a delta this client cannot apply (its
   * baseline is not one the client kept, or the bytes break the format).
   * The client drops the connection (`disconnected` with code 4901,
   * CLOSE_BAD_DELTA) and reconnects, which brings a full state.
   */
  protocolError: { message: string };
  playerJoined: PlayerJoined;
  playerLeft: PlayerLeft;
  /** A new round-trip sample, ms (ping() and the automatic pings). */
  rtt: number;
  /** A server Error that did not answer a request (e.g. BadInput for an input). */
  serverError: ServerError;
  /** An operators' message (`shardline fleet broadcast`): show it to the player. */
  notice: Notice;
  /**
   * The fleet moved the player's seat to another node. The client goes there
   * at once (status `reconnecting`, no backoff) and resumes with its token:
   * `welcome`, `joined` and `reconnected` follow, as after a reconnect.
   */
  transfer: Transfer;
  /** The connection dropped; `willReconnect` says whether the client tries to take the seat back. */
  disconnected: { code: number; reason: string; willReconnect: boolean };
  /** A reconnect attempt is scheduled `delayMs` from now. */
  reconnecting: { attempt: number; delayMs: number };
  /** Back: `resumed` when the seat (and entity) came back; otherwise a new player, re-joined to the same instance. */
  reconnected: { resumed: boolean; welcome: Welcome; joined: Joined | null };
  /** Final: no more messages or reconnects (connect() again to start over). */
  closed: { code: number; reason: string };
}

export interface ClientOptions {
  /**
   * Protocol version to speak (default 2): 2 gets deltas against the state
   * the client acknowledged, game events (`message`), z and facing; 1 gets
   * every entity in full each tick and no game events.
   */
  protocolVersion?: ProtocolVersion;
  /** WebSocket class: the global one by default; in Node 20 pass npm `ws`. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect after a drop (default true), or the backoff to use. */
  reconnect?: boolean | Partial<ReconnectOptions>;
  /** Ping this often to keep `rtt` fresh, ms (default 2000; 0: only when ping() is called). */
  pingIntervalMs?: number;
  /**
   * Give up on a connection that brought nothing for this long, ms (default
   * 10000; 0: never). It counts only while messages are expected: in an
   * instance (a StateUpdate every tick) or with automatic pings on.
   */
  deadAfterMs?: number;
  /** Bound on opening a socket and on each request (hello, join, ping), ms (default 10000). */
  requestTimeoutMs?: number;
  /** Region probing for connect({regions}). */
  probe?: Partial<ProbeOptions>;
  /** Clock in ms (default performance.now). */
  now?: () => number;
  /** Source of jitter in [0, 1) (default Math.random). */
  random?: () => number;
  /**
   * On a server with --join-secret: a fresh join ticket from the game's
   * backend, for when a reconnect must say Hello as a new player (the seat
   * expired; tickets are single-use). Without it, such a reconnect ends in
   * `closed`. A resume with the token needs no ticket.
   */
  renewTicket?: () => string | Promise<string>;
  /**
   * In a fleet (nodes sharing a directory): base URLs of nodes to ask
   * (`GET /v1/route?instance=ID`) where the instance went when its node
   * stops answering, e.g. after a failover moved it to a neighbour.
   */
  fleet?: string[];
}

export interface ConnectResult {
  /** The node's base URL. */
  url: string;
  /** The region chosen, when connect() was given regions. */
  region: Region | null;
  /** Every region's measurement, when connect() was given regions. */
  probes: RegionProbe[] | null;
}

/** Close codes after which reconnecting would not help, or would fight a newer connection (4003). */
export const FINAL_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1002, 1003, 1008, 1009, 4003]);

/**
 * Error(WrongNode) answers followed in a row before giving up (a fleet moving
 * the instance meanwhile); also the longest chain of Transfers followed with
 * no StateUpdate in between (nodes passing the player around).
 */
const MAX_REDIRECTS = 3;

/**
 * Server errors after which reconnecting would fail the same way. (Ticket
 * errors are retried when a `renewTicket` option can mint a new ticket.)
 */
const FINAL_ERROR_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.BadMessage,
  ErrorCode.UnsupportedVersion,
  ErrorCode.TicketRequired,
  ErrorCode.TicketInvalid,
  ErrorCode.TicketReplayed,
]);
const TICKET_ERROR_CODES: ReadonlySet<ErrorCode> = new Set([
  ErrorCode.TicketRequired,
  ErrorCode.TicketInvalid,
  ErrorCode.TicketReplayed,
]);

/** The close code `disconnected` reports when the client itself dropped a silent connection. */
export const CLOSE_NO_TRAFFIC = 4900;

/** The close code `disconnected` reports when the client dropped a connection whose delta it could not apply. */
export const CLOSE_BAD_DELTA = 4901;

const DEFAULTS = {
  pingIntervalMs: 2000,
  deadAfterMs: 10_000,
  requestTimeoutMs: 10_000,
};

// How often the silent-connection check runs, ms (at most).
const LIVENESS_CHECK_MS_MAX = 1000;

// RTT smoothing weight of a new sample (TCP's SRTT uses 1/8).
const RTT_SMOOTHING = 1 / 8;

type Timer = ReturnType<typeof setTimeout>;

interface HelloResult {
  welcome: Welcome;
  joined: Joined | null;
}

/** The one request awaiting its answer (the protocol has no request ids, so one at a time). */
interface Pending {
  kind: 'hello' | 'join';
  /** A resume: the Welcome is followed by Joined, and the request waits for both. */
  expectJoined: boolean;
  welcome: Welcome | null;
  resolve: (v: never) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

interface PingWaiter {
  resolve: (rttMs: number) => void;
  reject: (e: Error) => void;
  timer: Timer;
}

export class ShardlineClient extends Emitter<ClientEvents> {
  private readonly WebSocketClass: WebSocketConstructor | undefined;
  private readonly reconnectOpts: ReconnectOptions | null;
  private readonly pingIntervalMs: number;
  private readonly deadAfterMs: number;
  private readonly requestTimeoutMs: number;
  private readonly probeOpts: ProbeOptions;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly renewTicket: (() => string | Promise<string>) | null;
  private readonly fleet: string[];
  private readonly version: ProtocolVersion;
  private readonly enc: Encoder;
  /** Version 2: the worlds of the last Limits.delta_history_ticks deltas applied. */
  private readonly worlds = new WorldHistory(1);
  /** Version 2: the newest tick applied and not acknowledged yet (0: none). */
  private ackDue = 0;

  private sock: WebSocketLike | null = null;
  private base: string | null = null;
  /** The owner's URL from the last Error(WrongNode): the instance runs on another node of the fleet. */
  private redirectUrl: string | null = null;
  /** Where the last Transfer moved the seat, until the recovery loop goes there. */
  private transferTarget: { base: string; instanceId: string } | null = null;
  /** Transfers since the last StateUpdate (bounded by MAX_REDIRECTS). */
  private transfersInARow = 0;
  /** The recovery loop (reconnect or Transfer) is running. */
  private recovering = false;
  private statusValue: ClientStatus = 'idle';
  private nameValue: string | null = null;
  private welcomeValue: Welcome | null = null;
  /** The instance the player is seated in, as last Joined. */
  private joinedValue: Joined | null = null;
  /** The instance the player wants to be in: re-joined when a resume fails. */
  private instanceWanted: string | null = null;
  private stateValue: State | null = null;
  private entitiesValue: Entity[] = [];
  private tickValue = 0;
  private seq = 0;
  private rttSmoothed: number | null = null;
  private rttLastValue: number | null = null;
  private pending: Pending | null = null;
  private readonly pings = new Map<number, PingWaiter>();
  private lastRecvAt = 0;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private liveTimer: ReturnType<typeof setInterval> | null = null;
  private sleepTimer: Timer | null = null;
  private wakeSleep: (() => void) | null = null;
  /** close() was called: nothing may reconnect or report any more. */
  private closing = false;

  constructor(options: ClientOptions = {}) {
    super();
    this.WebSocketClass = options.WebSocket;
    this.reconnectOpts =
      options.reconnect === false
        ? null
        : { ...RECONNECT_DEFAULTS, ...(typeof options.reconnect === 'object' ? options.reconnect : {}) };
    this.pingIntervalMs = options.pingIntervalMs ?? DEFAULTS.pingIntervalMs;
    this.deadAfterMs = options.deadAfterMs ?? DEFAULTS.deadAfterMs;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULTS.requestTimeoutMs;
    this.probeOpts = { ...PROBE_DEFAULTS, ...options.probe };
    this.now = options.now ?? (() => performance.now());
    this.random = options.random ?? Math.random;
    this.renewTicket = options.renewTicket ?? null;
    this.fleet = options.fleet ?? [];
    this.version = options.protocolVersion ?? PROTOCOL_VERSION;
    if (this.version !== 1 && this.version !== 2) throw new RangeError(`protocolVersion must be 1 or 2 (got ${String(this.version)})`);
    this.enc = new Encoder(this.version);
  }

  /** The protocol version this client speaks (the `protocolVersion` option). */
  get protocolVersion(): ProtocolVersion {
    return this.version;
  }

  get status(): ClientStatus {
    return this.statusValue;
  }
  /** Base URL of the node the client talks to (after a redirect or Transfer: the new node), or null before connect(). */
  get url(): string | null {
    return this.base;
  }
  /** The last Welcome (node, region, shard, limits, token). */
  get welcome(): Welcome | null {
    return this.welcomeValue;
  }
  /** The instance the player is in (the last Joined), or null. */
  get joined(): Joined | null {
    return this.joinedValue;
  }
  get playerId(): bigint | null {
    return this.welcomeValue?.playerId ?? null;
  }
  get instanceId(): string | null {
    return this.joinedValue?.instanceId ?? null;
  }
  /** The entity this player controls, or null outside an instance. */
  get entityId(): number | null {
    return this.joinedValue?.entityId ?? null;
  }
  /** The last `state` (null before the first after a Joined). */
  get state(): State | null {
    return this.stateValue;
  }
  /** Entities as of the last Joined or StateUpdate. */
  get entities(): Entity[] {
    return this.entitiesValue;
  }
  /** Server tick as of the last Joined or StateUpdate. */
  get tick(): number {
    return this.tickValue;
  }
  /** Smoothed round-trip time, ms (null before the first Pong). */
  get rtt(): number | null {
    return this.rttSmoothed;
  }
  get rttLast(): number | null {
    return this.rttLastValue;
  }
  /** Seq of the last input sent (inputs the server applied: `state.lastInputSeq`). */
  get inputSeq(): number {
    return this.seq;
  }

  /**
   * Opens the connection: to `target` (a node's base URL, e.g.
   * `wss://eu.example.com` or a page's `location.origin`), or to the region
   * whose /echo answers fastest.
   */
  async connect(target: string | { regions: Region[] }): Promise<ConnectResult> {
    if (this.statusValue !== 'idle' && this.statusValue !== 'closed') {
      throw new ShardlineError(`connect() while ${this.statusValue}`);
    }
    this.closing = false;
    this.welcomeValue = null;
    this.joinedValue = null;
    this.instanceWanted = null;
    this.transferTarget = null;
    this.transfersInARow = 0;
    let url: string;
    let region: Region | null = null;
    let probes: RegionProbe[] | null = null;
    if (typeof target === 'string') {
      url = target;
    } else {
      if (target.regions.length === 0) throw new ShardlineError('connect() needs at least one region');
      this.setStatus('connecting');
      probes = await probeRegions(target.regions, this.webSocketClass(), this.probeOpts, this.now);
      const best = fastest(probes);
      if (!best) {
        this.setStatus('closed');
        const why = probes.map((p) => `${p.region.name}: ${p.error}`).join('; ');
        throw new ShardlineError(`no region answered (${why})`);
      }
      region = best.region;
      url = best.region.url;
    }
    this.base = baseUrl(url);
    this.setStatus('connecting');
    try {
      await this.openSocket(playUrl(this.base));
    } catch (e) {
      this.setStatus('closed');
      throw e;
    }
    this.setStatus('connected');
    return { url: this.base, region, probes };
  }

  /**
   * Introduces the player (name: at most 32 bytes of UTF-8). On a server
   * with --join-secret, pass the join ticket the game's backend issued.
   */
  async hello(name: string, options: { ticket?: string } = {}): Promise<Welcome> {
    this.requireStatus('hello', 'connected');
    if (utf8Bytes(name) > PLAYER_NAME_BYTES_MAX) {
      throw new RangeError(`player name over ${PLAYER_NAME_BYTES_MAX} bytes of UTF-8`);
    }
    this.nameValue = name;
    const { welcome } = await this.request<HelloResult>('hello', this.enc.hello(name, undefined, options.ticket), false);
    this.setStatus(this.joinedValue ? 'joined' : 'welcomed');
    return welcome;
  }

  /**
   * Joins an instance by id (created when missing, unless
   * `createIfMissing: false`), or, without an id, wherever the server
   * places the player. Joining while in another instance moves the player.
   */
  async join(instanceId?: string, options: { createIfMissing?: boolean } = {}): Promise<Joined> {
    this.requireStatus('join', 'welcomed', 'joined');
    if (instanceId !== undefined && !INSTANCE_ID_PATTERN.test(instanceId)) {
      throw new RangeError(`instance id must be 1-64 bytes of [A-Za-z0-9_.-]: ${JSON.stringify(instanceId)}`);
    }
    const create = options.createIfMissing ?? true;
    let joined: Joined;
    try {
      joined = await this.request<Joined>('join', this.enc.join(instanceId, create), false);
    } catch (e) {
      if (!(e instanceof ShardlineError) || e.code !== ErrorCode.WrongNode || instanceId === undefined) throw e;
      joined = await this.joinOnOwner(instanceId, create);
    }
    this.setStatus('joined');
    return joined;
  }

  /**
   * The instance runs on another node of the fleet (Error(WrongNode) named
   * it): connect there (`/play?instance=`), say Hello as a new player (with
   * a fresh ticket from `renewTicket`, if given) and join. Follows at most
   * MAX_REDIRECTS such answers.
   */
  private async joinOnOwner(instanceId: string, create: boolean): Promise<Joined> {
    for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
      const owner = this.redirectUrl as string;
      this.redirectUrl = null;
      this.dropSocket('moving to the node that runs the instance');
      this.base = baseUrl(owner);
      this.joinedValue = null;
      await this.openSocket(playUrl(this.base, instanceId));
      const ticket = this.renewTicket ? await this.renewTicket() : undefined;
      try {
        await this.request<HelloResult>('hello', this.enc.hello(this.nameValue ?? '', undefined, ticket), false);
        return await this.request<Joined>('join', this.enc.join(instanceId, create), false);
      } catch (e) {
        if (!(e instanceof ShardlineError) || e.code !== ErrorCode.WrongNode) throw e;
      }
    }
    throw new ShardlineError(`instance ${instanceId} moved more than ${MAX_REDIRECTS} times while joining`, ErrorCode.WrongNode);
  }

  /** The owner of `instance` according to the first fleet node that knows (null: none does). */
  private async routeInstance(instance: string): Promise<string | null> {
    for (const node of this.fleet) {
      const http = baseUrl(node).replace(/^ws/, 'http');
      try {
        const res = await fetch(`${http}/v1/route?instance=${encodeURIComponent(instance)}`, {
          signal: AbortSignal.timeout(this.requestTimeoutMs),
        });
        if (res.ok) return ((await res.json()) as { url: string }).url;
      } catch {
        // that node is down too: ask the next
      }
    }
    return null;
  }

  /** Closes the current socket without reporting a disconnect. */
  private dropSocket(reason: string): void {
    const s = this.sock;
    this.sock = null;
    this.stopTimers();
    if (s) abandon(s, 1000, reason);
  }

  /** Leaves the instance; the connection stays and may join again. */
  leave(): void {
    this.requireStatus('leave', 'joined');
    this.sendFrame(this.enc.leave());
    this.joinedValue = null;
    this.instanceWanted = null;
    this.stateValue = null;
    this.entitiesValue = [];
    this.worlds.clear();
    this.ackDue = 0;
    this.setStatus('welcomed');
  }

  /**
   * Sends the player's input for the next tick: axes in [-1, 1] (the server
   * clamps), buttons as the game's bit set. Returns its seq (compare with
   * `state.lastInputSeq` for prediction), or null when not in an instance
   * right now (e.g. while reconnecting): that input is not sent.
   * The server applies at most `welcome.limits.inputsPerTickMax` per tick.
   */
  sendInput(moveX: number, moveY: number, buttons = 0): number | null {
    if (!Number.isFinite(moveX) || !Number.isFinite(moveY)) {
      throw new RangeError(`input axes must be finite numbers (got ${moveX}, ${moveY})`);
    }
    if (this.statusValue !== 'joined' || !this.sock || this.sock.readyState !== OPEN) return null;
    this.seq = (this.seq + 1) >>> 0;
    // Version 2: the input carries the acknowledgement that would otherwise go alone.
    const ack = this.ackDue;
    this.ackDue = 0;
    this.sendFrame(this.enc.input(this.seq, moveX, moveY, buttons >>> 0, ack));
    return this.seq;
  }

  /**
   * Sends a game message (`Game::on_message` gets it at the next tick, in
   * order with this player's inputs): `kind` is the game's own (0–65535),
   * `body` at most `welcome.limits.messageBytesMax` bytes. Returns false
   * when not in an instance right now (e.g. while reconnecting): it is not
   * sent. The server takes at most `limits.messagesPerTickMax` per tick.
   */
  send(kind: number, body: Uint8Array = new Uint8Array(0)): boolean {
    if (!Number.isInteger(kind) || kind < 0 || kind > MESSAGE_KIND_MAX) {
      throw new RangeError(`message kind must be an integer in [0, ${MESSAGE_KIND_MAX}] (got ${kind})`);
    }
    if (!(body instanceof Uint8Array)) throw new TypeError('message body must be a Uint8Array');
    const max = this.welcomeValue?.limits.messageBytesMax ?? 0;
    if (max > 0 && body.length > max) throw new RangeError(`message body of ${body.length} bytes is over limits.messageBytesMax (${max})`);
    if (this.statusValue !== 'joined' || !this.sock || this.sock.readyState !== OPEN) return false;
    return this.sendFrame(this.enc.message(kind, body));
  }

  /** Measures one round trip to the node, ms; also updates `rtt`. */
  ping(): Promise<number> {
    if (!this.sock || (this.statusValue !== 'welcomed' && this.statusValue !== 'joined')) {
      return Promise.reject(new ShardlineError(`ping() while ${this.statusValue}`));
    }
    let t = this.now();
    while (this.pings.has(t)) t += 1e-3;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(t);
        reject(new ShardlineError(`no Pong within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      this.pings.set(t, { resolve, reject, timer });
      this.sendFrame(this.enc.ping(t));
    });
  }

  /** Closes for good: no reconnect. Emits `closed`. */
  close(): void {
    if (this.statusValue === 'closed' || this.statusValue === 'idle') return;
    this.closing = true;
    this.wakeSleep?.();
    const s = this.sock;
    this.sock = null;
    this.stopTimers();
    if (s) {
      try {
        s.close(1000, 'client closed');
      } catch {
        // Already closing.
      }
    }
    const err = new ShardlineError('the client was closed', null, 1000);
    this.settle(err);
    this.failPings(err);
    this.finalClose(1000, 'closed by the client');
  }

  // ------------------------------------------------------------ connection

  private webSocketClass(): WebSocketConstructor {
    return this.WebSocketClass ?? defaultWebSocket();
  }

  /** Opens `url` as the current socket; bounded by requestTimeoutMs. */
  private openSocket(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let sock: WebSocketLike;
      try {
        sock = new (this.webSocketClass())(url);
      } catch (e) {
        reject(e);
        return;
      }
      sock.binaryType = 'arraybuffer';
      this.sock = sock;
      let opened = false;
      const fail = (err: ShardlineError) => {
        clearTimeout(timer);
        if (this.sock === sock) this.sock = null;
        reject(err);
      };
      const timer = setTimeout(() => {
        abandon(sock, 1000, 'open timed out');
        fail(new ShardlineError(`could not open ${url} within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      sock.onopen = () => {
        if (this.sock !== sock) return;
        opened = true;
        clearTimeout(timer);
        this.lastRecvAt = this.now();
        this.startTimers();
        resolve();
      };
      sock.onmessage = (ev: { data: unknown }) => {
        if (this.sock === sock) this.onFrame(sock, ev.data);
      };
      // An error is always followed by close, which says what happened.
      sock.onerror = () => {};
      sock.onclose = (ev: { code: number; reason?: string }) => {
        if (!opened) fail(new ShardlineError(`could not connect to ${url} (close ${ev.code})`, null, ev.code));
        else this.onSocketClose(sock, ev.code, ev.reason ?? '');
      };
    });
  }

  private onSocketClose(sock: WebSocketLike, code: number, reason: string): void {
    if (sock !== this.sock) return;
    this.sock = null;
    this.stopTimers();
    const err = new ShardlineError(`connection closed (${code}${reason ? `: ${reason}` : ''})`, null, code);
    this.settle(err);
    this.failPings(err);
    // A reconnect attempt sees the rejection and goes on by itself.
    if (this.recovering || this.stopped()) return;
    const willReconnect = this.reconnectOpts !== null && this.welcomeValue !== null && !FINAL_CLOSE_CODES.has(code);
    this.emit('disconnected', { code, reason, willReconnect });
    if (willReconnect) void this.recover(code, true);
    else this.finalClose(code, reason);
  }

  /** close() was called, or the client closed for good: no loop may go on. */
  private stopped(): boolean {
    return this.closing || this.statusValue === 'closed';
  }

  /**
   * The server moved the seat to another node (Transfer) and is about to
   * close this connection with 1000: go there now with the resume token,
   * rather than treat that close as a drop. The new node becomes the base
   * URL for later reconnects.
   */
  private onTransfer(sock: WebSocketLike, t: Transfer): void {
    let base: string | null = null;
    try {
      base = baseUrl(t.url);
    } catch {
      // not a ws(s)/http(s) URL: refused below
    }
    if (base === null || !INSTANCE_ID_PATTERN.test(t.instanceId) || this.welcomeValue === null) {
      abandon(sock, 1002, 'unusable Transfer');
      this.onSocketClose(sock, 1002, `unusable Transfer (before Welcome, or a bad URL or instance id): ${JSON.stringify(t)}`);
      return;
    }
    this.emit('transfer', t);
    if (this.stopped() || this.sock !== sock) return; // a listener closed the client
    this.sock = null;
    this.stopTimers();
    try {
      sock.close(1000, 'transferred');
    } catch {
      // already closing: the server closes it right after a Transfer anyway
    }
    const err = new ShardlineError(`the seat moved to ${t.instanceId} on ${base} (Transfer)`);
    this.settle(err);
    this.failPings(err);
    this.joinedValue = null;
    this.transfersInARow++;
    if (this.transfersInARow > MAX_REDIRECTS) {
      this.finalClose(1008, `moved by more than ${MAX_REDIRECTS} Transfers in a row, the last to ${t.instanceId} on ${base}`);
      return;
    }
    this.transferTarget = { base, instanceId: t.instanceId };
    // A running loop sees its attempt fail and follows the Transfer itself.
    if (!this.recovering) void this.recover(1000, false);
  }

  /**
   * Takes the seat back: at once where a Transfer points, otherwise after a
   * backoff delay per attempt. Ends in `reconnected`, or in `closed` when an
   * answer says retrying cannot help or the attempts ran out.
   * `dropReported`: `disconnected` was emitted already.
   */
  private async recover(dropCode: number, dropReported: boolean): Promise<void> {
    this.recovering = true;
    try {
      await this.recoverLoop(dropCode, dropReported);
    } finally {
      this.recovering = false;
    }
  }

  private async recoverLoop(dropCode: number, dropReported: boolean): Promise<void> {
    const r = this.reconnectOpts;
    this.setStatus('reconnecting');
    let lastCode = dropCode;
    let lastError = '';
    let attempt = 0;
    for (;;) {
      const transfer = this.transferTarget;
      this.transferTarget = null;
      if (transfer) {
        this.base = transfer.base;
        this.instanceWanted = transfer.instanceId;
      } else {
        if (r === null || attempt >= r.maxAttempts) break;
        const delayMs = backoffDelayMs(attempt, r, this.random);
        attempt++;
        this.emit('reconnecting', { attempt, delayMs });
        await this.sleep(delayMs);
        if (this.stopped()) return;
      }
      try {
        const result = await this.reconnectOnce(transfer !== null);
        if (this.stopped()) return;
        if (this.transferTarget) continue; // moved again meanwhile
        this.setStatus(this.joinedValue ? 'joined' : 'welcomed');
        this.emit('reconnected', result);
        return;
      } catch (e) {
        if (this.stopped()) return;
        if (this.transferTarget) continue; // a Transfer cut this attempt short: follow it now
        const s = this.sock;
        this.sock = null;
        this.stopTimers();
        if (s) abandon(s, 1000, 'reconnect attempt failed');
        const closeCode = e instanceof ShardlineError ? e.closeCode : null;
        const code = e instanceof ShardlineError ? e.code : null;
        lastError = e instanceof Error ? e.message : String(e);
        if (closeCode !== null) lastCode = closeCode;
        const ticketRenewable = code !== null && TICKET_ERROR_CODES.has(code) && this.renewTicket !== null;
        if ((closeCode !== null && FINAL_CLOSE_CODES.has(closeCode)) || (code !== null && FINAL_ERROR_CODES.has(code) && !ticketRenewable)) {
          this.finalClose(closeCode ?? 1008, lastError);
          return;
        }
        if (!dropReported) {
          // A Transfer that could not be followed: from here on, a drop.
          dropReported = true;
          this.emit('disconnected', { code: lastCode, reason: lastError, willReconnect: r !== null && r.maxAttempts > 0 });
        }
      }
    }
    this.finalClose(lastCode, r === null ? lastError : `gave up after ${r.maxAttempts} reconnect attempts (last: ${lastError})`);
  }

  /**
   * One attempt: connect to the instance's owner, Hello with the token
   * (Welcome{resumed} + Joined: the seat is back), or, when the server
   * refuses the token, Hello as a new player (with a fresh ticket from
   * `renewTicket`, if given) and join the same instance. `seatReserved`: a
   * Transfer said the seat waits there, so Joined follows the Welcome.
   */
  private async reconnectOnce(seatReserved: boolean): Promise<ClientEvents['reconnected']> {
    const want = this.instanceWanted;
    const name = this.nameValue ?? '';
    const token = (this.welcomeValue as Welcome).resumeToken;
    let result: HelloResult;
    let resumed = false;
    try {
      // The instance may have moved to another node of the fleet (its node
      // died and a neighbour took it over): Error(WrongNode) names the
      // owner, where the token resumes the seat.
      for (let hop = 0; ; hop++) {
        try {
          await this.openSocket(playUrl(this.base as string, want));
        } catch (e) {
          // The node is gone: ask the fleet where the instance runs now.
          const owner = want !== null ? await this.routeInstance(want) : null;
          if (owner === null || baseUrl(owner) === this.base) throw e;
          this.base = baseUrl(owner);
          await this.openSocket(playUrl(this.base, want));
        }
        try {
          result = await this.request<HelloResult>('hello', this.enc.hello(name, token), seatReserved || this.joinedValue !== null);
          break;
        } catch (e) {
          if (!(e instanceof ShardlineError) || e.code !== ErrorCode.WrongNode || hop + 1 >= MAX_REDIRECTS) throw e;
          this.dropSocket('moving to the node that runs the instance');
          this.base = baseUrl(this.redirectUrl as string);
          this.redirectUrl = null;
        }
      }
      resumed = result.welcome.resumed;
    } catch (e) {
      if (!(e instanceof ShardlineError) || e.code !== ErrorCode.ResumeRefused) throw e;
      this.joinedValue = null;
      const ticket = this.renewTicket ? await this.renewTicket() : undefined;
      if (this.closing || !this.sock) throw new ShardlineError('connection lost while renewing the join ticket');
      result = await this.request<HelloResult>('hello', this.enc.hello(name, undefined, ticket), false);
    }
    // A Joined may also have come unasked (a seat the client thought lost).
    let joined = result.joined ?? this.joinedValue;
    if (want !== null && joined === null) {
      joined = await this.request<Joined>('join', this.enc.join(want, true), false);
    }
    return { resumed, welcome: result.welcome, joined };
  }

  private finalClose(code: number, reason: string): void {
    if (this.statusValue === 'closed') return;
    this.stopTimers();
    this.setStatus('closed');
    this.emit('closed', { code, reason });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wakeSleep = () => {
        if (this.sleepTimer !== null) clearTimeout(this.sleepTimer);
        this.sleepTimer = null;
        this.wakeSleep = null;
        resolve();
      };
      this.sleepTimer = setTimeout(() => this.wakeSleep?.(), ms);
    });
  }

  private startTimers(): void {
    this.stopTimers();
    if (this.pingIntervalMs > 0) {
      this.pingTimer = setInterval(() => {
        if (this.statusValue === 'welcomed' || this.statusValue === 'joined') this.ping().catch(() => {});
      }, this.pingIntervalMs);
    }
    if (this.deadAfterMs > 0) {
      this.liveTimer = setInterval(() => this.checkLiveness(), Math.min(LIVENESS_CHECK_MS_MAX, this.deadAfterMs / 4));
    }
  }

  private stopTimers(): void {
    if (this.pingTimer !== null) clearInterval(this.pingTimer);
    if (this.liveTimer !== null) clearInterval(this.liveTimer);
    this.pingTimer = this.liveTimer = null;
  }

  /** Drops a connection that went silent while messages were due (a network that stopped without a FIN). */
  private checkLiveness(): void {
    const s = this.sock;
    if (!s) return;
    const expecting = this.statusValue === 'joined' || (this.statusValue === 'welcomed' && this.pingIntervalMs > 0);
    const silentMs = this.now() - this.lastRecvAt;
    if (!expecting || silentMs <= this.deadAfterMs) return;
    abandon(s, CLOSE_NO_TRAFFIC, 'no traffic');
    this.onSocketClose(s, CLOSE_NO_TRAFFIC, `no message from the server for ${Math.round(silentMs)} ms`);
  }

  private sendFrame(bytes: Uint8Array): boolean {
    const s = this.sock;
    if (!s || s.readyState !== OPEN) return false;
    s.send(bytes);
    return true;
  }

  // ------------------------------------------------------------ requests

  private request<T>(kind: Pending['kind'], bytes: Uint8Array, expectJoined: boolean): Promise<T> {
    if (this.pending) {
      return Promise.reject(new ShardlineError(`${kind}() while a ${this.pending.kind}() awaits its answer`));
    }
    if (!this.sock) return Promise.reject(new ShardlineError(`${kind}() without a connection`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(
        () => this.settle(new ShardlineError(`no answer to ${kind} within ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs,
      );
      this.pending = { kind, expectJoined, welcome: null, resolve: resolve as (v: never) => void, reject, timer };
      this.sendFrame(bytes);
    });
  }

  private settle(err: Error | null, value?: unknown): void {
    const p = this.pending;
    if (!p) return;
    this.pending = null;
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else (p.resolve as (v: unknown) => void)(value);
  }

  private failPings(err: Error): void {
    for (const w of this.pings.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.pings.clear();
  }

  private requireStatus(what: string, ...allowed: ClientStatus[]): void {
    if (!allowed.includes(this.statusValue)) {
      throw new ShardlineError(`${what}() while ${this.statusValue} (needs ${allowed.join(' or ')})`);
    }
  }

  private setStatus(s: ClientStatus): void {
    if (this.statusValue === s) return;
    this.statusValue = s;
    this.emit('status', s);
  }

  // ------------------------------------------------------------ messages

  private onFrame(sock: WebSocketLike, data: unknown): void {
    this.lastRecvAt = this.now();
    const bytes = messageBytes(data);
    if (!bytes) return; // /play is binary-only; ignore anything else
    let msg: ServerMessage | null;
    try {
      msg = decodeServerMessage(bytes);
    } catch (e) {
      abandon(sock, 1002, 'undecodable frame');
      this.onSocketClose(sock, 1002, `undecodable server frame: ${e instanceof Error ? e.message : String(e)}`);
      return;
    }
    if (msg?.type === 'transfer') this.onTransfer(sock, msg.transfer);
    else if (msg?.type === 'delta') this.onDelta(sock, msg.delta, bytes.length);
    else if (msg) this.onMessage(msg, bytes.length);
  }

  /**
   * Version 2: rebuilds the world of the delta's tick, emits it as `state`,
   * and acknowledges it (in an input sent by a `state` listener, or in an
   * Ack right after). A delta that cannot be applied drops the connection
   * (CLOSE_BAD_DELTA); the reconnect brings a full state.
   */
  private onDelta(sock: WebSocketLike, d: StateDelta, frameBytes: number): void {
    // Still in flight after leave(): nothing to apply it to, and nothing to ack.
    if (this.joinedValue === null) return;
    let world;
    try {
      world = this.worlds.apply(d);
    } catch (e) {
      if (!(e instanceof DeltaError)) throw e;
      this.emit('protocolError', { message: e.message });
      if (this.sock !== sock) return; // a listener closed the client
      abandon(sock, CLOSE_BAD_DELTA, 'bad delta');
      this.onSocketClose(sock, CLOSE_BAD_DELTA, e.message);
      return;
    }
    const entities: Entity[] = [];
    for (const q of world.entities.values()) entities.push(toEntity(q));
    this.ackDue = d.tick;
    this.takeState({
      tick: d.tick,
      lastInputSeq: d.lastInputSeq,
      inputsApplied: d.inputsApplied,
      entities,
      custom: world.custom,
      baselineTick: d.baselineTick,
      frameBytes,
      entered: [],
      left: [],
    });
    if (this.ackDue !== 0 && this.sock === sock) {
      this.sendFrame(this.enc.ack(this.ackDue));
      this.ackDue = 0;
    }
  }

  /** Fills in what entered and left since the last state, keeps `s` as the current state, emits it. */
  private takeState(s: State): void {
    const before = new Set<number>();
    for (const e of this.entitiesValue) before.add(e.id);
    for (const e of s.entities) {
      if (!before.delete(e.id)) s.entered.push(e.id);
    }
    for (const id of before) s.left.push(id);
    this.transfersInARow = 0;
    this.stateValue = s;
    this.entitiesValue = s.entities;
    this.tickValue = s.tick;
    this.emit('state', s);
  }

  private onMessage(m: ServerMessage, frameBytes: number): void {
    const p = this.pending;
    switch (m.type) {
      case 'welcome':
        this.welcomeValue = m.welcome;
        this.worlds.resize(Math.max(1, m.welcome.limits.deltaHistoryTicks));
        this.emit('welcome', m.welcome);
        if (p?.kind === 'hello') {
          if (p.expectJoined && m.welcome.resumed) p.welcome = m.welcome;
          else this.settle(null, { welcome: m.welcome, joined: null } satisfies HelloResult);
        }
        break;
      case 'joined':
        this.joinedValue = m.joined;
        this.instanceWanted = m.joined.instanceId;
        this.stateValue = null;
        this.entitiesValue = m.joined.entities;
        this.tickValue = m.joined.tick;
        // A new seat or a resume: the next delta is a full state.
        this.worlds.clear();
        this.ackDue = 0;
        this.emit('joined', m.joined);
        if (p?.kind === 'join') this.settle(null, m.joined);
        else if (p?.kind === 'hello' && p.welcome) this.settle(null, { welcome: p.welcome, joined: m.joined } satisfies HelloResult);
        break;
      case 'state':
        this.takeState({ ...m.state, baselineTick: 0, frameBytes, entered: [], left: [] });
        break;
      case 'delta':
        break; // handled in onFrame, which knows the socket
      case 'event':
        this.emit('message', m.event);
        break;
      case 'playerJoined':
        this.emit('playerJoined', m.playerJoined);
        break;
      case 'playerLeft':
        this.emit('playerLeft', m.playerLeft);
        break;
      case 'pong': {
        const w = this.pings.get(m.pong.clientTime);
        if (!w) break; // answered after its timeout
        this.pings.delete(m.pong.clientTime);
        clearTimeout(w.timer);
        const sample = this.now() - m.pong.clientTime;
        this.rttLastValue = sample;
        this.rttSmoothed = this.rttSmoothed === null ? sample : this.rttSmoothed + (sample - this.rttSmoothed) * RTT_SMOOTHING;
        this.emit('rtt', sample);
        w.resolve(sample);
        break;
      }
      case 'notice':
        this.emit('notice', m.notice);
        break;
      case 'transfer':
        break; // handled in onFrame, which knows the socket
      case 'error':
        // BadInput answers an input, never a request.
        if (m.error.code === ErrorCode.WrongNode) this.redirectUrl = m.error.message;
        if (p && m.error.code !== ErrorCode.BadInput) {
          this.settle(new ShardlineError(`${p.kind} refused: ${errorCodeName(m.error.code)}: ${m.error.message}`, m.error.code));
        } else {
          this.emit('serverError', m.error);
        }
        break;
    }
  }
}
