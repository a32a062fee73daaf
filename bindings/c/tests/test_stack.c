/*
 * Measures the stack the C ABI needs, by painting: each call runs on a thread whose stack
 * this test provides, filled with a pattern first; what the call overwrote is what it used.
 * A thread that calls nothing gives the baseline (the C library's own use of the thread's
 * stack), which is subtracted.
 *
 *   test_stack HEADERS_FILE
 *
 * Prints one "stack: CALL N bytes" line per call and checks each against the bound the crate
 * documents: espv_session_init 1 KiB whatever the session's capacities (its buffers are never
 * on the stack: here a default session and one with a 48 KiB line buffer), espv_tracker_init 2 KiB
 * whatever the size of its tables (here 64 script and 4096 transaction slots, about 500 KB:
 * they are set empty in place), every other call about 2 KiB (checked with a margin, 8 KiB).
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "common.h"

#define STACK_SIZE (1024 * 1024)
#define PAINT 0xA5

static uint8_t *g_headers;
static size_t g_headers_len;
static int g_status;

static void *nothing(void *arg) {
    (void)arg;
    return NULL;
}

static _Alignas(64) uint8_t g_session_mem[65536];

static void *session_init(void *arg) {
    (void)arg;
    espv_config cfg;
    espv_config_default(&cfg, ESPV_NETWORK_MAINNET);
    g_status = espv_session_init(g_session_mem, sizeof g_session_mem, ESPV_LINE_CAPACITY,
                                 ESPV_OUTPUT_CAPACITY, ESPV_MAX_IN_FLIGHT, &cfg, 0);
    return NULL;
}

static void *session_init_big(void *arg) {
    (void)arg;
    espv_config cfg;
    espv_config_default(&cfg, ESPV_NETWORK_MAINNET);
    g_status = espv_session_init(g_session_mem, sizeof g_session_mem, 48 * 1024, 8192, 32, &cfg, 0);
    return NULL;
}

static void *tracker_init(void *arg) {
    (void)arg;
    static _Alignas(ESPV_TRACKER_ALIGN) uint8_t mem[ESPV_TRACKER_SIZE];
    static _Alignas(ESPV_TRACKER_SLOT_ALIGN) uint8_t scripts[64 * ESPV_TRACKER_SCRIPT_SLOT_SIZE];
    static _Alignas(ESPV_TRACKER_SLOT_ALIGN) uint8_t txs[4096 * ESPV_TRACKER_TX_SLOT_SIZE];
    g_status = espv_tracker_init(mem, sizeof mem, scripts, 64, txs, 4096);
    return NULL;
}

static void *verify_headers(void *arg) {
    (void)arg;
    espv_tip tip;
    uint32_t bad = 0;
    g_status = espv_verify_headers(ESPV_NETWORK_MAINNET, 822528, g_headers,
                                   g_headers_len / 80 < 2016 ? g_headers_len / 80 : 2016, &tip, &bad);
    return NULL;
}

/* Runs `fn` on a painted stack; returns how many bytes of it were written, or 0 on error. */
static size_t stack_used(void *(*fn)(void *)) {
    void *stack = NULL;
    if (posix_memalign(&stack, 4096, STACK_SIZE) != 0) return 0;
    memset(stack, PAINT, STACK_SIZE);
    pthread_attr_t attr;
    pthread_t thread;
    size_t used = 0;
    if (pthread_attr_init(&attr) == 0 && pthread_attr_setstack(&attr, stack, STACK_SIZE) == 0 &&
        pthread_create(&thread, &attr, fn, NULL) == 0 && pthread_join(thread, NULL) == 0) {
        /* The stack grows down: the first byte from the bottom that changed marks the peak. */
        const uint8_t *p = stack;
        size_t untouched = 0;
        while (untouched < STACK_SIZE && p[untouched] == PAINT) untouched++;
        used = STACK_SIZE - untouched;
    }
    pthread_attr_destroy(&attr);
    free(stack);
    return used;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s HEADERS_FILE\n", argv[0]);
        return 2;
    }
    g_headers = read_file(argv[1], &g_headers_len);
    CHECK(g_headers != NULL && g_headers_len >= 80 * 2016);
    if (g_headers == NULL) return finish("test_stack");

    /* Against the shared library the first call of a function binds its symbol (lazy PLT
     * resolution: about 3 KB of the dynamic linker's stack, not the call's). A refused call
     * binds espv_tracker_init first, so its tight bound holds for both libraries. */
    CHECK_STATUS(espv_tracker_init(NULL, 0, NULL, 0, NULL, 0), ESPV_ERR_NULL);
    /* espv_session_init binds what it calls (memset, memcpy) only on a full initialization. */
    session_init(NULL);
    CHECK_STATUS(g_status, ESPV_OK);
    size_t baseline = stack_used(nothing);
    CHECK(baseline > 0);
    struct {
        const char *name;
        void *(*fn)(void *);
        size_t bound;
    } calls[] = {
        {"espv_session_init (default capacities)", session_init, 1024},
        {"espv_session_init (48 KiB line, 8 KiB out, 32 in flight)", session_init_big, 1024},
        {"espv_tracker_init (64 + 4096 slots)", tracker_init, 2048},
        {"espv_verify_headers (2016 headers)", verify_headers, 8192},
    };
    for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
        g_status = -1000;
        size_t used = stack_used(calls[i].fn);
        CHECK(used > baseline);
        CHECK_STATUS(g_status, ESPV_OK);
        size_t net = used > baseline ? used - baseline : 0;
        printf("stack: %s %zu bytes (bound %zu)\n", calls[i].name, net, calls[i].bound);
        CHECK(net <= calls[i].bound);
    }
    free(g_headers);
    return finish("test_stack");
}
