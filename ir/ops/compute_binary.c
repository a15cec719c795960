/*
** compute_binary.c — compute definitions of the binary op family:
** arithmetic, comparisons, logical and bitwise ops, BitShift, PRelu, SwiGLU
** and the variadic Max/Min/Sum/Mean. Operands broadcast like numpy; before
** opset 7 B follows the legacy broadcast/axis attributes.
**
** Integer division and remainder are guarded as compute.h says: a zero
** divisor acts as 1, and signed narrow types divide in i64 so that
** INT_MIN / -1 wraps like the reference instead of trapping.
*/
#include <math.h>
#include <string.h>

#include "compute.h"

typedef struct bin_args {
    const gir_node *n;
    kiln_dtype calc; /* operands arrive converted to it */
    int op;          /* ex_binop, or an op-specific selector */
} bin_args;

typedef ex_expr *(*bin_build)(tir_func *f, const bin_args *b, ex_expr *x, ex_expr *y);

/* Loads B at the output index idx (rank r): numpy broadcasting, or the
** legacy form where B's dims line up with A's from `axis`. */
static ex_expr *load_b(tir_func *f, const gir_node *n, const tir_tensor *a, const tir_tensor *b, int r,
                       ex_expr *const *idx) {
    if (n->opset >= 7 || !gir_attr_int(n, "broadcast", 0)) return cmp_load_bcast(f, b, r, idx);
    int64_t axis = gir_attr_int(n, "axis", a->rank - b->rank);
    if (axis < 0) axis += a->rank;
    ex_expr *bi[KILN_MAX_RANK];
    for (int d = 0; d < b->rank; d++) bi[d] = b->dims[d] == 1 ? ex_int(&f->eb, 0) : idx[axis + d];
    return cmp_load(f, b, bi);
}

