/*
** compute_quant.c — compute definitions of QuantizeLinear and
** DequantizeLinear for the 8-, 16- and 32-bit integer types (per tensor,
** per axis and blocked scales), and DynamicQuantizeLinear. The float8, fp4 and sub-byte integer forms
** have no definition (the loop IR has no such types).
**
** The arithmetic mirrors the reference's numpy semantics: the division
** runs in the type numpy would pick (or `precision`), the quotient rounds
** half to even, the zero point is added and the result saturates;
** dequantization multiplies in f32 (f64 with an f64 scale).
*/
#include <string.h>

#include "compute.h"

#define Q_PLAIN_INTS \
    (KILN_DT(KILN_I8) | KILN_DT(KILN_U8) | KILN_DT(KILN_I16) | KILN_DT(KILN_U16) | KILN_DT(KILN_I32))

/* The scale's (and zero point's) index for element idx of x; false for a
** per-tensor scale (then both are read at their first element). */
static bool q_param_index(tir_func *f, const gir_node *n, const tir_tensor *x, const tir_tensor *sc,
                          ex_expr *const *idx, ex_expr **si) {
    int64_t block = gir_attr_int(n, "block_size", 0);
    int64_t count = kiln_numel_dims(sc->rank, sc->dims);
    if (count == 1 && sc->rank <= 1 && block == 0) return false;
    int64_t axis = gir_attr_int(n, "axis", 1);
    if (axis < 0) axis += x->rank;
    if (block == 0) {
        si[0] = idx[axis];
        return true;
    }
    for (int d = 0; d < x->rank; d++)
        si[d] = d == axis ? ex_floordiv(&f->eb, idx[d], ex_int(&f->eb, block)) : idx[d];
    return true;
}

static ex_expr *q_param(tir_func *f, const tir_tensor *t, bool indexed, ex_expr *const *si) {
    return indexed ? cmp_load(f, t, si) : cmp_load_first(f, t);
}

/* The type numpy divides in (see nn_quant.c). */
static kiln_dtype q_div_type(const gir_node *n, kiln_dtype x, kiln_dtype s) {
    int64_t p = gir_attr_int(n, "precision", 0);
    if (p && kiln_dtype_valid((int)p) && kiln_dtype_is_float((kiln_dtype)p)) return (kiln_dtype)p;
    if (x == KILN_F64 || s == KILN_F64 || kiln_dtype_is_int(x)) return KILN_F64;
    return x == s ? x : KILN_F32;
}

/* Rounds a calc-type value to type t's precision and back (f16/bf16 only). */
static ex_expr *round_through(tir_func *f, ex_expr *v, kiln_dtype t) {
    if (t != KILN_F16 && t != KILN_BF16) return v;
    return cmp_to(f, cmp_to(f, v, t), v->dtype);
}

