/*
** compute_misc.c — compute definitions of the misc elementwise family:
** Cast, CastLike, Binarizer, Clip, Where, Identity and inference-mode
** Dropout. Strings and the low-precision types have no compute definition
** (the loop IR holds neither).
*/
#include <string.h>

#include "compute.h"

static bool plain_type(kiln_dtype dt) {
    return dt != KILN_STRING && (KILN_DT(dt) & (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL)));
}

static kiln_status cast_to(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *x, kiln_dtype to,
                           tir_tensor **out) {
    if (!plain_type(x->dtype) || !plain_type(to))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "a cast from %s to %s has no compute definition",
                            kiln_dtype_name(x->dtype), kiln_dtype_name(to));
    out[0] = cmp_copy(f, "cast", x, to, TIR_TAG_ELEMWISE);
    return cmp_done(ctx, f, n);
}

CMP_FN(cast) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    return s ? s : cast_to(ctx, f, n, in[0], ty.dtype, out);
}

CMP_FN(castlike) { return cast_to(ctx, f, n, in[0], in[1]->dtype, out); }

CMP_FN(identity) {
    if (!plain_type(in[0]->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(in[0]->dtype));
    out[0] = cmp_copy(f, "identity", in[0], in[0]->dtype, TIR_TAG_ELEMWISE);
    return cmp_done(ctx, f, n);
}

/* ---- Binarizer: 1 above the threshold (compared in double), else 0 ---- */

CMP_FN(binarizer) {
    tir_tensor *x = in[0];
    double th = gir_attr_float(n, "threshold", 0.0);
    tir_stage *s = cmp_stage(f, "binarizer", x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, s, idx);
    if (s) {
        ex_expr *v = cmp_to(f, cmp_load(f, x, idx), KILN_F64);
        ex_expr *r = cmp_sel(f, cmp_bin(f, EX_GT, v, cmp_f(f, KILN_F64, th)), cmp_f(f, KILN_F64, 1),
                             cmp_f(f, KILN_F64, 0));
        s->body = cmp_to(f, r, x->dtype);
        out[0] = s->out;
    }
    return cmp_done(ctx, f, n);
}

/* ---- Clip: below first, then above (min > max gives max); NaN stays ---- */

/* The bound as an expression in calc type c, or NULL when absent. */
static kiln_status clip_bound(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, int slot,
                              const char *attr, kiln_dtype c, ex_expr **out) {
    *out = NULL;
    if (n->opset < 11) {
        const gir_attr *a = gir_attr_find(n, attr);
        if (a) *out = cmp_num(f, c, a->f);
        return KILN_OK;
    }
    tir_tensor *t = cmp_in(n, in, slot);
    if (!t) return KILN_OK;
    if (t->dtype != in[0]->dtype || kiln_numel_dims(t->rank, t->dims) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must be one value of the input's type", attr);
    *out = cmp_to(f, cmp_load_first(f, t), c);
    return KILN_OK;
}

CMP_FN(clip) {
    tir_tensor *x = in[0];
    kiln_dtype dt = x->dtype, c = cmp_calc(dt);
    if (!(KILN_DT(dt) & KILN_DT_NUMERIC))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported", kiln_dtype_name(dt));
    if (n->opset < 12 && !kiln_dtype_is_float(dt))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s needs opset 12 or later",
                            kiln_dtype_name(dt));
    ex_expr *lo, *hi;
    kiln_status s = clip_bound(ctx, f, n, in, 1, "min", c, &lo);
    if (!s) s = clip_bound(ctx, f, n, in, 2, "max", c, &hi);
    if (s) return s;
    tir_stage *st = cmp_stage(f, "clip", dt, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *v = cmp_to(f, cmp_load(f, x, idx), c);
    if (lo) v = cmp_sel(f, cmp_bin(f, EX_LT, v, lo), lo, v);
    if (hi) v = cmp_sel(f, cmp_bin(f, EX_GT, v, hi), hi, v);
    st->body = cmp_to(f, v, dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- Where ---- */

CMP_FN(where) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    if (!plain_type(ty.dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(ty.dtype));
    tir_stage *st = cmp_stage(f, "where", ty.dtype, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *c = cmp_load_bcast(f, in[0], ty.rank, idx);
    st->body = cmp_sel(f, c, cmp_load_bcast(f, in[1], ty.rank, idx), cmp_load_bcast(f, in[2], ty.rank, idx));
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- Dropout: inference only, as the reference ---- */

/* Whether the node trains, from constant attributes and inputs. */
static kiln_status dropout_training(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, bool *train) {
    *train = false;
    if (n->opset < 7) {
        *train = gir_attr_int(n, "is_test", 0) == 0;
        return KILN_OK;
    }
    tir_tensor *t = n->opset >= 12 ? cmp_in(n, in, 2) : NULL;
    if (!t) return KILN_OK;
    kiln_status s = cmp_need_const(ctx, n, t, "training_mode");
    if (s) return s;
    if (kiln_numel_dims(t->rank, t->dims) != 1 || t->dtype == KILN_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "training_mode must hold one value");
    *train = kiln_load_i64(t->dtype, t->constant->data, 0) != 0;
    return KILN_OK;
}

/* A training node computes the identity only with ratio 0. */
static kiln_status dropout_ratio_zero(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in) {
    const gir_attr *a = gir_attr_find(n, "ratio");
    double ratio = a ? a->f : 0.5;
    tir_tensor *t = a ? NULL : cmp_in(n, in, 1);
    if (t) {
        kiln_status s = cmp_need_const(ctx, n, t, "ratio");
        if (s) return s;
        if (kiln_numel_dims(t->rank, t->dims) != 1 || t->dtype == KILN_STRING)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "ratio must hold one value");
        ratio = kiln_load_f64(t->dtype, t->constant->data, 0);
    }
    if (ratio != 0.0)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "training-mode dropout (ratio %g) is not supported",
                            ratio);
    return KILN_OK;
}

CMP_FN(dropout) {
    tir_tensor *x = in[0];
    bool train;
    kiln_status s = dropout_training(ctx, n, in, &train);
    if (!s && train) s = dropout_ratio_zero(ctx, n, in);
    if (s) return s;
    if (!plain_type(x->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(x->dtype));
    out[0] = cmp_copy(f, "dropout", x, x->dtype, TIR_TAG_ELEMWISE);
    if (cmp_wants(n, 1)) {
        kiln_dtype mt = n->opset >= 10 ? KILN_BOOL : x->dtype;
        tir_stage *m = cmp_stage(f, "dropout_mask", mt, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
        if (m) m->body = cmp_num(f, mt, 1);
        out[1] = m ? m->out : NULL;
    }
    return cmp_done(ctx, f, n);
}
