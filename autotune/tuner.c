/*
** tuner.c — tuning a model's tasks: searches resumed from the database, a
** task scheduler, measurement behind the gate, records stored as they come.
*/
#include "tuner.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/ctx.h"
#include "ir/mem.h"
#include "search.h"
#include "task_sched.h"
#include "trace_names.h"

#define MAX_BATCH 64
#define MAX_CONFIRM 8

typedef struct ok_point {
    int64_t knobs[TUNE_MAX_KNOBS];
    double median_s;
} ok_point;

typedef struct task_state {
    const tune_task *task;
    tune_search *search;
    tune_task_report *rep;
    ok_point *oks; /* measured ok points of this run, for the confirmation */
    int n_oks, cap_oks;
    double confirmed_s; /* best confirmation in the database; NaN when none */
    double best_s;      /* the search's best (INFINITY when none) */
    double cand_s;      /* wall seconds a candidate of this task took in this run (0: none yet) */
    bool skipped; /* no reference could be made: not tuned, said why */
} task_state;

typedef struct tuner {
    kiln_ctx *ctx;
    const tune_run_opts *o;
    const cg_cpu_target *target;
    char desc[TUNE_TARGET_MAX];
    tune_db *db;
    tune_ref_cache *refs;
    task_state *st;
    int n;
    tune_run_report *rep;
    int cap_curve;
    double t0;
} tuner;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void tune_run_opts_default(tune_run_opts *o) {
    memset(o, 0, sizeof *o);
    o->trials = 64;
    o->batch = 8;
    o->confirm = 3;
    o->seed = 1;
    tune_measure_opts_default(&o->measure);
}

kiln_status tune_target_for(kiln_ctx *ctx, const cg_cpu_target *target, int threads, char *buf, size_t cap) {
    char n[16];
    snprintf(n, sizeof n, "%d", threads);
    kiln_status s = tune_target_describe_cpu(ctx, target, buf, cap);
    return s ? s : tune_target_set(ctx, buf, cap, "runtime.threads", n);
}

bool tune_point_parse(const tune_space *s, const char *text, int64_t *knobs) {
    size_t tl = strlen(s->template_name);
    if (strncmp(text, s->template_name, tl) != 0 || (text[tl] != ' ' && text[tl] != 0)) return false;
    bool seen[TUNE_MAX_KNOBS] = {false};
    for (const char *p = text + tl; *p;) {
        while (*p == ' ') p++;
        const char *eq = strchr(p, '=');
        if (!*p) break;
        if (!eq) return false;
        int k = -1;
        for (int i = 0; i < s->n_knobs; i++)
            if (strlen(s->knobs[i].name) == (size_t)(eq - p) && !strncmp(s->knobs[i].name, p, (size_t)(eq - p)))
                k = i;
        char *end;
        long long v = strtoll(eq + 1, &end, 10);
        if (k < 0 || end == eq + 1 || (*end && *end != ' ')) return false;
        knobs[k] = v;
        seen[k] = true;
        p = end;
    }
    for (int i = 0; i < s->n_knobs; i++)
        if (!seen[i]) return false;
    return true;
}

static char *trace_text(const sch_trace *t) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    sch_trace_print(f, t);
    if (fclose(f)) {
        free(buf);
        return NULL;
    }
    return buf;
}

/* ---- resuming from the database ---- */

static kiln_status load_record(kiln_ctx *ctx, const tune_record *r, void *user) {
    task_state *ts = user;
    int64_t knobs[TUNE_MAX_KNOBS];
    if (!tune_point_parse(&ts->task->space, r->knobs, knobs)) return KILN_OK; /* another template's point */
    bool ok = r->status == TUNE_STATUS_OK;
    if (r->trial == TUNE_TRIAL_CONFIRM) {
        if (ok && (isnan(ts->confirmed_s) || r->median_s < ts->confirmed_s)) ts->confirmed_s = r->median_s;
        return KILN_OK;
    }
    ts->rep->measured_before++;
    int64_t def[TUNE_MAX_KNOBS];
    tune_space_default(&ts->task->space, def);
    if (ok && !memcmp(def, knobs, sizeof(int64_t) * (size_t)ts->task->space.n_knobs))
        ts->rep->default_s = r->median_s;
    double t = ok ? r->median_s : 0;
    int status = (int)r->status;
    kiln_status s = tune_search_report(ts->search, knobs, 1, &t, &status);
    if (s == KILN_ERR_INVALID) return KILN_OK; /* a value the space no longer lists */
    return s;
}

