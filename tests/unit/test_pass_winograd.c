/*
** test_pass_winograd.c — blocked 3x3 convolutions as Winograd F(2x2, 3x3):
** the rewrite and the convolutions it leaves alone, the reference
** interpreter's outputs before and after (odd sizes: tiles that overhang,
** pads of 0, 1 and 2), the compiled kernels (every point of the transforms'
** schedule spaces, and the whole graph JIT-compiled) against the reference,
** and the transforms' shape checks.
*/
#include <stdio.h>

#include "autotune/compile.h"
#include "autotune/templates.h"
#include "ir/lir.h"
#include "ir/mem.h"
#include "ir/op.h"
#include "ir/sched.h"
#include "ir/tir.h"
#include "op_node.h"
#include "pass_test.h"

static kiln_status choose_blocks_of_4(kiln_ctx *ctx, gir_graph *g) {
    pass_choose_layout_set_block(4);
    kiln_status s = pass_choose_layout(ctx, g);
    pass_choose_layout_set_block(-1);
    return s;
}

static const pt_pass k_passes[] = {pass_fold_constants, choose_blocks_of_4, pass_winograd};

/* x[1, C, H, W] -> Conv KxK (stride, pads, bias) -> Relu -> 1x1 Conv -> y;
** the weights are computed (Sin of a range) and folded into constants. */
static const char *conv_graph(int C, int H, int W, int K, int stride, const int *pads) {
    static char text[2048];
    snprintf(text, sizeof text,
             "graph \"wg\" {\n  opset 17\n  input %%x : f32[1,%d,%d,%d]\n"
             "  const %%n : i64[] = {%d}\n  const %%zero : i64[] = {0}\n  const %%one : i64[] = {1}\n"
             "  const %%shape : i64[4] = {%d, %d, %d, %d}\n"
             "  const %%scale : f32[] = {0.37}\n"
             "  %%r = Range(%%zero, %%n, %%one)\n  %%rf = Cast(%%r) {to=1}\n  %%rs = Mul(%%rf, %%scale)\n"
             "  %%ws = Sin(%%rs)\n  %%w = Reshape(%%ws, %%shape)\n"
             "  %%c = Conv(%%x, %%w, %%bias) {kernel_shape=[%d, %d], strides=[%d, %d], pads=[%d, %d, %d, %d]}\n"
             "  %%a = Relu(%%c)\n  %%y = Conv(%%a, %%w1)\n  output %%y\n}\n",
             C, H, W, C * C * K * K, C, C, K, K, K, K, stride, stride, pads[0], pads[1], pads[2], pads[3]);
    return text;
}

/* Replaces the placeholders the graph above leaves: bias and 1x1 weights
** as constants of the right size (cut from the same waves). */
static const char *with_constants(const char *text, int C) {
    static char out[4096];
    char bias[512] = "", w1[1024] = "";
    size_t nb = 0, nw = 0;
    for (int i = 0; i < C; i++) nb += (size_t)snprintf(bias + nb, sizeof bias - nb, "%s%.3f", i ? "," : "", 0.1 * (i % 5) - 0.2);
    for (int i = 0; i < C * C; i++) nw += (size_t)snprintf(w1 + nw, sizeof w1 - nw, "%s%.3f", i ? "," : "", 0.05 * (i % 7) - 0.15);
    const char *at = strstr(text, "  %r = Range");
    snprintf(out, sizeof out, "%.*s  const %%bias : f32[%d] = {%s}\n  const %%w1 : f32[%d,%d,1,1] = {%s}\n%s",
             (int)(at - text), text, C, bias, C, C, w1, at);
    return out;
}

static gir_graph *rewritten(int C, int H, int W, int K, int stride, const int *pads) {
    return pt_check_n(with_constants(conv_graph(C, H, W, K, stride, pads), C), k_passes, 3, 1e-4);
}

