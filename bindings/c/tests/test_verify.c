/*
 * The pure functions of the C ABI on real chain data (and misaligned out pointers refused):
 *   test_verify HEADERS_822528.bin MERKLE_VECTORS.json ELECTRUM_TEST_VECTORS.json
 * (core/tests/data/mainnet/headers_822528_830592.bin, core/tests/data/vectors/...).
 *
 * Header chains (whole and header by header, corruptions caught at the right height), every
 * merkle proof of merkle_vectors.json against its header's root, the CVE-2012-2459 and
 * CVE-2017-12842 forgeries, the PROTOCOL.md section 6.4 cp_height proof, the script hashes
 * of electrum_test_vectors.json, the section 6.2 status vectors, txids, hex, decoders and
 * status names.
 */
#include "common.h"

#define MAINNET_START 822528u
#define MAINNET_TIP "00000000000000000000506183a8b30fa3224b85e82a70416e1d594bdb632fdb"

static void test_status_names(void) {
    CHECK(strcmp(espv_status_name(ESPV_OK), "ESPV_OK") == 0);
    CHECK(strcmp(espv_status_name(ESPV_NONE), "ESPV_NONE") == 0);
    CHECK(strcmp(espv_status_name(ESPV_ERR_WRONG_GENESIS), "ESPV_ERR_WRONG_GENESIS") == 0);
    CHECK(strcmp(espv_status_name(-9999), "ESPV_UNKNOWN") == 0);
    CHECK(strcmp(espv_method_name(ESPV_METHOD_BLOCK_HEADER), "blockchain.block.header") == 0);
    CHECK(strcmp(espv_method_name(12345), "unknown") == 0);
}

/* Field by field: the structs' padding bytes are not compared. */
static int tip_eq(const espv_tip *a, const espv_tip *b) {
    return a->height == b->height && memcmp(a->hash, b->hash, 32) == 0 && a->time == b->time &&
           a->bits == b->bits && memcmp(a->chainwork, b->chainwork, 32) == 0 &&
           a->work_is_absolute == b->work_is_absolute;
}

