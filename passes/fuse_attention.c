/*
** fuse_attention.c — scaled dot-product attention as exporters write it
** becomes one Attention node (opset 23, bound at 23 or later whatever the
** model declares):
**
**   s = MatMul(Q, Kt) [-> Div(s, c) | Mul(s, c)]
**       [-> Add(s, mask) | Where(cond, s, very_negative)]
**   p = Softmax(s, last axis);  out = MatMul(p, V)
**
** Q [B,H,S,D], Kt [B,H,D,T], V [B,H,T,E] with static shapes and no
** broadcasting between them. Kt becomes K [B,H,T,D]: a Transpose that
** produced it gets the composed permutation; else a Transpose is added.
** The scale is a positive scalar constant; an additive mask has Q's type,
** broadcasts over [B,H,S,T] and spans all T keys (Attention pads a shorter
** last dim with "masked", where Add would broadcast). Where(cond, s, c)
** is fused only when c <= -1e30 (exp(c - max) is 0, as for a masked key)
** and cond is a constant with no row of only masked keys (Attention gives
** such a row zeros, Where a uniform average); a causal lower triangle
** becomes is_causal=1. Every intermediate must be read only by the pattern.
** One difference remains by definition: a row whose additive mask is -inf
** at every key gave NaN and gives zeros now (Attention's rule); finite
** masks (BERT's -10000) compute the same.
**
** Why the ONNX op and not a kiln-domain one: Attention says exactly this
** computation (scale, additive or boolean mask, causal), so the fused graph
** stays a standard ONNX graph that the reference interpreter, ONNX Runtime
** and the conformance tests all check, and its compute definition
** (ir/ops/compute_attention.c) serves models that use Attention directly.
*/
#include <math.h>
#include <string.h>

#include "fuse_util.h"
#include "ir/ctx.h"
#include "ir/op.h"
#include "ir/tensor.h"

typedef struct att_match {
    gir_value *q, *kt, *v, *mask, *out;
    double scale;
    bool causal;
    int64_t dims[4]; /* B, H, S, T */
    gir_node *nodes[6];
    int n_nodes;
} att_match;

static bool static4(const gir_value *v) { return v && v->type.rank == 4 && gir_type_is_static(&v->type); }

static int64_t dim(const gir_value *v, int d) { return v->type.dims[d].value; }

/* m broadcasts (numpy) to the scores' [B,H,S,T] with its last dim T. */
static bool mask_shape_ok(const gir_value *m, const att_match *a) {
    int r = m->type.rank;
    if (r < 2 || r > 4 || !gir_type_is_static(&m->type) || dim(m, r - 1) != a->dims[3]) return false;
    for (int d = 0; d < r - 1; d++) {
        int64_t e = dim(m, d), want = a->dims[4 - r + d];
        if (e != 1 && e != want) return false;
    }
    return true;
}

/* A constant bool cond over [.., S, T]: whether every row keeps a key, and
** whether it is the lower triangle (with S == T) broadcast over B and H. */
static bool cond_rows(const gir_value *c, const att_match *a, bool *tril) {
    const kiln_tensor *t = c->constant;
    if (!t || t->dtype != KILN_BOOL || !mask_shape_ok(c, a)) return false;
    int64_t tl = a->dims[3], rows = kiln_numel(t) / (tl ? tl : 1);
    int64_t s_dim = t->rank >= 2 ? t->dims[t->rank - 2] : 1;
    const uint8_t *p = t->data;
    *tril = s_dim == a->dims[2] && a->dims[2] == tl;
    for (int64_t r = 0; r < rows; r++) {
        bool any = false;
        int64_t i = r % s_dim;
        for (int64_t j = 0; j < tl; j++) {
            any |= p[r * tl + j] != 0;
            *tril &= (p[r * tl + j] != 0) == (j <= i);
        }
        if (!any) return false;
    }
    return true;
}

/* The mask step before Softmax (none, Add or Where); returns the scores
** value before it. */
static gir_value *match_mask(const gir_graph *g, gir_value *s, att_match *a) {
    gir_node *p = s->producer;
    if (!p || p->domain[0] || !fuse_private(g, s, 1)) return s;
    if (!strcmp(p->op_type, "Add") && p->n_inputs == 2) {
        for (int k = 0; k < 2; k++) {
            gir_value *x = p->inputs[k], *m = p->inputs[1 - k];
            if (x == m || !x->producer || !m || m->type.dtype != s->type.dtype || !mask_shape_ok(m, a)) continue;
            if (!fuse_producer(x, "MatMul") && !fuse_producer(x, "Div") && !fuse_producer(x, "Mul")) continue;
            a->mask = m;
            a->nodes[a->n_nodes++] = p;
            return x;
        }
        return s;
    }
    double c;
    bool tril = false;
    if (!strcmp(p->op_type, "Where") && p->n_inputs == 3 && fuse_scalar(p->inputs[2], &c) && c <= -1e30 &&
        p->inputs[1]->type.dtype == s->type.dtype && cond_rows(p->inputs[0], a, &tril)) {
        a->causal = tril;
        a->mask = tril ? NULL : p->inputs[0];
        a->nodes[a->n_nodes++] = p;
        return p->inputs[1];
    }
    return s;
}

