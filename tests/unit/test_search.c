/*
** test_search.c — the tuner's search (autotune/search.h) over the matmul
** template's real space, with a synthetic measurement: a known function of
** the knobs with a single optimum, and regions that crash or compute wrong
** results (given the smallest times, which must not count). The search
** gets near the optimum in a few trials, better than random sampling;
** never proposes a point twice; never picks a failed one; is reproducible
** for a seed; refuses bad reports; survives allocation failures.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/search.h"
#include "harness.h"
#include "ir/mem.h"
#include "tune_kernel.h"

#define ST_CRASH 2
#define ST_WRONG 1

static kiln_ctx *g_ctx;
static cg_cpu_target g_host;
static tk_kernel g_k;
static tune_space g_sp;

static bool setup(void) {
    if (g_ctx) return g_k.f != NULL;
    kiln_ctx_new(&g_ctx);
    if (cg_cpu_host(g_ctx, &g_host)) fprintf(stderr, "host: %s\n", kiln_errmsg(g_ctx));
    if (!tk_make(g_ctx, &g_k, 13, "input %a : f32[64,96]\ninput %c_b : f32[96,128]\n%y = MatMul(%a, %c_b)\noutput %y"))
        return false;
    kiln_status st = tune_space_for(g_ctx, g_k.f, &g_host, &g_sp);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(strcmp(g_sp.template_name, "matmul") == 0 && tune_space_size(&g_sp) >= 512);
    return st == KILN_OK;
}

/* ---- the synthetic measurement ---- */

static int64_t knob(const int64_t *pt, const char *name, int64_t dflt) {
    int k = tune_knob_index(&g_sp, name);
    return k >= 0 ? pt[k] : dflt;
}

/* Seconds, and the status: rows x vectors over 20 crashes, rows 5 with
** k_unroll 8 is wrong; both get the best times of the space. */
static double synth(const int64_t *pt, int *status) {
    int64_t rows = knob(pt, "rows", 6), vecs = knob(pt, "vectors", 3), ku = knob(pt, "k_unroll", 4);
    int64_t axis = knob(pt, "vec_axis", 0), par = knob(pt, "parallel", 1), order = knob(pt, "order", 1);
    *status = rows * vecs > 20 ? ST_CRASH : rows == 5 && ku == 8 ? ST_WRONG : 0;
    if (*status) return 1e-6;
    double t = 1e-4 * (1 + 0.0625 * (double)((rows - 6) * (rows - 6))) * (1 + 0.4 * fabs((double)vecs - 3));
    t *= ku == 4 ? 1 : ku == 1 ? 1.3 : 1.15;
    t *= (axis == 0 ? 1 : 1.5) * (par ? 1 : 1.8) * (order ? 1 : 1.1);
    return t;
}

static double optimum(void) {
    double best = INFINITY;
    int nk = g_sp.n_knobs;
    int64_t pt[TUNE_MAX_KNOBS];
    int idx[TUNE_MAX_KNOBS] = {0};
    for (uint64_t c = 0; c < tune_space_size(&g_sp); c++) {
        for (int k = 0; k < nk; k++) pt[k] = g_sp.knobs[k].values[idx[k]];
        int st;
        double t = synth(pt, &st);
        if (!st && t < best) best = t;
        for (int k = nk - 1; k >= 0 && ++idx[k] == g_sp.knobs[k].n_values; k--) idx[k] = 0;
    }
    return best;
}

/* Every point measured, in order; a point measured twice is a failure. */
typedef struct mlog {
    int n, cap;
    int64_t *pts;
    int repeats;
    int fail_at; /* the call that fails (harness trouble), or -1 */
    int calls;
} mlog;

static kiln_status measure(void *arg, const int64_t *pts, int n, double *secs, int *status) {
    mlog *m = arg;
    int nk = g_sp.n_knobs;
    if (m->calls++ == m->fail_at) return kiln_fail(g_ctx, KILN_ERR_IO, "the measuring child could not start");
    for (int i = 0; i < n; i++) {
        const int64_t *p = pts + i * nk;
        for (int j = 0; j < m->n; j++)
            if (memcmp(m->pts + j * nk, p, sizeof(int64_t) * (size_t)nk) == 0) m->repeats++;
        if (m->n == m->cap) {
            m->cap = m->cap ? 2 * m->cap : 256;
            m->pts = realloc(m->pts, sizeof(int64_t) * (size_t)nk * (size_t)m->cap);
        }
        memcpy(m->pts + m->n * nk, p, sizeof(int64_t) * (size_t)nk);
        m->n++;
        secs[i] = synth(p, &status[i]);
    }
    return KILN_OK;
}

