/*
** test_pass_fuse_kernels.c — kernel fusion on small graphs in the text
** form: which groups form (FusedKernel nodes and their members), that the
** reference interpreter gives the same outputs before and after, that the
** compiled CPU kernels match the reference, and the cases that must not
** fuse (a member read outside, a path through an outside node, dynamic
** shapes).
*/
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/compile.h"
#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "passes/pass.h"

#define MAX_OUT 4

/* ---- graph text with generated constants ---- */

typedef struct text_buf {
    char s[1 << 16];
    size_t n;
} text_buf;

static void put(text_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k > 0) b->n += (size_t)k < sizeof b->s - b->n ? (size_t)k : sizeof b->s - b->n - 1;
}

/* "const %name : f32[dims] = {...}" with small pseudo-random values. */
static void put_const(text_buf *b, const char *name, const char *dims, int count, unsigned seed) {
    put(b, "  const %%%s : f32[%s] = {", name, dims);
    for (int i = 0; i < count; i++) {
        seed = seed * 1103515245u + 12345u;
        put(b, "%s%g", i ? ", " : "", (double)((int)(seed >> 16) % 200 - 100) / 128.0);
    }
    put(b, "}\n");
}

static gir_graph *parse(kiln_ctx *ctx, const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "%s\n%s", kiln_errmsg(ctx), text);
    return g;
}

/* ---- running ---- */

static void random_inputs(const gir_graph *g, kiln_tensor *in, unsigned seed) {
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_tensor_init(&in[i], KILN_F32, 0, NULL);
        gir_type_to_tensor(&g->inputs[i]->type, &in[i]);
        CHECK(kiln_tensor_alloc(NULL, &in[i]) == KILN_OK);
        float *d = in[i].data;
        for (int64_t k = 0; d && k < kiln_numel(&in[i]); k++) {
            seed = seed * 1664525u + 1013904223u;
            d[k] = (float)((int)(seed >> 9) % 2000 - 1000) / 317.0f;
        }
    }
}

static void release(kiln_tensor *t, int n) {
    for (int i = 0; i < n; i++) kiln_tensor_release(&t[i]);
}

static bool close_to(const kiln_tensor *a, const kiln_tensor *b, double tol) {
    if (a->dtype != KILN_F32 || b->dtype != KILN_F32 || !kiln_tensor_same_shape(a, b)) return false;
    const float *x = a->data, *y = b->data;
    for (int64_t k = 0; k < kiln_numel(a); k++)
        if (!(fabs((double)x[k] - (double)y[k]) <= tol * (1.0 + fabs((double)y[k])))) return false;
    return true;
}

static int count_op(const gir_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

/* The members of the k-th FusedKernel as "Conv+Add+Relu". */
static const char *members(const gir_graph *g, int k, char *buf, size_t size) {
    buf[0] = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        if (strcmp(n->op_type, "FusedKernel") || k-- > 0) continue;
        const gir_attr *a = gir_attr_find(n, "body");
        size_t len = 0;
        for (int j = 0; a && a->g && j < a->g->n_nodes; j++)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", j ? "+" : "", a->g->nodes[j]->op_type);
        break;
    }
    return buf;
}

/* Runs the passes up to fuse_kernels (no other rewriting). */
static kiln_status fuse(kiln_ctx *ctx, gir_graph *g) {
    kiln_status s = pass_infer_shapes(ctx, g);
    if (!s) s = pass_fuse_kernels(ctx, g);
    if (!s) s = gir_verify(ctx, g, "fuse_kernels");
    return s;
}

