/*
** tmpl_conv.c — direct convolution (NCHW, as the compute definitions give
** it: conv[n, oc, oh, ow] = sum(ic, kh, kw) x_padded[..] * w[oc, ic, kh, kw],
** 1-D and 3-D alike) with a register tile of output channels by output
** positions, in one of two forms:
**
**   vec_axis = oc   for (n, oc_o, oh, ow_o fused) parallel
**                     for ic, kh, kw
**                       for ow_i unrolled          ROWS output positions: x broadcast
**                         for oc_m unrolled        VECTORS vectors of weights,
**                           for oc_v vectorized    packed so that they are adjacent
**   vec_axis = ow   the same with the roles swapped: ROWS output channels
**                   (a weight broadcast each) by VECTORS vectors of output
**                   positions (x contiguous when the stride is 1)
**
** The oc form reads x with scalar loads whatever the stride, so strided and
** 1x1 convolutions vectorize fully; it needs constant weights and one
** group (x must not depend on oc), and its stores scatter (once per tile).
** The ow form suits depthwise convolutions and stride-1 layers with few
** taps. The tile accumulates in a local cache; a bias epilogue is fused
** (computed from the tile in registers); the padded copy of x the compute
** definition makes stays a stage of its own (vectorized, parallel), so the
** inner loop reads it without bound checks.
**
** Knobs: vec_axis, vectors, rows, unroll_kw (the innermost kernel axis),
** pack, parallel, pad (0: the padded input at the root, 1: per tile).
*/
#include <string.h>

#include "ir/dtype.h"
#include "tmpl_internal.h"

enum { CV_OC = 0, CV_OW = 1 };

typedef struct cv_info {
    const tir_stage *C, *E; /* the convolution and the output stage */
    const tir_stage *pad;   /* the padded input stage C reads, if any */
    int n, nr;
    bool oc_ok, ow_ok;
    const tir_tensor *w;    /* weights packable along oc, or NULL */
    int w_dim;
    int lanes, regs;
    int64_t OC, OW, red, stride_w;
    bool x_shared; /* x does not depend on oc (one group) */
} cv_info;

static const tir_stage *only_conv(const tir_func *f) {
    const tir_stage *c = NULL;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->tag == TIR_TAG_CONV) {
            if (c) return NULL;
            c = f->stages[i];
        }
    return c;
}

/* The stage whose tensor C reads (other than the weights), if it is a
** stage: the padded input. */
static const tir_stage *input_stage(const tir_func *f, const tir_stage *C) {
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s != C && !s->n_raxes && tmpl_reads(C->body, s->out) && !tmpl_is_output(f, s->out)) return s;
    }
    return NULL;
}

static bool cv_analyse(const tir_func *f, const cg_cpu_target *t, cv_info *ci) {
    memset(ci, 0, sizeof *ci);
    const tir_stage *C = only_conv(f);
    if (!C || C->n_axes < 3 || C->n_raxes < 1 || C->n_axes + C->n_raxes + 3 > SCH_MAX_NAMES || !tmpl_names_ok(f))
        return false;
    ci->C = C;
    ci->n = C->n_axes;
    ci->nr = C->n_raxes;
    if (!(ci->E = tmpl_epilogue(f, C))) return false;
    ci->pad = input_stage(f, C);
    const ex_var *oc = C->axes[1], *ow = C->axes[C->n_axes - 1];
    ci->OC = oc->extent;
    ci->OW = ow->extent;
    ci->red = 1;
    for (int r = 0; r < C->n_raxes; r++) ci->red *= C->raxes[r]->extent;
    ci->w = tmpl_packable(C->body, oc, &ci->w_dim);
    if (ci->w) {
        tmpl_access a = tmpl_access_skip(C, oc, ci->w);
        ci->oc_ok = a.contiguous == 0 && a.strided == 0 && a.general == 0;
    }
    tmpl_access b = tmpl_access_of(C, ow);
    ci->ow_ok = b.general == 0 && b.contiguous + b.strided > 0;
    ci->stride_w = b.strided ? 2 : 1;
    tmpl_access xo = tmpl_access_skip(C, oc, ci->w);
    ci->x_shared = xo.contiguous + xo.strided + xo.general == 0;
    ci->lanes = tmpl_lanes(t, tmpl_elem_bytes(C));
    ci->regs = t->vector_bits >= 512 ? 32 : 16;
    return ci->oc_ok || ci->ow_ok;
}

