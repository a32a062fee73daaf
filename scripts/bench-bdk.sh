#!/usr/bin/env bash
# Issue 13's figure: a BDK full scan of a wallet with 200 used addresses and 1,000
# transactions on the test kit's real ElectrumX, bdk_electrum 0.24 (the bound) against
# electrum-spv-bdk, timed by criterion in the same run (std-adapter/bdk/benches/
# vs_bdk_electrum.rs); prints both means, the ratio bound / ours (> 1.0: ours faster) and
# each side's peak RSS measured in a child process.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rm -rf "$target/criterion/bdk_full_scan"
cargo bench -p electrum-spv-bdk --locked --bench vs_bdk_electrum -- "$@" | tee "$out" >&2
python3 - "$target/criterion/bdk_full_scan" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
mean = {p.parent.parent.name: json.loads(p.read_text())["mean"]["point_estimate"]
        for p in root.glob("*/new/estimates.json")}
theirs, ours = mean["bound_bdk_electrum"], mean["electrum_spv_bdk"]
print(f"bdk_full_scan: bdk_electrum {theirs / 1e9:.3f} s, electrum-spv-bdk {ours / 1e9:.3f} s, "
      f"ratio bound / ours {theirs / ours:.2f}")
PY
grep -E '^(server|check|rss):? ' "$out" || true
