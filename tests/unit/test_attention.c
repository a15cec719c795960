/*
** test_attention.c — Attention's compute definition under its schedule
** template (autotune/tmpl_attention.c): every value of every knob of the
** template's space on odd shapes, compiled by the LLVM backend, against the reference kernel.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/templates.h"
#include "codegen/cg_llvm.h"
#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/lir.h"
#include "ir/sched.h"
#include "ir/tensor.h"
#include "ir/tir.h"

static uint64_t g_rng = 0x243f6a8885a308d3ull;

static double unit(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

/* Runs f under the trace on the LLVM backend into out[0]. */
static kiln_status run_compiled(kiln_ctx *ctx, const tir_func *f, const sch_trace *trace, const kiln_tensor *in,
                                kiln_tensor *out) {
    lir_func *lf = NULL;
    cg_module *m = NULL;
    cg_options o;
    cg_options_default(&o);
    void *args[8];
    kiln_status s = sch_lower(ctx, f, trace, &lf);
    if (!s) s = lir_simplify(ctx, lf);
    if (!s) s = cg_llvm_jit(ctx, &lf, 1, &o, &m);
    cg_kernel_fn fn = s ? NULL : cg_module_lookup(m, lf->name);
    if (!s && !fn) s = kiln_fail(ctx, KILN_ERR_INTERNAL, "kernel not found");
    if (!s) {
        const tir_tensor *t = f->outputs[0];
        kiln_tensor_init(out, t->dtype, t->rank, t->dims);
        s = kiln_tensor_alloc(ctx, out);
    }
    if (!s) {
        for (int k = 0; k < f->n_inputs; k++) args[k] = in[k].data;
        args[f->n_inputs] = out->data;
        fn(args);
    }
    cg_module_free(m);
    lir_func_free(lf);
    return s;
}

static double max_error(const kiln_tensor *a, const kiln_tensor *b) {
    double err = 0, big = 1e-6;
    for (int64_t k = 0; k < kiln_numel(b); k++) {
        double x = kiln_tensor_f64(a, k), y = kiln_tensor_f64(b, k);
        if (isnan(x) != isnan(y)) return INFINITY;
        err = fmax(err, fabs(x - y));
        big = fmax(big, fabs(y));
    }
    return err / big;
}

/* One Attention graph: every point of its template's space against the
** reference kernel. want_template: the template the space must come from. */
static void check_graph(const char *text, const char *want_template) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = NULL;
    kiln_tensor in[4], ref = {0};
    const kiln_tensor *inp[4];
    int n_in = 0;
    tir_func *f = NULL;
    kiln_status s = gir_parse(ctx, text, &g);
    gir_node *n = s ? NULL : g->nodes[g->n_nodes - 1];
    if (!s) s = gir_bind_op(ctx, n);
    for (int k = 0; !s && k < n->n_inputs; k++, n_in++) {
        gir_type_to_tensor(&n->inputs[k]->type, &in[k]);
        if ((s = kiln_tensor_alloc(ctx, &in[k]))) break;
        for (int64_t e = 0; e < kiln_numel(&in[k]); e++)
            kiln_store_f64(in[k].dtype, in[k].data, e, in[k].dtype == KILN_BOOL ? unit() < 0.7 : 4 * unit() - 2);
        inp[k] = &in[k];
    }
    if (!s) s = gir_run_node(ctx, n, inp, &ref);
    if (!s) s = tir_from_node(ctx, n, inp, &f);
    CHECK_MSG(!s, "%s", kiln_errmsg(ctx));
    cg_cpu_target target;
    tune_space sp;
    if (!s) s = cg_cpu_host(ctx, &target);
    if (!s) s = tune_space_for(ctx, f, &target, &sp);
    CHECK_MSG(!s && !strcmp(sp.template_name, want_template), "template %s", s ? "?" : sp.template_name);
    /* the default point, then each value of each knob with the others at
    ** their defaults (attention's space only; another template's default) */
    bool all = !s && !strcmp(sp.template_name, "attention");
    int points = 1;
    for (int k = 0; all && k < sp.n_knobs; k++) points += sp.knobs[k].n_values;
    CHECK(s || sp.n_knobs <= TUNE_MAX_KNOBS);
    for (int p = 0; !s && p < points; p++) {
        int64_t pt[TUNE_MAX_KNOBS];
        tune_space_default(&sp, pt);
        for (int k = 0, r = p - 1; r >= 0 && k < sp.n_knobs; r -= sp.knobs[k].n_values, k++)
            if (r < sp.knobs[k].n_values) pt[k] = sp.knobs[k].values[r];
        sch_trace *tr = NULL;
        kiln_tensor got = {0};
        char buf[256];
        kiln_status t = tune_trace_from_knobs(ctx, f, &target, &sp, pt, &tr);
        if (!t) t = run_compiled(ctx, f, tr, in, &got);
        CHECK_MSG(!t, "%s: %s", tune_point_str(&sp, pt, buf, sizeof buf), kiln_errmsg(ctx));
        double e = t ? 0 : max_error(&got, &ref);
        CHECK_MSG(e <= 1e-5, "%s: error %g", tune_point_str(&sp, pt, buf, sizeof buf), e);
        kiln_tensor_release(&got);
        sch_trace_free(tr);
    }
    tir_func_free(f);
    kiln_tensor_release(&ref);
    for (int k = 0; k < n_in; k++) kiln_tensor_release(&in[k]);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

static void plain_and_masked(void) {
    check_graph("graph \"a\" {\n opset 23\n input %q : f32[2,3,12,7]\n input %k : f32[2,3,20,7]\n"
                " input %v : f32[2,3,20,5]\n %y = Attention(%q, %k, %v)\n output %y\n}\n",
                "attention");
    check_graph("graph \"b\" {\n opset 23\n input %q : f32[1,4,16,32]\n input %k : f32[1,4,16,32]\n"
                " input %v : f32[1,4,16,32]\n input %m : f32[1,1,1,16]\n"
                " %y = Attention(%q, %k, %v, %m) {scale=0.2}\n output %y\n}\n",
                "attention");
}

static void causal_grouped_bool(void) {
    check_graph("graph \"c\" {\n opset 23\n input %q : f32[1,4,9,8]\n input %k : f32[1,2,9,8]\n"
                " input %v : f32[1,2,9,6]\n %y = Attention(%q, %k, %v) {is_causal=1}\n output %y\n}\n",
                "attention");
    /* a bool mask that leaves whole rows masked: those rows are zeros */
    check_graph("graph \"d\" {\n opset 23\n input %q : f32[2,2,6,4]\n input %k : f32[2,2,11,4]\n"
                " input %v : f32[2,2,11,3]\n input %m : bool[2,1,6,11]\n"
                " %y = Attention(%q, %k, %v, %m) {softcap=1.5}\n output %y\n}\n",
                "attention");
}

/* 3-D operands are computed by the definition but not this template. */
static void three_d_falls_back(void) {
    check_graph("graph \"e\" {\n opset 23\n input %q : f32[2,5,12]\n input %k : f32[2,7,12]\n"
                " input %v : f32[2,7,9]\n %y = Attention(%q, %k, %v) {q_num_heads=3, kv_num_heads=3}\n output %y\n}\n",
                "reduce");
}

TEST_MAIN(T(plain_and_masked), T(causal_grouped_bool), T(three_d_falls_back))
