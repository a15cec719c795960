/*
** test_task_sched.c — the task scheduler (autotune/task_sched.h): warm-up
** in task order; then rounds go where the weighted improvement is, so a
** model's estimated time falls faster than with round-robin; converged,
** exhausted and hopeless tasks stop getting rounds; choices are
** deterministic; bad reports are refused.
*/
#include <math.h>
#include <string.h>

#include "autotune/task_sched.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/mem.h"

static kiln_ctx *g_ctx;

static void setup(void) {
    if (!g_ctx) kiln_ctx_new(&g_ctx);
}

/* A task's best time after t trials: floor * (1 + amp * 2^(-t / half)). */
typedef struct curve {
    double weight, floor, amp, half;
} curve;

static double best_after(const curve *c, int t) { return c->floor * (1 + c->amp * exp2(-(double)t / c->half)); }

static const curve k_tasks[] = {
    {1, 1e-3, 2.0, 40},   /* heavy, slow to improve */
    {12, 1e-4, 3.0, 16},  /* run 12 times per model run, improves quickly */
    {1, 1e-5, 1.0, 8},    /* tiny: hardly matters */
    {2, 5e-4, 0.05, 8},   /* nearly converged from the start */
};
#define N_TASKS 4
#define ROUND 8

/* Simulates `rounds` rounds; the model's final estimated time. order[] gets
** the chosen tasks. rr: round-robin instead of the scheduler. */
static double simulate(int rounds, bool rr, int *order, int *per_task) {
    double w[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) w[i] = k_tasks[i].weight;
    tune_task_sched *s = NULL;
    CHECK(tune_task_sched_new(g_ctx, N_TASKS, w, NULL, &s) == KILN_OK);
    if (!s) return INFINITY;
    int trials[N_TASKS] = {0};
    for (int r = 0; r < rounds; r++) {
        int t = rr ? r % N_TASKS : tune_task_sched_next(s);
        CHECK(t >= 0 && t < N_TASKS);
        if (t < 0) break;
        if (order) order[r] = t;
        trials[t] += ROUND;
        CHECK(tune_task_sched_report(g_ctx, s, t, ROUND, best_after(&k_tasks[t], trials[t]), false) == KILN_OK);
    }
    double total = tune_task_sched_total(s), want = 0;
    for (int i = 0; i < N_TASKS; i++) {
        want += k_tasks[i].weight * best_after(&k_tasks[i], trials[i]);
        CHECK(tune_task_sched_trials(s, i) == trials[i]);
        if (per_task) per_task[i] = trials[i];
    }
    CHECK(fabs(total - want) <= 1e-12 * want);
    tune_task_sched_free(s);
    return total;
}

/* The best possible allocation of the same rounds, knowing the curves:
** warm-up, then each round where it gains the most (the curves are convex,
** so greedy is optimal). */
static double oracle(int rounds) {
    int trials[N_TASKS];
    for (int i = 0; i < N_TASKS; i++) trials[i] = ROUND;
    for (int r = N_TASKS; r < rounds; r++) {
        int best = 0;
        double bg = -1;
        for (int i = 0; i < N_TASKS; i++) {
            double g = k_tasks[i].weight * (best_after(&k_tasks[i], trials[i]) - best_after(&k_tasks[i], trials[i] + ROUND));
            if (g > bg) bg = g, best = i;
        }
        trials[best] += ROUND;
    }
    double total = 0;
    for (int i = 0; i < N_TASKS; i++) total += k_tasks[i].weight * best_after(&k_tasks[i], trials[i]);
    return total;
}

static void t_warmup_in_order(void) {
    setup();
    int order[N_TASKS];
    simulate(N_TASKS, false, order, NULL);
    for (int i = 0; i < N_TASKS; i++) CHECK(order[i] == i);
}

static void t_beats_round_robin(void) {
    setup();
    int sched[N_TASKS], rr[N_TASKS];
    double ts = simulate(40, false, NULL, sched), tr = simulate(40, true, NULL, rr), to = oracle(40);
    printf("model time after 40 rounds: scheduler %.4g s, round-robin %.4g s, oracle %.4g s; trials per task:", ts, tr, to);
    for (int i = 0; i < N_TASKS; i++) printf(" %d", sched[i]);
    printf("\n");
    CHECK_MSG(ts < 0.9 * tr, "scheduler %g, round-robin %g", ts, tr);
    CHECK_MSG(ts < 1.03 * to, "scheduler %g, oracle %g", ts, to);
    /* the tasks that matter get the trials: the tiny one no more than its
    ** warm-up and one more round, the converged one fewer than either of
    ** the improving ones */
    CHECK(sched[2] <= 2 * ROUND);
    CHECK(sched[3] < sched[0] && sched[3] < sched[1]);
}

