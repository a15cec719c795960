/*
** ops_control.c — the control-flow family: If, Loop and Scan. Each runs a
** subgraph (a GRAPH attribute) with the reference interpreter; the subgraph
** reads values of the enclosing graphs through the current scope
** (gir_scope_current, ir/interp.h).
**
** Their output shapes are known only once the subgraph has run (a Loop's
** trip count, the branch an If takes), so the ops are marked
** dynamic_outputs: with every input known, infer returns KILN_ERR_DYNAMIC
** and the kernel allocates the outputs itself. Static inference (inputs not
** all known) gives types where the subgraphs declare them unambiguously.
** Because infer never succeeds with known inputs, constant folding and the
** shape pass never run these kernels outside a graph run.
*/
#include <string.h>

#include "../interp.h"
#include "../tensor.h"

#define CF_MAX_IO 64
/* Bytes a scan output may grow to (as kiln_tensor_alloc allows). */
#define CF_MAX_BYTES ((uint64_t)1 << 40)

/* ---- shared helpers ---- */

static kiln_status cf_graph(kiln_ctx *ctx, const gir_node *n, const char *name, gir_graph **out) {
    const gir_attr *a = gir_attr_find(n, name);
    if (!a || a->kind != GIR_ATTR_GRAPH || !a->g)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' (a graph) is missing", name);
    *out = a->g;
    return KILN_OK;
}

/* True when every present input has its data: the node is about to run. */
static bool cf_all_known(const gir_node *n, const kiln_tensor *const *in) {
    for (int i = 0; i < n->n_inputs; i++)
        if (in[i] && !in[i]->data && kiln_numel(in[i]) != 0) return false;
    return true;
}

static kiln_tensor cf_view(const kiln_tensor *t) {
    kiln_tensor v = *t;
    v.alloc = NULL;
    return v;
}

static bool cf_same_shape(const kiln_tensor *a, const kiln_tensor *b) {
    return a->dtype == b->dtype && kiln_tensor_same_shape(a, b);
}

/* A one-element tensor on `storage`, shaped as the body declares it (a
** scalar unless it says [1]). */
static kiln_tensor cf_scalar(kiln_dtype dt, const gir_value *decl, void *storage) {
    kiln_tensor t;
    int64_t one = 1;
    bool vec = decl && decl->type.rank == 1 && (decl->type.dims[0].value == 1 || decl->type.dims[0].value < 0);
    kiln_tensor_init(&t, dt, vec ? 1 : 0, &one);
    t.data = storage;
    return t;
}

/* Runs a subgraph in `scope` (the current one, or one resolved for it);
** errors say which node, which subgraph and (for loops) which iteration. */
static kiln_status cf_run(kiln_ctx *ctx, const gir_node *n, const char *what, int64_t iter, gir_graph *g,
                          const gir_scope *scope, const kiln_tensor *in, int n_in, kiln_tensor *out) {
    kiln_status s = gir_interp_run_scoped(ctx, g, scope, in, n_in, out, g->n_outputs);
    if (!s) return KILN_OK;
    char d[256];
    if (iter >= 0)
        return kiln_wrap(ctx, s, "%s: %s, iteration %lld", gir_node_desc(n, d, sizeof d), what,
                         (long long)iter);
    return kiln_wrap(ctx, s, "%s: %s", gir_node_desc(n, d, sizeof d), what);
}

static void cf_release(kiln_tensor *t, int count) {
    for (int i = 0; i < count; i++) kiln_tensor_release(&t[i]);
}

/* A result's dtype against a type that the graph declares for it. */
static kiln_status cf_check_dtype(kiln_ctx *ctx, const gir_node *n, const char *what, const gir_value *decl,
                                  const kiln_tensor *t) {
    if (!decl || decl->type.dtype == KILN_UNDEFINED || decl->type.dtype == t->dtype) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s is %s, but '%s' is declared %s", what,
                        kiln_dtype_name(t->dtype), decl->name, kiln_dtype_name(decl->type.dtype));
}

/* Moves a result into out[k]: an owned tensor moves, a borrowed one is
** copied. Where infer sized out[k] already, the result must match it. */
static kiln_status cf_put(kiln_ctx *ctx, const gir_node *n, kiln_tensor *out, int k, kiln_tensor *t) {
    if (out[k].alloc || out[k].data) {
        if (!cf_same_shape(&out[k], t)) {
            char a[128], b[128];
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "output %d is %s, but shape inference gave %s", k,
                                kiln_shape_str(t, a, sizeof a), kiln_shape_str(&out[k], b, sizeof b));
        }
        kiln_tensor_release(&out[k]);
    }
    if (!t->alloc) return kiln_tensor_copy(ctx, t, &out[k]);
    out[k] = *t;
    t->alloc = NULL;
    t->data = NULL;
    return KILN_OK;
}

/* Copies count elements; strings are duplicated (dst holds owned strings). */
static bool cf_copy_elems(kiln_dtype dt, void *dst, int64_t di, const void *src, int64_t si, int64_t count) {
    if (count <= 0) return true;
    if (dt != KILN_STRING) {
        size_t es = kiln_dtype_size(dt);
        memcpy((char *)dst + (size_t)di * es, (const char *)src + (size_t)si * es, (size_t)count * es);
        return true;
    }
    char **d = (char **)dst + di;
    char *const *s = (char *const *)src + si;
    for (int64_t i = 0; i < count; i++) {
        char *c = kiln_strdup(s[i] ? s[i] : "");
        if (!c) return false;
        kiln_free(d[i]);
        d[i] = c;
    }
    return true;
}

