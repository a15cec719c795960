/*
** dce.c — dead code (see pass.h): a node is live when one of its outputs is
** a graph output or is read by a live node, directly or by name from a live
** node's subgraph; the others go. Then the value list keeps only what is
** still named somewhere: graph inputs and outputs, and the inputs and
** outputs of the remaining nodes. Constants nobody reads, and the results
** of removed nodes, leave the list.
**
** Removing values is safe because a value's id is only its position in
** g->values: everything indexed by id (interpreters, inference, the
** verifier, the compile plan) is built from the list when it runs, and
** nodes point at values, not ids. The list is compacted and the ids
** renumbered in one step.
*/
#include <string.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "pass.h"

static bool has_subgraph(const gir_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].kind == GIR_ATTR_GRAPH) return true;
    return false;
}

/* Marks what live node n (at index i) reads, subgraph reads included;
** `last` is scratch of n_values entries. */
static void mark_reads(const gir_graph *g, const gir_node *n, int i, bool *live, int *last) {
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        if (v && v->id >= 0 && v->id < g->n_values && g->values[v->id] == v) live[v->id] = true;
    }
    if (!has_subgraph(n)) return;
    for (int v = 0; v < g->n_values; v++) last[v] = -1;
    gir_note_outer_uses(g, n, i, last);
    for (int v = 0; v < g->n_values; v++)
        if (last[v] == i) live[v] = true;
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

/* Keeps graph inputs and outputs, values read (live[]) and values that a
** remaining node produces. */
static void compact_values(gir_graph *g, const bool *live) {
    int kept = 0;
    for (int i = 0; i < g->n_values; i++) {
        gir_value *v = g->values[i];
        if (!v->is_input && !v->is_output && !live[i] && !v->producer) continue;
        v->id = kept;
        g->values[kept++] = v;
    }
    g->n_values = kept;
}

kiln_status pass_eliminate_dead(kiln_ctx *ctx, gir_graph *g) {
    size_t nv = (size_t)g->n_values + 1;
    bool *live = kiln_calloc(nv, sizeof *live), *keep = kiln_calloc((size_t)g->n_nodes + 1, sizeof *keep);
    int *last = kiln_malloc(nv * sizeof *last);
    if (!live || !keep || !last) {
        kiln_free(live);
        kiln_free(keep);
        kiln_free(last);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "eliminate_dead: out of memory");
    }
    for (int i = 0; i < g->n_outputs; i++) live[g->outputs[i]->id] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const gir_node *n = g->nodes[i];
        if (!(keep[i] = node_live(n, live))) continue;
        mark_reads(g, n, i, live, last);
    }
    compact_nodes(g, keep);
    compact_values(g, live);
    kiln_free(live);
    kiln_free(keep);
    kiln_free(last);
    return KILN_OK;
}
