/*
** nn_resize.c — Resize (opsets 10 to 19+) and Upsample. Interpolation is
** separable: each resized axis in turn maps every output index to a few
** input taps with weights (nearest, linear, cubic, with or without the
** antialiasing filter), in double, as the ONNX reference does.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TF_NN, CT_TF_CROP };
enum { NM_FLOOR_PREF, NM_CEIL_PREF, NM_FLOOR, NM_CEIL, NM_SIMPLE };
enum { KP_STRETCH, KP_NOT_LARGER, KP_NOT_SMALLER };

typedef struct rz_plan {
    int rank, n_axes, axes[KILN_MAX_RANK];
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK];
    double scale[KILN_MAX_RANK], roi_lo[KILN_MAX_RANK], roi_hi[KILN_MAX_RANK];
    int mode, ctm, nearest;
    double cubic_a, extrap;
    bool exclude_outside, antialias;
} rz_plan;

static const char *const k_modes[] = {"nearest", "linear", "cubic", NULL};
static const char *const k_ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                     "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", NULL};
static const char *const k_nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", NULL};
static const char *const k_policies[] = {"stretch", "not_larger", "not_smaller", NULL};

static kiln_status rz_attrs(kiln_ctx *ctx, const gir_node *n, bool legacy, rz_plan *p) {
    kiln_status s = nn_attr_choice(ctx, n, "mode", "nearest", k_modes, &p->mode);
    if (s) return s;
    if (legacy) {
        /* Upsample and Resize-10: asymmetric coordinates, "simple" nearest */
        if (p->mode == RZ_CUBIC) return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "mode 'cubic' needs opset 11");
        p->ctm = CT_ASYM;
        p->nearest = NM_SIMPLE;
        return KILN_OK;
    }
    s = nn_attr_choice(ctx, n, "coordinate_transformation_mode", "half_pixel", k_ctms, &p->ctm);
    if (!s) s = nn_attr_choice(ctx, n, "nearest_mode", "round_prefer_floor", k_nearest, &p->nearest);
    if (s) return s;
    p->cubic_a = gir_attr_float(n, "cubic_coeff_a", -0.75);
    p->extrap = gir_attr_float(n, "extrapolation_value", 0.0);
    p->exclude_outside = gir_attr_int(n, "exclude_outside", 0) != 0;
    p->antialias = gir_attr_int(n, "antialias", 0) != 0 && p->mode != RZ_NEAREST;
    return KILN_OK;
}

/* The resized axes: the `axes` attribute (opset 18+) or all of them. */
static kiln_status rz_axes(kiln_ctx *ctx, const gir_node *n, rz_plan *p) {
    const int64_t *a;
    int k = gir_attr_ints(n, "axes", &a);
    if (k < 0) {
        p->n_axes = p->rank;
        for (int i = 0; i < p->rank; i++) p->axes[i] = i;
        return KILN_OK;
    }
    if (k > p->rank) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "more axes than dims");
    bool seen[KILN_MAX_RANK] = {0};
    for (int i = 0; i < k; i++) {
        kiln_status s = kiln_op_axis(ctx, n, a[i], p->rank, &p->axes[i]);
        if (s) return s;
        if (seen[p->axes[i]]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is repeated", (long long)a[i]);
        seen[p->axes[i]] = true;
    }
    p->n_axes = k;
    return KILN_OK;
}

static kiln_status rz_from_scales(kiln_ctx *ctx, const gir_node *n, const double *sc, int k, rz_plan *p) {
    if (k != p->n_axes)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scales has %d values, expected %d", k, p->n_axes);
    for (int i = 0; i < k; i++) {
        int ax = p->axes[i];
        if (!(sc[i] > 0) || sc[i] > 1e9)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "scale %g is not positive", sc[i]);
        double ext = floor(sc[i] * (double)p->in[ax]);
        if (ext > (double)((int64_t)1 << 40))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "scale %g gives too large an output", sc[i]);
        p->scale[ax] = sc[i];
        p->out[ax] = (int64_t)ext;
    }
    return KILN_OK;
}

