#!/usr/bin/env bash
# What electrum-spv-core costs on a Cortex-M4 (thumbv7em-none-eabihf, opt-level "z", LTO):
# flash by section, static RAM, and the stack peak measured by running the firmware of
# examples/embedded under QEMU. Also builds the core crate alone for the target with
# --no-default-features, to show it is no_std and needs no allocator.
# Installs the target, llvm-tools and qemu-system-arm if missing. Runs from any directory.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/embedded-common.sh
source "$ROOT/scripts/embedded-common.sh"

ensure_embedded_target
ensure_qemu

# llvm-size and llvm-nm ship with rustup's llvm-tools component, under the sysroot.
llvm_tool() {
    local sysroot tools
    sysroot="$(cd "$FW_DIR" && rustc --print sysroot)"
    tools=("$sysroot"/lib/rustlib/*/bin/"$1")
    if [ ! -x "${tools[0]}" ]; then
        (cd "$FW_DIR" && rustup component add llvm-tools) >&2
        tools=("$sysroot"/lib/rustlib/*/bin/"$1")
    fi
    echo "${tools[0]}"
}

# Runs a command with its output held back; shows it all if the command fails.
quietly() {
    local log status=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || status=$?
    [ "$status" -eq 0 ] || cat "$log" >&2
    rm -f "$log"
    return "$status"
}

LLVM_SIZE="$(llvm_tool llvm-size)"
LLVM_NM="$(llvm_tool llvm-nm)"

# 1. The core alone: a no_std build for a target without std. (Without `alloc` too: the
#    firmware below has no #[global_allocator], and rustc refuses to link a program in which any
#    crate pulls in `alloc` without one.)
quietly cargo build --manifest-path "$ROOT/core/Cargo.toml" --release --no-default-features \
    --target "$EMBEDDED_TARGET"
echo "core: no_std build for $EMBEDDED_TARGET (--no-default-features): ok"

# 2. The firmware: sizes from the ELF.
quietly build_firmware
ELF="$(firmware_elf)"
section() { "$LLVM_SIZE" -A -d "$ELF" | awk -v s="$1" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
vectors="$(section .vector_table)"
text="$(section .text)"
rodata="$(section .rodata)"
data="$(section .data)"
bss="$(section .bss)"
uninit="$(section .uninit)"
# Test input compiled in with include_bytes!: the mainnet headers (*.bin) and the recorded
# ElectrumX exchange (*.json).
header_data=0
for f in "$FW_DIR"/data/*.bin "$FW_DIR"/data/*.json; do
    header_data=$((header_data + $(wc -c <"$f")))
done
checkpoints="$("$LLVM_NM" -S -C --radix=d "$ELF" |
    awk '$4 ~ /checkpoints::mainnet::MAINNET/ { s += $2 } END { print s + 0 }')"

# 3. The stack peak: the firmware paints its stack, runs each step, and reports the deepest use.
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if ! run_firmware "$out"; then
    cat "$out" >&2
    echo "core-size: the firmware failed under QEMU" >&2
    exit 1
fi
figure() { sed -n "s/^$1=\([0-9]*\)\$/\1/p" "$out"; }
stack="$(figure stack_peak_bytes)"
stack_headers="$(figure stack_peak_headers_bytes)"
stack_merkle="$(figure stack_peak_merkle_bytes)"
stack_session_init="$(figure stack_peak_session_init_bytes)"
stack_session_init_own="$(figure stack_session_init_own_bytes)"
stack_session="$(figure stack_peak_session_bytes)"
stack_hostile="$(figure stack_peak_hostile_bytes)"
session_size="$(figure session_size_bytes)"
for v in stack stack_headers stack_merkle stack_session_init stack_session_init_own stack_session stack_hostile session_size; do
    [ -n "${!v}" ] || { cat "$out" >&2; echo "core-size: the firmware printed no $v figure" >&2; exit 1; }
done

row() { printf '%-28s %9s  %s\n' "$1" "$2" "$3"; }
echo
echo "electrum-spv-firmware on $EMBEDDED_TARGET (opt-level z, LTO, codegen-units 1, panic abort)"
row "what" "bytes" "notes"
row ".text (code)" "$text" "core + sha2 + cortex-m-rt + semihosting + core::fmt"
row ".rodata (constants)" "$rodata" "includes the two rows below"
row "  embedded test data" "$header_data" "data/*.bin + data/*.json via include_bytes!: test input, subtract it"
row "  mainnet checkpoints" "$checkpoints" "compiled-in checkpoint table"
row ".rodata without test data" "$((rodata - header_data))" "also ~2.5 KB of test vectors and expected values"
row ".vector_table" "$vectors" "Cortex-M exception and interrupt vectors"
row "flash without test data" "$((vectors + text + rodata - header_data + data))" ".vector_table + .text + .rodata + .data"
row "static RAM (.data+.bss)" "$((data + bss + uninit))" ".data $data, .bss $bss, .uninit $uninit"
row "  Session (in .bss)" "$session_size" "the session's own state; its buffers (4096 line, 256 out, 16 pending) are statics beside it"
row "stack peak" "$stack" "measured under QEMU by stack painting; the largest of:"
row "  2016 headers" "$stack_headers" "anchor + HeaderVerifier::push, with the harness frames"
row "  2 merkle proofs" "$stack_merkle" "hex decoding + verify_tx_branch, with the harness frames"
row "  Session::start" "$stack_session_init" "creating the session in its static (Session::EMPTY put in place, then started), with the harness frames"
row "    of which the creation" "$stack_session_init_own" "the peak less the stack in use at the call: what constructing a session costs (target <= 1 KiB)"
row "  scripted session" "$stack_session" "driving it through the ElectrumX transcript, checks included"
row "  hostile input" "$stack_hostile" "two fresh sessions (Session::new included) and bad input"
row "RAM total" "$((data + bss + uninit + stack))" "static RAM + stack peak; no heap"

# Where the code comes from, by symbol. Approximate: LTO inlines across crates, and inlined code
# counts for the function it landed in.
echo
echo ".text by origin (approximate, from symbol sizes)"
"$LLVM_NM" -S -C --radix=d "$ELF" | awk '
    $3 ~ /^[tTwW]$/ {
        name = $4; for (i = 5; i <= NF; i++) name = name " " $i
        if (name ~ /electrum_spv_core/) o = "electrum-spv-core"
        else if (name ~ /sha2/) o = "sha2"
        else if (name ~ /electrum_spv_firmware/) o = "firmware (test harness)"
        else if (name ~ /cortex_m|^(Reset|HardFault|DefaultHandler|DefaultPreInit|main)/) o = "cortex-m-rt, semihosting"
        else if (name ~ /compiler_builtins|^__aeabi/) o = "compiler_builtins"
        else o = "libcore (fmt, sort, panics)"
        size[o] += $2
    }
    END { for (o in size) printf "  %-28s %9d\n", o, size[o] }' | sort -k1,1
