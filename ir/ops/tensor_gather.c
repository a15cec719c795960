/*
** tensor_gather.c — ops that read or write at positions held in an index
** tensor: Gather, GatherElements, GatherND, Scatter, ScatterElements,
** ScatterND, TensorScatter.
*/
#include <string.h>

#include "shape_ops.h"

static kiln_status index_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t) {
    if (t->dtype == KILN_I32 || t->dtype == KILN_I64) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "indices must be i32 or i64, got %s",
                        kiln_dtype_name(t->dtype));
}

/* Reads index i of `idx` for an axis of extent `dim`, allowing negatives. */
static kiln_status index_at(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *idx, int64_t i,
                            int64_t dim, int64_t *out) {
    int64_t v = kiln_tensor_i64(idx, i);
    if (v < -dim || v >= dim)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "index %lld is out of range for extent %lld",
                            (long long)v, (long long)dim);
    *out = v < 0 ? v + dim : v;
    return KILN_OK;
}

/* ---- Gather ---- */

kiln_status tns_gather_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    const kiln_tensor *x = in[0], *idx = in[1];
    int axis;
    kiln_status s = index_dtype(ctx, n, idx);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), x->rank, &axis);
    if (!s && x->rank == 0) s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot gather from a scalar");
    if (!s) s = shp_check_rank(ctx, n, (int64_t)x->rank - 1 + idx->rank);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    int r = 0;
    for (int d = 0; d < axis; d++) dims[r++] = x->dims[d];
    for (int d = 0; d < idx->rank; d++) dims[r++] = idx->dims[d];
    for (int d = axis + 1; d < x->rank; d++) dims[r++] = x->dims[d];
    kiln_tensor_init(out, x->dtype, r, dims);
    return KILN_OK;
}

kiln_status tns_gather_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0], *idx = in[1];
    int axis;
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), x->rank, &axis);
    if (s) return s;
    int64_t outer = kiln_numel_dims(axis, x->dims), dim = x->dims[axis];
    int64_t inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1), ni = kiln_numel(idx);
    for (int64_t j = 0; j < ni; j++) {
        int64_t k = 0;
        s = index_at(ctx, n, idx, j, dim, &k);
        for (int64_t o = 0; !s && o < outer; o++)
            s = shp_copy(ctx, n, &out[0], (o * ni + j) * inner, x, (o * dim + k) * inner, inner);
        if (s) return s;
    }
    return KILN_OK;
}

/* ---- GatherElements ---- */

static kiln_status same_rank_indices(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                     const kiln_tensor *idx, int *axis) {
    kiln_status s = index_dtype(ctx, n, idx);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), x->rank, axis);
    if (s) return s;
    if (idx->rank != x->rank || x->rank == 0)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "indices have rank %d, data rank %d", idx->rank, x->rank);
    return KILN_OK;
}

/* Offset in x of element i of idx, its axis coordinate replaced by the
** index value; other coordinates must lie inside x. */
static kiln_status elem_offset(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                               const kiln_tensor *idx, int axis, int64_t i, const int64_t *pos,
                               int64_t *off) {
    int64_t st[KILN_MAX_RANK], o = 0;
    kiln_strides(x->rank, x->dims, st);
    for (int d = 0; d < x->rank; d++) {
        int64_t c = pos[d];
        if (d == axis) {
            kiln_status s = index_at(ctx, n, idx, i, x->dims[d], &c);
            if (s) return s;
        } else if (c >= x->dims[d]) {
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "indices extent exceeds data on axis %d", d);
        }
        o += c * st[d];
    }
    *off = o;
    return KILN_OK;
}

kiln_status tns_gather_el_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    int axis;
    kiln_status s = same_rank_indices(ctx, n, in[0], in[1], &axis);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, in[1]->rank, in[1]->dims);
    return KILN_OK;
}

