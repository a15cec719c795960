/*
** fold_batch_norm.c — an inference BatchNormalization right after a Conv,
** Gemm or 2-D MatMul with constant weights folds into new weights and bias
** (see pass.h). Per output channel c, with f = scale / sqrt(var + eps):
**
**   W'[c, ...] = W[c, ...] * f[c]
**   B'[c]      = (B[c] - mean[c]) * f[c] + beta[c]
**
** computed in double and rounded once to the weights' type. The producer's
** result must be read by the BatchNormalization alone (it no longer exists
** afterwards), and the original constants are left to their other readers.
** A MatMul's output channel is axis 1 only when it is 2-D; then it becomes a
** Gemm with the bias. Anything unexpected (parameter lengths, non-constant
** weights, training mode, layouts) leaves the pair alone.
*/
#include <math.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "pass.h"

typedef struct bn_fold {
    int64_t ch;
    double *f;     /* scale / sqrt(var + eps), per channel */
    double *shift; /* beta - mean * f, per channel */
} bn_fold;

static bool is_op(const gir_node *n, const char *op) {
    return (!n->domain[0] || !strcmp(n->domain, "ai.onnx")) && !strcmp(n->op_type, op);
}

static bool float_const(const gir_value *v, kiln_dtype dt) {
    return v && v->constant && v->constant->data && v->constant->dtype == dt && kiln_dtype_is_float(dt) &&
           !kiln_dtype_is_lowp(dt) && !v->is_input;
}

static bool unused(const gir_graph *g, const gir_value *v) {
    return !v || (!v->is_output && pass_count_uses(g, v) == 0);
}

/* Whether bn is an inference BatchNormalization of a value that only it
** reads, with constant per-channel parameters; fills b->ch. */
static bool bn_applies(const gir_graph *g, const gir_node *bn, bn_fold *b) {
    if (!is_op(bn, "BatchNormalization") || bn->n_inputs != 5 || bn->n_outputs < 1 || !bn->outputs[0]) return false;
    if (bn->opset >= 14 && gir_attr_int(bn, "training_mode", 0) != 0) return false;
    if (bn->opset < 9 && gir_attr_int(bn, "spatial", 1) == 0) return false;
    for (int k = 1; k < bn->n_outputs; k++)
        if (!unused(g, bn->outputs[k])) return false;
    const gir_value *x = bn->inputs[0];
    if (!x || !x->producer || !pass_value_replaceable(g, x) || pass_count_uses(g, x) != 1) return false;
    if (!gir_type_is_static(&x->type) || x->type.rank < 2 || x->type.dims[1].value < 1) return false;
    b->ch = x->type.dims[1].value;
    for (int i = 1; i < 5; i++) {
        const gir_value *p = bn->inputs[i];
        if (!p || !p->constant || !p->constant->data || p->is_input || !kiln_dtype_is_float(p->constant->dtype) ||
            kiln_dtype_is_lowp(p->constant->dtype) || kiln_numel(p->constant) != b->ch)
            return false;
    }
    return true;
}

/* The per-channel factors; false when one is not finite (a variance
** below -eps), which leaves the node alone. */
static bool bn_factors(const gir_node *bn, bn_fold *b) {
    double eps = gir_attr_float(bn, "epsilon", 1e-5);
    for (int64_t c = 0; c < b->ch; c++) {
        double s = kiln_tensor_f64(bn->inputs[1]->constant, c), beta = kiln_tensor_f64(bn->inputs[2]->constant, c);
        double mean = kiln_tensor_f64(bn->inputs[3]->constant, c), var = kiln_tensor_f64(bn->inputs[4]->constant, c);
        if (!(var + eps > 0)) return false;
        b->f[c] = s / sqrt(var + eps);
        b->shift[c] = beta - mean * b->f[c];
        if (!isfinite(b->f[c]) || !isfinite(b->shift[c])) return false;
    }
    return true;
}