static kiln_status resume_task(tuner *t, task_state *ts) {
    tune_filter f = {true, ts->task->hash, t->desc, false};
    ts->confirmed_s = NAN;
    kiln_status s = tune_db_foreach(t->ctx, t->db, &f, load_record, ts);
    if (s) return kiln_wrap(t->ctx, s, "reading the records of task %s", ts->task->name);
    double best;
    ts->best_s = tune_search_best(ts->search, NULL, &best) ? best : INFINITY;
    return KILN_OK;
}

/* ---- measuring a round ---- */

/* The trace as a record holds it: inputs by position, so that every
** function of the workload, whatever its value names, replays it. */
static char *record_text(tuner *t, const task_state *ts, const sch_trace *trace) {
    sch_trace *c = NULL;
    if (!trace || tune_trace_canonical(t->ctx, trace, ts->task->tir, &c)) return NULL;
    char *text = trace_text(c);
    sch_trace_free(c);
    return text;
}

static kiln_status store(tuner *t, task_state *ts, const int64_t *knobs, const sch_trace *trace,
                         const tune_result *r, int64_t trial) {
    char kn[512], *tt = record_text(t, ts, trace);
    tune_point_str(&ts->task->space, knobs, kn, sizeof kn);
    char *desc = NULL;
    kiln_status s = tune_workload_text(t->ctx, ts->task->tir, &desc);
    if (s) {
        free(tt);
        return s;
    }
    tune_record rec;
    tune_record_init(&rec);
    rec.workload_hash = ts->task->hash;
    rec.workload_desc = desc ? desc : "";
    rec.workload_ops = ts->task->name;
    rec.target = t->desc;
    rec.trace = tt ? tt : "";
    rec.knobs = kn;
    rec.status = r->status;
    rec.error = r->status == TUNE_STATUS_OK ? "" : r->msg;
    if (r->status == TUNE_STATUS_OK) {
        rec.median_s = r->median_ns * 1e-9;
        rec.spread_s = r->spread * rec.median_s;
        rec.n_repeats = r->samples;
    }
    rec.compile_s = r->compile_ms * 1e-3;
    rec.time = (int64_t)time(NULL);
    rec.kiln_version = KILN_VERSION_STRING;
    rec.seed = (int64_t)t->o->seed;
    rec.trial = trial;
    s = tune_db_add_record(t->ctx, t->db, &rec, NULL);
    free(tt);
    kiln_free(desc);
    return s;
}

static kiln_status note_ok(kiln_ctx *ctx, task_state *ts, const int64_t *knobs, double median_s) {
    if (!kiln_grow((void **)&ts->oks, &ts->cap_oks, ts->n_oks + 1, sizeof(ok_point)))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    ok_point *p = &ts->oks[ts->n_oks++];
    memcpy(p->knobs, knobs, sizeof p->knobs);
    p->median_s = median_s;
    return KILN_OK;
}

/* Traces of the points; a point whose trace fails gets compile_error. */
static void make_traces(tuner *t, task_state *ts, const int64_t *pts, int n, sch_trace **traces,
                        tune_result *res) {
    const tune_space *sp = &ts->task->space;
    for (int i = 0; i < n; i++) {
        traces[i] = NULL;
        memset(&res[i], 0, sizeof res[i]);
        kiln_status s = tune_trace_from_knobs(t->ctx, ts->task->tir, t->target, sp, pts + i * TUNE_MAX_KNOBS,
                                              &traces[i]);
        if (s) {
            res[i].status = TUNE_STATUS_COMPILE_ERROR;
            snprintf(res[i].msg, sizeof res[i].msg, "%s", kiln_errmsg(t->ctx));
        }
    }
}

