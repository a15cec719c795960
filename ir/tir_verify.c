/*
** tir_verify.c — the tensor-IR verifier: the structural rules every
** compute definition must keep (see tir.h). Messages name the function,
** the stage and what is wrong.
*/
#include <stdio.h>

#include "ctx.h"
#include "dtype.h"
#include "tir.h"

typedef struct tv_state {
    kiln_ctx *ctx;
    const tir_func *f;
    const tir_stage *s; /* the stage whose body is walked */
    bool in_reduce;     /* inside the stage's top-level reduction */
} tv_state;

static kiln_status tv_fail(tv_state *v, const char *fmt, const char *arg) {
    char msg[256];
    snprintf(msg, sizeof msg, fmt, arg);
    return kiln_fail(v->ctx, KILN_ERR_INVALID, "tensor IR '%s', stage '%s': %s", v->f->name,
                     v->s ? v->s->name : "?", msg);
}

/* A tensor the stage may read: a placeholder of f or an earlier stage. */
static bool tv_readable(const tv_state *v, const struct tir_tensor *t) {
    const tir_func *f = v->f;
    if (!t->stage) return t->arg_index >= 0 && t->arg_index < f->n_inputs && f->inputs[t->arg_index] == t;
    const tir_stage *p = t->stage;
    return p->id >= 0 && p->id < v->s->id && f->stages[p->id] == p && p->out == t;
}

static bool tv_is_axis(const tir_stage *s, const ex_var *x, bool reduce) {
    int n = reduce ? s->n_raxes : s->n_axes;
    ex_var *const *list = reduce ? s->raxes : s->axes;
    for (int i = 0; i < n; i++)
        if (list[i] == x) return true;
    return false;
}

static kiln_status tv_expr(tv_state *v, const ex_expr *e);

static kiln_status tv_load(tv_state *v, const ex_expr *e) {
    const struct tir_tensor *t = e->tensor;
    if (!t) return tv_fail(v, "a load %s reads a loop-IR buffer", "");
    if (!tv_readable(v, t))
        return tv_fail(v, "reads '%s', which is neither an input nor an earlier stage", t->name);
    if (e->n_args != t->rank) return tv_fail(v, "a load of '%s' has the wrong number of indices", t->name);
    if (e->dtype != t->dtype) return tv_fail(v, "a load of '%s' has the wrong element type", t->name);
    for (int i = 0; i < e->n_args; i++) {
        if (!e->args[i]) return tv_fail(v, "a load of '%s' has a missing index", t->name);
        if (e->args[i]->dtype != KILN_I64) return tv_fail(v, "an index into '%s' is not i64", t->name);
        kiln_status st = tv_expr(v, e->args[i]);
        if (st) return st;
    }
    return KILN_OK;
}

static kiln_status tv_reduce(tv_state *v, const ex_expr *e) {
    const tir_stage *s = v->s;
    if (v->in_reduce || e != s->body) return tv_fail(v, "a reduction is nested inside an expression%s", "");
    if (e->n_raxes != s->n_raxes) return tv_fail(v, "the reduction's axes differ from the stage's%s", "");
    for (int i = 0; i < e->n_raxes; i++)
        if (!tv_is_axis(s, e->raxes[i], true))
            return tv_fail(v, "reduces over '%s', which is not a reduction axis of the stage", e->raxes[i]->name);
    if (e->args[1]->dtype != e->dtype || e->args[0]->dtype != e->dtype)
        return tv_fail(v, "the reduction's operand and init differ in element type%s", "");
    kiln_status st = tv_expr(v, e->args[1]); /* init: spatial axes only */
    if (st) return st;
    v->in_reduce = true;
    st = tv_expr(v, e->args[0]);
    v->in_reduce = false;
    return st;
}

static kiln_status tv_operands(tv_state *v, const ex_expr *e) {
    for (int i = 0; i < e->n_args; i++) {
        if (!e->args[i]) return tv_fail(v, "an expression has a missing operand%s", "");
        kiln_status st = tv_expr(v, e->args[i]);
        if (st) return st;
    }
    return KILN_OK;
}