kiln_status tns_gather_el_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    int axis;
    int64_t pos[KILN_MAX_RANK] = {0}, total = kiln_numel(in[1]), off;
    kiln_status s = same_rank_indices(ctx, n, in[0], in[1], &axis);
    for (int64_t i = 0; !s && i < total; i++, kiln_index_next(in[1]->rank, in[1]->dims, pos)) {
        s = elem_offset(ctx, n, in[0], in[1], axis, i, pos, &off);
        if (!s) s = shp_copy(ctx, n, &out[0], i, in[0], off, 1);
    }
    return s;
}

/* ---- GatherND ---- */

typedef struct nd_plan {
    int b, last;                    /* batch dims, index tuple length */
    int64_t nb, tuples, per_batch;  /* batches, tuples per batch, data elements per batch */
    int64_t chunk;                  /* elements copied per tuple */
} nd_plan;

static kiln_status nd_make(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                           const kiln_tensor *idx, int64_t b, nd_plan *p) {
    kiln_status s = index_dtype(ctx, n, idx);
    if (s) return s;
    if (x->rank < 1 || idx->rank < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "data and indices must have rank >= 1");
    if (b < 0 || b >= idx->rank || b >= x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "batch_dims %lld is invalid", (long long)b);
    for (int d = 0; d < b; d++)
        if (x->dims[d] != idx->dims[d])
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "batch dim %d differs between data and indices", d);
    int64_t last = idx->dims[idx->rank - 1];
    if (last < 1 || last > x->rank - b)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "index tuples of length %lld do not fit data rank %d",
                            (long long)last, x->rank);
    p->b = (int)b;
    p->last = (int)last;
    p->nb = kiln_numel_dims(p->b, x->dims);
    p->tuples = kiln_numel_dims(idx->rank - 1 - p->b, idx->dims + p->b);
    p->per_batch = kiln_numel_dims(x->rank - p->b, x->dims + p->b);
    p->chunk = kiln_numel_dims(x->rank - p->b - p->last, x->dims + p->b + p->last);
    return KILN_OK;
}

/* Data offset of tuple t (counted over all batches). */
static kiln_status nd_offset(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                             const kiln_tensor *idx, const nd_plan *p, int64_t t, int64_t *off) {
    int64_t st[KILN_MAX_RANK], o = (p->tuples ? t / p->tuples : 0) * p->per_batch;
    kiln_strides(x->rank, x->dims, st);
    for (int k = 0; k < p->last; k++) {
        int64_t c = 0;
        kiln_status s = index_at(ctx, n, idx, t * p->last + k, x->dims[p->b + k], &c);
        if (s) return s;
        o += c * st[p->b + k];
    }
    *off = o;
    return KILN_OK;
}

kiln_status tns_gather_nd_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    const kiln_tensor *x = in[0], *idx = in[1];
    nd_plan p;
    kiln_status s = nd_make(ctx, n, x, idx, gir_attr_int(n, "batch_dims", 0), &p);
    if (!s) s = shp_check_rank(ctx, n, (int64_t)idx->rank - 1 + x->rank - p.b - p.last);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    int r = 0;
    for (int d = 0; d < idx->rank - 1; d++) dims[r++] = idx->dims[d];
    for (int d = p.b + p.last; d < x->rank; d++) dims[r++] = x->dims[d];
    kiln_tensor_init(out, x->dtype, r, dims);
    return KILN_OK;
}

kiln_status tns_gather_nd_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    nd_plan p;
    kiln_status s = nd_make(ctx, n, in[0], in[1], gir_attr_int(n, "batch_dims", 0), &p);
    for (int64_t t = 0; !s && t < p.nb * p.tuples; t++) {
        int64_t off;
        s = nd_offset(ctx, n, in[0], in[1], &p, t, &off);
        if (!s) s = shp_copy(ctx, n, &out[0], t * p.chunk, in[0], off, p.chunk);
    }
    return s;
}

/* ---- Scatter, ScatterElements, ScatterND ---- */

typedef enum scat_red { RED_NONE, RED_ADD, RED_MUL, RED_MAX, RED_MIN } scat_red;

