/*
** extra_optional.c — OptionalHasElement and OptionalGetElement on the
** values kiln holds. kiln's graphs carry tensors only (the loader rejects
** optional-typed graph inputs), so an optional is either a present tensor
** or an omitted input: HasElement tells which, GetElement is the identity.
*/
#include <string.h>

#include "extra_ops.h"

kiln_status xo_has_elem_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx;
    (void)n;
    (void)in;
    kiln_tensor_init(&out[0], KILN_BOOL, 0, NULL);
    return KILN_OK;
}

kiln_status xo_has_elem_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx;
    *(bool *)out[0].data = xo_in(n, in, 0) != NULL;
    return KILN_OK;
}

kiln_status xo_get_elem_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    if (!in[0]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the optional input holds no element");
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status xo_get_elem_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t total = kiln_numel(x);
    if (x->dtype != KILN_STRING) {
        size_t nb = kiln_nbytes(x);
        if (nb) memcpy(out[0].data, x->data, nb);
        return KILN_OK;
    }
    for (int64_t i = 0; i < total; i++) {
        const char *s = xo_str(x, i);
        kiln_status st = xo_set_str(ctx, n, (char **)out[0].data + i, s, strlen(s));
        if (st) return st;
    }
    return KILN_OK;
}
