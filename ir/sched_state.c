/*
** sched_state.c — the schedule state of a tir_func and the application of
** trace steps to it. Every step is checked here, where its line is known:
** an invalid step fails naming the line, the step and the reason. What can
** only be checked with the whole schedule known (regions, thread nesting)
** is checked by sched_lower.c, still naming the step responsible.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "sched_internal.h"

/* ---- messages ---- */

const char *sch_step_where(const sch_state *st, int step_index, char *buf, size_t n) {
    if (st->steps && step_index >= 0 && step_index < st->n_steps && st->steps[step_index].line > 0)
        snprintf(buf, n, "line %d", st->steps[step_index].line);
    else
        snprintf(buf, n, "step %d", step_index + 1);
    return buf;
}

kiln_status sch_step_fail(sch_state *st, kiln_status s, const char *fmt, ...) {
    char reason[1024], text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    if (!st->step) return kiln_fail(st->ctx, s, "schedule: %s", reason);
    sch_step_str(st->step, text, sizeof text);
    if (st->step->line > 0)
        return kiln_fail(st->ctx, s, "trace line %d (%s): %s", st->step->line, text, reason);
    return kiln_fail(st->ctx, s, "trace step %d (%s): %s", st->step_index + 1, text, reason);
}

static kiln_status nomem(sch_state *st) { return kiln_fail(st->ctx, KILN_ERR_NOMEM, "out of memory"); }

/* ---- lookups ---- */

sch_stage *sch_stage_of_tensor(const sch_state *st, const tir_tensor *t) {
    for (int i = 0; i < st->n_stages; i++)
        if (st->stages[i]->out == t) return st->stages[i];
    return NULL;
}

sch_input *sch_input_of_tensor(const sch_state *st, const tir_tensor *t) {
    for (int i = 0; i < st->n_inputs; i++)
        if (st->inputs[i].t == t) return &st->inputs[i];
    return NULL;
}

int sch_leaf_pos(const sch_stage *s, const sch_ivar *iv) {
    for (int i = 0; i < s->n_leaves; i++)
        if (s->leaves[i] == iv) return i;
    return -1;
}

bool sch_reads_tensor(const ex_expr *e, const tir_tensor *t) {
    if (!e) return false;
    if (e->kind == EX_LOAD && e->tensor == t) return true;
    for (int i = 0; i < e->n_args; i++)
        if (sch_reads_tensor(e->args[i], t)) return true;
    return false;
}

static int stage_index(const sch_state *st, const sch_stage *s) {
    for (int i = 0; i < st->n_stages; i++)
        if (st->stages[i] == s) return i;
    return -1;
}

static kiln_status find_stage(sch_state *st, const char *name, sch_stage **out) {
    sch_stage *found = NULL;
    for (int i = 0; i < st->n_stages; i++)
        if (strcmp(st->stages[i]->name, name) == 0) {
            if (found) return sch_step_fail(st, KILN_ERR_INVALID, "stage name '%s' is ambiguous", name);
            found = st->stages[i];
        }
    if (!found) return sch_step_fail(st, KILN_ERR_INVALID, "no stage named '%s'", name);
    *out = found;
    return KILN_OK;
}

static sch_input *find_input(sch_state *st, const char *name) {
    for (int i = 0; i < st->n_inputs; i++)
        if (strcmp(st->inputs[i].t->name, name) == 0) return &st->inputs[i];
    return NULL;
}

static bool name_taken(const sch_state *st, const char *name) {
    for (int i = 0; i < st->n_stages; i++)
        if (strcmp(st->stages[i]->name, name) == 0) return true;
    for (int i = 0; i < st->n_inputs; i++)
        if (strcmp(st->inputs[i].t->name, name) == 0 || (st->inputs[i].pack_name && strcmp(st->inputs[i].pack_name, name) == 0))
            return true;
    return false;
}

static void leaf_names(const sch_stage *s, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n_leaves && len + 1 < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? " " : "", s->leaves[i]->name);
}

/* The leaf of s named `name`, or a failure saying why there is none. */
static kiln_status find_leaf(sch_state *st, sch_stage *s, const char *name, sch_ivar **out) {
    sch_ivar *leaf = NULL, *gone = NULL;
    for (int i = 0; i < s->n_ivars; i++) {
        sch_ivar *iv = s->ivars[i];
        if (strcmp(iv->name, name) != 0) continue;
        if (iv->leaf) {
            if (leaf) return sch_step_fail(st, KILN_ERR_INVALID, "axis name '%s' of %s is ambiguous", name, s->name);
            leaf = iv;
        } else {
            gone = iv;
        }
    }
    if (leaf) {
        *out = leaf;
        return KILN_OK;
    }
    char where[64], names[512];
    if (gone && gone->gone_step >= 0)
        return sch_step_fail(st, KILN_ERR_INVALID, "axis '%s' of %s no longer exists: %s split or fused it",
                             name, s->name, sch_step_where(st, gone->gone_step, where, sizeof where));
    leaf_names(s, names, sizeof names);
    return sch_step_fail(st, KILN_ERR_INVALID, "%s has no axis '%s' (its loops: %s)", s->name, name, names);
}

/* ---- construction ---- */

