#!/usr/bin/env bash
# Runs every test of electrum-spv on a fresh machine: installs what it needs, then
#   lints (fmt, clippy -D warnings, rustdoc -D warnings), the workspace tests, the no_std build
#   of core for thumbv7em without alloc, the Cortex-M firmware under QEMU, the interop matrix
#   (every ElectrumX release and electrs through the API, the CLI and the Python bindings,
#   and a mixed pool), the C, Python, Kotlin
#   and Swift bindings' tests and a fuzz smoke run.
# Exits non-zero if anything fails; the last line is "tests: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT
passed=0
failed=0
failures=()

step() { # step NAME COMMAND...: runs a step, counting its tests (cargo's or one for the step)
  local name=$1
  shift
  echo "==> $name"
  if "$@" 2>&1 | tee "$log"; then
    local n
    # cargo's "test result" lines, and the "NAME: N passed, M failed" summaries of the scripts.
    n=$( (grep -Eo '^test result: ok\. [0-9]+ passed' "$log" | awk '{print $4}'
          grep -E '^[a-z]+: [0-9]+ passed, [0-9]+ failed' "$log" | awk '{print $2}') |
        awk '{s += $1} END {print s + 0}')
    [ "$n" -gt 0 ] || n=1
    passed=$((passed + n))
  else
    local n
    n=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s += $1} END {print s + 0}')
    [ "$n" -gt 0 ] || n=1
    failed=$((failed + n))
    failures+=("$name")
  fi
}

scripts/setup.sh || { echo "tests: 0 passed, 1 failed (setup)"; exit 1; }

step "cargo fmt --check" cargo fmt --all -- --check
step "clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
# `--all-targets` leaves out `test = false` targets: the interop matrix's is linted by name.
step "clippy -D warnings: the interop matrix's test target" \
  cargo clippy -p electrum-spv --test interop --locked -- -D warnings
step "rustdoc -D warnings" env RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
step "workspace tests" cargo test --workspace --locked --no-fail-fast
step "app API (feature app): clippy -D warnings" \
  cargo clippy -p electrum-spv-ffi --features app --all-targets --locked -- -D warnings
step "app API (feature app): rustdoc -D warnings and unit tests" bash -c '
  RUSTDOCFLAGS="-D warnings" cargo doc -p electrum-spv-ffi --features app --no-deps --locked &&
  cargo test -p electrum-spv-ffi --features app --lib --locked app::'
step "features serde, bitcoin, tracing: clippy -D warnings and tests" bash -c '
  cargo clippy -p electrum-spv-core -p electrum-spv --features serde,tracing --all-targets --locked -- -D warnings &&
  cargo test -p electrum-spv-core --features serde,bitcoin --lib --locked -- serde_impls bitcoin_types &&
  cargo test -p electrum-spv --features serde --lib --locked serde_tests &&
  cargo test -p electrum-spv --features tracing --test tracing_events --locked'
step "the app library and the BDK crate do not compile clap (the CLI's feature only)" bash -c '
  for p in "electrum-spv-ffi --features app" electrum-spv-bdk; do
    if cargo tree --locked -e normal -p $p | grep -q "^.*clap v"; then
      echo "$p depends on clap"; exit 1
    fi
  done
  cargo tree --locked -e normal -p electrum-spv | grep -q "clap v" &&
  cargo build --locked -p electrum-spv --no-default-features --lib'
step "core is no_std without alloc (thumbv7em)" \
  cargo build -p electrum-spv-core --no-default-features --target thumbv7em-none-eabihf --locked
step "main job: local verified wallet sync (scripts/demo.sh)" bash -c '
  out=$(scripts/demo.sh) && echo "$out" | tail -n3 &&
  echo "$out" | tail -n1 | grep -q "^ok demo: 8 addresses, [0-9][0-9]* verified history entries$"'
step "verify bundled mainnet headers offline" bash -c '
  out=$(cargo run --release --locked -q -p electrum-spv-core --example verify_headers -- \
        --network mainnet --start-height 822528 core/tests/data/mainnet/headers_822528_830592.bin) &&
  echo "$out" && echo "$out" | tail -n1 | grep -q "^ok 8065 822528..830592 "'
step "Cortex-M firmware under QEMU" scripts/embedded-test.sh
step "embassy-net example builds for thumbv7em" bash -c 'cd examples/embassy && cargo build --locked --release'
step "C ABI: C example and tests (gcc -Werror, static and shared, valgrind, live ElectrumX)" scripts/c-test.sh
step "interop matrix: ElectrumX 1.15 (kyuupichan), 1.16, 1.18, 1.20, 2.0, electrs 0.10.10, a mixed pool; API, CLI, Python (scripts/interop.sh)" \
  scripts/interop.sh
step "Python bindings: pytest against a real ElectrumX" scripts/python-test.sh
step "Kotlin bindings: kotlinc + JNA against a real ElectrumX" scripts/kotlin-test.sh
step "Swift bindings: drift, C header, symbols (Swift not compiled here)" scripts/swift-check.sh
step "fuzz smoke" core/fuzz/smoke.sh

if [ "${#failures[@]}" -gt 0 ]; then
  printf 'failed: %s\n' "${failures[@]}"
fi
echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
