/*
** tensor_layout.c — ops that rearrange whole tensors: Transpose, Concat,
** Split, DepthToSpace, SpaceToDepth.
*/
#include <string.h>

#include "shape_ops.h"

/* ---- Transpose ---- */

static kiln_status transpose_perm(kiln_ctx *ctx, const gir_node *n, int rank, int *perm) {
    const int64_t *p;
    int k = gir_attr_ints(n, "perm", &p);
    if (k < 0) {
        for (int i = 0; i < rank; i++) perm[i] = rank - 1 - i;
        return KILN_OK;
    }
    if (k != rank)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "perm has %d entries for rank %d", k, rank);
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < k; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]])
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "perm is not a permutation of 0..%d", rank - 1);
        seen[p[i]] = true;
        perm[i] = (int)p[i];
    }
    return KILN_OK;
}

kiln_status tns_transpose_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    int perm[KILN_MAX_RANK];
    int64_t dims[KILN_MAX_RANK];
    kiln_status s = transpose_perm(ctx, n, in[0]->rank, perm);
    if (s) return s;
    for (int i = 0; i < in[0]->rank; i++) dims[i] = in[0]->dims[perm[i]];
    kiln_tensor_init(out, in[0]->dtype, in[0]->rank, dims);
    return KILN_OK;
}

kiln_status tns_transpose_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    int perm[KILN_MAX_RANK];
    int64_t st[KILN_MAX_RANK], pst[KILN_MAX_RANK];
    kiln_status s = transpose_perm(ctx, n, in[0]->rank, perm);
    if (s) return s;
    kiln_strides(in[0]->rank, in[0]->dims, st);
    for (int i = 0; i < in[0]->rank; i++) pst[i] = st[perm[i]];
    if (in[0]->rank == 0) return shp_copy(ctx, n, &out[0], 0, in[0], 0, 1);
    return shp_strided_copy(ctx, n, &out[0], 0, in[0], 0, out[0].rank, out[0].dims, pst);
}

/* ---- Concat ---- */

kiln_status tns_concat_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    const gir_attr *a = gir_attr_find(n, "axis");
    if (!a && n->opset >= 4) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'axis' is required");
    int axis;
    if (x->rank == 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot concatenate scalars");
    kiln_status s = kiln_op_axis(ctx, n, a ? a->i : 1, x->rank, &axis);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, sizeof dims);
    dims[axis] = 0;
    for (int i = 0; i < n->n_inputs; i++) {
        const kiln_tensor *t = in[i];
        char b1[128], b2[128];
        if (!t) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "input %d is missing", i);
        s = shp_same_dtype(ctx, n, t, x->dtype, "an input");
        if (s) return s;
        bool ok = t->rank == x->rank;
        for (int d = 0; ok && d < x->rank; d++) ok = d == axis || t->dims[d] == x->dims[d];
        if (!ok)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input %d %s does not match input 0 %s off axis %d",
                                i, kiln_shape_str(t, b1, sizeof b1), kiln_shape_str(x, b2, sizeof b2), axis);
        if (t->dims[axis] > SHP_MAX_ELEMS - dims[axis])
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the concatenated extent is too large");
        dims[axis] += t->dims[axis];
    }
    kiln_tensor_init(out, x->dtype, x->rank, dims);
    return KILN_OK;
}

kiln_status tns_concat_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    int axis;
    int64_t ax = gir_attr_int(n, "axis", 1);
    kiln_status s = kiln_op_axis(ctx, n, ax, out[0].rank, &axis);
    if (s) return s;
    int64_t outer = kiln_numel_dims(axis, out[0].dims), off = 0;
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < n->n_inputs; i++) {
            int64_t chunk = kiln_numel_dims(in[i]->rank - axis, in[i]->dims + axis);
            s = shp_copy(ctx, n, &out[0], off, in[i], o * chunk, chunk);
            if (s) return s;
            off += chunk;
        }
    }
    return KILN_OK;
}

/* ---- Split ---- */

/* Even pieces: opset 18's num_outputs gives ceil-sized pieces with a smaller
** last one; otherwise the extent must divide evenly. */
static kiln_status split_even(kiln_ctx *ctx, const gir_node *n, int64_t dim, int64_t *sizes) {
    int k = n->n_outputs;
    const gir_attr *num = gir_attr_find(n, "num_outputs");
    if (num) {
        if (num->i != k)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "num_outputs is %lld but the node has %d outputs",
                                (long long)num->i, k);
        int64_t chunk = (dim + k - 1) / k, left = dim;
        for (int i = 0; i < k; i++) {
            sizes[i] = left < chunk ? left : chunk;
            left -= sizes[i];
        }
        return KILN_OK;
    }
    if (dim % k)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "extent %lld does not split evenly into %d outputs",
                            (long long)dim, k);
    for (int i = 0; i < k; i++) sizes[i] = dim / k;
    return KILN_OK;
}