static sch_ivar *ivar_new(sch_state *st, sch_stage *s, const char *name, bool reduce, int64_t ext) {
    if (!kiln_grow((void **)&s->ivars, &s->cap_ivars, s->n_ivars + 1, sizeof(sch_ivar *))) return NULL;
    if (!kiln_grow((void **)&s->leaves, &s->cap_leaves, s->n_ivars + 1, sizeof(sch_ivar *))) return NULL;
    sch_ivar *iv = kiln_arena_alloc(st->arena, sizeof *iv);
    if (!iv || !(iv->name = kiln_arena_strdup(st->arena, name))) return NULL;
    iv->reduce = reduce;
    iv->leaf = true;
    iv->index = s->n_ivars;
    iv->root = -1;
    iv->ext = ext;
    iv->kind = LIR_SERIAL;
    iv->kind_step = iv->gone_step = -1;
    s->ivars[s->n_ivars++] = iv;
    return iv;
}

static sch_rel *rel_new(sch_stage *s) {
    if (!kiln_grow((void **)&s->rels, &s->cap_rels, s->n_rels + 1, sizeof(sch_rel))) return NULL;
    sch_rel *r = &s->rels[s->n_rels++];
    memset(r, 0, sizeof *r);
    return r;
}

/* Makes the stage's root ivars (spatial axes, then reduction axes), all
** leaves in that order. */
static kiln_status stage_roots(sch_state *st, sch_stage *s) {
    s->n_ivars = s->n_leaves = s->n_rels = 0;
    for (int d = 0; d < s->n_axes + s->n_raxes; d++) {
        const ex_var *v = d < s->n_axes ? s->axes[d] : s->raxes[d - s->n_axes];
        sch_ivar *iv = ivar_new(st, s, v->name, d >= s->n_axes, v->extent);
        if (!iv) return nomem(st);
        iv->root = d;
        s->leaves[s->n_leaves++] = iv;
    }
    return KILN_OK;
}

static sch_stage *stage_alloc(sch_state *st) {
    sch_stage *s = kiln_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->id = st->next_stage_id++;
    s->attach_step = s->cw_step = -1;
    return s;
}

static void stage_free(sch_stage *s) {
    if (!s) return;
    kiln_free(s->ivars);
    kiln_free(s->rels);
    kiln_free(s->leaves);
    kiln_free(s);
}

static bool insert_stage(sch_state *st, sch_stage *s, int at) {
    if (!kiln_grow((void **)&st->stages, &st->cap_stages, st->n_stages + 1, sizeof(sch_stage *))) return false;
    memmove(&st->stages[at + 1], &st->stages[at], sizeof(sch_stage *) * (size_t)(st->n_stages - at));
    st->stages[at] = s;
    st->n_stages++;
    return true;
}

static bool is_output(const tir_func *f, const tir_tensor *t) {
    for (int i = 0; i < f->n_outputs; i++)
        if (f->outputs[i] == t) return true;
    return false;
}

static kiln_status check_stage(sch_state *st, const tir_stage *ts) {
    const tir_tensor *t = ts->out;
    if (!ts->body) return kiln_fail(st->ctx, KILN_ERR_INVALID, "schedule: stage '%s' has no body", ts->name);
    if (!t || t->rank != ts->n_axes)
        return kiln_fail(st->ctx, KILN_ERR_INVALID, "schedule: stage '%s' has %d axes for a rank-%d tensor",
                         ts->name, ts->n_axes, t ? t->rank : -1);
    for (int d = 0; d < ts->n_axes; d++)
        if (!ts->axes[d] || ts->axes[d]->extent != t->dims[d] || t->dims[d] < 0)
            return kiln_fail(st->ctx, KILN_ERR_INVALID, "schedule: stage '%s': axis %d does not match dimension %lld",
                             ts->name, d, (long long)t->dims[d]);
    for (int r = 0; r < ts->n_raxes; r++)
        if (!ts->raxes[r] || ts->raxes[r]->extent < 0)
            return kiln_fail(st->ctx, KILN_ERR_INVALID, "schedule: stage '%s': bad reduction axis", ts->name);
    if ((ts->body->kind == EX_REDUCE) != (ts->n_raxes > 0))
        return kiln_fail(st->ctx, KILN_ERR_INVALID,
                         "schedule: stage '%s': a reduction body needs reduction axes and only it may have them", ts->name);
    return KILN_OK;
}

kiln_status sch_state_init(kiln_ctx *ctx, sch_state *st, const tir_func *f) {
    memset(st, 0, sizeof *st);
    st->ctx = ctx;
    st->f = f;
    if (!(st->arena = kiln_arena_new())) return nomem(st);
    ex_builder_init(&st->eb, st->arena);
    st->eb.next_var_id = f->eb.next_var_id; /* new variables stay distinct from the function's */
    st->inputs = kiln_calloc((size_t)(f->n_inputs ? f->n_inputs : 1), sizeof(sch_input));
    if (!st->inputs) return nomem(st);
    for (int i = 0; i < f->n_inputs; i++) {
        st->inputs[i].t = f->inputs[i];
        st->inputs[i].pack_dim = -1;
        st->inputs[i].pack_step = -1;
    }
    st->n_inputs = f->n_inputs;
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *ts = f->stages[i];
        kiln_status s = check_stage(st, ts);
        if (s) return s;
        sch_stage *ss = stage_alloc(st);
        if (!ss || !insert_stage(st, ss, st->n_stages)) {
            stage_free(ss);
            return nomem(st);
        }
        ss->name = ts->name;
        ss->out = ts->out;
        ss->n_axes = ts->n_axes;
        ss->axes = ts->axes;
        ss->n_raxes = ts->n_raxes;
        ss->raxes = ts->raxes;
        ss->body = ts->body;
        ss->tag = ts->tag;
        ss->is_output = is_output(f, ts->out);
        if ((s = stage_roots(st, ss))) return s;
    }
    return KILN_OK;
}

