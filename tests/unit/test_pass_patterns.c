/*
** test_pass_patterns.c — pattern fusion of LayerNorm and GELU: each form
** and its variants become one node and compute the same on random inputs
** (reference interpreter before and after); near misses stay as they are.
*/
#include <stdio.h>

#include "pattern_check.h"

#define W8 "{0.9, 1.1, 1, 0.8, 1.2, 1.05, 0.95, 1}"
#define W24 "{0.9, 1.1, 1, 0.8, 1.2, 1.05, 0.95, 1, 1, 1.1, 0.9, 1, 1.3, 0.7, 1, 1, 0.95, 1.05, 1, 1, 1.2, 0.8, 1, 1.1}"
#define B8 "{0.1, -0.2, 0, 0.05, 0.3, -0.1, 0.02, 0}"

/* A decomposed LayerNorm over x : f32[2,3,8]. sq: the square ("Pow(%d, %two)"
** or "Mul(%d, %d)"); axes: the ReduceMean attribute; tail: the lines after
** %y (ending in %o); extra: more lines (outputs). */
static char *ln_text(char *buf, size_t n, int opset, const char *sq, const char *axes, const char *tail,
                     const char *extra) {
    snprintf(buf, n,
             "graph \"ln\" {\n opset %d\n input %%x : f32[2,3,8]\n input %%e : f32[]\n"
             " const %%two : f32[] = {2}\n const %%eps : f32[] = {1e-5}\n"
             " const %%w : f32[8] = " W8 "\n const %%b : f32[8] = " B8 "\n const %%w3 : f32[3,8] = " W24 "\n"
             " %%m = ReduceMean(%%x) {axes=%s}\n %%d = Sub(%%x, %%m)\n %%sq = %s\n"
             " %%v = ReduceMean(%%sq) {axes=%s}\n %%ve = Add(%%v, %%eps)\n %%s = Sqrt(%%ve)\n"
             " %%y = Div(%%d, %%s)\n%s\n output %%o\n%s}\n",
             opset, axes, sq, axes, tail, extra);
    return buf;
}

static void layer_norm_forms(void) {
    char t[4096];
    const char *affine = " %yw = Mul(%y, %w)\n %o = Add(%yw, %b)";
    gir_graph *g = pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1]", affine, ""), pass_fuse_layer_norm,
                            "LayerNormalization", 1, 1e-5);
    if (g) {
        CHECK(g->n_nodes == 1);
        const gir_node *n = g->nodes[0];
        CHECK(n->opset >= 17 && n->op && n->n_inputs == 3 && gir_attr_int(n, "axis", 0) == 2);
        CHECK(fabs(gir_attr_float(n, "epsilon", 0) - 1e-5) < 1e-12);
        CHECK(!strcmp(n->outputs[0]->name, "o"));
    }
    gir_graph_free(g);
    /* x*x for the square, scale and bias operands swapped */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Mul(%d, %d)", "[2]", " %yw = Mul(%w, %y)\n %o = Add(%b, %yw)", ""),
                            pass_fuse_layer_norm, "LayerNormalization", 1, 1e-5));
    /* no affine part: the output is %y itself */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1]", " %o = Identity(%y)", ""),
                            pass_fuse_layer_norm, "LayerNormalization", 1, 1e-5));
    /* scale only */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1]", " %o = Mul(%y, %w)", ""),
                            pass_fuse_layer_norm, "LayerNormalization", 1, 1e-5));
    /* the two trailing axes, scale over both */
    g = pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1, -2]", " %o = Mul(%y, %w3)", ""),
                 pass_fuse_layer_norm, "LayerNormalization", 1, 1e-5);
    if (g) CHECK(g->n_nodes == 1 && gir_attr_int(g->nodes[0], "axis", 0) == 1);
    gir_graph_free(g);
}

/* Opset 18 gives ReduceMean its axes as an input. */
static void layer_norm_axes_input(void) {
    const char *text =
        "graph \"ln18\" {\n opset 18\n input %x : f32[4,16]\n const %ax : i64[1] = {-1}\n"
        " const %two : f32[] = {2}\n const %eps : f32[] = {1e-12}\n"
        " %m = ReduceMean(%x, %ax)\n %d = Sub(%x, %m)\n %sq = Pow(%d, %two)\n %v = ReduceMean(%sq, %ax)\n"
        " %ve = Add(%v, %eps)\n %s = Sqrt(%ve)\n %o = Div(%d, %s)\n output %o\n}\n";
    gir_graph *g = pc_check(text, pass_fuse_layer_norm, "LayerNormalization", 1, 1e-5);
    if (g) CHECK(g->n_nodes == 1 && g->nodes[0]->n_inputs == 2);
    gir_graph_free(g);
}

