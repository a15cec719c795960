/*
** mem.h — kiln's allocation functions and the IR arena.
** All of kiln allocates through kiln_malloc/kiln_realloc so that tests can
** fail the Nth allocation (kiln_mem_fail_after) and check nothing leaks.
*/
#ifndef KILN_MEM_H
#define KILN_MEM_H

#include <stddef.h>
#include <stdint.h>

void *kiln_malloc(size_t n);
void *kiln_calloc(size_t count, size_t size);
void *kiln_realloc(void *p, size_t n);
void kiln_free(void *p);
char *kiln_strdup(const char *s);

/* Test hooks: after `n` more successful allocations, every allocation fails
** (n < 0 disables). kiln_mem_live() counts blocks not yet freed. */
void kiln_mem_fail_after(long n);
long kiln_mem_live(void);

/* Grows *arr (of *cap elements of size `elem`) to hold at least `need`. */
int kiln_grow(void **arr, int *cap, int need, size_t elem);

/* An arena: many allocations, freed at once. */
typedef struct kiln_arena kiln_arena;
kiln_arena *kiln_arena_new(void);
void kiln_arena_free(kiln_arena *a);
void *kiln_arena_alloc(kiln_arena *a, size_t n); /* zeroed, 16-byte aligned */
char *kiln_arena_strdup(kiln_arena *a, const char *s);
char *kiln_arena_strndup(kiln_arena *a, const char *s, size_t n);
void *kiln_arena_memdup(kiln_arena *a, const void *p, size_t n);

#endif
