/*
 * A full session against a real ElectrumX, through a socket this program owns:
 *   test_live HOST PORT TIP_HEIGHT SCRIPT_HEX...
 * (scripts/c-test.sh starts the test kit's regtest chain and ElectrumX with testkit-serve and
 * passes its address, its tip height and the scriptPubKeys of some of its wallet addresses).
 *
 * Negotiates, then: the tip header (headers.subscribe); every header from genesis to the tip
 * streamed and verified header by header, then again as one segment with
 * espv_verify_headers; a buffered headers chunk and single headers equal to the verified
 * ones; a cp_height proof checked against the root computed over the verified headers; for
 * each script its status, its history (buffered and streamed) hashed to that status, and for
 * each confirmed transaction its merkle branch into the verified header and its raw bytes
 * hashed to its txid; a fee estimate. Exits 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_HEADERS 2016
#define MAX_ROWS 256

static _Alignas(ESPV_SESSION_ALIGN) uint8_t g_mem[ESPV_SESSION_SIZE];
static espv_session *g_s;
static int g_sock = -1;
static uint8_t g_chain[80 * MAX_HEADERS]; /* verified headers, height = index */
static uint32_t g_chain_len;

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int connect_to(const char *host, const char *port) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, port, &hints, &res) != 0) return -1;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* Sends everything the session has queued. */
static int flush_output(void) {
    uint8_t buf[2048];
    size_t n = 0;
    while (espv_session_take_output(g_s, buf, sizeof buf, &n) == ESPV_OK && n > 0) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = send(g_sock, buf + off, n - off, 0);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return -1;
            off += (size_t)w;
        }
    }
    return 0;
}

/* What a step waits for: its handler sees every event and sets `done`. */
typedef struct step step;
struct step {
    void (*on_event)(step *st, const espv_event *ev);
    int done;
    int failed;
    uint32_t tag;
    void *ctx;
};

/* Events no step asked for: notifications are fine, anything fatal ends the test. */
static void on_other(step *st, const espv_event *ev) {
    if (ev->kind == ESPV_EVENT_FAILED || ev->kind == ESPV_EVENT_PROTOCOL_ERROR ||
        ev->kind == ESPV_EVENT_TIMED_OUT || ev->kind == ESPV_EVENT_SERVER_ERROR) {
        fprintf(stderr, "unexpected event kind %u (reason %s, tag %u)\n", (unsigned)ev->kind,
                espv_status_name(ev->reason), (unsigned)ev->tag);
        st->failed = 1;
        st->done = 1;
    }
}

static void drain(step *st) {
    espv_event ev;
    while (espv_session_poll_event(g_s, &ev) == ESPV_OK) {
        if (ev.kind == ESPV_EVENT_READY || ev.tag == st->tag || ev.kind == ESPV_EVENT_FAILED)
            st->on_event(st, &ev);
        else
            on_other(st, &ev);
    }
}

/* The caller's loop, until the step is done or 60 s pass. */
static int run(step *st) {
    uint64_t give_up = now_ms() + 60000;
    while (!st->done) {
        if (flush_output() != 0) {
            fprintf(stderr, "send failed\n");
            return -1;
        }
        uint64_t now = now_ms(), deadline = 0;
        if (now >= give_up) {
            fprintf(stderr, "step with tag %u did not finish in 60 s\n", (unsigned)st->tag);
            return -1;
        }
        uint64_t wait = give_up - now;
        if (espv_session_timeout(g_s, &deadline) == ESPV_OK) wait = deadline > now ? deadline - now : 0;
        if (wait > 1000) wait = 1000;
        struct pollfd p = {.fd = g_sock, .events = POLLIN, .revents = 0};
        int ready = poll(&p, 1, (int)wait);
        if (ready < 0 && errno != EINTR) return -1;
        if (ready > 0) {
            uint8_t rx[4096];
            ssize_t got = recv(g_sock, rx, sizeof rx, 0);
            if (got <= 0) {
                fprintf(stderr, "connection closed by the server\n");
                return -1;
            }
            size_t off = 0;
            while (off < (size_t)got) {
                size_t used = 0;
                if (espv_session_feed(g_s, rx + off, (size_t)got - off, now_ms(), &used) != ESPV_OK) return -1;
                off += used;
                drain(st);
            }
        }
        espv_session_handle_timeout(g_s, now_ms());
        drain(st);
    }
    return st->failed ? -1 : 0;
}

/* ----- steps ----- */

static void on_ready(step *st, const espv_event *ev) {
    if (ev->kind == ESPV_EVENT_READY) {
        printf("live: negotiated protocol %u.%u\n", (unsigned)ev->version.major, (unsigned)ev->version.minor);
        st->done = 1;
    } else {
        on_other(st, ev);
    }
}