/* A copy of constant w with element i multiplied by f[chan(i)], where the
** channel of element i is (i / inner) % ch. */
static gir_value *scaled_weights(gir_graph *g, const gir_value *w, const bn_fold *b, int64_t inner) {
    gir_value *c = pass_new_constant(g, NULL, w->constant);
    if (!c) return NULL;
    kiln_tensor *t = c->constant;
    int64_t count = kiln_numel(t);
    for (int64_t i = 0; i < count; i++)
        kiln_store_f64(t->dtype, t->data, i, kiln_load_f64(t->dtype, t->data, i) * b->f[(i / inner) % b->ch]);
    return c;
}

/* The bias constant [ch] of dtype dt: bias[c] * f[c] * bscale + shift[c];
** bias NULL counts as zeros, a bias of one element is broadcast. */
static gir_value *folded_bias(kiln_ctx *ctx, gir_graph *g, kiln_dtype dt, const gir_value *bias, double bscale,
                              const bn_fold *b) {
    kiln_tensor t;
    kiln_tensor_init(&t, dt, 1, &b->ch);
    if (kiln_tensor_alloc(ctx, &t)) return NULL;
    int64_t nb = bias ? kiln_numel(bias->constant) : 0;
    for (int64_t c = 0; c < b->ch; c++) {
        double x = bias ? kiln_tensor_f64(bias->constant, nb == 1 ? 0 : c) * bscale : 0.0;
        kiln_store_f64(dt, t.data, c, x * b->f[c] + b->shift[c]);
    }
    gir_value *v = pass_new_constant(g, NULL, &t);
    kiln_tensor_release(&t);
    return v;
}

/* Conv with constant W [ch, C/group, k...] and an optional constant bias [ch]. */
static bool conv_fold(kiln_ctx *ctx, gir_graph *g, gir_node *conv, const bn_fold *b, bool *nomem) {
    const gir_value *x = conv->outputs[0], *w = gir_input(conv, 1), *bias = gir_input(conv, 2);
    kiln_dtype dt = x->type.dtype;
    if (!float_const(w, dt) || w->constant->rank < 3 || w->constant->dims[0] != b->ch) return false;
    if (bias && (!float_const(bias, dt) || bias->constant->rank != 1 || bias->constant->dims[0] != b->ch)) return false;
    int64_t inner = kiln_numel(w->constant) / b->ch;
    gir_value *w2 = scaled_weights(g, w, b, inner), *b2 = w2 ? folded_bias(ctx, g, dt, bias, 1.0, b) : NULL;
    if (!b2 || !pass_put_input(g, conv, 2, b2)) return *nomem = true, false;
    conv->inputs[1] = w2;
    return true;
}

/* A Gemm bias that is one value per output column (or one value in all):
** [N], [1, N], [], [1], [1, 1]. */
static bool column_bias(const gir_value *c, int64_t n) {
    if (!c) return true;
    const kiln_tensor *t = c->constant;
    int64_t count = kiln_numel(t);
    if (count == 1) return t->rank <= 2;
    return count == n && (t->rank == 1 || (t->rank == 2 && t->dims[0] == 1));
}

/* Gemm: Y = alpha * A' B' + beta * C with constant B; the columns of B'
** are the channels. */
static bool gemm_fold(kiln_ctx *ctx, gir_graph *g, gir_node *gemm, const bn_fold *b, bool *nomem) {
    const gir_value *y = gemm->outputs[0], *w = gir_input(gemm, 1), *bias = gir_input(gemm, 2);
    kiln_dtype dt = y->type.dtype;
    bool tb = gir_attr_int(gemm, "transB", 0) != 0;
    if (gemm->opset < 7 || y->type.rank != 2 || !float_const(w, dt) || w->constant->rank != 2) return false;
    if (w->constant->dims[tb ? 0 : 1] != b->ch) return false;
    if (bias && (!float_const(bias, dt) || !column_bias(bias, b->ch))) return false;
    /* transB: B is [N, K], channel-major; otherwise [K, N], channel-minor */
    gir_value *w2 = tb ? scaled_weights(g, w, b, w->constant->dims[1]) : scaled_weights(g, w, b, 1);
    gir_value *b2 = w2 ? folded_bias(ctx, g, dt, bias, gir_attr_float(gemm, "beta", 1.0), b) : NULL;
    if (!b2 || !pass_put_input(g, gemm, 2, b2) || !pass_put_attr_float(g, gemm, "beta", 1.0))
        return *nomem = true, false;
    gemm->inputs[1] = w2;
    return true;
}