void sch_state_release(sch_state *st) {
    for (int i = 0; i < st->n_stages; i++) stage_free(st->stages[i]);
    kiln_free(st->stages);
    kiln_free(st->inputs);
    kiln_arena_free(st->arena);
    memset(st, 0, sizeof *st);
}

/* ---- ivar values ---- */

bool sch_ivar_values(ex_builder *b, const sch_stage *s, const int64_t *ext, ex_expr **vals) {
    for (int r = s->n_rels - 1; r >= 0; r--) {
        const sch_rel *rel = &s->rels[r];
        if (rel->kind == SCH_REL_SPLIT) {
            ex_expr *o = vals[rel->outer->index], *i = vals[rel->inner->index];
            vals[rel->parent->index] = o && i ? ex_add(b, ex_mul(b, o, ex_int(b, rel->factor)), i) : NULL;
        } else {
            ex_expr *fz = vals[rel->parent->index];
            int64_t ie = ext[rel->inner->index];
            vals[rel->outer->index] = fz ? ex_floordiv(b, fz, ex_int(b, ie > 0 ? ie : 1)) : NULL;
            vals[rel->inner->index] = fz ? ex_floormod(b, fz, ex_int(b, ie > 0 ? ie : 1)) : NULL;
        }
    }
    return !b->failed;
}

/* ---- the primitives ---- */

/* The step that made iv an attach point (compute_at, cache_write), or -1. */
static int pinned_by(const sch_state *st, const sch_ivar *iv) {
    for (int i = 0; i < st->n_stages; i++) {
        const sch_stage *s = st->stages[i];
        if (s->attach == SCH_AT && s->at_ivar == iv) return s->attach_step;
        if (s->cw && s->cw_at == iv) return s->cw_step;
    }
    return -1;
}

static kiln_status check_free(sch_state *st, sch_stage *s, sch_ivar *iv, const char *what) {
    char where[64];
    int pin = pinned_by(st, iv);
    if (pin >= 0)
        return sch_step_fail(st, KILN_ERR_INVALID,
                             "axis '%s' of %s is an attach point (%s); %s it before attaching to it", iv->name,
                             s->name, sch_step_where(st, pin, where, sizeof where), what);
    if (iv->kind != LIR_SERIAL)
        return sch_step_fail(st, KILN_ERR_INVALID, "axis '%s' of %s is %s (%s); %s it before annotating it",
                             iv->name, s->name, lir_loop_kind_name(iv->kind),
                             sch_step_where(st, iv->kind_step, where, sizeof where), what);
    return KILN_OK;
}

static kiln_status check_new_name(sch_state *st, sch_stage *s, const char *name) {
    for (int i = 0; i < s->n_ivars; i++)
        if (s->ivars[i]->leaf && strcmp(s->ivars[i]->name, name) == 0)
            return sch_step_fail(st, KILN_ERR_INVALID, "%s already has an axis named '%s'", s->name, name);
    return KILN_OK;
}

/* A generated name: base + suffix, made unique among the stage's leaves. */
static const char *gen_name(sch_state *st, sch_stage *s, const char *base, const char *suffix) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s%s", base, suffix);
    for (int k = 1;; k++) {
        bool clash = false;
        for (int i = 0; i < s->n_ivars && !clash; i++) clash = s->ivars[i]->leaf && strcmp(s->ivars[i]->name, buf) == 0;
        if (!clash) break;
        snprintf(buf, sizeof buf, "%s%s%d", base, suffix, k);
    }
    return kiln_arena_strdup(st->arena, buf);
}

/* Splits iv by one factor into two new leaves in its place. */
static kiln_status split_one(sch_state *st, sch_stage *s, sch_ivar *iv, int64_t factor, const char *oname,
                             const char *iname, sch_ivar **outer, sch_ivar **inner) {
    int pos = sch_leaf_pos(s, iv);
    int64_t oext = iv->ext == 0 ? 0 : (iv->ext - 1) / factor + 1;
    sch_ivar *o = ivar_new(st, s, oname, iv->reduce, oext);
    sch_ivar *i = o ? ivar_new(st, s, iname, iv->reduce, iv->ext < factor ? iv->ext : factor) : NULL;
    sch_rel *r = i ? rel_new(s) : NULL;
    if (!r) return nomem(st);
    r->kind = SCH_REL_SPLIT;
    r->parent = iv, r->outer = o, r->inner = i, r->factor = factor;
    iv->leaf = false;
    iv->gone_step = st->step_index;
    memmove(&s->leaves[pos + 2], &s->leaves[pos + 1], sizeof(sch_ivar *) * (size_t)(s->n_leaves - pos - 1));
    s->leaves[pos] = o;
    s->leaves[pos + 1] = i;
    s->n_leaves++;
    *outer = o, *inner = i;
    return KILN_OK;
}

