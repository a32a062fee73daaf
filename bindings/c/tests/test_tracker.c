/*
 * Core's script tracker driven from C over a session and a socket this program owns, against
 * the test kit's mainnet replay server (real blocks and headers of periods 0 and 411, as
 * electrs: protocol 1.4, no cp_height):
 *   test_tracker HOST PORT HEADERS_0 HEADERS_822528 EXPECTED [LIE]
 * HEADERS_0 and HEADERS_822528 are core/tests/data/mainnet/headers_0_10236.bin and
 * headers_822528_830592.bin: this program verifies both with espv_verify_headers and gives
 * the tracker the headers it asks for from them (espv_tracker_header_wanted,
 * espv_tracker_provide_header). EXPECTED is written by scripts/c-test.sh from the replay
 * server's examples (histories computed from the blocks, not through the server's index):
 *   script NAME SCRIPT_HEX STATUS_HEX|none N
 *   tx TXID HEIGHT BLOCK_HASH            (N lines, display hex, chain order)
 * Without LIE: every script's verified history (espv_tracker_history_get, sorted by height
 * and position) and verified status equal the expected ones, each transaction reported once
 * as ESPV_TRACKER_EVENT_CONFIRMED, no lie. With LIE (an ESPV_LIE_* name): the server lies,
 * and the tracker must report that lie, no other, and no transaction outside the real
 * histories. Exits 0 only if every check passed.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common.h"

#define MAX_SCRIPTS 16
#define MAX_TXS 64
#define TX_SLOTS 256
#define MAX_EVENTS 512

static _Alignas(ESPV_SESSION_ALIGN) uint8_t g_session_mem[ESPV_SESSION_SIZE];
static _Alignas(ESPV_TRACKER_ALIGN) uint8_t g_tracker_mem[ESPV_TRACKER_SIZE];
static _Alignas(ESPV_TRACKER_SLOT_ALIGN) uint8_t g_scripts[MAX_SCRIPTS * ESPV_TRACKER_SCRIPT_SLOT_SIZE];
static _Alignas(ESPV_TRACKER_SLOT_ALIGN) uint8_t g_txs[TX_SLOTS * ESPV_TRACKER_TX_SLOT_SIZE];
static espv_session *g_s;
static espv_tracker *g_t;
static int g_sock = -1;

typedef struct {
    char txid[65];
    long height;
    char block[65];
} expected_tx;

typedef struct {
    char name[64];
    uint8_t script[ESPV_TRACKER_MAX_SCRIPT_LEN];
    size_t script_len;
    char status[65]; /* "" for none */
    size_t n;
    expected_tx txs[MAX_TXS];
    uint32_t index;
} expected_script;

static expected_script g_exp[MAX_SCRIPTS];
static size_t g_n_exp;
static espv_tracker_event g_events[MAX_EVENTS];
static size_t g_n_events;
static uint8_t *g_low, *g_high;
static size_t g_low_len, g_high_len;
static unsigned g_headers_given;

#define HIGH_START 822528u

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

/* Reads EXPECTED (see the top); 0 on success. */
static int read_expected(const char *path) {
    size_t len = 0;
    char *text = (char *)read_file(path, &len);
    char *save = NULL;
    expected_script *cur = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char a[200], b[200], c[200];
        unsigned long n = 0;
        long height = 0;
        if (sscanf(line, "script %63s %199s %199s %lu", a, b, c, &n) == 4) {
            if (g_n_exp == MAX_SCRIPTS || strlen(b) / 2 > ESPV_TRACKER_MAX_SCRIPT_LEN) break;
            cur = &g_exp[g_n_exp++];
            snprintf(cur->name, sizeof cur->name, "%.63s", a);
            cur->script_len = strlen(b) / 2;
            if (unhex(b, cur->script, cur->script_len) != 0) break;
            snprintf(cur->status, sizeof cur->status, "%.64s", strcmp(c, "none") == 0 ? "" : c);
        } else if (cur && sscanf(line, "tx %64s %ld %64s", a, &height, b) == 3 && cur->n < MAX_TXS) {
            expected_tx *t = &cur->txs[cur->n++];
            snprintf(t->txid, sizeof t->txid, "%.64s", a);
            t->height = height;
            snprintf(t->block, sizeof t->block, "%.64s", b);
        } else {
            fprintf(stderr, "bad line in %s: %s\n", path, line);
            free(text);
            return -1;
        }
    }
    free(text);
    return g_n_exp > 0 ? 0 : -1;
}

