// Pure parts of the SDK, no server: backoff, URLs, the codec against the
// generated code, the event emitter.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as flatbuffers from 'flatbuffers';

import { backoffDelayMs, baseUrl, decodeServerMessage, echoUrl, Emitter, Encoder, ErrorCode, playUrl, protocol, RECONNECT_DEFAULTS } from '../src/index.js';

test('backoff grows exponentially, stays in the upper half of its ceiling, and is capped', () => {
  const opts = { baseDelayMs: 100, maxDelayMs: 1000, maxAttempts: 10 };
  assert.equal(backoffDelayMs(0, opts, () => 0), 50);
  assert.equal(backoffDelayMs(0, opts, () => 0.999999), 100);
  assert.equal(backoffDelayMs(1, opts, () => 0), 100);
  assert.equal(backoffDelayMs(3, opts, () => 0), 400);
  assert.equal(backoffDelayMs(4, opts, () => 0.999999), 1000);
  assert.equal(backoffDelayMs(50, opts, () => 0.999999), 1000);
  // Jitter spreads a crowd: 100 clients at attempt 3 get many different delays.
  const delays = new Set(Array.from({ length: 100 }, () => backoffDelayMs(3, opts)));
  assert.ok(delays.size > 20, `only ${delays.size} distinct delays`);
  for (const d of delays) assert.ok(d >= 400 && d <= 800, `delay ${d} out of [400, 800]`);
  assert.ok(RECONNECT_DEFAULTS.maxAttempts > 0);
});

test('node URLs: http maps to ws, /play and /echo are derived, instance ids are escaped', () => {
  assert.equal(baseUrl('ws://h:9000'), 'ws://h:9000');
  assert.equal(baseUrl('http://h:9000/'), 'ws://h:9000');
  assert.equal(baseUrl('https://h/game/'), 'wss://h/game');
  assert.equal(baseUrl('ws://h:9000/play?instance=x'), 'ws://h:9000');
  assert.equal(playUrl('ws://h:9000'), 'ws://h:9000/play');
  assert.equal(playUrl('ws://h:9000', 'arena-1'), 'ws://h:9000/play?instance=arena-1');
  assert.equal(playUrl('wss://h/game', 'a b'), 'wss://h/game/play?instance=a%20b');
  assert.equal(echoUrl('wss://h/game/play'), 'wss://h/game/echo');
  assert.throws(() => baseUrl('ftp://h'), /not a WebSocket or HTTP URL/);
});

test('client messages decode with the generated code', () => {
  const enc = new Encoder();
  const read = (bytes: Uint8Array) => protocol.ClientMessage.getRootAsClientMessage(new flatbuffers.ByteBuffer(bytes));

  const hello = read(enc.hello('ann', 'abc123'));
  assert.equal(hello.bodyType(), protocol.ClientBody.Hello);
  const h = hello.body(new protocol.Hello()) as protocol.Hello;
  assert.equal(h.protocolVersion(), 2, 'version 2 unless told otherwise');
  const v1 = read(new Encoder(1).hello('ann')).body(new protocol.Hello()) as protocol.Hello;
  assert.equal(v1.protocolVersion(), 1);
  assert.equal(h.playerName(), 'ann');
  assert.equal(h.resumeToken(), 'abc123');
  assert.equal(h.ticket(), null);
  const fresh = read(enc.hello('bob', undefined, 'v1.p.*.1.00.ff')).body(new protocol.Hello()) as protocol.Hello;
  assert.equal(fresh.resumeToken(), null);
  assert.equal(fresh.ticket(), 'v1.p.*.1.00.ff');

  const join = read(enc.join('arena', false)).body(new protocol.Join()) as protocol.Join;
  assert.equal(join.instanceId(), 'arena');
  assert.equal(join.createIfMissing(), false);
  const anywhere = read(enc.join()).body(new protocol.Join()) as protocol.Join;
  assert.equal(anywhere.instanceId(), null);
  assert.equal(anywhere.createIfMissing(), true);

  const input = read(enc.input(7, 1, -0.5, 3)).body(new protocol.Input()) as protocol.Input;
  assert.deepEqual([input.seq(), input.moveX(), input.moveY(), input.buttons(), input.ackTick()], [7, 1, -0.5, 3, 0n]);
  const acking = read(enc.input(8, 0, 0, 0, 1234)).body(new protocol.Input()) as protocol.Input;
  assert.equal(acking.ackTick(), 1234n);

  const ack = read(enc.ack(99));
  assert.equal(ack.bodyType(), protocol.ClientBody.Ack);
  assert.equal((ack.body(new protocol.Ack()) as protocol.Ack).tick(), 99n);

  const message = read(enc.message(65535, new Uint8Array([1, 2, 3])));
  assert.equal(message.bodyType(), protocol.ClientBody.Message);
  const m = message.body(new protocol.Message()) as protocol.Message;
  assert.equal(m.kind(), 65535);
  assert.deepEqual(m.bodyArray(), new Uint8Array([1, 2, 3]));

  const ping = read(enc.ping(1234.5678)).body(new protocol.Ping()) as protocol.Ping;
  assert.equal(ping.clientTime(), 1234.5678);
  assert.equal(read(enc.leave()).bodyType(), protocol.ClientBody.Leave);
});

