/*
** cmd_run.c — `kiln run MODEL.onnx`: runs a model on given or random inputs,
** prints a summary of each output and the time taken, writes outputs.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cli_exec.h"
#include "cli_inputs.h"
#include "cli_passes.h"
#include "cli_util.h"
#include "ir/mem.h"
#include "npy.h"

typedef struct run_opts {
    const char *model, *outputs_dir, *labels;
    cli_exec_opts exec;
    cli_input_opts in;
    cli_pass_opts pass;
    int top;
    bool npy;
} run_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln run MODEL.onnx [--target ref|cpu] [--threads N] [--schedules FILE.lua] [--inputs DIR]\n"
            "                [--outputs DIR] [--input NAME=FILE]... [--npy] [--seed N]\n"
            "                [--labels FILE] [--top K]\n"
            "  inputs come from DIR/input_K.pb (or .npy) in graph-input order, from --input\n"
            "  NAME=FILE (.pb or .npy), or are random; outputs go to DIR/output_K.pb (and .npy\n"
            "  with --npy); --labels prints the top K classes of output 0.\n");
    fprintf(stderr, "  --db FILE             take tuned schedules from a records database (kiln tune)\n"
                    "  --db-fallback KEYS    target keys a record may differ in (e.g. cpu.model)\n");
    cli_pass_usage(stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->exec.target = "ref";
    o->exec.threads = 1;
    o->top = 5;
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
        else if (!strcmp(a, "--outputs") && has) o->outputs_dir = argv[++i];
        else if (!strcmp(a, "--labels") && has) o->labels = argv[++i];
        else if (!strcmp(a, "--top") && has) o->top = atoi(argv[++i]);
        else if (!strcmp(a, "--npy")) o->npy = true;
        else if (a[0] != '-' && !o->model) o->model = a;
        else return usage();
    }
    o->exec.passes = &o->pass.passes;
    if (o->pass.bad) return 2;
    if (o->exec.threads < 1) return usage();
    return o->model ? 0 : usage();
}

static kiln_status write_outputs(kiln_ctx *ctx, const run_opts *o, kiln_model *m, kiln_tensor *out, int n) {
    mkdir(o->outputs_dir, 0777);
    char path[4200];
    for (int k = 0; k < n; k++) {
        snprintf(path, sizeof path, "%s/output_%d.pb", o->outputs_dir, k);
        kiln_status s = kiln_tensor_save_pb(ctx, path, &out[k], kiln_model_output_name(m, k));
        if (!s && o->npy) {
            snprintf(path, sizeof path, "%s/output_%d.npy", o->outputs_dir, k);
            s = cli_npy_write(ctx, path, &out[k]);
        }
        if (s) return s;
    }
    return KILN_OK;
}

/* Prepares the target, runs once, prints and writes the outputs. */
static kiln_status run_once(kiln_ctx *ctx, const run_opts *o, kiln_model *m, kiln_tensor *in, kiln_tensor *out) {
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    cli_exec *e = NULL;
    kiln_status s = cli_exec_prepare(ctx, m, &o->exec, in, ni, &e);
    if (s) return s;
    if (!strcmp(o->exec.target, "cpu")) {
        printf("compiled for target cpu in %.1f ms\n", cli_exec_prepare_ms(e));
        cli_exec_summary(stdout, e);
    }
    double t0 = cli_now_ms();
    s = cli_exec_run(ctx, e, in, ni, out, no);
    double t_run = cli_now_ms() - t0;
    if (!s) {
        printf("ran on target %s in %.1f ms\n", o->exec.target, t_run);
        for (int k = 0; k < no; k++) cli_print_summary(kiln_model_output_name(m, k), &out[k]);
        if (o->labels && no > 0) s = cli_print_top(ctx, o->labels, &out[0], o->top);
    }
    if (!s && o->outputs_dir) s = write_outputs(ctx, o, m, out, no);
    cli_exec_free(e);
    return s;
}

static int run_model(kiln_ctx *ctx, const run_opts *o) {
    double t0 = cli_now_ms();
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load(ctx, o->model, &m);
    if (s) return cli_error(ctx, s);
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    printf("model %s: %d input(s), %d output(s), loaded in %.1f ms\n", o->model, ni, no, cli_now_ms() - t0);
    kiln_tensor *in = kiln_calloc((size_t)ni + 1, sizeof(kiln_tensor));
    kiln_tensor *out = kiln_calloc((size_t)no + 1, sizeof(kiln_tensor));
    if (!in || !out) s = cli_fail(ctx, "out of memory");
    if (!s) s = cli_load_inputs(ctx, m, &o->in, in, true);
    if (!s) s = run_once(ctx, o, m, in, out);
    int rc = s ? cli_error(ctx, s) : 0;
    for (int k = 0; in && k < ni; k++) kiln_tensor_release(&in[k]);
    for (int k = 0; out && k < no; k++) kiln_tensor_release(&out[k]);
    kiln_free(in);
    kiln_free(out);
    kiln_model_free(m);
    return rc;
}

int cmd_run(int argc, char **argv) {
    run_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    kiln_ctx *ctx = NULL;
    if (kiln_ctx_new(&ctx)) return 1;
    rc = run_model(ctx, &o);
    kiln_ctx_free(ctx);
    return rc;
}
