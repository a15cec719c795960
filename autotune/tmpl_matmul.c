/*
** tmpl_matmul.c — a register-blocked micro-kernel for a MATMUL stage
** C[b.., i, j] = sum(k) A[.., i, k] * B[.., k, j], with its elementwise
** epilogue (Gemm's alpha/beta/bias, a cast) fused:
**
**   for (b.., j_o, i_o fused) parallel        tiles of TI rows x TJ columns
**     C_tile[TI][TJ] = 0                      a local buffer: registers
**     for k_o                                 (k_u steps unrolled inside)
**       for i_i unrolled                      TI rows: A[i, k] broadcast
**         for j_m unrolled                    TJ / LANES vectors of B
**           for j_v vectorized                LANES columns
**             C_tile[i_i][j] += A[i, k] * B[k, j]
**     for i_i, j_m, j_v: out = epilogue(C_tile)
**
** With an epilogue the output stage carries the tile loops and the product
** is computed inside its tile loop (compute_at), so the epilogue reads the
** tile from registers. A constant B (weights) is packed at compile time so
** that the TJ columns of one k step are adjacent and a tile's panel of B is
** one sequential stream: B[k][j] -> Bp[j / TJ][k][j % TJ] (also when B is
** stored transposed, Gemm's transB). A constant A with a non-constant B
** (rare) gets the same treatment along its own axis.
**
** Knobs: tile_i (rows), tile_j (columns, a multiple of the vector width),
** k_unroll, pack, parallel, order (0: column panels outside row blocks, so a
** panel of B stays in cache while the row blocks go by; 1: the reverse).
*/
#include <string.h>

#include "tmpl_internal.h"

typedef struct mm_info {
    const tir_stage *M, *E; /* the product and the output stage (E == M: no epilogue) */
    int n;                  /* spatial axes of M */
    int ai, aj;             /* axis index of the rows (-1: none) and of the columns */
    const tir_tensor *pack; /* the constant operand to pack, or NULL */
    int pack_dim;           /* its dimension indexed by the columns */
    bool contiguous;        /* the columns are contiguous without packing */
    int lanes, regs;
} mm_info;

static const tir_stage *only_matmul(const tir_func *f) {
    const tir_stage *m = NULL;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->tag == TIR_TAG_MATMUL) {
            if (m) return NULL;
            m = f->stages[i];
        }
    return m;
}

static bool mm_analyse(const tir_func *f, const cg_cpu_target *t, mm_info *mi) {
    memset(mi, 0, sizeof *mi);
    const tir_stage *M = only_matmul(f);
    if (!M || M->n_raxes != 1 || M->n_axes < 1 || M->n_axes + 6 > SCH_MAX_NAMES || !tmpl_names_ok(f)) return false;
    mi->M = M;
    mi->n = M->n_axes;
    mi->aj = M->n_axes - 1;
    mi->ai = M->n_axes >= 2 ? M->n_axes - 2 : -1;
    if (!(mi->E = tmpl_epilogue(f, M))) return false;
    const ex_var *j = M->axes[mi->aj];
    tmpl_access a = tmpl_access_of(M, j);
    mi->contiguous = a.contiguous > 0 && a.general == 0 && a.strided == 0;
    mi->pack = tmpl_packable(M->body, j, &mi->pack_dim);
    if (!mi->contiguous && !mi->pack) return false;
    if (mi->pack && a.general) return false; /* another operand would gather */
    mi->lanes = tmpl_lanes(t, tmpl_elem_bytes(M));
    mi->regs = t->vector_bits >= 512 ? 32 : 16;
    return true;
}

/* ---- the space ---- */

typedef struct mm_choice {
    int64_t ti, tj;
} mm_choice;

