/*
** nn_loss.c — NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
** x is [N, C, d...], target [N, d...] of class indices; an element's loss is
** -weight[t] * logp[n, t, d], zero for targets equal to ignore_index. "mean"
** divides by the summed weights of the counted elements.
*/
#include <math.h>

#include "nn_internal.h"

enum { RED_NONE, RED_SUM, RED_MEAN };
static const char *const k_reductions[] = {"none", "sum", "mean", NULL};

typedef struct loss_plan {
    int64_t n, c, d; /* batch, classes, positions per sample */
    int reduction;
    bool has_ignore;
    int64_t ignore;
} loss_plan;

static kiln_status loss_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, loss_plan *p) {
    const kiln_tensor *x = in[0], *t = in[1], *w = NN_IN(n, in, 2);
    kiln_status s = nn_attr_choice(ctx, n, "reduction", "mean", k_reductions, &p->reduction);
    if (s) return s;
    if (x->rank < 2 || t->rank != x->rank - 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be [N, C, ...] and target [N, ...]");
    bool ok = t->dims[0] == x->dims[0];
    for (int i = 2; ok && i < x->rank; i++) ok = t->dims[i - 1] == x->dims[i];
    if (!ok) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "target's shape does not match the input's");
    if (!kiln_dtype_is_int(t->dtype)) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "target must be an integer tensor");
    if (w && (w->rank != 1 || w->dims[0] != x->dims[1] || w->dtype != x->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "weight must be [C] of the input's type");
    p->n = x->dims[0];
    p->c = x->dims[1];
    p->d = kiln_numel_dims(x->rank - 2, x->dims + 2);
    p->has_ignore = gir_attr_find(n, "ignore_index") != NULL;
    p->ignore = gir_attr_int(n, "ignore_index", 0);
    return KILN_OK;
}

static kiln_status infer_loss(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    loss_plan p;
    kiln_status s = loss_setup(ctx, n, in, &p);
    if (s) return s;
    if (p.reduction == RED_NONE) kiln_tensor_init(&out[0], in[0]->dtype, in[1]->rank, in[1]->dims);
    else kiln_tensor_init(&out[0], in[0]->dtype, 0, NULL);
    if (n->n_outputs > 1) kiln_tensor_init(&out[1], in[0]->dtype, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

/* Log-softmax over the class axis, in place on lp ([N, C, D]). */
static void log_softmax_classes(const loss_plan *p, double *lp) {
    for (int64_t b = 0; b < p->n; b++)
        for (int64_t j = 0; j < p->d; j++) {
            double *r = lp + b * p->c * p->d + j;
            double mx = -INFINITY, sum = 0;
            for (int64_t k = 0; k < p->c; k++) mx = r[k * p->d] > mx ? r[k * p->d] : mx;
            for (int64_t k = 0; k < p->c; k++) sum += exp(r[k * p->d] - mx);
            for (int64_t k = 0; k < p->c; k++) r[k * p->d] = r[k * p->d] - mx - log(sum);
        }
}

static kiln_status ref_loss(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out,
                            bool softmax) {
    const kiln_tensor *t = in[1], *w = NN_IN(n, in, 2);
    loss_plan p;
    double *lp = NULL, *el = NULL;
    kiln_status s = loss_setup(ctx, n, in, &p);
    if (!s) s = nn_alloc_f64(ctx, n, kiln_numel(in[0]), &lp);
    if (!s) s = nn_alloc_f64(ctx, n, p.n * p.d, &el);
    if (s) goto done;
    for (int64_t i = 0; i < kiln_numel(in[0]); i++) lp[i] = kiln_tensor_f64(in[0], i);
    if (softmax) log_softmax_classes(&p, lp);
    double total = 0, wsum = 0;
    for (int64_t b = 0; b < p.n; b++)
        for (int64_t j = 0; j < p.d; j++) {
            int64_t at = b * p.d + j, cls = kiln_tensor_i64(t, at);
            if (p.has_ignore && cls == p.ignore) continue;
            if (cls < 0 || cls >= p.c) {
                s = kiln_op_fail(ctx, n, KILN_ERR_INVALID, "target %lld is not a class in [0, %lld)",
                                 (long long)cls, (long long)p.c);
                goto done;
            }
            double wt = w ? kiln_tensor_f64(w, cls) : 1.0;
            el[at] = -wt * lp[(b * p.c + cls) * p.d + j];
            total += el[at];
            wsum += wt;
        }
    if (p.reduction == RED_NONE)
        for (int64_t i = 0; i < p.n * p.d; i++) nn_store_round(&out[0], i, el[i]);
    else
        nn_store_round(&out[0], 0, p.reduction == RED_SUM ? total : total / wsum);
    if (n->n_outputs > 1)
        for (int64_t i = 0; i < kiln_numel(in[0]); i++) nn_store_round(&out[1], i, lp[i]);
done:
    kiln_free(lp);
    kiln_free(el);
    return s;
}

kiln_status nn_infer_nll_loss(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return infer_loss(ctx, n, in, out);
}
kiln_status nn_ref_nll_loss(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return ref_loss(ctx, n, in, out, false);
}
kiln_status nn_infer_sce_loss(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return infer_loss(ctx, n, in, out);
}
kiln_status nn_ref_sce_loss(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return ref_loss(ctx, n, in, out, true);
}