CMP_FN(quantize) {
    tir_tensor *x = in[0], *sc = in[1], *zp = cmp_in(n, in, 2);
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s && !(KILN_DT(ty.dtype) & Q_PLAIN_INTS))
        s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "quantizing to %s has no compute definition",
                         kiln_dtype_name(ty.dtype));
    if (!s) s = cmp_plain(ctx, n, x->dtype);
    if (s) return s;
    kiln_dtype dt = q_div_type(n, x->dtype, sc->dtype), c = cmp_calc(dt);
    tir_stage *st = cmp_stage(f, "quantize_linear", ty.dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *si[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    bool ix = q_param_index(f, n, x, sc, idx, si);
    ex_expr *xv = round_through(f, cmp_to(f, cmp_load(f, x, idx), c), dt);
    ex_expr *sv = round_through(f, cmp_to(f, q_param(f, sc, ix, si), c), dt);
    ex_expr *v = round_through(f, cmp_bin(f, EX_DIV, xv, sv), dt);
    v = cmp_un(f, EX_ROUND_EVEN, cmp_to(f, v, KILN_F64));
    if (zp) v = cmp_bin(f, EX_ADD, v, cmp_to(f, q_param(f, zp, ix, si), KILN_F64));
    st->body = cmp_round_to_int(f, v, ty.dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(dequantize) {
    tir_tensor *x = in[0], *sc = in[1], *zp = cmp_in(n, in, 2);
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s && !(KILN_DT(x->dtype) & Q_PLAIN_INTS))
        s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "dequantizing %s has no compute definition",
                         kiln_dtype_name(x->dtype));
    if (s) return s;
    tir_stage *st = cmp_stage(f, "dequantize_linear", ty.dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *si[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    bool ix = q_param_index(f, n, x, sc, idx, si);
    ex_expr *d = cmp_to(f, cmp_load(f, x, idx), KILN_F64);
    if (zp) d = cmp_bin(f, EX_SUB, d, cmp_to(f, q_param(f, zp, ix, si), KILN_F64));
    ex_expr *v = cmp_bin(f, EX_MUL, d, cmp_to(f, q_param(f, sc, ix, si), KILN_F64));
    if (sc->dtype != KILN_F64) v = cmp_to(f, v, KILN_F32);
    st->body = cmp_to(f, v, ty.dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- DynamicQuantizeLinear: uint8 with a scale and zero point from x's
** range, all in f32 as the reference computes it; the range includes 0 and
** skips NaN ---- */

/* A rank-0 reduction of every element of x (as f32, NaN read as 0) from 0. */
static tir_stage *dq_extreme(tir_func *f, const tir_tensor *x, const char *name, ex_combiner c) {
    tir_stage *st = cmp_stage(f, name, KILN_F32, 0, NULL, TIR_TAG_REDUCE, NULL);
    ex_expr *xi[KILN_MAX_RANK];
    static const char *const names[KILN_MAX_RANK] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
    if (!st) return NULL;
    for (int d = 0; d < x->rank; d++) xi[d] = ex_varref(&f->eb, cmp_raxis(f, st, names[d], x->dims[d]));
    ex_expr *v = cmp_to(f, cmp_load(f, x, xi), KILN_F32), *zero = cmp_f(f, KILN_F32, 0);
    v = cmp_sel(f, cmp_un(f, EX_ISNAN, v), zero, v);
    if (x->rank == 0) {
        st->body = c == EX_RMAX ? cmp_sel(f, cmp_bin(f, EX_GT, v, zero), v, zero)
                                : cmp_sel(f, cmp_bin(f, EX_LT, v, zero), v, zero);
        st->tag = TIR_TAG_ELEMWISE;
        return st;
    }
    st->body = ex_reduce(&f->eb, c, v, (const ex_var *const *)st->raxes, st->n_raxes, zero);
    return st;
}

static ex_expr *F32(tir_func *f, double v) { return cmp_f(f, KILN_F32, v); }

/* v clamped into [0, 255] with NaN as 0, then rounded half to even. */
static ex_expr *dq_u8_range(tir_func *f, ex_expr *v) {
    ex_expr *c = cmp_sel(f, cmp_bin(f, EX_LT, v, F32(f, 0)), F32(f, 0), v);
    c = cmp_sel(f, cmp_bin(f, EX_GT, c, F32(f, 255)), F32(f, 255), c);
    c = cmp_sel(f, cmp_un(f, EX_ISNAN, v), F32(f, 0), c);
    return cmp_un(f, EX_ROUND_EVEN, c);
}

CMP_FN(dynamic_quantize) {
    tir_tensor *x = in[0];
    if (x->dtype != KILN_F32)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(x->dtype));
    tir_stage *mx = dq_extreme(f, x, "range_max", EX_RMAX), *mn = dq_extreme(f, x, "range_min", EX_RMIN);
    tir_stage *sc = cmp_stage(f, "y_scale", KILN_F32, 0, NULL, TIR_TAG_ELEMWISE, NULL);
    tir_stage *zf = cmp_stage(f, "zero_point_f32", KILN_F32, 0, NULL, TIR_TAG_ELEMWISE, NULL);
    if (!mx || !mn || !sc || !zf) return cmp_done(ctx, f, n);
    ex_expr *hi = cmp_load(f, mx->out, NULL), *lo = cmp_load(f, mn->out, NULL);
    ex_expr *span = cmp_sel(f, cmp_bin(f, EX_EQ, hi, lo), F32(f, 1), cmp_bin(f, EX_SUB, hi, lo));
    sc->body = cmp_bin(f, EX_DIV, span, F32(f, 255));
    ex_expr *scale = cmp_load(f, sc->out, NULL);
    zf->body = dq_u8_range(f, cmp_bin(f, EX_SUB, F32(f, 0), cmp_bin(f, EX_DIV, cmp_load(f, mn->out, NULL), scale)));
    tir_stage *y = cmp_stage(f, "dynamic_quantize_linear", KILN_U8, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, y, idx);
    if (!y) return cmp_done(ctx, f, n);
    ex_expr *q = cmp_bin(f, EX_DIV, cmp_load(f, x, idx), cmp_load(f, sc->out, NULL));
    q = cmp_bin(f, EX_ADD, cmp_un(f, EX_ROUND_EVEN, q), cmp_load(f, zf->out, NULL));
    y->body = cmp_to(f, dq_u8_range(f, q), KILN_U8);
    out[0] = y->out;
    if (cmp_wants(n, 1)) out[1] = cmp_copy(f, "scale", sc->out, KILN_F32, TIR_TAG_ELEMWISE);
    if (cmp_wants(n, 2)) out[2] = cmp_copy(f, "zero_point", zf->out, KILN_U8, TIR_TAG_ELEMWISE);
    return cmp_done(ctx, f, n);
}
