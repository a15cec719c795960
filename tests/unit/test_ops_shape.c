/*
** test_ops_shape.c — the shape, tensor (data movement) and reduce op
** families: values, old attribute forms vs newer inputs, clamping and empty
** cases, strings, static inference and error paths.
*/
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "op_node.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/mem.h"

/* The first n values of t (all of them when t has n). */
static bool f32_are(const kiln_tensor *t, int n, const float *v) {
    if (t->dtype != KILN_F32 || kiln_numel(t) < n) return false;
    for (int i = 0; i < n; i++)
        if (fabsf(((const float *)t->data)[i] - v[i]) > 1e-5f * (1 + fabsf(v[i]))) return false;
    return true;
}

static bool i64_are(const kiln_tensor *t, int n, const int64_t *v) {
    if (t->dtype != KILN_I64 || kiln_numel(t) != n) return false;
    return n == 0 || memcmp(t->data, v, sizeof(int64_t) * (size_t)n) == 0;
}

static const float k_iota[24] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23};

/* ---- shape family ---- */

static void reshape_zero_and_minus_one(void) {
    tnode t;
    tn_init(&t, "Reshape", 14, 2, 1);
    int64_t shape[3] = {0, -1, 2};
    kiln_tensor x = tn_view(KILN_F32, 3, (int64_t[]){2, 3, 4}, k_iota);
    kiln_tensor s = tn_view(KILN_I64, 1, (int64_t[]){3}, shape);
    const kiln_tensor *in[2] = {&x, &s};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){2, 6, 2}));
    CHECK(f32_are(&t.out[0], 24, k_iota));
    tn_free(&t);
}

static void reshape_allowzero_and_errors(void) {
    tnode t;
    tn_init(&t, "Reshape", 14, 2, 1);
    tn_int(&t, "allowzero", 1);
    int64_t shape[2] = {0, 3};
    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){3, 0}, NULL);
    kiln_tensor s = tn_view(KILN_I64, 1, (int64_t[]){2}, shape);
    const kiln_tensor *in[2] = {&x, &s};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){0, 3}));
    tn_free(&t);

    tn_init(&t, "Reshape", 14, 2, 1);
    int64_t two_holes[2] = {-1, -1};
    kiln_tensor y = tn_view(KILN_F32, 1, (int64_t[]){4}, k_iota);
    kiln_tensor s2 = tn_view(KILN_I64, 1, (int64_t[]){2}, two_holes);
    const kiln_tensor *in2[2] = {&y, &s2};
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    CHECK(tn_errmsg_has(&t, "node_under_test") && tn_errmsg_has(&t, "Reshape"));
    tn_free(&t);

    tn_init(&t, "Reshape", 14, 2, 1);
    int64_t wrong[1] = {5};
    kiln_tensor s3 = tn_view(KILN_I64, 1, (int64_t[]){1}, wrong);
    const kiln_tensor *in3[2] = {&y, &s3};
    CHECK(tn_run(&t, in3) == KILN_ERR_SHAPE);
    tn_free(&t);
}

static void reshape_static_inference_is_dynamic(void) {
    tnode t;
    tn_init(&t, "Reshape", 14, 2, 1);
    kiln_tensor x = tn_view(KILN_F32, 1, (int64_t[]){4}, NULL);
    kiln_tensor s = tn_view(KILN_I64, 1, (int64_t[]){2}, NULL);
    const kiln_tensor *in[2] = {&x, &s};
    CHECK(tn_infer(&t, in) == KILN_ERR_DYNAMIC);
    tn_free(&t);

    /* the old attribute form needs no data */
    tn_init(&t, "Reshape", 4, 1, 1);
    tn_ints_copy(&t, "shape", 2, (int64_t[]){2, 2});
    const kiln_tensor *in1[1] = {&x};
    CHECK(tn_infer(&t, in1) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){2, 2}));
    tn_free(&t);
}

static void flatten_axes(void) {
    tnode t;
    tn_init(&t, "Flatten", 13, 1, 1);
    tn_int(&t, "axis", -1);
    kiln_tensor x = tn_view(KILN_F32, 3, (int64_t[]){2, 3, 4}, k_iota);
    const kiln_tensor *in[1] = {&x};
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){6, 4}));
    tn_free(&t);

    tn_init(&t, "Flatten", 13, 1, 1);
    tn_int(&t, "axis", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){1, 24}));
    tn_free(&t);

    tn_init(&t, "Flatten", 13, 1, 1);
    tn_int(&t, "axis", 4);
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    tn_free(&t);
}

