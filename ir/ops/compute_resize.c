/*
** compute_resize.c — compute definitions of Resize (opset 10 and 11+) and
** Upsample: nearest, linear and cubic interpolation with every coordinate
** transformation mode, exclude_outside and tf_crop_and_resize's
** extrapolation. Antialiasing has no definition yet.
**
** Like the reference, interpolation is separable: each resized axis in turn
** is one stage whose output index maps to a few input taps with weights.
** The source coordinate and the weights are computed in f64 with the same
** operations in the same order as the reference, so the taps agree exactly;
** nearest mode needs no arithmetic on the data and is one gather stage.
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "nn_internal.h"

enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYM, CT_PYTORCH, CT_ALIGN, CT_ASYM, CT_TF_NN, CT_TF_CROP };
enum { NM_FLOOR_PREF, NM_CEIL_PREF, NM_FLOOR, NM_CEIL, NM_SIMPLE };

typedef struct rz_geom {
    int rank, mode, ctm, nearest;
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK];
    bool resized[KILN_MAX_RANK];
    int order[KILN_MAX_RANK], n_order; /* resized axes in the reference's order */
    double scale[KILN_MAX_RANK], roi_lo[KILN_MAX_RANK], roi_hi[KILN_MAX_RANK];
    double cubic_a, extrap;
    bool exclude_outside;
} rz_geom;

static const char *const k_modes[] = {"nearest", "linear", "cubic", NULL};
static const char *const k_ctms[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                     "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize", NULL};
static const char *const k_nearest[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil", NULL};
static const char *const k_policies[] = {"stretch", "not_larger", "not_smaller", NULL};

static kiln_status rz_attrs(kiln_ctx *ctx, const gir_node *n, bool legacy, rz_geom *g) {
    kiln_status s = nn_attr_choice(ctx, n, "mode", "nearest", k_modes, &g->mode);
    if (s || legacy) {
        g->ctm = CT_ASYM;
        g->nearest = NM_SIMPLE;
        return s;
    }
    s = nn_attr_choice(ctx, n, "coordinate_transformation_mode", "half_pixel", k_ctms, &g->ctm);
    if (!s) s = nn_attr_choice(ctx, n, "nearest_mode", "round_prefer_floor", k_nearest, &g->nearest);
    if (s) return s;
    g->cubic_a = gir_attr_float(n, "cubic_coeff_a", -0.75);
    g->extrap = gir_attr_float(n, "extrapolation_value", 0.0);
    g->exclude_outside = gir_attr_int(n, "exclude_outside", 0) != 0;
    if (gir_attr_int(n, "antialias", 0) && g->mode != RZ_NEAREST)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "antialiasing has no compute definition yet");
    return KILN_OK;
}

/* The resized axes in order: the axes attribute (18+) or all. */
static void rz_axes(const gir_node *n, rz_geom *g) {
    const int64_t *a;
    int k = gir_attr_ints(n, "axes", &a);
    g->n_order = k < 0 ? g->rank : k;
    for (int i = 0; i < g->n_order; i++) {
        int64_t v = k < 0 ? i : a[i];
        g->order[i] = (int)(v < 0 ? v + g->rank : v);
    }
}

/* Scales from a scales tensor or from sizes and the aspect policy. */
static kiln_status rz_scales(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *scales, const kiln_tensor *sizes,
                             rz_geom *g) {
    int k = g->n_order;
    if (scales && kiln_numel(scales) > 0) {
        for (int i = 0; i < k; i++) g->scale[g->order[i]] = kiln_tensor_f64(scales, i);
        return KILN_OK;
    }
    int policy;
    kiln_status s = nn_attr_choice(ctx, n, "keep_aspect_ratio_policy", "stretch", k_policies, &policy);
    if (s) return s;
    double pick = 0;
    for (int i = 0; i < k; i++) {
        int ax = g->order[i];
        double r = g->in[ax] ? (double)kiln_tensor_i64(sizes, i) / (double)g->in[ax] : 1.0;
        g->scale[ax] = r;
        if (i == 0 || (policy == 1 && r < pick) || (policy == 2 && r > pick)) pick = r;
    }
    for (int i = 0; policy != 0 && i < k; i++) g->scale[g->order[i]] = pick;
    return KILN_OK;
}

