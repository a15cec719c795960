/*
** ew_cast.c — the kernels of Cast and CastLike (their rows are in
** ops_misc.c): every conversion among the numeric types (the low-precision
** ones included) and bool, and between strings and numbers.
**
** Numbers convert with one rounding (integers stay exact on 64-bit paths,
** floats truncate toward zero into integers, anything nonzero is true).
** Into float8 the `saturate` attribute (default 1) chooses between clamping
** to the largest finite value and NaN/infinity for values out of range;
** into FLOAT8E8M0 `round_mode` ("up", "down", "nearest") picks the power of
** two. Sub-byte integers keep the low bits, as ONNX's reference does (float
** 8.0 into int4 gives -8).
** Strings read as ONNX describes: decimal or scientific notation, and the
** case-insensitive literals "INF", "+INF", "-INF" and "NaN"; a string that
** is no number is an error. Numbers print as integers in decimal and floats
** in the fewest significant digits that read back to the same value, with
** "INF", "-INF" and "NaN" for the special values.
*/
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ew_ops.h"

/* ONNX's TensorProto.DataType names, for `to` given as a string (opset < 6)
** and for naming types kiln cannot hold. */
static const char *const k_onnx_types[] = {
    "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING",
    "BOOL", "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16",
    "FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4",
    "FLOAT4E2M1", "FLOAT8E8M0", "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2"};
#define N_ONNX_TYPES (int64_t)(sizeof k_onnx_types / sizeof k_onnx_types[0])

const char *ew_onnx_type_name(int64_t t) {
    return t >= 0 && t < N_ONNX_TYPES ? k_onnx_types[t] : "unknown";
}

static kiln_status cast_target(kiln_ctx *ctx, const gir_node *n, kiln_dtype *out) {
    const gir_attr *a = gir_attr_find(n, "to");
    if (!a || (a->kind != GIR_ATTR_INT && a->kind != GIR_ATTR_STRING))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'to' is missing");
    int64_t t = -1;
    if (a->kind == GIR_ATTR_INT) t = a->i;
    else
        for (int64_t i = 0; i < N_ONNX_TYPES; i++)
            if (strcmp(a->s, k_onnx_types[i]) == 0) t = i;
    if (t < 0 && a->kind == GIR_ATTR_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "unknown type '%s' in attribute 'to'", a->s);
    if (t <= 0 || !kiln_dtype_valid((int)t))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "cast to %s (%lld) is not supported",
                            ew_onnx_type_name(t), (long long)t);
    *out = (kiln_dtype)t;
    return KILN_OK;
}

/* ONNX leaves bool <-> string unspecified, so kiln does not guess. */
static kiln_status check_cast(kiln_ctx *ctx, const gir_node *n, kiln_dtype from, kiln_dtype to) {
    if ((from == KILN_STRING && to == KILN_BOOL) || (from == KILN_BOOL && to == KILN_STRING))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "cast from %s to %s is not supported",
                            kiln_dtype_name(from), kiln_dtype_name(to));
    return KILN_OK;
}

/* How values out of a float8 type's range and e8m0's rounding go. */
typedef struct cast_opts {
    bool saturate;
    kiln_round_mode round;
} cast_opts;

static kiln_status cast_options(kiln_ctx *ctx, const gir_node *n, cast_opts *o) {
    const char *mode = gir_attr_string(n, "round_mode", "up");
    o->saturate = gir_attr_int(n, "saturate", 1) != 0;
    if (strcmp(mode, "up") == 0) o->round = KILN_ROUND_UP;
    else if (strcmp(mode, "down") == 0) o->round = KILN_ROUND_DOWN;
    else if (strcmp(mode, "nearest") == 0) o->round = KILN_ROUND_NEAREST;
    else
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "round_mode '%.32s' is none of \"up\", \"down\", \"nearest\"", mode);
    return KILN_OK;
}

