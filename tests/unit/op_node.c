/*
** op_node.c — one node under test, in a graph of its own (see op_node.h).
*/
#include "op_node.h"

#include <string.h>

#include "ir/interp.h"
#include "ir/mem.h"
#include "ir/op.h"

void tn_init_dom(tnode *t, const char *dom, const char *op, int opset, int n_in, int n_out) {
    memset(t, 0, sizeof *t);
    t->g = gir_graph_new();
    kiln_ctx_new(&t->ctx);
    t->n = gir_node_new(t->g, op, "node_under_test", n_in, n_out, TN_MAX_ATTRS);
    t->n->domain = dom;
    t->n->opset = opset;
    t->n->n_attrs = 0;
    for (int i = 0; i < n_in; i++) t->n->inputs[i] = gir_value_new(t->g, NULL);
    for (int i = 0; i < n_out; i++) t->n->outputs[i] = gir_value_new(t->g, NULL);
}

void tn_init(tnode *t, const char *op, int opset, int n_in, int n_out) {
    tn_init_dom(t, "", op, opset, n_in, n_out);
}

/* Every slot, not just n_outputs: out[] starts zeroed and tn_infer fills it whole. */
void tn_free(tnode *t) {
    for (int i = 0; i < TN_MAX_OUT; i++) kiln_tensor_release(&t->out[i]);
    gir_graph_free(t->g);
    kiln_ctx_free(t->ctx);
}

gir_attr *tn_attr(tnode *t, const char *name, gir_attr_kind kind) {
    gir_attr *a = &t->n->attrs[t->n->n_attrs++];
    memset(a, 0, sizeof *a);
    a->name = name;
    a->kind = kind;
    return a;
}

void tn_int(tnode *t, const char *name, int64_t v) { tn_attr(t, name, GIR_ATTR_INT)->i = v; }
void tn_float(tnode *t, const char *name, double v) { tn_attr(t, name, GIR_ATTR_FLOAT)->f = v; }

void tn_string(tnode *t, const char *name, const char *v) {
    gir_attr *a = tn_attr(t, name, GIR_ATTR_STRING);
    a->s = v;
    a->s_len = strlen(v);
}

void tn_ints(tnode *t, const char *name, int count, int64_t *v) {
    gir_attr *a = tn_attr(t, name, GIR_ATTR_INTS);
    a->n = count;
    a->ints = v;
}

/* For values in a compound literal that ends before the node runs. */
void tn_ints_copy(tnode *t, const char *name, int count, const int64_t *v) {
    gir_attr *a = tn_attr(t, name, GIR_ATTR_INTS);
    a->n = count;
    a->ints = kiln_arena_memdup(t->g->arena, v, sizeof(int64_t) * (size_t)(count ? count : 1));
}

void tn_floats(tnode *t, const char *name, int count, double *v) {
    gir_attr *a = tn_attr(t, name, GIR_ATTR_FLOATS);
    a->n = count;
    a->floats = v;
}

void tn_strings(tnode *t, const char *name, int count, const char **v) {
    gir_attr *a = tn_attr(t, name, GIR_ATTR_STRINGS);
    a->n = count;
    a->strings = v;
}

void tn_tensor(tnode *t, const char *name, kiln_tensor *v) { tn_attr(t, name, GIR_ATTR_TENSOR)->t = v; }

kiln_status tn_run(tnode *t, const kiln_tensor *const *in) {
    kiln_status s = gir_bind_op(t->ctx, t->n);
    if (s) return s;
    return gir_run_node(t->ctx, t->n, in, t->out);
}

/* Lets the kernels for types an op's row does not list yet be tested anyway. */
kiln_status tn_run_unlisted(tnode *t, const kiln_tensor *const *in) {
    kiln_status s = gir_bind_op(t->ctx, t->n);
    if (s) return s;
    const kiln_op_def *op = t->n->op;
    if (op->dtypes & KILN_DT(in[0]->dtype)) return gir_run_node(t->ctx, t->n, in, t->out);
    s = op->infer(t->ctx, t->n, in, t->out);
    for (int i = 0; !s && i < t->n->n_outputs; i++) s = kiln_tensor_alloc(t->ctx, &t->out[i]);
    return s ? s : op->reference(t->ctx, t->n, in, t->out);
}

kiln_status tn_infer(tnode *t, const kiln_tensor *const *in) {
    kiln_status s = gir_bind_op(t->ctx, t->n);
    if (s) return s;
    memset(t->out, 0, sizeof t->out);
    return t->n->op->infer(t->ctx, t->n, in, t->out);
}

kiln_tensor tn_view(kiln_dtype dt, int rank, const int64_t *dims, const void *data) {
    kiln_tensor t;
    kiln_tensor_init(&t, dt, rank, dims);
    t.data = (void *)data;
    return t;
}

bool tn_dims_are(const kiln_tensor *t, int rank, const int64_t *dims) {
    if (t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i]) return false;
    return true;
}

bool tn_errmsg_has(const tnode *t, const char *s) { return strstr(kiln_errmsg(t->ctx), s) != NULL; }

bool tn_names_node(const tnode *t) { return tn_errmsg_has(t, "node_under_test"); }