/* Runs a search of n_trials; the best time found (INFINITY: none). */
static double search_once(uint64_t seed, const tune_search_opts *o, int n_trials, int batch, mlog *log) {
    tune_search *s = NULL;
    CHECK(tune_search_new(g_ctx, g_k.f, &g_sp, &g_host, seed, o, &s) == KILN_OK);
    if (!s) return INFINITY;
    kiln_status st = tune_search_run(s, n_trials, batch, measure, log);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    int64_t best[TUNE_MAX_KNOBS];
    double t = INFINITY;
    if (tune_search_best(s, best, &t)) {
        int status;
        double again = synth(best, &status);
        CHECK_MSG(status == 0 && again == t, "the best point failed (status %d) or its time changed", status);
    }
    CHECK(tune_search_n_measured(s) == log->n);
    tune_search_free(s);
    return t;
}

static void evo_opts(tune_search_opts *o) {
    tune_search_opts_default(o);
    o->exhaustive_max = 0; /* the evolutionary search, whatever the space's size */
}

/* Near the optimum in 64 of the space's >= 512 points (on average over
** seeds, and none far), both ways of finding candidates; the first point
** measured is the default. */
static void t_finds_optimum(void) {
    if (!setup()) return;
    double opt = optimum();
    for (int whole = 0; whole < 2; whole++) {
        int near = 0;
        double worst = 0, mean = 0;
        for (uint64_t seed = 1; seed <= 8; seed++) {
            tune_search_opts o;
            evo_opts(&o);
            if (whole) o.exhaustive_max = tune_space_size(&g_sp);
            mlog log = {.fail_at = -1};
            double t = search_once(seed, &o, 64, 8, &log);
            near += t <= 1.05 * opt;
            worst = fmax(worst, t / opt);
            mean += t / opt / 8;
            CHECK(log.n == 64 && log.repeats == 0);
            int64_t def[TUNE_MAX_KNOBS];
            tune_space_default(&g_sp, def);
            CHECK(log.n > 0 && memcmp(log.pts, def, sizeof(int64_t) * (size_t)g_sp.n_knobs) == 0);
            free(log.pts);
        }
        printf("%s: 64 trials of %d points: %d of 8 seeds within 5%% of the optimum, mean %.3fx, worst %.3fx\n",
               whole ? "whole space" : "evolutionary", (int)tune_space_size(&g_sp), near, mean, worst);
        if (whole) CHECK_MSG(mean < 1.25 && worst < 2.0, "whole space: mean %g, worst %g", mean, worst);
        else CHECK_MSG(mean < 1.1 && worst < 1.5, "evolutionary: mean %g, worst %g", mean, worst);
    }
}

/* The best of n distinct points drawn uniformly at random. */
static double random_best(uint64_t seed, int n) {
    int nk = g_sp.n_knobs, size = (int)tune_space_size(&g_sp);
    char *seen = calloc((size_t)size, 1);
    double best = INFINITY;
    for (int got = 0; seen && got < n;) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int at = (int)((seed >> 33) % (uint64_t)size), rest = at;
        if (seen[at]) continue;
        seen[at] = 1, got++;
        int64_t pt[TUNE_MAX_KNOBS];
        for (int k = nk - 1; k >= 0; k--) {
            pt[k] = g_sp.knobs[k].values[rest % g_sp.knobs[k].n_values];
            rest /= g_sp.knobs[k].n_values;
        }
        int st;
        double t = synth(pt, &st);
        if (!st) best = fmin(best, t);
    }
    free(seen);
    return best;
}

/* Guided by the model it does better than random sampling of as many
** points (mean over seeds of the gap to the optimum). */
static void t_beats_random(void) {
    if (!setup()) return;
    double opt = optimum(), gap_search = 0, gap_random = 0;
    tune_search_opts o;
    evo_opts(&o);
    const int n_seeds = 16;
    for (uint64_t seed = 1; seed <= (uint64_t)n_seeds; seed++) {
        mlog a = {.fail_at = -1};
        gap_search += search_once(seed, &o, 40, 8, &a) / opt - 1;
        gap_random += random_best(seed, 40) / opt - 1;
        free(a.pts);
    }
    gap_search /= n_seeds, gap_random /= n_seeds;
    printf("mean gap to the optimum after 40 trials (%d seeds): search %.3f, random %.3f\n", n_seeds, gap_search,
           gap_random);
    CHECK_MSG(gap_search < 0.6 * gap_random, "search %g, random %g", gap_search, gap_random);
}

