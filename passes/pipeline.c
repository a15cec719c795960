/*
** pipeline.c — the flat list of graph passes and the loop that runs them.
*/
#include <string.h>

#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "pass.h"

/* Pipeline order. Level 0 passes are what lowering needs (static shapes and
** folded constants); the rest run at -O2. */
static const gir_pass PASSES[] = {
    {"infer_shapes", pass_infer_shapes, 0, "static shape and type inference"},
    {"fold_constants", pass_fold_constants, 0, "evaluate nodes whose inputs are known"},
    {"simplify", pass_simplify, 2, "identities: Identity, inference Dropout, x*1, x+0, same-type Cast, no-op reshapes"},
    {"simplify_chains", pass_simplify_chains, 2, "Reshape/Transpose/Squeeze chains -> one node or none"},
    {"fold_batch_norm", pass_fold_batch_norm, 2, "inference BatchNormalization -> Conv/Gemm weights and bias"},
    {"fold_matmul", pass_fold_matmul, 2, "transposes and scalar scales -> MatMul/Gemm operands and alpha"},
    {"eliminate_common", pass_eliminate_common, 2, "equal nodes and equal constants computed once"},
    {"eliminate_dead", pass_eliminate_dead, 2, "nodes and constants that reach no output"},
    {"fuse_layer_norm", pass_fuse_layer_norm, 2, "decomposed LayerNorm -> LayerNormalization"},
    {"fuse_gelu", pass_fuse_gelu, 2, "GELU in its Erf or Tanh form -> Gelu"},
    {"fuse_softmax", pass_fuse_softmax, 2, "max-subtracted Exp / ReduceSum -> Softmax"},
    {"fuse_attention", pass_fuse_attention, 2, "softmax(Q Kt * scale + mask) V -> Attention"},
    {"choose_layout", pass_choose_layout, 2, "Conv regions -> blocked channel layout (NCHWc), conversions at the edges"},
    {"winograd", pass_winograd, 2, "blocked 3x3 stride-1 Conv -> Winograd F(2x2,3x3): transforms around a batched MatMul"},
    {"fuse_kernels", pass_fuse_kernels, 2, "anchors with their epilogues, elementwise chains: one FusedKernel each"},
};

#define N_PASSES ((int)(sizeof PASSES / sizeof PASSES[0]))

void pass_options_default(pass_options *o) {
    memset(o, 0, sizeof *o);
    o->opt_level = 2;
#ifndef NDEBUG
    o->verify = true;
#endif
}

int pass_count(void) { return N_PASSES; }

const gir_pass *pass_at(int i) { return i >= 0 && i < N_PASSES ? &PASSES[i] : NULL; }

const gir_pass *pass_find(const char *name) {
    for (int i = 0; name && i < N_PASSES; i++)
        if (!strcmp(PASSES[i].name, name)) return &PASSES[i];
    return NULL;
}

kiln_status pass_disable(kiln_ctx *ctx, pass_options *o, const char *name) {
    if (!pass_find(name)) return kiln_fail(ctx, KILN_ERR_INVALID, "no pass is named '%s'", name);
    if (o->n_disabled >= PASS_MAX_DISABLED)
        return kiln_fail(ctx, KILN_ERR_INVALID, "at most %d passes can be disabled", PASS_MAX_DISABLED);
    o->disabled[o->n_disabled++] = name;
    return KILN_OK;
}

static bool disabled(const pass_options *o, const gir_pass *p) {
    for (int i = 0; i < o->n_disabled; i++)
        if (!strcmp(o->disabled[i], p->name)) return true;
    return false;
}

kiln_status pass_run_pipeline(kiln_ctx *ctx, gir_graph *g, const pass_options *o) {
    if (o->stop_after && !pass_find(o->stop_after))
        return kiln_fail(ctx, KILN_ERR_INVALID, "no pass is named '%s'", o->stop_after);
    bool verify = o->verify;
#ifndef NDEBUG
    verify = true;
#endif
    for (int i = 0; i < N_PASSES; i++) {
        const gir_pass *p = &PASSES[i];
        if (p->level <= o->opt_level && !disabled(o, p)) {
            kiln_status s = p->run(ctx, g);
            if (!s && verify) s = gir_verify(ctx, g, p->name);
            if (s) return kiln_wrap(ctx, s, "pass %s", p->name);
        }
        if (o->stop_after && !strcmp(o->stop_after, p->name)) break;
    }
    return KILN_OK;
}
