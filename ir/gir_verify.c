/*
** gir_verify.c — checks a graph's invariants (see gir_text.h). Every pass
** runs it after itself in debug builds, so a message names the pass that
** broke the graph, then the node, the op and the reason.
*/
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "gir_text.h"
#include "op.h"
#include "tensor.h"

/* The enclosing graphs of a subgraph, for outer-scope names. */
typedef struct vscope {
    const gir_graph *g;
    const struct vscope *parent;
    const char *where; /* "subgraph 'body' of node 'loop' (Loop)" or NULL */
} vscope;

typedef struct verifier {
    kiln_ctx *ctx;
    const char *pass;
    kiln_status code;
} verifier;

typedef struct vgraph {
    verifier *vf;
    const vscope *sc;
    const gir_graph *g;
    int *defs;         /* per value id: how many times it is defined */
    const void **def_by; /* per value id: the first definer (a node, or the graph) */
    bool *ready;       /* per value id: defined at the current point of the walk */
} vgraph;

static kiln_status vfail(const vgraph *vg, const gir_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static kiln_status vfail(const vgraph *vg, const gir_node *n, const char *fmt, ...) {
    char msg[1024], d[256], pass[160] = "", where[320] = "", node[300] = "";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (vg->vf->pass) snprintf(pass, sizeof pass, "after pass '%s': ", vg->vf->pass);
    if (vg->sc->where) snprintf(where, sizeof where, "in %s: ", vg->sc->where);
    if (n) snprintf(node, sizeof node, "%s: ", gir_node_desc(n, d, sizeof d));
    return kiln_fail(vg->vf->ctx, vg->vf->code, "%s%s%s%s", pass, where, node, msg);
}

static const char *kind_name(gir_attr_kind k) {
    static const char *const names[] = {"?", "a float", "an int", "a string", "a tensor", "a graph",
                                        "floats", "ints", "strings"};
    return (int)k >= 1 && (int)k <= 8 ? names[k] : "an unknown kind";
}

static bool owned(const gir_graph *g, const gir_value *v) {
    return v->id >= 0 && v->id < g->n_values && g->values[v->id] == v;
}


/* ---- values and constants ---- */

/* `what` names the tensor ("constant 'w'", "attribute 'value'"); `ty` is the
** type it should have (may be NULL). */
static kiln_status check_tensor(const vgraph *vg, const gir_node *n, const char *what,
                                const kiln_tensor *t, const gir_type *ty) {
    if (!kiln_dtype_valid(t->dtype))
        return vfail(vg, n, "%s has an invalid element type (%d)", what, (int)t->dtype);
    if (t->rank < 0 || t->rank > KILN_MAX_RANK)
        return vfail(vg, n, "%s has rank %d (at most %d)", what, t->rank, KILN_MAX_RANK);
    int64_t count = kiln_numel(t);
    if (count < 0 || (count > 0 && kiln_nbytes(t) == 0))
        return vfail(vg, n, "%s has a negative or overflowing shape", what);
    if (count > 0 && !t->data) return vfail(vg, n, "%s has no data", what);
    if (t->dtype == KILN_STRING)
        for (int64_t i = 0; i < count; i++)
            if (!((char *const *)t->data)[i]) return vfail(vg, n, "%s: string %" PRId64 " is NULL", what, i);
    if (!ty) return KILN_OK;
    bool ok = (ty->dtype == KILN_UNDEFINED || ty->dtype == t->dtype) && (ty->rank < 0 || ty->rank == t->rank);
    for (int i = 0; ok && ty->rank >= 0 && i < ty->rank; i++)
        ok = ty->dims[i].value < 0 || ty->dims[i].value == t->dims[i];
    if (!ok) {
        char a[160], b[160];
        return vfail(vg, n, "%s holds %s data but its type says %s", what, kiln_shape_str(t, a, sizeof a),
                     gir_type_str(ty, b, sizeof b));
    }
    return KILN_OK;
}

static kiln_status check_values(const vgraph *vg) {
    const gir_graph *g = vg->g;
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        if (!v || !v->name) return vfail(vg, NULL, "value %d is missing or has no name", i);
        if (v->id != i) return vfail(vg, NULL, "value '%s' has id %d at index %d", v->name, v->id, i);
        if (v->type.rank > KILN_MAX_RANK)
            return vfail(vg, NULL, "value '%s' has rank %d (at most %d)", v->name, v->type.rank, KILN_MAX_RANK);
        if (v->type.dtype != KILN_UNDEFINED && !kiln_dtype_valid(v->type.dtype))
            return vfail(vg, NULL, "value '%s' has an invalid element type (%d)", v->name, (int)v->type.dtype);
        if (v->constant) {
            char what[300];
            snprintf(what, sizeof what, "constant '%s'", v->name);
            kiln_status s = check_tensor(vg, NULL, what, v->constant, &v->type);
            if (s) return s;
        }
    }
    return KILN_OK;
}

