#!/usr/bin/env bash
# Runs the adapter benchmark against rust-electrum-client (std-adapter/benches/
# vs_rust_electrum_client.rs: a local ElectrumX of the test kit, installed into
# target/testkit-venv on first use) and prints, per criterion group, each benchmark's mean
# and its ratio to the group's bound measured in the same run: ratio = bound_time / its_time
# (the bound is `bound_rust_electrum_client`; 1.0 = as fast, > 1.0 = faster), then the
# correctness checks, phase timings, reply line lengths, sequential rates and peak RSS lines
# the bench prints. The verified_history_* groups (one long history on a second kit server)
# are timed once per side by the bench's check (its `check verified_history_*` line: time and
# ratio ours / theirs; `rss verified_history_*`: peak RSS; `line ...`: the reply's line
# length against the adapter's cap); with ELECTRUM_SPV_BENCH_LONG_CRITERION=1 criterion times
# them too (hours) and the table counts rows, with the ratio both ways.
#   scripts/bench-adapter.sh verified_history   # only the long-history figures
#   scripts/bench-adapter.sh [criterion filter...]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
rm -rf "$target/criterion/wallet_sync" "$target/criterion/block_header_2000" \
  "$target/criterion/script_history_2000" "$target/criterion"/verified_history_*
cargo bench -p electrum-spv --locked --bench vs_rust_electrum_client -- "$@" | tee "$out" >&2
python3 - "$target/criterion" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
groups = {}
names = ["wallet_sync", "block_header_2000", "script_history_2000"]
names += sorted(p.name for p in root.glob("verified_history_*"))
for name in names:
    for est in sorted((root / name).glob("*/new/estimates.json")):
        bench = json.loads((est.parent / "benchmark.json").read_text())
        mean_ns = json.loads(est.read_text())["mean"]["point_estimate"]
        thr = bench.get("throughput") or {}
        elems = thr.get("Elements") or thr.get("Bytes")
        groups.setdefault(bench["group_id"], []).append((bench["function_id"], mean_ns, elems))
print("| group | benchmark | mean | per element | rate | ratio to bound |")
print("|---|---|---|---|---|---|")
for group, rows in groups.items():
    bounds = [ns for name, ns, _ in rows if name.startswith("bound")]
    bound = bounds[0] if bounds else None
    for name, ns, elems in rows:
        long = group.startswith("verified_history_")
        per = f"{ns / elems / 1e3:.1f} µs" if elems else "-"
        unit = "rows/s" if long else "req/s"
        rate = f"{elems / ns * 1e9:,.0f} {unit}" if elems else "-"
        ratio = "bound" if name.startswith("bound") else (f"{bound / ns:.2f}" if bound else "-")
        if long and bound and not name.startswith("bound"):
            ratio += f" (ours / theirs {ns / bound:.1f})"
        mean = f"{ns / 1e9:.3f} s" if ns >= 1e8 else f"{ns / 1e6:.3f} ms"
        print(f"| {group} | {name} | {mean} | {per} | {rate} | {ratio} |")
PY
echo
grep -E '^(check|phases|line|sequential|rss) ' "$out" || true
