/*
** compile_run.c — running a compiled plan: each step calls its kernel (or,
** for listed nodes, its reference kernel). Kernels write into the plan's
** arena at the offsets kc_plan_memory chose (graph outputs into the
** caller's tensors); reference kernels' outputs are heap tensors freed after
** their last use.
*/
#include <string.h>
#include <time.h>

#include "compile.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/interp.h"
#include "ir/tensor.h"

#define MAX_IO 64

typedef struct run_state {
    kiln_tensor *vals; /* by value id; arena values are borrowed views */
    kiln_tensor *res;  /* by graph output: the tensors kernels write outputs into */
    int *res_of;       /* by value id: the graph output whose tensor it is, or -1 */
} run_state;

static void bind_values(const kc_plan *p, run_state *st, const kiln_tensor *inputs) {
    gir_graph *g = p->g;
    memset(st->vals, 0, sizeof(kiln_tensor) * (size_t)g->n_values);
    for (int v = 0; v < g->n_values; v++) {
        if (!g->values[v]->constant) continue;
        st->vals[v] = *g->values[v]->constant;
        st->vals[v].alloc = NULL;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        st->vals[g->inputs[i]->id] = inputs[i];
        st->vals[g->inputs[i]->id].alloc = NULL;
    }
}

static kiln_status check_inputs(kiln_ctx *ctx, const kc_plan *p, const kiln_tensor *in, int n) {
    if (n != p->g->n_inputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "the model takes %d inputs, %d were given", p->g->n_inputs, n);
    for (int i = 0; i < n; i++) {
        kiln_tensor want;
        gir_type_to_tensor(&p->g->inputs[i]->type, &want);
        if (want.dtype != in[i].dtype || !kiln_tensor_same_shape(&want, &in[i])) {
            char a[128], b[128];
            return kiln_fail(ctx, KILN_ERR_SHAPE, "input '%s' is %s, but the plan was compiled for %s",
                             p->g->inputs[i]->name, kiln_shape_str(&in[i], a, sizeof a),
                             kiln_shape_str(&want, b, sizeof b));
        }
    }
    return KILN_OK;
}

/* Uninitialized room for the graph outputs that kernels write. */
static kiln_status alloc_results(kiln_ctx *ctx, const kc_plan *p, run_state *st) {
    gir_graph *g = p->g;
    for (int k = 0; k < g->n_outputs; k++) {
        gir_value *v = g->outputs[k];
        if (p->where[v->id] != KC_VAL_OUTPUT || st->res_of[v->id] >= 0) continue;
        kiln_tensor *t = &st->res[k];
        gir_type_to_tensor(&v->type, t);
        size_t bytes = kiln_nbytes(t);
        t->data = t->alloc = kiln_malloc(bytes ? bytes : 1);
        if (!t->data) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory for output '%s' (%zu bytes)", v->name, bytes);
        st->res_of[v->id] = k;
    }
    return KILN_OK;
}

/* Where output value v of a kernel step goes: the arena, the caller's
** tensor, or a new heap tensor. */
static kiln_status kernel_output(kiln_ctx *ctx, const kc_plan *p, run_state *st, const gir_value *v) {
    kiln_tensor *t = &st->vals[v->id];
    gir_type_to_tensor(&v->type, t);
    switch (p->where[v->id]) {
    case KC_VAL_ARENA:
        t->data = p->arena + p->mem.offset[v->id];
        return KILN_OK;
    case KC_VAL_OUTPUT:
        t->data = st->res[st->res_of[v->id]].data;
        return KILN_OK;
    default:
        return kiln_tensor_alloc(ctx, t);
    }
}

/* Calls a compiled kernel: its inputs (or its packed constants), then outputs. */
static kiln_status run_kernel(kiln_ctx *ctx, const kc_plan *p, const kc_step *s, run_state *st) {
    const gir_node *n = s->node;
    void *args[2 * MAX_IO];
    const lir_func *lf = s->lir;
    int a = 0;
    for (int k = 0; k < n->n_inputs && a < MAX_IO; k++) {
        if (!n->inputs[k]) continue;
        const lir_buffer *b = a < lf->n_args ? lf->args[a] : NULL;
        args[a++] = b && b->constant ? b->constant->data : st->vals[n->inputs[k]->id].data;
    }
    uint8_t *scratch = p->scratch;
    for (int k = 0; k < n->n_outputs && a < 2 * MAX_IO; k++) {
        if (n->outputs[k]) {
            kiln_status r = kernel_output(ctx, p, st, n->outputs[k]);
            if (r) return r;
            args[a++] = st->vals[n->outputs[k]->id].data;
        } else if (a < lf->n_args) { /* an omitted output still needs room to be written */
            args[a++] = scratch;
            size_t b = (size_t)lf->args[a - 1]->size * kiln_dtype_size(lf->args[a - 1]->dtype);
            scratch += (b + 63) & ~(size_t)63;
        }
    }
    if (a != lf->n_args)
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "kernel %s takes %d arguments, the node gives %d",
                         s->kernel->name, lf->n_args, a);
    s->kernel->fn(args);
    return KILN_OK;
}