/* Fuses a copy of `text`, checks the groups against `want` (member lists,
** in node order, ";"-separated), and that the reference interpreter, the
** fused graph printed and parsed back, and the compiled kernels all agree
** with the unfused graph on random inputs. */
static void check_fusion(const char *text, const char *want) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *plain = parse(ctx, text), *g = parse(ctx, text), *c = parse(ctx, text);
    if (!plain || !g || !c) goto done;
    CHECK_MSG(pass_infer_shapes(ctx, plain) == KILN_OK, "%s", kiln_errmsg(ctx));
    CHECK_MSG(fuse(ctx, g) == KILN_OK, "%s", kiln_errmsg(ctx));
    char got[1024] = "", one[512];
    for (int k = 0; k < count_op(g, "FusedKernel"); k++) {
        size_t len = strlen(got);
        snprintf(got + len, sizeof got - len, "%s%s", k ? ";" : "", members(g, k, one, sizeof one));
    }
    CHECK_MSG(!strcmp(got, want), "groups: got '%s', want '%s'", got, want);

    /* the text form round-trips */
    char *printed = gir_print_str(g, GIR_PRINT_FULL);
    gir_graph *back = printed ? parse(ctx, printed) : NULL;
    char *again = back ? gir_print_str(back, GIR_PRINT_FULL) : NULL;
    CHECK(printed && again && !strcmp(printed, again));
    if (back) CHECK_MSG(gir_bind_graph(ctx, back) == KILN_OK, "%s", kiln_errmsg(ctx));

    int no = plain->n_outputs;
    kiln_tensor in[8], ref[MAX_OUT], fused[MAX_OUT], reparsed[MAX_OUT], compiled[MAX_OUT];
    memset(ref, 0, sizeof ref), memset(fused, 0, sizeof fused), memset(reparsed, 0, sizeof reparsed);
    memset(compiled, 0, sizeof compiled);
    random_inputs(plain, in, 7);
    CHECK_MSG(gir_interp_run(ctx, plain, in, plain->n_inputs, ref, no) == KILN_OK, "%s", kiln_errmsg(ctx));
    CHECK_MSG(gir_interp_run(ctx, g, in, g->n_inputs, fused, no) == KILN_OK, "%s", kiln_errmsg(ctx));
    if (back) CHECK_MSG(gir_interp_run(ctx, back, in, back->n_inputs, reparsed, no) == KILN_OK, "%s", kiln_errmsg(ctx));
    kc_options ko;
    kc_options_default(&ko);
    kc_plan *p = NULL;
    CHECK_MSG(kc_compile(ctx, c, in, c->n_inputs, &ko, &p) == KILN_OK, "%s", kiln_errmsg(ctx));
    if (p) {
        for (int i = 0; i < p->n_steps; i++)
            CHECK_MSG(p->steps[i].kernel || strcmp(p->steps[i].node->op_type, "FusedKernel"), "node '%s' runs its reference kernel: %s", p->steps[i].node->name,
                      p->steps[i].why_reference);
        CHECK_MSG(kc_run(ctx, p, in, c->n_inputs, compiled, no) == KILN_OK, "%s", kiln_errmsg(ctx));
    }
    for (int i = 0; i < no; i++) {
        CHECK_MSG(close_to(&fused[i], &ref[i], 0), "output %d: the fused graph's reference differs", i);
        if (back) CHECK_MSG(close_to(&reparsed[i], &ref[i], 0), "output %d: the parsed graph differs", i);
        if (p) CHECK_MSG(close_to(&compiled[i], &ref[i], 1e-4), "output %d: the compiled kernels differ", i);
    }
    kc_plan_free(p);
    release(in, plain->n_inputs), release(ref, no), release(fused, no), release(reparsed, no), release(compiled, no);
    kiln_free(printed);
    kiln_free(again);
    gir_graph_free(back);
done:
    gir_graph_free(plain);
    gir_graph_free(g);
    gir_graph_free(c);
    kiln_ctx_free(ctx);
}

/* ---- groups that form ---- */

