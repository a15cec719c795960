/*
** ops_shape.c — the shape op family: ops that change or read shapes, and ops
** that make tensors from attributes or scalars. Kernels live in shape_*.c.
*/
#include "compute.h"
#include "shape_ops.h"

#define ALL_BUT_STRING (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL))

static const kiln_attr_schema k_reshape1[] = {{"shape", GIR_ATTR_INTS, true}, {NULL}};
static const kiln_attr_schema k_reshape5[] = {{"allowzero", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_flatten[] = {{"axis", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_squeeze1[] = {{"axes", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_unsqueeze1[] = {{"axes", GIR_ATTR_INTS, true}, {NULL}};
static const kiln_attr_schema k_none[] = {{NULL}};
static const kiln_attr_schema k_shape[] = {
    {"start", GIR_ATTR_INT, false}, {"end", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_constant[] = {
    {"value", GIR_ATTR_TENSOR, false},        {"value_float", GIR_ATTR_FLOAT, false},
    {"value_floats", GIR_ATTR_FLOATS, false}, {"value_int", GIR_ATTR_INT, false},
    {"value_ints", GIR_ATTR_INTS, false},     {"value_string", GIR_ATTR_STRING, false},
    {"value_strings", GIR_ATTR_STRINGS, false}, {NULL}};
static const kiln_attr_schema k_cos[] = {{"value", GIR_ATTR_TENSOR, false}, {NULL}};
static const kiln_attr_schema k_eyelike[] = {
    {"dtype", GIR_ATTR_INT, false}, {"k", GIR_ATTR_INT, false}, {NULL}};

const kiln_op_def kiln_ops_shape[] = {
    {"Reshape", "", 1, 4, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_reshape1,
     shp_reshape_infer, shp_view_ref, cmp_view},
    {"Reshape", "", 5, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_reshape5,
     shp_reshape_infer, shp_view_ref, cmp_view},
    {"Flatten", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_flatten,
     shp_flatten_infer, shp_view_ref, cmp_view},
    {"Squeeze", "", 1, 12, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_squeeze1,
     shp_squeeze_infer, shp_view_ref, cmp_view},
    {"Squeeze", "", 13, KILN_MAX_OPSET, 1, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_none,
     shp_squeeze_infer, shp_view_ref, cmp_view},
    {"Unsqueeze", "", 1, 12, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_unsqueeze1,
     shp_unsqueeze_infer, shp_view_ref, cmp_view},
    {"Unsqueeze", "", 13, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_none,
     shp_unsqueeze_infer, shp_view_ref, cmp_view},
    {"Shape", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_shape,
     shp_shape_infer, shp_shape_ref, cmp_shape, .shape_only_inputs = 1},
    {"Size", "", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_SHAPE, k_none,
     shp_size_infer, shp_size_ref, cmp_size, .shape_only_inputs = 1},
    {"Constant", "", 1, KILN_MAX_OPSET, 0, 0, 1, 1, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_constant,
     shp_constant_infer, shp_constant_ref},
    {"ConstantOfShape", "", 9, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT(KILN_I64), KILN_FUSE_OPAQUE, k_cos,
     shp_cos_infer, shp_cos_ref, cmp_constant_of_shape},
    {"Range", "", 11, KILN_MAX_OPSET, 3, 3, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_none,
     shp_range_infer, shp_range_ref, cmp_range},
    {"EyeLike", "", 9, KILN_MAX_OPSET, 1, 1, 1, 1, ALL_BUT_STRING, KILN_FUSE_OPAQUE, k_eyelike,
     shp_eyelike_infer, shp_eyelike_ref, cmp_eye_like},
    {0},
};
