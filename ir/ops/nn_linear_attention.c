/*
** nn_linear_attention.c — LinearAttention (opset 27): a recurrent state
** S [d_k, d_v] per key head, updated token by token (optionally decayed by
** exp(decay) and delta-corrected by beta), read by every query head of the
** group: out = scale * q S.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

static const char *const k_rules[] = {"linear", "gated", "delta", "gated_delta", NULL};

typedef struct la_plan {
    bool gating, delta;
    int64_t b, t, hq, hkv, dk, dv;
    int64_t decay_w, beta_w; /* last dims of decay and beta */
    double scale;
} la_plan;

static kiln_status la_check_aux(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a, bool need, const char *what,
                                const la_plan *p, int64_t w1, int64_t w2, int64_t *width) {
    if (!need != !a)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "update rule %s input '%s'", need ? "needs" : "forbids", what);
    if (!a) return KILN_OK;
    if (a->rank != 3 || a->dims[0] != p->b || a->dims[1] != p->t || (a->dims[2] != w1 && a->dims[2] != w2))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must be [B, T, %lld] or [B, T, %lld]", what, (long long)w1,
                            (long long)w2);
    *width = a->dims[2];
    return KILN_OK;
}

static kiln_status la_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, la_plan *p) {
    const kiln_tensor *q = in[0], *k = in[1], *v = in[2], *past = NN_IN(n, in, 3);
    int rule;
    memset(p, 0, sizeof *p);
    kiln_status s = nn_attr_choice(ctx, n, "update_rule", "gated_delta", k_rules, &rule);
    if (s) return s;
    p->gating = rule == 1 || rule == 3;
    p->delta = rule >= 2;
    p->hq = gir_attr_int(n, "q_num_heads", 0);
    p->hkv = gir_attr_int(n, "kv_num_heads", 0);
    if (p->hq < 1 || p->hkv < 1 || p->hq % p->hkv)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "q_num_heads must be a positive multiple of kv_num_heads");
    if (q->rank != 3 || k->rank != 3 || v->rank != 3 || q->dims[2] % p->hq || k->dims[2] % p->hkv ||
        v->dims[2] % p->hkv)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "query, key and value must be [B, T, heads * size]");
    p->b = q->dims[0], p->t = q->dims[1];
    p->dk = q->dims[2] / p->hq, p->dv = v->dims[2] / p->hkv;
    if (k->dims[0] != p->b || v->dims[0] != p->b || k->dims[1] != p->t || v->dims[1] != p->t ||
        k->dims[2] / p->hkv != p->dk)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "key or value does not match the query");
    if (past && (past->rank != 4 || past->dims[0] != p->b || past->dims[1] != p->hkv || past->dims[2] != p->dk ||
                 past->dims[3] != p->dv))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "past_state must be [B, kv_num_heads, d_k, d_v]");
    s = la_check_aux(ctx, n, NN_IN(n, in, 4), p->gating, "decay", p, p->hkv, p->hkv * p->dk, &p->decay_w);
    if (!s) s = la_check_aux(ctx, n, NN_IN(n, in, 5), p->delta, "beta", p, p->hkv, 1, &p->beta_w);
    if (s) return s;
    double sc = gir_attr_float(n, "scale", 0.0);
    p->scale = sc == 0 ? 1.0 / sqrt((double)p->dk) : sc;
    return KILN_OK;
}

kiln_status nn_infer_linear_attention(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                      kiln_tensor *out) {
    la_plan p;
    kiln_status s = la_setup(ctx, n, in, &p);
    if (s) return s;
    const kiln_tensor *past = NN_IN(n, in, 3);
    kiln_tensor_init(&out[0], in[0]->dtype, 3, (int64_t[]){p.b, p.t, p.hq * p.dv});
    if (n->n_outputs > 1)
        kiln_tensor_init(&out[1], past ? past->dtype : in[0]->dtype, 4, (int64_t[]){p.b, p.hkv, p.dk, p.dv});
    return KILN_OK;
}

/* One token of one key head: decay, delta correction, the rank-1 update. */
static void la_update(const la_plan *p, const kiln_tensor *const *in, const gir_node *n, int64_t b, int64_t t,
                      int64_t h, double *st, double *vt) {
    const kiln_tensor *k = in[1], *v = in[2], *decay = NN_IN(n, in, 4), *beta = NN_IN(n, in, 5);
    int64_t kbase = (b * p->t + t) * p->hkv * p->dk + h * p->dk, vbase = (b * p->t + t) * p->hkv * p->dv + h * p->dv;
    if (p->gating)
        for (int64_t d = 0; d < p->dk; d++) {
            int64_t gi = (b * p->t + t) * p->decay_w + (p->decay_w == p->hkv ? h : h * p->dk + d);
            double g = exp(kiln_tensor_f64(decay, gi));
            for (int64_t m = 0; m < p->dv; m++) st[d * p->dv + m] *= g;
        }
    for (int64_t m = 0; m < p->dv; m++) vt[m] = kiln_tensor_f64(v, vbase + m);
    if (p->delta) {
        double bt = kiln_tensor_f64(beta, (b * p->t + t) * p->beta_w + (p->beta_w == 1 ? 0 : h));
        for (int64_t m = 0; m < p->dv; m++) {
            double r = 0;
            for (int64_t d = 0; d < p->dk; d++) r += st[d * p->dv + m] * kiln_tensor_f64(k, kbase + d);
            vt[m] = bt * (vt[m] - r);
        }
    }
    for (int64_t d = 0; d < p->dk; d++) {
        double kd = kiln_tensor_f64(k, kbase + d);
        for (int64_t m = 0; m < p->dv; m++) st[d * p->dv + m] += kd * vt[m];
    }
}

kiln_status nn_ref_linear_attention(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out) {
    const kiln_tensor *q = in[0], *past = NN_IN(n, in, 3);
    la_plan p;
    double *st = NULL;
    kiln_status s = la_setup(ctx, n, in, &p);
    if (!s) s = nn_alloc_f64(ctx, n, p.dk * p.dv + p.dv, &st);
    if (s) return s;
    double *vt = st + p.dk * p.dv;
    int64_t group = p.hq / p.hkv;
    for (int64_t b = 0; b < p.b; b++)
        for (int64_t h = 0; h < p.hkv; h++) {
            for (int64_t i = 0; i < p.dk * p.dv; i++)
                st[i] = past ? kiln_tensor_f64(past, (b * p.hkv + h) * p.dk * p.dv + i) : 0;
            for (int64_t t = 0; t < p.t; t++) {
                la_update(&p, in, n, b, t, h, st, vt);
                for (int64_t hq = h * group; hq < (h + 1) * group; hq++)
                    for (int64_t m = 0; m < p.dv; m++) {
                        double acc = 0;
                        for (int64_t d = 0; d < p.dk; d++)
                            acc += kiln_tensor_f64(q, (b * p.t + t) * p.hq * p.dk + hq * p.dk + d) * st[d * p.dv + m];
                        nn_store_round(&out[0], (b * p.t + t) * p.hq * p.dv + hq * p.dv + m, p.scale * acc);
                    }
            }
            for (int64_t i = 0; n->n_outputs > 1 && i < p.dk * p.dv; i++)
                nn_store_round(&out[1], (b * p.hkv + h) * p.dk * p.dv + i, st[i]);
        }
    kiln_free(st);
    return KILN_OK;
}