/* split S ax [f1 .. fn] -> o m1 .. i: the innermost gets fn, the next
** f(n-1), ..., the outermost the rest. */
static kiln_status split_multi(sch_state *st, sch_stage *s, sch_ivar *iv, int n, const int64_t *f,
                               const char *const *names) {
    kiln_status r = check_free(st, s, iv, "split");
    if (r) return r;
    int64_t prod[SCH_MAX_INTS + 1];
    prod[n] = 1;
    for (int k = n - 1; k >= 0; k--) {
        if (f[k] <= 0) return sch_step_fail(st, KILN_ERR_INVALID, "factor %lld is not positive", (long long)f[k]);
        if (prod[k + 1] > ((int64_t)1 << 40) / f[k]) return sch_step_fail(st, KILN_ERR_INVALID, "factors too large");
        prod[k] = prod[k + 1] * f[k];
    }
    for (int k = 0; k <= n; k++) {
        if ((r = check_new_name(st, s, names[k]))) return r;
        for (int j = 0; j < k; j++)
            if (strcmp(names[j], names[k]) == 0)
                return sch_step_fail(st, KILN_ERR_INVALID, "name '%s' given twice", names[k]);
    }
    sch_ivar *cur = iv;
    for (int k = 0; k < n; k++) {
        sch_ivar *o = NULL, *i = NULL;
        char rest[256];
        snprintf(rest, sizeof rest, "%s.r%d", iv->name, k + 1);
        if ((r = split_one(st, s, cur, prod[k], names[k], k == n - 1 ? names[n] : rest, &o, &i))) return r;
        cur = i;
    }
    return KILN_OK;
}

static kiln_status prim_split(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *iv;
    kiln_status r = find_stage(st, p->stage, &s);
    if (!r) r = find_leaf(st, s, p->axes[0], &iv);
    if (r) return r;
    const char *names[SCH_MAX_INTS + 1];
    for (int k = 0; k <= p->n_ints; k++) {
        char suf[16];
        snprintf(suf, sizeof suf, k == 0 ? "_o" : k == p->n_ints ? "_i" : "_m%d", k);
        names[k] = p->n_outs ? p->outs[k] : gen_name(st, s, iv->name, suf);
        if (!names[k]) return nomem(st);
    }
    return split_multi(st, s, iv, p->n_ints, p->ints, names);
}

static kiln_status prim_fuse(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *ivs[SCH_MAX_NAMES];
    kiln_status r = find_stage(st, p->stage, &s);
    for (int k = 0; !r && k < p->n_axes; k++) r = find_leaf(st, s, p->axes[k], &ivs[k]);
    if (r) return r;
    int pos = sch_leaf_pos(s, ivs[0]);
    int64_t ext = 1;
    for (int k = 0; k < p->n_axes; k++) {
        if ((r = check_free(st, s, ivs[k], "fuse"))) return r;
        if (sch_leaf_pos(s, ivs[k]) != pos + k)
            return sch_step_fail(st, KILN_ERR_INVALID, "axes to fuse must be adjacent loops, outer to inner");
        if (ivs[k]->reduce != ivs[0]->reduce)
            return sch_step_fail(st, KILN_ERR_INVALID, "cannot fuse a spatial axis with a reduction axis");
        if (ivs[k]->ext && ext > ((int64_t)1 << 50) / ivs[k]->ext)
            return sch_step_fail(st, KILN_ERR_INVALID, "fused extent too large");
        ext *= ivs[k]->ext;
    }
    const char *name = p->n_outs ? p->outs[0] : NULL;
    if (!name) {
        char buf[256];
        size_t len = 0;
        for (int k = 0; k < p->n_axes && len < 200; k++) len += (size_t)snprintf(buf + len, sizeof buf - len, "%s_", ivs[k]->name);
        snprintf(buf + len, sizeof buf - len, "fused");
        if (!(name = gen_name(st, s, buf, ""))) return nomem(st);
    } else if ((r = check_new_name(st, s, name))) {
        return r;
    }
    sch_ivar *acc = ivs[0];
    for (int k = 1; k < p->n_axes; k++) {
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s.f%d", name, k);
        sch_ivar *fz = ivar_new(st, s, k == p->n_axes - 1 ? name : tmp, acc->reduce, acc->ext * ivs[k]->ext);
        sch_rel *rel = fz ? rel_new(s) : NULL;
        if (!rel) return nomem(st);
        rel->kind = SCH_REL_FUSE;
        rel->parent = fz, rel->outer = acc, rel->inner = ivs[k];
        acc->leaf = ivs[k]->leaf = false;
        acc->gone_step = ivs[k]->gone_step = st->step_index;
        acc = fz;
    }
    s->leaves[pos] = acc;
    int n = p->n_axes - 1;
    memmove(&s->leaves[pos + 1], &s->leaves[pos + 1 + n], sizeof(sch_ivar *) * (size_t)(s->n_leaves - pos - 1 - n));
    s->n_leaves -= n;
    return KILN_OK;
}

/* The listed leaves take the positions they occupy, in the listed order. */
static kiln_status reorder(sch_state *st, sch_stage *s, sch_ivar *const *ivs, int n) {
    int pos[SCH_MAX_NAMES];
    for (int k = 0; k < n; k++) {
        pos[k] = sch_leaf_pos(s, ivs[k]);
        for (int j = 0; j < k; j++)
            if (ivs[j] == ivs[k]) return sch_step_fail(st, KILN_ERR_INVALID, "axis '%s' listed twice", ivs[k]->name);
    }
    for (int a = 1; a < n; a++) /* insertion sort of the positions */
        for (int b = a; b > 0 && pos[b - 1] > pos[b]; b--) {
            int t = pos[b];
            pos[b] = pos[b - 1];
            pos[b - 1] = t;
        }
    for (int k = 0; k < n; k++) s->leaves[pos[k]] = ivs[k];
    return KILN_OK;
}

static kiln_status prim_reorder(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *ivs[SCH_MAX_NAMES];
    kiln_status r = find_stage(st, p->stage, &s);
    for (int k = 0; !r && k < p->n_axes; k++) r = find_leaf(st, s, p->axes[k], &ivs[k]);
    return r ? r : reorder(st, s, ivs, p->n_axes);
}

