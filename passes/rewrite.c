/*
** rewrite.c — small graph edits shared by the passes.
*/
#include <string.h>

#include "ir/interp.h"
#include "ir/tensor.h"
#include "pass.h"

static bool has_subgraph(const gir_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].kind == GIR_ATTR_GRAPH) return true;
    return false;
}

/* How many nodes' subgraphs read v by name from an enclosing scope. */
static int subgraph_reads(const gir_graph *g, const gir_value *v) {
    int count = 0, *last = NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        if (!has_subgraph(g->nodes[i])) continue;
        if (!last && !(last = kiln_calloc((size_t)g->n_values + 1, sizeof *last))) return 1; /* assume read */
        last[v->id] = -1;
        gir_note_outer_uses(g, g->nodes[i], i, last);
        if (last[v->id] == i) count++;
    }
    kiln_free(last);
    return count;
}

int pass_consumers(const gir_graph *g, const gir_value *v, gir_node **out, int cap) {
    int count = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] == v) {
                if (count < cap) out[count] = g->nodes[i];
                count++;
                break;
            }
    }
    return count;
}

int pass_count_uses(const gir_graph *g, const gir_value *v) {
    int count = subgraph_reads(g, v);
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++) count += g->nodes[i]->inputs[k] == v;
    for (int i = 0; i < g->n_outputs; i++) count += g->outputs[i] == v;
    return count;
}

bool pass_value_replaceable(const gir_graph *g, const gir_value *v) {
    return !v->is_input && !v->is_output && subgraph_reads(g, v) == 0;
}

void pass_replace_uses(gir_graph *g, const gir_value *from, gir_value *to) {
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++)
            if (g->nodes[i]->inputs[k] == from) g->nodes[i]->inputs[k] = to;
}

void pass_remove_node(gir_graph *g, gir_node *n) {
    int kept = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i] == n) continue;
        g->nodes[i]->id = kept;
        g->nodes[kept++] = g->nodes[i];
    }
    g->n_nodes = kept;
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] && n->outputs[k]->producer == n) n->outputs[k]->producer = NULL;
}

/* The output is a graph output: the input's producer writes it instead. */
static bool retarget_producer(gir_graph *g, gir_value *in, gir_value *out) {
    gir_node *p = in->producer;
    if (!p || in->is_input || in->is_output || in->constant || subgraph_reads(g, in)) return false;
    if (in->type.dtype != out->type.dtype && out->type.dtype != KILN_UNDEFINED) return false;
    pass_replace_uses(g, in, out);
    p->outputs[in->producer_slot] = out;
    out->producer = p;
    out->producer_slot = in->producer_slot;
    out->type = in->type;
    in->producer = NULL;
    return true;
}

bool pass_bypass_node(gir_graph *g, gir_node *n, int in_slot, int out_slot) {
    gir_value *in = gir_input(n, in_slot), *out = out_slot < n->n_outputs ? n->outputs[out_slot] : NULL;
    if (!in || !out) return false;
    if (out->is_output || subgraph_reads(g, out)) {
        if (!retarget_producer(g, in, out)) return false;
        n->outputs[out_slot] = NULL;
        /* out's readers now come after p; they already came after n */
    } else {
        pass_replace_uses(g, out, in);
    }
    pass_remove_node(g, n);
    return true;
}

gir_value *pass_new_constant(gir_graph *g, const char *name, const kiln_tensor *t) {
    kiln_tensor *c = kiln_arena_alloc(g->arena, sizeof *c);
    size_t nb = kiln_nbytes(t);
    if (!c || t->dtype == KILN_STRING) return NULL;
    *c = *t;
    c->alloc = NULL;
    c->data = kiln_arena_alloc(g->arena, nb ? nb : 1);
    if (!c->data) return NULL;
    if (nb) memcpy(c->data, t->data, nb);
    gir_value *v = gir_value_new(g, name);
    if (!v) return NULL;
    v->constant = c;
    gir_type_from_tensor(&v->type, c);
    return v;
}

gir_node *pass_insert_node(gir_graph *g, gir_node *before, const char *op_type, const char *name,
                           gir_value *const *inputs, int n_in, int n_out, int n_attrs) {
    gir_node *n = gir_node_new(g, op_type, name, n_in, n_out, n_attrs);
    if (!n) return NULL;
    n->opset = (int)gir_opset_version(g, "");
    for (int k = 0; k < n_in; k++) n->inputs[k] = inputs[k];
    for (int k = 0; k < n_out; k++) {
        gir_value *v = gir_value_new(g, NULL);
        if (!v) return NULL;
        v->type.rank = -1;
        v->producer = n;
        v->producer_slot = k;
        n->outputs[k] = v;
    }
    if (!before) return n;
    /* move n (appended last) to before's position */
    int at = before->id;
    for (int i = g->n_nodes - 1; i > at; i--) {
        g->nodes[i] = g->nodes[i - 1];
        g->nodes[i]->id = i;
    }
    g->nodes[at] = n;
    n->id = at;
    return n;
}

