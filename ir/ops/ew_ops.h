/*
** ew_ops.h — private to the elementwise op families (unary, binary, misc):
** the helpers they share. Prefix: ew_.
**
** Values are computed in one of four domains chosen by the element type:
** floats in double (rounded once on store; for + - * / and sqrt this gives
** the correctly rounded f32/f16/bf16 result), signed integers in int64,
** unsigned integers in uint64 (both wrap like two's complement, computed so
** that C never overflows), and bools.
*/
#ifndef KILN_OPS_EW_OPS_H
#define KILN_OPS_EW_OPS_H

#include "../op.h"

/* max_inputs of variadic ops (Sum, Max, ...). */
#define EW_VARIADIC (1 << 16)

typedef enum ew_kind { EW_FLOAT, EW_SINT, EW_UINT, EW_BOOL, EW_STRING } ew_kind;

ew_kind ew_kind_of(kiln_dtype t);

/* The input at slot i, or NULL when omitted or absent. */
static inline const kiln_tensor *ew_in(const gir_node *n, const kiln_tensor *const *in, int i) {
    return i < n->n_inputs ? in[i] : NULL;
}

/* kiln_load_f64/kiln_store_f64 with the common float types inlined: the
** reference kernels spend most of their time here. */
static inline double ew_load_f64(kiln_dtype t, const void *d, int64_t i) {
    if (t == KILN_F32) return ((const float *)d)[i];
    if (t == KILN_F64) return ((const double *)d)[i];
    return kiln_load_f64(t, d, i);
}
static inline void ew_store_f64(kiln_dtype t, void *d, int64_t i, double v) {
    if (t == KILN_F32) ((float *)d)[i] = (float)v;
    else if (t == KILN_F64) ((double *)d)[i] = v;
    else kiln_store_f64(t, d, i, v);
}

/* An integer element as its two's complement bits (exact for u64). */
static inline uint64_t ew_load_u64(kiln_dtype t, const void *d, int64_t i) {
    return (uint64_t)kiln_load_i64(t, d, i);
}
static inline void ew_store_u64(kiln_dtype t, void *d, int64_t i, uint64_t v) {
    kiln_store_i64(t, d, i, (int64_t)v);
}

/* Walks an output shape in row-major order and keeps, for each of up to
** EW_ITER_MAX inputs, the offset of the element that broadcasts to it. */
#define EW_ITER_MAX 3
typedef struct ew_iter {
    int rank, n;
    int64_t dims[KILN_MAX_RANK];
    int64_t idx[KILN_MAX_RANK];
    int64_t strides[EW_ITER_MAX][KILN_MAX_RANK];
    int64_t off[EW_ITER_MAX];
} ew_iter;

/* The inputs must broadcast to out's shape (as infer checked). */
void ew_iter_init(ew_iter *it, const kiln_tensor *out, int n, const kiln_tensor *const *in);
void ew_iter_next(ew_iter *it);

/* Copies element si of src to element di of dst, both of one non-string
** dtype. */
void ew_copy_num(const kiln_tensor *src, int64_t si, kiln_tensor *dst, int64_t di);

/* Copies element si of src to element di of dst, both of the same dtype;
** strings are duplicated. */
kiln_status ew_copy_elem(kiln_ctx *ctx, const kiln_tensor *src, int64_t si, kiln_tensor *dst,
                         int64_t di);

/* Fails unless inputs [first, first+count) that are present all have dt. */
kiln_status ew_check_dtypes(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            int first, int count, kiln_dtype dt);

/* The two operands of a binary op as it broadcasts at the node's opset:
** before opset 7 B follows the legacy `broadcast`/`axis` attributes and
** comes back as a view whose dims are aligned to A's rank. */
kiln_status ew_binary_operands(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *a, kiln_tensor *b);

/* Shape inference for a binary op: the broadcast of ew_binary_operands
** with output dtype dt. */
kiln_status ew_infer_binary(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_dtype dt, kiln_tensor *out);

/* A scalar that ONNX moved from an attribute to an input (Clip's min/max,
** Dropout's ratio): the attribute when the node has it, else input t
** (NULL when omitted). *found is false when neither is given. The input must
** hold one element; KILN_ERR_DYNAMIC (no message) when its value is unknown. */
kiln_status ew_attr_or_input(kiln_ctx *ctx, const gir_node *n, const char *attr,
                             const kiln_tensor *t, double *val, bool *found);

/* Cast and CastLike (ew_cast.c). */
kiln_status ew_infer_cast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out);
kiln_status ew_infer_castlike(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out);
kiln_status ew_ref_cast(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out);
/* ONNX's name of TensorProto.DataType t ("FLOAT8E4M3FN"), or "unknown". */
const char *ew_onnx_type_name(int64_t t);

/* The logistic function, finite in both tails. */
double ew_sigmoid(double x);

/* Reads the single element of a one-element tensor, exactly, as int64 bits. */
kiln_status ew_scalar_i64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t,
                          const char *what, int64_t *val);

#endif
