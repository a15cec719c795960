/*
** compute_tensor.c — compute definitions of the data-movement ops:
** Transpose, Concat, Split, Slice, Pad, Tile, Expand, DepthToSpace,
** SpaceToDepth, Trilu, CenterCropPad, ReverseSequence. Each output element
** reads one input element at an index computed from its own; every such
** index is in bounds by construction (pads and crops clamp and select).
** The values these ops need at compile time (Slice's starts, Pad's pads)
** are read through the ops' own helpers, from constant inputs.
*/
#include <string.h>

#include "compute.h"
#include "shape_ops.h"

/* A stage of the inferred output type with output 0's axes in idx. */
static tir_stage *mover_stage(tir_func *f, const gir_node *n, const kiln_tensor *ty, ex_expr **idx) {
    char name[64];
    tir_stage *st = cmp_stage(f, cmp_lower(n, name, sizeof name), ty->dtype, ty->rank, ty->dims,
                              TIR_TAG_INJECTIVE, NULL);
    cmp_axes(f, st, idx);
    return st;
}

static kiln_status mover_begin(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, kiln_tensor *ty) {
    kiln_status s = cmp_plain(ctx, n, in[0]->dtype);
    return s ? s : cmp_infer(ctx, n, in, ty);
}

static kiln_status mover_end(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_stage *st, ex_expr *body,
                             tir_tensor **out) {
    if (st) {
        st->body = body;
        out[0] = st->out;
    }
    return cmp_done(ctx, f, n);
}

static ex_expr *I(tir_func *f, int64_t v) { return ex_int(&f->eb, v); }

/* ---- Transpose ---- */

CMP_FN(transpose) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    const int64_t *p;
    int k = gir_attr_ints(n, "perm", &p);
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    for (int d = 0; d < x->rank; d++) src[k < 0 ? x->rank - 1 - d : p[d]] = idx[d];
    return mover_end(ctx, f, n, st, cmp_load(f, x, src), out);
}

/* ---- Concat: a chain of selects over the pieces, each load clamped ---- */

CMP_FN(concat) {
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    int axis;
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 1), ty.rank, &axis);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    if (n->n_inputs > SHP_MAX_LIST)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "more than %d inputs", SHP_MAX_LIST);
    int64_t start[SHP_MAX_LIST], off = 0;
    int count = n->n_inputs;
    for (int i = 0; i < count; off += in[i]->dims[axis], i++) start[i] = off;
    ex_expr *body = NULL;
    for (int i = count - 1; i >= 0; i--) {
        const tir_tensor *t = in[i];
        if (t->dims[axis] == 0) continue;
        memcpy(src, idx, sizeof(ex_expr *) * (size_t)ty.rank);
        src[axis] = cmp_clamp(f, ex_sub(&f->eb, idx[axis], I(f, start[i])), 0, t->dims[axis] - 1);
        ex_expr *v = cmp_load(f, t, src);
        body = body ? cmp_sel(f, ex_lt(&f->eb, idx[axis], I(f, start[i] + t->dims[axis])), v, body) : v;
    }
    if (!body) body = cmp_num(f, ty.dtype, 0); /* no elements */
    return mover_end(ctx, f, n, st, body, out);
}

/* ---- Split: each output reads its piece ---- */

CMP_FN(split) {
    tir_tensor *x = in[0];
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    kiln_tensor *ty = kiln_calloc((size_t)n->n_outputs, sizeof *ty);
    if (!ty) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    int axis = 0;
    if (!s) s = cmp_infer(ctx, n, in, ty);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), x->rank, &axis);
    int64_t start = 0;
    for (int o = 0; !s && o < n->n_outputs; o++) {
        ex_expr *idx[KILN_MAX_RANK];
        tir_stage *st = mover_stage(f, n, &ty[o], idx);
        if (st) {
            idx[axis] = ex_add(&f->eb, idx[axis], I(f, start));
            st->body = cmp_load(f, x, idx);
            out[o] = st->out;
        }
        start += ty[o].dims[axis];
    }
    kiln_free(ty);
    return s ? s : cmp_done(ctx, f, n);
}

/* ---- Slice: start + i * step per axis, clamped the ONNX way ---- */

