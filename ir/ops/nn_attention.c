/*
** nn_attention.c — Attention (opset 23+): scaled dot-product attention with
** 3-D or 4-D operands, grouped heads, a past key/value cache, a boolean or
** additive mask (padded with "masked" up to the total key length), causal
** and sliding-window masking, softcap, and the four qk_matmul_output modes.
** Scores go through softcap, then the bias, then softmax; a row with every
** key masked yields zeros, as the ONNX reference defines.
*/
#include <math.h>
#include <string.h>

#include "../interp.h"
#include "nn_internal.h"

typedef struct att_plan {
    bool is3d, causal, want_qk;
    int64_t b, hq, hk, sq, skv, past, t, dq, dv;
    double scale, softcap;
    int mode;
    int64_t left, right;
    const kiln_tensor *mask, *nonpad;
    int64_t mstr[4], mlast;
} att_plan;

static kiln_status att_fail_shape(kiln_ctx *ctx, const gir_node *n, const char *what) {
    return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s has an unexpected shape", what);
}

/* Heads, sequence and head sizes of Q, K, V in the 4-D view [B, H, S, D]. */
static kiln_status att_dims(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, att_plan *p) {
    const kiln_tensor *q = in[0], *k = in[1], *v = in[2];
    if (q->rank != k->rank || q->rank != v->rank || (q->rank != 3 && q->rank != 4))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "Q, K and V must all be 3-D or all 4-D");
    p->is3d = q->rank == 3;
    p->b = q->dims[0];
    if (k->dims[0] != p->b || v->dims[0] != p->b) return att_fail_shape(ctx, n, "K or V (batch)");
    if (p->is3d) {
        p->hq = gir_attr_int(n, "q_num_heads", 0);
        p->hk = gir_attr_int(n, "kv_num_heads", 0);
        if (p->hq < 1 || p->hk < 1)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "3-D inputs need q_num_heads and kv_num_heads");
        if (q->dims[2] % p->hq || k->dims[2] % p->hk || v->dims[2] % p->hk)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "hidden sizes are not multiples of the head counts");
        p->sq = q->dims[1], p->skv = k->dims[1];
        p->dq = q->dims[2] / p->hq, p->dv = v->dims[2] / p->hk;
        if (k->dims[2] / p->hk != p->dq || v->dims[1] != p->skv) return att_fail_shape(ctx, n, "K or V");
    } else {
        p->hq = q->dims[1], p->hk = k->dims[1];
        p->sq = q->dims[2], p->skv = k->dims[2];
        p->dq = q->dims[3], p->dv = v->dims[3];
        if (k->dims[3] != p->dq || v->dims[1] != p->hk || v->dims[2] != p->skv) return att_fail_shape(ctx, n, "K or V");
    }
    if (p->hk < 1 || p->hq % p->hk)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%lld query heads do not group over %lld key heads",
                            (long long)p->hq, (long long)p->hk);
    return KILN_OK;
}

static kiln_status att_cache(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, att_plan *p) {
    const kiln_tensor *pk = NN_IN(n, in, 4), *pv = NN_IN(n, in, 5);
    p->nonpad = NN_IN(n, in, 6);
    if (!pk != !pv) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "past_key and past_value go together");
    if (pk && p->nonpad) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "nonpad_kv_seqlen excludes a past cache");
    if (pk) {
        if (pk->rank != 4 || pv->rank != 4 || pk->dims[0] != p->b || pk->dims[1] != p->hk || pk->dims[3] != p->dq ||
            pv->dims[0] != p->b || pv->dims[1] != p->hk || pv->dims[2] != pk->dims[2] || pv->dims[3] != p->dv)
            return att_fail_shape(ctx, n, "past_key or past_value");
        p->past = pk->dims[2];
    }
    if (p->nonpad && (kiln_numel(p->nonpad) != p->b || !kiln_dtype_is_int(p->nonpad->dtype)))
        return att_fail_shape(ctx, n, "nonpad_kv_seqlen");
    p->t = p->past + p->skv;
    return KILN_OK;
}

/* The mask broadcasts over [B, Hq, Sq, *]; its last dim may fall short of T. */
static kiln_status att_mask(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *q, att_plan *p) {
    const kiln_tensor *m = p->mask;
    if (!m) return KILN_OK;
    if (m->rank < 2 || m->rank > 4 || m->dims[m->rank - 1] > p->t)
        return att_fail_shape(ctx, n, "attn_mask");
    if (m->dtype != KILN_BOOL && m->dtype != q->dtype)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "attn_mask must be bool or Q's type");
    int64_t want[4] = {p->b, p->hq, p->sq, m->dims[m->rank - 1]}, st[KILN_MAX_RANK];
    kiln_strides(m->rank, m->dims, st);
    for (int d = 0; d < 4; d++) {
        int md = d - (4 - m->rank);
        int64_t e = md >= 0 ? m->dims[md] : 1;
        if (e != 1 && e != want[d]) return att_fail_shape(ctx, n, "attn_mask");
        p->mstr[d] = md >= 0 && e != 1 ? st[md] : 0;
    }
    p->mlast = want[3];
    return KILN_OK;
}

