/*
** op_util.c — helpers shared by op implementations.
*/
#include <stdarg.h>
#include <stdio.h>

#include "../op.h"

kiln_status kiln_op_fail(kiln_ctx *ctx, const gir_node *n, kiln_status s, const char *fmt, ...) {
    char msg[1024], d[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(ctx, s, "%s: %s", gir_node_desc(n, d, sizeof d), msg);
}

kiln_status kiln_op_axis(kiln_ctx *ctx, const gir_node *n, int64_t axis, int rank, int *out) {
    if (axis < -rank || axis >= (rank ? rank : 1))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is out of range for rank %d",
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return KILN_OK;
}

kiln_status kiln_op_read_ints(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                              int64_t *vals, int max, int *count) {
    if (!t->data) return KILN_ERR_DYNAMIC;
    if (!kiln_dtype_is_int(t->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "expected an integer tensor, got %s",
                            kiln_dtype_name(t->dtype));
    if (t->rank > 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "expected a 1-D tensor, got rank %d", t->rank);
    int64_t k = kiln_numel(t);
    if (k > max)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "expected at most %d values, got %lld", max,
                            (long long)k);
    for (int64_t i = 0; i < k; i++) vals[i] = kiln_tensor_i64(t, i);
    *count = (int)k;
    return KILN_OK;
}

kiln_status kiln_op_infer_broadcast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    int first, int count, kiln_dtype dt, kiln_tensor *out) {
    int rank;
    int64_t dims[KILN_MAX_RANK];
    kiln_status s = kiln_broadcast_shapes(ctx, count, in + first, &rank, dims);
    char d[256];
    if (s) return kiln_wrap(ctx, s, "%s", gir_node_desc(n, d, sizeof d));
    kiln_tensor_init(out, dt, rank, dims);
    return KILN_OK;
}

kiln_status kiln_op_infer_same(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    (void)ctx;
    (void)n;
    kiln_tensor_init(out, in[0]->dtype, in[0]->rank, in[0]->dims);
    return KILN_OK;
}
