#!/usr/bin/env bash
# Tests the Python bindings (bindings/python) with pytest against the test kit's real
# ElectrumX: builds the app library and checks the committed bindings for drift
# (scripts/bindings.sh), builds testkit-serve, replay-serve (real mainnet data) and bcoin-serve
# (three real bcoin nodes, installed from npm on first use), installs pytest into target/tools/pytest-venv
# if missing, and runs bindings/python/test_*.py with the library beside the module.
# The last line is "python: N passed, M failed". Runs from any directory.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

fail() {
    echo "python: FAIL: $1" >&2
    echo "python: 0 passed, 1 failed"
    exit 1
}

venv="$ROOT/target/tools/pytest-venv"
if [ ! -x "$venv/bin/pytest" ]; then
    python3 -m venv "$venv" || fail "python3 -m venv (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install -q --disable-pip-version-check pytest || fail "pip install pytest"
fi

lib="$(scripts/bindings.sh | tail -n1)" || fail "building the library or generating the bindings"
cargo build -q --locked -p electrum-spv-testkit --bin testkit-serve --bin replay-serve --bin bcoin-serve ||
    fail "building testkit-serve, replay-serve and bcoin-serve"
target_dir="$(dirname "$(dirname "$lib")")"

# The generated module loads the library from its own directory.
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cp bindings/python/*.py "$work/"
cp "$lib" "$work/"

log="$work/pytest.log"
(cd "$work" && TESTKIT_SERVE="$target_dir/debug/testkit-serve" \
    REPLAY_SERVE="$target_dir/debug/replay-serve" \
    BCOIN_SERVE="$target_dir/debug/bcoin-serve" \
    "$venv/bin/pytest" -p no:cacheprovider -v "$@") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '[0-9]+ passed' "$log" | tail -n1 | awk '{print $1}')
failed=$(grep -Eo '[0-9]+ (failed|error)' "$log" | awk '{s += $1} END {print s + 0}')
passed=${passed:-0}
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "python: $passed passed, $failed failed"
[ "$status" -eq 0 ]
