/*
** fuse_kernels.c — kernel fusion: groups of nodes become one FusedKernel
** node each (ir/ops/ops_fused.c), so that intermediate tensors stay in
** registers instead of round trips through memory.
**
** Groups grow greedily in topological order, by the members' fusion
** classes (ir/op.h):
**   - an anchor (Conv, MatMul/Gemm, pooling) starts a group and absorbs its
**     chain of elementwise/broadcast consumers over its own shape (bias,
**     folded BatchNorm, activation, a residual Add whose other operand is
**     computed elsewhere): the epilogue the matmul/conv templates inline;
**     a view may come between when another restores the anchor's shape
**     (Gemm → Reshape → Gelu → Reshape), else the group is cut back;
**   - elementwise/broadcast nodes join any producer group of theirs (so
**     chains and diamonds of them become one kernel);
**   - a reduction absorbs elementwise/injective producer groups and may
**     take an elementwise epilogue over its own output;
**   - an injective node (Transpose, Slice, Pad, Cast, and views such as
**     Reshape, which compile to copies) joins elementwise or injective
**     producers, and elementwise consumers join it.
** A value computed in a group is never read broadcast to more elements
** inside it (inlined, it would be recomputed per use). A group has exactly
** one result read outside it: a node joins only when
** every other member's result is read by members alone (never a graph
** output, never a subgraph). That also rules out cycles: no path can leave
** the group and come back, since only the last member's result leaves it.
** Only nodes with static shapes whose compute definition lowers are
** fused, and a group whose composed definition fails to lower stays as it
** was. Constants stay inputs of the fused node.
*/
#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/op.h"
#include "ir/tir.h"
#include "pass.h"

typedef enum fk_kind { FK_NONE = 0, FK_EW, FK_INJ, FK_REDUCE, FK_ANCHOR } fk_kind;

typedef struct fk_state {
    kiln_ctx *ctx;
    gir_graph *g;
    int n;              /* nodes of the original graph */
    fk_kind *cls;       /* by node: its class, FK_NONE when it is not fused */
    int *grp;           /* by node: its group (the index of the group's last member); -1 */
    fk_kind *kind;      /* by group: FK_ANCHOR or FK_REDUCE if it holds one, else FK_INJ/FK_EW */
    int *cons_at, *cons; /* by value: consumers cons[cons_at[id] .. cons_at[id+1]) */
    bool *sub_read;     /* by value: a subgraph reads it by name */
} fk_state;

/* ---- which nodes may be fused ---- */

static fk_kind class_of(const kiln_op_def *op) {
    switch (op->fusion) {
    case KILN_FUSE_ELEMWISE:
    case KILN_FUSE_BROADCAST: return FK_EW;
    case KILN_FUSE_INJECTIVE: return FK_INJ;
    case KILN_FUSE_REDUCE: return FK_REDUCE;
    case KILN_FUSE_ANCHOR: return FK_ANCHOR;
    /* a view compiled as a copy (Reshape, Squeeze, Flatten) fuses as the
    ** injective copy it is, unless it reads only an operand's shape */
    case KILN_FUSE_SHAPE: return op->shape_only_inputs ? FK_NONE : FK_INJ;
    default: return FK_NONE;
    }
}

static bool static_value(const gir_value *v) { return !v || v->constant || gir_type_is_static(&v->type); }

static bool has_subgraph(const gir_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].kind == GIR_ATTR_GRAPH) return true;
    return false;
}

/* One present output (slot 0), static shapes, a definition that lowers. */
static fk_kind eligible(kiln_ctx *ctx, const gir_node *n) {
    if (!n->op || !n->op->compute || n->op->nondeterministic || has_subgraph(n)) return FK_NONE;
    fk_kind k = class_of(n->op);
    if (k == FK_NONE || n->n_outputs < 1 || !n->outputs[0]) return FK_NONE;
    for (int i = 1; i < n->n_outputs; i++)
        if (n->outputs[i]) return FK_NONE;
    if (n->outputs[0]->constant || !gir_type_is_static(&n->outputs[0]->type)) return FK_NONE;
    for (int i = 0; i < n->n_inputs; i++)
        if (!static_value(n->inputs[i])) return FK_NONE;
    tir_func *f = NULL;
    if (tir_from_node(ctx, n, NULL, &f) != KILN_OK) return FK_NONE;
    tir_func_free(f);
    return k;
}

