/*
** compute.h — private to the compute definitions (ir/ops/compute_*.c):
** the kiln_compute_fn entry points the op tables point at, and the helpers
** they share. Prefix: cmp_.
**
** A compute definition builds stages that compute exactly what the op's
** reference kernel computes (see tir.h). The conventions here:
**
**  - Arithmetic runs in the "calc" type of the element type: f32 for f32,
**    f16 and bf16 (loads widen, the output stage rounds once on store), f64
**    for f64, the integer type itself for integers (wrapping like two's
**    complement, which equals the reference's 64-bit arithmetic truncated
**    on store). Float reductions accumulate in the calc type; the reference
**    kernels accumulate in double, which the tests' tolerance allows.
**  - Shapes are static. A value an op needs at compile time (Reshape's
**    shape, Slice's starts, a reduction's axes) must be a constant input;
**    otherwise the definition fails with KILN_ERR_UNSUPPORTED naming it.
**  - Every load is in bounds however a select around it is evaluated:
**    padding and gathers clamp their indices and select the fill value, so
**    a backend may evaluate both arms of a select.
**  - Indices read from data (Gather) are wrapped like the reference (a
**    negative index counts from the end) and clamped into range; the
**    reference rejects an out-of-range index, which generated code cannot
**    report, so such an index reads the nearest element instead. Constant
**    indices are checked at compile time and rejected like the reference.
**  - Integer division and remainder never divide by zero or overflow: a
**    zero divisor acts as 1 (the reference fails on it; generated code
**    cannot), INT_MIN / -1 wraps to INT_MIN like the reference.
**
** What the definitions assume of the expression semantics (ir/expr.h), and
** the evaluators and backends must provide:
**  - EX_MIN/EX_MAX and the max/min combiners propagate NaN on floats (like
**    ONNX Max/Min and LLVM's maximum/minimum), compare unsigned types as
**    unsigned;
**  - comparisons are false on NaN except EX_NE, which is true (C's !=);
**  - integer arithmetic wraps in the element type's width; EX_SHL/EX_SHR
**    are only used with amounts below the width;
**  - EX_CAST from float to an integer truncates toward zero and saturates
**    to the target's range (NaN gives 0); between integers it keeps the low
**    bits (sign- or zero-extending as the source's signedness says); to a
**    float it rounds to nearest even once. Casts to bool are not used
**    (x != 0 is). Float to a narrow integer goes through i64 so that the
**    result matches the reference's saturate-to-int64-then-wrap.
*/
#ifndef KILN_OPS_COMPUTE_H
#define KILN_OPS_COMPUTE_H

#include "../dtype.h"
#include "../op.h"
#include "../tensor.h"
#include "../tir.h"

#define CMP_FN(name)                                                                            \
    kiln_status cmp_##name(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, \
                           tir_tensor **out)

/* ---- helpers (compute_util.c) ---- */

/* The input at slot i, or NULL when omitted. */
static inline tir_tensor *cmp_in(const gir_node *n, tir_tensor *const *in, int i) {
    return i < n->n_inputs ? in[i] : NULL;
}

/* Whether output slot i is wanted. */
static inline bool cmp_wants(const gir_node *n, int i) { return i < n->n_outputs && n->outputs[i]; }

/* The type of t as a kiln_tensor (data: t's constant data, or NULL). */
void cmp_type_of(const tir_tensor *t, kiln_tensor *out);

/* Runs the op's shape inference on the tensors' types (constants with
** their data) into out[0..n_outputs). A value needed but not constant is
** KILN_ERR_UNSUPPORTED naming the node. */
kiln_status cmp_infer(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, kiln_tensor *out);

/* The inputs' types as kiln_tensors (constants with their data) for the
** ops' own helpers; inputs past CMP_MAX_IN are left NULL. */
#define CMP_MAX_IN 16
typedef struct cmp_types {
    kiln_tensor t[CMP_MAX_IN];
    const kiln_tensor *p[CMP_MAX_IN];
} cmp_types;
void cmp_types_of(const gir_node *n, tir_tensor *const *in, cmp_types *ty);

/* Maps KILN_ERR_DYNAMIC from an op helper that needed an input's values to
** KILN_ERR_UNSUPPORTED naming `what`; other statuses pass through. */
kiln_status cmp_dynamic(kiln_ctx *ctx, const gir_node *n, kiln_status s, const char *what);

