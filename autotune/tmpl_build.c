/*
** tmpl_build.c — the trace builder of the schedule templates: every step is
** recorded and applied to the schedule state at once, so a template sees
** the names and extents the state gives, and a step the state refuses is
** caught where the template made it.
*/
#include <string.h>

#include "ir/ctx.h"
#include "tmpl_internal.h"

kiln_status tb_init(tb *b, kiln_ctx *ctx, const tir_func *f) {
    memset(b, 0, sizeof *b);
    b->ctx = ctx;
    b->f = f;
    if (!(b->t = sch_trace_new())) return b->err = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory creating a trace");
    b->st_live = true;
    return b->err = sch_state_init(ctx, &b->st, f);
}

void tb_release(tb *b) {
    if (b->st_live) sch_state_release(&b->st);
    b->st_live = false;
    sch_trace_free(b->t);
    b->t = NULL;
}

kiln_status tb_finish(tb *b, sch_trace **out) {
    kiln_status s = b->err;
    if (!s) {
        *out = b->t;
        b->t = NULL;
    }
    tb_release(b);
    return s;
}

sch_stage *tb_stage(tb *b, const char *name) {
    if (b->err || !name) return NULL;
    for (int i = 0; i < b->st.n_stages; i++)
        if (strcmp(b->st.stages[i]->name, name) == 0) return b->st.stages[i];
    return NULL;
}

sch_ivar *tb_leaf(tb *b, const char *stage, const char *axis) {
    sch_stage *s = tb_stage(b, stage);
    for (int i = 0; s && axis && i < s->n_leaves; i++)
        if (strcmp(s->leaves[i]->name, axis) == 0) return s->leaves[i];
    return NULL;
}

int64_t tb_extent(tb *b, const char *stage, const char *axis) {
    sch_ivar *iv = tb_leaf(b, stage, axis);
    return iv ? iv->ext : 0;
}

static bool has_load(const ex_expr *e) {
    if (e->kind == EX_LOAD) return true;
    for (int i = 0; i < e->n_args; i++)
        if (has_load(e->args[i])) return true;
    return false;
}

static ex_expr *expand(tb *b, ex_expr *e, int depth) {
    if (!e || b->err || !has_load(e) || depth > 32) return e;
    ex_builder *eb = &b->st.eb;
    ex_expr *args[KILN_MAX_RANK + 3];
    bool changed = false;
    if (e->n_args > KILN_MAX_RANK + 3) return e;
    for (int i = 0; i < e->n_args; i++) {
        if (!(args[i] = expand(b, e->args[i], depth))) return NULL;
        changed |= args[i] != e->args[i];
    }
    sch_stage *p = e->kind == EX_LOAD && e->tensor ? sch_stage_of_tensor(&b->st, e->tensor) : NULL;
    if (p && p->attach == SCH_INLINE && p->n_axes == e->n_args)
        return expand(b, ex_substitute(eb, p->body, (const ex_var *const *)p->axes, args, p->n_axes), depth + 1);
    if (!changed) return e;
    ex_expr *c = kiln_arena_memdup(eb->arena, e, sizeof *e);
    ex_expr **a = c ? kiln_arena_alloc(eb->arena, sizeof(ex_expr *) * (size_t)e->n_args) : NULL;
    if (!a) return NULL;
    memcpy(a, args, sizeof(ex_expr *) * (size_t)e->n_args);
    c->args = a;
    return c;
}

const ex_expr *tb_body(tb *b, const char *stage) {
    sch_stage *s = tb_stage(b, stage);
    return s ? expand(b, s->body, 0) : NULL;
}

bool tb_touched(tb *b, const char *stage) {
    sch_stage *s = tb_stage(b, stage);
    if (!s) return true;
    if (s->attach != SCH_ROOT || s->n_rels || s->cw || s->n_leaves != s->n_axes + s->n_raxes) return true;
    for (int i = 0; i < s->n_leaves; i++)
        if (s->leaves[i]->kind != LIR_SERIAL || s->leaves[i]->root != i) return true;
    for (int i = 0; i < b->st.n_stages; i++)
        if (b->st.stages[i]->attach == SCH_AT && b->st.stages[i]->at_stage == s) return true;
    return false;
}

