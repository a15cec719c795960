/*
** onnx_graph.c — a decoded ModelProto into the graph IR: values with types,
** constants from initializers, nodes with attributes (subgraphs included),
** and the checks that every name is defined exactly once.
**
** A subgraph (If/Loop/Scan bodies) may read names of enclosing graphs. Such
** a name becomes a value of the subgraph with no producer, no constant and
** not in its inputs: an outer-scope reference, resolved by name when the
** subgraph runs.
*/
#include <stdio.h>
#include <string.h>

#include "ir/dtype.h"
#include "ir/mem.h"
#include "onnx_internal.h"

/* Names to values of one graph: open addressing over arena strings. */
typedef struct name_map {
    gir_value **slots;
    size_t cap, n;
} name_map;

typedef struct scope {
    const struct scope *parent;
    gir_graph *g;
    const char *gname; /* for messages */
    name_map map;
} scope;

typedef struct builder {
    kiln_ctx *ctx;
    const onnx_source *src;
    const gir_graph *root;
} builder;

/* Counts a node or list may not exceed; keeps int arithmetic in gir safe. */
#define MAX_LIST (1 << 24)

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static gir_value *map_get(const name_map *m, const char *name) {
    if (!m->cap) return NULL;
    for (size_t i = hash_str(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        gir_value *v = m->slots[i];
        if (!v) return NULL;
        if (strcmp(v->name, name) == 0) return v;
    }
}

static bool map_put(name_map *m, gir_value *v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        gir_value **ns = kiln_calloc(ncap, sizeof *ns);
        if (!ns) return false;
        for (size_t k = 0; k < m->cap; k++) {
            gir_value *o = m->slots[k];
            if (!o) continue;
            size_t i = hash_str(o->name) & (ncap - 1);
            while (ns[i]) i = (i + 1) & (ncap - 1);
            ns[i] = o;
        }
        kiln_free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t i = hash_str(v->name) & (m->cap - 1);
    while (m->slots[i]) i = (i + 1) & (m->cap - 1);
    m->slots[i] = v;
    m->n++;
    return true;
}

static kiln_status nomem(builder *b) { return kiln_fail(b->ctx, KILN_ERR_NOMEM, "out of memory building the graph"); }

static const char *str(const char *s) { return s ? s : ""; }

static kiln_status new_value(builder *b, scope *sc, const char *name, gir_value **out) {
    gir_value *v = gir_value_new(sc->g, name);
    if (!v || !map_put(&sc->map, v)) return nomem(b);
    *out = v;
    return KILN_OK;
}

/* ---- types ---- */

static const char *type_kind_name(Onnx__TypeProto__ValueCase c) {
    switch (c) {
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "a sequence";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "a map";
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "a sparse tensor";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "an optional";
    default: return "an unknown";
    }
}

/* Reads a TypeProto. A non-tensor type is an error when `strict`, else
** leaves the type unknown (value_info is only a hint). */
static kiln_status read_type(builder *b, gir_graph *g, const Onnx__TypeProto *tp, const char *what,
                             bool strict, gir_type *ty) {
    memset(ty, 0, sizeof *ty);
    ty->rank = -1;
    if (!tp || tp->value_case == ONNX__TYPE_PROTO__VALUE__NOT_SET) return KILN_OK;
    if (tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE) {
        if (!strict) return KILN_OK;
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "%s has %s type; kiln supports only tensors", what,
                         type_kind_name(tp->value_case));
    }
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    if (tt->has_elem_type && tt->elem_type != 0) {
        kiln_status s = onnx_dtype(b->ctx, tt->elem_type, what, &ty->dtype);
        if (s) return s;
    }
    if (!tt->shape) return KILN_OK;
    if (tt->shape->n_dim > KILN_MAX_RANK)
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "%s: rank %zu exceeds kiln's limit of %d", what,
                         tt->shape->n_dim, KILN_MAX_RANK);
    ty->rank = (int)tt->shape->n_dim;
    for (int i = 0; i < ty->rank; i++) {
        const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
        ty->dims[i].value = -1;
        if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE) {
            if (d->dim_value < 0)
                return kiln_fail(b->ctx, KILN_ERR_INVALID, "%s: dimension %d is negative (%lld)", what, i,
                                 (long long)d->dim_value);
            ty->dims[i].value = d->dim_value;
        } else if (d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM && d->dim_param) {
            ty->dims[i].sym = kiln_arena_strdup(g->arena, d->dim_param);
            if (!ty->dims[i].sym) return nomem(b);
        }
    }
    return KILN_OK;
}

