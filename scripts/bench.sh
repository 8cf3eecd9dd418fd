#!/usr/bin/env bash
# shardline's benchmark suite in one command: micro benchmarks (criterion),
# then end-to-end scenarios against shardline and, in the same run, the
# tokio + tokio-tungstenite baseline (benches/baseline_server.rs). Prints
# every result as a table and writes them, with the raw JSON, to --out.
# Method, targets and results: BENCHMARKS.md.
#
#   bash scripts/bench.sh            # full suite, ~20 min (before issue 12's
#                                    # extra game steps and the loadgen check)
#   bash scripts/bench.sh --quick    # same scenarios, fewer steps, ~3-5 min
#   bash scripts/bench.sh --only game,echo   # issue 12's tables and the
#                                    # loadgen check (--quick: 3 min 17 s here)
#
# Placement: the server under test is pinned to core 0 (`taskset -c 0`,
# shardline with --shards 1 --cpus 0, the baseline with one tokio worker);
# the load generator to core 1 (`taskset -c 1 … --threads 1 --cpus 1`).
# Speed goals are ratios against the baseline measured in the same run, since
# the machine is shared; nothing here asserts a time.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: scripts/bench.sh [--quick] [--only LIST] [--profile] [--out DIR]

  --quick       fewer and shorter steps (~3-5 min instead of ~20)
  --only LIST   comma-separated subset of:
                micro,idle,echo,game,check,snapshot,abuse,directory,bandwidth,
                profile,autoscale
                (default: all but profile and autoscale; "game" includes
                "check": loadgen against an independent Node.js client,
                benches/independent-client; directory and autoscale need
                redis-server)
  --profile     also run `perf record` on both servers under the game load
                (results in DIR/profile-*.txt; not used for any table)
  --out DIR     where raw results and results.md go
                (default: target/bench-results/<date-time>)

Environment: SHARDLINE_SERVER_ARGS: extra `shardline serve` flags for every
shardline server of the run (e.g. "--io-writes syscall" for an A/B).
BENCH_NICE (default -20; 0 leaves priorities alone). The server
and the load generator each run in their own session (setsid), so in their
own scheduler autogroup, and that group gets this niceness: with autogroups,
a plain `nice` only ranks a process within its own session and does nothing
against other sessions' builds on this shared machine.
EOF
}

QUICK=0
ONLY="micro,idle,echo,game,check,snapshot,abuse,directory,bandwidth"
OUT=""
while [[ $# -gt 0 ]]; do
    case "$1" in
    --quick) QUICK=1 ;;
    --only)
        ONLY="$2"
        shift
        ;;
    --profile) ONLY="$ONLY,profile" ;;
    --out)
        OUT="$2"
        shift
        ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        usage >&2
        exit 2
        ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${OUT:-$ROOT/target/bench-results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RECORDS=$OUT/records.jsonl
: >"$RECORDS"

SERVER_CORE=0
LOADGEN_CORE=1
NICE=${BENCH_NICE:--20}
# Loopback source addresses: each has its own ephemeral port range, so the
# 19k-connection case does not depend on one range's free ports.
SOURCE_IPS=127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4

# ---------------------------------------------------------------- settings
# Every step's length and the step lists, for the full and the quick run.
if [[ $QUICK == 1 ]]; then
    MICRO_ARGS=(--warm-up-time 0.3 --measurement-time 1)
    IDLE_COUNTS=(1000 10000)
    ECHO_RATES=(50 200 600 1500)
    ECHO_DURATION=5s
    GAME_RATES=(30)
    GAME_COUNTS=(200 600 1000 2400)
    GAME_DURATION=5s
    CHECK_DURATION_S=8
    CHECK_ROUNDS=1
    SNAPSHOT_ROUNDS=2
    SNAPSHOT_WINDOW_S=8
    DIRECTORY_WINDOW_S=10
    # Instances per bandwidth scenario (16 and 64 per instance) and seconds.
    BANDWIDTH_INSTANCES=2
    BANDWIDTH_DURATION=4s
else
    MICRO_ARGS=(--warm-up-time 1 --measurement-time 3)
    IDLE_COUNTS=(1000 10000 19000)
    # Per connection, 100 connections: 5k, 20k, 60k, 150k msg/s (issue 12's
    # steps), then 300k and 500k for the throughput ratio.
    ECHO_RATES=(50 200 600 1500 3000 5000)
    ECHO_DURATION=8s
    GAME_RATES=(30 60)
    GAME_COUNTS=(100 200 400 600 1000 1500 2000 2400 3000 4000 5000 7000)
    GAME_DURATION=10s
    # The loadgen check: per player count, rounds of loadgen then the
    # independent client then the client then loadgen, each this long.
    CHECK_DURATION_S=20
    CHECK_ROUNDS=2
    SNAPSHOT_ROUNDS=5
    SNAPSHOT_WINDOW_S=20
    DIRECTORY_WINDOW_S=30
    BANDWIDTH_INSTANCES=16
    BANDWIDTH_DURATION=15s
fi
# The loadgen check's player counts (independent client vs loadgen).
CHECK_COUNTS=(200 600)
CHECK_TOLERANCE=0.10
ECHO_CONNECTIONS=100
ECHO_MESSAGE_BYTES=64
# Connections opened per second in the game scenario (players join as fast
# as the load generator can handshake, without a thundering herd).
GAME_RAMP_PER_S=2000
PLAYERS_PER_INSTANCE=16
SNAPSHOT_PLAYERS=1000
# The snapshot scenario's interval (the server's default) and the seconds
# between the first player joining and the start of the measured window.
SNAPSHOT_INTERVAL_MS=1000
SNAPSHOT_SETTLE_S=3
PROFILE_PLAYERS=1000
IDLE_RAMP_PER_S=4000
# The directory scenario: one player per instance (so instances = joins),
# joining at DIRECTORY_RAMP_PER_S; the node's directory settings are the
# defaults (heartbeat 1 s, snapshots and replication every 1 s).
DIRECTORY_PLAYERS=1000
DIRECTORY_RAMP_PER_S=200
# The replica budget of the run that shows it binding.
DIRECTORY_TIGHT_BUDGET=200
# Idle players: each sent one input when it joined (the load generator's
# first: nearly straight along x, 5% along y), so its disc slides to the
# walls and stops there within 90 s; the window starts after that.
DIRECTORY_IDLE_SETTLE_S=95

# ---------------------------------------------------------------- processes
# Every process this script starts is remembered here and ended on exit.
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    sleep 0.3
    for pid in "${PIDS[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget_pid() {
    local keep=() pid
    for pid in "${PIDS[@]}"; do
        [[ $pid != "$1" ]] && keep+=("$pid")
    done
    PIDS=("${keep[@]}")
}

# Stops one process we started: TERM, up to 10 s for a graceful exit, KILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
}

