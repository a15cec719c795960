/*
** ops_binary.c — the binary op family: arithmetic (Add, Sub, Mul, Div, Mod,
** Pow), comparisons, logical and bitwise ops, BitShift, PRelu and the
** variadic Max/Min/Sum/Mean. All broadcast like numpy (before opset 7 the
** legacy broadcast attributes apply, see ew_binary_operands).
**
** Integers are exact and wrap like two's complement; a zero divisor is an
** error, not undefined behaviour.
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "ew_ops.h"

/* ---- arithmetic ---- */

typedef struct arith_op {
    double (*f)(double a, double b);
    int64_t (*s)(int64_t a, int64_t b);
    uint64_t (*u)(uint64_t a, uint64_t b);
    bool divides; /* integer b must not be zero */
} arith_op;

static double f_add(double a, double b) { return a + b; }
static double f_sub(double a, double b) { return a - b; }
static double f_mul(double a, double b) { return a * b; }
static double f_div(double a, double b) { return a / b; }
static double f_fmod(double a, double b) { return fmod(a, b); }

static uint64_t u_add(uint64_t a, uint64_t b) { return a + b; }
static uint64_t u_sub(uint64_t a, uint64_t b) { return a - b; }
static uint64_t u_mul(uint64_t a, uint64_t b) { return a * b; }
static uint64_t u_div(uint64_t a, uint64_t b) { return a / b; }
static uint64_t u_mod(uint64_t a, uint64_t b) { return a % b; }

/* Signed ops run on the bits so that overflow wraps instead of being UB. */
static int64_t s_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t s_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static int64_t s_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* C truncation; INT64_MIN / -1 wraps. */
static int64_t s_div(int64_t a, int64_t b) { return b == -1 ? s_sub(0, a) : a / b; }
static int64_t s_fmod(int64_t a, int64_t b) { return b == -1 ? 0 : a % b; }

/* numpy's mod: the result takes the divisor's sign. */
static int64_t s_mod(int64_t a, int64_t b) {
    int64_t r = s_fmod(a, b);
    return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
}

static const arith_op k_add = {f_add, s_add, u_add, false};
static const arith_op k_sub = {f_sub, s_sub, u_sub, false};
static const arith_op k_mul = {f_mul, s_mul, u_mul, false};
static const arith_op k_div = {f_div, s_div, u_div, true};
static const arith_op k_fmod = {f_fmod, s_fmod, u_mod, true};
static const arith_op k_mod = {NULL, s_mod, u_mod, true};

static kiln_status check_divisor(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *b) {
    int64_t count = kiln_numel(b);
    for (int64_t i = 0; i < count; i++)
        if (kiln_load_i64(b->dtype, b->data, i) == 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "integer division by zero");
    return KILN_OK;
}

static void arith_elem(const arith_op *op, ew_kind k, const kiln_tensor *a, int64_t ia,
                       const kiln_tensor *b, int64_t ib, kiln_tensor *y, int64_t i) {
    if (k == EW_FLOAT) {
        double r = op->f(ew_load_f64(a->dtype, a->data, ia), ew_load_f64(b->dtype, b->data, ib));
        ew_store_f64(y->dtype, y->data, i, r);
    } else if (k == EW_SINT) {
        int64_t r = op->s(kiln_load_i64(a->dtype, a->data, ia), kiln_load_i64(b->dtype, b->data, ib));
        kiln_store_i64(y->dtype, y->data, i, r);
    } else {
        uint64_t r = op->u(ew_load_u64(a->dtype, a->data, ia), ew_load_u64(b->dtype, b->data, ib));
        ew_store_u64(y->dtype, y->data, i, r);
    }
}

static kiln_status run_arith(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *y, const arith_op *op) {
    kiln_tensor a, b;
    kiln_status s = ew_binary_operands(ctx, n, in, &a, &b);
    if (s) return s;
    ew_kind k = ew_kind_of(y->dtype);
    if ((k == EW_FLOAT && !op->f) || k == EW_BOOL || k == EW_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(y->dtype));
    if (op->divides && k != EW_FLOAT && (s = check_divisor(ctx, n, &b))) return s;
    const kiln_tensor *ab[2] = {&a, &b};
    ew_iter it;
    ew_iter_init(&it, y, 2, ab);
    int64_t count = kiln_numel(y);
    for (int64_t i = 0; i < count; i++, ew_iter_next(&it))
        arith_elem(op, k, &a, it.off[0], &b, it.off[1], y, i);
    return KILN_OK;
}

