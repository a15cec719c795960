/*
** extra_tree_legacy.c — ai.onnx.ml TreeEnsembleRegressor and
** TreeEnsembleClassifier (v1, and v3 with the *_as_tensor attributes).
** Nodes are named by (tree id, node id) and leaves are nodes of mode LEAF
** whose target (or class) weights are listed separately; they are read
** into the form extra_tree.c evaluates. As in ONNX's reference, a tree's
** root is its first node, and a NaN feature takes the branch its
** missing-value flag names.
*/
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "extra_ops.h"

/* A float list given as a FLOATS attribute or as a 1-D tensor attribute. */
typedef struct flist {
    const double *f;
    const kiln_tensor *t;
    int64_t n; /* -1: absent */
} flist;

static flist floats_attr(const gir_node *n, const char *name) {
    char tname[64];
    snprintf(tname, sizeof tname, "%s_as_tensor", name);
    const gir_attr *t = xo_attr(n, tname, GIR_ATTR_TENSOR), *a = xo_attr(n, name, GIR_ATTR_FLOATS);
    if (t && kiln_dtype_is_float(t->t->dtype)) return (flist){NULL, t->t, kiln_numel(t->t)};
    if (a) return (flist){a->floats, NULL, a->n};
    return (flist){NULL, NULL, -1};
}

static double fl_at(const flist *l, int64_t k) { return l->t ? kiln_load_f64(l->t->dtype, l->t->data, k) : l->f[k]; }

static int64_t ints_of(const gir_node *n, const char *name, const int64_t **v) {
    int c = gir_attr_ints(n, name, v);
    return c;
}

/* ---- (tree id, node id) lookup ---- */

typedef struct node_key {
    int64_t tree, node, index;
} node_key;

static int key_cmp(const void *a, const void *b) {
    const node_key *x = a, *y = b;
    if (x->tree != y->tree) return x->tree < y->tree ? -1 : 1;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static int64_t key_find(const node_key *k, int64_t n, int64_t tree, int64_t node) {
    int64_t lo = 0, hi = n - 1;
    while (lo <= hi) {
        int64_t mid = lo + (hi - lo) / 2;
        node_key q = {tree, node, k[mid].index};
        int c = key_cmp(&q, &k[mid]);
        if (!c) return k[mid].index;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return -1;
}

/* ---- reading ---- */

typedef struct legacy {
    const int64_t *tree, *node, *feat, *tid, *fid, *miss, *ptree, *pnode, *pid;
    const char **modes;
    flist values, weights, base;
    int64_t nn, np;
    node_key *keys;
} legacy;

static kiln_status mode_of(kiln_ctx *ctx, const gir_node *n, const char *s, int *mode) {
    static const char *const names[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE", "BRANCH_GT",
                                        "BRANCH_EQ", "BRANCH_NEQ", "BRANCH_MEMBER", "LEAF"};
    for (int k = 0; k < 8; k++)
        if (!strcmp(s, names[k]) && k != XO_M_MEMBER) return *mode = k, KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "node mode '%s' is unknown", s);
}

/* Reads the nodes_* attributes and the pairs named by prefix ("target" or
** "class"); every list must have its group's length. */
static kiln_status legacy_attrs(kiln_ctx *ctx, const gir_node *n, const char *prefix, legacy *L) {
    memset(L, 0, sizeof *L);
    char a[3][40];
    snprintf(a[0], sizeof a[0], "%s_treeids", prefix);
    snprintf(a[1], sizeof a[1], "%s_nodeids", prefix);
    snprintf(a[2], sizeof a[2], "%s_ids", prefix);
    const gir_attr *m = xo_attr(n, "nodes_modes", GIR_ATTR_STRINGS);
    L->nn = ints_of(n, "nodes_nodeids", &L->node);
    L->np = ints_of(n, a[2], &L->pid);
    L->values = floats_attr(n, "nodes_values");
    L->weights = floats_attr(n, !strcmp(prefix, "target") ? "target_weights" : "class_weights");
    L->base = floats_attr(n, "base_values");
    int64_t miss = ints_of(n, "nodes_missing_value_tracks_true", &L->miss);
    if (miss < 0) L->miss = NULL;
    bool ok = L->nn >= 0 && L->np >= 0 && m && m->n == L->nn && ints_of(n, "nodes_treeids", &L->tree) == L->nn &&
              ints_of(n, "nodes_featureids", &L->feat) == L->nn && ints_of(n, "nodes_truenodeids", &L->tid) == L->nn &&
              ints_of(n, "nodes_falsenodeids", &L->fid) == L->nn && (miss < 0 || miss == L->nn) &&
              (L->values.n < 0 || L->values.n == L->nn) && ints_of(n, a[0], &L->ptree) == L->np &&
              ints_of(n, a[1], &L->pnode) == L->np && L->weights.n == L->np;
    if (!ok)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the nodes_* or %s_* attributes are missing or of different lengths",
                            prefix);
    L->modes = m->strings;
    return KILN_OK;
}

