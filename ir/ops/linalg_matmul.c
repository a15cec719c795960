/*
** linalg_matmul.c — MatMul (numpy semantics: batched, broadcast, 1-D
** operands) and Gemm. Float types accumulate in double; integer types in
** wrapping 64-bit arithmetic, then truncate to the element type as numpy does.
*/
#include <string.h>

#include "nn_internal.h"

kiln_status nn_matmul_shape_of(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *a,
                               const kiln_tensor *b, nn_matmul_shape *s) {
    memset(s, 0, sizeof *s);
    if (a->rank < 1 || b->rank < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "MatMul operands must have rank 1 or more (got %d and %d)",
                            a->rank, b->rank);
    int ra = a->rank < 2 ? 2 : a->rank, rb = b->rank < 2 ? 2 : b->rank;
    int64_t ad[KILN_MAX_RANK + 1], bd[KILN_MAX_RANK + 1];
    if (a->rank == 1) ad[0] = 1, ad[1] = a->dims[0];
    else memcpy(ad, a->dims, sizeof(int64_t) * (size_t)ra);
    if (b->rank == 1) bd[0] = b->dims[0], bd[1] = 1;
    else memcpy(bd, b->dims, sizeof(int64_t) * (size_t)rb);
    s->m = ad[ra - 2], s->k = ad[ra - 1], s->n = bd[rb - 1];
    if (bd[rb - 2] != s->k)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "inner dimensions differ: %lld and %lld",
                            (long long)s->k, (long long)bd[rb - 2]);
    int nb = (ra > rb ? ra : rb) - 2;
    s->batch_rank = nb;
    int64_t astr = 1, bstr = 1;
    for (int i = nb - 1; i >= 0; i--) {
        int ia = i - (nb - (ra - 2)), ib = i - (nb - (rb - 2));
        int64_t da = ia >= 0 ? ad[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "batch dimensions %lld and %lld do not broadcast",
                                (long long)da, (long long)db);
        s->batch[i] = da == 1 ? db : da;
        s->a_bstride[i] = da == 1 ? 0 : astr;
        s->b_bstride[i] = db == 1 ? 0 : bstr;
        astr *= da;
        bstr *= db;
    }
    int r = 0;
    for (int i = 0; i < nb; i++) s->out[r++] = s->batch[i];
    if (a->rank > 1) s->out[r++] = s->m;
    if (b->rank > 1) s->out[r++] = s->n;
    s->out_rank = r;
    return KILN_OK;
}

/* Element offsets of batch entry q's matrices in a and b (broadcast batch dims). */
void nn_matmul_batch(const nn_matmul_shape *s, int64_t q, int64_t *aoff, int64_t *boff) {
    int64_t am = 0, bm = 0;
    for (int d = s->batch_rank - 1; d >= 0; d--) {
        int64_t i = q % s->batch[d];
        q /= s->batch[d];
        am += i * s->a_bstride[d];
        bm += i * s->b_bstride[d];
    }
    *aoff = am * s->m * s->k;
    *boff = bm * s->k * s->n;
}

void nn_matmul_f64(const nn_matmul_shape *s, const double *a, const double *b, double *y) {
    int64_t nbatch = kiln_numel_dims(s->batch_rank, s->batch);
    for (int64_t q = 0; q < nbatch; q++) {
        int64_t aoff, boff, yoff = q * s->m * s->n;
        nn_matmul_batch(s, q, &aoff, &boff);
        for (int64_t i = 0; i < s->m; i++) {
            double *yr = y + yoff + i * s->n;
            for (int64_t j = 0; j < s->n; j++) yr[j] = 0;
            for (int64_t p = 0; p < s->k; p++) {
                double av = a[aoff + i * s->k + p];
                const double *br = b + boff + p * s->n;
                for (int64_t j = 0; j < s->n; j++) yr[j] += av * br[j];
            }
        }
    }
}

static void matmul_int(const nn_matmul_shape *s, const kiln_tensor *a, const kiln_tensor *b,
                       kiln_tensor *y) {
    int64_t nbatch = kiln_numel_dims(s->batch_rank, s->batch);
    for (int64_t q = 0; q < nbatch; q++) {
        int64_t aoff, boff, yoff = q * s->m * s->n;
        nn_matmul_batch(s, q, &aoff, &boff);
        for (int64_t i = 0; i < s->m; i++)
            for (int64_t j = 0; j < s->n; j++) {
                uint64_t acc = 0;
                for (int64_t p = 0; p < s->k; p++)
                    acc += (uint64_t)kiln_load_i64(a->dtype, a->data, aoff + i * s->k + p) *
                           (uint64_t)kiln_load_i64(b->dtype, b->data, boff + p * s->n + j);
                kiln_store_i64(y->dtype, y->data, yoff + i * s->n + j, (int64_t)acc);
            }
    }
}

kiln_status nn_infer_matmul(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    nn_matmul_shape s;
    kiln_status st = nn_check_same_dtype(ctx, n, in[0], in[1], "B");
    if (!st) st = nn_matmul_shape_of(ctx, n, in[0], in[1], &s);
    if (st) return st;
    kiln_tensor_init(&out[0], in[0]->dtype, s.out_rank, s.out);
    return KILN_OK;
}

kiln_status nn_ref_matmul(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    nn_matmul_shape s;
    kiln_status st = nn_matmul_shape_of(ctx, n, in[0], in[1], &s);
    if (st) return st;
    if (kiln_dtype_is_int(in[0]->dtype)) {
        matmul_int(&s, in[0], in[1], &out[0]);
        return KILN_OK;
    }
    const double *av = NULL, *bv = NULL;
    double *yv = NULL;
    st = nn_read_f64(ctx, n, in[0], &av);
    if (!st) st = nn_read_f64(ctx, n, in[1], &bv);
    if (!st) st = nn_out_f64(ctx, n, &out[0], &yv);
    if (!st) nn_matmul_f64(&s, av, bv, yv);
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], av);
    nn_release_f64(in[1], bv);
    return st;
}

