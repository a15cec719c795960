/*
** extra_tree.c — tree ensembles: the evaluation shared by every form, and
** ai.onnx.ml TreeEnsemble (v5). The older TreeEnsembleRegressor and
** TreeEnsembleClassifier (extra_tree_legacy.c) are read into the same
** form: nodes that are branches (feature, comparison, two children) or
** leaves (a list of target/weight pairs); every sample walks every tree,
** the leaves' weights are aggregated per target, then post-transformed.
*/
#include <float.h>
#include <math.h>
#include <string.h>

#include "extra_ops.h"

void xo_te_free(xo_te *t) {
    kiln_free(t->nodes);
    kiln_free(t->roots);
    kiln_free(t->targets);
    kiln_free(t->weights);
    kiln_free(t->members);
    kiln_free(t->base);
    memset(t, 0, sizeof *t);
}

kiln_status xo_te_alloc(kiln_ctx *ctx, const gir_node *n, xo_te *t, int64_t nodes, int64_t roots, int64_t pairs,
                        int64_t members) {
    memset(t, 0, sizeof *t);
    t->nodes = kiln_calloc((size_t)nodes + 1, sizeof(xo_te_node));
    t->roots = kiln_calloc((size_t)roots + 1, sizeof(int64_t));
    t->targets = kiln_calloc((size_t)pairs + 1, sizeof(int64_t));
    t->weights = kiln_calloc((size_t)pairs + 1, sizeof(double));
    t->members = kiln_calloc((size_t)members + 1, sizeof(double));
    t->n_nodes = nodes;
    t->n_roots = roots;
    if (t->nodes && t->roots && t->targets && t->weights && t->members) return KILN_OK;
    xo_te_free(t);
    return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for %lld tree nodes", (long long)nodes);
}

/* ---- TreeEnsemble (ai.onnx.ml 5) ---- */

static int64_t ints_len(const gir_node *n, const char *name, const int64_t **v) {
    int c = gir_attr_ints(n, name, v);
    return c < 0 ? -1 : c;
}

static const kiln_tensor *tensor_attr(const gir_node *n, const char *name) {
    const gir_attr *a = xo_attr(n, name, GIR_ATTR_TENSOR);
    return a ? a->t : NULL;
}

typedef struct te5_attrs {
    const int64_t *feat, *tid, *fid, *tleaf, *fleaf, *miss, *ltarget, *roots;
    const kiln_tensor *splits, *modes, *lweights, *members;
    int64_t nn, nl, nr;
} te5_attrs;

static kiln_status te5_attrs_read(kiln_ctx *ctx, const gir_node *n, te5_attrs *a) {
    memset(a, 0, sizeof *a);
    a->nn = ints_len(n, "nodes_featureids", &a->feat);
    a->nl = ints_len(n, "leaf_targetids", &a->ltarget);
    a->nr = ints_len(n, "tree_roots", &a->roots);
    a->splits = tensor_attr(n, "nodes_splits");
    a->modes = tensor_attr(n, "nodes_modes");
    a->lweights = tensor_attr(n, "leaf_weights");
    a->members = tensor_attr(n, "membership_values");
    int64_t miss = ints_len(n, "nodes_missing_value_tracks_true", &a->miss);
    if (miss < 0) a->miss = NULL;
    bool ok = a->nn >= 0 && a->nl >= 0 && a->nr >= 0 && a->splits && a->modes && a->lweights &&
              ints_len(n, "nodes_truenodeids", &a->tid) == a->nn && ints_len(n, "nodes_falsenodeids", &a->fid) == a->nn &&
              ints_len(n, "nodes_trueleafs", &a->tleaf) == a->nn && ints_len(n, "nodes_falseleafs", &a->fleaf) == a->nn &&
              kiln_numel(a->splits) == a->nn && kiln_numel(a->modes) == a->nn && kiln_numel(a->lweights) == a->nl &&
              (miss < 0 || miss == a->nn);
    if (!ok)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the nodes_* and leaf_* attributes are missing or of different lengths");
    if (a->modes->dtype != KILN_U8 || !kiln_dtype_is_float(a->splits->dtype) ||
        !kiln_dtype_is_float(a->lweights->dtype) || (a->members && !kiln_dtype_is_float(a->members->dtype)))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "nodes_modes must be uint8, splits, weights and members float");
    return KILN_OK;
}

