/*
** tir.h — the tensor IR: a kernel's compute DAG.
**
** A tir_func is what one kernel computes. Its inputs are placeholders (the
** kernel's arguments; a placeholder may carry constant data, e.g. weights
** that a schedule can pre-pack at compile time). Each stage defines one
** tensor by an expression over its spatial axes (one per output dim) and,
** for reductions, its reduction axes:
**
**     C[i, j] = sum(k) A[i, k] * B[k, j]
**
** Stages are in topological order; the last ones are the kernel's outputs.
** A stage whose body reads only other stages elementwise can be inlined by a
** schedule (compute_inline); reductions cannot.
**
** Ops give their compute definition in the op registry (kiln_op_def.compute):
** from the node and its input tensors, it adds stages with tir_stage_new and
** returns the output tensors. The definition must compute exactly what the
** op's reference kernel computes, for the dtypes and attributes it accepts;
** a case it does not cover is a KILN_ERR_UNSUPPORTED error naming the node.
*/
#ifndef KILN_TIR_H
#define KILN_TIR_H

#include "expr.h"
#include "gir.h"

struct tir_stage;

typedef struct tir_tensor {
    const char *name;
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    struct tir_stage *stage;     /* NULL for a placeholder */
    int arg_index;               /* placeholders: kernel input index; else -1 */
    const kiln_tensor *constant; /* placeholders bound to constant data, else NULL */
} tir_tensor;

/* What kind of computation a stage is; schedule templates key on it. */
typedef enum tir_tag {
    TIR_TAG_ELEMWISE = 0, /* out[i] depends on inputs at i (with broadcasting) */
    TIR_TAG_INJECTIVE,    /* each output reads inputs at computed indices (transpose, slice, pad) */
    TIR_TAG_REDUCE,       /* a reduction over some axes */
    TIR_TAG_MATMUL,       /* out[.., i, j] = sum(k) A[.., i, k] * B[.., k, j] (+ epilogue) */
    TIR_TAG_CONV,         /* convolution-like reduction over channels and a window */
    TIR_TAG_POOL,         /* a window reduction */
    TIR_TAG_OPAQUE
} tir_tag;

typedef struct tir_stage {
    const char *name;
    tir_tensor *out;
    int n_axes;
    ex_var **axes; /* spatial, axes[d]->extent == out->dims[d] */
    int n_raxes;
    ex_var **raxes;
    ex_expr *body; /* the value of out[axes]; EX_REDUCE at the top for reductions */
    tir_tag tag;
    int id;
} tir_stage;

typedef struct tir_func {
    kiln_arena *arena;
    ex_builder eb;
    const char *name;
    int n_inputs, cap_inputs;
    tir_tensor **inputs;
    int n_stages, cap_stages;
    tir_stage **stages;
    int n_outputs, cap_outputs;
    tir_tensor **outputs;
} tir_func;

tir_func *tir_func_new(const char *name);
void tir_func_free(tir_func *f);

/* A placeholder of the given type; constant may be NULL. */
tir_tensor *tir_placeholder(tir_func *f, const char *name, kiln_dtype dt, int rank,
                            const int64_t *dims, const kiln_tensor *constant);

/* Starts a stage producing `name` of the given dtype and shape: creates the
** spatial axes (named after `name`: "i0", "i1", ... unless axis_names given).
** The caller then builds the body with f->eb and sets stage->body (and
** stage->raxes for reductions via tir_stage_add_raxis). */
tir_stage *tir_stage_new(tir_func *f, const char *name, kiln_dtype dt, int rank,
                         const int64_t *dims, tir_tag tag);
ex_var *tir_stage_add_raxis(tir_func *f, tir_stage *s, const char *name, int64_t extent);

bool tir_mark_output(tir_func *f, tir_tensor *t);

/* Checks a function: loads index in-range ranks, dtypes agree, every
** variable in a body is an axis of its stage, reductions only at the top.
** Out-of-range indices cannot be proven absent here; the loop-IR
** interpreter's bounds checks and the backend tests catch those. */
kiln_status tir_verify(kiln_ctx *ctx, const tir_func *f);

/* Prints the compute DAG:  C[i, j] = sum(k) (A[i, k] * B[k, j])  */
void tir_print(FILE *out, const tir_func *f);

/* A canonical hash of the function (ops, shapes, dtypes, constant-ness; not
** names), the key of a workload for the tuner. */
uint64_t tir_hash(const tir_func *f);

/* Lowers one graph node to a tir_func with a placeholder per present input
** (constant inputs bound to their data) using the op's compute definition.
** KILN_ERR_UNSUPPORTED when the op has none. */
kiln_status tir_from_node(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in_types,
                          tir_func **out);

#endif
