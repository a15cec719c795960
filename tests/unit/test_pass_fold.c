/*
** test_pass_fold.c — BatchNormalization folded into Conv/Gemm/MatMul
** weights, and transposes and scalar scales folded into MatMul/Gemm: the
** rewrites, the cases that must stay, malformed graphs, and the reference
** interpreter's outputs before and after on random inputs.
*/
#include "ir/mem.h"
#include "pass_test.h"

#define BN_PARAMS                                                                                \
    "  const %s : f32[4] = {1.5, -0.5, 2, 0.25}\n"                                             \
    "  const %beta : f32[4] = {0.1, -0.2, 0.3, 0}\n"                                           \
    "  const %mean : f32[4] = {0.5, -1, 0, 2}\n"                                               \
    "  const %var : f32[4] = {1, 0.25, 4, 0.5}\n"

static void conv_with_groups_and_bias_absorbs_batch_norm(void) {
    gir_graph *g = pt_check("graph \"cbn\" {\n"
                            "  opset 15\n"
                            "  input %x : f32[2,4,5,5]\n"
                            "  const %w : f32[4,2,3,3] = {"
                            "0.1,-0.2,0.3,0.4,-0.5,0.6,0.7,0.8,-0.9,1,0.1,0.2,-0.3,0.4,0.5,0.6,0.7,-0.8,"
                            "0.9,1,-0.1,0.2,0.3,-0.4,0.5,0.6,0.7,0.8,0.9,-1,0.1,0.2,0.3,0.4,-0.5,0.6,"
                            "-0.7,0.8,0.9,1,0.1,-0.2,0.3,0.4,0.5,0.6,-0.7,0.8,0.9,1,0.1,0.2,-0.3,0.4,"
                            "0.5,-0.6,0.7,0.8,0.9,-1,0.1,0.2,0.3,-0.4,0.5,0.6,0.7,0.8,-0.9,1,0.1,0.2}\n"
                            "  const %b : f32[4] = {0.5, 0, -0.5, 1}\n" BN_PARAMS
                            "  %c = Conv(%x, %w, %b) {group=2, pads=[1, 1, 1, 1]}\n"
                            "  %y = BatchNormalization(%c, %s, %beta, %mean, %var) {epsilon=0.001}\n"
                            "  output %y\n"
                            "}\n",
                            pass_fold_batch_norm, 1e-5);
    if (!g) return;
    CHECK(g->n_nodes == 1 && pt_count(g, "Conv") == 1 && !strcmp(g->outputs[0]->name, "y"));
    gir_graph_free(g);
}

static void conv1d_without_bias_gets_one(void) {
    gir_graph *g = pt_check("graph \"c1\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[1,2,6]\n"
                            "  const %w : f32[4,2,1] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n" BN_PARAMS
                            "  %c = Conv(%x, %w)\n"
                            "  %y = BatchNormalization(%c, %s, %beta, %mean, %var)\n"
                            "  %z = Relu(%y)\n"
                            "  output %z\n"
                            "}\n",
                            pass_fold_batch_norm, 1e-5);
    if (!g) return;
    CHECK(g->n_nodes == 2 && pt_count(g, "BatchNormalization") == 0);
    CHECK(g->nodes[0]->n_inputs == 3 && g->nodes[0]->inputs[2] && g->nodes[0]->inputs[2]->constant);
    gir_graph_free(g);
}

static void gemm_absorbs_batch_norm(void) {
    /* transB with a bias per column; then no transB, beta and a scalar bias */
    gir_graph *g = pt_check("graph \"gbn\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[3,2]\n"
                            "  const %w : f32[4,2] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n"
                            "  const %w2 : f32[4,4] = {1,0,0,1, 0,1,1,0, 2,0,0,-1, 0,0,3,1}\n"
                            "  const %cb : f32[4] = {1, 2, 3, 4}\n"
                            "  const %c1 : f32[1] = {0.75}\n" BN_PARAMS
                            "  %a = Gemm(%x, %w, %cb) {transB=1, alpha=0.5}\n"
                            "  %y = BatchNormalization(%a, %s, %beta, %mean, %var)\n"
                            "  %b = Gemm(%y, %w2, %c1) {beta=0.5}\n"
                            "  %z = BatchNormalization(%b, %s, %beta, %mean, %var)\n"
                            "  output %z\n"
                            "}\n",
                            pass_fold_batch_norm, 1e-5);
    if (!g) return;
    CHECK(g->n_nodes == 2 && pt_count(g, "Gemm") == 2);
    gir_graph_free(g);
}

