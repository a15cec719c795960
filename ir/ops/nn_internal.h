/*
** nn_internal.h — private to the nn and linalg op families: the entry points
** their tables (ops_nn.c, ops_linalg.c) refer to, and the helpers the
** kernels share (element access in double, attribute reading, the sliding
** window geometry of convolution and pooling, batched matrix products).
*/
#ifndef KILN_NN_INTERNAL_H
#define KILN_NN_INTERNAL_H

#include "../dtype.h"
#include "../gir.h"
#include "../mem.h"
#include "../op.h"
#include "../tensor.h"

/* The input at slot i of an infer/reference call, NULL when omitted. */
#define NN_IN(n, in, i) ((i) < (n)->n_inputs ? (in)[i] : NULL)

/* ---- element access (nn_util.c) ---- */

/* The elements of t as doubles: borrowed when t is f64, else a converted
** copy; release with nn_release_f64. t may be NULL (then *v = NULL). */
kiln_status nn_read_f64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                        const double **v);
void nn_release_f64(const kiln_tensor *t, const double *v);
/* A double buffer for output t (t's own data when t is f64, else a zeroed
** copy); nn_out_done stores it into t (rounding to t's dtype: nearest even
** and saturation for integer types) and frees the copy. */
kiln_status nn_out_f64(kiln_ctx *ctx, const gir_node *n, kiln_tensor *t, double **v);
void nn_out_done(kiln_tensor *t, double *v);
/* Stores v at element i of t with rounding to nearest even and saturation
** for integer dtypes. */
void nn_store_round(kiln_tensor *t, int64_t i, double v);
/* Rounds v to the precision of a float dtype, as arithmetic in it would. */
double nn_round_to(kiln_dtype dt, double v);
/* Allocates count doubles (at least one) or fails naming the node. */
kiln_status nn_alloc_f64(kiln_ctx *ctx, const gir_node *n, int64_t count, double **out);

/* ---- attributes (nn_util.c) ---- */

/* Reads ints attribute `name` into vals: exactly `count` values when present,
** else `count` copies of dflt. *present (may be NULL) says which. */
kiln_status nn_attr_ints(kiln_ctx *ctx, const gir_node *n, const char *name, int count,
                         int64_t dflt, int64_t *vals, bool *present);
/* Reads string attribute `name` (dflt when absent) and gives its index in
** the NULL-terminated `choices`; an unknown value is an error. */
kiln_status nn_attr_choice(kiln_ctx *ctx, const gir_node *n, const char *name, const char *dflt,
                           const char *const *choices, int *out);
/* Fails unless b has a's dtype; `what` names b's role ("scale", "B"...). */
kiln_status nn_check_same_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a,
                                const kiln_tensor *b, const char *what);

/* ---- sliding windows: Conv, pooling (nn_window.c) ---- */

enum { NN_PAD_NOTSET, NN_PAD_SAME_UPPER, NN_PAD_SAME_LOWER, NN_PAD_VALID };

typedef struct nn_window {
    int nsp; /* spatial dims */
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK];
    int64_t kernel[KILN_MAX_RANK], stride[KILN_MAX_RANK], dilation[KILN_MAX_RANK];
    int64_t pad_begin[KILN_MAX_RANK], pad_end[KILN_MAX_RANK];
} nn_window;

/* Window geometry of a Conv-like or pool node over input x [N, C, spatial...]
** with the given kernel extents: reads strides, dilations, pads, auto_pad
** (and ceil_mode when `pool`) and computes the output extents. */
kiln_status nn_window_init(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                           const int64_t *kernel, bool pool, nn_window *w);
/* Reads kernel_shape (nsp values) or, when absent and w_dims given, takes
** them from a weight's trailing dims. */
kiln_status nn_kernel_shape(kiln_ctx *ctx, const gir_node *n, int nsp, const int64_t *w_dims,
                            int64_t *kernel);
int64_t nn_window_out_count(const nn_window *w);
int64_t nn_window_in_count(const nn_window *w);
int64_t nn_window_kernel_count(const nn_window *w);

/* One output position's taps: for each kernel offset k (flat) that lands
** inside the input, its flat spatial input offset. Returns the count. */
int nn_window_taps(const nn_window *w, const int64_t *opos, int64_t *kidx, int64_t *ioff);

/* Convolution on doubles: y[N, M, out...] = sum x[N, C, in...] * w[M, C/group, k...] + b[M]. */
typedef struct nn_conv_args {
    const double *x, *w, *b; /* b may be NULL */
    double *y;
    int64_t batch, in_ch, out_ch, group;
    const nn_window *win;
} nn_conv_args;
kiln_status nn_conv_core(kiln_ctx *ctx, const gir_node *n, const nn_conv_args *a);

/* ---- batched matrix products (linalg_matmul.c) ---- */

/* Shapes of MatMul: out dims from a and b (1-D operands promoted and their
** unit dims dropped again), batch broadcasting checked. */
typedef struct nn_matmul_shape {
    int out_rank, batch_rank;
    int64_t out[KILN_MAX_RANK];
    int64_t batch[KILN_MAX_RANK];                       /* broadcast batch dims */
    int64_t a_bstride[KILN_MAX_RANK], b_bstride[KILN_MAX_RANK]; /* per batch dim, in matrices */
    int64_t m, k, n;
} nn_matmul_shape;
kiln_status nn_matmul_shape_of(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a,
                               const kiln_tensor *b, nn_matmul_shape *s);
/* Element offsets of batch entry q's matrices in a and b. */
void nn_matmul_batch(const nn_matmul_shape *s, int64_t q, int64_t *aoff, int64_t *boff);
/* y[batch, m, n] = sum_k a[.., m, k] * b[.., k, n] on doubles. */
void nn_matmul_f64(const nn_matmul_shape *s, const double *a, const double *b, double *y);

/* ---- entry points of the op tables ---- */

#define NN_OP(name)                                                                          \
    kiln_status nn_infer_##name(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, \
                                kiln_tensor *out);                                           \
    kiln_status nn_ref_##name(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,   \
                              kiln_tensor *out)

NN_OP(conv);
NN_OP(conv_transpose);
NN_OP(conv_integer);
NN_OP(qlinear_conv);
NN_OP(deform_conv);
NN_OP(col2im);
NN_OP(avg_pool);
NN_OP(max_pool);
NN_OP(lp_pool);
NN_OP(global_avg_pool);
NN_OP(global_max_pool);
NN_OP(global_lp_pool);
NN_OP(max_unpool);
NN_OP(roi_align);
NN_OP(batch_norm);
NN_OP(layer_norm);
NN_OP(instance_norm);
NN_OP(group_norm);
NN_OP(rms_norm);
NN_OP(lp_norm);
NN_OP(lrn);
NN_OP(mvn);
NN_OP(softmax);
NN_OP(log_softmax);
NN_OP(hardmax);
NN_OP(resize);
NN_OP(upsample);
NN_OP(quantize);
NN_OP(dequantize);
NN_OP(dyn_quantize);
NN_OP(attention);
NN_OP(rnn);
NN_OP(gru);
NN_OP(lstm);
NN_OP(flex_attention);
NN_OP(linear_attention);
NN_OP(causal_conv);
NN_OP(rotary);
NN_OP(nll_loss);
NN_OP(grid_sample);
NN_OP(affine_grid);
NN_OP(sce_loss);
NN_OP(matmul);
NN_OP(gemm);
NN_OP(matmul_integer);
NN_OP(qlinear_matmul);
NN_OP(einsum);
NN_OP(det);

#endif
