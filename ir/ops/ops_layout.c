/*
** ops_layout.c — kiln's blocked-channel layout ops (domain "ai.kiln"):
**
**   LayoutToBlocked   x[N, C, H, W] -> y[N, ceil(C/c), H, W, c]   (attr block = c;
**                     channels past C are zero)
**   LayoutFromBlocked x[N, CB, H, W, c] -> y[N, C, H, W]          (attr channels = C)
**   ConvBlocked       a 2-D Conv on blocked input and output:
**                     x[N, ICB, H, W, c], w[OCB, ICBW, KH, KW, bi, c], b[OCB, c]
**                     -> y[N, OCB, OH, OW, c]
**                     or from an NCHW input x[N, C, H, W] (blocks of one
**                     channel: an image's few channels are not padded to c),
**                     w[OCB, C, KH, KW, 1, c]
**
** ConvBlocked's weights are blocked at compile time (passes/choose_layout.c):
** w[ocb, icb, kh, kw, i, o] = W[ocb*c + o, icb*c + i, kh, kw] (zero past the
** real channels; an NCHW input's blocks are of one channel: i is 0 and
** icb the channel). bi == c for regular and grouped convolutions (a group's
** channels a whole number of blocks: output block ocb reads input blocks
** (ocb / (OCB/group)) * ICBW + icb); bi == 1 for depthwise ones (one input
** channel per output channel: output lane o of block ocb reads input lane o
** of block ocb, ICBW == 1). Attributes as Conv's, pads explicit: strides,
** pads [top, left, bottom, right], dilations, group.
**
** The compute definitions: the transforms are one injective stage each;
** ConvBlocked pads its input (a stage "pad", loads clamped) and reduces in a
** stage tagged TIR_TAG_CONV with axes n, ocb, oh, ow, ob and reductions
** icb, kh, kw, ib (depthwise: kh, kw), then adds the bias as an epilogue.
*/
#include <string.h>

#include "compute.h"

#define A_INT(name) {name, GIR_ATTR_INT, false}
#define A_INTS(name) {name, GIR_ATTR_INTS, false}
#define A_END {NULL, 0, false}

/* ---- LayoutToBlocked / LayoutFromBlocked ---- */

static kiln_status block_attr(kiln_ctx *ctx, const gir_node *n, const char *name, int64_t max, int64_t *out) {
    int64_t v = gir_attr_int(n, name, 0);
    if (v < 1 || v > max)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute %s = %lld must be in 1..%lld", name, (long long)v,
                            (long long)max);
    *out = v;
    return KILN_OK;
}

static kiln_status infer_to_blocked(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    int64_t c = 0;
    kiln_status s = block_attr(ctx, n, "block", 1024, &c);
    if (s) return s;
    const kiln_tensor *x = in[0];
    if (x->rank != 4) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be 4-D NCHW, has rank %d", x->rank);
    int64_t dims[5] = {x->dims[0], (x->dims[1] + c - 1) / c, x->dims[2], x->dims[3], c};
    kiln_tensor_init(&out[0], x->dtype, 5, dims);
    return KILN_OK;
}

static kiln_status infer_from_blocked(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    int64_t ch = 0;
    kiln_status s = block_attr(ctx, n, "channels", (int64_t)1 << 40, &ch);
    if (s) return s;
    const kiln_tensor *x = in[0];
    if (x->rank != 5) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be 5-D blocked, has rank %d", x->rank);
    int64_t c = x->dims[4];
    if (c < 1 || (ch + c - 1) / c != x->dims[1])
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%lld channels do not fill %lld blocks of %lld", (long long)ch,
                            (long long)x->dims[1], (long long)c);
    int64_t dims[4] = {x->dims[0], ch, x->dims[2], x->dims[3]};
    kiln_tensor_init(&out[0], x->dtype, 4, dims);
    return KILN_OK;
}

/* Copies between x[N, C, H, W] and y[N, CB, H, W, c] (to_blocked: x -> y,
** padded lanes left zero; else y -> x). */
static void copy_blocked(float *x, float *y, const int64_t *xd, int64_t c, bool to_blocked) {
    int64_t C = xd[1], HW = xd[2] * xd[3], CB = (C + c - 1) / c;
    for (int64_t nn = 0; nn < xd[0]; nn++)
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t p = 0; p < HW; p++) {
                int64_t xi = (nn * C + ch) * HW + p, yi = ((nn * CB + ch / c) * HW + p) * c + ch % c;
                if (to_blocked) y[yi] = x[xi];
                else x[xi] = y[yi];
            }
}

static kiln_status ref_to_blocked(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx, (void)n;
    copy_blocked(in[0]->data, out[0].data, in[0]->dims, out[0].dims[4], true);
    return KILN_OK;
}

