/*
 * Helpers shared by the C tests of the electrum-spv C ABI: checks that count and report,
 * hex, file reading. Test code only (it allocates; the library does not).
 */
#ifndef ESPV_TEST_COMMON_H
#define ESPV_TEST_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "electrum_spv.h"

static int g_checks;
static int g_failures;

/* Counts a check; prints where it failed. */
#define CHECK(cond)                                                              \
    do {                                                                         \
        g_checks++;                                                              \
        if (!(cond)) {                                                           \
            g_failures++;                                                        \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                        \
    } while (0)

/* Checks a status code, naming both codes when they differ. */
#define CHECK_STATUS(expr, want)                                                 \
    do {                                                                         \
        int got_ = (expr);                                                       \
        g_checks++;                                                              \
        if (got_ != (want)) {                                                    \
            g_failures++;                                                        \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s\n", __FILE__,    \
                    __LINE__, #expr, espv_status_name(got_),                     \
                    espv_status_name(want));                                     \
        }                                                                        \
    } while (0)

/* A `type *` one byte past the (aligned) buffer `buf`: misaligned for any type wider than a
 * byte. Made through uintptr_t, so the conversion is implementation-defined, not undefined;
 * the library must refuse it (ESPV_ERR_MISALIGNED) without dereferencing it. */
#define MISALIGNED(type, buf) ((type *)((uintptr_t)(void *)(buf) + 1))

static inline int hex_nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes exactly 2 * n hex digits from `hex` into `out`; 0 on success. */
static inline int unhex(const char *hex, uint8_t *out, size_t n) {
    for (size_t i = 0; i < n; i++) {
        int hi = hex_nibble(hex[2 * i]);
        int lo = hi < 0 ? -1 : hex_nibble(hex[2 * i + 1]);
        if (lo < 0) return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Writes the plain (not reversed) hex of `n` bytes and a NUL into `out` (2n+1 bytes). */
static inline void tohex(const uint8_t *bytes, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A hash from its display (reversed) hex; aborts the test on bad input. */
static inline void display_hash(const char *hex, uint8_t out[32]) {
    if (espv_hash_from_hex(hex, 64, out) != ESPV_OK) {
        fprintf(stderr, "bad hash literal %s\n", hex);
        exit(2);
    }
}

/* Whether a hash's display hex equals `hex`. */
static inline int hash_is(const uint8_t hash[32], const char *hex) {
    char text[65];
    if (espv_hash_to_hex(hash, text) != ESPV_OK) return 0;
    return strcmp(text, hex) == 0;
}

/* Reads a whole file (malloc'd, NUL-terminated); exits on failure. */
static inline uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    for (;;) {
        if (!buf) {
            fprintf(stderr, "out of memory reading %s\n", path);
            exit(2);
        }
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        cap *= 2;
        buf = realloc(buf, cap + 1);
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Prints the summary line of a test program and returns its exit code. */
static inline int finish(const char *name) {
    printf("%s: %d checks, %d failed\n", name, g_checks, g_failures);
    return g_failures == 0 && g_checks > 0 ? 0 : 1;
}

#endif