static kiln_status legacy_keys(kiln_ctx *ctx, const gir_node *n, legacy *L) {
    L->keys = kiln_malloc(sizeof(node_key) * (size_t)(L->nn + 1));
    if (!L->keys) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for %lld nodes", (long long)L->nn);
    for (int64_t i = 0; i < L->nn; i++) L->keys[i] = (node_key){L->tree[i], L->node[i], i};
    qsort(L->keys, (size_t)L->nn, sizeof(node_key), key_cmp);
    for (int64_t i = 1; i < L->nn; i++)
        if (L->keys[i].tree == L->keys[i - 1].tree && L->keys[i].node == L->keys[i - 1].node)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "node %lld of tree %lld is listed twice",
                                (long long)L->keys[i].node, (long long)L->keys[i].tree);
    return KILN_OK;
}

static kiln_status legacy_nodes(kiln_ctx *ctx, const gir_node *n, const legacy *L, xo_te *t) {
    for (int64_t i = 0; i < L->nn; i++) {
        xo_te_node *d = &t->nodes[i];
        kiln_status s = mode_of(ctx, n, L->modes[i], &d->mode);
        if (s) return s;
        if (d->mode == XO_M_LEAF) continue;
        if (L->values.n < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "nodes_values is missing");
        d->feature = L->feat[i];
        d->split = fl_at(&L->values, i);
        d->missing_true = L->miss && L->miss[i];
        d->tchild = key_find(L->keys, L->nn, L->tree[i], L->tid[i]);
        d->fchild = key_find(L->keys, L->nn, L->tree[i], L->fid[i]);
        if (d->tchild < 0 || d->fchild < 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "a child of node %lld of tree %lld does not exist",
                                (long long)L->node[i], (long long)L->tree[i]);
    }
    return KILN_OK;
}

/* Groups the pairs by their leaf, keeping their listed order. */
static kiln_status legacy_pairs(kiln_ctx *ctx, const gir_node *n, const legacy *L, xo_te *t) {
    for (int64_t k = 0; k < L->np; k++) {
        int64_t at = key_find(L->keys, L->nn, L->ptree[k], L->pnode[k]);
        if (at < 0 || t->nodes[at].mode != XO_M_LEAF)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "weight %lld names node %lld of tree %lld, which is not a leaf",
                                (long long)k, (long long)L->pnode[k], (long long)L->ptree[k]);
        t->nodes[at].leaf_n++;
    }
    int64_t next = 0;
    for (int64_t i = 0; i < L->nn; i++) {
        t->nodes[i].leaf_at = next;
        next += t->nodes[i].leaf_n;
        t->nodes[i].leaf_n = 0;
    }
    for (int64_t k = 0; k < L->np; k++) {
        xo_te_node *d = &t->nodes[key_find(L->keys, L->nn, L->ptree[k], L->pnode[k])];
        t->targets[d->leaf_at + d->leaf_n] = L->pid[k];
        t->weights[d->leaf_at + d->leaf_n++] = fl_at(&L->weights, k);
    }
    return KILN_OK;
}

/* One root per tree id, in increasing id order: the tree's first node. */
static void legacy_roots(const legacy *L, xo_te *t) {
    int64_t r = 0;
    for (int64_t i = 0; i < L->nn; i++) {
        if (i > 0 && L->keys[i].tree == L->keys[i - 1].tree) {
            if (L->keys[i].index < t->roots[r - 1]) t->roots[r - 1] = L->keys[i].index;
            continue;
        }
        t->roots[r++] = L->keys[i].index;
    }
    t->n_roots = r;
}