static kiln_status infer_arith(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    kiln_status s = ew_check_dtypes(ctx, n, in, 0, 2, in[0]->dtype);
    if (s) return s;
    return ew_infer_binary(ctx, n, in, in[0]->dtype, out);
}

#define ARITH(name, def)                                                                  \
    static kiln_status ref_##name(kiln_ctx *ctx, const gir_node *n,                       \
                                  const kiln_tensor *const *in, kiln_tensor *out) {       \
        return run_arith(ctx, n, in, &out[0], &def);                                      \
    }

ARITH(add, k_add)
ARITH(sub, k_sub)
ARITH(mul, k_mul)
ARITH(div, k_div)

static kiln_status infer_mod(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    if (kiln_dtype_is_float(in[0]->dtype) && !gir_attr_int(n, "fmod", 0))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "fmod must be 1 for floating-point inputs (got 0)");
    return infer_arith(ctx, n, in, out);
}

static kiln_status ref_mod(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    return run_arith(ctx, n, in, &out[0], gir_attr_int(n, "fmod", 0) ? &k_fmod : &k_mod);
}

/* ---- Pow: the result has the base's type; the exponent may differ (12+) ---- */

/* base ** e for e >= 0 by squaring, wrapping in 64 bits. */
static uint64_t ipow(uint64_t base, uint64_t e) {
    uint64_t r = 1;
    while (e) {
        if (e & 1) r *= base;
        base *= base;
        e >>= 1;
    }
    return r;
}

/* An integer base to an integer power; a negative power truncates 1/x^|e|
** toward zero like the real result converted to an integer would. */
static kiln_status int_pow(kiln_ctx *ctx, const gir_node *n, bool base_signed, uint64_t base,
                           bool exp_neg, uint64_t e, uint64_t *r) {
    if (!exp_neg) {
        *r = ipow(base, e);
        return KILN_OK;
    }
    if (base == 0)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "integer 0 raised to a negative power");
    if (base == 1) *r = 1;
    else if (base_signed && base == UINT64_MAX) *r = (e & 1) ? UINT64_MAX : 1; /* base -1 */
    else *r = 0;
    return KILN_OK;
}

static kiln_status pow_elem(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a, int64_t ia,
                            const kiln_tensor *b, int64_t ib, kiln_tensor *y, int64_t i) {
    ew_kind ka = ew_kind_of(a->dtype), kb = ew_kind_of(b->dtype);
    if (ka == EW_FLOAT || kb == EW_FLOAT) {
        double r = pow(ew_load_f64(a->dtype, a->data, ia), ew_load_f64(b->dtype, b->data, ib));
        ew_store_f64(y->dtype, y->data, i, r);
        return KILN_OK;
    }
    uint64_t base = ew_load_u64(a->dtype, a->data, ia), e = ew_load_u64(b->dtype, b->data, ib);
    bool neg = kb == EW_SINT && (int64_t)e < 0;
    uint64_t r = 0;
    kiln_status s = int_pow(ctx, n, ka == EW_SINT, base, neg, neg ? 0u - e : e, &r);
    if (!s) ew_store_u64(y->dtype, y->data, i, r);
    return s;
}

static kiln_status infer_pow(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    kiln_dtype te = in[1]->dtype;
    if (n->opset < 12 && te != in[0]->dtype)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "exponent is %s, expected %s like the base",
                            kiln_dtype_name(te), kiln_dtype_name(in[0]->dtype));
    if (!(KILN_DT(te) & KILN_DT_NUMERIC))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "exponent type %s is not supported",
                            kiln_dtype_name(te));
    return ew_infer_binary(ctx, n, in, in[0]->dtype, out);
}

static kiln_status ref_pow(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    kiln_tensor a, b;
    kiln_status s = ew_binary_operands(ctx, n, in, &a, &b);
    if (s) return s;
    const kiln_tensor *ab[2] = {&a, &b};
    ew_iter it;
    ew_iter_init(&it, &out[0], 2, ab);
    int64_t count = kiln_numel(&out[0]);
    for (int64_t i = 0; i < count && !s; i++, ew_iter_next(&it))
        s = pow_elem(ctx, n, &a, it.off[0], &b, it.off[1], &out[0], i);
    return s;
}

