/*
** tmpl_winograd.c — Winograd's input transform (the "wino_in" stage of
** ai.kiln::WinogradInput, ir/ops/ops_winograd.c: V[xi, t, ic], each element
** a sum of four taps of the blocked input x[n, ic / c, row, col, ic % c]):
**
**   for t parallel                            one 2x2 output tile
**     for ic_o                                one channel block
**       for xi unrolled                       the 16 positions: the 4x4
**         for ic_i vectorized                 patch's loads are shared
**           V[xi, t, ic_o*c + ic_i] = ...
**
** Splitting ic by the block makes the taps contiguous vectors (a plain loop
** over ic would gather); unrolled, the 16 positions' 64 taps are 16 loads.
**
** and its output transform (a "wino_out" stage with its elementwise
** epilogue, y[n, ocb, oh, ow, ob] from nine of the 16 M[xi, tile, oc]):
**
**   for (n, ocb, th) fused parallel
**     for tw
**       for r, q unrolled                     the tile's 2x2 outputs: they
**         for ob vectorized                   share the tile's 16 loads
**           y[n, ocb, 2*th + r, 2*tw + q, ob] = epilogue(...)
**
** Knobs: unroll (xi, or the 2x2 outputs, unrolled or loops), parallel.
*/
#include <string.h>

#include "tmpl_internal.h"

/* The stage and its input's channel block, when f is one wino_in stage. */
static const tir_stage *wg_stage(const tir_func *f, int64_t *block) {
    if (f->n_stages != 1 || f->n_inputs != 1 || !tmpl_names_ok(f)) return NULL;
    const tir_stage *s = f->stages[0];
    if (strcmp(s->name, "wino_in") || s->n_axes != 3 || s->n_raxes || s->axes[0]->extent != 16) return NULL;
    const tir_tensor *x = f->inputs[0];
    if (x->rank != 5 || x->dims[4] < 1 || s->axes[2]->extent % x->dims[4]) return NULL;
    *block = x->dims[4];
    return s;
}

/* The output transform and its epilogue's last stage, when f is one. */
static const tir_stage *wg_out_stage(const tir_func *f, const tir_stage **E) {
    if (!f->n_stages || !tmpl_names_ok(f)) return NULL;
    const tir_stage *W = f->stages[0];
    if (strcmp(W->name, "wino_out") || W->n_axes != 5 || W->n_raxes) return NULL;
    *E = tmpl_epilogue(f, W);
    return *E ? W : NULL;
}

static kiln_status wg_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx, (void)t;
    int64_t c = 0;
    const tir_stage *E = NULL, *s = wg_stage(f, &c);
    if (!s && wg_out_stage(f, &E)) s = E;
    *applies = s != NULL;
    if (!s) return KILN_OK;
    static const int64_t onoff[] = {1, 0};
    tmpl_knob(sp, "unroll", 2, onoff, 1);
    /* an output element reads nine (input: four) others: worth threads sooner */
    tmpl_knob(sp, "parallel", 2, onoff, tmpl_numel(s->out) * (E ? 4 : 1) >= TMPL_PAR_MIN_ELEMS);
    return KILN_OK;
}

/* The epilogue's last stage E over the output transform, inlined into it,
** by 2x2 tiles. */
static void wg_out_trace(tb *b, const tir_func *f, const tir_stage *E, const tune_space *sp, const int64_t *pt) {
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i] != E) tb_inline(b, f->stages[i]->name);
    const char *name = E->name, *ax[5];
    for (int d = 0; d < 5; d++) ax[d] = E->axes[d]->name;
    bool tiles = E->axes[2]->extent % 2 == 0 && E->axes[3]->extent % 2 == 0;
    const char *ho = NULL, *hi = NULL, *wo = NULL, *wi = NULL;
    if (tiles && tb_split1(b, name, ax[2], 2, &ho, &hi) && tb_split1(b, name, ax[3], 2, &wo, &wi)) {
        const char *order[7] = {ax[0], ax[1], ho, wo, hi, wi, ax[4]};
        tb_reorder(b, name, 7, order);
        if (tmpl_val(sp, pt, "unroll", 1)) tb_unroll(b, name, hi), tb_unroll(b, name, wi);
    }
    if (tb_extent(b, name, ax[4]) >= 2) tb_vectorize(b, name, ax[4]);
    const char *outer[3] = {ax[0], ax[1], ho ? ho : ax[2]};
    const char *p = tb_fuse(b, name, 3, outer);
    if (p && tmpl_val(sp, pt, "parallel", 1)) tb_parallel(b, name, p);
}

static void wg_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    (void)t;
    int64_t c = 0;
    const tir_stage *E = NULL, *s = wg_stage(f, &c);
    if (!s && wg_out_stage(f, &E)) wg_out_trace(b, f, E, sp, pt);
    if (!s) return;
    const char *name = s->name, *xi = s->axes[0]->name, *tt = s->axes[1]->name, *ico = NULL, *ici = s->axes[2]->name;
    if (s->axes[2]->extent > c) tb_split1(b, name, ici, c, &ico, &ici);
    const char *order[4];
    int n = 0;
    order[n++] = tt;
    if (ico) order[n++] = ico;
    order[n++] = xi;
    order[n++] = ici;
    tb_reorder(b, name, n, order);
    if (tmpl_val(sp, pt, "unroll", 1)) tb_unroll(b, name, xi);
    if (tb_extent(b, name, ici) >= 2) tb_vectorize(b, name, ici);
    if (tmpl_val(sp, pt, "parallel", 1)) tb_parallel(b, name, tt);
}

const tmpl_def tmpl_winograd = {"winograd", wg_space, wg_trace};
