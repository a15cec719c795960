/*
** test_ops_elementwise.c — the unary, binary and misc elementwise ops:
** values, broadcasting, dtypes, integer wrapping and error paths.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "op_node.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/mem.h"

static bool near(double a, double b) { return fabs(a - b) <= 1e-6 + 1e-5 * fabs(b); }

/* ---- binary arithmetic ---- */

static void add_broadcasts(void) {
    tnode t;
    tn_init(&t, "Add", 14, 2, 1);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30};
    kiln_tensor ta = tn_view(KILN_F32, 2, (int64_t[]){2, 3}, a), tb = tn_view(KILN_F32, 1, (int64_t[]){3}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].rank == 2 && t.out[0].dims[0] == 2 && t.out[0].dims[1] == 3);
    float *y = t.out[0].data;
    CHECK(y[0] == 11 && y[2] == 33 && y[3] == 14 && y[5] == 36);
    tn_free(&t);
}

static void add_shape_mismatch_names_node(void) {
    tnode t;
    tn_init(&t, "Add", 14, 2, 1);
    float a[6] = {0}, b[2] = {0};
    kiln_tensor ta = tn_view(KILN_F32, 2, (int64_t[]){2, 3}, a), tb = tn_view(KILN_F32, 1, (int64_t[]){2}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE);
    CHECK(strstr(kiln_errmsg(t.ctx), "node_under_test") != NULL);
    tn_free(&t);
}

static void add_dtype_mismatch(void) {
    tnode t;
    tn_init(&t, "Mul", 14, 2, 1);
    float a[1] = {1};
    int32_t b[1] = {2};
    kiln_tensor ta = tn_view(KILN_F32, 1, (int64_t[]){1}, a), tb = tn_view(KILN_I32, 1, (int64_t[]){1}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE);
    CHECK(strstr(kiln_errmsg(t.ctx), "Mul") != NULL);
    tn_free(&t);
}

static void integers_wrap(void) {
    tnode t;
    tn_init(&t, "Add", 14, 2, 1);
    int8_t a[2] = {127, -128}, b[2] = {1, -1};
    kiln_tensor ta = tn_view(KILN_I8, 1, (int64_t[]){2}, a), tb = tn_view(KILN_I8, 1, (int64_t[]){2}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    int8_t *y = t.out[0].data;
    CHECK(y[0] == -128 && y[1] == 127);
    tn_free(&t);

    tn_init(&t, "Mul", 14, 2, 1);
    int64_t c[1] = {INT64_MAX}, d[1] = {2};
    kiln_tensor tc = tn_view(KILN_I64, 1, (int64_t[]){1}, c), td = tn_view(KILN_I64, 1, (int64_t[]){1}, d);
    const kiln_tensor *in2[2] = {&tc, &td};
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(((int64_t *)t.out[0].data)[0] == -2);
    tn_free(&t);

    tn_init(&t, "Sub", 14, 2, 1);
    uint64_t e[1] = {0}, f[1] = {1};
    kiln_tensor te = tn_view(KILN_U64, 1, (int64_t[]){1}, e), tf = tn_view(KILN_U64, 1, (int64_t[]){1}, f);
    const kiln_tensor *in3[2] = {&te, &tf};
    CHECK(tn_run(&t, in3) == KILN_OK);
    CHECK(((uint64_t *)t.out[0].data)[0] == UINT64_MAX);
    tn_free(&t);
}

static void int64_stays_exact(void) {
    tnode t;
    tn_init(&t, "Add", 14, 2, 1);
    int64_t a[1] = {(1LL << 60) + 1}, b[1] = {2};
    kiln_tensor ta = tn_view(KILN_I64, 0, NULL, a), tb = tn_view(KILN_I64, 0, NULL, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(((int64_t *)t.out[0].data)[0] == (1LL << 60) + 3);
    tn_free(&t);
}

static void div_truncates_and_rejects_zero(void) {
    tnode t;
    tn_init(&t, "Div", 14, 2, 1);
    int32_t a[5] = {-3, 3, -3, 3, INT32_MIN}, b[5] = {2, 2, -2, -2, -1};
    kiln_tensor ta = tn_view(KILN_I32, 1, (int64_t[]){5}, a), tb = tn_view(KILN_I32, 1, (int64_t[]){5}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    int32_t *y = t.out[0].data;
    CHECK(y[0] == -1 && y[1] == 1 && y[2] == 1 && y[3] == -1 && y[4] == INT32_MIN);
    tn_free(&t);

    tn_init(&t, "Div", 14, 2, 1);
    int64_t c[2] = {INT64_MIN, 1}, d[2] = {-1, 0};
    kiln_tensor tc = tn_view(KILN_I64, 1, (int64_t[]){2}, c), td = tn_view(KILN_I64, 1, (int64_t[]){2}, d);
    const kiln_tensor *in2[2] = {&tc, &td};
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(t.ctx), "division by zero") != NULL);
    CHECK(strstr(kiln_errmsg(t.ctx), "node_under_test") != NULL);
    tn_free(&t);
}

static void mod_both_conventions(void) {
    int32_t a[6] = {-4, 7, 5, 4, -7, 8}, b[6] = {2, -3, 8, -2, 3, 5};
    kiln_tensor ta = tn_view(KILN_I32, 1, (int64_t[]){6}, a), tb = tn_view(KILN_I32, 1, (int64_t[]){6}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    int32_t numpy[6] = {0, -2, 5, 0, 2, 3}, cstyle[6] = {0, 1, 5, 0, -1, 3};
    for (int fmod_attr = 0; fmod_attr <= 1; fmod_attr++) {
        tnode t;
        tn_init(&t, "Mod", 13, 2, 1);
        tn_int(&t, "fmod", fmod_attr);
        CHECK(tn_run(&t, in) == KILN_OK);
        int32_t *y = t.out[0].data;
        for (int i = 0; i < 6; i++) CHECK(y[i] == (fmod_attr ? cstyle : numpy)[i]);
        tn_free(&t);
    }
    tnode t;
    tn_init(&t, "Mod", 13, 2, 1);
    float f[1] = {1.5f};
    kiln_tensor tf = tn_view(KILN_F32, 1, (int64_t[]){1}, f);
    const kiln_tensor *in2[2] = {&tf, &tf};
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID); /* floats need fmod=1 */
    tn_free(&t);
}

static void pow_mixed_types(void) {
    tnode t;
    tn_init(&t, "Pow", 15, 2, 1);
    int32_t a[4] = {2, 3, -1, 2};
    int64_t e[4] = {10, 3, 3, -1};
    kiln_tensor ta = tn_view(KILN_I32, 1, (int64_t[]){4}, a), te = tn_view(KILN_I64, 1, (int64_t[]){4}, e);
    const kiln_tensor *in[2] = {&ta, &te};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_I32);
    int32_t *y = t.out[0].data;
    CHECK(y[0] == 1024 && y[1] == 27 && y[2] == -1 && y[3] == 0);
    tn_free(&t);

    tn_init(&t, "Pow", 15, 2, 1);
    float b[2] = {2.0f, 9.0f}, f[1] = {0.5f};
    kiln_tensor tb = tn_view(KILN_F32, 1, (int64_t[]){2}, b), tf = tn_view(KILN_F32, 0, NULL, f);
    const kiln_tensor *in2[2] = {&tb, &tf};
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(near(((float *)t.out[0].data)[1], 3.0));
    tn_free(&t);

    tn_init(&t, "Pow", 11, 2, 1); /* before opset 12 the types must agree */
    const kiln_tensor *in3[2] = {&ta, &tf};
    CHECK(tn_run(&t, in3) == KILN_ERR_SHAPE);
    tn_free(&t);
}