/* Value names must be unique: the text form and the frontends name values. */
static kiln_status check_names(const vgraph *vg) {
    const gir_graph *g = vg->g;
    size_t cap = 16;
    while (cap < (size_t)g->n_values * 2) cap *= 2;
    const gir_value **slot = kiln_calloc(cap, sizeof *slot);
    if (!slot) return kiln_fail(vg->vf->ctx, KILN_ERR_NOMEM, "out of memory verifying the graph");
    kiln_status s = KILN_OK;
    for (int i = 0; i < g->n_values && !s; i++) {
        const gir_value *v = g->values[i];
        uint64_t h = 1469598103934665603ull;
        for (const char *c = v->name; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
        size_t k = h & (cap - 1);
        for (; slot[k]; k = (k + 1) & (cap - 1))
            if (!strcmp(slot[k]->name, v->name)) {
                s = vfail(vg, NULL, "two values are named '%s'", v->name);
                break;
            }
        slot[k] = v;
    }
    kiln_free(slot);
    return s;
}

/* ---- definitions ---- */

static const char *definer_desc(const vgraph *vg, const void *by, char *buf, size_t n) {
    if (by == vg->g) return "the graph (an input or a constant)";
    return gir_node_desc(by, buf, n);
}

static kiln_status define(const vgraph *vg, const gir_value *v, const void *by, const gir_node *n) {
    if (vg->defs[v->id]++ == 0) {
        vg->def_by[v->id] = by;
        return KILN_OK;
    }
    char a[256];
    return vfail(vg, n, "value '%s' is defined more than once (also by %s)", v->name,
                 definer_desc(vg, vg->def_by[v->id], a, sizeof a));
}

static kiln_status count_definitions(const vgraph *vg) {
    const gir_graph *g = vg->g;
    for (int i = 0; i < g->n_inputs; i++) {
        const gir_value *v = g->inputs[i];
        if (!v || !owned(g, v)) return vfail(vg, NULL, "graph input %d is not a value of this graph", i);
        if (!v->is_input) return vfail(vg, NULL, "graph input '%s' is not marked as an input", v->name);
        kiln_status s = define(vg, v, g, NULL);
        if (s) return s;
    }
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        if (v->constant && !v->is_input) {
            kiln_status s = define(vg, v, g, NULL);
            if (s) return s;
        }
        if (v->is_input && !vg->defs[i])
            return vfail(vg, NULL, "value '%s' is marked as an input but is not among the graph inputs", v->name);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        if (!n || !n->op_type || !n->name || !n->domain)
            return vfail(vg, NULL, "node %d is missing its name, op type or domain", i);
        if (n->n_inputs < 0 || n->n_outputs < 0 || n->n_attrs < 0 ||
            (n->n_inputs && !n->inputs) || (n->n_outputs && !n->outputs) || (n->n_attrs && !n->attrs))
            return vfail(vg, n, "broken input, output or attribute arrays");
        for (int k = 0; k < n->n_outputs; k++) {
            const gir_value *v = n->outputs[k];
            if (!v) continue;
            if (!owned(g, v)) return vfail(vg, n, "output %d is not a value of this graph", k);
            kiln_status s = define(vg, v, n, n);
            if (s) return s;
        }
    }
    return KILN_OK;
}

