/*
** tensor_select.c — ops whose output depends on the values they select:
** Compress, NonZero, OneHot, TopK.
*/
#include <string.h>

#include "shape_ops.h"

/* ---- Compress ---- */

static kiln_status compress_count(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  int *axis, int64_t *kept) {
    const kiln_tensor *x = in[0], *c = in[1];
    const gir_attr *a = gir_attr_find(n, "axis");
    kiln_status s = KILN_OK;
    *axis = -1;
    if (a) s = kiln_op_axis(ctx, n, a->i, x->rank, axis);
    if (s) return s;
    if (c->dtype != KILN_BOOL || c->rank != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "condition must be a 1-D bool tensor");
    int64_t dim = *axis < 0 ? kiln_numel(x) : x->dims[*axis];
    if (c->dims[0] > dim)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "condition has %lld entries for extent %lld",
                            (long long)c->dims[0], (long long)dim);
    if (c->dims[0] && !c->data) return KILN_ERR_DYNAMIC;
    *kept = 0;
    for (int64_t i = 0; i < c->dims[0]; i++) *kept += ((const uint8_t *)c->data)[i] != 0;
    return KILN_OK;
}

kiln_status tns_compress_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    int axis;
    int64_t kept;
    kiln_status s = compress_count(ctx, n, in, &axis, &kept);
    if (s) return s;
    if (axis < 0) {
        kiln_tensor_init(out, in[0]->dtype, 1, &kept);
    } else {
        kiln_tensor_init(out, in[0]->dtype, in[0]->rank, in[0]->dims);
        out->dims[axis] = kept;
    }
    return KILN_OK;
}

kiln_status tns_compress_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    const kiln_tensor *x = in[0], *c = in[1];
    int axis;
    int64_t kept;
    kiln_status s = compress_count(ctx, n, in, &axis, &kept);
    if (s) return s;
    int64_t outer = axis < 0 ? 1 : kiln_numel_dims(axis, x->dims);
    int64_t dim = axis < 0 ? kiln_numel(x) : x->dims[axis];
    int64_t inner = axis < 0 ? 1 : kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1), o = 0;
    for (int64_t i = 0; i < outer; i++)
        for (int64_t k = 0; k < c->dims[0]; k++) {
            if (!((const uint8_t *)c->data)[k]) continue;
            s = shp_copy(ctx, n, &out[0], o, x, (i * dim + k) * inner, inner);
            if (s) return s;
            o += inner;
        }
    return KILN_OK;
}

/* ---- NonZero ---- */

static bool is_nonzero(const kiln_tensor *t, int64_t i) {
    if (kiln_dtype_is_float(t->dtype)) return kiln_load_f64(t->dtype, t->data, i) != 0;
    return kiln_load_i64(t->dtype, t->data, i) != 0;
}

kiln_status tns_nonzero_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    int64_t total = kiln_numel(in[0]), count = 0;
    if (!(KILN_DT(in[0]->dtype) & (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL))))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(in[0]->dtype));
    if (total && !in[0]->data) return KILN_ERR_DYNAMIC;
    for (int64_t i = 0; i < total; i++) count += is_nonzero(in[0], i);
    int64_t dims[2] = {in[0]->rank ? in[0]->rank : 1, count};
    kiln_tensor_init(out, KILN_I64, 2, dims);
    return KILN_OK;
}

kiln_status tns_nonzero_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t total = kiln_numel(x), count = out[0].dims[1], k = 0, idx[KILN_MAX_RANK] = {0};
    int64_t *o = out[0].data;
    for (int64_t i = 0; i < total; i++, kiln_index_next(x->rank, x->dims, idx)) {
        if (!is_nonzero(x, i)) continue;
        for (int d = 0; d < x->rank; d++) o[d * count + k] = idx[d];
        k++;
    }
    return KILN_OK;
}

/* ---- OneHot ---- */

static kiln_status onehot_depth(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, int64_t *depth) {
    if (!(KILN_DT(t->dtype) & KILN_DT_NUMERIC))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "depth must be numeric, got %s", kiln_dtype_name(t->dtype));
    if (kiln_numel(t) != 1) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "depth must hold one value");
    if (!t->data) return KILN_ERR_DYNAMIC;
    double d = kiln_dtype_is_float(t->dtype) ? kiln_tensor_f64(t, 0) : (double)kiln_tensor_i64(t, 0);
    if (!(d >= 1 && d <= 1e12)) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "depth %g is invalid", d);
    *depth = (int64_t)d;
    return KILN_OK;
}

