/*
** compute_attention.c — the compute definition of Attention (opset 23+)
** for what compiled code covers: 3-D or 4-D Q, K, V with grouped heads, a
** boolean or additive mask (its last dim padded with "masked" up to the key
** length, as the reference pads it), is_causal, sliding windows, softcap,
** any scale. A past key/value cache, nonpad_kv_seqlen and the extra outputs
** (present key/value, the qk matrix) are KILN_ERR_UNSUPPORTED: those nodes
** run their reference kernel.
**
** The stages, per (batch, head, query) row of keys j (autotune/tmpl_attention.c
** schedules them per tile of query rows):
**   key_t[b,g,d,j]   = K[b,g,j,d]                          (keys innermost)
**   scores[b,h,i,j]  = sum(d) Q[b,h,i,d] * key_t[b,g,d,j]      (g: h's key head)
**   logits[b,h,i,j]  = softcap(scores * scale) + bias(b,h,i,j)
**   row_max[b,h,i]   = max(j) logits
**   probs[b,h,i,j]   = exp(logits - row_max)   (0 when the row is all masked)
**   row_sum[b,h,i]   = sum(j) probs
**   context[b,h,i,e] = sum(j) probs * V[b,g,j,e]
**   attention        = context / row_sum       (0 for an all-masked row)
** which is the reference's per-row arithmetic (it also gives zeros for a
** row whose every key is masked).
*/
#include <math.h>

#include "compute.h"

typedef struct att_cmp {
    bool is3d, causal;
    int64_t b, hq, hk, sq, t, dq, dv;
    double scale, softcap;
    int64_t left, right, mlast;
    tir_tensor *q, *k, *v, *mask;
    kiln_dtype calc;
} att_cmp;

static kiln_status att_unsupported(kiln_ctx *ctx, const gir_node *n, const char *what) {
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "%s runs the reference kernel (no compute definition)", what);
}

static kiln_status att_setup(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, att_cmp *a) {
    kiln_tensor ty[4];
    kiln_status s = cmp_infer(ctx, n, in, ty); /* the reference's shape checks */
    if (s) return s;
    if (cmp_in(n, in, 4) || cmp_in(n, in, 5)) return att_unsupported(ctx, n, "a past key/value cache");
    if (cmp_in(n, in, 6)) return att_unsupported(ctx, n, "nonpad_kv_seqlen");
    for (int k = 1; k < n->n_outputs; k++)
        if (cmp_wants(n, k)) return att_unsupported(ctx, n, "present key/value or qk output");
    a->q = in[0], a->k = in[1], a->v = in[2], a->mask = cmp_in(n, in, 3);
    if (!kiln_dtype_is_float(a->q->dtype)) return att_unsupported(ctx, n, "a non-float element type");
    a->is3d = a->q->rank == 3;
    a->b = a->q->dims[0];
    if (a->is3d) {
        a->hq = gir_attr_int(n, "q_num_heads", 0), a->hk = gir_attr_int(n, "kv_num_heads", 0);
        a->sq = a->q->dims[1], a->t = a->k->dims[1];
        a->dq = a->q->dims[2] / a->hq, a->dv = a->v->dims[2] / a->hk;
    } else {
        a->hq = a->q->dims[1], a->hk = a->k->dims[1];
        a->sq = a->q->dims[2], a->t = a->k->dims[2];
        a->dq = a->q->dims[3], a->dv = a->v->dims[3];
    }
    a->causal = gir_attr_int(n, "is_causal", 0) != 0;
    a->scale = gir_attr_find(n, "scale") ? gir_attr_float(n, "scale", 1.0) : 1.0 / sqrt((double)a->dq);
    a->softcap = gir_attr_float(n, "softcap", 0.0);
    a->left = gir_attr_int(n, "left_window_size", -1);
    a->right = gir_attr_int(n, "right_window_size", -1);
    a->mlast = a->mask ? a->mask->dims[a->mask->rank - 1] : a->t;
    a->calc = cmp_calc(a->q->dtype);
    return KILN_OK;
}

/* Q, K or V at (batch, head, position, channel) in the 3-D or 4-D layout. */
static ex_expr *att_load(tir_func *f, const att_cmp *a, const tir_tensor *t, int64_t width, ex_expr *b, ex_expr *h,
                         ex_expr *pos, ex_expr *c) {
    if (a->is3d) {
        ex_expr *idx[3] = {b, pos, ex_add(&f->eb, ex_mul(&f->eb, h, ex_int(&f->eb, width)), c)};
        return cmp_to(f, cmp_load(f, t, idx), a->calc);
    }
    ex_expr *idx[4] = {b, h, pos, c};
    return cmp_to(f, cmp_load(f, t, idx), a->calc);
}

/* The key/value head that query head h reads. */
static ex_expr *kv_head(tir_func *f, const att_cmp *a, ex_expr *h) {
    int64_t group = a->hq / a->hk;
    return group == 1 ? h : ex_floordiv(&f->eb, h, ex_int(&f->eb, group));
}