/* 3x3 stride 1: one Winograd convolution, outputs as before. */
static void three_by_three_becomes_winograd(void) {
    static const int pads[][4] = {{1, 1, 1, 1}, {0, 0, 0, 0}, {2, 1, 0, 2}};
    static const int sizes[][2] = {{14, 14}, {16, 17}, {16, 19}};
    for (int i = 0; i < 3; i++) {
        gir_graph *g = rewritten(8, sizes[i][0], sizes[i][1], 3, 1, pads[i]);
        if (!g) continue;
        CHECK_MSG(pt_count(g, "WinogradInput") == 1 && pt_count(g, "WinogradOutput") == 1 && pt_count(g, "MatMul") == 1,
                  "case %d: %d WinogradInput", i, pt_count(g, "WinogradInput"));
        CHECK(pt_count(g, "ConvBlocked") == 1); /* the 1x1 one stays direct */
        gir_graph_free(g);
    }
}

/* Stride 2, a 5x5 kernel, a small image: direct convolutions stay. */
static void others_stay_direct(void) {
    static const int p1[4] = {1, 1, 1, 1}, p2[4] = {2, 2, 2, 2};
    gir_graph *g[3] = {rewritten(8, 28, 28, 3, 2, p1), rewritten(8, 16, 16, 5, 1, p2), rewritten(8, 7, 7, 3, 1, p1)};
    for (int i = 0; i < 3; i++) {
        if (!g[i]) continue;
        CHECK_MSG(pt_count(g[i], "WinogradInput") == 0 && pt_count(g[i], "ConvBlocked") == 2, "case %d rewritten", i);
        gir_graph_free(g[i]);
    }
}

/* Every point of a transform kernel's schedule space on the loop-IR
** interpreter against the node's reference kernel. */
static void check_node_space(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, const char *tmpl) {
    kiln_tensor want;
    tir_func *f = NULL;
    cg_cpu_target t;
    tune_space sp;
    kiln_status s = gir_run_node(ctx, n, in, &want);
    if (!s) s = tir_from_node(ctx, n, in, &f);
    if (!s) s = cg_cpu_host(ctx, &t);
    if (!s) s = tune_space_for(ctx, f, &t, &sp);
    CHECK_MSG(!s && !strcmp(sp.template_name, tmpl), "%s: %s", n->op_type, s ? kiln_errmsg(ctx) : sp.template_name);
    for (int64_t p = 0; !s && p < (int64_t)tune_space_size(&sp); p++) {
        int64_t pt[TUNE_MAX_KNOBS], rest = p;
        for (int k = 0; k < sp.n_knobs; k++, rest /= sp.knobs[k - 1].n_values)
            pt[k] = sp.knobs[k].values[rest % sp.knobs[k].n_values];
        sch_trace *tr = NULL;
        lir_func *lf = NULL;
        kiln_tensor out;
        kiln_tensor_init(&out, KILN_F32, want.rank, want.dims);
        kiln_status r = tune_trace_from_knobs(ctx, f, &t, &sp, pt, &tr);
        if (!r) r = sch_lower(ctx, f, tr, &lf);
        if (!r) r = kiln_tensor_alloc(ctx, &out);
        if (!r) {
            void *args[4];
            memset(out.data, 0xff, kiln_nbytes(&out)); /* NaN: an unwritten element shows */
            for (int i = 0; i < f->n_inputs; i++) args[i] = (void *)in[f->inputs[i]->arg_index]->data;
            args[f->n_inputs] = out.data;
            r = lir_interp_run(ctx, lf, args);
            double e = r ? 0 : pt_error(&out, &want);
            CHECK_MSG(e <= 1e-5, "%s at point %lld: differs by %g", n->op_type, (long long)p, e);
            kiln_tensor_release(&out);
        }
        CHECK_MSG(!r, "%s at point %lld: %s", n->op_type, (long long)p, kiln_errmsg(ctx));
        lir_func_free(lf);
        sch_trace_free(tr);
    }
    if (!s) kiln_tensor_release(&want);
    tir_func_free(f);
}

static gir_node *find(const gir_graph *g, const char *op) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, op)) return g->nodes[i];
    return NULL;
}