/* The first index read on an axis of extent d (the length is inferred). */
static int64_t slice_start(int64_t d, int64_t s, int64_t k) {
    if (s < 0) s += d;
    if (k > 0) return s < 0 ? 0 : s > d ? d : s;
    return s < 0 ? 0 : s > d - 1 ? d - 1 : s;
}

CMP_FN(slice) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    cmp_types tys;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    cmp_types_of(n, in, &tys);
    static const char *const names[4] = {"starts", "ends", "axes", "steps"};
    int64_t v[4][KILN_MAX_RANK];
    int cnt[4], axes[KILN_MAX_RANK];
    for (int i = 0; i < 4 && !s; i++) {
        s = shp_ints_arg(ctx, n, tys.p, names[i], i + 1, v[i], KILN_MAX_RANK, &cnt[i]);
        s = cmp_dynamic(ctx, n, s, names[i]);
    }
    if (s) return s;
    if (cnt[2] < 0)
        for (int i = 0; i < cnt[0]; i++) v[2][i] = i;
    if ((s = shp_norm_axes(ctx, n, v[2], cnt[0], x->rank, axes))) return s;
    int64_t start[KILN_MAX_RANK] = {0}, step[KILN_MAX_RANK];
    for (int d = 0; d < x->rank; d++) step[d] = 1;
    for (int i = 0; i < cnt[0]; i++) {
        int64_t k = cnt[3] < 0 ? 1 : v[3][i];
        if (k == INT64_MIN) k = -INT64_MAX;
        step[axes[i]] = k;
        start[axes[i]] = slice_start(x->dims[axes[i]], v[0][i], k);
    }
    ex_expr *idx[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    for (int d = 0; d < x->rank; d++) {
        if (ty.dims[d] == 1) idx[d] = I(f, start[d]);
        else if (start[d] || step[d] != 1)
            idx[d] = ex_add(&f->eb, I(f, start[d]), ex_mul(&f->eb, idx[d], I(f, step[d])));
    }
    return mover_end(ctx, f, n, st, cmp_load(f, x, idx), out);
}

/* ---- Pad: constant, reflect, edge, wrap; negative pads crop ---- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

static kiln_status pad_mode(kiln_ctx *ctx, const gir_node *n, int *mode) {
    static const char *const names[] = {"constant", "reflect", "edge", "wrap"};
    const char *m = gir_attr_string(n, "mode", "constant");
    for (int i = 0; i < 4; i++)
        if (!strcmp(m, names[i]) && (i != PAD_WRAP || n->opset >= 19)) {
            *mode = i;
            return KILN_OK;
        }
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "mode '%s' is not supported at opset %d", m, n->opset);
}

/* Per-dim amounts before each axis (negative: crop). */
static kiln_status pad_before(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, int64_t *before) {
    cmp_types tys;
    cmp_types_of(n, in, &tys);
    int rank = in[0]->rank, np, na, axes[KILN_MAX_RANK];
    int64_t pads[2 * KILN_MAX_RANK], raw[KILN_MAX_RANK];
    const char *attr = gir_attr_find(n, "paddings") ? "paddings" : "pads";
    kiln_status s = cmp_dynamic(ctx, n, shp_ints_arg(ctx, n, tys.p, attr, 1, pads, 2 * KILN_MAX_RANK, &np), "pads");
    if (!s) s = cmp_dynamic(ctx, n, shp_ints_arg(ctx, n, tys.p, "axes", 3, raw, KILN_MAX_RANK, &na), "axes");
    if (s) return s;
    if (na < 0) {
        na = rank;
        for (int i = 0; i < rank; i++) raw[i] = i;
    }
    if ((s = shp_norm_axes(ctx, n, raw, na, rank, axes))) return s;
    for (int d = 0; d < rank; d++) before[d] = 0;
    for (int i = 0; i < na && i < np; i++) before[axes[i]] = pads[i];
    return KILN_OK;
}

/* The index into the kept data [0, len) for t = out - before; NULL for
** constant mode (the caller selects the fill value outside). */
static ex_expr *pad_index(tir_func *f, int mode, ex_expr *t, int64_t len) {
    ex_builder *b = &f->eb;
    switch (mode) {
    case PAD_EDGE: return cmp_clamp(f, t, 0, len - 1);
    case PAD_WRAP: return ex_floormod(b, t, I(f, len));
    case PAD_REFLECT: {
        if (len == 1) return I(f, 0);
        int64_t period = 2 * (len - 1);
        ex_expr *r = ex_floormod(b, t, I(f, period));
        return cmp_sel(f, ex_lt(b, r, I(f, len)), r, ex_sub(b, I(f, period), r));
    }
    default: return cmp_clamp(f, t, 0, len - 1);
    }
}

