/*
** sched_rename.c — a trace with tensor names replaced: the same schedule
** for another tir_func of the same workload, whose inputs carry other
** names (the next layer's weights, another model's values). Names a step
** derives from a renamed one ("W" -> "W_packed") follow it.
*/
#include <string.h>

#include "ctx.h"
#include "mem.h"
#include "sched.h"

typedef struct rn_map {
    kiln_arena *arena;
    int n, cap;
    const char **from, **to;
} rn_map;

static bool rn_add(rn_map *m, const char *from, const char *to) {
    if (m->n == m->cap) {
        int cap = m->cap ? 2 * m->cap : 16;
        const char **f = kiln_malloc(sizeof *f * (size_t)cap), **t = kiln_malloc(sizeof *t * (size_t)cap);
        if (!f || !t) {
            kiln_free(f);
            kiln_free(t);
            return false;
        }
        if (m->n) memcpy(f, m->from, sizeof *f * (size_t)m->n), memcpy(t, m->to, sizeof *t * (size_t)m->n);
        kiln_free(m->from);
        kiln_free(m->to);
        m->from = f, m->to = t, m->cap = cap;
    }
    m->from[m->n] = from, m->to[m->n++] = to;
    return true;
}

static const char *rn_find(const rn_map *m, const char *name) {
    for (int i = m->n - 1; name && i >= 0; i--)
        if (!strcmp(m->from[i], name)) return m->to[i];
    return name;
}

/* A name a step derives from input `from` (renamed `to`): "W_packed" ->
** "V_packed"; a name of another form stays. NULL when out of memory. */
static const char *rn_derived(rn_map *m, const char *name, const char *from, const char *to) {
    size_t lf = strlen(from);
    if (strncmp(name, from, lf) || name[lf] != '_') return name;
    size_t lt = strlen(to), lr = strlen(name + lf);
    char *s = kiln_arena_alloc(m->arena, lt + lr + 1);
    if (!s) return NULL;
    memcpy(s, to, lt);
    memcpy(s + lt, name + lf, lr + 1);
    return rn_add(m, name, s) ? s : NULL;
}

/* Input names appear only as the tensor of pack and cache_read (other
** fields name stages and axes, which the two functions share); the names
** those steps create are renamed wherever they appear after. */
static bool rn_step(const rn_map *inputs, rn_map *derived, const sch_step *in, sch_step *out) {
    *out = *in;
    bool reads_input = in->prim == SCH_PACK || in->prim == SCH_CACHE_READ;
    out->stage = rn_find(reads_input ? inputs : derived, in->stage);
    for (int i = 0; i < in->n_axes; i++) out->axes[i] = rn_find(derived, in->axes[i]);
    out->arg = rn_find(derived, in->arg);
    for (int i = 0; i < in->n_outs; i++) {
        bool renamed = reads_input && out->stage != in->stage;
        out->outs[i] = renamed ? rn_derived(derived, in->outs[i], in->stage, out->stage) : in->outs[i];
        if (!out->outs[i]) return false;
    }
    return true;
}

kiln_status sch_trace_rename(kiln_ctx *ctx, const sch_trace *t, int n, const char *const *from,
                             const char *const *to, sch_trace **out) {
    *out = NULL;
    sch_trace *r = sch_trace_new();
    rn_map m = {r ? r->arena : NULL, 0, 0, NULL, NULL}, d = m;
    kiln_status s = r ? KILN_OK : KILN_ERR_NOMEM;
    for (int i = 0; !s && i < n; i++)
        if (strcmp(from[i], to[i]) && !rn_add(&m, from[i], to[i])) s = KILN_ERR_NOMEM;
    for (int i = 0; !s && i < t->n_steps; i++) {
        sch_step st;
        if (!rn_step(&m, &d, &t->steps[i], &st)) s = KILN_ERR_NOMEM;
        else s = sch_trace_add(ctx, r, &st);
    }
    kiln_free(m.from);
    kiln_free(m.to);
    kiln_free(d.from);
    kiln_free(d.to);
    if (s) {
        sch_trace_free(r);
        return s == KILN_ERR_NOMEM ? kiln_fail(ctx, s, "out of memory renaming a trace") : s;
    }
    *out = r;
    return KILN_OK;
}