/* K with positions innermost, key_t[b, g, d, j]: the scores' inner loop
** over keys then reads it contiguously (a schedule computes it once). */
static tir_stage *att_key_t(tir_func *f, const att_cmp *a) {
    int64_t dims[4] = {a->b, a->hk, a->dq, a->t};
    tir_stage *st = cmp_stage(f, "key_t", a->calc, 4, dims, TIR_TAG_INJECTIVE, (const char *const[]){"b", "h", "d", "j"});
    ex_expr *x[4];
    cmp_axes(f, st, x);
    if (!st) return NULL;
    st->body = att_load(f, a, a->k, a->dq, x[0], x[1], x[3], x[2]);
    return st;
}

static tir_stage *att_scores(tir_func *f, const att_cmp *a, const tir_tensor *kt) {
    int64_t dims[4] = {a->b, a->hq, a->sq, a->t};
    tir_stage *st = cmp_stage(f, "scores", a->calc, 4, dims, TIR_TAG_REDUCE, (const char *const[]){"b", "h", "i", "j"});
    ex_var *d = cmp_raxis(f, st, "d", a->dq);
    ex_expr *x[4];
    cmp_axes(f, st, x);
    if (!st || !d) return NULL;
    ex_expr *dv = ex_varref(&f->eb, d);
    ex_expr *ki[4] = {x[0], kv_head(f, a, x[1]), dv, x[3]};
    ex_expr *prod = cmp_bin(f, EX_MUL, att_load(f, a, a->q, a->dq, x[0], x[1], x[2], dv), cmp_load(f, kt, ki));
    st->body = cmp_reduction(f, st, EX_SUM, prod);
    return st;
}

/* The additive bias of key j for query i: the mask, causal and window. */
static ex_expr *att_bias(tir_func *f, const att_cmp *a, ex_expr *const *x) {
    ex_expr *ninf = cmp_f(f, a->calc, -INFINITY), *bias = cmp_f(f, a->calc, 0), *ok = NULL;
    ex_builder *eb = &f->eb;
    if (a->mask) {
        ex_expr *mi[4] = {x[0], x[1], x[2], a->mlast < a->t ? cmp_clamp(f, x[3], 0, a->mlast - 1) : x[3]};
        ex_expr *mv = cmp_load_bcast(f, a->mask, 4, mi);
        if (a->mask->dtype == KILN_BOOL) ok = cmp_bin(f, EX_NE, cmp_to(f, mv, KILN_I32), cmp_i(f, KILN_I32, 0));
        else bias = cmp_to(f, mv, a->calc);
        if (a->mlast < a->t) {
            ex_expr *in = ex_lt(eb, x[3], ex_int(eb, a->mlast));
            ok = ok ? ex_and(eb, ok, in) : in;
        }
    }
    /* key j against query position i (no past: the query sits at i) */
    ex_expr *diff = ex_sub(eb, x[3], x[2]), *c = NULL;
    if (a->causal) c = ex_lt(eb, diff, ex_int(eb, 1));
    if (a->left >= 0) {
        ex_expr *w = ex_lt(eb, ex_int(eb, -a->left - 1), diff);
        c = c ? ex_and(eb, c, w) : w;
    }
    if (a->right >= 0) {
        ex_expr *w = ex_lt(eb, diff, ex_int(eb, a->right + 1));
        c = c ? ex_and(eb, c, w) : w;
    }
    if (c) ok = ok ? ex_and(eb, ok, c) : c;
    return ok ? cmp_sel(f, ok, bias, ninf) : bias;
}

static tir_stage *att_logits(tir_func *f, const att_cmp *a, const tir_tensor *scores) {
    tir_stage *st = cmp_stage(f, "logits", a->calc, 4, scores->dims, TIR_TAG_ELEMWISE,
                              (const char *const[]){"b", "h", "i", "j"});
    ex_expr *x[4];
    cmp_axes(f, st, x);
    if (!st) return NULL;
    ex_expr *v = cmp_bin(f, EX_MUL, cmp_load(f, scores, x), cmp_f(f, a->calc, a->scale));
    if (a->softcap > 0)
        v = cmp_bin(f, EX_MUL, cmp_f(f, a->calc, a->softcap),
                    cmp_un(f, EX_TANH, cmp_bin(f, EX_DIV, v, cmp_f(f, a->calc, a->softcap))));
    st->body = cmp_bin(f, EX_ADD, v, att_bias(f, a, x));
    return st;
}

