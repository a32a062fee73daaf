#!/usr/bin/env bash
# Checks the Swift package (bindings/swift) as far as a machine without a Swift toolchain can:
#   1. the committed generated sources match what the library generates (scripts/bindings.sh);
#   2. the generated C header compiles (gcc -std=c11 -Wall -Wextra -Werror; clang's
#      nullability markers defined away, as gcc lacks them);
#   3. every function the header declares is exported by the built library (a C file that
#      takes each one's address links against it);
#   4. every FFI function the Swift code calls is declared in the header.
# The Swift code itself is NOT compiled here. Last line "swift: N passed, M failed".
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

passed=0
failed=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

header=bindings/swift/Sources/electrum_spvFFI/include/electrum_spvFFI.h
swift=bindings/swift/Sources/ElectrumSpv/ElectrumSpv.swift
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_Nonnull= -D_Nullable= -D_Null_unspecified=)

lib="$(scripts/bindings.sh | tail -n1)"
check "generated Swift sources and header match the library (no drift)" test -n "$lib"

compiles() {
    printf '#include "%s"\nint main(void) { return 0; }\n' "$ROOT/$header" >"$work/compile.c"
    gcc "${CFLAGS[@]}" -c "$work/compile.c" -o "$work/compile.o"
}
check "generated C header compiles (gcc -std=c11 -Werror)" compiles

declared() { # function names declared in the header
    grep -Eo '^[A-Za-z_][A-Za-z0-9_ *]*[ *](uniffi|ffi)_electrum_spv_ffi_[A-Za-z0-9_]+\(' "$header" |
        grep -Eo '(uniffi|ffi)_electrum_spv_ffi_[A-Za-z0-9_]+' | sort -u
}

links() {
    local n
    n="$(declared | wc -l)"
    [ "$n" -gt 20 ] || { echo "only $n functions found in the header" >&2; return 1; }
    {
        printf '#include "%s"\n#include <stdio.h>\nint main(void) {\n    void *fns[] = {\n' "$ROOT/$header"
        declared | sed 's/^/        (void *)\&/; s/$/,/'
        printf '    };\n    printf("%%zu functions\\n", sizeof fns / sizeof fns[0]);\n    return 0;\n}\n'
    } >"$work/link.c"
    # Function-to-object-pointer casts are a common extension; -pedantic is left out here.
    gcc "${CFLAGS[@]}" "$work/link.c" -o "$work/link" -L"$(dirname "$lib")" -lelectrum_spv_ffi &&
        LD_LIBRARY_PATH="$(dirname "$lib")" "$work/link"
}
check "every function the header declares is exported by the library" links

called_are_declared() {
    local missing
    missing="$(comm -23 \
        <(grep -Eo '\b(uniffi|ffi)_electrum_spv_ffi_[A-Za-z0-9_]+' "$swift" | sort -u) \
        <(declared))"
    [ -z "$missing" ] || { echo "called from Swift but not declared: $missing" >&2; return 1; }
}
check "every FFI function the Swift code calls is declared in the header" called_are_declared

echo "swift: $passed passed, $failed failed (Swift sources not compiled: no Swift toolchain here)"
[ "$failed" -eq 0 ]
