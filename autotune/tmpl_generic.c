/*
** tmpl_generic.c — the generic schedule of one stage, which every template
** uses for the stages it does not specialise:
**
**   outer-vector   for (P = the other spatial axes and v_o, fused) parallel
**                    [init the tile]
**                    for r.. (reductions)
**                      for v_i vectorized       v: the innermost axis
**   partial sums   for (P = the spatial axes, fused) parallel
**                    S_rf[P, r_i] = sum over r.., r_o  (r_i vectorized)
**                    S[P] = sum over r_i of S_rf       (r: the innermost,
**                                                       contiguous reduction)
**   plain          the spatial axes fused and parallel, nothing else
**
** The outer-vector form needs v contiguous in the stage's loads (else each
** reduction step would gather); a stage without reductions always takes it
** (its store is contiguous). Reductions accumulate in a local tile
** (cache_write) so that the accumulator lives in registers.
*/
#include <string.h>

#include "tmpl_internal.h"


/* The innermost spatial axis with extent > 1, or -1. */
static int vector_axis(const tir_stage *s) {
    for (int d = s->n_axes - 1; d >= 0; d--)
        if (s->axes[d]->extent > 1) return d;
    return -1;
}

/* Whether e computes a function the backend approximates in vector form
** only (scalar loops call libm, which LLVM cannot vectorize). */
static bool vector_math(const ex_expr *e) {
    if (e->kind == EX_UNARY && e->dtype == KILN_F32 &&
        (e->op == EX_EXP || e->op == EX_LOG || e->op == EX_TANH || e->op == EX_SIGMOID || e->op == EX_ERF))
        return true;
    for (int i = 0; i < e->n_args; i++)
        if (vector_math(e->args[i])) return true;
    return false;
}

/* The same for s or a stage it reads that inlining may bring into it. */
static bool needs_vector_math(const tir_stage *s, int depth) {
    if (!s->body || depth > 8) return false;
    if (vector_math(s->body)) return true;
    const ex_expr *stack[64];
    int n = 0;
    stack[n++] = s->body;
    while (n > 0) {
        const ex_expr *e = stack[--n];
        if (e->kind == EX_LOAD && e->tensor && e->tensor->stage && !e->tensor->stage->n_raxes &&
            needs_vector_math(e->tensor->stage, depth + 1))
            return true;
        for (int i = 0; i < e->n_args && n < 64; i++) stack[n++] = e->args[i];
    }
    return false;
}

tmpl_gen tmpl_gen_default(const tir_stage *s, const cg_cpu_target *t) {
    int lanes = tmpl_lanes(t, tmpl_elem_bytes(s));
    bool par = s->n_raxes ? tmpl_work(s) >= TMPL_PAR_MIN_WORK : tmpl_numel(s->out) >= TMPL_PAR_MIN_ELEMS;
    tmpl_gen g = {lanes, lanes, par, true, true};
    /* Without reductions, LLVM's loop vectorizer does as well as explicit
    ** vectors on plain arithmetic, selects and clamped loads (better: it
    ** sees which loads are safe); kiln's vector forms of exp, log, tanh,
    ** sigmoid and erf need explicit vectors. */
    if (!s->n_raxes && !needs_vector_math(s, 0)) g.vec = 0;
    return g;
}

tmpl_gen tmpl_gen_at(const tir_stage *s, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    tmpl_gen g = tmpl_gen_default(s, t);
    int lanes = tmpl_lanes(t, tmpl_elem_bytes(s));
    int64_t v = tmpl_val(sp, pt, "vectors", g.vec / lanes), par = tmpl_val(sp, pt, "parallel", 1);
    g.vec = v * lanes;
    g.parallel = par == 2 || (par == 1 && g.parallel);
    g.rfactor = tmpl_val(sp, pt, "rfactor", 1) != 0;
    g.cache = tmpl_val(sp, pt, "cache", 1) != 0;
    return g;
}

typedef enum gen_mode { GEN_PLAIN, GEN_OUTER_VEC, GEN_RFACTOR } gen_mode;

/* The access patterns come from the body with its inlined producers: an
** inlined padding turns affine loads into clamped ones. */
static gen_mode choose_mode(tb *b, const tir_stage *s, const tmpl_gen *g, int dv) {
    int n = s->n_axes, nr = s->n_raxes;
    bool room = n + nr + 2 <= SCH_MAX_NAMES;
    const ex_expr *body = tb_body(b, s->name);
    tmpl_access av = dv >= 0 ? tmpl_access_expr(body, s->axes[dv]) : (tmpl_access){0, 0, 0, 0};
    /* indices that are not affine in v (clamped padding, gathers) would make
    ** every lane a separate load: the innermost loop is better left to
    ** LLVM's own vectorizer, which sees the clamps */
    if (!nr) return room && g->vec > 1 && dv >= 0 && av.general == 0 ? GEN_OUTER_VEC : GEN_PLAIN;
    if (room && g->vec > 1 && dv >= 0 && av.contiguous > 0 && av.general == 0 && av.strided == 0)
        return GEN_OUTER_VEC;
    const ex_var *rl = s->raxes[nr - 1];
    tmpl_access ar = tmpl_access_expr(body, rl);
    if (room && g->rfactor && g->vec > 1 && rl->extent >= 8 && ar.contiguous > 0 && ar.general == 0)
        return GEN_RFACTOR;
    return GEN_PLAIN;
}

static const char *fuse_parallel(tb *b, const char *name, int n, const char *const *axes, bool par) {
    const char *p = n ? tb_fuse(b, name, n, axes) : NULL;
    if (p && par) tb_parallel(b, name, p);
    return p;
}