static void layer_norm_near_misses(void) {
    char t[4096];
    const char *affine = " %yw = Mul(%y, %w)\n %o = Add(%yw, %b)";
    /* d read elsewhere */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1]", affine, " output %d\n"),
                            pass_fuse_layer_norm, "LayerNormalization", 0, 0));
    /* the variance read elsewhere */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1]", affine, " output %v\n"),
                            pass_fuse_layer_norm, "LayerNormalization", 0, 0));
    /* not the last axis */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[1]", " %o = Identity(%y)", ""),
                            pass_fuse_layer_norm, "LayerNormalization", 0, 0));
    /* a cube, not a square */
    gir_graph_free(pc_check(ln_text(t, sizeof t, 14, "Pow(%d, %eps)", "[-1]", affine, ""), pass_fuse_layer_norm,
                            "LayerNormalization", 0, 0));
    /* epsilon from an input, not a constant */
    char *p = strstr(ln_text(t, sizeof t, 14, "Pow(%d, %two)", "[-1]", affine, ""), "Add(%v, %eps)");
    if (p) memcpy(p, "Add(%v, %e)  ", 13);
    gir_graph_free(pc_check(t, pass_fuse_layer_norm, "LayerNormalization", 0, 0));
    /* scale read from an input: the core fuses, the Mul by it stays */
    const char *text =
        "graph \"lnx\" {\n opset 14\n input %x : f32[4,16]\n input %w : f32[16]\n"
        " const %two : f32[] = {2}\n const %eps : f32[] = {1e-5}\n"
        " %m = ReduceMean(%x) {axes=[1]}\n %d = Sub(%x, %m)\n %sq = Pow(%d, %two)\n"
        " %v = ReduceMean(%sq) {axes=[1]}\n %ve = Add(%v, %eps)\n %s = Sqrt(%ve)\n %y = Div(%d, %s)\n"
        " %o = Mul(%y, %w)\n output %o\n}\n";
    gir_graph *g = pc_check(text, pass_fuse_layer_norm, "LayerNormalization", 1, 1e-5);
    if (g) CHECK(g->n_nodes == 2 && pc_count(g, "Mul") == 1);
    gir_graph_free(g);
    /* the two reductions over different axes */
    const char *text2 =
        "graph \"lny\" {\n opset 14\n input %x : f32[4,16]\n"
        " const %two : f32[] = {2}\n const %eps : f32[] = {1e-5}\n"
        " %m = ReduceMean(%x) {axes=[1]}\n %d = Sub(%x, %m)\n %sq = Pow(%d, %two)\n"
        " %v = ReduceMean(%sq) {axes=[0, 1]}\n %ve = Add(%v, %eps)\n %s = Sqrt(%ve)\n %o = Div(%d, %s)\n"
        " output %o\n}\n";
    gir_graph_free(pc_check(text2, pass_fuse_layer_norm, "LayerNormalization", 0, 0));
}

/* GELU: lines computing %o from %x : f32[3,17]. */
static char *gelu_text(char *buf, size_t n, const char *lines, const char *extra) {
    snprintf(buf, n,
             "graph \"gelu\" {\n opset 14\n input %%x : f32[3,17]\n const %%r2 : f32[] = {1.4142135381698608}\n"
             " const %%ir2 : f32[] = {0.70710678}\n const %%one : f32[] = {1}\n const %%half : f32[] = {0.5}\n"
             " const %%half2 : f32[2] = {0.5, 0.5}\n const %%three : f32[] = {3}\n"
             " const %%k : f32[] = {0.044715}\n const %%c : f32[] = {0.7978845608}\n"
             "%s\n output %%o\n%s}\n",
             lines, extra);
    return buf;
}

