/*
** compile.c — a graph's kernels for the CPU: lowering, scheduling, JIT.
*/
#include "compile.h"
#include "trace_names.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/op.h"
#include "ir/tensor.h"
#include "passes/pass.h"
#include "lua_schedule.h"
#include "templates.h"
#include "tuner.h"

#define MAX_IO 64

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

void kc_options_default(kc_options *o) {
    memset(o, 0, sizeof *o);
    cg_options_default(&o->cg);
    pass_options_default(&o->passes);
}

/* Gives the graph's inputs the shapes of the actual inputs. */
static kiln_status fix_input_shapes(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *in, int n) {
    if (n != g->n_inputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "the model takes %d inputs, %d were given", g->n_inputs, n);
    for (int i = 0; i < n; i++) {
        gir_value *v = g->inputs[i];
        char a[128];
        bool ok = v->type.dtype == KILN_UNDEFINED || v->type.dtype == in[i].dtype;
        if (v->type.rank >= 0) {
            ok &= v->type.rank == in[i].rank;
            for (int d = 0; ok && d < in[i].rank; d++)
                ok &= v->type.dims[d].value < 0 || v->type.dims[d].value == in[i].dims[d];
        }
        if (!ok)
            return kiln_fail(ctx, KILN_ERR_SHAPE, "input '%s' has type %s, which the model does not accept",
                             v->name, kiln_shape_str(&in[i], a, sizeof a));
        gir_type_from_tensor(&v->type, &in[i]);
    }
    return KILN_OK;
}

/* Kernels are compiled for static shapes. A node whose inputs or outputs
** have shapes known only at run time (they depend on input values) runs its
** reference kernel instead, and says why. */
static bool all_static(const gir_node *n, char *why, size_t size) {
    for (int k = 0; k < n->n_inputs; k++) {
        gir_value *v = n->inputs[k];
        if (v && !v->constant && !gir_type_is_static(&v->type)) {
            snprintf(why, size, "the shape of input '%s' is known only at run time", v->name);
            return false;
        }
    }
    for (int k = 0; k < n->n_outputs; k++) {
        gir_value *v = n->outputs[k];
        if (v && !gir_type_is_static(&v->type)) {
            snprintf(why, size, "the shape of output '%s' depends on values known only at run time", v->name);
            return false;
        }
    }
    return true;
}

/* A Lua script's schedule when it has one for this workload or one of its
** stage tags (an error in the script fails the compile: no silent fallback),
** else the best record of the records database when one is given and has
** one, else the default template. */
static kiln_status schedule_for(kiln_ctx *ctx, const kc_options *o, const tir_func *f, sch_trace **trace,
                                const char **from) {
    if (o->lua) {
        bool matched = false;
        kiln_status s = tune_lua_schedule_apply(ctx, o->lua, f, trace, &matched);
        if (s) return s;
        if (matched) {
            *from = "lua";
            return KILN_OK;
        }
        sch_trace_free(*trace);
        *trace = NULL;
    }
    if (o->records) {
        kiln_status s = tune_lookup_trace(ctx, o->records, f, trace, from);
        if (s || *trace) return s;
    }
    *from = "default";
    return tune_default_trace(ctx, f, &o->cg.target, trace);
}

static kc_kernel *find_kernel(kc_plan *p, uint64_t hash) {
    for (int i = 0; i < p->n_kernels; i++)
        if (p->kernels[i]->hash == hash) return p->kernels[i];
    return NULL;
}

static kiln_status add_kernel(kiln_ctx *ctx, kc_plan *p, kc_kernel *k, int *cap) {
    if (!kiln_grow((void **)&p->kernels, cap, p->n_kernels + 1, sizeof(kc_kernel *)))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    snprintf(k->name, sizeof k->name, "kiln_k%d", p->n_kernels);
    k->lir->name = kiln_arena_strdup(k->lir->arena, k->name);
    if (!k->lir->name) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    p->kernels[p->n_kernels++] = k;
    return KILN_OK;
}