/* A crude model of a tile's speed: lanes of FMA per step over the cycles
** of its FMAs and loads in 256-bit halves (see tmpl_conv.c), the share of
** the padded tiles that is real work, and the cost of a row guard inside
** the k loop. */
static double tile_score(const mm_info *mi, int64_t ti, int64_t tv) {
    int64_t M = mi->ai >= 0 ? mi->M->out->dims[mi->ai] : 1, N = mi->M->out->dims[mi->aj], L = mi->lanes;
    tmpl_vtile vt = tmpl_vec_tile(N, tv * L, mi->lanes, true);
    int64_t tj = vt.tile, regs = (tj + vt.vlen - 1) / vt.vlen, acc = ti * regs;
    if (acc + regs + 1 > mi->regs) return 0;
    /* in 256-bit halves, as the conv template counts */
    double units = vt.vlen * 4 > 32 ? (double)vt.vlen * 4 / 32 : 1;
    double eff = (double)(ti * tj) / (8.0 * ((double)(acc + regs) * units + (double)ti));
    (void)L;
    double ui = (double)M / (double)(((M + ti - 1) / ti) * ti), uj = (double)N / (double)(((N + tj - 1) / tj) * tj);
    double guard = (M % ti ? 0.9 : 1.0) * (N % tj ? 0.5 : 1.0);
    return eff * ui * uj * guard;
}

static mm_choice best_tile(const mm_info *mi) {
    mm_choice best = {1, mi->lanes};
    double bs = -1;
    int64_t M = mi->ai >= 0 ? mi->M->out->dims[mi->ai] : 1;
    for (int64_t ti = 1; ti <= 8; ti++) {
        if (ti > M && ti > 1) break;
        for (int64_t tv = 1; tv <= 4; tv++) {
            double s = tile_score(mi, ti, tv);
            if (s > bs + 1e-9) bs = s, best = (mm_choice){ti, tv * mi->lanes};
        }
    }
    return best;
}

static kiln_status mm_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    mm_info mi;
    *applies = mm_analyse(f, t, &mi);
    if (!*applies) return KILN_OK;
    int64_t M = mi.ai >= 0 ? mi.M->out->dims[mi.ai] : 1, N = mi.M->out->dims[mi.aj], L = mi.lanes;
    mm_choice c = best_tile(&mi);
    int64_t ti[8], tj[5], n_ti = 0, n_tj = 0;
    for (int64_t v = 1; v <= 8; v++)
        if (v == 1 || v <= M) ti[n_ti++] = v;
    if (L >= 8) tj[n_tj++] = L / 2;
    for (int64_t v = 1; v <= 4; v++)
        if (v == 1 || (v - 1) * L < N) tj[n_tj++] = v * L;
    static const int64_t ku[] = {1, 2, 4, 8}, onoff[] = {1, 0}, off[] = {0}, order[] = {0, 1};
    int64_t work = tmpl_work(mi.M);
    tmpl_knob(sp, "tile_i", (int)n_ti, ti, c.ti);
    tmpl_knob(sp, "tile_j", (int)n_tj, tj, c.tj);
    tmpl_knob(sp, "k_unroll", 4, ku, 1);
    tmpl_knob(sp, "pack", mi.pack ? 2 : 1, mi.pack ? onoff : off, mi.pack ? 1 : 0);
    tmpl_knob(sp, "parallel", 2, onoff, work >= TMPL_PAR_MIN_MACS ? 1 : 0);
    tmpl_knob(sp, "order", 2, order, 0);
    return KILN_OK;
}

/* ---- the trace ---- */

typedef struct mm_axes {
    const char *io, *ii, *jo, *jm, *jv, *ko, *kin;
} mm_axes;

/* Splits stage s's columns into [j_o, j_m, j_v] (TJ / LANES vectors of
** LANES), its rows by ti into [i_o, i_i] and its reduction by ku. */
static void split_tile(tb *b, const tir_stage *s, const mm_info *mi, int64_t ti, tmpl_vtile vt, int64_t ku,
                       mm_axes *x) {
    const char *name = s->name, *outs[3];
    int64_t tj = vt.tile, L = vt.vlen, f[2] = {tj / L, L};
    memset(x, 0, sizeof *x);
    if (tj > L && tj % L == 0 && tb_split(b, name, s->axes[mi->aj]->name, 2, f, outs))
        x->jo = outs[0], x->jm = outs[1], x->jv = outs[2];
    else tb_split1(b, name, s->axes[mi->aj]->name, tj, &x->jo, &x->jv);
    if (mi->ai >= 0 && ti > 1) tb_split1(b, name, s->axes[mi->ai]->name, ti, &x->io, &x->ii);
    else if (mi->ai >= 0) x->io = s->axes[mi->ai]->name;
    if (s->n_raxes) {
        x->ko = s->raxes[0]->name;
        if (ku > 1) tb_split1(b, name, x->ko, ku, &x->ko, &x->kin);
    }
}