static kiln_status rz_from_sizes(kiln_ctx *ctx, const gir_node *n, const int64_t *sz, int k, rz_plan *p) {
    int policy;
    kiln_status s = nn_attr_choice(ctx, n, "keep_aspect_ratio_policy", "stretch", k_policies, &policy);
    if (s) return s;
    if (k != p->n_axes) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "sizes has %d values, expected %d", k, p->n_axes);
    double pick = 0;
    for (int i = 0; i < k; i++) {
        int ax = p->axes[i];
        if (sz[i] < 0 || sz[i] > ((int64_t)1 << 40) || (p->in[ax] == 0 && sz[i] > 0))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "size %lld is invalid for an extent of %lld",
                                (long long)sz[i], (long long)p->in[ax]);
        p->out[ax] = sz[i];
        p->scale[ax] = p->in[ax] ? (double)sz[i] / (double)p->in[ax] : 1.0;
        double r = p->scale[ax];
        if (i == 0 || (policy == KP_NOT_LARGER && r < pick) || (policy == KP_NOT_SMALLER && r > pick)) pick = r;
    }
    if (policy == KP_STRETCH) return KILN_OK;
    for (int i = 0; i < k; i++) {
        int ax = p->axes[i];
        p->scale[ax] = pick;
        p->out[ax] = (int64_t)floor(pick * (double)p->in[ax] + 0.5);
    }
    return KILN_OK;
}

static kiln_status rz_read_roi(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *roi, rz_plan *p) {
    for (int i = 0; i < p->rank; i++) p->roi_lo[i] = 0, p->roi_hi[i] = 1;
    if (p->ctm != CT_TF_CROP) return KILN_OK;
    int64_t k = roi ? kiln_numel(roi) : 0;
    if (k != 2 * p->n_axes)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "roi must have %d values for tf_crop_and_resize", 2 * p->n_axes);
    if (!roi->data) return KILN_OK; /* shape inference: the output shape does not depend on roi */
    for (int i = 0; i < p->n_axes; i++) {
        p->roi_lo[p->axes[i]] = kiln_tensor_f64(roi, i);
        p->roi_hi[p->axes[i]] = kiln_tensor_f64(roi, p->n_axes + i);
    }
    return KILN_OK;
}

/* Fills the plan. scales/sizes are tensors (either may be NULL or empty) or,
** for Upsample-7, the scales attribute. */
static kiln_status rz_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, const kiln_tensor *roi,
                            const kiln_tensor *scales, const kiln_tensor *sizes, bool legacy, rz_plan *p) {
    memset(p, 0, sizeof *p);
    p->rank = x->rank;
    memcpy(p->in, x->dims, sizeof(int64_t) * (size_t)x->rank);
    memcpy(p->out, x->dims, sizeof(int64_t) * (size_t)x->rank);
    for (int i = 0; i < x->rank; i++) p->scale[i] = 1.0;
    kiln_status s = rz_attrs(ctx, n, legacy, p);
    if (!s) s = rz_axes(ctx, n, p);
    if (s) return s;
    bool has_scales = scales && kiln_numel(scales) > 0, has_sizes = sizes && kiln_numel(sizes) > 0;
    if (has_scales == has_sizes)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "exactly one of scales and sizes must be given");
    double sc[KILN_MAX_RANK];
    int64_t sz[KILN_MAX_RANK];
    int k = 0;
    if (has_scales) {
        if (!scales->data) return KILN_ERR_DYNAMIC;
        if (!kiln_dtype_is_float(scales->dtype) || kiln_numel(scales) > KILN_MAX_RANK)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "scales must be a float tensor of at most %d values",
                                KILN_MAX_RANK);
        k = (int)kiln_numel(scales);
        for (int i = 0; i < k; i++) sc[i] = kiln_tensor_f64(scales, i);
        s = rz_from_scales(ctx, n, sc, k, p);
    } else {
        s = kiln_op_read_ints(ctx, n, sizes, sz, KILN_MAX_RANK, &k);
        if (!s) s = rz_from_sizes(ctx, n, sz, k, p);
    }
    if (!s) s = rz_read_roi(ctx, n, roi, p);
    return s;
}

/* ---- one axis: taps and weights of every output index ---- */

static double rz_source(const rz_plan *p, int ax, int64_t y) {
    double s = p->scale[ax], len = (double)p->in[ax], width = s * len, yy = (double)y;
    switch (p->ctm) {
    case CT_ALIGN: return width == 1 ? 0.0 : yy * (len - 1) / (width - 1);
    case CT_ASYM: return yy / s;
    case CT_TF_NN: return (yy + 0.5) / s;
    case CT_PYTORCH: return width == 1 ? -0.5 : (yy + 0.5) / s - 0.5;
    case CT_HALF_PIXEL_SYM: {
        double adj = (double)p->out[ax] / width, center = len / 2;
        return center * (1 - adj) + (yy + 0.5) / s - 0.5;
    }
    case CT_TF_CROP: {
        double lo = p->roi_lo[ax], hi = p->roi_hi[ax];
        double x = width == 1 ? (hi - lo) * (len - 1) / 2 : yy * (hi - lo) * (len - 1) / (width - 1);
        return x + lo * (len - 1);
    }
    default: return (yy + 0.5) / s - 0.5;
    }
}

