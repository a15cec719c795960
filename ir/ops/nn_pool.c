/*
** nn_pool.c — AveragePool, MaxPool (with Indices), LpPool and their global
** forms. A window is the product of per-dim ranges, so its element counts
** (inside the input, inside the padded input) are products of per-dim counts.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

enum { POOL_AVG, POOL_MAX, POOL_LP };

typedef struct pool_args {
    int kind;
    bool count_pad; /* AveragePool count_include_pad */
    bool col_major; /* MaxPool storage_order = 1 */
    double p;       /* LpPool norm */
    nn_window win;
} pool_args;

static double lp_norm_p(const gir_node *n) {
    const gir_attr *a = gir_attr_find(n, "p");
    if (!a) return 2.0;
    return a->kind == GIR_ATTR_FLOAT ? a->f : (double)a->i;
}

static kiln_status pool_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, int kind,
                              pool_args *a) {
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->count_pad = gir_attr_int(n, "count_include_pad", 0) != 0;
    a->col_major = gir_attr_int(n, "storage_order", 0) != 0;
    a->p = lp_norm_p(n);
    if (kind == POOL_LP && !(a->p > 0))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "p must be positive, got %g", a->p);
    if (x->rank < 3)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must have rank 3 or more, got %d", x->rank);
    int64_t kernel[KILN_MAX_RANK];
    kiln_status s = nn_kernel_shape(ctx, n, x->rank - 2, NULL, kernel);
    if (!s) s = nn_window_init(ctx, n, x, kernel, true, &a->win);
    return s;
}

static void pool_out_shape(const kiln_tensor *x, const nn_window *w, kiln_dtype dt, kiln_tensor *out) {
    int64_t dims[KILN_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    memcpy(dims + 2, w->out, sizeof(int64_t) * (size_t)w->nsp);
    kiln_tensor_init(out, dt, x->rank, dims);
}

static kiln_status infer_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out, int kind) {
    pool_args a;
    kiln_status s = pool_setup(ctx, n, in[0], kind, &a);
    if (s) return s;
    pool_out_shape(in[0], &a.win, in[0]->dtype, &out[0]);
    if (n->n_outputs > 1) {
        if (a.col_major && a.win.nsp > 3)
            return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "storage_order=1 needs at most 3 spatial dims");
        pool_out_shape(in[0], &a.win, KILN_I64, &out[1]);
    }
    return KILN_OK;
}

/* Element count of the window at opos inside [lo, hi) per dim, where lo/hi
** are offsets of the input range: inside the input or inside the padding. */
static int64_t window_count(const nn_window *w, const int64_t *opos, bool padded) {
    int64_t total = 1;
    for (int d = 0; d < w->nsp; d++) {
        int64_t lo = padded ? -w->pad_begin[d] : 0;
        int64_t hi = padded ? w->in[d] + w->pad_end[d] : w->in[d];
        int64_t c = 0;
        for (int64_t k = 0; k < w->kernel[d]; k++) {
            int64_t p = opos[d] * w->stride[d] - w->pad_begin[d] + k * w->dilation[d];
            c += p >= lo && p < hi;
        }
        total *= c;
    }
    return total;
}

/* Row-major spatial offset to the column-major one (MaxPool storage_order=1). */
static int64_t col_major_offset(const nn_window *w, int64_t off) {
    int64_t pos[KILN_MAX_RANK], r = 0, mul = 1;
    for (int d = w->nsp - 1; d >= 0; d--) {
        pos[d] = off % w->in[d];
        off /= w->in[d];
    }
    for (int d = 0; d < w->nsp; d++) {
        r += pos[d] * mul;
        mul *= w->in[d];
    }
    return r;
}

/* Pools one output position of one plane. *arg gets the max's offset. */
static double pool_one(const pool_args *a, const double *xs, const int64_t *opos, const int64_t *ioff,
                       int nt, int64_t *arg) {
    if (a->kind == POOL_MAX) {
        double best = 0;
        *arg = -1;
        for (int t = 0; t < nt; t++)
            if (*arg < 0 || xs[ioff[t]] > best) best = xs[ioff[t]], *arg = ioff[t];
        return best;
    }
    double acc = 0;
    for (int t = 0; t < nt; t++) acc += a->kind == POOL_LP ? pow(fabs(xs[ioff[t]]), a->p) : xs[ioff[t]];
    if (a->kind == POOL_LP) return pow(acc, 1.0 / a->p);
    int64_t cnt = window_count(&a->win, opos, a->count_pad);
    return cnt ? acc / (double)cnt : NAN;
}