/* Declared types fill in what a value does not know yet; constants keep theirs. */
static void merge_type(gir_value *v, const gir_type *ty) {
    if (v->constant) return;
    if (v->type.dtype == KILN_UNDEFINED) v->type.dtype = ty->dtype;
    if (v->type.rank < 0) {
        kiln_dtype dt = v->type.dtype;
        v->type = *ty;
        v->type.dtype = dt;
    }
}

/* ---- initializers and inputs ---- */

static kiln_status add_initializer(builder *b, scope *sc, const Onnx__TensorProto *tp,
                                   const onnx_raw_ref *raw, size_t idx) {
    const char *name = str(tp->name);
    if (!name[0])
        return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': initializer %zu has no name", sc->gname, idx);
    if (map_get(&sc->map, name))
        return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': initializer '%s' is defined twice", sc->gname, name);
    char what[300];
    snprintf(what, sizeof what, "graph '%s': initializer '%s'", sc->gname, name);
    kiln_tensor *t = kiln_arena_alloc(sc->g->arena, sizeof *t);
    if (!t) return nomem(b);
    onnx_tensor_sink sink = {sc->g->arena, b->src};
    kiln_status s = onnx_tensor_from_proto(b->ctx, tp, raw, &sink, what, t);
    gir_value *v;
    if (!s) s = new_value(b, sc, name, &v);
    if (s) return s;
    v->constant = t;
    gir_type_from_tensor(&v->type, t);
    return KILN_OK;
}

static kiln_status add_initializers(builder *b, scope *sc, const Onnx__GraphProto *gp, bool root) {
    if (gp->n_sparse_initializer) {
        const Onnx__SparseTensorProto *sp = gp->sparse_initializer[0];
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "graph '%s': sparse initializer '%s' is not supported",
                         sc->gname, sp->values ? str(sp->values->name) : "");
    }
    if (root && (size_t)b->src->n_refs != gp->n_initializer)
        return kiln_fail(b->ctx, KILN_ERR_INTERNAL, "graph '%s': %zu initializers decoded, %d found in the bytes",
                         sc->gname, gp->n_initializer, b->src->n_refs);
    for (size_t i = 0; i < gp->n_initializer; i++) {
        kiln_status s = add_initializer(b, sc, gp->initializer[i], root ? &b->src->refs[i] : NULL, i);
        if (s) return s;
    }
    return KILN_OK;
}

static kiln_status add_inputs(builder *b, scope *sc, const Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_input; i++) {
        const char *name = str(gp->input[i]->name);
        if (!name[0])
            return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': input %zu has no name", sc->gname, i);
        gir_value *v = map_get(&sc->map, name);
        if (v && v->constant) continue; /* an initializer listed as an input: a constant */
        if (v) return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': input '%s' is listed twice", sc->gname, name);
        char what[300];
        snprintf(what, sizeof what, "graph '%s': input '%s'", sc->gname, name);
        gir_type ty;
        kiln_status s = read_type(b, sc->g, gp->input[i]->type, what, true, &ty);
        if (!s) s = new_value(b, sc, name, &v);
        if (s) return s;
        v->type = ty;
        if (!gir_add_input(sc->g, v)) return nomem(b);
    }
    return KILN_OK;
}

/* ---- nodes ---- */

