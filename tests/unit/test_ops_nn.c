/*
** test_ops_nn.c — the nn and linalg op families: values against hand-worked
** results, opset-dependent semantics, dtypes, shape inference and errors.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "op_node.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/mem.h"

static bool near(double a, double b) { return fabs(a - b) <= 1e-6 + 1e-5 * fabs(b); }

static bool all_near_f32(const kiln_tensor *t, const float *want, int count) {
    if (t->dtype != KILN_F32 || kiln_numel(t) != count) return false;
    for (int i = 0; i < count; i++)
        if (!near(((float *)t->data)[i], want[i])) {
            fprintf(stderr, "  element %d: got %.9g want %.9g\n", i, ((float *)t->data)[i], want[i]);
            return false;
        }
    return true;
}

/* ---- Conv ---- */

static void conv_padded_sums(void) {
    tnode t;
    tn_init(&t, "Conv", 11, 2, 1);
    tn_ints(&t, "pads", 4, (int64_t[]){1, 1, 1, 1});
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 3, 3}, x);
    kiln_tensor tw = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 3, 3}, w);
    const kiln_tensor *in[2] = {&tx, &tw};
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    CHECK(all_near_f32(&t.out[0], want, 9));
    tn_free(&t);
}

static void conv_groups_bias_strides(void) {
    /* two groups of one channel each; stride 2 on a 1-D signal */
    tnode t;
    tn_init(&t, "Conv", 22, 3, 1);
    tn_int(&t, "group", 2);
    tn_ints(&t, "strides", 1, (int64_t[]){2});
    float x[10] = {1, 2, 3, 4, 5, 10, 20, 30, 40, 50}, w[4] = {1, -1, 2, 0}, b[2] = {0.5f, -1};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 5}, x);
    kiln_tensor tw = tn_view(KILN_F32, 3, (int64_t[]){2, 1, 2}, w);
    kiln_tensor tb = tn_view(KILN_F32, 1, (int64_t[]){2}, b);
    const kiln_tensor *in[3] = {&tx, &tw, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){1, 2, 2}));
    float want[4] = {-0.5f, -0.5f, 19, 59};
    CHECK(all_near_f32(&t.out[0], want, 4));
    tn_free(&t);
}

static void conv_auto_pad_same_lower_vs_upper(void) {
    /* input 4, kernel 2: one pad, before (SAME_LOWER) or after (SAME_UPPER) */
    const char *modes[2] = {"SAME_LOWER", "SAME_UPPER"};
    float want[2][4] = {{1, 3, 5, 7}, {3, 5, 7, 4}};
    for (int m = 0; m < 2; m++) {
        tnode t;
        tn_init(&t, "Conv", 11, 2, 1);
        tn_string(&t, "auto_pad", modes[m]);
        float x[4] = {1, 2, 3, 4}, w[2] = {1, 1};
        kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 4}, x);
        kiln_tensor tw = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 2}, w);
        const kiln_tensor *in[2] = {&tx, &tw};
        CHECK(tn_run(&t, in) == KILN_OK);
        CHECK(all_near_f32(&t.out[0], want[m], 4));
        tn_free(&t);
    }
}

static void conv_f16_rounds_once(void) {
    tnode t;
    tn_init(&t, "Conv", 11, 2, 1);
    uint16_t x[3], w[1];
    for (int i = 0; i < 3; i++) x[i] = kiln_f32_to_f16(1.0f + (float)i / 3);
    w[0] = kiln_f32_to_f16(3.0f);
    kiln_tensor tx = tn_view(KILN_F16, 3, (int64_t[]){1, 1, 3}, x);
    kiln_tensor tw = tn_view(KILN_F16, 3, (int64_t[]){1, 1, 1}, w);
    const kiln_tensor *in[2] = {&tx, &tw};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_F16);
    for (int i = 0; i < 3; i++) {
        float want = kiln_f16_to_f32(kiln_f32_to_f16(kiln_f16_to_f32(x[i]) * 3.0f));
        CHECK(kiln_f16_to_f32(((uint16_t *)t.out[0].data)[i]) == want);
    }
    tn_free(&t);
}