/* ---- grouping ---- */

static bool same_dims(const gir_type *a, const gir_type *b) {
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d].value != b->dims[d].value) return false;
    return true;
}

/* The anchor (or reduction) of group G. */
static const gir_node *group_head(const fk_state *st, int G) {
    for (int j = 0; j < st->n; j++)
        if (st->grp[j] == G && (st->cls[j] == FK_ANCHOR || st->cls[j] == FK_REDUCE)) return st->g->nodes[j];
    return NULL;
}

static bool is_view(const gir_node *n) { return n->op->fusion == KILN_FUSE_SHAPE; }

/* Whether group G holds a view (after which its shape may differ from its
** anchor's until another view restores it; see trim_to_anchor_shape). */
static bool has_view(const fk_state *st, int G) {
    for (int j = 0; j < st->n; j++)
        if (st->grp[j] == G && is_view(st->g->nodes[j])) return true;
    return false;
}

/* Node i reads every input that group G computes at its own index, and
** (after an anchor) has the anchor's shape: the epilogue form. */
static bool epilogue_fits(const fk_state *st, int G, int i) {
    const gir_node *n = st->g->nodes[i];
    const gir_type *out = &n->outputs[0]->type;
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        if (v && v->producer && st->grp[v->producer->id] == G && !same_dims(&v->type, out)) return false;
    }
    const gir_node *h = group_head(st, G);
    return st->kind[G] != FK_ANCHOR || (h && same_dims(&h->outputs[0]->type, out)) || has_view(st, G);
}

static int64_t type_numel(const gir_type *t) {
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= t->dims[d].value;
    return n;
}

/* Whether the chain of elementwise nodes after view i (each the only
** reader of the one before) reaches a view back to G's anchor's shape: the
** group would then end in that shape (else the view is better left to
** join what follows it, such as a Transpose). */
static bool comes_back(const fk_state *st, int G, int i) {
    const gir_node *h = group_head(st, G);
    const gir_value *v = st->g->nodes[i]->outputs[0];
    if (h && same_dims(&v->type, &h->outputs[0]->type)) return true; /* i is the way back */
    for (int step = 0; h && step < 16; step++) {
        int c0 = st->cons_at[v->id], c1 = st->cons_at[v->id + 1];
        if (c1 - c0 != 1 || v->is_output || st->sub_read[v->id]) return false;
        const gir_node *c = st->g->nodes[st->cons[c0]];
        fk_kind k = c->op ? class_of(c->op) : FK_NONE;
        if (!c->op || !c->op->compute || c->n_outputs < 1 || !c->outputs[0]) return false;
        if (is_view(c)) return same_dims(&c->outputs[0]->type, &h->outputs[0]->type);
        if (k != FK_EW) return false;
        v = c->outputs[0];
    }
    return false;
}

/* Whether node i reads nothing that group G computes at more places than
** G computes it: a broadcast of an inlined value recomputes it per use. */
static bool no_expansion(const fk_state *st, int G, int i) {
    const gir_node *n = st->g->nodes[i];
    int64_t out = type_numel(&n->outputs[0]->type);
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        if (v && v->producer && v->producer->id < st->n && st->grp[v->producer->id] == G &&
            type_numel(&v->type) < out)
            return false;
    }
    return true;
}