/* Whether the nodes could be ordered at all (Kahn's algorithm on a copy). */
static bool has_cycle(const vgraph *vg, const gir_node **on_cycle) {
    const gir_graph *g = vg->g;
    bool *ready = kiln_calloc((size_t)g->n_values + 1, sizeof *ready);
    bool *placed = kiln_calloc((size_t)g->n_nodes + 1, sizeof *placed);
    bool cycle = false;
    if (ready && placed) {
        for (int i = 0; i < g->n_values; i++) ready[i] = !g->values[i]->producer;
        for (bool progress = true; progress;) {
            progress = false;
            for (int i = 0; i < g->n_nodes; i++) {
                const gir_node *n = g->nodes[i];
                bool ok = !placed[i];
                for (int k = 0; ok && k < n->n_inputs; k++)
                    ok = !n->inputs[k] || !owned(g, n->inputs[k]) || ready[n->inputs[k]->id];
                if (!ok) continue;
                placed[i] = progress = true;
                for (int k = 0; k < n->n_outputs; k++)
                    if (n->outputs[k] && owned(g, n->outputs[k])) ready[n->outputs[k]->id] = true;
            }
        }
        for (int i = 0; i < g->n_nodes && !cycle; i++)
            if (!placed[i]) {
                cycle = true;
                *on_cycle = g->nodes[i];
            }
    }
    kiln_free(ready);
    kiln_free(placed);
    return cycle;
}

/* A name no node of this graph defines may be an outer-scope reference. */
static bool defined_outside(const vgraph *vg, const gir_value *v) {
    for (const vscope *s = vg->sc->parent; s; s = s->parent) {
        const gir_value *ov = gir_value_find(s->g, v->name);
        if (ov && (ov->is_input || ov->constant || ov->producer)) return true;
    }
    return false;
}

static kiln_status undefined_input(const vgraph *vg, const gir_node *n, int k) {
    const gir_value *v = n->inputs[k];
    char a[256];
    if (vg->defs[v->id] == 0)
        return vfail(vg, n, "input %d '%s' is not defined (not a graph input, a constant or the output of a node)",
                     k, v->name);
    const gir_node *c = NULL;
    if (has_cycle(vg, &c))
        return vfail(vg, n, "input %d '%s' is used before it is defined: the graph has a cycle through %s", k,
                     v->name, gir_node_desc(c, a, sizeof a));
    return vfail(vg, n, "input %d '%s' is used before it is defined by %s (the nodes are not in topological order)",
                 k, v->name, definer_desc(vg, vg->def_by[v->id], a, sizeof a));
}

/* ---- nodes against their op ---- */

static const kiln_attr_schema *schema_find(const kiln_op_def *op, const char *name) {
    for (const kiln_attr_schema *s = op->attrs; s && s->name; s++)
        if (!strcmp(s->name, name)) return s;
    return NULL;
}

static kiln_status check_op(const vgraph *vg, const gir_node *n) {
    const kiln_op_def *op = n->op;
    if (strcmp(op->name, n->op_type) != 0)
        return vfail(vg, n, "is bound to the entry of op '%s'", op->name);
    if (n->opset < op->min_opset || n->opset > op->max_opset)
        return vfail(vg, n, "is bound to the op's entry for opsets %d to %d, but its opset is %d", op->min_opset,
                     op->max_opset, n->opset);
    if (n->n_inputs < op->min_inputs || n->n_inputs > op->max_inputs)
        return vfail(vg, n, "has %d inputs, the op takes %d to %d", n->n_inputs, op->min_inputs, op->max_inputs);
    if (n->n_outputs < op->min_outputs || n->n_outputs > op->max_outputs)
        return vfail(vg, n, "has %d outputs, the op gives %d to %d", n->n_outputs, op->min_outputs,
                     op->max_outputs);
    for (int i = 0; i < op->min_inputs; i++)
        if (!n->inputs[i]) return vfail(vg, n, "required input %d is missing", i);
    const gir_value *x = n->n_inputs ? n->inputs[0] : NULL;
    if (x && x->type.dtype != KILN_UNDEFINED && !(op->dtypes & KILN_DT(x->type.dtype)))
        return vfail(vg, n, "element type %s of input 0 is not supported by the op", kiln_dtype_name(x->type.dtype));
    for (int i = 0; i < n->n_attrs; i++) {
        const gir_attr *a = &n->attrs[i];
        const kiln_attr_schema *s = schema_find(op, a->name);
        if (!s) return vfail(vg, n, "attribute '%s' is not one the op knows", a->name);
        if (s->kind != a->kind)
            return vfail(vg, n, "attribute '%s' is %s, the op expects %s", a->name, kind_name(a->kind),
                         kind_name(s->kind));
    }
    for (const kiln_attr_schema *s = op->attrs; s && s->name; s++)
        if (s->required && !gir_attr_find(n, s->name))
            return vfail(vg, n, "required attribute '%s' is missing", s->name);
    return KILN_OK;
}