static kiln_status scat_reduction(kiln_ctx *ctx, const gir_node *n, scat_red *r) {
    static const char *const names[] = {"none", "add", "mul", "max", "min"};
    const char *s = gir_attr_string(n, "reduction", "none");
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *r = (scat_red)i;
            return KILN_OK;
        }
    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "reduction '%s' is not known", s);
}

/* dst[di] = dst[di] (op) src[si], exact for every integer width. */
static void scat_combine(scat_red r, kiln_tensor *dst, int64_t di, const kiln_tensor *src, int64_t si) {
    kiln_dtype t = dst->dtype;
    if (kiln_dtype_is_float(t)) {
        double a = kiln_load_f64(t, dst->data, di), b = kiln_load_f64(t, src->data, si);
        double v = r == RED_ADD ? a + b : r == RED_MUL ? a * b : r == RED_MAX ? (b > a ? b : a)
                                                                              : (b < a ? b : a);
        kiln_store_f64(t, dst->data, di, v);
    } else if (t == KILN_U64) {
        uint64_t a = ((uint64_t *)dst->data)[di], b = ((const uint64_t *)src->data)[si];
        ((uint64_t *)dst->data)[di] = r == RED_ADD ? a + b : r == RED_MUL ? a * b
                                    : r == RED_MAX ? (b > a ? b : a) : (b < a ? b : a);
    } else {
        int64_t a = kiln_load_i64(t, dst->data, di), b = kiln_load_i64(t, src->data, si);
        int64_t v = r == RED_ADD ? (int64_t)((uint64_t)a + (uint64_t)b)
                  : r == RED_MUL ? (int64_t)((uint64_t)a * (uint64_t)b)
                  : r == RED_MAX ? (b > a ? b : a) : (b < a ? b : a);
        kiln_store_i64(t, dst->data, di, v);
    }
}

static kiln_status scat_apply(kiln_ctx *ctx, const gir_node *n, scat_red r, kiln_tensor *dst,
                              int64_t di, const kiln_tensor *src, int64_t si, int64_t count) {
    if (r == RED_NONE) return shp_copy(ctx, n, dst, di, src, si, count);
    for (int64_t k = 0; k < count; k++) scat_combine(r, dst, di + k, src, si + k);
    return KILN_OK;
}

static kiln_status scat_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              scat_red *r) {
    kiln_status s = scat_reduction(ctx, n, r);
    if (!s) s = shp_same_dtype(ctx, n, in[2], in[0]->dtype, "updates");
    if (!s && *r != RED_NONE && !(KILN_DT(in[0]->dtype) & (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL))))
        s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "reductions need numeric data");
    return s;
}

kiln_status tns_scatter_el_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    int axis;
    scat_red r;
    kiln_status s = scat_check(ctx, n, in, &r);
    if (!s) s = same_rank_indices(ctx, n, in[0], in[1], &axis);
    if (s) return s;
    if (!kiln_tensor_same_shape(in[1], in[2]))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "indices and updates differ in shape");
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status tns_scatter_el_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    int axis;
    scat_red r;
    int64_t pos[KILN_MAX_RANK] = {0}, total = kiln_numel(in[1]), off;
    kiln_status s = scat_check(ctx, n, in, &r);
    if (!s) s = same_rank_indices(ctx, n, in[0], in[1], &axis);
    if (!s) s = shp_copy(ctx, n, &out[0], 0, in[0], 0, kiln_numel(in[0]));
    for (int64_t i = 0; !s && i < total; i++, kiln_index_next(in[1]->rank, in[1]->dims, pos)) {
        s = elem_offset(ctx, n, in[0], in[1], axis, i, pos, &off);
        if (!s) s = scat_apply(ctx, n, r, &out[0], off, in[2], i, 1);
    }
    return s;
}

