/*
** cost_model.c — gradient-boosted trees over candidates' features, through
** XGBoost's C API. Every XGBoost call is checked; its message goes into the
** context. The records live in growing arrays; each train refits from
** scratch (a few hundred records train in milliseconds), so the model never
** depends on the order of earlier trains.
*/
#include "autotune/cost_model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <xgboost/c_api.h>

#include "ir/ctx.h"
#include "ir/mem.h"

#define N_ROUNDS 60
/* A failed record's weight against a success's 1: failing regions are
** avoided without drowning what the successes around them say (a crash
** next to the optimum must not hide the optimum). */
#define FAIL_WEIGHT 0.25f

struct tune_cost_model {
    uint64_t seed;
    int n, cap;
    float *feat; /* n x TUNE_N_FEATURES */
    int *task;
    double *seconds; /* <= 0: failed */
    BoosterHandle booster; /* NULL until trained on enough records */
    int fitted_n;          /* records the last train saw */
};

static kiln_status xgb_fail(kiln_ctx *ctx, const char *call) {
    return kiln_fail(ctx, KILN_ERR_INTERNAL, "cost model: XGBoost %s failed: %s", call, XGBGetLastError());
}

kiln_status tune_cost_model_new(kiln_ctx *ctx, uint64_t seed, tune_cost_model **out) {
    tune_cost_model *m = kiln_calloc(1, sizeof *m);
    if (!m) return kiln_fail(ctx, KILN_ERR_NOMEM, "cost model: out of memory");
    m->seed = seed;
    *out = m;
    return KILN_OK;
}

void tune_cost_model_free(tune_cost_model *m) {
    if (!m) return;
    if (m->booster) (void)XGBoosterFree(m->booster);
    kiln_free(m->feat);
    kiln_free(m->task);
    kiln_free(m->seconds);
    kiln_free(m);
}

int tune_cost_model_n_records(const tune_cost_model *m) { return m->n; }
bool tune_cost_model_trained(const tune_cost_model *m) { return m->booster != NULL; }

static kiln_status grow(kiln_ctx *ctx, tune_cost_model *m) {
    int cap = m->cap ? 2 * m->cap : 64;
    float *f = kiln_realloc(m->feat, sizeof(float) * TUNE_N_FEATURES * (size_t)cap);
    if (f) m->feat = f;
    int *t = f ? kiln_realloc(m->task, sizeof(int) * (size_t)cap) : NULL;
    if (t) m->task = t;
    double *s = t ? kiln_realloc(m->seconds, sizeof(double) * (size_t)cap) : NULL;
    if (!s) return kiln_fail(ctx, KILN_ERR_NOMEM, "cost model: out of memory for %d records", cap);
    m->seconds = s;
    m->cap = cap;
    return KILN_OK;
}

kiln_status tune_cost_model_add(kiln_ctx *ctx, tune_cost_model *m, int task, const float *feat, double seconds,
                                bool ok) {
    if (ok && !(isfinite(seconds) && seconds > 0))
        return kiln_fail(ctx, KILN_ERR_INVALID, "cost model: record of task %d: time %g s is not a positive number",
                         task, seconds);
    for (int i = 0; i < TUNE_N_FEATURES; i++)
        if (!isfinite(feat[i]))
            return kiln_fail(ctx, KILN_ERR_INVALID, "cost model: record of task %d: feature %d is not finite", task, i);
    if (m->n == m->cap) {
        kiln_status st = grow(ctx, m);
        if (st) return st;
    }
    memcpy(m->feat + (size_t)m->n * TUNE_N_FEATURES, feat, sizeof(float) * TUNE_N_FEATURES);
    m->task[m->n] = task;
    m->seconds[m->n] = ok ? seconds : 0;
    m->n++;
    return KILN_OK;
}

/* label[i] = the best time of record i's task / its time; 0 for failures.
** False when no record succeeded. */
static bool labels(const tune_cost_model *m, float *label) {
    bool any = false;
    for (int i = 0; i < m->n; i++) {
        label[i] = 0;
        if (m->seconds[i] <= 0) continue;
        double best = m->seconds[i];
        for (int j = 0; j < m->n; j++)
            if (m->task[j] == m->task[i] && m->seconds[j] > 0 && m->seconds[j] < best) best = m->seconds[j];
        label[i] = (float)(best / m->seconds[i]);
        any = true;
    }
    return any;
}