static void test_headers(const uint8_t *headers, size_t len) {
    size_t count = len / 80;
    CHECK(len % 80 == 0);
    CHECK(count == 8065);
    espv_tip tip;
    uint32_t bad = 0;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, headers, count, &tip, &bad), ESPV_OK);
    CHECK(tip.height == MAINNET_START + 8064);
    CHECK(hash_is(tip.hash, MAINNET_TIP));
    CHECK(tip.work_is_absolute);
    uint8_t last_hash[32];
    CHECK_STATUS(espv_header_hash(headers + 80 * (count - 1), last_hash), ESPV_OK);
    CHECK(memcmp(last_hash, tip.hash, 32) == 0);

    /* A later checkpointed period start anchors a segment too. */
    espv_tip tip2;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START + 2016, headers + 80 * 2016, count - 2016, &tip2, NULL), ESPV_OK);
    CHECK(tip_eq(&tip2, &tip));

    /* Not a period start, unknown network, nothing, NULL. */
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START + 1, headers + 80, 10, NULL, NULL), ESPV_ERR_NO_ANCHOR);
    CHECK_STATUS(espv_verify_headers(99, MAINNET_START, headers, count, NULL, NULL), ESPV_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, headers, 0, &tip2, NULL), ESPV_NONE);
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, NULL, 3, NULL, NULL), ESPV_ERR_NULL);
    /* Testnet4 has no checkpoint at this height. */
    CHECK(espv_verify_headers(ESPV_NETWORK_TESTNET4, MAINNET_START, headers, count, NULL, NULL) < 0);

    /* Corruptions are caught at the header that carries them. */
    uint8_t *copy = malloc(len);
    CHECK(copy != NULL);
    if (!copy) return;
    memcpy(copy, headers, len);
    copy[80 * 1000 + 76] ^= 1; /* nonce of header 1000 */
    bad = 0;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, copy, count, &tip2, &bad), ESPV_ERR_INSUFFICIENT_POW);
    CHECK(bad == MAINNET_START + 1000);
    memcpy(copy, headers, len);
    copy[80 * 2000 + 4] ^= 0x80; /* prev hash of header 2000 */
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, copy, count, &tip2, &bad), ESPV_ERR_PREV_HASH_MISMATCH);
    CHECK(bad == MAINNET_START + 2000);
    memcpy(copy, headers, len);
    copy[80 * 2016 + 72] ^= 1; /* bits of the first header after a retarget */
    CHECK(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, copy, count, &tip2, &bad) < 0);
    CHECK(bad == MAINNET_START + 2016);
    free(copy);

    /* Header by header in caller memory, and a memcpy'd copy that carries on alone. */
    espv_verifier v, fork;
    memset(&v, 0, sizeof v);
    CHECK_STATUS(espv_verifier_push(&v, headers, NULL), ESPV_ERR_NOT_INITIALIZED);
    CHECK_STATUS(espv_verifier_init(&v, ESPV_NETWORK_MAINNET, MAINNET_START + 5), ESPV_ERR_NO_ANCHOR);
    CHECK_STATUS(espv_verifier_push(&v, headers, NULL), ESPV_ERR_NOT_INITIALIZED);
    CHECK_STATUS(espv_verifier_init(&v, ESPV_NETWORK_MAINNET, MAINNET_START), ESPV_OK);
    uint32_t next = 0;
    CHECK_STATUS(espv_verifier_tip(&v, &tip2, &next), ESPV_NONE);
    CHECK(next == MAINNET_START);
    int pushed_ok = 1;
    for (size_t i = 0; i < count; i++) {
        if (i == 4000) memcpy(&fork, &v, sizeof v);
        uint8_t hash[32];
        if (espv_verifier_push(&v, headers + 80 * i, hash) != ESPV_OK) pushed_ok = 0;
        if (i == 3000) {
            /* A header out of place is refused and changes nothing. */
            CHECK_STATUS(espv_verifier_push(&v, headers + 80 * 10, NULL), ESPV_ERR_PREV_HASH_MISMATCH);
        }
    }
    CHECK(pushed_ok);
    CHECK_STATUS(espv_verifier_tip(&v, &tip2, &next), ESPV_OK);
    CHECK(tip_eq(&tip2, &tip));
    CHECK(next == MAINNET_START + 8065);
    for (size_t i = 4000; i < count; i++) {
        if (espv_verifier_push(&fork, headers + 80 * i, NULL) != ESPV_OK) pushed_ok = 0;
    }
    CHECK(pushed_ok);
    CHECK_STATUS(espv_verifier_tip(&fork, &tip2, NULL), ESPV_OK);
    CHECK(tip_eq(&tip2, &tip));
    /* The clock rule: a clock of 2000-01-01 makes the next (2024) header "too new". */
    CHECK_STATUS(espv_verifier_init(&v, ESPV_NETWORK_MAINNET, MAINNET_START), ESPV_OK);
    CHECK_STATUS(espv_verifier_set_clock(&v, 946684800u), ESPV_OK);
    CHECK_STATUS(espv_verifier_push(&v, headers, NULL), ESPV_ERR_TIME_TOO_NEW);
}

/* Finds `key` at or after `p` (and before `end`); returns the position after it or NULL. */
static const char *after(const char *p, const char *end, const char *key) {
    const char *q = strstr(p, key);
    return q && q < end ? q + strlen(key) : NULL;
}

