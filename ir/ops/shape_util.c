/*
** shape_util.c — helpers shared by the shape, tensor and reduce op families.
*/
#include <string.h>

#include "shape_ops.h"

kiln_status shp_read_ints(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what,
                          int64_t *vals, int max, int *count) {
    if (!kiln_dtype_is_int(t->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s must be an integer tensor, got %s", what,
                            kiln_dtype_name(t->dtype));
    if (t->rank > 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must be 1-D, got rank %d", what, t->rank);
    int64_t k = kiln_numel(t);
    if (k == 0) {
        *count = 0;
        return KILN_OK;
    }
    if (!t->data) return KILN_ERR_DYNAMIC;
    if (k < 0 || k > max)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "%s has %lld values, at most %d are supported",
                            what, (long long)k, max);
    for (int64_t i = 0; i < k; i++) vals[i] = kiln_tensor_i64(t, i);
    *count = (int)k;
    return KILN_OK;
}

kiln_status shp_ints_arg(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         const char *attr, int slot, int64_t *vals, int max, int *count) {
    const gir_attr *a = gir_attr_find(n, attr);
    if (a) {
        if (a->kind != GIR_ATTR_INTS)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' must be a list of ints", attr);
        if (a->n > max)
            return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "attribute '%s' has %d values, at most %d are supported",
                                attr, a->n, max);
        if (a->n > 0) memcpy(vals, a->ints, sizeof(int64_t) * (size_t)a->n);
        *count = a->n;
        return KILN_OK;
    }
    const kiln_tensor *t = slot >= 0 ? shp_in(n, in, slot) : NULL;
    if (!t) {
        *count = -1;
        return KILN_OK;
    }
    return shp_read_ints(ctx, n, t, attr, vals, max, count);
}

kiln_status shp_read_scalar_int(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                                const char *what, int64_t *out) {
    if (!kiln_dtype_is_int(t->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s must be an integer, got %s", what,
                            kiln_dtype_name(t->dtype));
    if (kiln_numel(t) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must hold exactly one value", what);
    if (!t->data) return KILN_ERR_DYNAMIC;
    *out = kiln_tensor_i64(t, 0);
    return KILN_OK;
}

kiln_status shp_norm_axes(kiln_ctx *ctx, const gir_node *n, const int64_t *axes, int count,
                          int rank, int *out) {
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < count; i++) {
        int a;
        if (axes[i] < -rank || axes[i] >= rank)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is out of range for rank %d",
                                (long long)axes[i], rank);
        a = (int)(axes[i] < 0 ? axes[i] + rank : axes[i]);
        if (seen[a])
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is given twice", (long long)axes[i]);
        seen[a] = true;
        out[i] = a;
    }
    return KILN_OK;
}

kiln_status shp_copy(kiln_ctx *ctx, const gir_node *n, kiln_tensor *dst, int64_t di,
                     const kiln_tensor *src, int64_t si, int64_t count) {
    if (count <= 0) return KILN_OK;
    if (dst->dtype != KILN_STRING) {
        size_t es = kiln_dtype_size(dst->dtype);
        memcpy((char *)dst->data + (size_t)di * es, (const char *)src->data + (size_t)si * es,
               (size_t)count * es);
        return KILN_OK;
    }
    char **d = dst->data;
    char *const *s = src->data;
    for (int64_t k = 0; k < count; k++) {
        char *c = kiln_strdup(s[si + k] ? s[si + k] : "");
        if (!c) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory copying strings");
        kiln_free(d[di + k]);
        d[di + k] = c;
    }
    return KILN_OK;
}

kiln_status shp_same_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, kiln_dtype dt,
                           const char *what) {
    if (t->dtype == dt) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s has element type %s, expected %s", what,
                        kiln_dtype_name(t->dtype), kiln_dtype_name(dt));
}

kiln_status shp_check_rank(kiln_ctx *ctx, const gir_node *n, int64_t rank) {
    if (rank <= KILN_MAX_RANK) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "output rank %lld exceeds %d", (long long)rank,
                        KILN_MAX_RANK);
}