static void matmul_2d_becomes_gemm(void) {
    gir_graph *g = pt_check("graph \"mbn\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[3,2]\n"
                            "  const %w : f32[2,4] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n" BN_PARAMS
                            "  %a = MatMul(%x, %w)\n"
                            "  %y = BatchNormalization(%a, %s, %beta, %mean, %var)\n"
                            "  output %y\n"
                            "}\n",
                            pass_fold_batch_norm, 1e-5);
    if (!g) return;
    CHECK(g->n_nodes == 1 && pt_count(g, "Gemm") == 1 && !strcmp(g->outputs[0]->name, "y"));
    gir_graph_free(g);
}

/* A convolution read twice, a weight that is an input, a 3-D MatMul (its
** channel axis is not the product's columns), training mode. */
static void batch_norms_that_stay(void) {
    gir_graph *g = pt_check("graph \"keep\" {\n"
                            "  opset 15\n"
                            "  input %x : f32[1,2,4]\n"
                            "  input %wi : f32[4,2,1]\n"
                            "  input %m : f32[2,4,2]\n"
                            "  const %w : f32[4,2,1] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n"
                            "  const %wm : f32[2,4] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n" BN_PARAMS
                            "  %c = Conv(%x, %w)\n"
                            "  %y = BatchNormalization(%c, %s, %beta, %mean, %var)\n"
                            "  %r = Relu(%c)\n"
                            "  %c2 = Conv(%x, %wi)\n"
                            "  %y2 = BatchNormalization(%c2, %s, %beta, %mean, %var)\n"
                            "  %mm = MatMul(%m, %wm)\n" /* [2,4,4]: BN's channel axis is 1 */
                            "  %y3 = BatchNormalization(%mm, %s, %beta, %mean, %var)\n"
                            "  output %y\n"
                            "  output %r\n"
                            "  output %y2\n"
                            "  output %y3\n"
                            "}\n",
                            pass_fold_batch_norm, 0.0);
    if (!g) return;
    CHECK_MSG(pt_count(g, "BatchNormalization") == 3 && g->n_nodes == 7, "%d nodes", g->n_nodes);
    gir_graph_free(g);
    g = pt_parse("graph \"train\" {\n"
                 "  opset 15\n"
                 "  input %x : f32[2,4,3]\n"
                 "  const %w : f32[4,4,1] = {1,0,0,0, 0,1,0,0, 0,0,1,0, 0,0,0,1}\n" BN_PARAMS
                 "  %c = Conv(%x, %w)\n"
                 "  %y, %rm, %rv = BatchNormalization(%c, %s, %beta, %mean, %var) {training_mode=1}\n"
                 "  output %y\n"
                 "}\n");
    if (g && pt_passes(g, (pt_pass[]){pass_fold_batch_norm}, 1)) CHECK(pt_count(g, "BatchNormalization") == 1);
    gir_graph_free(g);
}