/* The fill value of constant mode in the output's type. */
static ex_expr *pad_value(tir_func *f, const gir_node *n, tir_tensor *const *in, kiln_dtype dt) {
    tir_tensor *v = cmp_in(n, in, 2);
    if (v && kiln_numel_dims(v->rank, v->dims) == 1) return cmp_load_first(f, v);
    double val = gir_attr_float(n, "value", 0.0);
    return kiln_dtype_is_float(dt) ? cmp_f(f, dt, val) : cmp_to(f, cmp_f(f, KILN_F64, val), dt);
}

CMP_FN(pad) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    int mode = 0;
    int64_t before[KILN_MAX_RANK];
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (!s) s = pad_mode(ctx, n, &mode);
    if (!s) s = pad_before(ctx, n, in, before);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK], *inside = NULL;
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    bool empty = false;
    for (int d = 0; d < x->rank; d++) {
        /* lo: cropped at the start; add: padded at the start; kept: what
        ** stays of the input (the output extent says how the end went) */
        int64_t lo = before[d] < 0 ? -before[d] : 0, add = before[d] > 0 ? before[d] : 0;
        int64_t kept = ty.dims[d] - add < x->dims[d] - lo ? ty.dims[d] - add : x->dims[d] - lo;
        if (kept <= 0) {
            empty = true;
            src[d] = I(f, 0);
            continue;
        }
        ex_expr *t = add ? ex_sub(&f->eb, idx[d], I(f, add)) : idx[d];
        bool grows = add || ty.dims[d] > add + kept;
        ex_expr *k = mode == PAD_CONSTANT && !grows ? t : pad_index(f, mode, t, kept);
        src[d] = lo ? ex_add(&f->eb, I(f, lo), k) : k;
        if (mode == PAD_CONSTANT && grows) {
            ex_expr *in_d = cmp_in_range(f, t, 0, kept);
            inside = inside ? ex_and(&f->eb, inside, in_d) : in_d;
        }
    }
    if (empty) return mover_end(ctx, f, n, st, pad_value(f, n, in, ty.dtype), out);
    ex_expr *body = cmp_load(f, x, src);
    if (inside) body = cmp_sel(f, inside, body, pad_value(f, n, in, ty.dtype));
    return mover_end(ctx, f, n, st, body, out);
}

/* ---- Tile and Expand ---- */

CMP_FN(tile) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    for (int d = 0; d < x->rank; d++) {
        if (x->dims[d] == 1 || x->dims[d] == 0) idx[d] = I(f, 0);
        else if (ty.dims[d] != x->dims[d]) idx[d] = ex_floormod(&f->eb, idx[d], I(f, x->dims[d]));
    }
    if (kiln_numel(&ty) == 0) return mover_end(ctx, f, n, st, cmp_num(f, ty.dtype, 0), out);
    return mover_end(ctx, f, n, st, cmp_load(f, x, idx), out);
}

CMP_FN(expand) {
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    return mover_end(ctx, f, n, st, cmp_load_bcast(f, in[0], ty.rank, idx), out);
}

/* ---- DepthToSpace and SpaceToDepth ---- */

CMP_FN(depth_to_space) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    int64_t b = gir_attr_int(n, "blocksize", 1), C = ty.dims[1];
    bool crd = !strcmp(gir_attr_string(n, "mode", "DCR"), "CRD");
    ex_builder *eb = &f->eb;
    ex_expr *idx[KILN_MAX_RANK], *src[4];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *bh = ex_floormod(eb, idx[2], I(f, b)), *bw = ex_floormod(eb, idx[3], I(f, b));
    ex_expr *blk = ex_add(eb, ex_mul(eb, bh, I(f, b)), bw);
    src[0] = idx[0];
    src[1] = crd ? ex_add(eb, ex_mul(eb, idx[1], I(f, b * b)), blk) : ex_add(eb, ex_mul(eb, blk, I(f, C)), idx[1]);
    src[2] = ex_floordiv(eb, idx[2], I(f, b));
    src[3] = ex_floordiv(eb, idx[3], I(f, b));
    return mover_end(ctx, f, n, st, cmp_load(f, x, src), out);
}