static kiln_status prim_tile(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *x, *y;
    kiln_status r = find_stage(st, p->stage, &s);
    if (!r) r = find_leaf(st, s, p->axes[0], &x);
    if (!r) r = find_leaf(st, s, p->axes[1], &y);
    if (r) return r;
    if (x == y) return sch_step_fail(st, KILN_ERR_INVALID, "tile needs two different axes");
    const char *n[4];
    static const char *const suf[4] = {"_o", "_o", "_i", "_i"};
    for (int k = 0; k < 4; k++)
        if (!(n[k] = p->n_outs ? p->outs[k] : gen_name(st, s, (k & 1 ? y : x)->name, suf[k]))) return nomem(st);
    const char *xn[2] = {n[0], n[2]}, *yn[2] = {n[1], n[3]};
    if ((r = split_multi(st, s, x, 1, &p->ints[0], xn))) return r;
    if ((r = split_multi(st, s, y, 1, &p->ints[1], yn))) return r;
    sch_ivar *ivs[4];
    for (int k = 0; k < 4; k++)
        if ((r = find_leaf(st, s, n[k], &ivs[k]))) return r;
    return reorder(st, s, ivs, 4);
}

static kiln_status prim_annotate(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *iv;
    kiln_status r = find_stage(st, p->stage, &s);
    if (!r) r = find_leaf(st, s, p->axes[0], &iv);
    if (r) return r;
    lir_loop_kind k = p->prim == SCH_VECTORIZE ? LIR_VECTORIZED : p->prim == SCH_UNROLL ? LIR_UNROLLED
                    : p->prim == SCH_PARALLEL  ? LIR_PARALLEL   : LIR_SERIAL;
    if (p->prim == SCH_BIND) sch_bind_tag(p->arg, &k);
    if (iv->reduce && p->prim != SCH_UNROLL)
        return sch_step_fail(st, KILN_ERR_INVALID, "'%s' is a reduction axis of %s: it can only be %s after rfactor",
                             iv->name, s->name, p->prim == SCH_BIND ? "bound" : p->prim == SCH_PARALLEL ? "parallel" : "vectorized");
    if (iv->kind != LIR_SERIAL && iv->kind != k) {
        char where[64];
        return sch_step_fail(st, KILN_ERR_INVALID, "axis '%s' is already %s (%s)", iv->name, lir_loop_kind_name(iv->kind),
                             sch_step_where(st, iv->kind_step, where, sizeof where));
    }
    if (p->prim == SCH_BIND)
        for (int i = 0; i < s->n_leaves; i++)
            if (s->leaves[i] != iv && s->leaves[i]->kind == k)
                return sch_step_fail(st, KILN_ERR_INVALID, "%s is already bound to axis '%s' of %s", p->arg,
                                     s->leaves[i]->name, s->name);
    iv->kind = k;
    iv->kind_step = st->step_index;
    return KILN_OK;
}

static kiln_status live_stage(sch_state *st, const char *name, sch_stage **out) {
    kiln_status r = find_stage(st, name, out);
    if (!r && (*out)->attach == SCH_INLINE) {
        char where[64];
        return sch_step_fail(st, KILN_ERR_INVALID, "stage %s is inlined (%s)", name,
                             sch_step_where(st, (*out)->attach_step, where, sizeof where));
    }
    return r;
}

static kiln_status attach(sch_state *st, sch_stage *s, sch_stage *t, const char *axis) {
    sch_ivar *ax;
    kiln_status r = find_leaf(st, t, axis, &ax);
    if (r) return r;
    if (s == t) return sch_step_fail(st, KILN_ERR_INVALID, "a stage cannot be computed inside itself");
    if (stage_index(st, t) < stage_index(st, s))
        return sch_step_fail(st, KILN_ERR_INVALID, "%s is computed before %s, so it cannot hold it", t->name, s->name);
    s->attach = SCH_AT;
    s->at_stage = t;
    s->at_ivar = ax;
    s->attach_step = st->step_index;
    return KILN_OK;
}

static kiln_status prim_compute_at(sch_state *st, const sch_step *p) {
    sch_stage *s, *t;
    kiln_status r = live_stage(st, p->stage, &s);
    if (!r) r = live_stage(st, p->arg, &t);
    return r ? r : attach(st, s, t, p->axes[0]);
}

static kiln_status prim_inline(sch_state *st, const sch_step *p) {
    sch_stage *s;
    kiln_status r = live_stage(st, p->stage, &s);
    if (r) return r;
    if (s->n_raxes)
        return sch_step_fail(st, KILN_ERR_INVALID, "%s is a reduction: it cannot be inlined", s->name);
    if (s->is_output)
        return sch_step_fail(st, KILN_ERR_INVALID, "%s is an output of the kernel: it cannot be inlined", s->name);
    if (s->cw) return sch_step_fail(st, KILN_ERR_INVALID, "%s has a cache_write: it cannot be inlined", s->name);
    for (int i = 0; i < st->n_stages; i++)
        if (st->stages[i]->attach == SCH_AT && st->stages[i]->at_stage == s)
            return sch_step_fail(st, KILN_ERR_INVALID, "%s is computed inside %s, which then cannot be inlined",
                                 st->stages[i]->name, s->name);
    s->attach = SCH_INLINE;
    s->attach_step = st->step_index;
    return KILN_OK;
}

