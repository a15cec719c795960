/*
** dtype.c — element types.
*/
#include "dtype.h"

#include <math.h>
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
bool kiln_dtype_is_signed(kiln_dtype t) { return (KILN_DT(t) & (KILN_DT_SINTS | KILN_DT_FLOATS)) != 0; }

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

double kiln_load_f64(kiln_dtype t, const void *d, int64_t i) {
    switch (t) {
    case KILN_F32: return ((const float *)d)[i];
    case KILN_F64: return ((const double *)d)[i];
    case KILN_F16: return kiln_f16_to_f32(((const uint16_t *)d)[i]);
    case KILN_BF16: return kiln_bf16_to_f32(((const uint16_t *)d)[i]);
    case KILN_U64: return (double)((const uint64_t *)d)[i];
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
    default: kiln_store_f64(t, d, i, (double)v); break;
    }
}
