/*
** tmpl_conv_blocked.c — convolution in the blocked channel layout (kiln's
** ConvBlocked: y[n, ocb, oh, ow, ob] = sum(icb, kh, kw, ib)
** x[n, icb', oh*s+kh, ow*s+kw, ib] * w[ocb, icb, kh, kw, ib, ob], depthwise
** without icb and ib). The channel block is the vector:
**
**   for (n, ocb, oh, ow_o) fused            parallel
**     for icb, kh, kw, ib                    (kw unrolled when short)
**       for ow_i unrolled                    OW_TILE output positions
**         for ocb_i unrolled                 OC_BLOCKS output blocks (1 or 2)
**           for ob vectorized                one block of output channels
**             acc[ow_i, ocb_i, ob] += x[..] * w[.., ob]
**
** The weights are already laid out with ob innermost (the layout pass
** blocked them at compile time), so each tap loads one weight vector and
** broadcasts one x element per position for OC_BLOCKS weight vectors
** (depthwise: loads one x vector per position, lanes matching). The
** OW_TILE x OC_BLOCKS x block accumulators stay in
** registers (cache_write at the tile, or the output stage's tile when an
** elementwise epilogue — bias, Relu, Clip, a residual Add in blocked layout
** — follows: the epilogue is computed from the tile in registers).
**
** Knobs: ow_tile (divisors of OW), oc_blocks, unroll (ow_i unrolled or a loop),
** unroll_kw, parallel, pad (the padded input at the root or per tile).
*/
#include <string.h>

#include "ir/dtype.h"
#include "tmpl_internal.h"

typedef struct cb_info {
    const tir_stage *C, *E, *pad;
    int64_t OW, OCB, block, kw;
    int nr;
    bool depthwise; /* no ic reduction: x differs per output block */
    int regs;
} cb_info;

static const tir_stage *cb_only_conv(const tir_func *f) {
    const tir_stage *c = NULL;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->tag == TIR_TAG_CONV) {
            if (c) return NULL;
            c = f->stages[i];
        }
    return c;
}

static bool axis_is(const tir_stage *s, int d, const char *name) { return !strcmp(s->axes[d]->name, name); }

/* The stage C reads other than the weights: its padded input, if a stage. */
static const tir_stage *cb_input_stage(const tir_func *f, const tir_stage *C) {
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s != C && !s->n_raxes && tmpl_reads(C->body, s->out) && !tmpl_is_output(f, s->out)) return s;
    }
    return NULL;
}

/* Whether every load of t in e indexes dimension d with q's axis d, or with
** 0 where that axis has extent 1 (how broadcasting ops index a batch of 1). */
static bool cb_aligned(const ex_expr *e, const tir_tensor *t, const tir_stage *q) {
    if (e->kind == EX_LOAD && e->tensor == t) {
        if (e->n_args != q->n_axes) return false;
        for (int d = 0; d < e->n_args; d++) {
            const ex_expr *a = e->args[d];
            bool zero = a->kind == EX_INT && a->ival == 0 && q->axes[d]->extent == 1;
            if (!zero && (a->kind != EX_VAR || a->var != q->axes[d])) return false;
        }
    }
    for (int i = 0; i < e->n_args; i++)
        if (!cb_aligned(e->args[i], t, q)) return false;
    return true;
}

static bool cb_same_dims(const tir_tensor *a, const tir_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return true;
}

/* The output stage: C itself, or the last of the elementwise stages after
** C over its shape, each reading C and the stages between aligned (see
** tmpl_epilogue; a fused kernel's broadcasting epilogue reads a batch of
** one at index 0). */
static const tir_stage *cb_epilogue(const tir_func *f, const tir_stage *C) {
    int at = -1;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i] == C) at = i;
    if (f->n_outputs != 1 || at < 0) return NULL;
    if (at == f->n_stages - 1) return f->outputs[0] == C->out ? C : NULL;
    const tir_stage *E = f->stages[f->n_stages - 1];
    if (f->outputs[0] != E->out || tmpl_is_output(f, C->out)) return NULL;
    for (int i = at + 1; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s->n_raxes || !cb_same_dims(s->out, C->out) || (s != E && tmpl_is_output(f, s->out))) return NULL;
        for (int j = at; j < i; j++)
            if (!cb_aligned(s->body, f->stages[j]->out, s)) return NULL;
    }
    return E;
}

