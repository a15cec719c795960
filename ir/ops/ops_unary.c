/*
** ops_unary.c — the unary op family: math functions and activations
** (float), the integer-capable Abs/Neg/Sign/Relu, Not, BitwiseNot, and the
** IsNaN/IsInf predicates.
**
** Float ops compute in double and round once on store (see ew_ops.h).
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "ew_ops.h"

/* Attribute values of an activation, read once per node. */
typedef struct un_args {
    double alpha, beta, gamma;
    bool tanh_approx;
} un_args;

typedef double (*un_fn)(double x, const un_args *p);
typedef void (*un_args_fn)(const gir_node *n, un_args *p);

static void run_float(const kiln_tensor *x, kiln_tensor *y, un_fn f, const un_args *p) {
    int64_t count = kiln_numel(x);
    for (int64_t i = 0; i < count; i++)
        ew_store_f64(y->dtype, y->data, i, f(ew_load_f64(x->dtype, x->data, i), p));
}

/* One reference kernel per float op: the function and how its attributes
** are read. */
#define UN_FLOAT(name, fn, args)                                                          \
    static kiln_status ref_##name(kiln_ctx *ctx, const gir_node *n,                       \
                                  const kiln_tensor *const *in, kiln_tensor *out) {       \
        (void)ctx;                                                                        \
        un_args p = {0};                                                                  \
        un_args_fn a = args;                                                              \
        if (a) a(n, &p);                                                                  \
        run_float(in[0], &out[0], fn, &p);                                                \
        return KILN_OK;                                                                   \
    }

/* ---- plain math ---- */

static double f_sqrt(double x, const un_args *p) { (void)p; return sqrt(x); }
static double f_exp(double x, const un_args *p) { (void)p; return exp(x); }
static double f_log(double x, const un_args *p) { (void)p; return log(x); }
static double f_erf(double x, const un_args *p) { (void)p; return erf(x); }
static double f_tanh(double x, const un_args *p) { (void)p; return tanh(x); }
static double f_sin(double x, const un_args *p) { (void)p; return sin(x); }
static double f_cos(double x, const un_args *p) { (void)p; return cos(x); }
static double f_tan(double x, const un_args *p) { (void)p; return tan(x); }
static double f_asin(double x, const un_args *p) { (void)p; return asin(x); }
static double f_acos(double x, const un_args *p) { (void)p; return acos(x); }
static double f_atan(double x, const un_args *p) { (void)p; return atan(x); }
static double f_sinh(double x, const un_args *p) { (void)p; return sinh(x); }
static double f_cosh(double x, const un_args *p) { (void)p; return cosh(x); }
static double f_asinh(double x, const un_args *p) { (void)p; return asinh(x); }
static double f_acosh(double x, const un_args *p) { (void)p; return acosh(x); }
static double f_atanh(double x, const un_args *p) { (void)p; return atanh(x); }
static double f_reciprocal(double x, const un_args *p) { (void)p; return 1.0 / x; }
static double f_ceil(double x, const un_args *p) { (void)p; return ceil(x); }
static double f_floor(double x, const un_args *p) { (void)p; return floor(x); }

/* Halves round to the even neighbour, whatever the FPU rounding mode. */
static double f_round(double x, const un_args *p) {
    (void)p;
    double r = floor(x), d = x - r;
    if (d > 0.5 || (d == 0.5 && fmod(r, 2.0) != 0.0)) r += 1.0;
    return r;
}

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static double f_sigmoid(double x, const un_args *p) { (void)p; return ew_sigmoid(x); }
static double f_softplus(double x, const un_args *p) { (void)p; return softplus(x); }
static double f_softsign(double x, const un_args *p) { (void)p; return x / (1.0 + fabs(x)); }
static double f_mish(double x, const un_args *p) { (void)p; return x * tanh(softplus(x)); }

