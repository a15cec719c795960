/*
** dtype.c — element types.
*/
#include "dtype.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct dtype_info {
    const char *name;
    size_t size;
} dtype_info;

static const dtype_info k_dtypes[KILN_DTYPE_COUNT] = {
    [KILN_F32] = {"f32", 4},  [KILN_U8] = {"u8", 1},     [KILN_I8] = {"i8", 1},
    [KILN_U16] = {"u16", 2},  [KILN_I16] = {"i16", 2},   [KILN_I32] = {"i32", 4},
    [KILN_I64] = {"i64", 8},  [KILN_STRING] = {"str", sizeof(char *)},
    [KILN_BOOL] = {"bool", 1}, [KILN_F16] = {"f16", 2},  [KILN_F64] = {"f64", 8},
    [KILN_U32] = {"u32", 4},  [KILN_U64] = {"u64", 8},   [KILN_BF16] = {"bf16", 2},
    [KILN_F8E4M3FN] = {"f8e4m3fn", 1},     [KILN_F8E4M3FNUZ] = {"f8e4m3fnuz", 1},
    [KILN_F8E5M2] = {"f8e5m2", 1},         [KILN_F8E5M2FNUZ] = {"f8e5m2fnuz", 1},
    [KILN_U4] = {"u4", 1},   [KILN_I4] = {"i4", 1},  [KILN_F4E2M1] = {"f4e2m1", 1},
    [KILN_F8E8M0] = {"f8e8m0", 1},  [KILN_U2] = {"u2", 1},  [KILN_I2] = {"i2", 1},
};

bool kiln_dtype_valid(int t) { return t > 0 && t < KILN_DTYPE_COUNT && k_dtypes[t].name; }

size_t kiln_dtype_size(kiln_dtype t) { return kiln_dtype_valid(t) ? k_dtypes[t].size : 0; }

const char *kiln_dtype_name(kiln_dtype t) {
    return kiln_dtype_valid(t) ? k_dtypes[t].name : "undefined";
}

kiln_dtype kiln_dtype_from_name(const char *s) {
    for (int t = 1; t < KILN_DTYPE_COUNT; t++)
        if (k_dtypes[t].name && strcmp(k_dtypes[t].name, s) == 0) return (kiln_dtype)t;
    return KILN_UNDEFINED;
}

bool kiln_dtype_is_float(kiln_dtype t) { return (KILN_DT(t) & KILN_DT_FLOATS) != 0; }
bool kiln_dtype_is_int(kiln_dtype t) { return (KILN_DT(t) & KILN_DT_INTS) != 0; }
bool kiln_dtype_is_signed(kiln_dtype t) {
    uint32_t lowp = KILN_DT(KILN_I4) | KILN_DT(KILN_I2) | KILN_DT_F8 | KILN_DT(KILN_F4E2M1);
    return kiln_dtype_valid(t) && (KILN_DT(t) & (KILN_DT_SINTS | KILN_DT_FLOATS | lowp)) != 0;
}
bool kiln_dtype_is_lowp(kiln_dtype t) { return kiln_dtype_valid(t) && (KILN_DT(t) & KILN_DT_LOWP); }
bool kiln_dtype_is_lowp_float(kiln_dtype t) {
    return kiln_dtype_valid(t) && (KILN_DT(t) & KILN_DT_FLOATS_LOWP);
}
bool kiln_dtype_is_lowp_int(kiln_dtype t) { return kiln_dtype_valid(t) && (KILN_DT(t) & KILN_DT_INTS_LOWP); }

float kiln_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    float f;
    if (exp == 0) {
        f = ldexpf((float)mant, -24);
    } else if (exp == 31) {
        f = mant ? NAN : INFINITY;
    } else {
        f = ldexpf((float)(mant | 0x400), (int)exp - 25);
    }
    uint32_t bits;
    memcpy(&bits, &f, 4);
    bits |= sign;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t kiln_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, mant = x & 0x7fffff;
    if (exp == 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
    int e = (int)exp - 127 + 15;
    if (e >= 31) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        mant |= 0x800000;
        int shift = 14 - e;
        uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rem > mid || (rem == mid && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (mant >> 13);
    uint32_t rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (half & 1))) half++;
    return sign | (uint16_t)half;
}

float kiln_bf16_to_f32(uint16_t h) {
    uint32_t x = (uint32_t)h << 16;
    float f;
    memcpy(&f, &x, 4);
    return f;
}

uint16_t kiln_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000) return (uint16_t)((x >> 16) | 0x40);
    uint32_t rounding = 0x7fff + ((x >> 16) & 1);
    return (uint16_t)((x + rounding) >> 16);
}