/* A new stage computing tensor `name` of the given shape, inserted at
** position `at`, with spatial axes ax0, ax1, ... */
static sch_stage *new_stage(sch_state *st, const char *name, kiln_dtype dt, int rank, const int64_t *dims, int at) {
    tir_tensor *t = kiln_arena_alloc(st->arena, sizeof *t);
    sch_stage *s = stage_alloc(st);
    ex_var **axes = kiln_arena_alloc(st->arena, sizeof(ex_var *) * (size_t)(rank + 1));
    if (!t || !s || !axes || !(t->name = kiln_arena_strdup(st->arena, name)) || !insert_stage(st, s, at)) {
        stage_free(s);
        return NULL;
    }
    t->dtype = dt;
    t->rank = rank;
    memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
    t->arg_index = -1;
    s->name = t->name;
    s->out = t;
    s->n_axes = rank;
    s->axes = axes;
    for (int d = 0; d < rank; d++) {
        char an[16];
        snprintf(an, sizeof an, "ax%d", d);
        if (!(axes[d] = ex_var_new(&st->eb, an, dims[d], false))) return NULL;
    }
    return s;
}

/* Rewrites loads of `from` into loads of `to` (same indices). */
static ex_expr *retarget(ex_builder *b, ex_expr *e, const tir_tensor *from, const tir_tensor *to) {
    if (!sch_reads_tensor(e, from)) return e;
    ex_expr *args[KILN_MAX_RANK + 3];
    for (int i = 0; i < e->n_args; i++)
        if (!(args[i] = retarget(b, e->args[i], from, to))) return NULL;
    if (e->kind == EX_LOAD && e->tensor == from) return ex_load_tensor(b, to, args);
    return ex_with_args(b, e, args);
}

static kiln_status prim_cache_read(sch_state *st, const sch_step *p) {
    sch_stage *src = NULL, *t;
    const tir_tensor *tensor;
    sch_input *in = find_input(st, p->stage);
    kiln_status r;
    bool is_stage = false;
    for (int i = 0; i < st->n_stages; i++) is_stage |= strcmp(st->stages[i]->name, p->stage) == 0;
    if (is_stage && in) return sch_step_fail(st, KILN_ERR_INVALID, "'%s' names both an input and a stage", p->stage);
    if (is_stage) {
        if ((r = live_stage(st, p->stage, &src))) return r;
        tensor = src->out;
    } else if (in) {
        tensor = in->t;
    } else {
        return sch_step_fail(st, KILN_ERR_INVALID, "no stage or input named '%s'", p->stage);
    }
    if ((r = live_stage(st, p->axes[0], &t))) return r;
    if (!sch_reads_tensor(t->body, tensor))
        return sch_step_fail(st, KILN_ERR_INVALID, "%s does not read %s", t->name, p->stage);
    lir_scope scope;
    sch_scope_from_name(p->arg, &scope);
    char def[256];
    snprintf(def, sizeof def, "%s_%s", p->stage, p->arg);
    const char *name = p->n_outs ? p->outs[0] : def;
    for (int k = 1; !p->n_outs && name_taken(st, name); k++) snprintf(def, sizeof def, "%s_%s%d", p->stage, p->arg, k);
    if (name_taken(st, name)) return sch_step_fail(st, KILN_ERR_INVALID, "the name '%s' is taken", name);
    sch_stage *c = new_stage(st, name, tensor->dtype, tensor->rank, tensor->dims, stage_index(st, t));
    if (!c) return nomem(st);
    ex_expr *idx[KILN_MAX_RANK];
    for (int d = 0; d < tensor->rank; d++) idx[d] = ex_varref(&st->eb, c->axes[d]);
    c->body = ex_load_tensor(&st->eb, tensor, idx);
    c->tag = TIR_TAG_INJECTIVE;
    c->scope_set = true;
    c->scope = scope;
    t->body = retarget(&st->eb, t->body, tensor, c->out);
    if (st->eb.failed || (r = stage_roots(st, c))) return nomem(st);
    return p->n_axes > 1 ? attach(st, c, t, p->axes[1]) : KILN_OK;
}

static kiln_status prim_cache_write(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *at = NULL;
    kiln_status r = live_stage(st, p->stage, &s);
    if (!r && p->n_axes) r = find_leaf(st, s, p->axes[0], &at);
    if (r) return r;
    if (s->cw) {
        char where[64];
        return sch_step_fail(st, KILN_ERR_INVALID, "%s already has a cache_write (%s)", s->name,
                             sch_step_where(st, s->cw_step, where, sizeof where));
    }
    char def[256];
    snprintf(def, sizeof def, "%s_%s", s->name, p->arg);
    s->cw = true;
    sch_scope_from_name(p->arg, &s->cw_scope);
    s->cw_at = at;
    s->cw_step = st->step_index;
    if (!(s->cw_name = kiln_arena_strdup(st->arena, p->n_outs ? p->outs[0] : def))) return nomem(st);
    return KILN_OK;
}