static bool dims_agree(const gir_type *ty, const kiln_tensor *t) {
    if (ty->dtype != KILN_UNDEFINED && ty->dtype != t->dtype) return false;
    if (ty->rank < 0) return true;
    if (ty->rank != t->rank) return false;
    for (int i = 0; i < t->rank; i++)
        if (ty->dims[i].value >= 0 && ty->dims[i].value != t->dims[i]) return false;
    return true;
}

/* Runs the op's inference where every input is static and compares. */
static kiln_status check_inferred(const vgraph *vg, const gir_node *n) {
    enum { MAX_IO = 64 };
    if (!n->op->infer || n->n_inputs > MAX_IO || n->n_outputs > MAX_IO) return KILN_OK;
    kiln_tensor ins[MAX_IO], outs[MAX_IO];
    const kiln_tensor *in[MAX_IO] = {0};
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        in[k] = NULL;
        if (!v) continue;
        if (!gir_type_is_static(&v->type)) return KILN_OK;
        gir_type_to_tensor(&v->type, &ins[k]);
        if (v->constant) ins[k].data = v->constant->data;
        in[k] = &ins[k];
    }
    memset(outs, 0, sizeof(kiln_tensor) * (size_t)n->n_outputs);
    kiln_status s = n->op->infer(vg->vf->ctx, n, in, outs);
    if (s == KILN_ERR_DYNAMIC) return KILN_OK;
    if (s) {
        if (vg->vf->pass) kiln_wrap(vg->vf->ctx, s, "after pass '%s'", vg->vf->pass);
        return s;
    }
    for (int k = 0; k < n->n_outputs; k++) {
        const gir_value *v = n->outputs[k];
        if (!v || dims_agree(&v->type, &outs[k])) continue;
        char a[160], b[160];
        return vfail(vg, n, "output %d '%s' has type %s, but the op infers %s", k, v->name,
                     gir_type_str(&v->type, a, sizeof a), kiln_shape_str(&outs[k], b, sizeof b));
    }
    return KILN_OK;
}

/* ---- attributes ---- */

static kiln_status verify_graph(verifier *vf, const gir_graph *g, const vscope *sc);

static kiln_status check_attrs(const vgraph *vg, const gir_node *n) {
    for (int i = 0; i < n->n_attrs; i++) {
        const gir_attr *a = &n->attrs[i];
        if (!a->name) return vfail(vg, n, "attribute %d has no name", i);
        for (int j = 0; j < i; j++)
            if (n->attrs[j].name && !strcmp(n->attrs[j].name, a->name))
                return vfail(vg, n, "attribute '%s' is given twice", a->name);
        bool list = a->kind == GIR_ATTR_INTS || a->kind == GIR_ATTR_FLOATS || a->kind == GIR_ATTR_STRINGS;
        if ((int)a->kind < GIR_ATTR_FLOAT || (int)a->kind > GIR_ATTR_STRINGS)
            return vfail(vg, n, "attribute '%s' has an unknown kind (%d)", a->name, (int)a->kind);
        if (list && (a->n < 0 || (a->n > 0 && !(a->kind == GIR_ATTR_INTS ? (void *)a->ints
                                                 : a->kind == GIR_ATTR_FLOATS ? (void *)a->floats
                                                                              : (void *)a->strings))))
            return vfail(vg, n, "attribute '%s' has a broken list", a->name);
        if (a->kind == GIR_ATTR_STRING && !a->s) return vfail(vg, n, "attribute '%s' has no string", a->name);
        if (a->kind == GIR_ATTR_TENSOR) {
            if (!a->t) return vfail(vg, n, "attribute '%s' has no tensor", a->name);
            char what[300];
            snprintf(what, sizeof what, "attribute '%s'", a->name);
            kiln_status s = check_tensor(vg, n, what, a->t, NULL);
            if (s) return s;
        }
        if (a->kind == GIR_ATTR_GRAPH) {
            if (!a->g) return vfail(vg, n, "attribute '%s' has no graph", a->name);
            char where[512], d[256];
            snprintf(where, sizeof where, "subgraph '%s' of %s", a->name, gir_node_desc(n, d, sizeof d));
            vscope inner = {a->g, vg->sc, where};
            kiln_status s = verify_graph(vg->vf, a->g, &inner);
            if (s) return s;
        }
    }
    return KILN_OK;
}

