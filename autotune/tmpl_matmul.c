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
** When the columns have no width that splits into whole vectors (GPT-2's
** vocabulary of 50257) and the rows do, the roles swap (vec_axis = 1): A is
** copied transposed at the kernel's start (a stage of its own, laid out in
** its loop order) and the tile holds ROWS columns (B broadcast) by vectors
** of rows; its stores scatter, once per tile.
**
** Knobs: vec_axis (0: columns, 1: rows), rows (the unrolled side), vectors
** (the vectorized side, in vectors of the target's width), k_unroll, pack,
** parallel, order (0: column tiles outside row tiles, so a panel of B stays
** in cache while the row tiles go by; 1: the reverse).
*/
#include <string.h>

#include "ir/dtype.h"
#include "tmpl_internal.h"

enum { MM_J = 0, MM_I = 1 };

typedef struct mm_info {
    const tir_stage *M, *E; /* the product and the output stage (E == M: no epilogue) */
    int n;                  /* spatial axes of M */
    int ai, aj;             /* axis index of the rows (-1: none) and of the columns */
    const tir_tensor *pack; /* the constant operand to pack, or NULL */
    int pack_dim;           /* its dimension indexed by the columns */
    bool j_ok, i_ok;        /* the columns (rows) can be the vectorized side */
    const tir_tensor *a;    /* the rows' operand, copied transposed for MM_I */
    int a_di, a_dk;         /* its dimensions indexed by the rows and by k */
    int lanes, regs;
    int64_t M_, N_, K_;
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

/* The load in e with the plain variables u and v at two of its indices
** (and neither anywhere else). */
static const ex_expr *load_of(const ex_expr *e, const ex_var *u, const ex_var *v, int *du, int *dv) {
    if (e->kind == EX_LOAD && e->tensor && e->n_args == e->tensor->rank) {
        int a = -1, c = -1;
        bool ok = true;
        for (int d = 0; d < e->n_args && ok; d++) {
            const ex_expr *x = e->args[d];
            if (x->kind == EX_VAR && x->var == u) ok = a < 0, a = d;
            else if (x->kind == EX_VAR && x->var == v) ok = c < 0, c = d;
            else ok = !tmpl_uses_var(x, u) && !tmpl_uses_var(x, v);
        }
        if (ok && a >= 0 && c >= 0) {
            *du = a, *dv = c;
            return e;
        }
    }
    for (int i = 0; i < e->n_args; i++) {
        const ex_expr *l = load_of(e->args[i], u, v, du, dv);
        if (l) return l;
    }
    return NULL;
}

/* Whether the rows can be vectorized: one operand read at [.., i, .., k]
** that fits in a transposed copy, every other load independent of i. */
static bool rows_vectorizable(mm_info *mi) {
    const tir_stage *M = mi->M;
    if (mi->ai < 0 || mi->M_ < mi->lanes) return false;
    const ex_expr *l = load_of(M->body, M->axes[mi->ai], M->raxes[0], &mi->a_di, &mi->a_dk);
    if (!l) return false;
    mi->a = l->tensor;
    tmpl_access o = tmpl_access_skip(M, M->axes[mi->ai], mi->a);
    int64_t bytes = tmpl_numel(mi->a) * (int64_t)kiln_dtype_size(mi->a->dtype);
    return o.contiguous + o.strided + o.general == 0 && bytes <= TMPL_ROOT_MAX_BYTES && mi->a->rank <= SCH_MAX_NAMES;
}

static bool mm_analyse(const tir_func *f, const cg_cpu_target *t, mm_info *mi) {
    memset(mi, 0, sizeof *mi);
    const tir_stage *M = only_matmul(f);
    if (!M || M->n_raxes != 1 || M->n_axes < 1 || M->n_axes + 6 > SCH_MAX_NAMES || !tmpl_names_ok(f)) return false;
    mi->M = M;
    mi->n = M->n_axes;
    mi->aj = M->n_axes - 1;
    mi->ai = M->n_axes >= 2 ? M->n_axes - 2 : -1;
    mi->M_ = mi->ai >= 0 ? M->out->dims[mi->ai] : 1;
    mi->N_ = M->out->dims[mi->aj];
    mi->K_ = M->raxes[0]->extent;
    if (!(mi->E = tmpl_epilogue(f, M))) return false;
    mi->lanes = tmpl_lanes(t, tmpl_elem_bytes(M));
    mi->regs = t->vector_bits >= 512 ? 32 : 16;
    const ex_var *j = M->axes[mi->aj];
    tmpl_access a = tmpl_access_of(M, j);
    mi->pack = tmpl_packable(M->body, j, &mi->pack_dim);
    mi->j_ok = (a.contiguous > 0 && a.general == 0 && a.strided == 0) || (mi->pack && !a.general);
    mi->i_ok = rows_vectorizable(mi);
    return mi->j_ok || mi->i_ok;
}

/* ---- the space ---- */

static double util(int64_t n, int64_t tile) { return (double)n / (double)(((n + tile - 1) / tile) * tile); }

static tmpl_vtile vec_tile(const mm_info *mi, int mode, int64_t vectors) {
    return tmpl_vec_tile(mode == MM_J ? mi->N_ : mi->M_, vectors * mi->lanes, mi->lanes, true);
}

/* A crude model of a tile's speed: lanes of FMA per step over the cycles
** of its FMAs and loads in 256-bit halves (see tmpl_conv.c), the share of
** the padded tiles that is real work, a guard on the unrolled side (a
** uniform branch), a masked vector tile (the accumulators leave the
** registers), and the scattered stores of the rows form. */
static double tile_score(const mm_info *mi, int mode, int64_t rows, int64_t vectors) {
    tmpl_vtile vt = vec_tile(mi, mode, vectors);
    int64_t vext = mode == MM_J ? mi->N_ : mi->M_, rext = mode == MM_J ? mi->M_ : mi->N_;
    int64_t regs = (vt.tile + vt.vlen - 1) / vt.vlen, acc = rows * regs;
    if (acc + regs + 1 > mi->regs || (rows > rext && rows > 1)) return 0;
    double units = vt.vlen * 4 > 32 ? (double)vt.vlen * 4 / 32 : 1;
    double eff = (double)(rows * vt.tile) / (8.0 * ((double)(acc + regs) * units + (double)rows));
    double s = eff * util(vext, vt.tile) * util(rext, rows) * (rext % rows ? 0.9 : 1) * (vext % vt.tile ? 0.5 : 1);
    if (mode == MM_I) s *= (double)mi->K_ / ((double)mi->K_ + 2.0 * (double)mi->lanes);
    return s;
}

typedef struct mm_choice {
    int mode;
    int64_t rows, vectors;
} mm_choice;

static mm_choice best_tile(const mm_info *mi) {
    mm_choice best = {mi->j_ok ? MM_J : MM_I, 1, 1};
    double bs = -1;
    for (int mode = MM_J; mode <= MM_I; mode++) {
        if ((mode == MM_J && !mi->j_ok) || (mode == MM_I && !mi->i_ok)) continue;
        for (int64_t r = 1; r <= 8; r++)
            for (int64_t v = 1; v <= 4; v++) {
                double s = tile_score(mi, mode, r, v);
                if (s > bs + 1e-9) bs = s, best = (mm_choice){mode, r, v};
            }
    }
    return best;
}

static kiln_status mm_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    mm_info mi;
    *applies = mm_analyse(f, t, &mi);
    if (!*applies) return KILN_OK;
    mm_choice c = best_tile(&mi);
    int64_t modes[2], nm = 0;
    if (mi.j_ok) modes[nm++] = MM_J;
    if (mi.i_ok) modes[nm++] = MM_I;
    static const int64_t rows[] = {1, 2, 3, 4, 5, 6, 7, 8}, vecs[] = {1, 2, 3, 4}, ku[] = {1, 2, 4, 8};
    static const int64_t onoff[] = {1, 0}, off[] = {0}, order[] = {0, 1};
    tmpl_knob(sp, "vec_axis", (int)nm, modes, c.mode);
    tmpl_knob(sp, "rows", 8, rows, c.rows);
    tmpl_knob(sp, "vectors", 4, vecs, c.vectors);
    tmpl_knob(sp, "k_unroll", 4, ku, 1);
    tmpl_knob(sp, "pack", mi.pack ? 2 : 1, mi.pack ? onoff : off, mi.pack ? 1 : 0);
    tmpl_knob(sp, "parallel", 2, onoff, tmpl_work(mi.M) >= TMPL_PAR_MIN_MACS);
    /* the vectorized side's tiles outside: the unrolled side's panel (a few
    ** rows of the large operand) streams while the vector tiles' panel of
    ** the other stays in cache */
    tmpl_knob(sp, "order", 2, order, c.mode == MM_I ? 1 : 0);
    return KILN_OK;
}

/* ---- the trace ---- */

typedef struct mm_axes {
    const char *vo, *vm, *vv; /* the vectorized side: tiles, vectors, lanes */
    const char *ro, *ri;      /* the unrolled side: tiles, rows */
    const char *ko, *kin;
} mm_axes;

/* Splits stage s's vectorized axis va into [o, m, v], its unrolled axis ra
** (-1: none) by rows, and its reduction by ku. */
static void split_tile(tb *b, const tir_stage *s, int va, int ra, int64_t rows, tmpl_vtile vt, int64_t ku, mm_axes *x) {
    const char *name = s->name, *outs[3];
    int64_t f[2] = {vt.tile / vt.vlen, vt.vlen};
    memset(x, 0, sizeof *x);
    if (vt.tile > vt.vlen && tb_split(b, name, s->axes[va]->name, 2, f, outs))
        x->vo = outs[0], x->vm = outs[1], x->vv = outs[2];
    else tb_split1(b, name, s->axes[va]->name, vt.tile, &x->vo, &x->vv);
    if (ra >= 0 && rows > 1) tb_split1(b, name, s->axes[ra]->name, rows, &x->ro, &x->ri);
    else if (ra >= 0) x->ro = s->axes[ra]->name;
    if (s->n_raxes) {
        x->ko = s->raxes[0]->name;
        if (ku > 1) tb_split1(b, name, x->ko, ku, &x->ko, &x->kin);
    }
}

static void annotate_tile(tb *b, const char *name, const mm_axes *x) {
    if (x->kin) tb_unroll(b, name, x->kin);
    if (x->ri) tb_unroll(b, name, x->ri);
    if (x->vm) tb_unroll(b, name, x->vm);
    tb_vectorize(b, name, x->vv);
}

static int batch_axes(const tir_stage *s, const mm_info *mi, const char **out) {
    int n = 0;
    for (int d = 0; d < mi->n - (mi->ai >= 0 ? 2 : 1); d++) out[n++] = s->axes[d]->name;
    return n;
}

/* The output stage: the tile loops outermost, fused (batch.., column
** tiles, row tiles; or rows first), then the tile's own loops. Returns the
** tile loop. */
static const char *order_tile(tb *b, const tir_stage *s, const mm_info *mi, int mode, const mm_axes *x,
                              bool rows_first) {
    const char *ord[SCH_MAX_NAMES], *jt = mode == MM_J ? x->vo : x->ro, *it = mode == MM_J ? x->ro : x->vo;
    int n = batch_axes(s, mi, ord);
    if (rows_first && it) ord[n++] = it;
    if (jt) ord[n++] = jt;
    if (!rows_first && it) ord[n++] = it;
    int n_outer = n;
    if (x->ko) ord[n++] = x->ko;
    if (x->kin) ord[n++] = x->kin;
    if (x->ri) ord[n++] = x->ri;
    if (x->vm) ord[n++] = x->vm;
    ord[n++] = x->vv;
    tb_reorder(b, s->name, n, ord);
    return tb_fuse(b, s->name, n_outer, ord);
}

/* The product inside the output's tile: k outermost, then the tile's rows
** (unrolled), its vectors. */
static void inner_product(tb *b, const mm_info *mi, int mode, int va, int ra, int64_t rows, tmpl_vtile vt,
                          int64_t ku) {
    const tir_stage *M = mi->M;
    mm_axes y;
    const char *ord[SCH_MAX_NAMES];
    split_tile(b, M, va, ra, 1, vt, ku, &y);
    int n = batch_axes(M, mi, ord);
    ord[n++] = y.ko;
    if (y.kin) ord[n++] = y.kin;
    if (y.ro) ord[n++] = y.ro;
    ord[n++] = y.vo;
    if (y.vm) ord[n++] = y.vm;
    ord[n++] = y.vv;
    tb_reorder(b, M->name, n, ord);
    y.ri = rows > 1 ? y.ro : NULL;
    annotate_tile(b, M->name, &y);
    (void)mode;
}

/* The rows' operand copied so that the rows are contiguous: the copy's
** loops put its row dimension innermost, and its layout follows them. */
static void transposed_copy(tb *b, const mm_info *mi) {
    const char *copy = tb_cache_read(b, mi->a->name, mi->M->name), *lv[SCH_MAX_NAMES];
    if (!copy) return;
    int n = tb_leaves(b, copy, lv, SCH_MAX_NAMES);
    if (mi->a_di >= n || mi->a_dk >= n) return;
    const char *swap[2] = {lv[mi->a_dk], lv[mi->a_di]};
    if (mi->a_di < mi->a_dk) tb_reorder(b, copy, 2, swap);
}

static void mm_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    mm_info mi;
    if (!mm_analyse(f, t, &mi)) return;
    int mode = (int)tmpl_val(sp, pt, "vec_axis", mi.j_ok ? MM_J : MM_I);
    if ((mode == MM_I && !mi.i_ok) || (mode == MM_J && !mi.j_ok)) mode = mi.j_ok ? MM_J : MM_I;
    int64_t rows = tmpl_val(sp, pt, "rows", 1), vectors = tmpl_val(sp, pt, "vectors", 1);
    int64_t ku = tmpl_val(sp, pt, "k_unroll", 1);
    bool par = tmpl_val(sp, pt, "parallel", 0) != 0, rows_first = tmpl_val(sp, pt, "order", 0) != 0;
    const tir_stage *M = mi.M, *E = mi.E;
    int va = mode == MM_J ? mi.aj : mi.ai, ra = mode == MM_J ? mi.ai : mi.aj;
    tmpl_vtile vt = vec_tile(&mi, mode, vectors);
    int64_t pack_f = mode == MM_J ? vt.tile : rows;
    if (mi.pack && tmpl_val(sp, pt, "pack", 0) && pack_f > 1) tb_pack(b, mi.pack->name, mi.pack_dim, pack_f);
    if (mode == MM_I) transposed_copy(b, &mi);
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s != E && s != M && !s->n_raxes && !tmpl_is_output(f, s->out) && tmpl_reads(s->body, M->out))
            tb_inline(b, s->name);
    }
    tmpl_inline_chains(b, f, M);
    mm_axes x;
    split_tile(b, E, va, ra, rows, vt, E == M ? ku : 1, &x);
    const char *tile = order_tile(b, E, &mi, mode, &x, rows_first);
    annotate_tile(b, E->name, &x);
    if (E == M) {
        tb_cache_write(b, M->name, tile);
    } else {
        tb_compute_at(b, M->name, E->name, tile);
        inner_product(b, &mi, mode, va, ra, rows, vt, ku);
    }
    if (par && tile) tb_parallel(b, E->name, tile);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_matmul = {"matmul", mm_space, mm_trace};