static kiln_status att_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, att_plan *p) {
    memset(p, 0, sizeof *p);
    kiln_status s = att_dims(ctx, n, in, p);
    if (!s) s = att_cache(ctx, n, in, p);
    if (s) return s;
    for (int i = 1; i < 6; i++)
        if (i != 3 && (s = nn_check_same_dtype(ctx, n, in[0], NN_IN(n, in, i), "K, V or the past cache"))) return s;
    p->mask = NN_IN(n, in, 3);
    s = att_mask(ctx, n, in[0], p);
    if (s) return s;
    p->causal = gir_attr_int(n, "is_causal", 0) != 0;
    p->scale = gir_attr_find(n, "scale") ? gir_attr_float(n, "scale", 1.0) : 1.0 / sqrt((double)p->dq);
    p->softcap = gir_attr_float(n, "softcap", 0.0);
    p->mode = (int)gir_attr_int(n, "qk_matmul_output_mode", 0);
    p->left = gir_attr_int(n, "left_window_size", -1);
    p->right = gir_attr_int(n, "right_window_size", -1);
    if (p->mode < 0 || p->mode > 3)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "qk_matmul_output_mode %d is not 0..3", p->mode);
    if (p->left < -1 || p->right < -1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "window sizes must be -1 or nonnegative");
    return KILN_OK;
}

kiln_status nn_infer_attention(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    att_plan p;
    kiln_status s = att_setup(ctx, n, in, &p);
    if (s) return s;
    kiln_dtype dt = in[0]->dtype;
    if (p.is3d) kiln_tensor_init(&out[0], dt, 3, (int64_t[]){p.b, p.sq, p.hq * p.dv});
    else kiln_tensor_init(&out[0], dt, 4, (int64_t[]){p.b, p.hq, p.sq, p.dv});
    if (n->n_outputs > 1) kiln_tensor_init(&out[1], dt, 4, (int64_t[]){p.b, p.hk, p.t, p.dq});
    if (n->n_outputs > 2) kiln_tensor_init(&out[2], dt, 4, (int64_t[]){p.b, p.hk, p.t, p.dv});
    if (n->n_outputs > 3) kiln_tensor_init(&out[3], dt, 4, (int64_t[]){p.b, p.hq, p.sq, p.t});
    return KILN_OK;
}

/* Offset of [b, h, s, d] in an operand of H heads, S positions, D per head. */
static int64_t att_off(bool is3d, int64_t h_count, int64_t s_count, int64_t d_count, int64_t b, int64_t h,
                       int64_t s, int64_t d) {
    if (is3d) return (b * s_count + s) * h_count * d_count + h * d_count + d;
    return ((b * h_count + h) * s_count + s) * d_count + d;
}

/* The present cache [B, Hk, T, D]: the past, then the new keys or values. */
static void att_present(const att_plan *p, const kiln_tensor *past, const kiln_tensor *cur, int64_t d_count,
                        double *dst) {
    for (int64_t b = 0; b < p->b; b++)
        for (int64_t h = 0; h < p->hk; h++)
            for (int64_t j = 0; j < p->t; j++)
                for (int64_t d = 0; d < d_count; d++) {
                    double v = j < p->past ? kiln_tensor_f64(past, ((b * p->hk + h) * p->past + j) * d_count + d)
                                           : kiln_tensor_f64(cur, att_off(p->is3d, p->hk, p->skv, d_count, b, h,
                                                                           j - p->past, d));
                    dst[((b * p->hk + h) * p->t + j) * d_count + d] = v;
                }
}

/* Additive bias of key j for query i of (b, h): 0 or -inf, or the float mask. */
static double att_bias(const att_plan *p, int64_t b, int64_t h, int64_t i, int64_t j) {
    double bias = 0;
    if (p->mask) {
        if (j >= p->mlast) return -INFINITY;
        int64_t off = b * p->mstr[0] + h * p->mstr[1] + i * p->mstr[2] + j * p->mstr[3];
        double mv = kiln_tensor_f64(p->mask, off);
        bias = p->mask->dtype == KILN_BOOL ? (mv != 0 ? 0 : -INFINITY) : mv;
    }
    int64_t at = i + (p->nonpad ? kiln_tensor_i64(p->nonpad, b) - p->sq : p->past);
    if (p->causal && j > at) return -INFINITY;
    if (p->left >= 0 && at - j > p->left) return -INFINITY;
    if (p->right >= 0 && j - at > p->right) return -INFINITY;
    if (p->nonpad && j >= kiln_tensor_i64(p->nonpad, b)) return -INFINITY;
    return bias;
}