static void squeeze_unsqueeze_forms(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 3, (int64_t[]){1, 3, 1}, k_iota);
    const kiln_tensor *in1[1] = {&x};
    tn_init(&t, "Squeeze", 11, 1, 1); /* axes as an attribute */
    tn_ints_copy(&t, "axes", 1, (int64_t[]){-1});
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){1, 3}));
    tn_free(&t);

    tn_init(&t, "Squeeze", 13, 1, 1); /* no axes: every 1 goes */
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 1, (int64_t[]){3}));
    tn_free(&t);

    int64_t bad_axis[1] = {1};
    kiln_tensor ax = tn_view(KILN_I64, 1, (int64_t[]){1}, bad_axis);
    const kiln_tensor *in2[2] = {&x, &ax};
    tn_init(&t, "Squeeze", 13, 2, 1);
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    CHECK(tn_errmsg_has(&t, "Squeeze"));
    tn_free(&t);

    int64_t axes[2] = {3, 0};
    kiln_tensor ax2 = tn_view(KILN_I64, 1, (int64_t[]){2}, axes);
    const kiln_tensor *in3[2] = {&x, &ax2};
    tn_init(&t, "Unsqueeze", 13, 2, 1);
    CHECK(tn_run(&t, in3) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 5, (int64_t[]){1, 1, 3, 1, 1}));
    tn_free(&t);

    tn_init(&t, "Unsqueeze", 11, 1, 1);
    tn_ints_copy(&t, "axes", 2, (int64_t[]){1, 1});
    CHECK(tn_run(&t, in1) == KILN_ERR_INVALID); /* duplicate axis */
    tn_free(&t);
}

static void shape_start_end_and_size(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 4, (int64_t[]){2, 3, 4, 5}, NULL);
    const kiln_tensor *in[1] = {&x};
    tn_init(&t, "Shape", 15, 1, 1);
    tn_int(&t, "start", -3);
    tn_int(&t, "end", 100);
    CHECK(tn_infer(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 1, (int64_t[]){3}));
    tn_free(&t);

    float data[120] = {0};
    x.data = data;
    tn_init(&t, "Shape", 15, 1, 1);
    tn_int(&t, "start", 1);
    tn_int(&t, "end", -1);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(i64_are(&t.out[0], 2, (int64_t[]){3, 4}));
    tn_free(&t);

    tn_init(&t, "Size", 13, 1, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].rank == 0 && *(int64_t *)t.out[0].data == 120);
    tn_free(&t);
}

static void constant_forms(void) {
    tnode t;
    const kiln_tensor *none[1] = {NULL};
    tn_init(&t, "Constant", 13, 0, 1);
    tn_ints_copy(&t, "value_ints", 3, (int64_t[]){7, -1, INT64_MAX});
    CHECK(tn_run(&t, none) == KILN_OK);
    CHECK(i64_are(&t.out[0], 3, (int64_t[]){7, -1, INT64_MAX}));
    tn_free(&t);

    tn_init(&t, "Constant", 13, 0, 1);
    tn_string(&t, "value_string", "kiln");
    CHECK(tn_run(&t, none) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_STRING && !strcmp(((char **)t.out[0].data)[0], "kiln"));
    tn_free(&t);

    tn_init(&t, "Constant", 13, 0, 1);
    float v[2] = {1.5f, -2};
    kiln_tensor *vt = kiln_arena_alloc(t.g->arena, sizeof *vt);
    *vt = tn_view(KILN_F32, 1, (int64_t[]){2}, v);
    tn_attr(&t, "value", GIR_ATTR_TENSOR)->t = vt;
    CHECK(tn_run(&t, none) == KILN_OK);
    CHECK(f32_are(&t.out[0], 2, v));
    tn_free(&t);

    tn_init(&t, "Constant", 13, 0, 1);
    tn_attr(&t, "sparse_value", GIR_ATTR_TENSOR);
    CHECK(tn_run(&t, none) == KILN_ERR_UNSUPPORTED);
    CHECK(tn_errmsg_has(&t, "sparse"));
    tn_free(&t);
}