static kiln_status duplicate_output(builder *b, scope *sc, const gir_node *n, const gir_value *prev) {
    char d[256], pd[256];
    const char *how = prev->constant ? "an initializer" : prev->is_input ? "a graph input" : NULL;
    if (!how && prev->producer) {
        snprintf(pd, sizeof pd, "the output of %s", gir_node_desc(prev->producer, d, sizeof d));
        how = pd;
    }
    return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': %s: output '%s' is already defined (as %s)",
                     sc->gname, gir_node_desc(n, d, sizeof d), prev->name, how ? how : "another value");
}

static kiln_status set_domain(builder *b, scope *sc, gir_node *n, const char *domain) {
    char d[256];
    if (strcmp(domain, "ai.onnx") == 0) domain = "";
    n->domain = kiln_arena_strdup(sc->g->arena, domain);
    if (!n->domain) return nomem(b);
    int64_t v = gir_opset_version(b->root, domain);
    if (v <= 0)
        return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': %s: the model imports no opset for domain '%s'",
                         sc->gname, gir_node_desc(n, d, sizeof d), domain[0] ? domain : "ai.onnx");
    n->opset = v > 0x7fffffff ? 0x7fffffff : (int)v;
    return KILN_OK;
}

static kiln_status create_node(builder *b, scope *sc, const Onnx__NodeProto *np, size_t idx) {
    const char *op = str(np->op_type);
    if (!op[0])
        return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': node %zu ('%s') has no op_type", sc->gname,
                         idx, str(np->name));
    if (np->n_input > MAX_LIST || np->n_output > MAX_LIST || np->n_attribute > MAX_LIST)
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "graph '%s': node %zu ('%s') is too large", sc->gname,
                         idx, str(np->name));
    gir_node *n = gir_node_new(sc->g, op, np->name, (int)np->n_input, (int)np->n_output, (int)np->n_attribute);
    if (!n) return nomem(b);
    kiln_status s = set_domain(b, sc, n, str(np->domain));
    if (s) return s;
    for (int k = 0; k < n->n_outputs; k++) {
        const char *name = np->output[k];
        if (!name[0]) continue;
        gir_value *prev = map_get(&sc->map, name), *v;
        if (prev) return duplicate_output(b, sc, n, prev);
        s = new_value(b, sc, name, &v);
        if (s) return s;
        v->producer = n;
        v->producer_slot = k;
        n->outputs[k] = v;
    }
    return KILN_OK;
}

/* Finds a name here or in an enclosing graph; an outer name gets a local
** outer-scope value. *out is NULL when the name is defined nowhere. */
static kiln_status lookup(builder *b, scope *sc, const char *name, gir_value **out) {
    gir_value *v = map_get(&sc->map, name);
    for (const scope *p = sc->parent; !v && p; p = p->parent) {
        const gir_value *ov = map_get(&p->map, name);
        if (!ov) continue;
        kiln_status s = new_value(b, sc, name, &v);
        if (s) return s;
        v->type = ov->type;
        for (int i = 0; i < v->type.rank; i++) {
            if (!ov->type.dims[i].sym) continue;
            v->type.dims[i].sym = kiln_arena_strdup(sc->g->arena, ov->type.dims[i].sym);
            if (!v->type.dims[i].sym) return nomem(b);
        }
    }
    *out = v;
    return KILN_OK;
}

static kiln_status decode_attr(builder *b, scope *sc, gir_node *n, const Onnx__AttributeProto *ap,
                               gir_attr *a);

static kiln_status resolve_node(builder *b, scope *sc, gir_node *n, const Onnx__NodeProto *np) {
    char d[256];
    for (int k = 0; k < n->n_inputs; k++) {
        const char *name = np->input[k];
        if (!name[0]) continue;
        kiln_status s = lookup(b, sc, name, &n->inputs[k]);
        if (s) return s;
        if (!n->inputs[k])
            return kiln_fail(b->ctx, KILN_ERR_INVALID,
                             "graph '%s': %s: input '%s' is not a graph input, an initializer or the output of any node",
                             sc->gname, gir_node_desc(n, d, sizeof d), name);
    }
    for (int k = 0; k < n->n_attrs; k++) {
        const char *name = str(np->attribute[k]->name);
        for (int j = 0; j < k; j++)
            if (strcmp(n->attrs[j].name, name) == 0)
                return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': %s: attribute '%s' is given twice",
                                 sc->gname, gir_node_desc(n, d, sizeof d), name);
        kiln_status s = decode_attr(b, sc, n, np->attribute[k], &n->attrs[k]);
        if (s) return s;
    }
    return KILN_OK;
}

