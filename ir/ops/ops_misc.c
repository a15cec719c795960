/*
** ops_misc.c — the misc elementwise family: Cast and CastLike (kernels in
** ew_cast.c), BitCast, Clip, Where, Identity, (inference-mode) Dropout and
** the ai.onnx.ml Binarizer.
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "ew_ops.h"

/* ---- BitCast: the same bits seen as another type of the same width ---- */

static kiln_status infer_bitcast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    const gir_attr *a = gir_attr_find(n, "to");
    if (!a || a->kind != GIR_ATTR_INT)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'to' is missing");
    kiln_dtype from = in[0]->dtype;
    if (a->i <= 0 || !kiln_dtype_valid((int)a->i) || a->i == KILN_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "bitcast to %s (%lld) is not supported",
                            ew_onnx_type_name(a->i), (long long)a->i);
    kiln_dtype to = (kiln_dtype)a->i;
    if (kiln_dtype_is_packed(to)) /* held one per byte in memory, but 4 or 2 bits wide in ONNX */
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "bitcast to the sub-byte type %s is not supported",
                            kiln_dtype_name(to));
    if (kiln_dtype_size(from) != kiln_dtype_size(to))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "cannot bitcast %s to %s: widths differ",
                            kiln_dtype_name(from), kiln_dtype_name(to));
    kiln_tensor_init(&out[0], to, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

/* Tensors are held little-endian on every host kiln supports, as ONNX
** specifies for BitCast. Bools stay 0 or 1: any nonzero byte is true. */
static kiln_status ref_bitcast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    (void)ctx;
    (void)n;
    size_t nb = kiln_nbytes(in[0]);
    if (nb) memcpy(out[0].data, in[0]->data, nb);
    if (out[0].dtype == KILN_BOOL) {
        uint8_t *b = out[0].data;
        for (size_t i = 0; i < nb; i++) b[i] = b[i] != 0;
    }
    return KILN_OK;
}

/* ---- Binarizer (ai.onnx.ml): 1 above the threshold, else 0 ---- */

static kiln_status ref_binarizer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    (void)ctx;
    double threshold = gir_attr_float(n, "threshold", 0.0);
    const kiln_tensor *x = in[0];
    int64_t count = kiln_numel(x);
    for (int64_t i = 0; i < count; i++) {
        double v = ew_load_f64(x->dtype, x->data, i);
        ew_store_f64(out[0].dtype, out[0].data, i, v > threshold ? 1.0 : 0.0);
    }
    return KILN_OK;
}

/* ---- Clip: bounds are attributes before opset 11, optional inputs after ---- */

typedef struct clip_bounds {
    bool has_lo, has_hi;
    double lo, hi;     /* float inputs */
    int64_t ilo, ihi;  /* integer inputs, as their bits */
} clip_bounds;

static kiln_status clip_bound(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              int slot, const char *attr, bool *has, double *v, int64_t *iv) {
    if (n->opset < 11) return ew_attr_or_input(ctx, n, attr, NULL, v, has);
    const kiln_tensor *t = ew_in(n, in, slot);
    *has = false;
    if (!t) return KILN_OK;
    if (t->dtype != in[0]->dtype)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s is %s, expected %s like the input", attr,
                            kiln_dtype_name(t->dtype), kiln_dtype_name(in[0]->dtype));
    kiln_status s;
    if (kiln_dtype_is_int(t->dtype)) {
        s = ew_scalar_i64(ctx, n, t, attr, iv);
    } else {
        if (kiln_numel(t) != 1) {
            char b[128];
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must hold one value, got %s", attr,
                                kiln_shape_str(t, b, sizeof b));
        }
        if (!t->data) return KILN_ERR_DYNAMIC;
        *v = ew_load_f64(t->dtype, t->data, 0);
        s = KILN_OK;
    }
    *has = !s;
    return s;
}

static kiln_status clip_bounds_of(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  clip_bounds *b) {
    memset(b, 0, sizeof *b);
    kiln_status s = clip_bound(ctx, n, in, 1, "min", &b->has_lo, &b->lo, &b->ilo);
    if (!s) s = clip_bound(ctx, n, in, 2, "max", &b->has_hi, &b->hi, &b->ihi);
    return s;
}

