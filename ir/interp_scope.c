/*
** interp_scope.c — what a subgraph reads from the graphs around it: the
** thread's current scope (the values of the graph that runs now, chained to
** the graphs it runs inside), lookups by name, and which outer values a
** node's subgraphs read.
**
** The scope is per thread rather than a kernel argument because kernels
** keep one signature; a run makes its scope current and restores the one it
** found, so runs nest (a Loop body inside an If branch) and a kernel that
** runs an unrelated graph (gir_interp_run) starts a fresh chain.
*/
#include <string.h>

#include "interp.h"
#include "tensor.h"

static _Thread_local const gir_scope *t_current;

const gir_scope *gir_scope_current(void) { return t_current; }

const gir_scope *gir_scope_enter(const gir_scope *s) {
    const gir_scope *prev = t_current;
    t_current = s;
    return prev;
}

void gir_scope_leave(const gir_scope *prev) { t_current = prev; }

const kiln_tensor *gir_scope_lookup(const gir_scope *s, const char *name) {
    for (; s; s = s->parent) {
        const gir_value *v = gir_value_find(s->g, name);
        if (!v || (s->have && !s->have[v->id])) continue;
        const kiln_tensor *t = &s->vals[v->id];
        /* a value released after its last use is gone, not empty */
        if (!t->data && kiln_numel(t) != 0) return NULL;
        return t;
    }
    return NULL;
}

bool gir_value_is_outer(const gir_value *v) { return v && !v->producer && !v->constant && !v->is_input; }

/* Calls fn for each name that g reads from outside itself: its own outer
** values, and what its subgraphs read that g does not define. fn returns
** true to stop the walk; so does each_outer_name. */
typedef bool (*name_fn)(const char *name, void *arg);

static bool each_outer_name(const gir_graph *g, name_fn fn, void *arg);

typedef struct filter_arg {
    const gir_graph *g;
    name_fn fn;
    void *arg;
} filter_arg;

static bool filter_defined(const char *name, void *arg) {
    const filter_arg *f = arg;
    const gir_value *v = gir_value_find(f->g, name);
    if (v && !gir_value_is_outer(v)) return false;
    return f->fn(name, f->arg);
}

static bool each_sub_name(const gir_node *n, name_fn fn, void *arg) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].kind == GIR_ATTR_GRAPH && n->attrs[a].g && each_outer_name(n->attrs[a].g, fn, arg))
            return true;
    return false;
}

static bool each_outer_name(const gir_graph *g, name_fn fn, void *arg) {
    for (int i = 0; i < g->n_values; i++)
        if (gir_value_is_outer(g->values[i]) && fn(g->values[i]->name, arg)) return true;
    filter_arg f = {g, fn, arg};
    for (int i = 0; i < g->n_nodes; i++)
        if (each_sub_name(g->nodes[i], filter_defined, &f)) return true;
    return false;
}

static bool stop_at_first(const char *name, void *arg) {
    (void)name;
    (void)arg;
    return true;
}

bool gir_node_reads_outer(const gir_node *n) { return each_sub_name(n, stop_at_first, NULL); }

typedef struct use_arg {
    const gir_graph *g;
    int idx;
    int *last_use;
} use_arg;

static bool mark_use(const char *name, void *arg) {
    const use_arg *u = arg;
    const gir_value *v = gir_value_find(u->g, name);
    if (v && u->last_use[v->id] < u->idx) u->last_use[v->id] = u->idx;
    return false;
}

void gir_note_outer_uses(const gir_graph *g, const gir_node *n, int idx, int *last_use) {
    use_arg u = {g, idx, last_use};
    each_sub_name(n, mark_use, &u);
}

kiln_status gir_bind_graph(kiln_ctx *ctx, gir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        kiln_status s = n->op ? KILN_OK : gir_bind_op(ctx, n);
        for (int a = 0; a < n->n_attrs && !s; a++)
            if (n->attrs[a].kind == GIR_ATTR_GRAPH && n->attrs[a].g) s = gir_bind_graph(ctx, n->attrs[a].g);
        if (s) return s;
    }
    return KILN_OK;
}

kiln_status gir_scope_resolve(kiln_ctx *ctx, const gir_graph *g, const gir_scope *parent, gir_scope *out) {
    size_t nv = (size_t)g->n_values + 1;
    kiln_tensor *vals = kiln_calloc(nv, sizeof *vals);
    bool *have = kiln_calloc(nv, sizeof *have);
    if (!vals || !have) {
        kiln_free(vals);
        kiln_free(have);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory resolving the values of graph '%s'",
                         g->name ? g->name : "");
    }
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        const kiln_tensor *t = gir_value_is_outer(v) ? gir_scope_lookup(parent, v->name) : NULL;
        if (!t) continue; /* a run that needs it says so */
        vals[v->id] = *t;
        vals[v->id].alloc = NULL;
        have[v->id] = true;
    }
    out->parent = parent;
    out->g = g;
    out->vals = vals;
    out->have = have;
    return KILN_OK;
}

void gir_scope_release(gir_scope *s) {
    if (!s) return;
    kiln_free((void *)s->vals);
    kiln_free((void *)s->have);
    s->vals = NULL;
    s->have = NULL;
}
