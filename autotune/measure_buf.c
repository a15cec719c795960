/*
** measure_buf.c — the buffers a measured kernel runs on: each in its own
** mapping between guard pages, with a canary in the slack after the data;
** random inputs and poisoned outputs.
*/
#define _GNU_SOURCE
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ir/dtype.h"
#include "measure_internal.h"

#define TM_CANARY 0xC3

static size_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

bool tm_buf_map(tm_buf *b, kiln_dtype dt, int64_t n, bool shared) {
    size_t es = kiln_dtype_size(dt), pg = page_size();
    if (!es || n < 0 || (uint64_t)n > (SIZE_MAX / 2) / es) return false;
    size_t bytes = (size_t)n * es;
    size_t body = (bytes + pg - 1) / pg * pg;
    if (body == 0) body = pg;
    size_t total = body + 2 * pg;
    void *m = mmap(NULL, total, PROT_READ | PROT_WRITE,
                   (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return false;
    if (mprotect(m, pg, PROT_NONE) || mprotect((char *)m + pg + body, pg, PROT_NONE)) {
        munmap(m, total);
        return false;
    }
    *b = (tm_buf){dt, n, (char *)m + pg, m, total, bytes, body - bytes};
    memset((char *)b->data + bytes, TM_CANARY, b->slack_bytes);
    return true;
}

void tm_buf_unmap(tm_buf *b) {
    if (b && b->map) munmap(b->map, b->map_bytes);
    if (b) memset(b, 0, sizeof *b);
}

bool tm_buf_canary_ok(const tm_buf *b) {
    const unsigned char *p = (const unsigned char *)b->data + b->data_bytes;
    for (size_t i = 0; i < b->slack_bytes; i++)
        if (p[i] != TM_CANARY) return false;
    return true;
}

void tm_buf_protect(const tm_buf *b) {
    if (b->map) mprotect(b->data, b->map_bytes - 2 * page_size(), PROT_READ);
}

/* splitmix64: small, fast, and the same sequence everywhere. */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void tm_fill_random(kiln_dtype dt, void *data, int64_t n, uint64_t seed, uint64_t stream) {
    uint64_t s = seed * 0x2545F4914F6CDD1Dull + stream * 0x9E3779B97F4A7C15ull + 1;
    bool fl = kiln_dtype_is_float(dt) || kiln_dtype_is_lowp_float(dt);
    for (int64_t i = 0; i < n; i++) {
        uint64_t r = mix(&s);
        if (dt == KILN_F32) {
            ((float *)data)[i] = (float)((double)(r >> 40) / (double)(1ull << 24) * 2.0 - 1.0);
        } else if (fl) {
            kiln_store_f64(dt, data, i, (double)(r >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
        } else if (dt == KILN_BOOL) {
            ((uint8_t *)data)[i] = (uint8_t)(r >> 63);
        } else {
            kiln_store_i64(dt, data, i, (int64_t)(r >> 62));
        }
    }
}

void tm_poison(kiln_dtype dt, void *data, int64_t n, bool second) {
    size_t es = kiln_dtype_size(dt);
    if (dt == KILN_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)data)[i] = NAN;
    } else if (dt == KILN_F64) {
        for (int64_t i = 0; i < n; i++) ((double *)data)[i] = NAN;
    } else if (dt == KILN_F16 || dt == KILN_BF16) {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)data)[i] = 0x7FFF; /* a NaN in both */
    } else {
        memset(data, second ? 0x5A : 0xA5, (size_t)n * es);
    }
}
