/*
** ops_linalg.c — the linalg op family: matrix products and Einsum. The
** kernels live in linalg_*.c (declared in nn_internal.h).
*/
#include "compute.h"
#include "nn_internal.h"

#define Q8 (KILN_DT(KILN_I8) | KILN_DT(KILN_U8))
#define MM_INTS (KILN_DT(KILN_I32) | KILN_DT(KILN_I64) | KILN_DT(KILN_U32) | KILN_DT(KILN_U64))

/* A trailing argument, when given, is the row's compute definition. */
#define ROW(name, lo, hi, imin, imax, dts, fuse, attrs, fn, ...) \
    {name, "", lo, hi, imin, imax, 1, 1, dts, fuse, attrs, nn_infer_##fn, nn_ref_##fn, __VA_ARGS__}

static const kiln_attr_schema k_no_attrs[] = {{NULL, 0, false}};
static const kiln_attr_schema k_gemm_attrs[] = {
    {"alpha", GIR_ATTR_FLOAT, false}, {"beta", GIR_ATTR_FLOAT, false}, {"transA", GIR_ATTR_INT, false},
    {"transB", GIR_ATTR_INT, false},  {"broadcast", GIR_ATTR_INT, false}, {NULL, 0, false}};
static const kiln_attr_schema k_einsum_attrs[] = {{"equation", GIR_ATTR_STRING, true}, {NULL, 0, false}};

const kiln_op_def kiln_ops_linalg[] = {
    ROW("MatMul", 1, 8, 2, 2, KILN_DT_FLOATS, KILN_FUSE_ANCHOR, k_no_attrs, matmul, cmp_matmul),
    ROW("MatMul", 9, KILN_MAX_OPSET, 2, 2, KILN_DT_FLOATS | MM_INTS, KILN_FUSE_ANCHOR, k_no_attrs, matmul, cmp_matmul),
    ROW("Gemm", 1, 10, 3, 3, KILN_DT_FLOATS | MM_INTS, KILN_FUSE_ANCHOR, k_gemm_attrs, gemm, cmp_gemm),
    ROW("Gemm", 11, KILN_MAX_OPSET, 2, 3, KILN_DT_FLOATS | MM_INTS, KILN_FUSE_ANCHOR, k_gemm_attrs, gemm, cmp_gemm),
    ROW("MatMulInteger", 10, KILN_MAX_OPSET, 2, 4, Q8, KILN_FUSE_ANCHOR, k_no_attrs, matmul_integer, cmp_matmul_integer),
    ROW("QLinearMatMul", 10, KILN_MAX_OPSET, 8, 8, Q8, KILN_FUSE_ANCHOR, k_no_attrs, qlinear_matmul, cmp_qlinear_matmul),
    ROW("Einsum", 12, KILN_MAX_OPSET, 1, 16, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_einsum_attrs, einsum, cmp_einsum),
    ROW("Det", 11, KILN_MAX_OPSET, 1, 1, KILN_DT_FLOATS, KILN_FUSE_OPAQUE, k_no_attrs, det),
    {0},
};
