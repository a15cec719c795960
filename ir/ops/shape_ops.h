/*
** shape_ops.h — private to the shape, tensor and reduce op families:
** the kernels their tables point at, and the helpers they share.
** Prefixes: shp_ (shape family and shared helpers), tns_ (tensor family),
** red_ (reduce family).
*/
#ifndef KILN_OPS_SHAPE_OPS_H
#define KILN_OPS_SHAPE_OPS_H

#include "../op.h"

/* max_inputs/max_outputs of variadic ops. */
#define SHP_VARIADIC (1 << 16)

/* The most split points, repeats or similar per-output lists an op reads. */
#define SHP_MAX_LIST 1024

/* The input at slot i, or NULL when omitted or absent. */
static inline const kiln_tensor *shp_in(const gir_node *n, const kiln_tensor *const *in, int i) {
    return i < n->n_inputs ? in[i] : NULL;
}

/* Reads a 1-D (or scalar) integer tensor; an empty tensor reads as no values
** even when it has no data. KILN_ERR_DYNAMIC (no message) when the values are
** not known yet. */
kiln_status shp_read_ints(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what,
                          int64_t *vals, int max, int *count);

/* An integer list given as the attribute `attr` (older opsets) or as input
** `slot` (newer ones): the attribute wins when present. *count is -1 when
** neither is given. */
kiln_status shp_ints_arg(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         const char *attr, int slot, int64_t *vals, int max, int *count);

/* Reads a scalar (or one-element) integer input. */
kiln_status shp_read_scalar_int(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                                const char *what, int64_t *out);

/* Normalizes `count` axes against `rank` into out[], failing on a duplicate
** or an axis out of range. */
kiln_status shp_norm_axes(kiln_ctx *ctx, const gir_node *n, const int64_t *axes, int count,
                          int rank, int *out);

/* Copies `count` elements src[si..] to dst[di..] (same dtype); string
** elements are duplicated, replacing what dst held. */
kiln_status shp_copy(kiln_ctx *ctx, const gir_node *n, kiln_tensor *dst, int64_t di,
                     const kiln_tensor *src, int64_t si, int64_t count);

/* Copies the elements of `src` at offsets si + sum(idx[d] * strides[d]), idx
** running over dims in row-major order, to dst[di..] contiguously. */
kiln_status shp_strided_copy(kiln_ctx *ctx, const gir_node *n, kiln_tensor *dst, int64_t di,
                             const kiln_tensor *src, int64_t si, int rank, const int64_t *dims,
                             const int64_t *strides);

/* Compares element i of t with element j of u (same dtype): -1, 0 or 1.
** Integers compare exactly, NaN sorts after every number. */
int shp_cmp_elem(const kiln_tensor *t, int64_t i, const kiln_tensor *u, int64_t j);

/* A stable merge sort of idx[0..count) by cmp(arg, a, b); tmp holds count. */
typedef int (*shp_cmp_fn)(const void *arg, int64_t a, int64_t b);
void shp_stable_sort(int64_t *idx, int64_t count, int64_t *tmp, shp_cmp_fn cmp, const void *arg);

/* Fails unless t's dtype equals `dt`. */
kiln_status shp_same_dtype(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, kiln_dtype dt,
                           const char *what);

/* Element counts past this are refused before any index arithmetic. */
#define SHP_MAX_ELEMS (INT64_C(1) << 40)

/* a * b for non-negative a, b; false when the product exceeds SHP_MAX_ELEMS. */
static inline bool shp_mul(int64_t a, int64_t b, int64_t *out) {
    if (a < 0 || b < 0 || (a && b > SHP_MAX_ELEMS / a)) return false;
    *out = a * b;
    return *out <= SHP_MAX_ELEMS;
}

/* Fails when a rank would exceed KILN_MAX_RANK. */
kiln_status shp_check_rank(kiln_ctx *ctx, const gir_node *n, int64_t rank);

/* ---- shape family ---- */
kiln_status shp_reshape_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_flatten_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_squeeze_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_unsqueeze_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_view_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_shape_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_shape_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_size_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_size_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);

kiln_status shp_constant_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_constant_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_cos_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_cos_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_range_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_range_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_eyelike_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status shp_eyelike_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);

/* ---- tensor family: tns_<op>_infer and tns_<op>_ref ---- */
#define TNS_KERNELS(x)                                                                      \
    kiln_status tns_##x##_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *,   \
                                kiln_tensor *);                                             \
    kiln_status tns_##x##_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
TNS_KERNELS(transpose)
TNS_KERNELS(concat)
TNS_KERNELS(split)
TNS_KERNELS(d2s)
TNS_KERNELS(s2d)
TNS_KERNELS(slice)
TNS_KERNELS(pad)
TNS_KERNELS(tile)
TNS_KERNELS(expand)
TNS_KERNELS(ccp)
TNS_KERNELS(gather)
TNS_KERNELS(gather_el)
TNS_KERNELS(gather_nd)
TNS_KERNELS(scatter_el)
TNS_KERNELS(scatter_nd)
TNS_KERNELS(tscat)
TNS_KERNELS(compress)
TNS_KERNELS(nonzero)
TNS_KERNELS(onehot)
TNS_KERNELS(topk)
TNS_KERNELS(unique)
TNS_KERNELS(cumsum)
TNS_KERNELS(trilu)
TNS_KERNELS(revseq)

/* ---- reduce family ---- */
kiln_status red_reduce_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status red_reduce_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status red_arg_infer(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);
kiln_status red_arg_ref(kiln_ctx *, const gir_node *, const kiln_tensor *const *, kiln_tensor *);

#endif