/* The reduction's source with the stage's root reduction axes rebuilt
** from new variables for its reduction leaves (rf is the leaf that becomes
** spatial), guarded by the splits' bounds. */
static ex_expr *rfactor_source(sch_state *st, sch_stage *s, ex_var *const *leafvar, ex_var *const *spatial) {
    ex_builder *b = &st->eb;
    ex_expr **vals = kiln_arena_alloc(st->arena, sizeof(ex_expr *) * (size_t)s->n_ivars);
    int64_t *ext = kiln_arena_alloc(st->arena, sizeof(int64_t) * (size_t)s->n_ivars);
    if (!vals || !ext) return NULL;
    for (int i = 0; i < s->n_ivars; i++) {
        ext[i] = s->ivars[i]->ext;
        vals[i] = s->ivars[i]->leaf && s->ivars[i]->reduce ? ex_varref(b, leafvar[i]) : NULL;
    }
    if (!sch_ivar_values(b, s, ext, vals)) return NULL;
    const ex_var *from[2 * KILN_MAX_RANK + 64];
    ex_expr *to[2 * KILN_MAX_RANK + 64];
    int n = 0;
    for (int d = 0; d < s->n_axes; d++) from[n] = s->axes[d], to[n++] = ex_varref(b, spatial[d]);
    for (int r = 0; r < s->n_raxes; r++) {
        const sch_ivar *root = NULL;
        for (int i = 0; i < s->n_ivars; i++)
            if (s->ivars[i]->root == s->n_axes + r) root = s->ivars[i];
        if (!root || !vals[root->index]) return NULL;
        from[n] = s->raxes[r], to[n++] = vals[root->index];
    }
    ex_expr *src = ex_substitute(b, s->body->args[0], from, to, n);
    ex_expr *cond = NULL;
    for (int r = 0; r < s->n_rels; r++) {
        const sch_rel *rel = &s->rels[r];
        if (rel->kind != SCH_REL_SPLIT || !rel->parent->reduce ||
            rel->outer->ext * rel->inner->ext <= rel->parent->ext)
            continue;
        ex_expr *c = ex_lt(b, vals[rel->parent->index], ex_int(b, rel->parent->ext));
        cond = cond ? ex_and(b, cond, c) : c;
    }
    if (cond) src = ex_select(b, cond, src, ex_combiner_identity(b, (ex_combiner)s->body->op, src->dtype));
    return src;
}

static kiln_status prim_rfactor(sch_state *st, const sch_step *p) {
    sch_stage *s;
    sch_ivar *rf;
    kiln_status r = live_stage(st, p->stage, &s);
    if (!r) r = find_leaf(st, s, p->axes[0], &rf);
    if (r) return r;
    if (!s->n_raxes || !rf->reduce)
        return sch_step_fail(st, KILN_ERR_INVALID, "'%s' is not a reduction axis of %s", rf->name, s->name);
    for (int i = 0; i < s->n_ivars; i++)
        if (s->ivars[i]->reduce && pinned_by(st, s->ivars[i]) >= 0)
            return sch_step_fail(st, KILN_ERR_INVALID, "reduction axis '%s' of %s is an attach point; rfactor before attaching",
                                 s->ivars[i]->name, s->name);
    char def[256];
    snprintf(def, sizeof def, "%s_rf", s->name);
    const char *name = p->n_outs ? p->outs[0] : def;
    if (name_taken(st, name)) return sch_step_fail(st, KILN_ERR_INVALID, "the name '%s' is taken", name);
    int64_t dims[KILN_MAX_RANK + 1];
    if (s->n_axes >= KILN_MAX_RANK) return sch_step_fail(st, KILN_ERR_UNSUPPORTED, "rank too high for rfactor");
    memcpy(dims, s->out->dims, sizeof(int64_t) * (size_t)s->n_axes);
    dims[s->n_axes] = rf->ext;
    sch_stage *n = new_stage(st, name, s->out->dtype, s->n_axes + 1, dims, stage_index(st, s));
    ex_var **leafvar = kiln_arena_alloc(st->arena, sizeof(ex_var *) * (size_t)s->n_ivars);
    ex_var **rvars = kiln_arena_alloc(st->arena, sizeof(ex_var *) * (size_t)(s->n_leaves + 1));
    if (!n || !leafvar || !rvars) return nomem(st);
    for (int d = 0; d < s->n_axes; d++) n->axes[d]->name = s->axes[d]->name;
    n->axes[s->n_axes]->name = rf->name;
    int nr = 0;
    for (int i = 0; i < s->n_leaves; i++) {
        sch_ivar *iv = s->leaves[i];
        if (!iv->reduce) continue;
        if (iv == rf) leafvar[iv->index] = n->axes[s->n_axes];
        else if (!(leafvar[iv->index] = rvars[nr++] = ex_var_new(&st->eb, iv->name, iv->ext, true))) return nomem(st);
    }
    ex_expr *src = rfactor_source(st, s, leafvar, n->axes);
    if (!src) return nomem(st);
    ex_combiner comb = (ex_combiner)s->body->op;
    n->raxes = rvars;
    n->n_raxes = nr;
    n->body = nr ? ex_reduce(&st->eb, comb, src, (const ex_var *const *)rvars, nr, ex_combiner_identity(&st->eb, comb, src->dtype))
                 : src;
    n->tag = TIR_TAG_REDUCE;
    /* the stage now reduces the partial results over one new axis */
    ex_var *rv = ex_var_new(&st->eb, rf->name, rf->ext, true);
    ex_var **raxes = kiln_arena_alloc(st->arena, sizeof(ex_var *));
    ex_expr *idx[KILN_MAX_RANK + 1];
    if (!rv || !raxes || st->eb.failed) return nomem(st);
    raxes[0] = rv;
    for (int d = 0; d < s->n_axes; d++) idx[d] = ex_varref(&st->eb, s->axes[d]);
    idx[s->n_axes] = ex_varref(&st->eb, rv);
    ex_expr *part = ex_load_tensor(&st->eb, n->out, idx);
    s->body = ex_reduce(&st->eb, comb, part, (const ex_var *const *)raxes, 1, s->body->args[1]);
    s->raxes = raxes;
    s->n_raxes = 1;
    if (st->eb.failed || (r = stage_roots(st, n))) return nomem(st);
    return KILN_OK;
}