static kiln_status split_sizes(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               int *axis, int64_t *sizes) {
    if (n->n_outputs > SHP_MAX_LIST)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "more than %d outputs", SHP_MAX_LIST);
    if (in[0]->rank == 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot split a scalar");
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), in[0]->rank, axis);
    if (s) return s;
    int count;
    s = shp_ints_arg(ctx, n, in, "split", 1, sizes, SHP_MAX_LIST, &count);
    if (s) return s;
    int64_t dim = in[0]->dims[*axis], sum = 0;
    if (count <= 0) return split_even(ctx, n, dim, sizes);
    if (count != n->n_outputs)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "split has %d entries but the node has %d outputs",
                            count, n->n_outputs);
    for (int i = 0; i < count; i++) {
        if (sizes[i] < 0 || sizes[i] > dim - sum)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "split[%d] = %lld overruns extent %lld", i,
                                (long long)sizes[i], (long long)dim);
        sum += sizes[i];
    }
    if (sum != dim)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "split sums to %lld, the axis has extent %lld",
                            (long long)sum, (long long)dim);
    return KILN_OK;
}

kiln_status tns_split_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    int64_t sizes[SHP_MAX_LIST];
    int axis;
    kiln_status s = split_sizes(ctx, n, in, &axis, sizes);
    if (s) return s;
    for (int i = 0; i < n->n_outputs; i++) {
        kiln_tensor_init(&out[i], in[0]->dtype, in[0]->rank, in[0]->dims);
        out[i].dims[axis] = sizes[i];
    }
    return KILN_OK;
}

kiln_status tns_split_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    int64_t sizes[SHP_MAX_LIST];
    int axis;
    kiln_status s = split_sizes(ctx, n, in, &axis, sizes);
    if (s) return s;
    const kiln_tensor *x = in[0];
    int64_t outer = kiln_numel_dims(axis, x->dims), inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
    int64_t row = x->dims[axis] * inner, start = 0;
    for (int i = 0; i < n->n_outputs; i++) {
        int64_t chunk = sizes[i] * inner;
        for (int64_t o = 0; o < outer; o++) {
            s = shp_copy(ctx, n, &out[i], o * chunk, x, o * row + start, chunk);
            if (s) return s;
        }
        start += chunk;
    }
    return KILN_OK;
}

/* ---- DepthToSpace / SpaceToDepth: a reshape, a transpose and a reshape ---- */

static kiln_status block_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, int64_t *b) {
    *b = gir_attr_int(n, "blocksize", 0);
    if (x->rank != 4) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be 4-D, got rank %d", x->rank);
    if (*b <= 0 || *b > (1 << 20))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "blocksize %lld is invalid", (long long)*b);
    return KILN_OK;
}

static bool d2s_crd(const gir_node *n) { return !strcmp(gir_attr_string(n, "mode", "DCR"), "CRD"); }

kiln_status tns_d2s_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t b;
    kiln_status s = block_check(ctx, n, x, &b);
    if (s) return s;
    const char *mode = gir_attr_string(n, "mode", "DCR");
    if (strcmp(mode, "DCR") && strcmp(mode, "CRD"))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "mode '%s' is not DCR or CRD", mode);
    int64_t dims[4] = {x->dims[0], x->dims[1] / (b * b)};
    if (x->dims[1] % (b * b))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "channels %lld are not a multiple of blocksize^2",
                            (long long)x->dims[1]);
    if (!shp_mul(x->dims[2], b, &dims[2]) || !shp_mul(x->dims[3], b, &dims[3]))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the output is too large");
    kiln_tensor_init(out, x->dtype, 4, dims);
    return KILN_OK;
}

kiln_status tns_d2s_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t b = gir_attr_int(n, "blocksize", 1);
    int64_t N = x->dims[0], C = x->dims[1] / (b * b), H = x->dims[2], W = x->dims[3];
    /* output viewed as [N, C, H, b, W, b]; read the input viewed as
    ** [N, b, b, C, H, W] (DCR) or [N, C, b, b, H, W] (CRD) */
    int64_t dims[6] = {N, C, H, b, W, b}, st[6];
    int64_t plane = H * W;
    st[0] = x->dims[1] * plane;
    st[2] = W;
    st[4] = 1;
    if (d2s_crd(n)) {
        st[1] = b * b * plane;
        st[3] = b * plane;
        st[5] = plane;
    } else {
        st[1] = plane;
        st[3] = b * C * plane;
        st[5] = C * plane;
    }
    return shp_strided_copy(ctx, n, &out[0], 0, x, 0, 6, dims, st);
}

kiln_status tns_s2d_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t b;
    kiln_status s = block_check(ctx, n, x, &b);
    if (s) return s;
    if (x->dims[2] % b || x->dims[3] % b)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "height and width must be multiples of blocksize %lld",
                            (long long)b);
    int64_t dims[4] = {x->dims[0], 0, x->dims[2] / b, x->dims[3] / b};
    if (!shp_mul(x->dims[1], b * b, &dims[1]))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the output is too large");
    kiln_tensor_init(out, x->dtype, 4, dims);
    return KILN_OK;
}

kiln_status tns_s2d_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t b = gir_attr_int(n, "blocksize", 1);
    int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2] / b, W = x->dims[3] / b;
    /* output viewed as [N, b, b, C, H, W] reads input [N, C, H, b, W, b] */
    int64_t dims[6] = {N, b, b, C, H, W}, st[6];
    int64_t row = x->dims[3];
    st[0] = C * x->dims[2] * row;
    st[1] = row;
    st[2] = 1;
    st[3] = x->dims[2] * row;
    st[4] = b * row;
    st[5] = b;
    return shp_strided_copy(ctx, n, &out[0], 0, x, 0, 6, dims, st);
}