/* One query row: scores, probabilities, the output row and the qk output. */
static void att_row(const att_plan *p, const kiln_tensor *q, const double *kp, const double *vp, int64_t b,
                    int64_t h, int64_t i, double *sc, double *bias, kiln_tensor *out) {
    int64_t hk = h / (p->hq / p->hk);
    bool all_masked = true;
    double mx = -INFINITY, sum = 0;
    for (int64_t j = 0; j < p->t; j++) {
        double dot = 0;
        for (int64_t d = 0; d < p->dq; d++)
            dot += kiln_tensor_f64(q, att_off(p->is3d, p->hq, p->sq, p->dq, b, h, i, d)) *
                   kp[((b * p->hk + hk) * p->t + j) * p->dq + d];
        sc[j] = dot * p->scale;
        if (p->softcap > 0) sc[j] = p->softcap * tanh(sc[j] / p->softcap);
        bias[j] = att_bias(p, b, h, i, j);
        all_masked &= bias[j] == -INFINITY;
        if (p->mode < 3 && p->want_qk) nn_store_round(&out[3], ((b * p->hq + h) * p->sq + i) * p->t + j,
                                                         p->mode == 2 ? sc[j] + bias[j] : sc[j]);
        if (sc[j] + bias[j] > mx) mx = sc[j] + bias[j];
    }
    for (int64_t j = 0; j < p->t; j++) {
        sc[j] = all_masked || mx == -INFINITY ? 0 : exp(sc[j] + bias[j] - mx);
        sum += sc[j];
    }
    for (int64_t j = 0; j < p->t; j++) {
        sc[j] = sum > 0 ? sc[j] / sum : 0;
        if (p->mode == 3 && p->want_qk) nn_store_round(&out[3], ((b * p->hq + h) * p->sq + i) * p->t + j, sc[j]);
    }
    for (int64_t d = 0; d < p->dv; d++) {
        double acc = 0;
        for (int64_t j = 0; j < p->t; j++) acc += sc[j] * vp[((b * p->hk + hk) * p->t + j) * p->dv + d];
        nn_store_round(&out[0], att_off(p->is3d, p->hq, p->sq, p->dv, b, h, i, d), acc);
    }
}

kiln_status nn_ref_attention(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    att_plan p;
    double *kp = NULL, *vp = NULL, *row = NULL;
    kiln_status s = att_setup(ctx, n, in, &p);
    p.want_qk = n->n_outputs > 3;
    if (!s) s = nn_alloc_f64(ctx, n, p.b * p.hk * p.t * p.dq, &kp);
    if (!s) s = nn_alloc_f64(ctx, n, p.b * p.hk * p.t * p.dv, &vp);
    if (!s) s = nn_alloc_f64(ctx, n, 2 * p.t, &row);
    if (!s) {
        att_present(&p, NN_IN(n, in, 4), in[1], p.dq, kp);
        att_present(&p, NN_IN(n, in, 5), in[2], p.dv, vp);
        for (int k = 1; k < 3 && k < n->n_outputs; k++) {
            const double *src = k == 1 ? kp : vp;
            int64_t count = kiln_numel(&out[k]);
            for (int64_t i = 0; i < count; i++) kiln_store_f64(out[k].dtype, out[k].data, i, src[i]);
        }
        for (int64_t b = 0; b < p.b; b++)
            for (int64_t h = 0; h < p.hq; h++)
                for (int64_t i = 0; i < p.sq; i++) att_row(&p, in[0], kp, vp, b, h, i, row, row + p.t, out);
    }
    kiln_free(kp);
    kiln_free(vp);
    kiln_free(row);
    return s;
}

/* ---- FlexAttention (ai.onnx.preview): 4-D attention whose scores and
** probabilities may pass through subgraphs (score_mod, prob_mod) ---- */

static kiln_status flex_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, att_plan *p) {
    memset(p, 0, sizeof *p);
    if (in[0]->rank != 4) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "Q, K and V must be 4-D");
    kiln_status s = att_dims(ctx, n, in, p);
    if (!s) s = nn_check_same_dtype(ctx, n, in[0], in[1], "K");
    if (!s) s = nn_check_same_dtype(ctx, n, in[0], in[2], "V");
    if (s) return s;
    p->t = p->skv;
    p->scale = gir_attr_find(n, "scale") ? gir_attr_float(n, "scale", 1.0) : 1.0 / sqrt((double)p->dq);
    return KILN_OK;
}

