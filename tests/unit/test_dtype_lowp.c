/*
** test_dtype_lowp.c — the low-precision element types: names and sets,
** float8/fp4/e8m0 decoding and rounding (exhaustive over the bit patterns,
** and against a brute-force nearest-value search), saturation, e8m0 round
** modes, sub-byte integers, generic element access and file packing.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "ir/dtype.h"

static const kiln_dtype k_f8[] = {KILN_F8E4M3FN, KILN_F8E4M3FNUZ, KILN_F8E5M2, KILN_F8E5M2FNUZ};
static const kiln_dtype k_lowp[] = {KILN_F8E4M3FN, KILN_F8E4M3FNUZ, KILN_F8E5M2, KILN_F8E5M2FNUZ, KILN_U4,
                                    KILN_I4,       KILN_F4E2M1,     KILN_F8E8M0, KILN_U2,         KILN_I2};
#define N_LOWP (int)(sizeof k_lowp / sizeof k_lowp[0])

static bool is_fnuz(kiln_dtype t) { return t == KILN_F8E4M3FNUZ || t == KILN_F8E5M2FNUZ; }

/* Codes a type has: fp4 uses the low four bits only. */
static int n_codes(kiln_dtype t) { return t == KILN_F4E2M1 ? 16 : 256; }

static bool same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && !signbit(a) == !signbit(b);
}

/* ---- names, sizes, sets ---- */

static void names_sizes_and_sets(void) {
    static const char *const names[] = {"f8e4m3fn", "f8e4m3fnuz", "f8e5m2", "f8e5m2fnuz", "u4",
                                        "i4",       "f4e2m1",     "f8e8m0", "u2",         "i2"};
    static const int onnx_numbers[] = {17, 18, 19, 20, 21, 22, 23, 24, 25, 26};
    for (int k = 0; k < N_LOWP; k++) {
        kiln_dtype t = k_lowp[k];
        CHECK((int)t == onnx_numbers[k]);
        CHECK(kiln_dtype_valid(t));
        CHECK(kiln_dtype_size(t) == 1);
        CHECK(strcmp(kiln_dtype_name(t), names[k]) == 0);
        CHECK(kiln_dtype_from_name(names[k]) == t);
        CHECK(kiln_dtype_is_lowp(t));
        /* no existing op may take them by accident */
        CHECK(!kiln_dtype_is_float(t) && !kiln_dtype_is_int(t));
        CHECK(!(KILN_DT(t) & KILN_DT_ALL));
        CHECK(kiln_dtype_is_lowp_float(t) != kiln_dtype_is_lowp_int(t) || t == KILN_F4E2M1);
    }
    CHECK(KILN_DTYPE_COUNT == 27);
    CHECK(!kiln_dtype_valid(27) && !kiln_dtype_valid(14) && !kiln_dtype_valid(15));
    CHECK(kiln_dtype_is_lowp_float(KILN_F8E8M0) && kiln_dtype_is_lowp_float(KILN_F4E2M1));
    CHECK(kiln_dtype_is_lowp_int(KILN_U2) && !kiln_dtype_is_lowp_int(KILN_F4E2M1));
    CHECK(!kiln_dtype_is_lowp(KILN_F32) && !kiln_dtype_is_lowp(KILN_U8) && !kiln_dtype_is_lowp(KILN_UNDEFINED));
    CHECK(kiln_dtype_is_signed(KILN_I4) && kiln_dtype_is_signed(KILN_I2) && kiln_dtype_is_signed(KILN_F8E5M2));
    CHECK(!kiln_dtype_is_signed(KILN_U4) && !kiln_dtype_is_signed(KILN_F8E8M0));
    CHECK(kiln_dtype_is_signed(KILN_I8) && kiln_dtype_is_signed(KILN_F32) && !kiln_dtype_is_signed(KILN_U8));
    CHECK((KILN_DT_SUBBYTE & KILN_DT_F8) == 0 && (KILN_DT_LOWP & KILN_DT_ALL) == 0);
    CHECK(KILN_DT_SUBBYTE == (KILN_DT(KILN_U4) | KILN_DT(KILN_I4) | KILN_DT(KILN_F4E2M1) | KILN_DT(KILN_U2) |
                              KILN_DT(KILN_I2)));
}

