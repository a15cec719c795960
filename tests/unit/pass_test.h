/*
** pass_test.h — shared by the graph-pass tests (included; all static):
** parse a graph in the text form, run it on the reference interpreter with
** seeded random inputs, run passes with the verifier after each, run it
** again and compare.
*/
#ifndef KILN_TEST_PASS_TEST_H
#define KILN_TEST_PASS_TEST_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/dtype.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "passes/pass.h"

#define PT_MAX_IO 8

typedef kiln_status (*pt_pass)(kiln_ctx *, gir_graph *);

static kiln_ctx *pt_ctx;
static uint64_t pt_rng = 0x2545f4914f6cdd1dull;

static double pt_unit(void) {
    pt_rng ^= pt_rng << 13, pt_rng ^= pt_rng >> 7, pt_rng ^= pt_rng << 17;
    return (double)(pt_rng >> 11) / 9007199254740992.0;
}

static int pt_count(const gir_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; g && i < g->n_nodes; i++) n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

static void pt_free_ctx(void) { kiln_ctx_free(pt_ctx); }

static gir_graph *pt_parse(const char *text) {
    gir_graph *g = NULL;
    if (!pt_ctx && kiln_ctx_new(&pt_ctx) == KILN_OK) atexit(pt_free_ctx);
    kiln_status s = gir_parse(pt_ctx, text, &g);
    CHECK_MSG(!s, "parse: %s", kiln_errmsg(pt_ctx));
    if (!s) s = pass_infer_shapes(pt_ctx, g);
    CHECK_MSG(!s, "infer: %s", kiln_errmsg(pt_ctx));
    if (s) {
        gir_graph_free(g);
        return NULL;
    }
    return g;
}

/* Random data for each graph input: floats in [-3, 3), small integers, bools. */
static bool pt_inputs(const gir_graph *g, kiln_tensor *in) {
    for (int i = 0; i < g->n_inputs; i++) {
        kiln_tensor t;
        if (!gir_type_is_static(&g->inputs[i]->type)) return false;
        gir_type_to_tensor(&g->inputs[i]->type, &t);
        if (kiln_tensor_alloc(pt_ctx, &t)) return false;
        for (int64_t k = 0; k < kiln_numel(&t); k++) {
            double x = 6 * pt_unit() - 3;
            kiln_store_f64(t.dtype, t.data, k, t.dtype == KILN_BOOL ? x > 0 : kiln_dtype_is_float(t.dtype) ? x : floor(x));
        }
        in[i] = t;
    }
    return true;
}

static void pt_release(kiln_tensor *t, int n) {
    for (int i = 0; i < n; i++) kiln_tensor_release(&t[i]);
}

/* max |a - b| / max(max |b|, 1); infinite when shapes, types or NaNs differ. */
static double pt_error(const kiln_tensor *a, const kiln_tensor *b) {
    if (!kiln_tensor_same_shape(a, b) || a->dtype != b->dtype) return INFINITY;
    double err = 0, big = 1;
    for (int64_t k = 0; k < kiln_numel(a); k++) {
        double x = kiln_tensor_f64(a, k), y = kiln_tensor_f64(b, k);
        if (isnan(x) != isnan(y)) return INFINITY;
        if (isnan(x)) continue;
        err = fmax(err, fabs(x - y));
        big = fmax(big, fabs(y));
    }
    return err / big;
}

/* Runs the passes in order on g, each followed by the verifier, then shape
** inference again (it must still hold) and the verifier once more. */
static bool pt_passes(gir_graph *g, const pt_pass *passes, int n) {
    for (int i = 0; i < n; i++) {
        kiln_status s = passes[i](pt_ctx, g);
        CHECK_MSG(!s, "pass %d: %s", i, kiln_errmsg(pt_ctx));
        if (!s) s = gir_verify(pt_ctx, g, "tested pass");
        CHECK_MSG(!s, "verify after pass %d: %s", i, kiln_errmsg(pt_ctx));
        if (s) return false;
    }
    kiln_status s = pass_infer_shapes(pt_ctx, g);
    if (!s) s = gir_verify(pt_ctx, g, "infer_shapes after the tested passes");
    CHECK_MSG(!s, "after the passes: %s", kiln_errmsg(pt_ctx));
    return !s;
}

/* Parses text (with shape inference), runs it, runs the passes, runs it
** again and checks every output agrees within tol. Returns the rewritten
** graph (the caller frees it) or NULL. */
static gir_graph *pt_check_n(const char *text, const pt_pass *passes, int n, double tol) {
    gir_graph *g = pt_parse(text);
    kiln_tensor in[PT_MAX_IO], before[PT_MAX_IO], after[PT_MAX_IO];
    if (!g) return NULL;
    if (g->n_inputs > PT_MAX_IO || g->n_outputs > PT_MAX_IO || !pt_inputs(g, in)) {
        CHECK_MSG(false, "test graph has unusable inputs");
        gir_graph_free(g);
        return NULL;
    }
    kiln_status s = gir_interp_run(pt_ctx, g, in, g->n_inputs, before, g->n_outputs);
    CHECK_MSG(!s, "before: %s", kiln_errmsg(pt_ctx));
    if (!s && pt_passes(g, passes, n)) {
        kiln_status r = gir_interp_run(pt_ctx, g, in, g->n_inputs, after, g->n_outputs);
        CHECK_MSG(!r, "after: %s", kiln_errmsg(pt_ctx));
        for (int i = 0; !r && i < g->n_outputs; i++) {
            double e = pt_error(&after[i], &before[i]);
            CHECK_MSG(e <= tol, "output %d ('%s') differs by %g after the passes", i, g->outputs[i]->name, e);
        }
        if (!r) pt_release(after, g->n_outputs);
    }
    if (!s) pt_release(before, g->n_outputs);
    pt_release(in, g->n_inputs);
    return g;
}

static inline gir_graph *pt_check(const char *text, pt_pass pass, double tol) { return pt_check_n(text, &pass, 1, tol); }

#endif