/* ---- comparisons: a mask of the orderings (<, ==, >) that give true ---- */

enum { CMP_LT = 1, CMP_EQ = 2, CMP_GT = 4 };

/* The ordering of a[ia] and b[ib], or 0 when unordered (a NaN). */
static int compare(ew_kind k, const kiln_tensor *a, int64_t ia, const kiln_tensor *b, int64_t ib) {
    if (k == EW_FLOAT) {
        double x = ew_load_f64(a->dtype, a->data, ia), y = ew_load_f64(b->dtype, b->data, ib);
        return x < y ? CMP_LT : x > y ? CMP_GT : x == y ? CMP_EQ : 0;
    }
    if (k == EW_STRING) {
        const char *x = ((char *const *)a->data)[ia], *y = ((char *const *)b->data)[ib];
        int c = strcmp(x ? x : "", y ? y : "");
        return c < 0 ? CMP_LT : c > 0 ? CMP_GT : CMP_EQ;
    }
    if (k == EW_UINT) {
        uint64_t x = ew_load_u64(a->dtype, a->data, ia), y = ew_load_u64(b->dtype, b->data, ib);
        return x < y ? CMP_LT : x > y ? CMP_GT : CMP_EQ;
    }
    int64_t x = kiln_load_i64(a->dtype, a->data, ia), y = kiln_load_i64(b->dtype, b->data, ib);
    return x < y ? CMP_LT : x > y ? CMP_GT : CMP_EQ;
}

static kiln_status run_compare(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *y, int mask) {
    kiln_tensor a, b;
    kiln_status s = ew_binary_operands(ctx, n, in, &a, &b);
    if (s) return s;
    ew_kind k = ew_kind_of(a.dtype);
    const kiln_tensor *ab[2] = {&a, &b};
    ew_iter it;
    ew_iter_init(&it, y, 2, ab);
    uint8_t *out = y->data;
    int64_t count = kiln_numel(y);
    for (int64_t i = 0; i < count; i++, ew_iter_next(&it))
        out[i] = (compare(k, &a, it.off[0], &b, it.off[1]) & mask) != 0;
    return KILN_OK;
}

static kiln_status infer_compare(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    kiln_status s = ew_check_dtypes(ctx, n, in, 0, 2, in[0]->dtype);
    if (s) return s;
    return ew_infer_binary(ctx, n, in, KILN_BOOL, out);
}

#define COMPARE(name, mask)                                                               \
    static kiln_status ref_##name(kiln_ctx *ctx, const gir_node *n,                       \
                                  const kiln_tensor *const *in, kiln_tensor *out) {       \
        return run_compare(ctx, n, in, &out[0], mask);                                    \
    }

COMPARE(equal, CMP_EQ)
COMPARE(less, CMP_LT)
COMPARE(greater, CMP_GT)
COMPARE(less_equal, CMP_LT | CMP_EQ)
COMPARE(greater_equal, CMP_GT | CMP_EQ)

/* ---- logical (bool) and bitwise (integer) ops ---- */

static uint64_t b_and(uint64_t a, uint64_t b) { return a & b; }
static uint64_t b_or(uint64_t a, uint64_t b) { return a | b; }
static uint64_t b_xor(uint64_t a, uint64_t b) { return a ^ b; }
static uint64_t b_shl(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a << b; }
static uint64_t b_shr(uint64_t a, uint64_t b) { return b >= 64 ? 0 : a >> b; }

/* Bools are 0/1 bytes, so the bitwise functions serve the logical ops too. */
static kiln_status run_bits(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *y, uint64_t (*f)(uint64_t, uint64_t)) {
    kiln_tensor a, b;
    kiln_status s = ew_binary_operands(ctx, n, in, &a, &b);
    if (s) return s;
    const kiln_tensor *ab[2] = {&a, &b};
    ew_iter it;
    ew_iter_init(&it, y, 2, ab);
    int64_t count = kiln_numel(y);
    for (int64_t i = 0; i < count; i++, ew_iter_next(&it)) {
        uint64_t r = f(ew_load_u64(a.dtype, a.data, it.off[0]), ew_load_u64(b.dtype, b.data, it.off[1]));
        ew_store_u64(y->dtype, y->data, i, r);
    }
    return KILN_OK;
}

