#!/usr/bin/env bash
# WebSocket conformance: runs the Autobahn testsuite's fuzzing client
# (`wstest -m fuzzingclient`) against a real `shardline serve` on /echo,
# prints the count of cases per verdict, and exits 1 if any case FAILED.
#
# Autobahn runs only on Python 2.7: a virtualenv with its pinned
# dependencies (tests/autobahn/requirements-py27.txt) is made once under
# target/autobahn-venv and reused.
#
# Environment:
#   SHARDLINE_BIN   server binary [default: target/release/shardline]
#   AUTOBAHN_CASES  JSON list of cases to run [default: ["*"]]
#   PYTHON27        Python 2.7 interpreter [default: pyenv's 2.7.18]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

venv="$root/target/autobahn-venv"
bin="${SHARDLINE_BIN:-$root/target/release/shardline}"
cases="${AUTOBAHN_CASES:-[\"*\"]}"

find_python27() {
    if [[ -n "${PYTHON27:-}" ]]; then echo "$PYTHON27"; return; fi
    if command -v pyenv >/dev/null 2>&1; then
        local p
        p="$(pyenv root)/versions/2.7.18/bin/python"
        if [[ -x "$p" ]]; then echo "$p"; return; fi
    fi
    command -v python2.7 || { echo "autobahn: no Python 2.7 found (set PYTHON27)" >&2; exit 2; }
}

if [[ ! -x "$venv/bin/wstest" ]]; then
    py27="$(find_python27)"
    echo "autobahn: creating $venv with $py27 (once)"
    python3 -m virtualenv --version >/dev/null 2>&1 \
        || python3 -m pip install --quiet --disable-pip-version-check "virtualenv==20.21.1"
    rm -rf "$venv"
    python3 -m virtualenv --quiet -p "$py27" "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning \
        "autobahntestsuite==25.10.1" -r "$root/tests/autobahn/requirements-py27.txt"
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
(cd "$work" && "$venv/bin/wstest" -m fuzzingclient -s spec.json >"$work/wstest.log" 2>&1) || {
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
