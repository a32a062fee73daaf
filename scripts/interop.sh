#!/usr/bin/env bash
# The interop matrix's ElectrumX rows (issue 12): for each ElectrumX release the test kit installs
# (e-x 1.16.0, 1.18.0, 1.20.0, 2.0.0 and kyuupichan's electrumx 1.15.0, each into its own venv
# under target/ on first use), the same checks through the Rust API and the CLI: negotiation,
# headers from genesis, every kit wallet's verified history/utxos/balance, broadcast, fees and a
# subscription. Prints one line per server and check, then "interop: N passed, M failed".
# Exits non-zero on any failure (a server that cannot be installed or started fails its row).
# Usage: scripts/interop.sh [FILTER...]   e.g. scripts/interop.sh 1_16_0 electrs (libtest filters)
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$(date +%s)
# One test per release; all side by side (most of each row's time is ElectrumX pacing replies).
cargo test --locked -q -p electrum-spv --test interop -- --test-threads=8 --nocapture "$@" \
  >"$log" 2>&1
rc=$?
# libtest's progress dots share the line with a check's line at times: keep from "interop: " on.
sed -i -E 's/^.*(interop: (electrumx-|electrs-|mixed-pool ))/\1/; s/^.*(interop-table: )/\1/' "$log"
grep -E '^interop: ' "$log" | grep -Ev ' (started in|done in) ' | sed 's/ \[[0-9.]*s\]$//'
grep -E '^interop: .* (started in|done in) ' "$log"
passed=$(grep -Ec '^interop: .* ok \(' "$log")
failed=$(grep -Ec '^interop: .* FAILED \(' "$log")
# A row that could not start (install, start) prints no check line: count it as one failure.
rows_failed=$(grep -Ec "^thread '(electrumx|electrs|mixed)_.*' .*panicked" "$log")
not_started=$(grep -Ec '^cannot install or start ' "$log")
failed=$((failed + not_started))
if [ "$rc" -ne 0 ]; then
  if [ "$failed" -eq 0 ]; then failed=1; fi
  echo "--- interop: cargo test failed ($rows_failed rows); tail of its output:"
  grep -Ev '^interop: |^test result:' "$log" | tail -n 60
fi
# README's compatibility table, from this run.
if grep -q '^interop-table: ' "$log"; then
  echo "| implementation | protocol negotiated | verified | not offered |"
  echo "|---|---|---|---|"
  grep '^interop-table: ' "$log" | sed 's/^interop-table: //' | sort -V
fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "--- interop: no check ran (a filter that matches no row?)"
  failed=1
fi
echo "interop: took $(($(date +%s) - start))s"
echo "interop: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ]
