/*
** fuse_softmax.c — softmax written out by hand becomes one Softmax node:
**
**   m = ReduceMax(x, last axis, keepdims)   e = Exp(Sub(x, m))
**   out = Div(e, ReduceSum(e, last axis, keepdims))       -> Softmax(x, axis=-1)
**
** Only the max-subtracted form (the one that cannot overflow) is taken; the
** reductions must run over x's last axis alone and every intermediate be
** read only by the pattern. Folding a scale and an additive mask into the
** softmax is left to kernel fusion (fuse_kernels puts elementwise producers
** into the Softmax's kernel); the attention form QKt·s + mask → Softmax →
** ·V is fuse_attention's, which runs after this pass.
*/
#include <string.h>

#include "fuse_util.h"
#include "ir/ctx.h"
#include "ir/op.h"
#include "ir/tensor.h"

/* Whether r is a keepdims reduction over the last axis of a rank-`rank` input. */
static bool last_axis(const gir_node *r, int rank) {
    int64_t a;
    const int64_t *attr;
    if (gir_attr_int(r, "keepdims", 1) != 1 || rank < 1) return false;
    if (r->n_inputs > 1 && r->inputs[1]) {
        const kiln_tensor *t = r->inputs[1]->constant;
        if (!t || t->dtype != KILN_I64 || kiln_numel(t) != 1) return false;
        a = ((const int64_t *)t->data)[0];
    } else {
        if (r->n_inputs > 1 || gir_attr_ints(r, "axes", &attr) != 1) return false;
        a = attr[0];
    }
    return a == -1 || a == rank - 1;
}

static bool match(const gir_graph *g, gir_node *mx, gir_node **nodes, gir_value **x, gir_value **out) {
    *x = mx->inputs[0];
    if (!*x || !kiln_dtype_is_float((*x)->type.dtype) || (*x)->type.rank < 1 || !last_axis(mx, (*x)->type.rank))
        return false;
    gir_node *sub = fuse_sole_consumer(g, mx->outputs[0], "Sub");
    if (!sub || sub->inputs[0] != *x || sub->inputs[1] != mx->outputs[0]) return false;
    gir_node *ex = fuse_sole_consumer(g, sub->outputs[0], "Exp");
    gir_value *e = ex ? ex->outputs[0] : NULL;
    gir_node *c[2];
    if (!e || !fuse_private(g, e, 2) || pass_consumers(g, e, c, 2) != 2) return false;
    gir_node *sum = !strcmp(c[0]->op_type, "ReduceSum") ? c[0] : c[1], *div = sum == c[0] ? c[1] : c[0];
    if (strcmp(sum->op_type, "ReduceSum") || strcmp(div->op_type, "Div") || sum->inputs[0] != e ||
        !last_axis(sum, (*x)->type.rank) || div->inputs[0] != e || div->inputs[1] != sum->outputs[0] ||
        !fuse_private(g, sum->outputs[0], 1))
        return false;
    *out = div->outputs[0];
    if ((*out)->type.rank != (*x)->type.rank) return false;
    nodes[0] = mx, nodes[1] = sub, nodes[2] = ex, nodes[3] = sum, nodes[4] = div;
    return true;
}

kiln_status pass_fuse_softmax(kiln_ctx *ctx, gir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i], *nodes[5];
        gir_value *x, *out;
        if (strcmp(n->op_type, "ReduceMax") || n->domain[0] || !match(g, n, nodes, &x, &out)) continue;
        gir_node *sm = fuse_replace(g, nodes[4], "Softmax", nodes[4]->name, &x, 1, 1, out);
        if (!sm || !pass_set_attr_int(g, sm, 0, "axis", -1))
            return kiln_fail(ctx, KILN_ERR_NOMEM, "pass fuse_softmax: out of memory");
        fuse_remove(g, nodes, 5);
        kiln_status s = fuse_bind(ctx, sm, "fuse_softmax");
        if (s) return s;
        i = -1;
    }
    return KILN_OK;
}