/* ---- float8 / fp4: known values ---- */

static void float8_known_values(void) {
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FN, 0x7e) == 448.0f);
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FN, 0x01) == ldexpf(1, -9));
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FN, 0x38) == 1.0f);
    CHECK(isnan(kiln_lowp_to_f32(KILN_F8E4M3FN, 0x7f)) && isnan(kiln_lowp_to_f32(KILN_F8E4M3FN, 0xff)));
    CHECK(same_float(kiln_lowp_to_f32(KILN_F8E4M3FN, 0x80), -0.0f));
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FNUZ, 0x7f) == 240.0f);
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FNUZ, 0x01) == ldexpf(1, -10));
    CHECK(isnan(kiln_lowp_to_f32(KILN_F8E4M3FNUZ, 0x80)));
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FNUZ, 0xff) == -240.0f);
    CHECK(kiln_lowp_to_f32(KILN_F8E5M2, 0x7b) == 57344.0f);
    CHECK(kiln_lowp_to_f32(KILN_F8E5M2, 0x7c) == INFINITY && kiln_lowp_to_f32(KILN_F8E5M2, 0xfc) == -INFINITY);
    CHECK(isnan(kiln_lowp_to_f32(KILN_F8E5M2, 0x7d)) && isnan(kiln_lowp_to_f32(KILN_F8E5M2, 0xfe)));
    CHECK(kiln_lowp_to_f32(KILN_F8E5M2, 0x01) == ldexpf(1, -16));
    CHECK(kiln_lowp_to_f32(KILN_F8E5M2FNUZ, 0x7f) == 57344.0f);
    CHECK(kiln_lowp_to_f32(KILN_F8E5M2FNUZ, 0x01) == ldexpf(1, -17));
    CHECK(isnan(kiln_lowp_to_f32(KILN_F8E5M2FNUZ, 0x80)));
    static const float fp4[8] = {0, 0.5f, 1, 1.5f, 2, 3, 4, 6};
    for (int b = 0; b < 8; b++) {
        CHECK(kiln_lowp_to_f32(KILN_F4E2M1, (uint8_t)b) == fp4[b]);
        CHECK(same_float(kiln_lowp_to_f32(KILN_F4E2M1, (uint8_t)(b | 8)), -fp4[b]));
        CHECK(kiln_f64_to_lowp(KILN_F4E2M1, fp4[b], true) == b);
    }
    /* the encoders give the same codes back */
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, 448, false) == 0x7e);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FNUZ, -240, false) == 0xff);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2, -57344, false) == 0xfb);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2FNUZ, 57344, false) == 0x7f);
}

/* ---- float8 / fp4: every bit pattern decodes and encodes back ---- */

static void float8_round_trip_exhaustive(void) {
    const kiln_dtype types[] = {KILN_F8E4M3FN, KILN_F8E4M3FNUZ, KILN_F8E5M2, KILN_F8E5M2FNUZ, KILN_F4E2M1};
    for (int k = 0; k < 5; k++) {
        kiln_dtype t = types[k];
        for (int b = 0; b < n_codes(t); b++) {
            float v = kiln_lowp_to_f32(t, (uint8_t)b);
            if (isnan(v)) {
                /* NaN encodes to a NaN of the type (E5M2 keeps no payload) */
                CHECK(isnan(kiln_lowp_to_f32(t, kiln_f64_to_lowp(t, v, true))));
                CHECK(isnan(kiln_lowp_to_f32(t, kiln_f64_to_lowp(t, v, false))));
                continue;
            }
            if (isinf(v)) {
                CHECK(kiln_f64_to_lowp(t, v, false) == b);
                CHECK(kiln_f64_to_lowp(t, v, true) == (b & 0x80 ? 0xfb : 0x7b));
                continue;
            }
            CHECK_MSG(kiln_f64_to_lowp(t, v, true) == b, "%s: 0x%02x -> %g -> 0x%02x", kiln_dtype_name(t), b,
                      (double)v, kiln_f64_to_lowp(t, v, true));
            CHECK(kiln_f64_to_lowp(t, v, false) == b);
            /* the generic element access agrees */
            uint8_t byte = 0;
            kiln_store_f64(t, &byte, 0, v);
            CHECK(byte == b && same_float((float)kiln_load_f64(t, &byte, 0), v));
        }
    }
    /* e8m0: every code but NaN is a power of two and round trips in every mode */
    for (int b = 0; b < 256; b++) {
        float v = kiln_lowp_to_f32(KILN_F8E8M0, (uint8_t)b);
        if (b == 0xff) {
            CHECK(isnan(v));
            continue;
        }
        CHECK(v == ldexpf(1.0f, b - 127));
        if (b == 0) continue; /* 2^-127 is a float32 subnormal: see e8m0_round_modes */
        for (int m = 0; m < 3; m++)
            for (int sat = 0; sat < 2; sat++) CHECK(kiln_f32_to_e8m0(v, sat, (kiln_round_mode)m) == b);
    }
}

