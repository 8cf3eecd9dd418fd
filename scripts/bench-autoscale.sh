#!/usr/bin/env bash
# The autoscaler's evaluation (run by `scripts/bench.sh --only autoscale`, or
# alone: scripts/bench-autoscale.sh SHARDLINE_BINARY OUT_DIR).
#
# For each trace in benches/traces (daily: two days, the first one learnt and
# not measured; spike: six hours) and each way of sizing the region —
#   static      max_nodes nodes all the time,
#   reactive    the policy's thresholds on the load now,
#   predictive  the same, plus the Holt-Winters forecast over the node start
#               horizon,
# it starts a redis-server, one `shardline autoscale` controller with the
# `process` provider (local `shardline serve` nodes on loopback, one shard
# each) and `shardline loadgen --trace`, then writes a comparison table to
# OUT_DIR/autoscale.md. Both traces are played 1440× faster than written
# (a day in a minute), so the policy's wall-clock times below are that much
# shorter than a production policy's. Nodes get a 64 KiB outbound buffer per
# player (the default 4 KiB closes a reader ~150 ms behind with 4002): the
# load generator's threads share a busy 2-core machine with the nodes, and
# the autoscaler, not the generator, is under test here.
set -euo pipefail

SHARDLINE=${1:?usage: bench-autoscale.sh SHARDLINE_BINARY OUT_DIR}
OUT=${2:?usage: bench-autoscale.sh SHARDLINE_BINARY OUT_DIR}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ACCEL=1440
NODE_CAPACITY=40       # --max-connections of every node
UP=0.75
# The policy's other knobs; the environment may override them to explore
# (the table's caption prints the values used). The defaults: a band of
# 0.6–0.75 (a scale-down still needs the sizing to want one node fewer at
# 0.75, so it cannot flap), cooldowns as short as the validation allows
# (down ≥ up), and node_start_ms a little above the ~200 ms measured here
# (the forecast looks that far ahead; a longer measured start wins).
DOWN=${AUTOSCALE_DOWN:-0.6}
COOLDOWN_UP_MS=${AUTOSCALE_COOLDOWN_UP_MS:-500}
COOLDOWN_DOWN_MS=${AUTOSCALE_COOLDOWN_DOWN_MS:-500}
NODE_START_MS=${AUTOSCALE_NODE_START_MS:-300}
MIN_NODES=1
MAX_NODES=10
INPUT_HZ=10
WORK=$OUT/autoscale
mkdir -p "$WORK"

log() { printf '[bench-autoscale %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v redis-server >/dev/null || {
    echo "the autoscale benchmark needs redis-server (apt-get install redis-server)" >&2
    exit 1
}

REDIS_PID=""
CTL_PID=""
REDIS_PORT=""
cleanup_run() {
    [[ -n $CTL_PID ]] && kill "$CTL_PID" 2>/dev/null && wait "$CTL_PID" 2>/dev/null || true
    CTL_PID=""
    if [[ -n $REDIS_PORT ]]; then
        # The nodes the controller started (it recorded their pids).
        for k in $(redis-cli -p "$REDIS_PORT" --raw keys 'sl:as:pid:*' 2>/dev/null); do
            pid=$(redis-cli -p "$REDIS_PORT" --raw get "$k")
            [[ -n $pid ]] && kill -9 "$pid" 2>/dev/null || true
        done
    fi
    [[ -n $REDIS_PID ]] && kill "$REDIS_PID" 2>/dev/null && wait "$REDIS_PID" 2>/dev/null || true
    REDIS_PID=""
    REDIS_PORT=""
}
trap cleanup_run EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

policy() { # mode dir
    local mode=$1 dir=$2 min=$MIN_NODES forecast=predictive
    case $mode in
    static) min=$MAX_NODES ;;
    reactive) forecast=reactive ;;
    esac
    cat <<EOF
[regions.eu]
min_nodes = $min
max_nodes = $MAX_NODES
scale_up_threshold = $UP
scale_down_threshold = $DOWN
cooldown_up_ms = $COOLDOWN_UP_MS
cooldown_down_ms = $COOLDOWN_DOWN_MS
node_start_ms = $NODE_START_MS
drain_timeout_ms = 10000
[regions.eu.forecast]
mode = "$forecast"
season_ms = 60000
sample_ms = 500
[regions.eu.provider]
kind = "process"
foreground = true
# Each node on one core, alternating by its number (a shard pins itself to
# the first core it may use; without this every node would share core 0).
scale_up = "n={node}; exec taskset -c \$(( \${n##*-} % $(nproc) )) $SHARDLINE serve --listen 127.0.0.1:0 --shards 1 --admin-listen off --directory {directory} --region {region} --node-id {node} --snapshot-dir $dir/snap-{node} --no-restore --directory-heartbeat-ms 250 --directory-ttl-ms 3000 --max-connections $NODE_CAPACITY --write-buffer-bytes 65536 --load-shedding off --creates-per-ip-per-min 0 --log-level warn > $dir/{node}.log 2>&1"
EOF
}