static void conv_errors_name_the_node(void) {
    tnode t;
    tn_init(&t, "Conv", 11, 2, 1);
    float x[8] = {0}, w[4] = {0};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 4}, x);
    kiln_tensor tw = tn_view(KILN_F32, 3, (int64_t[]){1, 3, 1}, w); /* 3 input channels, X has 2 */
    const kiln_tensor *in[2] = {&tx, &tw};
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE);
    CHECK(tn_names_node(&t));
    tn_free(&t);

    tn_init(&t, "Conv", 11, 2, 1);
    tn_ints(&t, "pads", 2, (int64_t[]){0, 0}); /* needs 2 per spatial dim: fine */
    tn_ints(&t, "strides", 1, (int64_t[]){0});
    kiln_tensor tw2 = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 1}, w);
    const kiln_tensor *in2[2] = {&tx, &tw2};
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

static void conv_transpose_output_shape(void) {
    /* [1,2,3] * [1,1] scattered with stride 1 is [1,3,5,3]; output_shape 5 adds a zero */
    static int64_t shape5[1] = {5};
    for (int with_shape = 0; with_shape < 2; with_shape++) {
        tnode t;
        tn_init(&t, "ConvTranspose", 11, 2, 1);
        if (with_shape) tn_ints(&t, "output_shape", 1, shape5);
        float x[3] = {1, 2, 3}, w[2] = {1, 1};
        kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 3}, x);
        kiln_tensor tw = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 2}, w);
        const kiln_tensor *in[2] = {&tx, &tw};
        kiln_status st = tn_run(&t, in);
        CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(t.ctx));
        float want[5] = {1, 3, 5, 3, 0};
        CHECK(all_near_f32(&t.out[0], want, with_shape ? 5 : 4));
        tn_free(&t);
    }
}

/* ---- pooling ---- */

static void maxpool_indices_and_ceil(void) {
    tnode t;
    tn_init(&t, "MaxPool", 12, 1, 2);
    tn_ints(&t, "kernel_shape", 2, (int64_t[]){2, 2});
    tn_ints(&t, "strides", 2, (int64_t[]){2, 2});
    tn_int(&t, "ceil_mode", 1);
    float x[9] = {1, 9, 2, 3, 4, 8, 7, 5, 6};
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 3, 3}, x);
    const kiln_tensor *in[1] = {&tx};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 4, (int64_t[]){1, 1, 2, 2}));
    float want[4] = {9, 8, 7, 6};
    CHECK(all_near_f32(&t.out[0], want, 4));
    int64_t idx[4] = {1, 5, 6, 8};
    CHECK(t.out[1].dtype == KILN_I64 && memcmp(t.out[1].data, idx, sizeof idx) == 0);
    tn_free(&t);
}

static void avgpool_count_include_pad(void) {
    for (int inc = 0; inc < 2; inc++) {
        tnode t;
        tn_init(&t, "AveragePool", 11, 1, 1);
        tn_ints(&t, "kernel_shape", 1, (int64_t[]){3});
        tn_ints(&t, "pads", 2, (int64_t[]){1, 1});
        tn_int(&t, "count_include_pad", inc);
        float x[3] = {3, 6, 9};
        kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 3}, x);
        const kiln_tensor *in[1] = {&tx};
        CHECK(tn_run(&t, in) == KILN_OK);
        float want[2][3] = {{4.5f, 6, 7.5f}, {3, 6, 5}};
        CHECK(all_near_f32(&t.out[0], want[inc], 3));
        tn_free(&t);
    }
}

static void global_average_pool(void) {
    tnode t;
    tn_init(&t, "GlobalAveragePool", 11, 1, 1);
    float x[8] = {1, 2, 3, 4, 10, 20, 30, 40};
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 2, 2, 2}, x);
    const kiln_tensor *in[1] = {&tx};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 4, (int64_t[]){1, 2, 1, 1}));
    float want[2] = {2.5f, 25};
    CHECK(all_near_f32(&t.out[0], want, 2));
    tn_free(&t);
}

static void pool_kernel_larger_than_input_fails(void) {
    tnode t;
    tn_init(&t, "MaxPool", 12, 1, 1);
    tn_ints(&t, "kernel_shape", 1, (int64_t[]){5});
    float x[3] = {0};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 3}, x);
    const kiln_tensor *in[1] = {&tx};
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

/* ---- normalization ---- */

