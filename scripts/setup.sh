#!/usr/bin/env bash
# Installs what the build and tests need on a fresh machine (idempotent, quiet when done).
set -euo pipefail

rustup target add thumbv7em-none-eabihf >/dev/null
rustup component add rustfmt clippy llvm-tools >/dev/null
if ! rustup toolchain list | grep -q '^nightly'; then
  rustup toolchain install nightly --profile minimal >/dev/null
fi
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v valgrind >/dev/null || missing+=(valgrind)
command -v gcc >/dev/null || missing+=(gcc)
# core/tests/p2p_python.rs: Debian's python-bitcoinlib, for Debian's /usr/bin/python3 (not a
# pyenv python3 earlier on PATH).
/usr/bin/python3 -c 'import bitcoin.messages' 2>/dev/null || missing+=(python3-bitcoinlib)
# The test kit builds electrs (interop matrix) against Debian's RocksDB, with bindgen.
for pkg in librocksdb-dev clang libclang-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