run_one() { # trace mode warmup_s
    local trace=$1 mode=$2 warmup=$3
    local dir=$WORK/$trace-$mode
    rm -rf "$dir" && mkdir -p "$dir"
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$dir/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 100); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
    local url=redis://127.0.0.1:$REDIS_PORT
    policy "$mode" "$dir" >"$dir/policy.toml"
    "$SHARDLINE" autoscale --directory "$url" --policy "$dir/policy.toml" --listen 127.0.0.1:0 \
        --evaluate-ms 200 --lease-ttl-ms 1500 >"$dir/controller.log" 2>&1 &
    CTL_PID=$!
    # The region's first nodes registered before the players come.
    local want=$MIN_NODES
    [[ $mode == static ]] && want=$MAX_NODES
    for _ in $(seq 200); do
        kill -0 "$CTL_PID" 2>/dev/null || {
            cat "$dir/controller.log" >&2
            exit 1
        }
        n=$(redis-cli -p "$REDIS_PORT" --raw hlen sl:nodes)
        ((n >= want)) && break
        sleep 0.1
    done
    log "$trace/$mode: load $(cut -d' ' -f1 /proc/loadavg); playing the trace"
    local load_start
    load_start=$(cut -d' ' -f1 /proc/loadavg)
    "$SHARDLINE" loadgen --trace "$ROOT/benches/traces/$trace.csv" --accel "$ACCEL" --directory "$url" \
        --region eu --input-rate "$INPUT_HZ" --warmup "$warmup" >"$dir/report.json" 2>"$dir/loadgen.log"
    python3 - "$dir/report.json" "$trace" "$mode" "$load_start" "$(cut -d' ' -f1 /proc/loadavg)" \
        "$(grep -c 'node started and registered' "$dir/controller.log" || true)" \
        "$(grep 'node started and registered' "$dir/controller.log" | grep -o 'took_ms=[0-9]*' | cut -d= -f2 | sort -n | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print ""}')" <<'PY' >>"$WORK/records.jsonl"
import json, sys
r = json.load(open(sys.argv[1]))
r.update(trace=sys.argv[2], mode=sys.argv[3], load_start=float(sys.argv[4]), load_end=float(sys.argv[5]),
         nodes_started=int(sys.argv[6] or 0), node_start_ms=int(sys.argv[7]) if sys.argv[7] else None)
print(json.dumps(r))
PY
    cleanup_run
}

# AUTOSCALE_RUNS="spike:reactive daily:predictive" runs only those.
RUNS=${AUTOSCALE_RUNS:-"daily:static daily:reactive daily:predictive spike:static spike:reactive spike:predictive"}
rm -f "$WORK/records.jsonl"
for run in $RUNS; do
    trace=${run%%:*}
    warmup=0
    [[ $trace == daily ]] && warmup=86400
    run_one "$trace" "${run##*:}" "$warmup"
done

python3 - "$WORK/records.jsonl" "$ROOT/benches/traces" "$NODE_CAPACITY" "$UP" "$MIN_NODES" "$DOWN" "$COOLDOWN_UP_MS" "$COOLDOWN_DOWN_MS" "$NODE_START_MS" <<'PY' >"$OUT/autoscale.md"
import csv, json, math, sys
records = [json.loads(l) for l in open(sys.argv[1])]
cap, up, min_nodes = int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
down, cool_up, cool_down, start_ms = float(sys.argv[6]), int(sys.argv[7]), int(sys.argv[8]), int(sys.argv[9])

def bound(trace, warmup):
    """Node-seconds a controller with perfect foresight would use: at every
    moment exactly the nodes the trace's players need at the policy's
    target utilisation (no start time, no cooldown)."""
    rows = [(float(a), float(b)) for a, b in list(csv.reader(open(f"{sys.argv[2]}/{trace}.csv")))[1:]]
    total, t, end = 0.0, warmup, rows[-1][0]
    def at(t):
        for (s0, p0), (s1, p1) in zip(rows, rows[1:]):
            if s0 <= t <= s1:
                return p0 + (p1 - p0) * (t - s0) / (s1 - s0)
        return rows[-1][1]
    while t < end:
        total += max(min_nodes, math.ceil(round(at(t)) / (cap * up))) * 10
        t += 10
    return total

print("### Autoscaling (`scripts/bench.sh --only autoscale`)\n")
print(f"Region of local nodes (1 shard, {cap} players each), controller with the `process` provider, "
      f"traces played 1440× faster than written (a day in a minute); policy: min {min_nodes}, max 10 nodes, "
      f"up at {up}, down below {down}, cooldowns {cool_up} ms up / {cool_down} ms down (wall), node_start_ms {start_ms} "
      "(the forecast looks that far ahead, or over the measured start when longer). "
      "Daily: the first day is learnt, the second measured. Node-seconds in trace time.\n")
for trace in ("daily", "spike"):
    rows = [r for r in records if r["trace"] == trace]
    if not rows:
        continue
    b = bound(trace, rows[0]["warmup_s"])
    print(f"**{trace}** (perfect-foresight bound: {b:,.0f} node-seconds)\n")
    print("| sizing | joins refused | players short (player-s) | p99 input→update ms | node-seconds | vs bound | "
          "scale events (up/down) | players moved | move gap p99 / max ms | spike → capacity ready | load avg |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        gap = "–" if r["players_moved"] == 0 else f'{r["move_gap_ms_p99"]:.0f} / {r["move_gap_ms_max"]:.0f}'
        spike = "–" if r.get("spike_capacity_ready_s") is None else \
            f'{r["spike_capacity_ready_s"]:.0f} s ({r["spike_capacity_ready_wall_ms"]:.0f} ms wall)'
        p99 = r["input_to_update_ms_p99"]
        print(f'| {r["mode"]} | {r["joins_refused"]} | {r["players_short_s"]:,.0f} | '
              f'{"–" if p99 is None else f"{p99:.1f}"} | {r["node_seconds"]:,.0f} | {100 * (r["node_seconds"] / b - 1):+.0f} % | '
              f'{r["scale_ups"]}/{r["scale_downs"]} | {r["players_moved"]} | {gap} | {spike} | '
              f'{r["load_start"]:.1f}→{r["load_end"]:.1f} |')
    print()
    starts = [r["node_start_ms"] for r in rows if r.get("node_start_ms")]
    if starts:
        print(f"Measured node start (ask → registered), median of the runs: {sorted(starts)[len(starts)//2]} ms wall.\n")
PY
cat "$OUT/autoscale.md"
