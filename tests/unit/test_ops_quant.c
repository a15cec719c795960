/*
** test_ops_quant.c — ops on the low-precision types: Cast and CastLike into
** and out of float8, fp4, e8m0 and int4/int2 (saturate, round_mode, strings),
** and QuantizeLinear, DequantizeLinear and DynamicQuantizeLinear with those
** types. Expected values are ONNX's (its conformance data and reference).
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "op_node.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/mem.h"

/* Every element of t (any numeric dtype) equals want[] (NaN matches NaN,
** and the sign of zero counts). */
static bool values_are(const kiln_tensor *t, kiln_dtype dt, const double *want, int count) {
    if (t->dtype != dt || kiln_numel(t) != count) {
        fprintf(stderr, "  got %s with %lld elements\n", kiln_dtype_name(t->dtype), (long long)kiln_numel(t));
        return false;
    }
    for (int i = 0; i < count; i++) {
        double v = kiln_load_f64(t->dtype, t->data, i);
        bool ok = isnan(want[i]) ? isnan(v) : v == want[i] && !signbit(v) == !signbit(want[i]);
        if (!ok) {
            fprintf(stderr, "  element %d: got %.9g want %.9g\n", i, v, want[i]);
            return false;
        }
    }
    return true;
}

/* A one-input Cast of x to `to`, with optional saturate (-1: absent) and round_mode. */
static bool cast_gives(const kiln_tensor *x, kiln_dtype to, int saturate, const char *round,
                       const double *want) {
    tnode t;
    tn_init(&t, "Cast", 25, 1, 1);
    tn_int(&t, "to", to);
    if (saturate >= 0) tn_int(&t, "saturate", saturate);
    if (round) tn_string(&t, "round_mode", round);
    const kiln_tensor *in[1] = {x};
    kiln_status s = tn_run_unlisted(&t, in);
    if (s) fprintf(stderr, "  %s\n", kiln_errmsg(t.ctx));
    bool ok = !s && values_are(&t.out[0], to, want, (int)kiln_numel(x));
    tn_free(&t);
    return ok;
}

/* ---- Cast into low-precision types ---- */

static void cast_float_to_float8(void) {
    float x[8] = {0.47892547f, 0.49968487f, 1e6f, NAN, INFINITY, -INFINITY, -1e-7f, -1e6f};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){8}, x);
    CHECK(cast_gives(&tx, KILN_F8E4M3FN, -1, NULL, (double[]){0.46875, 0.5, 448, NAN, 448, -448, -0.0, -448}));
    CHECK(cast_gives(&tx, KILN_F8E4M3FN, 0, NULL, (double[]){0.46875, 0.5, NAN, NAN, NAN, NAN, -0.0, NAN}));
    CHECK(cast_gives(&tx, KILN_F8E4M3FNUZ, 1, NULL, (double[]){0.46875, 0.5, 240, NAN, 240, -240, 0, -240}));
    CHECK(cast_gives(&tx, KILN_F8E5M2, 0, NULL,
                     (double[]){0.5, 0.5, INFINITY, NAN, INFINITY, -INFINITY, -0.0, -INFINITY}));
    CHECK(cast_gives(&tx, KILN_F8E5M2FNUZ, 0, NULL, (double[]){0.5, 0.5, NAN, NAN, NAN, NAN, 0, NAN}));
    CHECK(cast_gives(&tx, KILN_F4E2M1, 0, NULL, (double[]){0.5, 0.5, 6, -0.0, 6, -6, -0.0, -6}));
    /* f16 and f64 sources round once */
    uint16_t h[3] = {kiln_f32_to_f16(464.0f), kiln_f32_to_f16(-0.0f), kiln_f32_to_f16(0.8125f)};
    kiln_tensor th = tn_view(KILN_F16, 1, (int64_t[]){3}, h);
    CHECK(cast_gives(&th, KILN_F8E4M3FN, 0, NULL, (double[]){448, -0.0, 0.8125}));
    double d[2] = {0.8125000001, 0.8124999999}; /* either side of an E5M2 tie (f32 would round onto it) */
    kiln_tensor td = tn_view(KILN_F64, 1, (int64_t[]){2}, d);
    CHECK(cast_gives(&td, KILN_F8E5M2, 1, NULL, (double[]){0.875, 0.75}));
    /* integers and bools */
    int64_t i[3] = {-3, 1000, 7};
    kiln_tensor ti = tn_view(KILN_I64, 1, (int64_t[]){3}, i);
    CHECK(cast_gives(&ti, KILN_F8E4M3FN, 1, NULL, (double[]){-3, 448, 7}));
    CHECK(cast_gives(&ti, KILN_F8E4M3FN, 0, NULL, (double[]){-3, NAN, 7}));
    uint8_t b[2] = {1, 0};
    kiln_tensor tb = tn_view(KILN_BOOL, 1, (int64_t[]){2}, b);
    CHECK(cast_gives(&tb, KILN_F4E2M1, -1, NULL, (double[]){1, 0}));
}