static void legacy_broadcast_attr(void) {
    tnode t;
    tn_init(&t, "Add", 6, 2, 1);
    tn_int(&t, "broadcast", 1);
    tn_int(&t, "axis", 0);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[2] = {100, 200};
    kiln_tensor ta = tn_view(KILN_F32, 2, (int64_t[]){2, 3}, a), tb = tn_view(KILN_F32, 1, (int64_t[]){2}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    float *y = t.out[0].data;
    CHECK(y[0] == 101 && y[2] == 103 && y[3] == 204 && y[5] == 206);
    tn_free(&t);

    tn_init(&t, "Add", 6, 2, 1); /* no broadcast attribute: shapes must match */
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE);
    tn_free(&t);
}

/* ---- comparisons and logic ---- */

static void comparisons(void) {
    float a[3] = {1, NAN, 3}, b[3] = {1, NAN, 2};
    kiln_tensor ta = tn_view(KILN_F32, 1, (int64_t[]){3}, a), tb = tn_view(KILN_F32, 1, (int64_t[]){3}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    static const char *const ops[] = {"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual"};
    static const uint8_t want[5][3] = {{1, 0, 0}, {0, 0, 0}, {0, 0, 1}, {1, 0, 0}, {1, 0, 1}};
    for (int k = 0; k < 5; k++) {
        tnode t;
        tn_init(&t, ops[k], 16, 2, 1);
        CHECK(tn_run(&t, in) == KILN_OK);
        CHECK(t.out[0].dtype == KILN_BOOL);
        uint8_t *y = t.out[0].data;
        for (int i = 0; i < 3; i++) CHECK_MSG(y[i] == want[k][i], "%s element %d", ops[k], i);
        tn_free(&t);
    }
    tnode t;
    tn_init(&t, "Less", 13, 2, 1);
    uint64_t c[1] = {UINT64_MAX - 1}, d[1] = {UINT64_MAX};
    kiln_tensor tc = tn_view(KILN_U64, 1, (int64_t[]){1}, c), td = tn_view(KILN_U64, 1, (int64_t[]){1}, d);
    const kiln_tensor *in2[2] = {&tc, &td};
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(((uint8_t *)t.out[0].data)[0] == 1);
    tn_free(&t);
}

static void equal_strings(void) {
    tnode t;
    tn_init(&t, "Equal", 19, 2, 1);
    const char *a[2] = {"kiln", "oven"}, *b[1] = {"kiln"};
    kiln_tensor ta = tn_view(KILN_STRING, 1, (int64_t[]){2}, a), tb = tn_view(KILN_STRING, 1, (int64_t[]){1}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    uint8_t *y = t.out[0].data;
    CHECK(y[0] == 1 && y[1] == 0);
    tn_free(&t);
}

static void logic_and_bits(void) {
    uint8_t a[4] = {0, 0, 1, 1}, b[4] = {0, 1, 0, 1};
    kiln_tensor ta = tn_view(KILN_BOOL, 1, (int64_t[]){4}, a), tb = tn_view(KILN_BOOL, 1, (int64_t[]){4}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    static const char *const ops[] = {"And", "Or", "Xor"};
    static const uint8_t want[3][4] = {{0, 0, 0, 1}, {0, 1, 1, 1}, {0, 1, 1, 0}};
    for (int k = 0; k < 3; k++) {
        tnode t;
        tn_init(&t, ops[k], 7, 2, 1);
        CHECK(tn_run(&t, in) == KILN_OK);
        for (int i = 0; i < 4; i++) CHECK(((uint8_t *)t.out[0].data)[i] == want[k][i]);
        tn_free(&t);
    }
    tnode t;
    tn_init(&t, "BitShift", 11, 2, 1);
    tn_string(&t, "direction", "LEFT");
    uint8_t x[3] = {1, 0x81, 1}, s[3] = {3, 1, 9};
    kiln_tensor tx = tn_view(KILN_U8, 1, (int64_t[]){3}, x), ts = tn_view(KILN_U8, 1, (int64_t[]){3}, s);
    const kiln_tensor *in2[2] = {&tx, &ts};
    CHECK(tn_run(&t, in2) == KILN_OK);
    uint8_t *y = t.out[0].data;
    CHECK(y[0] == 8 && y[1] == 2 && y[2] == 0);
    tn_free(&t);

    tn_init(&t, "BitShift", 11, 2, 1); /* the direction is required */
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    tn_free(&t);

    tn_init(&t, "BitwiseXor", 18, 2, 1);
    int16_t p[2] = {-1, 0x0f0f}, q[1] = {0x00ff};
    kiln_tensor tp = tn_view(KILN_I16, 1, (int64_t[]){2}, p), tq = tn_view(KILN_I16, 1, (int64_t[]){1}, q);
    const kiln_tensor *in3[2] = {&tp, &tq};
    CHECK(tn_run(&t, in3) == KILN_OK);
    int16_t *z = t.out[0].data;
    CHECK(z[0] == (int16_t)0xff00 && z[1] == 0x0ff0);
    tn_free(&t);
}

/* ---- variadic ---- */

static void max_min_mean_sum(void) {
    float a[2] = {1, NAN}, b[1] = {5}, c[2] = {3, 0};
    kiln_tensor ta = tn_view(KILN_F32, 1, (int64_t[]){2}, a), tb = tn_view(KILN_F32, 0, NULL, b),
                tc = tn_view(KILN_F32, 1, (int64_t[]){2}, c);
    const kiln_tensor *in[3] = {&ta, &tb, &tc};
    tnode t;
    tn_init(&t, "Max", 13, 3, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float *y = t.out[0].data;
    CHECK(y[0] == 5 && isnan(y[1]));
    tn_free(&t);

    float d[2] = {1, 2}, e[2] = {4, 8};
    kiln_tensor td = tn_view(KILN_F32, 1, (int64_t[]){2}, d), te = tn_view(KILN_F32, 1, (int64_t[]){2}, e);
    const kiln_tensor *in2[2] = {&td, &te};
    tn_init(&t, "Mean", 13, 2, 1);
    CHECK(tn_run(&t, in2) == KILN_OK);
    y = t.out[0].data;
    CHECK(y[0] == 2.5f && y[1] == 5.0f);
    tn_free(&t);

    tn_init(&t, "Sum", 13, 1, 1);
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(((float *)t.out[0].data)[1] == 2.0f);
    tn_free(&t);

    uint32_t u[2] = {7, 4000000000u}, v[2] = {9, 1};
    kiln_tensor tu = tn_view(KILN_U32, 1, (int64_t[]){2}, u), tv = tn_view(KILN_U32, 1, (int64_t[]){2}, v);
    const kiln_tensor *in3[2] = {&tu, &tv};
    tn_init(&t, "Min", 13, 2, 1);
    CHECK(tn_run(&t, in3) == KILN_OK);
    uint32_t *m = t.out[0].data;
    CHECK(m[0] == 7 && m[1] == 1);
    tn_free(&t);

    tn_init(&t, "Max", 6, 2, 1); /* before opset 8 no broadcasting */
    const kiln_tensor *in4[2] = {&ta, &tb};
    CHECK(tn_run(&t, in4) == KILN_ERR_SHAPE);
    tn_free(&t);
}

static void prelu_per_channel(void) {
    tnode t;
    tn_init(&t, "PRelu", 16, 2, 1);
    float x[4] = {-1, 2, -3, -4}, s[2] = {0.5f, 2};
    kiln_tensor tx = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, x), ts = tn_view(KILN_F32, 1, (int64_t[]){2}, s);
    const kiln_tensor *in[2] = {&tx, &ts};
    CHECK(tn_run(&t, in) == KILN_OK);
    float *y = t.out[0].data;
    CHECK(y[0] == -0.5f && y[1] == 2 && y[2] == -1.5f && y[3] == -8);
    tn_free(&t);

    tn_init(&t, "PRelu", 16, 2, 1); /* X does not grow to the slope's shape */
    const kiln_tensor *in2[2] = {&ts, &tx};
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    tn_free(&t);
}

/* ---- unary ---- */

static float run_unary_f32(const char *op, int opset, float x, const char *attr, double v) {
    tnode t;
    tn_init(&t, op, opset, 1, 1);
    if (attr) tn_float(&t, attr, v);
    kiln_tensor tx = tn_view(KILN_F32, 0, NULL, &x);
    const kiln_tensor *in[1] = {&tx};
    float y = NAN;
    if (tn_run(&t, in) == KILN_OK) y = ((float *)t.out[0].data)[0];
    tn_free(&t);
    return y;
}

static void unary_math(void) {
    CHECK(near(run_unary_f32("Sqrt", 13, 4, NULL, 0), 2));
    CHECK(near(run_unary_f32("Exp", 13, 1, NULL, 0), 2.718281828));
    CHECK(near(run_unary_f32("Sigmoid", 13, -800, NULL, 0), 0));
    CHECK(near(run_unary_f32("Sigmoid", 13, 0, NULL, 0), 0.5));
    CHECK(near(run_unary_f32("Erf", 13, 0.5f, NULL, 0), 0.5204998778));
    CHECK(near(run_unary_f32("Round", 11, 2.5f, NULL, 0), 2));
    CHECK(near(run_unary_f32("Round", 11, -1.5f, NULL, 0), -2));
    CHECK(near(run_unary_f32("Round", 11, 0.51f, NULL, 0), 1));
    CHECK(near(run_unary_f32("Softplus", 1, 100, NULL, 0), 100));
    CHECK(near(run_unary_f32("HardSwish", 14, 1, NULL, 0), 1.0 * (1.0 / 6 + 0.5)));
    CHECK(near(run_unary_f32("HardSigmoid", 6, 10, NULL, 0), 1));
    CHECK(near(run_unary_f32("LeakyRelu", 16, -2, "alpha", 0.1), -0.2));
    CHECK(near(run_unary_f32("Elu", 6, -1, NULL, 0), exp(-1.0) - 1));
    CHECK(near(run_unary_f32("Selu", 6, 1, NULL, 0), 1.0507009873554805));
    CHECK(near(run_unary_f32("ThresholdedRelu", 10, 0.5f, NULL, 0), 0));
    CHECK(near(run_unary_f32("Celu", 12, -1, "alpha", 2), 2 * (exp(-0.5) - 1)));
    CHECK(near(run_unary_f32("Gelu", 20, 1, NULL, 0), 0.8413447461));
    CHECK(isnan(run_unary_f32("Relu", 14, NAN, NULL, 0)));
    CHECK(isnan(run_unary_f32("Celu", 12, 1, "alpha", 0))); /* alpha 0 is an error */
}

static void gelu_tanh_and_bad_mode(void) {
    tnode t;
    tn_init(&t, "Gelu", 20, 1, 1);
    tn_string(&t, "approximate", "tanh");
    float x = 1;
    kiln_tensor tx = tn_view(KILN_F32, 0, NULL, &x);
    const kiln_tensor *in[1] = {&tx};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(near(((float *)t.out[0].data)[0], 0.8411919906));
    tn_free(&t);

    tn_init(&t, "Gelu", 20, 1, 1);
    tn_string(&t, "approximate", "erf");
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(t.ctx), "approximate") != NULL);
    tn_free(&t);
}

static void unary_integers(void) {
    int64_t x[4] = {INT64_MIN, -5, 0, 7};
    kiln_tensor tx = tn_view(KILN_I64, 1, (int64_t[]){4}, x);
    const kiln_tensor *in[1] = {&tx};
    static const char *const ops[] = {"Abs", "Neg", "Relu", "Sign"};
    static const int64_t want[4][4] = {
        {INT64_MIN, 5, 0, 7}, {INT64_MIN, 5, 0, -7}, {0, 0, 0, 7}, {-1, -1, 0, 1}};
    for (int k = 0; k < 4; k++) {
        tnode t;
        tn_init(&t, ops[k], 14, 1, 1);
        CHECK(tn_run(&t, in) == KILN_OK);
        for (int i = 0; i < 4; i++)
            CHECK_MSG(((int64_t *)t.out[0].data)[i] == want[k][i], "%s element %d", ops[k], i);
        tn_free(&t);
    }
    tnode t;
    tn_init(&t, "Sqrt", 13, 1, 1); /* float only: the interpreter names the type */
    CHECK(tn_run(&t, in) == KILN_ERR_UNSUPPORTED);
    tn_free(&t);

    tn_init(&t, "BitwiseNot", 18, 1, 1);
    uint16_t u[1] = {0x00ff};
    kiln_tensor tu = tn_view(KILN_U16, 1, (int64_t[]){1}, u);
    const kiln_tensor *in2[1] = {&tu};
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(((uint16_t *)t.out[0].data)[0] == 0xff00);
    tn_free(&t);
}

static void isinf_isnan(void) {
    float x[4] = {INFINITY, -INFINITY, NAN, 1};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){4}, x);
    const kiln_tensor *in[1] = {&tx};
    tnode t;
    tn_init(&t, "IsInf", 20, 1, 1);
    tn_int(&t, "detect_positive", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    uint8_t *y = t.out[0].data;
    CHECK(t.out[0].dtype == KILN_BOOL && y[0] == 0 && y[1] == 1 && y[2] == 0 && y[3] == 0);
    tn_free(&t);
    tn_init(&t, "IsNaN", 20, 1, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    y = t.out[0].data;
    CHECK(y[0] == 0 && y[2] == 1);
    tn_free(&t);
}

static void half_precision(void) {
    tnode t;
    tn_init(&t, "Add", 14, 2, 1);
    uint16_t a[1] = {kiln_f32_to_f16(1.0f)}, b[1] = {kiln_f32_to_f16(0.0009765625f)};
    kiln_tensor ta = tn_view(KILN_F16, 1, (int64_t[]){1}, a), tb = tn_view(KILN_F16, 1, (int64_t[]){1}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(kiln_f16_to_f32(((uint16_t *)t.out[0].data)[0]) == 1.0009765625f);
    tn_free(&t);
}

/* ---- misc ---- */

static void clip_forms(void) {
    float x[4] = {-2, 0.5f, 3, NAN};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){4}, x);
    const kiln_tensor *in[1] = {&tx};
    tnode t;
    tn_init(&t, "Clip", 6, 1, 1);
    tn_float(&t, "min", -1);
    tn_float(&t, "max", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float *y = t.out[0].data;
    CHECK(y[0] == -1 && y[1] == 0.5f && y[2] == 1 && isnan(y[3]));
    tn_free(&t);

    int8_t v[3] = {-100, 5, 100}, lo[1] = {10}, hi[1] = {0};
    kiln_tensor tv = tn_view(KILN_I8, 1, (int64_t[]){3}, v), tl = tn_view(KILN_I8, 0, NULL, lo),
                th = tn_view(KILN_I8, 0, NULL, hi);
    const kiln_tensor *in2[3] = {&tv, NULL, &th};
    tn_init(&t, "Clip", 13, 3, 1);
    t.n->inputs[1] = NULL;
    CHECK(tn_run(&t, in2) == KILN_OK);
    int8_t *z = t.out[0].data;
    CHECK(z[0] == -100 && z[1] == 0 && z[2] == 0);
    tn_free(&t);

    const kiln_tensor *in3[3] = {&tv, &tl, &th}; /* min > max: everything becomes max */
    tn_init(&t, "Clip", 13, 3, 1);
    CHECK(tn_run(&t, in3) == KILN_OK);
    z = t.out[0].data;
    CHECK(z[0] == 0 && z[1] == 0 && z[2] == 0);
    tn_free(&t);

    kiln_tensor bad = tn_view(KILN_I8, 1, (int64_t[]){3}, v);
    const kiln_tensor *in4[2] = {&tv, &bad};
    tn_init(&t, "Clip", 13, 2, 1);
    CHECK(tn_run(&t, in4) == KILN_ERR_SHAPE);
    CHECK(strstr(kiln_errmsg(t.ctx), "min") != NULL);
    tn_free(&t);
}

static void where_broadcasts_strings(void) {
    tnode t;
    tn_init(&t, "Where", 16, 3, 1);
    uint8_t c[2] = {1, 0};
    const char *x[1] = {"yes"}, *y[2] = {"no", "nope"};
    kiln_tensor tc = tn_view(KILN_BOOL, 1, (int64_t[]){2}, c), tx = tn_view(KILN_STRING, 0, NULL, x),
                ty = tn_view(KILN_STRING, 2, (int64_t[]){2, 1}, y);
    const kiln_tensor *in[3] = {&tc, &tx, &ty};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].rank == 2 && t.out[0].dims[0] == 2 && t.out[0].dims[1] == 2);
    char **o = t.out[0].data;
    CHECK(!strcmp(o[0], "yes") && !strcmp(o[1], "no") && !strcmp(o[2], "yes") && !strcmp(o[3], "nope"));
    tn_free(&t);
}

