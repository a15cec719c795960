/*
** tensor.h — helpers on kiln_tensor: sizes, allocation, broadcasting.
*/
#ifndef KILN_TENSOR_H
#define KILN_TENSOR_H

#include <stdbool.h>
#include "kiln/kiln.h"

/* Element count; -1 if a dim is negative or the count overflows int64. */
int64_t kiln_numel(const kiln_tensor *t);
int64_t kiln_numel_dims(int rank, const int64_t *dims);
/* Byte size of the data; 0 with *ok=false on overflow or bad dtype. */
size_t kiln_nbytes(const kiln_tensor *t);

/* Sets dtype/rank/dims (rank <= KILN_MAX_RANK), leaves data NULL. */
void kiln_tensor_init(kiln_tensor *t, kiln_dtype dt, int rank, const int64_t *dims);
/* Allocates zeroed owned data for t's dtype and dims. Strings become "". */
kiln_status kiln_tensor_alloc(kiln_ctx *ctx, kiln_tensor *t);
/* Deep copy into dst (owned). */
kiln_status kiln_tensor_copy(kiln_ctx *ctx, const kiln_tensor *src, kiln_tensor *dst);
bool kiln_tensor_same_shape(const kiln_tensor *a, const kiln_tensor *b);

/* "f32[1,3,224,224]" into buf. */
const char *kiln_shape_str(const kiln_tensor *t, char *buf, size_t n);

/* Row-major strides (in elements) of dims. */
void kiln_strides(int rank, const int64_t *dims, int64_t *strides);

/* Multidirectional (numpy) broadcasting of n shapes into out (rank, dims).
** Returns KILN_ERR_SHAPE with a message when they do not broadcast. */
kiln_status kiln_broadcast_shapes(kiln_ctx *ctx, int n, const kiln_tensor *const *ts,
                                  int *out_rank, int64_t *out_dims);

/* Strides of `t` seen through an output shape (0 on broadcast dims), aligned
** to the output's rank, so offset = sum(idx[d] * bstrides[d]). */
void kiln_broadcast_strides(const kiln_tensor *t, int out_rank, const int64_t *out_dims,
                            int64_t *bstrides);

/* Advances a multi-index over dims; returns false after the last one. */
bool kiln_index_next(int rank, const int64_t *dims, int64_t *idx);

/* Reads element i of an integer tensor (any int dtype) as int64. */
int64_t kiln_tensor_i64(const kiln_tensor *t, int64_t i);
double kiln_tensor_f64(const kiln_tensor *t, int64_t i);

#endif