static bool cb_analyse(const tir_func *f, const cg_cpu_target *t, cb_info *ci) {
    memset(ci, 0, sizeof *ci);
    const tir_stage *C = cb_only_conv(f);
    if (!C || C->n_axes != 5 || C->n_raxes < 2 || C->n_raxes > 4 || !tmpl_names_ok(f)) return false;
    if (!axis_is(C, 1, "ocb") || !axis_is(C, 3, "ow") || !axis_is(C, 4, "ob") || C->out->dtype != KILN_F32) return false;
    if (!(ci->E = cb_epilogue(f, C))) return false;
    ci->C = C;
    ci->pad = cb_input_stage(f, C);
    ci->OW = C->axes[3]->extent;
    ci->OCB = C->axes[1]->extent;
    ci->depthwise = true;
    for (int r = 0; r < C->n_raxes; r++)
        if (!strcmp(C->raxes[r]->name, "ib")) ci->depthwise = false;
    ci->block = C->axes[4]->extent;
    ci->nr = C->n_raxes;
    ci->kw = -1;
    for (int r = 0; r < C->n_raxes; r++)
        if (!strcmp(C->raxes[r]->name, "kw")) ci->kw = C->raxes[r]->extent;
    ci->regs = t->vector_bits >= 512 ? 32 : 16;
    return ci->block >= 2;
}

/* Registers of one accumulator row: the block in target vectors. */
static int64_t cb_row_regs(const cb_info *ci, const cg_cpu_target *t) {
    int lanes = tmpl_lanes(t, 4);
    return (ci->block + lanes - 1) / lanes;
}

/* Depthwise tiles padded per tile (tuned MobileNetV2 on one AVX-512 core:
** the winners at 7x7 to 112x112 held 4 to 7 positions and padded per tile,
** 1.5-3.5x faster than 14-16 positions after a padded copy at the root). */
#define CB_DW_TILE 7

/* The widest divisor of OW whose accumulators (ob2 blocks each) leave room
** for the weight and x vectors, preferring at most 16 accumulators: enough
** independent FMAs to hide their latency; more measured slower (depthwise
** 3x3 at 28x28: 7 positions 0.47 ms, 14 0.53, 28 0.58; at 56x56: 8 ~ 14,
** 28 20% slower; regular convolutions alike within noise). */
static int64_t cb_default_tile(const cb_info *ci, const cg_cpu_target *t, int64_t ob2) {
    int64_t rr = cb_row_regs(ci, t) * ob2, best = 1, most = ci->depthwise ? CB_DW_TILE : 16;
    for (int64_t d = 1; d <= ci->OW; d++) {
        if (ci->OW % d || d * rr + rr + 1 > ci->regs) continue;
        if (d * ob2 <= most || best < 4) best = d;
    }
    return best;
}

/* Output blocks per tile: two share each broadcast x element (halving the
** loads per multiply-add) where the reduction runs over input channels. */
static int64_t cb_default_blocks(const cb_info *ci, const cg_cpu_target *t) {
    return !ci->depthwise && ci->OCB % 2 == 0 && cb_row_regs(ci, t) == 1 ? 2 : 1;
}

static kiln_status cb_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    cb_info ci;
    *applies = cb_analyse(f, t, &ci);
    if (!*applies) return KILN_OK;
    int64_t tiles[TUNE_MAX_VALUES], nt = 0, rr = cb_row_regs(&ci, t);
    for (int64_t d = 1; d <= ci.OW && nt < TUNE_MAX_VALUES; d++)
        if (ci.OW % d == 0 && d * rr <= 2 * ci.regs) tiles[nt++] = d;
    static const int64_t onoff[] = {1, 0}, off[] = {0}, pad_vals[] = {0, 1}, pad_tile[] = {1};
    /* output blocks per tile: any of these that divides the blocks (more share
    ** each broadcast x element; the tuner weighs that against registers) */
    static const int64_t block_cands[] = {1, 2, 3, 4, 6};
    int64_t ob2 = cb_default_blocks(&ci, t), blocks[5], nb = 0;
    for (int k = 0; k < 5; k++)
        if (block_cands[k] == 1 || (!ci.depthwise && ci.OCB % block_cands[k] == 0)) blocks[nb++] = block_cands[k];
    tmpl_knob(sp, "ow_tile", (int)nt, tiles, cb_default_tile(&ci, t, ob2));
    tmpl_knob(sp, "oc_blocks", (int)nb, blocks, ob2);
    tmpl_knob(sp, "unroll", 2, onoff, 1);
    bool ukw = ci.kw > 1 && ci.kw <= 8;
    tmpl_knob(sp, "unroll_kw", ukw ? 2 : 1, ukw ? onoff : off, ukw);
    tmpl_knob(sp, "parallel", 2, onoff, tmpl_work(ci.C) >= TMPL_PAR_MIN_MACS);
    bool big = ci.pad && tmpl_numel(ci.pad->out) * 4 > TMPL_ROOT_MAX_BYTES;
    tmpl_knob(sp, "pad", !ci.pad || big ? 1 : 2, !ci.pad ? off : big ? pad_tile : pad_vals, big || ci.depthwise);
    return KILN_OK;
}

