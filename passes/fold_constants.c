/*
** fold_constants.c — compile-time evaluation of nodes whose inputs are known.
*/
#include <string.h>

#include "ir/interp.h"
#include "ir/tensor.h"
#include "pass.h"

#define MAX_IO 64

/* The input tensors of n if it can be folded: constants with data, and
** shape-only inputs with static shapes. */
static bool foldable_inputs(const gir_node *n, kiln_tensor *ts, const kiln_tensor **in) {
    for (int i = 0; i < n->n_inputs; i++) {
        gir_value *v = n->inputs[i];
        in[i] = NULL;
        if (!v) continue;
        if (v->constant) {
            in[i] = v->constant;
        } else if ((n->op->shape_only_inputs & (1u << i)) && gir_type_is_static(&v->type)) {
            gir_type_to_tensor(&v->type, &ts[i]);
            in[i] = &ts[i];
        } else {
            return false;
        }
    }
    return true;
}

/* Copies an owned result into the graph's arena as a constant. */
static kiln_tensor *to_constant(gir_graph *g, const kiln_tensor *t) {
    kiln_tensor *c = kiln_arena_alloc(g->arena, sizeof *c);
    if (!c) return NULL;
    *c = *t;
    c->alloc = NULL;
    size_t nb = kiln_nbytes(t);
    c->data = kiln_arena_alloc(g->arena, nb ? nb : 1);
    if (!c->data) return NULL;
    if (t->dtype == KILN_STRING) {
        char **dst = c->data, *const *src = t->data;
        for (int64_t i = 0; i < kiln_numel(t); i++)
            if (!(dst[i] = kiln_arena_strdup(g->arena, src[i] ? src[i] : ""))) return NULL;
    } else if (nb) {
        memcpy(c->data, t->data, nb);
    }
    return c;
}

static size_t output_bytes(const kiln_tensor *out, int n) {
    size_t total = 0;
    for (int k = 0; k < n; k++) {
        int64_t e = kiln_numel(&out[k]);
        size_t es = kiln_dtype_size(out[k].dtype);
        if (e < 0 || (uint64_t)e > SIZE_MAX / 2 / (es ? es : 1)) return SIZE_MAX;
        total += (size_t)e * es;
    }
    return total;
}

/* Folds one node; *folded tells whether it did. */
static kiln_status fold_node(kiln_ctx *ctx, gir_graph *g, gir_node *n, bool *folded) {
    kiln_tensor ts[MAX_IO], out[MAX_IO];
    const kiln_tensor *in[MAX_IO];
    *folded = false;
    if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO || n->op->nondeterministic) return KILN_OK;
    /* a subgraph reading values of this graph needs a run to see them */
    if (gir_node_reads_outer(n)) return KILN_OK;
    if (!foldable_inputs(n, ts, in)) return KILN_OK;
    memset(out, 0, sizeof(kiln_tensor) * (size_t)n->n_outputs);
    kiln_status s = n->op->infer(ctx, n, in, out);
    if (s == KILN_ERR_DYNAMIC) return KILN_OK;
    if (s) return s;
    if (n->n_inputs > 0 && output_bytes(out, n->n_outputs) > KILN_FOLD_MAX_BYTES) return KILN_OK;
    s = gir_run_node(ctx, n, in, out);
    if (s) return s;
    for (int k = 0; k < n->n_outputs && !s; k++) {
        gir_value *v = n->outputs[k];
        if (!v) continue;
        v->constant = to_constant(g, &out[k]);
        if (!v->constant) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory folding constants");
        gir_type_from_tensor(&v->type, &out[k]);
        v->producer = NULL;
    }
    for (int k = 0; k < n->n_outputs; k++) kiln_tensor_release(&out[k]);
    *folded = !s;
    return s;
}

/* One round over the nodes; folded nodes leave the node list. */
static kiln_status fold_round(kiln_ctx *ctx, gir_graph *g, bool *changed) {
    int kept = 0;
    kiln_status s = KILN_OK;
    *changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        bool folded = false;
        if (!s && !n->op) s = gir_bind_op(ctx, n);
        if (!s) s = fold_node(ctx, g, n, &folded);
        if (folded) {
            *changed = true;
            continue;
        }
        n->id = kept;
        g->nodes[kept++] = n;
    }
    g->n_nodes = kept;
    return s;
}

kiln_status pass_fold_constants(kiln_ctx *ctx, gir_graph *g) {
    bool changed = true;
    for (int round = 0; changed && round < 1000; round++) {
        kiln_status s = pass_infer_shapes(ctx, g);
        if (!s) s = fold_round(ctx, g, &changed);
        if (s) return s;
    }
    return KILN_OK;
}
