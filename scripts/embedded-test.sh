#!/usr/bin/env bash
# Runs the two Cortex-M4 firmware binaries of examples/embedded under QEMU: the test firmware
# (a real mainnet difficulty period, real merkle proofs, a session through a recorded ElectrumX
# exchange, hostile input; stack peaks) and the flash probe (src/bin/minimal.rs: a session,
# header verification and a merkle proof over real data, nothing else linked). Each passes when
# it exits 0 within EMBEDDED_TIMEOUT seconds (default 120) and printed its last line (`firmware
# ok`, `minimal ok`). Ends with `embedded: N passed, M failed` (N + M = 2; a build failure
# counts as one failure).
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
passed=0
failed=0
# run_one BIN OK_LINE: runs one binary, prints its output and counts it.
run_one() {
    local status=0 why=""
    run_firmware "$out" "$1" || status=$?
    cat "$out"
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
        why="timed out after ${EMBEDDED_TIMEOUT:-120} s"
    elif [ "$status" -ne 0 ]; then
        why="exited with status $status"
    elif ! grep -qx "$2" "$out"; then
        why="exit status 0 but no '$2' line"
    fi
    if [ -n "$why" ]; then
        echo "embedded: FAIL: $1 $why" >&2
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}
run_one "$FIRMWARE_BIN" 'firmware ok'
run_one "$MINIMAL_BIN" 'minimal ok'
echo "embedded: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
