/*
** ops_reduce.c — the reduce op family: Reduce* and ArgMax/ArgMin.
** Kernels live in reduce_ops.c.
*/
#include "compute.h"
#include "shape_ops.h"

static const kiln_attr_schema k_reduce_attr[] = {
    {"axes", GIR_ATTR_INTS, false}, {"keepdims", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_reduce_input[] = {
    {"keepdims", GIR_ATTR_INT, false}, {"noop_with_empty_axes", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_arg[] = {
    {"axis", GIR_ATTR_INT, false}, {"keepdims", GIR_ATTR_INT, false},
    {"select_last_index", GIR_ATTR_INT, false}, {NULL}};

/* Axes moved from an attribute to an input at opset `v` (13 for ReduceSum,
** 18 for the others). */
#define REDUCE(name, v, dt)                                                                   \
    {name, "", 1, (v) - 1, 1, 1, 1, 1, dt, KILN_FUSE_REDUCE, k_reduce_attr, red_reduce_infer,  \
     red_reduce_ref, cmp_reduce},                                                             \
    {name, "", v, KILN_MAX_OPSET, 1, 2, 1, 1, dt, KILN_FUSE_REDUCE, k_reduce_input,            \
     red_reduce_infer, red_reduce_ref, cmp_reduce}

const kiln_op_def kiln_ops_reduce[] = {
    REDUCE("ReduceSum", 13, KILN_DT_NUMERIC),
    REDUCE("ReduceMean", 18, KILN_DT_NUMERIC),
    REDUCE("ReduceMax", 18, KILN_DT_NUMERIC | KILN_DT(KILN_BOOL)),
    REDUCE("ReduceMin", 18, KILN_DT_NUMERIC | KILN_DT(KILN_BOOL)),
    REDUCE("ReduceProd", 18, KILN_DT_NUMERIC),
    REDUCE("ReduceL1", 18, KILN_DT_NUMERIC),
    REDUCE("ReduceL2", 18, KILN_DT_NUMERIC),
    REDUCE("ReduceLogSum", 18, KILN_DT_NUMERIC),
    REDUCE("ReduceLogSumExp", 18, KILN_DT_NUMERIC),
    REDUCE("ReduceSumSquare", 18, KILN_DT_NUMERIC),
    {"ArgMax", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_REDUCE, k_arg,
     red_arg_infer, red_arg_ref, cmp_arg_max_min},
    {"ArgMin", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_REDUCE, k_arg,
     red_arg_infer, red_arg_ref, cmp_arg_max_min},
    {0},
};
