/*
** shape_gen.c — ops that make a tensor from attributes or a few scalars:
** Constant, ConstantOfShape, Range, EyeLike.
*/
#include <math.h>
#include <string.h>

#include "shape_ops.h"

static const char *const k_constant_attrs[] = {"value", "value_float", "value_floats", "value_int",
                                               "value_ints", "value_string", "value_strings"};
#define N_CONSTANT_ATTRS (int)(sizeof k_constant_attrs / sizeof k_constant_attrs[0])

/* Finds the one attribute that holds a Constant's value. */
static kiln_status constant_attr(kiln_ctx *ctx, const gir_node *n, const gir_attr **out) {
    if (gir_attr_find(n, "sparse_value"))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "sparse_value constants are not supported");
    const gir_attr *found = NULL;
    for (int i = 0; i < N_CONSTANT_ATTRS; i++) {
        const gir_attr *a = gir_attr_find(n, k_constant_attrs[i]);
        if (!a) continue;
        if (found)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "has both '%s' and '%s'", found->name, a->name);
        found = a;
    }
    if (!found) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "has no value attribute");
    static const gir_attr_kind kinds[N_CONSTANT_ATTRS] = {
        GIR_ATTR_TENSOR, GIR_ATTR_FLOAT, GIR_ATTR_FLOATS, GIR_ATTR_INT,
        GIR_ATTR_INTS, GIR_ATTR_STRING, GIR_ATTR_STRINGS};
    for (int i = 0; i < N_CONSTANT_ATTRS; i++)
        if (!strcmp(found->name, k_constant_attrs[i]) && found->kind != kinds[i])
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' has the wrong kind", found->name);
    if (found->kind == GIR_ATTR_TENSOR && !found->t)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'value' holds no tensor");
    *out = found;
    return KILN_OK;
}

kiln_status shp_constant_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    const gir_attr *a;
    kiln_status s = constant_attr(ctx, n, &a);
    if (s) return s;
    int64_t len = a->n;
    switch (a->kind) {
    case GIR_ATTR_TENSOR: kiln_tensor_init(out, a->t->dtype, a->t->rank, a->t->dims); break;
    case GIR_ATTR_FLOAT: kiln_tensor_init(out, KILN_F32, 0, NULL); break;
    case GIR_ATTR_FLOATS: kiln_tensor_init(out, KILN_F32, 1, &len); break;
    case GIR_ATTR_INT: kiln_tensor_init(out, KILN_I64, 0, NULL); break;
    case GIR_ATTR_INTS: kiln_tensor_init(out, KILN_I64, 1, &len); break;
    case GIR_ATTR_STRING: kiln_tensor_init(out, KILN_STRING, 0, NULL); break;
    default: kiln_tensor_init(out, KILN_STRING, 1, &len); break;
    }
    return KILN_OK;
}

static kiln_status set_string(kiln_ctx *ctx, const gir_node *n, kiln_tensor *t, int64_t i,
                              const char *v) {
    char *c = kiln_strdup(v ? v : "");
    if (!c) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    char **d = t->data;
    kiln_free(d[i]);
    d[i] = c;
    return KILN_OK;
}

kiln_status shp_constant_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    const gir_attr *a;
    kiln_status s = constant_attr(ctx, n, &a);
    if (s) return s;
    switch (a->kind) {
    case GIR_ATTR_TENSOR:
        if (kiln_numel(a->t) > 0 && !a->t->data)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'value' has no data");
        return shp_copy(ctx, n, &out[0], 0, a->t, 0, kiln_numel(a->t));
    case GIR_ATTR_FLOAT: *(float *)out[0].data = (float)a->f; break;
    case GIR_ATTR_FLOATS:
        for (int i = 0; i < a->n; i++) ((float *)out[0].data)[i] = (float)a->floats[i];
        break;
    case GIR_ATTR_INT: *(int64_t *)out[0].data = a->i; break;
    case GIR_ATTR_INTS:
        for (int i = 0; i < a->n; i++) ((int64_t *)out[0].data)[i] = a->ints[i];
        break;
    case GIR_ATTR_STRING: return set_string(ctx, n, &out[0], 0, a->s);
    default:
        for (int i = 0; i < a->n; i++) {
            s = set_string(ctx, n, &out[0], i, a->strings[i]);
            if (s) return s;
        }
        break;
    }
    return KILN_OK;
}

/* ---- ConstantOfShape ---- */