/* The finite code nearest to v (ties to the even code), found by scanning
** every code: an oracle independent of the encoder's arithmetic. */
static int nearest_code(kiln_dtype t, double v) {
    int best = -1;
    double best_d = INFINITY;
    for (int b = 0; b < n_codes(t); b++) {
        float c = kiln_lowp_to_f32(t, (uint8_t)b);
        /* a value of either sign may become FNUZ's only zero */
        bool sign_ok = !signbit(c) == !signbit(v) || (c == 0 && is_fnuz(t));
        if (!isfinite(c) || !sign_ok) continue;
        double d = fabs((double)c - v);
        if (d < best_d || (d == best_d && !(b & 1) && (best & 1))) best = b, best_d = d;
    }
    return best;
}

static void float8_rounding_matches_brute_force(void) {
    const kiln_dtype types[] = {KILN_F8E4M3FN, KILN_F8E4M3FNUZ, KILN_F8E5M2, KILN_F8E5M2FNUZ, KILN_F4E2M1};
    for (int k = 0; k < 5; k++) {
        kiln_dtype t = types[k];
        double max = kiln_lowp_to_f32(t, t == KILN_F4E2M1 ? 0x7 : t == KILN_F8E4M3FN ? 0x7e
                                                            : t == KILN_F8E5M2 ? 0x7b : 0x7f);
        int bad = 0;
        /* a geometric sweep plus every midpoint and its neighbours */
        for (double v = ldexp(1, -20); v <= max && bad < 5; v *= 1.0009765625) {
            for (int s = 0; s < 2; s++) {
                double x = s ? -v : v;
                int want = nearest_code(t, x);
                if (kiln_f64_to_lowp(t, x, true) != want) {
                    bad++;
                    CHECK_MSG(false, "%s: %.17g gives 0x%02x, nearest is 0x%02x", kiln_dtype_name(t), x,
                              kiln_f64_to_lowp(t, x, true), want);
                }
            }
        }
        for (int b = 0; b + 1 < n_codes(t) / 2 && bad < 5; b++) {
            double lo = kiln_lowp_to_f32(t, (uint8_t)b), hi = kiln_lowp_to_f32(t, (uint8_t)(b + 1));
            if (!isfinite(hi)) break;
            double mid = (lo + hi) / 2;
            CHECK(kiln_f64_to_lowp(t, mid, true) == (b & 1 ? b + 1 : b));
            CHECK(kiln_f64_to_lowp(t, nextafter(mid, 0), true) == b);
            CHECK(kiln_f64_to_lowp(t, nextafter(mid, INFINITY), true) == b + 1);
        }
    }
}

/* ---- float8 / fp4: ONNX's saturation tables ---- */

