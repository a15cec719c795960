/*
** cse.c — common subexpressions (see pass.h). Constants with the same type
** and bytes become one value; then, in node order, a node with the same op,
** domain, opset, attributes and inputs as an earlier one is dropped and its
** readers read the earlier node's outputs. Inputs are renamed as the walk
** goes, so chains of equal nodes merge in one pass.
**
** Never merged: nondeterministic ops, nodes not bound to an op, nodes with
** subgraph attributes (comparing bodies is left out: they may read
** different outer values by the same name), string tensors. A graph output
** keeps its name: when the dropped node produced one, the kept node takes
** it over (and when both did, both stay).
*/
#include <string.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "pass.h"

typedef struct cse_state {
    gir_graph *g;
    gir_value **repl; /* by value id: the value that replaces it, or NULL */
    bool *sub_read;   /* by value id: a subgraph reads it by name */
    int cap;          /* power of two */
    int *table;       /* node or value indices + 1; 0 is empty */
} cse_state;

static uint64_t mix(uint64_t h, uint64_t x) { return (h ^ x) * 1099511628211ull; }

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static bool plain_tensor(const kiln_tensor *t) { return t && t->data && t->dtype != KILN_STRING; }

/* Type, shape and the bytes at both ends: a weight of hundreds of MB is
** not read whole for a hash; equal hashes are compared in full. */
#define HASH_EDGE 4096

static uint64_t hash_tensor(uint64_t h, const kiln_tensor *t) {
    h = mix(mix(h, (uint64_t)t->dtype), (uint64_t)t->rank);
    for (int d = 0; d < t->rank; d++) h = mix(h, (uint64_t)t->dims[d]);
    size_t n = kiln_nbytes(t);
    if (n <= 2 * HASH_EDGE) return hash_bytes(h, t->data, n);
    h = hash_bytes(h, t->data, HASH_EDGE);
    return hash_bytes(h, (const char *)t->data + n - HASH_EDGE, HASH_EDGE);
}

static bool same_tensor(const kiln_tensor *a, const kiln_tensor *b) {
    if (!plain_tensor(a) || !plain_tensor(b) || a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    size_t n = kiln_nbytes(a);
    return n == kiln_nbytes(b) && (n == 0 || !memcmp(a->data, b->data, n));
}

/* ---- attributes: compared by value, in any order ---- */

static bool same_attr(const gir_attr *a, const gir_attr *b) {
    if (!b || a->kind != b->kind) return false;
    switch (a->kind) {
    case GIR_ATTR_INT: return a->i == b->i;
    case GIR_ATTR_FLOAT: return !memcmp(&a->f, &b->f, sizeof a->f);
    case GIR_ATTR_STRING: return a->s_len == b->s_len && (!a->s_len || !memcmp(a->s, b->s, a->s_len));
    case GIR_ATTR_INTS: return a->n == b->n && (!a->n || !memcmp(a->ints, b->ints, sizeof(int64_t) * (size_t)a->n));
    case GIR_ATTR_FLOATS:
        return a->n == b->n && (!a->n || !memcmp(a->floats, b->floats, sizeof(double) * (size_t)a->n));
    case GIR_ATTR_STRINGS:
        if (a->n != b->n) return false;
        for (int i = 0; i < a->n; i++)
            if (strcmp(a->strings[i], b->strings[i])) return false;
        return true;
    case GIR_ATTR_TENSOR: return same_tensor(a->t, b->t);
    default: return false; /* graphs: never equal */
    }
}

static uint64_t hash_attr(const gir_attr *a) {
    uint64_t h = hash_bytes(1469598103934665603ull, a->name, strlen(a->name));
    h = mix(h, (uint64_t)a->kind);
    switch (a->kind) {
    case GIR_ATTR_INT: return mix(h, (uint64_t)a->i);
    case GIR_ATTR_FLOAT: return hash_bytes(h, &a->f, sizeof a->f);
    case GIR_ATTR_STRING: return hash_bytes(h, a->s, a->s_len);
    case GIR_ATTR_INTS: return hash_bytes(h, a->ints, sizeof(int64_t) * (size_t)a->n);
    case GIR_ATTR_FLOATS: return hash_bytes(h, a->floats, sizeof(double) * (size_t)a->n);
    case GIR_ATTR_TENSOR: return plain_tensor(a->t) ? hash_tensor(h, a->t) : h;
    default: return mix(h, (uint64_t)a->n);
    }
}

/* ---- nodes ---- */

static bool mergeable(const gir_node *n) {
    if (!n->op || n->op->nondeterministic || n->op->dynamic_outputs || n->n_outputs < 1) return false;
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].kind == GIR_ATTR_GRAPH || (n->attrs[a].kind == GIR_ATTR_TENSOR && !plain_tensor(n->attrs[a].t)))
            return false;
    return true;
}