static void constant_of_shape_and_range(void) {
    tnode t;
    int64_t shape[2] = {2, 3};
    kiln_tensor s = tn_view(KILN_I64, 1, (int64_t[]){2}, shape);
    const kiln_tensor *in[1] = {&s};
    tn_init(&t, "ConstantOfShape", 20, 1, 1);
    int32_t seven = 7;
    kiln_tensor *vt = kiln_arena_alloc(t.g->arena, sizeof *vt);
    *vt = tn_view(KILN_I32, 1, (int64_t[]){1}, &seven);
    tn_attr(&t, "value", GIR_ATTR_TENSOR)->t = vt;
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].dtype == KILN_I32 && tn_dims_are(&t.out[0], 2, shape));
    CHECK(((int32_t *)t.out[0].data)[5] == 7);
    tn_free(&t);

    /* int64 ranges stay exact beyond 2^53 */
    int64_t a = (INT64_C(1) << 60) + 1, b = (INT64_C(1) << 60) + 8, d = 3;
    kiln_tensor ta = tn_view(KILN_I64, 0, NULL, &a), tb = tn_view(KILN_I64, 0, NULL, &b),
                td = tn_view(KILN_I64, 0, NULL, &d);
    const kiln_tensor *rin[3] = {&ta, &tb, &td};
    tn_init(&t, "Range", 11, 3, 1);
    CHECK(tn_run(&t, rin) == KILN_OK);
    CHECK(i64_are(&t.out[0], 3, (int64_t[]){a, a + 3, a + 6}));
    tn_free(&t);

    float fa = 10, fb = 4, fd = -3;
    kiln_tensor tfa = tn_view(KILN_F32, 0, NULL, &fa), tfb = tn_view(KILN_F32, 0, NULL, &fb),
                tfd = tn_view(KILN_F32, 0, NULL, &fd);
    const kiln_tensor *fin[3] = {&tfa, &tfb, &tfd};
    tn_init(&t, "Range", 11, 3, 1);
    CHECK(tn_run(&t, fin) == KILN_OK);
    CHECK(f32_are(&t.out[0], 2, (float[]){10, 7}));
    tn_free(&t);

    kiln_tensor unknown = tn_view(KILN_F32, 0, NULL, NULL);
    const kiln_tensor *din[3] = {&tfa, &unknown, &tfd};
    tn_init(&t, "Range", 11, 3, 1);
    CHECK(tn_infer(&t, din) == KILN_ERR_DYNAMIC);
    tn_free(&t);
}

/* ---- tensor family ---- */

static void transpose_and_strings(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 3, (int64_t[]){2, 3, 4}, k_iota);
    const kiln_tensor *in[1] = {&x};
    tn_init(&t, "Transpose", 13, 1, 1);
    tn_ints_copy(&t, "perm", 3, (int64_t[]){1, 2, 0});
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){3, 4, 2}));
    CHECK(f32_are(&t.out[0], 4, (float[]){0, 12, 1, 13}));
    tn_free(&t);

    const char *words[4] = {"a", "b", "c", "d"};
    kiln_tensor s = tn_view(KILN_STRING, 2, (int64_t[]){2, 2}, words);
    const kiln_tensor *sin[1] = {&s};
    tn_init(&t, "Transpose", 13, 1, 1);
    CHECK(tn_run(&t, sin) == KILN_OK);
    char **o = t.out[0].data;
    CHECK(!strcmp(o[0], "a") && !strcmp(o[1], "c") && !strcmp(o[2], "b") && !strcmp(o[3], "d"));
    tn_free(&t);

    tn_init(&t, "Transpose", 13, 1, 1);
    tn_ints_copy(&t, "perm", 3, (int64_t[]){0, 0, 1});
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    tn_free(&t);
}

static void concat_strings_and_mismatch(void) {
    tnode t;
    const char *a[2] = {"x", "y"}, *b[1] = {"zz"};
    kiln_tensor ta = tn_view(KILN_STRING, 1, (int64_t[]){2}, a), tb = tn_view(KILN_STRING, 1, (int64_t[]){1}, b);
    const kiln_tensor *in[2] = {&ta, &tb};
    tn_init(&t, "Concat", 13, 2, 1);
    tn_int(&t, "axis", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(t.out[0].dims[0] == 3 && !strcmp(((char **)t.out[0].data)[2], "zz"));
    tn_free(&t);

    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){2, 3}, k_iota), y = tn_view(KILN_F32, 2, (int64_t[]){3, 2}, k_iota);
    const kiln_tensor *in2[2] = {&x, &y};
    tn_init(&t, "Concat", 13, 2, 1);
    tn_int(&t, "axis", 1);
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    CHECK(tn_errmsg_has(&t, "node_under_test"));
    tn_free(&t);

    /* string copies fail cleanly when memory runs out */
    for (long k = 0; k < 6; k++) {
        long live = kiln_mem_live();
        tn_init(&t, "Concat", 13, 2, 1);
        tn_int(&t, "axis", 0);
        kiln_mem_fail_after(k);
        kiln_status s = tn_run(&t, in);
        kiln_mem_fail_after(-1);
        CHECK(s == KILN_OK || s == KILN_ERR_NOMEM);
        tn_free(&t);
        CHECK(kiln_mem_live() == live);
    }
}