/* A buffered response: copies the result for the step's owner. */
typedef struct {
    char result[ESPV_LINE_CAPACITY + 1];
    size_t len;
    int server_error;
} response;

static void on_response(step *st, const espv_event *ev) {
    response *r = st->ctx;
    if (ev->kind == ESPV_EVENT_RESPONSE) {
        memcpy(r->result, ev->data, ev->data_len);
        r->result[ev->data_len] = '\0';
        r->len = ev->data_len;
        st->done = 1;
    } else if (ev->kind == ESPV_EVENT_SERVER_ERROR) {
        r->server_error = 1;
        snprintf(r->result, sizeof r->result, "%.*s", (int)ev->data_len, (const char *)ev->data);
        r->len = strlen(r->result);
        st->done = 1;
    } else {
        on_other(st, ev);
    }
}

static response g_resp;
static uint32_t g_next_tag = 100;

/* Sends one request (`call`, whose tag is TAG) and runs until its answer is in g_resp;
 * returns -1 from the enclosing function if it does not come. */
#define REQUEST(call)                                                                     \
    do {                                                                                  \
        g_resp.len = 0;                                                                   \
        g_resp.server_error = 0;                                                          \
        int rc_ = (call);                                                                 \
        step st_ = {on_response, 0, 0, g_next_tag++, &g_resp};                            \
        CHECK_STATUS(rc_, ESPV_OK);                                                       \
        if (rc_ != ESPV_OK || run(&st_) != 0) {                                           \
            fprintf(stderr, "request at line %d failed\n", __LINE__);                     \
            return -1;                                                                    \
        }                                                                                 \
    } while (0)
#define TAG (g_next_tag)

typedef struct {
    espv_verifier verifier;
    uint32_t headers;
    uint32_t items;
    int verify_failed;
} header_stream;

static void on_header_stream(step *st, const espv_event *ev) {
    header_stream *hs = st->ctx;
    if (ev->kind == ESPV_EVENT_STREAM_HEADER) {
        if (ev->height != (int64_t)hs->headers || hs->headers >= MAX_HEADERS) {
            hs->verify_failed = 1;
            return;
        }
        if (espv_verifier_push(&hs->verifier, ev->header, NULL) != ESPV_OK) hs->verify_failed = 1;
        memcpy(g_chain + 80 * hs->headers, ev->header, 80);
        hs->headers++;
    } else if (ev->kind == ESPV_EVENT_STREAM_END) {
        hs->items = ev->items;
        st->done = 1;
    } else {
        on_other(st, ev);
    }
}

typedef struct {
    espv_status_hasher hasher;
    uint32_t rows;
    int bad;
} history_stream;

static void on_history_stream(step *st, const espv_event *ev) {
    history_stream *hs = st->ctx;
    if (ev->kind == ESPV_EVENT_STREAM_HISTORY_ITEM) {
        if (espv_status_hasher_push(&hs->hasher, ev->hash, ev->height) != ESPV_OK) hs->bad = 1;
        hs->rows++;
    } else if (ev->kind == ESPV_EVENT_STREAM_END) {
        st->done = 1;
    } else {
        on_other(st, ev);
    }
}

static int g_merkle_proofs, g_rows, g_txs;