/* Whether node i may join group G, by their kinds. */
static bool compatible(const fk_state *st, int G, int i) {
    if (!no_expansion(st, G, i)) return false;
    switch (st->cls[i]) {
    case FK_EW: return st->kind[G] == FK_EW || st->kind[G] == FK_INJ || epilogue_fits(st, G, i);
    case FK_INJ: /* a view may follow an anchor: Gemm → Reshape → Gelu → Reshape */
        return st->kind[G] == FK_EW || st->kind[G] == FK_INJ ||
               (st->kind[G] == FK_ANCHOR && is_view(st->g->nodes[i]) && comes_back(st, G, i));
    case FK_REDUCE: return st->kind[G] == FK_EW || st->kind[G] == FK_INJ;
    default: return false;
    }
}

static bool in_set(const int *set, int n_set, int G) {
    for (int k = 0; k < n_set; k++)
        if (set[k] == G) return true;
    return false;
}

/* Whether every result of the groups in set is read only by them and node
** i: i's output is then the only one of the merged group. */
static bool closed(const fk_state *st, const int *set, int n_set, int i) {
    for (int j = 0; j < i; j++) {
        if (st->grp[j] < 0 || !in_set(set, n_set, st->grp[j])) continue;
        const gir_node *m = st->g->nodes[j];
        for (int k = 0; k < m->n_outputs; k++) {
            const gir_value *v = m->outputs[k];
            if (!v) continue;
            if (v->is_output || st->sub_read[v->id]) return false;
            for (int c = st->cons_at[v->id]; c < st->cons_at[v->id + 1]; c++) {
                int r = st->cons[c];
                if (r != i && (st->grp[r] < 0 || !in_set(set, n_set, st->grp[r]))) return false;
            }
        }
    }
    return true;
}

static void merge(fk_state *st, const int *set, int n_set, int i) {
    fk_kind k = st->cls[i] == FK_REDUCE ? FK_REDUCE : FK_EW;
    if (st->cls[i] == FK_INJ) k = FK_INJ;
    for (int s = 0; s < n_set; s++) {
        fk_kind gk = st->kind[set[s]];
        if (gk == FK_ANCHOR || gk == FK_REDUCE || (gk == FK_INJ && k == FK_EW)) k = gk;
    }
    for (int j = 0; j < i; j++)
        if (st->grp[j] >= 0 && in_set(set, n_set, st->grp[j])) st->grp[j] = i;
    st->grp[i] = i;
    st->kind[i] = k;
}

/* Whether the elementwise group L can follow heavy group H in one kernel:
** all of L after H's head, each member over the head's shape (after an
** anchor) reading what H or L computes at its own index. */
static bool fits_after(const fk_state *st, int L, int H) {
    const gir_node *h = group_head(st, H);
    if (!h) return false;
    for (int j = 0; j < st->n; j++) {
        if (st->grp[j] != L) continue;
        const gir_node *n = st->g->nodes[j];
        const gir_type *out = &n->outputs[0]->type;
        if (j < h->id || (st->kind[H] == FK_ANCHOR && !same_dims(&h->outputs[0]->type, out)) ||
            !no_expansion(st, L, j))
            return false;
        for (int k = 0; k < n->n_inputs; k++) {
            const gir_value *v = n->inputs[k];
            int G = v && v->producer && v->producer->id < st->n ? st->grp[v->producer->id] : -1;
            if ((G == L || G == H) && !same_dims(&v->type, out)) return false;
        }
    }
    return true;
}

/* The producer groups of node i that it may join: those holding an anchor
** or a reduction in heavy[], the others in light[]; the counts. */
static void candidates(const fk_state *st, int i, int *heavy, int *n_heavy, int *light, int *n_light) {
    const gir_node *n = st->g->nodes[i];
    *n_heavy = *n_light = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        if (!v || v->constant || !v->producer || v->producer->id >= st->n) continue;
        int G = st->grp[v->producer->id];
        if (G < 0 || in_set(heavy, *n_heavy, G) || in_set(light, *n_light, G) || !compatible(st, G, i)) continue;
        if (st->kind[G] == FK_ANCHOR || st->kind[G] == FK_REDUCE) heavy[(*n_heavy)++] = G;
        else light[(*n_light)++] = G;
    }
}