static kiln_status infer_clip(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    if (n->opset < 12 && !kiln_dtype_is_float(in[0]->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "element type %s needs opset 12 or later (the model has %d)",
                            kiln_dtype_name(in[0]->dtype), n->opset);
    clip_bounds b;
    kiln_status s = clip_bounds_of(ctx, n, in, &b);
    if (s && s != KILN_ERR_DYNAMIC) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

/* Clamps below first and then above, so min > max gives max (like numpy),
** and a NaN input stays NaN. */
static void clip_elem(ew_kind k, const clip_bounds *b, const kiln_tensor *x, int64_t i,
                      kiln_tensor *y) {
    if (k == EW_FLOAT) {
        double v = ew_load_f64(x->dtype, x->data, i);
        if (b->has_lo && v < b->lo) v = b->lo;
        if (b->has_hi && v > b->hi) v = b->hi;
        ew_store_f64(y->dtype, y->data, i, v);
    } else if (k == EW_SINT) {
        int64_t v = kiln_load_i64(x->dtype, x->data, i);
        if (b->has_lo && v < b->ilo) v = b->ilo;
        if (b->has_hi && v > b->ihi) v = b->ihi;
        kiln_store_i64(y->dtype, y->data, i, v);
    } else {
        uint64_t v = ew_load_u64(x->dtype, x->data, i);
        if (b->has_lo && v < (uint64_t)b->ilo) v = (uint64_t)b->ilo;
        if (b->has_hi && v > (uint64_t)b->ihi) v = (uint64_t)b->ihi;
        ew_store_u64(y->dtype, y->data, i, v);
    }
}

static kiln_status ref_clip(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    clip_bounds b;
    kiln_status s = clip_bounds_of(ctx, n, in, &b);
    if (s) return s;
    ew_kind k = ew_kind_of(in[0]->dtype);
    if (k == EW_BOOL || k == EW_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported",
                            kiln_dtype_name(in[0]->dtype));
    int64_t count = kiln_numel(in[0]);
    for (int64_t i = 0; i < count; i++) clip_elem(k, &b, in[0], i, &out[0]);
    return KILN_OK;
}

/* ---- Where ---- */

static kiln_status infer_where(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    kiln_status s = ew_check_dtypes(ctx, n, in, 1, 2, in[1]->dtype);
    if (s) return s;
    return kiln_op_infer_broadcast(ctx, n, in, 0, 3, in[1]->dtype, out);
}

static kiln_status ref_where(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    (void)n;
    ew_iter it;
    ew_iter_init(&it, &out[0], 3, in);
    const uint8_t *c = in[0]->data;
    int64_t count = kiln_numel(&out[0]);
    kiln_status s = KILN_OK;
    for (int64_t i = 0; i < count && !s; i++, ew_iter_next(&it)) {
        int k = c[it.off[0]] ? 1 : 2;
        s = ew_copy_elem(ctx, in[k], it.off[k], &out[0], i);
    }
    return s;
}

/* ---- Identity and Dropout ---- */

static kiln_status copy_all(kiln_ctx *ctx, const kiln_tensor *x, kiln_tensor *y) {
    if (x->dtype != KILN_STRING) {
        size_t nb = kiln_nbytes(x);
        if (nb) memcpy(y->data, x->data, nb);
        return KILN_OK;
    }
    int64_t count = kiln_numel(x);
    for (int64_t i = 0; i < count; i++) {
        kiln_status s = ew_copy_elem(ctx, x, i, y, i);
        if (s) return s;
    }
    return KILN_OK;
}

static kiln_status ref_identity(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    (void)n;
    return copy_all(ctx, in[0], &out[0]);
}

/* Only inference is supported: training drops at random, which the
** reference interpreter does not do. Opsets < 7 train unless is_test is set;
** 12+ train when the training_mode input is true. A ratio of 0 trains as
** the identity. */
static kiln_status dropout_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 bool need_values) {
    bool training = false;
    if (n->opset < 7) {
        training = gir_attr_int(n, "is_test", 0) == 0;
    } else if (n->opset >= 12 && ew_in(n, in, 2)) {
        int64_t t;
        kiln_status s = ew_scalar_i64(ctx, n, in[2], "training_mode", &t);
        if (s == KILN_ERR_DYNAMIC && !need_values) return KILN_OK;
        if (s) return s;
        training = t != 0;
    }
    if (!training) return KILN_OK;
    double ratio = 0.5;
    bool found;
    kiln_status s = ew_attr_or_input(ctx, n, "ratio", ew_in(n, in, 1), &ratio, &found);
    if (s == KILN_ERR_DYNAMIC && !need_values) return KILN_OK;
    if (s) return s;
    if (!found) ratio = 0.5;
    if (ratio != 0.0)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "training-mode dropout (ratio %g) is not supported", ratio);
    return KILN_OK;
}