static kiln_status ref_from_blocked(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx, (void)n;
    copy_blocked(out[0].data, in[0]->data, out[0].dims, in[0]->dims[4], false);
    return KILN_OK;
}

static kiln_status cmp_to_blocked(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    const tir_tensor *x = in[0];
    int64_t c = ty.dims[4], C = x->dims[1];
    static const char *const names[] = {"n", "cb", "h", "w", "c"};
    tir_stage *st = cmp_stage(f, "to_blocked", x->dtype, 5, ty.dims, TIR_TAG_INJECTIVE, names);
    ex_expr *ax[5];
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *ch = ex_add(&f->eb, ex_mul(&f->eb, ax[1], ex_int(&f->eb, c)), ax[4]);
    ex_expr *xi[4] = {ax[0], cmp_clamp(f, ch, 0, C - 1), ax[2], ax[3]};
    ex_expr *v = cmp_load(f, x, xi);
    st->body = C % c ? cmp_sel(f, cmp_in_range(f, ch, 0, C), v, cmp_num(f, x->dtype, 0)) : v;
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

static kiln_status cmp_from_blocked(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    const tir_tensor *x = in[0];
    int64_t c = x->dims[4];
    static const char *const names[] = {"n", "ch", "h", "w"};
    tir_stage *st = cmp_stage(f, "from_blocked", x->dtype, 4, ty.dims, TIR_TAG_INJECTIVE, names);
    ex_expr *ax[4];
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *ci = ex_int(&f->eb, c);
    ex_expr *xi[5] = {ax[0], ex_floordiv(&f->eb, ax[1], ci), ax[2], ax[3], ex_floormod(&f->eb, ax[1], ci)};
    st->body = cmp_load(f, x, xi);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- ConvBlocked ---- */

typedef struct cb_geom {
    int64_t N, ICB, H, W, ci;          /* input (ci 1: NCHW) */
    int64_t OCB, ICBW, KH, KW, bi, co; /* weights */
    int64_t OH, OW, group;
    int64_t stride[2], dil[2], pad[4];
    bool depthwise;
} cb_geom;

static kiln_status cb_ints(kiln_ctx *ctx, const gir_node *n, const char *name, int count, int64_t dflt, int64_t lo,
                           int64_t *out) {
    const int64_t *v;
    int got = gir_attr_ints(n, name, &v);
    if (got >= 0 && got != count)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute %s has %d values, expected %d", name, got, count);
    for (int i = 0; i < count; i++) {
        out[i] = got < 0 ? dflt : v[i];
        if (out[i] < lo)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute %s[%d] = %lld is below %lld", name, i,
                                (long long)out[i], (long long)lo);
    }
    return KILN_OK;
}

static kiln_status cb_shapes(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, const kiln_tensor *w,
                             const kiln_tensor *b, cb_geom *g) {
    if ((x->rank != 5 && x->rank != 4) || w->rank != 6)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "needs x of rank 5 (or 4, NCHW) and w of rank 6, got %d and %d",
                            x->rank, w->rank);
    g->N = x->dims[0], g->ICB = x->dims[1], g->H = x->dims[2], g->W = x->dims[3], g->ci = x->rank == 5 ? x->dims[4] : 1;
    g->OCB = w->dims[0], g->ICBW = w->dims[1], g->KH = w->dims[2], g->KW = w->dims[3], g->bi = w->dims[4];
    g->co = w->dims[5];
    g->group = gir_attr_int(n, "group", 1);
    g->depthwise = g->bi == 1 && g->ci > 1;
    if (g->co < 1 || (g->depthwise ? g->co != g->ci : g->bi != g->ci) || g->KH < 1 || g->KW < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "weight blocks [%lld, %lld] do not fit an input block of %lld",
                            (long long)g->bi, (long long)g->co, (long long)g->ci);
    if (g->depthwise ? g->ICBW != 1 || g->OCB != g->ICB
                     : g->group < 1 || g->OCB % g->group || g->ICB != g->group * g->ICBW)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%lld input blocks, %lld output blocks and %lld per group do not fit group %lld",
                            (long long)g->ICB, (long long)g->OCB, (long long)g->ICBW, (long long)g->group);
    if (b && (b->rank != 2 || b->dims[0] != g->OCB || b->dims[1] != g->co))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "bias must be [%lld, %lld]", (long long)g->OCB, (long long)g->co);
    if (x->dtype != KILN_F32 || w->dtype != KILN_F32 || (b && b->dtype != KILN_F32))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "only f32 tensors");
    kiln_status s = cb_ints(ctx, n, "strides", 2, 1, 1, g->stride);
    if (!s) s = cb_ints(ctx, n, "dilations", 2, 1, 1, g->dil);
    if (!s) s = cb_ints(ctx, n, "pads", 4, 0, 0, g->pad);
    if (s) return s;
    int64_t eh = g->H + g->pad[0] + g->pad[2] - g->dil[0] * (g->KH - 1) - 1;
    int64_t ew = g->W + g->pad[1] + g->pad[3] - g->dil[1] * (g->KW - 1) - 1;
    if (eh < 0 || ew < 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the kernel is larger than the padded input");
    g->OH = eh / g->stride[0] + 1, g->OW = ew / g->stride[1] + 1;
    return KILN_OK;
}