static kiln_status rz_setup(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, rz_geom *g, kiln_tensor *ty) {
    bool upsample = !strcmp(n->op_type, "Upsample"), legacy = upsample || n->opset < 11;
    tir_tensor *x = in[0], *roi = NULL, *scales, *sizes = NULL;
    if (legacy) {
        scales = cmp_in(n, in, 1);
    } else {
        roi = cmp_in(n, in, 1);
        scales = cmp_in(n, in, 2);
        sizes = cmp_in(n, in, 3);
    }
    kiln_status s = cmp_infer(ctx, n, in, ty);
    memset(g, 0, sizeof *g);
    g->rank = x->rank;
    if (!s) s = rz_attrs(ctx, n, legacy, g);
    if (s) return s;
    memcpy(g->in, x->dims, sizeof(int64_t) * (size_t)x->rank);
    memcpy(g->out, ty->dims, sizeof(int64_t) * (size_t)x->rank);
    for (int d = 0; d < g->rank; d++) g->scale[d] = 1.0, g->roi_lo[d] = 0, g->roi_hi[d] = 1;
    rz_axes(n, g);
    kiln_tensor ts, tz, tr;
    if (scales) cmp_type_of(scales, &ts);
    if (sizes) cmp_type_of(sizes, &tz);
    if (upsample && !scales) {
        const double *v;
        int k = gir_attr_floats(n, "scales", &v);
        for (int i = 0; i < k && i < g->rank; i++) g->scale[i] = v[i];
    } else {
        s = rz_scales(ctx, n, scales ? &ts : NULL, sizes ? &tz : NULL, g);
    }
    if (!s && g->ctm == CT_TF_CROP) {
        s = cmp_need_const(ctx, n, roi, "roi");
        if (!s && roi) {
            cmp_type_of(roi, &tr);
            for (int i = 0; i < g->n_order; i++) {
                g->roi_lo[g->order[i]] = kiln_tensor_f64(&tr, i);
                g->roi_hi[g->order[i]] = kiln_tensor_f64(&tr, g->n_order + i);
            }
        }
    }
    for (int i = 0; i < g->n_order; i++) {
        int ax = g->order[i];
        bool same = fabs(g->scale[ax] - 1.0) <= 1e-9 && g->out[ax] == g->in[ax] &&
                    (g->ctm != CT_TF_CROP || (fabs(g->roi_lo[ax]) <= 1e-9 && fabs(g->roi_hi[ax] - 1) <= 1e-9));
        g->resized[ax] = !same;
    }
    return s;
}

/* ---- one axis: the source coordinate, taps and weights as f64 expressions ---- */

static ex_expr *D(tir_func *f, double v) { return cmp_f(f, KILN_F64, v); }
static ex_expr *dadd(tir_func *f, ex_expr *a, ex_expr *b) { return cmp_bin(f, EX_ADD, a, b); }
static ex_expr *dsub(tir_func *f, ex_expr *a, ex_expr *b) { return cmp_bin(f, EX_SUB, a, b); }
static ex_expr *dmul(tir_func *f, ex_expr *a, ex_expr *b) { return cmp_bin(f, EX_MUL, a, b); }
static ex_expr *ddiv(tir_func *f, ex_expr *a, ex_expr *b) { return cmp_bin(f, EX_DIV, a, b); }

/* The source coordinate of output index y (i64) on axis ax. */
static ex_expr *rz_source(tir_func *f, const rz_geom *g, int ax, ex_expr *y) {
    double s = g->scale[ax], len = (double)g->in[ax], width = s * len;
    ex_expr *yy = cmp_to(f, y, KILN_F64), *half = ddiv(f, dadd(f, yy, D(f, 0.5)), D(f, s));
    switch (g->ctm) {
    case CT_ALIGN: return width == 1 ? D(f, 0) : ddiv(f, dmul(f, yy, D(f, len - 1)), D(f, width - 1));
    case CT_ASYM: return ddiv(f, yy, D(f, s));
    case CT_TF_NN: return half;
    case CT_PYTORCH: return width == 1 ? D(f, -0.5) : dsub(f, half, D(f, 0.5));
    case CT_HALF_PIXEL_SYM: {
        double adj = (double)g->out[ax] / width, center = len / 2;
        return dsub(f, dadd(f, D(f, center * (1 - adj)), half), D(f, 0.5));
    }
    case CT_TF_CROP: {
        double lo = g->roi_lo[ax], hi = g->roi_hi[ax];
        ex_expr *x = width == 1 ? D(f, (hi - lo) * (len - 1) / 2)
                                : ddiv(f, dmul(f, dmul(f, yy, D(f, hi - lo)), D(f, len - 1)), D(f, width - 1));
        return dadd(f, x, D(f, lo * (len - 1)));
    }
    default: return dsub(f, half, D(f, 0.5));
    }
}

