/*
** linalg_qmatmul.c — MatMulInteger and QLinearMatMul: 8-bit operands minus
** their zero points, multiplied exactly (in double, far below 2^53), then
** for QLinearMatMul rescaled, rounded to nearest even and saturated.
*/
#include <string.h>

#include "nn_internal.h"

static kiln_status check_q8(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what) {
    if (!t || t->dtype == KILN_U8 || t->dtype == KILN_I8) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "%s must be int8 or uint8, got %s", what,
                        kiln_dtype_name(t->dtype));
}

/* The zero point's shape as it broadcasts over t: a 1-D zero point of
** `rows` values on a row operand is per row ([rows, 1]). */
static kiln_status zp_view(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const kiln_tensor *zp,
                           int64_t rows, kiln_tensor *view) {
    *view = *zp;
    if (kiln_numel(zp) == 1) {
        view->rank = 0;
        return KILN_OK;
    }
    if (zp->rank == 1 && rows > 0 && zp->dims[0] == rows && t->rank >= 2) {
        view->rank = 2;
        view->dims[0] = rows;
        view->dims[1] = 1;
    }
    if (view->rank > t->rank) goto bad;
    for (int i = 0; i < view->rank; i++) {
        int64_t d = view->dims[view->rank - 1 - i], td = t->dims[t->rank - 1 - i];
        if (d != 1 && d != td) goto bad;
    }
    return KILN_OK;
bad:;
    char a[96], b[96];
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "zero point of shape %s does not fit operand %s",
                        kiln_shape_str(zp, a, sizeof a), kiln_shape_str(t, b, sizeof b));
}

/* t minus its zero point (if any), as doubles. */
static kiln_status load_minus_zp(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                                 const kiln_tensor *zp, int64_t rows, double **out) {
    kiln_tensor view;
    int64_t bstr[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, count = kiln_numel(t);
    kiln_status s = zp ? zp_view(ctx, n, t, zp, rows, &view) : KILN_OK;
    double *v = NULL;
    if (!s) s = nn_alloc_f64(ctx, n, count, &v);
    if (s) return s;
    if (zp) kiln_broadcast_strides(&view, t->rank, t->dims, bstr);
    for (int64_t i = 0; i < count; i++, kiln_index_next(t->rank, t->dims, idx)) {
        double z = 0;
        if (zp) {
            int64_t off = 0;
            for (int d = 0; d < t->rank; d++) off += idx[d] * bstr[d];
            z = kiln_tensor_f64(zp, off);
        }
        v[i] = kiln_tensor_f64(t, i) - z;
    }
    *out = v;
    return KILN_OK;
}

/* Rows of a (M) and columns of b (N) of a MatMul pair, for per-row/column vectors. */
static void mm_rows_cols(const kiln_tensor *a, const kiln_tensor *b, int64_t *m, int64_t *ncol) {
    *m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    *ncol = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
}

/* Exact integer product of (a - a_zp) and (b - b_zp) into a fresh buffer. */
static kiln_status product_minus_zp(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a,
                                    const kiln_tensor *az, const kiln_tensor *b, const kiln_tensor *bz,
                                    nn_matmul_shape *s, double **y) {
    int64_t m, ncol;
    double *av = NULL, *bv = NULL;
    mm_rows_cols(a, b, &m, &ncol);
    kiln_status st = nn_matmul_shape_of(ctx, n, a, b, s);
    if (!st) st = load_minus_zp(ctx, n, a, az, m, &av);
    if (!st) st = load_minus_zp(ctx, n, b, bz, -1, &bv);
    if (!st) st = nn_alloc_f64(ctx, n, kiln_numel_dims(s->out_rank, s->out), y);
    if (!st) nn_matmul_f64(s, av, bv, *y);
    kiln_free(av);
    kiln_free(bv);
    return st;
}

kiln_status nn_infer_matmul_integer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out) {
    const kiln_tensor *az = NN_IN(n, in, 2), *bz = NN_IN(n, in, 3);
    nn_matmul_shape s;
    kiln_tensor view;
    int64_t m, ncol;
    mm_rows_cols(in[0], in[1], &m, &ncol);
    kiln_status st = check_q8(ctx, n, in[1], "B");
    if (!st) st = nn_check_same_dtype(ctx, n, in[0], az, "a_zero_point");
    if (!st) st = nn_check_same_dtype(ctx, n, in[1], bz, "b_zero_point");
    if (!st) st = nn_matmul_shape_of(ctx, n, in[0], in[1], &s);
    if (!st && az) st = zp_view(ctx, n, in[0], az, m, &view);
    if (!st && bz) st = zp_view(ctx, n, in[1], bz, -1, &view);
    if (st) return st;
    kiln_tensor_init(&out[0], KILN_I32, s.out_rank, s.out);
    return KILN_OK;
}

