/*
 * electrum-spv from C: verify a real header chain segment read from a file, and compute the
 * script hash an Electrum server indexes a scriptPubKey by.
 *
 *   example HEADERS.bin START_HEIGHT [NETWORK [SCRIPT_HEX]]
 *   example core/tests/data/mainnet/headers_822528_830592.bin 822528
 *
 * HEADERS.bin holds raw 80-byte headers, the first at START_HEIGHT (0, or a multiple of 2016
 * covered by a compiled-in checkpoint). NETWORK is mainnet (default), testnet3, testnet4,
 * signet or regtest. Prints the result and, last, `ok COUNT FIRST..LAST TIP_HASH`; exits 1 if
 * a header breaks a rule.
 *
 * Build (see scripts/c-test.sh):
 *   gcc -std=c11 -Ibindings/c bindings/c/example.c target/release/libelectrum_spv_ffi.a \
 *       -lpthread -ldl -lm -o example
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "electrum_spv.h"

static int network_id(const char *name, uint32_t *out) {
    static const char *const names[] = {"mainnet", "testnet3", "testnet4", "signet", "regtest"};
    static const uint32_t ids[] = {ESPV_NETWORK_MAINNET, ESPV_NETWORK_TESTNET3, ESPV_NETWORK_TESTNET4,
                                   ESPV_NETWORK_SIGNET, ESPV_NETWORK_REGTEST};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = ids[i];
            return 0;
        }
    }
    return -1;
}

static uint8_t *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 20, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap) break;
        uint8_t *bigger = realloc(buf, cap *= 2);
        if (!bigger) free(buf);
        buf = bigger;
    }
    fclose(f);
    *len = n;
    return buf;
}

static int from_hex(const char *hex, uint8_t *out, size_t cap, size_t *len) {
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned byte;
        if (sscanf(hex + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (uint8_t)byte;
    }
    *len = n / 2;
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s HEADERS.bin START_HEIGHT [NETWORK [SCRIPT_HEX]]\n", argv[0]);
        return 2;
    }
    uint32_t network = ESPV_NETWORK_MAINNET;
    if (argc > 3 && network_id(argv[3], &network) != 0) {
        fprintf(stderr, "unknown network %s\n", argv[3]);
        return 2;
    }
    uint32_t start = (uint32_t)strtoul(argv[2], NULL, 10);
    size_t len = 0;
    uint8_t *headers = read_all(argv[1], &len);
    if (!headers || len == 0 || len % 80 != 0) {
        fprintf(stderr, "%s: not a file of 80-byte headers\n", argv[1]);
        free(headers);
        return 2;
    }
    size_t count = len / 80;

    /* The whole segment in one call. */
    espv_tip tip;
    uint32_t bad_height = 0;
    int rc = espv_verify_headers(network, start, headers, count, &tip, &bad_height);
    if (rc != ESPV_OK) {
        printf("refused: header at height %u: %s\n", (unsigned)bad_height, espv_status_name(rc));
        free(headers);
        return 1;
    }
    char tip_hex[65], work_hex[65];
    espv_hash_to_hex(tip.hash, tip_hex);
    for (int i = 0; i < 32; i++) sprintf(work_hex + 2 * i, "%02x", tip.chainwork[i]);
    const char *w = work_hex;
    while (*w == '0' && w[1]) w++;
    printf("headers: %zu verified from height %u to %u (%s)\n", count, (unsigned)start, (unsigned)tip.height,
           tip.work_is_absolute ? "chain work from genesis" : "chain work from the segment start");
    printf("tip: %s bits 0x%08x time %u chainwork 0x%s\n", tip_hex, (unsigned)tip.bits, (unsigned)tip.time, w);

    /* Again header by header, as a device does with a streamed chunk: same tip. */
    espv_verifier v;
    espv_tip streamed;
    if (espv_verifier_init(&v, network, start) != ESPV_OK) return 1;
    for (size_t i = 0; i < count; i++) {
        rc = espv_verifier_push(&v, headers + 80 * i, NULL);
        if (rc != ESPV_OK) {
            printf("refused while streaming at height %zu: %s\n", start + i, espv_status_name(rc));
            free(headers);
            return 1;
        }
    }
    espv_verifier_tip(&v, &streamed, NULL);
    printf("streamed: %zu headers through a %zu-byte espv_verifier, same tip: %s\n", count, sizeof v,
           memcmp(streamed.hash, tip.hash, 32) == 0 ? "yes" : "NO");

    /* A script hash: what the server indexes a scriptPubKey by (shown reversed, like a txid). */
    const char *script_hex = argc > 4 ? argv[4] : "76a914483ec28cf50d8ba146120ef6d0617a931cb8f86988ac";
    uint8_t script[520], hash[32];
    size_t script_len = 0;
    char hash_hex[65];
    if (from_hex(script_hex, script, sizeof script, &script_len) != 0 ||
        espv_script_hash(script, script_len, hash) != ESPV_OK) {
        fprintf(stderr, "bad script hex %s\n", script_hex);
        free(headers);
        return 2;
    }
    espv_hash_to_hex(hash, hash_hex);
    printf("script %s: script hash %s\n", script_hex, hash_hex);
    printf("session state: %zu bytes of caller memory, alignment %zu\n", espv_session_size(ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT), espv_session_align());
    printf("ok %zu %u..%u %s\n", count, (unsigned)start, (unsigned)tip.height, tip_hex);
    free(headers);
    return memcmp(streamed.hash, tip.hash, 32) == 0 ? 0 : 1;
}