/* Drops the stage's reduction ivars and relations, keeping its spatial
** schedule, and appends the one new reduction axis. */
static kiln_status rfactor_reset(sch_state *st, sch_stage *s) {
    int nl = 0, nr = 0;
    for (int i = 0; i < s->n_leaves; i++)
        if (!s->leaves[i]->reduce) s->leaves[nl++] = s->leaves[i];
    for (int r = 0; r < s->n_rels; r++)
        if (!s->rels[r].parent->reduce) s->rels[nr++] = s->rels[r];
    s->n_leaves = nl;
    s->n_rels = nr;
    for (int i = 0; i < s->n_ivars; i++)
        if (s->ivars[i]->reduce) {
            s->ivars[i]->leaf = false;
            s->ivars[i]->gone_step = st->step_index;
            s->ivars[i]->root = -1; /* the stage's reduction axes are new */
        }
    sch_ivar *iv = ivar_new(st, s, s->raxes[0]->name, true, s->raxes[0]->extent);
    if (!iv) return nomem(st);
    iv->root = s->n_axes;
    s->leaves[s->n_leaves++] = iv;
    return KILN_OK;
}

static kiln_status prim_storage_align(sch_state *st, const sch_step *p) {
    sch_stage *s;
    kiln_status r = live_stage(st, p->stage, &s);
    if (r) return r;
    int d = -1;
    for (int k = 0; k < s->n_axes; k++)
        if (strcmp(s->axes[k]->name, p->axes[0]) == 0) d = k;
    if (d < 0) return sch_step_fail(st, KILN_ERR_INVALID, "%s has no dimension named '%s'", s->name, p->axes[0]);
    if (s->is_output)
        return sch_step_fail(st, KILN_ERR_INVALID, "%s is an output: its layout is fixed by the kernel's arguments", s->name);
    if (d == s->n_axes - 1)
        return sch_step_fail(st, KILN_ERR_INVALID, "'%s' is the innermost dimension (stride 1); align the one above it",
                             p->axes[0]);
    if (p->ints[0] <= 0 || p->ints[1] < 0 || p->ints[1] >= p->ints[0] || p->ints[0] > (1 << 20))
        return sch_step_fail(st, KILN_ERR_INVALID, "needs [factor offset] with factor > 0 and 0 <= offset < factor");
    s->align_factor[d] = p->ints[0];
    s->align_offset[d] = p->ints[1];
    return KILN_OK;
}

static kiln_status prim_pack(sch_state *st, const sch_step *p) {
    sch_input *in = find_input(st, p->stage);
    if (!in) return sch_step_fail(st, KILN_ERR_INVALID, "no input named '%s'", p->stage);
    const tir_tensor *t = in->t;
    if (!t->constant)
        return sch_step_fail(st, KILN_ERR_INVALID, "%s is not a constant input: only constants are packed at compile time", t->name);
    if (in->pack_dim >= 0) return sch_step_fail(st, KILN_ERR_INVALID, "%s is already packed", t->name);
    if (p->ints[0] < 0 || p->ints[0] >= t->rank)
        return sch_step_fail(st, KILN_ERR_INVALID, "dimension %lld out of range for rank %d", (long long)p->ints[0], t->rank);
    if (p->ints[1] <= 0 || p->ints[1] > (1 << 20)) return sch_step_fail(st, KILN_ERR_INVALID, "factor must be positive");
    if (t->rank >= KILN_MAX_RANK) return sch_step_fail(st, KILN_ERR_UNSUPPORTED, "rank too high to pack");
    char def[256];
    snprintf(def, sizeof def, "%s_packed", t->name);
    const char *name = p->n_outs ? p->outs[0] : def;
    if (name_taken(st, name)) return sch_step_fail(st, KILN_ERR_INVALID, "the name '%s' is taken", name);
    in->pack_dim = (int)p->ints[0];
    in->pack_factor = p->ints[1];
    in->pack_step = st->step_index;
    if (!(in->pack_name = kiln_arena_strdup(st->arena, name))) return nomem(st);
    return KILN_OK;
}

kiln_status sch_state_apply(sch_state *st, const sch_step *p, int index) {
    st->step = p;
    st->step_index = index;
    switch (p->prim) {
    case SCH_SPLIT: return prim_split(st, p);
    case SCH_FUSE: return prim_fuse(st, p);
    case SCH_REORDER: return prim_reorder(st, p);
    case SCH_TILE: return prim_tile(st, p);
    case SCH_VECTORIZE:
    case SCH_UNROLL:
    case SCH_PARALLEL:
    case SCH_BIND: return prim_annotate(st, p);
    case SCH_COMPUTE_AT: return prim_compute_at(st, p);
    case SCH_COMPUTE_INLINE: return prim_inline(st, p);
    case SCH_CACHE_READ: return prim_cache_read(st, p);
    case SCH_CACHE_WRITE: return prim_cache_write(st, p);
    case SCH_RFACTOR: {
        kiln_status r = prim_rfactor(st, p);
        if (r) return r;
        sch_stage *s;
        find_stage(st, p->stage, &s);
        return rfactor_reset(st, s);
    }
    case SCH_STORAGE_ALIGN: return prim_storage_align(st, p);
    case SCH_PACK: return prim_pack(st, p);
    default: return sch_step_fail(st, KILN_ERR_INVALID, "unknown primitive");
    }
}
