#!/usr/bin/env bash
# Bounded fuzzing smoke run of every cargo-fuzz target of electrum-spv-core.
#
#   core/fuzz/smoke.sh                 # 20 s per target
#   FUZZ_SECONDS=300 core/fuzz/smoke.sh
#
# Seeds each target's corpus (core/fuzz/corpus/<target>, gitignored) with real chain data from
# core/tests/data, runs each target for FUZZ_SECONDS with libFuzzer's -max_total_time, prints one
# line per target and exits non-zero if any target crashed (the input is kept in
# core/fuzz/artifacts/<target>/; replay it with `cargo +nightly fuzz run <target> <file>`).
# Installs cargo-fuzz (and the nightly toolchain it needs) when missing. Honours CARGO_TARGET_DIR.
set -euo pipefail

FUZZ_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DATA="$FUZZ_DIR/../tests/data"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-20}"
TARGETS=(header hex tx json session p2p p2p_peer)

if ! cargo +nightly --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

# --- seeds ----------------------------------------------------------------------------------
# bytes -> lowercase hex, and back, with coreutils and bash only.
to_hex() { od -An -v -tx1 | tr -d ' \n'; }
# shellcheck disable=SC2001 # parameter expansion has no `&` to reuse each matched pair
from_hex() { local h; h="$(cat)"; printf '%b' "$(sed 's/../\\x&/g' <<<"$h")"; }
# slice FILE OFFSET LENGTH: LENGTH bytes of FILE from byte OFFSET (0-based). dd reads only what
# it needs, so no pipe is cut short (under pipefail a `tail | head` dies of SIGPIPE at random).
slice() { dd if="$1" of=/dev/stdout bs=4096 iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }

# transcript_in FILE: the incoming bytes of a recorded ElectrumX transcript (one
# `{"dir": "in", "data": "..."}` entry per line; ElectrumX escapes only `"`, `\n` and `\\`).
transcript_in() {
    grep '^ *{"dir": "in", "data": "' "$1" | sed -e 's/^ *{"dir": "in", "data": "//' -e 's/"},\{0,1\}$//' |
        tr -d '\n' | sed -e 's/\\n/\n/g' -e 's/\\"/"/g' -e 's/\\\\/\\/g'
}

