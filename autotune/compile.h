/*
** compile.h — building a graph's kernels for the CPU and running them.
**
** kc_compile fixes the graph's input shapes from the given inputs, runs the
** graph passes (folding what is then known, simplification, fusion), lowers every remaining node to the
** tensor IR with its op's compute definition, schedules it (a Lua script's
** schedule when one matches, else the default template), lowers it to the
** loop IR, and JIT-compiles every distinct kernel once (nodes with the same
** workload hash share code; each node keeps its own, possibly packed,
** weights). A node whose op has no compute definition runs its reference
** kernel, and the plan says so (kc_plan_summary): nothing falls back
** silently.
*/
#ifndef KILN_COMPILE_H
#define KILN_COMPILE_H

#include <stdio.h>

#include "codegen/cg_llvm.h"
#include "ir/gir.h"
#include "ir/sched.h"
#include "passes/pass.h"

struct tune_lua_schedules;

typedef struct kc_options {
    cg_options cg;
    struct tune_lua_schedules *lua; /* schedule overrides from a Lua script, or NULL */
    pass_options passes;            /* the graph passes (-O level, disabled passes) */
} kc_options;

void kc_options_default(kc_options *o);

typedef struct kc_kernel {
    char name[32];
    uint64_t hash;
    tir_func *tir;     /* of the first node that uses the kernel */
    sch_trace *trace;
    lir_func *lir;
    const char *schedule_from; /* "default" or "lua" */
    cg_kernel_fn fn;
    int uses;
} kc_kernel;

typedef struct kc_step {
    gir_node *node;
    kc_kernel *kernel; /* NULL: the node runs its reference kernel */
    lir_func *lir;     /* this node's loop IR: its argument constants */
    char why_reference[200]; /* when kernel is NULL */
} kc_step;

typedef struct kc_plan {
    gir_graph *g; /* borrowed; its input shapes are fixed by kc_compile */
    int n_steps;
    kc_step *steps;
    int n_kernels;
    kc_kernel **kernels;
    cg_module *module;
    cg_options cg;
    double lower_ms, jit_ms;
} kc_plan;

/* Fixes g's input shapes to the given inputs' and runs the graph passes:
** the graph kc_compile lowers (also what `kiln inspect --after` prints). */
kiln_status kc_prepare_graph(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *inputs, int n_inputs,
                             const pass_options *o);

kiln_status kc_compile(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *inputs, int n_inputs,
                       const kc_options *o, kc_plan **out);
/* Runs the plan on inputs of the shapes it was compiled for. */
kiln_status kc_run(kiln_ctx *ctx, kc_plan *p, const kiln_tensor *inputs, int n_inputs,
                   kiln_tensor *outputs, int n_outputs);
void kc_plan_free(kc_plan *p);

/* One line: kernels compiled, distinct, nodes on the reference kernels and
** their ops. */
void kc_plan_summary(FILE *f, const kc_plan *p);

/* Per kernel: the compute DAG, the trace, the loop IR, and with llvm the
** optimized LLVM IR. */
kiln_status kc_plan_print_kernels(kiln_ctx *ctx, FILE *f, const kc_plan *p, bool llvm);

#endif