static void cast_conversions(void) {
    tnode t;
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_I32);
    float f[4] = {-2.7f, 2.7f, 1e9f, 0};
    kiln_tensor tf = tn_view(KILN_F32, 1, (int64_t[]){4}, f);
    const kiln_tensor *in[1] = {&tf};
    CHECK(tn_run(&t, in) == KILN_OK);
    int32_t *y = t.out[0].data;
    CHECK(t.out[0].dtype == KILN_I32 && y[0] == -2 && y[1] == 2 && y[2] == 1000000000);
    tn_free(&t);

    /* 1 + 2^-11 + 2^-40 is just above a half-way point of f16: one rounding
    ** goes up, rounding through f32 first would go down to 1. */
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_F16);
    double d[1] = {1.0 + ldexp(1, -11) + ldexp(1, -40)};
    kiln_tensor td = tn_view(KILN_F64, 1, (int64_t[]){1}, d);
    const kiln_tensor *in2[1] = {&td};
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(kiln_f16_to_f32(((uint16_t *)t.out[0].data)[0]) == 1.0009765625f);
    tn_free(&t);

    tn_init(&t, "Cast", 1, 1, 1); /* opset 1 names the type */
    tn_string(&t, "to", "BOOL");
    CHECK(tn_run(&t, in) == KILN_OK);
    uint8_t *b = t.out[0].data;
    CHECK(t.out[0].dtype == KILN_BOOL && b[0] == 1 && b[3] == 0);
    tn_free(&t);

    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_F64);
    uint64_t u[1] = {UINT64_MAX};
    kiln_tensor tu = tn_view(KILN_U64, 1, (int64_t[]){1}, u);
    const kiln_tensor *in3[1] = {&tu};
    CHECK(tn_run(&t, in3) == KILN_OK);
    CHECK(((double *)t.out[0].data)[0] == 18446744073709551616.0);
    tn_free(&t);

    tn_init(&t, "Cast", 21, 1, 1);
    tn_int(&t, "to", 27); /* FLOAT6E2M3: a type kiln does not hold */
    CHECK(tn_run(&t, in) == KILN_ERR_UNSUPPORTED);
    CHECK(strstr(kiln_errmsg(t.ctx), "FLOAT6E2M3") != NULL);
    tn_free(&t);
}

