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
**
** Memory: the values that kernels produce live in one arena per plan at
** static offsets (passes/memplan.h), allocated at the first run and kept,
** never zeroed (every kernel writes all of its outputs); an elementwise
** kernel may write its output over an input that dies there. Kernels write
** graph outputs straight into the caller's tensors. Values that reference
** kernels produce (and those with shapes known only at run time) live on the
** heap and are freed after their last use.
*/
#ifndef KILN_COMPILE_H
#define KILN_COMPILE_H

#include <stdio.h>

#include "codegen/cg_llvm.h"
#include "ir/gir.h"
#include "ir/sched.h"
#include "passes/memplan.h"
#include "passes/pass.h"

struct tune_lua_schedules;

typedef struct kc_options {
    cg_options cg;
    struct tune_lua_schedules *lua; /* schedule overrides from a Lua script, or NULL */
    pass_options passes;            /* the graph passes (-O level, disabled passes) */
    struct tune_lookup *records;    /* tuned schedules from a records database, or NULL */
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

/* Where a value lives while the plan runs (kc_plan.where). */
enum {
    KC_VAL_NONE = 0, /* not produced by a step: a graph input or a constant */
    KC_VAL_ARENA,    /* at mem.offset in the arena */
    KC_VAL_OUTPUT,   /* a graph output that a kernel writes into the caller's tensor */
    KC_VAL_HEAP      /* an owned tensor (reference kernels' outputs), freed after its last use */
};

typedef struct kc_plan {
    gir_graph *g; /* borrowed; its input shapes are fixed by kc_compile */
    int n_steps;
    kc_step *steps;
    int n_kernels;
    kc_kernel **kernels;
    cg_module *module;
    cg_options cg;
    double lower_ms, jit_ms;
    mem_plan mem;         /* arena offsets of the values kernels produce */
    signed char *where;   /* by value id: KC_VAL_* */
    size_t scratch_bytes; /* room for outputs that nodes omit but kernels write */
    /* kept between runs: kc_run must not run one plan on two threads at once */
    void *arena_block;
    uint8_t *arena, *scratch;
    kiln_tensor *vals; /* by value id, while running */
    int *last_use;     /* by value id: the last step that reads it */
    double *step_ms;   /* by step: time summed over runs, when profiling (kc_plan_profile) */
    int profiled_runs;
} kc_plan;

/* Fixes g's input shapes to the given inputs' and runs the graph passes:
** the graph kc_compile lowers (also what `kiln inspect --after` prints). */
kiln_status kc_prepare_graph(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *inputs, int n_inputs,
                             const pass_options *o);

kiln_status kc_compile(kiln_ctx *ctx, gir_graph *g, const kiln_tensor *inputs, int n_inputs,
                       const kc_options *o, kc_plan **out);
/* Plans the arena of a lowered plan (kc_compile calls it); allocates it
** (at the first run). */
kiln_status kc_plan_memory(kiln_ctx *ctx, kc_plan *p);
kiln_status kc_plan_arena(kiln_ctx *ctx, kc_plan *p);

/* Runs the plan on inputs of the shapes it was compiled for. outputs[]
** receive owned tensors. Not reentrant: one plan runs on one thread at a
** time (its arena is reused by every run). */
kiln_status kc_run(kiln_ctx *ctx, kc_plan *p, const kiln_tensor *inputs, int n_inputs,
                   kiln_tensor *outputs, int n_outputs);
void kc_plan_free(kc_plan *p);

/* Starts timing every step of the following runs (off until called). */
kiln_status kc_plan_profile(kiln_ctx *ctx, kc_plan *p);
/* The steps that took longest per run: kernel, members, share of the total. */
void kc_plan_print_profile(FILE *f, const kc_plan *p, int top);

/* A node's name for people: its op, or a fused kernel's members in order
** ("Conv+Add+Relu"), into buf. */
const char *kc_node_label(const gir_node *n, char *buf, size_t size);

/* One line: kernels compiled, distinct, nodes on the reference kernels and
** their ops. */
void kc_plan_summary(FILE *f, const kc_plan *p);

/* Per kernel: the compute DAG, the trace, the loop IR, and with llvm the
** optimized LLVM IR. */
kiln_status kc_plan_print_kernels(kiln_ctx *ctx, FILE *f, const kc_plan *p, bool llvm);

#endif