static void conv_epilogue_fuses(void) {
    static text_buf b;
    b.n = 0;
    put(&b, "graph \"convblock\" {\n  opset 17\n  input %%x : f32[1,3,8,8]\n  input %%skip : f32[1,4,8,8]\n");
    put_const(&b, "w", "4,3,3,3", 108, 1);
    put_const(&b, "bias", "4", 4, 2);
    put_const(&b, "scale", "4", 4, 3);
    put_const(&b, "shift", "4", 4, 4);
    put_const(&b, "mean", "4", 4, 5);
    put(&b, "  const %%var : f32[4] = {0.5, 1, 2, 0.25}\n");
    put(&b, "  %%c = Conv(%%x, %%w, %%bias) {pads=[1, 1, 1, 1]}\n"
            "  %%n = BatchNormalization(%%c, %%scale, %%shift, %%mean, %%var)\n"
            "  %%a = Add(%%n, %%skip)\n"
            "  %%y = Relu(%%a)\n"
            "  output %%y : f32[1,4,8,8]\n}\n");
    check_fusion(b.s, "Conv+BatchNormalization+Add+Relu");
}

static void matmul_epilogue_and_chain_fuse(void) {
    static text_buf b;
    b.n = 0;
    put(&b, "graph \"mlp\" {\n  opset 17\n  input %%x : f32[8,16]\n");
    put_const(&b, "w", "16,16", 256, 9);
    put_const(&b, "b", "16", 16, 10);
    put(&b, "  %%m = MatMul(%%x, %%w)\n"
            "  %%a = Add(%%m, %%b)\n"
            "  %%s = Sigmoid(%%a)\n"
            "  %%g = Mul(%%a, %%s)\n"
            "  %%r = Add(%%g, %%x)\n"
            "  %%t = Transpose(%%r) {perm=[1, 0]}\n"
            "  %%e = Exp(%%t)\n"
            "  %%z = Neg(%%e)\n"
            "  output %%z : f32[16,8]\n}\n");
    /* the diamond a → (s, g) stays in the matmul's epilogue; the transpose
    ** starts an injective group its elementwise consumers join */
    check_fusion(b.s, "MatMul+Add+Sigmoid+Mul+Add;Transpose+Exp+Neg");
}

/* The residual Add of two convolutions joins the one whose result nothing
** else reads (here the second: %c1 is also read by %n). */
static void residual_add_joins_the_free_anchor(void) {
    check_fusion("graph \"twoconv\" {\n  opset 17\n  input %x : f32[1,2,4,4]\n"
                 "  const %w1 : f32[2,2,1,1] = {1, -1, 0.5, 2}\n  const %w2 : f32[2,2,1,1] = {0.25, 3, -2, 1}\n"
                 "  %c1 = Conv(%x, %w1)\n  %c2 = Conv(%x, %w2)\n  %a = Add(%c1, %c2)\n  %n = Neg(%c1)\n"
                 "  output %a : f32[1,2,4,4]\n  output %n : f32[1,2,4,4]\n}\n",
                 "Conv+Add");
}

static void reduction_absorbs_producers(void) {
    check_fusion("graph \"sumsq\" {\n  opset 18\n  input %x : f32[6,32]\n  const %axes : i64[1] = {1}\n"
                 "  %q = Mul(%x, %x)\n  %h = Abs(%q)\n  %s = ReduceSum(%h, %axes) {keepdims=1}\n"
                 "  %r = Sqrt(%s)\n  output %r : f32[6,1]\n}\n",
                 "Mul+Abs+ReduceSum+Sqrt");
}