static const char *const k_gelu_erf[] = {
    /* bert's export */
    " %a = Div(%x, %r2)\n %e = Erf(%a)\n %p = Add(%e, %one)\n %q = Mul(%x, %p)\n %o = Mul(%q, %half)",
    " %a = Mul(%x, %ir2)\n %e = Erf(%a)\n %p = Add(%one, %e)\n %h = Mul(%x, %half)\n %o = Mul(%h, %p)",
    " %a = Div(%x, %r2)\n %e = Erf(%a)\n %p = Add(%e, %one)\n %q = Mul(%half, %p)\n %o = Mul(%q, %x)",
};
static const char *const k_gelu_tanh[] = {
    /* gpt2's export */
    " %h = Mul(%half, %x)\n %cu = Pow(%x, %three)\n %t1 = Mul(%k, %cu)\n %in = Add(%x, %t1)\n"
    " %t2 = Mul(%c, %in)\n %t = Tanh(%t2)\n %p = Add(%one, %t)\n %o = Mul(%h, %p)",
    " %sq = Mul(%x, %x)\n %cu = Mul(%sq, %x)\n %t1 = Mul(%cu, %k)\n %in = Add(%t1, %x)\n"
    " %t2 = Mul(%in, %c)\n %t = Tanh(%t2)\n %p = Add(%t, %one)\n %q = Mul(%x, %p)\n %o = Mul(%q, %half)",
};

static void gelu_forms(void) {
    char t[4096];
    for (int i = 0; i < (int)(sizeof k_gelu_erf / sizeof *k_gelu_erf); i++) {
        gir_graph *g = pc_check(gelu_text(t, sizeof t, k_gelu_erf[i], ""), pass_fuse_gelu, "Gelu", 1, 1e-6);
        if (g) {
            CHECK_MSG(g->n_nodes == 1, "erf form %d", i);
            CHECK(!strcmp(gir_attr_string(g->nodes[0], "approximate", "?"), "none") && g->nodes[0]->opset >= 20);
        }
        gir_graph_free(g);
    }
    for (int i = 0; i < (int)(sizeof k_gelu_tanh / sizeof *k_gelu_tanh); i++) {
        gir_graph *g = pc_check(gelu_text(t, sizeof t, k_gelu_tanh[i], ""), pass_fuse_gelu, "Gelu", 1, 1e-6);
        if (g) {
            CHECK_MSG(g->n_nodes == 1, "tanh form %d", i);
            CHECK(!strcmp(gir_attr_string(g->nodes[0], "approximate", "?"), "tanh"));
        }
        gir_graph_free(g);
    }
}

static void gelu_near_misses(void) {
    char t[4096];
    /* Erf's output read elsewhere */
    gir_graph_free(pc_check(gelu_text(t, sizeof t, k_gelu_erf[0], " output %e\n"), pass_fuse_gelu, "Gelu", 0, 0));
    /* the half is a [2]-vector: broadcasting makes it no GELU of x */
    gir_graph_free(pc_check(
        gelu_text(t, sizeof t,
                  " %a = Div(%x, %r2)\n %e = Erf(%a)\n %p = Add(%e, %one)\n %q = Mul(%x, %p)\n %o = Mul(%q, %k)", ""),
        pass_fuse_gelu, "Gelu", 0, 0));
    /* x / 2, not x / sqrt(2) */
    gir_graph_free(pc_check(
        gelu_text(t, sizeof t,
                  " %a = Mul(%x, %half)\n %e = Erf(%a)\n %p = Add(%e, %one)\n %q = Mul(%x, %p)\n %o = Mul(%q, %half)",
                  ""),
        pass_fuse_gelu, "Gelu", 0, 0));
    /* x^2 in place of x^3 */
    gir_graph_free(pc_check(
        gelu_text(t, sizeof t,
                  " %h = Mul(%half, %x)\n %cu = Mul(%x, %x)\n %t1 = Mul(%k, %cu)\n %in = Add(%x, %t1)\n"
                  " %t2 = Mul(%c, %in)\n %t = Tanh(%t2)\n %p = Add(%one, %t)\n %o = Mul(%h, %p)",
                  ""),
        pass_fuse_gelu, "Gelu", 0, 0));
    /* the product's other factor is a different value than Erf's */
    const char *text =
        "graph \"g2\" {\n opset 14\n input %x : f32[5]\n input %z : f32[5]\n const %r2 : f32[] = {1.4142135381698608}\n"
        " const %one : f32[] = {1}\n const %half : f32[] = {0.5}\n"
        " %a = Div(%x, %r2)\n %e = Erf(%a)\n %p = Add(%e, %one)\n %q = Mul(%z, %p)\n %o = Mul(%q, %half)\n"
        " output %o\n}\n";
    gir_graph_free(pc_check(text, pass_fuse_gelu, "Gelu", 0, 0));
}

