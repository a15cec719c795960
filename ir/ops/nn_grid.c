/*
** nn_grid.c — GridSample (N-D; nearest, linear, cubic; zeros, border,
** reflection padding) and AffineGrid (2-D and 3-D). Grid coordinates are
** normalized to [-1, 1] and listed innermost dim first (x, then y, then z).
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

enum { GS_NEAREST, GS_LINEAR, GS_CUBIC };
enum { GP_ZEROS, GP_BORDER, GP_REFLECTION };

typedef struct gs_plan {
    int nsp, mode, pad;
    bool align;
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK];
} gs_plan;

static const char *const k_gs_modes[] = {"nearest", "linear", "cubic", "bilinear", "bicubic", NULL};
static const char *const k_gs_pads[] = {"zeros", "border", "reflection", NULL};

static kiln_status gs_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, const kiln_tensor *g,
                            gs_plan *p) {
    memset(p, 0, sizeof *p);
    int mode;
    kiln_status s = nn_attr_choice(ctx, n, "mode", n->opset < 20 ? "bilinear" : "linear", k_gs_modes, &mode);
    if (!s) s = nn_attr_choice(ctx, n, "padding_mode", "zeros", k_gs_pads, &p->pad);
    if (s) return s;
    p->mode = mode == 3 ? GS_LINEAR : mode == 4 ? GS_CUBIC : mode;
    p->align = gir_attr_int(n, "align_corners", 0) != 0;
    p->nsp = x->rank - 2;
    if (x->rank < 3 || g->rank != x->rank || g->dims[0] != x->dims[0] || g->dims[g->rank - 1] != p->nsp)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must be [N, C, D1..Dr] and grid [N, O1..Or, r]");
    if (g->dtype != x->dtype) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "grid must have X's type");
    memcpy(p->in, x->dims + 2, sizeof(int64_t) * (size_t)p->nsp);
    memcpy(p->out, g->dims + 1, sizeof(int64_t) * (size_t)p->nsp);
    return KILN_OK;
}

kiln_status nn_infer_grid_sample(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    gs_plan p;
    kiln_status s = gs_setup(ctx, n, in[0], in[1], &p);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK] = {in[0]->dims[0], in[0]->dims[1]};
    memcpy(dims + 2, p.out, sizeof(int64_t) * (size_t)p.nsp);
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, dims);
    return KILN_OK;
}

/* Folds v back into [lo, hi] by reflecting at the borders. */
static double gs_reflect(double v, double lo, double hi) {
    double rng = hi - lo;
    if (rng <= 0) return lo;
    if (v < lo) {
        double dx = lo - v, k = floor(dx / rng), r = dx - k * rng;
        return fmod(k, 2) == 0 ? lo + r : hi - r;
    }
    if (v > hi) {
        double dx = v - hi, k = floor(dx / rng), r = dx - k * rng;
        return fmod(k, 2) == 0 ? hi - r : lo + r;
    }
    return v;
}

/* Index i in a dim of length len under the padding mode; -1 reads a zero. */
static int64_t gs_index(const gs_plan *p, int64_t i, int64_t len) {
    if (p->pad == GP_ZEROS) return i >= 0 && i < len ? i : -1;
    if (p->pad == GP_BORDER) return i < 0 ? 0 : i >= len ? len - 1 : i;
    double lo = p->align ? 0 : -0.5, hi = p->align ? (double)len - 1 : (double)len - 0.5;
    int64_t r = (int64_t)gs_reflect((double)i, lo, hi);
    return r < 0 ? 0 : r >= len ? len - 1 : r;
}

