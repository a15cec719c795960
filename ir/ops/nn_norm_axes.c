/*
** nn_norm_axes.c — normalizations along chosen axes: LpNormalization (one
** axis), LRN (a window of neighbouring channels) and
** MeanVarianceNormalization (a set of axes).
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

/* ---- LpNormalization ---- */

static kiln_status lpn_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, int *axis, int64_t *p) {
    *p = gir_attr_int(n, "p", 2);
    if (*p != 1 && *p != 2)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "p must be 1 or 2, got %lld", (long long)*p);
    return kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -1), x->rank, axis);
}

kiln_status nn_infer_lp_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    int axis;
    int64_t p;
    kiln_status s = lpn_setup(ctx, n, in[0], &axis, &p);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status nn_ref_lp_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int axis;
    int64_t p;
    const double *xv = NULL;
    double *yv = NULL;
    kiln_status s = lpn_setup(ctx, n, x, &axis, &p);
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        int64_t len = x->dims[axis], st = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
        int64_t rows = len ? kiln_numel(x) / len : 0;
        for (int64_t q = 0; q < rows; q++) {
            int64_t base = (q / st) * len * st + q % st;
            double acc = 0;
            for (int64_t i = 0; i < len; i++) {
                double v = xv[base + i * st];
                acc += p == 1 ? fabs(v) : v * v;
            }
            double norm = p == 1 ? acc : sqrt(acc);
            for (int64_t i = 0; i < len; i++) yv[base + i * st] = norm == 0 ? 0 : xv[base + i * st] / norm;
        }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    return s;
}

/* ---- LRN: across channels, size/2 below (rounded down) and above (rounded up) ---- */

static kiln_status lrn_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x) {
    if (x->rank < 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must have rank 2 or more, got %d", x->rank);
    if (gir_attr_int(n, "size", 0) < 1) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "size must be positive");
    return KILN_OK;
}

kiln_status nn_infer_lrn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    kiln_status s = lrn_check(ctx, n, in[0]);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status nn_ref_lrn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    const double *xv = NULL;
    double *yv = NULL;
    kiln_status s = lrn_check(ctx, n, x);
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        int64_t size = gir_attr_int(n, "size", 1), ch = x->dims[1];
        int64_t sp = kiln_numel_dims(x->rank - 2, x->dims + 2);
        double alpha = gir_attr_float(n, "alpha", 1e-4), beta = gir_attr_float(n, "beta", 0.75);
        double bias = gir_attr_float(n, "bias", 1.0);
        int64_t lo = (size - 1) / 2, hi = size / 2; /* floor and ceil of (size-1)/2 */
        for (int64_t b = 0; b < x->dims[0]; b++)
            for (int64_t c = 0; c < ch; c++)
                for (int64_t i = 0; i < sp; i++) {
                    double sq = 0;
                    for (int64_t k = c - lo; k <= c + hi; k++)
                        if (k >= 0 && k < ch) {
                            double v = xv[(b * ch + k) * sp + i];
                            sq += v * v;
                        }
                    int64_t at = (b * ch + c) * sp + i;
                    yv[at] = xv[at] / pow(bias + alpha / (double)size * sq, beta);
                }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    return s;
}

/* ---- MeanVarianceNormalization: (x - mean) / (std + 1e-9) over `axes` ---- */

static kiln_status mvn_axes(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, bool *reduce) {
    const int64_t *a;
    static const int64_t dflt[] = {0, 2, 3};
    int k = gir_attr_ints(n, "axes", &a);
    if (k < 0) a = dflt, k = 3;
    memset(reduce, 0, sizeof(bool) * KILN_MAX_RANK);
    for (int i = 0; i < k; i++) {
        int ax;
        kiln_status s = kiln_op_axis(ctx, n, a[i], x->rank, &ax);
        if (s) return s;
        reduce[ax] = true;
    }
    return KILN_OK;
}

kiln_status nn_infer_mvn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    bool reduce[KILN_MAX_RANK];
    kiln_status s = mvn_axes(ctx, n, in[0], reduce);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

/* Flat index, in the kept (non-reduced) dims, of each element: its group. */
static int64_t mvn_group(const kiln_tensor *x, const bool *reduce, const int64_t *idx) {
    int64_t g = 0;
    for (int d = 0; d < x->rank; d++)
        if (!reduce[d]) g = g * x->dims[d] + idx[d];
    return g;
}

kiln_status nn_ref_mvn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    bool reduce[KILN_MAX_RANK];
    int64_t count = kiln_numel(x), groups = 1, per = 1;
    const double *xv = NULL;
    double *yv = NULL, *st = NULL;
    kiln_status s = mvn_axes(ctx, n, x, reduce);
    for (int d = 0; d < x->rank; d++) *(reduce[d] ? &per : &groups) *= x->dims[d];
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) s = nn_alloc_f64(ctx, n, 2 * groups, &st);
    if (!s) {
        double *mean = st, *var = st + groups;
        int64_t idx[KILN_MAX_RANK] = {0};
        for (int64_t i = 0; i < count; i++, kiln_index_next(x->rank, x->dims, idx))
            mean[mvn_group(x, reduce, idx)] += xv[i] / (double)per;
        memset(idx, 0, sizeof idx);
        for (int64_t i = 0; i < count; i++, kiln_index_next(x->rank, x->dims, idx)) {
            double d = xv[i] - mean[mvn_group(x, reduce, idx)];
            var[mvn_group(x, reduce, idx)] += d * d / (double)per;
        }
        memset(idx, 0, sizeof idx);
        for (int64_t i = 0; i < count; i++, kiln_index_next(x->rank, x->dims, idx)) {
            int64_t g = mvn_group(x, reduce, idx);
            yv[i] = (xv[i] - mean[g]) / (sqrt(var[g]) + 1e-9);
        }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    kiln_free(st);
    return s;
}