/* A view between an anchor and its epilogue: kept when another view
** restores the anchor's shape, else the group is cut after the anchor. */
static void views_around_an_epilogue(void) {
    static text_buf b;
    b.n = 0;
    put(&b, "graph \"sandwich\" {\n  opset 17\n  input %%x : f32[4,8]\n  input %%skip : f32[2,2,16]\n");
    put_const(&b, "w", "8,16", 128, 5);
    put(&b, "  const %%s3 : i64[3] = {2, 2, 16}\n  const %%s2 : i64[2] = {4, 16}\n"
            "  %%m = MatMul(%%x, %%w)\n  %%r = Reshape(%%m, %%s3)\n  %%t = Tanh(%%r)\n  %%u = Reshape(%%t, %%s2)\n"
            "  %%m2 = MatMul(%%x, %%w)\n  %%r2 = Reshape(%%m2, %%s3)\n  %%a = Add(%%r2, %%skip)\n  %%e = Exp(%%a)\n"
            "  output %%u : f32[4,16]\n  output %%e : f32[2,2,16]\n}\n");
    check_fusion(b.s, "MatMul+Reshape+Tanh+Reshape;Reshape+Add+Exp");
    /* attention's head split: the view joins the transpose, not the matmul */
    b.n = 0;
    put(&b, "graph \"heads\" {\n  opset 17\n  input %%x : f32[4,8]\n");
    put_const(&b, "w", "8,16", 128, 6);
    put_const(&b, "bias", "16", 16, 7);
    put(&b, "  const %%s3 : i64[3] = {4, 2, 8}\n"
            "  %%m = MatMul(%%x, %%w)\n  %%a = Add(%%m, %%bias)\n  %%r = Reshape(%%a, %%s3)\n"
            "  %%t = Transpose(%%r) {perm=[1, 0, 2]}\n  output %%t : f32[2,4,8]\n}\n");
    check_fusion(b.s, "MatMul+Add;Reshape+Transpose");
}

/* Reshape compiles to a copy: it fuses as an injective op with its
** neighbours (here the head split of attention). */
static void views_fuse_as_injective(void) {
    check_fusion("graph \"heads\" {\n  opset 17\n  input %x : f32[4,12]\n  const %shape : i64[3] = {4, 3, 4}\n"
                 "  %s = Sigmoid(%x)\n  %r = Reshape(%s, %shape)\n  %t = Transpose(%r) {perm=[1, 0, 2]}\n"
                 "  output %t : f32[3,4,4]\n}\n",
                 "Sigmoid+Reshape+Transpose");
}

/* ---- groups that must not form ---- */

/* %a is read by two nodes that cannot both join: it stays alone, and the
** two readers (each read outside the other) meet again in %d. */
static void member_read_twice_outside(void) {
    check_fusion("graph \"twice\" {\n  opset 17\n  input %x : f32[4,8]\n"
                 "  %a = Relu(%x)\n  %b = Exp(%a)\n  %c = Neg(%a)\n  %d = Add(%b, %c)\n"
                 "  output %d : f32[4,8]\n}\n",
                 "Exp+Neg+Add");
    /* a graph output is read outside: the conv does not take the relu */
    check_fusion("graph \"out\" {\n  opset 17\n  input %x : f32[1,2,4,4]\n"
                 "  const %w : f32[2,2,1,1] = {1, -1, 0.5, 2}\n"
                 "  %c = Conv(%x, %w)\n  %y = Relu(%c)\n  output %c : f32[1,2,4,4]\n  output %y : f32[1,2,4,4]\n}\n",
                 "");
}

/* %a feeds %m directly and through TopK (no compute definition, never
** fused): joining %a and %m would need TopK inside the group. */
static void path_through_an_outside_node(void) {
    check_fusion("graph \"cycle\" {\n  opset 17\n  input %x : f32[4,8]\n  const %k : i64[1] = {1}\n"
                 "  %a = Relu(%x)\n  %v, %i = TopK(%a, %k)\n  %m = Add(%a, %v)\n  %z = Neg(%m)\n"
                 "  output %z : f32[4,8]\n}\n",
                 "Add+Neg");
}

/* %a broadcast over %y's rows would be recomputed per row if inlined. */
static void computed_value_is_not_broadcast(void) {
    check_fusion("graph \"bcast\" {\n  opset 17\n  input %x : f32[1,8]\n  input %y : f32[16,8]\n"
                 "  %a = Exp(%x)\n  %b = Add(%y, %a)\n  %c = Relu(%b)\n  output %c : f32[16,8]\n}\n",
                 "Add+Relu");
}