/* Every proof of merkle_vectors.json checks out against its block header's merkle root. */
static void test_merkle_vectors(const char *json) {
    int blocks = 0, proofs = 0, ok = 0, refused = 0, txid_blocks = 0, roots = 0, mutated = 0;
    const char *p = json;
    const char *json_end = json + strlen(json);
    while ((p = strstr(p, "\"net\": \"")) != NULL) {
        const char *end = strstr(p + 1, "\"net\": \"");
        if (!end) end = json_end;
        const char *hash_hex = after(p, end, "\"hash\": \"");
        const char *header_hex = after(p, end, "\"header_hex\": \"");
        if (!hash_hex || !header_hex) break;
        uint8_t header[80], hash[32], root[32];
        CHECK(unhex(header_hex, header, 80) == 0);
        CHECK_STATUS(espv_header_hash(header, hash), ESPV_OK);
        char expected[65];
        memcpy(expected, hash_hex, 64);
        expected[64] = '\0';
        CHECK(hash_is(hash, expected));
        CHECK_STATUS(espv_header_merkle_root(header, root), ESPV_OK);
        blocks++;
        /* Small blocks list every txid: their merkle root is the header's. */
        const char *txids = after(p, end, "\"txids\": [");
        if (txids) {
            uint8_t leaves[32 * 32], got[32];
            size_t n = 0;
            const char *close = strchr(txids, ']');
            for (const char *s = txids; (s = strchr(s, '"')) != NULL && s < close && n < 32; s += 66) {
                char hex[65];
                memcpy(hex, s + 1, 64);
                hex[64] = '\0';
                display_hash(hex, leaves + 32 * n++);
            }
            CHECK_STATUS(espv_merkle_root(leaves, n, got), ESPV_OK);
            if (memcmp(got, root, 32) == 0) roots++;
            txid_blocks++;
            /* CVE-2012-2459: the tail repeated as the tree pads it ([.., c] -> [.., c, c];
             * [.., c, d] -> [.., c, d, c, d] for 2 mod 4 leaves) keeps the root: refused. */
            size_t tail = n % 2 == 1 ? 1 : (n % 4 == 2 && n > 2 ? 2 : 0);
            if (tail > 0 && n + tail <= 32) {
                memcpy(leaves + 32 * n, leaves + 32 * (n - tail), 32 * tail);
                memset(got, 0xee, 32);
                CHECK_STATUS(espv_merkle_root(leaves, n + tail, got), ESPV_ERR_MERKLE_MUTATED);
                CHECK(got[0] == 0xee && got[31] == 0xee); /* nothing written */
                mutated++;
            }
        }
        const char *q = p;
        while ((q = after(q, end, "\"tx_hash\": \"")) != NULL) {
            uint8_t txid[32], branch[32 * 32];
            char hex[65];
            memcpy(hex, q, 64);
            hex[64] = '\0';
            display_hash(hex, txid);
            const char *pos_at = after(q, end, "\"pos\": ");
            const char *m = after(q, end, "\"merkle\": [");
            if (!pos_at || !m) break;
            uint32_t pos = (uint32_t)strtoul(pos_at, NULL, 10);
            size_t n = 0;
            const char *close = strchr(m, ']');
            const char *s = m;
            while ((s = strchr(s, '"')) != NULL && s < close && n < 32) {
                memcpy(hex, s + 1, 64);
                display_hash(hex, branch + 32 * n);
                n++;
                s += 66;
            }
            proofs++;
            if (espv_verify_merkle(txid, pos, branch, n, root) == ESPV_OK) ok++;
            /* Another position, a flipped sibling bit, a flipped root bit: refused. */
            if (n > 0) {
                int r1 = espv_verify_merkle(txid, pos ^ 1, branch, n, root);
                branch[32 * (n - 1) + 5] ^= 4;
                int r2 = espv_verify_merkle(txid, pos, branch, n, root);
                branch[32 * (n - 1) + 5] ^= 4;
                root[31] ^= 1;
                int r3 = espv_verify_merkle(txid, pos, branch, n, root);
                root[31] ^= 1;
                if (r1 < 0 && r2 == ESPV_ERR_MERKLE_ROOT_MISMATCH && r3 == ESPV_ERR_MERKLE_ROOT_MISMATCH) refused++;
            }
            q = close;
        }
        p = end;
    }
    printf("merkle vectors: %d blocks, %d of %d proofs verified, %d corruptions refused, %d of %d txid lists give the header's root, %d mutated lists refused\n",
           blocks, ok, proofs, refused, roots, txid_blocks, mutated);
    CHECK(mutated == 3);
    CHECK(txid_blocks == 11);
    CHECK(roots == txid_blocks);
    CHECK(blocks == 24);
    CHECK(proofs == 113);
    CHECK(ok == proofs);
    CHECK(refused == proofs);
}

/* The display hash after `"key": "` in [p, end) into `out`; 0 on success. */
static int json_hash(const char *p, const char *end, const char *key, uint8_t out[32]) {
    char pattern[64], hex[65];
    snprintf(pattern, sizeof pattern, "\"%s\": \"", key);
    const char *at = after(p, end, pattern);
    if (!at || at + 64 > end) return -1;
    memcpy(hex, at, 64);
    hex[64] = '\0';
    return espv_hash_from_hex(hex, 64, out) == ESPV_OK ? 0 : -1;
}

/* The number after `"key": ` in [p, end), or -1. */
static long json_number(const char *p, const char *end, const char *key) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\": ", key);
    const char *at = after(p, end, pattern);
    return at ? strtol(at, NULL, 10) : -1;
}

/* The display hashes of the `"merkle_branch": [...]` in [p, end) into `out` (room for
 * `cap`); returns how many. */
static size_t json_branch(const char *p, const char *end, uint8_t *out, size_t cap) {
    const char *at = after(p, end, "\"merkle_branch\": [");
    size_t n = 0;
    if (!at) return 0;
    const char *close = strchr(at, ']');
    for (const char *s = at; (s = strchr(s, '"')) != NULL && s < close && n < cap; s += 66) {
        char hex[65];
        memcpy(hex, s + 1, 64);
        hex[64] = '\0';
        if (espv_hash_from_hex(hex, 64, out + 32 * n) != ESPV_OK) return 0;
        n++;
    }
    return n;
}

