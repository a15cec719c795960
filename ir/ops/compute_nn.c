/*
** compute_nn.c — compute definitions of convolution and pooling: Conv,
** ConvTranspose (N-D, groups and depthwise, strides, dilations, explicit
** and automatic pads), AveragePool, MaxPool (with Indices), LpPool and the
** global pools.
**
** Conv reads a padded copy of its input: a stage "pad" that selects zero
** outside the input (its loads clamped, so it is safe to inline), then the
** stage "conv" tagged TIR_TAG_CONV with axes "n", "oc", "oh", "ow" (1-D:
** "ow"; 3-D: "od", "oh", "ow") and reductions "ic", "kh", "kw", then the
** bias (and a cast to a half type) as an epilogue. Pools are window
** reductions tagged TIR_TAG_POOL whose taps outside the input select the
** combiner's identity.
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "nn_internal.h"

static ex_expr *I(tir_func *f, int64_t v) { return ex_int(&f->eb, v); }

/* Axis names for nsp spatial dims: output positions and kernel taps. */
static const char *sp_name(int nsp, int d, bool kernel) {
    static const char *const out3[] = {"od", "oh", "ow"}, *const ker3[] = {"kd", "kh", "kw"};
    static const char *const outn[] = {"o0", "o1", "o2", "o3", "o4", "o5"};
    static const char *const kern[] = {"k0", "k1", "k2", "k3", "k4", "k5"};
    if (nsp <= 3) return kernel ? ker3[3 - nsp + d] : out3[3 - nsp + d];
    return kernel ? kern[d] : outn[d];
}

/* ---- Conv ---- */