/* The same seed and results: the same points in the same order. */
static void t_reproducible(void) {
    if (!setup()) return;
    tune_search_opts o;
    evo_opts(&o);
    mlog a = {.fail_at = -1}, b = {.fail_at = -1}, c = {.fail_at = -1};
    search_once(9, &o, 48, 8, &a);
    search_once(9, &o, 48, 8, &b);
    search_once(10, &o, 48, 8, &c);
    size_t bytes = sizeof(int64_t) * (size_t)g_sp.n_knobs * 48;
    CHECK(a.n == 48 && b.n == 48 && c.n == 48);
    CHECK(a.n == 48 && b.n == 48 && memcmp(a.pts, b.pts, bytes) == 0);
    CHECK(c.n == 48 && memcmp(a.pts, c.pts, bytes) != 0);
    free(a.pts), free(b.pts), free(c.pts);
}

/* Run to the end: every point exactly once, then nothing more; failed
** points counted, never the best. */
static void t_exhausts_space(void) {
    if (!setup()) return;
    tune_search_opts o;
    evo_opts(&o);
    o.population = 16;
    o.generations = 2;
    tune_search *s = NULL;
    CHECK(tune_search_new(g_ctx, g_k.f, &g_sp, &g_host, 3, &o, &s) == KILN_OK);
    if (!s) return;
    mlog log = {.fail_at = -1};
    int size = (int)tune_space_size(&g_sp);
    CHECK(tune_search_run(s, size + 100, 64, measure, &log) == KILN_OK);
    CHECK_MSG(log.n == size && log.repeats == 0, "%d measured of %d, %d repeats", log.n, size, log.repeats);
    CHECK(tune_search_exhausted(s) && tune_search_n_measured(s) == size);
    int failed = 0;
    for (int i = 0; i < log.n; i++) {
        int st;
        synth(log.pts + i * g_sp.n_knobs, &st);
        failed += st != 0;
    }
    CHECK(failed > 0 && tune_search_n_failed(s) == failed);
    int64_t pts[8 * TUNE_MAX_KNOBS];
    int got = -1;
    CHECK(tune_search_next_batch(s, 8, pts, &got) == KILN_OK && got == 0);
    double t;
    CHECK(tune_search_best(s, NULL, &t) && fabs(t - optimum()) < 1e-15);
    tune_search_free(s);
    free(log.pts);
}

/* Results reported from elsewhere count: the point is not proposed, a
** better report of it wins, bad reports change nothing. */
static void t_reports(void) {
    if (!setup()) return;
    tune_search *s = NULL;
    CHECK(tune_search_new(g_ctx, g_k.f, &g_sp, &g_host, 5, NULL, &s) == KILN_OK);
    if (!s) return;
    int nk = g_sp.n_knobs;
    int64_t def[TUNE_MAX_KNOBS], pts[16 * TUNE_MAX_KNOBS], best[TUNE_MAX_KNOBS];
    tune_space_default(&g_sp, def);
    double t = 2e-3, bad_t = -1;
    int crash = ST_CRASH, ok = 0;
    CHECK(!tune_search_best(s, best, &t));
    CHECK(tune_search_report(s, def, 1, &t, &crash) == KILN_OK);
    CHECK(!tune_search_best(s, best, NULL) && tune_search_n_failed(s) == 1);
    CHECK(tune_search_report(s, def, 1, &t, &ok) == KILN_OK);
    CHECK(tune_search_best(s, best, &t) && t == 2e-3 && memcmp(best, def, sizeof(int64_t) * (size_t)nk) == 0);
    CHECK(tune_search_n_failed(s) == 0 && tune_search_n_measured(s) == 1);
    CHECK(tune_search_report(s, def, 1, &bad_t, &ok) == KILN_ERR_INVALID);
    int64_t wrong[TUNE_MAX_KNOBS];
    memcpy(wrong, def, sizeof wrong);
    wrong[tune_knob_index(&g_sp, "rows")] = 99;
    CHECK(tune_search_report(s, wrong, 1, &t, &ok) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "rows=99") != NULL, "%s", kiln_errmsg(g_ctx));
    CHECK(tune_search_n_measured(s) == 1);
    int got = -1;
    CHECK(tune_search_next_batch(s, 0, pts, &got) == KILN_OK && got == 0);
    CHECK(tune_search_next_batch(s, 16, pts, &got) == KILN_OK && got == 16);
    for (int i = 0; i < got; i++) CHECK(memcmp(pts + i * nk, def, sizeof(int64_t) * (size_t)nk) != 0);
    tune_search_free(s);
    tune_search_free(NULL);
}