static const char *outer_vec(tb *b, const tir_stage *s, const tmpl_gen *g, int dv, bool par) {
    const char *name = s->name, *vo = NULL, *vi = s->axes[dv]->name;
    const char *order[SCH_MAX_NAMES], *outer[SCH_MAX_NAMES];
    int n = 0, no = 0;
    /* an accumulator tile must divide the axis: masked lanes would keep it
    ** out of registers */
    int64_t f = tmpl_vec_tile(s->axes[dv]->extent, g->vec, g->lanes, s->n_raxes > 0).tile;
    if (s->axes[dv]->extent > f) tb_split1(b, name, vi, f, &vo, &vi);
    for (int d = 0; d < s->n_axes; d++)
        if (d != dv) outer[no++] = s->axes[d]->name;
    if (vo) outer[no++] = vo;
    for (int k = 0; k < no; k++) order[n++] = outer[k];
    for (int r = 0; r < s->n_raxes; r++) order[n++] = s->raxes[r]->name;
    order[n++] = vi;
    tb_reorder(b, name, n, order);
    const char *p = fuse_parallel(b, name, no, outer, false);
    if (s->n_raxes && g->cache) tb_cache_write(b, name, p);
    if (tb_extent(b, name, vi) >= 2) tb_vectorize(b, name, vi);
    if (p && par) tb_parallel(b, name, p);
    return p;
}

static const char *partial_sums(tb *b, const tir_stage *s, const tmpl_gen *g, bool par) {
    const char *name = s->name, *ro, *ri, *sp[SCH_MAX_NAMES], *lv[SCH_MAX_NAMES], *order[SCH_MAX_NAMES];
    const ex_var *rl = s->raxes[s->n_raxes - 1];
    int64_t f = tmpl_vec_tile(rl->extent, g->vec, g->lanes, false).tile;
    if (!tb_split1(b, name, rl->name, f, &ro, &ri)) return NULL;
    const char *rf = tb_rfactor(b, name, ri);
    if (!rf) return NULL;
    /* the partial sums: reductions outside, the lanes innermost */
    int n = tb_leaves(b, rf, lv, SCH_MAX_NAMES), k = 0;
    for (int i = 0; i < n; i++)
        if (strcmp(lv[i], ri) != 0) order[k++] = lv[i];
    order[k++] = ri;
    tb_reorder(b, rf, k, order);
    tb_vectorize(b, rf, ri);
    for (int d = 0; d < s->n_axes; d++) sp[d] = s->axes[d]->name;
    const char *p = fuse_parallel(b, name, s->n_axes, sp, par);
    if (p) tb_compute_at(b, rf, name, p);
    return p;
}

const char *tmpl_sched_stage(tb *b, const tir_stage *s, const tmpl_gen *g, bool attached) {
    sch_stage *ss = tb_stage(b, s->name);
    if (!ss || ss->attach == SCH_INLINE || ss->n_leaves != s->n_axes + s->n_raxes || ss->n_rels || ss->cw)
        return NULL;
    int dv = vector_axis(s);
    bool par = !attached && g->parallel;
    const char *sp[SCH_MAX_NAMES];
    switch (choose_mode(b, s, g, dv)) {
    case GEN_OUTER_VEC: return outer_vec(b, s, g, dv, par);
    case GEN_RFACTOR: return partial_sums(b, s, g, par);
    case GEN_PLAIN: {
        /* Without reductions the inner axes become one loop of their own
        ** (fused where the loads stay contiguous: LLVM folds the indices
        ** back and vectorizes a long loop), the others one parallel loop. */
        int k = s->n_raxes || s->n_axes < 2 ? s->n_axes : tmpl_flat_suffix(tb_body(b, s->name), s);
        if (s->n_axes > SCH_MAX_NAMES) return NULL;
        /* a parallel loop needs iterations to share */
        int64_t outer = 1;
        for (int d = 0; d < k; d++) outer *= s->axes[d]->extent;
        while (par && k < s->n_axes - 1 && outer < 16) outer *= s->axes[k++]->extent;
        for (int d = 0; d < s->n_axes; d++) sp[d] = s->axes[d]->name;
        const char *p = fuse_parallel(b, s->name, k, sp, false);
        if (k < s->n_axes - 1) tb_fuse(b, s->name, s->n_axes - k, sp + k);
        if (p && par) tb_parallel(b, s->name, p);
        return p;
    }
    }
    return NULL;
}

void tmpl_sched_rest(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    for (int i = 0; i < f->n_stages && !b->err; i++) {
        const tir_stage *s = f->stages[i];
        if (tb_touched(b, s->name)) continue;
        tmpl_gen g = tmpl_gen_at(s, t, sp, pt);
        tmpl_sched_stage(b, s, &g, false);
    }
}

static bool plain_kind(tir_tag t) { return t == TIR_TAG_ELEMWISE || t == TIR_TAG_INJECTIVE; }

int tmpl_inline_chains(tb *b, const tir_func *f, const tir_stage *keep) {
    int n = 0;
    for (int i = f->n_stages - 1; i >= 0 && !b->err; i--) {
        const tir_stage *s = f->stages[i], *rd[64];
        if (s == keep || s->n_raxes || tmpl_is_output(f, s->out)) continue;
        int nr = tmpl_readers(f, s->out, rd, 64);
        bool ok = nr > 0 && nr <= 64;
        for (int k = 0; ok && k < nr; k++) ok = plain_kind(rd[k]->tag) && !rd[k]->n_raxes;
        sch_stage *ss = tb_stage(b, s->name);
        if (!ok || !ss || ss->attach != SCH_ROOT || ss->cw || ss->n_rels) continue;
        if (tb_inline(b, s->name)) n++;
    }
    return n;
}