/* Declared types, no inference (it would reject these): the pass leaves
** them alone rather than reading past the parameters. */
static void malformed_batch_norms_are_left_alone(void) {
    static const char *const texts[] = {
        /* scale has 3 values for 4 channels */
        "graph \"len\" {\n opset 15\n input %x : f32[1,2,3]\n"
        " const %w : f32[4,2,1] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n"
        " const %s : f32[3] = {1, 2, 3}\n const %p : f32[4] = {0, 0, 0, 1}\n"
        " %c : f32[1,4,3] = Conv(%x, %w)\n %y : f32[1,4,3] = BatchNormalization(%c, %s, %p, %p, %p)\n output %y\n}\n",
        /* the weight's output channels disagree with the parameters */
        "graph \"ch\" {\n opset 15\n input %x : f32[1,2,3]\n"
        " const %w : f32[2,2,1] = {1, -1, 0.5, 2}\n const %p : f32[4] = {0, 0, 0, 1}\n"
        " %c : f32[1,4,3] = Conv(%x, %w)\n %y : f32[1,4,3] = BatchNormalization(%c, %p, %p, %p, %p)\n output %y\n}\n",
        /* a negative variance */
        "graph \"var\" {\n opset 15\n input %x : f32[1,2,3]\n"
        " const %w : f32[4,2,1] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n const %p : f32[4] = {1, 1, 1, 1}\n"
        " const %v : f32[4] = {1, -2, 1, 1}\n"
        " %c : f32[1,4,3] = Conv(%x, %w)\n %y : f32[1,4,3] = BatchNormalization(%c, %p, %p, %p, %v)\n output %y\n}\n",
        /* a Gemm weight of rank 1 */
        "graph \"gemm\" {\n opset 15\n input %x : f32[3,2]\n const %w : f32[2] = {1, 2}\n"
        " const %p : f32[4] = {1, 1, 1, 1}\n"
        " %c : f32[3,4] = Gemm(%x, %w)\n %y : f32[3,4] = BatchNormalization(%c, %p, %p, %p, %p)\n output %y\n}\n",
    };
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        gir_graph *g = NULL;
        if (!pt_ctx && kiln_ctx_new(&pt_ctx) == KILN_OK) atexit(pt_free_ctx);
        CHECK_MSG(gir_parse(pt_ctx, texts[t], &g) == KILN_OK, "%s", kiln_errmsg(pt_ctx));
        if (!g) continue;
        for (int i = 0; i < g->n_nodes; i++) gir_bind_op(pt_ctx, g->nodes[i]);
        kiln_status s = pass_fold_batch_norm(pt_ctx, g);
        CHECK_MSG(s == KILN_OK, "graph %zu: %s", t, kiln_errmsg(pt_ctx));
        CHECK_MSG(g->n_nodes == 2 && pt_count(g, "BatchNormalization") == 1, "graph %zu: %d nodes", t, g->n_nodes);
        gir_graph_free(g);
    }
}

static void transposes_become_gemm_flags(void) {
    gir_graph *g = pt_check("graph \"tg\" {\n"
                            "  opset 13\n"
                            "  input %a : f32[2,3]\n"
                            "  input %b : f32[2,4]\n"
                            "  %at = Transpose(%a)\n"
                            "  %bt = Transpose(%b) {perm=[1, 0]}\n"
                            "  %y = Gemm(%at, %bt) {transB=1}\n" /* [3,2] x ([4,2])^T */
                            "  output %y\n"
                            "}\n",
                            pass_fold_matmul, 1e-6);
    if (!g) return;
    CHECK(g->n_nodes == 1 && pt_count(g, "Gemm") == 1);
    if (g->n_nodes == 1) {
        CHECK(gir_attr_int(g->nodes[0], "transA", 0) == 1 && gir_attr_int(g->nodes[0], "transB", 1) == 0);
        CHECK(g->nodes[0]->inputs[0] == g->inputs[0] && g->nodes[0]->inputs[1] == g->inputs[1]);
    }
    gir_graph_free(g);
    /* the Transpose has another reader: it stays for it, the Gemm reads around it */
    g = pt_check("graph \"tg2\" {\n"
                 "  opset 13\n"
                 "  input %a : f32[2,3]\n"
                 "  input %b : f32[2,4]\n"
                 "  %at = Transpose(%a)\n"
                 "  %y = Gemm(%at, %b)\n"
                 "  %z = Neg(%at)\n"
                 "  output %y\n"
                 "  output %z\n"
                 "}\n",
                 pass_fold_matmul, 1e-6);
    if (!g) return;
    CHECK(g->n_nodes == 3 && pt_count(g, "Transpose") == 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "Gemm"))
            CHECK(g->nodes[i]->inputs[0] == g->inputs[0] && gir_attr_int(g->nodes[i], "transA", 0) == 1);
    gir_graph_free(g);
}