int tb_leaves(tb *b, const char *stage, const char **names, int cap) {
    sch_stage *s = tb_stage(b, stage);
    int n = 0;
    for (int i = 0; s && i < s->n_leaves && n < cap; i++) names[n++] = s->leaves[i]->name;
    return n;
}

static sch_step step_of(sch_prim prim, const char *stage) {
    sch_step p;
    memset(&p, 0, sizeof p);
    p.prim = prim;
    p.stage = stage;
    return p;
}

/* The names of what the step made: new leaves of `s` (index >= n_ivars),
** a new stage (id >= next_id), a cache or a packed input. */
static int made_names(tb *b, const sch_step *p, sch_stage *s, int n_ivars, int next_id, const char **names) {
    int n = 0;
    switch (p->prim) {
    case SCH_SPLIT:
    case SCH_FUSE:
        for (int i = 0; s && i < s->n_leaves && n < SCH_MAX_NAMES; i++)
            if (s->leaves[i]->index >= n_ivars) names[n++] = s->leaves[i]->name;
        break;
    case SCH_RFACTOR:
    case SCH_CACHE_READ:
        for (int i = 0; i < b->st.n_stages; i++)
            if (b->st.stages[i]->id >= next_id) names[n++] = b->st.stages[i]->name;
        break;
    case SCH_CACHE_WRITE:
        if (s && s->cw_name) names[n++] = s->cw_name;
        break;
    case SCH_PACK:
        for (int i = 0; i < b->st.n_inputs; i++)
            if (strcmp(b->st.inputs[i].t->name, p->stage) == 0 && b->st.inputs[i].pack_name)
                names[n++] = b->st.inputs[i].pack_name;
        break;
    default: break;
    }
    return n;
}

/* Records p and applies it; the recorded step's outs get the names the
** state chose. Returns the recorded step, or NULL after a failure. */
static sch_step *do_step(tb *b, sch_step *p) {
    if (b->err) return NULL;
    sch_stage *s = NULL;
    for (int i = 0; i < b->st.n_stages && p->stage; i++)
        if (strcmp(b->st.stages[i]->name, p->stage) == 0) s = b->st.stages[i];
    int n_ivars = s ? s->n_ivars : 0, next_id = b->st.next_stage_id;
    if ((b->err = sch_trace_add(b->ctx, b->t, p))) return NULL;
    sch_step *rec = &b->t->steps[b->t->n_steps - 1];
    b->st.steps = b->t->steps;
    b->st.n_steps = b->t->n_steps;
    if ((b->err = sch_state_apply(&b->st, rec, b->t->n_steps - 1))) {
        if (b->err != KILN_ERR_NOMEM) b->err = KILN_ERR_INTERNAL;
        return NULL;
    }
    const char *names[SCH_MAX_NAMES];
    int n = made_names(b, p, s, n_ivars, next_id, names);
    for (int i = 0; i < n; i++)
        if (!(rec->outs[i] = kiln_arena_strdup(b->t->arena, names[i]))) {
            b->err = kiln_fail(b->ctx, KILN_ERR_NOMEM, "out of memory");
            return NULL;
        }
    rec->n_outs = n;
    return rec;
}

bool tb_split(tb *b, const char *stage, const char *axis, int n, const int64_t *factors, const char **outs) {
    sch_step p = step_of(SCH_SPLIT, stage);
    if (n < 1 || n > SCH_MAX_INTS) {
        if (!b->err) b->err = kiln_fail(b->ctx, KILN_ERR_INTERNAL, "template: split of %s with %d factors", axis, n);
        return false;
    }
    p.axes[p.n_axes++] = axis;
    for (int k = 0; k < n; k++) p.ints[p.n_ints++] = factors[k];
    sch_step *r = do_step(b, &p);
    if (!r || r->n_outs != n + 1) {
        if (!b->err) b->err = kiln_fail(b->ctx, KILN_ERR_INTERNAL, "template: split of %s made no axes", axis);
        return false;
    }
    for (int k = 0; k <= n; k++) outs[k] = r->outs[k];
    return true;
}

