/*
** extra_training.c — the ai.onnx.preview.training optimizers Momentum,
** Adam and Adagrad. Inputs are R (learning rate), T (update count), then
** groups of tensors: X1..Xn, G1..Gn and the optimizer's state tensors;
** outputs are the new X1..Xn followed by the new state tensors. Every
** tensor of one group has X's shape; arithmetic is in double.
*/
#include <math.h>
#include <string.h>

#include "extra_ops.h"

/* Checks the layout of `per` tensors per group; sets the group count. */
static kiln_status groups(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int per, int *count) {
    int k = (n->n_inputs - 2) / per;
    if (n->n_inputs < 2 + per || (n->n_inputs - 2) % per || n->n_outputs != k * (per - 1))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%d inputs and %d outputs do not form groups of %d tensors",
                            n->n_inputs, n->n_outputs, per);
    if (!(KILN_DT(in[0]->dtype) & (KILN_DT(KILN_F32) | KILN_DT(KILN_F64))) || kiln_numel(in[0]) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "R must be one float or double");
    if (in[1]->dtype != KILN_I64 || kiln_numel(in[1]) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "T must be one int64");
    for (int g = 0; g < k; g++)
        for (int j = 0; j < per; j++) {
            const kiln_tensor *x = in[2 + g], *t = in[2 + j * k + g];
            char a[128], b[128];
            if (!t || !(KILN_DT(t->dtype) & (KILN_DT(KILN_F32) | KILN_DT(KILN_F64))) || t->dtype != x->dtype ||
                !kiln_tensor_same_shape(t, x))
                return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input %d %s must be float or double like X%d %s",
                                    2 + j * k + g, t ? kiln_shape_str(t, a, sizeof a) : "(missing)", g + 1,
                                    kiln_shape_str(x, b, sizeof b));
        }
    *count = k;
    return KILN_OK;
}

/* Outputs: for each of the per-1 output kinds, one per group, X's shape. */
static kiln_status infer_groups(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out,
                                int per) {
    int k;
    kiln_status s = groups(ctx, n, in, per, &k);
    if (s) return s;
    for (int j = 0; j < per - 1; j++)
        for (int g = 0; g < k; g++) kiln_tensor_init(&out[j * k + g], in[2 + g]->dtype, in[2 + g]->rank, in[2 + g]->dims);
    return KILN_OK;
}

static double ld(const kiln_tensor *t, int64_t i) { return kiln_load_f64(t->dtype, t->data, i); }
static void st(kiln_tensor *t, int64_t i, double v) { kiln_store_f64(t->dtype, t->data, i, v); }

/* ---- Momentum: inputs R, T, X.., G.., V..; outputs X_new.., V_new.. ---- */

kiln_status xo_momentum_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const char *mode = gir_attr_string(n, "mode", "");
    if (strcmp(mode, "standard") && strcmp(mode, "nesterov"))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "mode '%s' is not 'standard' or 'nesterov'", mode);
    return infer_groups(ctx, n, in, out, 3);
}

kiln_status xo_momentum_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    int k;
    kiln_status s = groups(ctx, n, in, 3, &k);
    if (s) return s;
    double r = ld(in[0], 0), alpha = gir_attr_float(n, "alpha", 0), beta = gir_attr_float(n, "beta", 0);
    double norm = gir_attr_float(n, "norm_coefficient", 0);
    bool nesterov = !strcmp(gir_attr_string(n, "mode", ""), "nesterov");
    if (kiln_tensor_i64(in[1], 0) <= 0) beta = 1; /* the first step takes the whole gradient */
    for (int g = 0; g < k; g++) {
        const kiln_tensor *x = in[2 + g], *gr = in[2 + k + g], *v = in[2 + 2 * k + g];
        for (int64_t i = 0, m = kiln_numel(x); i < m; i++) {
            double greg = norm * ld(x, i) + ld(gr, i), vn = alpha * ld(v, i) + beta * greg;
            st(&out[g], i, ld(x, i) - r * (nesterov ? greg + alpha * vn : vn));
            st(&out[k + g], i, vn);
        }
    }
    return KILN_OK;
}

/* ---- Adam: inputs R, T, X.., G.., V.., H..; outputs X.., V.., H.. ---- */

kiln_status xo_adam_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return infer_groups(ctx, n, in, out, 4);
}

kiln_status xo_adam_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    int k;
    kiln_status s = groups(ctx, n, in, 4, &k);
    if (s) return s;
    double alpha = gir_attr_float(n, "alpha", 0.9), beta = gir_attr_float(n, "beta", 0.999);
    double eps = gir_attr_float(n, "epsilon", 1e-6), norm = gir_attr_float(n, "norm_coefficient", 0);
    double post = gir_attr_float(n, "norm_coefficient_post", 0), r = ld(in[0], 0);
    int64_t t = kiln_tensor_i64(in[1], 0);
    if (t > 0) /* bias correction of both moments */
        r = r * sqrt(1 - pow(beta, (double)t)) / (1 - pow(alpha, (double)t));
    for (int g = 0; g < k; g++) {
        const kiln_tensor *x = in[2 + g], *gr = in[2 + k + g], *v = in[2 + 2 * k + g], *h = in[2 + 3 * k + g];
        for (int64_t i = 0, m = kiln_numel(x); i < m; i++) {
            double greg = norm * ld(x, i) + ld(gr, i);
            double vn = alpha * ld(v, i) + (1 - alpha) * greg, hn = beta * ld(h, i) + (1 - beta) * greg * greg;
            double xn = ld(x, i) - r * vn / (sqrt(hn) + eps);
            st(&out[g], i, (1 - post) * xn);
            st(&out[k + g], i, vn);
            st(&out[2 * k + g], i, hn);
        }
    }
    return KILN_OK;
}

/* ---- Adagrad: inputs R, T, X.., G.., H..; outputs X.., H.. ---- */

kiln_status xo_adagrad_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return infer_groups(ctx, n, in, out, 3);
}

kiln_status xo_adagrad_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    int k;
    kiln_status s = groups(ctx, n, in, 3, &k);
    if (s) return s;
    double decay = gir_attr_float(n, "decay_factor", 0), eps = gir_attr_float(n, "epsilon", 1e-6);
    double norm = gir_attr_float(n, "norm_coefficient", 0);
    double r = ld(in[0], 0) / (1 + (double)kiln_tensor_i64(in[1], 0) * decay);
    for (int g = 0; g < k; g++) {
        const kiln_tensor *x = in[2 + g], *gr = in[2 + k + g], *h = in[2 + 2 * k + g];
        for (int64_t i = 0, m = kiln_numel(x); i < m; i++) {
            double greg = norm * ld(x, i) + ld(gr, i), hn = ld(h, i) + greg * greg;
            st(&out[g], i, ld(x, i) - r * greg / (sqrt(hn) + eps));
            st(&out[k + g], i, hn);
        }
    }
    return KILN_OK;
}
