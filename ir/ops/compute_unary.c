/*
** compute_unary.c — compute definitions of the unary op family: math
** functions and activations (floats, computed in the calc type), the
** integer-capable Abs/Neg/Relu/Sign/Shrink, Not, BitwiseNot, IsNaN, IsInf.
**
** Where the reference uses C's fmin/fmax (which ignore a NaN operand) the
** definitions spell the same choice out with selects, so NaN inputs give
** what the reference gives (HardSigmoid(NaN) = 1, Celu(NaN) = 0).
*/
#include <math.h>
#include <string.h>

#include "compute.h"

/* Attribute values of a node and the type its body computes in. */
typedef struct un_args {
    kiln_dtype calc;
    double alpha, beta, gamma;
    bool flag;
} un_args;

typedef ex_expr *(*un_build)(tir_func *f, const un_args *u, ex_expr *x);
typedef void (*un_read)(const gir_node *n, un_args *u);

enum { UN_FLOAT = 1, UN_SINT = 2, UN_UINT = 4, UN_BOOL = 8 };

static ex_expr *K(tir_func *f, const un_args *u, double v) { return cmp_num(f, u->calc, v); }
static ex_expr *B(tir_func *f, ex_binop op, ex_expr *a, ex_expr *b) { return cmp_bin(f, op, a, b); }
static ex_expr *U(tir_func *f, ex_fn fn, ex_expr *a) { return cmp_un(f, fn, a); }

/* fmax(0, v) and fmin(c, v) as C computes them: a NaN operand is ignored. */
static ex_expr *fmax0(tir_func *f, const un_args *u, ex_expr *v) {
    return cmp_sel(f, B(f, EX_GT, v, K(f, u, 0)), v, K(f, u, 0));
}
static ex_expr *fmin_c(tir_func *f, const un_args *u, double c, ex_expr *v) {
    return cmp_sel(f, B(f, EX_LT, v, K(f, u, c)), v, K(f, u, c));
}

static int un_kind(kiln_dtype dt) {
    if (kiln_dtype_is_float(dt)) return UN_FLOAT;
    if (dt == KILN_BOOL) return UN_BOOL;
    return kiln_dtype_is_signed(dt) ? UN_SINT : UN_UINT;
}

/* out = build(x) elementwise; floats compute in the calc type, integers in
** f64 when `int_via_f64` (Shrink), else in their own type. */
static kiln_status unary(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out,
                         const char *name, un_build fn, un_read rd, int kinds, kiln_dtype out_dt, bool int_via_f64) {
    tir_tensor *x = in[0];
    int k = un_kind(x->dtype);
    if (!(kinds & k))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(x->dtype));
    un_args u = {0};
    u.calc = k == UN_FLOAT ? cmp_calc(x->dtype) : int_via_f64 ? KILN_F64 : x->dtype;
    if (rd) rd(n, &u);
    if (out_dt == KILN_UNDEFINED) out_dt = x->dtype;
    tir_stage *s = cmp_stage(f, name, out_dt, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, s, idx);
    if (s) s->body = cmp_to(f, fn(f, &u, cmp_to(f, cmp_load(f, x, idx), u.calc)), out_dt);
    out[0] = s ? s->out : NULL;
    return cmp_done(ctx, f, n);
}

#define FLOAT_OP(fname, sname, build, rd)                                                     \
    CMP_FN(fname) { return unary(ctx, f, n, in, out, sname, build, rd, UN_FLOAT, KILN_UNDEFINED, false); }

#define FN_BUILD(bname, fn) \
    static ex_expr *bname(tir_func *f, const un_args *u, ex_expr *x) { (void)u; return U(f, fn, x); }

FN_BUILD(b_sqrt, EX_SQRT)
FN_BUILD(b_exp, EX_EXP)
FN_BUILD(b_log, EX_LOG)
FN_BUILD(b_erf, EX_ERF)
FN_BUILD(b_tanh, EX_TANH)
FN_BUILD(b_sigmoid, EX_SIGMOID)
FN_BUILD(b_sin, EX_SIN)
FN_BUILD(b_cos, EX_COS)
FN_BUILD(b_tan, EX_TAN)
FN_BUILD(b_asin, EX_ASIN)
FN_BUILD(b_acos, EX_ACOS)
FN_BUILD(b_atan, EX_ATAN)
FN_BUILD(b_sinh, EX_SINH)
FN_BUILD(b_cosh, EX_COSH)
FN_BUILD(b_asinh, EX_ASINH)
FN_BUILD(b_acosh, EX_ACOSH)
FN_BUILD(b_atanh, EX_ATANH)
FN_BUILD(b_recip, EX_RECIP)
FN_BUILD(b_ceil, EX_CEIL)
FN_BUILD(b_floor, EX_FLOOR)
FN_BUILD(b_round, EX_ROUND_EVEN)