kiln_status nn_infer_flex_attention(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out) {
    att_plan p;
    kiln_status s = flex_setup(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(&out[0], in[2]->dtype, 4, (int64_t[]){p.b, p.hq, p.sq, p.dv});
    return KILN_OK;
}

/* Runs a score_mod / prob_mod subgraph on v ([B, Hq, L, S]) in place, in dtype dt. */
static kiln_status flex_mod(kiln_ctx *ctx, const gir_node *n, const char *name, const att_plan *p, kiln_dtype dt,
                            double *v) {
    const gir_attr *a = gir_attr_find(n, name);
    if (!a) return KILN_OK;
    if (a->kind != GIR_ATTR_GRAPH || !a->g || a->g->n_inputs != 1 || a->g->n_outputs != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s must be a graph of one input and one output", name);
    kiln_tensor t, res = {0};
    kiln_tensor_init(&t, dt, 4, (int64_t[]){p->b, p->hq, p->sq, p->t});
    kiln_status s = kiln_tensor_alloc(ctx, &t);
    if (s) return s;
    int64_t count = kiln_numel(&t);
    for (int64_t i = 0; i < count; i++) kiln_store_f64(dt, t.data, i, v[i]);
    s = gir_interp_run(ctx, a->g, &t, 1, &res, 1);
    if (s) s = kiln_wrap(ctx, s, "node '%s' (FlexAttention): in %s", n->name, name);
    else if (kiln_numel(&res) != count || !kiln_dtype_is_float(res.dtype))
        s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must keep the shape of its input", name);
    for (int64_t i = 0; !s && i < count; i++) v[i] = nn_round_to(dt, kiln_tensor_f64(&res, i));
    kiln_tensor_release(&t);
    kiln_tensor_release(&res);
    return s;
}

static void flex_scores(const att_plan *p, const kiln_tensor *q, const double *kp, kiln_dtype dt, double *sc) {
    for (int64_t b = 0; b < p->b; b++)
        for (int64_t h = 0; h < p->hq; h++)
            for (int64_t i = 0; i < p->sq; i++)
                for (int64_t j = 0; j < p->t; j++) {
                    double dot = 0;
                    for (int64_t d = 0; d < p->dq; d++)
                        dot += kiln_tensor_f64(q, ((b * p->hq + h) * p->sq + i) * p->dq + d) *
                               kp[((b * p->hk + h / (p->hq / p->hk)) * p->t + j) * p->dq + d];
                    sc[((b * p->hq + h) * p->sq + i) * p->t + j] = nn_round_to(dt, dot * p->scale);
                }
}

static void flex_softmax(const att_plan *p, double *sc) {
    for (int64_t r = 0; r < p->b * p->hq * p->sq; r++) {
        double *row = sc + r * p->t, mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < p->t; j++) mx = row[j] > mx ? row[j] : mx;
        for (int64_t j = 0; j < p->t; j++) sum += row[j] = exp(row[j] - mx);
        for (int64_t j = 0; j < p->t; j++) row[j] /= sum;
    }
}

kiln_status nn_ref_flex_attention(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    att_plan p;
    double *kp = NULL, *vp = NULL, *sc = NULL;
    kiln_status s = flex_setup(ctx, n, in, &p);
    /* scores and probabilities live in float32 at least, as the spec's reference keeps them */
    kiln_dtype dt = in[0]->dtype == KILN_F64 ? KILN_F64 : KILN_F32;
    int64_t sp = gir_attr_int(n, "softmax_precision", 0);
    if (sp && kiln_dtype_valid((int)sp) && kiln_dtype_is_float((kiln_dtype)sp)) dt = (kiln_dtype)sp;
    if (!s) s = nn_alloc_f64(ctx, n, p.b * p.hk * p.t * p.dq, &kp);
    if (!s) s = nn_alloc_f64(ctx, n, p.b * p.hk * p.t * p.dv, &vp);
    if (!s) s = nn_alloc_f64(ctx, n, p.b * p.hq * p.sq * p.t, &sc);
    if (!s) {
        att_present(&p, NULL, in[1], p.dq, kp);
        att_present(&p, NULL, in[2], p.dv, vp);
        flex_scores(&p, in[0], kp, dt, sc);
        s = flex_mod(ctx, n, "score_mod", &p, dt, sc);
    }
    if (!s) {
        flex_softmax(&p, sc);
        s = flex_mod(ctx, n, "prob_mod", &p, dt, sc);
    }
    for (int64_t r = 0; !s && r < p.b * p.hq * p.sq; r++) {
        int64_t b = r / (p.hq * p.sq), h = (r / p.sq) % p.hq, hk = h / (p.hq / p.hk);
        for (int64_t d = 0; d < p.dv; d++) {
            double acc = 0;
            for (int64_t j = 0; j < p.t; j++) acc += sc[r * p.t + j] * vp[((b * p.hk + hk) * p.t + j) * p.dv + d];
            nn_store_round(&out[0], r * p.dv + d, acc);
        }
    }
    kiln_free(kp);
    kiln_free(vp);
    kiln_free(sc);
    return s;
}