/* ---- the space ---- */

/* The vectorized tile's extent along oc or ow. */
static tmpl_vtile vec_tile(const cv_info *ci, int mode, int64_t vectors) {
    return tmpl_vec_tile(mode == CV_OC ? ci->OC : ci->OW, vectors * ci->lanes, ci->lanes, true);
}

static double util(int64_t n, int64_t tile) { return (double)n / (double)(((n + tile - 1) / tile) * tile); }

/* A crude model of a tile's speed: lanes of FMA per step over the cycles of
** its FMAs and loads in 256-bit halves (a 512-bit operation is two on the
** CPUs this targets: Zen 4 runs 512-bit vectors as two halves, so 8-lane
** tiles lose nothing), the padded share of the tiles, a guard on the
** unrolled positions (a branch inside the reduction), scattered stores in
** the oc form (costly next to few taps), gathered loads in the ow form
** with a stride. */
static double cv_score(const cv_info *ci, int mode, int64_t v, int64_t r) {
    tmpl_vtile vt = vec_tile(ci, mode, v);
    int64_t tile = vt.tile, regs = (tile + vt.vlen - 1) / vt.vlen, acc = regs * r;
    int64_t vext = mode == CV_OC ? ci->OC : ci->OW, rext = mode == CV_OC ? ci->OW : ci->OC;
    if (acc + regs + 1 > ci->regs) return 0;
    double units = vt.vlen * 4 > 32 ? (double)vt.vlen * 4 / 32 : 1;
    /* loads per step: the broadcasts, and the vectors (each row's own in the
    ** ow form when x depends on oc: a depthwise row reuses nothing) */
    double loads = (double)r + (double)(mode == CV_OW && !ci->x_shared ? acc : regs) * units;
    double eff = (double)(tile * r) / (8.0 * ((double)acc * units + loads)), red = (double)ci->red;
    double s = eff * util(vext, tile) * util(rext, r) * (rext % r ? 0.9 : 1) * (vext % tile ? 0.5 : 1);
    if (mode == CV_OC) return s * red / (red + 2.0 * (double)ci->lanes);
    return s * (ci->stride_w > 1 ? 0.3 : 1);
}

typedef struct cv_choice {
    int mode;
    int64_t vectors, rows;
} cv_choice;

static cv_choice cv_best(const cv_info *ci) {
    cv_choice best = {ci->oc_ok ? CV_OC : CV_OW, 1, 1};
    /* strided positions only: leave the positions to LLVM's vectorizer */
    if (!ci->oc_ok && ci->stride_w > 1) return (cv_choice){CV_OW, 0, 1};
    double bs = -1;
    for (int mode = CV_OC; mode <= CV_OW; mode++) {
        if ((mode == CV_OC && !ci->oc_ok) || (mode == CV_OW && !ci->ow_ok)) continue;
        for (int64_t v = 1; v <= 4; v++)
            for (int64_t r = 1; r <= 8; r++) {
                double s = cv_score(ci, mode, v, r);
                if (s > bs + 1e-9) bs = s, best = (cv_choice){mode, v, r};
            }
    }
    return best;
}