/* electrum_test_vectors.json merkle_attack_vectors, read from the file: each forgery refused
 * with the status of the rule core's verify_tx_branch applies (ffi/tests/hardening.rs checks
 * the two agree). */
static void test_merkle_attacks(const char *json) {
    const char *end = json + strlen(json);
    const char *dup = strstr(json, "\"CVE_2012_2459\"");
    const char *inner = strstr(json, "\"CVE_2017_12842\"");
    CHECK(dup != NULL && inner != NULL);
    if (!dup || !inner) return;
    const char *dup_end = dup < inner ? inner : end;
    const char *inner_end = inner < dup ? dup : end;

    /* CVE-2012-2459: testnet3 block 4909055; the last tx at its position, then at the next,
     * where its duplicate would be a left sibling. */
    uint8_t txid[32], branch[3 * 32], root[32];
    CHECK(json_hash(dup, dup_end, "txid", txid) == 0);
    CHECK(json_hash(dup, dup_end, "merkle_root", root) == 0);
    size_t n = json_branch(dup, dup_end, branch, 3);
    long valid = json_number(dup, dup_end, "valid_pos"), forged_pos = json_number(dup, dup_end, "forged_pos");
    CHECK(n == 2 && valid == 2 && forged_pos == 3);
    CHECK_STATUS(espv_verify_merkle(txid, (uint32_t)valid, branch, n, root), ESPV_OK);
    CHECK_STATUS(espv_verify_merkle(txid, (uint32_t)forged_pos, branch, n, root), ESPV_ERR_MERKLE_DUPLICATE_SIBLING);

    /* CVE-2017-12842: a 64-byte transaction; its halves posing as an inner node. */
    uint8_t tx[64], forged[96];
    const char *tx_hex = after(inner, inner_end, "\"valid_64_byte_tx\": \"");
    CHECK(tx_hex != NULL && unhex(tx_hex, tx, 64) == 0);
    CHECK(json_hash(inner, inner_end, "merkle_root", root) == 0);
    n = json_branch(inner, inner_end, branch, 3);
    long pos = json_number(inner, inner_end, "leaf_pos");
    CHECK(n == 2 && pos == 3);
    CHECK_STATUS(espv_txid(tx, 64, txid), ESPV_OK);
    CHECK_STATUS(espv_verify_merkle(txid, (uint32_t)pos, branch, 2, root), ESPV_OK);
    memcpy(forged, tx + 32, 32); /* leaf = left half at 2 * pos, sibling = right half */
    memcpy(forged + 32, branch, 64);
    CHECK_STATUS(espv_verify_merkle(tx, (uint32_t)(2 * pos), forged, 3, root), ESPV_ERR_MERKLE_INNER_NODE_IS_TX);
    memcpy(forged, tx, 32); /* leaf = right half at 2 * pos + 1, sibling = left half */
    CHECK_STATUS(espv_verify_merkle(tx + 32, (uint32_t)(2 * pos + 1), forged, 3, root), ESPV_ERR_MERKLE_INNER_NODE_IS_TX);
    uint8_t root_out[32];
    CHECK_STATUS(espv_merkle_root(branch, 0, root_out), ESPV_NONE);
    CHECK_STATUS(espv_merkle_root(branch, 1, root_out), ESPV_OK);
    CHECK(memcmp(root_out, branch, 32) == 0); /* one leaf is its own root */
    memcpy(forged, branch, 32);
    memcpy(forged + 32, branch, 32);
    CHECK_STATUS(espv_merkle_root(forged, 2, root_out), ESPV_ERR_MERKLE_MUTATED); /* [a, a] */
    /* Too deep, position beyond the branch. */
    uint8_t deep[31 * 32];
    memset(deep, 7, sizeof deep);
    CHECK_STATUS(espv_verify_merkle(txid, 0, deep, 31, root), ESPV_ERR_MERKLE_TOO_DEEP);
    CHECK_STATUS(espv_verify_merkle(txid, (uint32_t)pos + 4, branch, 2, root), ESPV_ERR_MERKLE_INDEX_NOT_CONSUMED);
}