/* The scale step: Div or Mul by a positive scalar constant. */
static gir_value *match_scale(const gir_graph *g, gir_value *s, att_match *a) {
    gir_node *p = s->producer;
    double c;
    a->scale = 1.0;
    if (!p || p->domain[0] || !fuse_private(g, s, 1) || p->n_inputs != 2) return s;
    if (!strcmp(p->op_type, "Div") && fuse_scalar(p->inputs[1], &c) && c > 0 && isfinite(c)) {
        a->scale = 1.0 / c;
    } else if (!strcmp(p->op_type, "Mul") && fuse_scalar(p->inputs[1], &c) && c > 0 && isfinite(c)) {
        a->scale = c;
    } else if (!strcmp(p->op_type, "Mul") && fuse_scalar(p->inputs[0], &c) && c > 0 && isfinite(c)) {
        a->scale = c;
        a->nodes[a->n_nodes++] = p;
        return p->inputs[1];
    } else {
        return s;
    }
    a->nodes[a->n_nodes++] = p;
    return p->inputs[0];
}

static bool shapes_ok(const att_match *a) {
    if (!static4(a->q) || !static4(a->kt) || !static4(a->v) || !kiln_dtype_is_float(a->q->type.dtype)) return false;
    if (a->kt->type.dtype != a->q->type.dtype || a->v->type.dtype != a->q->type.dtype) return false;
    for (int d = 0; d < 2; d++)
        if (dim(a->kt, d) != dim(a->q, d) || dim(a->v, d) != dim(a->q, d)) return false;
    return dim(a->kt, 2) == dim(a->q, 3) && dim(a->v, 2) == dim(a->kt, 3);
}

static bool match(const gir_graph *g, gir_node *sm, att_match *a) {
    memset(a, 0, sizeof *a);
    gir_value *s = sm->inputs[0];
    int64_t axis = gir_attr_int(sm, "axis", sm->opset < 13 ? 1 : -1);
    if (sm->n_inputs != 1 || !static4(s) || (axis != -1 && axis != 3)) return false;
    gir_node *pv = fuse_sole_consumer(g, sm->outputs[0], "MatMul");
    if (!pv || pv->inputs[0] != sm->outputs[0]) return false;
    for (int d = 0; d < 4; d++) a->dims[d] = dim(s, d);
    a->nodes[a->n_nodes++] = pv;
    a->nodes[a->n_nodes++] = sm;
    s = match_scale(g, match_mask(g, s, a), a);
    gir_node *qk = fuse_producer(s, "MatMul");
    if (!qk || !fuse_private(g, s, 1)) return false;
    a->nodes[a->n_nodes++] = qk;
    a->q = qk->inputs[0], a->kt = qk->inputs[1], a->v = pv->inputs[1], a->out = pv->outputs[0];
    return shapes_ok(a) && a->out->type.dtype == a->q->type.dtype;
}

/* K [B,H,T,D] from Kt: the producing Transpose's permutation with its last
** two entries swapped, or a new Transpose. */
static gir_value *key_operand(gir_graph *g, gir_node *before, gir_value *kt, gir_node **drop) {
    gir_node *tr = fuse_producer(kt, "Transpose");
    int64_t perm[4] = {0, 1, 3, 2};
    gir_value *src = kt;
    const int64_t *old;
    *drop = NULL;
    if (tr && fuse_private(g, kt, 1) && gir_attr_ints(tr, "perm", &old) == 4) {
        perm[0] = old[0], perm[1] = old[1], perm[2] = old[3], perm[3] = old[2];
        src = tr->inputs[0];
        *drop = tr;
        if (perm[0] == 0 && perm[1] == 1 && perm[2] == 2 && perm[3] == 3) return src; /* Kt was K transposed */
    }
    gir_node *n = pass_insert_node(g, before, "Transpose", NULL, &src, 1, 1, 1);
    if (!n || !pass_set_attr_ints(g, n, 0, "perm", perm, 4)) return NULL;
    n->opset = fuse_opset(g, "Transpose");
    gir_value *k = n->outputs[0];
    k->type = kt->type;
    k->type.dims[2] = kt->type.dims[3], k->type.dims[3] = kt->type.dims[2];
    return k;
}

static kiln_status rewrite(kiln_ctx *ctx, gir_graph *g, att_match *a) {
    gir_node *last = a->nodes[0], *drop = NULL;
    gir_value *k = key_operand(g, last, a->kt, &drop);
    gir_value *in[4] = {a->q, k, a->v, a->mask};
    gir_node *n = k ? fuse_replace(g, last, "Attention", last->name, in, a->mask ? 4 : 3, 2, a->out) : NULL;
    if (!n || !pass_set_attr_float(g, n, 0, "scale", a->scale) ||
        !pass_set_attr_int(g, n, 1, "is_causal", a->causal ? 1 : 0))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "pass fuse_attention: out of memory");
    fuse_remove(g, a->nodes, a->n_nodes);
    if (drop) pass_remove_node(g, drop);
    kiln_status s = k->producer && !k->producer->op ? fuse_bind(ctx, k->producer, "fuse_attention") : KILN_OK;
    return s ? s : fuse_bind(ctx, n, "fuse_attention");
}

kiln_status pass_fuse_attention(kiln_ctx *ctx, gir_graph *g) {
    if (!fuse_opset(g, "Attention")) return KILN_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        att_match a;
        if (strcmp(n->op_type, "Softmax") || n->domain[0] || !match(g, n, &a)) continue;
        kiln_status s = rewrite(ctx, g, &a);
        if (s) return s;
        i = -1;
    }
    return KILN_OK;
}