static bool try_merge(fk_state *st, const int *set, int n_set, int i) {
    if (n_set == 0 || !closed(st, set, n_set, i)) return false;
    merge(st, set, n_set, i);
    return true;
}

/* Node i joins, in order of preference: an anchor's (or reduction's) group
** with the elementwise groups that can follow it, that group alone, all its
** elementwise producer groups, one of them. Else it starts its own. */
static void place(fk_state *st, int i) {
    int heavy[64], light[64], set[65], n_heavy, n_light;
    st->grp[i] = i;
    st->kind[i] = st->cls[i];
    if (st->cls[i] == FK_ANCHOR || st->g->nodes[i]->n_inputs > 64) return;
    candidates(st, i, heavy, &n_heavy, light, &n_light);
    for (int h = 0; h < n_heavy; h++) {
        int n_set = 0;
        set[n_set++] = heavy[h];
        for (int l = 0; l < n_light; l++)
            if (st->kind[light[l]] == FK_EW && fits_after(st, light[l], heavy[h])) set[n_set++] = light[l];
        if (try_merge(st, set, n_set, i) || (n_set > 1 && try_merge(st, set, 1, i))) return;
    }
    if (n_heavy == 0 && try_merge(st, light, n_light, i)) return;
    for (int l = 0; l < n_light && (n_light > 1 || n_heavy > 0); l++)
        if (try_merge(st, &light[l], 1, i)) return;
}

/* ---- state ---- */

static void note_consumers(fk_state *st, bool fill) {
    gir_graph *g = st->g;
    for (int i = 0; i < st->n; i++) {
        const gir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            const gir_value *v = n->inputs[k];
            bool dup = false;
            for (int q = 0; q < k && !dup; q++) dup = n->inputs[q] == v;
            if (!v || dup) continue;
            if (fill) st->cons[st->cons_at[v->id + 1]++] = i;
            else st->cons_at[v->id + 2]++;
        }
    }
}

static kiln_status state_init(fk_state *st, kiln_ctx *ctx, gir_graph *g) {
    memset(st, 0, sizeof *st);
    st->ctx = ctx;
    st->g = g;
    st->n = g->n_nodes;
    for (int i = 0; i < g->n_nodes; i++) g->nodes[i]->id = i;
    size_t n = (size_t)g->n_nodes + 1, nv = (size_t)g->n_values + 2;
    int n_reads = 0;
    for (int i = 0; i < g->n_nodes; i++) n_reads += g->nodes[i]->n_inputs;
    st->cls = kiln_calloc(n, sizeof *st->cls);
    st->grp = kiln_calloc(n, sizeof *st->grp);
    st->kind = kiln_calloc(n, sizeof *st->kind);
    st->cons_at = kiln_calloc(nv, sizeof *st->cons_at);
    st->cons = kiln_calloc((size_t)n_reads + 1, sizeof *st->cons);
    int *last = kiln_calloc(nv, sizeof *last);
    st->sub_read = kiln_calloc(nv, sizeof *st->sub_read);
    kiln_status s = KILN_OK;
    if (!st->cls || !st->grp || !st->kind || !st->cons_at || !st->cons || !last || !st->sub_read)
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < g->n_nodes; i++)
        if (has_subgraph(g->nodes[i])) gir_note_outer_uses(g, g->nodes[i], 1, last);
    for (int v = 0; !s && v < g->n_values; v++) st->sub_read[v] = last[v] > 0;
    kiln_free(last);
    if (s) return s;
    /* counting sort of the reads by value: cons_at[id+2] counts, then offsets */
    note_consumers(st, false);
    for (int v = 2; v < g->n_values + 2; v++) st->cons_at[v] += st->cons_at[v - 1];
    note_consumers(st, true);
    for (int i = 0; i < st->n; i++) st->grp[i] = -1;
    return KILN_OK;
}

