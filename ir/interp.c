/*
** interp.c — the reference interpreter.
*/
#include "interp.h"

#include <stdio.h>
#include <string.h>

kiln_status gir_bind_op(kiln_ctx *ctx, gir_node *n) {
    char d[256];
    bool any = false;
    const kiln_op_def *op = kiln_op_find(n->domain, n->op_type, n->opset, &any);
    if (!op && !any)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: unsupported op '%s%s%s'",
                         gir_node_desc(n, d, sizeof d), n->domain, n->domain[0] ? "::" : "", n->op_type);
    if (!op)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: opset %d of '%s' is not supported",
                         gir_node_desc(n, d, sizeof d), n->opset, n->op_type);
    if (n->n_inputs < op->min_inputs || n->n_inputs > op->max_inputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: has %d inputs, the op takes %d to %d",
                         gir_node_desc(n, d, sizeof d), n->n_inputs, op->min_inputs, op->max_inputs);
    if (n->n_outputs < op->min_outputs || n->n_outputs > op->max_outputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: has %d outputs, the op gives %d to %d",
                         gir_node_desc(n, d, sizeof d), n->n_outputs, op->min_outputs, op->max_outputs);
    for (int i = 0; i < op->min_inputs; i++)
        if (!n->inputs[i])
            return kiln_fail(ctx, KILN_ERR_INVALID, "%s: required input %d is missing",
                             gir_node_desc(n, d, sizeof d), i);
    n->op = op;
    return KILN_OK;
}

static kiln_status check_inputs(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in) {
    char d[256];
    const kiln_op_def *op = n->op;
    for (int i = 0; i < op->min_inputs; i++)
        if (!in[i])
            return kiln_fail(ctx, KILN_ERR_INVALID, "%s: required input %d is missing",
                             gir_node_desc(n, d, sizeof d), i);
    if (n->n_inputs > 0 && in[0] && !(op->dtypes & KILN_DT(in[0]->dtype)))
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: element type %s is not supported",
                         gir_node_desc(n, d, sizeof d), kiln_dtype_name(in[0]->dtype));
    for (int i = 0; i < n->n_inputs; i++)
        if (in[i] && !(op->shape_only_inputs & (1u << i)) && in[i]->rank > 0 && !in[i]->data &&
            kiln_numel(in[i]) != 0)
            return kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: input %d has no data",
                             gir_node_desc(n, d, sizeof d), i);
    return KILN_OK;
}

static void release_all(kiln_tensor *out, int n) {
    for (int i = 0; i < n; i++) kiln_tensor_release(&out[i]);
}

/* An op whose outputs' shapes only running it tells (control flow)
** allocates its outputs itself. */
static kiln_status run_dynamic(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    char d[256];
    memset(out, 0, sizeof(kiln_tensor) * (size_t)n->n_outputs);
    kiln_status s = n->op->reference(ctx, n, in, out);
    for (int i = 0; !s && i < n->n_outputs; i++) {
        const kiln_tensor *t = &out[i];
        if (t->rank < 0 || t->rank > KILN_MAX_RANK || !kiln_dtype_valid(t->dtype) || kiln_numel(t) < 0 ||
            (!t->data && kiln_numel(t) != 0))
            s = kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: the kernel left output %d unset",
                          gir_node_desc(n, d, sizeof d), i);
    }
    if (s) release_all(out, n->n_outputs);
    return s;
}

kiln_status gir_run_node(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         kiln_tensor *out) {
    char d[256];
    if (!n->op) return kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: op not bound", gir_node_desc(n, d, sizeof d));
    kiln_status s = check_inputs(ctx, n, in);
    if (s) return s;
    memset(out, 0, sizeof(kiln_tensor) * (size_t)n->n_outputs);
    s = n->op->infer(ctx, n, in, out);
    if (s == KILN_ERR_DYNAMIC && n->op->dynamic_outputs) return run_dynamic(ctx, n, in, out);
    if (s == KILN_ERR_DYNAMIC)
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: output shape unknown with all inputs known",
                         gir_node_desc(n, d, sizeof d));
    if (s) return s;
    for (int i = 0; i < n->n_outputs; i++) {
        if (out[i].rank < 0 || out[i].rank > KILN_MAX_RANK)
            return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: output rank %d exceeds %d",
                             gir_node_desc(n, d, sizeof d), out[i].rank, KILN_MAX_RANK);
        out[i].data = out[i].alloc = NULL;
        s = kiln_tensor_alloc(ctx, &out[i]);
        if (s) {
            release_all(out, i);
            return kiln_wrap(ctx, s, "%s: output %d", gir_node_desc(n, d, sizeof d), i);
        }
    }
    s = n->op->reference(ctx, n, in, out);
    if (s) release_all(out, n->n_outputs);
    return s;
}