/* A skipped task keeps its default schedule: its time (not gated, never
** stored as a record) still counts in the model's estimate. */
static void time_default_ungated(tuner *t, task_state *ts) {
    sch_trace *trace = NULL;
    tune_result r;
    if (tune_default_trace(t->ctx, ts->task->tir, t->target, &trace)) return;
    if (!tune_measure(t->ctx, ts->task->tir, trace, NULL, &t->o->measure, &r) && r.status == TUNE_STATUS_OK)
        ts->rep->default_s = r.median_ns * 1e-9;
    sch_trace_free(trace);
}

/* The gate's reference (the default nest's outputs), else none: the task
** is skipped with the reason logged. */
static const tune_reference *task_reference(tuner *t, task_state *ts) {
    const tune_reference *ref = NULL;
    if (!tune_ref_cache_get(t->ctx, t->refs, ts->task->tir, &t->o->measure, &ref)) return ref;
    ts->skipped = true;
    if (t->o->log)
        fprintf(t->o->log, "%stask %s is not tuned: no reference for the correctness gate: %s\n",
                t->o->tty ? "\r\033[K" : "", ts->task->name, kiln_errmsg(t->ctx));
    time_default_ungated(t, ts);
    return NULL;
}

/* Measures the points with valid traces in one batch. */
static kiln_status measure_points(tuner *t, task_state *ts, sch_trace **traces, int n, tune_result *res) {
    const tune_reference *ref = task_reference(t, ts);
    kiln_status s = KILN_OK;
    if (!ref) return KILN_OK;
    const sch_trace *ok[MAX_BATCH];
    int idx[MAX_BATCH], m = 0;
    for (int i = 0; i < n; i++)
        if (traces[i]) ok[m] = traces[i], idx[m++] = i;
    if (!m) return KILN_OK;
    tune_result out[MAX_BATCH];
    s = tune_measure_batch(t->ctx, ts->task->tir, ok, m, ref, &t->o->measure, out);
    for (int i = 0; !s && i < m; i++) res[idx[i]] = out[i];
    return s;
}

static kiln_status round_results(tuner *t, task_state *ts, const int64_t *pts, sch_trace **traces,
                                 const tune_result *res, int n) {
    double secs[MAX_BATCH];
    int status[MAX_BATCH];
    int64_t row[MAX_BATCH * TUNE_MAX_KNOBS];
    int64_t def[TUNE_MAX_KNOBS];
    tune_space_default(&ts->task->space, def);
    int nk = ts->task->space.n_knobs;
    kiln_status s = KILN_OK;
    for (int i = 0; i < n && !s; i++) {
        const int64_t *k = pts + i * TUNE_MAX_KNOBS;
        memcpy(row + i * nk, k, sizeof(int64_t) * (size_t)nk);
        status[i] = (int)res[i].status;
        secs[i] = res[i].status == TUNE_STATUS_OK ? res[i].median_ns * 1e-9 : 0;
        s = store(t, ts, k, traces[i], &res[i], ts->rep->measured_before + ts->rep->measured_now + i);
        if (!s && res[i].status == TUNE_STATUS_OK) {
            s = note_ok(t->ctx, ts, k, secs[i]);
            if (!memcmp(k, def, sizeof(int64_t) * (size_t)nk)) ts->rep->default_s = secs[i];
        }
        if (res[i].status != TUNE_STATUS_OK) ts->rep->failed_now++;
    }
    if (!s) s = tune_search_report(ts->search, row, n, secs, status);
    ts->rep->measured_now += n;
    double best;
    ts->best_s = tune_search_best(ts->search, NULL, &best) ? best : INFINITY;
    return s;
}

static kiln_status one_round(tuner *t, task_state *ts, int n, int *measured) {
    int64_t flat[MAX_BATCH * TUNE_MAX_KNOBS], pts[MAX_BATCH * TUNE_MAX_KNOBS];
    int got = 0, nk = ts->task->space.n_knobs;
    kiln_status s = tune_search_next_batch(ts->search, n, flat, &got);
    *measured = got;
    if (s || !got) return s;
    for (int i = 0; i < got; i++) memcpy(pts + i * TUNE_MAX_KNOBS, flat + i * nk, sizeof(int64_t) * (size_t)nk);
    sch_trace *traces[MAX_BATCH];
    tune_result res[MAX_BATCH];
    make_traces(t, ts, pts, got, traces, res);
    s = measure_points(t, ts, traces, got, res);
    if (ts->skipped) *measured = 0;
    else if (!s) s = round_results(t, ts, pts, traces, res, got);
    for (int i = 0; i < got; i++) sch_trace_free(traces[i]);
    return s;
}

