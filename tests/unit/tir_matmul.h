/*
** tir_matmul.h — the tensor-IR matrix product the schedule, measurement and
** gate tests share: C[i, j] = sum(k) A[i, k] * B[k, j], f32, B bound to
** constant data when bconst is given.
*/
#ifndef KILN_TEST_TIR_MATMUL_H
#define KILN_TEST_TIR_MATMUL_H

#include "ir/tir.h"

static inline tir_func *test_tir_matmul(int64_t M, int64_t N, int64_t K, const kiln_tensor *bconst) {
    tir_func *f = tir_func_new("matmul");
    ex_builder *b = &f->eb;
    tir_tensor *A = tir_placeholder(f, "A", KILN_F32, 2, (int64_t[]){M, K}, NULL);
    tir_tensor *B = tir_placeholder(f, "B", KILN_F32, 2, (int64_t[]){K, N}, bconst);
    tir_stage *C = tir_stage_new(f, "C", KILN_F32, 2, (int64_t[]){M, N}, TIR_TAG_MATMUL);
    C->axes[0]->name = "i";
    C->axes[1]->name = "j";
    ex_var *k = tir_stage_add_raxis(f, C, "k", K);
    ex_expr *ia[2] = {ex_varref(b, C->axes[0]), ex_varref(b, k)}, *ib[2] = {ex_varref(b, k), ex_varref(b, C->axes[1])};
    ex_expr *prod = ex_mul(b, ex_load_tensor(b, A, ia), ex_load_tensor(b, B, ib));
    C->body = ex_reduce(b, EX_SUM, prod, (const ex_var *const *)&k, 1, ex_const_float(b, KILN_F32, 0));
    tir_mark_output(f, C->out);
    return f;
}

#endif