/* ---- low-precision floats ---- */

typedef enum mf_special {
    MF_FN,   /* no infinity; NaN is S.1111.111 (E4M3FN) */
    MF_FNUZ, /* no infinity, no negative zero; NaN is 0x80 */
    MF_IEEE, /* infinities and NaNs in the top exponent (E5M2) */
    MF_NONE  /* neither (FLOAT4E2M1) */
} mf_special;

typedef struct minifloat {
    int ebits, mbits, bias;
    uint8_t max; /* bits of the largest finite value */
    mf_special special;
} minifloat;

static const minifloat *minifloat_of(kiln_dtype t) {
    static const minifloat e4m3fn = {4, 3, 7, 0x7e, MF_FN}, e4m3fnuz = {4, 3, 8, 0x7f, MF_FNUZ},
                           e5m2 = {5, 2, 15, 0x7b, MF_IEEE}, e5m2fnuz = {5, 2, 16, 0x7f, MF_FNUZ},
                           e2m1 = {2, 1, 1, 0x7, MF_NONE};
    switch (t) {
    case KILN_F8E4M3FN: return &e4m3fn;
    case KILN_F8E4M3FNUZ: return &e4m3fnuz;
    case KILN_F8E5M2: return &e5m2;
    case KILN_F8E5M2FNUZ: return &e5m2fnuz;
    case KILN_F4E2M1: return &e2m1;
    default: return NULL;
    }
}

static float mf_decode(const minifloat *f, uint8_t b) {
    unsigned sbit = 1u << (f->ebits + f->mbits), emax = (1u << f->ebits) - 1;
    b &= (uint8_t)((sbit << 1) - 1);
    bool neg = (b & sbit) != 0;
    unsigned e = (b >> f->mbits) & emax, m = b & ((1u << f->mbits) - 1);
    float nan = copysignf(NAN, neg ? -1.0f : 1.0f);
    if (f->special == MF_FNUZ && b == sbit) return NAN;
    if (f->special == MF_FN && (b & (sbit - 1)) == sbit - 1) return nan;
    if (f->special == MF_IEEE && e == emax) return m ? nan : neg ? -INFINITY : INFINITY;
    float v = e ? ldexpf((float)((1u << f->mbits) | m), (int)e - f->bias - f->mbits)
                : ldexpf((float)m, 1 - f->bias - f->mbits);
    return neg ? -v : v;
}

/* |v| rounded to nearest even on the format's grid (ignoring its range). */
static double mf_round(const minifloat *f, double a) {
    int k;
    frexp(a, &k);
    int emin = 1 - f->bias, e = k - 1 < emin ? emin : k - 1;
    double step = ldexp(1.0, e - f->mbits);
    double q = a / step, fl = floor(q), rem = q - fl;
    if (rem > 0.5 || (rem == 0.5 && fmod(fl, 2.0) != 0.0)) fl += 1.0;
    return fl * step;
}

/* The bits (without sign) of r > 0, a value on the format's grid. */
static uint8_t mf_bits(const minifloat *f, double r) {
    int k;
    frexp(r, &k);
    int emin = 1 - f->bias, e = k - 1;
    if (e < emin) return (uint8_t)ldexp(r, f->mbits - emin);
    double m = ldexp(r, f->mbits - e) - ldexp(1.0, f->mbits);
    return (uint8_t)(((unsigned)(e + f->bias) << f->mbits) | (unsigned)m);
}

static uint8_t mf_overflow(const minifloat *f, uint8_t sign) {
    switch (f->special) {
    case MF_FN: return sign | 0x7f;
    case MF_FNUZ: return 0x80;
    case MF_IEEE: return sign | (uint8_t)(((1u << f->ebits) - 1) << f->mbits);
    default: return sign | f->max;
    }
}

static uint8_t mf_encode(const minifloat *f, double v, bool saturate) {
    uint8_t sbit = (uint8_t)(1u << (f->ebits + f->mbits)), sign = signbit(v) ? sbit : 0;
    if (isnan(v)) {
        switch (f->special) {
        case MF_FN: return sign | 0x7f;
        case MF_FNUZ: return 0x80;
        case MF_IEEE: return sign | (uint8_t)(((1u << f->ebits) - 1) << f->mbits) | (uint8_t)(1u << (f->mbits - 1));
        default: return sign ^ sbit;
        }
    }
    double a = fabs(v), max = mf_decode(f, f->max);
    if (a > max && (saturate || f->special == MF_NONE)) return sign | f->max;
    if (isinf(a)) return mf_overflow(f, sign);
    double r = mf_round(f, a);
    if (r > max) return mf_overflow(f, sign);
    if (r == 0) return f->special == MF_FNUZ ? 0 : sign;
    return sign | mf_bits(f, r);
}

