/*
** tmpl_attention.c — the Attention compute DAG (ir/ops/compute_attention.c:
** key_t, scores, logits, row_max, probs, row_sum, context, attention over
** 4-D [B, H, S, E]) computed per tile of query rows:
**
**   key_t at the root (keys innermost, parallel over b, h, d)
**   for (b, h, i_o) fused parallel                       one task per query tile
**     scores[ti, T]: for i_o, j_o: acc[rows][vec_tiles][lanes] = 0
**                    for d, i_r, j_m: acc += Q[i,d] * key_t[d, j_v]   (registers)
**     row_max[ti]   (logits inlined: scale, mask, causal computed in place)
**     probs[ti, T]  = exp(logits - row_max), vectorized along keys
**     row_sum[ti]   (row_max and row_sum as vector partial results)
**     context[ti, E]: the same tiles: acc += probs[i,j] * V[j, e_v]
**     out = context / row_sum, vectorized along E
**
** Only a tile of the score matrix (ti x T) lives at a time, in the task's
** own buffers. Knobs: tile_i (query rows per task), vectors (the vector
** width along keys and channels, in lanes; 0: scalar), rows and vec_tiles
** (the register tile of the two products: rows x vec_tiles vectors of
** independent accumulators), parallel.
*/
#include <string.h>

#include "tmpl_internal.h"

static const char *const k_stages[] = {"key_t", "scores", "logits", "row_max", "probs", "row_sum", "context",
                                       "attention"};
#define N_STAGES (int)(sizeof k_stages / sizeof k_stages[0])

static bool at_analyse(const tir_func *f) {
    if (f->n_stages != N_STAGES || f->n_outputs != 1 || !tmpl_names_ok(f)) return false;
    for (int i = 0; i < N_STAGES; i++)
        if (strcmp(f->stages[i]->name, k_stages[i])) return false;
    const tir_stage *o = f->stages[N_STAGES - 1];
    return o->n_axes == 4 && o->out == f->outputs[0] && f->stages[1]->n_raxes == 1 && f->stages[6]->n_raxes == 1;
}

static kiln_status at_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    *applies = at_analyse(f);
    if (!*applies) return KILN_OK;
    const tir_stage *sc = f->stages[1];
    int64_t sq = sc->out->dims[2], tiles[6], n = 0;
    static const int64_t cands[] = {1, 2, 4, 8, 16, 32};
    for (int k = 0; k < 6; k++)
        if (cands[k] <= sq && sq % cands[k] == 0) tiles[n++] = cands[k];
    int lanes = tmpl_lanes(t, 4);
    int64_t vecs[3] = {lanes, lanes / 2 > 0 ? lanes / 2 : 1, 0}, onoff[] = {1, 0}, rows[] = {1, 2, 4, 8},
            vtiles[] = {1, 2, 4};
    tmpl_knob(sp, "tile_i", (int)n, tiles, sq % 16 == 0 ? 16 : tiles[n - 1]);
    tmpl_knob(sp, "vectors", 3, vecs, lanes);
    tmpl_knob(sp, "rows", 4, rows, 4);
    tmpl_knob(sp, "vec_tiles", 3, vtiles, 4);
    tmpl_knob(sp, "parallel", 2, onoff, 2 * tmpl_work(sc) >= TMPL_PAR_MIN_MACS);
    return KILN_OK;
}

/* Splits axis of stage by a vector width v that divides it (the widest of
** v, v/2, v/4); returns the inner axis vectorized, or NULL (no split). */
static const char *vec_split(tb *b, const char *stage, const char *axis, int64_t v, const char **outer) {
    int64_t ext = tb_extent(b, stage, axis);
    while (v > 1 && ext % v) v /= 2;
    *outer = axis;
    if (v < 2) return NULL;
    const char *o, *i;
    if (!tb_split1(b, stage, axis, v, &o, &i)) return NULL;
    *outer = o;
    return i;
}

