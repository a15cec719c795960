/*
** krt_pool.c — a fixed pool of pthreads that runs one parallel loop at a
** time: the loop's range is split into one contiguous chunk per thread, and
** the caller and the workers claim chunks from a shared ticket until none is
** left; the caller returns when every chunk is done.
**
** Waking a sleeping thread costs tens of microseconds, as much as a small
** kernel's loop, and a model runs hundreds of loops back to back. So a
** worker that finishes spins (with a pause instruction) for up to
** KRT_SPIN_NS waiting for the next loop before it sleeps on the condition
** variable. Claiming chunks (instead of each thread owning one) keeps a
** busy machine from stalling the caller: a worker that is not running when
** a loop starts leaves its chunk to the caller, and the caller waits only
** for chunks that a worker has begun.
**
** Synchronization: the caller writes the job (fn, closure, n, done = 0),
** then publishes it by storing `ticket` = generation << 32 | 0 (release)
** and bumping `generation`. Threads claim chunk k by a CAS of the ticket
** from (gen, k) to (gen, k + 1) (acquire: the claimer sees the job); a CAS
** fails when the ticket moved on, including to a later job, so nobody runs
** a chunk of a job it did not read. Finishing a chunk adds to `done`
** (release); the caller's acquire load of `done` = chunks makes every
** chunk's writes visible to it. A worker about to sleep increments
** `sleepers` and re-reads `generation` under the mutex; the caller reads
** `sleepers` after publishing. Both pairs are sequentially consistent, so
** either the caller sees the sleeper and broadcasts under the mutex, or the
** worker sees the new job and does not sleep.
*/
#include "krt_pool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#define KRT_SPIN_NS 50000 /* how long an idle worker spins before it sleeps */

typedef void (*krt_body_fn)(void *closure, int64_t begin, int64_t end);

struct krt_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t start;
    /* the current job: written by the caller before the ticket is published */
    krt_body_fn fn;
    void *closure;
    int64_t n;
    atomic_uint_least64_t ticket; /* generation << 32 | the next chunk to claim */
    atomic_uint_least64_t generation;
    atomic_int done; /* chunks finished */
    atomic_int sleepers;
    atomic_bool stop;
};

static krt_pool *g_current = NULL;
static _Thread_local bool t_in_parallel = false;
static pthread_mutex_t g_submit = PTHREAD_MUTEX_INITIALIZER;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void chunk_range(int64_t n, int parts, int k, int64_t *b, int64_t *e) {
    int64_t base = n / parts, rem = n % parts;
    *b = k * base + (k < rem ? k : rem);
    *e = *b + base + (k < rem ? 1 : 0);
}

typedef struct worker_arg {
    krt_pool *pool;
} worker_arg;

/* The next generation after `seen` (spinning a while, then sleeping), or
** `seen` when the pool stops. */
static uint64_t wait_for_job(krt_pool *p, uint64_t seen) {
    int64_t deadline = 0;
    for (unsigned spin = 0;; spin++) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen) return g;
        if (atomic_load_explicit(&p->stop, memory_order_relaxed)) return seen;
        cpu_relax();
        if ((spin & 63) != 63) continue;
        int64_t t = now_ns();
        if (!deadline) deadline = t + KRT_SPIN_NS;
        else if (t > deadline) break;
    }
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->sleepers, 1);
    uint64_t g;
    while ((g = atomic_load(&p->generation)) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->start, &p->mu);
    atomic_fetch_sub(&p->sleepers, 1);
    pthread_mutex_unlock(&p->mu);
    return g;
}

/* Claims and runs chunks of the current job until none is left. */
static void run_chunks(krt_pool *p) {
    uint64_t t = atomic_load_explicit(&p->ticket, memory_order_acquire);
    for (;;) {
        int k = (int)(t & 0xffffffffu);
        if (k >= p->threads) return;
        if (!atomic_compare_exchange_weak_explicit(&p->ticket, &t, t + 1, memory_order_acquire,
                                                   memory_order_acquire))
            continue; /* t now holds the current ticket */
        int64_t b, e;
        chunk_range(p->n, p->threads, k, &b, &e);
        if (b < e) p->fn(p->closure, b, e);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        t++;
    }
}

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    krt_pool *p = wa->pool;
    free(wa);
    t_in_parallel = true;
    uint64_t seen = 0;
    for (;;) {
        uint64_t g = wait_for_job(p, seen);
        if (g == seen) break; /* stopping */
        seen = g;
        run_chunks(p);
    }
    return NULL;
}

krt_pool *krt_pool_new(int threads) {
    if (threads < 1) threads = 1;
    krt_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    atomic_init(&p->generation, 0);
    atomic_init(&p->ticket, 0);
    atomic_init(&p->done, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->stop, false);
    p->workers = calloc((size_t)threads, sizeof(pthread_t));
    if (!p->workers) {
        krt_pool_free(p);
        return NULL;
    }
    for (int i = 1; i < threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            p->threads = i;
            break;
        }
        wa->pool = p;
        if (pthread_create(&p->workers[i], NULL, worker_main, wa) != 0) {
            free(wa);
            p->threads = i; /* run with the threads we got */
            break;
        }
    }
    return p;
}

void krt_pool_free(krt_pool *p) {
    if (!p) return;
    if (g_current == p) g_current = NULL;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; p->workers && i < p->threads; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    free(p->workers);
    free(p);
}

int krt_pool_threads(const krt_pool *p) { return p ? p->threads : 1; }

void krt_pool_set_current(krt_pool *p) { g_current = p; }

/* Until every chunk is done: spins, then yields the core (a worker that
** began a chunk may be waiting for it on a busy machine). */
static void wait_for_chunks(krt_pool *p) {
    for (unsigned spin = 0; atomic_load_explicit(&p->done, memory_order_acquire) < p->threads; spin++) {
        if (spin < 4096) cpu_relax();
        else sched_yield();
    }
}

void krt_parallel_for(int64_t n, krt_body_fn fn, void *closure) {
    krt_pool *p = g_current;
    if (n <= 0) return;
    if (!p || p->threads == 1 || t_in_parallel || n == 1) {
        fn(closure, 0, n);
        return;
    }
    pthread_mutex_lock(&g_submit); /* one job at a time per process */
    p->fn = fn;
    p->closure = closure;
    p->n = n;
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    uint64_t g = atomic_load_explicit(&p->generation, memory_order_relaxed) + 1;
    atomic_store_explicit(&p->ticket, (g & 0xffffffffu) << 32, memory_order_release);
    atomic_store(&p->generation, g); /* wakes the workers (seq_cst: see the file comment) */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->start);
        pthread_mutex_unlock(&p->mu);
    }
    t_in_parallel = true;
    run_chunks(p);
    t_in_parallel = false;
    wait_for_chunks(p);
    pthread_mutex_unlock(&g_submit);
}