static void state_free(fk_state *st) {
    kiln_free(st->cls);
    kiln_free(st->grp);
    kiln_free(st->kind);
    kiln_free(st->cons_at);
    kiln_free(st->cons);
    kiln_free(st->sub_read);
}

/* ---- the rewrite ---- */

typedef struct fk_group {
    int n_members, n_ins;
    int *members;     /* node indices, in order; the last is the group's tail */
    gir_value **ins;  /* values the members read and do not compute, first read first */
} fk_group;

static bool member_of(const fk_state *st, const gir_value *v, int G) {
    return v->producer && v->producer->id < st->n && st->grp[v->producer->id] == G;
}

static kiln_status collect(const fk_state *st, int G, fk_group *gr) {
    int reads = 0;
    gr->n_members = gr->n_ins = 0;
    for (int j = 0; j <= G; j++)
        if (st->grp[j] == G) gr->n_members++, reads += st->g->nodes[j]->n_inputs;
    gr->members = kiln_calloc((size_t)gr->n_members + 1, sizeof *gr->members);
    gr->ins = kiln_calloc((size_t)reads + 1, sizeof *gr->ins);
    if (!gr->members || !gr->ins) return kiln_fail(st->ctx, KILN_ERR_NOMEM, "out of memory");
    int m = 0;
    for (int j = 0; j <= G; j++) {
        if (st->grp[j] != G) continue;
        gr->members[m++] = j;
        const gir_node *n = st->g->nodes[j];
        for (int k = 0; k < n->n_inputs; k++) {
            gir_value *v = n->inputs[k];
            bool seen = !v || member_of(st, v, G);
            for (int q = 0; q < gr->n_ins && !seen; q++) seen = gr->ins[q] == v;
            if (!seen) gr->ins[gr->n_ins++] = v;
        }
    }
    return KILN_OK;
}

static void group_free(fk_group *gr) {
    kiln_free(gr->members);
    kiln_free(gr->ins);
}

/* A value of the body standing for v of the enclosing graph (same name and type). */
static gir_value *body_value(gir_graph *b, const gir_value *v) {
    gir_value *bv = gir_value_new(b, v->name);
    if (!bv) return NULL;
    bv->type = v->type;
    bv->layout = v->layout;
    if (v->constant) gir_type_from_tensor(&bv->type, v->constant);
    return bv;
}

/* A copy of member m in the body. Its attributes' data stays in the
** enclosing graph's arena, which owns the body and outlives it. */
static bool copy_member(gir_graph *b, const gir_node *m, gir_value **map) {
    gir_node *c = gir_node_new(b, m->op_type, m->name, m->n_inputs, m->n_outputs, m->n_attrs);
    if (!c) return false;
    c->domain = kiln_arena_strdup(b->arena, m->domain ? m->domain : "");
    c->opset = m->opset;
    c->op = m->op;
    if (!c->domain) return false;
    for (int k = 0; k < m->n_attrs; k++) c->attrs[k] = m->attrs[k];
    for (int k = 0; k < m->n_inputs; k++) c->inputs[k] = m->inputs[k] ? map[m->inputs[k]->id] : NULL;
    for (int k = 0; k < m->n_outputs; k++) {
        const gir_value *v = m->outputs[k];
        if (!v) continue;
        gir_value *bv = body_value(b, v);
        if (!bv) return false;
        bv->producer = c;
        bv->producer_slot = k;
        c->outputs[k] = map[v->id] = bv;
    }
    return true;
}

