/*
** case.h — running one ONNX node-test case (model.onnx + test_data_set_*).
*/
#ifndef KILN_CLI_CASE_H
#define KILN_CLI_CASE_H

#include <stdio.h>

typedef enum cli_case_result {
    CASE_PASS = 0,
    CASE_FAIL,        /* ran, but an output differs */
    CASE_UNSUPPORTED, /* kiln says the model uses something it does not support */
    CASE_ERROR,       /* any other error (a bug, or a malformed case) */
    CASE_CRASH,       /* the child process died (only from the conformance runner) */
    CASE_TIMEOUT,
    CASE_RESULT_COUNT
} cli_case_result;

const char *cli_case_result_name(cli_case_result r);

/* Runs every test_data_set_* of the case in `dir` on a target ("ref" or
** "cpu"; cpu compiles for each data set's input shapes); writes what went
** wrong (or nothing, on success) to `log`. */
cli_case_result cli_run_case(const char *dir, const char *target, double rtol, double atol, FILE *log);

/* Lists the subfolders of `dir` whose names start with `prefix`, sorted.
** Returns the count (or -1 on error); free with cli_free_list. */
int cli_list_dirs(const char *dir, const char *prefix, char ***out);
void cli_free_list(char **list, int n);

#endif
