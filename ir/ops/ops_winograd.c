/*
** ops_winograd.c — the two transforms of a Winograd F(2x2, 3x3) convolution
** in the blocked channel layout (domain "ai.kiln"; passes/winograd.c
** rewrites a ConvBlocked into them around a batched MatMul):
**
**   WinogradInput   x[N, ICB, H, W, c] -> V[16, T, ICB*c]
**                   attrs pads = [top, left], tiles = [TH, TW]; T = N*TH*TW.
**                   V[4a+b, t, ic] = (B^T d B)[a, b], d the 4x4 patch of
**                   channel ic at rows 2*th - top .. +3, columns 2*tw - left
**                   .. +3 of image n (zero outside the image).
**   WinogradOutput  M[16, T, OC] (, bias[OC/c, c]) -> y[N, OC/c, OH, OW, c]
**                   attrs shape = [N, OH, OW], block = c; TH = ceil(OH/2),
**                   TW = ceil(OW/2). y at (oh, ow) of tile t =
**                   (A^T m A)[oh % 2, ow % 2] (+ bias), m = M[:, t, oc] as 4x4.
**
** With U[4a+b, ic, oc] = (G g G^T)[a, b] for the 3x3 kernel g of (oc, ic),
** V x U batched over the 16 positions, then WinogradOutput, is the
** convolution: 16 multiplies per 4 outputs instead of 36.
**
**   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]   A^T = [1 1 1 0; 0 1 -1 -1]
**
** Row a of B^T is d[i1(a)] + s(a) d[i2(a)] (i1 = 0 1 2 1, i2 = 2 2 1 3,
** s = -1 1 -1 -1); row r of A^T sums m[r .. r+2] with signs (r == 0 or k == 0:
** +1, else -1). The compute definitions write exactly these sums.
*/
#include <string.h>

#include "compute.h"

#define A_INTS(name) {name, GIR_ATTR_INTS, true}
#define A_INT(name) {name, GIR_ATTR_INT, true}
#define A_END {NULL, 0, false}

static const int k_i1[4] = {0, 1, 2, 1}, k_i2[4] = {2, 2, 1, 3};
static const double k_s2[4] = {-1, 1, -1, -1};

/* ---- attributes and shapes ---- */

static kiln_status wg_ints(kiln_ctx *ctx, const gir_node *n, const char *name, int count, int64_t lo, int64_t *out) {
    const int64_t *v;
    if (gir_attr_ints(n, name, &v) != count)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute %s needs %d values", name, count);
    for (int i = 0; i < count; i++) {
        if (v[i] < lo || v[i] > ((int64_t)1 << 30))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute %s[%d] = %lld is out of range", name, i,
                                (long long)v[i]);
        out[i] = v[i];
    }
    return KILN_OK;
}

typedef struct wg_in_geom {
    int64_t N, ICB, H, W, c, pad[2], TH, TW;
} wg_in_geom;

static kiln_status wg_in_shape(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, wg_in_geom *g) {
    if (x->rank != 5 || x->dtype != KILN_F32)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "needs a blocked f32 input of rank 5, got rank %d", x->rank);
    g->N = x->dims[0], g->ICB = x->dims[1], g->H = x->dims[2], g->W = x->dims[3], g->c = x->dims[4];
    int64_t tiles[2] = {1, 1};
    kiln_status s = wg_ints(ctx, n, "pads", 2, 0, g->pad);
    if (!s) s = wg_ints(ctx, n, "tiles", 2, 1, tiles);
    g->TH = tiles[0], g->TW = tiles[1];
    return s;
}

static kiln_status infer_wg_in(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    wg_in_geom g;
    kiln_status s = wg_in_shape(ctx, n, in[0], &g);
    if (s) return s;
    int64_t dims[3] = {16, g.N * g.TH * g.TW, g.ICB * g.c};
    kiln_tensor_init(&out[0], KILN_F32, 3, dims);
    return KILN_OK;
}

typedef struct wg_out_geom {
    int64_t N, OH, OW, c, OCB, TH, TW, T;
} wg_out_geom;

