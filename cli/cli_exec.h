/*
** cli_exec.h — running a loaded model on a target: "ref" (the reference
** interpreter) or "cpu" (kernels compiled with the LLVM backend).
*/
#ifndef KILN_CLI_EXEC_H
#define KILN_CLI_EXEC_H

#include <stdbool.h>
#include <stdio.h>

#include "kiln/kiln.h"
#include "passes/pass.h"

typedef struct cli_exec cli_exec;

typedef struct cli_exec_opts {
    const char *target; /* "ref" or "cpu" */
    int threads;        /* cpu: worker threads (>= 1) */
    const char *schedules; /* cpu: a Lua schedule script, or NULL */
    const pass_options *passes; /* cpu: the graph passes; NULL: the defaults (-O2) */
    const char *db;             /* cpu: a records database of tuned schedules, or NULL */
    const char *db_fallback;    /* cpu: comma-separated target keys a record may differ in, or NULL */
} cli_exec_opts;

/* Takes --db FILE / --db-fallback KEYS at argv[*i]; true if taken. */
bool cli_exec_db_arg(cli_exec_opts *o, int argc, char **argv, int *i);

/* Prepares to run m on inputs of these shapes (cpu: compiles every kernel). */
kiln_status cli_exec_prepare(kiln_ctx *ctx, kiln_model *m, const cli_exec_opts *o, const kiln_tensor *inputs,
                             int n_inputs, cli_exec **out);
kiln_status cli_exec_run(kiln_ctx *ctx, cli_exec *e, const kiln_tensor *inputs, int n_inputs,
                         kiln_tensor *outputs, int n_outputs);
/* Milliseconds spent preparing (compiling). */
double cli_exec_prepare_ms(const cli_exec *e);
/* What the target made of the model (cpu: kernels, reference-run nodes). */
void cli_exec_summary(FILE *f, const cli_exec *e);
/* Per-kernel compute, trace, loop IR (and LLVM IR): cpu only. */
kiln_status cli_exec_print_kernels(kiln_ctx *ctx, FILE *f, const cli_exec *e, bool llvm);
/* cpu: time every step of the following runs; then print the longest. */
kiln_status cli_exec_profile(kiln_ctx *ctx, cli_exec *e);
void cli_exec_print_profile(FILE *f, const cli_exec *e, int top);
void cli_exec_free(cli_exec *e);

#endif