FLOAT_OP(sqrt, "sqrt", b_sqrt, NULL)
FLOAT_OP(exp, "exp", b_exp, NULL)
FLOAT_OP(log, "log", b_log, NULL)
FLOAT_OP(erf, "erf", b_erf, NULL)
FLOAT_OP(tanh, "tanh", b_tanh, NULL)
FLOAT_OP(sigmoid, "sigmoid", b_sigmoid, NULL)
FLOAT_OP(sin, "sin", b_sin, NULL)
FLOAT_OP(cos, "cos", b_cos, NULL)
FLOAT_OP(tan, "tan", b_tan, NULL)
FLOAT_OP(asin, "asin", b_asin, NULL)
FLOAT_OP(acos, "acos", b_acos, NULL)
FLOAT_OP(atan, "atan", b_atan, NULL)
FLOAT_OP(sinh, "sinh", b_sinh, NULL)
FLOAT_OP(cosh, "cosh", b_cosh, NULL)
FLOAT_OP(asinh, "asinh", b_asinh, NULL)
FLOAT_OP(acosh, "acosh", b_acosh, NULL)
FLOAT_OP(atanh, "atanh", b_atanh, NULL)
FLOAT_OP(reciprocal, "reciprocal", b_recip, NULL)
FLOAT_OP(ceil, "ceil", b_ceil, NULL)
FLOAT_OP(floor, "floor", b_floor, NULL)
FLOAT_OP(round, "round", b_round, NULL)

/* ---- activations ---- */

/* log(1 + exp(-|x|)) + max(x, 0), finite in both tails like the reference. */
static ex_expr *softplus(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *pos = B(f, EX_GT, x, K(f, u, 0));
    ex_expr *t = cmp_sel(f, pos, U(f, EX_NEG, x), x);
    ex_expr *l = U(f, EX_LOG, B(f, EX_ADD, K(f, u, 1), U(f, EX_EXP, t)));
    return cmp_sel(f, pos, B(f, EX_ADD, x, l), l);
}

static ex_expr *b_softsign(tir_func *f, const un_args *u, ex_expr *x) {
    return B(f, EX_DIV, x, B(f, EX_ADD, K(f, u, 1), U(f, EX_ABS, x)));
}

static ex_expr *b_mish(tir_func *f, const un_args *u, ex_expr *x) {
    return B(f, EX_MUL, x, U(f, EX_TANH, softplus(f, u, x)));
}

static ex_expr *expm1_(tir_func *f, const un_args *u, ex_expr *x) { return B(f, EX_SUB, U(f, EX_EXP, x), K(f, u, 1)); }

static ex_expr *b_elu(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *neg = B(f, EX_MUL, K(f, u, u->alpha), expm1_(f, u, x));
    return cmp_sel(f, B(f, EX_LT, x, K(f, u, 0)), neg, x);
}

static ex_expr *b_leaky(tir_func *f, const un_args *u, ex_expr *x) {
    return cmp_sel(f, B(f, EX_LT, x, K(f, u, 0)), B(f, EX_MUL, K(f, u, u->alpha), x), x);
}

static ex_expr *b_thresh(tir_func *f, const un_args *u, ex_expr *x) {
    return cmp_sel(f, B(f, EX_GT, x, K(f, u, u->alpha)), x, K(f, u, 0));
}

static ex_expr *b_swish(tir_func *f, const un_args *u, ex_expr *x) {
    return B(f, EX_MUL, x, U(f, EX_SIGMOID, B(f, EX_MUL, K(f, u, u->alpha), x)));
}

static ex_expr *b_celu(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *e = B(f, EX_MUL, K(f, u, u->alpha), expm1_(f, u, B(f, EX_DIV, x, K(f, u, u->alpha))));
    ex_expr *neg = cmp_sel(f, B(f, EX_LT, e, K(f, u, 0)), e, K(f, u, 0)); /* fmin(0, e) */
    return B(f, EX_ADD, fmax0(f, u, x), neg);
}

static ex_expr *b_selu(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *a = K(f, u, u->alpha), *g = K(f, u, u->gamma);
    ex_expr *neg = B(f, EX_MUL, g, B(f, EX_SUB, B(f, EX_MUL, a, U(f, EX_EXP, x)), K(f, u, u->alpha)));
    return cmp_sel(f, B(f, EX_LE, x, K(f, u, 0)), neg, B(f, EX_MUL, g, x));
}