/* ---- confirmation: the best few of this run measured again ---- */

static int by_time(const void *a, const void *b) {
    double x = ((const ok_point *)a)->median_s, y = ((const ok_point *)b)->median_s;
    return x < y ? -1 : x > y;
}

/* The default joins the confirmation unless it is among the best already:
** a candidate must beat it measured in the same moment, not an earlier,
** quieter measurement of it. Returns the points' count. */
static int with_default(const task_state *ts, int64_t *pts, int n) {
    int64_t def[TUNE_MAX_KNOBS] = {0};
    tune_space_default(&ts->task->space, def);
    size_t used = sizeof(int64_t) * (size_t)ts->task->space.n_knobs;
    for (int i = 0; i < n; i++)
        if (!memcmp(pts + i * TUNE_MAX_KNOBS, def, used)) return n;
    memcpy(pts + n * TUNE_MAX_KNOBS, def, sizeof def);
    return n + 1;
}

static kiln_status confirm_task(tuner *t, task_state *ts) {
    int n = ts->n_oks < t->o->confirm ? ts->n_oks : t->o->confirm;
    if (n > MAX_CONFIRM - 1) n = MAX_CONFIRM - 1;
    if (n <= 0) return KILN_OK;
    qsort(ts->oks, (size_t)ts->n_oks, sizeof(ok_point), by_time);
    int64_t pts[MAX_CONFIRM * TUNE_MAX_KNOBS];
    for (int i = 0; i < n; i++) memcpy(pts + i * TUNE_MAX_KNOBS, ts->oks[i].knobs, sizeof ts->oks[i].knobs);
    n = with_default(ts, pts, n);
    sch_trace *traces[MAX_CONFIRM];
    tune_result res[MAX_CONFIRM];
    make_traces(t, ts, pts, n, traces, res);
    kiln_status s = measure_points(t, ts, traces, n, res);
    for (int i = 0; i < n && !s && !ts->skipped; i++) {
        s = store(t, ts, pts + i * TUNE_MAX_KNOBS, traces[i], &res[i], TUNE_TRIAL_CONFIRM);
        double sec = res[i].median_ns * 1e-9;
        if (!s && res[i].status == TUNE_STATUS_OK && (isnan(ts->confirmed_s) || sec < ts->confirmed_s))
            ts->confirmed_s = sec;
    }
    for (int i = 0; i < n; i++) sch_trace_free(traces[i]);
    return s;
}

/* ---- progress ---- */

static double task_time(const task_state *ts) {
    if (!isnan(ts->confirmed_s)) return ts->confirmed_s;
    if (isfinite(ts->best_s)) return ts->best_s;
    return ts->rep->default_s;
}

/* sum(weight * time) in ms; tasks with no time yet count as 0 and make
** the estimate partial (*complete false). */
static double model_ms(const tuner *t, bool *complete) {
    double sum = 0;
    *complete = true;
    for (int i = 0; i < t->n; i++) {
        double x = task_time(&t->st[i]);
        if (isnan(x)) *complete = false;
        else sum += t->st[i].task->weight * x * 1e3;
    }
    return sum;
}

static kiln_status add_curve_point(tuner *t) {
    bool complete;
    double ms = model_ms(t, &complete);
    if (!complete) return KILN_OK;
    tune_run_report *r = t->rep;
    if (!kiln_grow((void **)&r->curve, &t->cap_curve, r->n_curve + 1, sizeof(tune_curve_point)))
        return kiln_fail(t->ctx, KILN_ERR_NOMEM, "out of memory");
    r->curve[r->n_curve++] = (tune_curve_point){now_s() - t->t0, ms};
    return KILN_OK;
}

