#!/usr/bin/env bash
# Runs the Cortex-M4 firmware (examples/embedded) under QEMU: it verifies a real mainnet
# difficulty period and real merkle proofs with electrum-spv-core and reports its stack peak.
# Passes when the firmware exits 0 within EMBEDDED_TIMEOUT seconds (default 120) and printed
# `firmware ok`. Ends with `embedded: 1 passed, 0 failed` or `embedded: 0 passed, 1 failed`.
# Installs the thumbv7em target and qemu-system-arm if missing. Runs from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/embedded-common.sh
source "$ROOT/scripts/embedded-common.sh"

fail() {
    echo "embedded: FAIL: $1" >&2
    echo "embedded: 0 passed, 1 failed"
    exit 1
}

# The firmware replays a copy of core's recorded ElectrumX exchange; a re-recording must reach it.
cmp -s "$ROOT/core/tests/data/transcripts/electrumx_1_6.json" "$FW_DIR/data/electrumx_1_6.json" ||
    fail "examples/embedded/data/electrumx_1_6.json differs from core/tests/data/transcripts/: copy it again"

ensure_embedded_target
ensure_qemu
build_firmware || fail "firmware build failed"

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
status=0
run_firmware "$out" || status=$?
cat "$out"
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
    fail "timed out after ${EMBEDDED_TIMEOUT:-120} s"
elif [ "$status" -ne 0 ]; then
    fail "firmware exited with status $status"
elif ! grep -qx 'firmware ok' "$out"; then
    fail "exit status 0 but no 'firmware ok' line"
fi
echo "embedded: 1 passed, 0 failed"