static ex_expr *hard01(tir_func *f, const un_args *u, ex_expr *t) { return fmax0(f, u, fmin_c(f, u, 1.0, t)); }

static ex_expr *b_hardsigmoid(tir_func *f, const un_args *u, ex_expr *x) {
    return hard01(f, u, B(f, EX_ADD, B(f, EX_MUL, K(f, u, u->alpha), x), K(f, u, u->beta)));
}

static ex_expr *b_hardswish(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *t = B(f, EX_ADD, B(f, EX_DIV, x, K(f, u, 6.0)), K(f, u, 0.5));
    return B(f, EX_MUL, x, hard01(f, u, t));
}

static ex_expr *b_gelu(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *half_x = B(f, EX_MUL, K(f, u, 0.5), x), *inner;
    if (u->flag) {
        ex_expr *x3 = B(f, EX_MUL, B(f, EX_MUL, K(f, u, 0.044715), x), B(f, EX_MUL, x, x));
        inner = U(f, EX_TANH, B(f, EX_MUL, K(f, u, 0.79788456080286535588), B(f, EX_ADD, x, x3)));
    } else {
        inner = U(f, EX_ERF, B(f, EX_DIV, x, K(f, u, sqrt(2.0))));
    }
    return B(f, EX_MUL, half_x, B(f, EX_ADD, K(f, u, 1), inner));
}

static ex_expr *b_shrink(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *lo = B(f, EX_ADD, x, K(f, u, u->beta)), *hi = B(f, EX_SUB, x, K(f, u, u->beta));
    ex_expr *r = cmp_sel(f, B(f, EX_GT, x, K(f, u, u->alpha)), hi, K(f, u, 0));
    return cmp_sel(f, B(f, EX_LT, x, K(f, u, -u->alpha)), lo, r);
}

static void a_alpha1(const gir_node *n, un_args *u) { u->alpha = gir_attr_float(n, "alpha", 1.0); }
static void a_leaky(const gir_node *n, un_args *u) { u->alpha = gir_attr_float(n, "alpha", 0.01); }

static void a_selu(const gir_node *n, un_args *u) {
    bool old = n->opset < 6;
    u->alpha = gir_attr_float(n, "alpha", old ? 1.6732 : 1.67326319217681884765625);
    u->gamma = gir_attr_float(n, "gamma", old ? 1.0507 : 1.05070102214813232421875);
}

static void a_hardsigmoid(const gir_node *n, un_args *u) {
    u->alpha = gir_attr_float(n, "alpha", 0.2);
    u->beta = gir_attr_float(n, "beta", 0.5);
}

static void a_shrink(const gir_node *n, un_args *u) {
    u->alpha = gir_attr_float(n, "lambd", 0.5);
    u->beta = gir_attr_float(n, "bias", 0.0);
}

static void a_gelu(const gir_node *n, un_args *u) {
    u->flag = strcmp(gir_attr_string(n, "approximate", "none"), "tanh") == 0;
}

FLOAT_OP(softplus, "softplus", softplus, NULL)
FLOAT_OP(softsign, "softsign", b_softsign, NULL)
FLOAT_OP(mish, "mish", b_mish, NULL)
FLOAT_OP(elu, "elu", b_elu, a_alpha1)
FLOAT_OP(leaky_relu, "leaky_relu", b_leaky, a_leaky)
FLOAT_OP(thresholded_relu, "thresholded_relu", b_thresh, a_alpha1)
FLOAT_OP(swish, "swish", b_swish, a_alpha1)
FLOAT_OP(selu, "selu", b_selu, a_selu)
FLOAT_OP(hard_sigmoid, "hard_sigmoid", b_hardsigmoid, a_hardsigmoid)
FLOAT_OP(hard_swish, "hard_swish", b_hardswish, NULL)
FLOAT_OP(gelu, "gelu", b_gelu, a_gelu)

CMP_FN(celu) {
    if (gir_attr_float(n, "alpha", 1.0) == 0.0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "alpha must not be 0");
    return unary(ctx, f, n, in, out, "celu", b_celu, a_alpha1, UN_FLOAT, KILN_UNDEFINED, false);
}

/* The reference computes integer Shrink in double and converts back. */
CMP_FN(shrink) {
    return unary(ctx, f, n, in, out, "shrink", b_shrink, a_shrink, UN_FLOAT | UN_SINT | UN_UINT, KILN_UNDEFINED,
                 true);
}

/* ---- integer-capable ops: exact, wrapping ---- */