/* Whether tf_crop_and_resize extrapolates at coordinate x. */
static ex_expr *rz_outside(tir_func *f, const rz_geom *g, int ax, ex_expr *x) {
    if (g->ctm != CT_TF_CROP) return NULL;
    return cmp_bin(f, EX_OR, cmp_bin(f, EX_LT, x, D(f, 0)), cmp_bin(f, EX_GT, x, D(f, (double)(g->in[ax] - 1))));
}

static ex_expr *rz_nearest(tir_func *f, const rz_geom *g, int ax, ex_expr *x) {
    ex_expr *fl = cmp_un(f, EX_FLOOR, x), *r = dsub(f, x, fl), *up;
    switch (g->nearest) {
    case NM_CEIL_PREF: up = cmp_bin(f, EX_GE, r, D(f, 0.5)); break;
    case NM_FLOOR: up = cmp_i(f, KILN_BOOL, 0); break;
    case NM_CEIL: up = cmp_i(f, KILN_BOOL, 1); break;
    case NM_SIMPLE: up = cmp_i(f, KILN_BOOL, g->scale[ax] < 1); break;
    default: up = cmp_bin(f, EX_GT, r, D(f, 0.5)); break;
    }
    ex_expr *pick = cmp_sel(f, cmp_bin(f, EX_AND, cmp_bin(f, EX_NE, r, D(f, 0)), up), dadd(f, fl, D(f, 1)), fl);
    /* x may be far outside in tf_crop_and_resize; keep the cast in range */
    pick = cmp_sel(f, cmp_bin(f, EX_LT, pick, D(f, -1)), D(f, -1), pick);
    pick = cmp_sel(f, cmp_bin(f, EX_GT, pick, D(f, (double)g->in[ax])), D(f, (double)g->in[ax]), pick);
    return cmp_clamp(f, cmp_to(f, pick, KILN_I64), 0, g->in[ax] - 1);
}

/* The cubic kernel at t (f64). */
static ex_expr *cubic_w(tir_func *f, double a, ex_expr *t) {
    t = cmp_un(f, EX_ABS, t);
    ex_expr *t2 = dmul(f, t, t);
    ex_expr *w1 = dadd(f, dmul(f, dsub(f, dmul(f, D(f, a + 2), t), D(f, a + 3)), t2), D(f, 1));
    ex_expr *w2 = dsub(f, dmul(f, dadd(f, dmul(f, dsub(f, dmul(f, D(f, a), t), D(f, 5 * a)), t), D(f, 8 * a)), t),
                       D(f, 4 * a));
    return cmp_sel(f, cmp_bin(f, EX_LE, t, D(f, 1)), w1, cmp_sel(f, cmp_bin(f, EX_LT, t, D(f, 2)), w2, D(f, 0)));
}