static gir_graph *build_body(const fk_state *st, const fk_group *gr) {
    gir_graph *b = gir_graph_new(), *g = st->g;
    gir_value **map = kiln_calloc((size_t)g->n_values + 1, sizeof *map);
    bool ok = b && map && (b->name = kiln_arena_strdup(b->arena, "body"));
    if (ok && g->n_opsets) {
        b->opsets = kiln_arena_memdup(b->arena, g->opsets, sizeof *g->opsets * (size_t)g->n_opsets);
        b->n_opsets = b->opsets ? g->n_opsets : 0;
        ok = b->opsets != NULL;
    }
    if (ok) b->ir_version = g->ir_version;
    for (int i = 0; ok && i < gr->n_ins; i++) {
        gir_value *bv = body_value(b, gr->ins[i]);
        ok = bv && gir_add_input(b, bv);
        if (ok) map[gr->ins[i]->id] = bv;
    }
    for (int j = 0; ok && j < gr->n_members; j++) ok = copy_member(b, g->nodes[gr->members[j]], map);
    const gir_value *tail = g->nodes[gr->members[gr->n_members - 1]]->outputs[0];
    ok = ok && gir_add_output(b, map[tail->id]);
    kiln_free(map);
    if (!ok) {
        gir_graph_free(b);
        return NULL;
    }
    return b;
}

/* The FusedKernel node for a group (appended to the graph's node list; the
** caller puts it in place), or NULL with *s set when out of memory. */
static gir_node *fused_node(const fk_state *st, const fk_group *gr, gir_graph *body, kiln_status *s) {
    gir_graph *g = st->g;
    const gir_node *first = g->nodes[gr->members[0]], *last = g->nodes[gr->members[gr->n_members - 1]];
    char name[256];
    snprintf(name, sizeof name, "%s_fused", first->name ? first->name : "node");
    gir_node *n = gir_node_new(g, "FusedKernel", name, gr->n_ins, 1, 1);
    const char *dom = n ? kiln_arena_strdup(g->arena, "ai.kiln") : NULL;
    const char *an = n ? kiln_arena_strdup(g->arena, "body") : NULL;
    if (!n || !dom || !an) {
        *s = kiln_fail(st->ctx, KILN_ERR_NOMEM, "out of memory");
        return NULL;
    }
    n->domain = dom;
    n->opset = 1;
    n->op = kiln_op_find("ai.kiln", "FusedKernel", 1, NULL);
    for (int i = 0; i < gr->n_ins; i++) n->inputs[i] = gr->ins[i];
    n->outputs[0] = last->outputs[0];
    n->attrs[0].name = an;
    n->attrs[0].kind = GIR_ATTR_GRAPH;
    n->attrs[0].g = body;
    return n;
}

/* An anchor's group must end in the anchor's shape (the templates' epilogue
** form). One that passed through a view and did not come back is cut after
** its last member of that shape whose earlier members are read by no later
** one; the members after the cut form a group of their own. */
static void trim_to_anchor_shape(fk_state *st, int G) {
    const gir_node *h = group_head(st, G);
    const gir_type *want = h ? &h->outputs[0]->type : NULL;
    if (!want || same_dims(&st->g->nodes[G]->outputs[0]->type, want)) return;
    int cut = h->id;
    for (int m = G - 1; m > h->id && cut == h->id; m--) {
        if (st->grp[m] != G || !same_dims(&st->g->nodes[m]->outputs[0]->type, want)) continue;
        bool ok = true;
        for (int j = h->id; j < m && ok; j++) {
            const gir_value *v = st->g->nodes[j]->outputs[0];
            if (st->grp[j] != G) continue;
            for (int c = st->cons_at[v->id]; c < st->cons_at[v->id + 1] && ok; c++) ok = st->cons[c] <= m;
        }
        if (ok) cut = m;
    }
    fk_kind rest = FK_EW;
    for (int j = 0; j < st->n; j++) {
        if (st->grp[j] != G) continue;
        if (j <= cut) st->grp[j] = cut;
        else if (st->cls[j] == FK_INJ) rest = FK_INJ;
    }
    st->kind[cut] = FK_ANCHOR;
    st->kind[G] = rest;
}