static double cubic_w(double x, double a) {
    x = fabs(x);
    if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    return 0;
}

/* Weights for taps base+first .. base+first+count-1, r in (0, 1]. Returns count. */
static int rz_weights(const rz_plan *p, double s, double r, int *first, double *w, int cap) {
    if (p->mode == RZ_LINEAR && !p->antialias) {
        *first = 0;
        w[0] = 1 - r, w[1] = r;
        return 2;
    }
    if (p->mode == RZ_CUBIC && !p->antialias) {
        *first = -1;
        for (int j = 0; j < 4; j++) w[j] = cubic_w((double)(j - 1) - r, p->cubic_a);
        return 4;
    }
    /* antialiasing: the filter stretched by 1/scale when downscaling, normalized */
    double sc = s < 1 ? s : 1, support = p->mode == RZ_CUBIC ? 2 : 1, sum = 0;
    int start = (int)floor(-support / sc) + 1, count = 2 - 2 * start;
    if (count > cap) count = cap;
    for (int j = 0; j < count; j++) {
        double x = ((double)(start + j) - r) * sc;
        w[j] = p->mode == RZ_CUBIC ? cubic_w(x, p->cubic_a) : fmax(0, 1 - fabs(x));
        sum += w[j];
    }
    for (int j = 0; j < count && sum != 0; j++) w[j] /= sum;
    *first = start;
    return count;
}

static int64_t clamp_i(int64_t v, int64_t len) { return v < 0 ? 0 : v >= len ? len - 1 : v; }

static int64_t rz_nearest(const rz_plan *p, double x, double s, int64_t len) {
    double fl = floor(x), r = x - fl;
    int64_t pick;
    if (r == 0) pick = (int64_t)fl;
    else switch (p->nearest) {
        case NM_CEIL_PREF: pick = (int64_t)fl + (r >= 0.5); break;
        case NM_FLOOR: pick = (int64_t)fl; break;
        case NM_CEIL: pick = (int64_t)fl + 1; break;
        case NM_SIMPLE: pick = (int64_t)fl + (s < 1); break;
        default: pick = (int64_t)fl + (r > 0.5); break;
        }
    return clamp_i(pick, len);
}

#define RZ_MAX_TAPS 4096

/* Taps of output index y: count, input indices, weights; -1 when extrapolated. */
static int rz_taps(const rz_plan *p, int ax, int64_t y, int64_t *idx, double *w) {
    int64_t len = p->in[ax];
    double s = p->scale[ax], x = rz_source(p, ax, y);
    if (p->ctm == CT_TF_CROP && !(x >= 0 && x <= (double)(len - 1))) return -1;
    /* far outside the input every tap clamps to an edge anyway; keep integer conversions defined */
    x = x < -1e15 ? -1e15 : x > 1e15 ? 1e15 : x;
    if (p->mode == RZ_NEAREST) {
        idx[0] = rz_nearest(p, x, s, len);
        w[0] = 1;
        return 1;
    }
    double base = floor(x), r = x - base;
    if (r == 0) base -= 1, r = 1; /* the reference takes the left neighbour at ratio 1 */
    int first, count = rz_weights(p, s, r, &first, w, RZ_MAX_TAPS);
    double sum = 0;
    for (int j = 0; j < count; j++) {
        int64_t at = (int64_t)base + first + j;
        if (p->exclude_outside && (at < 0 || at >= len)) w[j] = 0;
        sum += w[j];
        idx[j] = clamp_i(at, len);
    }
    if (p->exclude_outside && sum != 0)
        for (int j = 0; j < count; j++) w[j] /= sum;
    return count;
}

static bool rz_identity(const rz_plan *p, int ax) {
    return fabs(p->scale[ax] - 1.0) <= 1e-9 && p->out[ax] == p->in[ax] &&
           (p->ctm != CT_TF_CROP || (fabs(p->roi_lo[ax]) <= 1e-9 && fabs(p->roi_hi[ax] - 1) <= 1e-9));
}

