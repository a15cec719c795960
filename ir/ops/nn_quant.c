/*
** nn_quant.c — QuantizeLinear and DequantizeLinear for 8- and 16-bit
** integers: per tensor, per axis (opset 13+) and blocked (opset 21+).
** y = saturate(round_half_even(x / scale) + zero_point); x = (y - zero_point) * scale.
*/
#include <math.h>

#include "nn_internal.h"

enum { QL_TENSOR, QL_AXIS, QL_BLOCK };

typedef struct q_layout {
    int mode;
    int64_t inner, len, sdim, block; /* after the axis, along it, scale's extent along it */
} q_layout;

#define Q_INTS (KILN_DT(KILN_I8) | KILN_DT(KILN_U8) | KILN_DT(KILN_I16) | KILN_DT(KILN_U16))
/* What QuantizeLinear produces: integers (8/16-bit and sub-byte), float8, fp4. */
#define Q_TARGETS (Q_INTS | KILN_DT_INTS_LOWP | KILN_DT_F8 | KILN_DT(KILN_F4E2M1))

static kiln_status q_layout_of(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, const kiln_tensor *sc,
                               const kiln_tensor *zp, q_layout *l) {
    char a[96], b[96];
    int axis = 0;
    int64_t block = gir_attr_int(n, "block_size", 0);
    l->mode = QL_TENSOR;
    if (zp && !kiln_tensor_same_shape(zp, sc) && !(kiln_numel(zp) == 1 && kiln_numel(sc) == 1))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "zero point shape %s differs from the scale's %s",
                            kiln_shape_str(zp, a, sizeof a), kiln_shape_str(sc, b, sizeof b));
    if (kiln_numel(sc) == 1 && sc->rank <= 1 && block == 0) return KILN_OK;
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 1), x->rank, &axis);
    if (s) return s;
    l->inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
    l->len = x->dims[axis];
    l->sdim = sc->rank == x->rank ? sc->dims[axis] : l->len;
    l->block = block;
    if (block < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "block_size must not be negative");
    if (block == 0) {
        if (n->opset < 13 || sc->rank != 1 || sc->dims[0] != l->len)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                "scale of shape %s fits neither per-tensor nor per-axis %d of %s",
                                kiln_shape_str(sc, a, sizeof a), axis, kiln_shape_str(x, b, sizeof b));
        l->mode = QL_AXIS;
        return KILN_OK;
    }
    bool ok = sc->rank == x->rank;
    for (int d = 0; ok && d < x->rank; d++)
        ok = d == axis ? sc->dims[d] == (x->dims[d] + block - 1) / block : sc->dims[d] == x->dims[d];
    if (!ok)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scale of shape %s does not block %s by %lld along axis %d",
                            kiln_shape_str(sc, a, sizeof a), kiln_shape_str(x, b, sizeof b), (long long)block, axis);
    l->mode = QL_BLOCK;
    return KILN_OK;
}

/* Index into scale / zero point of element i of x. */
static int64_t q_index(const q_layout *l, int64_t i) {
    if (l->mode == QL_TENSOR) return 0;
    int64_t a = (i / l->inner) % l->len;
    if (l->mode == QL_AXIS) return a;
    int64_t outer = i / (l->inner * l->len);
    return (outer * l->sdim + a / l->block) * l->inner + i % l->inner;
}

/* ---- QuantizeLinear ---- */

static kiln_status q_out_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *zp, kiln_dtype *dt) {
    int64_t want = gir_attr_int(n, "output_dtype", 0);
    kiln_dtype t = zp ? zp->dtype : want ? (kiln_dtype)want : KILN_U8;
    if (want && zp && want != zp->dtype)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "output_dtype %lld differs from the zero point's type",
                            (long long)want);
    if (!kiln_dtype_valid((int)t) || !(KILN_DT(t) & Q_TARGETS))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "quantizing to type %d is not supported", (int)t);
    *dt = t;
    return KILN_OK;
}

