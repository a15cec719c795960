/*
** compute_gather.c — compute definitions of the ops that read at positions
** held in an index tensor: Gather, GatherElements, GatherND, and OneHot.
**
** An index counts from the end when negative, as the reference reads it.
** The reference rejects an index out of range; generated code cannot report
** one, so a constant index tensor is checked here at compile time and a
** run-time index is clamped into range (see compute.h).
*/
#include <string.h>

#include "compute.h"

static ex_expr *I(tir_func *f, int64_t v) { return ex_int(&f->eb, v); }

/* Every value of a constant index tensor must lie in [-dim, dim). */
static kiln_status check_const_indices(kiln_ctx *ctx, const gir_node *n, const tir_tensor *idx, int64_t dim) {
    if (!idx->constant) return KILN_OK;
    int64_t count = kiln_numel_dims(idx->rank, idx->dims);
    for (int64_t i = 0; i < count; i++) {
        int64_t v = kiln_load_i64(idx->dtype, idx->constant->data, i);
        if (v < -dim || v >= dim)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "index %lld is out of range for extent %lld",
                                (long long)v, (long long)dim);
    }
    return KILN_OK;
}

/* The index value v (loaded, any int type) wrapped and clamped into [0, dim). */
static ex_expr *norm_index(tir_func *f, ex_expr *v, int64_t dim) {
    ex_expr *k = cmp_to(f, v, KILN_I64);
    k = cmp_sel(f, ex_lt(&f->eb, k, I(f, 0)), ex_add(&f->eb, k, I(f, dim)), k);
    return cmp_clamp(f, k, 0, dim - 1);
}

static kiln_status gather_begin(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, kiln_tensor *ty,
                                int *axis) {
    kiln_status s = cmp_plain(ctx, n, in[0]->dtype);
    if (!s) s = cmp_infer(ctx, n, in, ty);
    if (!s && axis) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), in[0]->rank, axis);
    return s;
}

static tir_stage *gather_stage(tir_func *f, const gir_node *n, const kiln_tensor *ty, ex_expr **idx) {
    char name[64];
    tir_stage *st = cmp_stage(f, cmp_lower(n, name, sizeof name), ty->dtype, ty->rank, ty->dims,
                              TIR_TAG_INJECTIVE, NULL);
    cmp_axes(f, st, idx);
    return st;
}

static kiln_status gather_end(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_stage *st, ex_expr *body,
                              tir_tensor **out) {
    if (st) {
        st->body = kiln_numel_dims(st->out->rank, st->out->dims) ? body : cmp_num(f, st->out->dtype, 0);
        out[0] = st->out;
    }
    return cmp_done(ctx, f, n);
}

/* ---- Gather: out[pre, j.., post] = x[pre, idx[j..], post] ---- */

CMP_FN(gather) {
    tir_tensor *x = in[0], *ix = in[1];
    kiln_tensor ty;
    int axis;
    kiln_status s = gather_begin(ctx, n, in, &ty, &axis);
    if (!s) s = check_const_indices(ctx, n, ix, x->dims[axis]);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    tir_stage *st = gather_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    int q = ix->rank;
    for (int d = 0; d < x->rank; d++)
        if (d < axis) src[d] = idx[d];
        else if (d > axis) src[d] = idx[d - 1 + q];
    src[axis] = x->dims[axis] ? norm_index(f, cmp_load(f, ix, idx + axis), x->dims[axis]) : I(f, 0);
    return gather_end(ctx, f, n, st, cmp_load(f, x, src), out);
}

/* ---- GatherElements: the axis coordinate comes from the index ---- */

CMP_FN(gather_elements) {
    tir_tensor *x = in[0], *ix = in[1];
    kiln_tensor ty;
    int axis;
    kiln_status s = gather_begin(ctx, n, in, &ty, &axis);
    if (!s) s = check_const_indices(ctx, n, ix, x->dims[axis]);
    for (int d = 0; !s && d < x->rank; d++)
        if (d != axis && ix->dims[d] > x->dims[d])
            s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "indices extent exceeds data on axis %d", d);
    if (s) return s;
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    tir_stage *st = gather_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    memcpy(src, idx, sizeof(ex_expr *) * (size_t)x->rank);
    src[axis] = x->dims[axis] ? norm_index(f, cmp_load(f, ix, idx), x->dims[axis]) : I(f, 0);
    return gather_end(ctx, f, n, st, cmp_load(f, x, src), out);
}

