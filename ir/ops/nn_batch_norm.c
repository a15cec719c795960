/*
** nn_batch_norm.c — BatchNormalization: inference with running statistics
** (every opset, including the per-activation spatial=0 form before opset 9)
** and, from opset 14, training mode with batch statistics and the updated
** running mean and variance.
*/
#include <math.h>

#include "nn_internal.h"

typedef struct bn_layout {
    int64_t batch, ch, sp;
    int64_t params; /* values per parameter vector: C, or C*spatial when per activation */
    bool training;
} bn_layout;

static kiln_status bn_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, bn_layout *l) {
    const kiln_tensor *x = in[0];
    if (x->rank < 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must have rank 2 or more, got %d", x->rank);
    l->batch = x->dims[0];
    l->ch = x->dims[1];
    l->sp = kiln_numel_dims(x->rank - 2, x->dims + 2);
    bool spatial = n->opset >= 9 || gir_attr_int(n, "spatial", 1) != 0;
    l->params = spatial ? l->ch : l->ch * l->sp;
    l->training = n->opset >= 14 && gir_attr_int(n, "training_mode", 0) != 0;
    if (n->opset < 14 && n->n_outputs > 1)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "training outputs of BatchNormalization before opset 14 are not supported");
    if (l->training && !spatial)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "training mode needs spatial statistics");
    static const char *const names[] = {"X", "scale", "B", "input_mean", "input_var"};
    for (int i = 1; i < 5; i++) {
        if (kiln_numel(in[i]) != l->params)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s has %lld values, expected %lld", names[i],
                                (long long)kiln_numel(in[i]), (long long)l->params);
        if (!kiln_dtype_is_float(in[i]->dtype))
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must be a float tensor", names[i]);
    }
    return KILN_OK;
}

kiln_status nn_infer_batch_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    bn_layout l;
    kiln_status s = bn_setup(ctx, n, in, &l);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, in[0]->dims);
    for (int k = 1; k < n->n_outputs; k++) kiln_tensor_init(&out[k], in[3]->dtype, 1, &l.ch);
    return KILN_OK;
}

/* Batch mean and (population) variance of each channel. */
static void batch_stats(const bn_layout *l, const double *x, double *mean, double *var) {
    double cnt = (double)(l->batch * l->sp);
    for (int64_t c = 0; c < l->ch; c++) {
        double s = 0, q = 0;
        for (int64_t b = 0; b < l->batch; b++)
            for (int64_t i = 0; i < l->sp; i++) s += x[(b * l->ch + c) * l->sp + i];
        double m = cnt > 0 ? s / cnt : 0;
        for (int64_t b = 0; b < l->batch; b++)
            for (int64_t i = 0; i < l->sp; i++) {
                double d = x[(b * l->ch + c) * l->sp + i] - m;
                q += d * d;
            }
        mean[c] = m;
        var[c] = cnt > 0 ? q / cnt : 0;
    }
}

static void bn_apply(const gir_node *n, const bn_layout *l, const kiln_tensor *const *in, const double *x,
                     const double *mean, const double *var, double *y) {
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    int64_t per_sample = l->ch * l->sp;
    for (int64_t i = 0; i < l->batch * per_sample; i++) {
        int64_t c = (i % per_sample) / l->sp;
        int64_t p = l->params == l->ch ? c : i % per_sample;
        double m = mean ? mean[c] : kiln_tensor_f64(in[3], p);
        double v = var ? var[c] : kiln_tensor_f64(in[4], p);
        y[i] = (x[i] - m) / sqrt(v + eps) * kiln_tensor_f64(in[1], p) + kiln_tensor_f64(in[2], p);
    }
}

kiln_status nn_ref_batch_norm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    bn_layout l;
    const double *xv = NULL;
    double *yv = NULL, *stats = NULL;
    kiln_status s = bn_setup(ctx, n, in, &l);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s && l.training) s = nn_alloc_f64(ctx, n, 2 * l.ch, &stats);
    if (!s) {
        if (l.training) batch_stats(&l, xv, stats, stats + l.ch);
        bn_apply(n, &l, in, xv, stats, stats ? stats + l.ch : NULL, yv);
        double mom = gir_attr_float(n, "momentum", 0.9);
        /* outside training mode the running statistics pass through unchanged */
        for (int k = 1; k < n->n_outputs && k < 3; k++)
            for (int64_t c = 0; c < l.ch; c++) {
                double run = kiln_tensor_f64(in[2 + k], c);
                nn_store_round(&out[k], c, stats ? run * mom + stats[(k - 1) * l.ch + c] * (1 - mom) : run);
            }
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], xv);
    kiln_free(stats);
    return s;
}
