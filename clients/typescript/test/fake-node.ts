// A tiny stand-in for a shardline node, for what a real single node cannot
// be made to do on demand: send a Transfer, a Notice or a body from a newer
// schema at a chosen moment, and act as the node a Transfer points to
// (answering a resume with Welcome{resumed} + Joined for a reserved seat).
// It speaks the real protocol with the generated FlatBuffers code.

import * as flatbuffers from 'flatbuffers';
import { WebSocketServer, type WebSocket } from 'ws';

import { ErrorCode, protocol } from '../src/index.js';

/** One player's seat on this node, keyed by its resume token. */
export interface Seat {
  playerId: bigint;
  instanceId: string;
  entityId: number;
}

/** A connection to the fake node, as a test sees it. */
export interface FakeConn {
  ws: WebSocket;
  /** The request path and query, e.g. `/play?instance=room`. */
  path: string;
  /** The resume token of the Hello, or null (a new player, or no Hello yet). */
  helloToken: string | null;
  /** The Hello's resume token, or the one this node issued: the key of its seat. */
  token: string | null;
  /** The player id this connection's Welcome gave. */
  playerId: bigint;
  seat: Seat | null;
  /** Hello.protocol_version. */
  version: number;
  /** Every acknowledgement, in arrival order: `Ack{tick}`, or an Input's nonzero ack_tick. */
  acks: { via: 'ack' | 'input'; tick: number }[];
  /** Inputs received. */
  inputs: number;
  /** Every game message (`Message{kind, body}`), in arrival order. */
  messages: { kind: number; body: number[] }[];
}

/** A StateDelta to send; absent fields are absent (or 0) in the frame. */
export interface DeltaSpec {
  tick: number;
  baselineTick?: number;
  lastInputSeq?: number;
  entities: Uint8Array | number[];
  customFull?: Uint8Array | number[];
  customPatch?: Uint8Array | number[];
}

/** What the fake answers with; the limits a Welcome carries. */
const LIMITS = {
  maxPayloadBytes: 16384,
  inputsPerTickMax: 8,
  playersPerInstanceMax: 64,
  heartbeatMs: 5000,
  connectTimeoutMs: 5000,
  reconnectGraceMs: 10_000,
  deltaHistoryTicks: 4,
  messageBytesMax: 64,
  messagesPerTickMax: 4,
};

export class FakeNode {
  /** Seats a resume token may take: made by Join, or reserved by a test (a Transfer's target). */
  readonly seats = new Map<string, Seat>();
  readonly conns: FakeConn[] = [];
  /** Called after this node sent Joined (for a Join or a resume). */
  onSeated: (conn: FakeConn) => void = () => {};
  private nextPlayer = 1n;
  private nextEntity = 1;
  private readonly b = new flatbuffers.Builder(256);

  private constructor(
    readonly nodeId: string,
    private readonly wss: WebSocketServer,
    readonly url: string,
  ) {}

  static async start(nodeId: string): Promise<FakeNode> {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((resolve, reject) => {
      wss.once('listening', resolve);
      wss.once('error', reject);
    });
    const port = (wss.address() as { port: number }).port;
    const node = new FakeNode(nodeId, wss, `ws://127.0.0.1:${port}`);
    wss.on('connection', (ws, req) => node.accept(ws, req.url ?? ''));
    return node;
  }