static void batchnorm_inference_and_training(void) {
    float x[4] = {1, 3, 10, 30}, sc[2] = {1, 2}, b[2] = {0, 1}, mean[2] = {2, 20}, var[2] = {4, 100};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 2}, x);
    kiln_tensor ts = tn_view(KILN_F32, 1, (int64_t[]){2}, sc), tb = tn_view(KILN_F32, 1, (int64_t[]){2}, b);
    kiln_tensor tm = tn_view(KILN_F32, 1, (int64_t[]){2}, mean), tv = tn_view(KILN_F32, 1, (int64_t[]){2}, var);
    const kiln_tensor *in[5] = {&tx, &ts, &tb, &tm, &tv};
    tnode t;
    tn_init(&t, "BatchNormalization", 15, 5, 1);
    tn_float(&t, "epsilon", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[4] = {-0.5f, 0.5f, -1, 3};
    CHECK(all_near_f32(&t.out[0], want, 4));
    tn_free(&t);

    /* training: batch mean 2 / 20, variance 1 / 100; running stats blend with momentum 0.5 */
    tn_init(&t, "BatchNormalization", 15, 5, 3);
    tn_float(&t, "epsilon", 0);
    tn_float(&t, "momentum", 0.5);
    tn_int(&t, "training_mode", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want_y[4] = {-1, 1, -1, 3}, want_m[2] = {2, 20}, want_v[2] = {2.5f, 100};
    CHECK(all_near_f32(&t.out[0], want_y, 4));
    CHECK(all_near_f32(&t.out[1], want_m, 2));
    CHECK(all_near_f32(&t.out[2], want_v, 2));
    tn_free(&t);

    tn_init(&t, "BatchNormalization", 9, 5, 3); /* old training outputs: explicit error */
    CHECK(tn_run(&t, in) == KILN_ERR_UNSUPPORTED);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

static void layernorm_outputs_and_bad_axis(void) {
    float x[4] = {1, 3, 2, 6}, s[2] = {1, 1};
    kiln_tensor tx = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, x), ts = tn_view(KILN_F32, 1, (int64_t[]){2}, s);
    const kiln_tensor *in[2] = {&tx, &ts};
    tnode t;
    tn_init(&t, "LayerNormalization", 17, 2, 3);
    tn_float(&t, "epsilon", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[4] = {-1, 1, -1, 1}, mean[2] = {2, 4}, inv[2] = {1, 0.5f};
    CHECK(all_near_f32(&t.out[0], want, 4));
    CHECK(tn_dims_are(&t.out[1], 2, (int64_t[]){2, 1}));
    CHECK(all_near_f32(&t.out[1], mean, 2));
    CHECK(all_near_f32(&t.out[2], inv, 2));
    tn_free(&t);

    tn_init(&t, "LayerNormalization", 17, 2, 1);
    tn_int(&t, "axis", 2);
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

static void softmax_opset_semantics(void) {
    /* opset 11 normalizes whole rows of the 2-D coercion at axis 1; opset 13 only along axis 1 */
    float x[4] = {0, 0, 0, 0};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 2}, x);
    const kiln_tensor *in[1] = {&tx};
    tnode t;
    tn_init(&t, "Softmax", 11, 1, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want11[4] = {0.25f, 0.25f, 0.25f, 0.25f};
    CHECK(all_near_f32(&t.out[0], want11, 4));
    tn_free(&t);
    tn_init(&t, "Softmax", 13, 1, 1);
    tn_int(&t, "axis", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want13[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    CHECK(all_near_f32(&t.out[0], want13, 4));
    tn_free(&t);

    float y[3] = {1, 3, 3};
    kiln_tensor ty = tn_view(KILN_F32, 1, (int64_t[]){3}, y);
    const kiln_tensor *in2[1] = {&ty};
    tn_init(&t, "Hardmax", 13, 1, 1);
    CHECK(tn_run(&t, in2) == KILN_OK);
    float want_h[3] = {0, 1, 0}; /* the first maximum */
    CHECK(all_near_f32(&t.out[0], want_h, 3));
    tn_free(&t);
    tn_init(&t, "LogSoftmax", 13, 1, 1);
    tn_int(&t, "axis", 3);
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    tn_free(&t);
}

/* ---- matrix products ---- */

static void gemm_transposes_and_bias(void) {
    tnode t;
    tn_init(&t, "Gemm", 13, 3, 1);
    tn_int(&t, "transA", 1);
    tn_int(&t, "transB", 1);
    tn_float(&t, "alpha", 2);
    tn_float(&t, "beta", 0.5);
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[2] = {10, 20}; /* A^T = [[1,3],[2,4]] */
    kiln_tensor ta = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, a), tb = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, b);
    kiln_tensor tc = tn_view(KILN_F32, 1, (int64_t[]){2}, c);
    const kiln_tensor *in[3] = {&ta, &tb, &tc};
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[4] = {7, 16, 9, 18};
    CHECK(all_near_f32(&t.out[0], want, 4));
    tn_free(&t);

    tn_init(&t, "Gemm", 13, 3, 1);
    kiln_tensor bad_c = tn_view(KILN_F32, 1, (int64_t[]){3}, c);
    const kiln_tensor *in2[3] = {&ta, &tb, &bad_c};
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

static void matmul_broadcast_and_vectors(void) {
    tnode t;
    tn_init(&t, "MatMul", 13, 2, 1);
    float a[2] = {1, 2}, b[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    kiln_tensor ta = tn_view(KILN_F32, 1, (int64_t[]){2}, a), tb = tn_view(KILN_F32, 3, (int64_t[]){2, 2, 2}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){2, 2}));
    float want[4] = {7, 10, 19, 22};
    CHECK(all_near_f32(&t.out[0], want, 4));
    tn_free(&t);

    tn_init(&t, "MatMul", 13, 2, 1);
    kiln_tensor tb2 = tn_view(KILN_F32, 2, (int64_t[]){3, 2}, b);
    const kiln_tensor *in2[2] = {&ta, &tb2};
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

static void matmul_int64_stays_exact(void) {
    tnode t;
    tn_init(&t, "MatMul", 13, 2, 1);
    int64_t a[2] = {((int64_t)1 << 53) + 1, 1}, b[2] = {1, 1};
    kiln_tensor ta = tn_view(KILN_I64, 2, (int64_t[]){1, 2}, a), tb = tn_view(KILN_I64, 2, (int64_t[]){2, 1}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_I64 && ((int64_t *)t.out[0].data)[0] == ((int64_t)1 << 53) + 2);
    tn_free(&t);
}

static void einsum_explicit_and_implicit(void) {
    float a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8};
    kiln_tensor ta = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, a), tb = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    tnode t;
    tn_init(&t, "Einsum", 12, 2, 1);
    tn_string(&t, "equation", "ij, jk -> ik");
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[4] = {19, 22, 43, 50};
    CHECK(all_near_f32(&t.out[0], want, 4));
    tn_free(&t);

    tn_init(&t, "Einsum", 12, 1, 1);
    tn_string(&t, "equation", "ii"); /* implicit output: the trace, a scalar */
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].rank == 0);
    float tr[1] = {5};
    CHECK(all_near_f32(&t.out[0], tr, 1));
    tn_free(&t);

    tn_init(&t, "Einsum", 12, 2, 1);
    tn_string(&t, "equation", "ij,jk->iq");
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

