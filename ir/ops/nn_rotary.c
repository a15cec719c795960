/*
** nn_rotary.c — RotaryEmbedding (opset 23): rotates pairs of the first
** rotary_embedding_dim features of every head by the cached angle of the
** token's position. Pairs are (i, i + dim/2), or (2i, 2i + 1) when interleaved.
*/
#include "nn_internal.h"

typedef struct rope_plan {
    bool is3d, interleaved;
    int64_t b, s, h, d, rot;
    const kiln_tensor *pos;
} rope_plan;

static kiln_status rope_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, rope_plan *p) {
    const kiln_tensor *x = in[0], *cs = in[1], *sn = in[2];
    p->pos = NN_IN(n, in, 3);
    p->interleaved = gir_attr_int(n, "interleaved", 0) != 0;
    if (x->rank == 4) {
        p->is3d = false;
        p->b = x->dims[0], p->h = x->dims[1], p->s = x->dims[2], p->d = x->dims[3];
    } else if (x->rank == 3) {
        p->is3d = true;
        p->h = gir_attr_int(n, "num_heads", 0);
        if (p->h < 1 || x->dims[2] % p->h)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "3-D input needs num_heads dividing its hidden size");
        p->b = x->dims[0], p->s = x->dims[1], p->d = x->dims[2] / p->h;
    } else {
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must be 3-D or 4-D, got rank %d", x->rank);
    }
    p->rot = gir_attr_int(n, "rotary_embedding_dim", 0);
    if (p->rot == 0) p->rot = p->d;
    if (p->rot < 0 || p->rot > p->d || p->rot % 2)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "rotary_embedding_dim %lld is invalid for head size %lld",
                            (long long)p->rot, (long long)p->d);
    int64_t half = p->rot / 2;
    bool ok = cs->rank == sn->rank && kiln_tensor_same_shape(cs, sn) && cs->dims[cs->rank - 1] == half;
    if (p->pos) ok = ok && cs->rank == 2 && p->pos->rank == 2 && p->pos->dims[0] == p->b && p->pos->dims[1] == p->s;
    else ok = ok && cs->rank == 3 && cs->dims[0] == p->b && cs->dims[1] == p->s;
    if (!ok)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "cos_cache and sin_cache must be [max_pos, %lld] with position_ids, else [B, S, %lld]",
                            (long long)half, (long long)half);
    return nn_check_same_dtype(ctx, n, x, cs, "cos_cache");
}

kiln_status nn_infer_rotary(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    rope_plan p;
    kiln_status s = rope_setup(ctx, n, in, &p);
    if (s) return s;
    return kiln_op_infer_same(ctx, n, in, out);
}

kiln_status nn_ref_rotary(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0], *cs = in[1], *sn = in[2];
    rope_plan p;
    kiln_status s = rope_setup(ctx, n, in, &p);
    if (s) return s;
    int64_t half = p.rot / 2, max_pos = p.pos ? cs->dims[0] : 0;
    for (int64_t b = 0; b < p.b; b++)
        for (int64_t t = 0; t < p.s; t++) {
            int64_t row = b * p.s + t;
            if (p.pos) {
                row = kiln_tensor_i64(p.pos, b * p.s + t);
                if (row < 0 || row >= max_pos)
                    return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "position id %lld is outside the cache of %lld",
                                        (long long)row, (long long)max_pos);
            }
            for (int64_t h = 0; h < p.h; h++) {
                int64_t base = p.is3d ? (b * p.s + t) * p.h * p.d + h * p.d : ((b * p.h + h) * p.s + t) * p.d;
                for (int64_t i = 0; i < half; i++) {
                    int64_t i1 = p.interleaved ? 2 * i : i, i2 = p.interleaved ? 2 * i + 1 : i + half;
                    double c = kiln_tensor_f64(cs, row * half + i), sv = kiln_tensor_f64(sn, row * half + i);
                    double x1 = kiln_tensor_f64(x, base + i1), x2 = kiln_tensor_f64(x, base + i2);
                    nn_store_round(&out[0], base + i1, c * x1 - sv * x2);
                    nn_store_round(&out[0], base + i2, sv * x1 + c * x2);
                }
                for (int64_t i = p.rot; i < p.d; i++) nn_store_round(&out[0], base + i, kiln_tensor_f64(x, base + i));
            }
        }
    return KILN_OK;
}
