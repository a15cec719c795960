/*
** nn_softmax.c — Softmax, LogSoftmax and Hardmax. Opsets before 13 coerce
** the input to 2-D at `axis` (default 1) and work on whole rows; from 13 on
** they work along the one axis (default -1). Both are rows of `len`
** elements `stride` apart.
*/
#include <math.h>

#include "nn_internal.h"

enum { SM_SOFTMAX, SM_LOG, SM_HARD };

typedef struct sm_rows {
    int64_t outer, len, stride;
} sm_rows;

static kiln_status sm_layout(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, sm_rows *r) {
    bool legacy = n->opset < 13;
    int axis;
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", legacy ? 1 : -1), x->rank, &axis);
    if (s) return s;
    r->outer = kiln_numel_dims(axis, x->dims);
    if (legacy) {
        r->len = kiln_numel_dims(x->rank - axis, x->dims + axis);
        r->stride = 1;
    } else {
        r->len = x->dims[axis];
        r->stride = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
        r->outer *= r->stride; /* one row per (outer, inner) pair */
    }
    return KILN_OK;
}

static kiln_status infer_sm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    sm_rows r;
    kiln_status s = sm_layout(ctx, n, in[0], &r);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

static void sm_row(int kind, const double *x, double *y, int64_t len, int64_t st) {
    if (len == 0) return;
    double mx = x[0];
    int64_t arg = 0;
    for (int64_t i = 1; i < len; i++)
        if (x[i * st] > mx) mx = x[i * st], arg = i;
    if (kind == SM_HARD) {
        for (int64_t i = 0; i < len; i++) y[i * st] = i == arg;
        return;
    }
    double sum = 0;
    for (int64_t i = 0; i < len; i++) sum += exp(x[i * st] - mx);
    for (int64_t i = 0; i < len; i++)
        y[i * st] = kind == SM_LOG ? x[i * st] - mx - log(sum) : exp(x[i * st] - mx) / sum;
}

static kiln_status ref_sm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out, int kind) {
    sm_rows r;
    const double *xv = NULL;
    double *yv = NULL;
    kiln_status s = sm_layout(ctx, n, in[0], &r);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        /* row q starts at (q / stride) * len * stride + q % stride */
        for (int64_t q = 0; q < r.outer; q++) {
            int64_t base = (q / r.stride) * r.len * r.stride + q % r.stride;
            sm_row(kind, xv + base, yv + base, r.len, r.stride);
        }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], xv);
    return s;
}

#define SM_ENTRY(fn, kind)                                                                       \
    kiln_status nn_infer_##fn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,     \
                              kiln_tensor *out) {                                                 \
        return infer_sm(ctx, n, in, out);                                                         \
    }                                                                                             \
    kiln_status nn_ref_##fn(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,       \
                            kiln_tensor *out) {                                                   \
        return ref_sm(ctx, n, in, out, kind);                                                     \
    }

SM_ENTRY(softmax, SM_SOFTMAX)
SM_ENTRY(log_softmax, SM_LOG)
SM_ENTRY(hardmax, SM_HARD)
