/*
** nn_causal_conv.c — CausalConvWithState (opset 27): a depthwise 1-D
** convolution over [past_state, input] (zeros when there is no past), an
** optional SiLU, and the last kernel-1 columns as the next state.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

static const char *const k_activations[] = {"none", "silu", "swish", NULL};

static kiln_status ccs_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int *act) {
    const kiln_tensor *x = in[0], *w = in[1], *b = NN_IN(n, in, 2), *past = NN_IN(n, in, 3);
    kiln_status s = nn_attr_choice(ctx, n, "activation", "none", k_activations, act);
    if (s) return s;
    if (x->rank != 3 || w->rank != 3 || w->dims[0] != x->dims[1] || w->dims[1] != 1 || w->dims[2] < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be [B, C, L] and weight [C, 1, K]");
    if (b && (b->rank != 1 || b->dims[0] != x->dims[1]))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "bias must be [C]");
    if (past && (past->rank != 3 || past->dims[0] != x->dims[0] || past->dims[1] != x->dims[1] ||
                 past->dims[2] != w->dims[2] - 1))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "past_state must be [B, C, K-1]");
    for (int i = 1; i < 4; i++)
        if ((s = nn_check_same_dtype(ctx, n, x, NN_IN(n, in, i), "weight, bias or past_state"))) return s;
    return KILN_OK;
}

kiln_status nn_infer_causal_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    int act;
    kiln_status s = ccs_check(ctx, n, in, &act);
    if (s) return s;
    const kiln_tensor *x = in[0];
    kiln_tensor_init(&out[0], x->dtype, 3, x->dims);
    if (n->n_outputs > 1)
        kiln_tensor_init(&out[1], x->dtype, 3, (int64_t[]){x->dims[0], x->dims[1], in[1]->dims[2] - 1});
    return KILN_OK;
}

kiln_status nn_ref_causal_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[1], *b = NN_IN(n, in, 2), *past = NN_IN(n, in, 3);
    int act;
    kiln_status s = ccs_check(ctx, n, in, &act);
    if (s) return s;
    int64_t batch = x->dims[0], ch = x->dims[1], len = x->dims[2], k = w->dims[2], plen = len + k - 1;
    double *pad;
    s = nn_alloc_f64(ctx, n, plen, &pad);
    if (s) return s;
    for (int64_t bi = 0; bi < batch; bi++)
        for (int64_t c = 0; c < ch; c++) {
            for (int64_t j = 0; j < k - 1; j++) pad[j] = past ? kiln_tensor_f64(past, (bi * ch + c) * (k - 1) + j) : 0;
            for (int64_t j = 0; j < len; j++) pad[k - 1 + j] = kiln_tensor_f64(x, (bi * ch + c) * len + j);
            for (int64_t t = 0; t < len; t++) {
                double acc = b ? kiln_tensor_f64(b, c) : 0;
                for (int64_t j = 0; j < k; j++) acc += pad[t + j] * kiln_tensor_f64(w, c * k + j);
                if (act) {
                    acc = nn_round_to(x->dtype, acc); /* the spec's reference rounds before the SiLU */
                    acc = acc / (1.0 + exp(-acc));
                }
                nn_store_round(&out[0], (bi * ch + c) * len + t, acc);
            }
            for (int64_t j = 0; n->n_outputs > 1 && j < k - 1; j++)
                nn_store_round(&out[1], (bi * ch + c) * (k - 1) + j, pad[plen - (k - 1) + j]);
        }
    kiln_free(pad);
    return KILN_OK;
}