static gir_attr *attr_slot(gir_graph *g, gir_node *n, int k, const char *name, gir_attr_kind kind) {
    if (k < 0 || k >= n->n_attrs) return NULL;
    gir_attr *a = &n->attrs[k];
    memset(a, 0, sizeof *a);
    a->name = kiln_arena_strdup(g->arena, name);
    a->kind = kind;
    return a->name ? a : NULL;
}

bool pass_set_attr_int(gir_graph *g, gir_node *n, int k, const char *name, int64_t v) {
    gir_attr *a = attr_slot(g, n, k, name, GIR_ATTR_INT);
    if (a) a->i = v;
    return a != NULL;
}

bool pass_set_attr_float(gir_graph *g, gir_node *n, int k, const char *name, double v) {
    gir_attr *a = attr_slot(g, n, k, name, GIR_ATTR_FLOAT);
    if (a) a->f = v;
    return a != NULL;
}

bool pass_set_attr_ints(gir_graph *g, gir_node *n, int k, const char *name, const int64_t *v, int count) {
    gir_attr *a = attr_slot(g, n, k, name, GIR_ATTR_INTS);
    if (!a) return false;
    a->n = count;
    a->ints = kiln_arena_alloc(g->arena, sizeof(int64_t) * (size_t)(count ? count : 1));
    if (!a->ints) return false;
    if (count) memcpy(a->ints, v, sizeof(int64_t) * (size_t)count);
    return true;
}

bool pass_same_static_type(const gir_type *a, const gir_type *b) {
    if (a->dtype == KILN_UNDEFINED || a->dtype != b->dtype || a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i].value < 0 || a->dims[i].value != b->dims[i].value) return false;
    return true;
}

void pass_take_outputs(gir_graph *g, gir_node *to, gir_node *from) {
    for (int k = 0; k < to->n_outputs && k < from->n_outputs; k++) {
        gir_value *v = from->outputs[k];
        if (to->outputs[k] && to->outputs[k]->producer == to) to->outputs[k]->producer = NULL;
        to->outputs[k] = v;
        if (v) {
            v->producer = to;
            v->producer_slot = k;
        }
        from->outputs[k] = NULL;
    }
    pass_remove_node(g, from);
}

/* The attribute of n called name, appended (the array copied into the
** arena, one slot larger) when n has none. */
static gir_attr *put_attr(gir_graph *g, gir_node *n, const char *name, gir_attr_kind kind) {
    gir_attr *a = (gir_attr *)gir_attr_find(n, name);
    if (!a) {
        gir_attr *attrs = kiln_arena_alloc(g->arena, sizeof *attrs * (size_t)(n->n_attrs + 1));
        const char *nm = kiln_arena_strdup(g->arena, name);
        if (!attrs || !nm) return NULL;
        if (n->n_attrs) memcpy(attrs, n->attrs, sizeof *attrs * (size_t)n->n_attrs);
        a = &attrs[n->n_attrs];
        n->attrs = attrs;
        n->n_attrs++;
        memset(a, 0, sizeof *a);
        a->name = nm;
    }
    a->kind = kind;
    return a;
}

bool pass_put_attr_int(gir_graph *g, gir_node *n, const char *name, int64_t v) {
    gir_attr *a = put_attr(g, n, name, GIR_ATTR_INT);
    if (a) a->i = v;
    return a != NULL;
}

bool pass_put_attr_float(gir_graph *g, gir_node *n, const char *name, double v) {
    gir_attr *a = put_attr(g, n, name, GIR_ATTR_FLOAT);
    if (a) a->f = v;
    return a != NULL;
}

bool pass_put_input(gir_graph *g, gir_node *n, int slot, gir_value *v) {
    if (slot < 0) return false;
    if (slot >= n->n_inputs) {
        gir_value **ins = kiln_arena_alloc(g->arena, sizeof *ins * (size_t)(slot + 2));
        if (!ins) return false;
        memset(ins, 0, sizeof *ins * (size_t)(slot + 2));
        if (n->n_inputs) memcpy(ins, n->inputs, sizeof *ins * (size_t)n->n_inputs);
        n->inputs = ins;
        n->n_inputs = slot + 1;
    }
    n->inputs[slot] = v;
    return true;
}
