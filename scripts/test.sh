#!/usr/bin/env bash
# The test command (README): installs the test tools if missing, then runs
# every test: unit, integration (real servers on 127.0.0.1), doc tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/setup-test-tools.sh
cargo test --release --locked --no-fail-fast