/* x : f32[3,9]; axes: the reductions' attribute; sub: the Sub line. */
static char *sm_text(char *buf, size_t n, const char *axes, const char *sub, const char *extra) {
    snprintf(buf, n,
             "graph \"sm\" {\n opset 14\n input %%x : f32[3,9]\n %%m = ReduceMax(%%x) {axes=%s}\n %s\n"
             " %%e = Exp(%%d)\n %%s = ReduceSum(%%e, %%ax)\n %%o = Div(%%e, %%s)\n output %%o\n%s}\n",
             axes, sub, extra);
    return buf;
}

static void softmax_forms(void) {
    char t[2048], full[2100];
    /* ReduceSum takes its axes as an input from opset 13 */
    const char *fix = " const %ax : i64[1] = {-1}\n";
    sm_text(t, sizeof t, "[-1]", "%d = Sub(%x, %m)", "");
    char *at = strstr(t, " %m");
    snprintf(full, sizeof full, "%.*s%s%s", (int)(at - t), t, fix, at);
    gir_graph *g = pc_check(full, pass_fuse_softmax, "Softmax", 1, 1e-6);
    if (g) CHECK(g->n_nodes == 1);
    gir_graph_free(g);
    /* near misses: the max over the other axis; exp read elsewhere; x - m reversed */
    const char *bad[][2] = {{"[0]", "%d = Sub(%x, %m)"}, {"[1]", "%d = Sub(%m, %x)"}};
    for (int k = 0; k < 2; k++) {
        sm_text(t, sizeof t, bad[k][0], bad[k][1], "");
        at = strstr(t, " %m");
        snprintf(full, sizeof full, "%.*s%s%s", (int)(at - t), t, fix, at);
        gir_graph_free(pc_check(full, pass_fuse_softmax, "Softmax", 0, 0));
    }
    sm_text(t, sizeof t, "[1]", "%d = Sub(%x, %m)", " output %e\n");
    at = strstr(t, " %m");
    snprintf(full, sizeof full, "%.*s%s%s", (int)(at - t), t, fix, at);
    gir_graph_free(pc_check(full, pass_fuse_softmax, "Softmax", 0, 0));
}

/* Attention over q [1,2,5,4], kt [1,2,4,5] (a Transpose of k), v [1,2,5,3];
** mid: the lines from %s0 (the QKt product) to %s2 (Softmax's input). */
static char *att_text(char *buf, size_t n, const char *mid, const char *extra) {
    snprintf(buf, n,
             "graph \"att\" {\n opset 14\n input %%q : f32[1,2,5,4]\n input %%k : f32[1,2,5,4]\n"
             " input %%v : f32[1,2,5,3]\n input %%m : f32[1,1,1,5]\n const %%c : f32[] = {2}\n"
             " const %%c2 : f32[5] = {2, 2, 2, 2, 2}\n const %%neg : f32[] = {-3.4028234663852886e38}\n"
             " const %%tril : bool[1,1,5,5] = {true, false, false, false, false, true, true, false, false, false,"
             " true, true, true, false, false, true, true, true, true, false, true, true, true, true, true}\n"
             " const %%band : bool[5,5] = {true, true, false, false, false, true, true, false, false, false,"
             " false, true, true, false, false, false, false, true, true, false, false, false, false, true, true}\n"
             " %%kt = Transpose(%%k) {perm=[0, 1, 3, 2]}\n %%s0 = MatMul(%%q, %%kt)\n%s\n"
             " %%p = Softmax(%%s2) {axis=-1}\n %%o = MatMul(%%p, %%v)\n output %%o\n%s}\n",
             mid, extra);
    return buf;
}