/* x minus its zero point xz (when given; integer convolutions shift first,
** then pad with 0), zero-padded by the window's pads, in type c: a stage,
** or x itself when there is nothing to do. */
static const tir_tensor *conv_padded(tir_func *f, const tir_tensor *x, const tir_tensor *xz, const nn_window *w,
                                     kiln_dtype c) {
    bool any = false;
    int64_t dims[KILN_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = x->dims[1];
    for (int d = 0; d < w->nsp; d++) {
        any |= w->pad_begin[d] || w->pad_end[d];
        dims[2 + d] = w->in[d] + w->pad_begin[d] + w->pad_end[d];
    }
    if (!any && !xz) return x;
    kiln_dtype dt = xz ? c : x->dtype;
    tir_stage *st = cmp_stage(f, "pad", dt, x->rank, dims, TIR_TAG_INJECTIVE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *inside = NULL;
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    for (int d = 0; d < w->nsp; d++) {
        if (!w->pad_begin[d] && !w->pad_end[d]) continue;
        ex_expr *t = ex_sub(&f->eb, idx[2 + d], I(f, w->pad_begin[d]));
        ex_expr *c1 = cmp_in_range(f, t, 0, w->in[d]);
        inside = inside ? ex_and(&f->eb, inside, c1) : c1;
        idx[2 + d] = cmp_clamp(f, t, 0, w->in[d] - 1);
    }
    ex_expr *v = cmp_to(f, cmp_load(f, x, idx), dt);
    if (xz) v = cmp_bin(f, EX_SUB, v, cmp_to(f, cmp_load_first(f, xz), dt));
    st->body = inside ? cmp_sel(f, inside, v, cmp_num(f, dt, 0)) : v;
    return st->out;
}

/* Adds the bias (per output channel, axis 1) and converts to dt; returns
** acc itself when there is nothing to do. */
static tir_tensor *bias_epilogue(tir_func *f, const char *name, tir_tensor *acc, const tir_tensor *b, kiln_dtype dt) {
    if (!acc || (!b && acc->dtype == dt)) return acc;
    tir_stage *st = cmp_stage(f, name, dt, acc->rank, acc->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    ex_expr *v = cmp_load(f, acc, idx);
    if (b) v = cmp_bin(f, EX_ADD, v, cmp_to(f, cmp_load(f, b, &idx[1]), acc->dtype));
    st->body = cmp_to(f, v, dt);
    return st->out;
}

static kiln_status conv_window(kiln_ctx *ctx, const gir_node *n, const tir_tensor *x, const int64_t *wdims,
                               bool pool, nn_window *w) {
    kiln_tensor tx;
    int64_t kernel[KILN_MAX_RANK];
    cmp_type_of(x, &tx);
    kiln_status s = nn_kernel_shape(ctx, n, x->rank - 2, wdims, kernel);
    return s ? s : nn_window_init(ctx, n, &tx, kernel, pool, w);
}

/* The operands of a convolution: x, w, bias, zero points (NULL when absent). */
typedef struct conv_ops {
    const tir_tensor *x, *w, *b, *xz, *wz;
} conv_ops;

/* y = sum over (ic, k) of (x - xz) * (w - wz) [+ b], accumulated in c and
** converted to dt (the output type ty's) — Conv, ConvInteger and the
** accumulation of QLinearConv. */
static tir_tensor *conv_build(kiln_ctx *ctx, tir_func *f, const gir_node *n, const conv_ops *o,
                              const kiln_tensor *ty, kiln_dtype c, kiln_dtype dt, kiln_status *st_out) {
    const tir_tensor *x = o->x, *wt = o->w;
    nn_window w;
    *st_out = conv_window(ctx, n, x, wt->dims + 2, false, &w);
    if (*st_out) return NULL;
    int nsp = w.nsp;
    int64_t group = gir_attr_int(n, "group", 1), icg = wt->dims[1], ocg = wt->dims[0] / group;
    const char *names[KILN_MAX_RANK] = {"n", "oc"};
    for (int d = 0; d < nsp; d++) names[2 + d] = sp_name(nsp, d, false);
    const tir_tensor *xp = conv_padded(f, x, o->xz, &w, c);
    bool direct = !o->b && c == dt;
    tir_stage *st = cmp_stage(f, direct ? "conv" : "conv_acc", c, ty->rank, ty->dims, TIR_TAG_CONV, names);
    ex_expr *ax[KILN_MAX_RANK], *xi[KILN_MAX_RANK], *wi[KILN_MAX_RANK];
    cmp_axes(f, st, ax);
    if (!st || !xp) return NULL;
    ex_expr *ic = ex_varref(&f->eb, cmp_raxis(f, st, "ic", icg));
    xi[0] = ax[0];
    xi[1] = group == 1 ? ic : ex_add(&f->eb, ex_mul(&f->eb, ex_floordiv(&f->eb, ax[1], I(f, ocg)), I(f, icg)), ic);
    wi[0] = ax[1];
    wi[1] = ic;
    for (int d = 0; d < nsp; d++) {
        ex_expr *k = ex_varref(&f->eb, cmp_raxis(f, st, sp_name(nsp, d, true), w.kernel[d]));
        ex_expr *p = w.stride[d] == 1 ? ax[2 + d] : ex_mul(&f->eb, ax[2 + d], I(f, w.stride[d]));
        xi[2 + d] = ex_add(&f->eb, p, w.dilation[d] == 1 ? k : ex_mul(&f->eb, k, I(f, w.dilation[d])));
        wi[2 + d] = k;
    }
    ex_expr *wv = cmp_to(f, cmp_load(f, wt, wi), c);
    if (o->wz) {
        bool per_ch = kiln_numel_dims(o->wz->rank, o->wz->dims) > 1;
        wv = cmp_bin(f, EX_SUB, wv, cmp_to(f, per_ch ? cmp_load(f, o->wz, &ax[1]) : cmp_load_first(f, o->wz), c));
    }
    ex_expr *prod = cmp_bin(f, EX_MUL, cmp_to(f, cmp_load(f, xp, xi), c), wv);
    st->body = cmp_reduction(f, st, EX_SUM, prod);
    return bias_epilogue(f, "conv", st->out, o->b, dt);
}

CMP_FN(conv) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    conv_ops o = {in[0], in[1], cmp_in(n, in, 2), NULL, NULL};
    out[0] = conv_build(ctx, f, n, &o, &ty, cmp_calc(ty.dtype), ty.dtype, &s);
    return s ? s : cmp_done(ctx, f, n);
}

/* The integer form: 8-bit operands minus their zero points, exact in i32. */
CMP_FN(conv_integer) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    conv_ops o = {in[0], in[1], NULL, cmp_in(n, in, 2), cmp_in(n, in, 3)};
    out[0] = conv_build(ctx, f, n, &o, &ty, KILN_I32, KILN_I32, &s);
    return s ? s : cmp_done(ctx, f, n);
}

/* QLinearConv (x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): the
** exact integer convolution plus bias, rescaled by a per-channel factor
** computed in the scales' type, rounded half to even and saturated. */
CMP_FN(qlinear_conv) {
    tir_tensor *xs = in[1], *ws = in[4], *ys = in[6], *yz = in[7];
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    conv_ops o = {in[0], in[3], cmp_in(n, in, 8), in[2], in[5]};
    tir_tensor *acc = conv_build(ctx, f, n, &o, &ty, KILN_I32, KILN_I32, &s);
    if (s) return s;
    tir_stage *st = cmp_stage(f, "qlinear_conv", ty.dtype, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *ax[KILN_MAX_RANK];
    cmp_axes(f, st, ax);
    if (!st || !acc) return cmp_done(ctx, f, n);
    kiln_dtype sd = cmp_calc(xs->dtype);
    bool per_ch = kiln_numel_dims(ws->rank, ws->dims) > 1;
    ex_expr *wv = per_ch ? cmp_load(f, ws, &ax[1]) : cmp_load_first(f, ws);
    ex_expr *prod = cmp_to(f, cmp_bin(f, EX_MUL, cmp_to(f, cmp_load_first(f, xs), sd), cmp_to(f, wv, sd)), xs->dtype);
    ex_expr *fac = cmp_bin(f, EX_DIV, cmp_to(f, prod, sd), cmp_to(f, cmp_load_first(f, ys), sd));
    fac = cmp_to(f, cmp_to(f, fac, xs->dtype), KILN_F64);
    ex_expr *v = cmp_bin(f, EX_MUL, cmp_to(f, cmp_load(f, acc, ax), KILN_F64), fac);
    if (yz) v = cmp_bin(f, EX_ADD, v, cmp_to(f, cmp_load_first(f, yz), KILN_F64));
    st->body = cmp_round_to_int(f, v, ty.dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- ConvTranspose: y[o] gathers x[i] * w[k] over o = i*stride + k*dilation - pad ---- */

static int64_t floor_half(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

/* The leading pad of each spatial dim, as the reference derives it. */
static kiln_status convt_pads(kiln_ctx *ctx, const gir_node *n, const tir_tensor *x, const int64_t *kernel,
                              const int64_t *stride, const int64_t *dil, int64_t *pad_begin) {
    static const char *const modes[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};
    int nsp = x->rank - 2, mode;
    int64_t pads[2 * KILN_MAX_RANK], opad[KILN_MAX_RANK];
    const int64_t *osh;
    int k = gir_attr_ints(n, "output_shape", &osh);
    kiln_status s = nn_attr_ints(ctx, n, "pads", 2 * nsp, 0, pads, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "output_padding", nsp, 0, opad, NULL);
    if (!s) s = nn_attr_choice(ctx, n, "auto_pad", "NOTSET", modes, &mode);
    if (s) return s;
    for (int d = 0; d < nsp; d++) {
        int64_t in = x->dims[2 + d];
        int64_t full = stride[d] * (in - 1) + opad[d] + (kernel[d] - 1) * dil[d] + 1;
        if (k >= 0 || mode == NN_PAD_SAME_UPPER || mode == NN_PAD_SAME_LOWER) {
            int64_t want = k >= 0 ? osh[k - nsp + d] : in * stride[d];
            int64_t total = full - want;
            pad_begin[d] = mode == NN_PAD_SAME_UPPER ? floor_half(total) : total - floor_half(total);
        } else {
            pad_begin[d] = mode == NN_PAD_VALID ? 0 : pads[d];
        }
    }
    return KILN_OK;
}

CMP_FN(conv_transpose) {
    tir_tensor *x = in[0], *wt = in[1], *b = cmp_in(n, in, 2);
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    int nsp = x->rank - 2;
    int64_t kernel[KILN_MAX_RANK], stride[KILN_MAX_RANK], dil[KILN_MAX_RANK], pb[KILN_MAX_RANK];
    if (!s) s = nn_kernel_shape(ctx, n, nsp, wt->dims + 2, kernel);
    if (!s) s = nn_attr_ints(ctx, n, "strides", nsp, 1, stride, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "dilations", nsp, 1, dil, NULL);
    if (!s) s = convt_pads(ctx, n, x, kernel, stride, dil, pb);
    if (s) return s;
    int64_t group = gir_attr_int(n, "group", 1), cg = x->dims[1] / group, mg = wt->dims[1];
    kiln_dtype dt = x->dtype, c = cmp_calc(dt);
    const char *names[KILN_MAX_RANK] = {"n", "oc"};
    for (int d = 0; d < nsp; d++) names[2 + d] = sp_name(nsp, d, false);
    bool direct = !b && c == dt;
    tir_stage *st = cmp_stage(f, direct ? "conv_transpose" : "conv_transpose_acc", c, ty.rank, ty.dims, TIR_TAG_CONV,
                              names);
    ex_builder *eb = &f->eb;
    ex_expr *ax[KILN_MAX_RANK], *xi[KILN_MAX_RANK], *wi[KILN_MAX_RANK], *ok = NULL;
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *ic = ex_varref(eb, cmp_raxis(f, st, "ic", cg));
    ex_expr *cin = group == 1 ? ic : ex_add(eb, ex_mul(eb, ex_floordiv(eb, ax[1], I(f, mg)), I(f, cg)), ic);
    xi[0] = ax[0];
    xi[1] = cin;
    wi[0] = cin;
    wi[1] = group == 1 ? ax[1] : ex_floormod(eb, ax[1], I(f, mg));
    for (int d = 0; d < nsp; d++) {
        ex_expr *k = ex_varref(eb, cmp_raxis(f, st, sp_name(nsp, d, true), kernel[d]));
        /* t = o + pad - k*dilation must be i*stride with i inside the input */
        ex_expr *t = ex_sub(eb, ex_add(eb, ax[2 + d], I(f, pb[d])), ex_mul(eb, k, I(f, dil[d])));
        ex_expr *i = stride[d] == 1 ? t : ex_floordiv(eb, t, I(f, stride[d]));
        ex_expr *c1 = cmp_in_range(f, i, 0, x->dims[2 + d]);
        if (stride[d] != 1) c1 = ex_and(eb, c1, cmp_bin(f, EX_EQ, ex_floormod(eb, t, I(f, stride[d])), I(f, 0)));
        ok = ok ? ex_and(eb, ok, c1) : c1;
        xi[2 + d] = cmp_clamp(f, i, 0, x->dims[2 + d] - 1);
        wi[2 + d] = k;
    }
    ex_expr *prod = cmp_bin(f, EX_MUL, cmp_to(f, cmp_load(f, x, xi), c), cmp_to(f, cmp_load(f, wt, wi), c));
    st->body = cmp_reduction(f, st, EX_SUM, cmp_sel(f, ok, prod, cmp_num(f, c, 0)));
    out[0] = bias_epilogue(f, "conv_transpose", st->out, b, dt);
    return cmp_done(ctx, f, n);
}

/* ---- windowed pools ---- */

enum { POOL_AVG, POOL_MAX, POOL_LP };

typedef struct pool_ctx {
    int kind;
    const tir_tensor *x;
    nn_window w;
    kiln_dtype calc;
    double p;
} pool_ctx;

/* The input position of tap k for output position o, in dim d. */
static ex_expr *pool_pos(tir_func *f, const nn_window *w, int d, ex_expr *o, ex_expr *k) {
    ex_builder *eb = &f->eb;
    ex_expr *base = ex_sub(eb, w->stride[d] == 1 ? o : ex_mul(eb, o, I(f, w->stride[d])), I(f, w->pad_begin[d]));
    return ex_add(eb, base, w->dilation[d] == 1 ? k : ex_mul(eb, k, I(f, w->dilation[d])));
}

/* The reduction stage: taps inside the input contribute, others the
** identity. Fills pos[] with each dim's tap position. */
static tir_stage *pool_reduce(tir_func *f, const pool_ctx *p, const kiln_tensor *ty, const char *name, ex_combiner cb,
                              ex_expr **pos, ex_expr **kv) {
    int nsp = p->w.nsp;
    const char *names[KILN_MAX_RANK] = {"n", "c"};
    for (int d = 0; d < nsp; d++) names[2 + d] = sp_name(nsp, d, false);
    tir_stage *st = cmp_stage(f, name, p->calc, ty->rank, ty->dims, TIR_TAG_POOL, names);
    ex_expr *ax[KILN_MAX_RANK], *xi[KILN_MAX_RANK], *inside = NULL;
    cmp_axes(f, st, ax);
    if (!st) return NULL;
    xi[0] = ax[0];
    xi[1] = ax[1];
    for (int d = 0; d < nsp; d++) {
        kv[d] = ex_varref(&f->eb, cmp_raxis(f, st, sp_name(nsp, d, true), p->w.kernel[d]));
        pos[d] = pool_pos(f, &p->w, d, ax[2 + d], kv[d]);
        ex_expr *c = cmp_in_range(f, pos[d], 0, p->w.in[d]);
        inside = inside ? ex_and(&f->eb, inside, c) : c;
        xi[2 + d] = cmp_clamp(f, pos[d], 0, p->w.in[d] - 1);
    }
    ex_expr *v = cmp_to(f, cmp_load(f, p->x, xi), p->calc);
    if (p->kind == POOL_LP) v = cmp_bin(f, EX_POW, cmp_un(f, EX_ABS, v), cmp_f(f, p->calc, p->p));
    ex_expr *none = ex_combiner_identity(&f->eb, cb, p->calc);
    st->body = cmp_reduction(f, st, cb, cmp_sel(f, inside, v, none));
    return st;
}

/* The number of taps of output position o in dim d that fall in [lo, hi). */
static ex_expr *tap_count(tir_func *f, const nn_window *w, int d, ex_expr *o, int64_t lo, int64_t hi) {
    ex_builder *eb = &f->eb;
    int64_t dl = w->dilation[d];
    ex_expr *base = ex_sub(eb, ex_mul(eb, o, I(f, w->stride[d])), I(f, w->pad_begin[d]));
    /* k from ceil((lo - base) / dl) to floor((hi - 1 - base) / dl), within [0, K) */
    ex_expr *kmin = ex_floordiv(eb, ex_add(eb, ex_sub(eb, I(f, lo), base), I(f, dl - 1)), I(f, dl));
    ex_expr *kmax = ex_floordiv(eb, ex_sub(eb, I(f, hi - 1), base), I(f, dl));
    kmin = ex_max(eb, kmin, I(f, 0));
    kmax = ex_min(eb, kmax, I(f, w->kernel[d] - 1));
    return ex_max(eb, ex_add(eb, ex_sub(eb, kmax, kmin), I(f, 1)), I(f, 0));
}

static kiln_status pool_setup(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, int kind, pool_ctx *p,
                              kiln_tensor *ty) {
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->x = in[0];
    p->calc = cmp_calc(in[0]->dtype);
    const gir_attr *pa = gir_attr_find(n, "p");
    p->p = !pa ? 2.0 : pa->kind == GIR_ATTR_FLOAT ? pa->f : (double)pa->i;
    kiln_status s = cmp_plain(ctx, n, in[0]->dtype);
    if (!s) s = cmp_infer(ctx, n, in, ty);
    if (!s) s = conv_window(ctx, n, in[0], NULL, true, &p->w);
    return s;
}

CMP_FN(avg_pool) {
    pool_ctx p;
    kiln_tensor ty[2];
    kiln_status s = pool_setup(ctx, n, in, POOL_AVG, &p, ty);
    if (s) return s;
    ex_expr *pos[KILN_MAX_RANK], *kv[KILN_MAX_RANK], *ax[KILN_MAX_RANK];
    tir_stage *sum = pool_reduce(f, &p, &ty[0], "avg_pool_sum", EX_SUM, pos, kv);
    bool count_pad = gir_attr_int(n, "count_include_pad", 0) != 0;
    tir_stage *st = cmp_stage(f, "average_pool", p.x->dtype, ty[0].rank, ty[0].dims, TIR_TAG_ELEMWISE, NULL);
    cmp_axes(f, st, ax);
    if (!st || !sum) return cmp_done(ctx, f, n);
    ex_expr *cnt = NULL;
    for (int d = 0; d < p.w.nsp; d++) {
        int64_t lo = count_pad ? -p.w.pad_begin[d] : 0, hi = p.w.in[d] + (count_pad ? p.w.pad_end[d] : 0);
        ex_expr *c = tap_count(f, &p.w, d, ax[2 + d], lo, hi);
        cnt = cnt ? ex_mul(&f->eb, cnt, c) : c;
    }
    ex_expr *v = cmp_bin(f, EX_DIV, cmp_load(f, sum->out, ax), cmp_to(f, cnt, p.calc));
    st->body = cmp_to(f, v, p.x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(lp_pool) {
    pool_ctx p;
    kiln_tensor ty;
    kiln_status s = pool_setup(ctx, n, in, POOL_LP, &p, &ty);
    if (s) return s;
    ex_expr *pos[KILN_MAX_RANK], *kv[KILN_MAX_RANK], *ax[KILN_MAX_RANK];
    tir_stage *sum = pool_reduce(f, &p, &ty, "lp_pool_sum", EX_SUM, pos, kv);
    tir_stage *st = cmp_stage(f, "lp_pool", p.x->dtype, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    cmp_axes(f, st, ax);
    if (!st || !sum) return cmp_done(ctx, f, n);
    ex_expr *v = cmp_bin(f, EX_POW, cmp_load(f, sum->out, ax), cmp_f(f, p.calc, 1.0 / p.p));
    st->body = cmp_to(f, v, p.x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* MaxPool's Indices: the first tap (in kernel order) holding the max, as a
** flat index into x (row-major, or column-major per plane). */
static tir_tensor *max_pool_indices(tir_func *f, const gir_node *n, const pool_ctx *p, const kiln_tensor *ty,
                                    const tir_tensor *best) {
    int nsp = p->w.nsp;
    ex_expr *pos[KILN_MAX_RANK], *kv[KILN_MAX_RANK], *ax[KILN_MAX_RANK], *kd[KILN_MAX_RANK];
    tir_stage *ks = cmp_stage(f, "max_pool_tap", KILN_I64, ty->rank, ty->dims, TIR_TAG_POOL, NULL);
    cmp_axes(f, ks, ax);
    if (!ks) return NULL;
    ex_expr *xi[KILN_MAX_RANK], *inside = NULL;
    xi[0] = ax[0];
    xi[1] = ax[1];
    for (int d = 0; d < nsp; d++) {
        kv[d] = ex_varref(&f->eb, cmp_raxis(f, ks, sp_name(nsp, d, true), p->w.kernel[d]));
        pos[d] = pool_pos(f, &p->w, d, ax[2 + d], kv[d]);
        ex_expr *c = cmp_in_range(f, pos[d], 0, p->w.in[d]);
        inside = inside ? ex_and(&f->eb, inside, c) : c;
        xi[2 + d] = cmp_clamp(f, pos[d], 0, p->w.in[d] - 1);
    }
    int64_t kc = kiln_numel_dims(nsp, p->w.kernel);
    ex_expr *hit = ex_and(&f->eb, inside, cmp_bin(f, EX_EQ, cmp_to(f, cmp_load(f, p->x, xi), p->calc),
                                                  cmp_load(f, best, ax)));
    ks->body = cmp_reduction(f, ks, EX_RMIN, cmp_sel(f, hit, cmp_flatten(f, nsp, p->w.kernel, kv), I(f, kc)));
    tir_stage *st = cmp_stage(f, "max_pool_indices", KILN_I64, ty->rank, ty->dims, TIR_TAG_ELEMWISE, NULL);
    cmp_axes(f, st, ax);
    if (!st) return NULL;
    cmp_unflatten(f, cmp_clamp(f, cmp_load(f, ks->out, ax), 0, kc - 1), nsp, p->w.kernel, kd);
    for (int d = 0; d < nsp; d++) pos[d] = pool_pos(f, &p->w, d, ax[2 + d], kd[d]);
    ex_expr *off = NULL;
    if (gir_attr_int(n, "storage_order", 0)) {
        int64_t mul = 1;
        for (int d = 0; d < nsp; d++, mul *= p->w.in[d - 1]) {
            ex_expr *t = ex_mul(&f->eb, pos[d], I(f, mul));
            off = off ? ex_add(&f->eb, off, t) : t;
        }
    } else {
        off = cmp_flatten(f, nsp, p->w.in, pos);
    }
    int64_t isz = kiln_numel_dims(nsp, p->w.in), C = p->x->dims[1];
    ex_expr *plane = ex_add(&f->eb, ex_mul(&f->eb, ax[0], I(f, C)), ax[1]);
    st->body = ex_add(&f->eb, ex_mul(&f->eb, plane, I(f, isz)), off);
    return st->out;
}

CMP_FN(max_pool) {
    pool_ctx p;
    kiln_tensor ty[2];
    kiln_status s = pool_setup(ctx, n, in, POOL_MAX, &p, ty);
    if (s) return s;
    ex_expr *pos[KILN_MAX_RANK], *kv[KILN_MAX_RANK];
    kiln_dtype dt = p.x->dtype;
    bool cast = p.calc != dt;
    tir_stage *m = pool_reduce(f, &p, &ty[0], cast ? "max_pool_acc" : "max_pool", EX_RMAX, pos, kv);
    if (!m) return cmp_done(ctx, f, n);
    out[0] = cast ? cmp_copy(f, "max_pool", m->out, dt, TIR_TAG_ELEMWISE) : m->out;
    if (cmp_wants(n, 1)) out[1] = max_pool_indices(f, n, &p, &ty[0], m->out);
    return cmp_done(ctx, f, n);
}

/* ---- global pools: one window over every spatial dim ---- */

static kiln_status global_pool(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in,
                               tir_tensor **out, int kind) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    const gir_attr *pa = gir_attr_find(n, "p");
    double p = !pa ? 2.0 : pa->kind == GIR_ATTR_FLOAT ? pa->f : (double)pa->i;
    if (kind == POOL_LP && !(p > 0)) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "p must be positive, got %g", p);
    kiln_dtype dt = x->dtype, c = cmp_calc(dt);
    ex_combiner cb = kind == POOL_MAX ? EX_RMAX : EX_SUM;
    tir_stage *acc = cmp_stage(f, "global_pool_acc", c, ty.rank, ty.dims, TIR_TAG_REDUCE, NULL);
    ex_expr *ax[KILN_MAX_RANK], *xi[KILN_MAX_RANK];
    cmp_axes(f, acc, ax);
    if (!acc) return cmp_done(ctx, f, n);
    xi[0] = ax[0];
    xi[1] = ax[1];
    static const char *const names[] = {"r2", "r3", "r4", "r5", "r6", "r7"};
    for (int d = 2; d < x->rank; d++) xi[d] = ex_varref(&f->eb, cmp_raxis(f, acc, names[d - 2], x->dims[d]));
    ex_expr *v = cmp_to(f, cmp_load(f, x, xi), c);
    if (kind == POOL_LP) v = cmp_bin(f, EX_POW, cmp_un(f, EX_ABS, v), cmp_f(f, c, p));
    acc->body = acc->n_raxes ? cmp_reduction(f, acc, cb, v) : v;
    acc->tag = acc->n_raxes ? TIR_TAG_REDUCE : TIR_TAG_ELEMWISE;
    char name[64];
    tir_stage *st = cmp_stage(f, cmp_lower(n, name, sizeof name), dt, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *r = cmp_load(f, acc->out, ax);
    int64_t sz = kiln_numel_dims(x->rank - 2, x->dims + 2);
    if (kind == POOL_AVG) r = cmp_bin(f, EX_DIV, r, cmp_f(f, c, (double)sz));
    if (kind == POOL_LP) r = cmp_bin(f, EX_POW, r, cmp_f(f, c, 1.0 / p));
    st->body = cmp_to(f, r, dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(global_avg_pool) { return global_pool(ctx, f, n, in, out, POOL_AVG); }
CMP_FN(global_max_pool) { return global_pool(ctx, f, n, in, out, POOL_MAX); }
CMP_FN(global_lp_pool) { return global_pool(ctx, f, n, in, out, POOL_LP); }

/* ---- RotaryEmbedding: rotates pairs of the first rotary_embedding_dim
** features of each head by the cached angle of the token's position ---- */

CMP_FN(rotary) {
    tir_tensor *x = in[0], *cs = in[1], *sn = in[2], *pos = cmp_in(n, in, 3);
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    ex_builder *eb = &f->eb;
    bool is3d = x->rank == 3, il = gir_attr_int(n, "interleaved", 0) != 0;
    int64_t heads = is3d ? gir_attr_int(n, "num_heads", 1) : x->dims[1];
    int64_t d = is3d ? x->dims[2] / heads : x->dims[3], rot = gir_attr_int(n, "rotary_embedding_dim", 0);
    if (rot == 0) rot = d;
    int64_t half = rot / 2;
    kiln_dtype dt = x->dtype, c = cmp_calc(dt);
    tir_stage *st = cmp_stage(f, "rotary_embedding", dt, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *pi[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    int fd = x->rank - 1; /* the feature dim: head features, or hidden = head * d + j */
    ex_expr *b = idx[0], *t = idx[is3d ? 1 : 2], *j = is3d ? ex_floormod(eb, idx[fd], I(f, d)) : idx[fd];
    /* partner feature p and cache column i (clamped: only used below rot) */
    ex_expr *first, *p, *i;
    if (il) {
        first = cmp_bin(f, EX_EQ, ex_floormod(eb, j, I(f, 2)), I(f, 0));
        p = cmp_sel(f, first, ex_add(eb, j, I(f, 1)), ex_sub(eb, j, I(f, 1)));
        i = ex_floordiv(eb, j, I(f, 2));
    } else {
        first = ex_lt(eb, j, I(f, half));
        p = cmp_sel(f, first, ex_add(eb, j, I(f, half)), ex_sub(eb, j, I(f, half)));
        i = cmp_sel(f, first, j, ex_sub(eb, j, I(f, half)));
    }
    p = cmp_clamp(f, p, 0, d - 1);
    i = cmp_clamp(f, i, 0, half - 1);
    memcpy(pi, idx, sizeof(ex_expr *) * (size_t)x->rank);
    pi[fd] = is3d ? ex_add(eb, ex_sub(eb, idx[fd], j), p) : p;
    ex_expr *ci[3];
    if (pos) {
        ex_expr *bt[2] = {b, t};
        ci[0] = cmp_clamp(f, cmp_to(f, cmp_load(f, pos, bt), KILN_I64), 0, cs->dims[0] - 1);
        ci[1] = i;
    } else {
        ci[0] = b, ci[1] = t, ci[2] = i;
    }
    ex_expr *cv = cmp_to(f, cmp_load(f, cs, ci), c), *sv = cmp_to(f, cmp_load(f, sn, ci), c);
    ex_expr *xv = cmp_to(f, cmp_load(f, x, idx), c), *xp = cmp_to(f, cmp_load(f, x, pi), c);
    ex_expr *r1 = cmp_bin(f, EX_SUB, cmp_bin(f, EX_MUL, cv, xv), cmp_bin(f, EX_MUL, sv, xp));
    ex_expr *r2 = cmp_bin(f, EX_ADD, cmp_bin(f, EX_MUL, sv, xp), cmp_bin(f, EX_MUL, cv, xv));
    ex_expr *r = cmp_sel(f, ex_lt(eb, j, I(f, rot)), cmp_sel(f, first, r1, r2), xv);
    st->body = cmp_to(f, r, dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}