static ex_expr *b_abs(tir_func *f, const un_args *u, ex_expr *x) {
    if (kiln_dtype_is_float(u->calc)) return U(f, EX_ABS, x);
    if (!kiln_dtype_is_signed(u->calc)) return x;
    return cmp_sel(f, B(f, EX_LT, x, K(f, u, 0)), B(f, EX_SUB, K(f, u, 0), x), x);
}

static ex_expr *b_neg(tir_func *f, const un_args *u, ex_expr *x) {
    return kiln_dtype_is_float(u->calc) ? U(f, EX_NEG, x) : B(f, EX_SUB, K(f, u, 0), x);
}

static ex_expr *b_relu(tir_func *f, const un_args *u, ex_expr *x) {
    return cmp_sel(f, B(f, EX_LT, x, K(f, u, 0)), K(f, u, 0), x);
}

/* Floats keep NaN and signed zeros: sign(x) = x when x is neither > 0 nor < 0. */
static ex_expr *b_sign(tir_func *f, const un_args *u, ex_expr *x) {
    if (!kiln_dtype_is_signed(u->calc) && !kiln_dtype_is_float(u->calc))
        return cmp_sel(f, B(f, EX_NE, x, K(f, u, 0)), K(f, u, 1), K(f, u, 0));
    ex_expr *rest = kiln_dtype_is_float(u->calc) ? x : K(f, u, 0);
    ex_expr *r = cmp_sel(f, B(f, EX_LT, x, K(f, u, 0)), K(f, u, -1), rest);
    return cmp_sel(f, B(f, EX_GT, x, K(f, u, 0)), K(f, u, 1), r);
}

static ex_expr *b_not(tir_func *f, const un_args *u, ex_expr *x) {
    (void)u;
    return U(f, EX_NOT, x);
}

/* ~x as x ^ all-ones, which reads the same for every integer width. */
static ex_expr *b_bitnot(tir_func *f, const un_args *u, ex_expr *x) {
    size_t bits = kiln_dtype_size(u->calc) * 8;
    int64_t ones = bits >= 64 || kiln_dtype_is_signed(u->calc) ? -1 : (int64_t)((UINT64_C(1) << bits) - 1);
    return B(f, EX_XOR, x, cmp_i(f, u->calc, ones));
}

#define ALL_NUM (UN_FLOAT | UN_SINT | UN_UINT)
CMP_FN(abs) { return unary(ctx, f, n, in, out, "abs", b_abs, NULL, ALL_NUM, KILN_UNDEFINED, false); }
CMP_FN(neg) { return unary(ctx, f, n, in, out, "neg", b_neg, NULL, UN_FLOAT | UN_SINT, KILN_UNDEFINED, false); }
CMP_FN(relu) { return unary(ctx, f, n, in, out, "relu", b_relu, NULL, ALL_NUM, KILN_UNDEFINED, false); }
CMP_FN(sign) { return unary(ctx, f, n, in, out, "sign", b_sign, NULL, ALL_NUM, KILN_UNDEFINED, false); }
CMP_FN(not) { return unary(ctx, f, n, in, out, "not", b_not, NULL, UN_BOOL, KILN_UNDEFINED, false); }
CMP_FN(bitwise_not) {
    return unary(ctx, f, n, in, out, "bitwise_not", b_bitnot, NULL, UN_SINT | UN_UINT, KILN_UNDEFINED, false);
}

/* ---- predicates ---- */

static ex_expr *b_isnan(tir_func *f, const un_args *u, ex_expr *x) {
    (void)u;
    return U(f, EX_ISNAN, x);
}

/* u->alpha/beta: detect_negative/detect_positive. */
static ex_expr *b_isinf(tir_func *f, const un_args *u, ex_expr *x) {
    ex_expr *inf = U(f, EX_ISINF, x);
    if (u->alpha != 0 && u->beta != 0) return inf;
    if (u->alpha == 0 && u->beta == 0) return cmp_i(f, KILN_BOOL, 0);
    ex_expr *side = B(f, u->beta != 0 ? EX_GT : EX_LT, x, K(f, u, 0));
    return B(f, EX_AND, inf, side);
}

static void a_isinf(const gir_node *n, un_args *u) {
    u->alpha = gir_attr_int(n, "detect_negative", 1) != 0;
    u->beta = gir_attr_int(n, "detect_positive", 1) != 0;
}

CMP_FN(isnan) { return unary(ctx, f, n, in, out, "isnan", b_isnan, NULL, UN_FLOAT, KILN_BOOL, false); }
CMP_FN(isinf) { return unary(ctx, f, n, in, out, "isinf", b_isinf, a_isinf, UN_FLOAT, KILN_BOOL, false); }
