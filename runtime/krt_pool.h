/*
** krt_pool.h — the runtime's CPU thread pool (pthreads), which runs the
** parallel loops of generated kernels.
*/
#ifndef KILN_KRT_POOL_H
#define KILN_KRT_POOL_H

#include <stdint.h>

typedef struct krt_pool krt_pool;

/* A pool of `threads` workers (the calling thread counts as one). */
krt_pool *krt_pool_new(int threads);
void krt_pool_free(krt_pool *p);
int krt_pool_threads(const krt_pool *p);

/* The pool used by krt_parallel_for in this process (NULL: run serially). */
void krt_pool_set_current(krt_pool *p);

/* Splits [0, n) into contiguous chunks, one per thread, and runs
** fn(closure, begin, end) on each; returns when all are done. Called by
** generated code. Nested calls run serially in the calling thread. */
void krt_parallel_for(int64_t n, void (*fn)(void *closure, int64_t begin, int64_t end), void *closure);

#endif