kiln_status ew_infer_cast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    kiln_dtype to = KILN_UNDEFINED;
    cast_opts o;
    kiln_status s = cast_target(ctx, n, &to);
    if (!s) s = cast_options(ctx, n, &o);
    if (!s) s = check_cast(ctx, n, in[0]->dtype, to);
    if (s) return s;
    kiln_tensor_init(&out[0], to, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

kiln_status ew_infer_castlike(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    cast_opts o;
    kiln_status s = cast_options(ctx, n, &o);
    if (!s) s = check_cast(ctx, n, in[0]->dtype, in[1]->dtype);
    if (s) return s;
    kiln_tensor_init(&out[0], in[1]->dtype, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

/* ---- numbers ---- */

/* double -> float rounding to odd: a later rounding to f16 or bf16 (far
** fewer mantissa bits) is then correctly rounded, as if done in one step. */
static float f64_to_f32_odd(double d) {
    float f = (float)d;
    if ((double)f == d || !isfinite(f)) return f;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if (!(bits & 1)) bits += fabs((double)f) > fabs(d) ? (uint32_t)-1 : 1u;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static bool is_half_or_single(kiln_dtype t) {
    return t == KILN_F32 || t == KILN_F16 || t == KILN_BF16;
}

static void store_float(kiln_dtype t, void *d, int64_t i, float f) {
    if (t == KILN_F16) ((uint16_t *)d)[i] = kiln_f32_to_f16(f);
    else if (t == KILN_BF16) ((uint16_t *)d)[i] = kiln_f32_to_bf16(f);
    else ((float *)d)[i] = f;
}

/* A double into any numeric type with a single rounding. */
static void store_double(kiln_dtype t, void *d, int64_t i, double v) {
    if (is_half_or_single(t)) store_float(t, d, i, f64_to_f32_odd(v));
    else ew_store_f64(t, d, i, v);
}

/* The domain a source element is read in; low-precision types join the
** float or the signed one (uint4/uint2 values fit int64 too). */
static ew_kind cast_kind(kiln_dtype t) {
    if (kiln_dtype_is_lowp_float(t)) return EW_FLOAT;
    if (kiln_dtype_is_lowp_int(t)) return EW_SINT;
    return ew_kind_of(t);
}

/* A value (already exact in double, or rounded once on the way) into a
** float8, fp4 or e8m0 element. e8m0 goes through float32 as ONNX does. */
static uint8_t encode_lowp_float(kiln_dtype t, double v, const cast_opts *o) {
    if (t == KILN_F8E8M0) return kiln_f32_to_e8m0((float)v, o->saturate, o->round);
    return kiln_f64_to_lowp(t, v, o->saturate);
}

static void cast_to_lowp(const kiln_tensor *x, int64_t i, kiln_tensor *y, const cast_opts *o) {
    kiln_dtype ty = y->dtype;
    uint8_t *d = y->data;
    ew_kind kx = cast_kind(x->dtype);
    if (kx == EW_FLOAT) {
        double v = ew_load_f64(x->dtype, x->data, i);
        d[i] = kiln_dtype_is_lowp_int(ty) ? kiln_f64_to_lowp_int(ty, v) : encode_lowp_float(ty, v, o);
    } else if (kx == EW_UINT) {
        uint64_t v = ew_load_u64(x->dtype, x->data, i);
        d[i] = kiln_dtype_is_lowp_int(ty) ? kiln_i64_to_lowp_int(ty, (int64_t)v)
                                          : encode_lowp_float(ty, (double)v, o);
    } else {
        int64_t v = kiln_load_i64(x->dtype, x->data, i);
        d[i] = kiln_dtype_is_lowp_int(ty) ? kiln_i64_to_lowp_int(ty, v) : encode_lowp_float(ty, (double)v, o);
    }
}

static void cast_number(const kiln_tensor *x, int64_t i, kiln_tensor *y, const cast_opts *o) {
    kiln_dtype ty = y->dtype;
    ew_kind kx = cast_kind(x->dtype);
    if (kiln_dtype_is_lowp(ty)) {
        cast_to_lowp(x, i, y, o);
    } else if (kx == EW_FLOAT) {
        store_double(ty, y->data, i, ew_load_f64(x->dtype, x->data, i));
    } else if (kx == EW_UINT) {
        uint64_t v = ew_load_u64(x->dtype, x->data, i);
        if (is_half_or_single(ty)) store_float(ty, y->data, i, (float)v);
        else if (ty == KILN_F64) ((double *)y->data)[i] = (double)v;
        else ew_store_u64(ty, y->data, i, v);
    } else {
        int64_t v = kiln_load_i64(x->dtype, x->data, i);
        if (is_half_or_single(ty)) store_float(ty, y->data, i, (float)v);
        else if (ty == KILN_F64) ((double *)y->data)[i] = (double)v;
        else kiln_store_i64(ty, y->data, i, v);
    }
}

/* ---- strings to numbers ---- */

static bool only_space(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') s++;
    return *s == '\0';
}

/* An integer literal read exactly, when the whole string is one. */
static bool read_integer(const char *s, kiln_dtype t, void *d, int64_t i) {
    char *end;
    errno = 0;
    if (ew_kind_of(t) == EW_UINT && !strchr(s, '-')) {
        unsigned long long u = strtoull(s, &end, 10);
        if (end == s || errno || !only_space(end)) return false;
        ew_store_u64(t, d, i, (uint64_t)u);
        return true;
    }
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || !only_space(end)) return false;
    kiln_store_i64(t, d, i, (int64_t)v);
    return true;
}

static kiln_status read_number(kiln_ctx *ctx, const gir_node *n, const char *s, kiln_tensor *y,
                               int64_t i, const cast_opts *o) {
    kiln_dtype t = y->dtype;
    if ((kiln_dtype_is_int(t) || kiln_dtype_is_lowp_int(t)) && read_integer(s, t, y->data, i))
        return KILN_OK;
    char *end;
    if (kiln_dtype_is_lowp(t)) {
        double v = strtod(s, &end);
        if (end != s && only_space(end)) {
            uint8_t *d = y->data;
            d[i] = kiln_dtype_is_lowp_int(t) ? kiln_f64_to_lowp_int(t, v) : encode_lowp_float(t, v, o);
            return KILN_OK;
        }
    } else if (t == KILN_F32) {
        float f = strtof(s, &end);
        if (end != s && only_space(end)) {
            ((float *)y->data)[i] = f;
            return KILN_OK;
        }
    } else {
        double v = strtod(s, &end);
        if (end != s && only_space(end)) {
            store_double(t, y->data, i, v);
            return KILN_OK;
        }
    }
    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "cannot read \"%.64s\" as a number", s);
}

/* ---- numbers to strings ---- */

/* Whether text reads back as exactly v in the source type t. */
static bool reads_back(const char *text, kiln_dtype t, double v) {
    double r = strtod(text, NULL);
    if (t == KILN_F64) return r == v;
    float f = t == KILN_F32 ? strtof(text, NULL) : f64_to_f32_odd(r);
    if (t == KILN_F16) return kiln_f16_to_f32(kiln_f32_to_f16(f)) == (float)v;
    if (t == KILN_BF16) return kiln_bf16_to_f32(kiln_f32_to_bf16(f)) == (float)v;
    return f == (float)v;
}

static void format_float(kiln_dtype t, double v, char *buf, size_t size) {
    if (isnan(v)) {
        snprintf(buf, size, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, size, v > 0 ? "INF" : "-INF");
        return;
    }
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (reads_back(buf, t, v)) return;
    }
}

static kiln_status write_number(kiln_ctx *ctx, const kiln_tensor *x, int64_t i, kiln_tensor *y) {
    char buf[64];
    ew_kind k = cast_kind(x->dtype);
    if (k == EW_FLOAT)
        format_float(x->dtype, ew_load_f64(x->dtype, x->data, i), buf, sizeof buf);
    else if (k == EW_UINT)
        snprintf(buf, sizeof buf, "%llu", (unsigned long long)ew_load_u64(x->dtype, x->data, i));
    else
        snprintf(buf, sizeof buf, "%lld", (long long)kiln_load_i64(x->dtype, x->data, i));
    char *c = kiln_strdup(buf);
    if (!c) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory writing a string");
    char **d = y->data;
    kiln_free(d[i]);
    d[i] = c;
    return KILN_OK;
}

kiln_status ew_ref_cast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    kiln_tensor *y = &out[0];
    int64_t count = kiln_numel(x);
    cast_opts o;
    kiln_status s = cast_options(ctx, n, &o);
    for (int64_t i = 0; i < count && !s; i++) {
        if (x->dtype == KILN_STRING && y->dtype == KILN_STRING) {
            s = ew_copy_elem(ctx, x, i, y, i);
        } else if (x->dtype == KILN_STRING) {
            const char *str = ((char *const *)x->data)[i];
            s = read_number(ctx, n, str ? str : "", y, i, &o);
        } else if (y->dtype == KILN_STRING) {
            s = write_number(ctx, x, i, y);
        } else {
            cast_number(x, i, y, &o);
        }
    }
    return s;
}