/* The verified header at `height`, or NULL. */
static const uint8_t *header_at(uint32_t height) {
    if (height >= HIGH_START) {
        size_t i = height - HIGH_START;
        return (i + 1) * 80 <= g_high_len ? g_high + i * 80 : NULL;
    }
    return ((size_t)height + 1) * 80 <= g_low_len ? g_low + (size_t)height * 80 : NULL;
}

static void record(const espv_tracker_event *e) {
    if (g_n_events < MAX_EVENTS) g_events[g_n_events++] = *e;
}

/* Drains the session's events through the tracker, then the tracker's removals; -1 if the
 * session failed. */
static int drain(void) {
    espv_event ev;
    espv_tracker_event tev;
    int rc;
    while ((rc = espv_session_poll_event_tracked(g_s, g_t, &ev, &tev)) == ESPV_OK) {
        if (ev.kind == ESPV_EVENT_FAILED) {
            fprintf(stderr, "session failed: %s\n", espv_status_name(ev.reason));
            return -1;
        }
        if (tev.kind != ESPV_TRACKER_EVENT_NONE) record(&tev);
    }
    CHECK_STATUS(rc, ESPV_NONE);
    while (espv_tracker_poll_event(g_t, &tev) == ESPV_OK) record(&tev);
    return 0;
}

/* Whether a lie named `lie` was reported. */
static int saw_lie(const char *lie) {
    for (size_t i = 0; i < g_n_events; i++)
        if (g_events[i].kind == ESPV_TRACKER_EVENT_SERVER_LIED &&
            strcmp(espv_tracker_lie_name(g_events[i].lie), lie) == 0)
            return 1;
    return 0;
}

/* The caller's loop until synced (no LIE) or LIE is reported, or 60 s. */
static int run(const char *lie) {
    uint64_t give_up = now_ms() + 60000;
    for (;;) {
        int rc = espv_tracker_poll(g_t, g_s, now_ms());
        CHECK_STATUS(rc, ESPV_OK);
        if (rc != ESPV_OK || flush_output() != 0) return -1;
        bool synced = false;
        CHECK_STATUS(espv_tracker_is_synced(g_t, &synced), ESPV_OK);
        if (lie ? saw_lie(lie) : synced) return 0;
        uint64_t now = now_ms(), deadline = 0;
        if (now >= give_up) {
            fprintf(stderr, "not done after 60 s (%zu tracker events)\n", g_n_events);
            return -1;
        }
        uint64_t wait = 200;
        if (espv_session_timeout(g_s, &deadline) == ESPV_OK && deadline < now + wait)
            wait = deadline > now ? deadline - now : 0;
        if (espv_tracker_poll_timeout(g_t, &deadline) == ESPV_OK && deadline < now + wait)
            wait = deadline > now ? deadline - now : 0;
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
                if (drain() != 0) return -1;
            }
        }
        espv_session_handle_timeout(g_s, now_ms());
        if (drain() != 0) return -1;
        uint32_t height;
        while (espv_tracker_header_wanted(g_t, &height) == ESPV_OK) {
            const uint8_t *h = header_at(height);
            if (!h) {
                fprintf(stderr, "header %u wanted, not in the verified files\n", (unsigned)height);
                return -1;
            }
            CHECK_STATUS(espv_tracker_provide_header(g_t, height, h), ESPV_OK);
            g_headers_given++;
        }
    }
}

/* Whether `txid` (internal order) is in script `e`'s real history. */
static int in_history(const expected_script *e, const uint8_t txid[32]) {
    for (size_t i = 0; i < e->n; i++)
        if (hash_is(txid, e->txs[i].txid)) return 1;
    return 0;
}