static void float8_saturation(void) {
    for (int k = 0; k < 4; k++) {
        kiln_dtype t = k_f8[k];
        uint8_t max = kiln_f64_to_lowp(t, 1e30, true);
        float fmax = kiln_lowp_to_f32(t, max);
        CHECK(fmax == (t == KILN_F8E4M3FN ? 448.0f : t == KILN_F8E4M3FNUZ ? 240.0f : 57344.0f));
        CHECK(kiln_f64_to_lowp(t, INFINITY, true) == max);
        CHECK(kiln_lowp_to_f32(t, kiln_f64_to_lowp(t, -INFINITY, true)) == -fmax);
        CHECK(kiln_lowp_to_f32(t, kiln_f64_to_lowp(t, -1e30, true)) == -fmax);
        CHECK(isnan(kiln_lowp_to_f32(t, kiln_f64_to_lowp(t, NAN, true))));
        CHECK(kiln_f64_to_lowp(t, 0.0, false) == 0);
        /* negative zero and tiny negatives: no -0 in FNUZ */
        CHECK(kiln_f64_to_lowp(t, -0.0, true) == (is_fnuz(t) ? 0x00 : 0x80));
        CHECK(kiln_f64_to_lowp(t, -1e-30, false) == (is_fnuz(t) ? 0x00 : 0x80));
    }
    /* saturate=0: beyond the largest value after rounding */
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, 464, false) == 0x7e); /* a tie rounds to even 448 */
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, 465, false) == 0x7f);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, -1e6, false) == 0xff);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, INFINITY, false) == 0x7f);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, -NAN, false) == 0xff);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, 465, true) == 0x7e);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FNUZ, 247, false) == 0x7f);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FNUZ, 248, false) == 0x80);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FNUZ, -INFINITY, false) == 0x80);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FNUZ, NAN, true) == 0x80);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2, 61439, false) == 0x7b);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2, 61440, false) == 0x7c); /* the tie goes to infinity */
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2, -1e6, false) == 0xfc);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2, NAN, false) == 0x7e);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2, 1e6, true) == 0x7b);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2FNUZ, 61440, false) == 0x80);
    CHECK(kiln_f64_to_lowp(KILN_F8E5M2FNUZ, INFINITY, true) == 0x7f);
    /* conformance values: E4M3FN rounding of values near 0.48 */
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FN, kiln_f64_to_lowp(KILN_F8E4M3FN, 0.47892547f, true)) == 0.46875f);
    CHECK(kiln_lowp_to_f32(KILN_F8E4M3FN, kiln_f64_to_lowp(KILN_F8E4M3FN, 0.49968487f, true)) == 0.5f);
    CHECK(kiln_lowp_to_f32(KILN_F8E5M2, kiln_f64_to_lowp(KILN_F8E5M2, 0.81910545f, true)) == 0.875f);
    CHECK(kiln_f64_to_lowp(KILN_F8E4M3FN, 1e-7, true) == 0x00);
}

static void fp4_rounding(void) {
    static const struct {
        double v;
        uint8_t code;
    } cases[] = {{0.25, 0}, {0.26, 1}, {0.75, 2}, {1.25, 2}, {1.75, 4}, {2.5, 4},  {3.5, 6},
                 {5, 6},    {5.1, 7},  {7, 7},    {100, 7}, {INFINITY, 7}, {-INFINITY, 15},
                 {-0.1, 8}, {-0.0, 8}, {1e-9, 0}, {-3.5, 14}, {0.48, 1}, {-8, 15}, {9, 7}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int sat = 0; sat < 2; sat++)
            CHECK_MSG(kiln_f64_to_lowp(KILN_F4E2M1, cases[i].v, sat) == cases[i].code, "%g", cases[i].v);
    /* no NaN in fp4: ONNX's reference gives a zero of the opposite sign */
    CHECK(kiln_f64_to_lowp(KILN_F4E2M1, NAN, true) == 0x8);
    CHECK(kiln_f64_to_lowp(KILN_F4E2M1, -NAN, true) == 0x0);
    /* only the low four bits count */
    CHECK(kiln_lowp_to_f32(KILN_F4E2M1, 0xf7) == 6.0f);
}

/* ---- e8m0 ---- */

