/*
** tir_from_fused.c — the compute definition of a FusedKernel: its members'
** definitions composed in one tir_func.
**
** Each member's op->compute runs on the tensors made so far: the node's
** placeholders for the body's inputs (they carry the node's constants, so a
** member that needs a constant operand sees it), earlier members' stages
** for intermediate values. The body's outputs are the node's outputs. A
** member that cannot be compiled (no definition, an unsupported case) makes
** the whole node KILN_ERR_UNSUPPORTED, naming the member.
*/
#include <string.h>

#include "ctx.h"
#include "op.h"
#include "tir.h"

kiln_status tir_compose_fused(kiln_ctx *ctx, tir_func *f, const gir_node *n, gir_graph *body,
                              tir_tensor *const *in, tir_tensor **out);

#define TF_MAX_IO 64

/* One member: its inputs from the tensors made so far, its outputs recorded. */
static kiln_status tf_member(kiln_ctx *ctx, tir_func *f, const gir_node *n, const gir_node *m, tir_tensor **by_id) {
    tir_tensor *mi[TF_MAX_IO], *mo[TF_MAX_IO];
    char d[256];
    if (!m->op || !m->op->compute)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "member %s has no compute definition",
                            gir_node_desc(m, d, sizeof d));
    if (m->n_inputs > TF_MAX_IO || m->n_outputs > TF_MAX_IO)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "member %s has too many inputs or outputs",
                            gir_node_desc(m, d, sizeof d));
    for (int k = 0; k < m->n_inputs; k++) {
        const gir_value *v = m->inputs[k];
        mi[k] = v ? by_id[v->id] : NULL;
        if (v && !mi[k])
            return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "member %s reads '%s', which is not a tensor of the kernel",
                                gir_node_desc(m, d, sizeof d), v->name);
    }
    if (m->n_inputs > 0 && mi[0] && !(m->op->dtypes & KILN_DT(mi[0]->dtype)))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "member %s: element type %s is not supported",
                            gir_node_desc(m, d, sizeof d), kiln_dtype_name(mi[0]->dtype));
    memset(mo, 0, sizeof(tir_tensor *) * (size_t)(m->n_outputs ? m->n_outputs : 1));
    kiln_status s = m->op->compute(ctx, f, m, mi, mo);
    if (s) return kiln_wrap(ctx, s, "member of node '%s'", n->name);
    for (int k = 0; k < m->n_outputs; k++)
        if (m->outputs[k]) by_id[m->outputs[k]->id] = mo[k];
    return KILN_OK;
}

kiln_status tir_compose_fused(kiln_ctx *ctx, tir_func *f, const gir_node *n, gir_graph *body,
                              tir_tensor *const *in, tir_tensor **out) {
    tir_tensor **by_id = kiln_calloc((size_t)body->n_values + 1, sizeof *by_id);
    if (!by_id) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory composing the body");
    kiln_status s = KILN_OK;
    for (int i = 0; i < body->n_inputs; i++) by_id[body->inputs[i]->id] = in[i];
    for (int i = 0; i < body->n_values && !s; i++)
        if (body->values[i]->constant && !by_id[body->values[i]->id])
            s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "the body holds constant '%s' (constants are inputs of the node)",
                             body->values[i]->name);
    for (int i = 0; i < body->n_nodes && !s; i++) {
        s = tf_member(ctx, f, n, body->nodes[i], by_id);
        if (!s && f->eb.failed) s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory building the tensor IR");
    }
    for (int i = 0; i < body->n_outputs && !s; i++) {
        out[i] = by_id[body->outputs[i]->id];
        if (!out[i]) s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "body output '%s' is not computed",
                                      body->outputs[i]->name);
    }
    kiln_free(by_id);
    return s;
}