/* The shape a subgraph declares for output k, when static. */
static bool cf_declared(const gir_graph *g, int k, kiln_tensor *t) {
    if (k >= g->n_outputs || !gir_type_is_static(&g->outputs[k]->type)) return false;
    gir_type_to_tensor(&g->outputs[k]->type, t);
    return true;
}

/* A tensor of shape dims with `len` inserted at `axis`, zeroed and owned. */
static kiln_status cf_alloc_with_axis(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *elem, int axis,
                                      int64_t len, kiln_tensor *out) {
    if (elem->rank + 1 > KILN_MAX_RANK)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "a scan output of rank %d exceeds kiln's limit of %d",
                            elem->rank + 1, KILN_MAX_RANK);
    int64_t dims[KILN_MAX_RANK];
    for (int i = 0, j = 0; i <= elem->rank; i++) dims[i] = i == axis ? len : elem->dims[j++];
    kiln_tensor_init(out, elem->dtype, elem->rank + 1, dims);
    return kiln_tensor_alloc(ctx, out);
}

/* ---- If ---- */

static kiln_status if_branches(kiln_ctx *ctx, const gir_node *n, gir_graph **then_g, gir_graph **else_g) {
    kiln_status s = cf_graph(ctx, n, "then_branch", then_g);
    if (!s) s = cf_graph(ctx, n, "else_branch", else_g);
    if (s) return s;
    const gir_graph *br[2] = {*then_g, *else_g};
    static const char *const names[2] = {"then_branch", "else_branch"};
    for (int b = 0; b < 2; b++) {
        if (br[b]->n_inputs != 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s takes %d inputs; an If branch takes none",
                                names[b], br[b]->n_inputs);
        if (br[b]->n_outputs != n->n_outputs)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s gives %d outputs, but the node has %d", names[b],
                                br[b]->n_outputs, n->n_outputs);
    }
    for (int k = 0; k < n->n_outputs; k++) {
        kiln_dtype a = (*then_g)->outputs[k]->type.dtype, b = (*else_g)->outputs[k]->type.dtype;
        if (a != KILN_UNDEFINED && b != KILN_UNDEFINED && a != b)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                "output %d is %s in then_branch but %s in else_branch; both must give one type",
                                k, kiln_dtype_name(a), kiln_dtype_name(b));
    }
    return KILN_OK;
}

static kiln_status infer_if(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    gir_graph *tg, *eg;
    kiln_status s = if_branches(ctx, n, &tg, &eg);
    if (s) return s;
    if (cf_all_known(n, in)) return KILN_ERR_DYNAMIC;
    for (int k = 0; k < n->n_outputs; k++) {
        kiln_tensor a, b;
        if (!cf_declared(tg, k, &a) || !cf_declared(eg, k, &b) || !cf_same_shape(&a, &b))
            return KILN_ERR_DYNAMIC;
        out[k] = a;
    }
    return KILN_OK;
}

static kiln_status ref_if(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    gir_graph *tg, *eg;
    kiln_status s = if_branches(ctx, n, &tg, &eg);
    if (s) return s;
    if (kiln_numel(in[0]) != 1) {
        char a[128];
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cond must hold one element, it is %s",
                            kiln_shape_str(in[0], a, sizeof a));
    }
    bool take = ((const uint8_t *)in[0]->data)[0] != 0;
    gir_graph *g = take ? tg : eg;
    const char *name = take ? "then_branch" : "else_branch";
    kiln_tensor res[CF_MAX_IO];
    if (n->n_outputs > CF_MAX_IO)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "more than %d outputs", CF_MAX_IO);
    s = gir_bind_graph(ctx, g);
    if (!s) s = cf_run(ctx, n, name, -1, g, gir_scope_current(), NULL, 0, res);
    if (s) return s;
    for (int k = 0; k < n->n_outputs && !s; k++) {
        char what[64];
        snprintf(what, sizeof what, "%s output %d", name, k);
        s = cf_check_dtype(ctx, n, what, (take ? eg : tg)->outputs[k], &res[k]);
        if (!s) s = cf_check_dtype(ctx, n, what, n->outputs[k], &res[k]);
        if (!s) s = cf_put(ctx, n, out, k, &res[k]);
    }
    cf_release(res, n->n_outputs);
    return s;
}

/* ---- accumulating a Loop's scan outputs ---- */

typedef struct cf_acc {
    bool started;
    kiln_tensor elem; /* dtype and shape of one iteration's value; no data */
    int64_t elems;    /* elements per iteration */
    int64_t count;    /* iterations stored */
    int64_t cap;      /* elements buf holds room for */
    void *buf;        /* count * elems elements (owned strings for KILN_STRING) */
} cf_acc;

static void acc_free(cf_acc *a) {
    if (a->buf && a->elem.dtype == KILN_STRING)
        for (int64_t i = 0; i < a->count * a->elems; i++) kiln_free(((char **)a->buf)[i]);
    kiln_free(a->buf);
    memset(a, 0, sizeof *a);
}

static kiln_status acc_grow(kiln_ctx *ctx, const gir_node *n, int k, cf_acc *a) {
    size_t es = kiln_dtype_size(a->elem.dtype);
    int64_t need = (a->count + 1) * a->elems;
    if (need <= a->cap) return KILN_OK;
    int64_t cap = a->cap > need / 2 ? a->cap * 2 : need;
    if ((uint64_t)cap > CF_MAX_BYTES / es) cap = need;
    if ((uint64_t)cap > CF_MAX_BYTES / es)
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM,
                            "scan output %d grows past %llu bytes after %lld iterations", k,
                            (unsigned long long)CF_MAX_BYTES, (long long)a->count);
    void *p = kiln_realloc(a->buf, (size_t)cap * es);
    if (!p) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory growing scan output %d", k);
    if (a->elem.dtype == KILN_STRING) memset((char **)p + a->cap, 0, (size_t)(cap - a->cap) * sizeof(char *));
    a->buf = p;
    a->cap = cap;
    return KILN_OK;
}