static kiln_status infer_conv_blocked(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    cb_geom g;
    kiln_status s = cb_shapes(ctx, n, in[0], in[1], n->n_inputs > 2 ? in[2] : NULL, &g);
    if (s) return s;
    int64_t dims[5] = {g.N, g.OCB, g.OH, g.OW, g.co};
    kiln_tensor_init(&out[0], KILN_F32, 5, dims);
    return KILN_OK;
}

/* The input block that output block ocb reads as its icb-th. */
static int64_t cb_in_block(const cb_geom *g, int64_t ocb, int64_t icb) {
    return g->depthwise ? ocb : (ocb / (g->OCB / g->group)) * g->ICBW + icb;
}

/* One output element, accumulated in double. */
static double cb_point(const cb_geom *g, const float *x, const float *w, int64_t nn, int64_t ocb, int64_t oh,
                       int64_t ow, int64_t o) {
    double acc = 0;
    int64_t nib = g->depthwise ? 1 : g->ICBW, nil = g->depthwise ? 1 : g->ci;
    for (int64_t icb = 0; icb < nib; icb++)
        for (int64_t kh = 0; kh < g->KH; kh++) {
            int64_t ih = oh * g->stride[0] + kh * g->dil[0] - g->pad[0];
            if (ih < 0 || ih >= g->H) continue;
            for (int64_t kw = 0; kw < g->KW; kw++) {
                int64_t iw = ow * g->stride[1] + kw * g->dil[1] - g->pad[1];
                if (iw < 0 || iw >= g->W) continue;
                const float *xp = x + (((nn * g->ICB + cb_in_block(g, ocb, icb)) * g->H + ih) * g->W + iw) * g->ci;
                const float *wp = w + (((ocb * g->ICBW + icb) * g->KH + kh) * g->KW + kw) * g->bi * g->co;
                for (int64_t i = 0; i < nil; i++)
                    acc += (double)xp[g->depthwise ? o : i] * (double)wp[i * g->co + o];
            }
        }
    return acc;
}

static kiln_status ref_conv_blocked(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    cb_geom g;
    const kiln_tensor *b = n->n_inputs > 2 ? in[2] : NULL;
    kiln_status s = cb_shapes(ctx, n, in[0], in[1], b, &g);
    if (s) return s;
    float *y = out[0].data;
    const float *bv = b ? b->data : NULL;
    for (int64_t nn = 0; nn < g.N; nn++)
        for (int64_t ocb = 0; ocb < g.OCB; ocb++)
            for (int64_t oh = 0; oh < g.OH; oh++)
                for (int64_t ow = 0; ow < g.OW; ow++)
                    for (int64_t o = 0; o < g.co; o++) {
                        double v = cb_point(&g, in[0]->data, in[1]->data, nn, ocb, oh, ow, o);
                        *y++ = (float)(v + (bv ? bv[ocb * g.co + o] : 0.0));
                    }
    return KILN_OK;
}

/* The input zero-padded by the pads (loads clamped), or x itself; an NCHW
** x padded to [N, C, H', W', 1] (its loads take the first four indices). */
static const tir_tensor *cb_padded(tir_func *f, const tir_tensor *x, const cb_geom *g) {
    if (!g->pad[0] && !g->pad[1] && !g->pad[2] && !g->pad[3]) return x;
    int64_t dims[5] = {g->N, g->ICB, g->H + g->pad[0] + g->pad[2], g->W + g->pad[1] + g->pad[3], g->ci};
    static const char *const names[] = {"n", "cb", "ph", "pw", "c"};
    tir_stage *st = cmp_stage(f, "pad", KILN_F32, 5, dims, TIR_TAG_INJECTIVE, names);
    ex_expr *idx[5], *inside = NULL;
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    for (int d = 0; d < 2; d++) {
        int64_t lo = g->pad[d], ext = d ? g->W : g->H;
        if (!lo && !g->pad[d + 2]) continue;
        ex_expr *t = ex_sub(&f->eb, idx[2 + d], ex_int(&f->eb, lo));
        ex_expr *ok = cmp_in_range(f, t, 0, ext);
        inside = inside ? ex_and(&f->eb, inside, ok) : ok;
        idx[2 + d] = cmp_clamp(f, t, 0, ext - 1);
    }
    st->body = cmp_sel(f, inside, cmp_load(f, x, idx), cmp_num(f, KILN_F32, 0));
    return st->out;
}