static float e8m0_decode(uint8_t b) { return b == 0xff ? NAN : ldexpf(1.0f, (int)b - 127); }

uint8_t kiln_f32_to_e8m0(float v, bool saturate, kiln_round_mode mode) {
    uint32_t x;
    memcpy(&x, &v, sizeof x);
    uint32_t exp = (x >> 23) & 0xff, frac = x & 0x7fffff;
    if (exp == 0xff) return 0xff;
    bool up = false;
    if (mode == KILN_ROUND_UP) up = frac != 0;
    /* the reference's guard/round/sticky rule: up from half a step, but a
    ** subnormal's exact half stays down */
    else if (mode == KILN_ROUND_NEAREST) up = (frac & 0x400000) && ((frac & 0x3fffff) || exp > 0);
    if (saturate && exp == 0xfe) up = false;
    return (uint8_t)(exp + up);
}

static int lowp_int_bits(kiln_dtype t) {
    return t == KILN_I4 || t == KILN_U4 || t == KILN_F4E2M1 ? 4 : t == KILN_I2 || t == KILN_U2 ? 2 : 0;
}

/* The low bits of a byte as the type's value: sign-extended for int4/int2. */
static int lowp_int_value(kiln_dtype t, uint8_t b) {
    int bits = lowp_int_bits(t);
    int v = b & ((1 << bits) - 1), half = 1 << (bits - 1);
    return t == KILN_I4 || t == KILN_I2 ? (v ^ half) - half : v;
}

uint8_t kiln_i64_to_lowp_int(kiln_dtype t, int64_t v) {
    if (!kiln_dtype_is_lowp_int(t)) return 0;
    return (uint8_t)lowp_int_value(t, (uint8_t)((uint64_t)v & 0xff));
}

uint8_t kiln_f64_to_lowp_int(kiln_dtype t, double v) {
    if (!(fabs(v) < 9.2233720368547758e18)) return 0; /* NaN, infinities, beyond int64 */
    return kiln_i64_to_lowp_int(t, (int64_t)v);
}

float kiln_lowp_to_f32(kiln_dtype t, uint8_t bits) {
    const minifloat *f = minifloat_of(t);
    if (f) return mf_decode(f, bits);
    if (t == KILN_F8E8M0) return e8m0_decode(bits);
    if (kiln_dtype_is_lowp_int(t)) return (float)lowp_int_value(t, bits);
    return NAN;
}

uint8_t kiln_f64_to_lowp(kiln_dtype t, double v, bool saturate) {
    const minifloat *f = minifloat_of(t);
    if (f) return mf_encode(f, v, saturate);
    if (t == KILN_F8E8M0) return kiln_f32_to_e8m0((float)v, saturate, KILN_ROUND_UP);
    return kiln_f64_to_lowp_int(t, v);
}

/* ---- packing ---- */

bool kiln_dtype_is_packed(kiln_dtype t) { return lowp_int_bits(t) != 0; }

size_t kiln_packed_size(kiln_dtype t, int64_t n) {
    if (n < 0 || !kiln_dtype_valid(t)) return 0;
    int bits = lowp_int_bits(t);
    if (bits) {
        int64_t per = 8 / bits;
        return (size_t)(n / per + (n % per != 0));
    }
    size_t es = kiln_dtype_size(t);
    return (uint64_t)n > SIZE_MAX / es ? 0 : (size_t)n * es;
}

void kiln_unpack_elems(kiln_dtype t, const uint8_t *packed, int64_t n, uint8_t *out) {
    int bits = lowp_int_bits(t);
    if (!bits) {
        size_t size = kiln_packed_size(t, n);
        if (size) memcpy(out, packed, size);
        return;
    }
    int per = 8 / bits;
    for (int64_t i = 0; i < n; i++) {
        uint8_t b = (uint8_t)(packed[i / per] >> ((i % per) * bits));
        out[i] = (uint8_t)lowp_int_value(t, b);
    }
}

void kiln_pack_elems(kiln_dtype t, const uint8_t *in, int64_t n, uint8_t *packed) {
    int bits = lowp_int_bits(t);
    size_t size = kiln_packed_size(t, n);
    if (!bits) {
        if (size) memcpy(packed, in, size);
        return;
    }
    int per = 8 / bits;
    unsigned mask = (1u << bits) - 1;
    if (size) memset(packed, 0, size);
    for (int64_t i = 0; i < n; i++)
        packed[i / per] |= (uint8_t)((in[i] & mask) << ((i % per) * bits));
}

