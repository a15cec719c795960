/*
** ops_tensor.c — the tensor op family: data movement (transpose, concat,
** slice, pad, gather, scatter...) and ops that select or scan data.
** Kernels live in tensor_*.c.
*/
#include "compute.h"
#include "shape_ops.h"

#define NOT_STRING (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL))
/* A trailing argument, when given, is the row's compute definition. */
#define ROW(name, lo, hi, imin, imax, omin, omax, dt, fuse, attrs, k, ...) \
    {name, "", lo, hi, imin, imax, omin, omax, dt, fuse, attrs, tns_##k##_infer, tns_##k##_ref, __VA_ARGS__}

static const kiln_attr_schema k_none[] = {{NULL}};
static const kiln_attr_schema k_axis[] = {{"axis", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_transpose[] = {{"perm", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_split1[] = {
    {"axis", GIR_ATTR_INT, false}, {"split", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_split13[] = {
    {"axis", GIR_ATTR_INT, false}, {"num_outputs", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_d2s[] = {
    {"blocksize", GIR_ATTR_INT, true}, {"mode", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_s2d[] = {{"blocksize", GIR_ATTR_INT, true}, {NULL}};
static const kiln_attr_schema k_slice1[] = {
    {"starts", GIR_ATTR_INTS, true}, {"ends", GIR_ATTR_INTS, true}, {"axes", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_pad1[] = {
    {"mode", GIR_ATTR_STRING, false}, {"pads", GIR_ATTR_INTS, false},
    {"paddings", GIR_ATTR_INTS, false}, {"value", GIR_ATTR_FLOAT, false}, {NULL}};
static const kiln_attr_schema k_pad11[] = {{"mode", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_ccp[] = {{"axes", GIR_ATTR_INTS, false}, {NULL}};
static const kiln_attr_schema k_gather_nd[] = {{"batch_dims", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_scatter[] = {
    {"axis", GIR_ATTR_INT, false}, {"reduction", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_scatter_nd[] = {{"reduction", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_tscat[] = {
    {"axis", GIR_ATTR_INT, false}, {"mode", GIR_ATTR_STRING, false}, {NULL}};
static const kiln_attr_schema k_topk1[] = {{"axis", GIR_ATTR_INT, false}, {"k", GIR_ATTR_INT, true}, {NULL}};
static const kiln_attr_schema k_topk10[] = {
    {"axis", GIR_ATTR_INT, false}, {"largest", GIR_ATTR_INT, false}, {"sorted", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_unique[] = {
    {"axis", GIR_ATTR_INT, false}, {"sorted", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_cumsum[] = {
    {"exclusive", GIR_ATTR_INT, false}, {"reverse", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_trilu[] = {{"upper", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_revseq[] = {
    {"batch_axis", GIR_ATTR_INT, false}, {"time_axis", GIR_ATTR_INT, false}, {NULL}};

const kiln_op_def kiln_ops_tensor[] = {
    ROW("Transpose", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_transpose, transpose, cmp_transpose),
    ROW("Concat", 1, KILN_MAX_OPSET, 1, SHP_VARIADIC, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_axis, concat, cmp_concat),
    ROW("Split", 1, 12, 1, 2, 1, SHP_VARIADIC, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_split1, split, cmp_split),
    ROW("Split", 13, KILN_MAX_OPSET, 1, 2, 1, SHP_VARIADIC, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_split13, split, cmp_split),
    ROW("DepthToSpace", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_d2s, d2s, cmp_depth_to_space),
    ROW("SpaceToDepth", 1, KILN_MAX_OPSET, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_s2d, s2d, cmp_space_to_depth),
    ROW("Slice", 1, 9, 1, 1, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_slice1, slice, cmp_slice),
    ROW("Slice", 10, KILN_MAX_OPSET, 3, 5, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_none, slice, cmp_slice),
    ROW("Pad", 1, 10, 1, 1, 1, 1, NOT_STRING, KILN_FUSE_INJECTIVE, k_pad1, pad, cmp_pad),
    ROW("Pad", 11, KILN_MAX_OPSET, 2, 4, 1, 1, NOT_STRING, KILN_FUSE_INJECTIVE, k_pad11, pad, cmp_pad),
    ROW("Tile", 6, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_none, tile, cmp_tile),
    ROW("Expand", 8, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_none, expand, cmp_expand),
    ROW("CenterCropPad", 18, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_ccp, ccp, cmp_center_crop_pad),
    ROW("Gather", 1, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_axis, gather, cmp_gather),
    ROW("GatherElements", 11, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_axis, gather_el, cmp_gather_elements),
    ROW("GatherND", 11, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_gather_nd, gather_nd, cmp_gather_nd),
    ROW("Scatter", 9, 12, 3, 3, 1, 1, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_axis, scatter_el),
    ROW("ScatterElements", 11, KILN_MAX_OPSET, 3, 3, 1, 1, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_scatter, scatter_el),
    ROW("ScatterND", 11, KILN_MAX_OPSET, 3, 3, 1, 1, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_scatter_nd, scatter_nd),
    ROW("TensorScatter", 24, KILN_MAX_OPSET, 2, 3, 1, 1, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_tscat, tscat),
    ROW("Compress", 9, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_axis, compress),
    ROW("NonZero", 9, KILN_MAX_OPSET, 1, 1, 1, 1, NOT_STRING, KILN_FUSE_OPAQUE, k_none, nonzero),
    ROW("OneHot", 9, KILN_MAX_OPSET, 3, 3, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_axis, onehot, cmp_one_hot),
    ROW("TopK", 1, 9, 1, 1, 2, 2, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_topk1, topk),
    ROW("TopK", 10, KILN_MAX_OPSET, 2, 2, 2, 2, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_topk10, topk),
    ROW("Unique", 11, KILN_MAX_OPSET, 1, 1, 1, 4, KILN_DT_ALL, KILN_FUSE_OPAQUE, k_unique, unique),
    ROW("CumSum", 11, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_cumsum, cumsum, cmp_cumsum),
    ROW("CumProd", 26, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_cumsum, cumsum, cmp_cumsum),
    ROW("Trilu", 14, KILN_MAX_OPSET, 1, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_trilu, trilu, cmp_trilu),
    ROW("ReverseSequence", 10, KILN_MAX_OPSET, 2, 2, 1, 1, KILN_DT_ALL, KILN_FUSE_INJECTIVE, k_revseq, revseq, cmp_reverse_sequence),
    {0},
};
