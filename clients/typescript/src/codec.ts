// Bytes ↔ messages: builds ClientMessage frames with the generated code and
// turns ServerMessage frames into the plain objects of `types.ts`. Pure code:
// no sockets, no clock.

import * as flatbuffers from 'flatbuffers';

import { Ack } from './generated/shardline/protocol/ack.js';
import { ClientBody } from './generated/shardline/protocol/client-body.js';
import { ClientMessage } from './generated/shardline/protocol/client-message.js';
import { EntityPose } from './generated/shardline/protocol/entity-pose.js';
import { EntityState } from './generated/shardline/protocol/entity-state.js';
import { Error as ErrorTable } from './generated/shardline/protocol/error.js';
import { GameEvent as GameEventTable } from './generated/shardline/protocol/game-event.js';
import { Hello } from './generated/shardline/protocol/hello.js';
import { Input } from './generated/shardline/protocol/input.js';
import { Join } from './generated/shardline/protocol/join.js';
import { Joined as JoinedTable } from './generated/shardline/protocol/joined.js';
import { Leave } from './generated/shardline/protocol/leave.js';
import { Message } from './generated/shardline/protocol/message.js';
import { Ping } from './generated/shardline/protocol/ping.js';
import { Notice as NoticeTable } from './generated/shardline/protocol/notice.js';
import { PlayerJoined as PlayerJoinedTable } from './generated/shardline/protocol/player-joined.js';
import { PlayerLeft as PlayerLeftTable } from './generated/shardline/protocol/player-left.js';
import { Pong as PongTable } from './generated/shardline/protocol/pong.js';
import { ServerBody } from './generated/shardline/protocol/server-body.js';
import { ServerMessage as ServerMessageTable } from './generated/shardline/protocol/server-message.js';
import { StateDelta as StateDeltaTable } from './generated/shardline/protocol/state-delta.js';
import { StateUpdate as StateUpdateTable } from './generated/shardline/protocol/state-update.js';
import { Transfer as TransferTable } from './generated/shardline/protocol/transfer.js';
import { Welcome as WelcomeTable } from './generated/shardline/protocol/welcome.js';
import type { Entity, Limits, ServerMessage } from './types.js';

/**
 * The protocol version this client speaks unless told otherwise
 * (ProtocolVersion.V2: deltas, game events, z and facing).
 */
export const PROTOCOL_VERSION = 2;

/** The versions this client can speak. */
export type ProtocolVersion = 1 | 2;

/** Largest game message kind (a u16). */
export const MESSAGE_KIND_MAX = 0xffff;

/** Longest player name the server accepts, in UTF-8 bytes. */
export const PLAYER_NAME_BYTES_MAX = 32;

/** Instance ids: 1–64 bytes of [A-Za-z0-9_.-]. */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9_.-]{1,64}$/;

// A builder's first buffer; it grows when a message needs more. 256 bytes
// hold most client messages; a Hello with a long join ticket grows it.
const BUILDER_INITIAL_BYTES = 256;

/** Builds client messages, reusing one FlatBuffers builder. */
export class Encoder {
  private readonly b = new flatbuffers.Builder(BUILDER_INITIAL_BYTES);

  /** `version`: what Hello says (default PROTOCOL_VERSION). */
  constructor(readonly version: ProtocolVersion = PROTOCOL_VERSION) {}

  /** Hello: a new player (with a join ticket when the server requires one), or a resume with a token. */
  hello(name: string, resumeToken?: string, ticket?: string): Uint8Array {
    const b = this.start();
    const nameOff = b.createString(name);
    const tokenOff = resumeToken ? b.createString(resumeToken) : 0;
    const ticketOff = ticket ? b.createString(ticket) : 0;
    const body = Hello.createHello(b, this.version, nameOff, tokenOff, ticketOff);
    return this.finish(ClientBody.Hello, body);
  }

  join(instanceId?: string, createIfMissing = true): Uint8Array {
    const b = this.start();
    const idOff = instanceId !== undefined ? b.createString(instanceId) : 0;
    const body = Join.createJoin(b, idOff, createIfMissing);
    return this.finish(ClientBody.Join, body);
  }