/* Reductions (in the stage's order) then the tile: positions, the block. */
static int cb_red_order(const tir_stage *C, const char **ord, int n) {
    for (int r = 0; r < C->n_raxes; r++) ord[n++] = C->raxes[r]->name;
    return n;
}

/* The convolution inside the output stage's tile: its n, ocb, oh are one
** point there, ow the tile's positions. */
static void cb_inner(tb *b, const cb_info *ci, bool unroll, bool ukw, int64_t ob2) {
    const tir_stage *C = ci->C;
    const char *ord[SCH_MAX_NAMES];
    int n = 0;
    ord[n++] = C->axes[0]->name;
    if (ob2 == 1) ord[n++] = C->axes[1]->name;
    ord[n++] = C->axes[2]->name;
    n = cb_red_order(C, ord, n);
    ord[n++] = C->axes[3]->name;
    if (ob2 > 1) ord[n++] = C->axes[1]->name;
    ord[n++] = C->axes[4]->name;
    tb_reorder(b, C->name, n, ord);
    if (ukw && ci->kw > 1) tb_unroll(b, C->name, "kw");
    if (unroll) tb_unroll(b, C->name, C->axes[3]->name);
    if (ob2 > 1) tb_unroll(b, C->name, C->axes[1]->name);
    tb_vectorize(b, C->name, C->axes[4]->name);
}

/* The padded input, at the root (rows in parallel) or per tile: one
** block-wide vector per position, the padding's select once per vector
** (element by element, LLVM would copy each block with a call to memcpy). */
static void cb_pad(tb *b, const tir_stage *P, const tir_stage *E, const char *tile, bool par) {
    const char *lanes = P->axes[4]->name;
    if (tile) {
        tb_compute_at(b, P->name, E->name, tile);
    } else {
        const char *rows[3] = {P->axes[0]->name, P->axes[1]->name, P->axes[2]->name};
        const char *r = tb_fuse(b, P->name, 3, rows);
        if (par && r) tb_parallel(b, P->name, r);
    }
    tb_vectorize(b, P->name, lanes);
}

static void cb_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    cb_info ci;
    if (!cb_analyse(f, t, &ci)) return;
    const tir_stage *C = ci.C, *E = ci.E;
    int64_t tile = tmpl_val(sp, pt, "ow_tile", 1);
    bool unroll = tmpl_val(sp, pt, "unroll", 1) != 0, ukw = tmpl_val(sp, pt, "unroll_kw", 0) != 0;
    bool par = tmpl_val(sp, pt, "parallel", 0) != 0, pad_tile = ci.pad && tmpl_val(sp, pt, "pad", 0) != 0;
    int64_t ob2 = tmpl_val(sp, pt, "oc_blocks", 1);
    if (tile < 1 || ci.OW % tile) tile = 1;
    if (ob2 < 1 || ci.OCB % ob2 || ci.depthwise) ob2 = 1;
    /* the epilogue's stages between C and E are computed inside E's tile */
    bool after = false;
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        sch_stage *ss = after && s != E ? tb_stage(b, s->name) : NULL;
        if (ss && ss->attach != SCH_INLINE) tb_inline(b, s->name); /* large ones are already */
        after |= s == C;
    }
    const char *owo = E->axes[3]->name, *owi = NULL, *ocbo = E->axes[1]->name, *ocbi = NULL, *ord[SCH_MAX_NAMES];
    if (tile > 1) tb_split1(b, E->name, E->axes[3]->name, tile, &owo, &owi);
    if (ob2 > 1) tb_split1(b, E->name, E->axes[1]->name, ob2, &ocbo, &ocbi);
    int n = 0;
    ord[n++] = E->axes[0]->name;
    ord[n++] = ocbo;
    ord[n++] = E->axes[2]->name;
    ord[n++] = owo;
    int n_outer = n;
    if (E == C) n = cb_red_order(C, ord, n);
    if (owi) ord[n++] = owi;
    if (ocbi) ord[n++] = ocbi;
    ord[n++] = E->axes[4]->name;
    tb_reorder(b, E->name, n, ord);
    const char *tl = tb_fuse(b, E->name, n_outer, ord);
    if (E == C && ukw && ci.kw > 1) tb_unroll(b, C->name, "kw");
    if (owi && unroll) tb_unroll(b, E->name, owi);
    if (ocbi) tb_unroll(b, E->name, ocbi);
    tb_vectorize(b, E->name, E->axes[4]->name);
    if (E == C) {
        tb_cache_write(b, C->name, tl);
    } else {
        tb_compute_at(b, C->name, E->name, tl);
        cb_inner(b, &ci, unroll && tile > 1, ukw, ob2);
    }
    if (par && tl) tb_parallel(b, E->name, tl);
    if (ci.pad) cb_pad(b, ci.pad, E, pad_tile ? tl : NULL, par);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_conv_blocked = {"conv_blocked", cb_space, cb_trace};
