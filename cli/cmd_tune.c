/*
** cmd_tune.c — `kiln tune MODEL.onnx`: lists a model's tuning tasks
** (--list) or tunes them into a records database.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/compile.h"
#include "autotune/tasks.h"
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
    int trials, threads;
    double budget_s;
    unsigned long long seed;
    cli_input_opts in;
    cli_pass_opts pass;
} tune_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln tune MODEL.onnx --list [--inputs DIR] [--input NAME=FILE]...\n"
            "  prints the model's tuning tasks: its distinct kernels with their workload\n"
            "  hash, weight (calls per run), template and search-space size.\n");
    cli_pass_usage(stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, tune_opts *o) {
    memset(o, 0, sizeof *o);
    o->target = "cpu";
    o->threads = 1;
    o->in.seed = 1;
    cli_pass_opts_init(&o->pass);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (cli_input_arg(&o->in, argc, argv, &i) || cli_pass_arg(&o->pass, argc, argv, &i)) continue;
        if (!strcmp(a, "--list")) o->list = true;
        else if (!strcmp(a, "--target") && has) o->target = argv[++i];
        else if (!strcmp(a, "--threads") && has) o->threads = atoi(argv[++i]);
        else if (a[0] != '-' && !o->model) o->model = a;
        else return usage();
    }
    if (o->pass.bad || o->threads < 1 || !o->model) return usage();
    if (strcmp(o->target, "cpu") != 0) {
        fprintf(stderr, "kiln: tune: target '%s' is not available (targets: cpu)\n", o->target);
        return 2;
    }
    return o->list ? 0 : usage();
}

static kiln_status list_tasks(kiln_ctx *ctx, const tune_opts *o, kiln_model *m, kiln_tensor *in) {
    kc_options ko;
    kc_options_default(&ko);
    ko.passes = o->pass.passes;
    kc_plan *plan = NULL;
    tune_tasks tasks = {0};
    kiln_status s = cli_load_inputs(ctx, m, &o->in, in, false);
    if (!s) s = kc_compile(ctx, kiln_model_graph(m), in, kiln_model_num_inputs(m), &ko, &plan);
    if (!s) s = tune_tasks_from_plan(ctx, plan, &tasks);
    if (!s) tune_tasks_print(stdout, &tasks);
    tune_tasks_free(&tasks);
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
    if (!s) s = list_tasks(ctx, &o, m, in);
    for (int k = 0; in && k < ni; k++) kiln_tensor_release(&in[k]);
    kiln_free(in);
    kiln_model_free(m);
    rc = s ? cli_error(ctx, s) : 0;
    kiln_ctx_free(ctx);
    return rc;
}
