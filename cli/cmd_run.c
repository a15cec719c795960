/*
** cmd_run.c — `kiln run MODEL.onnx`: runs a model on given or random inputs,
** prints a summary of each output and the time taken, writes outputs.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "cli_util.h"
#include "frontend/onnx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "npy.h"

typedef struct run_opts {
    const char *model, *target, *inputs_dir, *outputs_dir, *labels;
    const char *named[64]; /* NAME=FILE */
    int n_named, top;
    bool npy;
    unsigned seed;
} run_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln run MODEL.onnx [--target ref] [--inputs DIR] [--outputs DIR]\n"
            "                [--input NAME=FILE]... [--npy] [--seed N] [--labels FILE] [--top K]\n"
            "  inputs come from DIR/input_K.pb (or .npy) in graph-input order, from --input\n"
            "  NAME=FILE (.pb or .npy), or are random; outputs go to DIR/output_K.pb (and .npy\n"
            "  with --npy); --labels prints the top K classes of output 0.\n");
    return 2;
}

static int parse_opts(int argc, char **argv, run_opts *o) {
    memset(o, 0, sizeof *o);
    o->target = "ref";
    o->top = 5;
    o->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--target") && has) o->target = argv[++i];
        else if (!strcmp(a, "--inputs") && has) o->inputs_dir = argv[++i];
        else if (!strcmp(a, "--outputs") && has) o->outputs_dir = argv[++i];
        else if (!strcmp(a, "--labels") && has) o->labels = argv[++i];
        else if (!strcmp(a, "--top") && has) o->top = atoi(argv[++i]);
        else if (!strcmp(a, "--seed") && has) o->seed = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(a, "--npy")) o->npy = true;
        else if (!strcmp(a, "--input") && has && o->n_named < 64) o->named[o->n_named++] = argv[++i];
        else if (a[0] != '-' && !o->model) o->model = a;
        else return usage();
    }
    return o->model ? 0 : usage();
}

static const char *find_named(const run_opts *o, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < o->n_named; i++)
        if (!strncmp(o->named[i], name, n) && o->named[i][n] == '=') return o->named[i] + n + 1;
    return NULL;
}

static kiln_status check_named_exist(kiln_ctx *ctx, const run_opts *o, const kiln_model *m) {
    for (int i = 0; i < o->n_named; i++) {
        const char *eq = strchr(o->named[i], '=');
        if (!eq) return cli_fail(ctx, "--input %s: expected NAME=FILE", o->named[i]);
        bool found = false;
        for (int k = 0; k < kiln_model_num_inputs(m); k++) {
            const char *nm = kiln_model_input_name(m, k);
            found |= strlen(nm) == (size_t)(eq - o->named[i]) && !strncmp(nm, o->named[i], strlen(nm));
        }
        if (!found) return cli_fail(ctx, "--input %s: the model has no input of that name", o->named[i]);
    }
    return KILN_OK;
}

static kiln_status load_input(kiln_ctx *ctx, const run_opts *o, kiln_model *m, int k, kiln_tensor *t,
                              bool *random) {
    const char *file = find_named(o, kiln_model_input_name(m, k));
    char path[4200];
    if (!file && o->inputs_dir) {
        snprintf(path, sizeof path, "%s/input_%d.pb", o->inputs_dir, k);
        if (!cli_file_exists(path)) snprintf(path, sizeof path, "%s/input_%d.npy", o->inputs_dir, k);
        file = path;
    }
    *random = file == NULL;
    if (!file) return cli_random_input(ctx, kiln_model_graph(m)->inputs[k], o->seed + (unsigned)k, t);
    return cli_load_tensor(ctx, file, t);
}

static void print_summary(const char *name, const kiln_tensor *t) {
    char shape[160];
    printf("  %s: %s", name, kiln_shape_str(t, shape, sizeof shape));
    int64_t n = kiln_numel(t);
    if (t->dtype == KILN_STRING || n == 0) {
        printf("\n");
        return;
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        double v = kiln_tensor_f64(t, i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
    }
    printf("  min %.6g  max %.6g  mean %.6g  [", lo, hi, sum / (double)n);
    for (int64_t i = 0; i < n && i < 6; i++) printf(i ? ", %.6g" : "%.6g", kiln_tensor_f64(t, i));
    printf(n > 6 ? ", ...]\n" : "]\n");
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

static int run_model(kiln_ctx *ctx, const run_opts *o) {
    if (strcmp(o->target, "ref") != 0)
        return cli_error(ctx, cli_fail(ctx, "target '%s' is not available (targets: ref)", o->target));
    double t0 = cli_now_ms();
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load(ctx, o->model, &m);
    if (s) return cli_error(ctx, s);
    double t_load = cli_now_ms() - t0;
    int ni = kiln_model_num_inputs(m), no = kiln_model_num_outputs(m);
    kiln_tensor *in = kiln_calloc((size_t)ni + 1, sizeof(kiln_tensor));
    kiln_tensor *out = kiln_calloc((size_t)no + 1, sizeof(kiln_tensor));
    if (!in || !out) s = cli_fail(ctx, "out of memory");
    if (!s) s = check_named_exist(ctx, o, m);
    printf("model %s: %d input(s), %d output(s), loaded in %.1f ms\n", o->model, ni, no, t_load);
    for (int k = 0; k < ni && !s; k++) {
        bool random;
        s = load_input(ctx, o, m, k, &in[k], &random);
        if (!s) print_summary(kiln_model_input_name(m, k), &in[k]);
        if (!s && random) printf("    (random input, seed %u)\n", o->seed + (unsigned)k);
    }
    double t_run = 0;
    if (!s) {
        t0 = cli_now_ms();
        s = kiln_model_run_ref(ctx, m, in, ni, out, no);
        t_run = cli_now_ms() - t0;
    }
    if (!s) {
        printf("ran on target %s in %.1f ms\n", o->target, t_run);
        for (int k = 0; k < no; k++) print_summary(kiln_model_output_name(m, k), &out[k]);
        if (o->labels && no > 0) s = cli_print_top(ctx, o->labels, &out[0], o->top);
    }
    if (!s && o->outputs_dir) s = write_outputs(ctx, o, m, out, no);
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