seed_corpora() {
    local c="$FUZZ_DIR/corpus" early="$DATA/mainnet/headers_0_10236.bin"
    mkdir -p "$c/header" "$c/hex" "$c/tx" "$c/session" "$c/p2p" "$c/p2p_peer"

    # header: real chains from genesis (mainnet raw and hex; regtest from the fork-tree
    # vectors, whose first six headers are blocks 0..5 of one chain), and a later segment
    # that genesis anchoring must refuse.
    head -c 80 "$early" >"$c/header/seed-mainnet-0.bin"
    head -c 400 "$early" >"$c/header/seed-mainnet-0-4.bin"
    head -c 400 "$early" | to_hex >"$c/header/seed-mainnet-0-4.hex"
    grep -o '"hex": "[0-9a-f]\{160\}"' "$DATA/vectors/electrum_test_vectors.json" | awk 'NR <= 6' |
        cut -d'"' -f4 | tr -d '\n' >"$c/header/seed-regtest-0-5.hex"
    from_hex <"$c/header/seed-regtest-0-5.hex" >"$c/header/seed-regtest-0-5.bin"
    head -c 160 "$DATA/mainnet/headers_822528_830592.bin" >"$c/header/seed-mainnet-822528.bin"

    # hex: header hex in both cases, a display-order hash, and an odd length.
    cp "$c/header/seed-mainnet-0-4.hex" "$c/hex/seed-headers.hex"
    tr 'a-f' 'A-F' <"$c/header/seed-regtest-0-5.hex" >"$c/hex/seed-upper.hex"
    printf '%s' 000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f >"$c/hex/seed-hash.hex"
    printf '%s' 0123456789abcdefABCDEFx >"$c/hex/seed-odd.hex"

    # tx: real transactions cut out of raw blocks at offsets computed once from the block
    # layout (header, count, transactions back to back): segwit from signet block 31500,
    # legacy from mainnet block 169482; the whole transaction list (trailing bytes after the
    # first); and the 64-byte transaction of the CVE-2017-12842 vectors.
    local signet="$DATA/signet/blocks/31500.bin" legacy="$DATA/mainnet/blocks/169482.bin"
    slice "$signet" 81 249 >"$c/tx/seed-signet-coinbase.bin"
    slice "$signet" 330 99 >"$c/tx/seed-signet-segwit.bin"
    slice "$legacy" 7237 225 >"$c/tx/seed-mainnet-legacy-1.bin"
    slice "$legacy" 7719 157 >"$c/tx/seed-mainnet-legacy-3.bin"
    tail -c +82 "$signet" >"$c/tx/seed-signet-all-txs.bin"
    printf '%s' 0200000001cb659c5528311901a7aada7db817bd6e3ce2f05d1c62c385b7caadb65fac75201234000000fabcdefa01abcd1234010000000405060708fabcdefa |
        from_hex >"$c/tx/seed-64-byte.bin"

    # session: what real ElectrumX 2.0 sent at 1.4, 1.6 and 1.7 (core/tests/data/transcripts),
    # after a first byte that picks that version (byte % 3) and a split near the middle.
    local t="$DATA/transcripts"
    { printf '\176'; transcript_in "$t/electrumx_1_4.json"; } >"$c/session/seed-electrumx-1-4.bin"
    { printf '\177'; transcript_in "$t/electrumx_1_6.json"; } >"$c/session/seed-electrumx-1-6.bin"
    { printf '\200'; transcript_in "$t/electrumx_1_7.json"; } >"$c/session/seed-electrumx-1-7.bin"

    # p2p: a first byte with the top bit set frames the rest as one message of the command it
    # picks (see fuzz_targets/p2p.rs): `headers` (index 8) with mainnet blocks 0 and 1, `tx`
    # (index 7) with the signet segwit transaction, an `inv` (index 4) of one MSG_WTX; and a
    # raw stream (top bit clear): a regtest `verack` frame followed by the start of a `ping`.
    { printf '\210\002'; head -c 80 "$early"; printf '\000'; slice "$early" 80 80; printf '\000'; } \
        >"$c/p2p/seed-headers.bin"
    { printf '\207'; cat "$c/tx/seed-signet-segwit.bin"; } >"$c/p2p/seed-tx.bin"
    { printf '\204\001\005\000\000\000'; head -c 32 "$early"; } >"$c/p2p/seed-inv.bin"
    printf '%s' 00fabfb5da76657261636b000000000000000000005df6e0e2fabfb5da70696e67 | from_hex \
        >"$c/p2p/seed-raw-verack.bin"

    # p2p_peer: byte 0 cuts the stream, byte 1 picks the remote (bits 0-1: node 0, announced
    # to; 1, a non-recipient; 2, a recipient not announced to; bit 2: a 70015 peer) and, with
    # its top bit set, reads the rest as `[command index, length (2 bytes LE), payload]`
    # records, each framed (see fuzz_targets/p2p_peer.rs). The broadcast transaction is the
    # signet segwit one above; its txid and wtxid (internal byte order) are hashed here.
    local seg="$c/tx/seed-signet-segwit.bin" txid wtxid h01
    sha256d_hex() { sha256sum | cut -c1-64 | from_hex | sha256sum | cut -c1-64; }
    wtxid="$(sha256d_hex <"$seg")"
    txid="$({ slice "$seg" 0 4; slice "$seg" 6 86; slice "$seg" 95 4; } | sha256d_hex)"
    h01="$(head -c 80 "$early" | to_hex)00$(slice "$early" 80 80 | to_hex)00"
    record() { local n=$((${#2} / 2)); printf '%02x%02x%02x%s' "$1" $((n & 255)) $((n >> 8)) "$2"; }
    # node 0 asks for it by wtxid, txid (stripped) and txid (witness), and for a block; pings.
    { printf '8080'; record 5 "0405000000${wtxid}01000000${txid}01000040${txid}02000000${txid}"
      record 2 0102030405060708; } | from_hex >"$c/p2p_peer/seed-getdata.bin"
    # node 0 answers our ping (nonce 0x1122334455667788) and sends mainnet blocks 0 and 1.
    { printf '4080'; record 3 8877665544332211; record 8 "02${h01}"; } | from_hex \
        >"$c/p2p_peer/seed-pong-headers.bin"
    # node 1 (not a recipient) announces it by txid, then serves its bytes when asked.
    { printf 'c081'; record 4 "0101000000${txid}"; record 7 "$(to_hex <"$seg")"; } | from_hex \
        >"$c/p2p_peer/seed-announce-verify.bin"
    # node 2, a 70015 peer as bcoin: sendcmpct(0), getaddr, feefilter, a reject of our txid.
    { printf '2086'; record 17 000100000000000000; record 13 ''; record 14 e803000000000000
      record 18 "02747840146e6f6e2d6d616e6461746f72792d736372697074${txid}"; } | from_hex \
        >"$c/p2p_peer/seed-bcoin.bin"
    # a raw stream: a ping frame whole and a second one cut short.
    { printf '8000f9beb4d970696e67000000000000000008000000'
      printf '%s' "$(printf '0102030405060708' | from_hex | sha256d_hex | cut -c1-8)0102030405060708"
      printf 'f9beb4d970696e67'; } | from_hex >"$c/p2p_peer/seed-raw-ping.bin"
}

# --- run ------------------------------------------------------------------------------------
cd "$FUZZ_DIR"
seed_corpora
# Build every target up front so compile time does not eat into the fuzzing budget; quiet unless
# it fails, when the second attempt shows the compiler's errors.
cargo +nightly fuzz build >/dev/null 2>&1 || cargo +nightly fuzz build

logs="$(mktemp -d)"
failed=0
for target in "${TARGETS[@]}"; do
    log="$logs/$target.log"
    status=0
    # -max_total_time bounds the fuzzing; the outer timeout only catches a wedged process.
    timeout --kill-after=10 "$((SECONDS_PER_TARGET + 300))" \
        cargo +nightly fuzz run "$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
    rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)"
    corpus="$(find "corpus/$target" -type f | wc -l)"
    if [ "$status" -eq 0 ]; then
        echo "fuzz $target: ok, ${execs:-?} execs in ${SECONDS_PER_TARGET} s (${rate:-?} exec/s), corpus ${corpus} inputs"
    else
        failed=1
        echo "fuzz $target: FAILED (exit $status), log $log, crashing inputs in core/fuzz/artifacts/$target/"
        tail -n 40 "$log" >&2
    fi
done
if [ "$failed" -eq 0 ]; then
    rm -rf "$logs"
fi
exit "$failed"
