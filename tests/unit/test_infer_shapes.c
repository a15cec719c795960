/*
** test_infer_shapes.c — the static shape/type inference pass: results on
** small graphs in the text form, what stays unknown, conflicts with declared
** types, and, over the ONNX conformance models, agreement of the inferred
** output types with the expected outputs.
*/
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "passes/pass.h"

/* Parses, runs the pass, and returns the graph printed (kiln_malloc), or
** NULL when a step fails (the message is in ctx). */
static char *infer_text(kiln_ctx *ctx, const char *text, kiln_status *st) {
    gir_graph *g = NULL;
    *st = gir_parse(ctx, text, &g);
    CHECK_MSG(*st == KILN_OK, "parse: %s", kiln_errmsg(ctx));
    if (*st) return NULL;
    *st = pass_infer_shapes(ctx, g);
    char *out = *st ? NULL : gir_print_str(g, GIR_PRINT_FULL);
    if (!*st) {
        kiln_status v = gir_verify(ctx, g, "infer-shapes");
        CHECK_MSG(v == KILN_OK, "verify: %s", kiln_errmsg(ctx));
    }
    gir_graph_free(g);
    return out;
}

static void expect_lines(const char *text, const char *const *lines) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    kiln_status st;
    char *out = infer_text(ctx, text, &st);
    CHECK_MSG(st == KILN_OK, "infer: %s", kiln_errmsg(ctx));
    for (int i = 0; out && lines[i]; i++)
        CHECK_MSG(strstr(out, lines[i]) != NULL, "missing \"%s\" in:\n%s", lines[i], out);
    kiln_free(out);
    kiln_ctx_free(ctx);
}

static void expect_error(const char *text, kiln_status want, const char *msg) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    kiln_status st;
    char *out = infer_text(ctx, text, &st);
    CHECK_MSG(st == want, "status %s, want %s (%s)", kiln_status_name(st), kiln_status_name(want), kiln_errmsg(ctx));
    CHECK_MSG(strstr(kiln_errmsg(ctx), msg) != NULL, "message \"%s\" lacks \"%s\"", kiln_errmsg(ctx), msg);
    kiln_free(out);
    kiln_ctx_free(ctx);
}

#define LINES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void elementwise_and_broadcast(void) {
    expect_lines("graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n  input %b : f32[3]\n"
                 "  %a = Relu(%x)\n  %c = Add(%a, %b)\n  %d = Cast(%c) {to=7}\n  output %d\n}\n",
                 LINES("%a : f32[2,3] = Relu(%x)", "%c : f32[2,3] = Add(%a, %b)", "%d : i64[2,3] = Cast(%c)",
                       "output %d : i64[2,3]"));
}

static void shapes_from_constants(void) {
    /* an initializer, and a Constant node whose value the pass computes */
    expect_lines("graph \"g\" {\n  opset 17\n  input %x : f32[2,3,4]\n  const %s : i64[2] = {6, -1}\n"
                 "  %a = Reshape(%x, %s)\n"
                 "  %k = Constant() {value=i64[3] {4, 0, -1}}\n  %b = Reshape(%x, %k)\n"
                 "  %two = Constant() {value=i64[1] {2}}\n  %twelve = Constant() {value=i64[1] {12}}\n"
                 "  %k2 = Concat(%two, %twelve) {axis=0}\n"
                 "  %c = Reshape(%x, %k2)\n  output %a\n  output %b\n  output %c\n}\n",
                 LINES("%a : f32[6,4] = Reshape", "%k : i64[3] = Constant", "%b : f32[4,3,2] = Reshape",
                       "%k2 : i64[2] = Concat", "%c : f32[2,12] = Reshape"));
}

static void dynamic_and_symbolic_stay_unknown(void) {
    /* a shape only known at run time, and a symbolic batch dim */
    expect_lines("graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n  input %s : i64[2]\n  input %y : f32[n,3]\n"
                 "  %a = Reshape(%x, %s)\n  %b = Relu(%a)\n  %c = Relu(%y)\n  %d = Relu(%x)\n"
                 "  output %b\n  output %c\n  output %d\n}\n",
                 LINES("  %a = Reshape(%x, %s)\n", "  %b = Relu(%a)\n", "  %c = Relu(%y)\n", "%d : f32[2,3] = Relu(%x)"));
}