static kiln_status wg_out_shape(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *m, const kiln_tensor *b,
                                wg_out_geom *g) {
    int64_t shape[3] = {1, 1, 1}, c = 1;
    kiln_status s = wg_ints(ctx, n, "shape", 3, 1, shape);
    if (s) return s;
    c = gir_attr_int(n, "block", 0);
    if (c < 1 || c > 1024) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute block = %lld must be in 1..1024", (long long)c);
    g->N = shape[0], g->OH = shape[1], g->OW = shape[2], g->c = c;
    g->TH = (g->OH + 1) / 2, g->TW = (g->OW + 1) / 2, g->T = g->N * g->TH * g->TW;
    if (m->rank != 3 || m->dtype != KILN_F32 || m->dims[0] != 16 || m->dims[1] != g->T || m->dims[2] % c)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "needs f32 [16, %lld, a multiple of %lld]", (long long)g->T,
                            (long long)c);
    g->OCB = m->dims[2] / c;
    if (b && (b->rank != 2 || b->dtype != KILN_F32 || b->dims[0] != g->OCB || b->dims[1] != c))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "bias must be f32 [%lld, %lld]", (long long)g->OCB, (long long)c);
    return KILN_OK;
}

static kiln_status infer_wg_out(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    wg_out_geom g;
    kiln_status s = wg_out_shape(ctx, n, in[0], n->n_inputs > 1 ? in[1] : NULL, &g);
    if (s) return s;
    int64_t dims[5] = {g.N, g.OCB, g.OH, g.OW, g.c};
    kiln_tensor_init(&out[0], KILN_F32, 5, dims);
    return KILN_OK;
}

/* ---- reference kernels ---- */

/* The patch value at (row, col) of tile (nn, th, tw), channel (icb, o). */
static double wg_patch(const wg_in_geom *g, const float *x, int64_t nn, int64_t icb, int64_t row, int64_t col,
                       int64_t o) {
    if (row < 0 || row >= g->H || col < 0 || col >= g->W) return 0;
    return x[(((nn * g->ICB + icb) * g->H + row) * g->W + col) * g->c + o];
}

static kiln_status ref_wg_in(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    wg_in_geom g;
    kiln_status s = wg_in_shape(ctx, n, in[0], &g);
    if (s) return s;
    const float *x = in[0]->data;
    float *v = out[0].data;
    int64_t T = g.N * g.TH * g.TW, IC = g.ICB * g.c;
    for (int64_t t = 0; t < T; t++) {
        int64_t nn = t / (g.TH * g.TW), r0 = (t / g.TW) % g.TH * 2 - g.pad[0], c0 = t % g.TW * 2 - g.pad[1];
        for (int64_t ic = 0; ic < IC; ic++)
            for (int a = 0; a < 4; a++)
                for (int b = 0; b < 4; b++) {
                    double acc = 0;
                    for (int p = 0; p < 2; p++)
                        for (int q = 0; q < 2; q++) {
                            double sg = (p ? k_s2[a] : 1) * (q ? k_s2[b] : 1);
                            int64_t row = r0 + (p ? k_i2[a] : k_i1[a]), col = c0 + (q ? k_i2[b] : k_i1[b]);
                            acc += sg * wg_patch(&g, x, nn, ic / g.c, row, col, ic % g.c);
                        }
                    v[((a * 4 + b) * T + t) * IC + ic] = (float)acc;
                }
    }
    return KILN_OK;
}

static double wg_sign(int64_t r, int k) { return r == 0 || k == 0 ? 1.0 : -1.0; }

static kiln_status ref_wg_out(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *b = n->n_inputs > 1 ? in[1] : NULL;
    wg_out_geom g;
    kiln_status s = wg_out_shape(ctx, n, in[0], b, &g);
    if (s) return s;
    const float *m = in[0]->data, *bias = b ? b->data : NULL;
    float *y = out[0].data;
    int64_t OC = g.OCB * g.c;
    for (int64_t nn = 0; nn < g.N; nn++)
        for (int64_t oc = 0; oc < OC; oc++)
            for (int64_t oh = 0; oh < g.OH; oh++)
                for (int64_t ow = 0; ow < g.OW; ow++) {
                    int64_t t = (nn * g.TH + oh / 2) * g.TW + ow / 2, r = oh % 2, q = ow % 2;
                    double acc = bias ? bias[oc] : 0;
                    for (int k1 = 0; k1 < 3; k1++)
                        for (int k2 = 0; k2 < 3; k2++)
                            acc += wg_sign(r, k1) * wg_sign(q, k2) * m[(((r + k1) * 4 + q + k2) * g.T + t) * OC + oc];
                    y[(((nn * g.OCB + oc / g.c) * g.OH + oh) * g.OW + ow) * g.c + oc % g.c] = (float)acc;
                }
    return KILN_OK;
}