static kiln_status pool_run(kiln_ctx *ctx, const gir_node *n, const pool_args *a, const double *x,
                            int64_t planes, double *y, kiln_tensor *idx) {
    const nn_window *w = &a->win;
    int64_t kc = nn_window_kernel_count(w), osz = nn_window_out_count(w), isz = nn_window_in_count(w);
    int64_t *kidx = kiln_malloc(sizeof(int64_t) * (size_t)kc * 2);
    if (!kidx) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    int64_t *ioff = kidx + kc;
    int64_t opos[KILN_MAX_RANK] = {0};
    for (int64_t o = 0; o < osz; o++, kiln_index_next(w->nsp, w->out, opos)) {
        int nt = nn_window_taps(w, opos, kidx, ioff);
        for (int64_t pl = 0; pl < planes; pl++) {
            int64_t arg = 0;
            y[pl * osz + o] = pool_one(a, x + pl * isz, opos, ioff, nt, &arg);
            if (idx) {
                /* a window wholly in the padding has no maximum: index -1, as the spec's reference */
                int64_t off = arg < 0 ? -1 : pl * isz + (a->col_major ? col_major_offset(w, arg) : arg);
                ((int64_t *)idx->data)[pl * osz + o] = off;
            }
        }
    }
    kiln_free(kidx);
    return KILN_OK;
}

static kiln_status ref_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out, int kind) {
    pool_args a;
    const double *xv = NULL;
    double *yv = NULL;
    kiln_status s = pool_setup(ctx, n, in[0], kind, &a);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) s = pool_run(ctx, n, &a, xv, in[0]->dims[0] * in[0]->dims[1], yv, n->n_outputs > 1 ? &out[1] : NULL);
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], xv);
    return s;
}

kiln_status nn_infer_avg_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    return infer_pool(ctx, n, in, out, POOL_AVG);
}
kiln_status nn_ref_avg_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    return ref_pool(ctx, n, in, out, POOL_AVG);
}
kiln_status nn_infer_max_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    return infer_pool(ctx, n, in, out, POOL_MAX);
}
kiln_status nn_ref_max_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    return ref_pool(ctx, n, in, out, POOL_MAX);
}
kiln_status nn_infer_lp_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    return infer_pool(ctx, n, in, out, POOL_LP);
}
kiln_status nn_ref_lp_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    return ref_pool(ctx, n, in, out, POOL_LP);
}

/* ---- global pooling: one window covering all spatial dims ---- */

static kiln_status infer_global(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    if (x->rank < 2)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must have rank 2 or more, got %d", x->rank);
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0; i < x->rank; i++) dims[i] = i < 2 ? x->dims[i] : 1;
    kiln_tensor_init(&out[0], x->dtype, x->rank, dims);
    return KILN_OK;
}

static kiln_status ref_global(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out, int kind) {
    const kiln_tensor *x = in[0];
    int64_t planes = x->dims[0] * x->dims[1], sz = kiln_numel_dims(x->rank - 2, x->dims + 2);
    double p = lp_norm_p(n);
    if (kind == POOL_LP && !(p > 0))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "p must be positive, got %g", p);
    const double *xv;
    kiln_status s = nn_read_f64(ctx, n, x, &xv);
    if (s) return s;
    for (int64_t pl = 0; pl < planes; pl++) {
        const double *xs = xv + pl * sz;
        double acc = kind == POOL_MAX ? (sz ? xs[0] : 0) : 0;
        for (int64_t i = 0; i < sz; i++) {
            if (kind == POOL_MAX) acc = xs[i] > acc ? xs[i] : acc;
            else acc += kind == POOL_LP ? pow(fabs(xs[i]), p) : xs[i];
        }
        if (kind == POOL_AVG) acc = sz ? acc / (double)sz : NAN;
        if (kind == POOL_LP) acc = pow(acc, 1.0 / p);
        nn_store_round(&out[0], pl, acc);
    }
    nn_release_f64(x, xv);
    return KILN_OK;
}

kiln_status nn_infer_global_avg_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                     kiln_tensor *out) {
    return infer_global(ctx, n, in, out);
}
kiln_status nn_ref_global_avg_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                   kiln_tensor *out) {
    return ref_global(ctx, n, in, out, POOL_AVG);
}
kiln_status nn_infer_global_max_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                     kiln_tensor *out) {
    return infer_global(ctx, n, in, out);
}
kiln_status nn_ref_global_max_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                   kiln_tensor *out) {
    return ref_global(ctx, n, in, out, POOL_MAX);
}
kiln_status nn_infer_global_lp_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out) {
    return infer_global(ctx, n, in, out);
}
kiln_status nn_ref_global_lp_pool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    return ref_global(ctx, n, in, out, POOL_LP);
}