/* The measurement harness failing stops the search with its message. */
static void t_measure_fails(void) {
    if (!setup()) return;
    tune_search *s = NULL;
    CHECK(tune_search_new(g_ctx, g_k.f, &g_sp, &g_host, 5, NULL, &s) == KILN_OK);
    if (!s) return;
    mlog log = {.fail_at = 1};
    CHECK(tune_search_run(s, 64, 8, measure, &log) == KILN_ERR_IO);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "could not start") && strstr(kiln_errmsg(g_ctx), "matmul"), "%s",
              kiln_errmsg(g_ctx));
    CHECK(tune_search_n_measured(s) == 8);
    tune_search_free(s);
    free(log.pts);
}

/* Two tasks' searches share one model: each adds its records under its
** task, and both still find their optimum. */
static void t_shared_model(void) {
    if (!setup()) return;
    tune_cost_model *m = NULL;
    CHECK(tune_cost_model_new(g_ctx, 4, &m) == KILN_OK);
    if (!m) return;
    double opt = optimum();
    for (int task = 0; task < 2; task++) {
        tune_search_opts o;
        evo_opts(&o);
        o.model = m;
        o.task = task;
        mlog log = {.fail_at = -1};
        double t = search_once(20 + (uint64_t)task, &o, 48, 8, &log);
        CHECK_MSG(t <= 1.6 * opt, "task %d: best %g, optimum %g", task, t, opt);
        CHECK(tune_cost_model_n_records(m) == 48 * (task + 1));
        free(log.pts);
    }
    CHECK(tune_cost_model_trained(m));
    tune_cost_model_free(m);
}

/* A space without knobs has one point: the default, once. */
static void t_single_point(void) {
    if (!setup()) return;
    tune_space one = {.template_name = "default", .n_knobs = 0};
    tune_search *s = NULL;
    CHECK(tune_search_new(g_ctx, g_k.f, &one, &g_host, 1, NULL, &s) == KILN_OK);
    if (!s) return;
    int64_t pts[4];
    int got = -1;
    CHECK(tune_search_next_batch(s, 4, pts, &got) == KILN_OK && got == 1);
    CHECK(tune_search_exhausted(s));
    CHECK(tune_search_next_batch(s, 4, pts, &got) == KILN_OK && got == 0);
    double t = 1e-3;
    int ok = 0;
    CHECK(tune_search_report(s, pts, 1, &t, &ok) == KILN_OK && tune_search_best(s, NULL, &t) && t == 1e-3);
    tune_search_free(s);
}

static void t_allocation_failures(void) {
    if (!setup()) return;
    tune_search_opts o;
    evo_opts(&o);
    o.population = 8;
    o.generations = 2;
    long live = kiln_mem_live();
    int ok_at = -1;
    for (int n = 0; ok_at < 0 && n < 200000; n += n < 300 ? 1 : 1 + n / 64) {
        tune_search *s = NULL;
        mlog log = {.fail_at = -1};
        kiln_mem_fail_after(n);
        kiln_status st = tune_search_new(g_ctx, g_k.f, &g_sp, &g_host, 2, &o, &s);
        if (!st) st = tune_search_run(s, 12, 4, measure, &log);
        kiln_mem_fail_after(-1);
        CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
        CHECK(log.repeats == 0);
        if (!st) ok_at = n;
        tune_search_free(s);
        free(log.pts);
        CHECK_MSG(kiln_mem_live() == live, "n=%d leaks", n);
    }
    CHECK(ok_at > 0);
}

static void t_done(void) {
    tk_free(&g_k);
    kiln_ctx_free(g_ctx);
}

TEST_MAIN(T(t_finds_optimum), T(t_beats_random), T(t_reproducible), T(t_exhausts_space), T(t_reports),
          T(t_measure_fails), T(t_shared_model), T(t_single_point), T(t_allocation_failures), T(t_done))
