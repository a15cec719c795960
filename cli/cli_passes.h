/*
** cli_passes.h — the graph-pass options the kiln subcommands share:
** -O0 / -O2, --disable-pass NAME (repeatable), and for inspect --after PASS.
*/
#ifndef KILN_CLI_PASSES_H
#define KILN_CLI_PASSES_H

#include <stdbool.h>
#include <stdio.h>

#include "passes/pass.h"

typedef struct cli_pass_opts {
    pass_options passes;
    bool bad; /* an unknown pass name was given (and reported on stderr) */
} cli_pass_opts;

void cli_pass_opts_init(cli_pass_opts *o);
/* Takes argv[*i] (and its value) when it is a pass option; true if taken.
** An unknown pass name is reported on stderr and sets o->bad. */
bool cli_pass_arg(cli_pass_opts *o, int argc, char **argv, int *i);
/* The usage lines of the pass options. */
void cli_pass_usage(FILE *f);
/* The pipeline, one pass a line, with the level that runs it. */
void cli_pass_list(FILE *f);

#endif