/* Builds one group's node and checks that it lowers; *out stays NULL when
** it does not (the members then stay as they are). */
static kiln_status fuse_group(fk_state *st, int G, gir_node **out) {
    fk_group gr;
    memset(&gr, 0, sizeof gr);
    *out = NULL;
    kiln_status s = collect(st, G, &gr);
    gir_graph *body = s || gr.n_members < 2 ? NULL : build_body(st, &gr);
    if (!s && gr.n_members >= 2 && !body) s = kiln_fail(st->ctx, KILN_ERR_NOMEM, "out of memory");
    gir_node *n = body ? fused_node(st, &gr, body, &s) : NULL;
    if (!n) gir_graph_free(body);
    tir_func *f = NULL;
    if (n && tir_from_node(st->ctx, n, NULL, &f) == KILN_OK) *out = n;
    else if (n) gir_graph_free(body), n->attrs[0].g = NULL;
    tir_func_free(f);
    group_free(&gr);
    return s;
}

static kiln_status add_opset(kiln_ctx *ctx, gir_graph *g) {
    if (gir_opset_version(g, "ai.kiln") > 0) return KILN_OK;
    gir_opset *ops = kiln_arena_alloc(g->arena, sizeof *ops * (size_t)(g->n_opsets + 1));
    const char *dom = kiln_arena_strdup(g->arena, "ai.kiln");
    if (!ops || !dom) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (g->n_opsets) memcpy(ops, g->opsets, sizeof *ops * (size_t)g->n_opsets);
    ops[g->n_opsets].domain = dom;
    ops[g->n_opsets].version = 1;
    g->opsets = ops;
    g->n_opsets++;
    return KILN_OK;
}

/* Each group's node takes its last member's place; the other members go. */
static void reorder(fk_state *st, gir_node **fused) {
    gir_graph *g = st->g;
    int kept = 0;
    for (int i = 0; i < st->n; i++) {
        int G = st->grp[i];
        gir_node *n = g->nodes[i];
        if (G >= 0 && fused[G]) {
            if (G != i) {
                for (int k = 0; k < n->n_outputs; k++)
                    if (n->outputs[k] && n->outputs[k]->producer == n) n->outputs[k]->producer = NULL;
                continue;
            }
            n = fused[G];
            n->outputs[0]->producer = n;
            n->outputs[0]->producer_slot = 0;
        }
        g->nodes[kept++] = n;
    }
    for (int i = 0; i < kept; i++) g->nodes[i]->id = i;
    g->n_nodes = kept;
}

static kiln_status rewrite(fk_state *st) {
    gir_node **fused = kiln_calloc((size_t)st->n + 1, sizeof *fused);
    if (!fused) return kiln_fail(st->ctx, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = KILN_OK;
    bool any = false;
    for (int i = 0; i < st->n && !any; i++) any = st->grp[i] >= 0 && st->grp[i] != i;
    for (int i = 0; i < st->n; i++)
        if (st->grp[i] == i && st->kind[i] == FK_ANCHOR) trim_to_anchor_shape(st, i);
    /* first, so that the bodies inherit the import (and print no header) */
    if (any) s = add_opset(st->ctx, st->g);
    for (int i = 0; i < st->n && !s; i++)
        if (st->grp[i] == i) s = fuse_group(st, i, &fused[i]);
    /* on failure too, so that no half-built node is left in the list */
    for (int i = 0; s && i < st->n; i++)
        if (fused[i]) {
            gir_graph_free(fused[i]->attrs[0].g);
            fused[i] = NULL;
        }
    reorder(st, fused);
    kiln_free(fused);
    return s;
}

kiln_status pass_fuse_kernels(kiln_ctx *ctx, gir_graph *g) {
    if (g->n_nodes == 0) return KILN_OK;
    fk_state st;
    kiln_ctx saved;
    if (ctx) saved = *ctx; /* the probes' errors are not the pass's */
    kiln_status s = state_init(&st, ctx, g);
    for (int i = 0; !s && i < st.n; i++) {
        st.cls[i] = eligible(ctx, g->nodes[i]);
        if (st.cls[i] != FK_NONE) place(&st, i);
    }
    if (!s) s = rewrite(&st);
    if (!s && ctx) *ctx = saved;
    state_free(&st);
    return s;
}
