/*
** memplan.h — memory planning (passes/plan_memory.c): the intermediate
** values of a compiled plan share ONE arena at static offsets.
**
** Over the final sequence of steps (each one kernel or one reference-run
** node), every value produced by a step lives from that step to its last
** reader; a value that a subgraph of a control-flow node reads lives until
** that node (gir_note_outer_uses); a graph output placed in the arena lives
** to the end. Values whose lifetimes overlap never overlap in the arena.
**
** In-place reuse: a step may write an output over one of its inputs that
** dies at that step (its last reader), has the same dtype and byte size, and
** is itself in the arena (so never a graph input or a constant), when the
** share predicate allows it: the step must read that input only at the index
** of the output element it writes (out[i] = f(x[i], ...)), and have one
** output. Such a pair is one buffer from the input's first step to the
** output's last.
**
** Offsets: buffers are placed largest first, each in the smallest gap of the
** offset space left by the buffers already placed whose lifetimes overlap
** its own (best fit), or above them all; sizes are rounded up to the
** alignment. The lower bound is the largest total of the bytes of the
** buffers live at one step: no placement can use less.
*/
#ifndef KILN_MEMPLAN_H
#define KILN_MEMPLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/gir.h"

/* Whether step `step` (node n) may write its output out_slot over its input
** in_slot (see above). */
typedef bool (*mem_share_fn)(void *arg, const gir_node *n, int step, int out_slot, int in_slot);

typedef struct mem_plan_options {
    size_t alignment;      /* of every offset, a power of two; 0: 64 */
    bool outputs_in_arena; /* graph outputs get arena slots (and live to the end) */
    const bool *off_arena; /* by value id (NULL: none): values kept elsewhere (the heap) */
    mem_share_fn can_share; /* NULL: pass_mem_share_by_op */
    void *share_arg;
} mem_plan_options;

void pass_mem_options_default(mem_plan_options *o);

/* The default share predicate: an op of fusion class ELEMWISE or BROADCAST
** with one output. kiln's FusedKernel is left out (its members decide;
** executors that see its compute DAG pass their own predicate). */
bool pass_mem_share_by_op(void *arg, const gir_node *n, int step, int out_slot, int in_slot);

typedef struct mem_plan {
    size_t arena_bytes; /* the arena's size */
    size_t lower_bound; /* max over steps of the bytes of the buffers live there */
    size_t alignment;
    int n_values;    /* g->n_values when planned; the arrays below have this many entries */
    int n_steps;
    int64_t *offset; /* by value id: byte offset in the arena; -1: not in the arena */
    size_t *bytes;   /* by value id: the data's bytes (values in the arena) */
    int *first;      /* by value id: the producing step (-1: not produced by a step) */
    int *last;       /* by value id: the last step that needs it (n_steps: a graph output) */
    int *share;      /* by value id: the input whose storage it takes over in place, or -1 */
    int n_in_arena;  /* values in the arena */
    int n_inplace;   /* in-place reuses */
} mem_plan;

/* Plans the arena for the steps (nodes of g, in execution order). The
** values in the arena are those a step produces that have a static shape
** and a fixed-size dtype (not strings), that are not graph inputs or
** constants, not graph outputs unless o->outputs_in_arena, and not marked
** off_arena. o may be NULL (the defaults). On failure *out is untouched. */
kiln_status pass_plan_memory(kiln_ctx *ctx, const gir_graph *g, const gir_node *const *steps, int n_steps,
                             const mem_plan_options *o, mem_plan *out);

/* Frees the plan's arrays (a zeroed or freed plan is fine) and zeroes it. */
void pass_mem_plan_free(mem_plan *p);

#endif
