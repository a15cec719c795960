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

#endif
