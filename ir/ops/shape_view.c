/*
** shape_view.c — ops that change only the shape of their data (Reshape,
** Flatten, Squeeze, Unsqueeze) and ops that read only the shape (Shape, Size).
*/
#include <string.h>

#include "shape_ops.h"

/* Reshape's target: 0 copies the input's dim (unless allowzero), -1 takes
** what is left. */
static kiln_status reshape_resolve(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                   int64_t *dims, int count) {
    bool allowzero = gir_attr_int(n, "allowzero", 0) != 0;
    int64_t known = 1;
    int hole = -1;
    for (int i = 0; i < count; i++) {
        int64_t v = dims[i];
        if (v == -1) {
            if (hole >= 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the shape has more than one -1");
            hole = i;
            continue;
        }
        if (v == 0 && !allowzero) {
            if (i >= x->rank)
                return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                                    "shape[%d] is 0 (copy) but the input has rank %d", i, x->rank);
            v = dims[i] = x->dims[i];
        }
        if (v < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "shape[%d] is %lld", i, (long long)v);
        if (v && known > INT64_MAX / v)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the shape's element count overflows");
        known *= v;
    }
    int64_t total = kiln_numel(x);
    if (hole >= 0) {
        if (known == 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "cannot infer the -1 dim next to a zero dim");
        if (total % known)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%lld elements do not split into a multiple of %lld",
                                (long long)total, (long long)known);
        dims[hole] = total / known;
    } else if (known != total) {
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot reshape %lld elements into %lld",
                            (long long)total, (long long)known);
    }
    return KILN_OK;
}

kiln_status shp_reshape_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    int64_t dims[KILN_MAX_RANK];
    int count;
    kiln_status s = shp_ints_arg(ctx, n, in, "shape", 1, dims, KILN_MAX_RANK, &count);
    if (s) return s;
    if (count < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "no target shape is given");
    s = reshape_resolve(ctx, n, in[0], dims, count);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, count, dims);
    return KILN_OK;
}

kiln_status shp_flatten_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t axis = gir_attr_int(n, "axis", 1);
    if (axis < -x->rank || axis > x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is out of range for rank %d",
                            (long long)axis, x->rank);
    if (axis < 0) axis += x->rank;
    int64_t dims[2];
    dims[0] = kiln_numel_dims((int)axis, x->dims);
    dims[1] = kiln_numel_dims(x->rank - (int)axis, x->dims + axis);
    kiln_tensor_init(out, x->dtype, 2, dims);
    return KILN_OK;
}

kiln_status shp_squeeze_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t axes[KILN_MAX_RANK];
    int count, norm[KILN_MAX_RANK];
    bool drop[KILN_MAX_RANK] = {false};
    kiln_status s = shp_ints_arg(ctx, n, in, "axes", 1, axes, KILN_MAX_RANK, &count);
    if (s) return s;
    if (count > 0) {
        s = shp_norm_axes(ctx, n, axes, count, x->rank, norm);
        if (s) return s;
        for (int i = 0; i < count; i++) {
            if (x->dims[norm[i]] != 1)
                return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot squeeze axis %d of extent %lld",
                                    norm[i], (long long)x->dims[norm[i]]);
            drop[norm[i]] = true;
        }
    } else {
        for (int d = 0; d < x->rank; d++) drop[d] = x->dims[d] == 1;
    }
    int64_t dims[KILN_MAX_RANK];
    int r = 0;
    for (int d = 0; d < x->rank; d++)
        if (!drop[d]) dims[r++] = x->dims[d];
    kiln_tensor_init(out, x->dtype, r, dims);
    return KILN_OK;
}

kiln_status shp_unsqueeze_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t axes[KILN_MAX_RANK];
    int count, norm[KILN_MAX_RANK];
    kiln_status s = shp_ints_arg(ctx, n, in, "axes", 1, axes, KILN_MAX_RANK, &count);
    if (s) return s;
    if (count < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "no axes are given");
    s = shp_check_rank(ctx, n, (int64_t)x->rank + count);
    if (s) return s;
    int r = x->rank + count;
    s = shp_norm_axes(ctx, n, axes, count, r, norm);
    if (s) return s;
    bool ins[KILN_MAX_RANK] = {false};
    for (int i = 0; i < count; i++) ins[norm[i]] = true;
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0, k = 0; d < r; d++) dims[d] = ins[d] ? 1 : x->dims[k++];
    kiln_tensor_init(out, x->dtype, r, dims);
    return KILN_OK;
}

/* The data of a view op is its input's, element for element. */
kiln_status shp_view_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         kiln_tensor *out) {
    return shp_copy(ctx, n, &out[0], 0, in[0], 0, kiln_numel(in[0]));
}

static void shape_range(const gir_node *n, int rank, int64_t *start, int64_t *end) {
    int64_t s = gir_attr_int(n, "start", 0), e = gir_attr_int(n, "end", rank);
    if (s < 0) s += rank;
    if (e < 0) e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < 0 ? 0 : e > rank ? rank : e;
    *start = s;
    *end = e < s ? s : e;
}

kiln_status shp_shape_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    int64_t s, e;
    shape_range(n, in[0]->rank, &s, &e);
    int64_t len = e - s;
    kiln_tensor_init(out, KILN_I64, 1, &len);
    return KILN_OK;
}

kiln_status shp_shape_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    int64_t s, e;
    shape_range(n, in[0]->rank, &s, &e);
    int64_t *o = out[0].data;
    for (int64_t i = s; i < e; i++) o[i - s] = in[0]->dims[i];
    return KILN_OK;
}

kiln_status shp_size_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    kiln_tensor_init(out, KILN_I64, 0, NULL);
    return KILN_OK;
}

kiln_status shp_size_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         kiln_tensor *out) {
    *(int64_t *)out[0].data = kiln_numel(in[0]);
    return KILN_OK;
}