static int check_script(const char *script_hex) {
    uint8_t script[128];
    size_t len = strlen(script_hex) / 2;
    if (len == 0 || len > sizeof script || unhex(script_hex, script, len) != 0) {
        fprintf(stderr, "bad script hex %s\n", script_hex);
        return -1;
    }
    uint64_t now = now_ms();
    /* Its status now. */
    REQUEST(espv_request_script_subscribe(g_s, now, script, len, TAG, NULL));
    CHECK(!g_resp.server_error);
    uint8_t status[32], recomputed[32], streamed[32];
    int has_status = espv_decode_status((const uint8_t *)g_resp.result, g_resp.len, status);
    CHECK(has_status == ESPV_OK || has_status == ESPV_NONE);

    /* Its history, hashed to that status. */
    REQUEST(espv_request_script_history(g_s, now_ms(), script, len, TAG, NULL));
    static espv_history_item rows[MAX_ROWS];
    size_t n = 0;
    CHECK_STATUS(espv_decode_history((const uint8_t *)g_resp.result, g_resp.len, rows, MAX_ROWS, &n), ESPV_OK);
    int st = espv_status_hash(rows, n, recomputed);
    CHECK(st == has_status);
    if (st == ESPV_OK && has_status == ESPV_OK) CHECK(memcmp(status, recomputed, 32) == 0);

    /* The same history streamed, hashed row by row. */
    history_stream hs;
    memset(&hs, 0, sizeof hs);
    CHECK_STATUS(espv_status_hasher_init(&hs.hasher), ESPV_OK);
    uint32_t tag = g_next_tag++;
    CHECK_STATUS(espv_request_script_history_streamed(g_s, now_ms(), script, len, tag, NULL), ESPV_OK);
    step s = {on_history_stream, 0, 0, tag, &hs};
    if (run(&s) != 0) return -1;
    CHECK(!hs.bad && hs.rows == n);
    CHECK(espv_status_hasher_finish(&hs.hasher, streamed) == has_status);
    if (has_status == ESPV_OK) CHECK(memcmp(status, streamed, 32) == 0);

    /* Every confirmed transaction: merkle branch into its verified header, raw bytes to txid. */
    for (size_t i = 0; i < n; i++) {
        if (rows[i].height <= 0) continue;
        uint32_t height = (uint32_t)rows[i].height;
        CHECK(height < g_chain_len);
        if (height >= g_chain_len) continue;
        REQUEST(espv_request_merkle(g_s, now_ms(), rows[i].txid, height, TAG, NULL));
        uint32_t block_height = 0, pos = 0;
        uint8_t branch[32 * 32], root[32];
        size_t depth = 0;
        CHECK_STATUS(espv_decode_merkle((const uint8_t *)g_resp.result, g_resp.len, &block_height, &pos, branch, 32, &depth), ESPV_OK);
        CHECK(block_height == height);
        CHECK_STATUS(espv_header_merkle_root(g_chain + 80 * height, root), ESPV_OK);
        CHECK_STATUS(espv_verify_merkle(rows[i].txid, pos, branch, depth, root), ESPV_OK);
        CHECK(espv_verify_merkle(rows[i].txid, pos ^ 1, branch, depth, root) < 0);
        g_merkle_proofs++;

        REQUEST(espv_request_transaction(g_s, now_ms(), rows[i].txid, TAG, NULL));
        static uint8_t raw[8192];
        size_t raw_len = 0;
        uint8_t txid[32];
        CHECK_STATUS(espv_decode_transaction((const uint8_t *)g_resp.result, g_resp.len, raw, sizeof raw, &raw_len), ESPV_OK);
        CHECK_STATUS(espv_txid(raw, raw_len, txid), ESPV_OK);
        CHECK(memcmp(txid, rows[i].txid, 32) == 0);
        g_txs++;
    }
    g_rows += (int)n;
    char shown[65];
    espv_script_hash(script, len, recomputed);
    espv_hash_to_hex(recomputed, shown);
    printf("live: script %s: %zu history rows, status %s\n", shown, n, has_status == ESPV_OK ? "recomputed" : "null (no history)");
    return 0;
}