static void split_forms(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 1, (int64_t[]){7}, k_iota);
    const kiln_tensor *in1[1] = {&x};
    tn_init(&t, "Split", 18, 1, 3);
    tn_int(&t, "num_outputs", 3);
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(t.out[0].dims[0] == 3 && t.out[1].dims[0] == 3 && t.out[2].dims[0] == 1);
    CHECK(f32_are(&t.out[2], 1, (float[]){6}));
    tn_free(&t);

    tn_init(&t, "Split", 11, 1, 2);
    tn_ints_copy(&t, "split", 2, (int64_t[]){5, 2});
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(f32_are(&t.out[1], 2, (float[]){5, 6}));
    tn_free(&t);

    int64_t parts[2] = {4, 4};
    kiln_tensor sp = tn_view(KILN_I64, 1, (int64_t[]){2}, parts);
    const kiln_tensor *in2[2] = {&x, &sp};
    tn_init(&t, "Split", 13, 2, 2);
    CHECK(tn_run(&t, in2) == KILN_ERR_SHAPE);
    tn_free(&t);

    tn_init(&t, "Split", 13, 1, 2); /* 7 does not split evenly in two */
    CHECK(tn_run(&t, in1) == KILN_ERR_SHAPE);
    tn_free(&t);
}

static void slice_steps_and_clamping(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){4, 6}, k_iota);
    int64_t starts[2] = {-1, 100}, ends[2] = {INT64_MIN, 1}, axes[2] = {0, 1}, steps[2] = {-2, -3};
    kiln_tensor ts = tn_view(KILN_I64, 1, (int64_t[]){2}, starts), te = tn_view(KILN_I64, 1, (int64_t[]){2}, ends),
                ta = tn_view(KILN_I64, 1, (int64_t[]){2}, axes), tk = tn_view(KILN_I64, 1, (int64_t[]){2}, steps);
    const kiln_tensor *in[5] = {&x, &ts, &te, &ta, &tk};
    tn_init(&t, "Slice", 13, 5, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    /* rows 3, 1; cols 5, 2 */
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){2, 2}));
    CHECK(f32_are(&t.out[0], 4, (float[]){23, 20, 11, 8}));
    tn_free(&t);

    const kiln_tensor *in1[1] = {&x};
    tn_init(&t, "Slice", 9, 1, 1);
    tn_ints_copy(&t, "starts", 1, (int64_t[]){1});
    tn_ints_copy(&t, "ends", 1, (int64_t[]){1000});
    tn_ints_copy(&t, "axes", 1, (int64_t[]){1});
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){4, 5}));
    tn_free(&t);

    int64_t zero[2] = {0, 0};
    kiln_tensor tz = tn_view(KILN_I64, 1, (int64_t[]){2}, zero);
    const kiln_tensor *bad[5] = {&x, &ts, &te, &ta, &tz};
    tn_init(&t, "Slice", 13, 5, 1);
    CHECK(tn_run(&t, bad) == KILN_ERR_INVALID);
    CHECK(tn_errmsg_has(&t, "steps"));
    tn_free(&t);
}

static void gather_negative_and_out_of_range(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){3, 2}, k_iota);
    int64_t idx[2] = {-1, 0};
    kiln_tensor ti = tn_view(KILN_I64, 1, (int64_t[]){2}, idx);
    const kiln_tensor *in[2] = {&x, &ti};
    tn_init(&t, "Gather", 13, 2, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(f32_are(&t.out[0], 4, (float[]){4, 5, 0, 1}));
    tn_free(&t);

    int32_t far[1] = {3};
    kiln_tensor tf = tn_view(KILN_I32, 0, NULL, far);
    const kiln_tensor *in2[2] = {&x, &tf};
    tn_init(&t, "Gather", 13, 2, 1);
    CHECK(tn_run(&t, in2) == KILN_ERR_INVALID);
    CHECK(tn_errmsg_has(&t, "out of range"));
    tn_free(&t);
}

