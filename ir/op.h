/*
** op.h — the op registry: one table row describes everything about an op.
** No other code switches on op kinds.
*/
#ifndef KILN_OP_H
#define KILN_OP_H

#include "ctx.h"
#include "dtype.h"
#include "gir.h"
#include "tensor.h"
#include "tir.h"

typedef enum kiln_fusion_class {
    KILN_FUSE_NONE = 0,
    KILN_FUSE_ELEMWISE,  /* out[i] = f(in[i]) */
    KILN_FUSE_BROADCAST, /* elementwise with broadcasting inputs */
    KILN_FUSE_INJECTIVE, /* each output element reads one input element (transpose, slice) */
    KILN_FUSE_REDUCE,    /* reductions (ReduceSum, Softmax-like rows) */
    KILN_FUSE_ANCHOR,    /* output-fusable compute (Conv, MatMul, Gemm, pooling) */
    KILN_FUSE_SHAPE,     /* only computes shapes/metadata (Shape, Reshape views) */
    KILN_FUSE_OPAQUE     /* anything else */
} kiln_fusion_class;

/* The schema of one attribute. */
typedef struct kiln_attr_schema {
    const char *name;
    gir_attr_kind kind;
    bool required;
} kiln_attr_schema;

/* Infers output dtypes and shapes. `in[i]` is NULL for an omitted optional
** input; its `data` is NULL when the value is not known yet (static
** inference) — an op that needs it returns KILN_ERR_DYNAMIC (no message).
** `out[i]` gets dtype, rank and dims; data stays NULL. */
typedef kiln_status (*kiln_infer_fn)(kiln_ctx *ctx, const gir_node *n,
                                     const kiln_tensor *const *in, kiln_tensor *out);

/* The reference kernel: plain, obviously correct C. `out[i]` arrive shaped by
** infer and allocated (zeroed); out[i] exists even when the node omits that
** output. */
typedef kiln_status (*kiln_ref_fn)(kiln_ctx *ctx, const gir_node *n,
                                   const kiln_tensor *const *in, kiln_tensor *out);

/* The compute definition: adds stages to f that compute the op's outputs
** from in[i] (tensors of f: placeholders or earlier stages; NULL for an
** omitted optional input) and stores the output tensors in out[i]. Shapes and
** dtypes are static here (in[i]->dims known). Must agree with the reference
** kernel; an attribute or dtype case it does not cover returns
** KILN_ERR_UNSUPPORTED naming the node (the op then runs its reference kernel
** only where the executor lists it explicitly). */
typedef kiln_status (*kiln_compute_fn)(kiln_ctx *ctx, tir_func *f, const gir_node *n,
                                       tir_tensor *const *in, tir_tensor **out);

typedef struct kiln_op_def {
    const char *name;   /* ONNX op type */
    const char *domain; /* "" for ai.onnx */
    int min_opset, max_opset;
    int min_inputs, max_inputs;
    int min_outputs, max_outputs;
    uint32_t dtypes; /* KILN_DT() set accepted for input 0 */
    kiln_fusion_class fusion;
    const kiln_attr_schema *attrs; /* terminated by a {NULL} row */
    kiln_infer_fn infer;
    kiln_ref_fn reference;
    kiln_compute_fn compute; /* NULL: no compute definition yet */
    uint32_t shape_only_inputs; /* bit i: the op reads only input i's dtype and shape */
    bool nondeterministic;      /* results vary between runs (random ops): never folded */
    /* Output shapes come from running the op (control flow: a subgraph
    ** decides them): infer may return KILN_ERR_DYNAMIC although every input
    ** is known, and gir_run_node then calls the reference kernel with out[]
    ** zeroed and unallocated, for it to fill with owned tensors. */
    bool dynamic_outputs;
} kiln_op_def;

/* The highest default-domain opset kiln reads. */
#define KILN_MAX_OPSET 28

/* Finds the entry for an op type at an opset version. Returns NULL and sets
** *any_version (if given) to whether some version of it exists. */
const kiln_op_def *kiln_op_find(const char *domain, const char *name, int64_t opset,
                                bool *any_version);
int kiln_op_count(void);
const kiln_op_def *kiln_op_at(int i);

/* Family tables, each terminated by a row with name == NULL. */
extern const kiln_op_def kiln_ops_unary[];
extern const kiln_op_def kiln_ops_binary[];
extern const kiln_op_def kiln_ops_reduce[];
extern const kiln_op_def kiln_ops_nn[];
extern const kiln_op_def kiln_ops_linalg[];
extern const kiln_op_def kiln_ops_shape[];
extern const kiln_op_def kiln_ops_tensor[];
extern const kiln_op_def kiln_ops_misc[];
extern const kiln_op_def kiln_ops_control[];
extern const kiln_op_def kiln_ops_extra[];

/* ---- helpers shared by op implementations (ir/ops/op_util.c) ---- */

/* Error naming the node: "node 'conv1' (Conv): <message>". */
kiln_status kiln_op_fail(kiln_ctx *ctx, const gir_node *n, kiln_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Normalizes axis into [0, rank); fails naming the node when out of range. */
kiln_status kiln_op_axis(kiln_ctx *ctx, const gir_node *n, int64_t axis, int rank, int *out);

/* Reads a 1-D (or scalar) integer tensor into vals (at most max); the count
** goes to *count. KILN_ERR_DYNAMIC when t->data is NULL. */
kiln_status kiln_op_read_ints(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                              int64_t *vals, int max, int *count);

/* Output = broadcast of inputs [first, first+count), dtype `dt`. */
kiln_status kiln_op_infer_broadcast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    int first, int count, kiln_dtype dt, kiln_tensor *out);

/* Infer: output 0 has input 0's dtype and shape. */
kiln_status kiln_op_infer_same(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out);

#endif