UN_FLOAT(sqrt, f_sqrt, NULL)
UN_FLOAT(exp, f_exp, NULL)
UN_FLOAT(log, f_log, NULL)
UN_FLOAT(erf, f_erf, NULL)
UN_FLOAT(tanh, f_tanh, NULL)
UN_FLOAT(sin, f_sin, NULL)
UN_FLOAT(cos, f_cos, NULL)
UN_FLOAT(tan, f_tan, NULL)
UN_FLOAT(asin, f_asin, NULL)
UN_FLOAT(acos, f_acos, NULL)
UN_FLOAT(atan, f_atan, NULL)
UN_FLOAT(sinh, f_sinh, NULL)
UN_FLOAT(cosh, f_cosh, NULL)
UN_FLOAT(asinh, f_asinh, NULL)
UN_FLOAT(acosh, f_acosh, NULL)
UN_FLOAT(atanh, f_atanh, NULL)
UN_FLOAT(reciprocal, f_reciprocal, NULL)
UN_FLOAT(ceil, f_ceil, NULL)
UN_FLOAT(floor, f_floor, NULL)
UN_FLOAT(round, f_round, NULL)
UN_FLOAT(sigmoid, f_sigmoid, NULL)
UN_FLOAT(softplus, f_softplus, NULL)
UN_FLOAT(softsign, f_softsign, NULL)
UN_FLOAT(mish, f_mish, NULL)

/* ---- activations with attributes ---- */

static void a_elu(const gir_node *n, un_args *p) { p->alpha = gir_attr_float(n, "alpha", 1.0); }
static void a_leaky(const gir_node *n, un_args *p) { p->alpha = gir_attr_float(n, "alpha", 0.01); }
static void a_thresh(const gir_node *n, un_args *p) { p->alpha = gir_attr_float(n, "alpha", 1.0); }
static void a_celu(const gir_node *n, un_args *p) { p->alpha = gir_attr_float(n, "alpha", 1.0); }
static void a_swish(const gir_node *n, un_args *p) { p->alpha = gir_attr_float(n, "alpha", 1.0); }

/* Opset 6 made the defaults the float32 nearest the exact constants. */
static void a_selu(const gir_node *n, un_args *p) {
    bool old = n->opset < 6;
    p->alpha = gir_attr_float(n, "alpha", old ? 1.6732 : 1.67326319217681884765625);
    p->gamma = gir_attr_float(n, "gamma", old ? 1.0507 : 1.05070102214813232421875);
}

static void a_hardsigmoid(const gir_node *n, un_args *p) {
    p->alpha = gir_attr_float(n, "alpha", 0.2);
    p->beta = gir_attr_float(n, "beta", 0.5);
}

static void a_shrink(const gir_node *n, un_args *p) {
    p->alpha = gir_attr_float(n, "lambd", 0.5);
    p->beta = gir_attr_float(n, "bias", 0.0);
}

static void a_gelu(const gir_node *n, un_args *p) {
    p->tanh_approx = strcmp(gir_attr_string(n, "approximate", "none"), "tanh") == 0;
}

static double f_elu(double x, const un_args *p) { return x < 0 ? p->alpha * expm1(x) : x; }
static double f_leaky(double x, const un_args *p) { return x < 0 ? p->alpha * x : x; }
static double f_thresh(double x, const un_args *p) { return x > p->alpha ? x : 0.0; }
static double f_swish(double x, const un_args *p) { return x * ew_sigmoid(p->alpha * x); }

static double f_celu(double x, const un_args *p) {
    return fmax(0.0, x) + fmin(0.0, p->alpha * expm1(x / p->alpha));
}

static double f_selu(double x, const un_args *p) {
    return x <= 0 ? p->gamma * (p->alpha * exp(x) - p->alpha) : p->gamma * x;
}

static double f_hardsigmoid(double x, const un_args *p) {
    return fmax(0.0, fmin(1.0, p->alpha * x + p->beta));
}

static double f_hardswish(double x, const un_args *p) {
    (void)p;
    return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
}

/* For integer inputs the result is converted back like a C cast. */
static double f_shrink(double x, const un_args *p) {
    if (x < -p->alpha) return x + p->beta;
    if (x > p->alpha) return x - p->beta;
    return 0.0;
}

