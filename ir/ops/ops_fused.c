/*
** ops_fused.c — kiln's own ops (domain "ai.kiln"): FusedKernel, the node
** that kernel fusion (passes/fuse_kernels.c) makes of a group of nodes.
**
** A FusedKernel holds its members as the subgraph attribute "body": the
** body's inputs are the node's inputs in order and its outputs the node's
** outputs. The body reads nothing from enclosing graphs; constants (weights)
** stay inputs of the node, so the kernel's placeholders carry them and a
** schedule may pack them. Its shape inference walks the members' inference,
** its reference kernel runs the body with the reference interpreter (the
** oracle: the same result as the unfused graph), and its compute definition
** composes the members' definitions (ir/tir_from_fused.c).
*/
#include <string.h>

#include "../interp.h"
#include "../tensor.h"

#define FK_MAX_IO 64

kiln_status tir_compose_fused(kiln_ctx *ctx, tir_func *f, const gir_node *n, gir_graph *body,
                              tir_tensor *const *in, tir_tensor **out);

/* The body, bound, with the node's arity. */
static kiln_status fk_body(kiln_ctx *ctx, const gir_node *n, gir_graph **out) {
    const gir_attr *a = gir_attr_find(n, "body");
    if (!a || a->kind != GIR_ATTR_GRAPH || !a->g)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'body' (a graph) is missing");
    gir_graph *g = a->g;
    if (g->n_inputs != n->n_inputs || g->n_outputs != n->n_outputs)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the body takes %d inputs and gives %d outputs; the node has %d and %d", g->n_inputs,
                            g->n_outputs, n->n_inputs, n->n_outputs);
    for (int i = 0; i < g->n_values; i++)
        if (gir_value_is_outer(g->values[i]))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the body reads '%s' from outside itself",
                                g->values[i]->name);
    kiln_status s = gir_bind_graph(ctx, g);
    if (s) return kiln_wrap(ctx, s, "body of node '%s'", n->name);
    *out = g;
    return KILN_OK;
}

/* The types (and, where known, data) of one member's inputs. */
static kiln_status fk_member_inputs(kiln_ctx *ctx, const gir_node *m, const kiln_tensor *vals, const bool *have,
                                    const kiln_tensor **in) {
    for (int k = 0; k < m->n_inputs; k++) {
        const gir_value *v = m->inputs[k];
        in[k] = NULL;
        if (!v) continue;
        if (v->constant) in[k] = v->constant;
        else if (have[v->id]) in[k] = &vals[v->id];
        else return kiln_fail(ctx, KILN_ERR_INVALID, "member '%s' reads '%s' before it is computed", m->name, v->name);
    }
    return KILN_OK;
}

/* Walks the members' inference from the node's input types. */
static kiln_status fk_infer_body(kiln_ctx *ctx, const gir_node *n, gir_graph *g, const kiln_tensor *const *in,
                                 kiln_tensor *vals, bool *have, kiln_tensor *out) {
    for (int i = 0; i < g->n_inputs; i++) {
        if (!in[i]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "input %d is missing", i);
        vals[g->inputs[i]->id] = *in[i];
        vals[g->inputs[i]->id].alloc = NULL;
        have[g->inputs[i]->id] = true;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *m = g->nodes[i];
        const kiln_tensor *mi[FK_MAX_IO];
        kiln_tensor mo[FK_MAX_IO];
        if (m->n_inputs > FK_MAX_IO || m->n_outputs > FK_MAX_IO)
            return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "member '%s' has too many inputs or outputs", m->name);
        memset(mo, 0, sizeof mo);
        kiln_status s = fk_member_inputs(ctx, m, vals, have, mi);
        if (!s) s = m->op->infer(ctx, m, mi, mo);
        if (s) return s;
        for (int k = 0; k < m->n_outputs; k++)
            if (m->outputs[k]) {
                vals[m->outputs[k]->id] = mo[k];
                vals[m->outputs[k]->id].data = NULL;
                vals[m->outputs[k]->id].alloc = NULL;
                have[m->outputs[k]->id] = true;
            }
    }
    for (int i = 0; i < g->n_outputs; i++) {
        const gir_value *v = g->outputs[i];
        if (!have[v->id]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "body output '%s' is not computed", v->name);
        kiln_tensor_init(&out[i], vals[v->id].dtype, vals[v->id].rank, vals[v->id].dims);
    }
    return KILN_OK;
}

static kiln_status infer_fused(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    gir_graph *g = NULL;
    kiln_status s = fk_body(ctx, n, &g);
    if (s) return s;
    size_t nv = (size_t)g->n_values + 1;
    kiln_tensor *vals = kiln_calloc(nv, sizeof *vals);
    bool *have = kiln_calloc(nv, sizeof *have);
    s = vals && have ? fk_infer_body(ctx, n, g, in, vals, have, out)
                     : kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory inferring the body");
    kiln_free(vals);
    kiln_free(have);
    return s;
}

/* Runs the body; its results go into the node's outputs (shaped by infer). */
static kiln_status ref_fused(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    gir_graph *g = NULL;
    kiln_status s = fk_body(ctx, n, &g);
    if (s) return s;
    kiln_tensor args[FK_MAX_IO], res[FK_MAX_IO];
    if (n->n_inputs > FK_MAX_IO || n->n_outputs > FK_MAX_IO)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "more than %d inputs or outputs", FK_MAX_IO);
    for (int i = 0; i < n->n_inputs; i++) {
        if (!in[i]) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "input %d is missing", i);
        args[i] = *in[i];
        args[i].alloc = NULL;
    }
    memset(res, 0, sizeof res);
    s = gir_interp_run(ctx, g, args, n->n_inputs, res, n->n_outputs);
    if (s) return kiln_wrap(ctx, s, "node '%s' (FusedKernel)", n->name);
    for (int i = 0; i < n->n_outputs && !s; i++) {
        if (!kiln_tensor_same_shape(&res[i], &out[i]) || res[i].dtype != out[i].dtype) {
            s = kiln_op_fail(ctx, n, KILN_ERR_INTERNAL, "output %d of the body differs from its inferred type", i);
        } else if (res[i].dtype == KILN_STRING) { /* owned strings: a deep copy */
            kiln_tensor_release(&out[i]);
            s = kiln_tensor_copy(ctx, &res[i], &out[i]);
        } else if (out[i].data && res[i].data) {
            memcpy(out[i].data, res[i].data, (size_t)kiln_numel(&res[i]) * kiln_dtype_size(res[i].dtype));
        }
    }
    for (int i = 0; i < n->n_outputs; i++) kiln_tensor_release(&res[i]);
    return s;
}

static kiln_status cmp_fused(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in,
                             tir_tensor **out) {
    gir_graph *g = NULL;
    kiln_status s = fk_body(ctx, n, &g);
    return s ? s : tir_compose_fused(ctx, f, n, g, in, out);
}

static const kiln_attr_schema k_fused_attrs[] = {{"body", GIR_ATTR_GRAPH, true}, {NULL}};

const kiln_op_def kiln_ops_fused[] = {
    {"FusedKernel", "ai.kiln", 1, KILN_MAX_OPSET, 1, FK_MAX_IO, 1, FK_MAX_IO, KILN_DT_ALL | KILN_DT_LOWP,
     KILN_FUSE_OPAQUE, k_fused_attrs, infer_fused, ref_fused, cmp_fused},
    {0},
};