static void e8m0_round_modes(void) {
    const kiln_round_mode up = KILN_ROUND_UP, down = KILN_ROUND_DOWN, near = KILN_ROUND_NEAREST;
    CHECK(kiln_f32_to_e8m0(1.0f, true, up) == 127);
    CHECK(kiln_f32_to_e8m0(1.1f, true, up) == 128);
    CHECK(kiln_f32_to_e8m0(1.1f, true, down) == 127);
    CHECK(kiln_f32_to_e8m0(1.4f, true, near) == 127);
    CHECK(kiln_f32_to_e8m0(1.5f, true, near) == 128);
    CHECK(kiln_f32_to_e8m0(0.124f, true, up) == 124);
    CHECK(kiln_f32_to_e8m0(3.0f, false, down) == 128);
    /* the sign is ignored */
    CHECK(kiln_f32_to_e8m0(-2.0f, true, up) == 128);
    /* zero, and subnormals as ONNX's reference rounds them */
    CHECK(kiln_f32_to_e8m0(0.0f, true, up) == 0 && kiln_f32_to_e8m0(-0.0f, true, up) == 0);
    CHECK(kiln_f32_to_e8m0(ldexpf(1, -127), true, up) == 1);
    CHECK(kiln_f32_to_e8m0(ldexpf(1, -127), true, down) == 0);
    CHECK(kiln_f32_to_e8m0(ldexpf(1, -127), true, near) == 0);
    CHECK(kiln_f32_to_e8m0(ldexpf(1.5f, -127), true, near) == 1);
    /* special values and the top of the range */
    for (int m = 0; m < 3; m++) {
        CHECK(kiln_f32_to_e8m0(NAN, true, (kiln_round_mode)m) == 0xff);
        CHECK(kiln_f32_to_e8m0(INFINITY, true, (kiln_round_mode)m) == 0xff);
        CHECK(kiln_f32_to_e8m0(-INFINITY, false, (kiln_round_mode)m) == 0xff);
    }
    CHECK(kiln_f32_to_e8m0(3e38f, true, up) == 0xfe);
    CHECK(kiln_f32_to_e8m0(3e38f, false, up) == 0xff);
    CHECK(kiln_f32_to_e8m0(3e38f, false, down) == 0xfe);
    CHECK(kiln_f32_to_e8m0(ldexpf(1.75f, 127), true, near) == 0xfe);
    CHECK(kiln_f32_to_e8m0(ldexpf(1.75f, 127), false, near) == 0xff);
    /* the generic store is Cast's default: round up, saturate */
    uint8_t b = 0;
    kiln_store_f64(KILN_F8E8M0, &b, 0, 1.1);
    CHECK(b == 128 && kiln_load_f64(KILN_F8E8M0, &b, 0) == 2.0);
    CHECK(kiln_f64_to_lowp(KILN_F8E8M0, 0.3, true) == kiln_f32_to_e8m0(0.3f, true, up));
}

/* ---- sub-byte integers ---- */

static void subbyte_integers(void) {
    /* Cast's rules: truncate toward zero, keep the low bits */
    CHECK((int8_t)kiln_f64_to_lowp_int(KILN_I4, -9) == 7);
    CHECK((int8_t)kiln_f64_to_lowp_int(KILN_I4, 8) == -8);
    CHECK((int8_t)kiln_f64_to_lowp_int(KILN_I4, -8.5) == -8);
    CHECK((int8_t)kiln_f64_to_lowp_int(KILN_I4, 300) == -4);
    CHECK((int8_t)kiln_f64_to_lowp_int(KILN_I4, -2.5) == -2);
    CHECK(kiln_f64_to_lowp_int(KILN_U4, -1) == 15 && kiln_f64_to_lowp_int(KILN_U4, 17) == 1);
    CHECK((int8_t)kiln_f64_to_lowp_int(KILN_I2, 2) == -2 && (int8_t)kiln_f64_to_lowp_int(KILN_I2, -3) == 1);
    CHECK(kiln_f64_to_lowp_int(KILN_U2, -3) == 1 && kiln_f64_to_lowp_int(KILN_U2, 3) == 3);
    CHECK(kiln_f64_to_lowp_int(KILN_I4, NAN) == 0 && kiln_f64_to_lowp_int(KILN_I4, INFINITY) == 0);
    CHECK(kiln_f64_to_lowp_int(KILN_U2, -INFINITY) == 0 && kiln_f64_to_lowp_int(KILN_I4, 1e300) == 0);
    CHECK((int8_t)kiln_i64_to_lowp_int(KILN_I4, INT64_MIN + 7) == 7);
    CHECK(kiln_i64_to_lowp_int(KILN_U4, -2) == 14);
    CHECK(kiln_i64_to_lowp_int(KILN_F32, 3) == 0);
    /* every value of every type, through the generic access */
    const kiln_dtype ints[] = {KILN_I4, KILN_U4, KILN_I2, KILN_U2};
    for (int k = 0; k < 4; k++) {
        kiln_dtype t = ints[k];
        int bits = t == KILN_I4 || t == KILN_U4 ? 4 : 2;
        int lo = kiln_dtype_is_signed(t) ? -(1 << (bits - 1)) : 0, hi = lo + (1 << bits) - 1;
        for (int v = lo; v <= hi; v++) {
            uint8_t byte = 0xaa;
            kiln_store_i64(t, &byte, 0, v);
            CHECK(kiln_load_i64(t, &byte, 0) == v && kiln_load_f64(t, &byte, 0) == v);
            CHECK(byte == (uint8_t)(int8_t)v); /* in memory: the value, sign-extended */
            CHECK(kiln_lowp_to_f32(t, byte) == (float)v);
            kiln_store_f64(t, &byte, 0, v + 0.75 * (v < 0 ? -1 : 1));
            CHECK(kiln_load_i64(t, &byte, 0) == v);
            kiln_store_i64(t, &byte, 0, v + ((int64_t)1 << bits) * 1000);
            CHECK(kiln_load_i64(t, &byte, 0) == v);
        }
        /* a byte with stray high bits still loads as the type's value */
        uint8_t stray = (uint8_t)(0xf0 | 1);
        CHECK(kiln_load_i64(t, &stray, 0) == 1);
    }
}

