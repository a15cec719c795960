/*
** main.c — the kiln command: dispatches to a subcommand.
*/
#include <stdio.h>
#include <string.h>

#include "cli.h"

static const cli_command k_commands[] = {
    {"run", "run a model: kiln run MODEL.onnx [--target ref|cpu] [--inputs DIR] [--outputs DIR]", cmd_run},
    {"bench", "measure latency: kiln bench MODEL.onnx [--target cpu|ref] [--threads N] [--json]", cmd_bench},
    {"check", "check a model against expected outputs: kiln check CASE_DIR [--rtol R --atol A]", cmd_check},
    {"inspect", "show a model's graph: kiln inspect MODEL.onnx", cmd_inspect},
    {"tune", "list or tune a model's kernels: kiln tune MODEL.onnx --list", cmd_tune},
    {"conformance", "run ONNX node tests: kiln conformance DIR [--report FILE]", cmd_conformance},
    {"db", "the tuner's records: kiln db stats|export|import|merge|prune DB ...", cmd_db},
};
#define N_COMMANDS (int)(sizeof k_commands / sizeof k_commands[0])

static void usage(FILE *f) {
    fprintf(f, "kiln %s — an ML compiler\n\nusage: kiln COMMAND [ARGS]\n\n", KILN_VERSION_STRING);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(f, "  %-12s %s\n", k_commands[i].name, k_commands[i].help);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("kiln %s\n", KILN_VERSION_STRING);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (!strcmp(argv[1], k_commands[i].name)) return k_commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "kiln: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
