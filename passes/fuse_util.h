/*
** fuse_util.h — pattern-matching helpers private to the pattern fusion
** passes (passes/fuse_*.c): walking producers and sole consumers, reading
** scalar constants, and replacing a matched chain with one composite node.
*/
#ifndef KILN_FUSE_UTIL_H
#define KILN_FUSE_UTIL_H

#include "pass.h"

/* v's producer when it is an op_type node of the default domain, else NULL. */
gir_node *fuse_producer(const gir_value *v, const char *op_type);

/* The one node that reads v when v has exactly one use (one input slot of
** one node, no graph output, no subgraph read) and that node is op_type;
** else NULL. */
gir_node *fuse_sole_consumer(const gir_graph *g, const gir_value *v, const char *op_type);

/* Whether v is an intermediate that only the matched pattern reads: `uses`
** reads in all, none of them a graph output or a subgraph's. */
bool fuse_private(const gir_graph *g, const gir_value *v, int uses);

/* A float constant of one element (any rank): its value. */
bool fuse_scalar(const gir_value *v, double *out);
/* fuse_scalar and within a relative 1e-6 of want. */
bool fuse_scalar_is(const gir_value *v, double want);

/* For a two-input node that reads v: its other input (NULL when it does
** not read v, or reads it twice). */
gir_value *fuse_other(const gir_node *n, const gir_value *v);

/* The opset kiln binds a new op_type node at: the graph's own default-domain
** version when the registry has the op there, else the lowest later version
** that has it (kiln uses its composite ops whatever opset the model
** declares). 0 when no version has it. */
int fuse_opset(const gir_graph *g, const char *op_type);

/* A new op_type node (n_attrs slots to set) computing what `out` holds,
** placed right before `before`: it takes over `out` as its output 0, so the
** value keeps its name and readers. Its opset is fuse_opset's; name may be
** NULL. NULL when out of
** memory or when no opset has the op. */
gir_node *fuse_replace(gir_graph *g, gir_node *before, const char *op_type, const char *name,
                       gir_value *const *inputs, int n_in, int n_attrs, gir_value *out);

/* Sets attribute slot k of a new node to a string (pass_set_attr_* have
** no string form). */
bool fuse_set_attr_string(gir_graph *g, gir_node *n, int k, const char *name, const char *v);

/* Removes the matched nodes (their outputs are no longer read). */
void fuse_remove(gir_graph *g, gir_node *const *nodes, int count);

/* Binds a node built by fuse_replace once its attributes are set. */
kiln_status fuse_bind(kiln_ctx *ctx, gir_node *n, const char *pass);

#endif