static int by_chain_order(const void *a, const void *b) {
    const espv_tracker_tx *x = a, *y = b;
    if (x->height != y->height) return x->height < y->height ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static void check_honest(void) {
    size_t confirmed = 0;
    for (size_t k = 0; k < g_n_exp; k++) {
        expected_script *e = &g_exp[k];
        espv_tracker_tx rows[MAX_TXS + 1];
        size_t n = 0;
        while (n <= MAX_TXS && espv_tracker_history_get(g_t, e->index, n, &rows[n]) == ESPV_OK) n++;
        qsort(rows, n, sizeof rows[0], by_chain_order);
        CHECK(n == e->n);
        for (size_t i = 0; i < n && i < e->n; i++) {
            char block_hex[65];
            CHECK(rows[i].confirmed);
            CHECK(hash_is(rows[i].txid, e->txs[i].txid));
            CHECK(rows[i].height == e->txs[i].height);
            CHECK(espv_hash_to_hex(rows[i].block_hash, block_hex) == ESPV_OK &&
                  strcmp(block_hex, e->txs[i].block) == 0);
        }
        uint8_t status[32];
        bool has = false;
        CHECK_STATUS(espv_tracker_verified_status(g_t, e->index, status, &has), ESPV_OK);
        char status_hex[65];
        tohex(status, 32, status_hex);
        CHECK(has == (e->status[0] != '\0'));
        if (has) CHECK(strcmp(status_hex, e->status) == 0);
        size_t reported = 0;
        for (size_t i = 0; i < g_n_events; i++) {
            const espv_tracker_event *ev = &g_events[i];
            if (ev->kind != ESPV_TRACKER_EVENT_CONFIRMED || ev->script != e->index) continue;
            reported++;
            CHECK(ev->has_txid && in_history(e, ev->txid));
        }
        CHECK(reported == e->n);
        confirmed += reported;
        printf("tracker: %s: %zu transactions verified, status %s\n", e->name, n, has ? status_hex : "none");
    }
    for (size_t i = 0; i < g_n_events; i++) {
        if (g_events[i].kind == ESPV_TRACKER_EVENT_SERVER_LIED)
            fprintf(stderr, "an honest server was caught: %s\n", espv_tracker_lie_name(g_events[i].lie));
        CHECK(g_events[i].kind != ESPV_TRACKER_EVENT_SERVER_LIED);
    }
    espv_tracker_stats st;
    CHECK_STATUS(espv_tracker_get_stats(g_t, &st), ESPV_OK);
    CHECK(st.txs_done == confirmed && st.txs_pending == 0 && st.scripts_pending == 0);
    CHECK(g_headers_given > 0);
    printf("tracker: %zu scripts, %zu transactions verified, %u headers given\n", g_n_exp, confirmed,
           g_headers_given);
}

static void check_lie(const char *lie) {
    size_t lies = 0;
    for (size_t i = 0; i < g_n_events; i++) {
        const espv_tracker_event *ev = &g_events[i];
        if (ev->script >= g_n_exp && ev->kind != ESPV_TRACKER_EVENT_HEADER_WANTED) {
            CHECK(ev->script < g_n_exp);
            continue;
        }
        const expected_script *e = &g_exp[ev->script];
        if (ev->kind == ESPV_TRACKER_EVENT_CONFIRMED || ev->kind == ESPV_TRACKER_EVENT_UNCONFIRMED) {
            /* Nothing the server made up is ever reported as verified. */
            CHECK(in_history(e, ev->txid));
        }
        if (ev->kind != ESPV_TRACKER_EVENT_SERVER_LIED) continue;
        lies++;
        const char *name = espv_tracker_lie_name(ev->lie);
        if (strcmp(name, lie) != 0) fprintf(stderr, "%s: another lie reported: %s\n", e->name, name);
        CHECK(strcmp(name, lie) == 0);
        if (ev->lie == ESPV_LIE_DUPLICATE_TXID) {
            /* The replay lists the first entry twice. */
            CHECK(ev->has_txid && hash_is(ev->txid, e->txs[0].txid));
        } else if (ev->lie == ESPV_LIE_UNRELATED) {
            CHECK(ev->has_txid && !in_history(e, ev->txid));
        } else if (ev->lie == ESPV_LIE_MERKLE) {
            CHECK(ev->has_txid && strncmp(espv_status_name(ev->reason), "ESPV_ERR_MERKLE_", 16) == 0);
        }
        printf("tracker: %s: %s (reason %s)\n", e->name, name, espv_status_name(ev->reason));
    }
    CHECK(lies > 0);
}

/* Pointer checks a C caller can get wrong, before the run. */
static void check_refusals(void) {
    /* Zeroed: memory that was never initialized must be refused without valgrind noise. */
    _Alignas(ESPV_TRACKER_ALIGN) uint8_t small[ESPV_TRACKER_SIZE] = {0};
    CHECK_STATUS(espv_tracker_init(NULL, ESPV_TRACKER_SIZE, g_scripts, 1, g_txs, 1), ESPV_ERR_NULL);
    CHECK_STATUS(espv_tracker_init(small, 4, g_scripts, 1, g_txs, 1), ESPV_ERR_BUFFER_TOO_SMALL);
    CHECK_STATUS(espv_tracker_init(small + 1, ESPV_TRACKER_SIZE - 1, g_scripts, 1, g_txs, 1), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_tracker_init(small, sizeof small, g_scripts + 1, 1, g_txs, 1), ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_tracker_init(small, sizeof small, g_scripts, 2, g_scripts, 1), ESPV_ERR_INVALID_ARGUMENT);
    uint32_t index = 0;
    CHECK_STATUS(espv_tracker_add_script((espv_tracker *)(void *)small, g_exp[0].script, 1, &index),
                 ESPV_ERR_NOT_INITIALIZED);
    CHECK_STATUS(espv_tracker_init(small, sizeof small, g_scripts, 1, g_txs, 1), ESPV_OK);
    espv_tracker *t = (espv_tracker *)(void *)small;
    CHECK_STATUS(espv_tracker_add_script(t, g_exp[0].script, g_exp[0].script_len, MISALIGNED(uint32_t, &index)),
                 ESPV_ERR_MISALIGNED);
    CHECK_STATUS(espv_tracker_add_script(t, g_exp[0].script, g_exp[0].script_len, &index), ESPV_OK);
    CHECK_STATUS(espv_tracker_add_script(t, g_exp[0].script, g_exp[0].script_len, &index), ESPV_ERR_TABLE_FULL);
    uint8_t big[ESPV_TRACKER_MAX_SCRIPT_LEN + 1] = {0};
    CHECK_STATUS(espv_tracker_init(small, sizeof small, g_scripts, 1, g_txs, 1), ESPV_OK);
    CHECK_STATUS(espv_tracker_add_script(t, big, sizeof big, &index), ESPV_ERR_SCRIPT_TOO_LONG);
    uint32_t h;
    CHECK_STATUS(espv_tracker_header_wanted(t, &h), ESPV_NONE);
    CHECK(strcmp(espv_tracker_event_name(ESPV_TRACKER_EVENT_CONFIRMED), "ESPV_TRACKER_EVENT_CONFIRMED") == 0);
}

int main(int argc, char **argv) {
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT HEADERS_0 HEADERS_822528 EXPECTED [LIE]\n", argv[0]);
        return 2;
    }
    const char *lie = argc == 7 ? argv[6] : NULL;
    if (read_expected(argv[5]) != 0) {
        fprintf(stderr, "cannot read the expectations %s\n", argv[5]);
        return 2;
    }
    g_low = read_file(argv[3], &g_low_len);
    g_high = read_file(argv[4], &g_high_len);
    uint32_t bad = 0;
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, 0, g_low, g_low_len / 80, NULL, &bad), ESPV_OK);
    CHECK_STATUS(espv_verify_headers(ESPV_NETWORK_MAINNET, HIGH_START, g_high, g_high_len / 80, NULL, &bad), ESPV_OK);
    check_refusals();

    CHECK(espv_tracker_size() <= ESPV_TRACKER_SIZE && espv_tracker_align() <= ESPV_TRACKER_ALIGN);
    CHECK(espv_tracker_script_slot_size() <= ESPV_TRACKER_SCRIPT_SLOT_SIZE);
    CHECK(espv_tracker_tx_slot_size() <= ESPV_TRACKER_TX_SLOT_SIZE);
    espv_config cfg;
    CHECK_STATUS(espv_config_default(&cfg, ESPV_NETWORK_MAINNET), ESPV_OK);
    CHECK_STATUS(espv_session_init(g_session_mem, sizeof g_session_mem, ESPV_LINE_CAPACITY, ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT, &cfg, now_ms()), ESPV_OK);
    g_s = (espv_session *)(void *)g_session_mem;
    CHECK_STATUS(espv_tracker_init(g_tracker_mem, sizeof g_tracker_mem, g_scripts, MAX_SCRIPTS, g_txs, TX_SLOTS),
                 ESPV_OK);
    g_t = (espv_tracker *)(void *)g_tracker_mem;
    for (size_t k = 0; k < g_n_exp; k++)
        CHECK_STATUS(espv_tracker_add_script(g_t, g_exp[k].script, g_exp[k].script_len, &g_exp[k].index), ESPV_OK);

    g_sock = connect_to(argv[1], argv[2]);
    CHECK(g_sock >= 0);
    if (g_sock >= 0) {
        int rc = run(lie);
        CHECK(rc == 0);
        if (rc == 0) {
            if (lie)
                check_lie(lie);
            else
                check_honest();
        }
        close(g_sock);
    }
    free(g_low);
    free(g_high);
    return finish(lie ? lie : "test_tracker");
}
