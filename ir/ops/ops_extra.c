/*
** ops_extra.c — the extra op family: signal processing (DFT, STFT, the
** window generators, MelWeightMatrix), NonMaxSuppression, string ops
** (StringNormalizer, StringSplit, RegexFullMatch, TfIdfVectorizer), the
** ai.onnx.ml ops LabelEncoder, ArrayFeatureExtractor, TreeEnsemble,
** TreeEnsembleRegressor and TreeEnsembleClassifier, the
** ai.onnx.preview.training optimizers, and OptionalHasElement and
** OptionalGetElement on tensors.
** Kernels live in extra_*.c.
*/
#include "compute.h"
#include "extra_ops.h"

#define ML "ai.onnx.ml"
#define TRAIN "ai.onnx.preview.training"
#define MAXV KILN_MAX_OPSET
#define OPQ KILN_FUSE_OPAQUE
/* A trailing argument, when given, is the row's compute definition. */
#define ROW(name, dom, lo, hi, imin, imax, omin, omax, dt, attrs, k, ...) \
    {name, dom, lo, hi, imin, imax, omin, omax, dt, OPQ, attrs, xo_##k##_infer, xo_##k##_ref, __VA_ARGS__}

#define F32_F64 (KILN_DT(KILN_F32) | KILN_DT(KILN_F64))
#define I32_I64 (KILN_DT(KILN_I32) | KILN_DT(KILN_I64))
#define STR KILN_DT(KILN_STRING)

static const kiln_attr_schema k_nms[] = {{"center_point_box", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_dft17[] = {{"axis", GIR_ATTR_INT, false},
                                           {"inverse", GIR_ATTR_INT, false},
                                           {"onesided", GIR_ATTR_INT, false},
                                           {NULL}};
static const kiln_attr_schema k_dft20[] = {
    {"inverse", GIR_ATTR_INT, false}, {"onesided", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_stft[] = {{"onesided", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_window[] = {
    {"output_datatype", GIR_ATTR_INT, false}, {"periodic", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_mel[] = {{"output_datatype", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_strnorm[] = {{"case_change_action", GIR_ATTR_STRING, false},
                                             {"is_case_sensitive", GIR_ATTR_INT, false},
                                             {"locale", GIR_ATTR_STRING, false},
                                             {"stopwords", GIR_ATTR_STRINGS, false},
                                             {NULL}};
static const kiln_attr_schema k_strsplit[] = {
    {"delimiter", GIR_ATTR_STRING, false}, {"maxsplit", GIR_ATTR_INT, false}, {NULL}};
static const kiln_attr_schema k_regex[] = {{"pattern", GIR_ATTR_STRING, true}, {NULL}};
static const kiln_attr_schema k_tfidf[] = {{"max_gram_length", GIR_ATTR_INT, true},
                                           {"max_skip_count", GIR_ATTR_INT, true},
                                           {"min_gram_length", GIR_ATTR_INT, true},
                                           {"mode", GIR_ATTR_STRING, true},
                                           {"ngram_counts", GIR_ATTR_INTS, true},
                                           {"ngram_indexes", GIR_ATTR_INTS, true},
                                           {"pool_int64s", GIR_ATTR_INTS, false},
                                           {"pool_strings", GIR_ATTR_STRINGS, false},
                                           {"weights", GIR_ATTR_FLOATS, false},
                                           {NULL}};
static const kiln_attr_schema k_labelenc1[] = {{"classes_strings", GIR_ATTR_STRINGS, false},
                                               {"default_int64", GIR_ATTR_INT, false},
                                               {"default_string", GIR_ATTR_STRING, false},
                                               {NULL}};
#define LABELENC2_ATTRS                                                                                  \
    {"default_float", GIR_ATTR_FLOAT, false}, {"default_int64", GIR_ATTR_INT, false},                   \
        {"default_string", GIR_ATTR_STRING, false}, {"keys_floats", GIR_ATTR_FLOATS, false},            \
        {"keys_int64s", GIR_ATTR_INTS, false}, {"keys_strings", GIR_ATTR_STRINGS, false},               \
        {"values_floats", GIR_ATTR_FLOATS, false}, {"values_int64s", GIR_ATTR_INTS, false},             \
        {"values_strings", GIR_ATTR_STRINGS, false}
static const kiln_attr_schema k_labelenc2[] = {LABELENC2_ATTRS, {NULL}};
static const kiln_attr_schema k_labelenc4[] = {LABELENC2_ATTRS,
                                               {"default_tensor", GIR_ATTR_TENSOR, false},
                                               {"keys_tensor", GIR_ATTR_TENSOR, false},
                                               {"values_tensor", GIR_ATTR_TENSOR, false},
                                               {NULL}};
static const kiln_attr_schema k_none[] = {{NULL}};
static const kiln_attr_schema k_tree[] = {{"aggregate_function", GIR_ATTR_INT, false},
                                          {"leaf_targetids", GIR_ATTR_INTS, true},
                                          {"leaf_weights", GIR_ATTR_TENSOR, true},
                                          {"membership_values", GIR_ATTR_TENSOR, false},
                                          {"n_targets", GIR_ATTR_INT, false},
                                          {"nodes_falseleafs", GIR_ATTR_INTS, true},
                                          {"nodes_falsenodeids", GIR_ATTR_INTS, true},
                                          {"nodes_featureids", GIR_ATTR_INTS, true},
                                          {"nodes_hitrates", GIR_ATTR_TENSOR, false},
                                          {"nodes_missing_value_tracks_true", GIR_ATTR_INTS, false},
                                          {"nodes_modes", GIR_ATTR_TENSOR, true},
                                          {"nodes_splits", GIR_ATTR_TENSOR, true},
                                          {"nodes_trueleafs", GIR_ATTR_INTS, true},
                                          {"nodes_truenodeids", GIR_ATTR_INTS, true},
                                          {"post_transform", GIR_ATTR_INT, false},
                                          {"tree_roots", GIR_ATTR_INTS, true},
                                          {NULL}};
#define TREE_NODE_ATTRS                                                                                 \
    {"nodes_falsenodeids", GIR_ATTR_INTS, false}, {"nodes_featureids", GIR_ATTR_INTS, false},            \
        {"nodes_hitrates", GIR_ATTR_FLOATS, false}, {"nodes_missing_value_tracks_true", GIR_ATTR_INTS, false}, \
        {"nodes_modes", GIR_ATTR_STRINGS, false}, {"nodes_nodeids", GIR_ATTR_INTS, false},                \
        {"nodes_treeids", GIR_ATTR_INTS, false}, {"nodes_truenodeids", GIR_ATTR_INTS, false},             \
        {"nodes_values", GIR_ATTR_FLOATS, false}, {"post_transform", GIR_ATTR_STRING, false},             \
        {"base_values", GIR_ATTR_FLOATS, false}
#define TREE_TENSOR_ATTRS                                                                               \
    {"base_values_as_tensor", GIR_ATTR_TENSOR, false}, {"nodes_hitrates_as_tensor", GIR_ATTR_TENSOR, false}, \
        {"nodes_values_as_tensor", GIR_ATTR_TENSOR, false}
#define TREE_REG_ATTRS                                                                                  \
    TREE_NODE_ATTRS, {"aggregate_function", GIR_ATTR_STRING, false}, {"n_targets", GIR_ATTR_INT, false}, \
        {"target_ids", GIR_ATTR_INTS, false}, {"target_nodeids", GIR_ATTR_INTS, false},                 \
        {"target_treeids", GIR_ATTR_INTS, false}, {"target_weights", GIR_ATTR_FLOATS, false}
#define TREE_CLS_ATTRS                                                                                  \
    TREE_NODE_ATTRS, {"class_ids", GIR_ATTR_INTS, false}, {"class_nodeids", GIR_ATTR_INTS, false},       \
        {"class_treeids", GIR_ATTR_INTS, false}, {"class_weights", GIR_ATTR_FLOATS, false},             \
        {"classlabels_int64s", GIR_ATTR_INTS, false}, {"classlabels_strings", GIR_ATTR_STRINGS, false}
static const kiln_attr_schema k_tree_reg1[] = {TREE_REG_ATTRS, {NULL}};
static const kiln_attr_schema k_tree_reg3[] = {
    TREE_REG_ATTRS, TREE_TENSOR_ATTRS, {"target_weights_as_tensor", GIR_ATTR_TENSOR, false}, {NULL}};
static const kiln_attr_schema k_tree_cls1[] = {TREE_CLS_ATTRS, {NULL}};
static const kiln_attr_schema k_tree_cls3[] = {
    TREE_CLS_ATTRS, TREE_TENSOR_ATTRS, {"class_weights_as_tensor", GIR_ATTR_TENSOR, false}, {NULL}};
static const kiln_attr_schema k_momentum[] = {{"alpha", GIR_ATTR_FLOAT, true},
                                              {"beta", GIR_ATTR_FLOAT, true},
                                              {"mode", GIR_ATTR_STRING, true},
                                              {"norm_coefficient", GIR_ATTR_FLOAT, true},
                                              {NULL}};
static const kiln_attr_schema k_adam[] = {{"alpha", GIR_ATTR_FLOAT, false},
                                          {"beta", GIR_ATTR_FLOAT, false},
                                          {"epsilon", GIR_ATTR_FLOAT, false},
                                          {"norm_coefficient", GIR_ATTR_FLOAT, false},
                                          {"norm_coefficient_post", GIR_ATTR_FLOAT, false},
                                          {NULL}};
static const kiln_attr_schema k_adagrad[] = {{"decay_factor", GIR_ATTR_FLOAT, false},
                                             {"epsilon", GIR_ATTR_FLOAT, false},
                                             {"norm_coefficient", GIR_ATTR_FLOAT, false},
                                             {NULL}};

const kiln_op_def kiln_ops_extra[] = {
    ROW("NonMaxSuppression", "", 10, MAXV, 2, 5, 1, 1, KILN_DT_FLOATS, k_nms, nms),
    ROW("DFT", "", 17, 19, 1, 2, 1, 1, KILN_DT_FLOATS, k_dft17, dft),
    ROW("DFT", "", 20, MAXV, 1, 3, 1, 1, KILN_DT_FLOATS, k_dft20, dft),
    ROW("STFT", "", 17, MAXV, 2, 4, 1, 1, KILN_DT_FLOATS, k_stft, stft),
    ROW("HannWindow", "", 17, MAXV, 1, 1, 1, 1, I32_I64, k_window, hann, cmp_hann_window),
    ROW("HammingWindow", "", 17, MAXV, 1, 1, 1, 1, I32_I64, k_window, hamming, cmp_hamming_window),
    ROW("BlackmanWindow", "", 17, MAXV, 1, 1, 1, 1, I32_I64, k_window, blackman, cmp_blackman_window),
    ROW("MelWeightMatrix", "", 17, MAXV, 5, 5, 1, 1, I32_I64, k_mel, mel),
    ROW("StringNormalizer", "", 10, MAXV, 1, 1, 1, 1, STR, k_strnorm, strnorm),
    ROW("StringSplit", "", 20, MAXV, 1, 1, 1, 2, STR, k_strsplit, strsplit),
    ROW("RegexFullMatch", "", 20, MAXV, 1, 1, 1, 1, STR, k_regex, regex),
    ROW("TfIdfVectorizer", "", 9, MAXV, 1, 1, 1, 1, STR | I32_I64, k_tfidf, tfidf),
    ROW("LabelEncoder", ML, 1, 1, 1, 1, 1, 1, STR | KILN_DT(KILN_I64), k_labelenc1, labelenc),
    ROW("LabelEncoder", ML, 2, 3, 1, 1, 1, 1, STR | KILN_DT(KILN_I64) | KILN_DT(KILN_F32), k_labelenc2, labelenc),
    ROW("LabelEncoder", ML, 4, MAXV, 1, 1, 1, 1, STR | I32_I64 | KILN_DT(KILN_I16) | F32_F64, k_labelenc4, labelenc),
    ROW("ArrayFeatureExtractor", ML, 1, MAXV, 2, 2, 1, 1, STR | I32_I64 | F32_F64, k_none, afe),
    ROW("TreeEnsemble", ML, 5, MAXV, 1, 1, 1, 1, F32_F64 | KILN_DT(KILN_F16), k_tree, tree),
    ROW("TreeEnsembleRegressor", ML, 1, 2, 1, 1, 1, 1, F32_F64 | I32_I64, k_tree_reg1, tree_reg),
    ROW("TreeEnsembleRegressor", ML, 3, MAXV, 1, 1, 1, 1, F32_F64 | I32_I64, k_tree_reg3, tree_reg),
    ROW("TreeEnsembleClassifier", ML, 1, 2, 1, 1, 1, 2, F32_F64 | I32_I64, k_tree_cls1, tree_cls),
    ROW("TreeEnsembleClassifier", ML, 3, MAXV, 1, 1, 1, 2, F32_F64 | I32_I64, k_tree_cls3, tree_cls),
    ROW("Momentum", TRAIN, 1, MAXV, 5, XO_VARIADIC, 2, XO_VARIADIC, F32_F64, k_momentum, momentum),
    ROW("Adam", TRAIN, 1, MAXV, 6, XO_VARIADIC, 3, XO_VARIADIC, F32_F64, k_adam, adam),
    ROW("Adagrad", TRAIN, 1, MAXV, 5, XO_VARIADIC, 2, XO_VARIADIC, F32_F64, k_adagrad, adagrad),
    ROW("OptionalHasElement", "", 15, 17, 1, 1, 1, 1, KILN_DT_ALL, k_none, has_elem),
    ROW("OptionalHasElement", "", 18, MAXV, 0, 1, 1, 1, KILN_DT_ALL, k_none, has_elem),
    ROW("OptionalGetElement", "", 15, MAXV, 1, 1, 1, 1, KILN_DT_ALL, k_none, get_elem),
    {0},
};