static double f_gelu(double x, const un_args *p) {
    if (p->tanh_approx) {
        double k = 0.79788456080286535588; /* sqrt(2 / pi) */
        return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
    }
    return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
}

UN_FLOAT(elu, f_elu, a_elu)
UN_FLOAT(leaky, f_leaky, a_leaky)
UN_FLOAT(thresh, f_thresh, a_thresh)
UN_FLOAT(swish, f_swish, a_swish)
UN_FLOAT(celu, f_celu, a_celu)
UN_FLOAT(selu, f_selu, a_selu)
UN_FLOAT(hardsigmoid, f_hardsigmoid, a_hardsigmoid)
UN_FLOAT(hardswish, f_hardswish, NULL)
UN_FLOAT(shrink, f_shrink, a_shrink)
UN_FLOAT(gelu, f_gelu, a_gelu)

static kiln_status infer_celu(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    if (gir_attr_float(n, "alpha", 1.0) == 0.0)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "alpha must not be 0");
    return kiln_op_infer_same(ctx, n, in, out);
}

static kiln_status infer_gelu(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    const char *a = gir_attr_string(n, "approximate", "none");
    if (strcmp(a, "none") != 0 && strcmp(a, "tanh") != 0)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "approximate must be \"none\" or \"tanh\", got \"%s\"", a);
    return kiln_op_infer_same(ctx, n, in, out);
}

/* ---- integer-capable ops: exact on int64/uint64, wrapping like numpy ---- */

typedef struct int_unop {
    un_fn f;
    int64_t (*s)(int64_t x);
    uint64_t (*u)(uint64_t x);
} int_unop;

static kiln_status run_int_unop(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                kiln_tensor *y, const int_unop *op) {
    int64_t count = kiln_numel(x);
    ew_kind k = ew_kind_of(x->dtype);
    if (k == EW_FLOAT && op->f) {
        run_float(x, y, op->f, NULL);
        return KILN_OK;
    }
    if ((k == EW_SINT && !op->s) || (k == EW_UINT && !op->u) || k == EW_FLOAT || k == EW_BOOL ||
        k == EW_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(x->dtype));
    for (int64_t i = 0; i < count; i++) {
        if (k == EW_SINT)
            kiln_store_i64(y->dtype, y->data, i, op->s(kiln_load_i64(x->dtype, x->data, i)));
        else
            ew_store_u64(y->dtype, y->data, i, op->u(ew_load_u64(x->dtype, x->data, i)));
    }
    return KILN_OK;
}

static double f_abs(double x, const un_args *p) { (void)p; return fabs(x); }
static double f_neg(double x, const un_args *p) { (void)p; return -x; }
static double f_relu(double x, const un_args *p) { (void)p; return x < 0 ? 0.0 : x; }
static double f_sign(double x, const un_args *p) {
    (void)p;
    return x > 0 ? 1.0 : x < 0 ? -1.0 : x; /* keeps NaN and zero */
}

/* Negation goes through uint64 so that INT64_MIN wraps instead of overflowing. */
static int64_t s_neg(int64_t x) { return (int64_t)(0u - (uint64_t)x); }
static int64_t s_abs(int64_t x) { return x < 0 ? s_neg(x) : x; }
static int64_t s_relu(int64_t x) { return x < 0 ? 0 : x; }
static int64_t s_sign(int64_t x) { return (x > 0) - (x < 0); }
static uint64_t u_same(uint64_t x) { return x; }
static uint64_t u_sign(uint64_t x) { return x != 0; }
static uint64_t u_not(uint64_t x) { return ~x; }
static int64_t s_not(int64_t x) { return ~x; }

static const int_unop k_abs = {f_abs, s_abs, u_same};
static const int_unop k_neg = {f_neg, s_neg, NULL};
static const int_unop k_relu = {f_relu, s_relu, u_same};
static const int_unop k_sign = {f_sign, s_sign, u_sign};
static const int_unop k_bitnot = {NULL, s_not, u_not};