bool tb_split1(tb *b, const char *stage, const char *axis, int64_t factor, const char **o, const char **i) {
    const char *outs[2];
    if (!tb_split(b, stage, axis, 1, &factor, outs)) return false;
    *o = outs[0];
    *i = outs[1];
    return true;
}

const char *tb_fuse(tb *b, const char *stage, int n, const char *const *axes) {
    if (b->err || n < 1) return NULL;
    if (n == 1) return axes[0];
    sch_step p = step_of(SCH_FUSE, stage);
    for (int k = 0; k < n && k < SCH_MAX_NAMES; k++) p.axes[p.n_axes++] = axes[k];
    sch_step *r = do_step(b, &p);
    return r && r->n_outs == 1 ? r->outs[0] : NULL;
}

bool tb_reorder(tb *b, const char *stage, int n, const char *const *axes) {
    if (n <= 1) return !b->err;
    if (n > SCH_MAX_NAMES) {
        if (!b->err) b->err = kiln_fail(b->ctx, KILN_ERR_INTERNAL, "template: reorder of %d axes", n);
        return false;
    }
    /* already in that order: no step */
    sch_stage *s = tb_stage(b, stage);
    int last = -1;
    bool same = s != NULL;
    for (int k = 0; same && k < n; k++) {
        sch_ivar *iv = tb_leaf(b, stage, axes[k]);
        int pos = iv ? sch_leaf_pos(s, iv) : -1;
        same = pos > last;
        last = pos;
    }
    if (same) return true;
    sch_step p = step_of(SCH_REORDER, stage);
    for (int k = 0; k < n; k++) p.axes[p.n_axes++] = axes[k];
    return do_step(b, &p) != NULL;
}

static bool annotate(tb *b, sch_prim prim, const char *stage, const char *axis) {
    sch_step p = step_of(prim, stage);
    p.axes[p.n_axes++] = axis;
    return do_step(b, &p) != NULL;
}

bool tb_vectorize(tb *b, const char *stage, const char *axis) { return annotate(b, SCH_VECTORIZE, stage, axis); }
bool tb_unroll(tb *b, const char *stage, const char *axis) { return annotate(b, SCH_UNROLL, stage, axis); }
bool tb_parallel(tb *b, const char *stage, const char *axis) { return annotate(b, SCH_PARALLEL, stage, axis); }

bool tb_compute_at(tb *b, const char *stage, const char *target, const char *axis) {
    sch_step p = step_of(SCH_COMPUTE_AT, stage);
    p.axes[p.n_axes++] = axis;
    p.arg = target;
    return do_step(b, &p) != NULL;
}

bool tb_inline(tb *b, const char *stage) {
    sch_step p = step_of(SCH_COMPUTE_INLINE, stage);
    return do_step(b, &p) != NULL;
}

const char *tb_cache_write(tb *b, const char *stage, const char *axis) {
    sch_step p = step_of(SCH_CACHE_WRITE, stage);
    p.arg = "local";
    if (axis) p.axes[p.n_axes++] = axis;
    sch_step *r = do_step(b, &p);
    return r && r->n_outs == 1 ? r->outs[0] : NULL;
}

const char *tb_cache_read(tb *b, const char *tensor, const char *reader) {
    sch_step p = step_of(SCH_CACHE_READ, tensor);
    p.axes[p.n_axes++] = reader;
    p.arg = "local";
    sch_step *r = do_step(b, &p);
    return r && r->n_outs == 1 ? r->outs[0] : NULL;
}

const char *tb_rfactor(tb *b, const char *stage, const char *raxis) {
    sch_step p = step_of(SCH_RFACTOR, stage);
    p.axes[p.n_axes++] = raxis;
    sch_step *r = do_step(b, &p);
    return r && r->n_outs == 1 ? r->outs[0] : NULL;
}

const char *tb_pack(tb *b, const char *input, int dim, int64_t factor) {
    sch_step p = step_of(SCH_PACK, input);
    p.ints[p.n_ints++] = dim;
    p.ints[p.n_ints++] = factor;
    sch_step *r = do_step(b, &p);
    return r && r->n_outs == 1 ? r->outs[0] : NULL;
}
