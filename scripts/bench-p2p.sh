#!/usr/bin/env bash
# The P2P figures, each measured against its reference in the same run:
#   core   cargo bench -p electrum-spv-core --bench p2p (criterion): serving a transaction
#          (announce, the remote's getdata, the tx frame) and decoding a 50,000-item inv, as
#          multiples of SHA-256d of the same bytes; asserts zero heap allocations first.
#   bcoin  cargo bench -p electrum-spv --bench p2p_bcoin: PeerPool::broadcast of 1,000 signed
#          transactions to three bcoin 1.0.2 nodes in a line (the test kit installs bcoin into
#          target/testkit-bcoin on first use), to A alone and spread over A and B, K = 1:
#          sent/s, accepted into mempools/s (RPC getrawmempool), p50/p99 time to the first
#          non-recipient announcement, confirmed count. A few minutes; not run in CI.
# The full cargo output goes to stderr; the summary lines (`p2p:` and `p2p-bcoin`) are printed
# again at the end on stdout. Criterion's per-group ratios (bound_time / time) are also in
# `scripts/bench-ratios.sh p2p`.
#   scripts/bench-p2p.sh [core|bcoin|all]
#   ELECTRUM_SPV_BENCH_P2P_TXS=2000 ELECTRUM_SPV_BENCH_P2P_ROUNDS=3 scripts/bench-p2p.sh bcoin
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
case $what in
core | all) cargo bench -p electrum-spv-core --locked --bench p2p | tee -a "$out" >&2 ;;
esac
case $what in
bcoin | all) cargo bench -p electrum-spv --locked --bench p2p_bcoin | tee -a "$out" >&2 ;;
esac
case $what in
core | bcoin | all) ;;
*)
  echo "usage: $0 [core|bcoin|all]" >&2
  exit 2
  ;;
esac
echo
grep -E '^p2p(:|-bcoin)' "$out" || true
