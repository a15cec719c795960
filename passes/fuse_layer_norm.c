/*
** fuse_layer_norm.c — the decomposed LayerNorm that exporters write before
** opset 17 becomes one LayerNormalization node:
**
**   mean = ReduceMean(x, trailing axes)      d = Sub(x, mean)
**   var  = ReduceMean(Pow(d, 2) | Mul(d, d))  std = Sqrt(Add(var, eps))
**   y    = Div(d, std) [ -> Mul(y, scale) [ -> Add(., bias) ] ]
**
** eps must be a scalar constant; both reductions keep their dims and run
** over the same trailing axes of x; scale and bias are constants of x's
** type whose shape is the normalized shape (leading 1s allowed). Every
** intermediate must be read only by the pattern; anything else stays.
** The node is bound at opset 17 or later whatever the model declares: it
** is kiln's own rewrite, and LayerNormalization's compute definition
** computes per row what the pieces computed.
*/
#include <string.h>

#include "fuse_util.h"
#include "ir/ctx.h"
#include "ir/op.h"
#include "ir/tensor.h"

#define MAX_NODES 9

typedef struct ln_match {
    gir_value *x, *scale, *bias, *out;
    int axis; /* the first normalized axis of x */
    double eps;
    gir_node *nodes[MAX_NODES];
    int n_nodes;
} ln_match;

/* The axes a keepdims ReduceMean reduces, as the first of a trailing run of
** x's rank; -1 when they are not trailing (or not known). */
static int trailing_axes(const gir_node *r, int rank) {
    int64_t axes[KILN_MAX_RANK];
    int count;
    const int64_t *attr;
    if (gir_attr_int(r, "keepdims", 1) != 1 || rank < 1) return -1;
    if (r->n_inputs > 1) {
        const gir_value *a = r->inputs[1];
        if (!a || !a->constant || a->constant->dtype != KILN_I64) return -1;
        count = (int)kiln_numel(a->constant);
        if (count < 1 || count > rank) return -1;
        memcpy(axes, a->constant->data, sizeof(int64_t) * (size_t)count);
    } else {
        count = gir_attr_ints(r, "axes", &attr);
        if (count < 1 || count > rank) return -1;
        memcpy(axes, attr, sizeof(int64_t) * (size_t)count);
    }
    bool seen[KILN_MAX_RANK] = {false};
    for (int i = 0; i < count; i++) {
        int64_t a = axes[i] < 0 ? axes[i] + rank : axes[i];
        if (a < 0 || a >= rank || seen[a]) return -1;
        seen[a] = true;
    }
    for (int a = rank - count; a < rank; a++)
        if (!seen[a]) return -1;
    return rank - count;
}

/* A constant of x's dtype whose shape, leading 1s dropped, is x's dims
** from axis on (or a suffix of them that broadcasts the same way). */
static bool affine_ok(const gir_value *c, const gir_value *x, int axis) {
    if (!c || !c->constant || c->constant->dtype != x->type.dtype) return false;
    const kiln_tensor *t = c->constant;
    int lead = 0;
    while (lead < t->rank && t->dims[lead] == 1 && t->rank - lead > x->type.rank - axis) lead++;
    if (t->rank - lead != x->type.rank - axis) return false;
    for (int d = 0; d < x->type.rank - axis; d++)
        if (t->dims[lead + d] != x->type.dims[axis + d].value) return false;
    return true;
}

static void add_node(ln_match *m, gir_node *n) { m->nodes[m->n_nodes++] = n; }

/* The variance: ReduceMean(Pow(d, 2)) or ReduceMean(Mul(d, d)); *d_uses
** gets how many reads of d it makes. */
static gir_node *match_var(const gir_graph *g, gir_value *d, gir_node *sq, int *d_uses) {
    if (!strcmp(sq->op_type, "Pow")) {
        if (sq->n_inputs != 2 || sq->inputs[0] != d || !fuse_scalar_is(sq->inputs[1], 2.0)) return NULL;
        *d_uses = 1;
    } else if (!strcmp(sq->op_type, "Mul")) {
        if (sq->n_inputs != 2 || sq->inputs[0] != d || sq->inputs[1] != d) return NULL;
        *d_uses = 2;
    } else {
        return NULL;
    }
    return fuse_sole_consumer(g, sq->outputs[0], "ReduceMean");
}