static void cast_to_subbyte_ints(void) {
    /* the low bits are kept, as ONNX's test data shows (-9 -> 7, 8 -> -8) */
    float x[7] = {-9, -8, -2.5f, 0.9f, 7, 8, 15};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){7}, x);
    CHECK(cast_gives(&tx, KILN_I4, -1, NULL, (double[]){7, -8, -2, 0, 7, -8, -1}));
    CHECK(cast_gives(&tx, KILN_U4, -1, NULL, (double[]){7, 8, 14, 0, 7, 8, 15}));
    float y[7] = {-3, -2, -1, 0, 1, 2, 3};
    kiln_tensor ty = tn_view(KILN_F32, 1, (int64_t[]){7}, y);
    CHECK(cast_gives(&ty, KILN_I2, -1, NULL, (double[]){1, -2, -1, 0, 1, -2, -1}));
    CHECK(cast_gives(&ty, KILN_U2, -1, NULL, (double[]){1, 2, 3, 0, 1, 2, 3}));
    int32_t i[3] = {17, -1, 200};
    kiln_tensor ti = tn_view(KILN_I32, 1, (int64_t[]){3}, i);
    CHECK(cast_gives(&ti, KILN_I4, -1, NULL, (double[]){1, -1, -8}));
    uint64_t u[2] = {UINT64_MAX, 18};
    kiln_tensor tu = tn_view(KILN_U64, 1, (int64_t[]){2}, u);
    CHECK(cast_gives(&tu, KILN_U4, -1, NULL, (double[]){15, 2}));
    float bad[3] = {NAN, INFINITY, -1e30f};
    kiln_tensor tbad = tn_view(KILN_F32, 1, (int64_t[]){3}, bad);
    CHECK(cast_gives(&tbad, KILN_I4, -1, NULL, (double[]){0, 0, 0}));
}

static void cast_to_e8m0(void) {
    float x[8] = {0, 0.124f, 0.25f, 0.5f, 1.1f, 2, 4, 8};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){8}, x);
    CHECK(cast_gives(&tx, KILN_F8E8M0, 1, "up", (double[]){ldexp(1, -127), 0.125, 0.25, 0.5, 2, 2, 4, 8}));
    CHECK(cast_gives(&tx, KILN_F8E8M0, -1, NULL, (double[]){ldexp(1, -127), 0.125, 0.25, 0.5, 2, 2, 4, 8}));
    CHECK(cast_gives(&tx, KILN_F8E8M0, 1, "down", (double[]){ldexp(1, -127), 0.0625, 0.25, 0.5, 1, 2, 4, 8}));
    float y[4] = {1.4f, 1.5f, 3e38f, NAN};
    kiln_tensor ty = tn_view(KILN_F32, 1, (int64_t[]){4}, y);
    CHECK(cast_gives(&ty, KILN_F8E8M0, 1, "nearest", (double[]){1, 2, ldexp(1, 127), NAN}));
    CHECK(cast_gives(&ty, KILN_F8E8M0, 0, "up", (double[]){2, 2, NAN, NAN}));
    /* a round_mode ONNX does not define */
    tnode t;
    tn_init(&t, "Cast", 25, 1, 1);
    tn_int(&t, "to", KILN_F8E8M0);
    tn_string(&t, "round_mode", "sideways");
    const kiln_tensor *in[1] = {&tx};
    CHECK(tn_run_unlisted(&t, in) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(t.ctx), "node_under_test") && strstr(kiln_errmsg(t.ctx), "sideways"));
    tn_free(&t);
}