/* out = build(a, b) over the inferred output shape. */
static kiln_status binary(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out,
                          const char *name, bin_build fn, int op, kiln_dtype calc) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    bin_args args = {n, calc, op};
    tir_stage *st = cmp_stage(f, name, ty.dtype, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *x = cmp_to(f, cmp_load_bcast(f, in[0], ty.rank, idx), calc);
    ex_expr *y = cmp_to(f, load_b(f, n, in[0], in[1], ty.rank, idx), calc);
    st->body = cmp_to(f, fn(f, &args, x, y), ty.dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

static kiln_status unsupported_type(kiln_ctx *ctx, const gir_node *n, kiln_dtype dt) {
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported", kiln_dtype_name(dt));
}

static ex_expr *b_plain(tir_func *f, const bin_args *b, ex_expr *x, ex_expr *y) {
    return cmp_bin(f, (ex_binop)b->op, x, y);
}

#define PLAIN(fname, sname, binop, allowed)                                                        \
    CMP_FN(fname) {                                                                                \
        kiln_dtype dt = in[0]->dtype;                                                              \
        if (!(KILN_DT(dt) & (allowed))) return unsupported_type(ctx, n, dt);                        \
        return binary(ctx, f, n, in, out, sname, b_plain, binop, cmp_calc(dt));                     \
    }

#define NUM KILN_DT_NUMERIC
#define NUM_BOOL (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL))
PLAIN(add, "add", EX_ADD, NUM)
PLAIN(sub, "sub", EX_SUB, NUM)
PLAIN(mul, "mul", EX_MUL, NUM)
PLAIN(equal, "equal", EX_EQ, NUM_BOOL)
PLAIN(less, "less", EX_LT, NUM)
PLAIN(greater, "greater", EX_GT, NUM)
PLAIN(less_equal, "less_equal", EX_LE, NUM)
PLAIN(greater_equal, "greater_equal", EX_GE, NUM)
PLAIN(and, "and", EX_AND, KILN_DT(KILN_BOOL))
PLAIN(or, "or", EX_OR, KILN_DT(KILN_BOOL))
PLAIN(xor, "xor", EX_XOR, KILN_DT(KILN_BOOL))
PLAIN(bitwise_and, "bitwise_and", EX_AND, KILN_DT_INTS)
PLAIN(bitwise_or, "bitwise_or", EX_OR, KILN_DT_INTS)
PLAIN(bitwise_xor, "bitwise_xor", EX_XOR, KILN_DT_INTS)

/* ---- division and remainder ---- */

enum { DM_DIV, DM_REM, DM_FLOORMOD };

/* x op y on integers of type dt without a trap: see the file comment. Only
** i64 can overflow (INT64_MIN / -1); narrower signed types divide in i64. */
static ex_expr *int_divmod(tir_func *f, int which, ex_expr *x, ex_expr *y, bool widened) {
    kiln_dtype dt = x->dtype;
    bool sgn = kiln_dtype_is_signed(dt);
    if (sgn && dt != KILN_I64) {
        ex_expr *r = int_divmod(f, which, cmp_to(f, x, KILN_I64), cmp_to(f, y, KILN_I64), true);
        return cmp_to(f, r, dt);
    }
    ex_expr *bad = cmp_bin(f, EX_EQ, y, cmp_i(f, dt, 0));
    ex_expr *minus1 = sgn && !widened ? cmp_bin(f, EX_EQ, y, cmp_i(f, dt, -1)) : NULL;
    if (minus1) bad = cmp_bin(f, EX_OR, bad, minus1);
    ex_expr *d = cmp_sel(f, bad, cmp_i(f, dt, 1), y);
    ex_binop op = which == DM_DIV ? EX_DIV : which == DM_REM ? EX_MOD : EX_FLOORMOD;
    ex_expr *r = cmp_bin(f, op, x, d);
    /* a remainder by -1 is 0, as by 1; a quotient by -1 is the wrapped negation */
    if (minus1 && which == DM_DIV) r = cmp_sel(f, minus1, cmp_bin(f, EX_SUB, cmp_i(f, dt, 0), x), r);
    return r;
}

static ex_expr *b_divmod(tir_func *f, const bin_args *b, ex_expr *x, ex_expr *y) {
    if (kiln_dtype_is_float(x->dtype)) return cmp_bin(f, b->op == DM_DIV ? EX_DIV : EX_MOD, x, y);
    return int_divmod(f, b->op, x, y, false);
}

CMP_FN(div) {
    kiln_dtype dt = in[0]->dtype;
    if (!(KILN_DT(dt) & NUM)) return unsupported_type(ctx, n, dt);
    return binary(ctx, f, n, in, out, "div", b_divmod, DM_DIV, cmp_calc(dt));
}

CMP_FN(mod) {
    kiln_dtype dt = in[0]->dtype;
    bool fm = gir_attr_int(n, "fmod", 0) != 0;
    if (!(KILN_DT(dt) & NUM)) return unsupported_type(ctx, n, dt);
    if (kiln_dtype_is_float(dt) && !fm)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "fmod must be 1 for floating-point inputs (got 0)");
    return binary(ctx, f, n, in, out, "mod", b_divmod, fm ? DM_REM : DM_FLOORMOD, cmp_calc(dt));
}

/* ---- Pow: the base's type; a float exponent of an integer base in f64 ---- */

enum { POW_ANY, POW_1, POW_2, POW_3, POW_HALF, POW_MINUS1 };

/* A float base's constant exponent whose elements are all 1, 2, 3, 0.5 or
** -1: the power is then a multiplication, a square root or a division
** (the reference's pow, computed in f64 and rounded once, differs from
** these only by the rounding of the calc type). */
static int pow_kind(const tir_tensor *base, const tir_tensor *e) {
    if (!kiln_dtype_is_float(base->dtype) || !e->constant) return POW_ANY;
    int64_t n = kiln_numel(e->constant);
    if (n <= 0) return POW_ANY;
    double v = kiln_tensor_f64(e->constant, 0);
    for (int64_t i = 1; i < n; i++)
        if (kiln_tensor_f64(e->constant, i) != v) return POW_ANY;
    return v == 1 ? POW_1 : v == 2 ? POW_2 : v == 3 ? POW_3 : v == 0.5 ? POW_HALF : v == -1 ? POW_MINUS1 : POW_ANY;
}

static ex_expr *b_pow(tir_func *f, const bin_args *b, ex_expr *x, ex_expr *y) {
    kiln_dtype t = x->dtype;
    switch (b->op) {
    case POW_1: return x;
    case POW_2: return cmp_bin(f, EX_MUL, x, x);
    case POW_3: return cmp_bin(f, EX_MUL, cmp_bin(f, EX_MUL, x, x), x);
    case POW_MINUS1: return cmp_bin(f, EX_DIV, cmp_f(f, t, 1.0), x);
    case POW_HALF: { /* pow(-inf, 0.5) is +inf where sqrt gives NaN */
        ex_expr *ninf = cmp_bin(f, EX_EQ, x, cmp_f(f, t, -HUGE_VAL));
        return cmp_sel(f, ninf, cmp_f(f, t, HUGE_VAL), cmp_un(f, EX_SQRT, x));
    }
    default: return cmp_bin(f, EX_POW, x, y);
    }
}

CMP_FN(pow) {
    kiln_dtype bt = in[0]->dtype, et = in[1]->dtype;
    bool bf = kiln_dtype_is_float(bt), ef = kiln_dtype_is_float(et);
    if (!(KILN_DT(bt) & NUM) || !(KILN_DT(et) & NUM)) return unsupported_type(ctx, n, bf ? et : bt);
    if (!bf && !ef)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "integer powers of integers (%s ** %s) have no compute definition yet",
                            kiln_dtype_name(bt), kiln_dtype_name(et));
    kiln_dtype calc = bf && bt != KILN_F64 && et != KILN_F64 ? KILN_F32 : KILN_F64;
    return binary(ctx, f, n, in, out, "pow", b_pow, pow_kind(in[0], in[1]), calc);
}