static kiln_status post_of(kiln_ctx *ctx, const gir_node *n, int *post) {
    static const char *const names[] = {"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"};
    const char *s = gir_attr_string(n, "post_transform", "NONE");
    for (int k = 0; k < 5; k++)
        if (!strcmp(s, names[k])) return *post = k, KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "post_transform '%s' is unknown", s);
}

/* Reads either op into t; n_targets < 0 takes the largest id + 1. */
static kiln_status legacy_read(kiln_ctx *ctx, const gir_node *n, const char *prefix, int64_t n_targets, xo_te *t) {
    legacy L;
    kiln_status s = legacy_attrs(ctx, n, prefix, &L);
    if (s) return s;
    s = xo_te_alloc(ctx, n, t, L.nn, L.nn, L.np, 0);
    if (!s) s = legacy_keys(ctx, n, &L);
    if (!s) s = legacy_nodes(ctx, n, &L, t);
    if (!s) s = legacy_pairs(ctx, n, &L, t);
    if (!s) legacy_roots(&L, t);
    if (!s) s = xo_te_targets(ctx, n, t, L.np, n_targets);
    if (!s) s = post_of(ctx, n, &t->post);
    if (!s && L.base.n >= 0) {
        if (L.base.n != t->n_targets)
            s = kiln_op_fail(ctx, n, KILN_ERR_INVALID, "base_values has %lld entries for %lld targets",
                             (long long)L.base.n, (long long)t->n_targets);
        else if (!(t->base = kiln_calloc((size_t)t->n_targets + 1, sizeof(double))))
            s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for base values");
        for (int64_t j = 0; !s && j < t->n_targets; j++) t->base[j] = fl_at(&L.base, j);
    }
    t->nan_by_flag = t->single = true; /* the outputs are float */
    t->agg = XO_AGG_SUM;
    kiln_free(L.keys);
    if (s) xo_te_free(t);
    return s;
}

static kiln_status check_x(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x) {
    if (x->rank != 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the input must be [N, features]");
    return KILN_OK;
}

/* ---- TreeEnsembleRegressor ---- */

static kiln_status reg_read(kiln_ctx *ctx, const gir_node *n, xo_te *t) {
    static const char *const aggs[] = {"AVERAGE", "SUM", "MIN", "MAX"};
    const char *agg = gir_attr_string(n, "aggregate_function", "SUM");
    int k = 0;
    while (k < 4 && strcmp(agg, aggs[k])) k++;
    if (k == 4) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "aggregate_function '%s' is unknown", agg);
    kiln_status s = legacy_read(ctx, n, "target", gir_attr_int(n, "n_targets", -1), t);
    t->agg = k;
    t->init = k == XO_AGG_MIN ? FLT_MAX : -FLT_MAX;
    return s;
}

kiln_status xo_tree_reg_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_te t;
    kiln_status s = check_x(ctx, n, in[0]);
    if (!s) s = reg_read(ctx, n, &t);
    if (s) return s;
    int64_t dims[2] = {in[0]->dims[0], t.n_targets};
    xo_te_free(&t);
    kiln_tensor_init(&out[0], KILN_F32, 2, dims);
    return KILN_OK;
}

kiln_status xo_tree_reg_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_te t;
    kiln_status s = reg_read(ctx, n, &t);
    if (s) return s;
    double *acc = kiln_malloc(sizeof(double) * (size_t)(t.n_targets + 1));
    if (!acc) s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for the scores");
    for (int64_t row = 0; row < in[0]->dims[0] && !s; row++) {
        s = xo_te_row(ctx, n, &t, in[0], row, acc);
        xo_te_post(t.post, acc, t.n_targets);
        for (int64_t j = 0; j < t.n_targets && !s; j++) ((float *)out[0].data)[row * t.n_targets + j] = (float)acc[j];
    }
    kiln_free(acc);
    xo_te_free(&t);
    return s;
}

/* ---- TreeEnsembleClassifier ---- */