/* A [B, H, Sq] row reduction over j of src(b, h, i, j). */
static tir_stage *att_row(tir_func *f, const att_cmp *a, const char *name, ex_combiner c, const tir_tensor *src) {
    int64_t dims[3] = {a->b, a->hq, a->sq};
    tir_stage *st = cmp_stage(f, name, a->calc, 3, dims, TIR_TAG_REDUCE, (const char *const[]){"b", "h", "i"});
    ex_var *j = cmp_raxis(f, st, "j", a->t);
    ex_expr *x[3];
    cmp_axes(f, st, x);
    if (!st || !j) return NULL;
    ex_expr *idx[4] = {x[0], x[1], x[2], ex_varref(&f->eb, j)};
    st->body = cmp_reduction(f, st, c, cmp_load(f, src, idx));
    return st;
}

static tir_stage *att_probs(tir_func *f, const att_cmp *a, const tir_tensor *logits, const tir_tensor *mx) {
    tir_stage *st = cmp_stage(f, "probs", a->calc, 4, logits->dims, TIR_TAG_ELEMWISE,
                              (const char *const[]){"b", "h", "i", "j"});
    ex_expr *x[4];
    cmp_axes(f, st, x);
    if (!st) return NULL;
    ex_expr *m = cmp_load(f, mx, x);
    ex_expr *e = cmp_un(f, EX_EXP, cmp_bin(f, EX_SUB, cmp_load(f, logits, x), m));
    /* every key masked: the max is -inf and the row contributes nothing */
    st->body = cmp_sel(f, cmp_bin(f, EX_EQ, m, cmp_f(f, a->calc, -INFINITY)), cmp_f(f, a->calc, 0), e);
    return st;
}

static tir_stage *att_context(tir_func *f, const att_cmp *a, const tir_tensor *probs) {
    int64_t dims[4] = {a->b, a->hq, a->sq, a->dv};
    tir_stage *st = cmp_stage(f, "context", a->calc, 4, dims, TIR_TAG_REDUCE, (const char *const[]){"b", "h", "i", "e"});
    ex_var *j = cmp_raxis(f, st, "j", a->t);
    ex_expr *x[4];
    cmp_axes(f, st, x);
    if (!st || !j) return NULL;
    ex_expr *jv = ex_varref(&f->eb, j), *pi[4] = {x[0], x[1], x[2], jv};
    ex_expr *prod = cmp_bin(f, EX_MUL, cmp_load(f, probs, pi),
                            att_load(f, a, a->v, a->dv, x[0], kv_head(f, a, x[1]), jv, x[3]));
    st->body = cmp_reduction(f, st, EX_SUM, prod);
    return st;
}

/* The output: context / row_sum in Q's type and layout. */
static tir_stage *att_output(tir_func *f, const att_cmp *a, const tir_tensor *ctx_t, const tir_tensor *sum) {
    int64_t d4[4] = {a->b, a->hq, a->sq, a->dv}, d3[3] = {a->b, a->sq, a->hq * a->dv};
    tir_stage *st = cmp_stage(f, "attention", a->q->dtype, a->is3d ? 3 : 4, a->is3d ? d3 : d4, TIR_TAG_ELEMWISE,
                              a->is3d ? (const char *const[]){"b", "i", "c"} : (const char *const[]){"b", "h", "i", "e"});
    ex_expr *x[4];
    cmp_axes(f, st, x);
    if (!st) return NULL;
    ex_expr *ci[4];
    if (a->is3d) {
        ex_expr *w = ex_int(&f->eb, a->dv);
        ci[0] = x[0], ci[1] = ex_floordiv(&f->eb, x[2], w), ci[2] = x[1], ci[3] = ex_floormod(&f->eb, x[2], w);
    } else {
        for (int d = 0; d < 4; d++) ci[d] = x[d];
    }
    ex_expr *s = cmp_load(f, sum, ci);
    ex_expr *r = cmp_bin(f, EX_DIV, cmp_load(f, ctx_t, ci), s);
    r = cmp_sel(f, cmp_bin(f, EX_GT, s, cmp_f(f, a->calc, 0)), r, cmp_f(f, a->calc, 0));
    st->body = cmp_to(f, r, a->q->dtype);
    return st;
}

CMP_FN(attention) {
    att_cmp a = {0};
    kiln_status s = att_setup(ctx, n, in, &a);
    if (s) return s;
    tir_stage *kt = att_key_t(f, &a);
    tir_stage *sc = kt ? att_scores(f, &a, kt->out) : NULL;
    tir_stage *lg = sc ? att_logits(f, &a, sc->out) : NULL;
    tir_stage *mx = lg ? att_row(f, &a, "row_max", EX_RMAX, lg->out) : NULL;
    tir_stage *pr = mx ? att_probs(f, &a, lg->out, mx->out) : NULL;
    tir_stage *sum = pr ? att_row(f, &a, "row_sum", EX_SUM, pr->out) : NULL;
    tir_stage *cx = sum ? att_context(f, &a, pr->out) : NULL;
    tir_stage *o = cx ? att_output(f, &a, cx->out, sum->out) : NULL;
    if (!o) f->eb.failed = true;
    else out[0] = o->out;
    return cmp_done(ctx, f, n);
}
