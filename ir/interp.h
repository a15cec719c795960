/*
** interp.h — the reference interpreter: runs a graph node by node with the
** op registry's reference kernels. It is the ground truth for every backend.
*/
#ifndef KILN_INTERP_H
#define KILN_INTERP_H

#include "gir.h"
#include "op.h"

/* Checks a node's inputs against its op entry, infers the outputs, allocates
** them and runs the reference kernel. out[] (n->n_outputs entries) receives
** owned tensors; on failure none are left allocated. */
kiln_status gir_run_node(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         kiln_tensor *out);

/* Resolves n->op from the registry; clear errors for unknown ops, opsets
** and arities. */
kiln_status gir_bind_op(kiln_ctx *ctx, gir_node *n);

/* Runs the whole graph. inputs[i] feeds g->inputs[i]; outputs[i] receives an
** owned tensor for g->outputs[i]. */
kiln_status gir_interp_run(kiln_ctx *ctx, const gir_graph *g, const kiln_tensor *inputs,
                           int n_inputs, kiln_tensor *outputs, int n_outputs);

#endif
