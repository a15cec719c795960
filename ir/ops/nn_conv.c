/*
** nn_conv.c — Conv, ConvInteger and QLinearConv: one geometry, one kernel
** on doubles (exact for the integer forms: products of 8-bit values summed
** stay far below 2^53).
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

/* Checks X [N, C, ...] against W [M, C/group, k...] and fills the window. */
static kiln_status conv_geometry(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                 const kiln_tensor *w, nn_window *win, int64_t *group) {
    int64_t g = gir_attr_int(n, "group", 1);
    if (x->rank < 3)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must have rank 3 or more, got %d", x->rank);
    if (w->rank != x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "W has rank %d, X has rank %d", w->rank, x->rank);
    if (g < 1 || x->dims[1] % g || w->dims[0] % g)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "group %lld does not divide the input channels %lld and output channels %lld",
                            (long long)g, (long long)x->dims[1], (long long)w->dims[0]);
    if (w->dims[1] * g != x->dims[1])
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "W has %lld input channels per group, X has %lld channels in %lld groups",
                            (long long)w->dims[1], (long long)x->dims[1], (long long)g);
    int64_t kernel[KILN_MAX_RANK];
    kiln_status s = nn_kernel_shape(ctx, n, x->rank - 2, w->dims + 2, kernel);
    if (!s) s = nn_window_init(ctx, n, x, kernel, false, win);
    if (s) return s;
    *group = g;
    return KILN_OK;
}

static void conv_out_shape(const kiln_tensor *x, const kiln_tensor *w, const nn_window *win,
                           kiln_dtype dt, kiln_tensor *out) {
    int64_t dims[KILN_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = w->dims[0];
    memcpy(dims + 2, win->out, sizeof(int64_t) * (size_t)win->nsp);
    kiln_tensor_init(out, dt, x->rank, dims);
}

/* A per-output-channel vector (bias, zero point, scale) must be [M] or a scalar. */
static kiln_status check_channel_vec(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                                     int64_t m, bool scalar_ok, const char *what) {
    if (!t) return KILN_OK;
    int64_t k = kiln_numel(t);
    if ((t->rank == 1 && k == m) || (scalar_ok && k == 1 && t->rank <= 1)) return KILN_OK;
    char buf[96];
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s has shape %s, expected [%lld]%s", what,
                        kiln_shape_str(t, buf, sizeof buf), (long long)m, scalar_ok ? " or a scalar" : "");
}

kiln_status nn_infer_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[1], *b = NN_IN(n, in, 2);
    nn_window win;
    int64_t g;
    kiln_status s = nn_check_same_dtype(ctx, n, x, w, "W");
    if (!s) s = nn_check_same_dtype(ctx, n, x, b, "B");
    if (!s) s = conv_geometry(ctx, n, x, w, &win, &g);
    if (!s) s = check_channel_vec(ctx, n, b, w->dims[0], false, "B");
    if (s) return s;
    conv_out_shape(x, w, &win, x->dtype, &out[0]);
    return KILN_OK;
}

kiln_status nn_ref_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[1], *b = NN_IN(n, in, 2);
    nn_conv_args a = {0};
    nn_window win;
    const double *xv = NULL, *wv = NULL, *bv = NULL;
    double *yv = NULL;
    kiln_status s = conv_geometry(ctx, n, x, w, &win, &a.group);
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = nn_read_f64(ctx, n, w, &wv);
    if (!s) s = nn_read_f64(ctx, n, b, &bv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        a.x = xv, a.w = wv, a.b = bv, a.y = yv, a.win = &win;
        a.batch = x->dims[0], a.in_ch = x->dims[1], a.out_ch = w->dims[0];
        s = nn_conv_core(ctx, n, &a);
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    nn_release_f64(w, wv);
    nn_release_f64(b, bv);
    return s;
}

/* ---- the quantized forms ---- */

static kiln_status check_quant_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                                     const char *what) {
    if (!t || t->dtype == KILN_U8 || t->dtype == KILN_I8) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "%s must be int8 or uint8, got %s", what,
                        kiln_dtype_name(t->dtype));
}

/* Loads t minus its zero point into a double buffer. A per-channel zero point
** (one value per leading-dim slice) applies to each slice. */
static kiln_status load_shifted(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                                const kiln_tensor *zp, double **out) {
    int64_t count = kiln_numel(t);
    double *v;
    kiln_status s = nn_alloc_f64(ctx, n, count, &v);
    if (s) return s;
    int64_t nz = zp ? kiln_numel(zp) : 0;
    int64_t per = nz > 1 && t->dims[0] ? count / t->dims[0] : count;
    for (int64_t i = 0; i < count; i++) {
        double z = nz ? kiln_tensor_f64(zp, nz > 1 ? i / per : 0) : 0.0;
        v[i] = kiln_tensor_f64(t, i) - z;
    }
    *out = v;
    return KILN_OK;
}