static double gs_cubic(double x) {
    const double a = -0.75;
    x = fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* Taps of normalized coordinate v along a dim of length len. */
static int gs_taps(const gs_plan *p, double v, int64_t len, int64_t *idx, double *w) {
    double x = p->align ? (v + 1) / 2 * (double)(len - 1) : ((v + 1) * (double)len - 1) / 2;
    x = (float)x; /* the reference holds coordinates in float32 */
    if (x != x) x = -1e9; /* NaN samples nothing (zeros) or an edge */
    x = x < -1e12 ? -1e12 : x > 1e12 ? 1e12 : x;
    if (p->mode == GS_NEAREST) x = nearbyint(x);
    double lo = p->align ? 0 : -0.5, hi = p->align ? (double)len - 1 : (double)len - 0.5;
    if (x < lo || x > hi) {
        if (p->pad == GP_BORDER) x = x < 0 ? 0 : x > (double)(len - 1) ? (double)(len - 1) : x;
        else if (p->pad == GP_REFLECTION) x = gs_reflect(x, lo, hi);
    }
    if (p->mode == GS_NEAREST) {
        idx[0] = gs_index(p, (int64_t)x, len);
        w[0] = 1;
        return 1;
    }
    double x0 = floor(x), t = x - x0;
    if (p->mode == GS_LINEAR) {
        idx[0] = gs_index(p, (int64_t)x0, len), w[0] = 1 - t;
        idx[1] = gs_index(p, (int64_t)x0 + 1, len), w[1] = t;
        return 2;
    }
    for (int j = 0; j < 4; j++) {
        idx[j] = gs_index(p, (int64_t)x0 - 1 + j, len);
        w[j] = gs_cubic(t + 1 - j);
    }
    return 4;
}

/* Value at one output point of plane xs: the sum over the product of taps. */
static double gs_point(const gs_plan *p, const double *xs, const double *coords) {
    if (kiln_numel_dims(p->nsp, p->in) == 0) return 0;
    int64_t idx[KILN_MAX_RANK][4];
    double w[KILN_MAX_RANK][4];
    int64_t cnt[KILN_MAX_RANK], pick[KILN_MAX_RANK] = {0};
    for (int d = 0; d < p->nsp; d++) cnt[d] = gs_taps(p, coords[p->nsp - 1 - d], p->in[d], idx[d], w[d]);
    double acc = 0;
    do {
        double wt = 1;
        int64_t off = 0;
        bool zero = false;
        for (int d = 0; d < p->nsp; d++) {
            int64_t i = idx[d][pick[d]];
            wt *= w[d][pick[d]];
            zero |= i < 0;
            off = off * p->in[d] + (i < 0 ? 0 : i);
        }
        if (!zero) acc += wt * xs[off];
    } while (kiln_index_next(p->nsp, cnt, pick));
    return acc;
}

kiln_status nn_ref_grid_sample(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    gs_plan p;
    const double *xv = NULL, *gv = NULL;
    double *yv = NULL;
    kiln_status s = gs_setup(ctx, n, in[0], in[1], &p);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_read_f64(ctx, n, in[1], &gv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) {
        int64_t batch = in[0]->dims[0], ch = in[0]->dims[1];
        int64_t isz = kiln_numel_dims(p.nsp, p.in), osz = kiln_numel_dims(p.nsp, p.out);
        for (int64_t b = 0; b < batch; b++)
            for (int64_t o = 0; o < osz; o++) {
                const double *coords = gv + (b * osz + o) * p.nsp;
                for (int64_t c = 0; c < ch; c++)
                    yv[(b * ch + c) * osz + o] = gs_point(&p, xv + (b * ch + c) * isz, coords);
            }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], xv);
    nn_release_f64(in[1], gv);
    return s;
}

/* ---- AffineGrid ---- */

static kiln_status ag_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int64_t *size,
                            int *count) {
    const kiln_tensor *theta = in[0];
    kiln_status s = kiln_op_read_ints(ctx, n, in[1], size, KILN_MAX_RANK, count);
    if (s) return s;
    int nsp = *count - 2;
    if ((nsp != 2 && nsp != 3) || theta->rank != 3 || theta->dims[0] != size[0] || theta->dims[1] != nsp ||
        theta->dims[2] != nsp + 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "theta must be [N, 2, 3] with a 4-D size or [N, 3, 4] with a 5-D one");
    for (int i = 0; i < *count; i++)
        if (size[i] < 0 || size[i] > ((int64_t)1 << 32))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "size %lld is invalid", (long long)size[i]);
    return KILN_OK;
}

kiln_status nn_infer_affine_grid(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    int64_t size[KILN_MAX_RANK], dims[KILN_MAX_RANK];
    int count;
    kiln_status s = ag_setup(ctx, n, in, size, &count);
    if (s) return s;
    dims[0] = size[0];
    for (int i = 2; i < count; i++) dims[i - 1] = size[i];
    dims[count - 1] = count - 2;
    kiln_tensor_init(&out[0], in[0]->dtype, count, dims);
    return KILN_OK;
}

/* The i-th of len evenly spaced coordinates in [-1, 1] (pixel centres unless aligned). */
static double ag_coord(int64_t i, int64_t len, bool align) {
    if (align) return len == 1 ? -1.0 : -1.0 + 2.0 * (double)i / (double)(len - 1);
    return -1.0 + (2.0 * (double)i + 1.0) / (double)len;
}

kiln_status nn_ref_affine_grid(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    int64_t size[KILN_MAX_RANK];
    int count;
    kiln_status s = ag_setup(ctx, n, in, size, &count);
    if (s) return s;
    int nsp = count - 2;
    bool align = gir_attr_int(n, "align_corners", 0) != 0;
    int64_t sp = kiln_numel_dims(nsp, size + 2), at = 0;
    for (int64_t b = 0; b < size[0]; b++) {
        int64_t pos[3] = {0};
        for (int64_t q = 0; q < sp; q++, kiln_index_next(nsp, size + 2, pos)) {
            double h[4]; /* homogeneous (x, y[, z], 1): innermost dim first */
            for (int d = 0; d < nsp; d++) h[d] = ag_coord(pos[nsp - 1 - d], size[2 + nsp - 1 - d], align);
            h[nsp] = 1;
            for (int r = 0; r < nsp; r++) {
                double v = 0;
                for (int k = 0; k <= nsp; k++) v += kiln_tensor_f64(in[0], (b * nsp + r) * (nsp + 1) + k) * h[k];
                kiln_store_f64(out[0].dtype, out[0].data, at++, v);
            }
        }
    }
    return KILN_OK;
}