#define BITS(name, fn)                                                                    \
    static kiln_status ref_##name(kiln_ctx *ctx, const gir_node *n,                       \
                                  const kiln_tensor *const *in, kiln_tensor *out) {       \
        return run_bits(ctx, n, in, &out[0], fn);                                         \
    }

BITS(and, b_and)
BITS(or, b_or)
BITS(xor, b_xor)

static bool shift_left(const gir_node *n) {
    return strcmp(gir_attr_string(n, "direction", ""), "LEFT") == 0;
}

static kiln_status infer_bitshift(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    const char *d = gir_attr_string(n, "direction", NULL);
    if (!d || (strcmp(d, "LEFT") != 0 && strcmp(d, "RIGHT") != 0))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "attribute direction must be \"LEFT\" or \"RIGHT\"%s",
                            d ? "" : " (it is missing)");
    return infer_arith(ctx, n, in, out);
}

static kiln_status ref_bitshift(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    return run_bits(ctx, n, in, &out[0], shift_left(n) ? b_shl : b_shr);
}

/* ---- PRelu: the slope broadcasts to X (one direction only) ---- */

static kiln_status infer_prelu(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    kiln_status s = ew_check_dtypes(ctx, n, in, 0, 2, in[0]->dtype);
    if (s) return s;
    const kiln_tensor *x = in[0], *slope = in[1];
    char a[128], b[128];
    bool ok;
    if (n->opset < 7) {
        ok = kiln_numel(slope) == 1 || kiln_tensor_same_shape(x, slope);
    } else {
        ok = slope->rank <= x->rank;
        for (int d = 0; ok && d < slope->rank; d++) {
            int64_t e = slope->dims[d];
            ok = e == 1 || e == x->dims[x->rank - slope->rank + d];
        }
    }
    if (!ok)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "slope %s does not broadcast to X %s",
                            kiln_shape_str(slope, b, sizeof b), kiln_shape_str(x, a, sizeof a));
    kiln_tensor_init(&out[0], x->dtype, x->rank, x->dims);
    return KILN_OK;
}

static kiln_status ref_prelu(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    (void)ctx;
    (void)n;
    const kiln_tensor *x = in[0], *slope = in[1];
    kiln_tensor one = *slope;
    if (kiln_numel(slope) == 1) one.rank = 0; /* opset < 7 allows any one-element shape */
    const kiln_tensor *xs[2] = {x, &one};
    kiln_tensor *y = &out[0];
    ew_kind k = ew_kind_of(x->dtype);
    ew_iter it;
    ew_iter_init(&it, y, 2, xs);
    int64_t count = kiln_numel(y);
    for (int64_t i = 0; i < count; i++, ew_iter_next(&it)) {
        bool negative = k == EW_FLOAT ? ew_load_f64(x->dtype, x->data, i) < 0
                        : k == EW_SINT ? kiln_load_i64(x->dtype, x->data, i) < 0 : false;
        if (negative) arith_elem(&k_mul, k, x, i, &one, it.off[1], y, i);
        else ew_copy_num(x, i, y, i);
    }
    return KILN_OK;
}

/* ---- StringConcat and SwiGLU ---- */

static kiln_status infer_strcat(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    kiln_status s = ew_check_dtypes(ctx, n, in, 0, 2, KILN_STRING);
    if (s) return s;
    return kiln_op_infer_broadcast(ctx, n, in, 0, 2, KILN_STRING, out);
}

static kiln_status ref_strcat(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    ew_iter it;
    ew_iter_init(&it, &out[0], 2, in);
    char *const *a = in[0]->data, *const *b = in[1]->data;
    char **y = out[0].data;
    int64_t count = kiln_numel(&out[0]);
    for (int64_t i = 0; i < count; i++, ew_iter_next(&it)) {
        const char *x = a[it.off[0]] ? a[it.off[0]] : "", *z = b[it.off[1]] ? b[it.off[1]] : "";
        size_t lx = strlen(x), lz = strlen(z);
        char *c = kiln_malloc(lx + lz + 1);
        if (!c) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory joining strings");
        memcpy(c, x, lx);
        memcpy(c + lx, z, lz + 1);
        kiln_free(y[i]);
        y[i] = c;
    }
    return KILN_OK;
}