/* PROTOCOL.md section 6.4: mainnet header 5 proven against cp_height 8. */
static void test_header_proof(void) {
    uint8_t header[80], hash[32], branch[4 * 32], root[32];
    CHECK(unhex("0100000085144a84488ea88d221c8bd6c059da090e88f8a2c99690ee55dbba4e00000000e11c48fecdd9e72510ca84f023370c9a38bf91ac5cae88019bee94d24528526344c36649ffff001d1d03e477", header, 80) == 0);
    CHECK_STATUS(espv_header_hash(header, hash), ESPV_OK);
    CHECK(hash_is(hash, "000000009b7262315dbf071787ad3656097b892abffd1f95a1a022f896f533fc"));
    display_hash("000000004ebadb55ee9096c9a2f8880e09da59c0d68b1c228da88e48844a1485", branch);
    display_hash("96cbbc84783888e4cc971ae8acf86dd3c1a419370336bb3c634c97695a8c5ac9", branch + 32);
    display_hash("965ac94082cebbcffe458075651e9cc33ce703ab0115c72d9e8b1a9906b2b636", branch + 64);
    display_hash("89e5daa6950b895190716dd26054432b564ccdc2868188ba1da76de8e1dc7591", branch + 96);
    display_hash("e347b1c43fd9b5415bf0d92708db8284b78daf4d0e24f9c3405f45feb85e25db", root);
    CHECK_STATUS(espv_verify_header_proof(hash, 5, 8, branch, 4, root), ESPV_OK);
    CHECK_STATUS(espv_verify_header_proof(hash, 4, 8, branch, 4, root), ESPV_ERR_PROOF_ROOT_MISMATCH);
    CHECK_STATUS(espv_verify_header_proof(hash, 5, 16, branch, 4, root), ESPV_ERR_PROOF_BRANCH_LENGTH);
    CHECK_STATUS(espv_verify_header_proof(hash, 5, 8, branch, 3, root), ESPV_ERR_PROOF_BRANCH_LENGTH);
    CHECK_STATUS(espv_verify_header_proof(hash, 9, 8, branch, 4, root), ESPV_ERR_PROOF_HEIGHT_ABOVE_CP);
    /* branch[0] is block 4: at height 5 it would pair with a copy of itself. */
    CHECK_STATUS(espv_verify_header_proof(branch, 5, 8, branch, 4, root), ESPV_ERR_PROOF_UNEXPECTED_DUPLICATE);
    /* Height 8 is the last node of an odd level: its sibling must be a copy of itself. */
    CHECK_STATUS(espv_verify_header_proof(hash, 8, 8, branch, 4, root), ESPV_ERR_PROOF_MISSING_DUPLICATE);
}

/* electrum_test_vectors.json address_scripthash_mainnet: scriptPubKey -> script hash. */
static void test_script_hashes(const char *json) {
    const char *p = strstr(json, "\"address_scripthash_mainnet\"");
    int n = 0, ok = 0;
    while (p && (p = strstr(p, "\"scripthash\": \"")) != NULL) {
        const char *hash_hex = p + strlen("\"scripthash\": \"");
        const char *spk = strstr(hash_hex, "\"scriptPubKey\": \"");
        if (!spk) break;
        spk += strlen("\"scriptPubKey\": \"");
        size_t spk_len = (size_t)(strchr(spk, '"') - spk) / 2;
        uint8_t script[64], hash[32];
        char expected[65];
        if (spk_len > sizeof script || unhex(spk, script, spk_len) != 0) break;
        memcpy(expected, hash_hex, 64);
        expected[64] = '\0';
        n++;
        if (espv_script_hash(script, spk_len, hash) == ESPV_OK && hash_is(hash, expected)) ok++;
        p = spk;
    }
    printf("script hashes: %d of %d match\n", ok, n);
    CHECK(n == 9);
    CHECK(ok == n);
}

