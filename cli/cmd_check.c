/*
** cmd_check.c — `kiln check CASE_DIR [--target ref|cpu] [--rtol R] [--atol A]`: runs a case's
** model on every test_data_set_* and compares with the expected outputs.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "case.h"
#include "cli.h"

int cmd_check(int argc, char **argv) {
    double rtol = 1e-3, atol = 1e-7;
    const char *dir = NULL, *target = "ref";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rtol") && i + 1 < argc) {
            rtol = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--target") && i + 1 < argc) {
            target = argv[++i];
        } else if (!strcmp(argv[i], "--atol") && i + 1 < argc) {
            atol = atof(argv[++i]);
        } else if (argv[i][0] == '-' || dir) {
            fprintf(stderr, "usage: kiln check CASE_DIR [--target ref|cpu] [--rtol R] [--atol A]\n");
            return 2;
        } else {
            dir = argv[i];
        }
    }
    if (!dir) {
        fprintf(stderr, "usage: kiln check CASE_DIR [--target ref|cpu] [--rtol R] [--atol A]\n");
        return 2;
    }
    cli_case_result r = cli_run_case(dir, target, rtol, atol, stderr);
    printf("%s: %s\n", cli_case_result_name(r), dir);
    return r == CASE_PASS ? 0 : 1;
}
