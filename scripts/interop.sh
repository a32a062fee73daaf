#!/usr/bin/env bash
# The interop matrix (issue 12): every server implementation the test kit installs (ElectrumX
# e-x 1.16.0, 1.18.0, 1.20.0, 2.0.0 and kyuupichan's electrumx 1.15.0, each into its own venv
# under target/ on first use; electrs 0.10.10 built into target/ against Debian's RocksDB),
# each over its own stand-in bitcoind, with the same checks: through the Rust API and the CLI
# (std-adapter/tests/interop.rs: negotiation, headers from genesis, every kit wallet's verified
# history/utxos/balance, broadcast, fees, optional methods, a subscription, a 2-block reorg,
# core's tracker with cp_height or header-chain proofs), then through the Python bindings
# (bindings/python/interop_matrix.py); and the mixed pool (ElectrumX 1.16 + 2.0 + electrs).
# Prints one line per server and check, README's compatibility table, then
# "interop: N passed, M failed". Exits non-zero on any failure (a server that cannot be
# installed or started fails its row).
# Usage: scripts/interop.sh [FILTER...]   e.g. scripts/interop.sh 1_16_0 electrs (libtest
# filters over the test names: electrumx_1_16_0, electrs_0_10_10, mixed_pool_...)
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
pylog=$(mktemp)
trap 'rm -f "$log" "$pylog"' EXIT
start=$(date +%s)
# One test per implementation; all side by side (most of each row's time is ElectrumX pacing
# replies).
cargo test --locked -q -p electrum-spv --test interop -- --test-threads=8 --nocapture "$@" \
  >"$log" 2>&1
rc=$?
# libtest's progress dots share the line with a check's line at times: keep from "interop: " on.
sed -i -E 's/^.*(interop: (electrumx-|electrs-|mixed-pool ))/\1/; s/^.*(interop-table: )/\1/' "$log"

# The Python rows: the implementations the filters select (all without a filter).
servers=()
if cargo build -q --locked -p electrum-spv-testkit --bin testkit-serve; then
  for name in $(target/debug/testkit-serve --list); do
    test_name=${name//[-.]/_}
    if [ "$#" -eq 0 ]; then servers+=("$name"); continue; fi
    for f in "$@"; do
      if [[ "$test_name" == *"$f"* ]]; then servers+=("$name"); break; fi
    done
  done
else
  echo "interop: python FAILED (building testkit-serve)" >>"$log"
fi
py_rc=0
if [ "${#servers[@]}" -gt 0 ]; then
  INTEROP_SERVERS="${servers[*]}" scripts/python-test.sh interop_matrix.py >"$pylog" 2>&1
  py_rc=$?
  # "interop_matrix.py::test_wallets[electrs-0.10.10] PASSED" -> one check line.
  sed -n -E 's/^interop_matrix\.py::test_([a-z_]+)\[([^]]+)\] (PASSED|FAILED|ERROR).*/\2 \1 \3/p' \
    "$pylog" | while read -r server check outcome; do
      check=${check//_/ }
      if [ "$outcome" = PASSED ]; then
        echo "interop: $server python $check ok (Python bindings)"
      else
        echo "interop: $server python $check FAILED (see pytest's output)"
      fi
    done >>"$log"
  if [ "$py_rc" -ne 0 ] && ! grep -q '^interop: .* python .* FAILED' "$log"; then
    echo "interop: python FAILED (pytest did not run: see its output)" >>"$log"
  fi
fi

grep -E '^interop: ' "$log" | grep -Ev ' (started in|done in) ' | sed 's/ \[[0-9.]*s\]$//'
grep -E '^interop: .* (started in|done in) ' "$log"
passed=$(grep -Ec '^interop: .* ok \(' "$log")
failed=$(grep -Ec '^interop: .* FAILED' "$log")
# A row that could not start (install, start) prints no check line: count it as one failure.
rows_failed=$(grep -Ec "^thread '(electrumx|electrs|mixed)_.*' .*panicked" "$log")
not_started=$(grep -Ec '^cannot install or start ' "$log")
failed=$((failed + not_started))
if [ "$rc" -ne 0 ]; then
  if [ "$failed" -eq 0 ]; then failed=1; fi
  echo "--- interop: cargo test failed ($rows_failed rows); tail of its output:"
  grep -Ev '^interop: |^test result:' "$log" | tail -n 60
fi
if [ "$py_rc" -ne 0 ]; then
  echo "--- interop: the Python rows failed; tail of pytest's output:"
  tail -n 80 "$pylog"
fi
# README's compatibility table, from this run: the Rust rows' columns, then the Python checks
# passed for the same implementation.
if grep -q '^interop-table: ' "$log"; then
  echo "| implementation | protocol negotiated | verified (API, CLI) | not offered | Python bindings |"
  echo "|---|---|---|---|---|"
  grep '^interop-table: ' "$log" | sed 's/^interop-table: //' | sort -V | while IFS= read -r row; do
    name=$(echo "$row" | awk -F'|' '{gsub(/^ +| +$/, "", $2); print $2}' | tr ' ' '-')
    py_ok=$(grep -c "^interop: $name python .* ok " "$log")
    py_all=$(grep -c "^interop: $name python " "$log")
    if [ "$py_all" -eq 0 ]; then py="(no Python row)"; else py="$py_ok/$py_all checks passed"; fi
    echo "$row $py |"
  done
fi
if [ "$passed" -eq 0 ] && [ "$failed" -eq 0 ]; then
  echo "--- interop: no check ran (a filter that matches no row?)"
  failed=1
fi
echo "interop: took $(($(date +%s) - start))s"
echo "interop: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$py_rc" -eq 0 ] && [ "$failed" -eq 0 ]