static kiln_status acc_push(kiln_ctx *ctx, const gir_node *n, int k, cf_acc *a, const kiln_tensor *t) {
    if (!a->started) {
        if (t->rank + 1 > KILN_MAX_RANK)
            return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                                "scan output %d: rank %d + 1 exceeds kiln's limit of %d", k, t->rank,
                                KILN_MAX_RANK);
        a->started = true;
        kiln_tensor_init(&a->elem, t->dtype, t->rank, t->dims);
        a->elems = kiln_numel(t);
    } else if (!cf_same_shape(&a->elem, t)) {
        char x[128], y[128];
        return kiln_op_fail(
            ctx, n, KILN_ERR_SHAPE,
            "scan output %d is %s in iteration %lld but was %s before; it must keep its type and shape", k,
            kiln_shape_str(t, x, sizeof x), (long long)a->count, kiln_shape_str(&a->elem, y, sizeof y));
    }
    if (a->elems == 0) {
        a->count++;
        return KILN_OK;
    }
    if (a->count >= INT64_MAX / a->elems - 1)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "scan output %d: the trip count overflows", k);
    kiln_status s = acc_grow(ctx, n, k, a);
    if (s) return s;
    if (!cf_copy_elems(t->dtype, a->buf, a->count * a->elems, t->data, 0, a->elems))
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory copying scan output %d", k);
    a->count++;
    return KILN_OK;
}

/* The stacked scan output [count, elem...]; with no iteration, the body's
** declared shape gives [0, elem...]. */
static kiln_status acc_finish(kiln_ctx *ctx, const gir_node *n, int k, cf_acc *a, const gir_graph *body,
                              int slot, kiln_tensor *out) {
    kiln_tensor elem;
    if (!a->started) {
        if (!cf_declared(body, slot, &elem))
            return kiln_op_fail(
                ctx, n, KILN_ERR_UNSUPPORTED,
                "the loop ran no iteration and the body does not declare the shape of scan output %d", k);
        return cf_alloc_with_axis(ctx, n, &elem, 0, 0, out);
    }
    kiln_tensor t;
    int64_t dims[KILN_MAX_RANK];
    dims[0] = a->count;
    for (int i = 0; i < a->elem.rank; i++) dims[i + 1] = a->elem.dims[i];
    kiln_tensor_init(&t, a->elem.dtype, a->elem.rank + 1, dims);
    if (!a->buf) {
        kiln_status s = kiln_tensor_alloc(ctx, &t);
        if (s) return s;
    } else {
        t.data = t.alloc = a->buf;
        a->buf = NULL;
        a->count = 0;
    }
    *out = t;
    return KILN_OK;
}

/* ---- Loop ---- */

typedef struct loop_plan {
    gir_graph *body;
    int n_carried, n_scan;
} loop_plan;

static kiln_status loop_plan_get(kiln_ctx *ctx, const gir_node *n, loop_plan *p) {
    kiln_status s = cf_graph(ctx, n, "body", &p->body);
    if (s) return s;
    p->n_carried = n->n_inputs > 2 ? n->n_inputs - 2 : 0;
    const gir_graph *b = p->body;
    if (b->n_inputs != p->n_carried + 2)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the body takes %d inputs; with %d loop-carried values it must take %d "
                            "(iteration number, condition, the values)",
                            b->n_inputs, p->n_carried, p->n_carried + 2);
    if (b->n_outputs < p->n_carried + 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the body gives %d outputs; it must give the condition and %d loop-carried values",
                            b->n_outputs, p->n_carried);
    p->n_scan = b->n_outputs - 1 - p->n_carried;
    if (n->n_outputs != p->n_carried + p->n_scan)
        return kiln_op_fail(
            ctx, n, KILN_ERR_INVALID,
            "the node has %d outputs, but the body gives %d loop-carried values and %d scan outputs",
            n->n_outputs, p->n_carried, p->n_scan);
    if (b->n_inputs > CF_MAX_IO || b->n_outputs > CF_MAX_IO)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "a body of more than %d inputs or outputs",
                            CF_MAX_IO);
    return KILN_OK;
}

static const kiln_tensor *cf_in(const gir_node *n, const kiln_tensor *const *in, int i) {
    return i < n->n_inputs ? in[i] : NULL;
}

/* Static inference: loop-carried values whose declared type is the
** initial one, and scan outputs of a counted loop (no condition input). */
static kiln_status infer_loop(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    loop_plan p;
    kiln_status s = loop_plan_get(ctx, n, &p);
    if (s) return s;
    if (cf_all_known(n, in)) return KILN_ERR_DYNAMIC;
    for (int k = 0; k < p.n_carried; k++) {
        kiln_tensor d;
        const kiln_tensor *init = in[2 + k];
        if (!init || !cf_declared(p.body, 1 + k, &d) || !cf_same_shape(&d, init)) return KILN_ERR_DYNAMIC;
        out[k] = d;
    }
    const kiln_tensor *m = cf_in(n, in, 0);
    if (p.n_scan == 0) return KILN_OK;
    if (!m || !m->data || kiln_numel(m) != 1 || cf_in(n, in, 1)) return KILN_ERR_DYNAMIC;
    int64_t trips = ((const int64_t *)m->data)[0];
    for (int k = 0; k < p.n_scan; k++) {
        kiln_tensor d;
        if (!cf_declared(p.body, 1 + p.n_carried + k, &d) || d.rank + 1 > KILN_MAX_RANK)
            return KILN_ERR_DYNAMIC;
        for (int i = d.rank; i > 0; i--) d.dims[i] = d.dims[i - 1];
        d.dims[0] = trips > 0 ? trips : 0;
        d.rank++;
        out[p.n_carried + k] = d;
    }
    return KILN_OK;
}

