/*
** tmpl_pool.c — window reductions (MaxPool, AveragePool, LpPool: a POOL
** stage over [n, c, spatial..] reducing the window taps, with an
** elementwise epilogue for the average's division):
**
**   for (n, c, oh, ow_o fused) parallel
**     acc[ow_v] = identity                  a vector of output positions
**     for kh, kw (kw unrolled)
**       for ow_v vectorized
**         acc = max/sum(acc, tap)           taps outside the input: the identity
**     for ow_v vectorized: out = epilogue(acc)
**
** The taps' indices are clamped into the input (the compute definition's
** padding), so loads gather; the vector still does the compares, selects
** and maxima of 16 positions at once.
**
** Knobs: vectors (0: scalar), parallel, unroll_kw.
*/
#include <string.h>

#include "tmpl_internal.h"

typedef struct pl_info {
    const tir_stage *P, *E;
    int n, nr;
    int lanes;
} pl_info;

static bool pl_analyse(const tir_func *f, const cg_cpu_target *t, pl_info *pi) {
    memset(pi, 0, sizeof *pi);
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->tag == TIR_TAG_POOL) {
            if (pi->P) return false;
            pi->P = f->stages[i];
        }
    const tir_stage *P = pi->P;
    if (!P || P->n_axes < 3 || P->n_raxes < 1 || P->n_axes + P->n_raxes + 2 > SCH_MAX_NAMES || !tmpl_names_ok(f))
        return false;
    if (!(pi->E = tmpl_epilogue(f, P))) return false;
    pi->n = P->n_axes;
    pi->nr = P->n_raxes;
    pi->lanes = tmpl_lanes(t, tmpl_elem_bytes(P));
    return true;
}

static kiln_status pl_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    pl_info pi;
    *applies = pl_analyse(f, t, &pi);
    if (!*applies) return KILN_OK;
    static const int64_t vecs[] = {1, 2, 4, 0}, onoff[] = {1, 0}, off[] = {0};
    int64_t kw = pi.P->raxes[pi.nr - 1]->extent;
    bool ukw = kw <= 8;
    /* the taps gather: scalar positions, which LLVM vectorizes itself */
    tmpl_knob(sp, "vectors", 4, vecs, 0);
    tmpl_knob(sp, "parallel", 2, onoff, tmpl_work(pi.P) >= TMPL_PAR_MIN_WORK);
    tmpl_knob(sp, "unroll_kw", ukw ? 2 : 1, ukw ? onoff : off, 0);
    return KILN_OK;
}

static void pl_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    pl_info pi;
    if (!pl_analyse(f, t, &pi)) return;
    const tir_stage *P = pi.P, *E = pi.E;
    int64_t vec = tmpl_val(sp, pt, "vectors", 1) * pi.lanes;
    bool par = tmpl_val(sp, pt, "parallel", 0) != 0, ukw = tmpl_val(sp, pt, "unroll_kw", 0) != 0;
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s != E && s != P && !s->n_raxes && !tmpl_is_output(f, s->out) && tmpl_reads(s->body, P->out))
            tb_inline(b, s->name);
    }
    const char *ow = E->axes[pi.n - 1]->name, *owo = NULL, *owv = ow, *ord[SCH_MAX_NAMES];
    if (vec > 1) vec = tmpl_vec_tile(E->axes[pi.n - 1]->extent, vec, pi.lanes, E == P).tile;
    if (vec > 1 && E->axes[pi.n - 1]->extent > vec) tb_split1(b, E->name, ow, vec, &owo, &owv);
    int n = 0;
    for (int d = 0; d < pi.n - 1; d++) ord[n++] = E->axes[d]->name;
    if (owo) ord[n++] = owo;
    int n_outer = n;
    if (E == P)
        for (int r = 0; r < pi.nr; r++) ord[n++] = P->raxes[r]->name;
    ord[n++] = owv;
    tb_reorder(b, E->name, n, ord);
    const char *tile = tb_fuse(b, E->name, n_outer, ord);
    if (vec > 1) tb_vectorize(b, E->name, owv);
    if (E == P) {
        if (ukw) tb_unroll(b, P->name, P->raxes[pi.nr - 1]->name);
        tb_cache_write(b, P->name, tile);
    } else if (tile) {
        tb_compute_at(b, P->name, E->name, tile);
        n = 0;
        for (int r = 0; r < pi.nr; r++) ord[n++] = P->raxes[r]->name;
        ord[n++] = P->axes[pi.n - 1]->name;
        tb_reorder(b, P->name, n, ord);
        if (ukw) tb_unroll(b, P->name, P->raxes[pi.nr - 1]->name);
        if (vec > 1) tb_vectorize(b, P->name, P->axes[pi.n - 1]->name);
    }
    if (par && tile) tb_parallel(b, E->name, tile);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_pool = {"pool", pl_space, pl_trace};