static void expand_and_tile(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){3, 1}, k_iota);
    int64_t shape[3] = {2, 1, 2};
    kiln_tensor ts = tn_view(KILN_I64, 1, (int64_t[]){3}, shape);
    const kiln_tensor *in[2] = {&x, &ts};
    tn_init(&t, "Expand", 13, 2, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){2, 3, 2}));
    CHECK(f32_are(&t.out[0], 6, (float[]){0, 0, 1, 1, 2, 2}));
    tn_free(&t);

    int64_t reps[2] = {1, 3};
    kiln_tensor tr = tn_view(KILN_I64, 1, (int64_t[]){2}, reps);
    const kiln_tensor *tin[2] = {&x, &tr};
    tn_init(&t, "Tile", 13, 2, 1);
    CHECK(tn_run(&t, tin) == KILN_OK);
    CHECK(f32_are(&t.out[0], 6, (float[]){0, 0, 0, 1, 1, 1}));
    tn_free(&t);
}

static void pad_modes(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 1, (int64_t[]){3}, k_iota); /* 0 1 2 */
    int64_t pads[2] = {2, 3};
    kiln_tensor tp = tn_view(KILN_I64, 1, (int64_t[]){2}, pads);
    const kiln_tensor *in[2] = {&x, &tp};
    static const char *const modes[4] = {"constant", "reflect", "edge", "wrap"};
    static const float want[4][8] = {{0, 0, 0, 1, 2, 0, 0, 0},
                                     {2, 1, 0, 1, 2, 1, 0, 1},
                                     {0, 0, 0, 1, 2, 2, 2, 2},
                                     {1, 2, 0, 1, 2, 0, 1, 2}};
    for (int m = 0; m < 4; m++) {
        tn_init(&t, "Pad", 19, 2, 1);
        tn_string(&t, "mode", modes[m]);
        CHECK_MSG(tn_run(&t, in) == KILN_OK, "%s: %s", modes[m], kiln_errmsg(t.ctx));
        CHECK_MSG(f32_are(&t.out[0], 8, want[m]), "mode %s", modes[m]);
        tn_free(&t);
    }

    /* opset 2 attribute form, with a crop and a fill value */
    const kiln_tensor *in1[1] = {&x};
    tn_init(&t, "Pad", 2, 1, 1);
    tn_ints_copy(&t, "pads", 2, (int64_t[]){-1, 1});
    tn_attr(&t, "value", GIR_ATTR_FLOAT)->f = 9;
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(f32_are(&t.out[0], 3, (float[]){1, 2, 9}));
    tn_free(&t);

    tn_init(&t, "Pad", 19, 2, 1);
    tn_string(&t, "mode", "mirror");
    CHECK(tn_run(&t, in) == KILN_ERR_UNSUPPORTED);
    CHECK(tn_errmsg_has(&t, "mirror"));
    tn_free(&t);
}

