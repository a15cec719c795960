/*
** cmd_tune.c — `kiln tune MODEL.onnx`: lists a model's tuning tasks
** (--list) or tunes them into a records database.
*/
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/compile.h"
#include "autotune/tasks.h"
#include "autotune/tuner.h"
#include "frontend/onnx.h"
#include "cli.h"
#include "cli_exec.h"
#include "cli_inputs.h"
#include "cli_passes.h"
#include "cli_util.h"
#include "ir/ctx.h"
#include "ir/mem.h"
#include "ir/tensor.h"

typedef struct tune_opts {
    const char *model, *db, *plot, *target;
    bool list;
    int trials, threads, batch;
    double budget_s;
    unsigned long long seed;
    cli_input_opts in;
    cli_pass_opts pass;
} tune_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln tune MODEL.onnx --db FILE [--target cpu] [--trials N] [--budget TIME]\n"
            "                 [--threads N] [--seed S] [--batch B] [--plot FILE.svg|png]\n"
            "                 [--inputs DIR] [--input NAME=FILE]...\n"
            "       kiln tune MODEL.onnx --list\n"
            "  tunes the model's kernels into the records database FILE (created when\n"
            "  missing): N measured candidates per kernel at most (default 64; records\n"
            "  already in FILE count), for at most TIME in all (e.g. 90s, 10m, 1h).\n"
            "  Ctrl-C stops after the current round and keeps every record. --plot draws\n"
            "  the estimated model latency against tuning time (gnuplot). --list prints\n"
            "  the tasks: distinct kernels, workload hash, weight, template, space size.\n");
    cli_pass_usage(stderr);
    return 2;
}

/* "600", "90s", "10m", "1h" into seconds; < 0 when malformed. */
static double parse_duration(const char *s) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0) return -1;
    if (!*end || !strcmp(end, "s")) return v;
    if (!strcmp(end, "m")) return v * 60;
    if (!strcmp(end, "h")) return v * 3600;
    return -1;
}

static int parse_opts(int argc, char **argv, tune_opts *o) {
    memset(o, 0, sizeof *o);
    o->target = "cpu";
    o->threads = 1;
    o->trials = 64;
    o->batch = 8;
    o->seed = 1;
    o->in.seed = 1;
    cli_pass_opts_init(&o->pass);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (cli_input_arg(&o->in, argc, argv, &i) || cli_pass_arg(&o->pass, argc, argv, &i)) continue;
        if (!strcmp(a, "--list")) o->list = true;
        else if (!strcmp(a, "--target") && has) o->target = argv[++i];
        else if (!strcmp(a, "--threads") && has) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--db") && has) o->db = argv[++i];
        else if (!strcmp(a, "--plot") && has) o->plot = argv[++i];
        else if (!strcmp(a, "--trials") && has) o->trials = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && has) o->batch = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && has) o->seed = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(a, "--budget") && has) {
            if ((o->budget_s = parse_duration(argv[++i])) < 0) return usage();
        } else if (a[0] != '-' && !o->model) o->model = a;
        else return usage();
    }
    if (o->pass.bad || o->threads < 1 || o->trials < 0 || o->batch < 1 || o->batch > 64 || !o->model)
        return usage();
    if (strcmp(o->target, "cpu") != 0) {
        fprintf(stderr, "kiln: tune: target '%s' is not available (targets: cpu)\n", o->target);
        return 2;
    }
    if (!o->list && !o->db) {
        fprintf(stderr, "kiln: tune: --db FILE is required (the records database)\n");
        return 2;
    }
    return 0;
}

static volatile sig_atomic_t g_interrupted;

static void on_sigint(int sig) {
    (void)sig;
    g_interrupted = 1;
}

/* The time to reach 90% of the final speed-up, from the curve. */
static void print_curve_points(const tune_tasks *tasks, const tune_run_report *r) {
    double def = 0;
    for (int i = 0; i < r->n_tasks; i++) def += tasks->v[i].weight * r->tasks[i].default_s * 1e3;
    if (r->n_curve < 1 || !isfinite(def)) return;
    double final = r->curve[r->n_curve - 1].model_ms, gain = def / final - 1;
    double t90 = r->curve[r->n_curve - 1].seconds;
    for (int i = r->n_curve - 1; i >= 0; i--)
        if (def / r->curve[i].model_ms - 1 >= 0.9 * gain) t90 = r->curve[i].seconds;
    printf("tuning curve: default %.3f ms -> %.3f ms (%.2fx) in %.1f s; 90%% of the speed-up after %.1f s\n", def,
           final, def / final, r->seconds, t90);
}