static void cast_strings(void) {
    tnode t;
    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_F32);
    const char *s[4] = {"3.5", " -inf", "NaN", "1E-5"};
    kiln_tensor ts = tn_view(KILN_STRING, 1, (int64_t[]){4}, s);
    const kiln_tensor *in[1] = {&ts};
    CHECK(tn_run(&t, in) == KILN_OK);
    float *f = t.out[0].data;
    CHECK(f[0] == 3.5f && isinf(f[1]) && f[1] < 0 && isnan(f[2]) && f[3] == 1e-5f);
    tn_free(&t);

    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_I64);
    const char *big[2] = {"9007199254740993", "100.7"};
    kiln_tensor tb = tn_view(KILN_STRING, 1, (int64_t[]){2}, big);
    const kiln_tensor *in2[1] = {&tb};
    CHECK(tn_run(&t, in2) == KILN_OK);
    int64_t *v = t.out[0].data;
    CHECK(v[0] == 9007199254740993LL && v[1] == 100);
    tn_free(&t);

    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_F64);
    const char *bad[1] = {"kiln"};
    kiln_tensor tbad = tn_view(KILN_STRING, 1, (int64_t[]){1}, bad);
    const kiln_tensor *in3[1] = {&tbad};
    CHECK(tn_run(&t, in3) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(t.ctx), "\"kiln\"") != NULL);
    tn_free(&t);

    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_STRING);
    float x[4] = {0.1f, 1e20f, -INFINITY, -3};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){4}, x);
    const kiln_tensor *in4[1] = {&tx};
    CHECK(tn_run(&t, in4) == KILN_OK);
    char **o = t.out[0].data;
    CHECK(!strcmp(o[0], "0.1") && !strcmp(o[1], "1e+20") && !strcmp(o[2], "-INF") && !strcmp(o[3], "-3"));
    tn_free(&t);

    tn_init(&t, "Cast", 13, 1, 1);
    tn_int(&t, "to", KILN_STRING);
    uint8_t b[1] = {1};
    kiln_tensor tbool = tn_view(KILN_BOOL, 1, (int64_t[]){1}, b);
    const kiln_tensor *in5[1] = {&tbool};
    CHECK(tn_run(&t, in5) == KILN_ERR_UNSUPPORTED);
    tn_free(&t);
}

