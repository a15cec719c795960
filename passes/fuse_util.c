/*
** fuse_util.c — helpers shared by the pattern fusion passes.
*/
#include <math.h>
#include <string.h>

#include "fuse_util.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/op.h"
#include "ir/tensor.h"

gir_node *fuse_producer(const gir_value *v, const char *op_type) {
    gir_node *p = v ? v->producer : NULL;
    if (!p || strcmp(p->op_type, op_type) || (p->domain[0] && strcmp(p->domain, "ai.onnx"))) return NULL;
    return p;
}

gir_node *fuse_sole_consumer(const gir_graph *g, const gir_value *v, const char *op_type) {
    gir_node *c = NULL;
    if (!v || !fuse_private(g, v, 1) || pass_consumers(g, v, &c, 1) != 1) return NULL;
    if (strcmp(c->op_type, op_type) || (c->domain[0] && strcmp(c->domain, "ai.onnx"))) return NULL;
    return c;
}

bool fuse_private(const gir_graph *g, const gir_value *v, int uses) {
    return v && v->producer && pass_value_replaceable(g, v) && pass_count_uses(g, v) == uses;
}

bool fuse_scalar(const gir_value *v, double *out) {
    if (!v || !v->constant || !kiln_dtype_is_float(v->constant->dtype) || kiln_numel(v->constant) != 1)
        return false;
    *out = kiln_tensor_f64(v->constant, 0);
    return true;
}

bool fuse_scalar_is(const gir_value *v, double want) {
    double x;
    return fuse_scalar(v, &x) && fabs(x - want) <= 1e-6 * fabs(want);
}

gir_value *fuse_other(const gir_node *n, const gir_value *v) {
    if (n->n_inputs != 2 || n->inputs[0] == n->inputs[1]) return NULL;
    if (n->inputs[0] == v) return n->inputs[1];
    if (n->inputs[1] == v) return n->inputs[0];
    return NULL;
}

int fuse_opset(const gir_graph *g, const char *op_type) {
    int64_t v = gir_opset_version(g, "");
    if (v < 1) v = 1;
    for (int64_t o = v; o <= KILN_MAX_OPSET; o++)
        if (kiln_op_find("", op_type, o, NULL)) return (int)o;
    return 0;
}

gir_node *fuse_replace(gir_graph *g, gir_node *before, const char *op_type, const char *name,
                       gir_value *const *inputs, int n_in, int n_attrs, gir_value *out) {
    int opset = fuse_opset(g, op_type);
    if (!opset) return NULL;
    gir_node *n = pass_insert_node(g, before, op_type, name, inputs, n_in, 1, n_attrs);
    if (!n) return NULL;
    n->opset = opset;
    gir_value *fresh = n->outputs[0];
    fresh->producer = NULL;
    n->outputs[0] = out;
    out->producer = n;
    out->producer_slot = 0;
    return n;
}

bool fuse_set_attr_string(gir_graph *g, gir_node *n, int k, const char *name, const char *v) {
    if (k < 0 || k >= n->n_attrs) return false;
    gir_attr *a = &n->attrs[k];
    memset(a, 0, sizeof *a);
    a->name = kiln_arena_strdup(g->arena, name);
    a->kind = GIR_ATTR_STRING;
    a->s = kiln_arena_strdup(g->arena, v);
    a->s_len = strlen(v);
    return a->name && a->s;
}

void fuse_remove(gir_graph *g, gir_node *const *nodes, int count) {
    for (int i = 0; i < count; i++)
        if (nodes[i]) pass_remove_node(g, nodes[i]);
}

kiln_status fuse_bind(kiln_ctx *ctx, gir_node *n, const char *pass) {
    kiln_status s = gir_bind_op(ctx, n);
    return s ? kiln_wrap(ctx, s, "pass %s: the fused node", pass) : KILN_OK;
}
