/*
** ew_util.c — helpers shared by the elementwise op families.
*/
#include <math.h>
#include <string.h>

#include "ew_ops.h"

ew_kind ew_kind_of(kiln_dtype t) {
    uint32_t m = KILN_DT(t);
    if (m & KILN_DT_FLOATS) return EW_FLOAT;
    if (m & KILN_DT_SINTS) return EW_SINT;
    if (m & KILN_DT_UINTS) return EW_UINT;
    if (t == KILN_BOOL) return EW_BOOL;
    return EW_STRING;
}

void ew_iter_init(ew_iter *it, const kiln_tensor *out, int n, const kiln_tensor *const *in) {
    memset(it, 0, sizeof *it);
    it->rank = out->rank;
    it->n = n;
    memcpy(it->dims, out->dims, sizeof(int64_t) * (size_t)out->rank);
    for (int k = 0; k < n; k++)
        kiln_broadcast_strides(in[k], out->rank, out->dims, it->strides[k]);
}

void ew_iter_next(ew_iter *it) {
    for (int d = it->rank - 1; d >= 0; d--) {
        it->idx[d]++;
        for (int k = 0; k < it->n; k++) it->off[k] += it->strides[k][d];
        if (it->idx[d] < it->dims[d]) return;
        for (int k = 0; k < it->n; k++) it->off[k] -= it->strides[k][d] * it->dims[d];
        it->idx[d] = 0;
    }
}

void ew_copy_num(const kiln_tensor *src, int64_t si, kiln_tensor *dst, int64_t di) {
    size_t es = kiln_dtype_size(dst->dtype);
    memcpy((char *)dst->data + (size_t)di * es, (const char *)src->data + (size_t)si * es, es);
}

kiln_status ew_copy_elem(kiln_ctx *ctx, const kiln_tensor *src, int64_t si, kiln_tensor *dst,
                         int64_t di) {
    if (dst->dtype != KILN_STRING) {
        ew_copy_num(src, si, dst, di);
        return KILN_OK;
    }
    const char *s = ((char *const *)src->data)[si];
    char *c = kiln_strdup(s ? s : "");
    if (!c) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory copying a string");
    char **d = dst->data;
    kiln_free(d[di]);
    d[di] = c;
    return KILN_OK;
}

kiln_status ew_check_dtypes(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            int first, int count, kiln_dtype dt) {
    for (int i = first; i < first + count; i++) {
        const kiln_tensor *t = ew_in(n, in, i);
        if (t && t->dtype != dt)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input %d is %s, expected %s like input %d",
                                i, kiln_dtype_name(t->dtype), kiln_dtype_name(dt), first);
    }
    return KILN_OK;
}

/* Opsets 1-6: B is broadcast only when the `broadcast` attribute says so,
** and then its dims match a contiguous run of A's dims starting at `axis`
** (by default, A's trailing dims). */
static kiln_status legacy_view(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a,
                               const kiln_tensor *b, kiln_tensor *view) {
    char sa[128], sb[128];
    *view = *b;
    if (!gir_attr_int(n, "broadcast", 0)) {
        if (!kiln_tensor_same_shape(a, b))
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                "shapes %s and %s differ and the broadcast attribute is not set",
                                kiln_shape_str(a, sa, sizeof sa), kiln_shape_str(b, sb, sizeof sb));
        return KILN_OK;
    }
    int64_t axis = gir_attr_int(n, "axis", a->rank - b->rank);
    if (axis < 0) axis += a->rank;
    if (axis < 0 || axis + b->rank > a->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot broadcast %s onto %s at axis %lld",
                            kiln_shape_str(b, sb, sizeof sb), kiln_shape_str(a, sa, sizeof sa),
                            (long long)axis);
    view->rank = a->rank;
    for (int d = 0; d < a->rank; d++) view->dims[d] = 1;
    for (int d = 0; d < b->rank; d++) {
        int64_t e = b->dims[d];
        if (e != 1 && e != a->dims[axis + d])
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot broadcast %s onto %s at axis %lld",
                                kiln_shape_str(b, sb, sizeof sb), kiln_shape_str(a, sa, sizeof sa),
                                (long long)axis);
        view->dims[axis + d] = e;
    }
    return KILN_OK;
}

kiln_status ew_binary_operands(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *a, kiln_tensor *b) {
    *a = *in[0];
    if (n->opset < 7) return legacy_view(ctx, n, in[0], in[1], b);
    *b = *in[1];
    return KILN_OK;
}

kiln_status ew_infer_binary(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_dtype dt, kiln_tensor *out) {
    kiln_tensor a, b;
    kiln_status s = ew_binary_operands(ctx, n, in, &a, &b);
    if (s) return s;
    const kiln_tensor *ab[2] = {&a, &b};
    return kiln_op_infer_broadcast(ctx, n, ab, 0, 2, dt, out);
}

kiln_status ew_scalar_i64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                          const char *what, int64_t *val) {
    if (kiln_numel(t) != 1) {
        char b[128];
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must hold one value, got %s", what,
                            kiln_shape_str(t, b, sizeof b));
    }
    if (!t->data) return KILN_ERR_DYNAMIC;
    *val = kiln_load_i64(t->dtype, t->data, 0);
    return KILN_OK;
}

kiln_status ew_attr_or_input(kiln_ctx *ctx, const gir_node *n, const char *attr,
                             const kiln_tensor *t, double *val, bool *found) {
    const gir_attr *a = gir_attr_find(n, attr);
    if (a) {
        if (a->kind != GIR_ATTR_FLOAT)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' must be a float", attr);
        *val = a->f;
        *found = true;
        return KILN_OK;
    }
    if (!t) {
        *found = false;
        return KILN_OK;
    }
    if (kiln_numel(t) != 1) {
        char b[128];
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must hold one value, got %s", attr,
                            kiln_shape_str(t, b, sizeof b));
    }
    if (t->dtype == KILN_STRING)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s must be numeric", attr);
    if (!t->data) return KILN_ERR_DYNAMIC;
    *val = kiln_load_f64(t->dtype, t->data, 0);
    *found = true;
    return KILN_OK;
}

/* exp(-|x|) never overflows. */
double ew_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}