static kiln_status te5_child(kiln_ctx *ctx, const gir_node *n, const te5_attrs *a, int64_t i, bool leaf, int64_t id,
                             int64_t *out) {
    if (id < 0 || id >= (leaf ? a->nl : a->nn))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "node %lld points to %s %lld, which does not exist",
                            (long long)i, leaf ? "leaf" : "node", (long long)id);
    *out = leaf ? a->nn + id : id;
    return KILN_OK;
}

/* The members of each BRANCH_MEMBER node, in node order, end at a NaN. */
static kiln_status te5_members(kiln_ctx *ctx, const gir_node *n, const te5_attrs *a, xo_te *t) {
    int64_t at = 0, total = a->members ? kiln_numel(a->members) : 0;
    for (int64_t i = 0; i < a->nn; i++) {
        if (t->nodes[i].mode != XO_M_MEMBER) continue;
        t->nodes[i].set_at = at;
        while (at < total && !isnan(t->members[at])) at++;
        if (at >= total)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "membership_values has no NaN-ended set for node %lld",
                                (long long)i);
        t->nodes[i].set_n = at++ - t->nodes[i].set_at;
    }
    return KILN_OK;
}

static kiln_status te5_build(kiln_ctx *ctx, const gir_node *n, const te5_attrs *a, xo_te *t) {
    int64_t nm = a->members ? kiln_numel(a->members) : 0;
    kiln_status s = xo_te_alloc(ctx, n, t, a->nn + a->nl, a->nr, a->nl, nm);
    if (s) return s;
    for (int64_t k = 0; k < nm; k++) t->members[k] = kiln_load_f64(a->members->dtype, a->members->data, k);
    for (int64_t i = 0; i < a->nn && !s; i++) {
        xo_te_node *d = &t->nodes[i];
        d->mode = (int)kiln_load_i64(KILN_U8, a->modes->data, i);
        if (d->mode > XO_M_MEMBER) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "node %lld has mode %d", (long long)i, d->mode);
        d->feature = a->feat[i];
        d->split = kiln_load_f64(a->splits->dtype, a->splits->data, i);
        d->missing_true = a->miss && a->miss[i];
        s = te5_child(ctx, n, a, i, a->tleaf[i] != 0, a->tid[i], &d->tchild);
        if (!s) s = te5_child(ctx, n, a, i, a->fleaf[i] != 0, a->fid[i], &d->fchild);
    }
    for (int64_t l = 0; l < a->nl && !s; l++) {
        t->nodes[a->nn + l] = (xo_te_node){.mode = XO_M_LEAF, .leaf_at = l, .leaf_n = 1};
        t->targets[l] = a->ltarget[l];
        t->weights[l] = kiln_load_f64(a->lweights->dtype, a->lweights->data, l);
    }
    for (int64_t r = 0; r < a->nr && !s; r++) {
        if (a->roots[r] < 0 || a->roots[r] >= a->nn)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "tree root %lld does not exist", (long long)a->roots[r]);
        t->roots[r] = a->roots[r];
    }
    return s ? s : te5_members(ctx, n, a, t);
}

kiln_status xo_te_targets(kiln_ctx *ctx, const gir_node *n, xo_te *t, int64_t pairs, int64_t n_targets) {
    int64_t most = -1;
    for (int64_t k = 0; k < pairs; k++) {
        if (t->targets[k] < 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "target id %lld is negative", (long long)t->targets[k]);
        if (t->targets[k] > most) most = t->targets[k];
    }
    t->n_targets = n_targets >= 0 ? n_targets : most + 1;
    if (most >= t->n_targets || t->n_targets > ((int64_t)1 << 31))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "target id %lld is not below n_targets %lld", (long long)most,
                            (long long)t->n_targets);
    return KILN_OK;
}