/* ---- Resize ---- */

static void resize_nearest_and_linear(void) {
    float x[4] = {1, 2, 3, 4};
    int64_t sizes[4] = {1, 1, 2, 4};
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 2, 2}, x);
    kiln_tensor tsz = tn_view(KILN_I64, 1, (int64_t[]){4}, sizes);
    const kiln_tensor *in[4] = {&tx, NULL, NULL, &tsz};
    tnode t;
    tn_init(&t, "Resize", 13, 4, 1);
    t.n->inputs[1] = t.n->inputs[2] = NULL;
    tn_string(&t, "coordinate_transformation_mode", "asymmetric");
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[8] = {1, 1, 2, 2, 3, 3, 4, 4};
    CHECK(all_near_f32(&t.out[0], want, 8));
    tn_free(&t);

    tn_init(&t, "Resize", 13, 4, 1);
    t.n->inputs[1] = t.n->inputs[2] = NULL;
    tn_string(&t, "mode", "linear");
    tn_string(&t, "coordinate_transformation_mode", "align_corners");
    CHECK(tn_run(&t, in) == KILN_OK);
    float want_l[8] = {1, 4.0f / 3, 5.0f / 3, 2, 3, 10.0f / 3, 11.0f / 3, 4};
    CHECK(all_near_f32(&t.out[0], want_l, 8));
    tn_free(&t);
}