typedef struct loop_state {
    loop_plan p;
    int64_t trips; /* the most iterations M allows */
    bool has_cond, cond;
    kiln_tensor cur[CF_MAX_IO]; /* loop-carried values: views of the inputs, then owned */
    cf_acc acc[CF_MAX_IO];
    gir_scope scope; /* the body's outer values, looked up once */
} loop_state;

static kiln_status loop_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, loop_state *ls) {
    const kiln_tensor *m = cf_in(n, in, 0), *c = cf_in(n, in, 1);
    char a[128];
    ls->trips = INT64_MAX;
    if (m) {
        if (kiln_numel(m) != 1)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "M (the trip count) must hold one element, it is %s",
                                kiln_shape_str(m, a, sizeof a));
        ls->trips = ((const int64_t *)m->data)[0];
    }
    ls->has_cond = c != NULL;
    ls->cond = true;
    if (c) {
        if (c->dtype != KILN_BOOL || kiln_numel(c) != 1)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cond must be one bool, it is %s",
                                kiln_shape_str(c, a, sizeof a));
        ls->cond = ((const uint8_t *)c->data)[0] != 0;
    }
    if (!m && !c)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "the loop has neither a trip count nor a condition: it would never end");
    for (int k = 0; k < ls->p.n_carried; k++) ls->cur[k] = cf_view(in[2 + k]);
    kiln_status s = gir_bind_graph(ctx, ls->p.body);
    if (!s) s = gir_scope_resolve(ctx, ls->p.body, gir_scope_current(), &ls->scope);
    return s;
}

/* Takes one iteration's results: the condition, the new loop-carried values,
** the scan outputs. res is released either way. */
static kiln_status loop_take(kiln_ctx *ctx, const gir_node *n, loop_state *ls, int64_t it, kiln_tensor *res) {
    const loop_plan *p = &ls->p;
    kiln_status s = KILN_OK;
    char a[128];
    if (ls->has_cond) {
        if (res[0].dtype != KILN_BOOL || kiln_numel(&res[0]) != 1)
            s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                             "the body's condition must be one bool, it is %s in iteration %lld",
                             kiln_shape_str(&res[0], a, sizeof a), (long long)it);
        else
            ls->cond = ((const uint8_t *)res[0].data)[0] != 0;
    }
    for (int k = 0; k < p->n_carried && !s; k++) {
        if (res[1 + k].dtype != ls->cur[k].dtype) {
            s = kiln_op_fail(
                ctx, n, KILN_ERR_SHAPE, "loop-carried value %d turns from %s into %s in iteration %lld", k,
                kiln_dtype_name(ls->cur[k].dtype), kiln_dtype_name(res[1 + k].dtype), (long long)it);
            break;
        }
        kiln_tensor_release(&ls->cur[k]);
        if (res[1 + k].alloc) {
            ls->cur[k] = res[1 + k];
            res[1 + k].alloc = NULL;
        } else {
            s = kiln_tensor_copy(ctx, &res[1 + k], &ls->cur[k]);
        }
    }
    for (int k = 0; k < p->n_scan && !s; k++) s = acc_push(ctx, n, k, &ls->acc[k], &res[1 + p->n_carried + k]);
    cf_release(res, p->body->n_outputs);
    return s;
}

static kiln_status loop_iterate(kiln_ctx *ctx, const gir_node *n, loop_state *ls) {
    const loop_plan *p = &ls->p;
    kiln_tensor args[CF_MAX_IO], res[CF_MAX_IO];
    for (int64_t it = 0; it < ls->trips && ls->cond; it++) {
        int64_t iv = it;
        uint8_t cv = ls->cond;
        args[0] = cf_scalar(KILN_I64, p->body->inputs[0], &iv);
        args[1] = cf_scalar(KILN_BOOL, p->body->inputs[1], &cv);
        for (int k = 0; k < p->n_carried; k++) args[2 + k] = cf_view(&ls->cur[k]);
        kiln_status s = cf_run(ctx, n, "body", it, p->body, &ls->scope, args, 2 + p->n_carried, res);
        if (!s) s = loop_take(ctx, n, ls, it, res);
        if (s) return s;
    }
    return KILN_OK;
}

static kiln_status ref_loop(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    loop_state *ls = kiln_calloc(1, sizeof *ls);
    if (!ls) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = loop_plan_get(ctx, n, &ls->p);
    if (!s) s = loop_setup(ctx, n, in, ls);
    if (!s) s = loop_iterate(ctx, n, ls);
    const loop_plan *p = &ls->p;
    for (int k = 0; k < p->n_carried && !s; k++) {
        char what[64];
        snprintf(what, sizeof what, "loop-carried value %d", k);
        s = cf_check_dtype(ctx, n, what, n->outputs[k], &ls->cur[k]);
        if (!s) s = cf_put(ctx, n, out, k, &ls->cur[k]);
    }
    for (int k = 0; k < p->n_scan && !s; k++) {
        kiln_tensor t = {0};
        s = acc_finish(ctx, n, k, &ls->acc[k], p->body, 1 + p->n_carried + k, &t);
        if (!s) s = cf_put(ctx, n, out, p->n_carried + k, &t);
        kiln_tensor_release(&t);
    }
    cf_release(ls->cur, p->n_carried);
    for (int k = 0; k < p->n_scan; k++) acc_free(&ls->acc[k]);
    gir_scope_release(&ls->scope);
    kiln_free(ls);
    return s;
}

/* ---- Scan ---- */