static kiln_status te5_read(kiln_ctx *ctx, const gir_node *n, xo_te *t) {
    te5_attrs a;
    memset(t, 0, sizeof *t);
    kiln_status s = te5_attrs_read(ctx, n, &a);
    if (!s) s = te5_build(ctx, n, &a, t);
    if (!s) s = xo_te_targets(ctx, n, t, a.nl, gir_attr_int(n, "n_targets", -1));
    t->agg = (int)gir_attr_int(n, "aggregate_function", XO_AGG_SUM);
    t->post = (int)gir_attr_int(n, "post_transform", XO_POST_NONE);
    if (!s && (t->agg < XO_AGG_AVERAGE || t->agg > XO_AGG_MAX || t->post < XO_POST_NONE || t->post > XO_POST_PROBIT))
        s = kiln_op_fail(ctx, n, KILN_ERR_INVALID, "aggregate_function %d or post_transform %d is unknown", t->agg,
                         t->post);
    if (s) xo_te_free(t);
    return s;
}

/* ---- evaluation ---- */

static bool branch_true(const xo_te *t, const xo_te_node *d, double x) {
    if (isnan(x) && (d->missing_true || t->nan_by_flag)) return d->missing_true;
    switch (d->mode) {
    case XO_M_LEQ: return x <= d->split;
    case XO_M_LT: return x < d->split;
    case XO_M_GTE: return x >= d->split;
    case XO_M_GT: return x > d->split;
    case XO_M_EQ: return x == d->split;
    case XO_M_NEQ: return x != d->split;
    default:
        for (int64_t k = 0; k < d->set_n; k++)
            if (t->members[d->set_at + k] == x) return true;
        return false;
    }
}

/* The leaf that sample row reaches from root; -1 with a message for a cycle
** or a feature outside the row. */
static int64_t walk(kiln_ctx *ctx, const gir_node *n, const xo_te *t, const kiln_tensor *x, int64_t row, int64_t root) {
    int64_t at = root, f = x->dims[1];
    for (int64_t steps = 0; steps <= t->n_nodes; steps++) {
        const xo_te_node *d = &t->nodes[at];
        if (d->mode == XO_M_LEAF) return at;
        if (d->tchild == d->fchild) {
            at = d->tchild;
            continue;
        }
        if (d->feature < 0 || d->feature >= f) {
            kiln_op_fail(ctx, n, KILN_ERR_INVALID, "node %lld reads feature %lld of %lld", (long long)at,
                         (long long)d->feature, (long long)f);
            return -1;
        }
        double v = kiln_load_f64(x->dtype, x->data, row * f + d->feature);
        at = branch_true(t, d, v) ? d->tchild : d->fchild;
    }
    kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the tree from root %lld has a cycle", (long long)root);
    return -1;
}

/* Rounds to float when the scores are single precision, as ONNX's
** reference and ONNX Runtime accumulate them (ties then break alike). */
static double acc_round(const xo_te *t, double v) { return t->single ? (double)(float)v : v; }

kiln_status xo_te_row(kiln_ctx *ctx, const gir_node *n, const xo_te *t, const kiln_tensor *x, int64_t row,
                      double *acc) {
    bool minmax = t->agg == XO_AGG_MIN || t->agg == XO_AGG_MAX;
    for (int64_t j = 0; j < t->n_targets; j++) acc[j] = minmax ? t->init : 0;
    for (int64_t r = 0; r < t->n_roots; r++) {
        int64_t leaf = walk(ctx, n, t, x, row, t->roots[r]);
        if (leaf < 0) return KILN_ERR_INVALID;
        const xo_te_node *d = &t->nodes[leaf];
        for (int64_t k = d->leaf_at; k < d->leaf_at + d->leaf_n; k++) {
            int64_t j = t->targets[k];
            double w = acc_round(t, t->weights[k]);
            if (t->agg == XO_AGG_MIN) acc[j] = w < acc[j] ? w : acc[j];
            else if (t->agg == XO_AGG_MAX) acc[j] = w > acc[j] ? w : acc[j];
            else acc[j] = acc_round(t, acc[j] + w);
        }
    }
    for (int64_t j = 0; j < t->n_targets; j++) {
        if (t->agg == XO_AGG_AVERAGE && t->n_roots) acc[j] = acc_round(t, acc[j] / (double)t->n_roots);
        if (t->base) acc[j] = acc_round(t, acc[j] + acc_round(t, t->base[j]));
    }
    return KILN_OK;
}