/* ---- Gemm: Y = alpha * op(A) op(B) + beta * C ---- */

typedef struct gemm_dims {
    int64_t m, k, n;
    bool ta, tb;
    int64_t cstr[2]; /* C's strides over [M, N] (0 on broadcast dims) */
} gemm_dims;

static kiln_status gemm_check_c(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *c, gemm_dims *g) {
    g->cstr[0] = g->cstr[1] = 0;
    if (!c) return KILN_OK;
    int64_t want[2] = {g->m, g->n};
    if (c->rank > 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "C must have rank 2 or less, got %d", c->rank);
    bool exact = c->rank == 2 && c->dims[0] == g->m && c->dims[1] == g->n;
    if (n->opset < 7 && gir_attr_int(n, "broadcast", 0) == 0 && !exact)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "C must have shape [%lld, %lld] when broadcast=0",
                            (long long)g->m, (long long)g->n);
    int64_t stride = 1;
    for (int i = 1; i >= 0; i--) {
        int ci = i - (2 - c->rank);
        int64_t d = ci >= 0 ? c->dims[ci] : 1;
        if (d != 1 && d != want[i])
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "C does not broadcast to [%lld, %lld]", (long long)g->m,
                                (long long)g->n);
        g->cstr[i] = d == 1 ? 0 : stride;
        stride *= d;
    }
    return KILN_OK;
}

static kiln_status gemm_dims_of(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, gemm_dims *g) {
    const kiln_tensor *a = in[0], *b = in[1];
    if (a->rank != 2 || b->rank != 2)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "A and B must be 2-D (got rank %d and %d)", a->rank, b->rank);
    g->ta = gir_attr_int(n, "transA", 0) != 0;
    g->tb = gir_attr_int(n, "transB", 0) != 0;
    g->m = a->dims[g->ta ? 1 : 0];
    g->k = a->dims[g->ta ? 0 : 1];
    g->n = b->dims[g->tb ? 0 : 1];
    int64_t kb = b->dims[g->tb ? 1 : 0];
    if (kb != g->k)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "inner dimensions differ: %lld and %lld", (long long)g->k,
                            (long long)kb);
    return gemm_check_c(ctx, n, NN_IN(n, in, 2), g);
}

kiln_status nn_infer_gemm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    gemm_dims g;
    kiln_status s = nn_check_same_dtype(ctx, n, in[0], in[1], "B");
    if (!s) s = nn_check_same_dtype(ctx, n, in[0], NN_IN(n, in, 2), "C");
    if (!s) s = gemm_dims_of(ctx, n, in, &g);
    if (s) return s;
    int64_t dims[2] = {g.m, g.n};
    kiln_tensor_init(&out[0], in[0]->dtype, 2, dims);
    return KILN_OK;
}

/* Integer Gemm: exact wrapping products; alpha/beta other than 1 go through double. */
static void gemm_int(const gemm_dims *g, const kiln_tensor *a, const kiln_tensor *b,
                     const kiln_tensor *c, double alpha, double beta, kiln_tensor *y) {
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            uint64_t acc = 0;
            for (int64_t p = 0; p < g->k; p++) {
                int64_t ai = g->ta ? p * g->m + i : i * g->k + p;
                int64_t bi = g->tb ? j * g->k + p : p * g->n + j;
                acc += (uint64_t)kiln_load_i64(a->dtype, a->data, ai) * (uint64_t)kiln_load_i64(b->dtype, b->data, bi);
            }
            int64_t cv = c ? kiln_load_i64(c->dtype, c->data, i * g->cstr[0] + j * g->cstr[1]) : 0;
            if (alpha == 1.0 && beta == 1.0)
                kiln_store_i64(y->dtype, y->data, i * g->n + j, (int64_t)(acc + (uint64_t)cv));
            else
                nn_store_round(y, i * g->n + j, alpha * (double)(int64_t)acc + beta * (double)cv);
        }
}

static void gemm_f64(const gemm_dims *g, const double *a, const double *b, const double *c,
                     double alpha, double beta, double *y) {
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < g->k; p++)
                acc += a[g->ta ? p * g->m + i : i * g->k + p] * b[g->tb ? j * g->k + p : p * g->n + j];
            double cv = c ? c[i * g->cstr[0] + j * g->cstr[1]] : 0.0;
            y[i * g->n + j] = alpha * acc + beta * cv;
        }
}

kiln_status nn_ref_gemm(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    gemm_dims g;
    const kiln_tensor *c = NN_IN(n, in, 2);
    double alpha = gir_attr_float(n, "alpha", 1.0), beta = gir_attr_float(n, "beta", 1.0);
    kiln_status s = gemm_dims_of(ctx, n, in, &g);
    if (s) return s;
    if (kiln_dtype_is_int(in[0]->dtype)) {
        gemm_int(&g, in[0], in[1], c, alpha, beta, &out[0]);
        return KILN_OK;
    }
    const double *av = NULL, *bv = NULL, *cv = NULL;
    double *yv = NULL;
    s = nn_read_f64(ctx, n, in[0], &av);
    if (!s) s = nn_read_f64(ctx, n, in[1], &bv);
    if (!s) s = nn_read_f64(ctx, n, c, &cv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) gemm_f64(&g, av, bv, cv, alpha, beta, yv);
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], av);
    nn_release_f64(in[1], bv);
    nn_release_f64(c, cv);
    return s;
}