CMP_FN(space_to_depth) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    int64_t b = gir_attr_int(n, "blocksize", 1), C = x->dims[1];
    ex_builder *eb = &f->eb;
    ex_expr *idx[KILN_MAX_RANK], *src[4];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *blk = ex_floordiv(eb, idx[1], I(f, C));
    src[0] = idx[0];
    src[1] = ex_floormod(eb, idx[1], I(f, C));
    src[2] = ex_add(eb, ex_mul(eb, idx[2], I(f, b)), ex_floordiv(eb, blk, I(f, b)));
    src[3] = ex_add(eb, ex_mul(eb, idx[3], I(f, b)), ex_floormod(eb, blk, I(f, b)));
    return mover_end(ctx, f, n, st, cmp_load(f, x, src), out);
}

/* ---- Trilu: keep the elements on one side of diagonal k ---- */

CMP_FN(trilu) {
    tir_tensor *x = in[0];
    kiln_tensor ty, kty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    int64_t k = 0;
    tir_tensor *kt = cmp_in(n, in, 1);
    if (!s && kt) {
        cmp_type_of(kt, &kty);
        s = cmp_dynamic(ctx, n, shp_read_scalar_int(ctx, n, &kty, "k", &k), "k");
    }
    if (s) return s;
    bool upper = gir_attr_int(n, "upper", 1) != 0;
    ex_expr *idx[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *diff = ex_sub(&f->eb, idx[x->rank - 1], idx[x->rank - 2]);
    ex_expr *keep = ex_binary(&f->eb, upper ? EX_GE : EX_LE, diff, I(f, k));
    return mover_end(ctx, f, n, st, cmp_sel(f, keep, cmp_load(f, x, idx), cmp_num(f, x->dtype, 0)), out);
}

/* ---- CenterCropPad: shifted reads, zero outside ---- */

CMP_FN(center_crop_pad) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK], *inside = NULL;
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    bool empty = false;
    for (int d = 0; d < x->rank; d++) {
        int64_t xd = x->dims[d], od = ty.dims[d];
        int64_t shift = xd >= od ? (xd - od) / 2 : -((od - xd) / 2);
        if (xd == 0) {
            empty = true;
            idx[d] = I(f, 0);
            continue;
        }
        ex_expr *t = shift ? ex_add(&f->eb, idx[d], I(f, shift)) : idx[d];
        if (shift < 0 || od + shift > xd) {
            ex_expr *c = cmp_in_range(f, t, 0, xd);
            inside = inside ? ex_and(&f->eb, inside, c) : c;
            t = cmp_clamp(f, t, 0, xd - 1);
        }
        idx[d] = t;
    }
    ex_expr *zero = cmp_num(f, x->dtype, 0);
    if (empty) return mover_end(ctx, f, n, st, zero, out);
    ex_expr *body = cmp_load(f, x, idx);
    return mover_end(ctx, f, n, st, inside ? cmp_sel(f, inside, body, zero) : body, out);
}

/* ---- ReverseSequence: the first len[b] steps reversed; len read at run time ---- */

CMP_FN(reverse_sequence) {
    tir_tensor *x = in[0], *lens = in[1];
    kiln_tensor ty;
    kiln_status s = mover_begin(ctx, n, in, &ty);
    if (s) return s;
    int bax = (int)gir_attr_int(n, "batch_axis", 1), tax = (int)gir_attr_int(n, "time_axis", 0);
    ex_builder *eb = &f->eb;
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    tir_stage *st = mover_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    int64_t T = x->dims[tax];
    ex_expr *len = cmp_clamp(f, cmp_to(f, cmp_load(f, lens, &idx[bax]), KILN_I64), 0, T);
    ex_expr *rev = ex_sub(eb, ex_sub(eb, len, I(f, 1)), idx[tax]);
    memcpy(src, idx, sizeof(ex_expr *) * (size_t)x->rank);
    src[tax] = cmp_sel(f, ex_lt(eb, idx[tax], len), cmp_clamp(f, rev, 0, T - 1), idx[tax]);
    return mover_end(ctx, f, n, st, cmp_load(f, x, src), out);
}
