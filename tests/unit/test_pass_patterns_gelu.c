/*
** test_pass_patterns_gelu.c — the Gelu node that fuse_gelu makes, compiled
** through Gelu's compute definition (default schedule, LLVM backend),
** against the decomposed graph it replaces run by the reference
** interpreter: the Erf and Tanh forms agree to 1e-6 (normalized) on inputs
** over [-6, 6), where the tails of both forms matter.
*/
#include "autotune/templates.h"
#include "codegen/cg_llvm.h"
#include "ir/lir.h"
#include "ir/sched.h"
#include "ir/tir.h"
#include "pattern_check.h"

static const char *const k_forms[] = {
    "graph \"erf\" {\n opset 14\n input %x : f32[4099]\n const %r2 : f32[] = {1.4142135381698608}\n"
    " const %one : f32[] = {1}\n const %half : f32[] = {0.5}\n"
    " %a = Div(%x, %r2)\n %e = Erf(%a)\n %p = Add(%e, %one)\n %q = Mul(%x, %p)\n %o = Mul(%q, %half)\n"
    " output %o\n}\n",
    "graph \"tanh\" {\n opset 14\n input %x : f32[4099]\n const %one : f32[] = {1}\n const %half : f32[] = {0.5}\n"
    " const %three : f32[] = {3}\n const %k : f32[] = {0.044715}\n const %c : f32[] = {0.7978845608}\n"
    " %h = Mul(%half, %x)\n %cu = Pow(%x, %three)\n %t1 = Mul(%k, %cu)\n %in = Add(%x, %t1)\n"
    " %t2 = Mul(%c, %in)\n %t = Tanh(%t2)\n %p = Add(%one, %t)\n %o = Mul(%h, %p)\n output %o\n}\n",
};

/* The node's compute definition under its default schedule, compiled. */
static kiln_status run_node_compiled(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, kiln_tensor *out) {
    tir_func *f = NULL;
    sch_trace *tr = NULL;
    lir_func *lf = NULL;
    cg_module *m = NULL;
    cg_options o;
    cg_options_default(&o);
    const kiln_tensor *in[1] = {x};
    kiln_status s = tir_from_node(ctx, n, in, &f);
    if (!s) s = tune_default_trace(ctx, f, &o.target, &tr);
    if (!s) s = sch_lower(ctx, f, tr, &lf);
    if (!s) s = lir_simplify(ctx, lf);
    if (!s) s = cg_llvm_jit(ctx, &lf, 1, &o, &m);
    cg_kernel_fn fn = s ? NULL : cg_module_lookup(m, lf->name);
    if (!s && !fn) s = kiln_fail(ctx, KILN_ERR_INTERNAL, "kernel not found");
    if (!s) {
        kiln_tensor_init(out, KILN_F32, x->rank, x->dims);
        s = kiln_tensor_alloc(ctx, out);
    }
    if (!s) {
        void *args[2] = {x->data, out->data};
        fn(args);
    }
    cg_module_free(m);
    lir_func_free(lf);
    sch_trace_free(tr);
    tir_func_free(f);
    return s;
}

static void compiled_gelu_matches_decomposed(void) {
    for (int i = 0; i < 2; i++) {
        kiln_ctx *ctx;
        kiln_ctx_new(&ctx);
        gir_graph *g = NULL;
        kiln_tensor x, want = {0}, got = {0};
        kiln_status s = gir_parse(ctx, k_forms[i], &g);
        if (!s) s = pass_infer_shapes(ctx, g);
        if (!s) s = pass_fold_constants(ctx, g);
        if (!s) {
            gir_type_to_tensor(&g->inputs[0]->type, &x);
            s = kiln_tensor_alloc(ctx, &x);
            for (int64_t k = 0; !s && k < kiln_numel(&x); k++) ((float *)x.data)[k] = (float)(12 * pc_unit() - 6);
        }
        if (!s) s = gir_interp_run(ctx, g, &x, 1, &want, 1);
        if (!s) s = pass_fuse_gelu(ctx, g);
        CHECK_MSG(!s, "%s", kiln_errmsg(ctx));
        CHECK_MSG(!s && g->n_nodes == 1 && !strcmp(g->nodes[0]->op_type, "Gelu"), "form %d did not fuse", i);
        if (!s && g->n_nodes == 1) {
            s = run_node_compiled(ctx, g->nodes[0], &x, &got);
            CHECK_MSG(!s, "%s", kiln_errmsg(ctx));
            double e = s ? 0 : pc_error(&got, &want);
            CHECK_MSG(e <= 1e-6, "form %d: compiled Gelu differs from the decomposed graph by %g", i, e);
            printf("gelu form %d: compiled vs decomposed normalized error %.3g\n", i, e);
        }
        kiln_tensor_release(&got);
        kiln_tensor_release(&want);
        kiln_tensor_release(&x);
        gir_graph_free(g);
        kiln_ctx_free(ctx);
    }
}

TEST_MAIN(T(compiled_gelu_matches_decomposed))
