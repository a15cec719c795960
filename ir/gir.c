/*
** gir.c — construction and queries of the graph IR.
*/
#include "gir.h"

#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "interp.h"

gir_graph *gir_graph_new(void) {
    gir_graph *g = kiln_calloc(1, sizeof *g);
    if (!g) return NULL;
    g->arena = kiln_arena_new();
    if (!g->arena) {
        kiln_free(g);
        return NULL;
    }
    return g;
}

void gir_graph_free(gir_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) gir_graph_free(n->attrs[a].g);
    }
    if (g->release) g->release(g->release_arg);
    kiln_free(g->nodes);
    kiln_free(g->values);
    kiln_free(g->inputs);
    kiln_free(g->outputs);
    kiln_arena_free(g->arena);
    kiln_free(g);
}

gir_value *gir_value_new(gir_graph *g, const char *name) {
    if (!kiln_grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof(gir_value *)))
        return NULL;
    gir_value *v = kiln_arena_alloc(g->arena, sizeof *v);
    if (!v) return NULL;
    char tmp[32];
    if (!name || !name[0]) {
        snprintf(tmp, sizeof tmp, "%%%d", g->n_values);
        name = tmp;
    }
    v->name = kiln_arena_strdup(g->arena, name);
    if (!v->name) return NULL;
    v->id = g->n_values;
    v->type.rank = -1;
    g->values[g->n_values++] = v;
    return v;
}

gir_value *gir_value_find(const gir_graph *g, const char *name) {
    for (int i = g->n_values - 1; i >= 0; i--)
        if (strcmp(g->values[i]->name, name) == 0) return g->values[i];
    return NULL;
}

gir_node *gir_node_new(gir_graph *g, const char *op_type, const char *name, int n_in,
                       int n_out, int n_attrs) {
    if (!kiln_grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof(gir_node *)))
        return NULL;
    gir_node *n = kiln_arena_alloc(g->arena, sizeof *n);
    if (!n) return NULL;
    char tmp[32];
    if (!name || !name[0]) {
        snprintf(tmp, sizeof tmp, "%s_%d", op_type, g->n_nodes);
        name = tmp;
    }
    n->name = kiln_arena_strdup(g->arena, name);
    n->op_type = kiln_arena_strdup(g->arena, op_type);
    n->domain = "";
    n->inputs = kiln_arena_alloc(g->arena, sizeof(gir_value *) * (size_t)(n_in + 1));
    n->outputs = kiln_arena_alloc(g->arena, sizeof(gir_value *) * (size_t)(n_out + 1));
    n->attrs = kiln_arena_alloc(g->arena, sizeof(gir_attr) * (size_t)(n_attrs + 1));
    if (!n->name || !n->op_type || !n->inputs || !n->outputs || !n->attrs) return NULL;
    n->n_inputs = n_in;
    n->n_outputs = n_out;
    n->n_attrs = n_attrs;
    n->id = g->n_nodes;
    g->nodes[g->n_nodes++] = n;
    return n;
}

bool gir_add_input(gir_graph *g, gir_value *v) {
    if (!kiln_grow((void **)&g->inputs, &g->cap_inputs, g->n_inputs + 1, sizeof(gir_value *)))
        return false;
    g->inputs[g->n_inputs++] = v;
    v->is_input = true;
    return true;
}

bool gir_add_output(gir_graph *g, gir_value *v) {
    if (!kiln_grow((void **)&g->outputs, &g->cap_outputs, g->n_outputs + 1, sizeof(gir_value *)))
        return false;
    g->outputs[g->n_outputs++] = v;
    v->is_output = true;
    return true;
}

int64_t gir_opset_version(const gir_graph *g, const char *domain) {
    if (strcmp(domain, "ai.onnx") == 0) domain = "";
    for (int i = 0; i < g->n_opsets; i++) {
        const char *d = g->opsets[i].domain;
        if (strcmp(d, "ai.onnx") == 0) d = "";
        if (strcmp(d, domain) == 0) return g->opsets[i].version;
    }
    return 0;
}

void gir_type_from_tensor(gir_type *ty, const kiln_tensor *t) {
    memset(ty, 0, sizeof *ty);
    ty->dtype = t->dtype;
    ty->rank = t->rank;
    for (int i = 0; i < t->rank; i++) ty->dims[i].value = t->dims[i];
}

bool gir_type_is_static(const gir_type *ty) {
    if (ty->rank < 0 || ty->dtype == KILN_UNDEFINED) return false;
    for (int i = 0; i < ty->rank; i++)
        if (ty->dims[i].value < 0) return false;
    return true;
}