/* State of one run: a tensor per value, and the node index of its last use. */
typedef struct interp_state {
    kiln_tensor *vals;
    bool *have;
    int *last_use;
} interp_state;

static kiln_status bind_inputs(kiln_ctx *ctx, const gir_graph *g, interp_state *st,
                               const kiln_tensor *inputs, int n_inputs) {
    if (n_inputs != g->n_inputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "the model takes %d inputs, %d were given",
                         g->n_inputs, n_inputs);
    for (int i = 0; i < g->n_values; i++) {
        gir_value *v = g->values[i];
        if (v->constant) {
            st->vals[v->id] = *v->constant;
            st->vals[v->id].alloc = NULL;
            st->have[v->id] = true;
        }
    }
    for (int i = 0; i < n_inputs; i++) {
        gir_value *v = g->inputs[i];
        const gir_type *ty = &v->type;
        const kiln_tensor *t = &inputs[i];
        char a[128];
        if (ty->dtype != KILN_UNDEFINED && ty->dtype != t->dtype)
            return kiln_fail(ctx, KILN_ERR_SHAPE, "input '%s' expects %s, got %s", v->name,
                             kiln_dtype_name(ty->dtype), kiln_shape_str(t, a, sizeof a));
        if (ty->rank >= 0) {
            bool ok = ty->rank == t->rank;
            for (int k = 0; ok && k < t->rank; k++)
                if (ty->dims[k].value >= 0 && ty->dims[k].value != t->dims[k]) ok = false;
            if (!ok)
                return kiln_fail(ctx, KILN_ERR_SHAPE, "input '%s' has shape %s, which the model does not accept",
                                 v->name, kiln_shape_str(t, a, sizeof a));
        }
        st->vals[v->id] = *t;
        st->vals[v->id].alloc = NULL;
        st->have[v->id] = true;
    }
    return KILN_OK;
}

static void compute_last_use(const gir_graph *g, interp_state *st) {
    for (int v = 0; v < g->n_values; v++) st->last_use[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k]) st->last_use[n->inputs[k]->id] = i;
        gir_note_outer_uses(g, n, i, st->last_use); /* values its subgraphs read */
    }
    for (int k = 0; k < g->n_outputs; k++) st->last_use[g->outputs[k]->id] = g->n_nodes;
}

static kiln_status run_one(kiln_ctx *ctx, const gir_graph *g, interp_state *st, int idx) {
    const gir_node *n = g->nodes[idx];
    const kiln_tensor *in[64];
    kiln_tensor out[64];
    char d[256];
    if (n->n_inputs > 64 || n->n_outputs > 64)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: more than 64 inputs or outputs",
                         gir_node_desc(n, d, sizeof d));
    for (int k = 0; k < n->n_inputs; k++) {
        gir_value *v = n->inputs[k];
        in[k] = NULL;
        if (!v) continue;
        if (!st->have[v->id])
            return kiln_fail(ctx, KILN_ERR_INVALID, "%s: input '%s' has no value (no producer runs before it)",
                             gir_node_desc(n, d, sizeof d), v->name);
        in[k] = &st->vals[v->id];
    }
    kiln_status s = gir_run_node(ctx, n, in, out);
    if (s) return s;
    for (int k = 0; k < n->n_outputs; k++) {
        gir_value *v = n->outputs[k];
        if (!v || st->have[v->id]) {
            kiln_tensor_release(&out[k]);
            continue;
        }
        st->vals[v->id] = out[k];
        st->have[v->id] = true;
    }
    return KILN_OK;
}

static void free_dead(const gir_graph *g, interp_state *st, int idx) {
    const gir_node *n = g->nodes[idx];
    for (int k = 0; k < n->n_inputs; k++) {
        gir_value *v = n->inputs[k];
        if (v && st->last_use[v->id] == idx) kiln_tensor_release(&st->vals[v->id]);
    }
    for (int k = 0; k < n->n_outputs; k++) {
        gir_value *v = n->outputs[k];
        if (v && st->last_use[v->id] < 0) kiln_tensor_release(&st->vals[v->id]);
    }
}

