/*
** simplify_chains.c — two layout ops in a row become one, or none (see
** pass.h): Reshape/Flatten/Squeeze/Unsqueeze pairs between static shapes
** become one Reshape to the final shape; Transpose pairs one Transpose by
** the composed permutation; a pair that gives back its operand (the same
** shape, the identity permutation, Squeeze and Unsqueeze of the same axes)
** goes. The intermediate value must have no other reader: it is computed
** by the first node only for the second, which is what lets both go.
*/
#include <string.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "pass.h"

static bool is_op(const gir_node *n, const char *op) {
    return (!n->domain[0] || !strcmp(n->domain, "ai.onnx")) && !strcmp(n->op_type, op);
}

static bool reshape_like(const gir_node *n) {
    return is_op(n, "Reshape") || is_op(n, "Flatten") || is_op(n, "Squeeze") || is_op(n, "Unsqueeze");
}

/* The first node of a chain ending in n: the producer of n's operand, read
** by n alone. */
static gir_node *chain_head(const gir_graph *g, const gir_node *n) {
    gir_value *mid = gir_input(n, 0);
    if (!mid || !mid->producer || n->n_outputs != 1 || !n->outputs[0]) return NULL;
    if (!pass_value_replaceable(g, mid) || pass_count_uses(g, mid) != 1) return NULL;
    gir_node *p = mid->producer;
    return p->n_outputs == 1 && gir_input(p, 0) ? p : NULL;
}

/* n reads p's operand and passes it through: both go. False (nothing
** changed) when n's output cannot be bypassed. */
static bool drop_pair(gir_graph *g, gir_node *p, gir_node *n) {
    gir_value *mid = n->inputs[0];
    n->inputs[0] = p->inputs[0];
    if (!pass_bypass_node(g, n, 0, 0)) {
        n->inputs[0] = mid;
        return false;
    }
    pass_remove_node(g, p);
    return true;
}

/* Replaces the pair by node r (placed before n, reading p's operand). */
static kiln_status replace_pair(kiln_ctx *ctx, gir_graph *g, gir_node *p, gir_node *n, gir_node *r) {
    r->name = n->name;
    pass_take_outputs(g, r, n);
    pass_remove_node(g, p);
    return gir_bind_op(ctx, r);
}

static kiln_status nomem(kiln_ctx *ctx, const gir_node *n) {
    char d[200];
    return kiln_fail(ctx, KILN_ERR_NOMEM, "simplify_chains: out of memory at %s", gir_node_desc(n, d, sizeof d));
}

/* Reshape-like pairs between static shapes. */
static kiln_status reshape_chain(kiln_ctx *ctx, gir_graph *g, gir_node *p, gir_node *n, bool *done) {
    const gir_type *src = &p->inputs[0]->type, *dst = &n->outputs[0]->type;
    if (!gir_type_is_static(src) || !gir_type_is_static(dst) || src->dtype != dst->dtype) return KILN_OK;
    if (pass_same_static_type(src, dst)) {
        *done = drop_pair(g, p, n);
        if (*done) return KILN_OK;
    }
    int64_t shape[KILN_MAX_RANK];
    for (int i = 0; i < dst->rank; i++)
        if ((shape[i] = dst->dims[i].value) == 0) return KILN_OK; /* 0 would mean "copy the input's extent" */
    if (gir_opset_version(g, "") < 5) return KILN_OK;             /* Reshape took its shape as an attribute */
    kiln_tensor t;
    int64_t len = dst->rank;
    kiln_tensor_init(&t, KILN_I64, 1, &len);
    t.data = shape;
    gir_value *c = pass_new_constant(g, NULL, &t);
    gir_value *ins[2] = {p->inputs[0], c};
    gir_node *r = c ? pass_insert_node(g, n, "Reshape", NULL, ins, 2, 1, 0) : NULL;
    if (!r) return nomem(ctx, n);
    *done = true;
    return replace_pair(ctx, g, p, n, r);
}

/* A Transpose's permutation (the default reverses the axes); false when
** it is not a permutation of rank axes. */
static bool read_perm(const gir_node *n, int rank, int64_t *perm) {
    const int64_t *p;
    int count = gir_attr_ints(n, "perm", &p);
    bool seen[KILN_MAX_RANK] = {false};
    if (rank < 0 || rank > KILN_MAX_RANK || (count >= 0 && count != rank)) return false;
    for (int i = 0; i < rank; i++) {
        perm[i] = count < 0 ? rank - 1 - i : p[i];
        if (perm[i] < 0 || perm[i] >= rank || seen[perm[i]]) return false;
        seen[perm[i]] = true;
    }
    return true;
}

