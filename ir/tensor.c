/*
** tensor.c — sizes, allocation, copying and broadcasting of tensors.
*/
#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "mem.h"

int64_t kiln_numel_dims(int rank, const int64_t *dims) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return -1;
        if (dims[i] && n > INT64_MAX / dims[i]) return -1;
        n *= dims[i];
    }
    return n;
}

int64_t kiln_numel(const kiln_tensor *t) { return kiln_numel_dims(t->rank, t->dims); }

size_t kiln_nbytes(const kiln_tensor *t) {
    int64_t n = kiln_numel(t);
    size_t es = kiln_dtype_size(t->dtype);
    if (n < 0 || es == 0 || (uint64_t)n > SIZE_MAX / es) return 0;
    return (size_t)n * es;
}

void kiln_tensor_init(kiln_tensor *t, kiln_dtype dt, int rank, const int64_t *dims) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank && i < KILN_MAX_RANK; i++) t->dims[i] = dims[i];
}

void kiln_tensor_release(kiln_tensor *t) {
    if (!t) return;
    if (t->alloc) {
        if (t->dtype == KILN_STRING) {
            char **s = t->alloc;
            int64_t n = kiln_numel(t);
            for (int64_t i = 0; i < n; i++) kiln_free(s[i]);
        }
        kiln_free(t->alloc);
    }
    t->alloc = NULL;
    t->data = NULL;
}

kiln_status kiln_tensor_alloc(kiln_ctx *ctx, kiln_tensor *t) {
    int64_t n = kiln_numel(t);
    if (n < 0) return kiln_fail(ctx, KILN_ERR_SHAPE, "tensor has a negative or overflowing shape");
    size_t es = kiln_dtype_size(t->dtype);
    if (es == 0) return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "unsupported element type %d", t->dtype);
    if ((uint64_t)n > (SIZE_MAX / 4) / es || (uint64_t)n * es > ((uint64_t)1 << 40))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "tensor of %lld elements is too large", (long long)n);
    void *p = kiln_calloc((size_t)(n ? n : 1), es);
    if (!p) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory allocating a tensor of %lld elements", (long long)n);
    if (t->dtype == KILN_STRING) {
        char **s = p;
        for (int64_t i = 0; i < n; i++) {
            s[i] = kiln_strdup("");
            if (!s[i]) {
                for (int64_t j = 0; j < i; j++) kiln_free(s[j]);
                kiln_free(p);
                return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
            }
        }
    }
    t->data = t->alloc = p;
    return KILN_OK;
}

kiln_status kiln_tensor_copy(kiln_ctx *ctx, const kiln_tensor *src, kiln_tensor *dst) {
    kiln_tensor t;
    kiln_tensor_init(&t, src->dtype, src->rank, src->dims);
    kiln_status s = kiln_tensor_alloc(ctx, &t);
    if (s) return s;
    int64_t n = kiln_numel(src);
    if (src->dtype == KILN_STRING) {
        char **d = t.data;
        char *const *ss = src->data;
        for (int64_t i = 0; i < n; i++) {
            char *c = kiln_strdup(ss[i] ? ss[i] : "");
            if (!c) {
                kiln_tensor_release(&t);
                return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
            }
            kiln_free(d[i]);
            d[i] = c;
        }
    } else if (n) {
        memcpy(t.data, src->data, kiln_nbytes(src));
    }
    *dst = t;
    return KILN_OK;
}

bool kiln_tensor_same_shape(const kiln_tensor *a, const kiln_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

const char *kiln_shape_str(const kiln_tensor *t, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "%s[", kiln_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)t->dims[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
    return buf;
}

void kiln_strides(int rank, const int64_t *dims, int64_t *strides) {
    int64_t s = 1;
    for (int i = rank - 1; i >= 0; i--) {
        strides[i] = s;
        s *= dims[i];
    }
}

kiln_status kiln_broadcast_shapes(kiln_ctx *ctx, int n, const kiln_tensor *const *ts,
                                  int *out_rank, int64_t *out_dims) {
    int rank = 0;
    for (int k = 0; k < n; k++)
        if (ts[k] && ts[k]->rank > rank) rank = ts[k]->rank;
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0; d < rank; d++) dims[d] = 1;
    for (int k = 0; k < n; k++) {
        if (!ts[k]) continue;
        int off = rank - ts[k]->rank;
        for (int d = 0; d < ts[k]->rank; d++) {
            int64_t e = ts[k]->dims[d];
            if (e == dims[off + d] || e == 1) continue;
            if (dims[off + d] != 1) {
                char a[128], b[128];
                kiln_tensor tmp;
                kiln_tensor_init(&tmp, ts[k]->dtype, rank, dims);
                return kiln_fail(ctx, KILN_ERR_SHAPE, "shapes %s and %s do not broadcast",
                                 kiln_shape_str(&tmp, a, sizeof a), kiln_shape_str(ts[k], b, sizeof b));
            }
            dims[off + d] = e;
        }
    }
    *out_rank = rank;
    memcpy(out_dims, dims, sizeof(int64_t) * (size_t)rank);
    return KILN_OK;
}

void kiln_broadcast_strides(const kiln_tensor *t, int out_rank, const int64_t *out_dims,
                            int64_t *bstrides) {
    int64_t st[KILN_MAX_RANK];
    kiln_strides(t->rank, t->dims, st);
    int off = out_rank - t->rank;
    for (int d = 0; d < out_rank; d++) {
        int sd = d - off;
        bstrides[d] = (sd < 0 || t->dims[sd] == 1 || out_dims[d] == 1) ? 0 : st[sd];
    }
}

bool kiln_index_next(int rank, const int64_t *dims, int64_t *idx) {
    for (int d = rank - 1; d >= 0; d--) {
        if (++idx[d] < dims[d]) return true;
        idx[d] = 0;
    }
    return false;
}

int64_t kiln_tensor_i64(const kiln_tensor *t, int64_t i) { return kiln_load_i64(t->dtype, t->data, i); }
double kiln_tensor_f64(const kiln_tensor *t, int64_t i) { return kiln_load_f64(t->dtype, t->data, i); }
