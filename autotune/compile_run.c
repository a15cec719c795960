/*
** compile_run.c — running a compiled plan: values live in tensors, each
** step calls its kernel (or, for listed nodes, its reference kernel), and a
** value is freed after its last use.
*/
#include <string.h>

#include "compile.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/tensor.h"

#define MAX_IO 64

typedef struct run_state {
    kiln_tensor *vals;
    int *last_use;
} run_state;

static void bind_values(const kc_plan *p, run_state *st, const kiln_tensor *inputs) {
    gir_graph *g = p->g;
    for (int v = 0; v < g->n_values; v++) {
        if (!g->values[v]->constant) continue;
        st->vals[v] = *g->values[v]->constant;
        st->vals[v].alloc = NULL;
    }
    for (int i = 0; i < g->n_inputs; i++) {
        st->vals[g->inputs[i]->id] = inputs[i];
        st->vals[g->inputs[i]->id].alloc = NULL;
    }
    for (int v = 0; v < g->n_values; v++) st->last_use[v] = -1;
    for (int i = 0; i < p->n_steps; i++) {
        const gir_node *n = p->steps[i].node;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k]) st->last_use[n->inputs[k]->id] = i;
        gir_note_outer_uses(g, n, i, st->last_use); /* values only its subgraphs read */
    }
    for (int k = 0; k < g->n_outputs; k++) st->last_use[g->outputs[k]->id] = p->n_steps;
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

/* Calls a compiled kernel: its inputs (or its packed constants), then outputs. */
static kiln_status run_kernel(kiln_ctx *ctx, const kc_step *s, run_state *st, kiln_tensor *out) {
    const gir_node *n = s->node;
    void *args[2 * MAX_IO];
    const lir_func *lf = s->lir;
    int a = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        if (!n->inputs[k]) continue;
        const lir_buffer *b = a < lf->n_args ? lf->args[a] : NULL;
        args[a++] = b && b->constant ? b->constant->data : st->vals[n->inputs[k]->id].data;
    }
    for (int k = 0; k < n->n_outputs; k++) {
        if (n->outputs[k]) {
            gir_type_to_tensor(&n->outputs[k]->type, &out[k]);
        } else if (a < lf->n_args) { /* an omitted output still needs room to be written */
            int64_t size = lf->args[a]->size;
            kiln_tensor_init(&out[k], lf->args[a]->dtype, 1, &size);
        }
        kiln_status r = kiln_tensor_alloc(ctx, &out[k]);
        if (r) return r;
        args[a++] = out[k].data;
    }
    if (a != lf->n_args)
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "kernel %s takes %d arguments, the node gives %d",
                         s->kernel->name, lf->n_args, a);
    s->kernel->fn(args);
    return KILN_OK;
}

static kiln_status run_step(kiln_ctx *ctx, const kc_step *s, run_state *st) {
    const gir_node *n = s->node;
    kiln_tensor out[MAX_IO];
    memset(out, 0, sizeof out);
    kiln_status r;
    if (s->kernel) {
        r = run_kernel(ctx, s, st, out);
    } else {
        const kiln_tensor *in[MAX_IO];
        for (int k = 0; k < n->n_inputs; k++) in[k] = n->inputs[k] ? &st->vals[n->inputs[k]->id] : NULL;
        r = gir_run_node(ctx, n, in, out);
    }
    for (int k = 0; k < n->n_outputs; k++) {
        if (!r && n->outputs[k]) {
            st->vals[n->outputs[k]->id] = out[k];
        } else {
            kiln_tensor_release(&out[k]);
        }
    }
    return r;
}

static void free_dead(const kc_plan *p, run_state *st, int i) {
    const gir_node *n = p->steps[i].node;
    for (int k = 0; k < n->n_inputs; k++) {
        gir_value *v = n->inputs[k];
        if (v && st->last_use[v->id] == i) kiln_tensor_release(&st->vals[v->id]);
    }
}

static kiln_status take_outputs(kiln_ctx *ctx, const kc_plan *p, run_state *st, kiln_tensor *outputs) {
    for (int i = 0; i < p->g->n_outputs; i++) {
        kiln_tensor *t = &st->vals[p->g->outputs[i]->id];
        kiln_status s = kiln_tensor_copy(ctx, t, &outputs[i]);
        if (s) {
            for (int j = 0; j < i; j++) kiln_tensor_release(&outputs[j]);
            return s;
        }
    }
    return KILN_OK;
}

kiln_status kc_run(kiln_ctx *ctx, kc_plan *p, const kiln_tensor *inputs, int n_inputs,
                   kiln_tensor *outputs, int n_outputs) {
    if (n_outputs != p->g->n_outputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "the model has %d outputs, room for %d was given",
                         p->g->n_outputs, n_outputs);
    kiln_status s = check_inputs(ctx, p, inputs, n_inputs);
    if (s) return s;
    size_t nv = (size_t)p->g->n_values + 1;
    run_state st = {kiln_calloc(nv, sizeof(kiln_tensor)), kiln_calloc(nv, sizeof(int))};
    if (!st.vals || !st.last_use) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory running the plan");
    if (!s) bind_values(p, &st, inputs);
    /* control-flow kernels find the values their subgraphs read here */
    gir_scope scope = {NULL, p->g, st.vals, NULL};
    const gir_scope *prev = gir_scope_enter(&scope);
    for (int i = 0; i < p->n_steps && !s; i++) {
        s = run_step(ctx, &p->steps[i], &st);
        if (!s) free_dead(p, &st, i);
    }
    gir_scope_leave(prev);
    if (!s) s = take_outputs(ctx, p, &st, outputs);
    for (size_t v = 0; st.vals && v < nv; v++) kiln_tensor_release(&st.vals[v]);
    kiln_free(st.vals);
    kiln_free(st.last_use);
    return s;
}