static void a_constant_operand_is_transposed_at_compile_time(void) {
    gir_graph *g = pt_check("graph \"ct\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[2,3,4]\n"
                            "  const %w : f32[2,3,4] = {1,2,3,4,5,6,7,8,9,10,11,12,-1,-2,-3,-4,-5,-6,-7,-8,-9,-10,-11,-12}\n"
                            "  %wt = Transpose(%w) {perm=[0, 2, 1]}\n"
                            "  %y = MatMul(%x, %wt)\n"
                            "  output %y\n"
                            "}\n",
                            pass_fold_matmul, 1e-6);
    if (!g) return;
    CHECK(g->n_nodes == 1 && pt_count(g, "MatMul") == 1 && g->nodes[0]->inputs[1]->constant);
    gir_graph_free(g);
}

static void scalar_scales_move_into_weights(void) {
    gir_graph *g = pt_check("graph \"sc\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[2,3,4]\n"
                            "  input %a : f32[3,4]\n"
                            "  const %w : f32[4,2] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n"
                            "  const %gw : f32[4,2] = {2, 1, 0, -1, 3, 0.5, 1, 1}\n"
                            "  const %gc : f32[2] = {1, -1}\n"
                            "  const %half : f32[] = {0.5}\n"
                            "  const %eight : f32[1] = {8}\n"
                            "  %m = MatMul(%x, %w)\n"
                            "  %y = Mul(%m, %half)\n"
                            "  %xs = Div(%x, %eight)\n"
                            "  %z = MatMul(%xs, %w)\n"
                            "  %g = Gemm(%a, %gw, %gc) {alpha=2.0}\n"
                            "  %gs = Mul(%half, %g)\n"
                            "  %as = Mul(%a, %eight)\n"
                            "  %h = Gemm(%as, %gw)\n"
                            "  output %y\n"
                            "  output %z\n"
                            "  output %gs\n"
                            "  output %h\n"
                            "}\n",
                            pass_fold_matmul, 1e-6);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 4 && pt_count(g, "Mul") == 0 && pt_count(g, "Div") == 0, "%d nodes", g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        if (!strcmp(g->nodes[i]->outputs[0]->name, "gs"))
            CHECK(gir_attr_float(g->nodes[i], "alpha", 0) == 1.0 && gir_attr_float(g->nodes[i], "beta", 0) == 0.5);
        if (!strcmp(g->nodes[i]->outputs[0]->name, "h")) CHECK(gir_attr_float(g->nodes[i], "alpha", 0) == 8.0);
    }
    gir_graph_free(g);
}

/* A Transpose of other axes, a non-constant weight, a scale that is not
** one value, a scaled value read twice, a Div of the scale by the value, a
** scale at the end of an elementwise product. */
static void matmul_look_alikes_stay(void) {
    gir_graph *g = pt_check("graph \"keep\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[2,3,4]\n"
                            "  input %v : f32[4,2]\n"
                            "  input %a : f32[3,4]\n"
                            "  const %w : f32[4,2] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n"
                            "  const %col : f32[2] = {2, 3}\n"
                            "  const %half : f32[] = {0.5}\n"
                            "  %xt = Transpose(%x) {perm=[1, 0, 2]}\n"
                            "  %p = MatMul(%xt, %w)\n"
                            "  %q = MatMul(%x, %v)\n"
                            "  %q2 = Mul(%q, %half)\n"
                            "  %r = MatMul(%x, %w)\n"
                            "  %r2 = Mul(%r, %col)\n"
                            "  %s = MatMul(%x, %w)\n"
                            "  %s2 = Mul(%s, %half)\n"
                            "  %s3 = Add(%s, %s2)\n"
                            "  %t = Gemm(%a, %w)\n"
                            "  %t2 = Div(%half, %t)\n"
                            "  %e = Erf(%x)\n" /* GELU's last product stays for pattern fusion */
                            "  %e2 = Mul(%e, %x)\n"
                            "  %e3 = Mul(%e2, %half)\n"
                            "  %e4 = MatMul(%e3, %w)\n"
                            "  output %p\n"
                            "  output %q2\n"
                            "  output %r2\n"
                            "  output %s3\n"
                            "  output %t2\n"
                            "  output %e4\n"
                            "}\n",
                            pass_fold_matmul, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 15, "%d nodes", g->n_nodes);
    gir_graph_free(g);
}