/* Lowers and schedules one node; sets the step's kernel (new or shared). */
static kiln_status lower_node(kiln_ctx *ctx, kc_plan *p, const kc_options *o, kc_step *st, int *cap) {
    gir_node *n = st->node;
    kiln_tensor types[MAX_IO];
    const kiln_tensor *in[MAX_IO];
    for (int i = 0; i < n->n_inputs; i++) {
        gir_value *v = n->inputs[i];
        in[i] = NULL;
        if (!v) continue;
        if (v->constant) {
            in[i] = v->constant;
        } else {
            gir_type_to_tensor(&v->type, &types[i]);
            in[i] = &types[i];
        }
    }
    tir_func *tf = NULL;
    kiln_status s = tir_from_node(ctx, n, in, &tf);
    if (s == KILN_ERR_UNSUPPORTED) {
        snprintf(st->why_reference, sizeof st->why_reference, "%s", kiln_errmsg(ctx));
        return KILN_OK; /* recorded and reported by kc_plan_summary */
    }
    if (s) return s;
    sch_trace *trace = NULL;
    lir_func *lf = NULL;
    const char *from = NULL;
    /* a node of a workload already compiled runs that kernel: its own loop
    ** IR (which packs its own constants) follows the kernel's schedule */
    kc_kernel *shared = find_kernel(p, tir_hash(tf));
    if (shared) s = tune_trace_between(ctx, shared->trace, shared->tir, tf, &trace);
    else s = schedule_for(ctx, o, tf, &trace, &from);
    if (!s) s = sch_lower(ctx, tf, trace, &lf);
    if (s) {
        char d[256];
        kiln_wrap(ctx, s, "%s: scheduling", gir_node_desc(n, d, sizeof d));
        tir_func_free(tf);
        sch_trace_free(trace);
        return s;
    }
    uint64_t h = tir_hash(tf);
    st->lir = lf;
    st->kernel = shared;
    if (st->kernel) {
        st->kernel->uses++;
        tir_func_free(tf);
        sch_trace_free(trace);
        return KILN_OK;
    }
    kc_kernel *k = kiln_calloc(1, sizeof *k);
    if (!k) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    k->hash = h;
    k->tir = tf;
    k->trace = trace;
    k->lir = lf;
    k->schedule_from = from;
    k->uses = 1;
    st->kernel = k;
    return add_kernel(ctx, p, k, cap);
}

static kiln_status jit_all(kiln_ctx *ctx, kc_plan *p, const kc_options *o) {
    if (p->n_kernels == 0) return KILN_OK;
    lir_func **fs = kiln_calloc((size_t)p->n_kernels, sizeof(lir_func *));
    if (!fs) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < p->n_kernels; i++) fs[i] = p->kernels[i]->lir;
    kiln_status s = cg_llvm_jit(ctx, fs, p->n_kernels, &o->cg, &p->module);
    kiln_free(fs);
    for (int i = 0; i < p->n_kernels && !s; i++) {
        p->kernels[i]->fn = cg_module_lookup(p->module, p->kernels[i]->name);
        if (!p->kernels[i]->fn)
            s = kiln_fail(ctx, KILN_ERR_INTERNAL, "kernel %s is missing from the JIT module", p->kernels[i]->name);
    }
    return s;
}

kiln_status kc_prepare_graph(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *inputs, int n_inputs,
                             const pass_options *o) {
    kiln_status s = fix_input_shapes(ctx, g, inputs, n_inputs);
    return s ? s : pass_run_pipeline(ctx, g, o);
}

kiln_status kc_compile(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *inputs, int n_inputs,
                       const kc_options *o, kc_plan **out) {
    kiln_status s = kc_prepare_graph(ctx, g, inputs, n_inputs, &o->passes);
    if (s) return s;
    kc_plan *p = kiln_calloc(1, sizeof *p);
    if (!p) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    p->g = g;
    p->cg = o->cg;
    p->steps = kiln_calloc((size_t)g->n_nodes + 1, sizeof(kc_step));
    if (!p->steps) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    double t0 = now_ms();
    int cap = 0;
    for (int i = 0; i < g->n_nodes && !s; i++) {
        kc_step *st = &p->steps[p->n_steps++];
        st->node = g->nodes[i];
        if (all_static(st->node, st->why_reference, sizeof st->why_reference))
            s = lower_node(ctx, p, o, st, &cap);
    }
    if (!s) s = kc_plan_memory(ctx, p);
    p->lower_ms = now_ms() - t0;
    t0 = now_ms();
    if (!s) s = jit_all(ctx, p, o);
    p->jit_ms = now_ms() - t0;
    if (s) {
        kc_plan_free(p);
        return s;
    }
    *out = p;
    return KILN_OK;
}

void kc_plan_free(kc_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++)
        if (!p->steps[i].kernel || p->steps[i].lir != p->steps[i].kernel->lir) lir_func_free(p->steps[i].lir);
    for (int i = 0; i < p->n_kernels; i++) {
        tir_func_free(p->kernels[i]->tir);
        sch_trace_free(p->kernels[i]->trace);
        lir_func_free(p->kernels[i]->lir);
        kiln_free(p->kernels[i]);
    }
    cg_module_free(p->module);
    pass_mem_plan_free(&p->mem);
    kiln_free(p->where);
    kiln_free(p->arena_block);
    kiln_free(p->vals);
    kiln_free(p->last_use);
    kiln_free(p->kernels);
    kiln_free(p->steps);
    kiln_free(p->step_ms);
    kiln_free(p);
}