/* The part after mean and d: variance, epsilon, Sqrt, Div. */
static bool match_core(const gir_graph *g, ln_match *m, gir_node *sub) {
    gir_value *d = sub->outputs[0];
    gir_node *c[3], *sq = NULL, *div = NULL;
    int nc = pass_consumers(g, d, c, 3), d_uses = 0;
    if (nc != 2) return false;
    for (int i = 0; i < 2; i++) {
        if (!strcmp(c[i]->op_type, "Div")) div = c[i];
        else sq = c[i];
    }
    if (!sq || !div || div->inputs[0] != d) return false;
    gir_node *var = match_var(g, d, sq, &d_uses);
    if (!var || trailing_axes(var, m->x->type.rank) != m->axis || !fuse_private(g, d, 1 + d_uses)) return false;
    gir_node *add = fuse_sole_consumer(g, var->outputs[0], "Add");
    gir_value *eps = add ? fuse_other(add, var->outputs[0]) : NULL;
    if (!eps || !fuse_scalar(eps, &m->eps) || !(m->eps >= 0)) return false;
    gir_node *sqrt = fuse_sole_consumer(g, add->outputs[0], "Sqrt");
    if (!sqrt || fuse_sole_consumer(g, sqrt->outputs[0], "Div") != div || div->inputs[1] != sqrt->outputs[0])
        return false;
    add_node(m, sub), add_node(m, sq), add_node(m, var), add_node(m, add), add_node(m, sqrt), add_node(m, div);
    return true;
}

/* The optional affine tail: Mul by scale, then Add of bias. */
static void match_affine(const gir_graph *g, ln_match *m) {
    gir_value *y = m->out;
    gir_node *mul = fuse_sole_consumer(g, y, "Mul");
    gir_value *s = mul ? fuse_other(mul, y) : NULL;
    if (!s || !affine_ok(s, m->x, m->axis) || mul->outputs[0]->type.rank != m->x->type.rank) return;
    m->scale = s;
    m->out = mul->outputs[0];
    add_node(m, mul);
    gir_node *add = fuse_sole_consumer(g, m->out, "Add");
    gir_value *b = add ? fuse_other(add, m->out) : NULL;
    if (!b || !affine_ok(b, m->x, m->axis) || add->outputs[0]->type.rank != m->x->type.rank) return;
    m->bias = b;
    m->out = add->outputs[0];
    add_node(m, add);
}

static bool match(const gir_graph *g, gir_node *mean, ln_match *m) {
    memset(m, 0, sizeof *m);
    m->x = mean->inputs[0];
    if (!m->x || !kiln_dtype_is_float(m->x->type.dtype) || !gir_type_is_static(&m->x->type)) return false;
    m->axis = trailing_axes(mean, m->x->type.rank);
    if (m->axis < 0) return false;
    gir_node *c[2];
    if (!fuse_private(g, mean->outputs[0], 1) || pass_consumers(g, mean->outputs[0], c, 2) != 1) return false;
    gir_node *sub = c[0];
    if (strcmp(sub->op_type, "Sub") || sub->n_inputs != 2 || sub->inputs[0] != m->x ||
        sub->inputs[1] != mean->outputs[0])
        return false;
    add_node(m, mean);
    if (!match_core(g, m, sub)) return false;
    m->out = m->nodes[m->n_nodes - 1]->outputs[0];
    match_affine(g, m);
    return true;
}

/* A constant of the normalized shape filled with v (for the missing scale). */
static gir_value *filled(gir_graph *g, const ln_match *m, double v) {
    kiln_tensor t;
    int64_t dims[KILN_MAX_RANK];
    int r = m->x->type.rank - m->axis;
    for (int d = 0; d < r; d++) dims[d] = m->x->type.dims[m->axis + d].value;
    kiln_tensor_init(&t, m->x->type.dtype, r, dims);
    int64_t count = kiln_numel(&t);
    t.data = kiln_malloc(kiln_nbytes(&t) ? kiln_nbytes(&t) : 1);
    if (!t.data) return NULL;
    for (int64_t i = 0; i < count; i++) kiln_store_f64(t.dtype, t.data, i, v);
    gir_value *c = pass_new_constant(g, NULL, &t);
    kiln_free(t.data);
    return c;
}

static kiln_status rewrite(kiln_ctx *ctx, gir_graph *g, ln_match *m) {
    gir_value *in[3] = {m->x, m->scale, m->bias};
    if (!in[1] && !(in[1] = filled(g, m, 1.0)))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "pass fuse_layer_norm: out of memory");
    gir_node *last = m->nodes[m->n_nodes - 1];
    gir_node *n = fuse_replace(g, last, "LayerNormalization", last->name, in, m->bias ? 3 : 2, 2, m->out);
    if (!n || !pass_set_attr_int(g, n, 0, "axis", m->axis) || !pass_set_attr_float(g, n, 1, "epsilon", m->eps))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "pass fuse_layer_norm: out of memory");
    fuse_remove(g, m->nodes, m->n_nodes);
    return fuse_bind(ctx, n, "fuse_layer_norm");
}

kiln_status pass_fuse_layer_norm(kiln_ctx *ctx, gir_graph *g) {
    if (!fuse_opset(g, "LayerNormalization")) return KILN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        ln_match m;
        if (strcmp(n->op_type, "ReduceMean") || n->domain[0] || !match(g, n, &m)) continue;
        kiln_status s = rewrite(ctx, g, &m);
        if (s) return s;
        i = -1; /* node positions moved: rescan (each rewrite removes nodes) */
    }
    return KILN_OK;
}