/* float8 through the generic int64 access: truncation on load, rounding on store */
static void float8_generic_access(void) {
    uint8_t b = 0;
    kiln_store_i64(KILN_F8E4M3FN, &b, 0, 1000);
    CHECK(b == 0x7e && kiln_load_i64(KILN_F8E4M3FN, &b, 0) == 448);
    kiln_store_f64(KILN_F8E5M2, &b, 0, -2.6);
    CHECK(kiln_load_f64(KILN_F8E5M2, &b, 0) == -2.5 && kiln_load_i64(KILN_F8E5M2, &b, 0) == -2);
    kiln_store_f64(KILN_F8E4M3FN, &b, 0, INFINITY); /* saturates, as Cast's default */
    CHECK(b == 0x7e);
    b = 0x7f;
    CHECK(kiln_load_i64(KILN_F8E4M3FN, &b, 0) == 0); /* NaN loads as integer 0 */
    for (int k = 0; k < N_LOWP; k++) CHECK(kiln_f64_to_lowp(k_lowp[k], 0.0, true) == 0);
    CHECK(isnan(kiln_lowp_to_f32(KILN_F32, 0)) && kiln_f64_to_lowp(KILN_F32, 1.0, true) == 0);
}

/* ---- packing ---- */

static void packing_known_bytes(void) {
    CHECK(kiln_dtype_is_packed(KILN_I4) && kiln_dtype_is_packed(KILN_U4) && kiln_dtype_is_packed(KILN_F4E2M1));
    CHECK(kiln_dtype_is_packed(KILN_I2) && kiln_dtype_is_packed(KILN_U2));
    CHECK(!kiln_dtype_is_packed(KILN_F8E4M3FN) && !kiln_dtype_is_packed(KILN_F8E8M0) && !kiln_dtype_is_packed(KILN_U8));
    CHECK(kiln_packed_size(KILN_I4, 5) == 3 && kiln_packed_size(KILN_I4, 4) == 2 && kiln_packed_size(KILN_U4, 0) == 0);
    CHECK(kiln_packed_size(KILN_I2, 4) == 1 && kiln_packed_size(KILN_U2, 5) == 2 && kiln_packed_size(KILN_I2, 9) == 3);
    CHECK(kiln_packed_size(KILN_F8E5M2, 7) == 7 && kiln_packed_size(KILN_F32, 3) == 12);
    CHECK(kiln_packed_size(KILN_I4, -1) == 0 && kiln_packed_size(KILN_UNDEFINED, 4) == 0);
    CHECK(kiln_packed_size(KILN_F64, INT64_MAX) == 0); /* overflow */

    /* ONNX's test data: int4 [0, 1, 7, -4, -8] is {0x10, 0xc7, 0x08} */
    const uint8_t i4_packed[3] = {0x10, 0xc7, 0x08};
    const int8_t i4[5] = {0, 1, 7, -4, -8};
    uint8_t out[16], packed[8];
    kiln_unpack_elems(KILN_I4, i4_packed, 5, out);
    CHECK(memcmp(out, i4, 5) == 0);
    memset(packed, 0xff, sizeof packed);
    kiln_pack_elems(KILN_I4, (const uint8_t *)i4, 5, packed);
    CHECK(memcmp(packed, i4_packed, 3) == 0 && packed[3] == 0xff);
    /* int2 [0, 1, -1, -2] is 0xb4 */
    const int8_t i2[4] = {0, 1, -1, -2};
    uint8_t b = 0xb4;
    kiln_unpack_elems(KILN_I2, &b, 4, out);
    CHECK(memcmp(out, i2, 4) == 0);
    kiln_pack_elems(KILN_I2, (const uint8_t *)i2, 4, packed);
    CHECK(packed[0] == 0xb4);
    /* fp4 [0, 1, -1, 1.5, -4] is {0x20, 0x3a, 0x0e} */
    const uint8_t f4_packed[3] = {0x20, 0x3a, 0x0e};
    const float f4[5] = {0, 1, -1, 1.5f, -4};
    kiln_unpack_elems(KILN_F4E2M1, f4_packed, 5, out);
    for (int i = 0; i < 5; i++) CHECK(kiln_lowp_to_f32(KILN_F4E2M1, out[i]) == f4[i]);
    kiln_pack_elems(KILN_F4E2M1, out, 5, packed);
    CHECK(memcmp(packed, f4_packed, 3) == 0);
    /* uint4 [0, 1, 7, 10, 15] */
    const uint8_t u4[5] = {0, 1, 7, 10, 15};
    kiln_pack_elems(KILN_U4, u4, 5, packed);
    CHECK(packed[0] == 0x10 && packed[1] == 0xa7 && packed[2] == 0x0f);
    kiln_unpack_elems(KILN_U4, packed, 5, out);
    CHECK(memcmp(out, u4, 5) == 0);
    /* uint2 [0, 1, 2, 3, 3]: the last byte's pad bits are zero */
    const uint8_t u2[5] = {0, 1, 2, 3, 3};
    kiln_pack_elems(KILN_U2, u2, 5, packed);
    CHECK(packed[0] == 0xe4 && packed[1] == 0x03);
    /* types that are not packed are copied */
    const uint8_t f8[3] = {0x7e, 0x80, 0x01};
    kiln_pack_elems(KILN_F8E4M3FN, f8, 3, packed);
    kiln_unpack_elems(KILN_F8E4M3FN, packed, 3, out);
    CHECK(memcmp(out, f8, 3) == 0);
    kiln_pack_elems(KILN_I4, NULL, 0, packed); /* nothing to do */
}

static void packing_round_trips(void) {
    const kiln_dtype types[] = {KILN_I4, KILN_U4, KILN_F4E2M1, KILN_I2, KILN_U2};
    uint32_t seed = 12345;
    for (int k = 0; k < 5; k++) {
        kiln_dtype t = types[k];
        for (int64_t n = 0; n <= 17; n++) {
            uint8_t in[17], out[17], packed[17];
            for (int64_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                in[i] = t == KILN_F4E2M1 ? (uint8_t)((seed >> 16) & 15)
                                         : kiln_i64_to_lowp_int(t, (int64_t)((seed >> 16) & 0xff));
            }
            kiln_pack_elems(t, in, n, packed);
            kiln_unpack_elems(t, packed, n, out);
            CHECK_MSG(n == 0 || memcmp(in, out, (size_t)n) == 0, "%s n=%lld", kiln_dtype_name(t), (long long)n);
        }
    }
}

TEST_MAIN(T(names_sizes_and_sets), T(float8_known_values), T(float8_round_trip_exhaustive),
          T(float8_rounding_matches_brute_force), T(float8_saturation), T(fp4_rounding), T(e8m0_round_modes),
          T(subbyte_integers), T(float8_generic_access), T(packing_known_bytes), T(packing_round_trips))