static void resize_infer_needs_sizes(void) {
    tnode t;
    tn_init(&t, "Resize", 13, 4, 1);
    t.n->inputs[1] = t.n->inputs[2] = NULL;
    CHECK(gir_bind_op(t.ctx, t.n) == KILN_OK);
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 2, 2}, NULL);
    kiln_tensor tsz = tn_view(KILN_I64, 1, (int64_t[]){4}, NULL); /* not a constant */
    const kiln_tensor *in[4] = {&tx, NULL, NULL, &tsz};
    kiln_tensor out[1];
    CHECK(t.n->op->infer(t.ctx, t.n, in, out) == KILN_ERR_DYNAMIC);
    tn_free(&t);
}

/* ---- quantization ---- */

static void quantize_rounds_half_to_even(void) {
    float x[4] = {0.5f, 1.5f, 2.5f, -300};
    float scale = 1;
    int8_t zp = 0;
    kiln_tensor tx = tn_view(KILN_F32, 1, (int64_t[]){4}, x), ts = tn_view(KILN_F32, 0, NULL, &scale);
    kiln_tensor tz = tn_view(KILN_I8, 0, NULL, &zp);
    const kiln_tensor *in[3] = {&tx, &ts, &tz};
    tnode t;
    tn_init(&t, "QuantizeLinear", 13, 3, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    int8_t want[4] = {0, 2, 2, -128};
    CHECK(t.out[0].dtype == KILN_I8 && memcmp(t.out[0].data, want, 4) == 0);
    tn_free(&t);

    uint8_t q[2] = {10, 250}, qz = 10;
    float s2 = 0.5f;
    kiln_tensor tq = tn_view(KILN_U8, 1, (int64_t[]){2}, q), ts2 = tn_view(KILN_F32, 0, NULL, &s2);
    kiln_tensor tqz = tn_view(KILN_U8, 0, NULL, &qz);
    const kiln_tensor *in2[3] = {&tq, &ts2, &tqz};
    tn_init(&t, "DequantizeLinear", 13, 3, 1);
    CHECK(tn_run(&t, in2) == KILN_OK);
    float want_d[2] = {0, 120};
    CHECK(all_near_f32(&t.out[0], want_d, 2));
    tn_free(&t);
}

/* ---- Attention ---- */

static void attention_causal_two_keys(void) {
    /* Q, K: one head, two positions, head size 1; causal masks the second key of the first query */
    float q[2] = {1, 1}, k[2] = {0, 0}, v[2] = {10, 20};
    int64_t dims[4] = {1, 1, 2, 1};
    kiln_tensor tq = tn_view(KILN_F32, 4, dims, q), tk = tn_view(KILN_F32, 4, dims, k), tv = tn_view(KILN_F32, 4, dims, v);
    const kiln_tensor *in[3] = {&tq, &tk, &tv};
    tnode t;
    tn_init(&t, "Attention", 23, 3, 1);
    tn_int(&t, "is_causal", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[2] = {10, 15};
    CHECK(all_near_f32(&t.out[0], want, 2));
    tn_free(&t);
}


/* ---- losses ---- */

static void sce_loss_mean_skips_ignored(void) {
    /* logits equal: every class has log-probability -log(3); the ignored target counts nothing */
    float x[6] = {0, 0, 0, 5, 5, 5};
    int64_t tgt[2] = {1, -1};
    kiln_tensor tx = tn_view(KILN_F32, 2, (int64_t[]){2, 3}, x), tt = tn_view(KILN_I64, 1, (int64_t[]){2}, tgt);
    const kiln_tensor *in[2] = {&tx, &tt};
    tnode t;
    tn_init(&t, "SoftmaxCrossEntropyLoss", 13, 2, 2);
    tn_int(&t, "ignore_index", -1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[1] = {(float)log(3.0)};
    CHECK(t.out[0].rank == 0 && all_near_f32(&t.out[0], want, 1));
    CHECK(tn_dims_are(&t.out[1], 2, (int64_t[]){2, 3}));
    tn_free(&t);

    int64_t bad[2] = {3, 0};
    kiln_tensor tb = tn_view(KILN_I64, 1, (int64_t[]){2}, bad);
    const kiln_tensor *in2[2] = {&tx, &tb};
    tn_init(&t, "NegativeLogLikelihoodLoss", 13, 2, 1);
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

/* ---- sampling ---- */

static void grid_sample_identity_grid(void) {
    /* with align_corners, the corners -1 and 1 are the first and last pixels */
    float x[4] = {1, 2, 3, 4}, g[8] = {-1, -1, 1, -1, -1, 1, 1, 1};
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 2, 2}, x);
    kiln_tensor tg = tn_view(KILN_F32, 4, (int64_t[]){1, 2, 2, 2}, g);
    const kiln_tensor *in[2] = {&tx, &tg};
    tnode t;
    tn_init(&t, "GridSample", 20, 2, 1);
    tn_int(&t, "align_corners", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(all_near_f32(&t.out[0], x, 4));
    tn_free(&t);
}

static void roi_align_constant_image(void) {
    float x[16], rois[4] = {0, 0, 3, 3};
    int64_t bi[1] = {0};
    for (int i = 0; i < 16; i++) x[i] = 2.5f;
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 4, 4}, x), tr = tn_view(KILN_F32, 2, (int64_t[]){1, 4}, rois);
    kiln_tensor tb = tn_view(KILN_I64, 1, (int64_t[]){1}, bi);
    const kiln_tensor *in[3] = {&tx, &tr, &tb};
    tnode t;
    tn_init(&t, "RoiAlign", 16, 3, 1);
    tn_int(&t, "output_height", 2);
    tn_int(&t, "output_width", 2);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[4] = {2.5f, 2.5f, 2.5f, 2.5f};
    CHECK(all_near_f32(&t.out[0], want, 4));
    tn_free(&t);
}

static void col2im_sums_overlaps(void) {
    /* 1-D image of 3 from blocks of 2 at stride 1: the middle pixel gets two values */
    float cols[4] = {1, 10, 2, 20}; /* [N=1, C*K=2, L=2]: kernel tap 0 then tap 1 */
    int64_t image[1] = {3}, block[1] = {2};
    kiln_tensor tc = tn_view(KILN_F32, 3, (int64_t[]){1, 2, 2}, cols);
    kiln_tensor ti = tn_view(KILN_I64, 1, (int64_t[]){1}, image), tb = tn_view(KILN_I64, 1, (int64_t[]){1}, block);
    const kiln_tensor *in[3] = {&tc, &ti, &tb};
    tnode t;
    tn_init(&t, "Col2Im", 18, 3, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[3] = {1, 12, 20};
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){1, 1, 3}));
    CHECK(all_near_f32(&t.out[0], want, 3));
    tn_free(&t);
}

