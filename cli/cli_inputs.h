/*
** cli_inputs.h — a model's inputs for run and bench: from a folder of
** input_K.pb / .npy files, from NAME=FILE arguments, or random.
*/
#ifndef KILN_CLI_INPUTS_H
#define KILN_CLI_INPUTS_H

#include <stdbool.h>

#include "kiln/kiln.h"

typedef struct cli_input_opts {
    const char *dir;
    const char *named[64]; /* NAME=FILE */
    int n_named;
    unsigned seed;
} cli_input_opts;

/* Parses --inputs DIR, --input NAME=FILE, --seed N at argv[*i]; returns
** true (advancing *i) when it took the argument. */
bool cli_input_arg(cli_input_opts *o, int argc, char **argv, int *i);

/* Fills in[0..n_inputs) (owned tensors); prints a summary line per input
** when verbose. */
kiln_status cli_load_inputs(kiln_ctx *ctx, kiln_model *m, const cli_input_opts *o, kiln_tensor *in,
                            bool verbose);

/* "name: f32[1,3]  min .. max .. mean .. [first values]" */
void cli_print_summary(const char *name, const kiln_tensor *t);

#endif