/* ---- Cast out of low-precision types ---- */

static void cast_from_lowp(void) {
    uint8_t f8[5] = {0x7e, 0x80, 0x7f, 0x38, 0x01};
    kiln_tensor t8 = tn_view(KILN_F8E4M3FN, 1, (int64_t[]){5}, f8);
    CHECK(cast_gives(&t8, KILN_F32, -1, NULL, (double[]){448, -0.0, NAN, 1, ldexp(1, -9)}));
    CHECK(cast_gives(&t8, KILN_F16, -1, NULL, (double[]){448, -0.0, NAN, 1, ldexp(1, -9)}));
    CHECK(cast_gives(&t8, KILN_I32, -1, NULL, (double[]){448, 0, 0, 1, 0}));
    CHECK(cast_gives(&t8, KILN_BOOL, -1, NULL, (double[]){1, 0, 1, 1, 1}));
    /* float8 to float8: exact values stay, others round */
    CHECK(cast_gives(&t8, KILN_F8E5M2, 1, NULL, (double[]){448, -0.0, NAN, 1, ldexp(1, -9)}));
    CHECK(cast_gives(&t8, KILN_F8E4M3FNUZ, 0, NULL, (double[]){NAN, 0, NAN, 1, ldexp(1, -9)}));
    uint8_t e5[3] = {0x7c, 0xfc, 0x7b};
    kiln_tensor t5 = tn_view(KILN_F8E5M2, 1, (int64_t[]){3}, e5);
    CHECK(cast_gives(&t5, KILN_F32, -1, NULL, (double[]){INFINITY, -INFINITY, 57344}));
    CHECK(cast_gives(&t5, KILN_BF16, -1, NULL, (double[]){INFINITY, -INFINITY, 57344}));
    uint8_t e8[3] = {0, 127, 0xff};
    kiln_tensor te = tn_view(KILN_F8E8M0, 1, (int64_t[]){3}, e8);
    CHECK(cast_gives(&te, KILN_F32, -1, NULL, (double[]){ldexp(1, -127), 1, NAN}));
    CHECK(cast_gives(&te, KILN_F16, -1, NULL, (double[]){0, 1, NAN}));
    uint8_t f4[4] = {0x7, 0xf, 0x3, 0x8};
    kiln_tensor t4 = tn_view(KILN_F4E2M1, 1, (int64_t[]){4}, f4);
    CHECK(cast_gives(&t4, KILN_F32, -1, NULL, (double[]){6, -6, 1.5, -0.0}));
    CHECK(cast_gives(&t4, KILN_I8, -1, NULL, (double[]){6, -6, 1, 0}));
    int8_t i4[4] = {7, -8, -1, 0};
    kiln_tensor ti4 = tn_view(KILN_I4, 1, (int64_t[]){4}, i4);
    CHECK(cast_gives(&ti4, KILN_I8, -1, NULL, (double[]){7, -8, -1, 0}));
    CHECK(cast_gives(&ti4, KILN_F16, -1, NULL, (double[]){7, -8, -1, 0}));
    CHECK(cast_gives(&ti4, KILN_U4, -1, NULL, (double[]){7, 8, 15, 0}));
    CHECK(cast_gives(&ti4, KILN_U64, -1, NULL, (double[]){7, 18446744073709551608.0, 18446744073709551615.0, 0}));
    uint8_t u2[4] = {0, 1, 2, 3};
    kiln_tensor tu2 = tn_view(KILN_U2, 1, (int64_t[]){4}, u2);
    CHECK(cast_gives(&tu2, KILN_U8, -1, NULL, (double[]){0, 1, 2, 3}));
    CHECK(cast_gives(&tu2, KILN_I2, -1, NULL, (double[]){0, 1, -2, -1}));
    CHECK(cast_gives(&tu2, KILN_F8E8M0, -1, NULL, (double[]){ldexp(1, -127), 1, 2, 4}));
}

