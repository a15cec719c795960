/*
** test_krt_pool.c — the runtime's thread pool: every index of a parallel
** loop runs exactly once in contiguous chunks, nested loops run serially in
** the calling thread, and pools come and go cleanly. Workers spin a while
** between loops, then sleep: loops that come after a pause wake them, and
** what a chunk writes with plain stores is visible to the caller afterwards.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "runtime/krt_pool.h"

typedef struct cover {
    atomic_int *hits;
    atomic_int calls;
    atomic_int bad_range;
    int64_t n;
} cover;

static void cover_fn(void *closure, int64_t begin, int64_t end) {
    cover *c = closure;
    atomic_fetch_add(&c->calls, 1);
    if (begin >= end || begin < 0 || end > c->n) atomic_fetch_add(&c->bad_range, 1);
    for (int64_t i = begin; i < end && i >= 0 && i < c->n; i++) atomic_fetch_add(&c->hits[i], 1);
}

static bool covered_once(int64_t n, int threads) {
    cover c = {.n = n};
    c.hits = calloc((size_t)(n > 0 ? n : 1), sizeof(atomic_int));
    if (!c.hits) return false;
    krt_parallel_for(n, cover_fn, &c);
    bool ok = atomic_load(&c.bad_range) == 0 && atomic_load(&c.calls) <= (threads > 0 ? threads : 1);
    for (int64_t i = 0; i < n; i++) ok &= atomic_load(&c.hits[i]) == 1;
    if (n <= 0) ok &= atomic_load(&c.calls) == 0;
    free(c.hits);
    return ok;
}

static void test_every_index_once(void) {
    static const int64_t sizes[] = {0, 1, 2, 3, 4, 5, 7, 8, 13, 64, 100, 1000, 12345};
    static const int threads[] = {1, 2, 3, 4, 7};
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
        krt_pool *p = krt_pool_new(threads[t]);
        CHECK(p != NULL);
        if (!p) continue;
        CHECK(krt_pool_threads(p) == threads[t]);
        krt_pool_set_current(p);
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            CHECK_MSG(covered_once(sizes[s], threads[t]), "n=%lld threads=%d", (long long)sizes[s], threads[t]);
        krt_pool_set_current(NULL);
        krt_pool_free(p);
    }
}

static void test_negative_and_serial(void) {
    krt_pool_set_current(NULL);
    CHECK(covered_once(-5, 1));
    CHECK(covered_once(1000, 1)); /* no pool: one call in this thread */
    CHECK(krt_pool_threads(NULL) == 1);
    krt_pool_free(NULL);
}

typedef struct nest {
    pthread_t outer_thread[64];
    atomic_int inner_other_thread;
    atomic_int hits[64 * 50];
} nest;

typedef struct nest_inner {
    nest *n;
    int64_t row;
    pthread_t self;
} nest_inner;

static void inner_fn(void *closure, int64_t begin, int64_t end) {
    nest_inner *in = closure;
    if (!pthread_equal(pthread_self(), in->self)) atomic_fetch_add(&in->n->inner_other_thread, 1);
    for (int64_t j = begin; j < end; j++) atomic_fetch_add(&in->n->hits[in->row * 50 + j], 1);
}

static void outer_fn(void *closure, int64_t begin, int64_t end) {
    nest *n = closure;
    for (int64_t i = begin; i < end; i++) {
        nest_inner in = {n, i, pthread_self()};
        krt_parallel_for(50, inner_fn, &in); /* nested: serial, in this thread */
    }
}

static void test_nested_serial(void) {
    krt_pool *p = krt_pool_new(4);
    CHECK(p != NULL);
    if (!p) return;
    krt_pool_set_current(p);
    nest *n = calloc(1, sizeof *n);
    CHECK(n != NULL);
    if (n) {
        krt_parallel_for(64, outer_fn, n);
        CHECK(atomic_load(&n->inner_other_thread) == 0);
        bool once = true;
        for (int i = 0; i < 64 * 50; i++) once &= atomic_load(&n->hits[i]) == 1;
        CHECK(once);
        free(n);
    }
    krt_pool_free(p); /* frees the current pool: later loops run serially */
    CHECK(covered_once(100, 1));
}

static void test_many_jobs(void) {
    krt_pool *p = krt_pool_new(3);
    CHECK(p != NULL);
    if (!p) return;
    krt_pool_set_current(p);
    bool ok = true;
    for (int rep = 0; rep < 2000 && ok; rep++) ok = covered_once(1 + rep % 37, 3);
    CHECK(ok);
    krt_pool_set_current(NULL);
    krt_pool_free(p);
}

static void test_pools_come_and_go(void) {
    for (int rep = 0; rep < 50; rep++) {
        krt_pool *p = krt_pool_new(1 + rep % 5);
        CHECK(p != NULL);
        if (!p) return;
        if (rep % 2) {
            krt_pool_set_current(p);
            CHECK(covered_once(17, 1 + rep % 5));
        }
        krt_pool_free(p);
    }
    krt_pool *q = krt_pool_new(0); /* fewer than one thread: one */
    CHECK(q && krt_pool_threads(q) == 1);
    krt_pool_free(q);
    krt_pool_set_current(NULL);
}

typedef struct plain {
    int64_t *data;
    int64_t round;
} plain;

static void plain_fn(void *closure, int64_t begin, int64_t end) {
    plain *pl = closure;
    for (int64_t i = begin; i < end; i++) pl->data[i] = pl->data[i] * 3 + pl->round + i;
}

static void sleep_us(long us) {
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

/* Plain writes of every chunk are seen by the caller after the loop, and the
** next loop's chunks see the caller's writes, whether the workers were
** spinning (loops back to back) or asleep (a pause longer than the spin). */
static void writes_are_visible_across_loops(void) {
    enum { N = 997 };
    krt_pool *p = krt_pool_new(3);
    CHECK(p != NULL);
    if (!p) return;
    krt_pool_set_current(p);
    int64_t data[N], want[N];
    for (int i = 0; i < N; i++) data[i] = want[i] = i;
    bool ok = true;
    for (int64_t round = 1; round <= 300 && ok; round++) {
        plain pl = {data, round};
        if (round % 50 == 0) sleep_us(2000); /* the workers go to sleep */
        krt_parallel_for(N, plain_fn, &pl);
        for (int i = 0; i < N; i++) {
            want[i] = want[i] * 3 + round + i;
            ok &= data[i] == want[i];
            data[i] = want[i] = data[i] % 1000003; /* the caller writes between loops */
        }
    }
    CHECK(ok);
    krt_pool_set_current(NULL);
    krt_pool_free(p);
}

/* A pool freed right after its loops (workers still spinning) or long
** after (workers asleep) stops cleanly. */
static void free_while_spinning_or_asleep(void) {
    for (int rep = 0; rep < 40; rep++) {
        krt_pool *p = krt_pool_new(2 + rep % 3);
        CHECK(p != NULL);
        if (!p) return;
        krt_pool_set_current(p);
        CHECK(covered_once(64, 2 + rep % 3));
        if (rep % 4 == 3) sleep_us(1000);
        krt_pool_free(p);
    }
    CHECK(covered_once(10, 1)); /* the freed pool is no longer current */
}

TEST_MAIN(T(test_every_index_once), T(test_negative_and_serial), T(test_nested_serial), T(test_many_jobs),
          T(test_pools_come_and_go), T(writes_are_visible_across_loops),
          T(free_while_spinning_or_asleep))
