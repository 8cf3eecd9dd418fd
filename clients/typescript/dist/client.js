// ShardlineClient: one player's connection to a shardline node. Typed
// requests (hello, join, ping) as promises, server pushes (state updates,
// players joining and leaving) as events, and automatic reconnection that
// takes the player's seat back with the resume token.
import { backoffDelayMs, RECONNECT_DEFAULTS } from './backoff.js';
import { decodeServerMessage, Encoder, INSTANCE_ID_PATTERN, MESSAGE_KIND_MAX, PLAYER_NAME_BYTES_MAX, PROTOCOL_VERSION, utf8Bytes, } from './codec.js';
import { DeltaError, toEntity, WorldHistory } from './delta.js';
import { Emitter } from './events.js';
import { fastest, PROBE_DEFAULTS, probeRegions } from './regions.js';
import { abandon, defaultWebSocket, messageBytes, OPEN } from './socket.js';
import { ErrorCode, errorCodeName, ShardlineError, } from './types.js';
import { baseUrl, playUrl } from './urls.js';
/** Close codes after which reconnecting would not help, or would fight a newer connection (4003). */
export const FINAL_CLOSE_CODES = new Set([1000, 1002, 1003, 1008, 1009, 4003]);
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
const FINAL_ERROR_CODES = new Set([
    ErrorCode.BadMessage,
    ErrorCode.UnsupportedVersion,
    ErrorCode.TicketRequired,
    ErrorCode.TicketInvalid,
    ErrorCode.TicketReplayed,
]);
const TICKET_ERROR_CODES = new Set([
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
    deadAfterMs: 10000,
    requestTimeoutMs: 10000,
};
// How often the silent-connection check runs, ms (at most).
const LIVENESS_CHECK_MS_MAX = 1000;
// RTT smoothing weight of a new sample (TCP's SRTT uses 1/8).
const RTT_SMOOTHING = 1 / 8;
export class ShardlineClient extends Emitter {
    constructor(options = {}) {
        super();
        /** Version 2: the worlds of the last Limits.delta_history_ticks deltas applied. */
        this.worlds = new WorldHistory(1);
        /** Version 2: the newest tick applied and not acknowledged yet (0: none). */
        this.ackDue = 0;
        this.sock = null;
        this.base = null;
        /** The owner's URL from the last Error(WrongNode): the instance runs on another node of the fleet. */
        this.redirectUrl = null;
        /** Where the last Transfer moved the seat, until the recovery loop goes there. */
        this.transferTarget = null;
        /** Transfers since the last StateUpdate (bounded by MAX_REDIRECTS). */
        this.transfersInARow = 0;
        /** The recovery loop (reconnect or Transfer) is running. */
        this.recovering = false;
        this.statusValue = 'idle';
        this.nameValue = null;
        this.welcomeValue = null;
        /** The instance the player is seated in, as last Joined. */
        this.joinedValue = null;
        /** The instance the player wants to be in: re-joined when a resume fails. */
        this.instanceWanted = null;
        this.stateValue = null;
        this.entitiesValue = [];
        this.tickValue = 0;
        this.seq = 0;
        this.rttSmoothed = null;
        this.rttLastValue = null;
        this.pending = null;
        this.pings = new Map();
        this.lastRecvAt = 0;
        this.pingTimer = null;
        this.liveTimer = null;
        this.sleepTimer = null;
        this.wakeSleep = null;
        /** close() was called: nothing may reconnect or report any more. */
        this.closing = false;
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
        if (this.version !== 1 && this.version !== 2)
            throw new RangeError(`protocolVersion must be 1 or 2 (got ${String(this.version)})`);
        this.enc = new Encoder(this.version);
    }
    /** The protocol version this client speaks (the `protocolVersion` option). */
    get protocolVersion() {
        return this.version;
    }
    get status() {
        return this.statusValue;
    }
    /** Base URL of the node the client talks to (after a redirect or Transfer: the new node), or null before connect(). */
    get url() {
        return this.base;
    }
    /** The last Welcome (node, region, shard, limits, token). */
    get welcome() {
        return this.welcomeValue;
    }
    /** The instance the player is in (the last Joined), or null. */
    get joined() {
        return this.joinedValue;
    }
    get playerId() {
        return this.welcomeValue?.playerId ?? null;
    }
    get instanceId() {
        return this.joinedValue?.instanceId ?? null;
    }
    /** The entity this player controls, or null outside an instance. */
    get entityId() {
        return this.joinedValue?.entityId ?? null;
    }
    /** The last `state` (null before the first after a Joined). */
    get state() {
        return this.stateValue;
    }
    /** Entities as of the last Joined or StateUpdate. */
    get entities() {
        return this.entitiesValue;
    }
    /** Server tick as of the last Joined or StateUpdate. */
    get tick() {
        return this.tickValue;
    }
    /** Smoothed round-trip time, ms (null before the first Pong). */
    get rtt() {
        return this.rttSmoothed;
    }
    get rttLast() {
        return this.rttLastValue;
    }
    /** Seq of the last input sent (inputs the server applied: `state.lastInputSeq`). */
    get inputSeq() {
        return this.seq;
    }
    /**
     * Opens the connection: to `target` (a node's base URL, e.g.
     * `wss://eu.example.com` or a page's `location.origin`), or to the region
     * whose /echo answers fastest.
     */
    async connect(target) {
        if (this.statusValue !== 'idle' && this.statusValue !== 'closed') {
            throw new ShardlineError(`connect() while ${this.statusValue}`);
        }
        this.closing = false;
        this.welcomeValue = null;
        this.joinedValue = null;
        this.instanceWanted = null;
        this.transferTarget = null;
        this.transfersInARow = 0;
        let url;
        let region = null;
        let probes = null;
        if (typeof target === 'string') {
            url = target;
        }
        else {
            if (target.regions.length === 0)
                throw new ShardlineError('connect() needs at least one region');
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
        }
        catch (e) {
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
    async hello(name, options = {}) {
        this.requireStatus('hello', 'connected');
        if (utf8Bytes(name) > PLAYER_NAME_BYTES_MAX) {
            throw new RangeError(`player name over ${PLAYER_NAME_BYTES_MAX} bytes of UTF-8`);
        }
        this.nameValue = name;
        const { welcome } = await this.request('hello', this.enc.hello(name, undefined, options.ticket), false);
        this.setStatus(this.joinedValue ? 'joined' : 'welcomed');
        return welcome;
    }
    /**
     * Joins an instance by id (created when missing, unless
     * `createIfMissing: false`), or, without an id, wherever the server
     * places the player. Joining while in another instance moves the player.
     */
    async join(instanceId, options = {}) {
        this.requireStatus('join', 'welcomed', 'joined');
        if (instanceId !== undefined && !INSTANCE_ID_PATTERN.test(instanceId)) {
            throw new RangeError(`instance id must be 1-64 bytes of [A-Za-z0-9_.-]: ${JSON.stringify(instanceId)}`);
        }
        const create = options.createIfMissing ?? true;
        let joined;
        try {
            joined = await this.request('join', this.enc.join(instanceId, create), false);
        }
        catch (e) {
            if (!(e instanceof ShardlineError) || e.code !== ErrorCode.WrongNode || instanceId === undefined)
                throw e;
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
    async joinOnOwner(instanceId, create) {
        for (let hop = 0; hop < MAX_REDIRECTS; hop++) {
            const owner = this.redirectUrl;
            this.redirectUrl = null;
            this.dropSocket('moving to the node that runs the instance');
            this.base = baseUrl(owner);
            this.joinedValue = null;
            await this.openSocket(playUrl(this.base, instanceId));
            const ticket = this.renewTicket ? await this.renewTicket() : undefined;
            try {
                await this.request('hello', this.enc.hello(this.nameValue ?? '', undefined, ticket), false);
                return await this.request('join', this.enc.join(instanceId, create), false);
            }
            catch (e) {
                if (!(e instanceof ShardlineError) || e.code !== ErrorCode.WrongNode)
                    throw e;
            }
        }
        throw new ShardlineError(`instance ${instanceId} moved more than ${MAX_REDIRECTS} times while joining`, ErrorCode.WrongNode);
    }
    /** The owner of `instance` according to the first fleet node that knows (null: none does). */
    async routeInstance(instance) {
        for (const node of this.fleet) {
            const http = baseUrl(node).replace(/^ws/, 'http');
            try {
                const res = await fetch(`${http}/v1/route?instance=${encodeURIComponent(instance)}`, {
                    signal: AbortSignal.timeout(this.requestTimeoutMs),
                });
                if (res.ok)
                    return (await res.json()).url;
            }
            catch {
                // that node is down too: ask the next
            }
        }
        return null;
    }
    /** Closes the current socket without reporting a disconnect. */
    dropSocket(reason) {
        const s = this.sock;
        this.sock = null;
        this.stopTimers();
        if (s)
            abandon(s, 1000, reason);
    }
    /** Leaves the instance; the connection stays and may join again. */
    leave() {
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
    sendInput(moveX, moveY, buttons = 0) {
        if (!Number.isFinite(moveX) || !Number.isFinite(moveY)) {
            throw new RangeError(`input axes must be finite numbers (got ${moveX}, ${moveY})`);
        }
        if (this.statusValue !== 'joined' || !this.sock || this.sock.readyState !== OPEN)
            return null;
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
    send(kind, body = new Uint8Array(0)) {
        if (!Number.isInteger(kind) || kind < 0 || kind > MESSAGE_KIND_MAX) {
            throw new RangeError(`message kind must be an integer in [0, ${MESSAGE_KIND_MAX}] (got ${kind})`);
        }
        if (!(body instanceof Uint8Array))
            throw new TypeError('message body must be a Uint8Array');
        const max = this.welcomeValue?.limits.messageBytesMax ?? 0;
        if (max > 0 && body.length > max)
            throw new RangeError(`message body of ${body.length} bytes is over limits.messageBytesMax (${max})`);
        if (this.statusValue !== 'joined' || !this.sock || this.sock.readyState !== OPEN)
            return false;
        return this.sendFrame(this.enc.message(kind, body));
    }
    /** Measures one round trip to the node, ms; also updates `rtt`. */
    ping() {
        if (!this.sock || (this.statusValue !== 'welcomed' && this.statusValue !== 'joined')) {
            return Promise.reject(new ShardlineError(`ping() while ${this.statusValue}`));
        }
        let t = this.now();
        while (this.pings.has(t))
            t += 1e-3;
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
    close() {
        if (this.statusValue === 'closed' || this.statusValue === 'idle')
            return;
        this.closing = true;
        this.wakeSleep?.();
        const s = this.sock;
        this.sock = null;
        this.stopTimers();
        if (s) {
            try {
                s.close(1000, 'client closed');
            }
            catch {
                // Already closing.
            }
        }
        const err = new ShardlineError('the client was closed', null, 1000);
        this.settle(err);
        this.failPings(err);
        this.finalClose(1000, 'closed by the client');
    }
    // ------------------------------------------------------------ connection
    webSocketClass() {
        return this.WebSocketClass ?? defaultWebSocket();
    }
    /** Opens `url` as the current socket; bounded by requestTimeoutMs. */
    openSocket(url) {
        return new Promise((resolve, reject) => {
            let sock;
            try {
                sock = new (this.webSocketClass())(url);
            }
            catch (e) {
                reject(e);
                return;
            }
            sock.binaryType = 'arraybuffer';
            this.sock = sock;
            let opened = false;
            const fail = (err) => {
                clearTimeout(timer);
                if (this.sock === sock)
                    this.sock = null;
                reject(err);
            };
            const timer = setTimeout(() => {
                abandon(sock, 1000, 'open timed out');
                fail(new ShardlineError(`could not open ${url} within ${this.requestTimeoutMs} ms`));
            }, this.requestTimeoutMs);
            sock.onopen = () => {
                if (this.sock !== sock)
                    return;
                opened = true;
                clearTimeout(timer);
                this.lastRecvAt = this.now();
                this.startTimers();
                resolve();
            };
            sock.onmessage = (ev) => {
                if (this.sock === sock)
                    this.onFrame(sock, ev.data);
            };
            // An error is always followed by close, which says what happened.
            sock.onerror = () => { };
            sock.onclose = (ev) => {
                if (!opened)
                    fail(new ShardlineError(`could not connect to ${url} (close ${ev.code})`, null, ev.code));
                else
                    this.onSocketClose(sock, ev.code, ev.reason ?? '');
            };
        });
    }
    onSocketClose(sock, code, reason) {
        if (sock !== this.sock)
            return;
        this.sock = null;
        this.stopTimers();
        const err = new ShardlineError(`connection closed (${code}${reason ? `: ${reason}` : ''})`, null, code);
        this.settle(err);
        this.failPings(err);
        // A reconnect attempt sees the rejection and goes on by itself.
        if (this.recovering || this.stopped())
            return;
        const willReconnect = this.reconnectOpts !== null && this.welcomeValue !== null && !FINAL_CLOSE_CODES.has(code);
        this.emit('disconnected', { code, reason, willReconnect });
        if (willReconnect)
            void this.recover(code, true);
        else
            this.finalClose(code, reason);
    }
    /** close() was called, or the client closed for good: no loop may go on. */
    stopped() {
        return this.closing || this.statusValue === 'closed';
    }
    /**
     * The server moved the seat to another node (Transfer) and is about to
     * close this connection with 1000: go there now with the resume token,
     * rather than treat that close as a drop. The new node becomes the base
     * URL for later reconnects.
     */
    onTransfer(sock, t) {
        let base = null;
        try {
            base = baseUrl(t.url);
        }
        catch {
            // not a ws(s)/http(s) URL: refused below
        }
        if (base === null || !INSTANCE_ID_PATTERN.test(t.instanceId) || this.welcomeValue === null) {
            abandon(sock, 1002, 'unusable Transfer');
            this.onSocketClose(sock, 1002, `unusable Transfer (before Welcome, or a bad URL or instance id): ${JSON.stringify(t)}`);
            return;
        }
        this.emit('transfer', t);
        if (this.stopped() || this.sock !== sock)
            return; // a listener closed the client
        this.sock = null;
        this.stopTimers();
        try {
            sock.close(1000, 'transferred');
        }
        catch {
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
        if (!this.recovering)
            void this.recover(1000, false);
    }
    /**
     * Takes the seat back: at once where a Transfer points, otherwise after a
     * backoff delay per attempt. Ends in `reconnected`, or in `closed` when an
     * answer says retrying cannot help or the attempts ran out.
     * `dropReported`: `disconnected` was emitted already.
     */
    async recover(dropCode, dropReported) {
        this.recovering = true;
        try {
            await this.recoverLoop(dropCode, dropReported);
        }
        finally {
            this.recovering = false;
        }
    }
    async recoverLoop(dropCode, dropReported) {
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
            }
            else {
                if (r === null || attempt >= r.maxAttempts)
                    break;
                const delayMs = backoffDelayMs(attempt, r, this.random);
                attempt++;
                this.emit('reconnecting', { attempt, delayMs });
                await this.sleep(delayMs);
                if (this.stopped())
                    return;
            }
            try {
                const result = await this.reconnectOnce(transfer !== null);
                if (this.stopped())
                    return;
                if (this.transferTarget)
                    continue; // moved again meanwhile
                this.setStatus(this.joinedValue ? 'joined' : 'welcomed');
                this.emit('reconnected', result);
                return;
            }
            catch (e) {
                if (this.stopped())
                    return;
                if (this.transferTarget)
                    continue; // a Transfer cut this attempt short: follow it now
                const s = this.sock;
                this.sock = null;
                this.stopTimers();
                if (s)
                    abandon(s, 1000, 'reconnect attempt failed');
                const closeCode = e instanceof ShardlineError ? e.closeCode : null;
                const code = e instanceof ShardlineError ? e.code : null;
                lastError = e instanceof Error ? e.message : String(e);
                if (closeCode !== null)
                    lastCode = closeCode;
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
    async reconnectOnce(seatReserved) {
        const want = this.instanceWanted;
        const name = this.nameValue ?? '';
        const token = this.welcomeValue.resumeToken;
        let result;
        let resumed = false;
        try {
            // The instance may have moved to another node of the fleet (its node
            // died and a neighbour took it over): Error(WrongNode) names the
            // owner, where the token resumes the seat.
            for (let hop = 0;; hop++) {
                try {
                    await this.openSocket(playUrl(this.base, want));
                }
                catch (e) {
                    // The node is gone: ask the fleet where the instance runs now.
                    const owner = want !== null ? await this.routeInstance(want) : null;
                    if (owner === null || baseUrl(owner) === this.base)
                        throw e;
                    this.base = baseUrl(owner);
                    await this.openSocket(playUrl(this.base, want));
                }
                try {
                    result = await this.request('hello', this.enc.hello(name, token), seatReserved || this.joinedValue !== null);
                    break;
                }
                catch (e) {
                    if (!(e instanceof ShardlineError) || e.code !== ErrorCode.WrongNode || hop + 1 >= MAX_REDIRECTS)
                        throw e;
                    this.dropSocket('moving to the node that runs the instance');
                    this.base = baseUrl(this.redirectUrl);
                    this.redirectUrl = null;
                }
            }
            resumed = result.welcome.resumed;
        }
        catch (e) {
            if (!(e instanceof ShardlineError) || e.code !== ErrorCode.ResumeRefused)
                throw e;
            this.joinedValue = null;
            const ticket = this.renewTicket ? await this.renewTicket() : undefined;
            if (this.closing || !this.sock)
                throw new ShardlineError('connection lost while renewing the join ticket');
            result = await this.request('hello', this.enc.hello(name, undefined, ticket), false);
        }
        // A Joined may also have come unasked (a seat the client thought lost).
        let joined = result.joined ?? this.joinedValue;
        if (want !== null && joined === null) {
            joined = await this.request('join', this.enc.join(want, true), false);
        }
        return { resumed, welcome: result.welcome, joined };
    }
    finalClose(code, reason) {
        if (this.statusValue === 'closed')
            return;
        this.stopTimers();
        this.setStatus('closed');
        this.emit('closed', { code, reason });
    }
    sleep(ms) {
        return new Promise((resolve) => {
            this.wakeSleep = () => {
                if (this.sleepTimer !== null)
                    clearTimeout(this.sleepTimer);
                this.sleepTimer = null;
                this.wakeSleep = null;
                resolve();
            };
            this.sleepTimer = setTimeout(() => this.wakeSleep?.(), ms);
        });
    }
    startTimers() {
        this.stopTimers();
        if (this.pingIntervalMs > 0) {
            this.pingTimer = setInterval(() => {
                if (this.statusValue === 'welcomed' || this.statusValue === 'joined')
                    this.ping().catch(() => { });
            }, this.pingIntervalMs);
        }
        if (this.deadAfterMs > 0) {
            this.liveTimer = setInterval(() => this.checkLiveness(), Math.min(LIVENESS_CHECK_MS_MAX, this.deadAfterMs / 4));
        }
    }
    stopTimers() {
        if (this.pingTimer !== null)
            clearInterval(this.pingTimer);
        if (this.liveTimer !== null)
            clearInterval(this.liveTimer);
        this.pingTimer = this.liveTimer = null;
    }
    /** Drops a connection that went silent while messages were due (a network that stopped without a FIN). */
    checkLiveness() {
        const s = this.sock;
        if (!s)
            return;
        const expecting = this.statusValue === 'joined' || (this.statusValue === 'welcomed' && this.pingIntervalMs > 0);
        const silentMs = this.now() - this.lastRecvAt;
        if (!expecting || silentMs <= this.deadAfterMs)
            return;
        abandon(s, CLOSE_NO_TRAFFIC, 'no traffic');
        this.onSocketClose(s, CLOSE_NO_TRAFFIC, `no message from the server for ${Math.round(silentMs)} ms`);
    }
    sendFrame(bytes) {
        const s = this.sock;
        if (!s || s.readyState !== OPEN)
            return false;
        s.send(bytes);
        return true;
    }
    // ------------------------------------------------------------ requests
    request(kind, bytes, expectJoined) {
        if (this.pending) {
            return Promise.reject(new ShardlineError(`${kind}() while a ${this.pending.kind}() awaits its answer`));
        }
        if (!this.sock)
            return Promise.reject(new ShardlineError(`${kind}() without a connection`));
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => this.settle(new ShardlineError(`no answer to ${kind} within ${this.requestTimeoutMs} ms`)), this.requestTimeoutMs);
            this.pending = { kind, expectJoined, welcome: null, resolve: resolve, reject, timer };
            this.sendFrame(bytes);
        });
    }
    settle(err, value) {
        const p = this.pending;
        if (!p)
            return;
        this.pending = null;
        clearTimeout(p.timer);
        if (err)
            p.reject(err);
        else
            p.resolve(value);
    }
    failPings(err) {
        for (const w of this.pings.values()) {
            clearTimeout(w.timer);
            w.reject(err);
        }
        this.pings.clear();
    }
    requireStatus(what, ...allowed) {
        if (!allowed.includes(this.statusValue)) {
            throw new ShardlineError(`${what}() while ${this.statusValue} (needs ${allowed.join(' or ')})`);
        }
    }
    setStatus(s) {
        if (this.statusValue === s)
            return;
        this.statusValue = s;
        this.emit('status', s);
    }
    // ------------------------------------------------------------ messages
    onFrame(sock, data) {
        this.lastRecvAt = this.now();
        const bytes = messageBytes(data);
        if (!bytes)
            return; // /play is binary-only; ignore anything else
        let msg;
        try {
            msg = decodeServerMessage(bytes);
        }
        catch (e) {
            abandon(sock, 1002, 'undecodable frame');
            this.onSocketClose(sock, 1002, `undecodable server frame: ${e instanceof Error ? e.message : String(e)}`);
            return;
        }
        if (msg?.type === 'transfer')
            this.onTransfer(sock, msg.transfer);
        else if (msg?.type === 'delta')
            this.onDelta(sock, msg.delta, bytes.length);
        else if (msg)
            this.onMessage(msg, bytes.length);
    }
    /**
     * Version 2: rebuilds the world of the delta's tick, emits it as `state`,
     * and acknowledges it (in an input sent by a `state` listener, or in an
     * Ack right after). A delta that cannot be applied drops the connection
     * (CLOSE_BAD_DELTA); the reconnect brings a full state.
     */
    onDelta(sock, d, frameBytes) {
        // Still in flight after leave(): nothing to apply it to, and nothing to ack.
        if (this.joinedValue === null)
            return;
        let world;
        try {
            world = this.worlds.apply(d);
        }
        catch (e) {
            if (!(e instanceof DeltaError))
                throw e;
            this.emit('protocolError', { message: e.message });
            if (this.sock !== sock)
                return; // a listener closed the client
            abandon(sock, CLOSE_BAD_DELTA, 'bad delta');
            this.onSocketClose(sock, CLOSE_BAD_DELTA, e.message);
            return;
        }
        const entities = [];
        for (const q of world.entities.values())
            entities.push(toEntity(q));
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
    takeState(s) {
        const before = new Set();
        for (const e of this.entitiesValue)
            before.add(e.id);
        for (const e of s.entities) {
            if (!before.delete(e.id))
                s.entered.push(e.id);
        }
        for (const id of before)
            s.left.push(id);
        this.transfersInARow = 0;
        this.stateValue = s;
        this.entitiesValue = s.entities;
        this.tickValue = s.tick;
        this.emit('state', s);
    }
    onMessage(m, frameBytes) {
        const p = this.pending;
        switch (m.type) {
            case 'welcome':
                this.welcomeValue = m.welcome;
                this.worlds.resize(Math.max(1, m.welcome.limits.deltaHistoryTicks));
                this.emit('welcome', m.welcome);
                if (p?.kind === 'hello') {
                    if (p.expectJoined && m.welcome.resumed)
                        p.welcome = m.welcome;
                    else
                        this.settle(null, { welcome: m.welcome, joined: null });
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
                if (p?.kind === 'join')
                    this.settle(null, m.joined);
                else if (p?.kind === 'hello' && p.welcome)
                    this.settle(null, { welcome: p.welcome, joined: m.joined });
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
                if (!w)
                    break; // answered after its timeout
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
                if (m.error.code === ErrorCode.WrongNode)
                    this.redirectUrl = m.error.message;
                if (p && m.error.code !== ErrorCode.BadInput) {
                    this.settle(new ShardlineError(`${p.kind} refused: ${errorCodeName(m.error.code)}: ${m.error.message}`, m.error.code));
                }
                else {
                    this.emit('serverError', m.error);
                }
                break;
        }
    }
}