typedef struct scan_plan {
    gir_graph *body;
    bool batched; /* Scan 8: a batch axis first, and a sequence_lens input */
    int first;    /* the node input of the first state */
    int n_state, n_in, n_out;
    int64_t in_axis[CF_MAX_IO], out_axis[CF_MAX_IO];
    bool in_rev[CF_MAX_IO], out_rev[CF_MAX_IO];
} scan_plan;

/* Reads an INTS attribute of `count` values (all `dflt` when absent). */
static kiln_status scan_list(kiln_ctx *ctx, const gir_node *n, const char *name, int count, int64_t dflt,
                             int64_t *vals) {
    const int64_t *v;
    int got = gir_attr_ints(n, name, &v);
    if (got < 0) {
        for (int i = 0; i < count; i++) vals[i] = dflt;
        return KILN_OK;
    }
    if (got != count)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' has %d values; it needs %d", name, got,
                            count);
    memcpy(vals, v, sizeof(int64_t) * (size_t)count);
    return KILN_OK;
}

static kiln_status scan_dirs(kiln_ctx *ctx, const gir_node *n, const char *name, int count, bool *rev) {
    int64_t v[CF_MAX_IO];
    kiln_status s = scan_list(ctx, n, name, count, 0, v);
    for (int i = 0; i < count && !s; i++) {
        if (v[i] != 0 && v[i] != 1)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute '%s' holds %lld; a direction is 0 or 1",
                                name, (long long)v[i]);
        rev[i] = v[i] == 1;
    }
    return s;
}

static kiln_status scan_arity(kiln_ctx *ctx, const gir_node *n, scan_plan *p) {
    const gir_attr *a = gir_attr_find(n, "num_scan_inputs");
    if (!a || a->kind != GIR_ATTR_INT)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'num_scan_inputs' is missing");
    int total = n->n_inputs - p->first;
    if (a->i < 1 || a->i > total)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "num_scan_inputs is %lld; the node has %d inputs to scan or carry", (long long)a->i,
                            total);
    p->n_in = (int)a->i;
    p->n_state = total - p->n_in;
    const gir_graph *b = p->body;
    if (b->n_inputs != p->n_state + p->n_in)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the body takes %d inputs; it must take %d states and %d scan inputs", b->n_inputs,
                            p->n_state, p->n_in);
    if (b->n_outputs < p->n_state)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the body gives %d outputs; it must give the %d states first", b->n_outputs,
                            p->n_state);
    p->n_out = b->n_outputs - p->n_state;
    if (n->n_outputs != b->n_outputs)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                            "the node has %d outputs, but the body gives %d states and %d scan outputs",
                            n->n_outputs, p->n_state, p->n_out);
    if (b->n_inputs > CF_MAX_IO || b->n_outputs > CF_MAX_IO)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "a body of more than %d inputs or outputs",
                            CF_MAX_IO);
    return KILN_OK;
}

static kiln_status scan_plan_get(kiln_ctx *ctx, const gir_node *n, bool batched, scan_plan *p) {
    memset(p, 0, sizeof *p);
    p->batched = batched;
    p->first = batched ? 1 : 0;
    kiln_status s = cf_graph(ctx, n, "body", &p->body);
    if (!s) s = scan_arity(ctx, n, p);
    if (s) return s;
    if (batched) return scan_dirs(ctx, n, "directions", p->n_in, p->in_rev);
    s = scan_list(ctx, n, "scan_input_axes", p->n_in, 0, p->in_axis);
    if (!s) s = scan_list(ctx, n, "scan_output_axes", p->n_out, 0, p->out_axis);
    if (!s) s = scan_dirs(ctx, n, "scan_input_directions", p->n_in, p->in_rev);
    if (!s) s = scan_dirs(ctx, n, "scan_output_directions", p->n_out, p->out_rev);
    return s;
}

/* One scan over `len` steps; scan outputs get out_len along their axis. */
typedef struct scan_run {
    const scan_plan *p;
    int64_t len, out_len;
    const kiln_tensor *xs;        /* the scan inputs */
    int in_axis[CF_MAX_IO];       /* normalised */
    kiln_tensor slice[CF_MAX_IO]; /* this step's element of each scan input (buffers we own) */
    kiln_tensor cur[CF_MAX_IO];   /* states: views of the initial ones, then owned */
    kiln_tensor elem[CF_MAX_IO];  /* shape of each scan output's element; no data */
    int out_axis[CF_MAX_IO];      /* normalised */
    kiln_tensor outs[CF_MAX_IO];  /* scan outputs, allocated at the first step */
    gir_scope scope;              /* the body's outer values, looked up once */
} scan_run;

/* Copies element `pos` along `axis` of x into slice (strings stay shared). */
static void scan_take_slice(const kiln_tensor *x, int axis, int64_t pos, kiln_tensor *slice) {
    int64_t outer = kiln_numel_dims(axis, x->dims), len = x->dims[axis];
    int64_t inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
    size_t es = kiln_dtype_size(x->dtype), row = (size_t)inner * es;
    for (int64_t o = 0; o < outer && row; o++)
        memcpy((char *)slice->data + (size_t)o * row, (const char *)x->data + (size_t)(o * len + pos) * row,
               row);
}

