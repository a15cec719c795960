/*
** test_fold_constants.c — constant folding on small graphs in the text form.
*/
#include <string.h>

#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "passes/pass.h"

static gir_graph *parse(kiln_ctx *ctx, const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(ctx));
    return g;
}

static int count_op(const gir_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

/* The exporter's head-split chain: Shape → Gather → Unsqueeze → Concat → Reshape. */
static void shape_chain_folds_into_a_constant_reshape(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse(ctx,
        "graph \"chain\" {\n"
        "  opset 13\n"
        "  input %x : f32[2,6]\n"
        "  const %zero : i64[] = {0}\n"
        "  const %axes : i64[1] = {0}\n"
        "  const %tail : i64[2] = {3, 2}\n"
        "  %s = Shape(%x)\n"
        "  %b = Gather(%s, %zero) {axis=0}\n"
        "  %bu = Unsqueeze(%b, %axes)\n"
        "  %shape = Concat(%bu, %tail) {axis=0}\n"
        "  %y = Reshape(%x, %shape)\n"
        "  output %y : f32[?,?,?]\n"
        "}\n");
    if (!g) return;
    CHECK_MSG(pass_fold_constants(ctx, g) == KILN_OK, "%s", kiln_errmsg(ctx));
    CHECK(g->n_nodes == 1 && count_op(g, "Reshape") == 1);
    gir_value *shape = gir_value_find(g, "shape");
    CHECK(shape && shape->constant && kiln_numel(shape->constant) == 3);
    if (shape && shape->constant) {
        const int64_t *d = shape->constant->data;
        CHECK(d[0] == 2 && d[1] == 3 && d[2] == 2);
    }
    gir_value *y = gir_value_find(g, "y");
    CHECK(y && y->type.rank == 3 && y->type.dims[1].value == 3);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

static void values_that_need_inputs_stay(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse(ctx,
        "graph \"keep\" {\n"
        "  opset 17\n"
        "  input %x : f32[4]\n"
        "  const %c : f32[4] = {1, 2, 3, 4}\n"
        "  %d = Mul(%c, %c)\n"
        "  %y = Add(%x, %d)\n"
        "  output %y : f32[4]\n"
        "}\n");
    if (!g) return;
    CHECK(pass_fold_constants(ctx, g) == KILN_OK);
    CHECK(g->n_nodes == 1 && count_op(g, "Add") == 1);
    gir_value *d = gir_value_find(g, "d");
    CHECK(d && d->constant && ((const float *)d->constant->data)[3] == 16.0f);
    /* the folded graph still runs and gives the same answer */
    kiln_tensor in, out;
    float xs[4] = {1, 1, 1, 1};
    int64_t dims[1] = {4};
    kiln_tensor_init(&in, KILN_F32, 1, dims);
    in.data = xs;
    CHECK(gir_interp_run(ctx, g, &in, 1, &out, 1) == KILN_OK);
    CHECK(((float *)out.data)[2] == 10.0f);
    kiln_tensor_release(&out);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

static void huge_constants_are_not_materialized(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse(ctx,
        "graph \"big\" {\n"
        "  opset 17\n"
        "  input %x : f32[1]\n"
        "  const %shape : i64[2] = {100000, 100000}\n"
        "  %big = ConstantOfShape(%shape)\n"
        "  %y = Add(%x, %big)\n"
        "  output %y : f32[100000,100000]\n"
        "}\n");
    if (!g) return;
    CHECK_MSG(pass_fold_constants(ctx, g) == KILN_OK, "%s", kiln_errmsg(ctx));
    CHECK(count_op(g, "ConstantOfShape") == 1);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(shape_chain_folds_into_a_constant_reshape), T(values_that_need_inputs_stay),
          T(huge_constants_are_not_materialized))