#define UN_INT(name, def)                                                                 \
    static kiln_status ref_##name(kiln_ctx *ctx, const gir_node *n,                       \
                                  const kiln_tensor *const *in, kiln_tensor *out) {       \
        return run_int_unop(ctx, n, in[0], &out[0], &def);                                \
    }

UN_INT(abs, k_abs)
UN_INT(neg, k_neg)
UN_INT(relu, k_relu)
UN_INT(sign, k_sign)
UN_INT(bitnot, k_bitnot)

static kiln_status ref_not(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    (void)ctx;
    (void)n;
    const uint8_t *x = in[0]->data;
    uint8_t *y = out[0].data;
    int64_t count = kiln_numel(in[0]);
    for (int64_t i = 0; i < count; i++) y[i] = !x[i];
    return KILN_OK;
}

/* ---- predicates: float in, bool out ---- */

static kiln_status infer_pred(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    (void)ctx;
    (void)n;
    kiln_tensor_init(&out[0], KILN_BOOL, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

static kiln_status ref_isnan(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    (void)ctx;
    (void)n;
    uint8_t *y = out[0].data;
    int64_t count = kiln_numel(in[0]);
    for (int64_t i = 0; i < count; i++) y[i] = isnan(ew_load_f64(in[0]->dtype, in[0]->data, i));
    return KILN_OK;
}

static kiln_status ref_isinf(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    (void)ctx;
    bool neg = gir_attr_int(n, "detect_negative", 1) != 0;
    bool pos = gir_attr_int(n, "detect_positive", 1) != 0;
    uint8_t *y = out[0].data;
    int64_t count = kiln_numel(in[0]);
    for (int64_t i = 0; i < count; i++) {
        double v = ew_load_f64(in[0]->dtype, in[0]->data, i);
        y[i] = isinf(v) && ((v > 0 && pos) || (v < 0 && neg));
    }
    return KILN_OK;
}

/* ---- the table ---- */

static const kiln_attr_schema k_no_attrs[] = {{NULL}};
static const kiln_attr_schema k_consumed[] = {{"consumed_inputs", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_alpha[] = {
    {"alpha", GIR_ATTR_FLOAT, false}, {"consumed_inputs", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_alpha_beta[] = {{"alpha", GIR_ATTR_FLOAT, false},
                                                {"beta", GIR_ATTR_FLOAT, false},
                                                {"consumed_inputs", GIR_ATTR_INTS, false},
                                                {NULL}};
static const kiln_attr_schema k_selu_attrs[] = {{"alpha", GIR_ATTR_FLOAT, false},
                                                {"gamma", GIR_ATTR_FLOAT, false},
                                                {"consumed_inputs", GIR_ATTR_INTS, false},
                                                {NULL}};
static const kiln_attr_schema k_shrink_attrs[] = {
    {"bias", GIR_ATTR_FLOAT, false}, {"lambd", GIR_ATTR_FLOAT, false}, {NULL}};
static const kiln_attr_schema k_gelu_attrs[] = {{"approximate", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_isinf_attrs[] = {
    {"detect_negative", GIR_ATTR_INT, false}, {"detect_positive", GIR_ATTR_INT, false}, {NULL}};

#define F KILN_DT_FLOATS
#define EW KILN_FUSE_ELEMWISE
#define SAME kiln_op_infer_same
/* A float-only op from opset v, with attribute schema at. */
#define FOP(name, v, ref, at, cmp) {name, "", v, KILN_MAX_OPSET, 1, 1, 1, 1, F, EW, at, SAME, ref, cmp}

const kiln_op_def kiln_ops_unary[] = {
    FOP("Sqrt", 1, ref_sqrt, k_consumed, cmp_sqrt),
    FOP("Exp", 1, ref_exp, k_consumed, cmp_exp),
    FOP("Log", 1, ref_log, k_consumed, cmp_log),
    FOP("Erf", 9, ref_erf, k_no_attrs, cmp_erf),
    FOP("Tanh", 1, ref_tanh, k_consumed, cmp_tanh),
    FOP("Sigmoid", 1, ref_sigmoid, k_consumed, cmp_sigmoid),
    FOP("Sin", 7, ref_sin, k_no_attrs, cmp_sin),
    FOP("Cos", 7, ref_cos, k_no_attrs, cmp_cos),
    FOP("Tan", 7, ref_tan, k_no_attrs, cmp_tan),
    FOP("Asin", 7, ref_asin, k_no_attrs, cmp_asin),
    FOP("Acos", 7, ref_acos, k_no_attrs, cmp_acos),
    FOP("Atan", 7, ref_atan, k_no_attrs, cmp_atan),
    FOP("Sinh", 9, ref_sinh, k_no_attrs, cmp_sinh),
    FOP("Cosh", 9, ref_cosh, k_no_attrs, cmp_cosh),
    FOP("Asinh", 9, ref_asinh, k_no_attrs, cmp_asinh),
    FOP("Acosh", 9, ref_acosh, k_no_attrs, cmp_acosh),
    FOP("Atanh", 9, ref_atanh, k_no_attrs, cmp_atanh),
    FOP("Reciprocal", 1, ref_reciprocal, k_consumed, cmp_reciprocal),
    FOP("Ceil", 1, ref_ceil, k_consumed, cmp_ceil),
    FOP("Floor", 1, ref_floor, k_consumed, cmp_floor),
    FOP("Round", 11, ref_round, k_no_attrs, cmp_round),
    FOP("Softplus", 1, ref_softplus, k_no_attrs, cmp_softplus),
    FOP("Softsign", 1, ref_softsign, k_no_attrs, cmp_softsign),
    FOP("Mish", 18, ref_mish, k_no_attrs, cmp_mish),
    FOP("Elu", 1, ref_elu, k_alpha, cmp_elu),
    FOP("LeakyRelu", 1, ref_leaky, k_alpha, cmp_leaky_relu),
    FOP("ThresholdedRelu", 10, ref_thresh, k_alpha, cmp_thresholded_relu),
    FOP("Swish", 24, ref_swish, k_alpha, cmp_swish),
    FOP("Selu", 1, ref_selu, k_selu_attrs, cmp_selu),
    FOP("HardSigmoid", 1, ref_hardsigmoid, k_alpha_beta, cmp_hard_sigmoid),
    FOP("HardSwish", 14, ref_hardswish, k_no_attrs, cmp_hard_swish),
    {"Celu", "", 12, KILN_MAX_OPSET, 1, 1, 1, 1, F, EW, k_alpha, infer_celu, ref_celu, cmp_celu},
    {"Gelu", "", 20, KILN_MAX_OPSET, 1, 1, 1, 1, F, EW, k_gelu_attrs, infer_gelu, ref_gelu, cmp_gelu},
    {"Shrink", "", 9, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_NUMERIC, EW, k_shrink_attrs, SAME,
     ref_shrink, cmp_shrink},
    {"Abs", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_NUMERIC, EW, k_consumed, SAME, ref_abs, cmp_abs},
    {"Neg", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F | KILN_DT_SINTS, EW, k_consumed, SAME, ref_neg, cmp_neg},
    {"Relu", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F | KILN_DT_SINTS, EW, k_consumed, SAME, ref_relu, cmp_relu},
    {"Sign", "", 9, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_NUMERIC, EW, k_no_attrs, SAME, ref_sign, cmp_sign},
    {"Not", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT(KILN_BOOL), EW, k_no_attrs, SAME, ref_not, cmp_not},
    {"BitwiseNot", "", 18, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_INTS, EW, k_no_attrs, SAME,
     ref_bitnot, cmp_bitwise_not},
    {"IsNaN", "", 9, KILN_MAX_OPSET, 1, 1, 1, 1, F, EW, k_no_attrs, infer_pred, ref_isnan, cmp_isnan},
    {"IsInf", "", 10, KILN_MAX_OPSET, 1, 1, 1, 1, F, EW, k_isinf_attrs, infer_pred, ref_isinf, cmp_isinf},
    {0},
};
