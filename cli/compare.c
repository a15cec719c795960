/*
** compare.c — result comparison with tolerances, reporting the worst element.
*/
#include "compare.h"

#include <math.h>
#include <string.h>

#include "ir/dtype.h"
#include "ir/tensor.h"

static bool compare_strings(const kiln_tensor *got, const kiln_tensor *want, int64_t n,
                            cli_mismatch *m) {
    char *const *a = got->data, *const *b = want->data;
    for (int64_t i = 0; i < n; i++) {
        if (strcmp(a[i] ? a[i] : "", b[i] ? b[i] : "") == 0) continue;
        if (m->count++ == 0) m->index = i;
    }
    if (m->count) m->what = "value";
    return m->count == 0;
}

static bool compare_ints(const kiln_tensor *got, const kiln_tensor *want, int64_t n, cli_mismatch *m) {
    for (int64_t i = 0; i < n; i++) {
        int64_t a = kiln_tensor_i64(got, i), b = kiln_tensor_i64(want, i);
        if (a == b) continue;
        double ex = fabs((double)a - (double)b);
        if (m->count++ == 0 || ex > m->excess) {
            m->index = i;
            m->got = (double)a;
            m->want = (double)b;
            m->excess = ex;
        }
    }
    if (m->count) m->what = "value";
    return m->count == 0;
}

static bool compare_floats(const kiln_tensor *got, const kiln_tensor *want, int64_t n, double rtol,
                           double atol, cli_mismatch *m) {
    for (int64_t i = 0; i < n; i++) {
        double a = kiln_tensor_f64(got, i), b = kiln_tensor_f64(want, i);
        double ex;
        if (isnan(a) || isnan(b)) {
            if (isnan(a) && isnan(b)) continue;
            ex = INFINITY;
        } else if (isinf(a) || isinf(b)) {
            if (a == b) continue;
            ex = INFINITY;
        } else {
            ex = fabs(a - b) - (atol + rtol * fabs(b));
            if (ex <= 0) continue;
        }
        if (m->count++ == 0 || ex > m->excess) {
            m->index = i;
            m->got = a;
            m->want = b;
            m->excess = ex;
        }
    }
    if (m->count) m->what = "value";
    return m->count == 0;
}

bool cli_compare(const kiln_tensor *got, const kiln_tensor *want, double rtol, double atol,
                 cli_mismatch *m) {
    memset(m, 0, sizeof *m);
    if (got->dtype != want->dtype) {
        m->what = "dtype";
        return false;
    }
    if (!kiln_tensor_same_shape(got, want)) {
        m->what = "shape";
        return false;
    }
    int64_t n = kiln_numel(want);
    if (want->dtype == KILN_STRING) return compare_strings(got, want, n, m);
    if (kiln_dtype_is_float(want->dtype)) return compare_floats(got, want, n, rtol, atol, m);
    return compare_ints(got, want, n, m);
}

void cli_print_mismatch(FILE *f, const char *name, const kiln_tensor *got,
                        const kiln_tensor *want, const cli_mismatch *m) {
    char a[160], b[160];
    if (!m->what) return;
    if (strcmp(m->what, "value") != 0) {
        fprintf(f, "  %s: %s differs: got %s, expected %s\n", name, m->what,
                kiln_shape_str(got, a, sizeof a), kiln_shape_str(want, b, sizeof b));
        return;
    }
    int64_t idx[KILN_MAX_RANK], rest = m->index;
    for (int d = want->rank - 1; d >= 0; d--) {
        idx[d] = want->dims[d] ? rest % want->dims[d] : 0;
        rest = want->dims[d] ? rest / want->dims[d] : 0;
    }
    char where[200];
    size_t k = (size_t)snprintf(where, sizeof where, "[");
    for (int d = 0; d < want->rank; d++)
        k += (size_t)snprintf(where + k, sizeof where - k, d ? ",%lld" : "%lld", (long long)idx[d]);
    snprintf(where + k, sizeof where - k, "]");
    if (want->dtype == KILN_STRING) {
        fprintf(f, "  %s: %lld of %lld elements differ; first at %s: got \"%s\", expected \"%s\"\n", name,
                (long long)m->count, (long long)kiln_numel(want), where,
                ((char *const *)got->data)[m->index], ((char *const *)want->data)[m->index]);
        return;
    }
    fprintf(f, "  %s: %lld of %lld elements differ; worst at %s: got %.9g, expected %.9g (|diff| %.3g)\n",
            name, (long long)m->count, (long long)kiln_numel(want), where, m->got, m->want,
            fabs(m->got - m->want));
}