static void castlike_takes_second_type(void) {
    tnode t;
    tn_init(&t, "CastLike", 15, 2, 1);
    int64_t x[2] = {3, -1};
    double like[1] = {0};
    kiln_tensor tx = tn_view(KILN_I64, 1, (int64_t[]){2}, x), tl = tn_view(KILN_F64, 1, (int64_t[]){1}, like);
    const kiln_tensor *in[2] = {&tx, &tl};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F64 && t.out[0].dims[0] == 2);
    CHECK(((double *)t.out[0].data)[1] == -1.0);
    tn_free(&t);
}

static void dropout_inference_only(void) {
    float x[3] = {1, 2, 3}, r[1] = {0.3f};
    uint8_t on[1] = {1};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){3}, x), tr = tn_view(KILN_F32, 0, NULL, r),
                tt = tn_view(KILN_BOOL, 0, NULL, on);
    const kiln_tensor *in[3] = {&tx, &tr, NULL};
    tnode t;
    tn_init(&t, "Dropout", 13, 2, 2);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(((float *)t.out[0].data)[2] == 3);
    CHECK(t.out[1].dtype == KILN_BOOL && ((uint8_t *)t.out[1].data)[1] == 1);
    tn_free(&t);

    const kiln_tensor *in2[3] = {&tx, &tr, &tt};
    tn_init(&t, "Dropout", 13, 3, 1);
    CHECK(tn_run(&t, in2) == KILN_ERR_UNSUPPORTED);
    CHECK(strstr(kiln_errmsg(t.ctx), "training") != NULL);
    tn_free(&t);

    tn_init(&t, "Dropout", 7, 1, 2); /* opset 7-9: the mask has the input's type */
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[1].dtype == KILN_F32 && ((float *)t.out[1].data)[0] == 1.0f);
    tn_free(&t);
}

