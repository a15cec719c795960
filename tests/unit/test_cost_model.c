/*
** test_cost_model.c — the tuner's cost model (autotune/cost_model.h):
** trained on a synthetic function of the features it ranks held-out
** candidates better than chance, per task when tasks' times differ by
** orders of magnitude; failed candidates score low; predictions are
** deterministic; before enough records the ranking is a seeded random one;
** bad records are refused.
*/
#include <math.h>
#include <string.h>

#include "autotune/cost_model.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/mem.h"

static kiln_ctx *g_ctx;
static uint64_t g_rng;

static double urand(void) {
    g_rng += 0x9e3779b97f4a7c15ull;
    uint64_t z = g_rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

static void setup(void) {
    if (!g_ctx) kiln_ctx_new(&g_ctx);
    g_rng = 12345;
}

/* A candidate: features in [0, 1) on a few slots, the rest zero; its time
** is a smooth function of some of them (others are noise the model must
** ignore). */
static double make(float *f, double scale) {
    memset(f, 0, sizeof(float) * TUNE_N_FEATURES);
    for (int i = 0; i < 12; i++) f[i * 5] = (float)urand();
    double x0 = f[0], x1 = f[5], x2 = f[10], x3 = f[15];
    return scale * exp(2.0 * x0 - 1.5 * x1 + 1.0 * x2 * x3 + 0.8 * (x0 - 0.5) * (x0 - 0.5));
}

/* The fraction of pairs (with times differing by > 1%) that the scores
** order as the times (faster = higher score). */
static double pairwise(const double *t, const double *s, int n) {
    int agree = 0, total = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (fabs(t[i] - t[j]) < 0.01 * fmin(t[i], t[j])) continue;
            total++;
            agree += (t[i] < t[j]) == (s[i] > s[j]);
        }
    return total ? (double)agree / total : 0;
}

#define N_TRAIN 160
#define N_TEST 80

static void t_ranks_synthetic(void) {
    setup();
    tune_cost_model *m = NULL;
    CHECK(tune_cost_model_new(g_ctx, 7, &m) == KILN_OK);
    static float f[N_TEST * TUNE_N_FEATURES];
    double t[N_TEST], s[N_TEST];
    for (int i = 0; i < N_TRAIN; i++) {
        float row[TUNE_N_FEATURES];
        double secs = make(row, 1e-4);
        CHECK(tune_cost_model_add(g_ctx, m, 0, row, secs, true) == KILN_OK);
    }
    CHECK(tune_cost_model_train(g_ctx, m) == KILN_OK && tune_cost_model_trained(m));
    CHECK(tune_cost_model_n_records(m) == N_TRAIN);
    for (int i = 0; i < N_TEST; i++) t[i] = make(f + i * TUNE_N_FEATURES, 1e-4);
    kiln_status st = tune_cost_model_predict(g_ctx, m, f, N_TEST, s);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    double acc = pairwise(t, s, N_TEST);
    printf("pairwise accuracy on held-out candidates: %.3f\n", acc);
    CHECK_MSG(acc > 0.7, "pairwise accuracy %.3f", acc);

    /* the same data and seed give the same model, bit for bit */
    tune_cost_model *m2 = NULL;
    double s2[N_TEST];
    CHECK(tune_cost_model_new(g_ctx, 7, &m2) == KILN_OK);
    g_rng = 12345;
    for (int i = 0; i < N_TRAIN; i++) {
        float row[TUNE_N_FEATURES];
        double secs = make(row, 1e-4);
        CHECK(tune_cost_model_add(g_ctx, m2, 0, row, secs, true) == KILN_OK);
    }
    CHECK(tune_cost_model_train(g_ctx, m2) == KILN_OK);
    CHECK(tune_cost_model_predict(g_ctx, m2, f, N_TEST, s2) == KILN_OK);
    CHECK(memcmp(s, s2, sizeof s) == 0);
    tune_cost_model_free(m2);
    tune_cost_model_free(m);
}

/* Two tasks whose times differ by 1000x, pooled in one model: within each
** task the held-out ranking is still good. */
static void t_pooled_tasks(void) {
    setup();
    tune_cost_model *m = NULL;
    CHECK(tune_cost_model_new(g_ctx, 3, &m) == KILN_OK);
    for (int i = 0; i < N_TRAIN; i++) {
        float row[TUNE_N_FEATURES];
        int task = i % 2;
        double secs = make(row, task ? 1e-1 : 1e-4);
        CHECK(tune_cost_model_add(g_ctx, m, task, row, secs, true) == KILN_OK);
    }
    CHECK(tune_cost_model_train(g_ctx, m) == KILN_OK);
    for (int task = 0; task < 2; task++) {
        static float f[N_TEST * TUNE_N_FEATURES];
        double t[N_TEST], s[N_TEST];
        for (int i = 0; i < N_TEST; i++) t[i] = make(f + i * TUNE_N_FEATURES, task ? 1e-1 : 1e-4);
        CHECK(tune_cost_model_predict(g_ctx, m, f, N_TEST, s) == KILN_OK);
        double acc = pairwise(t, s, N_TEST);
        CHECK_MSG(acc > 0.7, "task %d: pairwise accuracy %.3f", task, acc);
    }
    tune_cost_model_free(m);
}