kiln_status tns_onehot_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t depth, axis = gir_attr_int(n, "axis", -1);
    kiln_status s = shp_check_rank(ctx, n, (int64_t)x->rank + 1);
    if (s) return s;
    if (axis < -(x->rank + 1) || axis > x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is out of range", (long long)axis);
    if (kiln_numel(in[2]) != 2)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "values must hold two elements [off, on]");
    s = onehot_depth(ctx, n, in[1], &depth);
    if (s) return s;
    if (axis < 0) axis += x->rank + 1;
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0, k = 0; d <= x->rank; d++) dims[d] = d == axis ? depth : x->dims[k++];
    kiln_tensor_init(out, in[2]->dtype, x->rank + 1, dims);
    return KILN_OK;
}

kiln_status tns_onehot_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t depth, axis = gir_attr_int(n, "axis", -1), total = kiln_numel(&out[0]);
    kiln_status s = onehot_depth(ctx, n, in[1], &depth);
    if (s) return s;
    if (axis < 0) axis += x->rank + 1;
    for (int64_t i = 0; i < total; i++)
        if ((s = shp_copy(ctx, n, &out[0], i, in[2], 0, 1))) return s;
    int64_t inner = kiln_numel_dims(x->rank - (int)axis, x->dims + axis), count = kiln_numel(x);
    for (int64_t i = 0; i < count; i++) {
        double v = kiln_dtype_is_float(x->dtype) ? kiln_tensor_f64(x, i) : (double)kiln_tensor_i64(x, i);
        if (!(v > -(double)depth - 1 && v < (double)depth)) continue;
        int64_t k = (int64_t)v;
        if (k < 0) k += depth;
        if (k < 0 || k >= depth) continue;
        int64_t o = i / inner, r = i % inner;
        if ((s = shp_copy(ctx, n, &out[0], (o * depth + k) * inner + r, in[2], 1, 1))) return s;
    }
    return KILN_OK;
}

/* ---- TopK ---- */

static kiln_status topk_args(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             int *axis, int64_t *k) {
    const kiln_tensor *x = in[0];
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -1), x->rank, axis);
    if (s) return s;
    if (x->rank == 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must have rank >= 1");
    const gir_attr *a = gir_attr_find(n, "k");
    if (a) {
        *k = a->i;
    } else {
        const kiln_tensor *kt = shp_in(n, in, 1);
        if (!kt) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "k is not given");
        s = shp_read_scalar_int(ctx, n, kt, "k", k);
        if (s) return s;
    }
    if (*k < 0 || *k > x->dims[*axis])
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "k %lld is out of range for extent %lld",
                            (long long)*k, (long long)x->dims[*axis]);
    return KILN_OK;
}

kiln_status tns_topk_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    int axis;
    int64_t k;
    kiln_status s = topk_args(ctx, n, in, &axis, &k);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, in[0]->dims);
    out[0].dims[axis] = k;
    kiln_tensor_init(&out[1], KILN_I64, in[0]->rank, out[0].dims);
    return KILN_OK;
}

typedef struct topk_arg {
    const kiln_tensor *x;
    int64_t base, inner;
    bool largest;
} topk_arg;

static int topk_cmp(const void *p, int64_t a, int64_t b) {
    const topk_arg *t = p;
    int c = shp_cmp_elem(t->x, t->base + a * t->inner, t->x, t->base + b * t->inner);
    return t->largest ? -c : c;
}

kiln_status tns_topk_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int axis;
    int64_t k;
    kiln_status s = topk_args(ctx, n, in, &axis, &k);
    if (s) return s;
    int64_t dim = x->dims[axis], outer = kiln_numel_dims(axis, x->dims);
    int64_t inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
    if (kiln_numel(x) == 0 || k == 0) return KILN_OK;
    int64_t *idx = kiln_malloc(sizeof(int64_t) * (size_t)(2 * dim + 1));
    if (!idx) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    topk_arg arg = {x, 0, inner, gir_attr_int(n, "largest", 1) != 0};
    for (int64_t o = 0; o < outer && !s; o++)
        for (int64_t i = 0; i < inner && !s; i++) {
            arg.base = o * dim * inner + i;
            for (int64_t j = 0; j < dim; j++) idx[j] = j;
            shp_stable_sort(idx, dim, idx + dim, topk_cmp, &arg);
            for (int64_t j = 0; j < k && !s; j++) {
                int64_t dst = (o * k + j) * inner + i;
                s = shp_copy(ctx, n, &out[0], dst, x, arg.base + idx[j] * inner, 1);
                ((int64_t *)out[1].data)[dst] = idx[j];
            }
        }
    kiln_free(idx);
    return s;
}