static kiln_status scan_prepare(kiln_ctx *ctx, const gir_node *n, scan_run *r, const kiln_tensor *states) {
    const scan_plan *p = r->p;
    for (int j = 0; j < p->n_in; j++) {
        const kiln_tensor *x = &r->xs[j];
        kiln_status s = x->rank < 1 ? kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scan input %d is a scalar", j)
                                    : kiln_op_axis(ctx, n, p->in_axis[j], x->rank, &r->in_axis[j]);
        if (s) return s;
        if (x->dims[r->in_axis[j]] < r->len)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                "scan input %d has %lld steps along axis %d; the scan takes %lld", j,
                                (long long)x->dims[r->in_axis[j]], r->in_axis[j], (long long)r->len);
        int64_t dims[KILN_MAX_RANK];
        for (int i = 0, k = 0; i < x->rank; i++)
            if (i != r->in_axis[j]) dims[k++] = x->dims[i];
        kiln_tensor_init(&r->slice[j], x->dtype, x->rank - 1, dims);
        size_t nb = kiln_nbytes(&r->slice[j]);
        r->slice[j].data = kiln_malloc(nb ? nb : 1);
        if (!r->slice[j].data)
            return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory slicing scan input %d", j);
    }
    for (int k = 0; k < p->n_state; k++) r->cur[k] = cf_view(&states[k]);
    return KILN_OK;
}

/* Allocates scan output k from its first element's shape (or the body's
** declaration when there is no step). */
static kiln_status scan_out_alloc(kiln_ctx *ctx, const gir_node *n, scan_run *r, int k,
                                  const kiln_tensor *elem) {
    kiln_tensor_init(&r->elem[k], elem->dtype, elem->rank, elem->dims);
    int64_t axis = r->p->out_axis[k];
    int rank = elem->rank + 1;
    if (axis < -rank || axis >= rank)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "scan_output_axes[%d] = %lld is out of range for rank %d",
                            k, (long long)axis, rank);
    r->out_axis[k] = (int)(axis < 0 ? axis + rank : axis);
    return cf_alloc_with_axis(ctx, n, elem, r->out_axis[k], r->out_len, &r->outs[k]);
}

static kiln_status scan_out_write(kiln_ctx *ctx, const gir_node *n, scan_run *r, int k, int64_t t,
                                  const kiln_tensor *v) {
    kiln_tensor *o = &r->outs[k];
    if (!cf_same_shape(&r->elem[k], v)) {
        char a[128], b[128];
        return kiln_op_fail(
            ctx, n, KILN_ERR_SHAPE,
            "scan output %d is %s in iteration %lld but was %s before; it must keep its type and shape", k,
            kiln_shape_str(v, a, sizeof a), (long long)t, kiln_shape_str(&r->elem[k], b, sizeof b));
    }
    int axis = r->out_axis[k];
    int64_t pos = r->p->out_rev[k] ? r->len - 1 - t : t;
    int64_t outer = kiln_numel_dims(axis, v->dims), inner = kiln_numel_dims(v->rank - axis, v->dims + axis);
    for (int64_t i = 0; i < outer; i++)
        if (!cf_copy_elems(v->dtype, o->data, (i * r->out_len + pos) * inner, v->data, i * inner, inner))
            return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory writing scan output %d", k);
    return KILN_OK;
}

static kiln_status scan_take(kiln_ctx *ctx, const gir_node *n, scan_run *r, int64_t t, kiln_tensor *res) {
    const scan_plan *p = r->p;
    kiln_status s = KILN_OK;
    for (int k = 0; k < p->n_state && !s; k++) {
        if (res[k].dtype != r->cur[k].dtype) {
            s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "state %d turns from %s into %s in iteration %lld", k,
                             kiln_dtype_name(r->cur[k].dtype), kiln_dtype_name(res[k].dtype), (long long)t);
            break;
        }
        kiln_tensor_release(&r->cur[k]);
        r->cur[k] = res[k];
        res[k].alloc = NULL;
        if (!r->cur[k].alloc) s = kiln_tensor_copy(ctx, &res[k], &r->cur[k]);
    }
    for (int k = 0; k < p->n_out && !s; k++) {
        const kiln_tensor *v = &res[p->n_state + k];
        if (t == 0) s = scan_out_alloc(ctx, n, r, k, v);
        if (!s) s = scan_out_write(ctx, n, r, k, t, v);
    }
    cf_release(res, p->body->n_outputs);
    return s;
}

static kiln_status scan_steps(kiln_ctx *ctx, const gir_node *n, scan_run *r) {
    const scan_plan *p = r->p;
    kiln_tensor args[CF_MAX_IO], res[CF_MAX_IO];
    for (int64_t t = 0; t < r->len; t++) {
        for (int k = 0; k < p->n_state; k++) args[k] = cf_view(&r->cur[k]);
        for (int j = 0; j < p->n_in; j++) {
            scan_take_slice(&r->xs[j], r->in_axis[j], p->in_rev[j] ? r->len - 1 - t : t, &r->slice[j]);
            args[p->n_state + j] = r->slice[j];
        }
        kiln_status s = cf_run(ctx, n, "body", t, p->body, &r->scope, args, p->n_state + p->n_in, res);
        if (!s) s = scan_take(ctx, n, r, t, res);
        if (s) return s;
    }
    for (int k = 0; k < p->n_out && r->len == 0; k++) {
        kiln_tensor d;
        if (!cf_declared(p->body, p->n_state + k, &d))
            return kiln_op_fail(
                ctx, n, KILN_ERR_UNSUPPORTED,
                "the scan has no step and the body does not declare the shape of scan output %d", k);
        kiln_status s = scan_out_alloc(ctx, n, r, k, &d);
        if (s) return s;
    }
    return KILN_OK;
}

