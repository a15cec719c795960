/*
** ops_nn.c — the nn op family: convolution, pooling, normalization,
** softmax-like rows, resizing, quantization and attention. The kernels live
** in nn_*.c (declared in nn_internal.h).
*/
#include "nn_internal.h"

#define A_INT(name) {name, GIR_ATTR_INT, false}
#define A_INTS(name) {name, GIR_ATTR_INTS, false}
#define A_FLOAT(name) {name, GIR_ATTR_FLOAT, false}
#define A_FLOATS(name) {name, GIR_ATTR_FLOATS, false}
#define A_STRING(name) {name, GIR_ATTR_STRING, false}
#define A_END {NULL, 0, false}

#define F KILN_DT_FLOATS
#define Q8 (KILN_DT(KILN_I8) | KILN_DT(KILN_U8))

#define ROW(name, lo, hi, imin, imax, omin, omax, dts, fuse, attrs, fn)                        \
    {name, "", lo, hi, imin, imax, omin, omax, dts, fuse, attrs, nn_infer_##fn, nn_ref_##fn}

static const kiln_attr_schema k_conv_attrs[] = {
    A_STRING("auto_pad"), A_INTS("dilations"), A_INT("group"), A_INTS("kernel_shape"),
    A_INTS("pads"),       A_INTS("strides"),   A_END};
static const kiln_attr_schema k_convt_attrs[] = {
    A_STRING("auto_pad"), A_INTS("dilations"), A_INT("group"),   A_INTS("kernel_shape"),
    A_INTS("output_padding"), A_INTS("output_shape"), A_INTS("pads"), A_INTS("strides"), A_END};
static const kiln_attr_schema k_avgpool_attrs[] = {
    A_STRING("auto_pad"), A_INT("ceil_mode"), A_INT("count_include_pad"), A_INTS("dilations"),
    {"kernel_shape", GIR_ATTR_INTS, true}, A_INTS("pads"), A_INTS("strides"), A_END};
static const kiln_attr_schema k_maxpool_attrs[] = {
    A_STRING("auto_pad"), A_INT("ceil_mode"), A_INTS("dilations"), {"kernel_shape", GIR_ATTR_INTS, true},
    A_INTS("pads"), A_INT("storage_order"), A_INTS("strides"), A_END};
static const kiln_attr_schema k_lppool_attrs[] = {
    A_STRING("auto_pad"), A_INT("ceil_mode"), A_INTS("dilations"), {"kernel_shape", GIR_ATTR_INTS, true},
    A_INT("p"), A_INTS("pads"), A_INTS("strides"), A_END};
static const kiln_attr_schema k_p_attrs[] = {A_INT("p"), A_END};
static const kiln_attr_schema k_no_attrs[] = {A_END};

const kiln_op_def kiln_ops_nn[] = {
    ROW("Conv", 1, KILN_MAX_OPSET, 2, 3, 1, 1, F, KILN_FUSE_ANCHOR, k_conv_attrs, conv),
    ROW("ConvTranspose", 1, KILN_MAX_OPSET, 2, 3, 1, 1, F, KILN_FUSE_ANCHOR, k_convt_attrs, conv_transpose),
    ROW("ConvInteger", 10, KILN_MAX_OPSET, 2, 4, 1, 1, Q8, KILN_FUSE_ANCHOR, k_conv_attrs, conv_integer),
    ROW("QLinearConv", 10, KILN_MAX_OPSET, 8, 9, 1, 1, Q8, KILN_FUSE_ANCHOR, k_conv_attrs, qlinear_conv),
    ROW("AveragePool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_ANCHOR, k_avgpool_attrs, avg_pool),
    ROW("MaxPool", 1, KILN_MAX_OPSET, 1, 1, 1, 2, F | Q8, KILN_FUSE_ANCHOR, k_maxpool_attrs, max_pool),
    ROW("LpPool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_ANCHOR, k_lppool_attrs, lp_pool),
    ROW("GlobalAveragePool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_no_attrs, global_avg_pool),
    ROW("GlobalMaxPool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_no_attrs, global_max_pool),
    ROW("GlobalLpPool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_p_attrs, global_lp_pool),
    {0},
};
