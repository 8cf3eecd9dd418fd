#!/usr/bin/env bash
# WebSocket conformance: runs the Autobahn testsuite's fuzzing client
# (`wstest -m fuzzingclient`) against a real `shardline serve` on /echo,
# prints the count of cases per verdict, and exits 1 if any case FAILED.
#
# Autobahn runs only on Python 2.7: scripts/setup-test-tools.sh makes its
# virtualenv (pinned dependencies: tests/autobahn/requirements-py27.txt)
# under target/autobahn-venv.
#
# Environment:
#   SHARDLINE_BIN   server binary [default: target/release/shardline]
#   AUTOBAHN_CASES  JSON list of cases to run [default: ["*"]]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

venv="$root/target/autobahn-venv"
bin="${SHARDLINE_BIN:-$root/target/release/shardline}"
cases="${AUTOBAHN_CASES:-[\"*\"]}"

if [[ ! -x "$venv/bin/wstest" ]]; then
    echo "autobahn: no Autobahn testsuite at $venv: run bash scripts/setup-test-tools.sh (it needs Python 2.7)" >&2
    exit 2
fi
[[ -x "$bin" ]] || { echo "autobahn: no server binary at $bin (cargo build --release)" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/shardline-autobahn.XXXXXX")"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

: >"$work/server.log"
# 16 MiB payloads: the suite's big-message cases (9.*) send up to 16 MiB.
"$bin" serve --listen 127.0.0.1:0 --shards 2 --max-payload 16777216 \
    --admin-listen off --snapshot-interval-ms 0 --no-restore --snapshot-dir "$work/data" \
    --load-shedding off --log-level warn,shardline=info >"$work/server.log" 2>&1 &
server_pid=$!
addr=""
for _ in $(seq 1 150); do
    addr="$(sed -n 's/.*shardline listening on \([0-9.:]*\).*/\1/p' "$work/server.log" | head -1 || true)"
    [[ -n "$addr" ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
done
if [[ -z "$addr" ]]; then
    echo "autobahn: the server did not start:" >&2
    cat "$work/server.log" >&2
    exit 2
fi

sed -e "s|@URL@|ws://$addr/echo|" -e "s|@CASES@|$cases|" -e "s|@OUTDIR@|$work/reports|" \
    "$root/tests/autobahn/fuzzingclient.json.in" >"$work/spec.json"
echo "autobahn: wstest -m fuzzingclient against ws://$addr/echo"
# The full run takes ~20 s; the bound only keeps a hung run from hanging CI.
(cd "$work" && timeout 600 "$venv/bin/wstest" -m fuzzingclient -s spec.json >"$work/wstest.log" 2>&1) || {
    echo "autobahn: wstest failed:" >&2
    tail -50 "$work/wstest.log" >&2
    exit 2
}

status=0
"$venv/bin/python" "$root/tests/autobahn/summary.py" "$work/reports/index.json" || status=$?
if grep -q "panicked" "$work/server.log"; then
    echo "autobahn: the server panicked:" >&2
    grep -A5 "panicked" "$work/server.log" >&2
    status=1
fi
if [[ -n "${AUTOBAHN_KEEP_REPORTS:-}" ]]; then
    rm -rf "$AUTOBAHN_KEEP_REPORTS"
    cp -r "$work/reports" "$AUTOBAHN_KEEP_REPORTS"
    echo "autobahn: reports kept in $AUTOBAHN_KEEP_REPORTS"
fi
exit "$status"
