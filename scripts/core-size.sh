#!/usr/bin/env bash
# What electrum-spv-core costs on a Cortex-M4 (thumbv7em-none-eabihf, opt-level "z", LTO):
# flash by section, static RAM, and the stack peak measured by running the firmware of
# examples/embedded under QEMU; then the same for its flash probe (src/bin/minimal.rs), which
# links only what a hardware wallet needs (a session, header verification, merkle proofs) and
# no test harness or core::fmt: its flash is issue 14's figure (target <= 64 KiB). Also builds the core crate alone for the target with
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
# section ELF NAME: the section's size in bytes (0 if absent).
section() { "$LLVM_SIZE" -A -d "$1" | awk -v s="$2" '$1 == s { print $2; found = 1 } END { if (!found) print 0 }'; }
vectors="$(section "$ELF" .vector_table)"
text="$(section "$ELF" .text)"
rodata="$(section "$ELF" .rodata)"
data="$(section "$ELF" .data)"
bss="$(section "$ELF" .bss)"
uninit="$(section "$ELF" .uninit)"
# Test input compiled in with include_bytes!: the mainnet headers (*.bin) and the recorded
# ElectrumX exchange (*.json).
header_data=0
for f in "$FW_DIR"/data/*.bin "$FW_DIR"/data/*.json; do
    header_data=$((header_data + $(wc -c <"$f")))
done
# symbol_bytes ELF REGEX: total size of the symbols whose name matches.
symbol_bytes() {
    "$LLVM_NM" -S -C --radix=d "$1" | awk -v re="$2" '$4 ~ re { s += $2 } END { print s + 0 }'
}
checkpoints="$(symbol_bytes "$ELF" 'checkpoints::mainnet::MAINNET')"

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
# counts for the function it landed in. by_origin ELF HARNESS_LABEL.
by_origin() {
    "$LLVM_NM" -S -C --radix=d "$1" | awk -v harness="$2" '
        $3 ~ /^[tTwW]$/ {
            name = $4; for (i = 5; i <= NF; i++) name = name " " $i
            if (name ~ /electrum_spv_core/) o = "electrum-spv-core"
            else if (name ~ /sha2/) o = "sha2"
            else if (name ~ /serde/) o = "serde-json-core, serde"
            else if (name ~ /electrum_spv_(firmware|minimal)/) o = harness
            else if (name ~ /cortex_m|^(Reset|HardFault|DefaultHandler|DefaultPreInit|main)/) o = "cortex-m-rt, semihosting"
            else if (name ~ /compiler_builtins|^__aeabi/) o = "compiler_builtins"
            else o = "libcore (fmt, sort, panics)"
            size[o] += $2
        }
        END { for (o in size) printf "  %-28s %9d\n", o, size[o] }' | sort -k1,1
}
echo
echo ".text by origin (approximate, from symbol sizes)"
by_origin "$ELF" "firmware (test harness)"

# 4. The flash probe: src/bin/minimal.rs, a session in static storage driven through four
#    recorded ElectrumX lines (headers chunk with its cp_height proof, a merkle proof), plus 16
#    mainnet headers verified from the checkpoint anchor; fixed-string semihosting output only.
MIN_ELF="$(firmware_elf "$MINIMAL_BIN")"
if ! run_firmware "$out" "$MINIMAL_BIN" || ! grep -qx 'minimal ok' "$out"; then
    cat "$out" >&2
    echo "core-size: the minimal firmware failed under QEMU" >&2
    exit 1
fi
m_stack="$(figure stack_peak_bytes)"
m_session="$(figure session_size_bytes)"
[ -n "$m_stack" ] && [ -n "$m_session" ] ||
    { cat "$out" >&2; echo "core-size: the minimal firmware printed no figures" >&2; exit 1; }
m_vectors="$(section "$MIN_ELF" .vector_table)"
m_text="$(section "$MIN_ELF" .text)"
m_rodata="$(section "$MIN_ELF" .rodata)"
m_data="$(section "$MIN_ELF" .data)"
m_bss="$(section "$MIN_ELF" .bss)"
m_uninit="$(section "$MIN_ELF" .uninit)"
# Its test input, each a named static: the recorded lines both ways and the mainnet headers.
m_test_data="$(symbol_bytes "$MIN_ELF" '^electrum_spv_minimal::(CLIENT|SERVER|MAINNET_HEADERS)::')"
# The checkpoints it carries (a few, copied out of core's table at compile time), and core's
# whole mainnet table, which must not be linked (nothing refers to it at run time).
m_checkpoints="$(symbol_bytes "$MIN_ELF" '^electrum_spv_minimal::CHECKPOINTS::')"
m_full_table="$(symbol_bytes "$MIN_ELF" 'checkpoints::mainnet::MAINNET')"
# Anything of core::fmt (Formatter, Debug/Display impls, the integer printers) means a
# formatting path got linked: the probe would no longer measure what a wallet pays.
m_fmt="$(symbol_bytes "$MIN_ELF" 'core(::|[.][.])fmt(::|[.][.])')"
m_flash=$((m_vectors + m_text + m_rodata - m_test_data + m_data))
# What it would take with core's whole table instead of the few it carries.
m_full_cp=$((m_flash - m_checkpoints + checkpoints))
TARGET=65536
verdict() { if [ "$1" -le "$TARGET" ]; then echo "meets <= $TARGET (64 KiB)"; else echo "over 64 KiB ($TARGET) by $(($1 - TARGET))"; fi; }

echo
echo "electrum-spv-minimal on $EMBEDDED_TARGET: the flash probe (session + header verification + merkle, no harness, no core::fmt)"
row "what" "bytes" "notes"
row ".text (code)" "$m_text" "core + serde-json-core + sha2 + cortex-m-rt + the caller's loop and checks"
row ".rodata (constants)" "$m_rodata" "includes the four rows below"
row "  embedded test data" "$m_test_data" "recorded ElectrumX lines + 16 mainnet headers: test input, subtract it"
row "  checkpoints carried" "$m_checkpoints" "mainnet periods 404..=407 (Params::checkpoints_from + with_checkpoints)"
row "  core's mainnet table" "$m_full_table" "the 473-entry table: not linked (must be 0)"
row "  Session::EMPTY image" "$m_session" "size_of::<Session>(): the constant copied into the static before start"
row ".vector_table" "$m_vectors" "Cortex-M exception and interrupt vectors"
row ".data" "$m_data" "the pending slots' initial image"
row "flash without test data" "$m_flash" "$(verdict "$m_flash")"
row "  with the whole table" "$m_full_cp" "what a device carrying all $checkpoints bytes of mainnet checkpoints would take: $(verdict "$m_full_cp")"
row "core::fmt linked" "$m_fmt" "bytes of core::fmt symbols (must be 0)"
row "static RAM (.data+.bss)" "$((m_data + m_bss + m_uninit))" "session state + 4096 line + 256 queue + 2 pending slots"
row "stack peak" "$m_stack" "measured under QEMU by stack painting, whole run"
echo
echo ".text by origin (approximate, from symbol sizes; LTO inlines core into the caller's loop)"
by_origin "$MIN_ELF" "the caller's loop and checks"
if [ "$m_full_table" -ne 0 ]; then
    echo "core-size: core's whole mainnet checkpoint table is linked into the minimal firmware" >&2
    exit 1
fi
if [ "$m_fmt" -ne 0 ]; then
    echo "core-size: core::fmt is linked into the minimal firmware ($m_fmt bytes)" >&2
    exit 1
fi