static void progress(const tuner *t, int task, int got) {
    FILE *f = t->o->log;
    if (!f) return;
    const task_state *ts = &t->st[task];
    int done = 0;
    for (int i = 0; i < t->n; i++) done += t->st[i].rep->measured_now;
    bool complete;
    double ms = model_ms(t, &complete);
    char est[32] = "?";
    if (complete) snprintf(est, sizeof est, "%.3f ms", ms);
    fprintf(f, "%s[%6.1f s] task %d/%d %-40.40s +%d trials (%d) best %.4f ms | all: %d new trials, model %s%s",
            t->o->tty ? "\r\033[K" : "", now_s() - t->t0, task + 1, t->n, ts->task->name, got,
            ts->rep->measured_before + ts->rep->measured_now,
            isfinite(ts->best_s) ? ts->best_s * 1e3 : NAN, done, est, t->o->tty ? "" : "\n");
    fflush(f);
}

/* ---- the run ---- */

/* The seconds the end-of-run confirmations will take: the best few of each
** task tuned in this run and its default, at that task's pace. */
static double confirm_reserve(const tuner *t) {
    double r = 0;
    for (int i = 0; i < t->n; i++) {
        const task_state *ts = &t->st[i];
        int n = ts->n_oks < t->o->confirm ? ts->n_oks : t->o->confirm;
        if (ts->rep->measured_now) r += (n + 1) * ts->cand_s;
    }
    return r;
}

/* Whether a round of n candidates of ts would end the run past its budget,
** confirmations included (a task not measured yet goes at the slowest pace
** seen). */
static bool out_of_time(const tuner *t, const task_state *ts, int n) {
    if (t->o->interrupted && *t->o->interrupted) return true;
    if (t->o->budget_s <= 0) return false;
    double pace = ts->cand_s;
    for (int i = 0; pace <= 0 && i < t->n; i++)
        if (t->st[i].cand_s > pace) pace = t->st[i].cand_s;
    return now_s() - t->t0 + n * pace + confirm_reserve(t) >= t->o->budget_s;
}

static kiln_status run_rounds(tuner *t, tune_task_sched *sched) {
    kiln_status s = KILN_OK;
    for (int k; !s && (k = tune_task_sched_next(sched)) >= 0;) {
        task_state *ts = &t->st[k];
        int left = t->o->trials - ts->rep->measured_before - ts->rep->measured_now, got = 0;
        int n = left < t->o->batch ? left : t->o->batch;
        if (out_of_time(t, ts, n > 0 ? n : 0)) break;
        double start = now_s();
        if (n > 0 && !ts->skipped) s = one_round(t, ts, n, &got);
        if (got) ts->cand_s = ts->cand_s > 0 ? (ts->cand_s + (now_s() - start) / got) / 2 : (now_s() - start) / got;
        bool done = got == 0 || left - got <= 0 || tune_search_exhausted(ts->search) || ts->skipped;
        if (!s) s = tune_task_sched_report(t->ctx, sched, k, got, ts->best_s, done);
        if (!s && got) {
            progress(t, k, got);
            s = add_curve_point(t);
        }
    }
    return s;
}

