/*
** extra_tfidf.c — TfIdfVectorizer: counts the pool's n-grams in each row
** of the input, with n-grams taken at every skip distance from 1 to
** max_skip_count + 1 (1-grams once), then weights the counts (TF, IDF,
** TFIDF). Follows ONNX's reference: the weights are indexed by output
** column, and a pool n-gram listed twice counts at its last entry.
*/
#include <string.h>

#include "extra_ops.h"

typedef struct tfidf {
    int mode; /* 0 TF, 1 IDF, 2 TFIDF */
    int64_t min_n, max_n, max_skip, width;
    const int64_t *counts, *indexes, *pool_i;
    const char **pool_s;
    const double *weights;
    int n_counts, n_indexes, n_pool, n_weights;
} tfidf;

static kiln_status tfidf_pool(kiln_ctx *ctx, const gir_node *n, tfidf *t) {
    const gir_attr *pi = xo_attr(n, "pool_int64s", GIR_ATTR_INTS), *ps = xo_attr(n, "pool_strings", GIR_ATTR_STRINGS);
    if (!pi == !ps) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "exactly one of pool_int64s and pool_strings is needed");
    t->pool_i = pi ? pi->ints : NULL;
    t->pool_s = ps ? ps->strings : NULL;
    t->n_pool = pi ? pi->n : ps->n;
    int64_t total = 0;
    for (int k = 0; k < t->n_counts; k++) {
        int64_t start = t->counts[k], end = k + 1 < t->n_counts ? t->counts[k + 1] : t->n_pool;
        if (start < 0 || end < start || end > t->n_pool || (end - start) % (k + 1))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                                "ngram_counts entry %d (%lld) does not split the pool into %d-grams", k,
                                (long long)start, k + 1);
        total += (end - start) / (k + 1);
    }
    if (t->n_indexes < total)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "ngram_indexes has %d entries for %lld n-grams", t->n_indexes,
                            (long long)total);
    return KILN_OK;
}

static kiln_status tfidf_read(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, tfidf *t) {
    memset(t, 0, sizeof *t);
    const char *mode = gir_attr_string(n, "mode", "");
    t->mode = !strcmp(mode, "TF") ? 0 : !strcmp(mode, "IDF") ? 1 : !strcmp(mode, "TFIDF") ? 2 : -1;
    if (t->mode < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "mode '%s' is not TF, IDF or TFIDF", mode);
    t->min_n = gir_attr_int(n, "min_gram_length", 1);
    t->max_n = gir_attr_int(n, "max_gram_length", 1);
    t->max_skip = gir_attr_int(n, "max_skip_count", 0);
    if (t->min_n < 1 || t->max_n < t->min_n || t->max_skip < 0 || t->max_skip > ((int64_t)1 << 30))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "gram lengths [%lld, %lld] or skip count %lld are invalid",
                            (long long)t->min_n, (long long)t->max_n, (long long)t->max_skip);
    t->n_counts = gir_attr_ints(n, "ngram_counts", &t->counts);
    t->n_indexes = gir_attr_ints(n, "ngram_indexes", &t->indexes);
    t->n_weights = gir_attr_floats(n, "weights", &t->weights);
    if (t->n_counts < 0 || t->n_indexes < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "ngram_counts and ngram_indexes are required");
    kiln_status s = tfidf_pool(ctx, n, t);
    if (s) return s;
    for (int k = 0; k < t->n_indexes; k++) {
        if (t->indexes[k] < 0 || t->indexes[k] >= ((int64_t)1 << 31))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "ngram index %lld is invalid", (long long)t->indexes[k]);
        if (t->indexes[k] + 1 > t->width) t->width = t->indexes[k] + 1;
    }
    if (t->n_weights > 0 && t->n_weights < t->width)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "weights has %d entries for %lld outputs", t->n_weights,
                            (long long)t->width);
    if ((x->dtype == KILN_STRING) != (t->pool_s != NULL))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "a %s input needs pool_%s", kiln_dtype_name(x->dtype),
                            x->dtype == KILN_STRING ? "strings" : "int64s");
    if (x->rank > 2) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the input must be [C] or [N, C]");
    return KILN_OK;
}

kiln_status xo_tfidf_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    tfidf t;
    kiln_status s = tfidf_read(ctx, n, in[0], &t);
    if (s) return s;
    int64_t dims[2] = {in[0]->dims[0], t.width};
    if (in[0]->rank == 2) kiln_tensor_init(&out[0], KILN_F32, 2, dims);
    else kiln_tensor_init(&out[0], KILN_F32, 1, &t.width);
    return KILN_OK;
}

static bool token_eq(const tfidf *t, const kiln_tensor *x, int64_t at, int64_t p) {
    if (t->pool_s) return !strcmp(xo_str(x, at), t->pool_s[p]);
    return kiln_load_i64(x->dtype, x->data, at) == t->pool_i[p];
}

/* Output column of the n-gram at x[row0 + start + k*dist], k < len, or -1. */
static int64_t find_gram(const tfidf *t, const kiln_tensor *x, int64_t row0, int64_t start, int64_t dist, int64_t len) {
    if (len > t->n_counts) return -1;
    int64_t id0 = 0;
    for (int k = 0; k + 1 < len; k++) {
        int64_t end = k + 1 < t->n_counts ? t->counts[k + 1] : t->n_pool;
        id0 += (end - t->counts[k]) / (k + 1);
    }
    int64_t begin = t->counts[len - 1], end = len < t->n_counts ? t->counts[len] : t->n_pool;
    for (int64_t g = (end - begin) / len - 1; g >= 0; g--) {
        int64_t k = 0;
        while (k < len && token_eq(t, x, row0 + start + k * dist, begin + g * len + k)) k++;
        if (k == len) return t->indexes[id0 + g];
    }
    return -1;
}

static void count_row(const tfidf *t, const kiln_tensor *x, int64_t row0, int64_t c, float *y) {
    /* no pool n-gram is longer than the levels listed; no 2-gram spans c */
    int64_t top = t->max_n < t->n_counts ? t->max_n : t->n_counts;
    for (int64_t dist = 1; dist <= t->max_skip + 1 && (dist == 1 || dist < c); dist++) {
        int64_t lo = dist == 1 ? t->min_n : (t->min_n > 2 ? t->min_n : 2);
        for (int64_t start = 0; start < c; start++)
            for (int64_t len = lo; len <= top && start + (len - 1) * dist < c; len++) {
                int64_t col = find_gram(t, x, row0, start, dist, len);
                if (col >= 0) y[col] += 1.0f;
            }
    }
    for (int64_t i = 0; i < t->width; i++) {
        double w = t->n_weights > 0 ? t->weights[i] : 1.0;
        if (t->mode == 1) y[i] = y[i] > 0 ? (float)w : 0.0f;
        if (t->mode == 2) y[i] = (float)(y[i] * w);
    }
}

kiln_status xo_tfidf_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    tfidf t;
    kiln_status s = tfidf_read(ctx, n, in[0], &t);
    if (s) return s;
    const kiln_tensor *x = in[0];
    int64_t rows = x->rank == 2 ? x->dims[0] : 1, c = x->rank == 0 ? 1 : x->dims[x->rank - 1];
    for (int64_t r = 0; r < rows; r++) count_row(&t, x, r * c, c, (float *)out[0].data + r * t.width);
    return KILN_OK;
}