/* The transforms' kernels over their spaces, then the graph compiled. */
static void compiled_kernels_match_reference(void) {
    static const int pads[4] = {1, 1, 1, 1};
    gir_graph *g = rewritten(8, 15, 14, 3, 1, pads);
    if (!g) return;
    kiln_tensor x, v, m;
    CHECK(pt_inputs(g, &x));
    gir_node *to = find(g, "LayoutToBlocked"), *wi = find(g, "WinogradInput"), *mm = find(g, "MatMul"),
             *wo = find(g, "WinogradOutput");
    const kiln_tensor *xin[1] = {&x};
    kiln_tensor xb;
    if (to && wi && mm && wo && !gir_run_node(pt_ctx, to, xin, &xb)) {
        const kiln_tensor *in1[1] = {&xb};
        check_node_space(pt_ctx, wi, in1, "winograd");
        if (!gir_run_node(pt_ctx, wi, in1, &v)) {
            const kiln_tensor *in2[2] = {&v, mm->inputs[1]->constant};
            if (!gir_run_node(pt_ctx, mm, in2, &m)) {
                const kiln_tensor *in3[2] = {&m, wo->n_inputs > 1 ? wo->inputs[1]->constant : NULL};
                check_node_space(pt_ctx, wo, in3, "winograd");
                kiln_tensor_release(&m);
            }
            kiln_tensor_release(&v);
        }
        kiln_tensor_release(&xb);
    }
    /* the whole graph: kernels fused and JIT-compiled, against the interpreter */
    kc_options o;
    kc_options_default(&o);
    o.passes.opt_level = 0;
    kc_plan *p = NULL;
    kiln_tensor ref, got;
    kiln_status s = kc_compile(pt_ctx, g, &x, 1, &o, &p);
    CHECK_MSG(!s, "%s", kiln_errmsg(pt_ctx));
    if (!s && !gir_interp_run(pt_ctx, g, &x, 1, &ref, 1)) {
        s = kc_run(pt_ctx, p, &x, 1, &got, 1);
        CHECK_MSG(!s, "%s", kiln_errmsg(pt_ctx));
        if (!s) {
            CHECK_MSG(pt_error(&got, &ref) <= 1e-5, "compiled differs by %g", pt_error(&got, &ref));
            kiln_tensor_release(&got);
        }
        kiln_tensor_release(&ref);
    }
    kc_plan_free(p);
    kiln_tensor_release(&x);
    gir_graph_free(g);
}

/* Malformed transforms: clear shape errors that name the node. */
static void bad_transform_shapes_are_errors(void) {
    float z[4096] = {0};
    int64_t xd[4] = {1, 8, 6, 6}, md[3] = {16, 9, 8}, bd[2] = {3, 4}, pads[2] = {1, 1}, tiles[2] = {3, 3};
    int64_t shape[3] = {1, 6, 6};
    kiln_tensor x = tn_view(KILN_F32, 4, xd, z), m = tn_view(KILN_F32, 3, md, z), b = tn_view(KILN_F32, 2, bd, z);
    tnode t;
    tn_init_dom(&t, "ai.kiln", "WinogradInput", 1, 1, 1);
    tn_ints_copy(&t, "pads", 2, pads);
    tn_ints_copy(&t, "tiles", 2, tiles);
    const kiln_tensor *in1[1] = {&x}; /* NCHW, not blocked */
    CHECK(tn_infer(&t, in1) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
    tn_init_dom(&t, "ai.kiln", "WinogradOutput", 1, 2, 1);
    tn_ints_copy(&t, "shape", 3, shape);
    tn_int(&t, "block", 4);
    const kiln_tensor *in2[2] = {&m, &b}; /* bias of 3 blocks for 2 */
    CHECK(tn_infer(&t, in2) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
    md[1] = 10; /* 10 tiles for a 6x6 output of 9 */
    m = tn_view(KILN_F32, 3, md, z);
    tn_init_dom(&t, "ai.kiln", "WinogradOutput", 1, 1, 1);
    tn_ints_copy(&t, "shape", 3, shape);
    tn_int(&t, "block", 4);
    const kiln_tensor *in3[1] = {&m};
    CHECK(tn_infer(&t, in3) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
}

TEST_MAIN(T(three_by_three_becomes_winograd), T(others_stay_direct), T(compiled_kernels_match_reference),
          T(bad_transform_shapes_are_errors))