/* ---- BitShift: unsigned; shifting by the width or more gives 0 ---- */

static ex_expr *b_shift(tir_func *f, const bin_args *b, ex_expr *x, ex_expr *y) {
    kiln_dtype dt = x->dtype;
    int64_t w = (int64_t)kiln_dtype_size(dt) * 8;
    ex_expr *big = cmp_bin(f, EX_GE, y, cmp_i(f, dt, w));
    ex_expr *amt = cmp_sel(f, big, cmp_i(f, dt, 0), y);
    ex_expr *r = cmp_bin(f, (ex_binop)b->op, x, amt);
    return cmp_sel(f, big, cmp_i(f, dt, 0), r);
}

CMP_FN(bitshift) {
    kiln_dtype dt = in[0]->dtype;
    if (!(KILN_DT(dt) & KILN_DT_UINTS)) return unsupported_type(ctx, n, dt);
    const char *d = gir_attr_string(n, "direction", "");
    bool left = !strcmp(d, "LEFT");
    if (!left && strcmp(d, "RIGHT"))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute direction must be \"LEFT\" or \"RIGHT\"");
    return binary(ctx, f, n, in, out, "bitshift", b_shift, left ? EX_SHL : EX_SHR, dt);
}

/* ---- PRelu and SwiGLU ---- */

CMP_FN(prelu) {
    tir_tensor *x = in[0], *slope = in[1];
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    kiln_dtype dt = x->dtype, c = cmp_calc(dt);
    tir_stage *st = cmp_stage(f, "prelu", dt, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *xv = cmp_to(f, cmp_load(f, x, idx), c);
    bool one = kiln_numel_dims(slope->rank, slope->dims) == 1;
    ex_expr *sv = cmp_to(f, one ? cmp_load_first(f, slope) : cmp_load_bcast(f, slope, x->rank, idx), c);
    ex_expr *neg = cmp_bin(f, EX_LT, xv, cmp_num(f, c, 0));
    st->body = cmp_to(f, cmp_sel(f, neg, cmp_bin(f, EX_MUL, xv, sv), xv), dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

static ex_expr *b_swiglu(tir_func *f, const bin_args *b, ex_expr *x, ex_expr *v) {
    double alpha = gir_attr_float(b->n, "alpha", 1.0);
    ex_expr *g = cmp_un(f, EX_SIGMOID, cmp_bin(f, EX_MUL, cmp_f(f, b->calc, alpha), x));
    return cmp_bin(f, EX_MUL, cmp_bin(f, EX_MUL, x, g), v);
}

CMP_FN(swiglu) {
    kiln_dtype dt = in[0]->dtype;
    if (!kiln_dtype_is_float(dt)) return unsupported_type(ctx, n, dt);
    return binary(ctx, f, n, in, out, "swiglu", b_swiglu, 0, cmp_calc(dt));
}

/* ---- variadic Max, Min, Sum, Mean: a left fold over broadcast inputs ---- */

static kiln_status variadic(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out,
                            const char *name, ex_binop op, bool mean) {
    kiln_dtype dt = in[0]->dtype, c = cmp_calc(dt);
    if (!(KILN_DT(dt) & NUM) || (mean && !kiln_dtype_is_float(dt))) return unsupported_type(ctx, n, dt);
    for (int i = 0; i < n->n_inputs; i++)
        if (!in[i]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "input %d is missing", i);
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    tir_stage *st = cmp_stage(f, name, dt, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *acc = NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        ex_expr *v = cmp_to(f, cmp_load_bcast(f, in[i], ty.rank, idx), c);
        acc = acc ? cmp_bin(f, op, acc, v) : v;
    }
    if (mean) acc = cmp_bin(f, EX_DIV, acc, cmp_f(f, c, (double)n->n_inputs));
    st->body = cmp_to(f, acc, dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(max) { return variadic(ctx, f, n, in, out, "max", EX_MAX, false); }
CMP_FN(min) { return variadic(ctx, f, n, in, out, "min", EX_MIN, false); }
CMP_FN(sum) { return variadic(ctx, f, n, in, out, "sum", EX_ADD, false); }
CMP_FN(mean) { return variadic(ctx, f, n, in, out, "mean", EX_ADD, true); }