/* ---- GatherND: index tuples address the leading data dims after the batch ---- */

CMP_FN(gather_nd) {
    tir_tensor *x = in[0], *ix = in[1];
    kiln_tensor ty;
    kiln_status s = gather_begin(ctx, n, in, &ty, NULL);
    if (s) return s;
    int b = (int)gir_attr_int(n, "batch_dims", 0), q = ix->rank, last = (int)ix->dims[q - 1];
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK], *ti[KILN_MAX_RANK];
    tir_stage *st = gather_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    for (int d = 0; d < b; d++) src[d] = idx[d];
    memcpy(ti, idx, sizeof(ex_expr *) * (size_t)(q - 1));
    for (int k = 0; k < last; k++) {
        int64_t dim = x->dims[b + k];
        if (ix->constant) {
            /* check the k-th coordinate of every tuple against its dim */
            int64_t count = kiln_numel_dims(q, ix->dims);
            for (int64_t i = k; i < count; i += last) {
                int64_t v = kiln_load_i64(ix->dtype, ix->constant->data, i);
                if (v < -dim || v >= dim)
                    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "index %lld is out of range for extent %lld",
                                        (long long)v, (long long)dim);
            }
        }
        ti[q - 1] = I(f, k);
        src[b + k] = dim ? norm_index(f, cmp_load(f, ix, ti), dim) : I(f, 0);
    }
    for (int d = b + last; d < x->rank; d++) src[d] = idx[q - 1 + d - b - last];
    return gather_end(ctx, f, n, st, cmp_load(f, x, src), out);
}

/* ---- OneHot: `on` where the (wrapped) index equals the position on axis ---- */

CMP_FN(one_hot) {
    tir_tensor *ix = in[0], *vals = in[2];
    kiln_tensor ty;
    kiln_status s = cmp_plain(ctx, n, vals->dtype);
    if (!s) s = cmp_plain(ctx, n, ix->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    int axis = (int)gir_attr_int(n, "axis", -1);
    if (axis < 0) axis += ix->rank + 1;
    int64_t depth = ty.dims[axis];
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    tir_stage *st = gather_stage(f, n, &ty, idx);
    if (!st) return cmp_done(ctx, f, n);
    for (int d = 0, k = 0; d < ty.rank; d++)
        if (d != axis) src[k++] = idx[d];
    ex_expr *v = cmp_load(f, ix, src), *valid, *k;
    if (kiln_dtype_is_float(ix->dtype)) {
        ex_expr *vd = cmp_to(f, v, KILN_F64);
        valid = ex_and(&f->eb, cmp_bin(f, EX_GT, vd, cmp_f(f, KILN_F64, -(double)depth - 1)),
                       cmp_bin(f, EX_LT, vd, cmp_f(f, KILN_F64, (double)depth)));
        k = cmp_to(f, cmp_sel(f, valid, vd, cmp_f(f, KILN_F64, 0)), KILN_I64);
    } else {
        k = cmp_to(f, v, KILN_I64);
        valid = cmp_in_range(f, k, -depth, depth);
    }
    k = cmp_sel(f, ex_lt(&f->eb, k, I(f, 0)), ex_add(&f->eb, k, I(f, depth)), k);
    ex_expr *hit = ex_and(&f->eb, valid, cmp_bin(f, EX_EQ, k, idx[axis]));
    ex_expr *vi[KILN_MAX_RANK];
    cmp_unflatten(f, I(f, 1), vals->rank, vals->dims, vi);
    ex_expr *on = cmp_load(f, vals, vi), *off = cmp_load_first(f, vals);
    return gather_end(ctx, f, n, st, cmp_sel(f, hit, on, off), out);
}