static void cumsum_and_trilu(void) {
    tnode t;
    int64_t vals[4] = {1, 2, 3, INT64_C(1) << 60};
    kiln_tensor x = tn_view(KILN_I64, 1, (int64_t[]){4}, vals);
    int32_t axis = 0;
    kiln_tensor ta = tn_view(KILN_I32, 0, NULL, &axis);
    const kiln_tensor *in[2] = {&x, &ta};
    tn_init(&t, "CumSum", 14, 2, 1);
    tn_int(&t, "exclusive", 1);
    tn_int(&t, "reverse", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    int64_t big = INT64_C(1) << 60;
    CHECK(i64_are(&t.out[0], 4, (int64_t[]){big + 5, big + 3, big, 0}));
    tn_free(&t);

    kiln_tensor m = tn_view(KILN_F32, 2, (int64_t[]){3, 3}, k_iota);
    int64_t k = -1;
    kiln_tensor tk = tn_view(KILN_I64, 0, NULL, &k);
    const kiln_tensor *tin[2] = {&m, &tk};
    tn_init(&t, "Trilu", 14, 2, 1);
    tn_int(&t, "upper", 0);
    CHECK(tn_run(&t, tin) == KILN_OK);
    CHECK(f32_are(&t.out[0], 9, (float[]){0, 0, 0, 3, 0, 0, 6, 7, 0}));
    tn_free(&t);
}

static void topk_ties_and_unique(void) {
    tnode t;
    float v[6] = {3, 1, 3, 2, 1, 3};
    kiln_tensor x = tn_view(KILN_F32, 1, (int64_t[]){6}, v);
    int64_t k = 2;
    kiln_tensor tk = tn_view(KILN_I64, 1, (int64_t[]){1}, &k);
    const kiln_tensor *in[2] = {&x, &tk};
    tn_init(&t, "TopK", 11, 2, 2);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(f32_are(&t.out[0], 2, (float[]){3, 3}));
    CHECK(i64_are(&t.out[1], 2, (int64_t[]){0, 2}));
    tn_free(&t);

    const kiln_tensor *uin[1] = {&x};
    tn_init(&t, "Unique", 11, 1, 4);
    tn_int(&t, "sorted", 0);
    CHECK(tn_run(&t, uin) == KILN_OK);
    CHECK(f32_are(&t.out[0], 3, (float[]){3, 1, 2}));
    CHECK(i64_are(&t.out[1], 3, (int64_t[]){0, 1, 3}));
    CHECK(i64_are(&t.out[2], 6, (int64_t[]){0, 1, 0, 2, 1, 0}));
    CHECK(i64_are(&t.out[3], 3, (int64_t[]){3, 2, 1}));
    tn_free(&t);

    kiln_tensor unknown = tn_view(KILN_F32, 1, (int64_t[]){6}, NULL);
    const kiln_tensor *din[1] = {&unknown};
    tn_init(&t, "NonZero", 13, 1, 1);
    CHECK(tn_infer(&t, din) == KILN_ERR_DYNAMIC);
    tn_free(&t);
}

static void gather_strings_and_elements(void) {
    tnode t;
    const char *words[3] = {"zero", "one", "two"};
    kiln_tensor x = tn_view(KILN_STRING, 1, (int64_t[]){3}, words);
    int64_t idx[3] = {2, -3, 2};
    kiln_tensor ti = tn_view(KILN_I64, 1, (int64_t[]){3}, idx);
    const kiln_tensor *in[2] = {&x, &ti};
    tn_init(&t, "Gather", 13, 2, 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    char **o = t.out[0].data;
    CHECK(!strcmp(o[0], "two") && !strcmp(o[1], "zero") && !strcmp(o[2], "two"));
    tn_free(&t);

    kiln_tensor m = tn_view(KILN_F32, 2, (int64_t[]){2, 2}, k_iota);
    int32_t ei[4] = {1, 0, 0, 0};
    kiln_tensor te = tn_view(KILN_I32, 2, (int64_t[]){2, 2}, ei);
    const kiln_tensor *ein[2] = {&m, &te};
    tn_init(&t, "GatherElements", 13, 2, 1);
    tn_int(&t, "axis", 1);
    CHECK(tn_run(&t, ein) == KILN_OK);
    CHECK(f32_are(&t.out[0], 4, (float[]){1, 0, 2, 2}));
    tn_free(&t);
}

static void scatter_nd_reductions_exact(void) {
    tnode t;
    int64_t data[3] = {INT64_C(1) << 60, 5, 7};
    int64_t idx[2] = {0, 0};
    int64_t up[2] = {1, 2};
    kiln_tensor x = tn_view(KILN_I64, 1, (int64_t[]){3}, data);
    kiln_tensor ti = tn_view(KILN_I64, 2, (int64_t[]){2, 1}, idx), tu = tn_view(KILN_I64, 1, (int64_t[]){2}, up);
    const kiln_tensor *in[3] = {&x, &ti, &tu};
    tn_init(&t, "ScatterND", 18, 3, 1);
    tn_string(&t, "reduction", "add");
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(i64_are(&t.out[0], 3, (int64_t[]){(INT64_C(1) << 60) + 3, 5, 7}));
    tn_free(&t);

    tn_init(&t, "ScatterND", 18, 3, 1);
    tn_string(&t, "reduction", "xor");
    CHECK(tn_run(&t, in) == KILN_ERR_INVALID);
    CHECK(tn_errmsg_has(&t, "xor"));
    tn_free(&t);
}

static void depth_space_round_trip(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 4, (int64_t[]){1, 8, 1, 2}, k_iota);
    const kiln_tensor *in[1] = {&x};
    tn_init(&t, "DepthToSpace", 13, 1, 1);
    tn_int(&t, "blocksize", 2);
    tn_string(&t, "mode", "CRD");
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 4, (int64_t[]){1, 2, 2, 4}));
    /* channel 0 of CRD takes input channels 0..3 as its 2x2 blocks */
    CHECK(f32_are(&t.out[0], 4, (float[]){0, 2, 1, 3}));
    tn_free(&t);

    tn_init(&t, "DepthToSpace", 13, 1, 1);
    tn_int(&t, "blocksize", 2);
    CHECK(tn_run(&t, in) == KILN_OK);
    kiln_tensor mid = t.out[0];
    memset(&t.out[0], 0, sizeof t.out[0]);
    tn_free(&t);
    const kiln_tensor *min[1] = {&mid};
    tn_init(&t, "SpaceToDepth", 13, 1, 1);
    tn_int(&t, "blocksize", 2);
    CHECK(tn_run(&t, min) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 4, x.dims) && f32_are(&t.out[0], 16, k_iota));
    tn_free(&t);
    kiln_tensor_release(&mid);

    tn_init(&t, "DepthToSpace", 13, 1, 1);
    tn_int(&t, "blocksize", 3);
    CHECK(tn_run(&t, in) == KILN_ERR_SHAPE);
    tn_free(&t);
}

