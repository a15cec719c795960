/*
** pass.h — graph passes: a pass is a name and a function from graph to
** graph; the pipeline is a flat list of them, printable after each step.
*/
#ifndef KILN_PASS_H
#define KILN_PASS_H

#include "ir/gir.h"

typedef struct gir_pass {
    const char *name;
    kiln_status (*run)(kiln_ctx *, gir_graph *);
} gir_pass;

/* Static shape and type inference (passes/infer_shapes.c): binds every node
** to its op, then walks the nodes in order and writes each output's dtype
** and static shape where the inputs' shapes are static. A node whose inputs
** are not all static, or whose op needs a value known only at run time,
** keeps unknown outputs. A result that contradicts a declared type (a
** value_info or graph output) is an error naming the value; declared
** symbolic or unknown dims are replaced. Values that small nodes compute
** from constants are tracked too, so shapes made by Constant, Concat and the
** like are known. The graph must be in topological order. */
kiln_status pass_infer_shapes(kiln_ctx *ctx, gir_graph *g);

/* Constant folding (passes/fold_constants.c): a node whose inputs are all
** constants — or whose op reads only their shapes (kiln_op_def's
** shape_only_inputs) when those shapes are static — runs through the
** reference interpreter at compile time; its outputs become constants and the
** node goes. Shape inference runs between rounds until nothing changes, so
** the Shape→Gather→Concat→Reshape chains of exported models fold away.
** Bounded: a node whose outputs would exceed KILN_FOLD_MAX_BYTES stays (a
** huge constant is not materialized), unless it has no inputs (Constant). */
#define KILN_FOLD_MAX_BYTES ((size_t)64 << 20)
kiln_status pass_fold_constants(kiln_ctx *ctx, gir_graph *g);

#endif