/* Fails with KILN_ERR_UNSUPPORTED unless dt is a numeric type or bool (the
** loop IR holds no strings; low-precision types have no arithmetic). */
kiln_status cmp_plain(kiln_ctx *ctx, const gir_node *n, kiln_dtype dt);

/* The op's name in snake case ("MatMul" -> "mat_mul"), for stage names. */
const char *cmp_lower(const gir_node *n, char *buf, size_t size);

/* Fails with KILN_ERR_UNSUPPORTED naming the node unless t is a constant
** (or absent). `what` names the input. */
kiln_status cmp_need_const(kiln_ctx *ctx, const gir_node *n, const tir_tensor *t, const char *what);

/* A new stage named after the node's op (a suffix is added to keep names
** unique); axis_names (may be NULL) renames the spatial axes. */
tir_stage *cmp_stage(tir_func *f, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                     tir_tag tag, const char *const *axis_names);
ex_var *cmp_raxis(tir_func *f, tir_stage *s, const char *name, int64_t extent);

/* The stage's spatial axis d (i64). */
ex_expr *cmp_ax(tir_func *f, const tir_stage *s, int d);
/* The stage's spatial axes as expressions into idx[0..rank). */
void cmp_axes(tir_func *f, const tir_stage *s, ex_expr **idx);

/* Loads t at idx. */
ex_expr *cmp_load(tir_func *f, const tir_tensor *t, ex_expr *const *idx);
/* Loads t broadcast (numpy, aligned right) to the index idx of rank r. */
ex_expr *cmp_load_bcast(tir_func *f, const tir_tensor *t, int r, ex_expr *const *idx);
/* Loads element 0 of a one-element tensor. */
ex_expr *cmp_load_first(tir_func *f, const tir_tensor *t);

/* The type arithmetic on dt runs in (see above). */
kiln_dtype cmp_calc(kiln_dtype dt);
/* Widens e to cmp_calc(e->dtype). */
ex_expr *cmp_up(tir_func *f, ex_expr *e);
/* Converts e to dt the way the reference stores: floats round, integers
** from floats truncate (through i64, see above), bools are e != 0. */
ex_expr *cmp_to(tir_func *f, ex_expr *e, kiln_dtype dt);
/* e (f64) stored into dt the way kiln_store_f64 does: half types through
** f32, integers truncated. */
ex_expr *cmp_store_f64(tir_func *f, ex_expr *e, kiln_dtype dt);
/* Float-to-integer rounding like nn_store_round: nearest even, saturated
** to dt's range, NaN gives 0. */
ex_expr *cmp_round_to_int(tir_func *f, ex_expr *e, kiln_dtype dt);

/* Constants of type dt. */
ex_expr *cmp_f(tir_func *f, kiln_dtype dt, double v);
ex_expr *cmp_i(tir_func *f, kiln_dtype dt, int64_t v);
/* 0 or 1 (or the value v) in dt, integer or float. */
ex_expr *cmp_num(tir_func *f, kiln_dtype dt, double v);

/* Shorthands. */
ex_expr *cmp_bin(tir_func *f, ex_binop op, ex_expr *a, ex_expr *b);
ex_expr *cmp_un(tir_func *f, ex_fn fn, ex_expr *a);
ex_expr *cmp_sel(tir_func *f, ex_expr *c, ex_expr *a, ex_expr *b);
/* clamp(v, lo, hi) on i64 index math. */
ex_expr *cmp_clamp(tir_func *f, ex_expr *v, int64_t lo, int64_t hi);
/* lo <= v < hi on i64. */
ex_expr *cmp_in_range(tir_func *f, ex_expr *v, int64_t lo, int64_t hi);

/* The flat row-major index of idx over dims, and its inverse. */
ex_expr *cmp_flatten(tir_func *f, int rank, const int64_t *dims, ex_expr *const *idx);
void cmp_unflatten(tir_func *f, ex_expr *flat, int rank, const int64_t *dims, ex_expr **idx);

/* A reduction body over the stage's raxes with the combiner's identity. */
ex_expr *cmp_reduction(tir_func *f, tir_stage *s, ex_combiner c, ex_expr *src);

/* Ends a definition: a failed builder is an error naming the node. */
kiln_status cmp_done(kiln_ctx *ctx, tir_func *f, const gir_node *n);

/* A stage that copies src (any element type) into a new tensor of the same
** shape, or converts it to dt: out = cmp_to(src). */
tir_tensor *cmp_copy(tir_func *f, const char *name, tir_tensor *src, kiln_dtype dt, tir_tag tag);

