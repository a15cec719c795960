/*
** search.h — which points of one task's knob space to measure next.
**
** A search holds one task (a tir_func, its template's space, the target)
** and everything measured of it so far. Each batch it proposes is chosen
** like this:
**
**   1. the cost model (cost_model.h) is refitted on the records reported
**      since the last batch;
**   2. candidates: when the space is tiny (at most opts.exhaustive_max
**      points) every point not yet measured; otherwise an evolutionary
**      search: a population seeded with the best measured points and
**      random ones, evolved for opts.generations generations by mutation
**      (one or two knobs set to another of their values) and crossover
**      (each knob from either of two parents), parents picked by
**      tournament on the model's scores; every point it visits is a
**      candidate;
**   3. the batch: the best-scored candidates not yet measured or proposed,
**      with a share opts.eps of exploration: unmeasured neighbours of the
**      best point so far (one or two knobs changed) and uniformly random
**      points, in turns; the very first batch starts with the space's
**      default point.
**
** A point is never proposed twice, whatever its measurement's outcome; a
** failed point (status not 0) is never the best. With the same seed and the
** same reported results, a search proposes the same batches, bit for bit
** (its own PRNG, a deterministic model).
**
**   tune_search *s;
**   tune_search_new(ctx, f, &space, &target, seed, NULL, &s);
**   tune_search_run(s, 64, 8, my_measure, arg);   // or, by hand:
**   //  tune_search_next_batch(s, 8, points, &n);  measure;
**   //  tune_search_report(s, points, n, seconds, statuses);
**   tune_search_best(s, knobs, &seconds);
**   tune_search_free(s);
*/
#ifndef KILN_SEARCH_H
#define KILN_SEARCH_H

#include "autotune/cost_model.h"
#include "autotune/templates.h"

/* Measures n points (rows of the space's n_knobs values, in knob order):
** median_s[i] the median time of a run in seconds, status[i] its outcome
** as a tune_status (records.h): 0 (TUNE_STATUS_OK) when it ran and passed
** the correctness gate, anything else when it failed (wrong, crash,
** timeout, ...; median_s[i] is then ignored). A non-OK return is the
** measurement harness's own failure and stops the search. */
typedef kiln_status (*tune_measure_fn)(void *arg, const int64_t *points, int n, double *median_s, int *status);

typedef struct tune_search_opts {
    int population;        /* evolutionary population (64) */
    int generations;       /* generations per batch (4) */
    double mutate_prob;    /* a child is a mutant with this probability, else a crossover (0.85) */
    double eps;            /* share of each batch drawn at random (0.125, rounded, at least 1 of 4 or more) */
    uint64_t exhaustive_max; /* spaces up to this many points are scored whole (64; scoring larger
                              * ones whole trusts the model's extrapolation more than evolving
                              * from the measured points does, and finds less in as many trials) */
    tune_cost_model *model; /* a model shared with other searches (records tagged with `task`), or NULL: its own */
    int task;
} tune_search_opts;

void tune_search_opts_default(tune_search_opts *o);

typedef struct tune_search tune_search;

/* f, space and target are borrowed and must outlive the search (the
** space is copied). A space with no knobs has one point, the default. */
kiln_status tune_search_new(kiln_ctx *ctx, const tir_func *f, const tune_space *space, const cg_cpu_target *target,
                            uint64_t seed, const tune_search_opts *opts, tune_search **out);
void tune_search_free(tune_search *s); /* NULL is fine */

/* Up to n points (n rows of n_knobs values into points) never proposed
** before; *n_out of them (fewer only when the space runs out; 0 when every
** point has been proposed). */
kiln_status tune_search_next_batch(tune_search *s, int n, int64_t *points, int *n_out);

/* The results of n points (any points of the space: proposed ones, or
** records measured elsewhere). A point reported again keeps its best
** result (an ok time beats a failure). A value a knob does not list is
** KILN_ERR_INVALID naming the knob, and nothing is reported. */
kiln_status tune_search_report(tune_search *s, const int64_t *points, int n, const double *median_s,
                               const int *status);

/* Proposes, measures (fn) and reports batches of `batch` points until
** n_trials points are measured or the space runs out. */
kiln_status tune_search_run(tune_search *s, int n_trials, int batch, tune_measure_fn fn, void *arg);

/* The fastest ok point so far into knobs (and its time); false when none. */
bool tune_search_best(const tune_search *s, int64_t *knobs, double *median_s);

/* Points reported, and of them failed. */
int tune_search_n_measured(const tune_search *s);
int tune_search_n_failed(const tune_search *s);
/* Whether every point of the space has been proposed or reported. */
bool tune_search_exhausted(const tune_search *s);

#endif