static void identity_copies(void) {
    tnode t;
    tn_init(&t, "Identity", 16, 1, 1);
    const char *s[2] = {"a", "bc"};
    kiln_tensor ts = tn_view(KILN_STRING, 1, (int64_t[]){2}, s);
    const kiln_tensor *in[1] = {&ts};
    CHECK(tn_run(&t, in) == KILN_OK);
    char **o = t.out[0].data;
    CHECK(!strcmp(o[1], "bc") && o[1] != s[1]);
    tn_free(&t);
}

static void string_concat_broadcasts(void) {
    tnode t;
    tn_init(&t, "StringConcat", 20, 2, 1);
    const char *a[2] = {"cat", "dog"}, *b[1] = {"s"};
    kiln_tensor ta = tn_view(KILN_STRING, 1, (int64_t[]){2}, a), tb = tn_view(KILN_STRING, 0, NULL, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    char **o = t.out[0].data;
    CHECK(!strcmp(o[0], "cats") && !strcmp(o[1], "dogs"));
    tn_free(&t);
}

static void swiglu_needs_one_shape(void) {
    float a[2] = {1, -2}, b[2] = {0.5f, 1};
    kiln_tensor ta = tn_view(KILN_F32, 1, (int64_t[]){2}, a), tb = tn_view(KILN_F32, 1, (int64_t[]){2}, b),
                tc = tn_view(KILN_F32, 0, NULL, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    tnode t;
    tn_init(&t, "SwiGLU", 28, 2, 1);
    tn_float(&t, "alpha", 0.5);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(near(((float *)t.out[0].data)[0], 0.5 / (1 + exp(-0.5))));
    tn_free(&t);
    const kiln_tensor *in2[2] = {&ta, &tc};
    tn_init(&t, "SwiGLU", 28, 2, 1);
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    tn_free(&t);
}

static void bitcast_keeps_bits(void) {
    tnode t;
    tn_init(&t, "BitCast", 26, 1, 1);
    tn_int(&t, "to", KILN_I32);
    float f[1] = {1.0f};
    kiln_tensor tf = tn_view(KILN_F32, 1, (int64_t[]){1}, f);
    const kiln_tensor *in[1] = {&tf};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(((int32_t *)t.out[0].data)[0] == 0x3f800000);
    tn_free(&t);
    tn_init(&t, "BitCast", 26, 1, 1);
    tn_int(&t, "to", KILN_I64);
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(t.ctx), "widths differ") != NULL);
    tn_free(&t);
}