static void declared_types(void) {
    /* a declared symbolic or unknown dim is replaced by the static one */
    expect_lines("graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n  %a : f32[batch,?] = Relu(%x)\n"
                 "  output %a : f32[batch,?]\n}\n",
                 LINES("%a : f32[2,3] = Relu(%x)", "output %a : f32[2,3]"));
    expect_error("graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n  %a : f32[2,4] = Relu(%x) name=\"r\"\n  output %a\n}\n",
                 KILN_ERR_SHAPE, "node 'r' (Relu): output 0 'a' is declared f32[2,4], but the op infers f32[2,3]");
    expect_error("graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n  %a = Relu(%x) name=\"r\"\n  output %a : f16[2,3]\n}\n",
                 KILN_ERR_SHAPE, "output 0 'a' is declared f16[2,3], but the op infers f32[2,3]");
}

static void errors_name_the_node(void) {
    expect_error("graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n  input %y : f32[4]\n"
                 "  %a = Add(%x, %y) name=\"add\"\n  output %a\n}\n",
                 KILN_ERR_SHAPE, "node 'add' (Add)");
    expect_error("graph \"g\" {\n  opset 17\n  input %x : f32[2]\n  %a = NoSuchOp(%x) name=\"z\"\n  output %a\n}\n",
                 KILN_ERR_UNSUPPORTED, "node 'z' (NoSuchOp): unsupported op 'NoSuchOp'");
}

static void allocation_failures_are_clean(void) {
    static const char *text = "graph \"g\" {\n  opset 17\n  input %x : f32[2,2,2]\n"
                              "  %two = Constant() {value=i64[1] {2}}\n  %k = Concat(%two, %two, %two) {axis=0}\n"
                              "  %c = Reshape(%x, %k)\n  %d = Relu(%c)\n  output %d\n}\n";
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    long live = kiln_mem_live();
    bool done = false;
    for (long n = 0; n < 10000 && !done; n++) {
        gir_graph *g = NULL;
        if (gir_parse(ctx, text, &g)) break;
        kiln_mem_fail_after(n);
        kiln_status s = pass_infer_shapes(ctx, g);
        kiln_mem_fail_after(-1);
        CHECK_MSG(s == KILN_OK || s == KILN_ERR_NOMEM, "%s", kiln_errmsg(ctx));
        done = s == KILN_OK;
        gir_graph_free(g);
        CHECK(kiln_mem_live() == live);
    }
    CHECK(done);
    kiln_ctx_free(ctx);
}

/* Over the conformance models: wherever the pass finds a graph output's
** type, it must be the type of the expected output. */
static int check_case(kiln_ctx *ctx, const char *dir, const char *name, int *typed) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    gir_graph *g = NULL;
    if (onnx_load_file(ctx, path, &g)) return 0;
    for (int i = 0; i < g->n_outputs; i++) g->outputs[i]->type = (gir_type){.rank = -1};
    int wrong = 0;
    if (pass_infer_shapes(ctx, g) == KILN_OK) {
        for (int i = 0; i < g->n_outputs; i++) {
            const gir_type *ty = &g->outputs[i]->type;
            if (!gir_type_is_static(ty)) continue;
            kiln_tensor want;
            snprintf(path, sizeof path, "%s/%s/test_data_set_0/output_%d.pb", dir, name, i);
            if (onnx_tensor_read_file(ctx, path, &want)) continue;
            kiln_tensor got;
            gir_type_to_tensor(ty, &got);
            (*typed)++;
            if (got.dtype != want.dtype || !kiln_tensor_same_shape(&got, &want)) {
                char a[128], b[128];
                fprintf(stderr, "%s: output %d inferred %s, expected %s\n", name, i,
                        kiln_shape_str(&got, a, sizeof a), kiln_shape_str(&want, b, sizeof b));
                wrong++;
            }
            kiln_tensor_release(&want);
        }
    }
    gir_graph_free(g);
    return wrong;
}

static void conformance_outputs_match(void) {
    const char *src = getenv("KILN_SOURCE_DIR");
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/../shared/onnx-node-tests", src ? src : ".");
    DIR *d = opendir(dir);
    if (!d) {
        printf("skipped: no conformance models at %s\n", dir);
        return;
    }
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    int typed = 0, wrong = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (!strncmp(e->d_name, "test_", 5)) wrong += check_case(ctx, dir, e->d_name, &typed);
    closedir(d);
    printf("%d conformance outputs typed by inference, %d wrong\n", typed, wrong);
    CHECK(typed > 100);
    CHECK(wrong == 0);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(elementwise_and_broadcast), T(shapes_from_constants), T(dynamic_and_symbolic_stay_unknown),
          T(declared_types), T(errors_name_the_node), T(allocation_failures_are_clean),
          T(conformance_outputs_match))