kiln_status nn_infer_quantize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    q_layout l;
    kiln_dtype dt = KILN_U8;
    kiln_status s = q_out_dtype(ctx, n, NN_IN(n, in, 2), &dt);
    if (!s && !kiln_dtype_is_float(in[1]->dtype))
        s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "y_scale must be a float tensor");
    if (!s) s = q_layout_of(ctx, n, in[0], in[1], NN_IN(n, in, 2), &l);
    if (s) return s;
    kiln_tensor_init(&out[0], dt, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

/* The type numpy divides x by the scale in (or the `precision` attribute's). */
static kiln_dtype q_div_type(const gir_node *n, kiln_dtype x, kiln_dtype s) {
    int64_t p = gir_attr_int(n, "precision", 0);
    if (p && kiln_dtype_valid((int)p) && kiln_dtype_is_float((kiln_dtype)p)) return (kiln_dtype)p;
    if (x == KILN_F64 || s == KILN_F64 || kiln_dtype_is_int(x)) return KILN_F64;
    return x == s ? x : KILN_F32;
}

kiln_status nn_ref_quantize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    const kiln_tensor *x = in[0], *sc = in[1], *zp = NN_IN(n, in, 2);
    q_layout l;
    kiln_status s = q_layout_of(ctx, n, x, sc, zp, &l);
    if (s) return s;
    kiln_dtype dt = q_div_type(n, x->dtype, sc->dtype), yt = out[0].dtype;
    bool saturate = gir_attr_int(n, "saturate", 1) != 0;
    int64_t count = kiln_numel(x);
    for (int64_t i = 0; i < count; i++) {
        int64_t q = q_index(&l, i);
        double v = nn_round_to(dt, nn_round_to(dt, kiln_tensor_f64(x, i)) / nn_round_to(dt, kiln_tensor_f64(sc, q)));
        if (KILN_DT(yt) & KILN_DT_F8) {
            /* float8 has no zero point to add: the value is rounded into the format */
            ((uint8_t *)out[0].data)[i] = kiln_f64_to_lowp(yt, v, saturate);
        } else if (yt == KILN_F4E2M1) {
            ((uint8_t *)out[0].data)[i] = kiln_f64_to_lowp(yt, v + (zp ? kiln_tensor_f64(zp, q) : 0.0), true);
        } else {
            nn_store_round(&out[0], i, nearbyint(v) + (zp ? kiln_tensor_f64(zp, q) : 0.0));
        }
    }
    return KILN_OK;
}

/* ---- DequantizeLinear ---- */

kiln_status nn_infer_dequantize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    q_layout l;
    const kiln_tensor *zp = NN_IN(n, in, 2);
    int64_t want = gir_attr_int(n, "output_dtype", 0);
    kiln_dtype dt = want ? (kiln_dtype)want : in[1]->dtype;
    kiln_status s = nn_check_same_dtype(ctx, n, in[0], zp, "x_zero_point");
    if (!s && (!kiln_dtype_valid((int)dt) || !kiln_dtype_is_float(dt) || !kiln_dtype_is_float(in[1]->dtype)))
        s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "x_scale and the output must be float tensors");
    if (!s) s = q_layout_of(ctx, n, in[0], in[1], zp, &l);
    if (s) return s;
    kiln_tensor_init(&out[0], dt, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

kiln_status nn_ref_dequantize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    const kiln_tensor *x = in[0], *sc = in[1], *zp = NN_IN(n, in, 2);
    q_layout l;
    kiln_status s = q_layout_of(ctx, n, x, sc, zp, &l);
    if (s) return s;
    /* float8 / fp4 inputs carry no zero point (float8's must be zero) */
    bool lowp_float = kiln_dtype_is_lowp_float(x->dtype);
    for (int64_t i = 0; zp && lowp_float && i < kiln_numel(zp); i++)
        if (kiln_tensor_f64(zp, i) != 0 && x->dtype != KILN_F4E2M1)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "a float8 zero point must be zero");
    int64_t count = kiln_numel(x);
    for (int64_t i = 0; i < count; i++) {
        int64_t q = q_index(&l, i);
        double d = kiln_tensor_f64(x, i) - (zp && !lowp_float ? kiln_tensor_f64(zp, q) : 0.0);
        /* numpy multiplies in float32 at least, then casts to the output type */
        double v = nn_round_to(sc->dtype == KILN_F64 ? KILN_F64 : KILN_F32, d * kiln_tensor_f64(sc, q));
        kiln_store_f64(out[0].dtype, out[0].data, i, v);
    }
    return KILN_OK;
}

/* ---- DynamicQuantizeLinear: uint8 with a scale and zero point from x's range (in float32) ---- */

kiln_status nn_infer_dyn_quantize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    kiln_tensor_init(&out[0], KILN_U8, in[0]->rank, in[0]->dims);
    if (n->n_outputs > 1) kiln_tensor_init(&out[1], in[0]->dtype, 0, NULL);
    if (n->n_outputs > 2) kiln_tensor_init(&out[2], KILN_U8, 0, NULL);
    return KILN_OK;
}

kiln_status nn_ref_dyn_quantize(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t count = kiln_numel(x);
    float mx = 0, mn = 0;
    for (int64_t i = 0; i < count; i++) {
        float v = (float)kiln_tensor_f64(x, i);
        mx = v > mx ? v : mx;
        mn = v < mn ? v : mn;
    }
    float scale = (mx == mn ? 1.0f : mx - mn) / 255.0f;
    float zp0 = 0.0f - mn / scale;
    float zp = zp0 != zp0 ? 0 : nearbyintf(zp0 < 0 ? 0 : zp0 > 255 ? 255 : zp0);
    for (int64_t i = 0; i < count; i++) {
        float q = nearbyintf((float)kiln_tensor_f64(x, i) / scale) + zp;
        ((uint8_t *)out[0].data)[i] = (uint8_t)(q != q || q < 0 ? 0 : q > 255 ? 255 : q);
    }
    if (n->n_outputs > 1) kiln_store_f64(out[1].dtype, out[1].data, 0, scale);
    if (n->n_outputs > 2) ((uint8_t *)out[2].data)[0] = (uint8_t)zp;
    return KILN_OK;
}