static void binarizer_ml_domain(void) {
    tnode t;
    tn_init(&t, "Binarizer", 1, 1, 1);
    t.n->domain = "ai.onnx.ml";
    tn_float(&t, "threshold", 1.0);
    double x[3] = {0.5, 1.0, 1.5};
    kiln_tensor tx = tn_view(KILN_F64, 1, (int64_t[]){3}, x);
    const kiln_tensor *in[1] = {&tx};
    CHECK(tn_run(&t, in) == KILN_OK);
    double *y = t.out[0].data;
    CHECK(y[0] == 0 && y[1] == 0 && y[2] == 1);
    tn_free(&t);
}

/* Static shape inference: values of non-constant inputs are unknown. */
static void infer_without_values(void) {
    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){4, 1}, NULL), lo = tn_view(KILN_F32, 0, NULL, NULL),
                y = tn_view(KILN_F32, 1, (int64_t[]){3}, NULL), tm = tn_view(KILN_BOOL, 0, NULL, NULL);
    const kiln_tensor *in[3] = {&x, &lo, &lo};
    kiln_tensor out[2];
    tnode t;
    tn_init(&t, "Clip", 13, 3, 1);
    CHECK(gir_bind_op(t.ctx, t.n) == KILN_OK);
    CHECK(t.n->op->infer(t.ctx, t.n, in, out) == KILN_OK);
    CHECK(out[0].rank == 2 && out[0].dims[0] == 4);
    tn_free(&t);

    const kiln_tensor *in2[3] = {&x, &lo, &tm};
    tn_init(&t, "Dropout", 13, 3, 2);
    CHECK(gir_bind_op(t.ctx, t.n) == KILN_OK);
    CHECK(t.n->op->infer(t.ctx, t.n, in2, out) == KILN_OK);
    CHECK(out[1].dtype == KILN_BOOL && out[1].dims[0] == 4);
    tn_free(&t);

    const kiln_tensor *in3[2] = {&x, &y};
    tn_init(&t, "Pow", 15, 2, 1);
    CHECK(gir_bind_op(t.ctx, t.n) == KILN_OK);
    CHECK(t.n->op->infer(t.ctx, t.n, in3, out) == KILN_OK);
    CHECK(out[0].rank == 2 && out[0].dims[0] == 4 && out[0].dims[1] == 3);
    tn_free(&t);
}

