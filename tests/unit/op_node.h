/*
** op_node.h — one node under test, in a graph of its own: building it
** (op, opset, attributes), running its op on caller tensors and freeing it.
** Shared by the op unit tests.
*/
#ifndef KILN_TEST_OP_NODE_H
#define KILN_TEST_OP_NODE_H

#include <stdbool.h>
#include <stdint.h>

#include "ir/ctx.h"
#include "ir/gir.h"
#include "ir/tensor.h"

/* Room for the most outputs and attributes any op test gives one node. */
#define TN_MAX_OUT 8
#define TN_MAX_ATTRS 20

typedef struct tnode {
    gir_graph *g;
    gir_node *n;
    kiln_ctx *ctx;
    kiln_tensor out[TN_MAX_OUT];
} tnode;

void tn_init(tnode *t, const char *op, int opset, int n_in, int n_out);
void tn_init_dom(tnode *t, const char *dom, const char *op, int opset, int n_in, int n_out);
void tn_free(tnode *t);

/* Attributes; array values are the caller's and must outlive the node,
** except tn_ints_copy, which keeps a copy in the graph. */
gir_attr *tn_attr(tnode *t, const char *name, gir_attr_kind kind);
void tn_int(tnode *t, const char *name, int64_t v);
void tn_float(tnode *t, const char *name, double v);
void tn_string(tnode *t, const char *name, const char *v);
void tn_ints(tnode *t, const char *name, int count, int64_t *v);
void tn_ints_copy(tnode *t, const char *name, int count, const int64_t *v);
void tn_floats(tnode *t, const char *name, int count, double *v);
void tn_strings(tnode *t, const char *name, int count, const char **v);
void tn_tensor(tnode *t, const char *name, kiln_tensor *v);

/* Binds and runs the node into t->out; returns the status. */
kiln_status tn_run(tnode *t, const kiln_tensor *const *in);
/* Like tn_run, but where the op's row does not list input 0's dtype its
** infer and reference functions run directly. */
kiln_status tn_run_unlisted(tnode *t, const kiln_tensor *const *in);
/* Static inference only (no reference kernel). */
kiln_status tn_infer(tnode *t, const kiln_tensor *const *in);

/* A tensor over the caller's data (not owned). */
kiln_tensor tn_view(kiln_dtype dt, int rank, const int64_t *dims, const void *data);
bool tn_dims_are(const kiln_tensor *t, int rank, const int64_t *dims);
bool tn_errmsg_has(const tnode *t, const char *s);
/* The last error names the node under test. */
bool tn_names_node(const tnode *t);

#endif