/* Runs one scan; res[] (N + K) receives owned tensors. */
static kiln_status scan_core(kiln_ctx *ctx, const gir_node *n, const scan_plan *p, const kiln_tensor *states,
                             const kiln_tensor *xs, int64_t len, int64_t out_len, kiln_tensor *res) {
    scan_run *r = kiln_calloc(1, sizeof *r);
    if (!r) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    r->p = p;
    r->len = len;
    r->out_len = out_len;
    r->xs = xs;
    kiln_status s = gir_bind_graph(ctx, p->body);
    if (!s) s = gir_scope_resolve(ctx, p->body, gir_scope_current(), &r->scope);
    if (!s) s = scan_prepare(ctx, n, r, states);
    if (!s) s = scan_steps(ctx, n, r);
    for (int k = 0; k < p->n_state && !s; k++) {
        res[k] = r->cur[k];
        r->cur[k].alloc = NULL;
        if (!res[k].alloc) s = kiln_tensor_copy(ctx, &r->cur[k], &res[k]);
        if (s) cf_release(res, k);
    }
    if (!s)
        for (int k = 0; k < p->n_out; k++) {
            res[p->n_state + k] = r->outs[k];
            r->outs[k].alloc = NULL;
        }
    for (int j = 0; j < p->n_in; j++) kiln_free(r->slice[j].data);
    cf_release(r->cur, p->n_state);
    cf_release(r->outs, p->n_out);
    gir_scope_release(&r->scope);
    kiln_free(r);
    return s;
}

static kiln_status ref_scan9(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    scan_plan p;
    kiln_status s = scan_plan_get(ctx, n, false, &p);
    if (s) return s;
    kiln_tensor states[CF_MAX_IO], xs[CF_MAX_IO], res[CF_MAX_IO];
    for (int k = 0; k < p.n_state; k++) states[k] = cf_view(in[k]);
    int64_t len = 0;
    for (int j = 0; j < p.n_in; j++) {
        xs[j] = cf_view(in[p.n_state + j]);
        int axis;
        s = xs[j].rank < 1 ? kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scan input %d is a scalar", j)
                           : kiln_op_axis(ctx, n, p.in_axis[j], xs[j].rank, &axis);
        if (s) return s;
        if (j > 0 && xs[j].dims[axis] != len)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scan input %d has %lld steps, scan input 0 has %lld",
                                j, (long long)xs[j].dims[axis], (long long)len);
        len = xs[j].dims[axis];
    }
    s = scan_core(ctx, n, &p, states, xs, len, len, res);
    if (s) return s;
    for (int k = 0; k < n->n_outputs && !s; k++) s = cf_put(ctx, n, out, k, &res[k]);
    cf_release(res, n->n_outputs);
    return s;
}

/* ---- Scan 8: batches of sequences ---- */

/* Batch entry b of t: a view of rank - 1. */
static kiln_tensor cf_batch_view(const kiln_tensor *t, int64_t b) {
    kiln_tensor v;
    kiln_tensor_init(&v, t->dtype, t->rank - 1, t->dims + 1);
    v.data = t->data ? (char *)t->data + (size_t)(b * kiln_numel(&v)) * kiln_dtype_size(t->dtype) : NULL;
    return v;
}

static kiln_status scan8_check(kiln_ctx *ctx, const gir_node *n, const scan_plan *p,
                               const kiln_tensor *const *in, int64_t *batch, int64_t *max_len) {
    for (int j = 0; j < p->n_in; j++) {
        const kiln_tensor *x = in[1 + p->n_state + j];
        if (x->rank < 2)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                "scan input %d has rank %d; it needs a batch and a sequence axis", j, x->rank);
        if (j == 0) *batch = x->dims[0], *max_len = x->dims[1];
        if (x->dims[0] != *batch || x->dims[1] != *max_len)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                "scan inputs disagree on the batch size or the sequence length");
    }
    for (int k = 0; k < p->n_state; k++) {
        const kiln_tensor *st = in[1 + k];
        if (st->rank < 1 || st->dims[0] != *batch)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "state %d must have the batch size %lld first", k,
                                (long long)*batch);
    }
    const kiln_tensor *seq = cf_in(n, in, 0);
    if (!seq) return KILN_OK;
    if (kiln_numel(seq) != *batch)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "sequence_lens has %lld values for a batch of %lld",
                            (long long)kiln_numel(seq), (long long)*batch);
    for (int64_t b = 0; b < *batch; b++) {
        int64_t v = ((const int64_t *)seq->data)[b];
        if (v < 0 || v > *max_len)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "sequence_lens[%lld] = %lld is outside [0, %lld]",
                                (long long)b, (long long)v, (long long)*max_len);
    }
    return KILN_OK;
}

/* Places batch entry b's results into the stacked outputs. */
static kiln_status scan8_stack(kiln_ctx *ctx, const gir_node *n, int64_t b, int64_t batch, kiln_tensor *res,
                               kiln_tensor *out) {
    kiln_status s = KILN_OK;
    for (int k = 0; k < n->n_outputs && !s; k++) {
        if (b == 0) {
            kiln_tensor_release(&out[k]);
            s = cf_alloc_with_axis(ctx, n, &res[k], 0, batch, &out[k]);
            if (s) break;
        }
        kiln_tensor first = cf_batch_view(&out[k], 0);
        if (!cf_same_shape(&first, &res[k])) {
            char a[128], c[128];
            s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "output %d is %s for batch entry %lld but %s for entry 0",
                             k, kiln_shape_str(&res[k], a, sizeof a), (long long)b,
                             kiln_shape_str(&first, c, sizeof c));
        } else if (!cf_copy_elems(res[k].dtype, out[k].data, b * kiln_numel(&res[k]), res[k].data, 0,
                                  kiln_numel(&res[k]))) {
            s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
        }
    }
    return s;
}

