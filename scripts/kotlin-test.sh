#!/usr/bin/env bash
# Tests the Kotlin bindings (bindings/kotlin) against the test kit's real ElectrumX: builds the
# app library and checks the committed bindings for drift (scripts/bindings.sh), builds
# testkit-serve and replay-serve (real mainnet data), compiles
# bindings/kotlin/src/{main,test}/kotlin with kotlinc against JNA and kotlinx-coroutines, and
# runs the tests' own runner (dev.electrumspv.TestRunnerKt, which starts testkit-serve and the
# replay servers and stops them by closing their standard input).
# Installs what is missing: the npm package kotlin-compiler (kotlinc, kotlin-stdlib,
# kotlin-test and kotlinx-coroutines jars) into target/tools/kotlin, and Debian's libjna-java
# (and a JDK or npm if absent) with apt-get.
# Arguments are test names to run (all by default). The last line is
# "kotlin: N passed, M failed"; exits non-zero on any failure. Runs from any directory.
#   scripts/kotlin-test.sh [TEST_NAME...]
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

KOTLIN_VERSION=2.4.20
tools="$ROOT/target/tools/kotlin"
kotlin_home="$tools/node_modules/kotlin-compiler"
jna=/usr/share/java/jna.jar

fail() {
    echo "kotlin: FAIL: $1" >&2
    echo "kotlin: 0 passed, 1 failed"
    exit 1
}

# apt-get install PACKAGE... as root (or with sudo), updating the package lists if the first
# try fails.
apt_install() {
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || return 1
        sudo=(sudo)
    fi
    echo "==> apt-get install $*"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get install -y -q "$@" >/dev/null && return 0
    "${sudo[@]}" apt-get update -q >/dev/null && "${sudo[@]}" apt-get install -y -q "$@" >/dev/null
}

if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
    apt_install default-jdk-headless || fail "no JDK (apt-get install default-jdk-headless)"
fi
if [ ! -f "$jna" ]; then
    apt_install libjna-java || fail "no JNA (apt-get install libjna-java)"
fi
installed="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$kotlin_home/package.json" 2>/dev/null)"
if [ "$installed" != "$KOTLIN_VERSION" ] || [ ! -x "$kotlin_home/bin/kotlinc" ]; then
    if ! command -v npm >/dev/null 2>&1; then
        apt_install npm || fail "no npm (apt-get install npm)"
    fi
    echo "==> npm install kotlin-compiler@$KOTLIN_VERSION into $tools"
    mkdir -p "$tools"
    npm install --prefix "$tools" --no-audit --no-fund --loglevel=error \
        "kotlin-compiler@$KOTLIN_VERSION" >&2 || fail "npm install kotlin-compiler@$KOTLIN_VERSION"
fi
klib="$kotlin_home/lib"
for jar in kotlin-stdlib.jar kotlin-test.jar kotlinx-coroutines-core-jvm.jar; do
    [ -f "$klib/$jar" ] || fail "$klib/$jar is missing from the kotlin-compiler package"
done

echo "==> scripts/bindings.sh"
lib="$(scripts/bindings.sh | tail -n1)" || fail "building the library or generating the bindings"
[ -f "$lib" ] || fail "scripts/bindings.sh printed no library path ($lib)"
libdir="$(dirname "$lib")"
echo "==> cargo build -p electrum-spv-testkit --bin testkit-serve --bin replay-serve"
cargo build -q --locked -p electrum-spv-testkit --bin testkit-serve || fail "building testkit-serve"
cargo build -q --locked -p electrum-spv-testkit --bin replay-serve || fail "building replay-serve"
serve="$libdir/testkit-serve"
[ -x "$serve" ] || fail "$serve is missing"
# The replay tests fail (not skip) if it is missing; the runner checks it there.
replay="$libdir/replay-serve"

# Compile main and test sources in one kotlinc run, skipped when neither they nor the compiler
# changed since the last successful one.
out="$(dirname "$libdir")/kotlin-test"
classes="$out/classes"
classpath="$jna:$klib/kotlinx-coroutines-core-jvm.jar:$klib/kotlin-test.jar"
sources=(bindings/kotlin/src/main/kotlin bindings/kotlin/src/test/kotlin)
stamp="$( (echo "$KOTLIN_VERSION $classpath"; find "${sources[@]}" -name '*.kt' -type f -print0 |
    sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$out/stamp" 2>/dev/null)" != "$stamp" ] || [ ! -d "$classes" ]; then
    echo "==> kotlinc ${sources[*]}"
    rm -rf "$classes" "$out/stamp"
    mkdir -p "$out"
    "$kotlin_home/bin/kotlinc" -jvm-target 17 -cp "$classpath" -d "$classes" "${sources[@]}" ||
        fail "kotlinc"
    echo "$stamp" >"$out/stamp"
fi

echo "==> tests against the test kit's ElectrumX and mainnet replay server"
log="$out/test.log"
# JNA finds libelectrum_spv_ffi.so through jna.library.path. The runner stops the kit and the
# replay servers itself; if it hangs past the deadline, killing the JVM closes their standard
# input too.
REPLAY_SERVE="$replay" timeout -k 10 1200 java -Djna.library.path="$libdir" \
    -cp "$classes:$classpath:$klib/kotlin-stdlib.jar" \
    dev.electrumspv.TestRunnerKt --kit "$serve" "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
summary="$(grep -E '^kotlin: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1)"
if [ -z "$summary" ]; then
    echo "kotlin: FAIL: the test runner ended without a summary (status $status)" >&2
    echo "kotlin: 0 passed, 1 failed"
    exit 1
fi
if [ "$status" -ne 0 ] && [[ "$summary" == *" 0 failed" ]]; then
    passed="$(echo "$summary" | awk '{print $2}')"
    echo "kotlin: FAIL: the test runner exited with status $status" >&2
    echo "kotlin: $passed passed, 1 failed"
    exit 1
fi
[ "$status" -eq 0 ]