/* ---- compute definitions ---- */

static ex_expr *wg_pick4(tir_func *f, ex_expr *a, const int *v) {
    ex_builder *eb = &f->eb;
    ex_expr *r = ex_int(eb, v[3]);
    for (int k = 2; k >= 0; k--) r = ex_select(eb, ex_binary(eb, EX_EQ, a, ex_int(eb, k)), ex_int(eb, v[k]), r);
    return r;
}

/* s(a) as f32: -1 except at a == 1. */
static ex_expr *wg_s2(tir_func *f, ex_expr *a) {
    return cmp_sel(f, ex_binary(&f->eb, EX_EQ, a, ex_int(&f->eb, 1)), cmp_num(f, KILN_F32, 1), cmp_num(f, KILN_F32, -1));
}

/* x at (nn, icb, row, col, o), zero outside the image (the load clamped). */
static ex_expr *wg_load_x(tir_func *f, const tir_tensor *x, const wg_in_geom *g, ex_expr *nn, ex_expr *icb,
                          ex_expr *row, ex_expr *col, ex_expr *o) {
    ex_expr *idx[5] = {nn, icb, cmp_clamp(f, row, 0, g->H - 1), cmp_clamp(f, col, 0, g->W - 1), o};
    ex_expr *inside = ex_and(&f->eb, cmp_in_range(f, row, 0, g->H), cmp_in_range(f, col, 0, g->W));
    return cmp_sel(f, inside, cmp_load(f, x, idx), cmp_num(f, KILN_F32, 0));
}

