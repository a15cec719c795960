/*
** cmd_bench.c — `kiln bench MODEL.onnx`: steady-state latency. Loading and
** compiling are timed apart from the runs; warm-up runs are not counted.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_exec.h"
#include "cli_inputs.h"
#include "cli_passes.h"
#include "cli_util.h"
#include "ir/mem.h"

typedef struct bench_opts {
    const char *model;
    cli_exec_opts exec;
    cli_input_opts in;
    cli_pass_opts pass;
    int warmup, repeat;
    bool json, profile;
} bench_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln bench MODEL.onnx [--target cpu|ref] [--threads N] [--schedules FILE.lua] [--warmup W]\n"
            "                  [--repeat R] [--json] [--inputs DIR] [--input NAME=FILE]...\n"
            "  with --json the last line of stdout is one JSON object; --profile prints the\n"
            "  steps (kernels) that took longest per run.\n");
    fprintf(stderr, "  --db FILE             take tuned schedules from a records database (kiln tune)\n"
                    "  --db-fallback KEYS    target keys a record may differ in (e.g. cpu.model)\n");
    cli_pass_usage(stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, bench_opts *o) {
    memset(o, 0, sizeof *o);
    o->exec.target = "cpu";
    o->exec.threads = 1;
    o->warmup = 3;
    o->repeat = 10;
    o->in.seed = 1;
    cli_pass_opts_init(&o->pass);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (cli_input_arg(&o->in, argc, argv, &i) || cli_pass_arg(&o->pass, argc, argv, &i) ||
            cli_exec_db_arg(&o->exec, argc, argv, &i))
            continue;
        if (!strcmp(a, "--target") && has) o->exec.target = argv[++i];
        else if (!strcmp(a, "--threads") && has) o->exec.threads = atoi(argv[++i]);
        else if (!strcmp(a, "--schedules") && has) o->exec.schedules = argv[++i];
        else if (!strcmp(a, "--warmup") && has) o->warmup = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && has) o->repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--json")) o->json = true;
        else if (!strcmp(a, "--profile")) o->profile = true;
        else if (a[0] != '-' && !o->model) o->model = a;
        else return usage();
    }
    o->exec.passes = &o->pass.passes;
    if (o->pass.bad) return 2;
    if (o->exec.threads < 1 || o->warmup < 0 || o->repeat < 1) return usage();
    return o->model ? 0 : usage();
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Times `repeat` runs after `warmup`; fills times (sorted). */
static kiln_status time_runs(kiln_ctx *ctx, const bench_opts *o, cli_exec *e, kiln_model *m, kiln_tensor *in,
                             double *times) {
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    kiln_tensor *out = kiln_calloc((size_t)no + 1, sizeof(kiln_tensor));
    if (!out) return cli_fail(ctx, "out of memory");
    kiln_status s = KILN_OK;
    for (int r = 0; r < o->warmup + o->repeat && !s; r++) {
        double t0 = cli_now_ms();
        s = cli_exec_run(ctx, e, in, ni, out, no);
        if (r >= o->warmup) times[r - o->warmup] = cli_now_ms() - t0;
        for (int k = 0; k < no; k++) kiln_tensor_release(&out[k]);
    }
    kiln_free(out);
    if (!s) qsort(times, (size_t)o->repeat, sizeof(double), cmp_double);
    return s;
}

static void report(const bench_opts *o, const cli_exec *e, const double *t, double load_ms) {
    double med = o->repeat % 2 ? t[o->repeat / 2] : (t[o->repeat / 2 - 1] + t[o->repeat / 2]) / 2;
    printf("%s on %s, %d thread(s): median %.3f ms  min %.3f ms  max %.3f ms  (%d runs after %d warm-up)\n",
           o->model, o->exec.target, o->exec.threads, med, t[0], t[o->repeat - 1], o->repeat, o->warmup);
    printf("load %.1f ms, compile %.1f ms\n", load_ms, cli_exec_prepare_ms(e));
    if (o->json)
        printf("{\"model\": \"%s\", \"target\": \"%s\", \"threads\": %d, \"median_ms\": %.4f, \"min_ms\": %.4f, "
               "\"max_ms\": %.4f, \"compile_ms\": %.1f, \"load_ms\": %.1f, \"repeat\": %d, \"warmup\": %d}\n",
               o->model, o->exec.target, o->exec.threads, med, t[0], t[o->repeat - 1], cli_exec_prepare_ms(e),
               load_ms, o->repeat, o->warmup);
}

static int bench(kiln_ctx *ctx, const bench_opts *o) {
    double t0 = cli_now_ms();
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load(ctx, o->model, &m);
    if (s) return cli_error(ctx, s);
    double load_ms = cli_now_ms() - t0;
    int ni = kiln_model_num_inputs(m);
    kiln_tensor *in = kiln_calloc((size_t)ni + 1, sizeof(kiln_tensor));
    double *times = kiln_calloc((size_t)o->repeat, sizeof(double));
    cli_exec *e = NULL;
    if (!in || !times) s = cli_fail(ctx, "out of memory");
    if (!s) s = cli_load_inputs(ctx, m, &o->in, in, false);
    if (!s) s = cli_exec_prepare(ctx, m, &o->exec, in, ni, &e);
    if (!s) {
        cli_exec_summary(stdout, e);
        if (o->profile) s = cli_exec_profile(ctx, e);
        if (!s) s = time_runs(ctx, o, e, m, in, times);
    }
    if (!s && o->profile) cli_exec_print_profile(stdout, e, 15);
    if (!s) report(o, e, times, load_ms);
    int rc = s ? cli_error(ctx, s) : 0;
    cli_exec_free(e);
    for (int k = 0; in && k < ni; k++) kiln_tensor_release(&in[k]);
    kiln_free(in);
    kiln_free(times);
    kiln_model_free(m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    kiln_ctx *ctx = NULL;
    if (kiln_ctx_new(&ctx)) return 1;
    rc = bench(ctx, &o);
    kiln_ctx_free(ctx);
    return rc;
}