static kiln_status ref_scan8(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    scan_plan p;
    int64_t batch = 0, max_len = 0;
    kiln_status s = scan_plan_get(ctx, n, true, &p);
    if (!s) s = scan8_check(ctx, n, &p, in, &batch, &max_len);
    if (s) return s;
    if (batch == 0)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "an empty batch: the shapes of the outputs are unknown");
    const kiln_tensor *seq = cf_in(n, in, 0);
    kiln_tensor states[CF_MAX_IO], xs[CF_MAX_IO], res[CF_MAX_IO];
    for (int64_t b = 0; b < batch && !s; b++) {
        for (int k = 0; k < p.n_state; k++) states[k] = cf_batch_view(in[1 + k], b);
        for (int j = 0; j < p.n_in; j++) xs[j] = cf_batch_view(in[1 + p.n_state + j], b);
        int64_t len = seq ? ((const int64_t *)seq->data)[b] : max_len;
        s = scan_core(ctx, n, &p, states, xs, len, max_len, res);
        if (s) break;
        s = scan8_stack(ctx, n, b, batch, res, out);
        cf_release(res, n->n_outputs);
    }
    return s;
}

/* Static inference: states keep their shape when the body declares it so;
** scan outputs take the body's declared element shape. */
static kiln_status infer_scan_common(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                     kiln_tensor *out, bool batched) {
    scan_plan p;
    kiln_status s = scan_plan_get(ctx, n, batched, &p);
    if (s) return s;
    const kiln_tensor *x0 = in[p.first + p.n_state];
    if (cf_all_known(n, in) || !x0 || x0->rank < (batched ? 2 : 1)) return KILN_ERR_DYNAMIC;
    for (int k = 0; k < p.n_state; k++) {
        const kiln_tensor *init = in[p.first + k];
        kiln_tensor d, per;
        if (!init || (batched && init->rank < 1)) return KILN_ERR_DYNAMIC;
        per = batched ? cf_batch_view(init, 0) : *init;
        if (!cf_declared(p.body, k, &d) || !cf_same_shape(&d, &per)) return KILN_ERR_DYNAMIC;
        kiln_tensor_init(&out[k], init->dtype, init->rank, init->dims);
    }
    int axis = 1;
    if (!batched && (s = kiln_op_axis(ctx, n, p.in_axis[0], x0->rank, &axis))) return s;
    for (int k = 0; k < p.n_out; k++) {
        kiln_tensor d, t;
        if (!cf_declared(p.body, p.n_state + k, &d) || d.rank + 2 > KILN_MAX_RANK) return KILN_ERR_DYNAMIC;
        int64_t oa = batched ? 0 : p.out_axis[k];
        if (oa < -(d.rank + 1) || oa > d.rank)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                                "scan_output_axes[%d] = %lld is out of range for rank %d", k, (long long)oa,
                                d.rank + 1);
        if (oa < 0) oa += d.rank + 1;
        int64_t dims[KILN_MAX_RANK];
        for (int i = 0, j = 0; i <= d.rank; i++) dims[i] = i == oa ? x0->dims[axis] : d.dims[j++];
        kiln_tensor_init(&t, d.dtype, d.rank + 1, dims);
        if (batched) {
            for (int i = t.rank; i > 0; i--) t.dims[i] = t.dims[i - 1];
            t.dims[0] = x0->dims[0];
            t.rank++;
        }
        out[p.n_state + k] = t;
    }
    return KILN_OK;
}

static kiln_status infer_scan8(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    return infer_scan_common(ctx, n, in, out, true);
}

static kiln_status infer_scan9(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    return infer_scan_common(ctx, n, in, out, false);
}

/* ---- the table ---- */

static const kiln_attr_schema k_if[] = {
    {"then_branch", GIR_ATTR_GRAPH, true}, {"else_branch", GIR_ATTR_GRAPH, true}, {NULL}};
static const kiln_attr_schema k_loop[] = {{"body", GIR_ATTR_GRAPH, true}, {NULL}};
static const kiln_attr_schema k_scan8[] = {{"body", GIR_ATTR_GRAPH, true},
                                           {"num_scan_inputs", GIR_ATTR_INT, true},
                                           {"directions", GIR_ATTR_INTS, false},
                                           {NULL}};
static const kiln_attr_schema k_scan9[] = {{"body", GIR_ATTR_GRAPH, true},
                                           {"num_scan_inputs", GIR_ATTR_INT, true},
                                           {"scan_input_axes", GIR_ATTR_INTS, false},
                                           {"scan_input_directions", GIR_ATTR_INTS, false},
                                           {"scan_output_axes", GIR_ATTR_INTS, false},
                                           {"scan_output_directions", GIR_ATTR_INTS, false},
                                           {NULL}};

#define CF_ANY (KILN_DT_ALL | KILN_DT_LOWP)

const kiln_op_def kiln_ops_control[] = {
    {"If", "", 1, KILN_MAX_OPSET, 1, 1, 1, CF_MAX_IO, KILN_DT(KILN_BOOL), KILN_FUSE_OPAQUE, k_if, infer_if,
     ref_if, .dynamic_outputs = true},
    {"Loop", "", 1, KILN_MAX_OPSET, 0, CF_MAX_IO, 1, CF_MAX_IO, KILN_DT(KILN_I64), KILN_FUSE_OPAQUE, k_loop,
     infer_loop, ref_loop, .dynamic_outputs = true},
    {"Scan", "", 8, 8, 0, CF_MAX_IO, 1, CF_MAX_IO, KILN_DT(KILN_I64), KILN_FUSE_OPAQUE, k_scan8, infer_scan8,
     ref_scan8, .dynamic_outputs = true},
    {"Scan", "", 9, KILN_MAX_OPSET, 1, CF_MAX_IO, 1, CF_MAX_IO, CF_ANY, KILN_FUSE_OPAQUE, k_scan9, infer_scan9,
     ref_scan9, .dynamic_outputs = true},
    {0},
};