/* SwiGLU does not broadcast: A and B have one shape. */
static kiln_status infer_swiglu(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    kiln_status s = ew_check_dtypes(ctx, n, in, 0, 2, in[0]->dtype);
    if (s) return s;
    if (!kiln_tensor_same_shape(in[0], in[1])) {
        char a[128], b[128];
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "A %s and B %s must have the same shape",
                            kiln_shape_str(in[0], a, sizeof a), kiln_shape_str(in[1], b, sizeof b));
    }
    return kiln_op_infer_same(ctx, n, in, out);
}

static kiln_status ref_swiglu(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    (void)ctx;
    double alpha = gir_attr_float(n, "alpha", 1.0);
    const kiln_tensor *a = in[0], *b = in[1];
    kiln_tensor *y = &out[0];
    int64_t count = kiln_numel(y);
    for (int64_t i = 0; i < count; i++) {
        double x = ew_load_f64(a->dtype, a->data, i), v = ew_load_f64(b->dtype, b->data, i);
        ew_store_f64(y->dtype, y->data, i, x * ew_sigmoid(alpha * x) * v);
    }
    return KILN_OK;
}

/* ---- variadic Max, Min, Sum, Mean: fold each input into the output ---- */

typedef enum fold_kind { FOLD_MAX, FOLD_MIN, FOLD_SUM } fold_kind;

static kiln_status infer_variadic(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    for (int i = 0; i < n->n_inputs; i++)
        if (!in[i]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "input %d is missing", i);
    kiln_status s = ew_check_dtypes(ctx, n, in, 0, n->n_inputs, in[0]->dtype);
    if (s) return s;
    if (n->opset < 8)
        for (int i = 1; i < n->n_inputs; i++)
            if (!kiln_tensor_same_shape(in[0], in[i]))
                return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                    "inputs must have one shape before opset 8 (input %d differs)", i);
    return kiln_op_infer_broadcast(ctx, n, in, 0, n->n_inputs, in[0]->dtype, out);
}

static void fold_elem(fold_kind f, ew_kind k, const kiln_tensor *x, int64_t ix, kiln_tensor *y,
                      int64_t i) {
    if (k == EW_FLOAT) {
        double a = ew_load_f64(y->dtype, y->data, i), b = ew_load_f64(x->dtype, x->data, ix);
        double r = f == FOLD_SUM ? a + b
                   : isnan(a) || isnan(b) ? NAN
                   : f == FOLD_MAX ? (b > a ? b : a) : (b < a ? b : a);
        ew_store_f64(y->dtype, y->data, i, r);
    } else if (k == EW_SINT) {
        int64_t a = kiln_load_i64(y->dtype, y->data, i), b = kiln_load_i64(x->dtype, x->data, ix);
        int64_t r = f == FOLD_SUM ? s_add(a, b) : f == FOLD_MAX ? (b > a ? b : a) : (b < a ? b : a);
        kiln_store_i64(y->dtype, y->data, i, r);
    } else {
        uint64_t a = ew_load_u64(y->dtype, y->data, i), b = ew_load_u64(x->dtype, x->data, ix);
        uint64_t r = f == FOLD_SUM ? a + b : f == FOLD_MAX ? (b > a ? b : a) : (b < a ? b : a);
        ew_store_u64(y->dtype, y->data, i, r);
    }
}

static kiln_status run_fold(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *y, fold_kind f) {
    ew_kind k = ew_kind_of(y->dtype);
    if (k == EW_BOOL || k == EW_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(y->dtype));
    int64_t count = kiln_numel(y);
    for (int j = 0; j < n->n_inputs; j++) {
        ew_iter it;
        ew_iter_init(&it, y, 1, &in[j]);
        for (int64_t i = 0; i < count; i++, ew_iter_next(&it)) {
            if (j == 0) ew_copy_num(in[0], it.off[0], y, i);
            else fold_elem(f, k, in[j], it.off[0], y, i);
        }
    }
    return KILN_OK;
}

static kiln_status ref_max(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    return run_fold(ctx, n, in, &out[0], FOLD_MAX);
}

static kiln_status ref_min(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    return run_fold(ctx, n, in, &out[0], FOLD_MIN);
}

static kiln_status ref_sum(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    return run_fold(ctx, n, in, &out[0], FOLD_SUM);
}

static kiln_status ref_mean(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    kiln_status s = run_fold(ctx, n, in, &out[0], FOLD_SUM);
    if (s) return s;
    kiln_tensor *y = &out[0];
    int64_t count = kiln_numel(y);
    for (int64_t i = 0; i < count; i++)
        ew_store_f64(y->dtype, y->data, i, ew_load_f64(y->dtype, y->data, i) / n->n_inputs);
    return KILN_OK;
}