/* PROTOCOL.md section 6.2: statuses of a history, whole and streamed. */
static void test_status(void) {
    static const char *const txids[6] = {
        "a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347",
        "9c42f84b2fcdaff676ba25d9d4941741cc0d1a01cce0c23fdc4c0b2afa38431c",
        "770f2d4371b3fabb902dd9a103e2dd005fcd3971181078fca4a2a1d6ff127b30",
        "80b19848aed792565ab7c5a79b7c2a00fbf985741579396ebe0ab6098e607311",
        "e02a1dadfa83b996b24175df807b271ea5d02937ef5b35c195fac1e1bdc3198f",
        "bb4c8ab438c13b89ca80d1d5bee25b0b6b7f55673f4d801998ba97db161d9e85",
    };
    static const int64_t heights[6] = {2472, 2473, 2473, 0, 0, -1};
    espv_history_item items[6];
    espv_status_hasher h;
    uint8_t status[32], streamed[32];
    char hex[65];
    memset(items, 0, sizeof items);
    CHECK_STATUS(espv_status_hasher_init(&h), ESPV_OK);
    for (int i = 0; i < 6; i++) {
        display_hash(txids[i], items[i].txid);
        items[i].height = heights[i];
        CHECK_STATUS(espv_status_hasher_push(&h, items[i].txid, heights[i]), ESPV_OK);
    }
    CHECK_STATUS(espv_status_hash(items, 6, status), ESPV_OK);
    tohex(status, 32, hex);
    CHECK(strcmp(hex, "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d") == 0);
    CHECK_STATUS(espv_status_hasher_finish(&h, streamed), ESPV_OK);
    CHECK(memcmp(status, streamed, 32) == 0);
    CHECK_STATUS(espv_status_hasher_push(&h, items[0].txid, 1), ESPV_ERR_NOT_INITIALIZED);
    CHECK_STATUS(espv_status_hash(items, 0, status), ESPV_NONE);
    CHECK_STATUS(espv_status_hasher_init(&h), ESPV_OK);
    CHECK_STATUS(espv_status_hasher_finish(&h, streamed), ESPV_NONE);
    items[2].height = -2;
    CHECK_STATUS(espv_status_hash(items, 6, status), ESPV_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(espv_status_hash(NULL, 6, status), ESPV_ERR_NULL);
}

static void test_txid_and_hex(void) {
    /* The 64-byte transaction of the CVE-2017-12842 vector hashes to the root's left path;
     * here: a bad transaction and hex round trips. */
    uint8_t junk[10] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0}, out[32], back[32];
    CHECK_STATUS(espv_txid(junk, sizeof junk, out), ESPV_ERR_BAD_TRANSACTION);
    CHECK_STATUS(espv_txid(NULL, 0, out), ESPV_ERR_BAD_TRANSACTION);
    display_hash(MAINNET_TIP, out);
    char text[65];
    CHECK_STATUS(espv_hash_to_hex(out, text), ESPV_OK);
    CHECK(strcmp(text, MAINNET_TIP) == 0);
    CHECK_STATUS(espv_hash_from_hex(text, 64, back), ESPV_OK);
    CHECK(memcmp(out, back, 32) == 0);
    CHECK(out[31] == 0 && out[0] == 0xdb); /* display hex is reversed */
    CHECK_STATUS(espv_hash_from_hex("zz", 2, back), ESPV_ERR_BAD_HEX);
    CHECK_STATUS(espv_hash_from_hex(text, 63, back), ESPV_ERR_BAD_HEX);
}