kiln_status nn_ref_matmul_integer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    nn_matmul_shape s;
    double *y = NULL;
    kiln_status st = product_minus_zp(ctx, n, in[0], NN_IN(n, in, 2), in[1], NN_IN(n, in, 3), &s, &y);
    if (!st) nn_out_done(&out[0], y);
    else kiln_free(y);
    return st;
}

/* QLinearMatMul inputs: a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp. */
static kiln_status check_scales(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in) {
    int64_t m, ncol;
    mm_rows_cols(in[0], in[3], &m, &ncol);
    int64_t as = kiln_numel(in[1]), bs = kiln_numel(in[4]);
    if ((as != 1 && as != m) || (bs != 1 && bs != ncol) || kiln_numel(in[6]) != 1 || kiln_numel(in[7]) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "scales must be scalars (or per-row a_scale / per-column b_scale), "
                            "y_scale and y_zero_point scalars");
    if (!kiln_dtype_is_float(in[1]->dtype) || in[4]->dtype != in[1]->dtype || in[6]->dtype != in[1]->dtype)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scales must share one float type");
    return KILN_OK;
}

kiln_status nn_infer_qlinear_matmul(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out) {
    nn_matmul_shape s;
    kiln_status st = check_q8(ctx, n, in[3], "b");
    if (!st) st = check_q8(ctx, n, in[7], "y_zero_point");
    if (!st) st = nn_check_same_dtype(ctx, n, in[0], in[2], "a_zero_point");
    if (!st) st = nn_check_same_dtype(ctx, n, in[3], in[5], "b_zero_point");
    if (!st) st = check_scales(ctx, n, in);
    if (!st) st = nn_matmul_shape_of(ctx, n, in[0], in[3], &s);
    if (st) return st;
    kiln_tensor_init(&out[0], in[7]->dtype, s.out_rank, s.out);
    return KILN_OK;
}

kiln_status nn_ref_qlinear_matmul(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    nn_matmul_shape s;
    double *y = NULL;
    kiln_status st = check_scales(ctx, n, in);
    if (!st) st = product_minus_zp(ctx, n, in[0], in[2], in[3], in[5], &s, &y);
    if (st) {
        kiln_free(y);
        return st;
    }
    kiln_dtype sd = in[1]->dtype;
    bool arow = kiln_numel(in[1]) > 1, bcol = kiln_numel(in[4]) > 1;
    double ys = kiln_tensor_f64(in[6], 0), yz = kiln_tensor_f64(in[7], 0);
    int64_t total = kiln_numel(&out[0]);
    for (int64_t i = 0; i < total; i++) {
        int64_t row = s.n ? (i / s.n) % (s.m ? s.m : 1) : 0, col = s.n ? i % s.n : 0;
        double as = kiln_tensor_f64(in[1], arow ? row : 0), bs = kiln_tensor_f64(in[4], bcol ? col : 0);
        /* the factor is computed in the scales' own precision, as the spec's numpy reference does */
        double f = nn_round_to(sd, nn_round_to(sd, as * bs) / ys);
        nn_store_round(&out[0], i, y[i] * f + yz);
    }
    kiln_free(y);
    return KILN_OK;
}