static uint64_t hash_node(const gir_node *n) {
    uint64_t h = hash_bytes(1469598103934665603ull, n->op_type, strlen(n->op_type));
    h = hash_bytes(mix(h, (uint64_t)n->opset), n->domain, strlen(n->domain));
    h = mix(mix(h, (uint64_t)n->n_inputs), (uint64_t)n->n_outputs);
    for (int k = 0; k < n->n_inputs; k++) h = mix(h, n->inputs[k] ? (uint64_t)n->inputs[k]->id : ~0ull);
    uint64_t attrs = 0; /* a sum: the order of attributes does not matter */
    for (int a = 0; a < n->n_attrs; a++) attrs += hash_attr(&n->attrs[a]);
    return mix(h, attrs);
}

static bool same_node(const gir_node *a, const gir_node *b) {
    if (strcmp(a->op_type, b->op_type) || strcmp(a->domain, b->domain) || a->opset != b->opset) return false;
    if (a->n_inputs != b->n_inputs || a->n_outputs != b->n_outputs || a->n_attrs != b->n_attrs) return false;
    for (int k = 0; k < a->n_inputs; k++)
        if (a->inputs[k] != b->inputs[k]) return false;
    for (int k = 0; k < a->n_outputs; k++)
        if (!a->outputs[k] != !b->outputs[k]) return false;
    for (int i = 0; i < a->n_attrs; i++)
        if (!same_attr(&a->attrs[i], gir_attr_find(b, a->attrs[i].name))) return false;
    return true;
}

static gir_value *resolve(const cse_state *st, gir_value *v) {
    while (v && st->repl[v->id]) v = st->repl[v->id];
    return v;
}

static bool keeps_name(const cse_state *st, const gir_value *v) { return v->is_output || st->sub_read[v->id]; }

/* Drops node n for `first` when every output can go: an output that must
** keep its name moves to `first` (whose own value then goes instead). */
static bool merge_node(cse_state *st, gir_node *first, gir_node *n) {
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] && keeps_name(st, n->outputs[k]) && keeps_name(st, first->outputs[k])) return false;
    for (int k = 0; k < n->n_outputs; k++) {
        gir_value *v1 = first->outputs[k], *v2 = n->outputs[k];
        if (!v2) continue;
        if (!keeps_name(st, v2)) {
            st->repl[v2->id] = v1;
            continue;
        }
        /* first now writes v2; v1's readers (some already visited) read v2 */
        first->outputs[k] = v2;
        v2->producer = first;
        v2->producer_slot = k;
        v1->producer = NULL;
        n->outputs[k] = NULL;
        pass_replace_uses(st->g, v1, v2);
        st->repl[v1->id] = v2;
    }
    return true;
}

