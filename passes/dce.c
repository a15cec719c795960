/*
** dce.c — dead code (see pass.h): a node is live when one of its outputs is
** a graph output or is read by a live node, directly or by name from a live
** node's subgraph; the others go. Then the value list keeps only what is
** still named somewhere: graph inputs and outputs, and the inputs and
** outputs of the remaining nodes. Constants nobody reads, and the results
** of removed nodes, leave the list.
**
** Removing values is safe for ids: a value's id is only its position in
** g->values, everything indexed by id (interpreters, inference, the
** verifier, the compile plan) is built from the list when it runs, and
** nodes point at values, not ids; the list is compacted and the ids
** renumbered in one step. Names need care: gir_value_new names a new value
** "%N" after the list's length N, so a shorter list would hand out names
** that kept values already carry. Kept values with such automatic names are
** renamed after their new ids; when one of them must keep its name (a
** graph input or output, or a value a subgraph reads by name) and could
** meet a new name, the list is left whole (the unread values stay, unread).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "pass.h"

static bool has_subgraph(const gir_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].kind == GIR_ATTR_GRAPH) return true;
    return false;
}

/* Marks what live node n (at index i) reads, subgraph reads included (and
** pinned: they are read by name); `last` is scratch of n_values entries. */
static void mark_reads(const gir_graph *g, const gir_node *n, int i, bool *live, bool *pinned, int *last) {
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        if (v && v->id >= 0 && v->id < g->n_values && g->values[v->id] == v) live[v->id] = true;
    }
    if (!has_subgraph(n)) return;
    for (int v = 0; v < g->n_values; v++) last[v] = -1;
    gir_note_outer_uses(g, n, i, last);
    for (int v = 0; v < g->n_values; v++)
        if (last[v] == i) live[v] = pinned[v] = true;
}

static bool node_live(const gir_node *n, const bool *live) {
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] && live[n->outputs[k]->id]) return true;
    return false;
}

/* Keeps the nodes that keep[i] marks, in order; the others' outputs lose
** their producer and their subgraphs are freed. */
static void compact_nodes(gir_graph *g, const bool *keep) {
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        if (!keep[i]) {
            for (int k = 0; k < n->n_outputs; k++)
                if (n->outputs[k] && n->outputs[k]->producer == n) n->outputs[k]->producer = NULL;
            /* subgraphs are owned by their node, freed with the graph's node list */
            for (int a = 0; a < n->n_attrs; a++)
                if (n->attrs[a].kind == GIR_ATTR_GRAPH) {
                    gir_graph_free(n->attrs[a].g);
                    n->attrs[a].g = NULL;
                }
            continue;
        }
        n->id = kept;
        g->nodes[kept++] = n;
    }
    g->n_nodes = kept;
}

/* The number N of an automatic name "%N", or -1. */
static long auto_number(const char *name) {
    char *end;
    if (name[0] != '%' || name[1] < '0' || name[1] > '9') return -1;
    long k = strtol(name + 1, &end, 10);
    return *end ? -1 : k;
}

/* Whether renaming the unpinned automatic names after their new ids
** (newid[i], -1 for a dropped value; at[k] the old index of new id k)
** keeps names unique, now and for the values made later. */
static bool renaming_safe(const gir_graph *g, const bool *pinned, const int *newid, const int *at, int kept) {
    for (int i = 0; i < g->n_values; i++) {
        long k = auto_number(g->values[i]->name);
        if (newid[i] < 0 || !pinned[i] || k < 0) continue;
        if (k >= kept) return false;
        if (at[k] != i && auto_number(g->values[at[k]]->name) >= 0 && !pinned[at[k]]) return false;
    }
    return true;
}

/* Keeps graph inputs and outputs, values read (live[]) and values that a
** remaining node produces; newid is scratch of 2 * n_values entries. */
static kiln_status compact_values(kiln_ctx *ctx, gir_graph *g, const bool *live, const bool *pinned, int *newid) {
    int kept = 0, *at = newid + g->n_values;
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        newid[i] = pinned[i] || live[i] || v->producer ? kept++ : -1;
        if (newid[i] >= 0) at[newid[i]] = i;
    }
    if (kept == g->n_values || !renaming_safe(g, pinned, newid, at, kept)) return KILN_OK;
    for (int i = 0; i < g->n_values; i++) {
        gir_value *v = g->values[i];
        if (newid[i] < 0 || pinned[i] || auto_number(v->name) < 0 || auto_number(v->name) == newid[i]) continue;
        char name[32];
        snprintf(name, sizeof name, "%%%d", newid[i]);
        if (!(v->name = kiln_arena_strdup(g->arena, name)))
            return kiln_fail(ctx, KILN_ERR_NOMEM, "eliminate_dead: out of memory");
    }
    for (int i = 0; i < g->n_values; i++) {
        if (newid[i] < 0) continue;
        g->values[newid[i]] = g->values[i];
        g->values[newid[i]]->id = newid[i];
    }
    g->n_values = kept;
    return KILN_OK;
}

kiln_status pass_eliminate_dead(kiln_ctx *ctx, gir_graph *g) {
    size_t nv = (size_t)g->n_values + 1;
    bool *live = kiln_calloc(nv, sizeof *live), *pinned = kiln_calloc(nv, sizeof *pinned);
    bool *keep = kiln_calloc((size_t)g->n_nodes + 1, sizeof *keep);
    int *last = kiln_malloc(2 * nv * sizeof *last);
    kiln_status s = KILN_OK;
    if (!live || !pinned || !keep || !last) {
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "eliminate_dead: out of memory");
        goto done;
    }
    for (int i = 0; i < g->n_values; i++) pinned[i] = g->values[i]->is_input || g->values[i]->is_output;
    for (int i = 0; i < g->n_outputs; i++) live[g->outputs[i]->id] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const gir_node *n = g->nodes[i];
        if ((keep[i] = node_live(n, live))) mark_reads(g, n, i, live, pinned, last);
    }
    compact_nodes(g, keep);
    s = compact_values(ctx, g, live, pinned, last);
done:
    kiln_free(live);
    kiln_free(pinned);
    kiln_free(keep);
    kiln_free(last);
    return s;
}