/* updates must have shape indices.shape[:-1] + data.shape[k:]. */
static kiln_status scatter_nd_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    nd_plan *p) {
    scat_red r;
    const kiln_tensor *x = in[0], *idx = in[1], *up = in[2];
    kiln_status s = scat_check(ctx, n, in, &r);
    if (!s) s = index_dtype(ctx, n, idx);
    if (s) return s;
    if (idx->rank < 1 || x->rank < 1 || idx->dims[idx->rank - 1] < 1 || idx->dims[idx->rank - 1] > x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "index tuples do not fit data of rank %d", x->rank);
    s = nd_make(ctx, n, x, idx, 0, p);
    if (s) return s;
    bool ok = up->rank == idx->rank - 1 + x->rank - p->last;
    for (int d = 0; ok && d < idx->rank - 1; d++) ok = up->dims[d] == idx->dims[d];
    for (int d = p->last; ok && d < x->rank; d++) ok = up->dims[idx->rank - 1 + d - p->last] == x->dims[d];
    if (!ok) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "updates have the wrong shape");
    return KILN_OK;
}

kiln_status tns_scatter_nd_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    nd_plan p;
    kiln_status s = scatter_nd_check(ctx, n, in, &p);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status tns_scatter_nd_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    nd_plan p;
    scat_red r = RED_NONE;
    kiln_status s = scatter_nd_check(ctx, n, in, &p);
    if (!s) s = scat_reduction(ctx, n, &r);
    if (!s) s = shp_copy(ctx, n, &out[0], 0, in[0], 0, kiln_numel(in[0]));
    for (int64_t t = 0; !s && t < p.nb * p.tuples; t++) {
        int64_t off;
        s = nd_offset(ctx, n, in[0], in[1], &p, t, &off);
        if (!s) s = scat_apply(ctx, n, r, &out[0], off, in[2], t * p.chunk, p.chunk);
    }
    return s;
}

/* ---- TensorScatter: a KV-cache update along a sequence axis ---- */

static kiln_status tscat_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               int *axis, bool *circular) {
    const kiln_tensor *past = in[0], *up = in[1], *wi = shp_in(n, in, 2);
    const char *mode = gir_attr_string(n, "mode", "linear");
    kiln_status s = shp_same_dtype(ctx, n, up, past->dtype, "update");
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -2), past->rank, axis);
    if (s) return s;
    if (*axis == 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the sequence axis cannot be the batch axis");
    if (strcmp(mode, "linear") && strcmp(mode, "circular"))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "mode '%s' is not linear or circular", mode);
    *circular = mode[0] == 'c';
    bool ok = up->rank == past->rank && up->dims[*axis] <= past->dims[*axis];
    for (int d = 0; ok && d < past->rank; d++) ok = d == *axis || up->dims[d] == past->dims[d];
    if (!ok) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "update does not match the cache off the sequence axis");
    if (wi && (wi->dtype != KILN_I64 || wi->rank != 1 || wi->dims[0] != past->dims[0]))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "write_indices must be i64 of shape [batch]");
    return KILN_OK;
}

kiln_status tns_tscat_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    int axis;
    bool circ;
    kiln_status s = tscat_check(ctx, n, in, &axis, &circ);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status tns_tscat_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *past = in[0], *up = in[1], *wi = shp_in(n, in, 2);
    int axis;
    bool circ;
    kiln_status s = tscat_check(ctx, n, in, &axis, &circ);
    if (!s) s = shp_copy(ctx, n, &out[0], 0, past, 0, kiln_numel(past));
    if (s) return s;
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, total = kiln_numel(up), max = past->dims[axis];
    kiln_strides(past->rank, past->dims, st);
    for (int64_t i = 0; i < total; i++, kiln_index_next(up->rank, up->dims, idx)) {
        int64_t w = wi ? ((const int64_t *)wi->data)[idx[0]] : 0, pos = w + idx[axis];
        if (circ && w >= 0) pos %= max;
        if (w < 0 || pos >= max)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "write index %lld does not fit the cache",
                                (long long)w);
        int64_t off = 0;
        for (int d = 0; d < up->rank; d++) off += (d == axis ? pos : idx[d]) * st[d];
        if ((s = shp_copy(ctx, n, &out[0], off, up, i, 1))) return s;
    }
    return KILN_OK;
}