double kiln_load_f64(kiln_dtype t, const void *d, int64_t i) {
    switch (t) {
    case KILN_F32: return ((const float *)d)[i];
    case KILN_F64: return ((const double *)d)[i];
    case KILN_F16: return kiln_f16_to_f32(((const uint16_t *)d)[i]);
    case KILN_BF16: return kiln_bf16_to_f32(((const uint16_t *)d)[i]);
    case KILN_U64: return (double)((const uint64_t *)d)[i];
    case KILN_F8E4M3FN:
    case KILN_F8E4M3FNUZ:
    case KILN_F8E5M2:
    case KILN_F8E5M2FNUZ:
    case KILN_F4E2M1:
    case KILN_F8E8M0: return kiln_lowp_to_f32(t, ((const uint8_t *)d)[i]);
    default: return (double)kiln_load_i64(t, d, i);
    }
}

void kiln_store_f64(kiln_dtype t, void *d, int64_t i, double v) {
    switch (t) {
    case KILN_F32: ((float *)d)[i] = (float)v; break;
    case KILN_F64: ((double *)d)[i] = v; break;
    case KILN_F16: ((uint16_t *)d)[i] = kiln_f32_to_f16((float)v); break;
    case KILN_BF16: ((uint16_t *)d)[i] = kiln_f32_to_bf16((float)v); break;
    case KILN_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    case KILN_U64: ((uint64_t *)d)[i] = v <= 0 || v != v ? 0 : v >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)v; break;
    case KILN_F8E4M3FN:
    case KILN_F8E4M3FNUZ:
    case KILN_F8E5M2:
    case KILN_F8E5M2FNUZ:
    case KILN_F4E2M1:
    case KILN_F8E8M0:
    case KILN_I4:
    case KILN_U4:
    case KILN_I2:
    case KILN_U2: ((uint8_t *)d)[i] = kiln_f64_to_lowp(t, v, true); break;
    default: {
        /* saturate like a C cast would be undefined: keep within int64 */
        int64_t x = v != v ? 0 : v >= 9.2233720368547758e18 ? INT64_MAX
                  : v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v;
        kiln_store_i64(t, d, i, x);
    }
    }
}

int64_t kiln_load_i64(kiln_dtype t, const void *d, int64_t i) {
    switch (t) {
    case KILN_I8: return ((const int8_t *)d)[i];
    case KILN_U8: return ((const uint8_t *)d)[i];
    case KILN_BOOL: return ((const uint8_t *)d)[i] != 0;
    case KILN_I16: return ((const int16_t *)d)[i];
    case KILN_U16: return ((const uint16_t *)d)[i];
    case KILN_I32: return ((const int32_t *)d)[i];
    case KILN_U32: return ((const uint32_t *)d)[i];
    case KILN_I64: return ((const int64_t *)d)[i];
    case KILN_U64: return (int64_t)((const uint64_t *)d)[i];
    case KILN_I4:
    case KILN_U4:
    case KILN_I2:
    case KILN_U2: return lowp_int_value(t, ((const uint8_t *)d)[i]);
    case KILN_STRING:
    case KILN_UNDEFINED: return 0; /* no numeric value; callers check dtypes first */
    default: {
        double v = kiln_load_f64(t, d, i);
        return v != v ? 0 : v >= 9.2233720368547758e18 ? INT64_MAX
             : v <= -9.2233720368547758e18 ? INT64_MIN : (int64_t)v;
    }
    }
}

void kiln_store_i64(kiln_dtype t, void *d, int64_t i, int64_t v) {
    switch (t) {
    case KILN_I8: ((int8_t *)d)[i] = (int8_t)v; break;
    case KILN_U8: ((uint8_t *)d)[i] = (uint8_t)v; break;
    case KILN_BOOL: ((uint8_t *)d)[i] = v != 0; break;
    case KILN_I16: ((int16_t *)d)[i] = (int16_t)v; break;
    case KILN_U16: ((uint16_t *)d)[i] = (uint16_t)v; break;
    case KILN_I32: ((int32_t *)d)[i] = (int32_t)v; break;
    case KILN_U32: ((uint32_t *)d)[i] = (uint32_t)v; break;
    case KILN_I64: ((int64_t *)d)[i] = v; break;
    case KILN_U64: ((uint64_t *)d)[i] = (uint64_t)v; break;
    case KILN_I4:
    case KILN_U4:
    case KILN_I2:
    case KILN_U2: ((uint8_t *)d)[i] = kiln_i64_to_lowp_int(t, v); break;
    default: kiln_store_f64(t, d, i, (double)v); break;
    }
}
