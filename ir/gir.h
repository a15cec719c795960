/*
** gir.h — the graph IR: values (tensors with type and shape), nodes (an op
** with attributes, inputs and outputs) and the graph that owns them.
** Every node, value and string of a graph lives in the graph's arena.
*/
#ifndef KILN_GIR_H
#define KILN_GIR_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/kiln.h"
#include "mem.h"

struct kiln_op_def;
struct gir_graph;

/* A dimension: a static extent, or unknown (value < 0) with an optional
** symbolic name such as "batch". */
typedef struct gir_dim {
    int64_t value;
    const char *sym;
} gir_dim;

/* rank < 0: unknown rank. dtype KILN_UNDEFINED: unknown type. */
typedef struct gir_type {
    kiln_dtype dtype;
    int rank;
    gir_dim dims[KILN_MAX_RANK];
} gir_type;

typedef enum gir_layout { GIR_LAYOUT_ROW_MAJOR = 0 } gir_layout;

typedef struct gir_value {
    const char *name;
    int id;
    gir_type type;
    gir_layout layout;
    struct gir_node *producer; /* NULL for graph inputs and constants */
    int producer_slot;
    kiln_tensor *constant; /* initializer data; may point into the mapped file */
    bool is_input, is_output;
} gir_value;

typedef enum gir_attr_kind {
    GIR_ATTR_FLOAT = 1,
    GIR_ATTR_INT = 2,
    GIR_ATTR_STRING = 3,
    GIR_ATTR_TENSOR = 4,
    GIR_ATTR_GRAPH = 5,
    GIR_ATTR_FLOATS = 6,
    GIR_ATTR_INTS = 7,
    GIR_ATTR_STRINGS = 8
} gir_attr_kind;

typedef struct gir_attr {
    const char *name;
    gir_attr_kind kind;
    int64_t i;
    double f;
    const char *s; /* for STRING (NUL-terminated; s_len bytes) */
    size_t s_len;
    int n; /* count for FLOATS/INTS/STRINGS */
    int64_t *ints;
    double *floats;
    const char **strings;
    kiln_tensor *t;
    struct gir_graph *g;
} gir_attr;

typedef struct gir_node {
    const char *name;
    const char *op_type;
    const char *domain; /* "" for the default ONNX domain */
    int opset;          /* the model's opset for this node's domain */
    const struct kiln_op_def *op;
    int id;
    int n_inputs, n_outputs, n_attrs;
    gir_value **inputs;  /* an entry is NULL for an omitted optional input */
    gir_value **outputs; /* an entry is NULL for an omitted optional output */
    gir_attr *attrs;
} gir_node;

typedef struct gir_opset {
    const char *domain;
    int64_t version;
} gir_opset;

typedef struct gir_graph {
    kiln_arena *arena;
    const char *name;
    int n_nodes, cap_nodes;
    gir_node **nodes;
    int n_values, cap_values;
    gir_value **values;
    int n_inputs, cap_inputs;
    gir_value **inputs;
    int n_outputs, cap_outputs;
    gir_value **outputs;
    int n_opsets;
    gir_opset *opsets;
    int64_t ir_version;
    const char *producer;
    /* Resources released with the graph (e.g. file mappings). */
    void (*release)(void *);
    void *release_arg;
} gir_graph;

gir_graph *gir_graph_new(void);
void gir_graph_free(gir_graph *g);

/* Creates a value; name may be NULL (an automatic "%N" name is given). */
gir_value *gir_value_new(gir_graph *g, const char *name);
/* Finds a value by name (linear in values; build an index when hot). */
gir_value *gir_value_find(const gir_graph *g, const char *name);
/* Creates a node with room for n_in inputs and n_out outputs. */
gir_node *gir_node_new(gir_graph *g, const char *op_type, const char *name, int n_in,
                       int n_out, int n_attrs);
bool gir_add_input(gir_graph *g, gir_value *v);
bool gir_add_output(gir_graph *g, gir_value *v);
/* Version of `domain` ("" or "ai.onnx" for the default) in the graph; 0 if absent. */
int64_t gir_opset_version(const gir_graph *g, const char *domain);

/* Sets a value's type from a tensor's dtype and dims. */
void gir_type_from_tensor(gir_type *ty, const kiln_tensor *t);
/* True when every dim is known; then fills a dims-only tensor. */
bool gir_type_is_static(const gir_type *ty);
void gir_type_to_tensor(const gir_type *ty, kiln_tensor *t);

/* Attribute access. The getters return the default when the attribute is
** absent; a present attribute of another kind also yields the default, and
** the verifier reports it. */
const gir_attr *gir_attr_find(const gir_node *n, const char *name);
int64_t gir_attr_int(const gir_node *n, const char *name, int64_t dflt);
double gir_attr_float(const gir_node *n, const char *name, double dflt);
const char *gir_attr_string(const gir_node *n, const char *name, const char *dflt);
/* Returns the count (or -1 when absent) and sets *vals. */
int gir_attr_ints(const gir_node *n, const char *name, const int64_t **vals);
int gir_attr_floats(const gir_node *n, const char *name, const double **vals);

/* The input at slot i, or NULL when absent/omitted. */
static inline gir_value *gir_input(const gir_node *n, int i) {
    return i < n->n_inputs ? n->inputs[i] : NULL;
}

/* "node 'name' (OpType)" for messages, into buf. */
const char *gir_node_desc(const gir_node *n, char *buf, size_t size);

/* Sorts nodes topologically; KILN_ERR_INVALID on a cycle (names a node on it). */
kiln_status gir_toposort(kiln_ctx *ctx, gir_graph *g);

#endif
