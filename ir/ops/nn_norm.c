/*
** nn_norm.c — normalizations over rows: LayerNormalization and
** RMSNormalization (trailing axes), InstanceNormalization and
** GroupNormalization (per sample and channel group), MeanVarianceNormalization
** (chosen axes). Statistics are two-pass in double.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

static void moments(const double *v, int64_t count, double *mean, double *var) {
    double s = 0, q = 0;
    for (int64_t i = 0; i < count; i++) s += v[i];
    double m = count ? s / (double)count : 0;
    for (int64_t i = 0; i < count; i++) q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *var = count ? q / (double)count : 0;
}

/* t must broadcast to x's shape without growing it. */
static kiln_status check_fits(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const kiln_tensor *x,
                              const char *what) {
    if (!t) return KILN_OK;
    bool ok = t->rank <= x->rank;
    for (int i = 0; ok && i < t->rank; i++) {
        int64_t d = t->dims[t->rank - 1 - i];
        ok = d == 1 || d == x->dims[x->rank - 1 - i];
    }
    if (ok) return KILN_OK;
    char a[96], b[96];
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s of shape %s does not broadcast to %s", what,
                        kiln_shape_str(t, a, sizeof a), kiln_shape_str(x, b, sizeof b));
}

/* v[i] = t at the broadcast position of element i of shape x (t may be NULL: dflt). */
static kiln_status expand_to(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const kiln_tensor *x,
                             double dflt, double **out) {
    int64_t count = kiln_numel(x), bstr[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    double *v;
    kiln_status s = nn_alloc_f64(ctx, n, count, &v);
    if (s) return s;
    if (t) kiln_broadcast_strides(t, x->rank, x->dims, bstr);
    for (int64_t i = 0; i < count; i++, kiln_index_next(x->rank, x->dims, idx)) {
        int64_t off = 0;
        for (int d = 0; t && d < x->rank; d++) off += idx[d] * bstr[d];
        v[i] = t ? kiln_tensor_f64(t, off) : dflt;
    }
    *out = v;
    return KILN_OK;
}

/* ---- LayerNormalization and RMSNormalization: rows are the axes from `axis` on ---- */

static kiln_status stash_dtype(kiln_ctx *ctx, const gir_node *n, kiln_dtype *dt) {
    int64_t st = gir_attr_int(n, "stash_type", 1);
    if (!kiln_dtype_valid((int)st) || !kiln_dtype_is_float((kiln_dtype)st))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "stash_type %lld is not a float type", (long long)st);
    *dt = (kiln_dtype)st;
    return KILN_OK;
}

static kiln_status infer_rows_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                   kiln_tensor *out, bool rms) {
    const kiln_tensor *x = in[0];
    int axis;
    kiln_dtype st = KILN_F32;
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -1), x->rank, &axis);
    if (!s) s = stash_dtype(ctx, n, &st);
    if (!s) s = check_fits(ctx, n, in[1], x, "Scale");
    if (!s && !rms) s = check_fits(ctx, n, NN_IN(n, in, 2), x, "B");
    if (s) return s;
    kiln_tensor_init(&out[0], x->dtype, x->rank, x->dims);
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < axis ? x->dims[i] : 1;
    for (int k = 1; k < n->n_outputs; k++) kiln_tensor_init(&out[k], st, x->rank, dims);
    return KILN_OK;
}

static kiln_status ref_rows_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out, bool rms) {
    const kiln_tensor *x = in[0];
    int axis;
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    const double *xv = NULL;
    double *sc = NULL, *bi = NULL, *yv = NULL;
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -1), x->rank, &axis);
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = expand_to(ctx, n, in[1], x, 1.0, &sc);
    if (!s) s = expand_to(ctx, n, rms ? NULL : NN_IN(n, in, 2), x, 0.0, &bi);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        int64_t rows = kiln_numel_dims(axis, x->dims), len = kiln_numel_dims(x->rank - axis, x->dims + axis);
        for (int64_t r = 0; r < rows; r++) {
            const double *xr = xv + r * len;
            double mean = 0, var = 0;
            if (rms)
                for (int64_t i = 0; i < len; i++) var += xr[i] * xr[i] / (double)len;
            else
                moments(xr, len, &mean, &var);
            double inv = 1.0 / sqrt(var + eps);
            for (int64_t i = 0; i < len; i++)
                yv[r * len + i] = (xr[i] - mean) * inv * sc[r * len + i] + bi[r * len + i];
            if (n->n_outputs > 1) nn_store_round(&out[1], r, mean);
            if (n->n_outputs > 2) nn_store_round(&out[2], r, inv);
        }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    kiln_free(sc);
    kiln_free(bi);
    return s;
}

kiln_status nn_infer_layer_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    return infer_rows_norm(ctx, n, in, out, false);
}
kiln_status nn_ref_layer_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    return ref_rows_norm(ctx, n, in, out, false);
}
kiln_status nn_infer_rms_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    return infer_rows_norm(ctx, n, in, out, true);
}
kiln_status nn_ref_rms_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    return ref_rows_norm(ctx, n, in, out, true);
}

/* ---- InstanceNormalization and GroupNormalization: rows are (sample, group) ---- */

/* Groups per sample and the length of a scale/bias vector for X. */
static kiln_status group_layout(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                bool group, int64_t *groups, int64_t *params) {
    const kiln_tensor *x = in[0];
    if (x->rank < 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must have rank 2 or more, got %d", x->rank);
    int64_t c = x->dims[1];
    int64_t g = group ? gir_attr_int(n, "num_groups", 0) : c;
    if (g < 1 || c % g)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "num_groups %lld does not divide the %lld channels",
                            (long long)g, (long long)c);
    /* GroupNormalization before opset 21 scales per group, later per channel */
    int64_t p = group && n->opset < 21 ? g : c;
    for (int i = 1; i <= 2; i++)
        if (in[i]->rank != 1 || in[i]->dims[0] != p)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must have shape [%lld]", i == 1 ? "scale" : "B",
                                (long long)p);
    *groups = g;
    *params = p;
    return KILN_OK;
}

static kiln_status infer_group_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out, bool group) {
    int64_t g, p;
    kiln_status s = group_layout(ctx, n, in, group, &g, &p);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

static kiln_status ref_group_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out, bool group) {
    const kiln_tensor *x = in[0];
    int64_t g, p;
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    const double *xv = NULL;
    double *yv = NULL;
    kiln_status s = group_layout(ctx, n, in, group, &g, &p);
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        int64_t c = x->dims[1], sp = kiln_numel_dims(x->rank - 2, x->dims + 2), len = c / g * sp;
        for (int64_t r = 0; r < x->dims[0] * g; r++) {
            double mean, var;
            moments(xv + r * len, len, &mean, &var);
            double inv = 1.0 / sqrt(var + eps);
            for (int64_t i = 0; i < len; i++) {
                int64_t ch = (r % g) * (c / g) + i / sp, pi = p == c ? ch : r % g;
                double v = (xv[r * len + i] - mean) * inv;
                yv[r * len + i] = v * kiln_tensor_f64(in[1], pi) + kiln_tensor_f64(in[2], pi);
            }
        }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    return s;
}

kiln_status nn_infer_instance_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                   kiln_tensor *out) {
    return infer_group_norm(ctx, n, in, out, false);
}
kiln_status nn_ref_instance_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    return ref_group_norm(ctx, n, in, out, false);
}
kiln_status nn_infer_group_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    return infer_group_norm(ctx, n, in, out, true);
}
kiln_status nn_ref_group_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    return ref_group_norm(ctx, n, in, out, true);
}