/* One interpolating pass over axis ax: cur -> a stage with out[ax] extent. */
static tir_tensor *rz_pass(tir_func *f, const rz_geom *g, int ax, const tir_tensor *cur, kiln_dtype c) {
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, cur->dims, sizeof(int64_t) * (size_t)cur->rank);
    dims[ax] = g->out[ax];
    tir_stage *st = cmp_stage(f, "resize_axis", c, cur->rank, dims, TIR_TAG_INJECTIVE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *ti[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    int64_t len = g->in[ax];
    ex_expr *x = rz_source(f, g, ax, idx[ax]), *base = cmp_un(f, EX_FLOOR, x), *r = dsub(f, x, base);
    ex_expr *r0 = cmp_bin(f, EX_EQ, r, D(f, 0)); /* the reference takes the left neighbour at ratio 1 */
    base = cmp_sel(f, r0, dsub(f, base, D(f, 1)), base);
    r = cmp_sel(f, r0, D(f, 1), r);
    /* base is far from range only when x is; clamp before the cast */
    base = cmp_sel(f, cmp_bin(f, EX_LT, base, D(f, -4)), D(f, -4), base);
    base = cmp_sel(f, cmp_bin(f, EX_GT, base, D(f, (double)len + 4)), D(f, (double)len + 4), base);
    ex_expr *bi = cmp_to(f, base, KILN_I64);
    int first = g->mode == RZ_CUBIC ? -1 : 0, count = g->mode == RZ_CUBIC ? 4 : 2;
    ex_expr *w[4], *at[4], *sum = NULL;
    for (int j = 0; j < count; j++) {
        if (g->mode == RZ_CUBIC) w[j] = cubic_w(f, g->cubic_a, dsub(f, D(f, (double)(j - 1)), r));
        else w[j] = j == 0 ? dsub(f, D(f, 1), r) : r;
        at[j] = ex_add(&f->eb, bi, ex_int(&f->eb, first + j));
        if (g->exclude_outside) w[j] = cmp_sel(f, cmp_in_range(f, at[j], 0, len), w[j], D(f, 0));
        sum = sum ? dadd(f, sum, w[j]) : w[j];
    }
    ex_expr *acc = NULL;
    memcpy(ti, idx, sizeof(ex_expr *) * (size_t)cur->rank);
    for (int j = 0; j < count; j++) {
        ex_expr *wj = g->exclude_outside ? cmp_sel(f, cmp_bin(f, EX_NE, sum, D(f, 0)), ddiv(f, w[j], sum), w[j]) : w[j];
        ti[ax] = cmp_clamp(f, at[j], 0, len - 1);
        ex_expr *term = cmp_bin(f, EX_MUL, cmp_to(f, wj, c), cmp_to(f, cmp_load(f, cur, ti), c));
        acc = acc ? cmp_bin(f, EX_ADD, acc, term) : term;
    }
    ex_expr *outside = rz_outside(f, g, ax, x);
    st->body = outside ? cmp_sel(f, outside, cmp_to(f, D(f, g->extrap), c), acc) : acc;
    return st->out;
}

/* Nearest mode: one gather over every resized axis. */
static tir_tensor *rz_nearest_stage(tir_func *f, const rz_geom *g, const tir_tensor *x, kiln_dtype c, kiln_dtype dt) {
    tir_stage *st = cmp_stage(f, "resize", dt, x->rank, g->out, TIR_TAG_INJECTIVE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *outside = NULL;
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    for (int d = 0; d < x->rank; d++) {
        if (!g->resized[d]) continue;
        ex_expr *src = rz_source(f, g, d, idx[d]), *o = rz_outside(f, g, d, src);
        if (o) outside = outside ? cmp_bin(f, EX_OR, outside, o) : o;
        idx[d] = rz_nearest(f, g, d, src);
    }
    ex_expr *v = cmp_load(f, x, idx), *fill;
    if (outside) {
        fill = kiln_dtype_is_float(dt) ? cmp_to(f, cmp_to(f, D(f, g->extrap), c), dt)
                                       : cmp_round_to_int(f, D(f, g->extrap), dt);
        v = cmp_sel(f, outside, fill, v);
    }
    st->body = v;
    return st->out;
}

static kiln_status resize_build(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in,
                                tir_tensor **out) {
    tir_tensor *x = in[0];
    rz_geom g;
    kiln_tensor ty;
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = rz_setup(ctx, n, in, &g, &ty);
    if (s) return s;
    kiln_dtype dt = x->dtype, c = kiln_dtype_is_float(dt) ? cmp_calc(dt) : KILN_F64;
    if (g.mode == RZ_NEAREST) {
        out[0] = rz_nearest_stage(f, &g, x, c, dt);
        return cmp_done(ctx, f, n);
    }
    tir_tensor *cur = x;
    for (int i = 0; i < g.n_order; i++) {
        int ax = g.order[i];
        if (g.resized[ax] && cur) cur = rz_pass(f, &g, ax, cur, c);
    }
    if (cur && cur != x && c == dt) {
        out[0] = cur;
        return cmp_done(ctx, f, n);
    }
    tir_stage *st = cmp_stage(f, "resize", dt, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !cur) return cmp_done(ctx, f, n);
    ex_expr *v = cmp_load(f, cur, idx);
    st->body = kiln_dtype_is_float(dt) || cur == x ? cmp_to(f, v, dt) : cmp_round_to_int(f, v, dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(resize) { return resize_build(ctx, f, n, in, out); }
CMP_FN(upsample) { return resize_build(ctx, f, n, in, out); }
