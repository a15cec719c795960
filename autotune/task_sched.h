/*
** task_sched.h — which task of a model gets the next round of trials.
**
** A model's tasks (its distinct kernels) each run `weight` times per run
** of the model, so the model's time is about sum(weight_i * best_i). Trials
** should go where they shorten that sum the most. After a warm-up (every
** task gets warmup_rounds rounds, in task order), each round goes to the
** task with the largest expected gain per trial (as in Ansor's task
** scheduler, without its similar-task term):
**
**   gain_i = weight_i * (alpha * (best_i(t - window) - best_i(t)) / trials in the window
**                        + (1 - alpha) * m_i * best_i(t) / t_i)
**
** the first term the recent rate of improvement, the second an optimistic
** forecast (a best time that keeps falling like 1/trials), t_i the trials
** task i has had. Unlike Ansor's, the forecast fades for a task that
** stalled: m_i is 1 while the task is young or its best time fell by 5% or
** more over the window, down to 0.1 (never 0: no task starves for good)
** as that improvement goes to nothing. Ties go to the lowest task index: the same reports give
** the same choices. A task whose space is used up is marked done and never
** chosen again; a task with no successful candidate after
** opts.max_failed_rounds of its rounds is dropped (done) too.
**
**   tune_task_sched *ts;
**   tune_task_sched_new(ctx, n, weights, NULL, &ts);
**   for (int t; (t = tune_task_sched_next(ts)) >= 0 && budget left;) {
**       ... run a round of task t's search ...
**       tune_task_sched_report(ctx, ts, t, trials, best_seconds, exhausted);
**   }
*/
#ifndef KILN_TASK_SCHED_H
#define KILN_TASK_SCHED_H

#include <stdbool.h>

#include "kiln/kiln.h"

typedef struct tune_task_sched_opts {
    int warmup_rounds;     /* rounds every task gets first (1) */
    int window;            /* rounds over which the recent improvement is measured (3) */
    double alpha;          /* weight of the recent improvement against the forecast (0.2) */
    int max_failed_rounds; /* rounds a task may have without an ok candidate (3) */
} tune_task_sched_opts;

void tune_task_sched_opts_default(tune_task_sched_opts *o);

typedef struct tune_task_sched tune_task_sched;

/* n tasks (>= 1) with their weights (finite, >= 0); opts NULL: defaults. */
kiln_status tune_task_sched_new(kiln_ctx *ctx, int n, const double *weights, const tune_task_sched_opts *opts,
                                tune_task_sched **out);
void tune_task_sched_free(tune_task_sched *s); /* NULL is fine */

/* The task for the next round, or -1 when every task is done. */
int tune_task_sched_next(const tune_task_sched *s);

/* After a round of `task`: the trials it measured (>= 0), the task's best
** time now (seconds; INFINITY while it has no ok candidate), and whether
** its space is used up. Bad arguments are KILN_ERR_INVALID. */
kiln_status tune_task_sched_report(kiln_ctx *ctx, tune_task_sched *s, int task, int n_trials, double best_s,
                                   bool exhausted);

/* sum(weight_i * best_i): the model's estimated time from its tuned
** kernels (INFINITY while some weighted task has no ok candidate). */
double tune_task_sched_total(const tune_task_sched *s);

/* Rounds and trials a task has had, and whether it is done. */
int tune_task_sched_rounds(const tune_task_sched *s, int task);
int tune_task_sched_trials(const tune_task_sched *s, int task);
bool tune_task_sched_done(const tune_task_sched *s, int task);

#endif