static kiln_status cv_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    cv_info ci;
    *applies = cv_analyse(f, t, &ci);
    if (!*applies) return KILN_OK;
    cv_choice c = cv_best(&ci);
    int64_t modes[2], nm = 0;
    if (ci.oc_ok) modes[nm++] = CV_OC;
    if (ci.ow_ok) modes[nm++] = CV_OW;
    static const int64_t vecs[] = {1, 2, 3, 4, 0}, rows[] = {1, 2, 3, 4, 5, 6, 7, 8}, onoff[] = {1, 0}, off[] = {0};
    int64_t kw = ci.C->raxes[ci.nr - 1]->extent;
    tmpl_knob(sp, "vec_axis", (int)nm, modes, c.mode);
    tmpl_knob(sp, "vectors", 5, vecs, c.vectors);
    tmpl_knob(sp, "rows", 8, rows, c.rows);
    tmpl_knob(sp, "unroll_kw", ci.nr > 1 && kw <= 8 ? 2 : 1, ci.nr > 1 && kw <= 8 ? onoff : off, ci.nr > 1 && kw <= 8);
    tmpl_knob(sp, "pack", ci.w ? 2 : 1, ci.w ? onoff : off, ci.w != NULL);
    tmpl_knob(sp, "parallel", 2, onoff, tmpl_work(ci.C) >= TMPL_PAR_MIN_MACS);
    /* the padded input at the root (a pass of its own), or per tile (its
    ** window recomputed per tile; needed when it is too large for the root) */
    static const int64_t pad_vals[] = {0, 1}, pad_tile[] = {1};
    bool big = ci.pad && tmpl_numel(ci.pad->out) * (int64_t)kiln_dtype_size(ci.pad->out->dtype) > TMPL_ROOT_MAX_BYTES;
    tmpl_knob(sp, "pad", !ci.pad ? 1 : big ? 1 : 2, !ci.pad ? off : big ? pad_tile : pad_vals, big ? 1 : 0);
    return KILN_OK;
}

/* ---- the trace ---- */

typedef struct cv_axes {
    const char *vo, *vm, *vv; /* the vectorized axis: outer, vectors, lanes */
    const char *ro, *ri;      /* the unrolled axis: outer, rows */
} cv_axes;

/* Splits stage s's vectorized axis (oc or ow) into [o, m, v] and its
** other tile axis by rows. */
static void split_tile(tb *b, const tir_stage *s, const cv_info *ci, int mode, int64_t vectors, int64_t rows,
                       cv_axes *x) {
    const char *name = s->name, *outs[3];
    const char *va = s->axes[mode == CV_OC ? 1 : ci->n - 1]->name, *ra = s->axes[mode == CV_OC ? ci->n - 1 : 1]->name;
    tmpl_vtile vt = vec_tile(ci, mode, vectors);
    int64_t L = vt.vlen, tile = vt.tile, f[2] = {tile / L, L};
    memset(x, 0, sizeof *x);
    if (tile > L && tile % L == 0 && tb_split(b, name, va, 2, f, outs)) x->vo = outs[0], x->vm = outs[1], x->vv = outs[2];
    else tb_split1(b, name, va, tile, &x->vo, &x->vv);
    if (rows > 1) tb_split1(b, name, ra, rows, &x->ro, &x->ri);
    else x->ro = ra;
}

/* The tile loop order: n, the vector axis' tiles, the other spatial axes,
** the position tiles; then (reductions) and the tile. Returns the number
** of outer names. */
static int tile_order(const tir_stage *s, const cv_info *ci, int mode, const cv_axes *x, const char **ord) {
    int n = 0;
    ord[n++] = s->axes[0]->name;
    ord[n++] = mode == CV_OC ? x->vo : x->ro;
    for (int d = 2; d < ci->n - 1; d++) ord[n++] = s->axes[d]->name;
    ord[n++] = mode == CV_OC ? x->ro : x->vo;
    return n;
}

static void annotate(tb *b, const char *name, const cv_axes *x, const char *kw) {
    if (kw) tb_unroll(b, name, kw);
    if (x->ri) tb_unroll(b, name, x->ri);
    if (x->vm) tb_unroll(b, name, x->vm);
    tb_vectorize(b, name, x->vv);
}

