/*
** cli_inputs.c — inputs for run and bench.
*/
#include "cli_inputs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_util.h"
#include "frontend/onnx.h"
#include "ir/tensor.h"

bool cli_input_arg(cli_input_opts *o, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    if (*i + 1 >= argc) return false;
    if (!strcmp(a, "--inputs")) o->dir = argv[++*i];
    else if (!strcmp(a, "--seed")) o->seed = (unsigned)strtoul(argv[++*i], NULL, 10);
    else if (!strcmp(a, "--input") && o->n_named < 64) o->named[o->n_named++] = argv[++*i];
    else return false;
    return true;
}

static const char *find_named(const cli_input_opts *o, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < o->n_named; i++)
        if (!strncmp(o->named[i], name, n) && o->named[i][n] == '=') return o->named[i] + n + 1;
    return NULL;
}

static kiln_status check_named_exist(kiln_ctx *ctx, const cli_input_opts *o, const kiln_model *m) {
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

static kiln_status load_one(kiln_ctx *ctx, const cli_input_opts *o, kiln_model *m, int k, kiln_tensor *t,
                            bool *random) {
    const char *file = find_named(o, kiln_model_input_name(m, k));
    char path[4200];
    if (!file && o->dir) {
        snprintf(path, sizeof path, "%s/input_%d.pb", o->dir, k);
        if (!cli_file_exists(path)) snprintf(path, sizeof path, "%s/input_%d.npy", o->dir, k);
        file = path;
    }
    *random = file == NULL;
    if (!file) return cli_random_input(ctx, kiln_model_graph(m)->inputs[k], o->seed + (unsigned)k, t);
    return cli_load_tensor(ctx, file, t);
}

kiln_status cli_load_inputs(kiln_ctx *ctx, kiln_model *m, const cli_input_opts *o, kiln_tensor *in,
                            bool verbose) {
    kiln_status s = check_named_exist(ctx, o, m);
    int n = kiln_model_num_inputs(m);
    for (int k = 0; k < n && !s; k++) {
        bool random;
        s = load_one(ctx, o, m, k, &in[k], &random);
        if (s) {
            for (int j = 0; j < k; j++) kiln_tensor_release(&in[j]);
            break;
        }
        if (!verbose) continue;
        cli_print_summary(kiln_model_input_name(m, k), &in[k]);
        if (random) printf("    (random input, seed %u)\n", o->seed + (unsigned)k);
    }
    return s;
}

void cli_print_summary(const char *name, const kiln_tensor *t) {
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
