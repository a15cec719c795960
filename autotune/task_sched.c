/*
** task_sched.c — the gradient task scheduler (task_sched.h). Each task
** keeps its history of (trials so far, best time) per round; the choice is
** a pure function of those histories.
*/
#include "autotune/task_sched.h"

#include <math.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/mem.h"

typedef struct round_rec {
    int trials; /* the task's trials after the round */
    double best;
} round_rec;

typedef struct task_state {
    double weight;
    int rounds, cap;
    round_rec *hist;
    bool done;
} task_state;

struct tune_task_sched {
    int n;
    tune_task_sched_opts o;
    task_state *t;
};

void tune_task_sched_opts_default(tune_task_sched_opts *o) {
    o->warmup_rounds = 1;
    o->window = 3;
    o->alpha = 0.2;
    o->max_failed_rounds = 3;
}

kiln_status tune_task_sched_new(kiln_ctx *ctx, int n, const double *weights, const tune_task_sched_opts *opts,
                                tune_task_sched **out) {
    if (n < 1) return kiln_fail(ctx, KILN_ERR_INVALID, "task scheduler: %d tasks", n);
    for (int i = 0; i < n; i++)
        if (!(isfinite(weights[i]) && weights[i] >= 0))
            return kiln_fail(ctx, KILN_ERR_INVALID, "task scheduler: task %d has weight %g", i, weights[i]);
    tune_task_sched *s = kiln_calloc(1, sizeof *s);
    task_state *t = s ? kiln_calloc((size_t)n, sizeof *t) : NULL;
    if (!t) {
        kiln_free(s);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "task scheduler: out of memory for %d tasks", n);
    }
    s->n = n, s->t = t;
    if (opts) s->o = *opts;
    else tune_task_sched_opts_default(&s->o);
    if (s->o.window < 1) s->o.window = 1;
    for (int i = 0; i < n; i++) t[i].weight = weights[i];
    *out = s;
    return KILN_OK;
}

void tune_task_sched_free(tune_task_sched *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) kiln_free(s->t[i].hist);
    kiln_free(s->t);
    kiln_free(s);
}

/* How much of the optimistic forecast a task keeps: all of it while young
** or while its best time fell by STALL_REL or more over the window, down to
** STALL_FLOOR when it stalled (so it is never starved for good). */
#define STALL_REL 0.05
#define STALL_FLOOR 0.1

static double momentum(const round_rec *then, const round_rec *now) {
    if (!then) return 1;
    if (!isfinite(then->best)) return 1; /* it just started to work */
    double rel = (then->best - now->best) / then->best / STALL_REL;
    return rel >= 1 ? 1 : rel > STALL_FLOOR ? rel : STALL_FLOOR;
}

/* The expected gain per trial of one more round of task t (after warm-up). */
static double gain(const tune_task_sched *s, const task_state *t) {
    const round_rec *now = &t->hist[t->rounds - 1];
    if (t->weight == 0) return 0;
    if (!isfinite(now->best)) return INFINITY; /* nothing works yet: the model's time is unknown */
    /* the window's start: W rounds back, or the first round for a young task */
    const round_rec *then = t->rounds > s->o.window ? &t->hist[t->rounds - 1 - s->o.window]
                            : t->rounds > 1         ? &t->hist[0]
                                                    : NULL;
    double recent = 0;
    if (then && isfinite(then->best) && now->trials > then->trials)
        recent = (then->best - now->best) / (double)(now->trials - then->trials);
    double forecast = (now->trials > 0 ? now->best / (double)now->trials : now->best) * momentum(then, now);
    return t->weight * (s->o.alpha * recent + (1 - s->o.alpha) * forecast);
}

int tune_task_sched_next(const tune_task_sched *s) {
    for (int r = 0; r < s->o.warmup_rounds; r++)
        for (int i = 0; i < s->n; i++)
            if (!s->t[i].done && s->t[i].rounds <= r) return i;
    int best = -1;
    double bg = -1;
    for (int i = 0; i < s->n; i++) {
        if (s->t[i].done) continue;
        if (!s->t[i].rounds) return i; /* warm-up of 0 rounds: every task once anyway */
        double g = gain(s, &s->t[i]);
        if (best < 0 || g > bg) best = i, bg = g;
    }
    return best;
}

kiln_status tune_task_sched_report(kiln_ctx *ctx, tune_task_sched *s, int task, int n_trials, double best_s,
                                   bool exhausted) {
    if (task < 0 || task >= s->n)
        return kiln_fail(ctx, KILN_ERR_INVALID, "task scheduler: no task %d (of %d)", task, s->n);
    if (n_trials < 0 || isnan(best_s) || best_s <= 0)
        return kiln_fail(ctx, KILN_ERR_INVALID, "task scheduler: task %d: %d trials, best time %g s", task, n_trials,
                         best_s);
    task_state *t = &s->t[task];
    if (t->rounds == t->cap) {
        int cap = t->cap ? 2 * t->cap : 16;
        round_rec *h = kiln_realloc(t->hist, sizeof(round_rec) * (size_t)cap);
        if (!h) return kiln_fail(ctx, KILN_ERR_NOMEM, "task scheduler: out of memory");
        t->hist = h, t->cap = cap;
    }
    int before = t->rounds ? t->hist[t->rounds - 1].trials : 0;
    t->hist[t->rounds++] = (round_rec){before + n_trials, best_s};
    if (exhausted || (!isfinite(best_s) && t->rounds >= s->o.max_failed_rounds)) t->done = true;
    return KILN_OK;
}

double tune_task_sched_total(const tune_task_sched *s) {
    double sum = 0;
    for (int i = 0; i < s->n; i++) {
        const task_state *t = &s->t[i];
        if (t->weight == 0) continue;
        if (!t->rounds) return INFINITY;
        sum += t->weight * t->hist[t->rounds - 1].best;
    }
    return sum;
}

int tune_task_sched_rounds(const tune_task_sched *s, int task) { return task >= 0 && task < s->n ? s->t[task].rounds : 0; }

int tune_task_sched_trials(const tune_task_sched *s, int task) {
    if (task < 0 || task >= s->n || !s->t[task].rounds) return 0;
    return s->t[task].hist[s->t[task].rounds - 1].trials;
}

bool tune_task_sched_done(const tune_task_sched *s, int task) { return task >= 0 && task < s->n && s->t[task].done; }