static kiln_status tv_expr(tv_state *v, const ex_expr *e) {
    if (!e) return tv_fail(v, "an expression is missing%s", "");
    switch (e->kind) {
    case EX_INT:
    case EX_FLOAT: return KILN_OK;
    case EX_VAR:
        if (tv_is_axis(v->s, e->var, false)) return KILN_OK;
        if (v->in_reduce && tv_is_axis(v->s, e->var, true)) return KILN_OK;
        return tv_fail(v, "uses variable '%s', which is not an axis in scope", e->var->name);
    case EX_LOAD: return tv_load(v, e);
    case EX_REDUCE: return tv_reduce(v, e);
    case EX_BINARY:
        if (e->n_args != 2 || !e->args[0] || !e->args[1] || e->args[0]->dtype != e->args[1]->dtype)
            return tv_fail(v, "a binary '%s' has operands of different element types", ex_binop_name(e->op));
        break;
    case EX_SELECT:
        if (e->n_args != 3 || !e->args[0] || e->args[0]->dtype != KILN_BOOL || !e->args[1] || !e->args[2] ||
            e->args[1]->dtype != e->dtype || e->args[2]->dtype != e->dtype)
            return tv_fail(v, "a select has a non-bool condition or branches of different types%s", "");
        break;
    case EX_UNARY:
    case EX_CAST:
        if (e->n_args != 1) return tv_fail(v, "a unary expression has the wrong arity%s", "");
        break;
    }
    return tv_operands(v, e);
}

static kiln_status tv_stage(tv_state *v, int k) {
    const tir_stage *s = v->f->stages[k];
    v->s = s;
    if (!s || !s->out || s->id != k || s->out->stage != s)
        return kiln_fail(v->ctx, KILN_ERR_INVALID, "tensor IR '%s': stage %d is malformed", v->f->name, k);
    const tir_tensor *t = s->out;
    if (s->n_axes != t->rank) return tv_fail(v, "has %s spatial axes for its output's rank", "the wrong number of");
    for (int d = 0; d < s->n_axes; d++)
        if (!s->axes[d] || s->axes[d]->reduce || s->axes[d]->extent != t->dims[d])
            return tv_fail(v, "spatial axis '%s' does not match its output dim", s->axes[d] ? s->axes[d]->name : "?");
    for (int r = 0; r < s->n_raxes; r++)
        if (!s->raxes[r] || !s->raxes[r]->reduce || s->raxes[r]->extent < 0)
            return tv_fail(v, "reduction axis '%s' is malformed", s->raxes[r] ? s->raxes[r]->name : "?");
    if (!s->body) return tv_fail(v, "has no body%s", "");
    if (s->body->dtype != t->dtype)
        return tv_fail(v, "its body's element type differs from its output's (%s)", kiln_dtype_name(t->dtype));
    if ((s->body->kind == EX_REDUCE) != (s->n_raxes > 0))
        return tv_fail(v, "%s", s->n_raxes ? "has reduction axes but no reduction at the top"
                                           : "has a reduction but no reduction axes");
    return tv_expr(v, s->body);
}

static kiln_status tv_inputs(kiln_ctx *ctx, const tir_func *f) {
    for (int i = 0; i < f->n_inputs; i++) {
        const tir_tensor *t = f->inputs[i];
        if (!t || t->stage || t->arg_index != i || t->rank < 0 || t->rank > KILN_MAX_RANK ||
            !kiln_dtype_valid(t->dtype))
            return kiln_fail(ctx, KILN_ERR_INVALID, "tensor IR '%s': input %d is malformed", f->name, i);
        const kiln_tensor *c = t->constant;
        bool ok = !c || (c->dtype == t->dtype && c->rank == t->rank);
        for (int d = 0; c && ok && d < t->rank; d++) ok = c->dims[d] == t->dims[d];
        if (!ok)
            return kiln_fail(ctx, KILN_ERR_INVALID, "tensor IR '%s': input '%s' is bound to data of another type",
                             f->name, t->name);
    }
    return KILN_OK;
}

static kiln_status tv_outputs(kiln_ctx *ctx, const tir_func *f) {
    for (int i = 0; i < f->n_outputs; i++) {
        const tir_tensor *t = f->outputs[i];
        const tir_stage *s = t ? t->stage : NULL;
        if (!s || s->id < 0 || s->id >= f->n_stages || f->stages[s->id] != s)
            return kiln_fail(ctx, KILN_ERR_INVALID, "tensor IR '%s': output %d is not a stage of the function",
                             f->name, i);
        for (int j = 0; j < i; j++)
            if (f->outputs[j] == t)
                return kiln_fail(ctx, KILN_ERR_INVALID, "tensor IR '%s': '%s' is an output twice", f->name,
                                 t->name);
    }
    return KILN_OK;
}

kiln_status tir_verify(kiln_ctx *ctx, const tir_func *f) {
    if (!f) return kiln_fail(ctx, KILN_ERR_INVALID, "tensor IR: no function");
    if (f->eb.failed)
        return kiln_fail(ctx, KILN_ERR_INVALID,
                         "tensor IR '%s': its construction failed (out of memory or an ill-typed expression)",
                         f->name);
    kiln_status s = tv_inputs(ctx, f);
    tv_state v = {ctx, f, NULL, false};
    for (int k = 0; !s && k < f->n_stages; k++) s = tv_stage(&v, k);
    if (!s) s = tv_outputs(ctx, f);
    return s;
}
