/*
** compute_quant.c — compute definitions of QuantizeLinear and
** DequantizeLinear for the 8-, 16- and 32-bit integer types: per tensor,
** per axis and blocked scales. The float8, fp4 and sub-byte integer forms
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