static int live(uint32_t expected_tip, int n_scripts, char **scripts) {
    espv_config cfg;
    CHECK_STATUS(espv_config_default(&cfg, ESPV_NETWORK_REGTEST), ESPV_OK);
    cfg.client_name = "electrum-spv-c-test";
    CHECK_STATUS(espv_session_init(g_mem, sizeof g_mem, ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT, &cfg, now_ms()), ESPV_OK);
    g_s = (espv_session *)g_mem;
    step ready = {on_ready, 0, 0, 0xFFFFFFFFu, NULL};
    if (run(&ready) != 0) return -1;
    CHECK_STATUS(espv_session_state(g_s, NULL), ESPV_OK);

    /* The server's tip. */
    REQUEST(espv_request_headers_subscribe(g_s, now_ms(), TAG, NULL));
    uint32_t tip_height = 0;
    uint8_t tip_header[80], tip_hash[32];
    CHECK_STATUS(espv_decode_headers_subscribe((const uint8_t *)g_resp.result, g_resp.len, &tip_height, tip_header), ESPV_OK);
    CHECK(tip_height == expected_tip);
    CHECK(tip_height < MAX_HEADERS);
    if (tip_height >= MAX_HEADERS) return -1;
    espv_header_hash(tip_header, tip_hash);

    /* Every header from genesis, streamed and verified as it arrives. */
    static header_stream hs;
    CHECK_STATUS(espv_verifier_init(&hs.verifier, ESPV_NETWORK_REGTEST, 0), ESPV_OK);
    uint32_t tag = g_next_tag++;
    CHECK_STATUS(espv_request_block_headers_streamed(g_s, now_ms(), 0, tip_height + 1, tag, NULL), ESPV_OK);
    step headers = {on_header_stream, 0, 0, tag, &hs};
    if (run(&headers) != 0) return -1;
    CHECK(!hs.verify_failed);
    CHECK(hs.headers == tip_height + 1 && hs.items == hs.headers);
    espv_tip tip, tip2;
    CHECK_STATUS(espv_verifier_tip(&hs.verifier, &tip, NULL), ESPV_OK);
    CHECK(tip.height == tip_height);
    CHECK(memcmp(tip.hash, tip_hash, 32) == 0);
    g_chain_len = hs.headers;

    /* The same chain as one segment. */
    uint32_t bad = 0;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_REGTEST, 0, g_chain, g_chain_len, &tip2, &bad), ESPV_OK);
    CHECK(tip2.height == tip.height && memcmp(tip2.hash, tip.hash, 32) == 0);
    CHECK(memcmp(tip2.chainwork, tip.chainwork, 32) == 0);
    /* A tampered copy fails at the tampered height. */
    static uint8_t tampered[sizeof g_chain];
    memcpy(tampered, g_chain, 80 * (size_t)g_chain_len);
    tampered[80 * 50 + 4] ^= 1;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_REGTEST, 0, tampered, g_chain_len, NULL, &bad), ESPV_ERR_PREV_HASH_MISMATCH);
    CHECK(bad == 50);

    /* A buffered chunk and single headers agree with the verified chain. */
    uint32_t chunk = g_chain_len < 50 ? g_chain_len : 50;
    REQUEST(espv_request_block_headers(g_s, now_ms(), 0, chunk, 0, TAG, NULL));
    static uint8_t buffered[80 * 50];
    size_t count = 0;
    CHECK_STATUS(espv_decode_block_headers((const uint8_t *)g_resp.result, g_resp.len, buffered, 50, &count), ESPV_OK);
    CHECK(count == chunk && memcmp(buffered, g_chain, 80 * count) == 0);
    REQUEST(espv_request_block_header(g_s, now_ms(), 5, 0, TAG, NULL));
    uint8_t header5[80];
    CHECK_STATUS(espv_decode_block_header((const uint8_t *)g_resp.result, g_resp.len, header5), ESPV_OK);
    CHECK(memcmp(header5, g_chain + 80 * 5, 80) == 0);

    /* A cp_height proof against the root of the verified headers' hashes. */
    static uint8_t hashes[32 * MAX_HEADERS];
    for (uint32_t h = 0; h < g_chain_len; h++) espv_header_hash(g_chain + 80 * h, hashes + 32 * h);
    uint8_t our_root[32], server_root[32], branch[32 * 32], proven[80], hash5[32];
    CHECK_STATUS(espv_merkle_root(hashes, g_chain_len, our_root), ESPV_OK);
    REQUEST(espv_request_block_header(g_s, now_ms(), 5, tip_height, TAG, NULL));
    size_t n = 0;
    CHECK_STATUS(espv_decode_block_header_proof((const uint8_t *)g_resp.result, g_resp.len, proven, branch, 32, &n, server_root), ESPV_OK);
    CHECK(memcmp(proven, g_chain + 80 * 5, 80) == 0);
    CHECK(memcmp(server_root, our_root, 32) == 0);
    espv_header_hash(proven, hash5);
    CHECK_STATUS(espv_verify_header_proof(hash5, 5, tip_height, branch, n, our_root), ESPV_OK);
    CHECK(espv_verify_header_proof(hash5, 6, tip_height, branch, n, our_root) < 0);

    /* Scripts: status, history, proofs. */
    for (int i = 0; i < n_scripts; i++) {
        if (check_script(scripts[i]) != 0) return -1;
    }
    CHECK(g_rows > 0);
    CHECK(g_merkle_proofs > 0);

    /* A fee estimate: a number, -1, or a server error from a node that has none. */
    REQUEST(espv_request_estimate_fee(g_s, now_ms(), 2, TAG, NULL));
    double rate = 0;
    if (!g_resp.server_error) {
        int r = espv_decode_fee_rate((const uint8_t *)g_resp.result, g_resp.len, &rate);
        CHECK(r == ESPV_OK || r == ESPV_NONE);
    }

    CHECK(espv_session_in_flight(g_s) == 0);
    CHECK(espv_session_dropped_events(g_s) == 0);
    char shown[65];
    espv_hash_to_hex(tip.hash, shown);
    printf("live: ok tip %u %s: %u headers verified, cp_height proof checked, %d history rows, %d merkle proofs, %d txids\n",
           (unsigned)tip.height, shown, (unsigned)g_chain_len, g_rows, g_merkle_proofs, g_txs);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: %s HOST PORT TIP_HEIGHT SCRIPT_HEX...\n", argv[0]);
        return 2;
    }
    g_sock = connect_to(argv[1], argv[2]);
    if (g_sock < 0) {
        fprintf(stderr, "cannot connect to %s:%s\n", argv[1], argv[2]);
        return 2;
    }
    int rc = live((uint32_t)strtoul(argv[3], NULL, 10), argc - 4, argv + 4);
    close(g_sock);
    if (rc != 0) g_failures++;
    return finish("test_live");
}