/* pos * stride + k * dilation */
static ex_expr *cb_tap(tir_func *f, ex_expr *pos, int64_t stride, ex_expr *k, int64_t dil) {
    ex_expr *p = stride == 1 ? pos : ex_mul(&f->eb, pos, ex_int(&f->eb, stride));
    return ex_add(&f->eb, p, dil == 1 ? k : ex_mul(&f->eb, k, ex_int(&f->eb, dil)));
}

static tir_tensor *cb_build(tir_func *f, const cb_geom *g, const tir_tensor *x, const tir_tensor *w, const tir_tensor *b) {
    const tir_tensor *xp = cb_padded(f, x, g);
    static const char *const names[] = {"n", "ocb", "oh", "ow", "ob"};
    int64_t dims[5] = {g->N, g->OCB, g->OH, g->OW, g->co};
    tir_stage *st = cmp_stage(f, b ? "conv_acc" : "conv_blocked", KILN_F32, 5, dims, TIR_TAG_CONV, names);
    ex_expr *ax[5];
    cmp_axes(f, st, ax);
    if (!st || !xp) return NULL;
    ex_expr *icb = g->depthwise ? ex_int(&f->eb, 0) : ex_varref(&f->eb, cmp_raxis(f, st, "icb", g->ICBW));
    ex_expr *kh = ex_varref(&f->eb, cmp_raxis(f, st, "kh", g->KH));
    ex_expr *kw = ex_varref(&f->eb, cmp_raxis(f, st, "kw", g->KW));
    ex_expr *ib = g->depthwise ? ex_int(&f->eb, 0) : ex_varref(&f->eb, cmp_raxis(f, st, "ib", g->ci));
    ex_expr *xb = icb;
    if (g->depthwise) xb = ax[1];
    else if (g->group > 1)
        xb = ex_add(&f->eb, ex_mul(&f->eb, ex_floordiv(&f->eb, ax[1], ex_int(&f->eb, g->OCB / g->group)),
                                   ex_int(&f->eb, g->ICBW)), icb);
    ex_expr *xi[5] = {ax[0], xb, cb_tap(f, ax[2], g->stride[0], kh, g->dil[0]),
                      cb_tap(f, ax[3], g->stride[1], kw, g->dil[1]), g->depthwise ? ax[4] : ib};
    ex_expr *wi[6] = {ax[1], icb, kh, kw, ib, ax[4]};
    st->body = cmp_reduction(f, st, EX_SUM, cmp_bin(f, EX_MUL, cmp_load(f, xp, xi), cmp_load(f, w, wi)));
    if (!b) return st->out;
    tir_stage *e = cmp_stage(f, "conv_blocked", KILN_F32, 5, dims, TIR_TAG_ELEMWISE, names);
    ex_expr *ex[5];
    cmp_axes(f, e, ex);
    if (!e) return NULL;
    ex_expr *bi[2] = {ex[1], ex[4]};
    e->body = cmp_bin(f, EX_ADD, cmp_load(f, st->out, ex), cmp_load(f, b, bi));
    return e->out;
}

static kiln_status cmp_conv_blocked(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out) {
    cmp_types ty;
    cb_geom g;
    cmp_types_of(n, in, &ty);
    const tir_tensor *b = cmp_in(n, in, 2);
    kiln_status s = cb_shapes(ctx, n, ty.p[0], ty.p[1], b ? ty.p[2] : NULL, &g);
    if (s) return s;
    out[0] = cb_build(f, &g, in[0], in[1], b);
    return cmp_done(ctx, f, n);
}

static const kiln_attr_schema k_to_attrs[] = {{"block", GIR_ATTR_INT, true}, A_END};
static const kiln_attr_schema k_from_attrs[] = {{"channels", GIR_ATTR_INT, true}, A_END};
static const kiln_attr_schema k_cb_attrs[] = {A_INTS("dilations"), A_INT("group"), A_INTS("pads"), A_INTS("strides"), A_END};

#define F32 KILN_DT(KILN_F32)

const kiln_op_def kiln_ops_layout[] = {
    {"LayoutToBlocked", "ai.kiln", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F32, KILN_FUSE_INJECTIVE, k_to_attrs, infer_to_blocked,
     ref_to_blocked, cmp_to_blocked, 0, false, false},
    {"LayoutFromBlocked", "ai.kiln", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F32, KILN_FUSE_INJECTIVE, k_from_attrs, infer_from_blocked,
     ref_from_blocked, cmp_from_blocked, 0, false, false},
    {"ConvBlocked", "ai.kiln", 1, KILN_MAX_OPSET, 2, 3, 1, 1, F32, KILN_FUSE_ANCHOR, k_cb_attrs, infer_conv_blocked,
     ref_conv_blocked, cmp_conv_blocked, 0, false, false},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, 0, KILN_FUSE_NONE, NULL, NULL, NULL, NULL, 0, false, false},
};