/* Candidates that failed (here: those with x0 > 0.7, otherwise the
** fastest-looking ones are fine) score below the good ones around them. */
static void t_failures_score_low(void) {
    setup();
    tune_cost_model *m = NULL;
    CHECK(tune_cost_model_new(g_ctx, 5, &m) == KILN_OK);
    for (int i = 0; i < N_TRAIN; i++) {
        float row[TUNE_N_FEATURES];
        double secs = make(row, 1e-3);
        bool ok = row[20] < 0.7f;
        CHECK(tune_cost_model_add(g_ctx, m, 0, row, secs, ok) == KILN_OK);
    }
    CHECK(tune_cost_model_train(g_ctx, m) == KILN_OK);
    double sum_bad = 0, sum_good = 0;
    int n_bad = 0, n_good = 0;
    for (int i = 0; i < N_TEST; i++) {
        float row[TUNE_N_FEATURES];
        double s;
        make(row, 1e-3);
        CHECK(tune_cost_model_predict(g_ctx, m, row, 1, &s) == KILN_OK);
        if (row[20] >= 0.75f) sum_bad += s, n_bad++;
        if (row[20] < 0.65f) sum_good += s, n_good++;
    }
    CHECK(n_bad > 0 && n_good > 0);
    CHECK_MSG(sum_bad / n_bad < 0.5 * sum_good / n_good, "failed %g, good %g", sum_bad / n_bad, sum_good / n_good);
    tune_cost_model_free(m);
}

/* Before TUNE_COST_MIN_RECORDS records: a seeded random ranking, the same
** whatever the order of the candidates, different for another seed. */
static void t_random_before_data(void) {
    setup();
    tune_cost_model *a = NULL, *b = NULL, *c = NULL;
    CHECK(tune_cost_model_new(g_ctx, 11, &a) == KILN_OK);
    CHECK(tune_cost_model_new(g_ctx, 11, &b) == KILN_OK);
    CHECK(tune_cost_model_new(g_ctx, 12, &c) == KILN_OK);
    float f[4 * TUNE_N_FEATURES], rev[4 * TUNE_N_FEATURES];
    for (int i = 0; i < 4; i++) make(f + i * TUNE_N_FEATURES, 1);
    for (int i = 0; i < 4; i++) memcpy(rev + i * TUNE_N_FEATURES, f + (3 - i) * TUNE_N_FEATURES, sizeof(float) * TUNE_N_FEATURES);
    for (int i = 0; i < TUNE_COST_MIN_RECORDS - 1; i++) {
        float row[TUNE_N_FEATURES];
        double secs = make(row, 1);
        CHECK(tune_cost_model_add(g_ctx, a, 0, row, secs, true) == KILN_OK);
    }
    CHECK(tune_cost_model_train(g_ctx, a) == KILN_OK && !tune_cost_model_trained(a));
    double sa[4], sb[4], sc[4];
    CHECK(tune_cost_model_predict(g_ctx, a, f, 4, sa) == KILN_OK);
    CHECK(tune_cost_model_predict(g_ctx, b, rev, 4, sb) == KILN_OK);
    CHECK(tune_cost_model_predict(g_ctx, c, f, 4, sc) == KILN_OK);
    bool differ = false;
    for (int i = 0; i < 4; i++) {
        CHECK(sa[i] >= 0 && sa[i] < 1 && sa[i] == sb[3 - i]);
        differ |= sa[i] != sc[i];
    }
    CHECK(differ);
    /* only failures: nothing to learn from yet */
    for (int i = 0; i < TUNE_COST_MIN_RECORDS; i++) {
        float row[TUNE_N_FEATURES];
        make(row, 1);
        CHECK(tune_cost_model_add(g_ctx, b, 1, row, 0, false) == KILN_OK);
    }
    CHECK(tune_cost_model_train(g_ctx, b) == KILN_OK && !tune_cost_model_trained(b));
    tune_cost_model_free(a), tune_cost_model_free(b), tune_cost_model_free(c);
    tune_cost_model_free(NULL);
}

static void t_bad_records(void) {
    setup();
    tune_cost_model *m = NULL;
    CHECK(tune_cost_model_new(g_ctx, 1, &m) == KILN_OK);
    float row[TUNE_N_FEATURES];
    make(row, 1);
    CHECK(tune_cost_model_add(g_ctx, m, 0, row, -1, true) == KILN_ERR_INVALID);
    CHECK(tune_cost_model_add(g_ctx, m, 0, row, INFINITY, true) == KILN_ERR_INVALID);
    CHECK(tune_cost_model_add(g_ctx, m, 0, row, NAN, true) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(g_ctx), "task 0") != NULL);
    row[3] = NAN;
    CHECK(tune_cost_model_add(g_ctx, m, 0, row, 1e-3, true) == KILN_ERR_INVALID);
    CHECK(tune_cost_model_n_records(m) == 0);
    tune_cost_model_free(m);
}

static void t_allocation_failures(void) {
    setup();
    long live = kiln_mem_live();
    int ok_at = -1;
    for (int n = 0; n < 100 && ok_at < 0; n++) {
        tune_cost_model *m = NULL;
        kiln_mem_fail_after(n);
        kiln_status st = tune_cost_model_new(g_ctx, 1, &m);
        for (int i = 0; !st && i < 100; i++) {
            float row[TUNE_N_FEATURES];
            double secs = make(row, 1);
            st = tune_cost_model_add(g_ctx, m, 0, row, secs, true);
        }
        if (!st) st = tune_cost_model_train(g_ctx, m);
        kiln_mem_fail_after(-1);
        CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
        if (!st) {
            CHECK(tune_cost_model_n_records(m) == 100 && tune_cost_model_trained(m));
            ok_at = n;
        }
        tune_cost_model_free(m);
        CHECK_MSG(kiln_mem_live() == live, "n=%d leaks", n);
    }
    CHECK(ok_at > 0);
    kiln_ctx_free(g_ctx);
    g_ctx = NULL;
}

TEST_MAIN(T(t_ranks_synthetic), T(t_pooled_tasks), T(t_failures_score_low), T(t_random_before_data), T(t_bad_records),
          T(t_allocation_failures))