static void castlike_lowp(void) {
    float x[3] = {1e6f, 0.3f, -2.9f};
    uint8_t like = 0;
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){3}, x);
    const kiln_dtype targets[3] = {KILN_F8E5M2, KILN_I4, KILN_F4E2M1};
    const double want[3][2][3] = {{{57344, 0.3125, -3}, {INFINITY, 0.3125, -3}},
                                  {{0, 0, -2}, {0, 0, -2}},
                                  {{6, 0.5, -3}, {6, 0.5, -3}}};
    for (int k = 0; k < 3; k++)
        for (int sat = 0; sat < 2; sat++) {
            kiln_tensor tl = tn_view(targets[k], 1, (int64_t[]){0}, &like);
            tnode t;
            tn_init(&t, "CastLike", 25, 2, 1);
            if (!sat) tn_int(&t, "saturate", 0);
            const kiln_tensor *in[2] = {&tx, &tl};
            CHECK(tn_run_unlisted(&t, in) == KILN_OK);
            /* 1e6 into int4: low bits of 1000000 (= 0 mod 16) */
            CHECK(values_are(&t.out[0], targets[k], want[k][!sat], 3));
            tn_free(&t);
        }
}

static void cast_strings_lowp(void) {
    const char *s[4] = {"0.3", "1e9", "-NaN", "-2"};
    kiln_tensor ts = tn_view(KILN_STRING, 1, (int64_t[]){4}, s);
    CHECK(cast_gives(&ts, KILN_F8E4M3FN, 1, NULL, (double[]){0.3125, 448, NAN, -2}));
    CHECK(cast_gives(&ts, KILN_F8E4M3FN, 0, NULL, (double[]){0.3125, NAN, NAN, -2}));
    const char *si[3] = {"9", "-3", "2.7"};
    kiln_tensor tsi = tn_view(KILN_STRING, 1, (int64_t[]){3}, si);
    CHECK(cast_gives(&tsi, KILN_I4, -1, NULL, (double[]){-7, -3, 2}));

    uint8_t f8[3] = {0x2e, 0xfb, 0x7c};
    kiln_tensor t8 = tn_view(KILN_F8E5M2, 1, (int64_t[]){3}, f8);
    tnode t;
    tn_init(&t, "Cast", 25, 1, 1);
    tn_int(&t, "to", KILN_STRING);
    const kiln_tensor *in[1] = {&t8};
    CHECK(tn_run_unlisted(&t, in) == KILN_OK);
    char **out = t.out[0].data;
    CHECK(t.out[0].dtype == KILN_STRING && strcmp(out[0], "0.09375") == 0 && strcmp(out[1], "-57344") == 0 &&
          strcmp(out[2], "INF") == 0);
    tn_free(&t);
    int8_t i2[2] = {-2, 1};
    kiln_tensor ti2 = tn_view(KILN_I2, 1, (int64_t[]){2}, i2);
    tn_init(&t, "Cast", 25, 1, 1);
    tn_int(&t, "to", KILN_STRING);
    const kiln_tensor *in2[1] = {&ti2};
    CHECK(tn_run_unlisted(&t, in2) == KILN_OK);
    out = t.out[0].data;
    CHECK(strcmp(out[0], "-2") == 0 && strcmp(out[1], "1") == 0);
    tn_free(&t);
}

static void cast_unsupported_types(void) {
    float x[1] = {1};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){1}, x);
    const kiln_tensor *in[1] = {&tx};
    const int64_t types[3] = {27, 28, 14};
    const char *const names[3] = {"FLOAT6E2M3", "FLOAT6E3M2", "COMPLEX64"};
    for (int k = 0; k < 3; k++) {
        tnode t;
        tn_init(&t, "Cast", 25, 1, 1);
        tn_int(&t, "to", types[k]);
        CHECK(tn_run_unlisted(&t, in) == KILN_ERR_UNSUPPORTED);
        CHECK(strstr(kiln_errmsg(t.ctx), names[k]) != NULL);
        tn_free(&t);
    }
    tnode t;
    tn_init(&t, "Cast", 5, 1, 1);
    tn_string(&t, "to", "FLOAT8E5M2"); /* the opset-1..5 string form */
    CHECK(tn_run_unlisted(&t, in) == KILN_OK && t.out[0].dtype == KILN_F8E5M2);
    tn_free(&t);
}

/* ---- QuantizeLinear / DequantizeLinear / DynamicQuantizeLinear ---- */