static kiln_status infer_dropout(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    kiln_status s = dropout_check(ctx, n, in, false);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, in[0]->dims);
    if (n->n_outputs > 1) {
        kiln_dtype mask = n->opset >= 10 ? KILN_BOOL : in[0]->dtype;
        kiln_tensor_init(&out[1], mask, in[0]->rank, in[0]->dims);
    }
    return KILN_OK;
}

static kiln_status ref_dropout(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    kiln_status s = dropout_check(ctx, n, in, true);
    if (!s) s = copy_all(ctx, in[0], &out[0]);
    if (s || n->n_outputs < 2) return s;
    int64_t count = kiln_numel(&out[1]);
    for (int64_t i = 0; i < count; i++) ew_store_f64(out[1].dtype, out[1].data, i, 1.0);
    return KILN_OK;
}

/* ---- the table ---- */

static const kiln_attr_schema k_no_attrs[] = {{NULL}};
static const kiln_attr_schema k_cast_attrs[] = {
    {"to", GIR_ATTR_INT, true}, {"saturate", GIR_ATTR_INT, false}, {"round_mode", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_castlike_attrs[] = {
    {"saturate", GIR_ATTR_INT, false}, {"round_mode", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_bitcast_attrs[] = {{"to", GIR_ATTR_INT, true}, {NULL}};
static const kiln_attr_schema k_binarizer_attrs[] = {{"threshold", GIR_ATTR_FLOAT, false}, {NULL}};
static const kiln_attr_schema k_clip_attrs[] = {{"min", GIR_ATTR_FLOAT, false},
                                                {"max", GIR_ATTR_FLOAT, false},
                                                {"consumed_inputs", GIR_ATTR_INTS, false},
                                                {NULL}};
static const kiln_attr_schema k_dropout_attrs[] = {{"ratio", GIR_ATTR_FLOAT, false},
                                                   {"is_test", GIR_ATTR_INT, false},
                                                   {"seed", GIR_ATTR_INT, false},
                                                   {"consumed_inputs", GIR_ATTR_INTS, false},
                                                   {NULL}};

#define MAXV KILN_MAX_OPSET
#define EW KILN_FUSE_ELEMWISE

const kiln_op_def kiln_ops_misc[] = {
    {"Cast", "", 1, MAXV, 1, 1, 1, 1, KILN_DT_ALL | KILN_DT_LOWP, EW, k_cast_attrs, ew_infer_cast, ew_ref_cast, cmp_cast},
    {"CastLike", "", 15, MAXV, 2, 2, 1, 1, KILN_DT_ALL | KILN_DT_LOWP, EW, k_castlike_attrs, ew_infer_castlike,
     ew_ref_cast, cmp_castlike},
    {"BitCast", "", 26, MAXV, 1, 1, 1, 1, KILN_DT_ALL & ~KILN_DT(KILN_STRING), EW, k_bitcast_attrs,
     infer_bitcast, ref_bitcast},
    {"Binarizer", "ai.onnx.ml", 1, MAXV, 1, 1, 1, 1,
     KILN_DT(KILN_F32) | KILN_DT(KILN_F64) | KILN_DT(KILN_I32) | KILN_DT(KILN_I64), EW,
     k_binarizer_attrs, kiln_op_infer_same, ref_binarizer, cmp_binarizer},
    {"Clip", "", 1, MAXV, 1, 3, 1, 1, KILN_DT_NUMERIC, EW, k_clip_attrs, infer_clip, ref_clip, cmp_clip},
    {"Where", "", 9, MAXV, 3, 3, 1, 1, KILN_DT(KILN_BOOL), KILN_FUSE_BROADCAST, k_no_attrs,
     infer_where, ref_where, cmp_where},
    {"Identity", "", 1, MAXV, 1, 1, 1, 1, KILN_DT_ALL, EW, k_no_attrs, kiln_op_infer_same,
     ref_identity, cmp_identity},
    {"Dropout", "", 1, MAXV, 1, 3, 1, 2, KILN_DT_NUMERIC, EW, k_dropout_attrs, infer_dropout,
     ref_dropout, cmp_dropout},
    {0},
};