kiln_status nn_infer_conv_integer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[1], *xz = NN_IN(n, in, 2), *wz = NN_IN(n, in, 3);
    nn_window win;
    int64_t g;
    kiln_status s = check_quant_dtype(ctx, n, w, "w");
    if (!s) s = nn_check_same_dtype(ctx, n, x, xz, "x_zero_point");
    if (!s) s = nn_check_same_dtype(ctx, n, w, wz, "w_zero_point");
    if (!s) s = conv_geometry(ctx, n, x, w, &win, &g);
    if (!s) s = check_channel_vec(ctx, n, xz, 1, true, "x_zero_point");
    if (!s) s = check_channel_vec(ctx, n, wz, w->dims[0], true, "w_zero_point");
    if (s) return s;
    conv_out_shape(x, w, &win, KILN_I32, &out[0]);
    return KILN_OK;
}

/* Runs the integer convolution (x - xz) * (w - wz) [+ bias] into y (doubles, exact). */
static kiln_status conv_shifted(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                const kiln_tensor *xz, const kiln_tensor *w, const kiln_tensor *wz,
                                const kiln_tensor *b, double *y) {
    nn_conv_args a = {0};
    nn_window win;
    double *xv = NULL, *wv = NULL;
    const double *bv = NULL;
    kiln_status s = conv_geometry(ctx, n, x, w, &win, &a.group);
    if (!s) s = load_shifted(ctx, n, x, xz, &xv);
    if (!s) s = load_shifted(ctx, n, w, wz, &wv);
    if (!s) s = nn_read_f64(ctx, n, b, &bv);
    if (!s) {
        a.x = xv, a.w = wv, a.b = bv, a.y = y, a.win = &win;
        a.batch = x->dims[0], a.in_ch = x->dims[1], a.out_ch = w->dims[0];
        s = nn_conv_core(ctx, n, &a);
    }
    kiln_free(xv);
    kiln_free(wv);
    nn_release_f64(b, bv);
    return s;
}

kiln_status nn_ref_conv_integer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    double *y;
    kiln_status s = nn_alloc_f64(ctx, n, kiln_numel(&out[0]), &y);
    if (s) return s;
    s = conv_shifted(ctx, n, in[0], NN_IN(n, in, 2), in[1], NN_IN(n, in, 3), NULL, y);
    if (!s) nn_out_done(&out[0], y);
    else kiln_free(y);
    return s;
}

/* QLinearConv inputs: x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B. */
kiln_status nn_infer_qlinear_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[3], *yz = in[7], *b = NN_IN(n, in, 8);
    nn_window win;
    int64_t g;
    kiln_status s = check_quant_dtype(ctx, n, w, "w");
    if (!s) s = check_quant_dtype(ctx, n, yz, "y_zero_point");
    if (!s) s = nn_check_same_dtype(ctx, n, x, in[2], "x_zero_point");
    if (!s) s = nn_check_same_dtype(ctx, n, w, in[5], "w_zero_point");
    if (!s) s = conv_geometry(ctx, n, x, w, &win, &g);
    if (!s) s = check_channel_vec(ctx, n, in[1], 1, true, "x_scale");
    if (!s) s = check_channel_vec(ctx, n, in[2], 1, true, "x_zero_point");
    if (!s) s = check_channel_vec(ctx, n, in[4], w->dims[0], true, "w_scale");
    if (!s) s = check_channel_vec(ctx, n, in[5], w->dims[0], true, "w_zero_point");
    if (!s) s = check_channel_vec(ctx, n, in[6], 1, true, "y_scale");
    if (!s) s = check_channel_vec(ctx, n, yz, 1, true, "y_zero_point");
    if (!s) s = check_channel_vec(ctx, n, b, w->dims[0], false, "B");
    if (!s && b && b->dtype != KILN_I32)
        s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "B must be int32, got %s", kiln_dtype_name(b->dtype));
    if (s) return s;
    conv_out_shape(x, w, &win, yz ? yz->dtype : x->dtype, &out[0]);
    return KILN_OK;
}

kiln_status nn_ref_qlinear_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    const kiln_tensor *xs = in[1], *ws = in[4], *ys = in[6], *yz = in[7];
    kiln_tensor *y = &out[0];
    int64_t count = kiln_numel(y), m = in[3]->dims[0], per = kiln_numel_dims(y->rank - 2, y->dims + 2);
    double *acc;
    kiln_status s = nn_alloc_f64(ctx, n, count, &acc);
    if (s) return s;
    s = conv_shifted(ctx, n, in[0], in[2], in[3], in[5], NN_IN(n, in, 8), acc);
    if (!s) {
        kiln_dtype st = xs->dtype;
        double zero = yz ? kiln_tensor_f64(yz, 0) : 0.0;
        bool per_ch = kiln_numel(ws) > 1;
        for (int64_t i = 0; i < count; i++) {
            int64_t ch = (i / per) % m;
            double wsv = kiln_tensor_f64(ws, per_ch ? ch : 0);
            double f = nn_round_to(st, nn_round_to(st, kiln_tensor_f64(xs, 0) * wsv) / kiln_tensor_f64(ys, 0));
            nn_store_round(y, i, acc[i] * f + zero);
        }
    }
    kiln_free(acc);
    return s;
}
