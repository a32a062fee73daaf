#!/usr/bin/env bash
# Builds the app library (electrum-spv-ffi with feature `app`) and generates its Kotlin, Swift
# and Python bindings with the workspace's uniffi-bindgen. The generated sources are committed
# under bindings/; this script fails when they differ from what the code generates (drift),
# and rewrites them with --write. Prints the library's path on its last line.
# Usage: scripts/bindings.sh [--write]
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
cargo build -q --locked -p electrum-spv-ffi --features app >&2
lib="$target_dir/debug/libelectrum_spv_ffi.so"

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cargo run -q --locked -p electrum-spv-bindgen -- generate --library "$lib" \
    -l kotlin -l swift -l python --no-format -o "$out" >&2

# Where each generated file lives in the repository.
pairs=(
    "uniffi/electrum_spv/electrum_spv.kt:bindings/kotlin/src/main/kotlin/dev/electrumspv/electrum_spv.kt"
    "electrum_spv.py:bindings/python/electrum_spv.py"
    "ElectrumSpv.swift:bindings/swift/Sources/ElectrumSpv/ElectrumSpv.swift"
    "electrum_spvFFI.h:bindings/swift/Sources/electrum_spvFFI/include/electrum_spvFFI.h"
)
# uniffi names the Kotlin directory after the package.
kt="$(find "$out" -name '*.kt' | head -n1)"
pairs[0]="${kt#"$out"/}:${pairs[0]#*:}"

drift=0
for pair in "${pairs[@]}"; do
    from="$out/${pair%%:*}"
    to="${pair#*:}"
    if [ "${1:-}" = "--write" ]; then
        mkdir -p "$(dirname "$to")"
        cp "$from" "$to"
    elif ! cmp -s "$from" "$to"; then
        echo "bindings: $to differs from the generated code (run scripts/bindings.sh --write)" >&2
        diff -u "$to" "$from" | head -n 20 >&2 || true
        drift=1
    fi
done
[ "$drift" -eq 0 ] || exit 1
echo "$lib"