/* Finds an equal earlier node in the table or adds n; *first gets it. */
static gir_node *lookup_node(cse_state *st, int i) {
    gir_node *n = st->g->nodes[i];
    int mask = st->cap - 1;
    for (int k = (int)(hash_node(n) & (uint64_t)mask);; k = (k + 1) & mask) {
        if (!st->table[k]) {
            st->table[k] = i + 1;
            return NULL;
        }
        gir_node *m = st->g->nodes[st->table[k] - 1];
        if (same_node(m, n)) return m;
    }
}

/* ---- constants ---- */

static bool mergeable_const(const cse_state *st, const gir_value *v) {
    return v->constant && !v->is_input && plain_tensor(v->constant) && !kiln_dtype_is_packed(v->constant->dtype) &&
           !st->sub_read[v->id] && !v->is_output;
}

static void merge_constants(cse_state *st) {
    gir_graph *g = st->g;
    int mask = st->cap - 1;
    memset(st->table, 0, sizeof(int) * (size_t)st->cap);
    for (int i = 0; i < g->n_values; i++) {
        gir_value *v = g->values[i];
        if (!mergeable_const(st, v)) continue;
        for (int k = (int)(hash_tensor(1469598103934665603ull, v->constant) & (uint64_t)mask);; k = (k + 1) & mask) {
            if (!st->table[k]) {
                st->table[k] = i + 1;
                break;
            }
            if (same_tensor(g->values[st->table[k] - 1]->constant, v->constant)) {
                st->repl[i] = g->values[st->table[k] - 1];
                break;
            }
        }
    }
}

static void merge_nodes(cse_state *st, bool *dead) {
    gir_graph *g = st->g;
    memset(st->table, 0, sizeof(int) * (size_t)st->cap);
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i], *first;
        for (int k = 0; k < n->n_inputs; k++) n->inputs[k] = resolve(st, n->inputs[k]);
        if (!mergeable(n)) continue;
        if ((first = lookup_node(st, i)) && merge_node(st, first, n)) dead[i] = true;
    }
}

static kiln_status cse_setup(kiln_ctx *ctx, gir_graph *g, cse_state *st) {
    size_t nv = (size_t)g->n_values + 1;
    int64_t need = 2 * (int64_t)(g->n_nodes > g->n_values ? g->n_nodes : g->n_values) + 2;
    st->g = g;
    st->cap = 16;
    while (st->cap < need) st->cap *= 2;
    st->repl = kiln_calloc(nv, sizeof *st->repl);
    st->sub_read = kiln_calloc(nv, sizeof *st->sub_read);
    st->table = kiln_calloc((size_t)st->cap, sizeof *st->table);
    int *last = kiln_malloc(nv * sizeof *last);
    if (!st->repl || !st->sub_read || !st->table || !last) {
        kiln_free(last);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "eliminate_common: out of memory");
    }
    for (size_t v = 0; v < nv; v++) last[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) gir_note_outer_uses(g, g->nodes[i], i, last);
    for (int v = 0; v < g->n_values; v++) st->sub_read[v] = last[v] >= 0;
    kiln_free(last);
    return KILN_OK;
}

kiln_status pass_eliminate_common(kiln_ctx *ctx, gir_graph *g) {
    cse_state st = {0};
    bool *dead = kiln_calloc((size_t)g->n_nodes + 1, sizeof *dead);
    kiln_status s = dead ? cse_setup(ctx, g, &st) : kiln_fail(ctx, KILN_ERR_NOMEM, "eliminate_common: out of memory");
    if (!s) {
        merge_constants(&st);
        merge_nodes(&st, dead);
        int kept = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            gir_node *n = g->nodes[i];
            if (dead[i]) {
                for (int k = 0; k < n->n_outputs; k++)
                    if (n->outputs[k] && n->outputs[k]->producer == n) n->outputs[k]->producer = NULL;
                continue;
            }
            n->id = kept;
            g->nodes[kept++] = n;
        }
        g->n_nodes = kept;
    }
    kiln_free(dead);
    kiln_free(st.repl);
    kiln_free(st.sub_read);
    kiln_free(st.table);
    return s;
}