static void old_opset_forms(void) {
    float x[2] = {1, 2};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){2}, x);
    const kiln_tensor *in[1] = {&tx};
    tnode t;
    tn_init(&t, "Dropout", 6, 1, 1); /* before opset 7, is_test=0 means training */
    CHECK(tn_run(&t, in) == KILN_ERR_UNSUPPORTED);
    tn_free(&t);
    tn_init(&t, "Dropout", 6, 1, 1);
    tn_int(&t, "is_test", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    tn_free(&t);

    int32_t v[2] = {1, 2};
    kiln_tensor tv = tn_view(KILN_I32, 1, (int64_t[]){2}, v);
    const kiln_tensor *in2[1] = {&tv};
    tn_init(&t, "Clip", 11, 1, 1); /* integer Clip came with opset 12 */
    CHECK(tn_run(&t, in2) == KILN_ERR_UNSUPPORTED);
    tn_free(&t);

    tn_init(&t, "Selu", 1, 1, 1); /* opset 1 had rounder defaults */
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(((float *)t.out[0].data)[0] == (float)1.0507);
    tn_free(&t);
}

static void allocation_failures_are_clean(void) {
    uint8_t c[2] = {1, 0};
    const char *x[1] = {"yes"}, *y[1] = {"no"};
    kiln_tensor tc = tn_view(KILN_BOOL, 1, (int64_t[]){2}, c), tx = tn_view(KILN_STRING, 0, NULL, x),
                ty = tn_view(KILN_STRING, 0, NULL, y);
    const kiln_tensor *in[3] = {&tc, &tx, &ty};
    for (long k = 0; k < 8; k++) {
        tnode t;
        tn_init(&t, "Where", 16, 3, 1);
        CHECK(gir_bind_op(t.ctx, t.n) == KILN_OK);
        long live = kiln_mem_live();
        kiln_mem_fail_after(k);
        kiln_status s = gir_run_node(t.ctx, t.n, in, t.out);
        kiln_mem_fail_after(-1);
        CHECK(s == KILN_OK || s == KILN_ERR_NOMEM);
        if (s == KILN_OK) kiln_tensor_release(&t.out[0]);
        CHECK(kiln_mem_live() == live);
        tn_free(&t);
    }
}

TEST_MAIN(T(add_broadcasts), T(add_shape_mismatch_names_node), T(add_dtype_mismatch),
          T(integers_wrap), T(int64_stays_exact), T(div_truncates_and_rejects_zero),
          T(mod_both_conventions), T(pow_mixed_types), T(legacy_broadcast_attr), T(comparisons),
          T(equal_strings), T(logic_and_bits), T(max_min_mean_sum), T(prelu_per_channel),
          T(unary_math), T(gelu_tanh_and_bad_mode), T(unary_integers), T(isinf_isnan),
          T(half_precision), T(clip_forms), T(where_broadcasts_strings), T(cast_conversions),
          T(cast_strings),
          T(castlike_takes_second_type), T(dropout_inference_only), T(identity_copies),
          T(string_concat_broadcasts), T(swiglu_needs_one_shape), T(bitcast_keeps_bits),
          T(binarizer_ml_domain), T(infer_without_values), T(old_opset_forms), T(allocation_failures_are_clean))