static kiln_status cos_value(kiln_ctx *ctx, const gir_node *n, const kiln_tensor **v) {
    const gir_attr *a = gir_attr_find(n, "value");
    *v = NULL;
    if (!a) return KILN_OK;
    if (a->kind != GIR_ATTR_TENSOR || !a->t)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'value' must be a tensor");
    if (kiln_numel(a->t) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'value' must hold exactly one element");
    if (a->t->dtype == KILN_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "string values are not supported");
    *v = a->t;
    return KILN_OK;
}

kiln_status shp_cos_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *v;
    int64_t dims[KILN_MAX_RANK];
    int count;
    kiln_status s = cos_value(ctx, n, &v);
    if (s) return s;
    if (in[0]->dtype != KILN_I64)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the shape must be i64, got %s",
                            kiln_dtype_name(in[0]->dtype));
    s = shp_read_ints(ctx, n, in[0], "the shape", dims, KILN_MAX_RANK, &count);
    if (s) return s;
    for (int i = 0; i < count; i++)
        if (dims[i] < 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "shape[%d] is negative (%lld)", i,
                                (long long)dims[i]);
    kiln_tensor_init(out, v ? v->dtype : KILN_F32, count, dims);
    return KILN_OK;
}

kiln_status shp_cos_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *v;
    kiln_status s = cos_value(ctx, n, &v);
    if (s || !v) return s; /* no value: zeros, as allocated */
    if (!v->data) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'value' has no data");
    int64_t total = kiln_numel(&out[0]);
    for (int64_t i = 0; i < total; i++) {
        s = shp_copy(ctx, n, &out[0], i, v, 0, 1);
        if (s) return s;
    }
    return KILN_OK;
}

/* ---- Range ---- */

static kiln_status range_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in) {
    static const char *const names[3] = {"start", "limit", "delta"};
    if (!(KILN_DT(in[0]->dtype) & KILN_DT_NUMERIC))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(in[0]->dtype));
    for (int i = 0; i < 3; i++) {
        if (in[i]->dtype != in[0]->dtype)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s is %s but start is %s", names[i],
                                kiln_dtype_name(in[i]->dtype), kiln_dtype_name(in[0]->dtype));
        if (kiln_numel(in[i]) != 1)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must be a scalar", names[i]);
    }
    return KILN_OK;
}

/* Element count of the range; integer inputs stay exact. */
static kiln_status range_count(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               int64_t *count) {
    kiln_dtype t = in[0]->dtype;
    if (kiln_dtype_is_int(t)) {
        __int128 a = kiln_tensor_i64(in[0], 0), b = kiln_tensor_i64(in[1], 0),
                 d = kiln_tensor_i64(in[2], 0);
        if (t == KILN_U64)
            return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "u64 ranges are not supported");
        if (d == 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "delta is zero");
        __int128 diff = b - a, c = diff / d + (diff % d != 0 && ((diff > 0) == (d > 0)) ? 1 : 0);
        *count = c < 0 ? 0 : c > INT64_MAX ? INT64_MAX : (int64_t)c;
        return KILN_OK;
    }
    double a = kiln_tensor_f64(in[0], 0), b = kiln_tensor_f64(in[1], 0), d = kiln_tensor_f64(in[2], 0);
    if (d == 0 || !isfinite(a) || !isfinite(b) || !isfinite(d))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "start, limit and delta must be finite, delta non-zero");
    double c = ceil((b - a) / d);
    if (c > 9.0e18) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the range is too long");
    *count = c < 0 ? 0 : (int64_t)c;
    return KILN_OK;
}

kiln_status shp_range_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    kiln_status s = range_check(ctx, n, in);
    if (s) return s;
    for (int i = 0; i < 3; i++)
        if (!in[i]->data) return KILN_ERR_DYNAMIC;
    int64_t len;
    s = range_count(ctx, n, in, &len);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, 1, &len);
    return KILN_OK;
}

kiln_status shp_range_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    kiln_dtype t = in[0]->dtype;
    int64_t len = out[0].dims[0];
    if (kiln_dtype_is_int(t)) {
        int64_t a = kiln_tensor_i64(in[0], 0), d = kiln_tensor_i64(in[2], 0);
        for (int64_t i = 0; i < len; i++)
            kiln_store_i64(t, out[0].data, i, (int64_t)((uint64_t)a + (uint64_t)i * (uint64_t)d));
        return KILN_OK;
    }
    double a = kiln_tensor_f64(in[0], 0), d = kiln_tensor_f64(in[2], 0);
    for (int64_t i = 0; i < len; i++) kiln_store_f64(t, out[0].data, i, a + (double)i * d);
    return KILN_OK;
}

/* ---- EyeLike ---- */

kiln_status shp_eyelike_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    if (in[0]->rank != 2)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be 2-D, got rank %d", in[0]->rank);
    int64_t dt = gir_attr_int(n, "dtype", in[0]->dtype);
    if (!kiln_dtype_valid((int)dt) || dt == KILN_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "dtype %lld is not supported", (long long)dt);
    kiln_tensor_init(out, (kiln_dtype)dt, 2, in[0]->dims);
    return KILN_OK;
}

kiln_status shp_eyelike_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    int64_t k = gir_attr_int(n, "k", 0), rows = out[0].dims[0], cols = out[0].dims[1];
    for (int64_t i = 0; i < rows; i++) {
        if (k > INT64_MAX - i) break;
        int64_t j = i + k;
        if (j >= 0 && j < cols) kiln_store_i64(out[0].dtype, out[0].data, i * cols + j, 1);
    }
    return KILN_OK;
}