static void attention_forms(void) {
    char t[4096];
    gir_graph *g = pc_check(att_text(t, sizeof t, " %s1 = Div(%s0, %c)\n %s2 = Add(%s1, %m)", ""), pass_fuse_attention,
                            "Attention", 1, 1e-5);
    /* Kt was k transposed: Attention reads k itself */
    if (g) CHECK(g->n_nodes == 1 && g->nodes[0]->inputs[1] == gir_value_find(g, "k") &&
                 fabs(gir_attr_float(g->nodes[0], "scale", 0) - 0.5) < 1e-12);
    gir_graph_free(g);
    /* gpt2's causal Where: is_causal, no mask input */
    g = pc_check(att_text(t, sizeof t, " %s1 = Mul(%s0, %c)\n %s2 = Where(%tril, %s1, %neg)", ""), pass_fuse_attention,
                 "Attention", 1, 1e-5);
    if (g) CHECK(g->n_nodes == 1 && gir_attr_int(g->nodes[0], "is_causal", 0) == 1 && g->nodes[0]->n_inputs == 3);
    gir_graph_free(g);
    /* another constant bool mask: passed as the mask */
    g = pc_check(att_text(t, sizeof t, " %s1 = Div(%s0, %c)\n %s2 = Where(%band, %s1, %neg)", ""), pass_fuse_attention,
                 "Attention", 1, 1e-5);
    if (g) CHECK(g->n_nodes == 1 && g->nodes[0]->n_inputs == 4);
    gir_graph_free(g);
    /* bert's heads split by one Transpose [0, 2, 3, 1]: K gets [0, 2, 1, 3] */
    const char *bert =
        "graph \"bert\" {\n opset 14\n input %q : f32[1,2,5,4]\n input %kr : f32[1,5,2,4]\n input %v : f32[1,2,5,3]\n"
        " const %c : f32[] = {2}\n %kt = Transpose(%kr) {perm=[0, 2, 3, 1]}\n %s0 = MatMul(%q, %kt)\n"
        " %s2 = Div(%s0, %c)\n %p = Softmax(%s2) {axis=-1}\n %o = MatMul(%p, %v)\n output %o\n}\n";
    g = pc_check(bert, pass_fuse_attention, "Attention", 1, 1e-5);
    if (g && g->n_nodes == 2) {
        const int64_t *perm = NULL;
        CHECK(gir_attr_ints(g->nodes[0], "perm", &perm) == 4 && perm[1] == 2 && perm[2] == 1 && perm[3] == 3);
    } else {
        CHECK(g && g->n_nodes == 2);
    }
    gir_graph_free(g);
    /* Kt from elsewhere: a Transpose of its last two axes is added */
    const char *plain =
        "graph \"p\" {\n opset 14\n input %q : f32[1,2,5,4]\n input %kt : f32[1,2,4,5]\n input %v : f32[1,2,5,3]\n"
        " %s0 = MatMul(%q, %kt)\n %p = Softmax(%s0) {axis=3}\n %o = MatMul(%p, %v)\n output %o\n}\n";
    g = pc_check(plain, pass_fuse_attention, "Attention", 1, 1e-5);
    if (g) CHECK(g->n_nodes == 2 && pc_count(g, "Transpose") == 1 && gir_attr_float(g->nodes[1], "scale", 0) == 1.0);
    gir_graph_free(g);
    /* no scale, no mask */
    gir_graph_free(pc_check(att_text(t, sizeof t, " %s2 = Identity(%s0)", ""), pass_fuse_attention, "Attention", 0, 0));
}

static void attention_near_misses(void) {
    char t[4096];
    /* the probabilities read elsewhere */
    gir_graph_free(pc_check(att_text(t, sizeof t, " %s1 = Div(%s0, %c)\n %s2 = Add(%s1, %m)", " output %p\n"),
                            pass_fuse_attention, "Attention", 0, 0));
    /* a scale that is no scalar */
    gir_graph_free(pc_check(att_text(t, sizeof t, " %s1 = Div(%s0, %c2)\n %s2 = Add(%s1, %m)", ""), pass_fuse_attention,
                            "Attention", 0, 0));
    /* Where with a finite but small fill: masked keys would still count */
    gir_graph_free(pc_check(att_text(t, sizeof t, " %s1 = Div(%s0, %c)\n %s2 = Where(%tril, %s1, %c)", ""),
                            pass_fuse_attention, "Attention", 0, 0));
}

TEST_MAIN(T(attention_forms), T(attention_near_misses), T(softmax_forms), T(layer_norm_forms), T(layer_norm_axes_input), T(layer_norm_near_misses), T(gelu_forms),
          T(gelu_near_misses))