void gir_type_to_tensor(const gir_type *ty, kiln_tensor *t) {
    memset(t, 0, sizeof *t);
    t->dtype = ty->dtype;
    t->rank = ty->rank < 0 ? 0 : ty->rank;
    for (int i = 0; i < t->rank; i++) t->dims[i] = ty->dims[i].value;
}

const gir_attr *gir_attr_find(const gir_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (n->attrs[i].name && strcmp(n->attrs[i].name, name) == 0) return &n->attrs[i];
    return NULL;
}

int64_t gir_attr_int(const gir_node *n, const char *name, int64_t dflt) {
    const gir_attr *a = gir_attr_find(n, name);
    return a && a->kind == GIR_ATTR_INT ? a->i : dflt;
}

double gir_attr_float(const gir_node *n, const char *name, double dflt) {
    const gir_attr *a = gir_attr_find(n, name);
    return a && a->kind == GIR_ATTR_FLOAT ? a->f : dflt;
}

const char *gir_attr_string(const gir_node *n, const char *name, const char *dflt) {
    const gir_attr *a = gir_attr_find(n, name);
    return a && a->kind == GIR_ATTR_STRING ? a->s : dflt;
}

int gir_attr_ints(const gir_node *n, const char *name, const int64_t **vals) {
    const gir_attr *a = gir_attr_find(n, name);
    if (!a || a->kind != GIR_ATTR_INTS) return -1;
    *vals = a->ints;
    return a->n;
}

int gir_attr_floats(const gir_node *n, const char *name, const double **vals) {
    const gir_attr *a = gir_attr_find(n, name);
    if (!a || a->kind != GIR_ATTR_FLOATS) return -1;
    *vals = a->floats;
    return a->n;
}

const char *gir_node_desc(const gir_node *n, char *buf, size_t size) {
    snprintf(buf, size, "node '%s' (%s%s%s)", n->name, n->domain[0] ? n->domain : "",
             n->domain[0] ? "::" : "", n->op_type);
    return buf;
}

/* Whether every value of g that a subgraph of n (at any depth) reads from
** outside is ready: control-flow nodes depend on those values too. */
static bool subgraph_inputs_ready(const gir_graph *g, const gir_node *n, const int *ready) {
    for (int a = 0; a < n->n_attrs; a++) {
        const gir_graph *sg = n->attrs[a].g;
        if (!sg) continue;
        for (int v = 0; v < sg->n_values; v++) {
            if (!gir_value_is_outer(sg->values[v])) continue;
            const gir_value *w = gir_value_find(g, sg->values[v]->name);
            if (w && !ready[w->id]) return false;
        }
        for (int k = 0; k < sg->n_nodes; k++)
            if (!subgraph_inputs_ready(g, sg->nodes[k], ready)) return false;
    }
    return true;
}

/* Kahn's algorithm over value producers. */
kiln_status gir_toposort(kiln_ctx *ctx, gir_graph *g) {
    int nn = g->n_nodes;
    if (nn == 0) return KILN_OK;
    bool *placed = kiln_calloc((size_t)nn, sizeof(bool));
    gir_node **order = kiln_calloc((size_t)nn, sizeof(gir_node *));
    int *ready = kiln_calloc((size_t)g->n_values + 1, sizeof(int)); /* value id -> produced */
    kiln_status st = KILN_OK;
    if (!placed || !order || !ready) {
        st = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory sorting the graph");
        goto done;
    }
    for (int i = 0; i < nn; i++) g->nodes[i]->id = i;
    for (int v = 0; v < g->n_values; v++) ready[v] = g->values[v]->producer == NULL;
    int done_count = 0;
    bool progress = true;
    while (done_count < nn && progress) {
        progress = false;
        for (int i = 0; i < nn; i++) {
            gir_node *n = g->nodes[i];
            if (placed[i]) continue;
            bool ok = true;
            for (int k = 0; k < n->n_inputs && ok; k++)
                if (n->inputs[k] && !ready[n->inputs[k]->id]) ok = false;
            if (!ok || !subgraph_inputs_ready(g, n, ready)) continue;
            placed[i] = true;
            order[done_count++] = n;
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k]) ready[n->outputs[k]->id] = 1;
            progress = true;
        }
    }
    if (done_count < nn) {
        for (int i = 0; i < nn; i++) {
            if (placed[i]) continue;
            char d[256];
            st = kiln_fail(ctx, KILN_ERR_INVALID,
                           "the graph has a cycle (or an input produced by no node): %s cannot be ordered",
                           gir_node_desc(g->nodes[i], d, sizeof d));
            break;
        }
        goto done;
    }
    for (int i = 0; i < nn; i++) {
        g->nodes[i] = order[i];
        g->nodes[i]->id = i;
    }
done:
    kiln_free(placed);
    kiln_free(order);
    kiln_free(ready);
    return st;
}