static kiln_status nomem(kiln_ctx *ctx, const gir_node *bn) {
    char d[200];
    return kiln_fail(ctx, KILN_ERR_NOMEM, "fold_batch_norm: out of memory at %s", gir_node_desc(bn, d, sizeof d));
}

/* A 2-D MatMul A [M, K] x W [K, N] becomes Gemm(A, W', bias). */
static kiln_status matmul_fold(kiln_ctx *ctx, gir_graph *g, gir_node *mm, gir_node *bn, const bn_fold *b,
                               bool *done) {
    const gir_value *y = mm->outputs[0], *a = gir_input(mm, 0), *w = gir_input(mm, 1);
    kiln_dtype dt = y->type.dtype;
    if (y->type.rank != 2 || !a || a->type.rank != 2 || !float_const(w, dt) || w->constant->rank != 2 ||
        w->constant->dims[1] != b->ch || gir_opset_version(g, "") < 7)
        return KILN_OK;
    gir_value *w2 = scaled_weights(g, w, b, 1), *b2 = w2 ? folded_bias(ctx, g, dt, NULL, 1.0, b) : NULL;
    gir_value *ins[3] = {mm->inputs[0], w2, b2};
    gir_node *gemm = b2 ? pass_insert_node(g, mm, "Gemm", mm->name, ins, 3, 1, 0) : NULL;
    if (!gemm) return nomem(ctx, bn);
    pass_take_outputs(g, gemm, bn);
    pass_remove_node(g, mm);
    *done = true;
    return gir_bind_op(ctx, gemm);
}

static kiln_status fold_one(kiln_ctx *ctx, gir_graph *g, gir_node *bn, bn_fold *b, bool *done) {
    gir_node *p = bn->inputs[0]->producer;
    bool oom = false;
    *done = false;
    if (p->n_outputs != 1 || !bn_factors(bn, b)) return KILN_OK;
    if (is_op(p, "MatMul")) return matmul_fold(ctx, g, p, bn, b, done);
    if (is_op(p, "Conv")) *done = conv_fold(ctx, g, p, b, &oom);
    else if (is_op(p, "Gemm")) *done = gemm_fold(ctx, g, p, b, &oom);
    if (oom) return nomem(ctx, bn);
    /* the producer now computes the normalized value */
    char d[200];
    if (*done && !pass_bypass_node(g, bn, 0, 0))
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "fold_batch_norm: %s could not be bypassed",
                         gir_node_desc(bn, d, sizeof d));
    return KILN_OK;
}

kiln_status pass_fold_batch_norm(kiln_ctx *ctx, gir_graph *g) {
    kiln_status s = KILN_OK;
    for (int i = 0; i < g->n_nodes && !s;) {
        gir_node *bn = g->nodes[i];
        bn_fold b = {0};
        bool done = false;
        if (bn_applies(g, bn, &b)) {
            b.f = kiln_malloc(sizeof(double) * (size_t)b.ch);
            b.shift = kiln_malloc(sizeof(double) * (size_t)b.ch);
            s = b.f && b.shift ? fold_one(ctx, g, bn, &b, &done)
                               : kiln_fail(ctx, KILN_ERR_NOMEM, "fold_batch_norm: out of memory");
            kiln_free(b.f);
            kiln_free(b.shift);
        }
        /* a fold removed bn (and maybe its producer): look at slot i again */
        if (!done) i++;
        else if (i > 0) i--;
    }
    return s;
}
