/*
** tmpl_elemwise.c — functions without reductions (elementwise, broadcast,
** injective): intermediate stages inlined into their consumers, and each
** remaining stage as
**
**   for (the outer axes and v_o, fused) parallel     when the stage is large
**     for v_i vectorized                             v: the innermost axis
**
** Knobs: vectors (the vector tile in vectors of the target's width; 0 keeps
** the loops scalar), parallel (0 never, 1 stages of 64K+ elements, 2
** always), inline (1 inlines producers into their elementwise consumers).
*/
#include "tmpl_internal.h"

static const tir_stage *largest_output(const tir_func *f) {
    const tir_stage *best = NULL;
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (tmpl_is_output(f, s->out) && (!best || tmpl_numel(s->out) > tmpl_numel(best->out))) best = s;
    }
    return best;
}

static kiln_status ew_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    *applies = false;
    if (!f->n_stages || !tmpl_names_ok(f)) return KILN_OK;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->n_raxes) return KILN_OK;
    const tir_stage *main = largest_output(f);
    if (!main) return KILN_OK;
    *applies = true;
    tmpl_gen g = tmpl_gen_default(main, t);
    int lanes = tmpl_lanes(t, tmpl_elem_bytes(main));
    static const int64_t vecs[] = {1, 2, 4, 0}, par[] = {1, 0, 2}, onoff[] = {1, 0};
    tmpl_knob(sp, "vectors", 4, vecs, g.vec / lanes);
    tmpl_knob(sp, "parallel", 3, par, 1);
    tmpl_knob(sp, "inline", 2, onoff, 1);
    return KILN_OK;
}

static void ew_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    if (tmpl_val(sp, pt, "inline", 1)) tmpl_inline_chains(b, f, NULL);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_elemwise = {"elemwise", ew_space, ew_trace};
