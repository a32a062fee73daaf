#!/usr/bin/env bash
# The C ABI from C: builds electrum-spv-ffi (release), compiles bindings/c/example.c and
# bindings/c/tests/*.c with `gcc -std=c11 -Wall -Wextra -Werror -pedantic` against both the
# static and the shared library, runs each under `valgrind --error-exitcode=1
# --leak-check=full`, and runs the live session test against the test kit's real ElectrumX
# (started with testkit-serve, stopped by closing its stdin, like scripts/demo.sh).
# test_tracker drives core's script tracker through the C ABI against the kit's mainnet
# replay server (replay-serve: real blocks and headers), honest and telling four lies.
# test_stack measures the stack of espv_session_init and espv_verify_headers by painting
# (not under valgrind) and checks them against the documented bounds.
# Respects CARGO_TARGET_DIR. The last line is "c: N passed, M failed"; exits non-zero on any
# failure.
#   scripts/c-test.sh
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
target=${CARGO_TARGET_DIR:-$root/target}
case $target in /*) ;; *) target=$root/$target ;; esac
lib=$target/release
out=$target/c-test
mkdir -p "$out"

passed=0
failed=0
failures=()
pass() { passed=$((passed + 1)); echo "ok: $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }
finish() {
  if [ "${#failures[@]}" -gt 0 ]; then printf 'failed: %s\n' "${failures[@]}"; fi
  echo "c: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

for tool in gcc valgrind python3; do
  command -v "$tool" >/dev/null 2>&1 || { fail "$tool is not installed"; finish; }
done

echo "==> cargo build -p electrum-spv-ffi --release --locked"
if cargo build -p electrum-spv-ffi --release --locked; then pass "build libelectrum_spv_ffi"; else fail "build libelectrum_spv_ffi"; finish; fi
[ -f "$lib/libelectrum_spv_ffi.a" ] && [ -f "$lib/libelectrum_spv_ffi.so" ] || { fail "libraries missing in $lib"; finish; }
echo "libelectrum_spv_ffi.a: $(stat -c %s "$lib/libelectrum_spv_ffi.a") bytes, .so: $(stat -c %s "$lib/libelectrum_spv_ffi.so") bytes"

cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -O1 -g -Ibindings/c -Ibindings/c/tests)
# What a Rust staticlib with std needs from the system (rustc --print native-static-libs).
static_libs=(-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc)
programs=(bindings/c/example.c bindings/c/tests/test_verify.c bindings/c/tests/test_session.c bindings/c/tests/test_live.c
  bindings/c/tests/test_stack.c bindings/c/tests/test_tracker.c)

echo "==> compile against the static and the shared library"
for src in "${programs[@]}"; do
  name=$(basename "$src" .c)
  if gcc "${cflags[@]}" "$src" "$lib/libelectrum_spv_ffi.a" "${static_libs[@]}" -o "$out/$name-static"; then
    pass "gcc $name (static)"
  else
    fail "gcc $name (static)"
  fi
  if gcc "${cflags[@]}" "$src" -L"$lib" -lelectrum_spv_ffi -Wl,-rpath,"$lib" -o "$out/$name-shared"; then
    pass "gcc $name (shared)"
  else
    fail "gcc $name (shared)"
  fi
done

vg=(valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --suppressions=bindings/c/tests/valgrind.supp)
headers=core/tests/data/mainnet/headers_822528_830592.bin
vectors=core/tests/data/vectors

run() { # run NAME COMMAND...: one test, under valgrind
  local name=$1
  shift
  echo "==> $name"
  if "${vg[@]}" "$@"; then pass "$name"; else fail "$name"; fi
}

for kind in static shared; do
  if [ -x "$out/example-$kind" ]; then
    echo "==> example ($kind)"
    if "${vg[@]}" "$out/example-$kind" "$headers" 822528 >"$out/example-$kind.txt"; then
      cat "$out/example-$kind.txt"
      if tail -n1 "$out/example-$kind.txt" |
        grep -qx "ok 8065 822528..830592 00000000000000000000506183a8b30fa3224b85e82a70416e1d594bdb632fdb"; then
        pass "example ($kind)"
      else
        fail "example ($kind): unexpected last line"
      fi
    else
      fail "example ($kind)"
    fi
  fi
  [ -x "$out/test_verify-$kind" ] && run "test_verify ($kind)" \
    "$out/test_verify-$kind" "$headers" "$vectors/merkle_vectors.json" "$vectors/electrum_test_vectors.json"
  [ -x "$out/test_session-$kind" ] && run "test_session ($kind)" "$out/test_session-$kind" "$headers"
  # Stack use is measured natively: valgrind would not change it, only slow it down.
  if [ -x "$out/test_stack-$kind" ]; then
    echo "==> test_stack ($kind)"
    if "$out/test_stack-$kind" "$headers"; then pass "test_stack ($kind)"; else fail "test_stack ($kind)"; fi
  fi
done

if ! cargo build -q --locked -p electrum-spv-testkit --bin testkit-serve --bin replay-serve; then
  fail "build testkit-serve and replay-serve"
  finish
fi

echo "==> script tracker against the mainnet replay server"
# Each replay-serve prints one JSON line (its address and the example scripts with the
# histories computed from the blocks) and serves until its stdin closes. The expectations
# file is written from it; a lying server must be caught with the ESPV_LIE_* named here.
low_headers=core/tests/data/mainnet/headers_0_10236.bin
for case in none:- unrelated-tx-inserted:ESPV_LIE_UNRELATED duplicate-txid:ESPV_LIE_DUPLICATE_TXID \
  wrong-position-branch:ESPV_LIE_MERKLE hidden-entry-honest-status:ESPV_LIE_STATUS_MISMATCH; do
  lie=${case%%:*}
  want=${case#*:}
  coproc REPLAY { exec "$target/debug/replay-serve" --lie "$lie"; }
  replay_pid=$REPLAY_PID
  if IFS= read -r replay_hello <&"${REPLAY[0]}"; then
    expected=$out/tracker-expected-$lie.txt
    mapfile -t replay_addr < <(python3 - "$replay_hello" "$expected" <<'PY'
import json, sys
hello = json.loads(sys.argv[1])
with open(sys.argv[2], "w") as f:
    for s in hello["scripts"]:
        f.write(f'script {s["name"]} {s["script_hex"]} {s["status"] or "none"} {len(s["history"])}\n')
        for t in s["history"]:
            f.write(f'tx {t["tx_hash"]} {t["height"]} {t["block_hash"]}\n')
print(hello["url"].removeprefix("tcp://").rsplit(":", 1)[0])
print(hello["url"].rsplit(":", 1)[1])
PY
    )
    lie_arg=()
    [ "$want" = - ] || lie_arg=("$want")
    for kind in static shared; do
      [ -x "$out/test_tracker-$kind" ] && run "test_tracker $lie ($kind)" "$out/test_tracker-$kind" \
        "${replay_addr[@]}" "$low_headers" "$headers" "$expected" "${lie_arg[@]}"
    done
  else
    fail "replay-serve --lie $lie did not start"
  fi
  exec {REPLAY[1]}>&- 2>/dev/null || true
  wait "$replay_pid" 2>/dev/null || true
done

echo "==> live session against the test kit's ElectrumX"
coproc SERVE { exec "$target/debug/testkit-serve"; }
serve_pid=$SERVE_PID
# Closing its standard input makes testkit-serve stop ElectrumX and the stand-in and exit (a
# signal would leave ElectrumX, in its own process group, running).
stop_serve() {
  [ -n "${serve_pid:-}" ] || return 0
  exec {SERVE[1]}>&- 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$serve_pid" 2>/dev/null || { serve_pid=; return 0; }; sleep 0.2; done
  kill "$serve_pid" 2>/dev/null || true
  serve_pid=
}
trap stop_serve EXIT
if ! IFS= read -r hello <&"${SERVE[0]}"; then
  fail "testkit-serve did not start"
  finish
fi
# host, port, tip height, and the scriptPubKeys of three base58 addresses (P2PKH and
# P2SH-P2WPKH; decoded and checksum-checked here).
mapfile -t live_args < <(python3 - "$hello" <<'PY'
import hashlib, json, sys
hello = json.loads(sys.argv[1])
host, port = hello["server"].removeprefix("tcp://").rsplit(":", 1)
print(host); print(port); print(hello["height"])
ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
for name in ("alice-p2pkh", "alice-p2sh-p2wpkh", "bob-p2pkh"):
    n = 0
    for c in hello["addresses"][name]:
        n = n * 58 + ALPHABET.index(c)
    raw = n.to_bytes(25, "big")
    assert hashlib.sha256(hashlib.sha256(raw[:21]).digest()).digest()[:4] == raw[21:], name
    h = raw[1:21].hex()
    print({0x6F: f"76a914{h}88ac", 0xC4: f"a914{h}87"}[raw[0]])
PY
)
if [ "${#live_args[@]}" -ne 6 ]; then
  fail "read testkit-serve's hello line"
else
  echo "ElectrumX on ${live_args[0]}:${live_args[1]}, regtest tip ${live_args[2]}"
  for kind in static shared; do
    [ -x "$out/test_live-$kind" ] && run "test_live ($kind)" "$out/test_live-$kind" "${live_args[@]}"
  done
fi
stop_serve
finish
