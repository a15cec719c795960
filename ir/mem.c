/*
** mem.c — allocation with a failure-injection hook, and the arena.
*/
#include "mem.h"

#include <stdlib.h>
#include <string.h>

static long g_fail_after = -1;
static long g_live = 0;

static int should_fail(void) {
    if (g_fail_after < 0) return 0;
    if (g_fail_after == 0) return 1;
    g_fail_after--;
    return 0;
}

void kiln_mem_fail_after(long n) { g_fail_after = n; }
long kiln_mem_live(void) { return g_live; }

void *kiln_malloc(size_t n) {
    if (should_fail()) return NULL;
    void *p = malloc(n ? n : 1);
    if (p) g_live++;
    return p;
}

void *kiln_calloc(size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = kiln_malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

void *kiln_realloc(void *p, size_t n) {
    if (!p) return kiln_malloc(n);
    if (should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void kiln_free(void *p) {
    if (!p) return;
    g_live--;
    free(p);
}

char *kiln_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = kiln_malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int kiln_grow(void **arr, int *cap, int need, size_t elem) {
    if (need <= *cap) return 1;
    int ncap = *cap ? *cap : 8;
    while (ncap < need) {
        if (ncap > (1 << 29)) return 0;
        ncap *= 2;
    }
    void *p = kiln_realloc(*arr, (size_t)ncap * elem);
    if (!p) return 0;
    *arr = p;
    *cap = ncap;
    return 1;
}

/* ---- arena ---- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} arena_chunk;

struct kiln_arena {
    arena_chunk *head;
};

kiln_arena *kiln_arena_new(void) { return kiln_calloc(1, sizeof(kiln_arena)); }

void kiln_arena_free(kiln_arena *a) {
    if (!a) return;
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *next = c->next;
        kiln_free(c);
        c = next;
    }
    kiln_free(a);
}

void *kiln_arena_alloc(kiln_arena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 16384 ? n : 16384;
        c = kiln_malloc(sizeof(arena_chunk) + size);
        if (!c) return NULL;
        c->used = 0;
        c->size = size;
        /* a big block goes behind the current chunk so the rest stays usable */
        if (a->head && n > 16384) {
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

void *kiln_arena_memdup(kiln_arena *a, const void *p, size_t n) {
    void *d = kiln_arena_alloc(a, n);
    if (d && n) memcpy(d, p, n);
    return d;
}

char *kiln_arena_strndup(kiln_arena *a, const char *s, size_t n) {
    char *d = kiln_arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

char *kiln_arena_strdup(kiln_arena *a, const char *s) {
    return kiln_arena_strndup(a, s, strlen(s));
}