static void t_deterministic(void) {
    setup();
    int a[60], b[60];
    simulate(60, false, a, NULL);
    simulate(60, false, b, NULL);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

/* Exhausted tasks, tasks that never work, and weight 0. */
static void t_done_tasks(void) {
    setup();
    double w[3] = {1, 5, 0};
    tune_task_sched *s = NULL;
    CHECK(tune_task_sched_new(g_ctx, 3, w, NULL, &s) == KILN_OK);
    if (!s) return;
    CHECK(tune_task_sched_total(s) == INFINITY);
    CHECK(tune_task_sched_next(s) == 0);
    CHECK(tune_task_sched_report(g_ctx, s, 0, 4, 1e-3, true) == KILN_OK && tune_task_sched_done(s, 0));
    CHECK(tune_task_sched_next(s) == 1);
    CHECK(tune_task_sched_report(g_ctx, s, 1, 8, INFINITY, false) == KILN_OK);
    CHECK(tune_task_sched_next(s) == 2);
    CHECK(tune_task_sched_report(g_ctx, s, 2, 8, 1e-4, false) == KILN_OK);
    CHECK(tune_task_sched_total(s) == INFINITY);
    /* task 1 has no working candidate: it keeps priority until dropped */
    for (int r = 1; r < 3; r++) {
        CHECK(tune_task_sched_next(s) == 1);
        CHECK(tune_task_sched_report(g_ctx, s, 1, 8, INFINITY, false) == KILN_OK);
    }
    CHECK(tune_task_sched_done(s, 1) && tune_task_sched_rounds(s, 1) == 3);
    CHECK(tune_task_sched_total(s) == INFINITY); /* weighted, and nothing works */
    CHECK(tune_task_sched_next(s) == 2);
    CHECK(tune_task_sched_report(g_ctx, s, 2, 8, 1e-4, true) == KILN_OK);
    CHECK(tune_task_sched_next(s) == -1);
    tune_task_sched_free(s);
    tune_task_sched_free(NULL);
}

static void t_bad_input(void) {
    setup();
    tune_task_sched *s = NULL;
    double w[2] = {1, -1}, nan_w[1] = {NAN}, ok[2] = {1, 2};
    CHECK(tune_task_sched_new(g_ctx, 2, w, NULL, &s) == KILN_ERR_INVALID && !s);
    CHECK(strstr(kiln_errmsg(g_ctx), "task 1") != NULL);
    CHECK(tune_task_sched_new(g_ctx, 1, nan_w, NULL, &s) == KILN_ERR_INVALID && !s);
    CHECK(tune_task_sched_new(g_ctx, 0, ok, NULL, &s) == KILN_ERR_INVALID && !s);
    CHECK(tune_task_sched_new(g_ctx, 2, ok, NULL, &s) == KILN_OK);
    if (!s) return;
    CHECK(tune_task_sched_report(g_ctx, s, 2, 8, 1e-3, false) == KILN_ERR_INVALID);
    CHECK(tune_task_sched_report(g_ctx, s, -1, 8, 1e-3, false) == KILN_ERR_INVALID);
    CHECK(tune_task_sched_report(g_ctx, s, 0, -3, 1e-3, false) == KILN_ERR_INVALID);
    CHECK(tune_task_sched_report(g_ctx, s, 0, 8, NAN, false) == KILN_ERR_INVALID);
    CHECK(tune_task_sched_report(g_ctx, s, 0, 8, 0, false) == KILN_ERR_INVALID);
    CHECK(tune_task_sched_rounds(s, 0) == 0 && tune_task_sched_rounds(s, 7) == 0);
    tune_task_sched_free(s);
}

static void t_allocation_failures(void) {
    setup();
    long live = kiln_mem_live();
    int ok_at = -1;
    double w[3] = {1, 2, 3};
    for (int n = 0; n < 50 && ok_at < 0; n++) {
        tune_task_sched *s = NULL;
        kiln_mem_fail_after(n);
        kiln_status st = tune_task_sched_new(g_ctx, 3, w, NULL, &s);
        for (int r = 0; !st && r < 40; r++) st = tune_task_sched_report(g_ctx, s, r % 3, 8, 1e-3 / (r + 1), false);
        kiln_mem_fail_after(-1);
        CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
        if (!st) ok_at = n;
        tune_task_sched_free(s);
        CHECK_MSG(kiln_mem_live() == live, "n=%d leaks", n);
    }
    CHECK(ok_at > 0);
    kiln_ctx_free(g_ctx);
    g_ctx = NULL;
}

TEST_MAIN(T(t_warmup_in_order), T(t_beats_round_robin), T(t_deterministic), T(t_done_tasks), T(t_bad_input),
          T(t_allocation_failures))