  async stop(): Promise<void> {
    for (const c of this.conns) c.ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** Reserves a seat for `token` in `instanceId` (what the target node of a move does). */
  reserve(token: string, seat: Omit<Seat, 'entityId'>): Seat {
    const s = { ...seat, entityId: this.nextEntity++ };
    this.seats.set(token, s);
    return s;
  }

  notice(conn: FakeConn, message: string, region: string, sentAtUs: bigint): void {
    const b = this.start();
    const m = b.createString(message);
    const r = b.createString(region);
    this.send(conn, protocol.ServerBody.Notice, protocol.Notice.createNotice(b, m, r, sentAtUs));
  }

  /** Sends Transfer and closes with 1000, as the server does. */
  transfer(conn: FakeConn, url: string, instanceId: string): void {
    const b = this.start();
    const u = b.createString(url);
    const i = b.createString(instanceId);
    this.send(conn, protocol.ServerBody.Transfer, protocol.Transfer.createTransfer(b, u, i));
    conn.ws.close(1000, 'transferred');
  }

  /** A StateDelta (protocol version 2). */
  delta(conn: FakeConn, d: DeltaSpec): void {
    const b = this.start();
    const ents = protocol.StateDelta.createEntitiesVector(b, d.entities);
    const full = d.customFull ? protocol.StateDelta.createCustomFullVector(b, d.customFull) : 0;
    const patch = d.customPatch ? protocol.StateDelta.createCustomPatchVector(b, d.customPatch) : 0;
    protocol.StateDelta.startStateDelta(b);
    protocol.StateDelta.addTick(b, BigInt(d.tick));
    protocol.StateDelta.addBaselineTick(b, BigInt(d.baselineTick ?? 0));
    protocol.StateDelta.addLastInputSeq(b, d.lastInputSeq ?? 0);
    protocol.StateDelta.addEntities(b, ents);
    if (full) protocol.StateDelta.addCustomFull(b, full);
    if (patch) protocol.StateDelta.addCustomPatch(b, patch);
    this.send(conn, protocol.ServerBody.StateDelta, protocol.StateDelta.endStateDelta(b));
  }

  /** A GameEvent (protocol version 2). */
  gameEvent(conn: FakeConn, tick: number, kind: number, body: number[]): void {
    const b = this.start();
    const bodyOff = protocol.GameEvent.createBodyVector(b, body);
    this.send(conn, protocol.ServerBody.GameEvent, protocol.GameEvent.createGameEvent(b, BigInt(tick), kind, bodyOff));
  }

  state(conn: FakeConn, tick: bigint): void {
    const b = this.start();
    protocol.StateUpdate.startEntitiesVector(b, 0);
    const ents = b.endVector();
    this.send(conn, protocol.ServerBody.StateUpdate, protocol.StateUpdate.createStateUpdate(b, tick, 0, 0, ents, 0, 0));
  }

  /** A body type from a newer schema: a table with a string field. */
  unknownBody(conn: FakeConn, type: number): void {
    const b = this.start();
    const s = b.createString('from a newer server');
    b.startObject(1);
    b.addFieldOffset(0, s, 0);
    this.send(conn, type as protocol.ServerBody, b.endObject());
  }

  private accept(ws: WebSocket, path: string): void {
    const conn: FakeConn = { ws, path, helloToken: null, token: null, playerId: 0n, seat: null, version: 0, acks: [], inputs: 0, messages: [] };
    this.conns.push(conn);
    ws.on('message', (data: Buffer) => this.onMessage(conn, new Uint8Array(data)));
  }

  private onMessage(conn: FakeConn, bytes: Uint8Array): void {
    const msg = protocol.ClientMessage.getRootAsClientMessage(new flatbuffers.ByteBuffer(bytes));
    switch (msg.bodyType()) {
      case protocol.ClientBody.Hello: {
        const h = msg.body(new protocol.Hello()) as protocol.Hello;
        const token = h.resumeToken();
        conn.helloToken = token;
        conn.version = h.protocolVersion();
        if (token === null) {
          conn.playerId = this.nextPlayer++;
          conn.token = `${this.nodeId}-token-${conn.playerId}`;
          this.welcome(conn, conn.playerId, false);
          return;
        }
        const seat = this.seats.get(token);
        if (!seat) {
          this.error(conn, ErrorCode.ResumeRefused, 'unknown resume token');
          return;
        }
        conn.token = token;
        conn.playerId = seat.playerId;
        this.welcome(conn, seat.playerId, true);
        this.joined(conn, seat);
        return;
      }
      case protocol.ClientBody.Join: {
        const j = msg.body(new protocol.Join()) as protocol.Join;
        const seat = { playerId: conn.playerId, instanceId: j.instanceId() ?? 'placed', entityId: this.nextEntity++ };
        this.seats.set(conn.token as string, seat);
        this.joined(conn, seat);
        return;
      }
      case protocol.ClientBody.Ack: {
        const a = msg.body(new protocol.Ack()) as protocol.Ack;
        conn.acks.push({ via: 'ack', tick: Number(a.tick()) });
        return;
      }
      case protocol.ClientBody.Input: {
        const i = msg.body(new protocol.Input()) as protocol.Input;
        conn.inputs++;
        if (i.ackTick() !== 0n) conn.acks.push({ via: 'input', tick: Number(i.ackTick()) });
        return;
      }
      case protocol.ClientBody.Message: {
        const m = msg.body(new protocol.Message()) as protocol.Message;
        conn.messages.push({ kind: m.kind(), body: [...(m.bodyArray() ?? [])] });
        return;
      }
      default:
        return; // pings: not needed here
    }
  }

  private welcome(conn: FakeConn, playerId: bigint, resumed: boolean): void {
    const b = this.start();
    const token = b.createString(conn.token);
    const node = b.createString(this.nodeId);
    const region = b.createString('test');
    const l = LIMITS;
    const limits = protocol.Limits.createLimits(
      b,
      l.maxPayloadBytes,
      l.inputsPerTickMax,
      l.playersPerInstanceMax,
      l.heartbeatMs,
      l.connectTimeoutMs,
      l.reconnectGraceMs,
      l.deltaHistoryTicks,
      l.messageBytesMax,
      l.messagesPerTickMax,
    );
    protocol.Welcome.startWelcome(b);
    protocol.Welcome.addPlayerId(b, playerId);
    protocol.Welcome.addResumeToken(b, token);
    protocol.Welcome.addNodeId(b, node);
    protocol.Welcome.addRegion(b, region);
    protocol.Welcome.addTickRateHz(b, 30);
    protocol.Welcome.addLimits(b, limits);
    protocol.Welcome.addResumed(b, resumed);
    this.send(conn, protocol.ServerBody.Welcome, protocol.Welcome.endWelcome(b));
  }

  private joined(conn: FakeConn, seat: Seat): void {
    conn.seat = seat;
    const b = this.start();
    const id = b.createString(seat.instanceId);
    protocol.Joined.startEntitiesVector(b, 1);
    protocol.EntityState.createEntityState(b, seat.entityId, 1, 0, 500, 500, 0, 0);
    const ents = b.endVector();
    this.send(conn, protocol.ServerBody.Joined, protocol.Joined.createJoined(b, id, seat.entityId, 1n, 1000, 1000, ents, 0, 0));
    this.onSeated(conn);
  }

  private error(conn: FakeConn, code: ErrorCode, message: string): void {
    const b = this.start();
    const m = b.createString(message);
    this.send(conn, protocol.ServerBody.Error, protocol.Error.createError(b, code, m));
  }

  private start(): flatbuffers.Builder {
    this.b.clear();
    return this.b;
  }

  private send(conn: FakeConn, type: protocol.ServerBody, body: flatbuffers.Offset): void {
    this.b.finish(protocol.ServerMessage.createServerMessage(this.b, type, body));
    if (conn.ws.readyState === conn.ws.OPEN) conn.ws.send(this.b.asUint8Array().slice());
  }
}