static kiln_status plot_curve(kiln_ctx *ctx, const char *path, const tune_run_report *r) {
    size_t n = strlen(path);
    bool png = n > 4 && !strcmp(path + n - 4, ".png");
    if (!png && !(n > 4 && !strcmp(path + n - 4, ".svg"))) return cli_fail(ctx, "--plot %s: expected a .svg or .png file", path);
    if (strchr(path, '\'') || strchr(path, '\n')) return cli_fail(ctx, "--plot %s: quotes or newlines in the name", path);
    FILE *gp = popen("gnuplot 2>&1", "w");
    if (!gp) return cli_fail(ctx, "--plot: cannot run gnuplot");
    fprintf(gp, "set terminal %s size 800,500\nset output '%s'\n", png ? "pngcairo" : "svg", path);
    fprintf(gp, "set title 'kiln tune: estimated model latency'\nset xlabel 'tuning time (s)'\n"
                "set ylabel 'latency (ms)'\nset grid\nplot '-' using 1:2 with steps lw 2 title 'sum of weight x best kernel time'\n");
    for (int i = 0; i < r->n_curve; i++) fprintf(gp, "%.3f %.6f\n", r->curve[i].seconds, r->curve[i].model_ms);
    fprintf(gp, "e\n");
    int rc = pclose(gp);
    if (rc != 0) return cli_fail(ctx, "--plot %s: gnuplot failed (exit status %d; is gnuplot installed?)", path, rc);
    printf("plot: %s\n", path);
    return KILN_OK;
}

static kiln_status tune_plan(kiln_ctx *ctx, const tune_opts *o, const kc_plan *plan) {
    tune_tasks tasks = {0};
    kiln_status s = tune_tasks_from_plan(ctx, plan, &tasks);
    if (s || o->list) {
        if (!s) tune_tasks_print(stdout, &tasks);
        tune_tasks_free(&tasks);
        return s;
    }
    tune_run_opts ro;
    tune_run_opts_default(&ro);
    ro.db_path = o->db;
    ro.trials = o->trials;
    ro.budget_s = o->budget_s;
    ro.batch = o->batch;
    ro.seed = o->seed;
    ro.measure.threads = o->threads;
    ro.measure.cg = plan->cg;
    ro.log = stderr;
    ro.tty = isatty(2);
    ro.interrupted = &g_interrupted;
    printf("tuning %d tasks into %s (%d trials per task at most%s)\n", tasks.n, o->db, o->trials,
           o->budget_s > 0 ? ", time-limited" : "");
    fflush(stdout);
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    tune_run_report rep;
    s = tune_run(ctx, &tasks, &plan->cg.target, &ro, &rep);
    sigaction(SIGINT, &old, NULL);
    if (!s) {
        tune_run_report_print(stdout, &tasks, &rep);
        print_curve_points(&tasks, &rep);
        if (o->plot) s = plot_curve(ctx, o->plot, &rep);
        tune_run_report_free(&rep);
    }
    tune_tasks_free(&tasks);
    return s;
}

static kiln_status compile_and_tune(kiln_ctx *ctx, const tune_opts *o, kiln_model *m, kiln_tensor *in) {
    kc_options ko;
    kc_options_default(&ko);
    ko.passes = o->pass.passes;
    kc_plan *plan = NULL;
    kiln_status s = cli_load_inputs(ctx, m, &o->in, in, false);
    if (!s) s = kc_compile(ctx, kiln_model_graph(m), in, kiln_model_num_inputs(m), &ko, &plan);
    if (!s) s = tune_plan(ctx, o, plan);
    kc_plan_free(plan);
    return s;
}

int cmd_tune(int argc, char **argv) {
    tune_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    kiln_ctx *ctx;
    if (kiln_ctx_new(&ctx)) return 1;
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load(ctx, o.model, &m);
    int ni = m ? kiln_model_num_inputs(m) : 0;
    kiln_tensor *in = m ? kiln_calloc((size_t)ni + 1, sizeof(kiln_tensor)) : NULL;
    if (!s && !in) s = cli_fail(ctx, "out of memory");
    if (!s) s = compile_and_tune(ctx, &o, m, in);
    for (int k = 0; in && k < ni; k++) kiln_tensor_release(&in[k]);
    kiln_free(in);
    kiln_model_free(m);
    rc = s ? cli_error(ctx, s) : 0;
    kiln_ctx_free(ctx);
    return rc;
}