static kiln_status transpose_chain(kiln_ctx *ctx, gir_graph *g, gir_node *p, gir_node *n, bool *done) {
    int rank = p->inputs[0]->type.rank;
    int64_t p1[KILN_MAX_RANK], p2[KILN_MAX_RANK], c[KILN_MAX_RANK];
    if (!read_perm(p, rank, p1) || !read_perm(n, rank, p2)) return KILN_OK;
    bool identity = true;
    for (int i = 0; i < rank; i++) {
        c[i] = p1[p2[i]]; /* out dim i = mid dim p2[i] = src dim p1[p2[i]] */
        identity = identity && c[i] == i;
    }
    if (identity && (*done = drop_pair(g, p, n))) return KILN_OK;
    gir_node *r = pass_insert_node(g, n, "Transpose", NULL, p->inputs, 1, 1, 1);
    if (!r || !pass_set_attr_ints(g, r, 0, "perm", c, rank)) return nomem(ctx, n);
    *done = true;
    return replace_pair(ctx, g, p, n, r);
}

/* Squeeze/Unsqueeze axes (an attribute before opset 13, a constant input
** from 13); the count, or -1 when absent or unknown. */
static int read_axes(const gir_node *n, int64_t *axes) {
    const int64_t *a;
    if (n->opset < 13) {
        int count = gir_attr_ints(n, "axes", &a);
        if (count < 1 || count > KILN_MAX_RANK) return -1;
        memcpy(axes, a, sizeof(int64_t) * (size_t)count);
        return count;
    }
    const gir_value *v = gir_input(n, 1);
    if (!v || !v->constant || !v->constant->data || !kiln_dtype_is_int(v->constant->dtype)) return -1;
    int64_t m = kiln_numel(v->constant);
    if (m < 1 || m > KILN_MAX_RANK) return -1;
    for (int i = 0; i < (int)m; i++) axes[i] = kiln_tensor_i64(v->constant, i);
    return (int)m;
}

/* The axes as a bit set of positions in [0, rank); false when one is out
** of range or repeated. */
static bool axes_set(const int64_t *axes, int count, int rank, unsigned *set) {
    *set = 0;
    for (int i = 0; i < count; i++) {
        int64_t x = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (x < 0 || x >= rank || (*set & (1u << x))) return false;
        *set |= 1u << x;
    }
    return true;
}

/* Squeeze(Unsqueeze(x, a), a) and Unsqueeze(Squeeze(x, a), a) are x when
** shapes are known only by rank (static shapes took the reshape path).
** Both axis lists index the larger rank: Unsqueeze's output, Squeeze's
** input. (Unsqueeze∘Squeeze also drops Squeeze's check that those extents
** are 1, which a valid graph meets.) */
static void squeeze_pair(gir_graph *g, gir_node *p, gir_node *n, bool *done) {
    bool un_sq = is_op(p, "Unsqueeze") && is_op(n, "Squeeze");
    if (!un_sq && !(is_op(p, "Squeeze") && is_op(n, "Unsqueeze"))) return;
    int rank = p->inputs[0]->type.rank;
    int64_t a[KILN_MAX_RANK], b[KILN_MAX_RANK];
    int na = read_axes(p, a), nb = read_axes(n, b);
    if (rank < 0 || na < 0 || nb != na) return;
    int big = un_sq ? rank + na : rank;
    unsigned sa, sb;
    if (big > KILN_MAX_RANK || !axes_set(a, na, big, &sa) || !axes_set(b, nb, big, &sb) || sa != sb) return;
    *done = drop_pair(g, p, n);
}

static kiln_status simplify_at(kiln_ctx *ctx, gir_graph *g, gir_node *n, bool *done) {
    gir_node *p;
    *done = false;
    if ((!reshape_like(n) && !is_op(n, "Transpose")) || !(p = chain_head(g, n))) return KILN_OK;
    if (reshape_like(n) && reshape_like(p)) {
        kiln_status s = reshape_chain(ctx, g, p, n, done);
        if (s || *done) return s;
        squeeze_pair(g, p, n, done);
        return KILN_OK;
    }
    if (is_op(n, "Transpose") && is_op(p, "Transpose")) return transpose_chain(ctx, g, p, n, done);
    return KILN_OK;
}

kiln_status pass_simplify_chains(kiln_ctx *ctx, gir_graph *g) {
    for (int i = 0; i < g->n_nodes;) {
        bool done;
        kiln_status s = simplify_at(ctx, g, g->nodes[i], &done);
        if (s) return s;
        /* the pair left; the node now before slot i may start a new chain */
        i = done ? (i > 1 ? i - 1 : 0) : i + 1;
    }
    return KILN_OK;
}