static kiln_status run_reference(kiln_ctx *ctx, const kc_step *s, run_state *st) {
    const gir_node *n = s->node;
    kiln_tensor out[MAX_IO];
    const kiln_tensor *in[MAX_IO];
    memset(out, 0, sizeof out);
    for (int k = 0; k < n->n_inputs; k++) in[k] = n->inputs[k] ? &st->vals[n->inputs[k]->id] : NULL;
    kiln_status r = gir_run_node(ctx, n, in, out);
    for (int k = 0; k < n->n_outputs; k++) {
        if (!r && n->outputs[k]) st->vals[n->outputs[k]->id] = out[k];
        else kiln_tensor_release(&out[k]);
    }
    return r;
}

static kiln_status run_step(kiln_ctx *ctx, const kc_plan *p, const kc_step *s, run_state *st) {
    const gir_node *n = s->node;
    if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO) {
        char d[256];
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: more than %d inputs or outputs",
                         gir_node_desc(n, d, sizeof d), MAX_IO);
    }
    return s->kernel ? run_kernel(ctx, p, s, st) : run_reference(ctx, s, st);
}

/* Values read for the last time: heap ones are freed, arena ones forgotten
** (their room is another value's now), so scopes never see them. */
static void free_dead(const kc_plan *p, run_state *st, int i) {
    const gir_node *n = p->steps[i].node;
    for (int k = 0; k < n->n_inputs; k++) {
        gir_value *v = n->inputs[k];
        if (!v || p->last_use[v->id] != i) continue;
        if (p->where[v->id] == KC_VAL_HEAP) kiln_tensor_release(&st->vals[v->id]);
        else if (p->where[v->id] == KC_VAL_ARENA) st->vals[v->id].data = NULL;
    }
}

/* Hands the outputs to the caller: the ones kernels wrote in place, the
** others copied. On failure none is left allocated. */
static kiln_status take_outputs(kiln_ctx *ctx, const kc_plan *p, run_state *st, kiln_tensor *outputs) {
    int n = p->g->n_outputs;
    for (int i = 0; i < n; i++) {
        if (st->res[i].alloc) continue;
        kiln_status s = kiln_tensor_copy(ctx, &st->vals[p->g->outputs[i]->id], &st->res[i]);
        if (s) return s;
    }
    for (int i = 0; i < n; i++) {
        outputs[i] = st->res[i];
        memset(&st->res[i], 0, sizeof st->res[i]);
    }
    return KILN_OK;
}

static double kc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

kiln_status kc_plan_profile(kiln_ctx *ctx, kc_plan *p) {
    if (!p->step_ms && !(p->step_ms = kiln_calloc((size_t)p->n_steps + 1, sizeof(double))))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    return KILN_OK;
}

kiln_status kc_run(kiln_ctx *ctx, kc_plan *p, const kiln_tensor *inputs, int n_inputs,
                   kiln_tensor *outputs, int n_outputs) {
    if (n_outputs != p->g->n_outputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "the model has %d outputs, room for %d was given",
                         p->g->n_outputs, n_outputs);
    kiln_status s = check_inputs(ctx, p, inputs, n_inputs);
    if (!s) s = kc_plan_arena(ctx, p);
    if (s) return s;
    size_t nv = (size_t)p->g->n_values + 1;
    run_state st = {p->vals, kiln_calloc((size_t)n_outputs + 1, sizeof(kiln_tensor)),
                    kiln_malloc(nv * sizeof(int))};
    if (!st.res || !st.res_of) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory running the plan");
    for (size_t v = 0; !s && v < nv; v++) st.res_of[v] = -1;
    if (!s) bind_values(p, &st, inputs);
    if (!s) s = alloc_results(ctx, p, &st);
    /* control-flow kernels find the values their subgraphs read here */
    gir_scope scope = {NULL, p->g, st.vals, NULL};
    const gir_scope *prev = gir_scope_enter(&scope);
    for (int i = 0; i < p->n_steps && !s; i++) {
        double t0 = p->step_ms ? kc_now_ms() : 0;
        s = run_step(ctx, p, &p->steps[i], &st);
        if (p->step_ms) p->step_ms[i] += kc_now_ms() - t0;
        if (!s) free_dead(p, &st, i);
    }
    if (p->step_ms && !s) p->profiled_runs++;
    gir_scope_leave(prev);
    if (!s) s = take_outputs(ctx, p, &st, outputs);
    for (int v = 0; v < p->g->n_values; v++)
        if (p->where[v] == KC_VAL_HEAP) kiln_tensor_release(&st.vals[v]);
    for (int k = 0; st.res && k < n_outputs; k++) kiln_tensor_release(&st.res[k]);
    kiln_free(st.res);
    kiln_free(st.res_of);
    return s;
}