static void annotate_tile(tb *b, const char *name, const mm_axes *x) {
    if (x->kin) tb_unroll(b, name, x->kin);
    if (x->ii) tb_unroll(b, name, x->ii);
    if (x->jm) tb_unroll(b, name, x->jm);
    tb_vectorize(b, name, x->jv);
}

static int batch_axes(const tir_stage *s, const mm_info *mi, const char **out) {
    int n = 0;
    for (int d = 0; d < mi->n - (mi->ai >= 0 ? 2 : 1); d++) out[n++] = s->axes[d]->name;
    return n;
}

/* The output stage: the tile loops outermost, fused (batch.., j_o, i_o, or
** i_o before j_o), then the tile's own loops. Returns the tile loop. */
static const char *order_tile(tb *b, const tir_stage *s, const mm_info *mi, const mm_axes *x, bool rows_first) {
    const char *ord[SCH_MAX_NAMES];
    int n = batch_axes(s, mi, ord);
    if (rows_first && x->io) ord[n++] = x->io;
    ord[n++] = x->jo;
    if (!rows_first && x->io) ord[n++] = x->io;
    int n_outer = n;
    if (x->ko) ord[n++] = x->ko;
    if (x->kin) ord[n++] = x->kin;
    if (x->ii) ord[n++] = x->ii;
    if (x->jm) ord[n++] = x->jm;
    ord[n++] = x->jv;
    tb_reorder(b, s->name, n, ord);
    return tb_fuse(b, s->name, n_outer, ord);
}

/* The product inside the output's tile: k outermost, then its rows (the
** tile's TI rows), its column vectors. */
static void inner_product(tb *b, const mm_info *mi, int64_t ti, tmpl_vtile tj, int64_t ku) {
    const tir_stage *M = mi->M;
    mm_axes y;
    const char *ord[SCH_MAX_NAMES];
    split_tile(b, M, mi, 1, tj, ku, &y);
    int n = batch_axes(M, mi, ord);
    ord[n++] = y.ko;
    if (y.kin) ord[n++] = y.kin;
    if (y.io) ord[n++] = y.io;
    ord[n++] = y.jo;
    if (y.jm) ord[n++] = y.jm;
    ord[n++] = y.jv;
    tb_reorder(b, M->name, n, ord);
    y.ii = ti > 1 ? y.io : NULL;
    annotate_tile(b, M->name, &y);
}

static void mm_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    mm_info mi;
    if (!mm_analyse(f, t, &mi)) return;
    int64_t ti = tmpl_val(sp, pt, "tile_i", 1), tj = tmpl_val(sp, pt, "tile_j", mi.lanes);
    tmpl_vtile vt = tmpl_vec_tile(mi.M->out->dims[mi.aj], tj, mi.lanes, true);
    int64_t ku = tmpl_val(sp, pt, "k_unroll", 1);
    bool par = tmpl_val(sp, pt, "parallel", 0) != 0, rows_first = tmpl_val(sp, pt, "order", 0) != 0;
    const tir_stage *M = mi.M, *E = mi.E;
    if (mi.pack && tmpl_val(sp, pt, "pack", 0)) tb_pack(b, mi.pack->name, mi.pack_dim, vt.tile);
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s != E && s != M && !s->n_raxes && !tmpl_is_output(f, s->out) && tmpl_reads(s->body, M->out))
            tb_inline(b, s->name);
    }
    tmpl_inline_chains(b, f, M);
    mm_axes x;
    split_tile(b, E, &mi, ti, vt, E == M ? ku : 1, &x);
    const char *tile = order_tile(b, E, &mi, &x, rows_first);
    annotate_tile(b, E->name, &x);
    if (E == M) {
        tb_cache_write(b, M->name, tile);
    } else {
        tb_compute_at(b, M->name, E->name, tile);
        inner_product(b, &mi, ti, vt, ku);
    }
    if (par && tile) tb_parallel(b, E->name, tile);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_matmul = {"matmul", mm_space, mm_trace};