static void dynamic_shapes_stay(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse(ctx, "graph \"dyn\" {\n  opset 17\n  input %x : f32[batch,8]\n"
                              "  %a = Relu(%x)\n  %b = Neg(%a)\n  output %b : f32[batch,8]\n}\n");
    if (g) {
        CHECK_MSG(fuse(ctx, g) == KILN_OK, "%s", kiln_errmsg(ctx));
        CHECK(g->n_nodes == 2 && count_op(g, "FusedKernel") == 0);
    }
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

/* A FusedKernel written by hand: a body that does not match the node is a
** clear error, not a crash. */
static void bad_body_is_an_error(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse(ctx, "graph \"bad\" {\n  opset 17\n  opset ai.kiln 1\n  input %x : f32[4]\n"
                              "  %y = ai.kiln::FusedKernel(%x, %x) {body=graph \"body\" {\n"
                              "    input %p : f32[4]\n    %q = Relu(%p)\n    output %q\n  }}\n"
                              "  output %y\n}\n");
    if (g) {
        kiln_status s = pass_infer_shapes(ctx, g);
        kiln_tensor in, out;
        random_inputs(g, &in, 3);
        if (!s) s = gir_interp_run(ctx, g, &in, 1, &out, 1);
        CHECK(s == KILN_ERR_INVALID);
        CHECK_MSG(strstr(kiln_errmsg(ctx), "the body takes 1 inputs"), "%s", kiln_errmsg(ctx));
        kiln_tensor_release(&in);
    }
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

/* Fails the Nth allocation of the pass, N = 0, 1, ...: each run ends in
** success or KILN_ERR_NOMEM, leaves a valid graph and leaks nothing. */
static void allocation_failures(void) {
    static const char *text = "graph \"sweep\" {\n  opset 17\n  input %x : f32[1,2,4,4]\n"
                              "  const %w : f32[2,2,1,1] = {1, -1, 0.5, 2}\n  const %b : f32[2] = {0.5, -1}\n"
                              "  %c = Conv(%x, %w, %b)\n  %a = Add(%c, %x)\n  %y = Relu(%a)\n"
                              "  %t = Transpose(%y) {perm=[0, 1, 3, 2]}\n  %z = Sigmoid(%t)\n"
                              "  output %z : f32[1,2,4,4]\n}\n";
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    long n = 0;
    for (; n < 20000; n++) {
        long base = kiln_mem_live();
        gir_graph *g = parse(ctx, text);
        if (!g || pass_infer_shapes(ctx, g)) {
            gir_graph_free(g);
            break;
        }
        kiln_mem_fail_after(n);
        kiln_status s = pass_fuse_kernels(ctx, g);
        kiln_mem_fail_after(-1);
        CHECK_MSG(s == KILN_OK || s == KILN_ERR_NOMEM, "allocation %ld failed gave %s", n, kiln_errmsg(ctx));
        CHECK_MSG(gir_verify(ctx, g, NULL) == KILN_OK, "allocation %ld: %s", n, kiln_errmsg(ctx));
        bool done = s == KILN_OK && count_op(g, "FusedKernel") == 2;
        gir_graph_free(g);
        CHECK_MSG(kiln_mem_live() == base, "allocation %ld failed: %ld blocks leaked", n, kiln_mem_live() - base);
        if (done) break;
    }
    CHECK_MSG(n > 0 && n < 20000, "the pass never succeeded (%ld runs)", n);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(conv_epilogue_fuses), T(matmul_epilogue_and_chain_fuse), T(residual_add_joins_the_free_anchor), T(reduction_absorbs_producers), T(views_fuse_as_injective), T(views_around_an_epilogue),
          T(member_read_twice_outside), T(path_through_an_outside_node), T(computed_value_is_not_broadcast), T(dynamic_shapes_stay),
          T(bad_body_is_an_error), T(allocation_failures))