test('server messages built with the generated code decode to plain objects', () => {
  const b = new flatbuffers.Builder(256);
  const frame = (type: protocol.ServerBody, body: number) => {
    b.finish(protocol.ServerMessage.createServerMessage(b, type, body));
    const out = b.asUint8Array().slice();
    b.clear();
    return out;
  };

  protocol.StateUpdate.startEntitiesVector(b, 2);
  protocol.EntityState.createEntityState(b, 2, 1, 0, 30, 40, 0, -200);
  protocol.EntityState.createEntityState(b, 1, 1, 0, 10, 20, 200, 0);
  const ents = b.endVector();
  const update = decodeServerMessage(
    frame(protocol.ServerBody.StateUpdate, protocol.StateUpdate.createStateUpdate(b, 42n, 9, 8, ents, 0, 0)),
  );
  assert.deepEqual(update, {
    type: 'state',
    state: {
      tick: 42,
      lastInputSeq: 9,
      inputsApplied: 8,
      entities: [
        { id: 1, kind: 1, flags: 0, x: 10, y: 20, vx: 200, vy: 0, z: 0, facing: 0 },
        { id: 2, kind: 1, flags: 0, x: 30, y: 40, vx: 0, vy: -200, z: 0, facing: 0 },
      ],
      custom: new Uint8Array(0),
    },
  });

  const msg = b.createString('full');
  const err = decodeServerMessage(frame(protocol.ServerBody.Error, protocol.Error.createError(b, ErrorCode.InstanceFull, msg)));
  assert.deepEqual(err, { type: 'error', error: { code: ErrorCode.InstanceFull, message: 'full' } });

  const name = b.createString('zoe');
  const pj = decodeServerMessage(
    frame(protocol.ServerBody.PlayerJoined, protocol.PlayerJoined.createPlayerJoined(b, 2n ** 63n + 5n, 3, name)),
  );
  assert.deepEqual(pj, { type: 'playerJoined', playerJoined: { playerId: 2n ** 63n + 5n, entityId: 3, name: 'zoe' } });

  const pong = decodeServerMessage(frame(protocol.ServerBody.Pong, protocol.Pong.createPong(b, 99.25, 1700000000000000n)));
  assert.deepEqual(pong, { type: 'pong', pong: { clientTime: 99.25, serverTimeUs: 1700000000000000n } });

  const text = b.createString('maintenance at 04:00 UTC');
  const region = b.createString('eu');
  const notice = decodeServerMessage(
    frame(protocol.ServerBody.Notice, protocol.Notice.createNotice(b, text, region, 1_700_000_000_000_001n)),
  );
  assert.deepEqual(notice, {
    type: 'notice',
    notice: { message: 'maintenance at 04:00 UTC', region: 'eu', sentAtUs: 1_700_000_000_000_001n },
  });
  // Sent to the whole fleet: the region is empty (absent in the frame).
  const all = decodeServerMessage(frame(protocol.ServerBody.Notice, protocol.Notice.createNotice(b, b.createString('hi'), 0, 0n)));
  assert.deepEqual(all, { type: 'notice', notice: { message: 'hi', region: '', sentAtUs: 0n } });

  const url = b.createString('ws://10.0.0.2:9000');
  const inst = b.createString('match-9');
  const transfer = decodeServerMessage(frame(protocol.ServerBody.Transfer, protocol.Transfer.createTransfer(b, url, inst)));
  assert.deepEqual(transfer, { type: 'transfer', transfer: { url: 'ws://10.0.0.2:9000', instanceId: 'match-9' } });
});

test('a server body this client does not know (a newer server) decodes to null, not an error', () => {
  const b = new flatbuffers.Builder(256);
  // What a newer schema might add: a table with a string, a long and a vector.
  const note = b.createString('a body from the future');
  const bytes = b.createByteVector(new Uint8Array([1, 2, 3]));
  b.startObject(3);
  b.addFieldOffset(0, note, 0);
  b.addFieldInt64(1, 123n, 0n);
  b.addFieldOffset(2, bytes, 0);
  const body = b.endObject();
  const newest = Math.max(...Object.values(protocol.ServerBody).filter((v): v is number => typeof v === 'number'));
  for (const type of [newest + 1, 200, 255]) {
    b.finish(protocol.ServerMessage.createServerMessage(b, type as protocol.ServerBody, body));
    assert.equal(decodeServerMessage(b.asUint8Array()), null, `body type ${type}`);
  }
  // No body at all (NONE) is skipped the same way.
  const none = new flatbuffers.Builder(64);
  none.finish(protocol.ServerMessage.createServerMessage(none, protocol.ServerBody.NONE, 0));
  assert.equal(decodeServerMessage(none.asUint8Array()), null);
});

test('a listener that throws does not stop the others', () => {
  const failures: unknown[] = [];
  class E extends Emitter<{ x: number }> {
    fire(n: number) {
      this.emit('x', n);
    }
    protected override listenerFailed(err: unknown) {
      failures.push(err);
    }
  }
  const e = new E();
  const seen: number[] = [];
  e.on('x', () => {
    throw new Error('listener bug');
  });
  const off = e.on('x', (n) => seen.push(n));
  e.once('x', (n) => seen.push(n * 10));
  e.fire(1);
  off();
  e.fire(2);
  assert.deepEqual(seen, [1, 10]);
  assert.equal(failures.length, 2);
  assert.match(String(failures[0]), /listener bug/);
});