static void test_decoders(const uint8_t *headers) {
    char hex[161], json[1024];
    uint8_t out[3 * 80];
    size_t n = 0;
    tohex(headers, 80, hex);
    /* blockchain.block.header */
    snprintf(json, sizeof json, "\"%s\"", hex);
    CHECK_STATUS(espv_decode_block_header((const uint8_t *)json, strlen(json), out), ESPV_OK);
    CHECK(memcmp(out, headers, 80) == 0);
    CHECK_STATUS(espv_decode_block_header((const uint8_t *)"\"00\"", 4, out), ESPV_ERR_BAD_RESULT);
    CHECK_STATUS(espv_decode_block_header((const uint8_t *)"{", 1, out), ESPV_ERR_BAD_RESULT);
    /* blockchain.block.headers, hex form (1.4) and list form (1.6). */
    char hex2[161];
    tohex(headers + 80, 80, hex2);
    snprintf(json, sizeof json, "{\"count\":2,\"hex\":\"%s%s\",\"max\":2016}", hex, hex2);
    CHECK_STATUS(espv_decode_block_headers((const uint8_t *)json, strlen(json), out, 3, &n), ESPV_OK);
    CHECK(n == 2 && memcmp(out, headers, 160) == 0);
    CHECK_STATUS(espv_decode_block_headers((const uint8_t *)json, strlen(json), out, 1, &n), ESPV_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    snprintf(json, sizeof json, "{\"count\":2,\"headers\":[\"%s\",\"%s\"],\"max\":2016}", hex, hex2);
    memset(out, 0, sizeof out);
    CHECK_STATUS(espv_decode_block_headers((const uint8_t *)json, strlen(json), out, 3, &n), ESPV_OK);
    CHECK(n == 2 && memcmp(out, headers, 160) == 0);
    /* blockchain.headers.subscribe */
    uint32_t height = 0;
    snprintf(json, sizeof json, "{\"hex\":\"%s\",\"height\":822528}", hex);
    CHECK_STATUS(espv_decode_headers_subscribe((const uint8_t *)json, strlen(json), &height, out), ESPV_OK);
    CHECK(height == 822528 && memcmp(out, headers, 80) == 0);
    /* history, status */
    const char *history = "[{\"tx_hash\":\"a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347\",\"height\":2472},"
                          "{\"tx_hash\":\"bb4c8ab438c13b89ca80d1d5bee25b0b6b7f55673f4d801998ba97db161d9e85\",\"height\":-1,\"fee\":250}]";
    espv_history_item items[2];
    CHECK_STATUS(espv_decode_history((const uint8_t *)history, strlen(history), items, 2, &n), ESPV_OK);
    CHECK(n == 2 && items[0].height == 2472 && !items[0].has_fee);
    CHECK(items[1].height == -1 && items[1].has_fee && items[1].fee == 250);
    CHECK(hash_is(items[0].txid, "a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347"));
    CHECK_STATUS(espv_decode_history((const uint8_t *)history, strlen(history), items, 1, &n), ESPV_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    CHECK_STATUS(espv_decode_history((const uint8_t *)"[]", 2, NULL, 0, &n), ESPV_OK);
    CHECK(n == 0);
    uint8_t status[32];
    CHECK_STATUS(espv_decode_status((const uint8_t *)"null", 4, status), ESPV_NONE);
    const char *st = "\"78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d\"";
    CHECK_STATUS(espv_decode_status((const uint8_t *)st, strlen(st), status), ESPV_OK);
    CHECK(status[0] == 0x78 && status[31] == 0x0d);
    /* merkle */
    const char *merkle = "{\"block_height\":450538,\"merkle\":[\"713d6c7e6ce7bbea708d61162231eaa8ecb31c4c5dd84f81c20409a90069cb24\","
                         "\"03dbaec78d4a52fbaf3c7aa5d3fccd9d8654f323940716ddf5ee2e4bda458fde\"],\"pos\":710}";
    uint32_t block_height = 0, pos = 0;
    uint8_t branch[2 * 32];
    CHECK_STATUS(espv_decode_merkle((const uint8_t *)merkle, strlen(merkle), &block_height, &pos, branch, 2, &n), ESPV_OK);
    CHECK(block_height == 450538 && pos == 710 && n == 2);
    CHECK(hash_is(branch, "713d6c7e6ce7bbea708d61162231eaa8ecb31c4c5dd84f81c20409a90069cb24"));
    CHECK_STATUS(espv_decode_merkle((const uint8_t *)merkle, strlen(merkle), &block_height, &pos, branch, 1, &n), ESPV_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 2);
    /* transaction, txid, fee rate */
    uint8_t tx[64], txid[32];
    size_t written = 0;
    const char *raw = "\"0200000001cb659c5528311901a7aada7db817bd6e3ce2f05d1c62c385b7caadb65fac75201234000000fabcdefa01abcd1234010000000405060708fabcdefa\"";
    CHECK_STATUS(espv_decode_transaction((const uint8_t *)raw, strlen(raw), tx, sizeof tx, &written), ESPV_OK);
    CHECK(written == 64 && tx[0] == 2);
    CHECK_STATUS(espv_decode_transaction((const uint8_t *)raw, strlen(raw), tx, 10, &written), ESPV_ERR_BUFFER_TOO_SMALL);
    CHECK(written == 64);
    CHECK_STATUS(espv_decode_txid((const uint8_t *)st, strlen(st), txid), ESPV_OK);
    CHECK(hash_is(txid, "78e96c6562cafa71c115503b9411fdfdc595a45031e2ab76ff75162fe1b0590d"));
    const char *warning = "\"the transaction was rejected by network rules\"";
    CHECK_STATUS(espv_decode_txid((const uint8_t *)warning, strlen(warning), txid), ESPV_ERR_BAD_RESULT);
    double rate = 0;
    CHECK_STATUS(espv_decode_fee_rate((const uint8_t *)"0.00012", 7, &rate), ESPV_OK);
    CHECK(rate > 0.000119 && rate < 0.000121);
    CHECK_STATUS(espv_decode_fee_rate((const uint8_t *)"-1", 2, &rate), ESPV_NONE);
    CHECK_STATUS(espv_decode_fee_rate(NULL, 3, &rate), ESPV_ERR_NULL);
}

/* A typed out pointer not aligned for its type is refused before anything is written. */
static void test_misaligned(const uint8_t *headers) {
    static _Alignas(8) uint8_t room[512];
    memset(room, 0x5a, sizeof room);
    espv_tip tip;
    uint32_t bad = 0, u32 = 0;
    size_t n = 0;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, headers, 10, MISALIGNED(espv_tip, room), &bad), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, MAINNET_START, headers, 10, &tip, MISALIGNED(uint32_t, room)), ESPV_ERR_MISALIGNED);
    espv_verifier v;
    CHECK_STATUS(espv_verifier_init(&v, ESPV_NETWORK_MAINNET, MAINNET_START), ESPV_OK);
    CHECK_STATUS(espv_verifier_tip(&v, MISALIGNED(espv_tip, room), NULL), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_verifier_tip(&v, NULL, MISALIGNED(uint32_t, room)), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_verifier_init(MISALIGNED(espv_verifier, room), ESPV_NETWORK_MAINNET, MAINNET_START), ESPV_ERR_MISALIGNED);

    const char *merkle = "{\"block_height\":450538,\"merkle\":[\"713d6c7e6ce7bbea708d61162231eaa8ecb31c4c5dd84f81c20409a90069cb24\"],\"pos\":710}";
    uint8_t branch[32] = {0};
    CHECK_STATUS(espv_decode_merkle((const uint8_t *)merkle, strlen(merkle), MISALIGNED(uint32_t, room), &u32, branch, 1, &n), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_decode_merkle((const uint8_t *)merkle, strlen(merkle), &u32, MISALIGNED(uint32_t, room), branch, 1, &n), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_decode_merkle((const uint8_t *)merkle, strlen(merkle), &u32, &u32, branch, 1, MISALIGNED(size_t, room)), ESPV_ERR_MISALIGNED);
    CHECK(u32 == 0 && n == 0 && branch[0] == 0);
    const char *history = "[{\"tx_hash\":\"a6c9c361bd0bc536d6a22648efbf8f9b200e425ef6c3a7a9669dc444c532a347\",\"height\":2472}]";
    espv_history_item items[1];
    CHECK_STATUS(espv_decode_history((const uint8_t *)history, strlen(history), MISALIGNED(espv_history_item, room), 1, &n), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_decode_history((const uint8_t *)history, strlen(history), items, 1, MISALIGNED(size_t, room)), ESPV_ERR_MISALIGNED);
    uint8_t out[80];
    memset(out, 0, sizeof out);
    CHECK_STATUS(espv_decode_block_headers((const uint8_t *)"{}", 2, out, 1, MISALIGNED(size_t, room)), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_decode_transaction((const uint8_t *)"\"00\"", 4, out, sizeof out, MISALIGNED(size_t, room)), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_decode_fee_rate((const uint8_t *)"0.0001", 6, MISALIGNED(double, room)), ESPV_ERR_MISALIGNED);
    char json[256], hex[161];
    tohex(headers, 80, hex);
    snprintf(json, sizeof json, "{\"hex\":\"%s\",\"height\":822528}", hex);
    CHECK_STATUS(espv_decode_headers_subscribe((const uint8_t *)json, strlen(json), MISALIGNED(uint32_t, room), out), ESPV_ERR_MISALIGNED);
    CHECK(out[0] == 0); /* the header was not written either */
    /* A typed input array. */
    CHECK_STATUS(espv_status_hash(MISALIGNED(const espv_history_item, room), 1, out), ESPV_ERR_MISALIGNED);
    int untouched = 1;
    for (size_t i = 0; i < sizeof room; i++) untouched &= room[i] == 0x5a;
    CHECK(untouched);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s HEADERS_822528.bin MERKLE_VECTORS.json ELECTRUM_TEST_VECTORS.json\n", argv[0]);
        return 2;
    }
    size_t headers_len, merkle_len, vectors_len;
    uint8_t *headers = read_file(argv[1], &headers_len);
    char *merkle = (char *)read_file(argv[2], &merkle_len);
    char *vectors = (char *)read_file(argv[3], &vectors_len);

    test_status_names();
    test_headers(headers, headers_len);
    test_merkle_vectors(merkle);
    test_merkle_attacks(vectors);
    test_header_proof();
    test_script_hashes(vectors);
    test_status();
    test_txid_and_hex();
    test_decoders(headers);
    test_misaligned(headers);

    free(headers);
    free(merkle);
    free(vectors);
    return finish("test_verify");
}
