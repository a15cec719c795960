/*
** tuner.h — tuning a model's tasks into a records database, and looking
** the records up when a model is compiled.
**
** tune_run: the tasks' searches (search.h) continue from what the database
** already holds for their key (workload hash + target description with the
** thread count), so nothing is measured twice; a task scheduler
** (task_sched.h) gives each round of trials to the task whose improvement
** shortens the model's time most; every candidate is measured in a child
** process behind the correctness gate (measure.h) and stored at once, so an
** interrupted run keeps every record. At the end the few best candidates
** of each task tuned in this run and its default are measured again, back
** to back, and stored as confirmations: a lookup prefers the best confirmed
** record, so a lucky measurement does not pick the winner, and a candidate
** wins only by beating the default in the same moment.
**
** tune_lookup: the schedule a compile uses for a kernel: the best record of
** its exact key; else, when the caller declared target keys that may
** differ (e.g. cpu.model), the best record of a target equal but for
** those, said to be a fallback; else the default. Records are untrusted
** text: a trace that does not parse or replay on the kernel is reported
** and the default is used.
*/
#ifndef KILN_TUNER_H
#define KILN_TUNER_H

#include <signal.h>
#include <stdio.h>

#include "measure.h"
#include "records.h"
#include "tasks.h"

#define TUNE_TRIAL_CONFIRM (-2) /* the trial number of a confirmation record */

typedef struct tune_run_opts {
    const char *db_path;
    int trials;          /* measured candidates per task (its budget, counting the database's) */
    double budget_s;     /* wall-clock limit of the run; 0: none */
    int batch;           /* candidates per round (8) */
    int confirm;         /* best candidates measured again at the end (3) */
    uint64_t seed;
    tune_measure_opts measure; /* threads, limits, timing */
    FILE *log;           /* progress: a line per round, or a status display when tty */
    bool tty;
    volatile sig_atomic_t *interrupted; /* set (e.g. by SIGINT): stop after the current round */
} tune_run_opts;

void tune_run_opts_default(tune_run_opts *o);

typedef struct tune_task_report {
    double default_s; /* the default schedule's time; NaN when not measured */
    double best_s;    /* the best (confirmed when there is one); NaN when none */
    int measured_before, measured_now;
    int failed_now;
    char best_knobs[256];
} tune_task_report;

typedef struct tune_curve_point {
    double seconds;  /* since the run started */
    double model_ms; /* sum(weight * best) over tasks, default times where untuned */
} tune_curve_point;

typedef struct tune_run_report {
    int n_tasks;
    tune_task_report *tasks;
    int n_curve;
    tune_curve_point *curve;
    double seconds;
    bool interrupted;
} tune_run_report;

kiln_status tune_run(kiln_ctx *ctx, const tune_tasks *tasks, const cg_cpu_target *target,
                     const tune_run_opts *o, tune_run_report *out);
void tune_run_report_free(tune_run_report *r);
/* The final table: per task default, tuned, speed-up; the model's estimate. */
void tune_run_report_print(FILE *f, const tune_tasks *tasks, const tune_run_report *r);

/* ---- lookups at compile time ---- */
typedef struct tune_lookup tune_lookup;

/* Opens the database read-only; the key's target is the CPU target with the
** thread count. fallback_keys (copied): NULL-terminated target keys that a declared
** fallback may differ in (NULL: exact matches only). */
kiln_status tune_lookup_open(kiln_ctx *ctx, const char *db_path, const cg_cpu_target *target, int threads,
                             const char *const *fallback_keys, tune_lookup **out);
void tune_lookup_close(tune_lookup *l);
/* The trace of the best record for f: *out NULL when none (or when the
** record does not replay: counted, with its reason, as invalid); *from is
** "db", "db-fallback" or NULL. */
kiln_status tune_lookup_trace(kiln_ctx *ctx, tune_lookup *l, const tir_func *f, sch_trace **out,
                              const char **from);
/* "N kernels tuned, M from a declared fallback, K untuned[, J invalid records]" */
void tune_lookup_summary(FILE *f, const tune_lookup *l);

/* The thread count and target into a canonical description (the records' key). */
kiln_status tune_target_for(kiln_ctx *ctx, const cg_cpu_target *target, int threads, char *buf, size_t cap);
/* Parses a knob point as tune_point_str writes it ("matmul tile_i=6 ...")
** into knob values; false when a knob is missing or not of this space. */
bool tune_point_parse(const tune_space *s, const char *text, int64_t *knobs);

#endif