# Gives a process we started (in its own session) the niceness BENCH_NICE.
boost() {
    [[ $NICE == 0 ]] && return 0
    # `setsid` makes the new session in the child, after this script has its
    # pid: until then the child is still in this script's autogroup, and
    # writing it would boost the script's group and leave the child's new
    # one at 0 (seen: the independent client, started the same way, got a
    # third of its core). Wait (bounded) until it leads its own session.
    local i
    for ((i = 0; i < 200; i++)); do
        [[ $(ps -o sid= -p "$1" 2>/dev/null | tr -d ' ') == "$1" ]] && break
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.005
    done
    if [[ -w /proc/$1/autogroup ]]; then
        echo "$NICE" >"/proc/$1/autogroup" 2>/dev/null || true
    else
        renice -n "$NICE" -p "$1" >/dev/null 2>&1 || true
    fi
}

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------- python helpers
# Arithmetic, JSON and tables. Sub-commands: cpu, record-*, micro, report.
py() { python3 - "$@" <<'PY'
import glob, json, os, sys

cmd, args = sys.argv[1], sys.argv[2:]

def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def append(rec):
    with open(os.environ["RECORDS"], "a") as f:
        f.write(json.dumps(rec) + "\n")

def counters(stats):
    """Counters of a /stats reply: shardline's summed over shards, or the baseline's."""
    if not stats:
        return {}
    if "shards" in stats:
        total = {}
        for s in stats["shards"]:
            for k, v in s.get("counters", {}).items():
                total[k] = total.get(k, 0) + v
        return total
    return stats.get("counters", {})

def delta(before, after):
    b, a = counters(before), counters(after)
    return {k: a[k] - b.get(k, 0) for k in a}

def cpu_busy(before, after):
    """Busy fraction of each core between two `cpu` snapshots."""
    out = {}
    for core, (b_busy, b_total) in before.items():
        a_busy, a_total = after[core]
        out[core] = round((a_busy - b_busy) / max(a_total - b_total, 1), 3)
    return out

# The shard histograms the snapshot scenario reads.
SNAPSHOT_HISTS = ("tick_duration", "tick_lateness", "snapshot_write", "tick_duration_snapshot",
                  "tick_duration_no_snapshot", "tick_lateness_snapshot", "tick_lateness_no_snapshot")

def hdr_decode(b64):
    """Counts by bucket index of an HdrHistogram in the V2-deflate encoding,
    base64 (what /histograms returns); {} for None."""
    import base64, struct, zlib
    if not b64:
        return {}
    raw = base64.b64decode(b64)
    _cookie, size = struct.unpack(">II", raw[:8])
    data = zlib.decompress(raw[8:8 + size])
    _cookie, plen, _offset, digits, low, _high, _ratio = struct.unpack(">IIIIQQd", data[:40])
    # The layout below (unit 1, 2048 sub-buckets) is the shards' histogram.
    assert (digits, low) == (3, 1), (digits, low)
    payload, counts, i, idx = data[40:40 + plen], {}, 0, 0
    while i < len(payload):
        v = shift = 0
        while True:
            byte = payload[i]
            i += 1
            if shift == 56:
                v |= byte << 56
                break
            v |= (byte & 0x7F) << shift
            if byte < 0x80:
                break
            shift += 7
        v = (v >> 1) ^ -(v & 1)
        if v < 0:
            idx += -v
        else:
            if v:
                counts[idx] = v
            idx += 1
    return counts

def hdr_sub(a, b):
    """a - b; None if some bucket went backwards (not the same server)."""
    if any(b[k] > a.get(k, 0) for k in b):
        return None
    return {k: n - b.get(k, 0) for k, n in a.items() if n - b.get(k, 0) > 0}

def hdr_add(*hs):
    out = {}
    for h in hs:
        for k, n in h.items():
            out[int(k)] = out.get(int(k), 0) + n
    return out

def hdr_quantile(counts, q):
    """The value at quantile q, as hdrhistogram's value_at_quantile (highest
    equivalent value of the bucket), in µs; None when empty."""
    import math
    total = sum(counts.values())
    if not total:
        return None
    want, run = max(1, math.ceil(q * total)), 0
    for idx in sorted(counts, key=int):
        run += counts[idx]
        if run >= want:
            idx = int(idx)
            bucket, sub = (idx >> 10) - 1, (idx & 1023) + 1024
            if bucket < 0:
                bucket, sub = 0, sub - 1024
            return (sub << bucket) + (1 << bucket) - 1

def hist(lg, name):
    return (lg or {}).get("histograms", {}).get(name, {})

def proc_cpu_s(before, after):
    return (int(after) - int(before)) / os.sysconf("SC_CLK_TCK")

if cmd == "cpu":
    snap = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                name, *vals = line.split()
                vals = [int(v) for v in vals]
                idle = vals[3] + vals[4]
                snap[name] = [sum(vals[:8]) - idle, sum(vals[:8])]
    print(json.dumps(snap))

elif cmd == "open-connections":
    print((load(args[0]) or {}).get("connections_open", -1))

elif cmd == "record-game":
    (server, hz, players, lg_path, sb, ss, sa, cb, ca, pb, pa, wall, rc, lg_cpu) = args
    hz, players, wall = int(hz), int(players), float(wall)
    lg, before, steady, after = load(lg_path), load(sb), load(ss), load(sa)
    d = delta(before, after)
    # Writes per update in the steady-state window (after every join).
    ds = delta(steady, after)
    i2u = hist(lg, "input_to_update")
    budget_ms = 1000.0 / hz + 2.0
    joined = (lg or {}).get("players_joined", 0)
    errors = (lg or {}).get("errors", {}) if lg else {"loadgen failed": 1}
    # Strict: the issue's criterion. Relaxed: the update may be one tick
    # late (p99 <= two ticks + 2 ms) and at most 1% of ticks overrun, which
    # survives this shared machine's scheduling noise (tick lateness alone
    # has a p99 of several ms here); it only decides how far the steps go
    # and gives a second, noise-tolerant comparison.
    fatal = []
    if rc != "0" or lg is None:
        fatal.append(f"loadgen exit {rc}")
    if joined < players:
        fatal.append(f"{players - joined} not joined")
    if errors:
        fatal.append("errors " + ",".join(f"{k}={v}" for k, v in errors.items()))
    p99 = i2u.get("p99_ms", 1e9)
    overrun, ticks = d.get("ticks_overrun", 0), max(d.get("ticks", 0), 1)
    strict = list(fatal)
    if p99 > budget_ms:
        strict.append(f"p99 {p99:.1f} ms > {budget_ms:.1f}")
    if overrun > 0:
        strict.append(f"{overrun} ticks overran")
    relaxed_ms = 2000.0 / hz + 2.0
    relaxed = list(fatal)
    if p99 > relaxed_ms:
        relaxed.append(f"p99 {p99:.1f} ms > {relaxed_ms:.1f}")
    if overrun > ticks / 100:
        relaxed.append(f"{overrun}/{ticks} ticks overran")
    writes, updates = ds.get("socket_writes", 0), ds.get("state_updates", 0)
    rec = {
        "scenario": "game", "server": server, "hz": hz, "players": players,
        "pass": not strict, "why": "; ".join(strict),
        "pass_relaxed": not relaxed, "why_relaxed": "; ".join(relaxed),
        "i2u_ms": {k: i2u.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")},
        "jitter_p99_ms": hist(lg, "update_jitter").get("p99_ms"),
        "updates_per_s": (lg or {}).get("throughput", {}).get("msgs_in_per_s"),
        "joined": joined, "errors": errors, "disconnects": (lg or {}).get("disconnects", {}),
        "ticks": d.get("ticks"), "ticks_overrun": d.get("ticks_overrun"), "ticks_late": d.get("ticks_late"),
        "socket_writes": writes, "state_updates": updates, "messages_out": d.get("messages_out"),
        "writes_per_update": round(writes / updates, 4) if updates else None,
        "tick_p99_us": (after or {}).get("histograms_us", {}).get("tick_duration", {}).get("p99"),
        "lateness_p99_us": (after or {}).get("histograms_us", {}).get("tick_lateness", {}).get("p99"),
        "cpu_busy": cpu_busy(json.loads(cb), json.loads(ca)),
        "server_cpu": round(proc_cpu_s(pb, pa) / wall, 3),
        "loadgen_cpu": round(float(lg_cpu) / wall, 3),
        # CPU per player-tick: process CPU over the step / updates sent
        # (server) or received (load generator) in it.
        "server_us_per_update": round(proc_cpu_s(pb, pa) * 1e6 / d["state_updates"], 1)
        if d.get("state_updates") else None,
        "loadgen_us_per_update": round(float(lg_cpu) * 1e6 / lg_updates, 1)
        if (lg_updates := ((lg or {}).get("counters") or {}).get("updates_received")) else None,
        "load_average": os.getloadavg()[0],
    }
    append(rec)
    print(f"game {server:9s} {hz:2d} Hz {players:6d} players: p99 input->update "
          f"{p99:7.1f} ms (budget {budget_ms:.1f}, relaxed {relaxed_ms:.1f}), "
          f"overruns {overrun}/{ticks}, writes/update {rec['writes_per_update']}, "
          f"server cpu {rec['server_cpu']:.2f} ({rec['server_us_per_update']} µs/update), "
          f"loadgen cpu {rec['loadgen_cpu']:.2f} ({rec['loadgen_us_per_update']} µs/update, core busy {rec['cpu_busy'].get('cpu1')}): "
          f"strict {'PASS' if rec['pass'] else 'FAIL (' + rec['why'] + ')'}, "
          f"relaxed {'PASS' if rec['pass_relaxed'] else 'FAIL (' + rec['why_relaxed'] + ')'}")
    sys.exit(0 if rec["pass_relaxed"] else 1)

elif cmd == "record-echo":
    (server, conns, rate, lg_path, cb, ca, pb, pa, wall, rc, lg_cpu) = args
    conns, rate, wall = int(conns), float(rate), float(wall)
    lg = load(lg_path) or {}
    c = lg.get("counters", {})
    run_s = lg.get("run_s") or wall
    achieved = c.get("echoes_received", 0) / run_s if run_s else 0
    offered = conns * rate
    cpu_s = proc_cpu_s(pb, pa)
    rtt = hist(lg, "echo_rtt")
    rec = {
        "scenario": "echo", "server": server, "connections": conns, "rate_hz": rate,
        "offered_per_s": offered, "achieved_per_s": round(achieved),
        "rtt_ms": {k: rtt.get(k) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")},
        # The load generator's own lateness: a p99 RTT near it is the
        # client's, not the server's.
        "send_lag_p99_ms": hist(lg, "send_lag").get("p99_ms"),
        "errors": lg.get("errors", {"loadgen failed": 1} if not lg else {}),
        "unanswered": c.get("echoes_unanswered"),
        "server_cpu": round(cpu_s / wall, 3),
        "loadgen_cpu": round(float(lg_cpu) / wall, 3),
        "server_cpu_us_per_msg": round(cpu_s * 1e6 / max(c.get("echoes_received", 0), 1), 2),
        "cpu_busy": cpu_busy(json.loads(cb), json.loads(ca)),
        "load_average": os.getloadavg()[0],
        "rc": rc,
    }
    append(rec)
    print(f"echo {server:9s} offered {offered:8.0f}/s achieved {achieved:8.0f}/s "
          f"p50 {rtt.get('p50_ms', float('nan')):.2f} ms p99 {rtt.get('p99_ms', float('nan')):.2f} ms "
          f"server cpu {rec['server_cpu']:.2f} ({rec['server_cpu_us_per_msg']} us/msg) "
          f"loadgen cpu {rec['loadgen_cpu']:.2f} (core busy {rec['cpu_busy'].get('cpu1')})")
    # Saturated when less than 90% of the offered load came back.
    sys.exit(0 if rc == "0" and achieved >= 0.9 * offered else 1)

elif cmd == "record-check":
    # One run of the loadgen check: loadgen's JSON report or the
    # independent client's (benches/independent-client/client.mjs).
    (tool, players, run, path, rc, cpu_s, duration_s) = args
    r = load(path) or {}
    if tool == "loadgen":
        i2u, lag = hist(r, "input_to_update"), hist(r, "send_lag")
    else:
        i2u, lag = r.get("input_to_update") or {}, r.get("send_lag") or {}
    rec = {
        "scenario": "check", "tool": tool, "players": int(players), "run": int(run),
        "joined": r.get("players_joined", 0), "errors": r.get("errors", {"no report": 1} if not r else {}),
        "rc": rc, "p50_ms": i2u.get("p50_ms"), "p99_ms": i2u.get("p99_ms"), "p999_ms": i2u.get("p999_ms"),
        "samples": i2u.get("count"), "send_lag_p99_ms": lag.get("p99_ms"),
        "cpu": round(float(cpu_s or 0) / max(float(duration_s), 1), 3),
        "load_average": os.getloadavg()[0],
    }
    append(rec)
    f = lambda v: f"{v:.2f}" if isinstance(v, (int, float)) else "n/a"
    print(f"check {tool:8s} {players:>5s} players run {run}: input->update p50 {f(rec['p50_ms'])} ms "
          f"p99 {f(rec['p99_ms'])} ms (send lag p99 {f(rec['send_lag_p99_ms'])} ms), joined {rec['joined']}, "
          f"errors {rec['errors'] or 'none'}, cpu {rec['cpu']}")

elif cmd == "record-check-missing":
    append({"scenario": "check", "missing": args[0], "load_average": os.getloadavg()[0]})

elif cmd == "record-idle":
    (server, n, opened, rss_ref, rss0, rss1, sock0, sock1, slab0, slab1, skmem_path) = args
    n, opened = int(n), int(opened)
    per = lambda a, b: (int(b) - int(a)) / max(opened, 1)
    rss_kb = per(rss0, rss1)
    rss_all_kb = per(rss_ref, rss1)
    # sockstat and slab count both ends of each loopback connection, and
    # every other socket on this shared machine: half is taken as the
    # server's socket (a noisy figure, shown for reference).
    sock_kb = per(sock0, sock1) * 4 / 2
    slab_kb = per(slab0, slab1) / 1024 / 2
    # The server's own sockets, one by one (`ss -tm`, skmem): bytes queued
    # to read (r) and to send (w), forward-allocated (f) and option memory (o).
    skmem_bytes, sockets = 0, 0
    with open(skmem_path) as f:
        for line in f:
            i = line.find("skmem:(")
            if i < 0:
                continue
            sockets += 1
            for field in line[i + 7:line.index(")", i)].split(","):
                if field[:1] in ("r", "w", "f", "o") and field[1:].isdigit():
                    skmem_bytes += int(field[1:])
    skmem_kb = skmem_bytes / 1024 / max(sockets, 1)
    rec = {
        "scenario": "idle", "server": server, "connections": n, "open": opened,
        "rss_kb_per_conn": round(rss_kb, 2),
        "rss_incl_start_pool_kb_per_conn": round(rss_all_kb, 2),
        "sockstat_kb_per_conn": round(sock_kb, 2),
        "skmem_kb_per_conn": round(skmem_kb, 3), "skmem_sockets": sockets,
        "tcp_slab_kb_per_conn": round(slab_kb, 2),
        "all_in_kb_per_conn": round(max(rss_kb, rss_all_kb) + skmem_kb, 2),
        "load_average": os.getloadavg()[0],
    }
    append(rec)
    print(f"idle {server:9s} {opened:6d}/{n} open: RSS {rss_kb:.2f} KiB/conn "
          f"(incl. start-up pool {rss_all_kb:.2f}), server socket mem {skmem_kb:.3f} KiB "
          f"({sockets} sockets), sockstat {sock_kb:.2f} KiB, "
          f"TCP slab {slab_kb:.2f} KiB -> all-in {rec['all_in_kb_per_conn']:.2f} KiB")

elif cmd == "record-snapshot":
    # The shard's histograms at the start and the end of the steady window;
    # the window is their difference (HdrHistogram V2-deflate, decoded here).
    (interval, rnd, writer, before_path, after_path, stats_path, lg_path) = args
    before, after = load(before_path) or {}, load(after_path) or {}
    st = load(stats_path) or {}
    c = counters(st)
    window = {}
    for name in SNAPSHOT_HISTS:
        b = hdr_decode(before.get("histograms", {}).get(name))
        a = hdr_decode(after.get("histograms", {}).get(name))
        window[name] = hdr_sub(a, b)
    if any(v is None for v in window.values()) or not window["tick_duration"]:
        print(f"snapshot interval {interval} ms writer {writer} round {rnd}: histograms missing or not "
              f"from one server; run left out", file=sys.stderr)
        sys.exit(0)
    q = lambda name, p: hdr_quantile(window[name], p)
    rec = {
        "scenario": "snapshot", "interval_ms": int(interval), "round": int(rnd),
        "writer": writer if int(interval) else None,
        "ticks": sum(window["tick_duration"].values()),
        "ticks_snapshot": sum(window["tick_duration_snapshot"].values()),
        "tick_p50_us": q("tick_duration", 0.5), "tick_p99_us": q("tick_duration", 0.99),
        "lateness_p99_us": q("tick_lateness", 0.99),
        "tick_p99_snapshot_us": q("tick_duration_snapshot", 0.99),
        "tick_p99_no_snapshot_us": q("tick_duration_no_snapshot", 0.99),
        "lateness_p99_snapshot_us": q("tick_lateness_snapshot", 0.99),
        "lateness_p99_no_snapshot_us": q("tick_lateness_no_snapshot", 0.99),
        "snapshots_in_window": sum(window["snapshot_write"].values()),
        "snapshot_write_p50_us": q("snapshot_write", 0.5),
        "snapshot_write_max_us": q("snapshot_write", 1.0),
        "snapshot_failures": c.get("snapshot_failures"),
        "i2u_p99_ms": hist(load(lg_path) or {}, "input_to_update").get("p99_ms"),
        "window": {k: {str(i): n for i, n in v.items()} for k, v in window.items()},
        "load_average": os.getloadavg()[0],
    }
    append(rec)
    print(f"snapshot interval {interval:>4s} ms writer {writer} round {rnd}: {rec['ticks']} ticks, tick p99 {rec['tick_p99_us']} us "
          f"(during a snapshot {rec['tick_p99_snapshot_us']}, {rec['ticks_snapshot']} ticks; outside "
          f"{rec['tick_p99_no_snapshot_us']}), lateness p99 {rec['lateness_p99_us']} us, "
          f"{rec['snapshots_in_window']} snapshots (write p50 {rec['snapshot_write_p50_us']} us)")

elif cmd == "record-directory":
    JOIN_KINDS = ("claim", "seat", "seat_end", "release", "find_seat", "route")
    # Redis commands by kind (shardline_directory_ops_total) at the start,
    # once every player joined, and after the steady window.
    (label, players, budget, m0, m1, m1b, m2, m3, t01, t12, lg) = args
    def ops(path):
        out = {}
        try:
            text = open(path).read()
        except OSError:
            return out
        for line in text.splitlines():
            if line.startswith("shardline_directory_ops_total{"):
                kind = line.split('kind="', 1)[1].split('"', 1)[0]
                out[kind] = float(line.rsplit(" ", 1)[1])
        return out
    def metric(path, name):
        try:
            for line in open(path):
                if line.startswith(name + "{"):
                    return float(line.rsplit(" ", 1)[1])
        except OSError:
            pass
        return None
    # a: before the joins; b: all joined; b2: start of the steady window.
    # d: the players gone and their instances released.
    a, b, b2, c, d = ops(m0), ops(m1), ops(m1b), ops(m2), ops(m3)
    if not a or not c:
        print(f"directory {label}: no metrics; run left out", file=sys.stderr)
        sys.exit(0)
    n, t01, t12 = int(players), float(t01), float(t12)
    joined = (load(lg) or {}).get("players_joined") or n
    steady = {k: (c.get(k, 0) - b2.get(k, 0)) / t12 for k in c}
    # Commands a player's session causes (its instance claimed, its seat
    # recorded, then deleted when it leaves, its instance released once
    # empty), counted from before the joins to after the releases; the
    # periodic kinds are the steady rows' business.
    during = {k: d.get(k, 0) - a.get(k, 0) for k in JOIN_KINDS}
    rec = {
        "scenario": "directory", "label": label, "players": n, "instances": n, "joined": joined,
        "budget": int(budget), "window_s": t12,
        "steady_per_s": steady,
        "per_1000_instances_per_s": {k: v * 1000 / n for k, v in steady.items()},
        "per_1000_joins": {k: v * 1000 / max(joined, 1) for k, v in during.items()},
        "replicas_unchanged": metric(m2, "shardline_directory_replicas_unchanged_total"),
        "replica_wait_ms_max": metric(m2, "shardline_directory_replica_wait_ms_max"),
        "load_average": os.getloadavg()[0],
    }
    append(rec)
    tot = sum(steady.values())
    print(f"directory {label}: {n} instances, {tot:.0f} Redis commands/s steady "
          f"({tot * 1000 / n:.0f} per 1,000 instances), replica {steady.get('replica', 0):.0f}/s, "
          f"join phase {sum(during.values()) * 1000 / max(joined, 1):.0f} per 1,000 joins")

elif cmd == "record-micro":
    # args: criterion dir, then the benchmark names in run order.
    crit, names = args[0], args[1:]
    for name in names:
        est = load(os.path.join(crit, name, "new", "estimates.json"))
        if est:
            append({"scenario": "micro", "name": name,
                    "mean_ns": est["mean"]["point_estimate"],
                    "lo_ns": est["mean"]["confidence_interval"]["lower_bound"],
                    "hi_ns": est["mean"]["confidence_interval"]["upper_bound"]})

elif cmd == "record-abuse":
    # args: the output of tests/abuse.rs run with SHARDLINE_BENCH_ABUSE=1,
    # whose `abuse-bench:` lines hold each case's figures.
    import shlex
    for line in open(args[0], errors="replace"):
        if not line.startswith("abuse-bench: "):
            continue
        rec = {"scenario": "abuse"}
        for kv in shlex.split(line[len("abuse-bench: "):]):
            k, _, v = kv.partition("=")
            rec[k] = v if k in ("case", "verdict") else float(v)
        append(rec)

elif cmd == "record-bandwidth":
    (name, proto, hz, players, per, idle, lg_path, sb, sa, pb, pa, wall, rc) = args
    lg, before, after = load(lg_path), load(sb), load(sa)
    d = delta(before, after)
    sent = d.get("state_updates", 0) + d.get("state_deltas", 0)
    errors = (lg or {}).get("errors", {}) if lg else {"loadgen failed": 1}
    append({
        "scenario": "bandwidth", "name": name, "protocol": int(proto), "hz": int(hz),
        "players": int(players), "per_instance": int(per), "idle": float(idle), "rc": rc,
        "joined": (lg or {}).get("players_joined", 0), "errors": errors,
        "bytes_per_update": (lg or {}).get("bytes_per_update_mean"),
        "bytes_per_player_per_s": (lg or {}).get("bytes_per_player_per_s"),
        "i2u_p99_ms": hist(lg, "input_to_update").get("p99_ms"),
        "server_us_per_update": round(proc_cpu_s(pb, pa) * 1e6 / sent, 2) if sent else None,
        "updates_sent": sent, "full_states": sum(d.get(k, 0) for k in (
            "full_states_joined", "full_states_resumed", "full_states_moved",
            "full_states_no_ack", "full_states_too_old")),
        "delta_encodes": d.get("delta_encodes"), "interest_deferred": d.get("interest_deferred"),
        "ticks_overrun": d.get("ticks_overrun"),
    })

elif cmd == "report":
    recs = [json.loads(l) for l in open(os.environ["RECORDS"]) if l.strip()]
    by = lambda s: [r for r in recs if r["scenario"] == s]
    out = []
    w = out.append
    def fmt_ns(ns):
        if ns >= 1e6: return f"{ns / 1e6:.2f} ms"
        if ns >= 1e3: return f"{ns / 1e3:.2f} µs"
        return f"{ns:.0f} ns"
    def ratio(a, b):
        return f"{a / b:.2f}×" if a and b else "n/a"

    micro = by("micro")
    if micro:
        w("### Micro benchmarks (criterion, mean with 95% CI)\n")
        w("| benchmark | mean | 95% CI |")
        w("|---|---:|---|")
        for r in micro:
            w(f"| `{r['name']}` | {fmt_ns(r['mean_ns'])} | {fmt_ns(r['lo_ns'])} – {fmt_ns(r['hi_ns'])} |")
        m = {r["name"]: r["mean_ns"] for r in micro}
        if "tick_1000_metrics_on" in m and "tick_1000_metrics_off" in m:
            on, off = m["tick_1000_metrics_on"], m["tick_1000_metrics_off"]
            w(f"\nMetrics cost: tick_1000_metrics_on / off = **{on / off:.3f}** "
              f"(+{(on - off) / 1000:.1f} µs per tick of 1,000 players, "
              f"{(on - off) / 1000:.0f} ns per player).")
        w("")

    idle = by("idle")
    if idle:
        w("### Idle connections: memory per connection (target: all-in ≤ 7 KB)\n")
        w("All-in = RSS (incl. start-up pool) + the server's own socket memory (`ss -tm` skmem r+w+f+o, per "
          "socket). The sockstat figure (machine-wide, half of both ends) is shown for reference only.\n")
        w("| server | connections | open | RSS Δ / conn | RSS incl. start-up pool / conn | server socket mem / conn | sockstat / 2 / conn | TCP slab / conn (not in all-in) | all-in / conn |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in idle:
            w(f"| {r['server']} | {r['connections']} | {r['open']} | {r['rss_kb_per_conn']:.2f} KiB | "
              f"{r['rss_incl_start_pool_kb_per_conn']:.2f} KiB | {r.get('skmem_kb_per_conn', 0):.3f} KiB | "
              f"{r['sockstat_kb_per_conn']:.2f} KiB | "
              f"{r['tcp_slab_kb_per_conn']:.2f} KiB | **{r['all_in_kb_per_conn']:.2f} KiB** |")
        w("")

    echo = by("echo")
    if echo:
        w(f"### Echo: {os.environ.get('ECHO_MESSAGE_BYTES')}-byte binary messages on /echo, "
          f"{os.environ.get('ECHO_CONNECTIONS')} connections, offered rate stepped up\n")
        w("Server CPU and loadgen CPU: fraction of one core used by that process; core 1 busy: by anything, "
          "the load generator and whatever else this shared machine ran there.\n")
        w("| server | offered msg/s | achieved msg/s | p50 | p99 | p99.9 | server CPU | server CPU µs/msg | loadgen CPU | core 1 busy | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in echo:
            rt = r["rtt_ms"]
            fmtms = lambda v: f"{v:.2f} ms" if v is not None else "n/a"
            w(f"| {r['server']} | {r['offered_per_s']:.0f} | {r['achieved_per_s']} | {fmtms(rt['p50_ms'])} | "
              f"{fmtms(rt['p99_ms'])} | {fmtms(rt['p999_ms'])} | {r['server_cpu']:.2f} | {r['server_cpu_us_per_msg']} | "
              f"{r.get('loadgen_cpu', 0):.2f} | {r['cpu_busy'].get('cpu1')} | {r['errors'] or ''} |")
        best = {s: max((r["achieved_per_s"] for r in echo if r["server"] == s), default=0)
                for s in ("shardline", "baseline")}
        w(f"\nBest achieved: shardline {best['shardline']}/s, baseline {best['baseline']}/s → "
          f"ratio **{ratio(best['shardline'], best['baseline'])}** (target ≥ 2×).\n")
        # The load generator's core caps what either server can be offered;
        # messages per second of server CPU is what each server could do with
        # its whole core (an extrapolation, taken at the best step).
        per_core = {s: max((r["achieved_per_s"] / r["server_cpu"] for r in echo
                            if r["server"] == s and r["server_cpu"] > 0.05), default=0)
                    for s in ("shardline", "baseline")}
        w(f"Messages per second per core of server CPU (achieved / server CPU, best step): shardline "
          f"{per_core['shardline']:.0f}, baseline {per_core['baseline']:.0f} → ratio "
          f"**{ratio(per_core['shardline'], per_core['baseline'])}**.\n")
        # Server CPU per message at the same offered rate (batching grows with
        # the rate, so only equal rates compare).
        w("| offered msg/s | shardline CPU µs/msg | baseline CPU µs/msg | baseline / shardline (> 1: shardline cheaper) |")
        w("|---:|---:|---:|---:|")
        for rate in sorted({r["offered_per_s"] for r in echo}):
            pair = {r["server"]: r for r in echo if r["offered_per_s"] == rate}
            if len(pair) == 2:
                a, b = pair["shardline"]["server_cpu_us_per_msg"], pair["baseline"]["server_cpu_us_per_msg"]
                w(f"| {rate:.0f} | {a} | {b} | {ratio(b, a)} |")
        # Issue 12: below saturation, CPU per message no worse than the
        # baseline's at 5k and 20k; p99 <= 1 ms up to 150k.
        w("\nIssue 12 targets (steps of 5k, 20k, 60k, 150k msg/s):\n")
        w("| offered msg/s | shardline p50 / p90 / p99 | baseline p50 / p90 / p99 | loadgen send lag p99 (shardline / baseline) | shardline µs/msg | baseline µs/msg | CPU/msg ≤ baseline (5k, 20k) | p99 ≤ 1 ms |")
        w("|---:|---:|---:|---:|---:|---:|---|---|")
        for rate in (5000, 20000, 60000, 150000):
            pair = {r["server"]: r for r in echo if abs(r["offered_per_s"] - rate) < 1}
            s_, b_ = pair.get("shardline"), pair.get("baseline")
            if not s_:
                continue
            p99 = lambda r: r["rtt_ms"]["p99_ms"] if r and r["rtt_ms"].get("p99_ms") is not None else None
            fm = lambda v: f"{v:.2f} ms" if v is not None else "n/a"
            cpu_ok = ("met" if b_ and s_["server_cpu_us_per_msg"] <= b_["server_cpu_us_per_msg"] else "not met") \
                if rate <= 20000 else "–"
            q = lambda r: " / ".join(fm(r["rtt_ms"].get(k)).replace(" ms", "") for k in ("p50_ms", "p90_ms", "p99_ms")) + " ms" \
                if r else "n/a"
            lag = lambda r: fm(r.get("send_lag_p99_ms")) if r else "n/a"
            w(f"| {rate} | {q(s_)} | {q(b_)} | {lag(s_)} / {lag(b_)} | {s_['server_cpu_us_per_msg']} | "
              f"{b_['server_cpu_us_per_msg'] if b_ else 'n/a'} | {cpu_ok} | "
              f"{'met' if p99(s_) is not None and p99(s_) <= 1.0 else 'not met'} |")
        w("")

    bw = by("bandwidth")
    if bw:
        w("### Bandwidth: protocol v1 (full state) against v2 (deltas, interest), same run\n")
        w("Bytes are update payloads as the load generator received them (StateUpdate or StateDelta, "
          "before WebSocket framing), per update and per player per second; server CPU per update is "
          "the process's CPU over the step divided by the updates it sent (one per player-tick); p99 is "
          "input→update. Scenarios: arena16 = 16 per instance at 30 Hz, every player moving; "
          "half-idle64 = 64 per instance, half of them standing still; interest1000 = one instance of "
          "1,000 at 20 Hz with --interest-radius 150 (budget 64).\n")
        w("| scenario | protocol | players | bytes / update | bytes / player / s | server µs / update | p99 | full states | encodes | deferred | errors |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        fm = lambda v, f="{:.1f}": f.format(v) if v is not None else "n/a"
        for r in sorted(bw, key=lambda r: (r["name"], r["protocol"])):
            errs = ",".join(f"{k}={v}" for k, v in (r.get("errors") or {}).items()) or "none"
            w(f"| {r['name']} | v{r['protocol']} | {r['joined']}/{r['players']} | {fm(r['bytes_per_update'])} | "
              f"{fm(r['bytes_per_player_per_s'], '{:.0f}')} | {fm(r['server_us_per_update'], '{:.2f}')} | "
              f"{fm(r['i2u_p99_ms'])} ms | {r['full_states']} | {r.get('delta_encodes') or 0} | "
              f"{r.get('interest_deferred') or 0} | {errs} |")
        w("")

    game = by("game")
    if game:
        w("### Game: players at the tick rate, 16 per instance, inputs at the tick rate\n")
        w("Strict (the target's criterion): every player joined, no errors, p99 input→update ≤ one tick + 2 ms, "
          "no tick overran. Relaxed (noise-tolerant, for comparison only): the same with p99 ≤ two ticks + 2 ms "
          "and ≤ 1% of ticks overrun; steps continue until the relaxed criterion fails.\n")
        w("Latencies are input→update as the load generator sees them (from each input's intended send time); "
          "p99 − tick is what is left of the p99 after one tick interval, i.e. the part the 2 ms budget covers. "
          "Tick and lateness p99 come from shardline's admin histograms; late ticks started > 1/10 interval late.\n")
        w("CPU per update is the process's CPU time over the step divided by the StateUpdates the server sent "
          "(server) or the load generator received (loadgen): the cost of one player-tick, input and update.\n")
        w("| server | Hz | players | p50 | p99 | p99 − tick | p99.9 | ticks overrun | late ticks | tick p99 | lateness p99 | writes / update | server CPU | server µs / update | loadgen CPU | loadgen µs / update | core 1 busy | result |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in game:
            i = r["i2u_ms"]
            fmtms = lambda v: f"{v:.1f} ms" if v is not None else "n/a"
            fmtus = lambda v: f"{v / 1000:.1f} ms" if v else "n/a"
            late = f"{100 * r['ticks_late'] / r['ticks']:.0f}%" if r.get("ticks") else "n/a"
            excess = i["p99_ms"] - 1000 / r["hz"] if i["p99_ms"] is not None else None
            w(f"| {r['server']} | {r['hz']} | {r['players']} | {fmtms(i['p50_ms'])} | {fmtms(i['p99_ms'])} | "
              f"{fmtms(excess)} | {fmtms(i['p999_ms'])} | {r['ticks_overrun']} | {late} | {fmtus(r.get('tick_p99_us'))} | "
              f"{fmtus(r.get('lateness_p99_us'))} | {r['writes_per_update']} | {r['server_cpu']:.2f} | "
              f"{r.get('server_us_per_update') or 'n/a'} | {r.get('loadgen_cpu', 0):.2f} | "
              f"{r.get('loadgen_us_per_update') or 'n/a'} | {r['cpu_busy'].get('cpu1')} | strict {'pass' if r['pass'] else 'FAIL (' + r['why'] + ')'}; "
              f"relaxed {'pass' if r['pass_relaxed'] else 'FAIL (' + r['why_relaxed'] + ')'} |")
        w("\nMost players that held: the largest step such that it and every smaller step passed "
          "(\"+\" = the last step tried still passed).\n")
        w("| Hz | criterion | shardline | baseline | shardline / baseline (target ≥ 2×) | shardline ≥ 5,000 |")
        w("|---:|---|---:|---:|---:|---|")
        for hz in sorted({r["hz"] for r in game}):
            for key, label in (("pass", "strict"), ("pass_relaxed", "relaxed")):
                best, lab = {}, {}
                for s in ("shardline", "baseline"):
                    steps = sorted((r["players"], r[key]) for r in game if r["hz"] == hz and r["server"] == s)
                    held = 0
                    for players, ok in steps:
                        if not ok:
                            break
                        held = players
                    best[s] = held
                    lab[s] = f"{held}{'+' if steps and held == steps[-1][0] else ''}"
                w(f"| {hz} | {label} | {lab['shardline']} | {lab['baseline']} | "
                  f"{ratio(best['shardline'], best['baseline'])} | "
                  f"{'met' if best['shardline'] >= 5000 else 'not met'} |")
        w("\nServer CPU per player, at the largest step that passed the relaxed criterion, extrapolated to one "
          "full core (the load generator's core saturates long before the server's; an estimate, not a measurement):\n")
        w("| Hz | shardline players per core | baseline players per core | ratio |")
        w("|---:|---:|---:|---:|")
        for hz in sorted({r["hz"] for r in game}):
            est = {}
            for s in ("shardline", "baseline"):
                ok = [r for r in game if r["hz"] == hz and r["server"] == s and r["pass_relaxed"] and r["server_cpu"] > 0]
                if ok:
                    top = max(ok, key=lambda r: r["players"])
                    est[s] = top["players"] / top["server_cpu"]
            w(f"| {hz} | {est.get('shardline', 0):.0f} | {est.get('baseline', 0):.0f} | "
              f"{ratio(est.get('shardline'), est.get('baseline'))} |")
        w("\np99 input→update against players, both servers (bar: one tick + 2 ms); \"largest N\" is the "
          "largest step whose p99 and every smaller step's p99 held the bar (overruns and errors not counted):\n")
        for hz in sorted({r["hz"] for r in game}):
            bar = 1000.0 / hz + 2.0
            counts = sorted({r["players"] for r in game if r["hz"] == hz})
            by_key = {(r["server"], r["players"]): r for r in game if r["hz"] == hz}
            w(f"| {hz} Hz: players | shardline p50 / p99 | baseline p50 / p99 | shardline µs / player-tick | baseline µs / player-tick |")
            w("|---:|---:|---:|---:|---:|")
            for n in counts:
                cells = []
                for srv in ("shardline", "baseline"):
                    r = by_key.get((srv, n))
                    cells.append(f"{r['i2u_ms']['p50_ms']:.1f} / {r['i2u_ms']['p99_ms']:.1f} ms"
                                 if r and r["i2u_ms"].get("p99_ms") is not None else "–")
                us = [by_key.get((srv, n), {}).get("server_us_per_update") for srv in ("shardline", "baseline")]
                w(f"| {n} | {cells[0]} | {cells[1]} | {us[0] if us[0] is not None else '–'} | {us[1] if us[1] is not None else '–'} |")
            largest = {}
            for srv in ("shardline", "baseline"):
                held = 0
                for n in counts:
                    r = by_key.get((srv, n))
                    if not r or r["i2u_ms"].get("p99_ms") is None or r["i2u_ms"]["p99_ms"] > bar or r["joined"] < n:
                        break
                    held = n
                largest[srv] = held
            w(f"\nLargest N with p99 ≤ {bar:.2f} ms at {hz} Hz: shardline **{largest['shardline']}**, "
              f"baseline **{largest['baseline']}**.\n")
        sl = [r for r in game if r["server"] == "shardline" and r["writes_per_update"]]
        if sl:
            w(f"\nshardline socket writes per StateUpdate (admin counters `socket_writes` / `state_updates`, "
              f"steady-state window after every player joined, all steps): "
              f"{min(r['writes_per_update'] for r in sl):.4f} – {max(r['writes_per_update'] for r in sl):.4f} "
              f"(1.0 = exactly one write per player per tick; below 1, a late session wrote two ticks' "
              f"updates in one write).")
        w("")

    dirs = by("directory")
    if dirs:
        w("### Directory: Redis commands of one node, by kind\n")
        w(f"One node (1 shard), {os.environ.get('DIRECTORY_PLAYERS')} players joining at "
          f"{os.environ.get('DIRECTORY_RAMP_PER_S')}/s, one per instance; heartbeat and replication every "
          "1 s (defaults). Steady: commands per second over the window after every player joined, scaled to "
          "1,000 instances. Joins: the commands a player's session causes — its join (claim, seat) and its "
          "leave (seat_end, and release of its emptied instance) — per 1,000 joins. "
          "From `shardline_directory_ops_total{kind}`.\n")
        kinds = sorted({k for r in dirs for k in r["steady_per_s"]} | {k for r in dirs for k in r["per_1000_joins"]})
        w("| run | budget (writes/s) | " + " | ".join(kinds) + " | all | replica wait max |")
        w("|---|---:|" + "---:|" * len(kinds) + "---:|---:|")
        for r in dirs:
            row = r["per_1000_instances_per_s"]
            w(f"| {r['label']}: per s per 1,000 instances | {r['budget']} | " + " | ".join(f"{row.get(k, 0):.1f}" for k in kinds)
              + f" | **{sum(row.values()):.1f}** | {r['replica_wait_ms_max']:.0f} ms |")
            row = r["per_1000_joins"]
            w(f"| {r['label']}: per 1,000 joins | | " + " | ".join(f"{row[k]:.0f}" if k in row else "–" for k in kinds)
              + f" | **{sum(row.values()):.0f}** | |")
        w("")
    check = by("check")
    if check:
        tol = float(os.environ.get("CHECK_TOLERANCE", "0.1"))
        w("### Load generator check: `shardline loadgen` against an independent client\n")
        missing = [r["missing"] for r in check if "missing" in r]
        if missing:
            w(f"NOT RUN: {missing[0]}.\n")
        runs = [r for r in check if "tool" in r]
        if runs:
            w("Same shardline server, same minutes, 30 Hz, 16 players per instance, no pings; per player count, "
              "rounds of loadgen, the client, the client, loadgen. Independent client: benches/independent-client "
              "(Node.js, npm `ws`), written from docs/protocol.md and the schema. Both: an input's intended send "
              "time → the first StateUpdate acknowledging it, coordinated-omission correct; inputs of each player "
              "on their own phase, spread evenly over the tick.\n")
            fm = lambda v: f"{v:.2f} ms" if isinstance(v, (int, float)) else "n/a"
            w("| players | tool | run | joined | p50 | p99 | p99.9 | send lag p99 | CPU (of one core) | errors | load avg |")
            w("|---:|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
            for r in sorted(runs, key=lambda r: (r["players"], r["run"])):
                w(f"| {r['players']} | {r['tool']} | {r['run']} | {r['joined']} | {fm(r['p50_ms'])} | {fm(r['p99_ms'])} | "
                  f"{fm(r['p999_ms'])} | {fm(r['send_lag_p99_ms'])} | {r['cpu']} | {r['errors'] or ''} | {r['load_average']:.2f} |")
            w(f"\nMean over the runs, and loadgen / client (target: within {tol:.0%}):\n")
            w("| players | loadgen p50 / p99 | client p50 / p99 | p50 ratio | p99 ratio | within the target |")
            w("|---:|---:|---:|---:|---:|---|")
            mean = lambda xs: sum(xs) / len(xs) if xs else None
            for n in sorted({r["players"] for r in runs}):
                m = {}
                for tool in ("loadgen", "client"):
                    ok = [r for r in runs if r["players"] == n and r["tool"] == tool and r["p99_ms"] is not None]
                    m[tool] = (mean([r["p50_ms"] for r in ok]), mean([r["p99_ms"] for r in ok]))
                (lp50, lp99), (cp50, cp99) = m["loadgen"], m["client"]
                if None in (lp50, lp99, cp50, cp99):
                    w(f"| {n} | – | – | – | – | n/a (a tool has no result) |")
                    continue
                r50, r99 = lp50 / cp50, lp99 / cp99
                within = abs(r50 - 1) <= tol and abs(r99 - 1) <= tol
                w(f"| {n} | {lp50:.2f} / {lp99:.2f} ms | {cp50:.2f} / {cp99:.2f} ms | {r50:.3f} | {r99:.3f} | "
                  f"{'yes' if within else 'no'} |")
            w("")

    snap = by("snapshot")
    if snap:
        interval = max(r["interval_ms"] for r in snap)
        w(f"### Tick with and without snapshots ({os.environ.get('SNAPSHOT_PLAYERS', '')} players, 30 Hz, "
          f"snapshot every {interval} ms; target: tick p99 rises ≤ 10%)\n")
        w("Each round runs three servers in turn (the order rotates): snapshots on with the writer under SCHED_IDLE "
          "(`--snapshot-writer-idle on`), snapshots on with the writer at normal priority (the default), and "
          "snapshots off; each is read over the same steady window. With snapshots on, every tick is also recorded "
          "in one of two classes by whether a snapshot was being captured or written when it started: comparing "
          "the two gives the cost of snapshots from one run, interleaved at the snapshot interval, so the "
          "machine's other load falls on both alike.\n")
        w("| snapshots | writer | round | ticks | tick p50 | tick p99 | lateness p99 | ticks during a snapshot | tick p99 during / outside | lateness p99 during / outside | snapshots | write p50 / max |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        us = lambda v: f"{v} µs" if v is not None else "n/a"
        for r in sorted(snap, key=lambda r: (r["round"], r["interval_ms"], r.get("writer") or "")):
            on = r["interval_ms"] > 0
            w(f"| {'every ' + str(r['interval_ms']) + ' ms' if on else 'off'} | {r.get('writer') or '–'} | "
              f"{r['round']} | {r['ticks']} | "
              f"{us(r['tick_p50_us'])} | {us(r['tick_p99_us'])} | {us(r['lateness_p99_us'])} | "
              + (f"{r['ticks_snapshot']} | {us(r['tick_p99_snapshot_us'])} / {us(r['tick_p99_no_snapshot_us'])} | "
                 f"{us(r['lateness_p99_snapshot_us'])} / {us(r['lateness_p99_no_snapshot_us'])} | "
                 f"{r['snapshots_in_window']} | {us(r['snapshot_write_p50_us'])} / {us(r['snapshot_write_max_us'])} |"
                 if on else "– | – | – | – | – |"))
        def median(xs):
            xs = sorted(xs)
            n = len(xs)
            return (xs[n // 2] + xs[(n - 1) // 2]) / 2 if xs else None
        def spread(xs):
            xs = [x for x in xs if x]
            return f"median {median(xs):.2f}, range {min(xs):.2f}–{max(xs):.2f} over {len(xs)} rounds" if xs else "n/a"
        def pooled(rs, name):
            return hdr_add(*[r["window"][name] for r in rs])
        def ratio_of(a, b):
            return a / b if a and b else None
        # A run whose window lost ticks was stalled by the machine (a tick
        # whole intervals late is skipped): such stalls also stretch the
        # snapshot in progress, so they land in the "during" class. The
        # ratios are given over all runs and over the runs without a stall
        # (at least 98% of the window's ticks).
        window_s = float(os.environ.get("SNAPSHOT_WINDOW_S", "0") or 0)
        clean = lambda r: not window_s or r["ticks"] >= 0.98 * 30 * window_s
        for subset, title in ((lambda r: True, "all runs"), (clean, "runs without a stall (≥ 98% of the window's ticks)")):
          offs = [r for r in snap if r["interval_ms"] == 0 and subset(r)]
          for writer in ("idle", "normal"):
            ons = [r for r in snap if r["interval_ms"] > 0 and r.get("writer", "idle") == writer and subset(r)]
            if not ons:
                continue
            w(f"\nWriter {'under SCHED_IDLE (default)' if writer == 'idle' else 'at normal priority'}, {title}:\n")
            for kind, label in (("tick_duration", "tick duration p99 (the target)"),
                                ("tick_lateness", "tick lateness p99")):
                during = hdr_quantile(pooled(ons, kind + "_snapshot"), 0.99)
                outside = hdr_quantile(pooled(ons, kind + "_no_snapshot"), 0.99)
                r_same = ratio_of(during, outside)
                per_round = [ratio_of(hdr_quantile(r["window"][kind + "_snapshot"], 0.99),
                                      hdr_quantile(r["window"][kind + "_no_snapshot"], 0.99)) for r in ons]
                verdict = (f" ({'met' if r_same <= 1.1 else 'not met'}: target ≤ 1.10)"
                           if kind == "tick_duration" and r_same else "")
                w(f"- Same run, {label}: during a snapshot {us(during)}, outside {us(outside)} (rounds pooled) → "
                  f"**{r_same:.2f}**{verdict}; per round: {spread(per_round)}." if r_same
                  else f"- Same run, {label}: n/a.")
                on_all = hdr_quantile(pooled(ons, kind), 0.99)
                off_all = hdr_quantile(pooled(offs, kind), 0.99)
                pairs = [ratio_of(hdr_quantile(a["window"][kind], 0.99), hdr_quantile(b["window"][kind], 0.99))
                         for a in ons for b in offs if a["round"] == b["round"]]
                r_cross = ratio_of(on_all, off_all)
                w(f"- Server with snapshots on vs off, {label}: on {us(on_all)}, off {us(off_all)} (rounds pooled) → "
                  f"{r_cross:.2f}; per round: {spread(pairs)}." if r_cross
                  else f"- Server with snapshots on vs off, {label}: n/a.")
            writes = pooled(ons, "snapshot_write")
            w(f"- Snapshot writes (capture + archive + write + fsync): {sum(writes.values())}, "
              f"p50 {us(hdr_quantile(writes, 0.5))}, p99 {us(hdr_quantile(writes, 0.99))}.")
        w("")

    abuse = by("abuse")
    if abuse:
        w("### Abuse: a well-behaved player's input→update p99 while the server is abused\n")
        w("Each case of `tests/abuse.rs` against a control server nobody abuses, measured over "
          "the same time; bound: one tick (33.3 ms) + 5 ms, or the control's p99 + 5 ms when the "
          "host already misses that.\n")
        w("| case | samples | p99 | max | control p99 | bound | |")
        w("|---|---:|---:|---:|---:|---:|---|")
        for r in abuse:
            w(f"| {r['case']} | {r['samples']:.0f} | {r['p99_ms']:.1f} ms | {r['max_ms']:.1f} ms | "
              f"{r['control_p99_ms']:.1f} ms | {r['bound_ms']:.1f} ms | {r['verdict']} |")
        w("")
    print("\n".join(out))
PY
}
export RECORDS ECHO_MESSAGE_BYTES ECHO_CONNECTIONS SNAPSHOT_PLAYERS SNAPSHOT_WINDOW_S CHECK_TOLERANCE
export DIRECTORY_PLAYERS DIRECTORY_RAMP_PER_S

# ---------------------------------------------------------------- machine
machine_info() {
    {
        echo "### Machine"
        echo
        echo "- CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores available ($(grep -c ^processor /proc/cpuinfo) online)"
        echo "- Memory: $(awk '/MemTotal/{printf "%.1f GiB", $2/1048576}' /proc/meminfo); kernel $(uname -r)"
        echo "- Limits: open files $(ulimit -n) (hard $(ulimit -Hn)); locked memory $(ulimit -l) KiB"
        echo "- Load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work shares this machine)"
        echo "- Commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' + uncommitted changes')"
        echo "- Run: $(date -u +%Y-%m-%dT%H:%MZ), mode $([[ $QUICK == 1 ]] && echo quick || echo full)"
        echo
    } >"$OUT/machine.md"
    cat "$OUT/machine.md"
}

# ---------------------------------------------------------------- build
build() {
    log "building (release)"
    cargo build --release --bin shardline >&2
    SHARDLINE=$ROOT/target/release/shardline
    cargo bench --no-run --bench baseline_server --bench micro --message-format=json \
        >"$OUT/bench-build.json" 2>"$OUT/bench-build.log" || {
        cat "$OUT/bench-build.log" >&2
        exit 1
    }
    exe() {
        jq -r --arg t "$1" 'select(.reason == "compiler-artifact" and .target.name == $t and .executable != null) | .executable' \
            "$OUT/bench-build.json" | tail -1
    }
    BASELINE=$(exe baseline_server)
    MICRO=$(exe micro)
    [[ -x $SHARDLINE && -x $BASELINE && -x $MICRO ]] || {
        echo "build failed: no shardline, baseline_server or micro binary" >&2
        exit 1
    }
    TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)
    # Private copies: a concurrent `cargo build` must not swap a binary
    # between two steps of this run.
    mkdir -p "$OUT/bin"
    cp "$SHARDLINE" "$OUT/bin/shardline"
    cp "$BASELINE" "$OUT/bin/baseline_server"
    SHARDLINE=$OUT/bin/shardline
    BASELINE=$OUT/bin/baseline_server
}

# ---------------------------------------------------------------- servers
# Listeners use SO_REUSEPORT, so a second bench run on the same ports would
# bind too and share our connections and admin requests: each run starts
# from its own range (below the ephemeral ports) and skips ports something
# already listens on.
PORT_NEXT=$((10000 + ($$ % 200) * 100))
port_busy() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
next_ports() {
    while port_busy "$PORT_NEXT" || port_busy $((PORT_NEXT + 1)); do
        PORT_NEXT=$((PORT_NEXT + 2))
    done
    SRV_PORT=$PORT_NEXT
    ADM_PORT=$((PORT_NEXT + 1))
    PORT_NEXT=$((PORT_NEXT + 2))
}

# Waits until the admin endpoint answers (the server is up).
wait_admin() {
    local i
    for ((i = 0; i < 100; i++)); do
        curl -sf --max-time 1 "http://127.0.0.1:$1/stats" >/dev/null 2>&1 && return 0
        kill -0 "$2" 2>/dev/null || break
        sleep 0.1
    done
    echo "server (pid $2) did not come up; log: $3" >&2
    tail -5 "$3" >&2 || true
    return 1
}

# start_server shardline|baseline HZ DIR [extra shardline flags]: sets
# SRV_PID, SRV_PORT, ADM_PORT. SNAP_MS (default 0) sets shardline's
# snapshot interval.
start_server() {
    local kind=$1 hz=$2 dir=$3
    shift 3
    next_ports
    mkdir -p "$dir"
    if [[ $kind == shardline ]]; then
        setsid taskset -c $SERVER_CORE "$SHARDLINE" serve \
            --listen "127.0.0.1:$SRV_PORT" --admin-listen "127.0.0.1:$ADM_PORT" \
            --shards 1 --cpus $SERVER_CORE --tick-rate "$hz" \
            --snapshot-interval-ms "${SNAP_MS:-0}" --snapshot-dir "$dir/data" --no-restore \
            --load-shedding off --creates-per-ip-per-min 0 --log-level warn ${SHARDLINE_SERVER_ARGS:-} "$@" >"$dir/server.log" 2>&1 &
    else
        setsid taskset -c $SERVER_CORE "$BASELINE" --threads 1 \
            --listen "127.0.0.1:$SRV_PORT" --admin-listen "127.0.0.1:$ADM_PORT" \
            --tick-rate "$hz" >"$dir/server.log" 2>&1 &
    fi
    SRV_PID=$!
    PIDS+=("$SRV_PID")
    boost "$SRV_PID"
    wait_admin "$ADM_PORT" "$SRV_PID" "$dir/server.log"
}

admin_stats() { curl -sf --max-time 5 "http://127.0.0.1:$1/stats" >"$2" || echo '{}' >"$2"; }
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
sockstat_pages() { awk '/^TCP:/{for (i = 1; i < NF; i++) if ($i == "mem") print $(i + 1)}' /proc/net/sockstat; }
# Waits (up to 20 s) until no established socket on port $1 holds unread bytes.
wait_drained() {
    local i
    for ((i = 0; i < 40; i++)); do
        [[ $(ss -tnH state established "( sport = :$1 )" 2>/dev/null | awk '$1 > 0' | wc -l) == 0 ]] && return 0
        sleep 0.5
    done
    log "idle: port $1 still has unread bytes after 20 s"
}
# The server's established sockets on port $1, with their memory (skmem).
server_sockets() { ss -tmnH state established "( sport = :$1 )" 2>/dev/null || true; }
tcp_slab_bytes() { awk '$1 == "TCP" {print $2 * $4}' /proc/slabinfo 2>/dev/null || echo 0; }
now_s() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# start_loadgen OUT_JSON [loadgen flags]: starts the load generator pinned to
# its core, in the background; sets LG_PID. Players speak protocol version 1
# (full state: what the baseline server speaks, and what every scenario but
# bandwidth measured) unless LG_PROTOCOL says otherwise.
start_loadgen() {
    local out=$1
    shift
    setsid taskset -c $LOADGEN_CORE "$SHARDLINE" loadgen --threads 1 --cpus $LOADGEN_CORE \
        --protocol-version "${LG_PROTOCOL:-1}" --json --quiet "$@" >"$out" 2>"${out%.json}.err" &
    LG_PID=$!
    PIDS+=("$LG_PID")
    boost "$LG_PID"
}

# Sets CHILD_CPU_S to the CPU seconds (user + system) of this shell's reaped
# children, from the `times` builtin; called without a subshell, since a
# subshell's `times` would only see its own children.
children_cpu_s() {
    times >"$OUT/.times"
    CHILD_CPU_S=$(awk 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] } printf "%.3f", t }' "$OUT/.times")
}

# wait_loadgen: waits for LG_PID; returns its exit code and sets LG_CPU_S,
# the CPU seconds the load generator used.
wait_loadgen() {
    local rc=0 before
    children_cpu_s
    before=$CHILD_CPU_S
    wait "$LG_PID" || rc=$?
    children_cpu_s
    LG_CPU_S=$(awk -v a="$before" -v b="$CHILD_CPU_S" 'BEGIN { printf "%.3f", b - a }')
    forget_pid "$LG_PID"
    return $rc
}

# run_loadgen OUT_JSON [loadgen flags]: start_loadgen + wait_loadgen.
run_loadgen() {
    start_loadgen "$@"
    wait_loadgen
}

# ---------------------------------------------------------------- scenarios
scenario_micro() {
    log "micro benchmarks"
    local out=$OUT/micro.txt
    # Criterion writes its estimates under target/criterion (cwd is the repo).
    setsid "$MICRO" --bench "${MICRO_ARGS[@]}" >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    boost "$pid"
    wait "$pid" || log "micro benchmarks exited with an error; see $out"
    forget_pid "$pid"
    grep -E 'time:' "$out" >&2 || true
    # Criterion prints each benchmark's name at the start of a line.
    mapfile -t names < <(grep -oE '^[a-z0-9_]+ +time:|^[a-z0-9_]+$' "$out" | awk '{print $1}' | awk '!seen[$0]++')
    py record-micro "$TARGET_DIR/criterion" "${names[@]}"
}

scenario_idle() {
    local ref_dir=$OUT/idle-ref
    start_server shardline 30 "$ref_dir" --max-connections 64 --buffers 64
    sleep 1
    local rss_ref_shardline
    rss_ref_shardline=$(rss_kb "$SRV_PID")
    stop_pid "$SRV_PID"
    local n server
    for n in "${IDLE_COUNTS[@]}"; do
        for server in shardline baseline; do
            log "idle: $server, $n connections"
            local dir=$OUT/idle-$server-$n
            start_server "$server" 30 "$dir" --max-connections $((n + 64)) --buffers $((n + 64))
            sleep 1
            local rss0 sock0 slab0 rss_ref
            rss0=$(rss_kb "$SRV_PID")
            sock0=$(sockstat_pages)
            slab0=$(tcp_slab_bytes)
            rss_ref=$([[ $server == shardline ]] && echo "$rss_ref_shardline" || echo "$rss0")
            # One 64-byte echo per connection right after connecting, then
            # silence: the next is due after 500 s, inside the 600 s run, so
            # the load generator keeps the connection open (it closes a
            # connection with nothing left to send before the run's end).
            setsid taskset -c $LOADGEN_CORE "$SHARDLINE" loadgen --threads 1 --cpus $LOADGEN_CORE \
                --target "ws://127.0.0.1:$SRV_PORT/echo" --echo --players "$n" --rate 0.002 \
                --message-bytes $ECHO_MESSAGE_BYTES --duration 600s --ramp $IDLE_RAMP_PER_S \
                --source-ips $SOURCE_IPS --connect-timeout 30s --json --quiet \
                >"$dir/loadgen.json" 2>"$dir/loadgen.err" &
            local lg=$!
            PIDS+=("$lg")
            boost "$lg"
            local deadline=$((SECONDS + n / IDLE_RAMP_PER_S + 40)) opened=0
            while ((SECONDS < deadline)); do
                admin_stats "$ADM_PORT" "$dir/stats.json"
                opened=$(py open-connections "$dir/stats.json")
                ((opened >= n)) && break
                kill -0 "$lg" 2>/dev/null || break
                sleep 0.5
            done
            # The load generator sends each connection's message once all are
            # open: wait (bounded) until the server has read every one, so no
            # unread byte sits in a socket, then let buffers settle.
            wait_drained "$SRV_PORT"
            sleep 2
            admin_stats "$ADM_PORT" "$dir/stats.json"
            opened=$(py open-connections "$dir/stats.json")
            local rss1 sock1 slab1
            rss1=$(rss_kb "$SRV_PID")
            sock1=$(sockstat_pages)
            slab1=$(tcp_slab_bytes)
            server_sockets "$SRV_PORT" >"$dir/skmem.txt"
            stop_pid "$lg"
            stop_pid "$SRV_PID"
            py record-idle "$server" "$n" "$opened" "$rss_ref" "$rss0" "$rss1" "$sock0" "$sock1" "$slab0" "$slab1" \
                "$dir/skmem.txt" || true
            sleep 1
        done
    done
}

# Both servers stay up; the offered rate steps up, alternating servers so
# both see the same background noise. A server that saturates (< 90% of the
# offered load answered) is not stepped further.
scenario_echo() {
    local sdir=$OUT/echo-shardline bdir=$OUT/echo-baseline
    start_server shardline 30 "$sdir"
    local s_pid=$SRV_PID s_port=$SRV_PORT
    start_server baseline 30 "$bdir"
    local b_pid=$SRV_PID b_port=$SRV_PORT
    local rate server done_s=0 done_b=0
    for rate in "${ECHO_RATES[@]}"; do
        for server in shardline baseline; do
            local pid port
            if [[ $server == shardline ]]; then
                ((done_s)) && continue
                pid=$s_pid port=$s_port
            else
                ((done_b)) && continue
                pid=$b_pid port=$b_port
            fi
            log "echo: $server, $ECHO_CONNECTIONS connections × $rate Hz"
            local out=$OUT/echo-$server/loadgen-$rate.json cb ca pb pa t0 t1 rc=0
            cb=$(py cpu) pb=$(proc_ticks "$pid") t0=$(now_s)
            run_loadgen "$out" --target "ws://127.0.0.1:$port/echo" --echo --players $ECHO_CONNECTIONS \
                --rate "$rate" --message-bytes $ECHO_MESSAGE_BYTES --duration $ECHO_DURATION --ramp 0 || rc=$?
            ca=$(py cpu) pa=$(proc_ticks "$pid") t1=$(now_s)
            if ! py record-echo "$server" $ECHO_CONNECTIONS "$rate" "$out" "$cb" "$ca" "$pb" "$pa" \
                "$(elapsed "$t0" "$t1")" "$rc" "$LG_CPU_S"; then
                [[ $server == shardline ]] && done_s=1 || done_b=1
            fi
        done
    done
    stop_pid "$s_pid"
    stop_pid "$b_pid"
}

# One step: a fresh server, N players for GAME_DURATION; returns 0 if it held.
game_step() {
    local server=$1 hz=$2 n=$3
    local dir=$OUT/game-$hz/$server-$n
    start_server "$server" "$hz" "$dir"
    local cb ca pb pa t0 t1 rc=0
    admin_stats "$ADM_PORT" "$dir/stats-before.json"
    cb=$(py cpu) pb=$(proc_ticks "$SRV_PID") t0=$(now_s)
    start_loadgen "$dir/loadgen.json" --target "ws://127.0.0.1:$SRV_PORT/play" --players "$n" \
        --players-per-instance $PLAYERS_PER_INSTANCE --instance-prefix g --input-rate "$hz" \
        --ping-interval 0 --ramp $GAME_RAMP_PER_S --duration $GAME_DURATION
    # Once every player has joined (ramp + 1 s), the write counters start a
    # steady-state window: no Welcome, Joined or PlayerJoined in it.
    sleep "$(awk -v n="$n" -v r=$GAME_RAMP_PER_S 'BEGIN { printf "%.1f", n / r + 1 }')"
    admin_stats "$ADM_PORT" "$dir/stats-steady.json"
    wait_loadgen || rc=$?
    ca=$(py cpu) pa=$(proc_ticks "$SRV_PID") t1=$(now_s)
    admin_stats "$ADM_PORT" "$dir/stats-after.json"
    stop_pid "$SRV_PID"
    py record-game "$server" "$hz" "$n" "$dir/loadgen.json" "$dir/stats-before.json" \
        "$dir/stats-steady.json" "$dir/stats-after.json" "$cb" "$ca" "$pb" "$pa" "$(elapsed "$t0" "$t1")" "$rc" \
        "$LG_CPU_S"
}

# Steps the player count up for both servers, alternating, until each fails
# the relaxed criterion (see record-game); the strict result is read from
# the same steps.
scenario_game() {
    local hz n failed_s failed_b
    for hz in "${GAME_RATES[@]}"; do
        failed_s=0 failed_b=0
        for n in "${GAME_COUNTS[@]}"; do
            ((failed_s && failed_b)) && break
            ((failed_s)) || game_step shardline "$hz" "$n" || failed_s=1
            ((failed_b)) || game_step baseline "$hz" "$n" || failed_b=1
        done
    done
}

# The loadgen check (issue 12): `shardline loadgen` against an independent
# client (benches/independent-client: Node.js + ws, written from
# docs/protocol.md and the schema only) on one shardline server in the same
# minutes, at CHECK_COUNTS players, 30 Hz, 16 per instance, no pings. Each
# round runs loadgen, the client, the client, loadgen (so drift over the
# round falls on both alike), each run with its own instances. Both measure
# the same thing: an input's intended send time to the first StateUpdate
# whose last_input_seq covers it, coordinated-omission correct.
scenario_check() {
    local dir=$OUT/check client=$ROOT/benches/independent-client
    mkdir -p "$dir"
    if ! command -v node >/dev/null; then
        log "check: NOT RUN: node (Node.js 20+) not found"
        py record-check-missing "node (Node.js 20+) not found"
        return 0
    fi
    if [[ ! -d $client/node_modules ]]; then
        log "check: npm ci in $client"
        if ! (cd "$client" && npm ci --no-audit --no-fund) >"$dir/npm.log" 2>&1; then
            log "check: NOT RUN: npm ci failed (see $dir/npm.log)"
            py record-check-missing "npm ci in benches/independent-client failed (see $dir/npm.log)"
            return 0
        fi
    fi
    local n r k tool
    for n in "${CHECK_COUNTS[@]}"; do
        start_server shardline 30 "$dir/server-$n"
        k=0
        for ((r = 1; r <= CHECK_ROUNDS; r++)); do
            for tool in loadgen client client loadgen; do
                k=$((k + 1))
                check_run "$tool" "$n" "$k" "$dir"
                sleep 1
            done
        done
        stop_pid "$SRV_PID"
    done
}

# One run of the check against SRV_PORT: TOOL (loadgen|client) with N players.
check_run() {
    local tool=$1 n=$2 k=$3 dir=$4
    local out=$dir/$tool-$n-$k.json rc=0
    log "check: $tool, $n players (run $k)"
    if [[ $tool == loadgen ]]; then
        start_loadgen "$out" --target "ws://127.0.0.1:$SRV_PORT/play" --players "$n" \
            --players-per-instance $PLAYERS_PER_INSTANCE --instance-prefix "c$k" --input-rate 30 \
            --ping-interval 0 --ramp $GAME_RAMP_PER_S --duration "${CHECK_DURATION_S}s"
        wait_loadgen || rc=$?
    else
        setsid taskset -c $LOADGEN_CORE node "$ROOT/benches/independent-client/client.mjs" \
            --url "ws://127.0.0.1:$SRV_PORT/play" --players "$n" --players-per-instance $PLAYERS_PER_INSTANCE \
            --prefix "c$k" --rate 30 --duration "$CHECK_DURATION_S" --ramp $GAME_RAMP_PER_S \
            >"$out" 2>"${out%.json}.err" &
        LG_PID=$!
        PIDS+=("$LG_PID")
        boost "$LG_PID"
        wait_loadgen || rc=$?
    fi
    py record-check "$tool" "$n" "$k" "$out" "$rc" "$LG_CPU_S" "$CHECK_DURATION_S" || true
}

# One server of the snapshot scenario (SNAPSHOT_PLAYERS at 30 Hz): the
# shard's histograms are read SNAPSHOT_SETTLE_S after the players start
# joining and again SNAPSHOT_WINDOW_S later; the window is the difference.
# Arguments: interval (ms; 0 = off), writer (idle|normal: --snapshot-writer-idle
# on|off), round.
snapshot_run() {
    local interval=$1 writer=$2 rnd=$3
    local dir=$OUT/snapshot-$interval-$writer-$rnd
    log "snapshot: interval $interval ms, writer $writer, round $rnd"
    SNAP_MS=$interval start_server shardline 30 "$dir" \
        --snapshot-writer-idle "$([[ $writer == idle ]] && echo on || echo off)"
    start_loadgen "$dir/loadgen.json" --target "ws://127.0.0.1:$SRV_PORT/play" \
        --players $SNAPSHOT_PLAYERS --players-per-instance $PLAYERS_PER_INSTANCE \
        --instance-prefix s --input-rate 30 --ping-interval 0 --ramp $GAME_RAMP_PER_S \
        --duration $((SNAPSHOT_SETTLE_S + SNAPSHOT_WINDOW_S + 2))s
    sleep "$SNAPSHOT_SETTLE_S"
    curl -sf --max-time 5 "http://127.0.0.1:$ADM_PORT/histograms" >"$dir/hist-before.json" || echo '{}' >"$dir/hist-before.json"
    sleep "$SNAPSHOT_WINDOW_S"
    curl -sf --max-time 5 "http://127.0.0.1:$ADM_PORT/histograms" >"$dir/hist-after.json" || echo '{}' >"$dir/hist-after.json"
    # The writer thread's scheduling class (IDL = SCHED_IDLE), for the record.
    ps -L -o tid=,cls=,comm= -p "$SRV_PID" >"$dir/threads.txt" 2>/dev/null || true
    admin_stats "$ADM_PORT" "$dir/stats.json"
    wait_loadgen || true
    stop_pid "$SRV_PID"
    py record-snapshot "$interval" "$rnd" "$writer" "$dir/hist-before.json" "$dir/hist-after.json" \
        "$dir/stats.json" "$dir/loadgen.json"
}

# Per round: snapshots on (writer under SCHED_IDLE, the default), on with
# the writer at normal priority, and off; the order rotates every round.
scenario_snapshot() {
    local rnd arms i
    for ((rnd = 1; rnd <= SNAPSHOT_ROUNDS; rnd++)); do
        arms=("$SNAPSHOT_INTERVAL_MS idle" "0 idle" "$SNAPSHOT_INTERVAL_MS normal")
        for ((i = 0; i < 3; i++)); do
            # shellcheck disable=SC2086 # "interval writer" splits on purpose
            snapshot_run ${arms[(i + rnd - 1) % 3]} "$rnd"
        done
    done
}

# The abuse cases of tests/abuse.rs with latency measured
# (SHARDLINE_BENCH_ABUSE=1): in each, a well-behaved player's input→update
# p99 on the abused server against a control server's, measured over the same
# time. Not pinned: each case's abusing clients are threads of the test, on
# the same cores as both servers, as a neighbour's would be.
scenario_abuse() {
    log "abuse: tests/abuse.rs with SHARDLINE_BENCH_ABUSE=1 (~3 min)"
    local out=$OUT/abuse.txt
    (cd "$ROOT" && SHARDLINE_BENCH_ABUSE=1 exec setsid cargo test --release --locked --test abuse -- --test-threads 1) \
        >"$out" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid" || log "abuse: a case failed; see $out"
    forget_pid "$pid"
    grep '^abuse-bench:' "$out" >&2 || true
    py record-abuse "$out"
}

# A redis-server of our own for the directory scenario: it binds the first
# free port from the range; sets REDIS_PID and REDIS_PORT.
start_redis() {
    local dir=$1 tries
    mkdir -p "$dir"
    for ((tries = 0; tries < 20; tries++)); do
        next_ports
        setsid redis-server --port "$SRV_PORT" --bind 127.0.0.1 --save '' --appendonly no \
            --dir "$dir" >"$dir/redis.log" 2>&1 &
        REDIS_PID=$!
        PIDS+=("$REDIS_PID")
        local i
        for ((i = 0; i < 50; i++)); do
            if redis-cli -p "$SRV_PORT" PING 2>/dev/null | grep -q PONG; then
                REDIS_PORT=$SRV_PORT
                return 0
            fi
            kill -0 "$REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        stop_pid "$REDIS_PID"
    done
    echo "redis-server did not start; log: $dir/redis.log" >&2
    return 1
}

metrics() { curl -sf --max-time 5 "http://127.0.0.1:$1/metrics" >"$2" || : >"$2"; }

# directory_run LABEL INPUT_HZ BUDGET [SETTLE_S]: one node on a fresh
# redis-server; the steady window starts SETTLE_S (default 3) after the last
# player joined.
directory_run() {
    local label=$1 hz=$2 budget=$3 settle=${4:-3}
    local dir=$OUT/directory-$label
    log "directory: $label ($DIRECTORY_PLAYERS instances, input $hz Hz, budget $budget writes/s)"
    start_redis "$dir/redis" || return 0
    SNAP_MS=1000 start_server shardline 30 "$dir" --directory "redis://127.0.0.1:$REDIS_PORT" \
        --region bench --node-id bench-a --replica-writes-per-s-max "$budget"
    sleep 2
    local t0 t1 t1b t2
    metrics "$ADM_PORT" "$dir/metrics-0.txt"
    t0=$(now_s)
    start_loadgen "$dir/loadgen.json" --target "ws://127.0.0.1:$SRV_PORT/play" \
        --players $DIRECTORY_PLAYERS --players-per-instance 1 --instance-prefix d \
        --input-rate "$hz" --ping-interval 0 --ramp $DIRECTORY_RAMP_PER_S \
        --duration $((DIRECTORY_WINDOW_S + settle + 10))s
    sleep "$(awk -v n=$DIRECTORY_PLAYERS -v r=$DIRECTORY_RAMP_PER_S 'BEGIN { printf "%.1f", n / r + 2 }')"
    metrics "$ADM_PORT" "$dir/metrics-1.txt"
    t1=$(now_s)
    sleep $((settle - 2))
    metrics "$ADM_PORT" "$dir/metrics-1b.txt"
    t1b=$(now_s)
    sleep "$DIRECTORY_WINDOW_S"
    metrics "$ADM_PORT" "$dir/metrics-2.txt"
    t2=$(now_s)
    wait_loadgen || true
    # The players have left (their seats ended); their instances are
    # disposed after --instance-idle-ms (10 s) and released.
    sleep 13
    metrics "$ADM_PORT" "$dir/metrics-3.txt"
    stop_pid "$SRV_PID"
    stop_pid "$REDIS_PID"
    py record-directory "$label" $DIRECTORY_PLAYERS "$budget" "$dir/metrics-0.txt" "$dir/metrics-1.txt" \
        "$dir/metrics-1b.txt" "$dir/metrics-2.txt" "$dir/metrics-3.txt" "$(elapsed "$t0" "$t1")" \
        "$(elapsed "$t1b" "$t2")" "$dir/loadgen.json"
}

# Redis commands per second per 1,000 instances and per 1,000 joins: players
# moving every tick (every instance changes each interval), players idle
# (unchanged instances skipped), and moving players under a budget smaller
# than what changes.
scenario_directory() {
    command -v redis-server >/dev/null || {
        log "directory: redis-server not installed, skipped"
        return 0
    }
    directory_run moving 30 1000
    directory_run idle 0.001 1000 $DIRECTORY_IDLE_SETTLE_S
    directory_run budget 30 $DIRECTORY_TIGHT_BUDGET
}

# perf profiles of both servers under PROFILE_PLAYERS at 30 Hz (not used for
# any table: perf itself takes CPU).
scenario_profile() {
    command -v perf >/dev/null || {
        log "profile: perf not installed, skipped"
        return 0
    }
    local server
    for server in shardline baseline; do
        log "profile: $server, $PROFILE_PLAYERS players at 30 Hz"
        local dir=$OUT/profile-$server
        start_server "$server" 30 "$dir"
        start_loadgen "$dir/loadgen.json" --target "ws://127.0.0.1:$SRV_PORT/play" --players $PROFILE_PLAYERS \
            --players-per-instance $PLAYERS_PER_INSTANCE --instance-prefix p --input-rate 30 \
            --ping-interval 0 --ramp $GAME_RAMP_PER_S --duration 10s
        sleep $((PROFILE_PLAYERS / GAME_RAMP_PER_S + 2))
        perf record -F 999 -g -p "$SRV_PID" -o "$dir/perf.data" -- sleep 5 >/dev/null 2>&1 || true
        wait_loadgen || true
        stop_pid "$SRV_PID"
        {
            perf report -i "$dir/perf.data" --stdio --no-children --sort dso -g none 2>/dev/null |
                grep -v '^#' | grep -v '^$' | head -6
            perf report -i "$dir/perf.data" --stdio --no-children --percent-limit 1 --sort symbol \
                -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40
        } >"$OUT/profile-$server.txt" || true
        log "profile: $OUT/profile-$server.txt"
    done
}

# The autoscaler: static max vs reactive vs predictive on the daily and the
# spike trace (scripts/bench-autoscale.sh; needs redis-server). Not in the
# default set: it takes ~8 minutes.
scenario_autoscale() {
    log "autoscale: static / reactive / predictive on benches/traces/{daily,spike}.csv"
    touch "$RECORDS"
    bash "$ROOT/scripts/bench-autoscale.sh" "$SHARDLINE" "$OUT" >&2
}

# Issue 13: bytes per update, protocol v1 (full state) against v2 (deltas,
# interest), each scenario on a fresh server, v1 and v2 in the same run.
# bandwidth_step NAME PROTOCOL HZ PLAYERS PER_INSTANCE IDLE [server flags]
bandwidth_step() {
    local name=$1 proto=$2 hz=$3 n=$4 per=$5 idle=$6
    shift 6
    local dir=$OUT/bandwidth/$name-v$proto
    start_server shardline "$hz" "$dir" "$@"
    local pb pa t0 t1 rc=0 ramp=500
    admin_stats "$ADM_PORT" "$dir/stats-before.json"
    pb=$(proc_ticks "$SRV_PID") t0=$(now_s)
    LG_PROTOCOL=$proto start_loadgen "$dir/loadgen.json" --target "ws://127.0.0.1:$SRV_PORT/play" \
        --players "$n" --players-per-instance "$per" --instance-prefix "bw$proto" --input-rate "$hz" \
        --idle-fraction "$idle" --ping-interval 0 --ramp $ramp --duration $BANDWIDTH_DURATION
    wait_loadgen || rc=$?
    pa=$(proc_ticks "$SRV_PID") t1=$(now_s)
    admin_stats "$ADM_PORT" "$dir/stats-after.json"
    stop_pid "$SRV_PID"
    py record-bandwidth "$name" "$proto" "$hz" "$n" "$per" "$idle" "$dir/loadgen.json" \
        "$dir/stats-before.json" "$dir/stats-after.json" "$pb" "$pa" "$(elapsed "$t0" "$t1")" "$rc"
}

scenario_bandwidth() {
    local proto
    for proto in 1 2; do
        bandwidth_step arena16 "$proto" 30 $((16 * BANDWIDTH_INSTANCES)) 16 0
        bandwidth_step half-idle64 "$proto" 30 $((64 * BANDWIDTH_INSTANCES)) 64 0.5
        bandwidth_step interest1000 "$proto" 20 1000 1000 0 \
            --players-per-instance-max 1000 --write-buffer-bytes 32768 --interest-radius 150
    done
}

# ---------------------------------------------------------------- main
(($(nproc) >= 2)) || {
    echo "needs 2 cores: one for the server, one for the load generator" >&2
    exit 1
}
machine_info
build
started=$SECONDS
# The game scenario's numbers are loadgen's: it comes with its check.
[[ ",$ONLY," == *",game,"* ]] && ONLY="$ONLY,check"
for s in micro idle echo game check snapshot abuse directory bandwidth profile autoscale; do
    if [[ ",$ONLY," == *",$s,"* ]]; then
        "scenario_$s"
    fi
done
{
    cat "$OUT/machine.md"
    echo "- Load average at end: $(cut -d' ' -f1-3 /proc/loadavg); suite took $(((SECONDS - started) / 60)) min $(((SECONDS - started) % 60)) s"
    echo
    py report
    if [[ -f $OUT/autoscale.md ]]; then
        echo
        cat "$OUT/autoscale.md"
    fi
} >"$OUT/results.md"
echo
cat "$OUT/results.md"
log "results: $OUT/results.md (raw: $OUT)"