static void resnet_block_through_all_passes(void) {
    static const pt_pass all[] = {pass_simplify,    pass_simplify_chains,  pass_fold_batch_norm,
                                  pass_fold_matmul, pass_eliminate_common, pass_eliminate_dead};
    gir_graph *g = pt_check_n("graph \"block\" {\n"
                              "  opset 13\n"
                              "  input %x : f32[1,2,4,4]\n"
                              "  const %w : f32[4,2,1,1] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n" BN_PARAMS
                              "  const %fw : f32[4,3] = {1,2,3, -1,0,1, 0.5,0.5,0.5, 2,-2,1}\n"
                              "  const %shape : i64[2] = {1, 4}\n"
                              "  const %k : f32[] = {0.125}\n"
                              "  %c = Conv(%x, %w)\n"
                              "  %n = BatchNormalization(%c, %s, %beta, %mean, %var)\n"
                              "  %r = Relu(%n)\n"
                              "  %p = GlobalAveragePool(%r)\n"
                              "  %f = Flatten(%p)\n"
                              "  %f2 = Reshape(%f, %shape)\n"
                              "  %d = Dropout(%f2)\n"
                              "  %m = MatMul(%d, %fw)\n"
                              "  %y = Mul(%m, %k)\n"
                              "  output %y\n"
                              "}\n",
                              all, 6, 1e-5);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 5, "%d nodes", g->n_nodes); /* Conv Relu Pool Flatten MatMul */
    CHECK(pt_count(g, "BatchNormalization") == 0 && pt_count(g, "Mul") == 0 && pt_count(g, "Dropout") == 0);
    gir_graph_free(g);
}

/* Appends "{v, v, ...}" of n random values in [lo, hi) to buf. */
static void random_list(char *buf, size_t cap, int64_t n, double lo, double hi) {
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "{");
    for (int64_t i = 0; i < n; i++) {
        len = strlen(buf);
        snprintf(buf + len, cap - len, "%s%.6g", i ? ", " : "", lo + (hi - lo) * pt_unit());
    }
    len = strlen(buf);
    snprintf(buf + len, cap - len, "}\n");
}

/* Conv of rank 3, 4 and 5, groups 1, 2 and 4 (depthwise), with and without
** bias, random weights and statistics: one Conv left, same outputs. */
static void conv_batch_norm_sweep(void) {
    static char text[65536];
    for (int rank = 3; rank <= 5; rank++)
        for (int group = 1; group <= 4; group *= 2)
            for (int bias = 0; bias < 2; bias++) {
                int64_t cin = 4, cout = 8, k = 2, wn = cout * (cin / group);
                char sp[32] = "", ksp[32] = "";
                for (int d = 2; d < rank; d++) {
                    strcat(sp, ",5");
                    strcat(ksp, ",2");
                    wn *= k;
                }
                snprintf(text, sizeof text, "graph \"sweep\" {\n  opset 15\n  input %%x : f32[2,%lld%s]\n",
                         (long long)cin, sp);
                size_t len = strlen(text);
                snprintf(text + len, sizeof text - len, "  const %%w : f32[%lld,%lld%s] = ", (long long)cout,
                         (long long)(cin / group), ksp);
                random_list(text, sizeof text, wn, -1, 1);
                static const char *const names[] = {"b", "s", "beta", "mean", "var"};
                for (int i = 0; i < 5; i++) {
                    len = strlen(text);
                    snprintf(text + len, sizeof text - len, "  const %%%s : f32[%lld] = ", names[i], (long long)cout);
                    random_list(text, sizeof text, cout, i == 4 ? 0.1 : -2, 2);
                }
                len = strlen(text);
                snprintf(text + len, sizeof text - len,
                         "  %%c = Conv(%%x, %%w%s) {group=%d}\n"
                         "  %%y = BatchNormalization(%%c, %%s, %%beta, %%mean, %%var) {epsilon=0.01}\n"
                         "  output %%y\n}\n",
                         bias ? ", %b" : "", group);
                gir_graph *g = pt_check(text, pass_fold_batch_norm, 1e-5);
                CHECK_MSG(g && g->n_nodes == 1 && pt_count(g, "Conv") == 1, "rank %d group %d bias %d", rank, group, bias);
                gir_graph_free(g);
            }
}