static kiln_status set_params(kiln_ctx *ctx, BoosterHandle b, uint64_t seed) {
    char seed_s[32];
    snprintf(seed_s, sizeof seed_s, "%d", (int)(seed & 0x7fffffff));
    static const char *const kv[][2] = {
        {"objective", "reg:squarederror"}, {"tree_method", "hist"}, {"nthread", "1"}, {"verbosity", "0"},
        {"max_depth", "6"}, {"eta", "0.2"}, {"min_child_weight", "1"}, {"subsample", "1"},
    };
    for (size_t i = 0; i < sizeof kv / sizeof kv[0]; i++)
        if (XGBoosterSetParam(b, kv[i][0], kv[i][1])) return xgb_fail(ctx, "XGBoosterSetParam");
    if (XGBoosterSetParam(b, "seed", seed_s)) return xgb_fail(ctx, "XGBoosterSetParam(seed)");
    return KILN_OK;
}

static kiln_status fit(kiln_ctx *ctx, tune_cost_model *m, const float *label, const float *weight,
                       BoosterHandle *out) {
    DMatrixHandle d = NULL;
    BoosterHandle b = NULL;
    kiln_status st = KILN_OK;
    if (XGDMatrixCreateFromMat(m->feat, (bst_ulong)m->n, TUNE_N_FEATURES, NAN, &d)) {
        st = xgb_fail(ctx, "XGDMatrixCreateFromMat");
        goto done;
    }
    if (XGDMatrixSetFloatInfo(d, "label", label, (bst_ulong)m->n)) {
        st = xgb_fail(ctx, "XGDMatrixSetFloatInfo(label)");
        goto done;
    }
    if (XGDMatrixSetFloatInfo(d, "weight", weight, (bst_ulong)m->n)) {
        st = xgb_fail(ctx, "XGDMatrixSetFloatInfo(weight)");
        goto done;
    }
    if (XGBoosterCreate(&d, 1, &b)) {
        b = NULL;
        st = xgb_fail(ctx, "XGBoosterCreate");
        goto done;
    }
    st = set_params(ctx, b, m->seed);
    for (int it = 0; !st && it < N_ROUNDS; it++)
        if (XGBoosterUpdateOneIter(b, it, d)) st = xgb_fail(ctx, "XGBoosterUpdateOneIter");
done:
    if (d) (void)XGDMatrixFree(d); /* nothing to do if freeing fails */
    if (st && b) (void)XGBoosterFree(b);
    if (!st) *out = b;
    return st;
}

kiln_status tune_cost_model_train(kiln_ctx *ctx, tune_cost_model *m) {
    if (m->n < TUNE_COST_MIN_RECORDS || m->n == m->fitted_n) return KILN_OK;
    float *label = kiln_malloc(sizeof(float) * 2 * (size_t)m->n);
    if (!label) return kiln_fail(ctx, KILN_ERR_NOMEM, "cost model: out of memory for %d labels", m->n);
    float *weight = label + m->n;
    for (int i = 0; i < m->n; i++) weight[i] = m->seconds[i] > 0 ? 1.0f : FAIL_WEIGHT;
    BoosterHandle b = NULL;
    kiln_status st = labels(m, label) ? fit(ctx, m, label, weight, &b) : KILN_OK;
    kiln_free(label);
    if (!st) m->fitted_n = m->n;
    if (st || !b) return st;
    if (m->booster) (void)XGBoosterFree(m->booster);
    m->booster = b;
    return KILN_OK;
}

/* A stable pseudo-random score of one feature row: splitmix64 over its bits. */
static double random_score(uint64_t seed, const float *feat) {
    uint64_t h = seed ^ 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < TUNE_N_FEATURES; i++) {
        uint32_t bits;
        memcpy(&bits, &feat[i], sizeof bits);
        h += bits + 0x9e3779b97f4a7c15ull;
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
        h ^= h >> 31;
    }
    return (double)(h >> 11) / 9007199254740992.0;
}

kiln_status tune_cost_model_predict(kiln_ctx *ctx, tune_cost_model *m, const float *feat, int n, double *scores) {
    if (n <= 0) return KILN_OK;
    if (!m->booster) {
        for (int i = 0; i < n; i++) scores[i] = random_score(m->seed, feat + (size_t)i * TUNE_N_FEATURES);
        return KILN_OK;
    }
    DMatrixHandle d = NULL;
    bst_ulong len = 0;
    const float *res = NULL;
    kiln_status st = KILN_OK;
    if (XGDMatrixCreateFromMat(feat, (bst_ulong)n, TUNE_N_FEATURES, NAN, &d)) return xgb_fail(ctx, "XGDMatrixCreateFromMat");
    if (XGBoosterPredict(m->booster, d, 0, 0, 0, &len, &res)) st = xgb_fail(ctx, "XGBoosterPredict");
    else if (len != (bst_ulong)n)
        st = kiln_fail(ctx, KILN_ERR_INTERNAL, "cost model: XGBoost predicted %llu values for %d candidates",
                       (unsigned long long)len, n);
    else
        for (int i = 0; i < n; i++) scores[i] = res[i];
    (void)XGDMatrixFree(d);
    return st;
}
