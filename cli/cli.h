/*
** cli.h — the kiln command's subcommands and shared helpers.
*/
#ifndef KILN_CLI_H
#define KILN_CLI_H

#include "kiln/kiln.h"

typedef int (*cli_fn)(int argc, char **argv);
typedef struct cli_command {
    const char *name;
    const char *help;
    cli_fn fn;
} cli_command;

int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_conformance(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_tune(int argc, char **argv);

#endif