static void onehot_and_tensor_scatter(void) {
    tnode t;
    int64_t idx[3] = {0, -1, 5};
    float depth = 3;
    float vals[2] = {-1, 1};
    kiln_tensor ti = tn_view(KILN_I64, 1, (int64_t[]){3}, idx), td = tn_view(KILN_F32, 0, NULL, &depth),
                tv = tn_view(KILN_F32, 1, (int64_t[]){2}, vals);
    const kiln_tensor *in[3] = {&ti, &td, &tv};
    tn_init(&t, "OneHot", 11, 3, 1);
    tn_int(&t, "axis", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){3, 3}));
    CHECK(f32_are(&t.out[0], 9, (float[]){1, -1, -1, -1, -1, -1, -1, 1, -1}));
    tn_free(&t);

    float cache[8] = {0};
    float up[4] = {1, 2, 3, 4};
    int64_t wi[2] = {3, 1};
    kiln_tensor tc = tn_view(KILN_F32, 3, (int64_t[]){2, 4, 1}, cache),
                tu = tn_view(KILN_F32, 3, (int64_t[]){2, 2, 1}, up), tw = tn_view(KILN_I64, 1, (int64_t[]){2}, wi);
    const kiln_tensor *sin[3] = {&tc, &tu, &tw};
    tn_init(&t, "TensorScatter", 24, 3, 1);
    tn_string(&t, "mode", "circular");
    CHECK(tn_run(&t, sin) == KILN_OK);
    CHECK(f32_are(&t.out[0], 8, (float[]){2, 0, 0, 1, 0, 3, 4, 0}));
    tn_free(&t);

    tn_init(&t, "TensorScatter", 24, 3, 1); /* linear: 3 + 1 runs off the cache */
    CHECK(tn_run(&t, sin) == KILN_ERR_INVALID);
    tn_free(&t);
}

/* ---- reduce family ---- */

static void reduce_keepdims_and_forms(void) {
    tnode t;
    kiln_tensor x = tn_view(KILN_F32, 3, (int64_t[]){2, 3, 4}, k_iota);
    const kiln_tensor *in1[1] = {&x};
    tn_init(&t, "ReduceMean", 13, 1, 1); /* axes attribute before 18 */
    tn_ints_copy(&t, "axes", 2, (int64_t[]){0, -1});
    CHECK(tn_run(&t, in1) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 3, (int64_t[]){1, 3, 1}));
    CHECK(f32_are(&t.out[0], 3, (float[]){7.5f, 11.5f, 15.5f}));
    tn_free(&t);

    int64_t axes[1] = {1};
    kiln_tensor ta = tn_view(KILN_I64, 1, (int64_t[]){1}, axes);
    const kiln_tensor *in2[2] = {&x, &ta};
    tn_init(&t, "ReduceMax", 18, 2, 1);
    tn_int(&t, "keepdims", 0);
    CHECK(tn_run(&t, in2) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){2, 4}));
    CHECK(f32_are(&t.out[0], 8, (float[]){8, 9, 10, 11, 20, 21, 22, 23}));
    tn_free(&t);

    kiln_tensor empty_axes = tn_view(KILN_I64, 1, (int64_t[]){0}, NULL);
    const kiln_tensor *in3[2] = {&x, &empty_axes};
    tn_init(&t, "ReduceSum", 13, 2, 1);
    tn_int(&t, "noop_with_empty_axes", 1);
    CHECK(tn_run(&t, in3) == KILN_OK);
    CHECK(f32_are(&t.out[0], 24, k_iota));
    tn_free(&t);

    tn_init(&t, "ReduceSum", 13, 2, 1); /* empty axes without noop: all */
    CHECK(tn_run(&t, in3) == KILN_OK);
    CHECK(t.out[0].rank == 3 && f32_are(&t.out[0], 1, (float[]){276}));
    tn_free(&t);

    int64_t bad[1] = {3};
    kiln_tensor tb = tn_view(KILN_I64, 1, (int64_t[]){1}, bad);
    const kiln_tensor *in4[2] = {&x, &tb};
    tn_init(&t, "ReduceSum", 13, 2, 1);
    CHECK(tn_run(&t, in4) == KILN_ERR_INVALID);
    CHECK(tn_errmsg_has(&t, "ReduceSum") && tn_errmsg_has(&t, "axis"));
    tn_free(&t);
}

