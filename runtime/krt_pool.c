/*
** krt_pool.c — a fixed pool of pthreads that runs one parallel loop at a
** time: the loop's range is split into one contiguous chunk per thread, the
** caller runs chunk 0, and returns when every chunk is done.
*/
#include "krt_pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

typedef void (*krt_body_fn)(void *closure, int64_t begin, int64_t end);

struct krt_pool {
    int threads;
    pthread_t *workers;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    /* the current job */
    uint64_t generation;
    krt_body_fn fn;
    void *closure;
    int64_t n;
    int pending;
    bool stop;
};

static krt_pool *g_current = NULL;
static _Thread_local bool t_in_parallel = false;
static pthread_mutex_t g_submit = PTHREAD_MUTEX_INITIALIZER;

static void chunk_range(int64_t n, int parts, int k, int64_t *b, int64_t *e) {
    int64_t base = n / parts, rem = n % parts;
    *b = k * base + (k < rem ? k : rem);
    *e = *b + base + (k < rem ? 1 : 0);
}

typedef struct worker_arg {
    krt_pool *pool;
    int index;
} worker_arg;

static void *worker_main(void *arg) {
    worker_arg *wa = arg;
    krt_pool *p = wa->pool;
    int index = wa->index;
    free(wa);
    t_in_parallel = true;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        krt_body_fn fn = p->fn;
        void *closure = p->closure;
        int64_t b, e;
        chunk_range(p->n, p->threads, index, &b, &e);
        pthread_mutex_unlock(&p->mu);
        if (b < e) fn(closure, b, e);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

krt_pool *krt_pool_new(int threads) {
    if (threads < 1) threads = 1;
    krt_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
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
        wa->index = i;
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
    p->stop = true;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; p->workers && i < p->threads; i++) pthread_join(p->workers[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->workers);
    free(p);
}

int krt_pool_threads(const krt_pool *p) { return p ? p->threads : 1; }

void krt_pool_set_current(krt_pool *p) { g_current = p; }

void krt_parallel_for(int64_t n, krt_body_fn fn, void *closure) {
    krt_pool *p = g_current;
    if (n <= 0) return;
    if (!p || p->threads == 1 || t_in_parallel || n == 1) {
        fn(closure, 0, n);
        return;
    }
    pthread_mutex_lock(&g_submit); /* one job at a time per process */
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->closure = closure;
    p->n = n;
    p->pending = p->threads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    int64_t b, e;
    chunk_range(n, p->threads, 0, &b, &e);
    t_in_parallel = true;
    if (b < e) fn(closure, b, e);
    t_in_parallel = false;
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&g_submit);
}