/* The convolution computed inside the output's tile: its spatial axes are
** the tile's (extent 1 outside it), reductions outside the tile's loops. */
static void inner_conv(tb *b, const cv_info *ci, int mode, int64_t vectors, int64_t rows, bool ukw) {
    const tir_stage *C = ci->C;
    cv_axes y;
    const char *ord[SCH_MAX_NAMES];
    split_tile(b, C, ci, mode, vectors, 1, &y);
    int n = 0;
    ord[n++] = C->axes[0]->name;
    ord[n++] = y.vo;
    for (int d = 2; d < ci->n - 1; d++) ord[n++] = C->axes[d]->name;
    for (int r = 0; r < ci->nr; r++) ord[n++] = C->raxes[r]->name;
    ord[n++] = y.ro;
    if (y.vm) ord[n++] = y.vm;
    ord[n++] = y.vv;
    tb_reorder(b, C->name, n, ord);
    y.ri = rows > 1 ? y.ro : NULL;
    annotate(b, C->name, &y, ukw ? C->raxes[ci->nr - 1]->name : NULL);
}

/* No explicit vectors: each output position reduces its taps (unrolled)
** in a loop of its own over ow, which LLVM vectorizes with interleaved
** loads where the stride is 2 (explicit vectors would gather). */
static const char *scalar_conv(tb *b, const cv_info *ci, bool ukw, bool par) {
    const tir_stage *C = ci->C;
    const char *outer[SCH_MAX_NAMES];
    for (int d = 0; d < ci->n - 1; d++) outer[d] = C->axes[d]->name;
    const char *p = tb_fuse(b, C->name, ci->n - 1, outer);
    for (int r = 1; r < ci->nr; r++)
        if (C->raxes[r]->extent <= 8 && (ukw || r < ci->nr - 1)) tb_unroll(b, C->name, C->raxes[r]->name);
    if (par && p) tb_parallel(b, C->name, p);
    return p;
}

static void cv_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    cv_info ci;
    if (!cv_analyse(f, t, &ci)) return;
    int mode = (int)tmpl_val(sp, pt, "vec_axis", ci.oc_ok ? CV_OC : CV_OW);
    int64_t vectors = tmpl_val(sp, pt, "vectors", 1), rows = tmpl_val(sp, pt, "rows", 1);
    bool ukw = tmpl_val(sp, pt, "unroll_kw", 0) != 0, par = tmpl_val(sp, pt, "parallel", 0) != 0;
    const tir_stage *C = ci.C, *E = ci.E;
    bool pad_tile = ci.pad && tmpl_val(sp, pt, "pad", 0) != 0;
    if (vectors == 0) {
        const char *p = scalar_conv(b, &ci, ukw, par);
        if (pad_tile && p) tb_compute_at(b, ci.pad->name, C->name, p);
        tmpl_sched_rest(b, f, t, sp, pt);
        return;
    }
    int64_t pack_f = mode == CV_OC ? vec_tile(&ci, mode, vectors).tile : rows;
    if (ci.w && tmpl_val(sp, pt, "pack", 0) && pack_f > 1) tb_pack(b, ci.w->name, ci.w_dim, pack_f);
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s != E && s != C && !s->n_raxes && !tmpl_is_output(f, s->out) && tmpl_reads(s->body, C->out))
            tb_inline(b, s->name);
    }
    cv_axes x;
    const char *ord[SCH_MAX_NAMES];
    split_tile(b, E, &ci, mode, vectors, rows, &x);
    int n_outer = tile_order(E, &ci, mode, &x, ord), n = n_outer;
    if (E == C)
        for (int r = 0; r < ci.nr; r++) ord[n++] = C->raxes[r]->name;
    if (x.ri) ord[n++] = x.ri;
    if (x.vm) ord[n++] = x.vm;
    ord[n++] = x.vv;
    tb_reorder(b, E->name, n, ord);
    const char *tile = tb_fuse(b, E->name, n_outer, ord);
    annotate(b, E->name, &x, E == C && ukw ? C->raxes[ci.nr - 1]->name : NULL);
    if (E == C) {
        tb_cache_write(b, C->name, tile);
    } else {
        tb_compute_at(b, C->name, E->name, tile);
        inner_conv(b, &ci, mode, vectors, rows, ukw);
    }
    if (par && tile) tb_parallel(b, E->name, tile);
    if (pad_tile && tile) tb_compute_at(b, ci.pad->name, E->name, tile);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_conv = {"conv", cv_space, cv_trace};