/* ---- the walk ---- */

static kiln_status check_node(vgraph *vg, const gir_node *n) {
    const gir_graph *g = vg->g;
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        if (!v) continue;
        if (!owned(g, v)) return vfail(vg, n, "input %d is not a value of this graph", k);
        if (vg->ready[v->id]) continue;
        if (vg->defs[v->id] == 0 && defined_outside(vg, v)) continue;
        return undefined_input(vg, n, k);
    }
    for (int k = 0; k < n->n_outputs; k++) {
        const gir_value *v = n->outputs[k];
        if (!v) continue;
        if (v->producer != n || v->producer_slot != k)
            return vfail(vg, n, "output %d '%s' does not name this node as its producer", k, v->name);
        vg->ready[v->id] = true;
    }
    kiln_status s = check_attrs(vg, n);
    if (!s && n->op) s = check_op(vg, n);
    if (!s && n->op) s = check_inferred(vg, n);
    return s;
}

static kiln_status check_outputs(const vgraph *vg) {
    const gir_graph *g = vg->g;
    for (int i = 0; i < g->n_outputs; i++) {
        const gir_value *v = g->outputs[i];
        if (!v || !owned(g, v)) return vfail(vg, NULL, "graph output %d is not a value of this graph", i);
        if (!v->is_output) return vfail(vg, NULL, "graph output '%s' is not marked as an output", v->name);
        if (!vg->defs[v->id] && !defined_outside(vg, v))
            return vfail(vg, NULL, "graph output '%s' is not defined (no node produces it)", v->name);
    }
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        if (v->producer && !vg->defs[i])
            return vfail(vg, NULL, "value '%s' names a producer that does not list it as an output", v->name);
    }
    return KILN_OK;
}

static kiln_status walk(vgraph *vg) {
    const gir_graph *g = vg->g;
    kiln_status s = check_values(vg);
    if (!s) s = check_names(vg);
    if (!s) s = count_definitions(vg);
    if (s) return s;
    for (int i = 0; i < g->n_values; i++)
        vg->ready[i] = g->values[i]->is_input || g->values[i]->constant;
    for (int i = 0; i < g->n_nodes && !s; i++) s = check_node(vg, g->nodes[i]);
    return s ? s : check_outputs(vg);
}

static kiln_status verify_graph(verifier *vf, const gir_graph *g, const vscope *sc) {
    size_t nv = (size_t)g->n_values + 1;
    vgraph vg = {vf, sc, g, kiln_calloc(nv, sizeof(int)), kiln_calloc(nv, sizeof(void *)),
                 kiln_calloc(nv, sizeof(bool))};
    kiln_status s;
    if (!vg.defs || !vg.def_by || !vg.ready) s = kiln_fail(vf->ctx, KILN_ERR_NOMEM, "out of memory verifying the graph");
    else s = walk(&vg);
    kiln_free(vg.defs);
    kiln_free((void *)vg.def_by);
    kiln_free(vg.ready);
    return s;
}

kiln_status gir_verify(kiln_ctx *ctx, const gir_graph *g, const char *pass_name) {
    verifier vf = {ctx, pass_name, pass_name ? KILN_ERR_INTERNAL : KILN_ERR_INVALID};
    vscope top = {g, NULL, NULL};
    return verify_graph(&vf, g, &top);
}