/* Fails the Nth allocation, N = 0, 1, 2, ..., while the passes run, until
** they all succeed: each failure is KILN_ERR_NOMEM (or nothing: a pass may
** skip a rewrite it cannot check), never a crash, and nothing leaks. */
static void allocation_failures_are_reported(void) {
    static const pt_pass all[] = {pass_simplify,    pass_simplify_chains,  pass_fold_batch_norm,
                                  pass_fold_matmul, pass_eliminate_common, pass_eliminate_dead};
    static const char *const text = "graph \"sweep\" {\n"
                                    "  opset 13\n"
                                    "  input %x : f32[1,2,3,3]\n"
                                    "  const %w : f32[4,2,1,1] = {1, -1, 0.5, 2, -0.25, 3, 1.5, -2}\n" BN_PARAMS
                                    "  const %fw : f32[4,3] = {1,2,3, -1,0,1, 0.5,0.5,0.5, 2,-2,1}\n"
                                    "  const %fw2 : f32[4,3] = {1,2,3, -1,0,1, 0.5,0.5,0.5, 2,-2,1}\n"
                                    "  const %shape : i64[2] = {1, 4}\n"
                                    "  const %k : f32[] = {0.125}\n"
                                    "  %c = Conv(%x, %w)\n"
                                    "  %n = BatchNormalization(%c, %s, %beta, %mean, %var)\n"
                                    "  %p = GlobalAveragePool(%n)\n"
                                    "  %f = Flatten(%p)\n"
                                    "  %f2 = Reshape(%f, %shape)\n"
                                    "  %t = Transpose(%f2)\n"
                                    "  %t2 = Transpose(%t)\n"
                                    "  %m = MatMul(%t2, %fw)\n"
                                    "  %m2 = MatMul(%t2, %fw2)\n"
                                    "  %y = Mul(%m, %k)\n"
                                    "  %z = Add(%y, %m2)\n"
                                    "  %dead = Neg(%z)\n"
                                    "  output %z\n"
                                    "}\n";
    gir_graph *probe = pt_parse(text); /* also creates the context outside the count */
    int want = -1;
    if (probe && pt_passes(probe, all, 6)) want = probe->n_nodes;
    gir_graph_free(probe);
    CHECK_MSG(want == 6, "%d nodes after the passes", want); /* Conv Pool Flatten MatMul MatMul Add */
    for (long n = 0; n < 100000; n++) {
        long base = kiln_mem_live();
        gir_graph *g = pt_parse(text);
        if (!g) return;
        kiln_status s = KILN_OK;
        kiln_mem_fail_after(n);
        for (size_t p = 0; p < sizeof all / sizeof all[0] && !s; p++) s = all[p](pt_ctx, g);
        kiln_mem_fail_after(-1);
        int done = g->n_nodes;
        CHECK_MSG(s == KILN_OK || s == KILN_ERR_NOMEM, "allocation %ld: %s", n, kiln_errmsg(pt_ctx));
        gir_graph_free(g);
        CHECK_MSG(kiln_mem_live() == base, "allocation %ld: %ld blocks leaked", n, kiln_mem_live() - base);
        /* a pass may skip a rewrite when a check cannot allocate: go on
        ** until the run does all of them */
        if (s == KILN_OK && done == want) {
            CHECK(n > 3); /* the passes allocate: the sweep saw failures first */
            break;
        }
    }
}

TEST_MAIN(T(conv_with_groups_and_bias_absorbs_batch_norm), T(conv1d_without_bias_gets_one), T(conv_batch_norm_sweep), T(gemm_absorbs_batch_norm),
          T(matmul_2d_becomes_gemm), T(batch_norms_that_stay), T(malformed_batch_norms_are_left_alone),
          T(transposes_become_gemm_flags), T(a_constant_operand_is_transposed_at_compile_time),
          T(scalar_scales_move_into_weights), T(matmul_look_alikes_stay), T(resnet_block_through_all_passes),
          T(allocation_failures_are_reported))