  leave(): Uint8Array {
    const b = this.start();
    return this.finish(ClientBody.Leave, Leave.createLeave(b));
  }

  /** `ackTick`: version 2, the newest StateDelta tick applied and not acknowledged yet (0: none). */
  input(seq: number, moveX: number, moveY: number, buttons: number, ackTick = 0): Uint8Array {
    const b = this.start();
    return this.finish(ClientBody.Input, Input.createInput(b, seq, moveX, moveY, buttons, BigInt(ackTick)));
  }

  /** Version 2: the newest StateDelta tick this client applied. */
  ack(tick: number): Uint8Array {
    const b = this.start();
    return this.finish(ClientBody.Ack, Ack.createAck(b, BigInt(tick)));
  }

  /** A game message: `kind` is the game's own (u16). */
  message(kind: number, body: Uint8Array): Uint8Array {
    const b = this.start();
    const bodyOff = Message.createBodyVector(b, body);
    return this.finish(ClientBody.Message, Message.createMessage(b, kind, bodyOff));
  }

  ping(clientTime: number): Uint8Array {
    const b = this.start();
    return this.finish(ClientBody.Ping, Ping.createPing(b, clientTime));
  }

  private start(): flatbuffers.Builder {
    this.b.clear();
    return this.b;
  }

  private finish(type: ClientBody, body: flatbuffers.Offset): Uint8Array {
    this.b.finish(ClientMessage.createClientMessage(this.b, type, body));
    // A copy: the builder's buffer is reused by the next message, and a
    // WebSocket may still hold on to what it was given.
    return this.b.asUint8Array().slice();
  }
}

/** UTF-8 length of a string, in bytes. */
export function utf8Bytes(s: string): number {
  return new TextEncoder().encode(s).length;
}

/**
 * Decodes one server frame. Returns null for a body this client does not
 * know (a newer server), so it can be skipped. FlatBuffers' TypeScript
 * runtime has no verifier: a malformed frame may throw, which the caller
 * treats as a protocol error.
 */