typedef struct cls_info {
    int64_t n_labels, width; /* width: columns of the scores */
    const int64_t *ilabels;
    const char **slabels;
    bool binary; /* every weight goes to one class */
} cls_info;

static kiln_status cls_read(kiln_ctx *ctx, const gir_node *n, xo_te *t, cls_info *c) {
    const gir_attr *il = xo_attr(n, "classlabels_int64s", GIR_ATTR_INTS);
    const gir_attr *sl = xo_attr(n, "classlabels_strings", GIR_ATTR_STRINGS);
    if (!il == !sl || (il ? il->n : sl->n) < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "exactly one non-empty classlabels_* attribute is needed");
    *c = (cls_info){il ? il->n : sl->n, 0, il ? il->ints : NULL, sl ? sl->strings : NULL, false};
    kiln_status s = legacy_read(ctx, n, "class", c->n_labels, t);
    if (s) return s;
    int64_t first = -1;
    c->binary = true;
    for (int64_t i = 0; i < t->n_nodes; i++)
        for (int64_t k = t->nodes[i].leaf_at; k < t->nodes[i].leaf_at + t->nodes[i].leaf_n; k++) {
            if (first < 0) first = t->targets[k];
            if (t->targets[k] != first) c->binary = false;
        }
    c->binary = c->binary && first >= 0 && c->n_labels <= 2;
    c->width = c->binary ? 2 : c->n_labels;
    if (c->n_labels == 1 && !(c->binary && c->ilabels && c->ilabels[0] == 1)) {
        xo_te_free(t);
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "a single class label is supported only as the int64 1");
    }
    return KILN_OK;
}

kiln_status xo_tree_cls_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_te t;
    cls_info c;
    kiln_status s = check_x(ctx, n, in[0]);
    if (!s) s = cls_read(ctx, n, &t, &c);
    if (s) return s;
    xo_te_free(&t);
    int64_t dims[2] = {in[0]->dims[0], c.width};
    kiln_tensor_init(&out[0], c.ilabels ? KILN_I64 : KILN_STRING, 1, dims);
    if (n->n_outputs > 1) kiln_tensor_init(&out[1], KILN_F32, 2, dims);
    return KILN_OK;
}

/* The binary case keeps one score s and reports [1 - s, s] (NONE, PROBIT)
** or [-s, s] (other transforms) before the transform, as ONNX's reference
** and ONNX Runtime do. */
static kiln_status cls_row(kiln_ctx *ctx, const gir_node *n, const xo_te *t, const cls_info *c, const kiln_tensor *x,
                           int64_t row, double *acc, int64_t *label) {
    kiln_status s = xo_te_row(ctx, n, t, x, row, acc);
    if (s) return s;
    if (c->binary) {
        double v = acc[t->targets[0]];
        bool plain = t->post == XO_POST_NONE || t->post == XO_POST_PROBIT;
        acc[0] = plain ? (double)(float)(1 - v) : -v;
        acc[1] = v;
    }
    xo_te_post(t->post, acc, c->width);
    int64_t best = 0;
    for (int64_t j = 1; j < c->width; j++)
        if (acc[j] > acc[best]) best = j;
    *label = best;
    return KILN_OK;
}

kiln_status xo_tree_cls_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_te t;
    cls_info c;
    kiln_status s = cls_read(ctx, n, &t, &c);
    if (s) return s;
    double *acc = kiln_malloc(sizeof(double) * (size_t)(c.width + t.n_targets + 1));
    if (!acc) s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for the scores");
    for (int64_t row = 0; row < in[0]->dims[0] && !s; row++) {
        int64_t best;
        s = cls_row(ctx, n, &t, &c, in[0], row, acc, &best);
        if (s) break;
        if (c.ilabels) ((int64_t *)out[0].data)[row] = c.n_labels == 1 ? (best == 1) : c.ilabels[best];
        else s = xo_set_str(ctx, n, (char **)out[0].data + row, c.slabels[best], strlen(c.slabels[best]));
        for (int64_t j = 0; j < c.width && n->n_outputs > 1; j++)
            ((float *)out[1].data)[row * c.width + j] = (float)acc[j];
    }
    kiln_free(acc);
    xo_te_free(&t);
    return s;
}