/* QuantizeLinear of x[3,4] per axis 0 with scales {2,3,4} and a zero point
** (or output_dtype when zp is NULL). */
static bool quantize_gives(const float *x, const kiln_tensor *zp, kiln_dtype out_dt, int saturate,
                           const double *want) {
    float sc[3] = {2, 3, 4};
    kiln_tensor tx = tn_view(KILN_F32, 2, (int64_t[]){3, 4}, x), ts = tn_view(KILN_F32, 1, (int64_t[]){3}, sc);
    const kiln_tensor *in[3] = {&tx, &ts, zp};
    tnode t;
    tn_init(&t, "QuantizeLinear", 25, zp ? 3 : 2, 1);
    tn_int(&t, "axis", 0);
    if (!zp) tn_int(&t, "output_dtype", out_dt);
    if (saturate >= 0) tn_int(&t, "saturate", saturate);
    kiln_status s = tn_run_unlisted(&t, in);
    if (s) fprintf(stderr, "  %s\n", kiln_errmsg(t.ctx));
    bool ok = !s && values_are(&t.out[0], out_dt, want, 12);
    tn_free(&t);
    return ok;
}

static void quantize_lowp(void) {
    /* ONNX's conformance data */
    const float x[12] = {0, 2.5f, 4.8f, 8.6f, -30, -20, 6, 9, 12, 15, 16, 40};
    int8_t zp4[3] = {1, 1, 1};
    kiln_tensor tz4 = tn_view(KILN_I4, 1, (int64_t[]){3}, zp4);
    CHECK(quantize_gives(x, &tz4, KILN_I4, -1, (double[]){1, 2, 3, 5, -8, -6, 3, 4, 4, 5, 5, 7}));
    kiln_tensor tzu4 = tn_view(KILN_U4, 1, (int64_t[]){3}, zp4);
    CHECK(quantize_gives(x, &tzu4, KILN_U4, -1, (double[]){1, 2, 3, 5, 0, 0, 3, 4, 4, 5, 5, 11}));
    const float x2[12] = {0, 2.5f, 4.8f, 8.6f, -4, -3, 1, 2, -0.0f, -2.5f, -4.8f, -8.6f};
    int8_t zp0[3] = {0, 0, 0};
    kiln_tensor tz2 = tn_view(KILN_I2, 1, (int64_t[]){3}, zp0);
    CHECK(quantize_gives(x2, &tz2, KILN_I2, -1, (double[]){0, 1, 1, 1, -1, -1, 0, 1, 0, -1, -1, -2}));
    CHECK(quantize_gives(x2, NULL, KILN_U2, -1, (double[]){0, 1, 2, 3, 0, 0, 0, 1, 0, 0, 0, 0}));
    const float x3[12] = {0, 2.5f, 4.8f, 8.6f, -30, -20, 6, 9, -0.0f, -2.5f, -4.8f, -8.6f};
    kiln_tensor tzf4 = tn_view(KILN_F4E2M1, 1, (int64_t[]){3}, zp0);
    CHECK(quantize_gives(x3, &tzf4, KILN_F4E2M1, -1, (double[]){0, 1, 2, 4, -6, -6, 2, 3, 0, -0.5, -1, -2}));
    /* float8: saturate picks between the largest value and NaN/infinity */
    const float x4[12] = {0, 1, 2, 1e5f, 200, -1e5f, 0.75f, 3, -0.0f, 4, 8, 1e9f};
    kiln_tensor tz8 = tn_view(KILN_F8E4M3FN, 1, (int64_t[]){3}, zp0);
    CHECK(quantize_gives(x4, &tz8, KILN_F8E4M3FN, -1, (double[]){0, 0.5, 1, 448, 64, -448, 0.25, 1, -0.0, 1, 2, 448}));
    CHECK(quantize_gives(x4, &tz8, KILN_F8E4M3FN, 0, (double[]){0, 0.5, 1, NAN, 64, NAN, 0.25, 1, -0.0, 1, 2, NAN}));
    CHECK(quantize_gives(x4, NULL, KILN_F8E5M2, 0,
                         (double[]){0, 0.5, 1, 49152, 64, -32768, 0.25, 1, -0.0, 1, 2, INFINITY}));
}

