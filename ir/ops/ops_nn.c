/*
** ops_nn.c — the nn op family: convolution, pooling, normalization,
** softmax-like rows, resizing, quantization and attention. The kernels live
** in nn_*.c (declared in nn_internal.h).
*/
#include "compute.h"
#include "nn_internal.h"

#define A_INT(name) {name, GIR_ATTR_INT, false}
#define A_INTS(name) {name, GIR_ATTR_INTS, false}
#define A_FLOAT(name) {name, GIR_ATTR_FLOAT, false}
#define A_FLOATS(name) {name, GIR_ATTR_FLOATS, false}
#define A_STRING(name) {name, GIR_ATTR_STRING, false}
#define A_END {NULL, 0, false}

#define F KILN_DT_FLOATS

CMP_FN(attention); /* compute_attention.c */
#define Q8 (KILN_DT(KILN_I8) | KILN_DT(KILN_U8))

/* A trailing argument, when given, is the row's compute definition. */
#define ROW(name, lo, hi, imin, imax, omin, omax, dts, fuse, attrs, fn, ...)                   \
    {name, "", lo, hi, imin, imax, omin, omax, dts, fuse, attrs, nn_infer_##fn, nn_ref_##fn, __VA_ARGS__}

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
static const kiln_attr_schema k_bn_attrs[] = {
    A_FLOAT("epsilon"), A_FLOAT("momentum"), A_INT("training_mode"), A_INT("spatial"), A_INT("is_test"),
    A_INTS("consumed_inputs"), A_END};
static const kiln_attr_schema k_ln_attrs[] = {A_INT("axis"), A_FLOAT("epsilon"), A_INT("stash_type"), A_END};
static const kiln_attr_schema k_eps_attrs[] = {A_FLOAT("epsilon"), A_END};
static const kiln_attr_schema k_gn_attrs[] = {
    A_FLOAT("epsilon"), {"num_groups", GIR_ATTR_INT, true}, A_INT("stash_type"), A_END};
static const kiln_attr_schema k_lpn_attrs[] = {A_INT("axis"), A_INT("p"), A_END};
static const kiln_attr_schema k_lrn_attrs[] = {
    A_FLOAT("alpha"), A_FLOAT("beta"), A_FLOAT("bias"), {"size", GIR_ATTR_INT, true}, A_END};
static const kiln_attr_schema k_mvn_attrs[] = {A_INTS("axes"), A_END};
static const kiln_attr_schema k_axis_attrs[] = {A_INT("axis"), A_END};
static const kiln_attr_schema k_resize_attrs[] = {
    A_INT("antialias"), A_INTS("axes"), A_STRING("coordinate_transformation_mode"), A_FLOAT("cubic_coeff_a"),
    A_INT("exclude_outside"), A_FLOAT("extrapolation_value"), A_STRING("keep_aspect_ratio_policy"),
    A_STRING("mode"), A_STRING("nearest_mode"), A_END};
static const kiln_attr_schema k_quant_attrs[] = {
    A_INT("axis"), A_INT("block_size"), A_INT("output_dtype"), A_INT("saturate"), A_INT("precision"), A_END};
static const kiln_attr_schema k_attention_attrs[] = {
    A_INT("is_causal"), A_INT("kv_num_heads"), A_INT("q_num_heads"), A_INT("qk_matmul_output_mode"),
    A_FLOAT("scale"), A_FLOAT("softcap"), A_INT("softmax_precision"), A_INT("left_window_size"),
    A_INT("right_window_size"), A_END};
static const kiln_attr_schema k_loss_attrs[] = {A_INT("ignore_index"), A_STRING("reduction"), A_END};
static const kiln_attr_schema k_grid_attrs[] = {
    A_INT("align_corners"), A_STRING("mode"), A_STRING("padding_mode"), A_END};
static const kiln_attr_schema k_flex_attrs[] = {
    A_FLOAT("scale"), A_INT("softmax_precision"), {"score_mod", GIR_ATTR_GRAPH, false},
    {"prob_mod", GIR_ATTR_GRAPH, false}, A_END};
static const kiln_attr_schema k_linattn_attrs[] = {
    A_INT("chunk_size"), {"kv_num_heads", GIR_ATTR_INT, true}, {"q_num_heads", GIR_ATTR_INT, true},
    A_FLOAT("scale"), A_STRING("update_rule"), A_END};
static const kiln_attr_schema k_ccs_attrs[] = {A_STRING("activation"), A_END};
static const kiln_attr_schema k_rope_attrs[] = {
    A_INT("interleaved"), A_INT("num_heads"), A_INT("rotary_embedding_dim"), A_END};
static const kiln_attr_schema k_col2im_attrs[] = {A_INTS("dilations"), A_INTS("pads"), A_INTS("strides"), A_END};
static const kiln_attr_schema k_unpool_attrs[] = {
    {"kernel_shape", GIR_ATTR_INTS, true}, A_INTS("pads"), A_INTS("strides"), A_END};
static const kiln_attr_schema k_deform_attrs[] = {
    A_INTS("dilations"), A_INT("group"), A_INTS("kernel_shape"), A_INT("offset_group"), A_INTS("pads"),
    A_INTS("strides"), A_END};
static const kiln_attr_schema k_roi_attrs[] = {
    A_STRING("coordinate_transformation_mode"), A_STRING("mode"), A_INT("output_height"), A_INT("output_width"),
    A_INT("sampling_ratio"), A_FLOAT("spatial_scale"), A_END};
static const kiln_attr_schema k_rnn_attrs[] = {
    A_FLOATS("activation_alpha"), A_FLOATS("activation_beta"), {"activations", GIR_ATTR_STRINGS, false},
    A_FLOAT("clip"), A_STRING("direction"), {"hidden_size", GIR_ATTR_INT, true}, A_INT("layout"),
    A_INT("linear_before_reset"), A_INT("input_forget"), A_END};
static const kiln_attr_schema k_upsample_attrs[] = {A_STRING("mode"), A_FLOATS("scales"), A_END};

const kiln_op_def kiln_ops_nn[] = {
    ROW("Conv", 1, KILN_MAX_OPSET, 2, 3, 1, 1, F, KILN_FUSE_ANCHOR, k_conv_attrs, conv, cmp_conv),
    ROW("ConvTranspose", 1, KILN_MAX_OPSET, 2, 3, 1, 1, F, KILN_FUSE_ANCHOR, k_convt_attrs, conv_transpose, cmp_conv_transpose),
    ROW("ConvInteger", 10, KILN_MAX_OPSET, 2, 4, 1, 1, Q8, KILN_FUSE_ANCHOR, k_conv_attrs, conv_integer, cmp_conv_integer),
    ROW("QLinearConv", 10, KILN_MAX_OPSET, 8, 9, 1, 1, Q8, KILN_FUSE_ANCHOR, k_conv_attrs, qlinear_conv, cmp_qlinear_conv),
    ROW("AveragePool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_ANCHOR, k_avgpool_attrs, avg_pool, cmp_avg_pool),
    ROW("MaxPool", 1, KILN_MAX_OPSET, 1, 1, 1, 2, F | Q8, KILN_FUSE_ANCHOR, k_maxpool_attrs, max_pool, cmp_max_pool),
    ROW("LpPool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_ANCHOR, k_lppool_attrs, lp_pool, cmp_lp_pool),
    ROW("GlobalAveragePool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_no_attrs, global_avg_pool, cmp_global_avg_pool),
    ROW("GlobalMaxPool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_no_attrs, global_max_pool, cmp_global_max_pool),
    ROW("GlobalLpPool", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_p_attrs, global_lp_pool, cmp_global_lp_pool),
    ROW("BatchNormalization", 1, KILN_MAX_OPSET, 5, 5, 1, 5, F, KILN_FUSE_BROADCAST, k_bn_attrs, batch_norm, cmp_batch_norm),
    ROW("LayerNormalization", 17, KILN_MAX_OPSET, 2, 3, 1, 3, F, KILN_FUSE_REDUCE, k_ln_attrs, layer_norm, cmp_layer_norm),
    ROW("RMSNormalization", 23, KILN_MAX_OPSET, 2, 2, 1, 1, F, KILN_FUSE_REDUCE, k_ln_attrs, rms_norm, cmp_rms_norm),
    ROW("InstanceNormalization", 1, KILN_MAX_OPSET, 3, 3, 1, 1, F, KILN_FUSE_REDUCE, k_eps_attrs, instance_norm, cmp_instance_norm),
    ROW("GroupNormalization", 18, KILN_MAX_OPSET, 3, 3, 1, 1, F, KILN_FUSE_REDUCE, k_gn_attrs, group_norm, cmp_group_norm),
    ROW("LpNormalization", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_lpn_attrs, lp_norm, cmp_lp_norm),
    ROW("LRN", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_OPAQUE, k_lrn_attrs, lrn, cmp_lrn),
    ROW("MeanVarianceNormalization", 9, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_mvn_attrs, mvn, cmp_mvn),
    ROW("Softmax", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_axis_attrs, softmax, cmp_softmax),
    ROW("LogSoftmax", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_axis_attrs, log_softmax, cmp_log_softmax),
    ROW("Hardmax", 1, KILN_MAX_OPSET, 1, 1, 1, 1, F, KILN_FUSE_REDUCE, k_axis_attrs, hardmax, cmp_hardmax),
    ROW("Resize", 10, 10, 2, 2, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_resize_attrs, resize, cmp_resize),
    ROW("Resize", 11, KILN_MAX_OPSET, 1, 4, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_resize_attrs, resize, cmp_resize),
    ROW("Upsample", 7, 9, 1, 2, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_upsample_attrs, upsample, cmp_upsample),
    ROW("QuantizeLinear", 10, KILN_MAX_OPSET, 2, 3, 1, 1, F | KILN_DT(KILN_I32), KILN_FUSE_ELEMWISE, k_quant_attrs,
        quantize, cmp_quantize),
    ROW("DequantizeLinear", 10, KILN_MAX_OPSET, 2, 3, 1, 1,
        Q8 | KILN_DT(KILN_I16) | KILN_DT(KILN_U16) | KILN_DT(KILN_I32) | KILN_DT_INTS_LOWP | KILN_DT_F8 |
            KILN_DT(KILN_F4E2M1),
        KILN_FUSE_ELEMWISE, k_quant_attrs, dequantize, cmp_dequantize),
    ROW("DynamicQuantizeLinear", 11, KILN_MAX_OPSET, 1, 1, 1, 3, KILN_DT(KILN_F32), KILN_FUSE_OPAQUE, k_no_attrs,
        dyn_quantize, cmp_dynamic_quantize),
    ROW("Attention", 23, KILN_MAX_OPSET, 3, 7, 1, 4, F, KILN_FUSE_OPAQUE, k_attention_attrs, attention, cmp_attention),
    ROW("NegativeLogLikelihoodLoss", 12, KILN_MAX_OPSET, 2, 3, 1, 1, F, KILN_FUSE_OPAQUE, k_loss_attrs, nll_loss),
    ROW("SoftmaxCrossEntropyLoss", 12, KILN_MAX_OPSET, 2, 3, 1, 2, F, KILN_FUSE_OPAQUE, k_loss_attrs, sce_loss),
    ROW("GridSample", 16, KILN_MAX_OPSET, 2, 2, 1, 1, F, KILN_FUSE_OPAQUE, k_grid_attrs, grid_sample),
    ROW("AffineGrid", 20, KILN_MAX_OPSET, 2, 2, 1, 1, F, KILN_FUSE_OPAQUE, k_grid_attrs, affine_grid),
    {"FlexAttention", "ai.onnx.preview", 1, 1, 3, 3, 1, 1, F, KILN_FUSE_OPAQUE, k_flex_attrs,
     nn_infer_flex_attention, nn_ref_flex_attention},
    ROW("LinearAttention", 27, KILN_MAX_OPSET, 3, 6, 1, 2, F, KILN_FUSE_OPAQUE, k_linattn_attrs, linear_attention),
    ROW("CausalConvWithState", 27, KILN_MAX_OPSET, 2, 4, 1, 2, F, KILN_FUSE_OPAQUE, k_ccs_attrs, causal_conv),
    ROW("RotaryEmbedding", 23, KILN_MAX_OPSET, 3, 4, 1, 1, F, KILN_FUSE_OPAQUE, k_rope_attrs, rotary, cmp_rotary),
    ROW("Col2Im", 18, KILN_MAX_OPSET, 3, 3, 1, 1, KILN_DT_NUMERIC, KILN_FUSE_OPAQUE, k_col2im_attrs, col2im),
    ROW("MaxUnpool", 9, KILN_MAX_OPSET, 2, 3, 1, 1, F, KILN_FUSE_OPAQUE, k_unpool_attrs, max_unpool),
    ROW("DeformConv", 19, KILN_MAX_OPSET, 3, 5, 1, 1, F, KILN_FUSE_ANCHOR, k_deform_attrs, deform_conv),
    ROW("RoiAlign", 10, KILN_MAX_OPSET, 3, 3, 1, 1, F, KILN_FUSE_OPAQUE, k_roi_attrs, roi_align),
    ROW("RNN", 7, KILN_MAX_OPSET, 3, 6, 1, 2, F, KILN_FUSE_OPAQUE, k_rnn_attrs, rnn),
    ROW("GRU", 7, KILN_MAX_OPSET, 3, 6, 1, 2, F, KILN_FUSE_OPAQUE, k_rnn_attrs, gru),
    ROW("LSTM", 7, KILN_MAX_OPSET, 3, 8, 1, 3, F, KILN_FUSE_OPAQUE, k_rnn_attrs, lstm),
    {0},
};
