/*
** nn_util.c — helpers shared by the nn and linalg kernels: element access
** in double and attribute reading.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

kiln_status nn_alloc_f64(kiln_ctx *ctx, const gir_node *n, int64_t count, double **out) {
    if (count < 0 || (uint64_t)count > ((uint64_t)1 << 36))
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "buffer of %lld elements is too large",
                            (long long)count);
    double *p = kiln_calloc((size_t)(count ? count : 1), sizeof(double));
    if (!p) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    *out = p;
    return KILN_OK;
}

kiln_status nn_read_f64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                        const double **v) {
    if (!t) {
        *v = NULL;
        return KILN_OK;
    }
    if (t->dtype == KILN_F64 && t->data) {
        *v = t->data;
        return KILN_OK;
    }
    if (t->dtype == KILN_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "string tensors are not supported");
    int64_t count = kiln_numel(t);
    double *p;
    kiln_status s = nn_alloc_f64(ctx, n, count, &p);
    if (s) return s;
    for (int64_t i = 0; i < count; i++) p[i] = kiln_load_f64(t->dtype, t->data, i);
    *v = p;
    return KILN_OK;
}

void nn_release_f64(const kiln_tensor *t, const double *v) {
    if (t && v && v != t->data) kiln_free((void *)v);
}

kiln_status nn_out_f64(kiln_ctx *ctx, const gir_node *n, kiln_tensor *t, double **v) {
    if (t->dtype == KILN_F64 && t->data) {
        *v = t->data;
        return KILN_OK;
    }
    return nn_alloc_f64(ctx, n, kiln_numel(t), v);
}

double nn_round_to(kiln_dtype dt, double v) {
    switch (dt) {
    case KILN_F32: return (float)v;
    case KILN_F16: return kiln_f16_to_f32(kiln_f32_to_f16((float)v));
    case KILN_BF16: return kiln_bf16_to_f32(kiln_f32_to_bf16((float)v));
    default: return v;
    }
}

void nn_store_round(kiln_tensor *t, int64_t i, double v) {
    if (kiln_dtype_is_float(t->dtype)) {
        kiln_store_f64(t->dtype, t->data, i, v);
        return;
    }
    if (t->dtype == KILN_BOOL) {
        kiln_store_i64(t->dtype, t->data, i, v != 0);
        return;
    }
    double lo = 0, hi = 0;
    switch (t->dtype) {
    case KILN_I8: lo = -128, hi = 127; break;
    case KILN_U8: lo = 0, hi = 255; break;
    case KILN_I16: lo = -32768, hi = 32767; break;
    case KILN_U16: lo = 0, hi = 65535; break;
    case KILN_I32: lo = -2147483648.0, hi = 2147483647.0; break;
    case KILN_U32: lo = 0, hi = 4294967295.0; break;
    case KILN_I4: lo = -8, hi = 7; break;
    case KILN_U4: lo = 0, hi = 15; break;
    case KILN_I2: lo = -2, hi = 1; break;
    case KILN_U2: lo = 0, hi = 3; break;
    case KILN_U64: kiln_store_f64(t->dtype, t->data, i, nearbyint(v)); return;
    default: kiln_store_f64(t->dtype, t->data, i, nearbyint(v)); return;
    }
    double r = v != v ? 0 : nearbyint(v);
    r = r < lo ? lo : r > hi ? hi : r;
    kiln_store_i64(t->dtype, t->data, i, (int64_t)r);
}

void nn_out_done(kiln_tensor *t, double *v) {
    if (!v || v == t->data) return;
    int64_t count = kiln_numel(t);
    if (kiln_dtype_is_float(t->dtype))
        for (int64_t i = 0; i < count; i++) kiln_store_f64(t->dtype, t->data, i, v[i]);
    else
        for (int64_t i = 0; i < count; i++) nn_store_round(t, i, v[i]);
    kiln_free(v);
}

kiln_status nn_attr_ints(kiln_ctx *ctx, const gir_node *n, const char *name, int count,
                         int64_t dflt, int64_t *vals, bool *present) {
    const int64_t *a;
    int k = gir_attr_ints(n, name, &a);
    if (present) *present = k >= 0;
    if (k < 0) {
        for (int i = 0; i < count; i++) vals[i] = dflt;
        return KILN_OK;
    }
    if (k != count)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' has %d values, expected %d",
                            name, k, count);
    memcpy(vals, a, sizeof(int64_t) * (size_t)count);
    return KILN_OK;
}

kiln_status nn_attr_choice(kiln_ctx *ctx, const gir_node *n, const char *name, const char *dflt,
                           const char *const *choices, int *out) {
    const char *v = gir_attr_string(n, name, dflt);
    for (int i = 0; choices[i]; i++)
        if (strcmp(v, choices[i]) == 0) {
            *out = i;
            return KILN_OK;
        }
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "%s '%s' is not supported", name, v);
}

kiln_status nn_check_same_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a,
                                const kiln_tensor *b, const char *what) {
    if (!a || !b || a->dtype == b->dtype) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s has element type %s, expected %s", what,
                        kiln_dtype_name(b->dtype), kiln_dtype_name(a->dtype));
}