/* ---- attributes ---- */

static int attr_type(const Onnx__AttributeProto *ap) {
    if (ap->has_type && ap->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__UNDEFINED) return (int)ap->type;
    /* old models may omit the type: take it from the field that is set */
    if (ap->n_floats) return GIR_ATTR_FLOATS;
    if (ap->n_ints) return GIR_ATTR_INTS;
    if (ap->n_strings) return GIR_ATTR_STRINGS;
    if (ap->n_tensors) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS;
    if (ap->n_graphs) return ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS;
    if (ap->t) return GIR_ATTR_TENSOR;
    if (ap->g) return GIR_ATTR_GRAPH;
    if (ap->has_s) return GIR_ATTR_STRING;
    if (ap->has_i) return GIR_ATTR_INT;
    if (ap->has_f) return GIR_ATTR_FLOAT;
    return 0;
}

static const char *attr_type_name(int t) {
    switch (t) {
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSOR: return "SPARSE_TENSOR";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTO: return "TYPE_PROTO";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TENSORS: return "TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPHS: return "GRAPHS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__SPARSE_TENSORS: return "SPARSE_TENSORS";
    case ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__TYPE_PROTOS: return "TYPE_PROTOS";
    default: return "unknown";
    }
}

static kiln_status build_graph(builder *b, const Onnx__GraphProto *gp, const scope *parent, gir_graph *g,
                               bool root);
static kiln_status copy_meta(builder *b, gir_graph *dst, const gir_graph *src);

static kiln_status attr_graph(builder *b, scope *sc, const Onnx__GraphProto *gp, gir_attr *a) {
    gir_graph *sub = gir_graph_new();
    if (!sub) return nomem(b);
    kiln_status s = copy_meta(b, sub, b->root);
    if (!s) s = build_graph(b, gp, sc, sub, false);
    if (s) {
        gir_graph_free(sub);
        return s;
    }
    a->g = sub;
    return KILN_OK;
}

static kiln_status attr_lists(builder *b, kiln_arena *ar, const Onnx__AttributeProto *ap, gir_attr *a) {
    size_t n = a->kind == GIR_ATTR_FLOATS ? ap->n_floats : a->kind == GIR_ATTR_INTS ? ap->n_ints : ap->n_strings;
    if (n > MAX_LIST) return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "attribute '%s' is too long", a->name);
    a->n = (int)n;
    if (a->kind == GIR_ATTR_FLOATS) {
        a->floats = kiln_arena_alloc(ar, n * sizeof(double));
        if (!a->floats) return nomem(b);
        for (size_t i = 0; i < n; i++) a->floats[i] = ap->floats[i];
    } else if (a->kind == GIR_ATTR_INTS) {
        a->ints = kiln_arena_memdup(ar, ap->ints, n * sizeof(int64_t));
        if (!a->ints) return nomem(b);
    } else {
        a->strings = kiln_arena_alloc(ar, n * sizeof(char *));
        if (!a->strings) return nomem(b);
        for (size_t i = 0; i < n; i++) {
            const ProtobufCBinaryData *sd = &ap->strings[i];
            a->strings[i] = kiln_arena_strndup(ar, sd->data ? (const char *)sd->data : "", sd->data ? sd->len : 0);
            if (!a->strings[i]) return nomem(b);
        }
    }
    return KILN_OK;
}