static kiln_status cmp_wg_in(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out) {
    cmp_types ty;
    cmp_types_of(n, in, &ty);
    wg_in_geom g;
    kiln_status s = wg_in_shape(ctx, n, ty.p[0], &g);
    if (s) return s;
    ex_builder *eb = &f->eb;
    int64_t dims[3] = {16, g.N * g.TH * g.TW, g.ICB * g.c};
    static const char *const names[] = {"xi", "t", "ic"};
    tir_stage *st = cmp_stage(f, "wino_in", KILN_F32, 3, dims, TIR_TAG_INJECTIVE, names);
    ex_expr *ax[3];
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *a = ex_floordiv(eb, ax[0], ex_int(eb, 4)), *b = ex_floormod(eb, ax[0], ex_int(eb, 4));
    ex_expr *nn = ex_floordiv(eb, ax[1], ex_int(eb, g.TH * g.TW));
    ex_expr *r0 = ex_sub(eb, ex_mul(eb, ex_floormod(eb, ex_floordiv(eb, ax[1], ex_int(eb, g.TW)), ex_int(eb, g.TH)),
                                    ex_int(eb, 2)), ex_int(eb, g.pad[0]));
    ex_expr *c0 = ex_sub(eb, ex_mul(eb, ex_floormod(eb, ax[1], ex_int(eb, g.TW)), ex_int(eb, 2)), ex_int(eb, g.pad[1]));
    ex_expr *icb = ex_floordiv(eb, ax[2], ex_int(eb, g.c)), *o = ex_floormod(eb, ax[2], ex_int(eb, g.c));
    ex_expr *rows[2] = {ex_add(eb, r0, wg_pick4(f, a, k_i1)), ex_add(eb, r0, wg_pick4(f, a, k_i2))};
    ex_expr *cols[2] = {ex_add(eb, c0, wg_pick4(f, b, k_i1)), ex_add(eb, c0, wg_pick4(f, b, k_i2))};
    ex_expr *sum[2];
    for (int p = 0; p < 2; p++) {
        ex_expr *l = wg_load_x(f, in[0], &g, nn, icb, rows[p], cols[0], o);
        ex_expr *r = wg_load_x(f, in[0], &g, nn, icb, rows[p], cols[1], o);
        sum[p] = cmp_bin(f, EX_ADD, l, cmp_bin(f, EX_MUL, wg_s2(f, b), r));
    }
    st->body = cmp_bin(f, EX_ADD, sum[0], cmp_bin(f, EX_MUL, wg_s2(f, a), sum[1]));
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* Sign of A^T[r, r + k]: +1 where r == 0 or k == 0, else -1. */
static ex_expr *wg_out_sign(tir_func *f, ex_expr *r, int k) {
    if (k == 0) return cmp_num(f, KILN_F32, 1);
    return cmp_sel(f, ex_binary(&f->eb, EX_EQ, r, ex_int(&f->eb, 0)), cmp_num(f, KILN_F32, 1), cmp_num(f, KILN_F32, -1));
}

static kiln_status cmp_wg_out(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out) {
    cmp_types ty;
    cmp_types_of(n, in, &ty);
    const tir_tensor *bias = cmp_in(n, in, 1);
    wg_out_geom g;
    kiln_status s = wg_out_shape(ctx, n, ty.p[0], bias ? ty.p[1] : NULL, &g);
    if (s) return s;
    ex_builder *eb = &f->eb;
    int64_t dims[5] = {g.N, g.OCB, g.OH, g.OW, g.c};
    static const char *const names[] = {"n", "ocb", "oh", "ow", "ob"};
    tir_stage *st = cmp_stage(f, "wino_out", KILN_F32, 5, dims, TIR_TAG_INJECTIVE, names);
    ex_expr *ax[5];
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *two = ex_int(eb, 2);
    ex_expr *r = ex_floormod(eb, ax[2], two), *q = ex_floormod(eb, ax[3], two);
    ex_expr *t = ex_add(eb, ex_mul(eb, ex_add(eb, ex_mul(eb, ax[0], ex_int(eb, g.TH)), ex_floordiv(eb, ax[2], two)),
                                   ex_int(eb, g.TW)), ex_floordiv(eb, ax[3], two));
    ex_expr *oc = ex_add(eb, ex_mul(eb, ax[1], ex_int(eb, g.c)), ax[4]);
    ex_expr *acc = NULL;
    for (int k1 = 0; k1 < 3; k1++) {
        ex_expr *row = NULL;
        for (int k2 = 0; k2 < 3; k2++) {
            ex_expr *xi = ex_add(eb, ex_mul(eb, ex_add(eb, r, ex_int(eb, k1)), ex_int(eb, 4)), ex_add(eb, q, ex_int(eb, k2)));
            ex_expr *mi[3] = {xi, t, oc};
            ex_expr *v = cmp_bin(f, EX_MUL, wg_out_sign(f, q, k2), cmp_load(f, in[0], mi));
            row = row ? cmp_bin(f, EX_ADD, row, v) : v;
        }
        row = cmp_bin(f, EX_MUL, wg_out_sign(f, r, k1), row);
        acc = acc ? cmp_bin(f, EX_ADD, acc, row) : row;
    }
    if (bias) {
        ex_expr *bi[2] = {ax[1], ax[4]};
        acc = cmp_bin(f, EX_ADD, acc, cmp_load(f, bias, bi));
    }
    st->body = acc;
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

static const kiln_attr_schema k_in_attrs[] = {A_INTS("pads"), A_INTS("tiles"), A_END};
static const kiln_attr_schema k_out_attrs[] = {A_INTS("shape"), A_INT("block"), A_END};

#define F32 KILN_DT(KILN_F32)

const kiln_op_def kiln_ops_winograd[] = {
    {"WinogradInput", "ai.kiln", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F32, KILN_FUSE_OPAQUE, k_in_attrs, infer_wg_in,
     ref_wg_in, cmp_wg_in, 0, false, false},
    {"WinogradOutput", "ai.kiln", 1, KILN_MAX_OPSET, 1, 2, 1, 1, F32, KILN_FUSE_INJECTIVE, k_out_attrs, infer_wg_out,
     ref_wg_out, cmp_wg_out, 0, false, false},
    {NULL, NULL, 0, 0, 0, 0, 0, 0, 0, KILN_FUSE_NONE, NULL, NULL, NULL, NULL, 0, false, false},
};
