import { type ReconnectOptions } from './backoff.js';
import { type ProtocolVersion } from './codec.js';
import { Emitter } from './events.js';
import { type ProbeOptions } from './regions.js';
import { type WebSocketConstructor } from './socket.js';
import { type Entity, type GameEvent, type Joined, type Notice, type PlayerJoined, type PlayerLeft, type Region, type RegionProbe, type ServerError, type State, type Transfer, type Welcome } from './types.js';
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
    protocolError: {
        message: string;
    };
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
    disconnected: {
        code: number;
        reason: string;
        willReconnect: boolean;
    };
    /** A reconnect attempt is scheduled `delayMs` from now. */
    reconnecting: {
        attempt: number;
        delayMs: number;
    };
    /** Back: `resumed` when the seat (and entity) came back; otherwise a new player, re-joined to the same instance. */
    reconnected: {
        resumed: boolean;
        welcome: Welcome;
        joined: Joined | null;
    };
    /** Final: no more messages or reconnects (connect() again to start over). */
    closed: {
        code: number;
        reason: string;
    };
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
export declare const FINAL_CLOSE_CODES: ReadonlySet<number>;
/** The close code `disconnected` reports when the client itself dropped a silent connection. */
export declare const CLOSE_NO_TRAFFIC = 4900;
/** The close code `disconnected` reports when the client dropped a connection whose delta it could not apply. */
export declare const CLOSE_BAD_DELTA = 4901;
export declare class ShardlineClient extends Emitter<ClientEvents> {
    private readonly WebSocketClass;
    private readonly reconnectOpts;
    private readonly pingIntervalMs;
    private readonly deadAfterMs;
    private readonly requestTimeoutMs;
    private readonly probeOpts;
    private readonly now;
    private readonly random;
    private readonly renewTicket;
    private readonly fleet;
    private readonly version;
    private readonly enc;
    /** Version 2: the worlds of the last Limits.delta_history_ticks deltas applied. */
    private readonly worlds;
    /** Version 2: the newest tick applied and not acknowledged yet (0: none). */
    private ackDue;
    private sock;
    private base;
    /** The owner's URL from the last Error(WrongNode): the instance runs on another node of the fleet. */
    private redirectUrl;
    /** Where the last Transfer moved the seat, until the recovery loop goes there. */
    private transferTarget;
    /** Transfers since the last StateUpdate (bounded by MAX_REDIRECTS). */
    private transfersInARow;
    /** The recovery loop (reconnect or Transfer) is running. */
    private recovering;
    private statusValue;
    private nameValue;
    private welcomeValue;
    /** The instance the player is seated in, as last Joined. */
    private joinedValue;
    /** The instance the player wants to be in: re-joined when a resume fails. */
    private instanceWanted;
    private stateValue;
    private entitiesValue;
    private tickValue;
    private seq;
    private rttSmoothed;
    private rttLastValue;
    private pending;
    private readonly pings;
    private lastRecvAt;
    private pingTimer;
    private liveTimer;
    private sleepTimer;
    private wakeSleep;
    /** close() was called: nothing may reconnect or report any more. */
    private closing;
    constructor(options?: ClientOptions);
    /** The protocol version this client speaks (the `protocolVersion` option). */
    get protocolVersion(): ProtocolVersion;
    get status(): ClientStatus;
    /** Base URL of the node the client talks to (after a redirect or Transfer: the new node), or null before connect(). */
    get url(): string | null;
    /** The last Welcome (node, region, shard, limits, token). */
    get welcome(): Welcome | null;
    /** The instance the player is in (the last Joined), or null. */
    get joined(): Joined | null;
    get playerId(): bigint | null;
    get instanceId(): string | null;
    /** The entity this player controls, or null outside an instance. */
    get entityId(): number | null;
    /** The last `state` (null before the first after a Joined). */
    get state(): State | null;
    /** Entities as of the last Joined or StateUpdate. */
    get entities(): Entity[];
    /** Server tick as of the last Joined or StateUpdate. */
    get tick(): number;
    /** Smoothed round-trip time, ms (null before the first Pong). */
    get rtt(): number | null;
    get rttLast(): number | null;
    /** Seq of the last input sent (inputs the server applied: `state.lastInputSeq`). */
    get inputSeq(): number;
    /**
     * Opens the connection: to `target` (a node's base URL, e.g.
     * `wss://eu.example.com` or a page's `location.origin`), or to the region
     * whose /echo answers fastest.
     */
    connect(target: string | {
        regions: Region[];
    }): Promise<ConnectResult>;
    /**
     * Introduces the player (name: at most 32 bytes of UTF-8). On a server
     * with --join-secret, pass the join ticket the game's backend issued.
     */
    hello(name: string, options?: {
        ticket?: string;
    }): Promise<Welcome>;
    /**
     * Joins an instance by id (created when missing, unless
     * `createIfMissing: false`), or, without an id, wherever the server
     * places the player. Joining while in another instance moves the player.
     */
    join(instanceId?: string, options?: {
        createIfMissing?: boolean;
    }): Promise<Joined>;
    /**
     * The instance runs on another node of the fleet (Error(WrongNode) named
     * it): connect there (`/play?instance=`), say Hello as a new player (with
     * a fresh ticket from `renewTicket`, if given) and join. Follows at most
     * MAX_REDIRECTS such answers.
     */
    private joinOnOwner;
    /** The owner of `instance` according to the first fleet node that knows (null: none does). */
    private routeInstance;
    /** Closes the current socket without reporting a disconnect. */
    private dropSocket;
    /** Leaves the instance; the connection stays and may join again. */
    leave(): void;
    /**
     * Sends the player's input for the next tick: axes in [-1, 1] (the server
     * clamps), buttons as the game's bit set. Returns its seq (compare with
     * `state.lastInputSeq` for prediction), or null when not in an instance
     * right now (e.g. while reconnecting): that input is not sent.
     * The server applies at most `welcome.limits.inputsPerTickMax` per tick.
     */
    sendInput(moveX: number, moveY: number, buttons?: number): number | null;
    /**
     * Sends a game message (`Game::on_message` gets it at the next tick, in
     * order with this player's inputs): `kind` is the game's own (0–65535),
     * `body` at most `welcome.limits.messageBytesMax` bytes. Returns false
     * when not in an instance right now (e.g. while reconnecting): it is not
     * sent. The server takes at most `limits.messagesPerTickMax` per tick.
     */
    send(kind: number, body?: Uint8Array): boolean;
    /** Measures one round trip to the node, ms; also updates `rtt`. */
    ping(): Promise<number>;
    /** Closes for good: no reconnect. Emits `closed`. */
    close(): void;
    private webSocketClass;
    /** Opens `url` as the current socket; bounded by requestTimeoutMs. */
    private openSocket;
    private onSocketClose;
    /** close() was called, or the client closed for good: no loop may go on. */
    private stopped;
    /**
     * The server moved the seat to another node (Transfer) and is about to
     * close this connection with 1000: go there now with the resume token,
     * rather than treat that close as a drop. The new node becomes the base
     * URL for later reconnects.
     */
    private onTransfer;
    /**
     * Takes the seat back: at once where a Transfer points, otherwise after a
     * backoff delay per attempt. Ends in `reconnected`, or in `closed` when an
     * answer says retrying cannot help or the attempts ran out.
     * `dropReported`: `disconnected` was emitted already.
     */
    private recover;
    private recoverLoop;
    /**
     * One attempt: connect to the instance's owner, Hello with the token
     * (Welcome{resumed} + Joined: the seat is back), or, when the server
     * refuses the token, Hello as a new player (with a fresh ticket from
     * `renewTicket`, if given) and join the same instance. `seatReserved`: a
     * Transfer said the seat waits there, so Joined follows the Welcome.
     */
    private reconnectOnce;
    private finalClose;
    private sleep;
    private startTimers;
    private stopTimers;
    /** Drops a connection that went silent while messages were due (a network that stopped without a FIN). */
    private checkLiveness;
    private sendFrame;
    private request;
    private settle;
    private failPings;
    private requireStatus;
    private setStatus;
    private onFrame;
    /**
     * Version 2: rebuilds the world of the delta's tick, emits it as `state`,
     * and acknowledges it (in an input sent by a `state` listener, or in an
     * Ack right after). A delta that cannot be applied drops the connection
     * (CLOSE_BAD_DELTA); the reconnect brings a full state.
     */
    private onDelta;
    /** Fills in what entered and left since the last state, keeps `s` as the current state, emits it. */
    private takeState;
    private onMessage;
}
