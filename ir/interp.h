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

/* ---- scopes: the values a subgraph reads from its enclosing graphs ----
** (ir/interp_scope.c) A subgraph (If/Loop/Scan bodies) may name values of
** the graphs around it; such a value of the subgraph has no producer, no
** constant and is not one of its inputs (gir_value_is_outer), and is
** resolved by name when the subgraph runs. While a graph runs, the
** interpreter makes its values the thread's current scope, so a kernel with
** a subgraph runs it with gir_interp_run_scoped(..., gir_scope_current(), ...). */
typedef struct gir_scope {
    const struct gir_scope *parent;
    const gir_graph *g;
    const kiln_tensor *vals; /* by value id of g */
    const bool *have;        /* by value id: vals[id] holds that value now; NULL: every
                                ** vals[id] with data (or no elements) does */
} gir_scope;

/* The value called `name` in s or the nearest enclosing scope that holds it;
** NULL when none does (or s is NULL). */
const kiln_tensor *gir_scope_lookup(const gir_scope *s, const char *name);

/* The scope of the graph whose node runs now on this thread (NULL outside a
** run). gir_scope_enter makes s current and returns the one it replaces,
** which gir_scope_leave restores; executors other than gir_interp_run use
** them to give control-flow kernels their values. */
const gir_scope *gir_scope_current(void);
const gir_scope *gir_scope_enter(const gir_scope *s);
void gir_scope_leave(const gir_scope *prev);

/* A value that a subgraph reads from an enclosing graph. */
bool gir_value_is_outer(const gir_value *v);
/* Whether a subgraph of n (at any depth) reads a value from outside n's
** subgraphs, i.e. from the graph of n or around it. */
bool gir_node_reads_outer(const gir_node *n);
/* Sets last_use[id] = idx for each value of g that a subgraph of n (at any
** depth) reads: the value must live until n has run. */
void gir_note_outer_uses(const gir_graph *g, const gir_node *n, int idx, int *last_use);
/* Binds the nodes of g and of its subgraphs that are not bound yet. */
kiln_status gir_bind_graph(kiln_ctx *ctx, gir_graph *g);

/* Looks up once the values g reads from outside (in `parent` and around
** it), for running g many times (loop bodies): *out becomes a scope for g
** itself whose parent is `parent`; gir_interp_run_scoped(g, out) then binds
** them by id. Release with gir_scope_release. */
kiln_status gir_scope_resolve(kiln_ctx *ctx, const gir_graph *g, const gir_scope *parent, gir_scope *out);
void gir_scope_release(gir_scope *s);

/* Runs a subgraph: like gir_interp_run, and each value the subgraph reads
** from outside (gir_value_is_outer) is taken from `scope` by name; one that
** no scope holds is an error naming it. */
kiln_status gir_interp_run_scoped(kiln_ctx *ctx, const gir_graph *g, const gir_scope *scope,
                                  const kiln_tensor *inputs, int n_inputs, kiln_tensor *outputs,
                                  int n_outputs);

#endif