static kiln_status attr_value(builder *b, scope *sc, const Onnx__AttributeProto *ap, gir_attr *a,
                              const char *what) {
    kiln_arena *ar = sc->g->arena;
    switch (a->kind) {
    case GIR_ATTR_FLOAT: a->f = ap->f; return KILN_OK;
    case GIR_ATTR_INT: a->i = ap->i; return KILN_OK;
    case GIR_ATTR_STRING:
        a->s_len = ap->s.data ? ap->s.len : 0;
        a->s = kiln_arena_strndup(ar, ap->s.data ? (const char *)ap->s.data : "", a->s_len);
        return a->s ? KILN_OK : nomem(b);
    case GIR_ATTR_TENSOR: {
        if (!ap->t) return kiln_fail(b->ctx, KILN_ERR_INVALID, "%s: has type TENSOR but no tensor", what);
        a->t = kiln_arena_alloc(ar, sizeof *a->t);
        if (!a->t) return nomem(b);
        onnx_tensor_sink sink = {ar, b->src};
        return onnx_tensor_from_proto(b->ctx, ap->t, NULL, &sink, what, a->t);
    }
    case GIR_ATTR_GRAPH:
        if (!ap->g) return kiln_fail(b->ctx, KILN_ERR_INVALID, "%s: has type GRAPH but no graph", what);
        return attr_graph(b, sc, ap->g, a);
    default: return attr_lists(b, ar, ap, a);
    }
}

static kiln_status decode_attr(builder *b, scope *sc, gir_node *n, const Onnx__AttributeProto *ap,
                               gir_attr *a) {
    char d[256], what[600];
    snprintf(what, sizeof what, "graph '%s': %s: attribute '%s'", sc->gname, gir_node_desc(n, d, sizeof d),
             str(ap->name));
    if (!str(ap->name)[0]) return kiln_fail(b->ctx, KILN_ERR_INVALID, "%s: an attribute has no name", what);
    if (ap->ref_attr_name && ap->ref_attr_name[0])
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "%s: refers to a function attribute ('%s'), which only functions may do",
                         what, ap->ref_attr_name);
    int t = attr_type(ap);
    if (t < GIR_ATTR_FLOAT || t > GIR_ATTR_STRINGS) {
        if (t == 0) return kiln_fail(b->ctx, KILN_ERR_INVALID, "%s: has no type and no value", what);
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "%s: has type %s (%d), which kiln does not support", what,
                         attr_type_name(t), t);
    }
    a->name = kiln_arena_strdup(sc->g->arena, ap->name);
    if (!a->name) return nomem(b);
    a->kind = (gir_attr_kind)t;
    kiln_status s = attr_value(b, sc, ap, a, what);
    if (s == KILN_ERR_NOMEM || !s) return s;
    if (a->kind == GIR_ATTR_GRAPH) return kiln_wrap(b->ctx, s, "%s", what);
    return s;
}

/* ---- graph outputs and value_info ---- */

static kiln_status add_outputs(builder *b, scope *sc, const Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_output; i++) {
        const char *name = str(gp->output[i]->name);
        if (!name[0])
            return kiln_fail(b->ctx, KILN_ERR_INVALID, "graph '%s': output %zu has no name", sc->gname, i);
        char what[300];
        snprintf(what, sizeof what, "graph '%s': output '%s'", sc->gname, name);
        gir_type ty;
        gir_value *v;
        kiln_status s = read_type(b, sc->g, gp->output[i]->type, what, true, &ty);
        if (!s) s = lookup(b, sc, name, &v);
        if (s) return s;
        if (!v)
            return kiln_fail(b->ctx, KILN_ERR_INVALID,
                             "%s is not produced by any node (nor a graph input or an initializer)", what);
        merge_type(v, &ty);
        if (!gir_add_output(sc->g, v)) return nomem(b);
    }
    return KILN_OK;
}

static kiln_status apply_value_info(builder *b, scope *sc, const Onnx__GraphProto *gp) {
    for (size_t i = 0; i < gp->n_value_info; i++) {
        const Onnx__ValueInfoProto *vi = gp->value_info[i];
        gir_value *v = map_get(&sc->map, str(vi->name));
        if (!v) continue; /* a hint about a name nothing uses */
        char what[300];
        snprintf(what, sizeof what, "graph '%s': value_info '%s'", sc->gname, v->name);
        gir_type ty;
        kiln_status s = read_type(b, sc->g, vi->type, what, false, &ty);
        if (s) return s;
        merge_type(v, &ty);
    }
    return KILN_OK;
}