/* ---- entry points: elementwise (compute_elementwise.c) ---- */

CMP_FN(sqrt); CMP_FN(exp); CMP_FN(log); CMP_FN(erf); CMP_FN(tanh); CMP_FN(sigmoid);
CMP_FN(sin); CMP_FN(cos); CMP_FN(tan); CMP_FN(asin); CMP_FN(acos); CMP_FN(atan);
CMP_FN(sinh); CMP_FN(cosh); CMP_FN(asinh); CMP_FN(acosh); CMP_FN(atanh);
CMP_FN(reciprocal); CMP_FN(ceil); CMP_FN(floor); CMP_FN(round);
CMP_FN(softplus); CMP_FN(softsign); CMP_FN(mish); CMP_FN(elu); CMP_FN(leaky_relu);
CMP_FN(thresholded_relu); CMP_FN(swish); CMP_FN(selu); CMP_FN(hard_sigmoid);
CMP_FN(hard_swish); CMP_FN(celu); CMP_FN(gelu); CMP_FN(shrink);
CMP_FN(abs); CMP_FN(neg); CMP_FN(relu); CMP_FN(sign); CMP_FN(not); CMP_FN(bitwise_not);
CMP_FN(isnan); CMP_FN(isinf);

CMP_FN(add); CMP_FN(sub); CMP_FN(mul); CMP_FN(div); CMP_FN(mod); CMP_FN(pow);
CMP_FN(equal); CMP_FN(less); CMP_FN(greater); CMP_FN(less_equal); CMP_FN(greater_equal);
CMP_FN(and); CMP_FN(or); CMP_FN(xor); CMP_FN(bitwise_and); CMP_FN(bitwise_or); CMP_FN(bitwise_xor);
CMP_FN(bitshift); CMP_FN(prelu); CMP_FN(swiglu);
CMP_FN(max); CMP_FN(min); CMP_FN(sum); CMP_FN(mean);

CMP_FN(cast); CMP_FN(castlike); CMP_FN(binarizer); CMP_FN(clip); CMP_FN(where);
CMP_FN(identity); CMP_FN(dropout);

/* ---- shape and data movement (compute_shape.c) ---- */

CMP_FN(view); /* Reshape, Flatten, Squeeze, Unsqueeze */
CMP_FN(shape); CMP_FN(size); CMP_FN(constant_of_shape); CMP_FN(range); CMP_FN(eye_like);
CMP_FN(hann_window); CMP_FN(hamming_window); CMP_FN(blackman_window);
CMP_FN(transpose); CMP_FN(concat); CMP_FN(split); CMP_FN(slice); CMP_FN(pad); CMP_FN(tile);
CMP_FN(expand); CMP_FN(gather); CMP_FN(gather_elements); CMP_FN(gather_nd);
CMP_FN(depth_to_space); CMP_FN(space_to_depth); CMP_FN(trilu); CMP_FN(cumsum);
CMP_FN(one_hot); CMP_FN(reverse_sequence); CMP_FN(center_crop_pad);

/* ---- reductions (compute_reduce.c) ---- */

CMP_FN(reduce); /* every Reduce* row */
CMP_FN(arg_max_min);
CMP_FN(softmax); CMP_FN(log_softmax); CMP_FN(hardmax);

/* ---- nn and linalg (compute_nn.c, compute_norm.c, compute_resize.c, compute_linalg.c,
** compute_quant.c) ---- */

CMP_FN(conv); CMP_FN(conv_transpose); CMP_FN(conv_integer); CMP_FN(qlinear_conv);
CMP_FN(avg_pool); CMP_FN(max_pool); CMP_FN(lp_pool);
CMP_FN(global_avg_pool); CMP_FN(global_max_pool); CMP_FN(global_lp_pool);
CMP_FN(batch_norm); CMP_FN(layer_norm); CMP_FN(rms_norm); CMP_FN(instance_norm);
CMP_FN(group_norm); CMP_FN(lp_norm); CMP_FN(mvn); CMP_FN(lrn);
CMP_FN(resize); CMP_FN(upsample);
CMP_FN(matmul); CMP_FN(gemm); CMP_FN(matmul_integer); CMP_FN(qlinear_matmul);
CMP_FN(quantize); CMP_FN(dequantize); CMP_FN(dynamic_quantize); CMP_FN(einsum); CMP_FN(rotary);

#endif
