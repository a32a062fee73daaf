# shellcheck shell=bash
# Shared by scripts/embedded-test.sh and scripts/core-size.sh (sourced, not run): installs what
# the Cortex-M firmware in examples/embedded needs, builds it and runs it under QEMU.
# Callers set `set -euo pipefail` and ROOT (the repository root).

EMBEDDED_TARGET=thumbv7em-none-eabihf
FW_DIR="$ROOT/examples/embedded"

# Runs a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# The Rust target, for whichever toolchain rustup picks in the firmware directory.
ensure_embedded_target() {
    if ! (cd "$FW_DIR" && rustup target list --installed | grep -qx "$EMBEDDED_TARGET"); then
        (cd "$FW_DIR" && rustup target add "$EMBEDDED_TARGET")
    fi
}

# QEMU, from Debian's packages, only when the binary is missing.
ensure_qemu() {
    if ! command -v qemu-system-arm >/dev/null 2>&1; then
        as_root apt-get update
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y qemu-system-arm
    fi
}

# The two firmware binaries: the test firmware (the default `cargo run`) and the flash probe,
# which links only a session, header verification and merkle proofs (src/bin/minimal.rs).
FIRMWARE_BIN=electrum-spv-firmware
MINIMAL_BIN=electrum-spv-minimal

# Prints the ELF path of binary $1 (default: the test firmware), wherever CARGO_TARGET_DIR or
# cargo config puts it.
firmware_elf() {
    local dir
    dir="$(cd "$FW_DIR" && cargo metadata --format-version 1 --no-deps |
        grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
    echo "$dir/$EMBEDDED_TARGET/release/${1:-$FIRMWARE_BIN}"
}

# Builds both binaries.
build_firmware() {
    (cd "$FW_DIR" && cargo build --release)
}

# Runs built binary $2 (default: the test firmware) under QEMU (the runner in
# examples/embedded/.cargo/config.toml) with a time limit, writing its output to $1; returns the
# firmware's exit status (124: timed out). QEMU can hang if the firmware never reaches its
# semihosting exit, hence the timeout; it signals the whole process group, so QEMU goes too, not
# only cargo.
run_firmware() {
    local out="$1" bin="${2:-$FIRMWARE_BIN}" limit="${EMBEDDED_TIMEOUT:-120}" status=0
    (cd "$FW_DIR" && timeout --kill-after=5 "$limit" cargo run --release -q --bin "$bin" </dev/null) \
        >"$out" 2>&1 || status=$?
    return "$status"
}