static double erfinv(double y) {
    if (y <= -1) return -INFINITY;
    if (y >= 1) return INFINITY;
    double w = -log((1 - y) * (1 + y)), x; /* Giles' single-precision start, then Newton */
    if (w < 5) {
        w -= 2.5;
        x = 2.81022636e-08;
        x = 3.43273939e-07 + x * w;
        x = -3.5233877e-06 + x * w;
        x = -4.39150654e-06 + x * w;
        x = 0.00021858087 + x * w;
        x = -0.00125372503 + x * w;
        x = -0.00417768164 + x * w;
        x = 0.246640727 + x * w;
        x = 1.50140941 + x * w;
    } else {
        w = sqrt(w) - 3;
        x = -0.000200214257;
        x = 0.000100950558 + x * w;
        x = 0.00134934322 + x * w;
        x = -0.00367342844 + x * w;
        x = 0.00573950773 + x * w;
        x = -0.0076224613 + x * w;
        x = 0.00943887047 + x * w;
        x = 1.00167406 + x * w;
        x = 2.83297682 + x * w;
    }
    x *= y;
    for (int k = 0; k < 3; k++) x -= (erf(x) - y) / (2 / sqrt(M_PI) * exp(-x * x));
    return x;
}

/* SOFTMAX_ZERO as ONNX's reference and ONNX Runtime do it: entries within
** 1e-7 of zero are scaled rather than exponentiated; all zero gives 0.5. */
static void softmax(double *v, int64_t m, bool zero) {
    double hi = -INFINITY, sum = 0;
    for (int64_t j = 0; j < m; j++) hi = v[j] > hi ? v[j] : hi;
    for (int64_t j = 0; j < m; j++) {
        v[j] = zero && fabs(v[j]) <= 1e-7 ? v[j] * exp(-hi) : exp(v[j] - hi);
        sum += v[j];
    }
    for (int64_t j = 0; j < m; j++) v[j] = sum == 0 ? 0.5 : v[j] / sum;
}

void xo_te_post(int post, double *v, int64_t m) {
    if (post == XO_POST_LOGISTIC)
        for (int64_t j = 0; j < m; j++) v[j] = 1 / (1 + exp(-v[j]));
    if (post == XO_POST_PROBIT)
        for (int64_t j = 0; j < m; j++) v[j] = M_SQRT2 * erfinv(2 * v[j] - 1);
    if (post == XO_POST_SOFTMAX || post == XO_POST_SOFTMAX_ZERO) softmax(v, m, post == XO_POST_SOFTMAX_ZERO);
}

/* ---- TreeEnsemble kernels ---- */

static kiln_status check_x(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x) {
    if (x->rank != 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the input must be [N, features]");
    return KILN_OK;
}

kiln_status xo_tree_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_te t;
    kiln_status s = check_x(ctx, n, in[0]);
    if (!s) s = te5_read(ctx, n, &t);
    if (s) return s;
    int64_t dims[2] = {in[0]->dims[0], t.n_targets};
    xo_te_free(&t);
    kiln_tensor_init(&out[0], in[0]->dtype, 2, dims);
    return KILN_OK;
}

/* ONNX's reference starts MIN/MAX at the largest finite value of X's type. */
static double type_max(kiln_dtype dt) { return dt == KILN_F64 ? DBL_MAX : dt == KILN_F16 ? 65504.0 : FLT_MAX; }

kiln_status xo_tree_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_te t;
    kiln_status s = te5_read(ctx, n, &t);
    if (s) return s;
    t.init = t.agg == XO_AGG_MIN ? type_max(in[0]->dtype) : -type_max(in[0]->dtype);
    t.single = in[0]->dtype != KILN_F64;
    double *acc = kiln_malloc(sizeof(double) * (size_t)(t.n_targets + 1));
    if (!acc) s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for the scores");
    for (int64_t row = 0; row < in[0]->dims[0] && !s; row++) {
        s = xo_te_row(ctx, n, &t, in[0], row, acc);
        xo_te_post(t.post, acc, t.n_targets);
        for (int64_t j = 0; j < t.n_targets && !s; j++)
            kiln_store_f64(out[0].dtype, out[0].data, row * t.n_targets + j, acc[j]);
    }
    kiln_free(acc);
    xo_te_free(&t);
    return s;
}