export function decodeServerMessage(bytes: Uint8Array): ServerMessage | null {
  const bb = new flatbuffers.ByteBuffer(bytes);
  const msg = ServerMessageTable.getRootAsServerMessage(bb);
  switch (msg.bodyType()) {
    case ServerBody.Welcome: {
      const w = msg.body(new WelcomeTable()) as WelcomeTable;
      const l = w.limits();
      const limits: Limits = {
        maxPayloadBytes: l?.maxPayloadBytes() ?? 0,
        inputsPerTickMax: l?.inputsPerTickMax() ?? 0,
        playersPerInstanceMax: l?.playersPerInstanceMax() ?? 0,
        heartbeatMs: l?.heartbeatMs() ?? 0,
        connectTimeoutMs: l?.connectTimeoutMs() ?? 0,
        reconnectGraceMs: l?.reconnectGraceMs() ?? 0,
        deltaHistoryTicks: l?.deltaHistoryTicks() ?? 0,
        messageBytesMax: l?.messageBytesMax() ?? 0,
        messagesPerTickMax: l?.messagesPerTickMax() ?? 0,
      };
      return {
        type: 'welcome',
        welcome: {
          playerId: w.playerId(),
          resumeToken: w.resumeToken() ?? '',
          nodeId: w.nodeId() ?? '',
          region: w.region() ?? '',
          shard: w.shard(),
          tickRateHz: w.tickRateHz(),
          limits,
          resumed: w.resumed(),
        },
      };
    }
    case ServerBody.Joined: {
      const j = msg.body(new JoinedTable()) as JoinedTable;
      return {
        type: 'joined',
        joined: {
          instanceId: j.instanceId() ?? '',
          entityId: j.entityId(),
          tick: Number(j.tick()),
          arenaWidth: j.arenaWidth(),
          arenaHeight: j.arenaHeight(),
          entities: readEntities(j.entitiesLength(), (i, o) => j.entities(i, o), j.posesLength(), (i, o) => j.poses(i, o)),
          custom: copyBytes(j.customArray()),
        },
      };
    }
    case ServerBody.StateUpdate: {
      const u = msg.body(new StateUpdateTable()) as StateUpdateTable;
      return {
        type: 'state',
        state: {
          tick: Number(u.tick()),
          lastInputSeq: u.lastInputSeq(),
          inputsApplied: u.inputsApplied(),
          entities: readEntities(u.entitiesLength(), (i, o) => u.entities(i, o), u.posesLength(), (i, o) => u.poses(i, o)),
          custom: copyBytes(u.customArray()),
        },
      };
    }
    case ServerBody.StateDelta: {
      const d = msg.body(new StateDeltaTable()) as StateDeltaTable;
      const full = d.customFullArray();
      const patch = d.customPatchArray();
      return {
        type: 'delta',
        delta: {
          tick: Number(d.tick()),
          baselineTick: Number(d.baselineTick()),
          lastInputSeq: d.lastInputSeq(),
          inputsApplied: d.inputsApplied(),
          entities: copyBytes(d.entitiesArray()),
          customFull: full ? full.slice() : null,
          customPatch: patch ? patch.slice() : null,
        },
      };
    }
    case ServerBody.GameEvent: {
      const e = msg.body(new GameEventTable()) as GameEventTable;
      return { type: 'event', event: { tick: Number(e.tick()), kind: e.kind(), body: copyBytes(e.bodyArray()) } };
    }
    case ServerBody.PlayerJoined: {
      const p = msg.body(new PlayerJoinedTable()) as PlayerJoinedTable;
      return { type: 'playerJoined', playerJoined: { playerId: p.playerId(), entityId: p.entityId(), name: p.name() ?? '' } };
    }
    case ServerBody.PlayerLeft: {
      const p = msg.body(new PlayerLeftTable()) as PlayerLeftTable;
      return { type: 'playerLeft', playerLeft: { playerId: p.playerId(), entityId: p.entityId(), reason: p.reason() } };
    }
    case ServerBody.Pong: {
      const p = msg.body(new PongTable()) as PongTable;
      return { type: 'pong', pong: { clientTime: p.clientTime(), serverTimeUs: p.serverTimeUs() } };
    }
    case ServerBody.Error: {
      const e = msg.body(new ErrorTable()) as ErrorTable;
      return { type: 'error', error: { code: e.code(), message: e.message() ?? '' } };
    }
    case ServerBody.Notice: {
      const n = msg.body(new NoticeTable()) as NoticeTable;
      return { type: 'notice', notice: { message: n.message() ?? '', region: n.region() ?? '', sentAtUs: n.sentAtUs() } };
    }
    case ServerBody.Transfer: {
      const t = msg.body(new TransferTable()) as TransferTable;
      return { type: 'transfer', transfer: { url: t.url() ?? '', instanceId: t.instanceId() ?? '' } };
    }
    default:
      // NONE, or a body added to the schema after this client was built:
      // the union's type byte says what it is, so it is skipped whole.
      return null;
  }
}

/**
 * Entities with their poses (z, facing): `poses` is parallel to `entities`,
 * or absent (every z and facing 0); another length is a malformed frame.
 */
function readEntities(
  n: number,
  at: (i: number, o: EntityState) => EntityState | null,
  poses: number,
  poseAt: (i: number, o: EntityPose) => EntityPose | null,
): Entity[] {
  if (poses !== 0 && poses !== n) throw new Error(`${poses} poses for ${n} entities`);
  const out: Entity[] = new Array(n);
  const e = new EntityState();
  const p = new EntityPose();
  for (let i = 0; i < n; i++) {
    at(i, e);
    const z = poses ? (poseAt(i, p) as EntityPose).z() : 0;
    const facing = poses ? p.facing() : 0;
    out[i] = { id: e.id(), kind: e.kind(), flags: e.flags(), x: e.x(), y: e.y(), vx: e.vx(), vy: e.vy(), z, facing };
  }
  return out;
}

function copyBytes(view: Uint8Array | null): Uint8Array {
  return view ? view.slice() : new Uint8Array(0);
}