/* ---- the table ---- */

static const kiln_attr_schema k_no_attrs[] = {{NULL}};
static const kiln_attr_schema k_legacy[] = {{"broadcast", GIR_ATTR_INT, false},
                                            {"axis", GIR_ATTR_INT, false},
                                            {"consumed_inputs", GIR_ATTR_INTS, false},
                                            {NULL}};
static const kiln_attr_schema k_consumed[] = {{"consumed_inputs", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_mod_attrs[] = {{"fmod", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_alpha_attrs[] = {{"alpha", GIR_ATTR_FLOAT, false}, {NULL}};
static const kiln_attr_schema k_shift_attrs[] = {{"direction", GIR_ATTR_STRING, true}, {NULL}};

#define NUM KILN_DT_NUMERIC
#define BC KILN_FUSE_BROADCAST
#define MAXV KILN_MAX_OPSET
/* A two-input, one-output op. */
#define BIN(name, v, dt, at, inf, ref, cmp) {name, "", v, MAXV, 2, 2, 1, 1, dt, BC, at, inf, ref, cmp}
#define VAR(name, dt, ref, cmp) \
    {name, "", 1, MAXV, 1, EW_VARIADIC, 1, 1, dt, BC, k_consumed, infer_variadic, ref, cmp}

const kiln_op_def kiln_ops_binary[] = {
    BIN("Add", 1, NUM, k_legacy, infer_arith, ref_add, cmp_add),
    BIN("Sub", 1, NUM, k_legacy, infer_arith, ref_sub, cmp_sub),
    BIN("Mul", 1, NUM, k_legacy, infer_arith, ref_mul, cmp_mul),
    BIN("Div", 1, NUM, k_legacy, infer_arith, ref_div, cmp_div),
    BIN("Mod", 10, NUM, k_mod_attrs, infer_mod, ref_mod, cmp_mod),
    BIN("Pow", 1, NUM, k_legacy, infer_pow, ref_pow, cmp_pow),
    BIN("Equal", 1, KILN_DT_ALL, k_legacy, infer_compare, ref_equal, cmp_equal),
    BIN("Less", 1, NUM, k_legacy, infer_compare, ref_less, cmp_less),
    BIN("Greater", 1, NUM, k_legacy, infer_compare, ref_greater, cmp_greater),
    BIN("LessOrEqual", 12, NUM, k_no_attrs, infer_compare, ref_less_equal, cmp_less_equal),
    BIN("GreaterOrEqual", 12, NUM, k_no_attrs, infer_compare, ref_greater_equal, cmp_greater_equal),
    BIN("And", 1, KILN_DT(KILN_BOOL), k_legacy, infer_arith, ref_and, cmp_and),
    BIN("Or", 1, KILN_DT(KILN_BOOL), k_legacy, infer_arith, ref_or, cmp_or),
    BIN("Xor", 1, KILN_DT(KILN_BOOL), k_legacy, infer_arith, ref_xor, cmp_xor),
    BIN("BitwiseAnd", 18, KILN_DT_INTS, k_no_attrs, infer_arith, ref_and, cmp_bitwise_and),
    BIN("BitwiseOr", 18, KILN_DT_INTS, k_no_attrs, infer_arith, ref_or, cmp_bitwise_or),
    BIN("BitwiseXor", 18, KILN_DT_INTS, k_no_attrs, infer_arith, ref_xor, cmp_bitwise_xor),
    BIN("BitShift", 11, KILN_DT_UINTS, k_shift_attrs, infer_bitshift, ref_bitshift, cmp_bitshift),
    BIN("PRelu", 1, NUM, k_consumed, infer_prelu, ref_prelu, cmp_prelu),
    BIN("StringConcat", 20, KILN_DT(KILN_STRING), k_no_attrs, infer_strcat, ref_strcat, NULL),
    BIN("SwiGLU", 28, KILN_DT_FLOATS, k_alpha_attrs, infer_swiglu, ref_swiglu, cmp_swiglu),
    VAR("Max", NUM, ref_max, cmp_max),
    VAR("Min", NUM, ref_min, cmp_min),
    VAR("Sum", NUM, ref_sum, cmp_sum),
    VAR("Mean", KILN_DT_FLOATS, ref_mean, cmp_mean),
    {0},
};