/* ---- graphs ---- */

static kiln_status copy_meta(builder *b, gir_graph *dst, const gir_graph *src) {
    dst->ir_version = src->ir_version;
    dst->producer = src->producer ? kiln_arena_strdup(dst->arena, src->producer) : NULL;
    dst->opsets = kiln_arena_memdup(dst->arena, src->opsets, sizeof(gir_opset) * (size_t)src->n_opsets);
    if ((src->producer && !dst->producer) || !dst->opsets) return nomem(b);
    for (int i = 0; i < src->n_opsets; i++) {
        dst->opsets[i].domain = kiln_arena_strdup(dst->arena, src->opsets[i].domain);
        if (!dst->opsets[i].domain) return nomem(b);
    }
    dst->n_opsets = src->n_opsets;
    return KILN_OK;
}

static kiln_status build_nodes(builder *b, scope *sc, const Onnx__GraphProto *gp) {
    /* outputs first: a node may read a name defined by a later node */
    for (size_t i = 0; i < gp->n_node; i++) {
        kiln_status s = create_node(b, sc, gp->node[i], i);
        if (s) return s;
    }
    kiln_status s = apply_value_info(b, sc, gp);
    for (size_t i = 0; i < gp->n_node && !s; i++) s = resolve_node(b, sc, sc->g->nodes[i], gp->node[i]);
    return s;
}

static kiln_status build_graph(builder *b, const Onnx__GraphProto *gp, const scope *parent, gir_graph *g,
                               bool root) {
    scope sc = {parent, g, str(gp->name), {0}};
    g->name = kiln_arena_strdup(g->arena, sc.gname);
    if (!g->name) return nomem(b);
    if (gp->n_node > MAX_LIST || gp->n_initializer > MAX_LIST)
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "graph '%s' is too large", sc.gname);
    kiln_status s = add_initializers(b, &sc, gp, root);
    if (!s) s = add_inputs(b, &sc, gp);
    if (!s) s = build_nodes(b, &sc, gp);
    if (!s) s = add_outputs(b, &sc, gp);
    if (!s) {
        s = gir_toposort(b->ctx, g);
        if (s && s != KILN_ERR_NOMEM) s = kiln_wrap(b->ctx, s, "graph '%s'", sc.gname);
    }
    kiln_free(sc.map.slots);
    return s;
}

static kiln_status model_meta(builder *b, const Onnx__ModelProto *m, gir_graph *g) {
    g->ir_version = m->ir_version;
    if (m->producer_name || m->producer_version) {
        char buf[512];
        snprintf(buf, sizeof buf, "%s%s%s", str(m->producer_name), m->producer_version ? " " : "",
                 str(m->producer_version));
        g->producer = kiln_arena_strdup(g->arena, buf);
        if (!g->producer) return nomem(b);
    }
    if (m->n_opset_import > MAX_LIST)
        return kiln_fail(b->ctx, KILN_ERR_UNSUPPORTED, "the model has too many opset imports");
    g->opsets = kiln_arena_alloc(g->arena, sizeof(gir_opset) * (m->n_opset_import + 1));
    if (!g->opsets) return nomem(b);
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const Onnx__OperatorSetIdProto *o = m->opset_import[i];
        g->opsets[i].domain = kiln_arena_strdup(g->arena, str(o->domain));
        if (!g->opsets[i].domain) return nomem(b);
        g->opsets[i].version = o->version;
    }
    g->n_opsets = (int)m->n_opset_import;
    return KILN_OK;
}

kiln_status onnx_graph_from_model(kiln_ctx *ctx, const Onnx__ModelProto *m, const onnx_source *src,
                                  gir_graph *g) {
    builder b = {ctx, src, g};
    if (!m->graph) return kiln_fail(ctx, KILN_ERR_INVALID, "the model has no graph");
    kiln_status s = model_meta(&b, m, g);
    if (s) return s;
    return build_graph(&b, m->graph, NULL, g, true);
}
