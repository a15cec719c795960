/*
** tensor_scan.c — ops that walk an axis or a matrix: CumSum, CumProd, Trilu,
** ReverseSequence.
*/
#include <string.h>

#include "shape_ops.h"

/* ---- CumSum, CumProd ---- */

static kiln_status cumsum_axis(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int *axis) {
    int64_t a;
    kiln_status s = shp_read_scalar_int(ctx, n, in[1], "axis", &a);
    if (s) return s;
    if (in[0]->rank == 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must have rank >= 1");
    return kiln_op_axis(ctx, n, a, in[0]->rank, axis);
}

kiln_status tns_cumsum_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    int axis;
    kiln_status s = cumsum_axis(ctx, n, in, &axis);
    if (s && s != KILN_ERR_DYNAMIC) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status tns_cumsum_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int axis;
    kiln_status s = cumsum_axis(ctx, n, in, &axis);
    if (s) return s;
    bool excl = gir_attr_int(n, "exclusive", 0) != 0, rev = gir_attr_int(n, "reverse", 0) != 0;
    bool flt = kiln_dtype_is_float(x->dtype), prod = !strcmp(n->op->name, "CumProd");
    int64_t dim = x->dims[axis], outer = kiln_numel_dims(axis, x->dims);
    int64_t inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            double fs = prod;
            uint64_t is = prod; /* wraps like the integer type would */
            for (int64_t j = 0; j < dim; j++) {
                int64_t at = (o * dim + (rev ? dim - 1 - j : j)) * inner + i;
                if (excl) {
                    if (flt) kiln_store_f64(x->dtype, out[0].data, at, fs);
                    else kiln_store_i64(x->dtype, out[0].data, at, (int64_t)is);
                }
                double fv = flt ? kiln_load_f64(x->dtype, x->data, at) : 0;
                uint64_t iv = flt ? 0 : (uint64_t)kiln_load_i64(x->dtype, x->data, at);
                if (prod) {
                    fs *= fv;
                    is *= iv;
                } else {
                    fs += fv;
                    is += iv;
                }
                if (!excl) {
                    if (flt) kiln_store_f64(x->dtype, out[0].data, at, fs);
                    else kiln_store_i64(x->dtype, out[0].data, at, (int64_t)is);
                }
            }
        }
    return KILN_OK;
}

/* ---- Trilu ---- */

static kiln_status trilu_k(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int64_t *k) {
    const kiln_tensor *kt = shp_in(n, in, 1);
    *k = 0;
    if (in[0]->rank < 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must have rank >= 2");
    return kt ? shp_read_scalar_int(ctx, n, kt, "k", k) : KILN_OK;
}

kiln_status tns_trilu_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    int64_t k;
    kiln_status s = trilu_k(ctx, n, in, &k);
    if (s && s != KILN_ERR_DYNAMIC) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status tns_trilu_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t k;
    kiln_status s = trilu_k(ctx, n, in, &k);
    if (s) return s;
    bool upper = gir_attr_int(n, "upper", 1) != 0;
    int64_t rows = x->dims[x->rank - 2], cols = x->dims[x->rank - 1], total = kiln_numel(x);
    for (int64_t e = 0; e < total; e++) {
        int64_t j = e % cols, i = (e / cols) % rows, diff = j - i;
        if (upper ? diff >= k : diff <= k)
            if ((s = shp_copy(ctx, n, &out[0], e, x, e, 1))) return s;
    }
    return KILN_OK;
}

/* ---- ReverseSequence ---- */

static kiln_status revseq_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                int *bax, int *tax) {
    const kiln_tensor *x = in[0], *lens = in[1];
    int64_t b = gir_attr_int(n, "batch_axis", 1), t = gir_attr_int(n, "time_axis", 0);
    if (x->rank < 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must have rank >= 2");
    if ((b != 0 && b != 1) || (t != 0 && t != 1) || b == t)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "batch_axis and time_axis must be 0 and 1");
    if (!kiln_dtype_is_int(lens->dtype) || lens->rank != 1 || lens->dims[0] != x->dims[b])
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "sequence_lens must be 1-D ints, one per batch");
    *bax = (int)b;
    *tax = (int)t;
    return KILN_OK;
}

kiln_status tns_revseq_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    int b, t;
    kiln_status s = revseq_check(ctx, n, in, &b, &t);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status tns_revseq_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int b, t;
    kiln_status s = revseq_check(ctx, n, in, &b, &t);
    if (s) return s;
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, total = kiln_numel(x);
    kiln_strides(x->rank, x->dims, st);
    for (int64_t e = 0; e < total; e++, kiln_index_next(x->rank, x->dims, idx)) {
        int64_t len = kiln_tensor_i64(in[1], idx[b]), src = e;
        if (len < 0 || len > x->dims[t])
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "sequence length %lld is out of range",
                                (long long)len);
        if (idx[t] < len) src = e + (len - 1 - 2 * idx[t]) * st[t];
        if ((s = shp_copy(ctx, n, &out[0], e, x, src, 1))) return s;
    }
    return KILN_OK;
}
