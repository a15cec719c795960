/*
** fuse_gelu.c — GELU as exporters write it becomes one Gelu node:
**
**   erf form   x * 0.5 * (1 + Erf(x / sqrt(2)))          -> Gelu
**   tanh form  0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
**                                                      -> Gelu approximate="tanh"
**
** x / sqrt(2) may be x * (1/sqrt(2)); x^3 may be Pow(x, 3), x * x * x or
** (x * x) * x; the 1 + t may be in either order; the products of x, 0.5 and
** (1 + t) may be grouped as ((x * 0.5) * s), (x * (s * 0.5)), ((x * s) * 0.5)
** and so on. Constants must be scalars within 1e-6 of their value, and every
** intermediate read only by the pattern. Gelu is bound at opset 20 or
** later whatever the model declares (kiln's own rewrite).
*/
#include <math.h>
#include <string.h>

#include "fuse_util.h"
#include "ir/ctx.h"
#include "ir/op.h"

#define MAX_NODES 10

typedef struct gelu_match {
    gir_value *x, *out;
    bool tanh;
    gir_node *nodes[MAX_NODES];
    int n_nodes;
} gelu_match;

static void add_node(gelu_match *m, gir_node *n) {
    if (m->n_nodes < MAX_NODES) m->nodes[m->n_nodes++] = n;
}

/* A two-input node of op_type; the input that is not the scalar `c`. */
static gir_value *by_scalar(const gir_node *n, const char *op_type, double c) {
    if (!n || strcmp(n->op_type, op_type) || n->n_inputs != 2) return NULL;
    if (fuse_scalar_is(n->inputs[1], c)) return n->inputs[0];
    if (strcmp(op_type, "Div") && fuse_scalar_is(n->inputs[0], c)) return n->inputs[1];
    return NULL;
}

/* Erf's argument: x / sqrt(2) or x * (1/sqrt(2)). */
static gir_value *erf_arg(const gir_graph *g, gir_node *e, gelu_match *m) {
    gir_node *p = e->inputs[0] ? e->inputs[0]->producer : NULL;
    if (!p || !fuse_private(g, e->inputs[0], 1)) return NULL;
    gir_value *x = by_scalar(p, "Div", sqrt(2.0));
    if (!x) x = by_scalar(p, "Mul", 1.0 / sqrt(2.0));
    if (x) add_node(m, p);
    return x;
}

/* x^3 as Pow(x, 3), x * (x * x) or (x * x) * x. */
static bool is_cube(const gir_graph *g, const gir_value *c, const gir_value *x, gelu_match *m) {
    gir_node *p = c ? c->producer : NULL;
    if (!p || !fuse_private(g, c, 1) || p->n_inputs != 2) return false;
    if (!strcmp(p->op_type, "Pow") && p->inputs[0] == x && fuse_scalar_is(p->inputs[1], 3.0)) {
        add_node(m, p);
        return true;
    }
    if (strcmp(p->op_type, "Mul")) return false;
    gir_value *sq = p->inputs[0] == x ? p->inputs[1] : p->inputs[1] == x ? p->inputs[0] : NULL;
    gir_node *q = sq ? fuse_producer(sq, "Mul") : NULL;
    if (!q || !fuse_private(g, sq, 1) || q->n_inputs != 2 || q->inputs[0] != x || q->inputs[1] != x) return false;
    add_node(m, p), add_node(m, q);
    return true;
}

/* Tanh's argument: sqrt(2/pi) * (x + 0.044715 * x^3). */
static gir_value *tanh_arg(const gir_graph *g, gir_node *t, gelu_match *m) {
    gir_node *p = t->inputs[0] ? t->inputs[0]->producer : NULL;
    if (!p || !fuse_private(g, t->inputs[0], 1)) return NULL;
    gir_value *inner = by_scalar(p, "Mul", sqrt(2.0 / M_PI));
    gir_node *add = inner && fuse_private(g, inner, 1) ? fuse_producer(inner, "Add") : NULL;
    if (!add || add->n_inputs != 2) return NULL;
    for (int k = 0; k < 2; k++) {
        gir_value *x = add->inputs[k], *term = add->inputs[1 - k];
        gir_node *mul = fuse_private(g, term, 1) ? fuse_producer(term, "Mul") : NULL;
        gir_value *cube = by_scalar(mul, "Mul", 0.044715);
        if (!cube) continue;
        int before = m->n_nodes;
        if (is_cube(g, cube, x, m)) {
            add_node(m, p), add_node(m, add), add_node(m, mul);
            return x;
        }
        m->n_nodes = before;
    }
    return NULL;
}