static void rotary_quarter_turn(void) {
    /* cos 0, sin 1 turns (x1, x2) into (-x2, x1) */
    float x[2] = {3, 4}, c[1] = {0}, sn[1] = {1};
    kiln_tensor tx = tn_view(KILN_F32, 4, (int64_t[]){1, 1, 1, 2}, x);
    kiln_tensor tc = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 1}, c), ts = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 1}, sn);
    const kiln_tensor *in[3] = {&tx, &tc, &ts};
    tnode t;
    tn_init(&t, "RotaryEmbedding", 23, 3, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want[2] = {-4, 3};
    CHECK(all_near_f32(&t.out[0], want, 2));
    tn_free(&t);
}

/* ---- recurrent ---- */

static void rnn_runs_and_masks_short_sequences(void) {
    /* hidden 1, W = 1, R = 0: h_t = tanh(x_t); batch entry 1 is one step long */
    float x[4] = {0.5f, 1, 2, 3}, w[1] = {1}, r[1] = {0};
    int32_t lens[2] = {2, 1};
    kiln_tensor tx = tn_view(KILN_F32, 3, (int64_t[]){2, 2, 1}, x);
    kiln_tensor tw = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 1}, w), tr = tn_view(KILN_F32, 3, (int64_t[]){1, 1, 1}, r);
    kiln_tensor tl = tn_view(KILN_I32, 1, (int64_t[]){2}, lens);
    const kiln_tensor *in[5] = {&tx, &tw, &tr, NULL, &tl};
    tnode t;
    tn_init(&t, "RNN", 14, 5, 2);
    t.n->inputs[3] = NULL;
    tn_int(&t, "hidden_size", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    float want_y[4] = {tanhf(0.5f), tanhf(1), tanhf(2), 0}, want_h[2] = {tanhf(2), tanhf(1)};
    CHECK(tn_dims_are(&t.out[0], 4, (int64_t[]){2, 1, 2, 1}));
    CHECK(all_near_f32(&t.out[0], want_y, 4));
    CHECK(all_near_f32(&t.out[1], want_h, 2));
    tn_free(&t);

    tn_init(&t, "LSTM", 14, 3, 1);
    tn_int(&t, "hidden_size", 1);
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE); /* LSTM needs 4 gates in W */
    CHECK(tn_names_node(&t));
    tn_free(&t);
}