/* Resizes axis `ax` of cur (dims) into nxt. */
static kiln_status rz_axis(kiln_ctx *ctx, const gir_node *n, const rz_plan *p, int ax, const int64_t *dims,
                           const double *cur, double *nxt) {
    int64_t outer = kiln_numel_dims(ax, dims), inner = kiln_numel_dims(p->rank - ax - 1, dims + ax + 1);
    int64_t len = dims[ax];
    int64_t *idx = kiln_malloc(sizeof(int64_t) * RZ_MAX_TAPS);
    double *w = kiln_malloc(sizeof(double) * RZ_MAX_TAPS);
    if (!idx || !w) {
        kiln_free(idx);
        kiln_free(w);
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    }
    for (int64_t y = 0; y < p->out[ax]; y++) {
        int nt = rz_taps(p, ax, y, idx, w);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < inner; i++) {
                double acc = nt < 0 ? p->extrap : 0;
                for (int t = 0; t < nt; t++) acc += w[t] * cur[(o * len + idx[t]) * inner + i];
                nxt[(o * p->out[ax] + y) * inner + i] = acc;
            }
    }
    kiln_free(idx);
    kiln_free(w);
    return KILN_OK;
}

static kiln_status rz_run(kiln_ctx *ctx, const gir_node *n, const rz_plan *p, const kiln_tensor *x,
                          kiln_tensor *y) {
    const double *xv;
    kiln_status s = nn_read_f64(ctx, n, x, &xv);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, p->in, sizeof dims);
    double *cur = (double *)xv;
    for (int k = 0; k < p->n_axes; k++) {
        int ax = p->axes[k];
        if (rz_identity(p, ax)) continue;
        int64_t nd[KILN_MAX_RANK];
        double *nxt = NULL;
        memcpy(nd, dims, sizeof nd);
        nd[ax] = p->out[ax];
        s = nn_alloc_f64(ctx, n, kiln_numel_dims(p->rank, nd), &nxt);
        if (!s) s = rz_axis(ctx, n, p, ax, dims, cur, nxt);
        if (cur != xv) kiln_free(cur);
        cur = nxt;
        memcpy(dims, nd, sizeof nd);
        if (s) break;
    }
    if (!s) {
        int64_t count = kiln_numel(y);
        for (int64_t i = 0; i < count; i++) nn_store_round(y, i, cur[i]);
    }
    if (cur && cur != xv) kiln_free(cur);
    nn_release_f64(x, xv);
    return s;
}

/* ---- entry points ---- */

/* Resize-10 takes (X, scales); from 11 on (X, roi, scales, sizes). */
static kiln_status resize_plan(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, rz_plan *p) {
    if (n->opset < 11) return rz_setup(ctx, n, in[0], NULL, NN_IN(n, in, 1), NULL, true, p);
    return rz_setup(ctx, n, in[0], NN_IN(n, in, 1), NN_IN(n, in, 2), NN_IN(n, in, 3), false, p);
}

kiln_status nn_infer_resize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    rz_plan p;
    kiln_status s = resize_plan(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, p.rank, p.out);
    return KILN_OK;
}

kiln_status nn_ref_resize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    rz_plan p;
    kiln_status s = resize_plan(ctx, n, in, &p);
    if (s) return s;
    return rz_run(ctx, n, &p, in[0], &out[0]);
}

/* Upsample-7 has a `scales` attribute, Upsample-9 a scales input. */
static kiln_status upsample_plan(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, rz_plan *p) {
    const kiln_tensor *scales = NN_IN(n, in, 1);
    kiln_tensor attr;
    if (!scales) {
        const double *v;
        int k = gir_attr_floats(n, "scales", &v);
        if (k < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "scales are required");
        kiln_tensor_init(&attr, KILN_F64, 1, (int64_t[]){k});
        attr.data = (void *)v;
        scales = &attr;
    }
    kiln_status s = rz_setup(ctx, n, in[0], NULL, scales, NULL, true, p);
    for (int i = 0; !s && i < p->rank; i++)
        if (p->scale[i] < 1)
            s = kiln_op_fail(ctx, n, KILN_ERR_INVALID, "Upsample scales must be at least 1, got %g", p->scale[i]);
    return s;
}

kiln_status nn_infer_upsample(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    rz_plan p;
    kiln_status s = upsample_plan(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, p.rank, p.out);
    return KILN_OK;
}

kiln_status nn_ref_upsample(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    rz_plan p;
    kiln_status s = upsample_plan(ctx, n, in, &p);
    if (s) return s;
    return rz_run(ctx, n, &p, in[0], &out[0]);
}
