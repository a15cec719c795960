/*
** pattern_check.h — shared by the pattern fusion tests (included; all
** static): parse a graph in the text form, run the reference interpreter
** on seeded random inputs before and after a pass, and compare.
*/
#ifndef KILN_TEST_PATTERN_CHECK_H
#define KILN_TEST_PATTERN_CHECK_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "passes/pass.h"

#define PC_MAX_IO 8

static uint64_t pc_rng = 0x9e3779b97f4a7c15ull;

static double pc_unit(void) {
    pc_rng ^= pc_rng << 13, pc_rng ^= pc_rng >> 7, pc_rng ^= pc_rng << 17;
    return (double)(pc_rng >> 11) / 9007199254740992.0;
}

static int pc_count(const gir_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

/* Random data for each graph input: floats in [-3, 3), bools 0/1 (mostly 1). */
static bool pc_inputs(kiln_ctx *ctx, const gir_graph *g, kiln_tensor *in) {
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_tensor t;
        gir_type_to_tensor(&g->inputs[i]->type, &t);
        if (kiln_tensor_alloc(ctx, &t)) return false;
        for (int64_t k = 0; k < kiln_numel(&t); k++)
            kiln_store_f64(t.dtype, t.data, k, t.dtype == KILN_BOOL ? pc_unit() < 0.8 : 6 * pc_unit() - 3);
        in[i] = t;
    }
    return true;
}

static void pc_release(kiln_tensor *t, int n) {
    for (int i = 0; i < n; i++) kiln_tensor_release(&t[i]);
}

/* max |a - b| / max(max |b|, 1) over one output. */
static double pc_error(const kiln_tensor *a, const kiln_tensor *b) {
    if (kiln_numel(a) != kiln_numel(b) || a->dtype != b->dtype) return INFINITY;
    double err = 0, big = 1;
    for (int64_t k = 0; k < kiln_numel(a); k++) {
        double x = kiln_tensor_f64(a, k), y = kiln_tensor_f64(b, k);
        err = fmax(err, fabs(x - y));
        big = fmax(big, fabs(y));
        if (isnan(x) != isnan(y)) return INFINITY;
    }
    return err / big;
}

/* Parses text, infers shapes and folds constants, runs the graph, runs
** `pass`, checks that `op` appears `want` times and that the outputs agree
** within tol. Returns the graph after the pass (caller frees) or NULL. */
__attribute__((unused)) static gir_graph *pc_check(const char *text, kiln_status (*pass)(kiln_ctx *, gir_graph *), const char *op,
                           int want, double tol) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = NULL;
    kiln_tensor in[PC_MAX_IO], before[PC_MAX_IO], after[PC_MAX_IO];
    kiln_status s = gir_parse(ctx, text, &g);
    CHECK_MSG(!s, "%s", kiln_errmsg(ctx));
    if (!s) s = pass_infer_shapes(ctx, g);
    if (!s) s = pass_fold_constants(ctx, g);
    CHECK_MSG(!s, "%s", kiln_errmsg(ctx));
    if (s || g->n_inputs > PC_MAX_IO || g->n_outputs > PC_MAX_IO || !pc_inputs(ctx, g, in)) {
        gir_graph_free(g);
        kiln_ctx_free(ctx);
        return NULL;
    }
    s = gir_interp_run(ctx, g, in, g->n_inputs, before, g->n_outputs);
    CHECK_MSG(!s, "before: %s", kiln_errmsg(ctx));
    kiln_status ps = s ? s : pass(ctx, g);
    CHECK_MSG(!ps, "pass: %s", kiln_errmsg(ctx));
    if (!ps) ps = gir_verify(ctx, g, "pattern test");
    CHECK_MSG(!ps, "verify: %s", kiln_errmsg(ctx));
    CHECK_MSG(pc_count(g, op) == want, "%d %s nodes, want %d", pc_count(g, op), op, want);
    if (!s && !ps) {
        kiln_status r = gir_interp_run(ctx, g, in, g->n_inputs, after, g->n_outputs);
        CHECK_MSG(!r, "after: %s", kiln_errmsg(ctx));
        for (int i = 0; !r && i < g->n_outputs; i++) {
            double e = pc_error(&after[i], &before[i]);
            CHECK_MSG(e <= tol, "output %d differs by %g after the pass", i, e);
        }
        if (!r) pc_release(after, g->n_outputs);
    }
    if (!s) pc_release(before, g->n_outputs);
    pc_release(in, g->n_inputs);
    kiln_ctx_free(ctx);
    return g;
}

#endif