static void qlinear_matmul_rescales(void) {
    uint8_t a[2] = {12, 14}, b[2] = {3, 5}, az = 10, bz = 1, yz = 100;
    float as = 0.5f, bs = 2, ys = 0.25f;
    kiln_tensor ta = tn_view(KILN_U8, 2, (int64_t[]){1, 2}, a), tb = tn_view(KILN_U8, 2, (int64_t[]){2, 1}, b);
    kiln_tensor tas = tn_view(KILN_F32, 0, NULL, &as), tbs = tn_view(KILN_F32, 0, NULL, &bs);
    kiln_tensor tys = tn_view(KILN_F32, 0, NULL, &ys), taz = tn_view(KILN_U8, 0, NULL, &az);
    kiln_tensor tbz = tn_view(KILN_U8, 0, NULL, &bz), tyz = tn_view(KILN_U8, 0, NULL, &yz);
    const kiln_tensor *in[8] = {&ta, &tas, &taz, &tb, &tbs, &tbz, &tys, &tyz};
    tnode t;
    tn_init(&t, "QLinearMatMul", 21, 8, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    /* (2*2 + 4*4) * 0.5 * 2 / 0.25 + 100 = 180 */
    CHECK(t.out[0].dtype == KILN_U8 && ((uint8_t *)t.out[0].data)[0] == 180);
    tn_free(&t);
}

/* ---- allocation failures: every failure point gives an error, never a leak ---- */

/* Runs the node with the Nth allocation failing, N = 0, 1, ..., until it
** succeeds: every failure must be KILN_ERR_NOMEM and leave no block behind. */
static void sweep(tnode *t, const kiln_tensor *const *in) {
    CHECK(gir_bind_op(t->ctx, t->n) == KILN_OK);
    for (long k = 0; k < 1000; k++) {
        long live = kiln_mem_live();
        kiln_mem_fail_after(k);
        kiln_status s = gir_run_node(t->ctx, t->n, in, t->out);
        kiln_mem_fail_after(-1);
        if (s == KILN_OK) {
            for (int i = 0; i < t->n->n_outputs; i++) kiln_tensor_release(&t->out[i]);
            CHECK(kiln_mem_live() == live);
            return;
        }
        CHECK_MSG(s == KILN_ERR_NOMEM, "%s: %s", t->n->op_type, kiln_errmsg(t->ctx));
        CHECK_MSG(kiln_mem_live() == live, "%s leaks after failure %ld", t->n->op_type, k);
    }
    CHECK_MSG(false, "%s never succeeded", t->n->op_type);
}

static void allocation_sweeps(void) {
    static uint16_t h[64]; /* f16 zeros: every kernel converts its inputs */
    static int64_t k2[2] = {2, 2}, sizes[4] = {1, 2, 4, 4}, kshape[1] = {2};
    kiln_tensor x4 = tn_view(KILN_F16, 4, (int64_t[]){1, 2, 2, 2}, h);
    kiln_tensor w4 = tn_view(KILN_F16, 4, (int64_t[]){2, 2, 1, 1}, h);
    kiln_tensor m3 = tn_view(KILN_F16, 3, (int64_t[]){2, 2, 2}, h), v2 = tn_view(KILN_F16, 1, (int64_t[]){2}, h);
    kiln_tensor tsz = tn_view(KILN_I64, 1, (int64_t[]){4}, sizes);
    tnode t;
    tn_init(&t, "Conv", 11, 2, 1);
    sweep(&t, (const kiln_tensor *[]){&x4, &w4});
    tn_free(&t);
    tn_init(&t, "ConvTranspose", 11, 2, 1);
    sweep(&t, (const kiln_tensor *[]){&x4, &w4});
    tn_free(&t);
    tn_init(&t, "MaxPool", 12, 1, 2);
    tn_ints(&t, "kernel_shape", 2, k2);
    sweep(&t, (const kiln_tensor *[]){&x4});
    tn_free(&t);
    tn_init(&t, "Resize", 13, 4, 1);
    t.n->inputs[1] = t.n->inputs[2] = NULL;
    tn_string(&t, "mode", "cubic");
    tn_int(&t, "antialias", 1);
    sweep(&t, (const kiln_tensor *[]){&x4, NULL, NULL, &tsz});
    tn_free(&t);
    tn_init(&t, "LayerNormalization", 17, 3, 3);
    sweep(&t, (const kiln_tensor *[]){&m3, &v2, &v2});
    tn_free(&t);
    tn_init(&t, "Softmax", 13, 1, 1);
    sweep(&t, (const kiln_tensor *[]){&m3});
    tn_free(&t);
    tn_init(&t, "MatMul", 13, 2, 1);
    sweep(&t, (const kiln_tensor *[]){&m3, &m3});
    tn_free(&t);
    tn_init(&t, "Einsum", 12, 2, 1);
    tn_string(&t, "equation", "bij,bjk->bik");
    sweep(&t, (const kiln_tensor *[]){&m3, &m3});
    tn_free(&t);
    tn_init(&t, "Attention", 23, 3, 4);
    sweep(&t, (const kiln_tensor *[]){&x4, &x4, &x4});
    tn_free(&t);
    tn_init(&t, "GroupNormalization", 21, 3, 1);
    tn_int(&t, "num_groups", 1);
    sweep(&t, (const kiln_tensor *[]){&x4, &v2, &v2});
    tn_free(&t);
    tn_init(&t, "MeanVarianceNormalization", 13, 1, 1);
    sweep(&t, (const kiln_tensor *[]){&x4});
    tn_free(&t);
    kiln_tensor lw = tn_view(KILN_F16, 3, (int64_t[]){1, 8, 2}, h), lr = tn_view(KILN_F16, 3, (int64_t[]){1, 8, 2}, h);
    tn_init(&t, "LSTM", 14, 3, 3);
    tn_int(&t, "hidden_size", 2);
    sweep(&t, (const kiln_tensor *[]){&m3, &lw, &lr});
    tn_free(&t);
    kiln_tensor grid = tn_view(KILN_F16, 4, (int64_t[]){1, 2, 2, 2}, h);
    tn_init(&t, "GridSample", 20, 2, 1);
    sweep(&t, (const kiln_tensor *[]){&x4, &grid});
    tn_free(&t);
    int64_t tgt[4] = {0, 1, 0, 1};
    kiln_tensor tt = tn_view(KILN_I64, 2, (int64_t[]){1, 4}, tgt), lx = tn_view(KILN_F16, 3, (int64_t[]){1, 2, 4}, h);
    tn_init(&t, "SoftmaxCrossEntropyLoss", 13, 2, 2);
    sweep(&t, (const kiln_tensor *[]){&lx, &tt});
    tn_free(&t);
    tn_init(&t, "LpPool", 18, 1, 1);
    tn_ints(&t, "kernel_shape", 1, kshape);
    sweep(&t, (const kiln_tensor *[]){&m3});
    tn_free(&t);
}

TEST_MAIN(T(conv_padded_sums), T(conv_groups_bias_strides), T(conv_auto_pad_same_lower_vs_upper),
          T(conv_f16_rounds_once), T(conv_errors_name_the_node), T(conv_transpose_output_shape),
          T(maxpool_indices_and_ceil), T(avgpool_count_include_pad), T(global_average_pool),
          T(pool_kernel_larger_than_input_fails), T(batchnorm_inference_and_training),
          T(layernorm_outputs_and_bad_axis), T(softmax_opset_semantics), T(gemm_transposes_and_bias),
          T(matmul_broadcast_and_vectors), T(matmul_int64_stays_exact), T(einsum_explicit_and_implicit),
          T(resize_nearest_and_linear), T(resize_infer_needs_sizes), T(quantize_rounds_half_to_even),
          T(attention_causal_two_keys), T(sce_loss_mean_skips_ignored), T(grid_sample_identity_grid),
          T(roi_align_constant_image), T(col2im_sums_overlaps), T(rotary_quarter_turn),
          T(rnn_runs_and_masks_short_sequences), T(qlinear_matmul_rescales), T(allocation_sweeps))
