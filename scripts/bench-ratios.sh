#!/usr/bin/env bash
# Runs the core benchmarks and prints each result as a ratio to the bound measured in the same
# run: within every criterion group, the benchmark named `bound_*` is the bound and every other
# benchmark's ratio is bound_time / its_time (1.0 = as fast as the bound). Groups that also
# time `rust_electrum_client_types` get a second ratio against it.
#   scripts/bench-ratios.sh [cargo bench filter...]
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
rm -rf "$target/criterion"
cargo bench -p electrum-spv-core --locked -- "$@" >&2
python3 - "$target/criterion" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
groups = {}
for est in sorted(root.glob("*/*/new/estimates.json")):
    bench = json.loads((est.parent / "benchmark.json").read_text())
    mean_ns = json.loads(est.read_text())["mean"]["point_estimate"]
    thr = bench.get("throughput") or {}
    elems = thr.get("Elements") or thr.get("Bytes")
    groups.setdefault(bench["group_id"], []).append((bench["function_id"], mean_ns, elems))
print("| group | benchmark | mean | per element | rate | ratio to bound | ratio to rust-electrum-client types |")
print("|---|---|---|---|---|---|---|")
for group, rows in groups.items():
    bounds = [ns for name, ns, _ in rows if name.startswith("bound")]
    bound = bounds[0] if bounds else None
    recs = [ns for name, ns, _ in rows if name == "rust_electrum_client_types"]
    rec = recs[0] if recs else None
    for name, ns, elems in rows:
        per = f"{ns / elems:.1f} ns" if elems else "-"
        rate = f"{elems / ns * 1e3:.2f} M/s" if elems else "-"
        ratio = "bound" if name.startswith("bound") else (f"{bound / ns:.2f}" if bound else "-")
        mean = f"{ns / 1e6:.3f} ms" if ns >= 1e5 else f"{ns / 1e3:.2f} µs"
        second = f"{rec / ns:.2f}" if rec and not name.startswith(("bound", "rust_")) else "-"
        print(f"| {group} | {name} | {mean} | {per} | {rate} | {ratio} | {second} |")
PY