static bool dequantize_gives(const kiln_tensor *x, const kiln_tensor *zp, const double *want) {
    float sc = 2;
    kiln_tensor ts = tn_view(KILN_F32, 0, NULL, &sc);
    const kiln_tensor *in[3] = {x, &ts, zp};
    tnode t;
    tn_init(&t, "DequantizeLinear", 25, zp ? 3 : 2, 1);
    tn_int(&t, "axis", 0);
    kiln_status s = tn_run_unlisted(&t, in);
    if (s) fprintf(stderr, "  %s\n", kiln_errmsg(t.ctx));
    bool ok = !s && values_are(&t.out[0], KILN_F32, want, (int)kiln_numel(x));
    tn_free(&t);
    return ok;
}

static void dequantize_lowp(void) {
    int8_t i4[5] = {0, 1, 7, -4, -8}, zp1 = 1;
    kiln_tensor tx = tn_view(KILN_I4, 1, (int64_t[]){5}, i4), tz = tn_view(KILN_I4, 1, (int64_t[]){1}, &zp1);
    CHECK(dequantize_gives(&tx, &tz, (double[]){-2, 0, 12, -10, -18}));
    uint8_t u4[5] = {0, 1, 7, 10, 15};
    kiln_tensor tu = tn_view(KILN_U4, 1, (int64_t[]){5}, u4), tzu = tn_view(KILN_U4, 1, (int64_t[]){1}, &zp1);
    CHECK(dequantize_gives(&tu, &tzu, (double[]){-2, 0, 12, 18, 28}));
    int8_t i2[4] = {0, 1, -1, -2};
    kiln_tensor t2 = tn_view(KILN_I2, 1, (int64_t[]){4}, i2), tz2 = tn_view(KILN_I2, 1, (int64_t[]){1}, &zp1);
    CHECK(dequantize_gives(&t2, &tz2, (double[]){-2, 0, -4, -6}));
    uint8_t e4[5] = {0x00, 0x30, 0x38, 0x7e, 0xed}; /* 0, 0.5, 1, 448, -104 */
    kiln_tensor t8 = tn_view(KILN_F8E4M3FN, 1, (int64_t[]){5}, e4);
    CHECK(dequantize_gives(&t8, NULL, (double[]){0, 1, 2, 896, -208}));
    uint8_t zero8 = 0;
    kiln_tensor tz8 = tn_view(KILN_F8E4M3FN, 1, (int64_t[]){1}, &zero8);
    CHECK(dequantize_gives(&t8, &tz8, (double[]){0, 1, 2, 896, -208}));
    uint8_t e5[5] = {0x00, 0x38, 0x3c, 0x7a, 0xd6}; /* 0, 0.5, 1, 49152, -96 */
    kiln_tensor t5 = tn_view(KILN_F8E5M2, 1, (int64_t[]){5}, e5);
    CHECK(dequantize_gives(&t5, NULL, (double[]){0, 1, 2, 98304, -192}));
    uint8_t f4[5] = {0x0, 0x2, 0xa, 0x3, 0xe}; /* 0, 1, -1, 1.5, -4 */
    kiln_tensor t4 = tn_view(KILN_F4E2M1, 1, (int64_t[]){5}, f4);
    CHECK(dequantize_gives(&t4, NULL, (double[]){0, 2, -2, 3, -8}));
}

static void dynamic_quantize(void) {
    float x[6] = {0, 2, -3, -2.5f, 1.34f, 0.5f};
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){6}, x);
    const kiln_tensor *in[1] = {&tx};
    tnode t;
    tn_init(&t, "DynamicQuantizeLinear", 11, 1, 3);
    CHECK(tn_run_unlisted(&t, in) == KILN_OK);
    /* ONNX's test_dynamicquantizelinear: scale 5/255, zero point 153 */
    CHECK(values_are(&t.out[0], KILN_U8, (double[]){153, 255, 0, 26, 221, 179}, 6));
    CHECK(t.out[1].dtype == KILN_F32 && ((float *)t.out[1].data)[0] == 5.0f / 255.0f);
    CHECK(values_are(&t.out[2], KILN_U8, (double[]){153}, 1));
    tn_free(&t);
}

TEST_MAIN(T(cast_float_to_float8), T(cast_to_subbyte_ints), T(cast_to_e8m0), T(cast_from_lowp), T(castlike_lowp),
          T(cast_strings_lowp), T(cast_unsupported_types), T(quantize_lowp), T(dequantize_lowp),
          T(dynamic_quantize))