static kiln_status start_tasks(tuner *t, const tune_tasks *tasks) {
    t->n = tasks->n;
    t->st = kiln_calloc((size_t)tasks->n + 1, sizeof(task_state));
    t->rep->tasks = kiln_calloc((size_t)tasks->n + 1, sizeof(tune_task_report));
    t->rep->n_tasks = tasks->n;
    if (!t->st || !t->rep->tasks) return kiln_fail(t->ctx, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = KILN_OK;
    for (int i = 0; i < tasks->n && !s; i++) {
        task_state *ts = &t->st[i];
        ts->task = &tasks->v[i];
        ts->rep = &t->rep->tasks[i];
        ts->rep->default_s = NAN;
        ts->rep->best_s = NAN;
        s = tune_search_new(t->ctx, ts->task->tir, &ts->task->space, t->target, t->o->seed ^ ts->task->hash, NULL,
                            &ts->search);
        if (!s) s = resume_task(t, ts);
    }
    return s;
}

static kiln_status finish_tasks(tuner *t) {
    kiln_status s = KILN_OK;
    for (int i = 0; i < t->n && !s; i++) {
        task_state *ts = &t->st[i];
        if (ts->rep->measured_now && !(t->o->interrupted && *t->o->interrupted)) s = confirm_task(t, ts);
        ts->rep->best_s = task_time(ts);
        int64_t knobs[TUNE_MAX_KNOBS];
        if (tune_search_best(ts->search, knobs, NULL))
            tune_point_str(&ts->task->space, knobs, ts->rep->best_knobs, sizeof ts->rep->best_knobs);
    }
    return s;
}

kiln_status tune_run(kiln_ctx *ctx, const tune_tasks *tasks, const cg_cpu_target *target,
                     const tune_run_opts *o, tune_run_report *out) {
    if (o->batch < 1 || o->batch > MAX_BATCH || o->trials < 0 || !o->db_path)
        return kiln_fail(ctx, KILN_ERR_INVALID, "tune: batch must be 1..%d, trials >= 0, and a database given",
                         MAX_BATCH);
    memset(out, 0, sizeof *out);
    tuner t = {ctx, o, target};
    t.rep = out;
    t.t0 = now_s();
    tune_task_sched *sched = NULL;
    double *weights = kiln_calloc((size_t)tasks->n + 1, sizeof(double));
    kiln_status s = weights ? KILN_OK : kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!s) s = tune_target_for(ctx, target, o->measure.threads, t.desc, sizeof t.desc);
    if (!s) s = tune_db_open(ctx, o->db_path, TUNE_DB_CREATE, &t.db);
    if (!s && !(t.refs = tune_ref_cache_new())) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!s) s = start_tasks(&t, tasks);
    for (int i = 0; !s && i < tasks->n; i++) weights[i] = tasks->v[i].weight;
    if (!s && tasks->n) s = tune_task_sched_new(ctx, tasks->n, weights, NULL, &sched);
    if (!s && tasks->n) s = add_curve_point(&t);
    if (!s && tasks->n) s = run_rounds(&t, sched);
    if (!s) s = finish_tasks(&t);
    if (!s) s = add_curve_point(&t);
    if (o->log && o->tty) fputc('\n', o->log);
    out->seconds = now_s() - t.t0;
    out->interrupted = o->interrupted && *o->interrupted;
    for (int i = 0; t.st && i < t.n; i++) {
        tune_search_free(t.st[i].search);
        kiln_free(t.st[i].oks);
    }
    kiln_free(t.st);
    kiln_free(weights);
    tune_task_sched_free(sched);
    tune_ref_cache_free(t.refs);
    tune_db_close(t.db);
    if (s) tune_run_report_free(out);
    return s;
}

void tune_run_report_free(tune_run_report *r) {
    kiln_free(r->tasks);
    kiln_free(r->curve);
    memset(r, 0, sizeof *r);
}

void tune_run_report_print(FILE *f, const tune_tasks *tasks, const tune_run_report *r) {
    double def = 0, tuned = 0;
    bool complete = true;
    fprintf(f, "%-4s %-40s %6s %12s %12s %8s %7s\n", "task", "kernel", "weight", "default ms", "tuned ms",
            "speed-up", "trials");
    for (int i = 0; i < r->n_tasks; i++) {
        const tune_task_report *t = &r->tasks[i];
        double d = t->default_s * 1e3, b = t->best_s * 1e3;
        fprintf(f, "%-4d %-40.40s %6d %12.4f %12.4f %7.2fx %7d\n", i, tasks->v[i].name, tasks->v[i].weight, d, b,
                d / b, t->measured_before + t->measured_now);
        if (isnan(d) || isnan(b)) complete = false;
        def += tasks->v[i].weight * d;
        tuned += tasks->v[i].weight * b;
    }
    if (complete)
        fprintf(f, "model (sum of weight x kernel time): default %.3f ms, tuned %.3f ms, %.2fx, in %.1f s%s\n", def,
                tuned, def / tuned, r->seconds, r->interrupted ? " (interrupted)" : "");
    else
        fprintf(f, "tuned for %.1f s%s; some tasks have no measured time yet\n", r->seconds,
                r->interrupted ? " (interrupted)" : "");
}
