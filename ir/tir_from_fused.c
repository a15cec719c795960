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
#include "dtype.h"
#include "lir.h"
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

/* ---- the epilogue as one stage ----
** Members after an anchor (bias, scale, activation, residual) each give a
** stage that reads the previous one. The anchor templates inline the
** stages that read the anchor itself; folding the chain into its last
** stage here (each load of a stage replaced by its body at that index)
** leaves them one epilogue stage that does. */

#define TF_MAX_BODY 400 /* expression nodes an epilogue stage may grow to */

static int tree_size(const ex_expr *e, int cap) {
    int n = 1;
    for (int i = 0; i < e->n_args && n < cap; i++) n += tree_size(e->args[i], cap - n);
    return n;
}

/* e with every load of P replaced by P's body at the load's index. */
static ex_expr *inline_loads(tir_func *f, ex_expr *e, const tir_stage *P) {
    if (!e || e->n_args == 0) return e;
    ex_expr *args[KILN_MAX_RANK > 3 ? KILN_MAX_RANK : 3];
    bool changed = false;
    if (e->n_args > (int)(sizeof args / sizeof args[0])) return NULL;
    for (int i = 0; i < e->n_args; i++) {
        args[i] = inline_loads(f, e->args[i], P);
        if (!args[i]) return NULL;
        changed |= args[i] != e->args[i];
    }
    if (e->kind == EX_LOAD && e->tensor == P->out)
        return ex_substitute(&f->eb, P->body, (const ex_var *const *)P->axes, args, P->n_axes);
    if (!changed) return e;
    return ex_with_args(&f->eb, e, args);
}

static bool reads_tensor(const ex_expr *e, const tir_tensor *t) {
    if (e->kind == EX_LOAD && e->tensor == t) return true;
    for (int i = 0; i < e->n_args; i++)
        if (reads_tensor(e->args[i], t)) return true;
    return false;
}

static bool is_anchor(const tir_stage *s) {
    return s->tag == TIR_TAG_CONV || s->tag == TIR_TAG_MATMUL || s->tag == TIR_TAG_POOL;
}

/* Whether stage k (after an anchor) folds into its readers: elementwise or
** a view's copy,
** not a result, read only by stages without reductions, and they stay small. */
static bool foldable(const tir_func *f, int k, tir_tensor *const *out, int n_out) {
    const tir_stage *P = f->stages[k];
    if (P->n_raxes || (P->tag != TIR_TAG_ELEMWISE && P->tag != TIR_TAG_INJECTIVE) || !P->body) return false;
    for (int i = 0; i < n_out; i++)
        if (out[i] == P->out) return false;
    int readers = 0;
    for (int j = k + 1; j < f->n_stages; j++) {
        const tir_stage *q = f->stages[j];
        if (!q->body || !reads_tensor(q->body, P->out)) continue;
        if (q->n_raxes || tree_size(q->body, TF_MAX_BODY) + tree_size(P->body, TF_MAX_BODY) >= TF_MAX_BODY)
            return false;
        readers++;
    }
    return readers > 0;
}

static kiln_status fold_epilogue(kiln_ctx *ctx, const gir_node *n, tir_func *f, tir_tensor *const *out, int n_out) {
    int anchor = -1;
    for (int k = 0; k < f->n_stages && anchor < 0; k++)
        if (is_anchor(f->stages[k])) anchor = k;
    for (int k = anchor + 1; anchor >= 0 && k < f->n_stages;) {
        if (!foldable(f, k, out, n_out)) {
            k++;
            continue;
        }
        const tir_stage *P = f->stages[k];
        for (int j = k + 1; j < f->n_stages; j++) {
            tir_stage *q = f->stages[j];
            ex_expr *b = inline_loads(f, q->body, P);
            if (!b) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory folding the epilogue");
            q->body = b;
        }
        for (int j = k; j + 1 < f->n_stages; j++) f->stages[j] = f->stages[j + 1];
        f->n_stages--;
    }
    for (int k = 0; k < f->n_stages; k++) f->stages[k]->id = k;
    return KILN_OK;
}

/* ---- index simplification ----
** A member after a view (Reshape, Flatten) reads it through the view's
** flatten/unflatten arithmetic: floordiv((i1 * 768 + i2), 768) and the
** like. Over the stage's axis ranges most of it cancels (to i1), which is
** what lets the templates see contiguous loads and vectorize. */

#define TF_MAX_VARS (2 * KILN_MAX_RANK + 8)

static ex_expr *simplify_loads(tir_func *f, ex_expr *e, const lir_var_range *r, int n) {
    if (!e || e->n_args == 0) return e;
    ex_expr *args[KILN_MAX_RANK > 3 ? KILN_MAX_RANK : 3];
    bool changed = false;
    if (e->n_args > (int)(sizeof args / sizeof args[0])) return e;
    for (int i = 0; i < e->n_args; i++) {
        args[i] = simplify_loads(f, e->args[i], r, n);
        if (args[i] && e->kind == EX_LOAD && kiln_dtype_is_int(args[i]->dtype))
            args[i] = lir_simplify_expr(&f->eb, args[i], r, n);
        if (!args[i]) return NULL;
        changed |= args[i] != e->args[i];
    }
    if (!changed) return e;
    return ex_with_args(&f->eb, e, args);
}

static kiln_status simplify_indices(kiln_ctx *ctx, const gir_node *n, tir_func *f) {
    for (int k = 0; k < f->n_stages; k++) {
        tir_stage *s = f->stages[k];
        lir_var_range r[TF_MAX_VARS];
        int nr = 0;
        if (!s->body || s->n_axes + s->n_raxes > TF_MAX_VARS) continue;
        for (int a = 0; a < s->n_axes; a++) r[nr++] = (lir_var_range){s->axes[a], 0, s->axes[a]->extent};
        for (int a = 0; a < s->n_raxes; a++) r[nr++] = (lir_var_range){s->raxes[a], 0, s->raxes[a]->extent};
        ex_expr *b = simplify_loads(f, s->body, r, nr);
        if (!b) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory simplifying indices");
        s->body = b;
    }
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
    if (!s) s = simplify_indices(ctx, n, f);
    if (!s) s = fold_epilogue(ctx, n, f, out, body->n_outputs);
    if (!s) s = simplify_indices(ctx, n, f);
    return s;
}