/* The product x * 0.5 * s, grouped any way, starting at the Mul that reads
** s (the 1 + t). Sets m->out. */
static bool match_product(const gir_graph *g, const gir_value *s, gelu_match *m) {
    gir_node *m1 = fuse_sole_consumer(g, s, "Mul");
    gir_value *o = m1 ? fuse_other(m1, s) : NULL;
    if (!o) return false;
    add_node(m, m1);
    gir_node *half = fuse_producer(o, "Mul");
    if (o != m->x && half && fuse_private(g, o, 1) && by_scalar(half, "Mul", 0.5) == m->x) {
        add_node(m, half); /* (x * 0.5) * s */
        m->out = m1->outputs[0];
        return true;
    }
    gir_node *m2 = fuse_sole_consumer(g, m1->outputs[0], "Mul");
    gir_value *o2 = m2 ? fuse_other(m2, m1->outputs[0]) : NULL;
    if (!o2) return false;
    bool ok = (o == m->x && fuse_scalar_is(o2, 0.5)) || (fuse_scalar_is(o, 0.5) && o2 == m->x);
    if (!ok) return false;
    add_node(m, m2);
    m->out = m2->outputs[0];
    return true;
}

/* From an Erf or Tanh node: the whole pattern around it. */
static bool match(const gir_graph *g, gir_node *fn, gelu_match *m) {
    memset(m, 0, sizeof *m);
    m->tanh = !strcmp(fn->op_type, "Tanh");
    if (fn->n_inputs != 1 || !fn->inputs[0]) return false;
    m->x = m->tanh ? tanh_arg(g, fn, m) : erf_arg(g, fn, m);
    if (!m->x || !kiln_dtype_is_float(m->x->type.dtype)) return false;
    add_node(m, fn);
    gir_node *one = fuse_sole_consumer(g, fn->outputs[0], "Add");
    gir_value *c = one ? fuse_other(one, fn->outputs[0]) : NULL;
    if (!c || !fuse_scalar_is(c, 1.0)) return false;
    add_node(m, one);
    if (!match_product(g, one->outputs[0], m)) return false;
    /* the result must have x's type (no broadcast by a constant of higher rank) */
    const gir_type *xt = &m->x->type, *ot = &m->out->type;
    if (ot->rank != xt->rank || ot->dtype != xt->dtype) return false;
    for (int d = 0; d < xt->rank; d++)
        if (ot->dims[d].value != xt->dims[d].value) return false;
    return true;
}

static kiln_status rewrite(kiln_ctx *ctx, gir_graph *g, gelu_match *m) {
    gir_node *last = m->out->producer;
    gir_node *n = fuse_replace(g, last, "Gelu", last->name, &m->x, 1, 1, m->out);
    if (!n || !fuse_set_attr_string(g, n, 0, "approximate", m->tanh ? "tanh" : "none"))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "pass fuse_gelu: out of memory");
    fuse_remove(g, m->nodes, m->n_nodes);
    return fuse_bind(ctx, n, "fuse_gelu");
}

kiln_status pass_fuse_gelu(kiln_ctx *ctx, gir_graph *g) {
    if (!fuse_opset(g, "Gelu")) return KILN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        gelu_match m;
        if (n->domain[0] || (strcmp(n->op_type, "Erf") && strcmp(n->op_type, "Tanh")) || !match(g, n, &m)) continue;
        kiln_status s = rewrite(ctx, g, &m);
        if (s) return s;
        i = -1;
    }
    return KILN_OK;
}
