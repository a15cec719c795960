/*
** conformance_report.h — summarising conformance results: totals, per op,
** the core-op subset, the expected-pass list.
*/
#ifndef KILN_CLI_CONFORMANCE_REPORT_H
#define KILN_CLI_CONFORMANCE_REPORT_H

#include "case.h"

typedef struct conf_case {
    char *name;
    char *ops;    /* comma-separated op types of the model's nodes */
    char *reason; /* first line of what went wrong */
    cli_case_result result;
} conf_case;

typedef struct conf_report_args {
    const char *dir, *target, *report, *expect, *write_passing, *core_ops;
    double seconds;
} conf_report_args;

/* Prints the summary, writes the report and the passing list, checks the
** expected list. Returns the exit code: 1 when an expected case fails. */
int conf_report(const conf_report_args *a, conf_case *cases, int n);
void conf_free_cases(conf_case *cases, int n);

#endif