static kiln_status take_outputs(kiln_ctx *ctx, const gir_graph *g, interp_state *st,
                                kiln_tensor *outputs) {
    for (int i = 0; i < g->n_outputs; i++) {
        gir_value *v = g->outputs[i];
        if (!st->have[v->id])
            return kiln_fail(ctx, KILN_ERR_INVALID, "output '%s' is produced by no node", v->name);
    }
    for (int i = 0; i < g->n_outputs; i++) {
        kiln_tensor *t = &st->vals[g->outputs[i]->id];
        bool shared = false;
        for (int j = 0; j < i; j++) shared |= g->outputs[j] == g->outputs[i];
        if (t->alloc && !shared) {
            outputs[i] = *t;
            t->alloc = NULL; /* moved; the state keeps a borrowed view */
        } else {
            kiln_status s = kiln_tensor_copy(ctx, t, &outputs[i]);
            if (s) {
                release_all(outputs, i);
                return s;
            }
        }
    }
    return KILN_OK;
}

/* Binds the values a subgraph reads from the scopes around it. */
static kiln_status bind_outer(kiln_ctx *ctx, const gir_graph *g, interp_state *st, const gir_scope *scope) {
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        if (!gir_value_is_outer(v) || st->last_use[v->id] < 0) continue;
        /* a scope of g itself holds its outer values resolved in advance */
        const kiln_tensor *t = scope && scope->g == g && scope->have && scope->have[v->id] ? &scope->vals[v->id]
                                                                            : gir_scope_lookup(scope, v->name);
        if (!t)
            return kiln_fail(ctx, KILN_ERR_INVALID,
                             "graph '%s' reads '%s' from an enclosing graph, where no such value is available",
                             g->name ? g->name : "", v->name);
        st->vals[v->id] = *t;
        st->vals[v->id].alloc = NULL;
        st->have[v->id] = true;
    }
    return KILN_OK;
}

static kiln_status run_graph(kiln_ctx *ctx, const gir_graph *g, const gir_scope *scope, bool scoped,
                             const kiln_tensor *inputs, int n_inputs, kiln_tensor *outputs, int n_outputs) {
    if (n_outputs != g->n_outputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "the model has %d outputs, room for %d was given",
                         g->n_outputs, n_outputs);
    interp_state st;
    size_t nv = (size_t)g->n_values + 1;
    st.vals = kiln_calloc(nv, sizeof(kiln_tensor));
    st.have = kiln_calloc(nv, sizeof(bool));
    st.last_use = kiln_calloc(nv, sizeof(int));
    kiln_status s = KILN_OK;
    if (!st.vals || !st.have || !st.last_use) {
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory starting the interpreter");
        goto done;
    }
    s = bind_inputs(ctx, g, &st, inputs, n_inputs);
    if (s) goto done;
    compute_last_use(g, &st);
    if (scoped) s = bind_outer(ctx, g, &st, scope);
    if (s) goto done;
    gir_scope here = {scope, g, st.vals, st.have};
    const gir_scope *prev = gir_scope_enter(&here);
    for (int i = 0; i < g->n_nodes && !s; i++) {
        s = run_one(ctx, g, &st, i);
        if (!s) free_dead(g, &st, i);
    }
    gir_scope_leave(prev);
    if (!s) s = take_outputs(ctx, g, &st, outputs);
done:
    if (st.vals)
        for (int v = 0; v < g->n_values; v++) kiln_tensor_release(&st.vals[v]);
    kiln_free(st.vals);
    kiln_free(st.have);
    kiln_free(st.last_use);
    return s;
}

kiln_status gir_interp_run(kiln_ctx *ctx, const gir_graph *g, const kiln_tensor *inputs,
                           int n_inputs, kiln_tensor *outputs, int n_outputs) {
    return run_graph(ctx, g, NULL, false, inputs, n_inputs, outputs, n_outputs);
}

kiln_status gir_interp_run_scoped(kiln_ctx *ctx, const gir_graph *g, const gir_scope *scope,
                                  const kiln_tensor *inputs, int n_inputs, kiln_tensor *outputs,
                                  int n_outputs) {
    return run_graph(ctx, g, scope, true, inputs, n_inputs, outputs, n_outputs);
}