/* One element of es bytes; data is aligned for its dtype. */
static inline void copy_one(void *dst, int64_t di, const void *src, int64_t si, size_t es) {
    switch (es) {
    case 1: ((uint8_t *)dst)[di] = ((const uint8_t *)src)[si]; break;
    case 2: ((uint16_t *)dst)[di] = ((const uint16_t *)src)[si]; break;
    case 4: ((uint32_t *)dst)[di] = ((const uint32_t *)src)[si]; break;
    case 8: ((uint64_t *)dst)[di] = ((const uint64_t *)src)[si]; break;
    default: memcpy((char *)dst + (size_t)di * es, (const char *)src + (size_t)si * es, es); break;
    }
}

kiln_status shp_strided_copy(kiln_ctx *ctx, const gir_node *n, kiln_tensor *dst, int64_t di,
                             const kiln_tensor *src, int64_t si, int rank, const int64_t *dims,
                             const int64_t *strides) {
    if (kiln_numel_dims(rank, dims) <= 0) return KILN_OK;
    /* a contiguous innermost axis is copied as one run */
    int64_t run = 1, idx[KILN_MAX_RANK] = {0}, off = si;
    int outer = rank;
    if (rank > 0 && strides[rank - 1] == 1) run = dims[--outer];
    size_t es = kiln_dtype_size(dst->dtype);
    bool plain = dst->dtype != KILN_STRING && run == 1;
    for (;;) {
        if (plain) {
            copy_one(dst->data, di, src->data, off, es);
        } else {
            kiln_status s = shp_copy(ctx, n, dst, di, src, off, run);
            if (s) return s;
        }
        di += run;
        int d = outer - 1;
        for (; d >= 0; d--) {
            off += strides[d];
            if (++idx[d] < dims[d]) break;
            off -= strides[d] * dims[d];
            idx[d] = 0;
        }
        if (d < 0) break;
    }
    return KILN_OK;
}

int shp_cmp_elem(const kiln_tensor *t, int64_t i, const kiln_tensor *u, int64_t j) {
    kiln_dtype dt = t->dtype;
    if (dt == KILN_STRING) {
        const char *a = ((char *const *)t->data)[i], *b = ((char *const *)u->data)[j];
        int c = strcmp(a ? a : "", b ? b : "");
        return (c > 0) - (c < 0);
    }
    if (kiln_dtype_is_float(dt)) {
        double a = kiln_load_f64(dt, t->data, i), b = kiln_load_f64(dt, u->data, j);
        if (a != a || b != b) return (a != a) - (b != b); /* NaN sorts last */
        return (a > b) - (a < b);
    }
    if (dt == KILN_U64) {
        uint64_t a = ((const uint64_t *)t->data)[i], b = ((const uint64_t *)u->data)[j];
        return (a > b) - (a < b);
    }
    int64_t a = kiln_load_i64(dt, t->data, i), b = kiln_load_i64(dt, u->data, j);
    return (a > b) - (a < b);
}

static void merge_pass(int64_t *idx, int64_t lo, int64_t mid, int64_t hi, int64_t *tmp,
                       shp_cmp_fn cmp, const void *arg) {
    int64_t a = lo, b = mid, k = lo;
    while (a < mid && b < hi) tmp[k++] = cmp(arg, idx[b], idx[a]) < 0 ? idx[b++] : idx[a++];
    while (a < mid) tmp[k++] = idx[a++];
    while (b < hi) tmp[k++] = idx[b++];
    memcpy(idx + lo, tmp + lo, sizeof(int64_t) * (size_t)(hi - lo));
}

void shp_stable_sort(int64_t *idx, int64_t count, int64_t *tmp, shp_cmp_fn cmp, const void *arg) {
    for (int64_t width = 1; width < count; width *= 2)
        for (int64_t lo = 0; lo < count - width; lo += 2 * width) {
            int64_t hi = lo + 2 * width < count ? lo + 2 * width : count;
            merge_pass(idx, lo, lo + width, hi, tmp, cmp, arg);
        }
}
