/*
** compare.h — comparing a result tensor with an expected one.
*/
#ifndef KILN_CLI_COMPARE_H
#define KILN_CLI_COMPARE_H

#include <stdbool.h>
#include <stdio.h>

#include "kiln/kiln.h"

typedef struct cli_mismatch {
    const char *what; /* "dtype", "shape", "value" or NULL when equal */
    int64_t index;    /* flat index of the worst element */
    double got, want; /* its values */
    double excess;    /* |got - want| - (atol + rtol*|want|), the worst one */
    int64_t count;    /* elements outside the tolerance */
} cli_mismatch;

/* Elementwise |got - want| <= atol + rtol * |want| (NaN equals NaN, same-signed
** infinities equal); integers, bools and strings must be equal. */
bool cli_compare(const kiln_tensor *got, const kiln_tensor *want, double rtol, double atol,
                 cli_mismatch *m);

/* Prints a mismatch: the worst element's multi-index and both values. */
void cli_print_mismatch(FILE *f, const char *name, const kiln_tensor *got,
                        const kiln_tensor *want, const cli_mismatch *m);

#endif