static void reduce_empty_and_exact(void) {
    tnode t;
    kiln_tensor e = tn_view(KILN_F32, 2, (int64_t[]){2, 0}, NULL);
    int64_t axes[1] = {1};
    kiln_tensor ta = tn_view(KILN_I64, 1, (int64_t[]){1}, axes);
    const kiln_tensor *in[2] = {&e, &ta};
    static const char *const ops[4] = {"ReduceSum", "ReduceProd", "ReduceMax", "ReduceLogSumExp"};
    static const float want[4] = {0, 1, -INFINITY, -INFINITY};
    for (int i = 0; i < 4; i++) {
        tn_init(&t, ops[i], 18, 2, 1);
        CHECK(tn_run(&t, in) == KILN_OK);
        CHECK_MSG(t.out[0].dims[0] == 2 && ((float *)t.out[0].data)[1] == want[i], "%s", ops[i]);
        tn_free(&t);
    }

    kiln_tensor ei = tn_view(KILN_I32, 2, (int64_t[]){2, 0}, NULL);
    const kiln_tensor *iin[2] = {&ei, &ta};
    tn_init(&t, "ReduceMax", 18, 2, 1);
    CHECK(tn_run(&t, iin) == KILN_OK);
    CHECK(((int32_t *)t.out[0].data)[0] == INT32_MIN);
    tn_free(&t);

    int64_t big[2] = {(INT64_C(1) << 60) + 1, 2};
    kiln_tensor tb = tn_view(KILN_I64, 1, (int64_t[]){2}, big);
    const kiln_tensor *bin[1] = {&tb};
    tn_init(&t, "ReduceSum", 13, 1, 1);
    tn_int(&t, "keepdims", 0);
    CHECK(tn_run(&t, bin) == KILN_OK);
    CHECK(t.out[0].rank == 0 && *(int64_t *)t.out[0].data == (INT64_C(1) << 60) + 3);
    tn_free(&t);
}

static void argmax_select_last(void) {
    tnode t;
    float v[6] = {1, 5, 5, 2, 2, 0};
    kiln_tensor x = tn_view(KILN_F32, 2, (int64_t[]){2, 3}, v);
    const kiln_tensor *in[1] = {&x};
    tn_init(&t, "ArgMax", 13, 1, 1);
    tn_int(&t, "axis", 1);
    tn_int(&t, "select_last_index", 1);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(tn_dims_are(&t.out[0], 2, (int64_t[]){2, 1}));
    CHECK(i64_are(&t.out[0], 2, (int64_t[]){2, 1}));
    tn_free(&t);

    tn_init(&t, "ArgMin", 13, 1, 1);
    tn_int(&t, "axis", 1);
    tn_int(&t, "keepdims", 0);
    CHECK(tn_run(&t, in) == KILN_OK);
    CHECK(i64_are(&t.out[0], 2, (int64_t[]){0, 2}));
    tn_free(&t);
}

TEST_MAIN(T(reshape_zero_and_minus_one), T(reshape_allowzero_and_errors),
          T(reshape_static_inference_is_dynamic), T(flatten_axes), T(squeeze_unsqueeze_forms),
          T(shape_start_end_and_size), T(constant_forms), T(constant_of_shape_and_range),
          T(transpose_and_strings), T(concat_strings_and_mismatch), T(split_forms),
          T(slice_steps_and_clamping), T(gather_negative_and_out_of_range), T(expand_and_tile),
          T(pad_modes), T(cumsum_and_trilu), T(topk_ties_and_unique), T(gather_strings_and_elements),
          T(scatter_nd_reductions_exact), T(depth_space_round_trip), T(onehot_and_tensor_scatter), T(reduce_keepdims_and_forms),
          T(reduce_empty_and_exact), T(argmax_select_last))