/* A reduction of stage over raxis r in register tiles: ri rows (unrolled)
** by nv vectors of v lanes along ax, accumulated locally:
**   for (i_o, ax_o) { acc[ri][nv][v] = 0; for r: for i_r, ax_m: for ax_v: acc += ... }
** Falls back to fewer vectors, then to one vector, then to scalar loops
** where ax has no such width. */
static void tile_reduce(tb *b, const char *stage, const char *row, const char *ax, const char *r, int64_t ri,
                        int64_t nv, int64_t v) {
    int64_t ext = tb_extent(b, stage, ax), rows = tb_extent(b, stage, row);
    while (v > 1 && ext % v) v /= 2;
    if (v < 1) v = 1;
    while (nv > 1 && ext % (nv * v)) nv /= 2;
    while (ri > 1 && rows % ri) ri /= 2;
    const char *io = row, *ir = NULL, *ao = ax, *am = NULL, *av = NULL;
    if (ri > 1) tb_split1(b, stage, row, ri, &io, &ir);
    if (v > 1) {
        const char *outs[3];
        int64_t fac[2] = {nv, v};
        if (nv > 1 && tb_split(b, stage, ax, 2, fac, outs)) ao = outs[0], am = outs[1], av = outs[2];
        else if (tb_split1(b, stage, ax, v, &ao, &av)) am = NULL;
    }
    const char *ord[8];
    int n = 0;
    ord[n++] = "b", ord[n++] = "h", ord[n++] = io, ord[n++] = ao, ord[n++] = r;
    if (ir) ord[n++] = ir;
    if (am) ord[n++] = am;
    if (av) ord[n++] = av;
    tb_reorder(b, stage, n, ord);
    tb_cache_write(b, stage, ao);
    if (ir) tb_unroll(b, stage, ir);
    if (am) tb_unroll(b, stage, am);
    if (av) tb_vectorize(b, stage, av);
}

static void at_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    int64_t ti = tmpl_val(sp, pt, "tile_i", 1), v = tmpl_val(sp, pt, "vectors", 0);
    int64_t ri = tmpl_val(sp, pt, "rows", 1), nv = tmpl_val(sp, pt, "vec_tiles", 1);
    if (ri > ti) ri = ti;
    bool par = tmpl_val(sp, pt, "parallel", 0) != 0;
    tb_inline(b, "logits");
    /* key_t at the root */
    const char *kax[3] = {"b", "h", "d"}, *kf = tb_fuse(b, "key_t", 3, kax);
    if (par && kf) tb_parallel(b, "key_t", kf);
    /* the output, one task per tile of query rows */
    const char *io, *ii;
    tb_split1(b, "attention", "i", ti, &io, &ii);
    const char *eo, *ei = vec_split(b, "attention", "e", v, &eo);
    const char *ord[6] = {"b", "h", io, ii, eo, ei};
    tb_reorder(b, "attention", ei ? 6 : 5, ord);
    const char *oax[3] = {"b", "h", io}, *task = tb_fuse(b, "attention", 3, oax);
    if (ei) tb_vectorize(b, "attention", ei);
    if (par && task) tb_parallel(b, "attention", task);
    for (int k = 1; k < N_STAGES - 1; k++)
        if (k != 2) tb_compute_at(b, k_stages[k], "attention", task);
    tile_reduce(b, "scores", "i", "j", "d", ri, nv, v);
    tile_reduce(b, "context", "i", "e", "j", ri, nv, v);
    const char *po, *pi = vec_split(b, "probs", "j", v, &po);
    if (pi) tb_vectorize(b, "probs", pi);
    /* the row statistics as vector partial results (a serial chain of
    ** scalar max or add per element would cost as much as the products) */
    tmpl_gen gs = {v, tmpl_lanes(t, 4), false, false, true};
    if (v > 1) {
        tmpl_sched_stage(b, f->stages[3], &gs, true);
        tmpl_sched_stage(b, f->stages[5], &gs, true);
    }
}

const tmpl_def tmpl_attention = {"attention", at_space, at_trace};
