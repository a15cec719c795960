/*
** trace_names.c — traces moved between functions of one workload by input
** position (see trace_names.h).
*/
#include <stdio.h>

#include "ir/ctx.h"
#include "ir/mem.h"
#include "trace_names.h"

#define TN_MAX_INPUTS 256

/* "$in<k>" for k < n, in a buffer of the caller's. */
static void positional(int n, char (*buf)[16], const char **names) {
    for (int k = 0; k < n; k++) {
        snprintf(buf[k], sizeof buf[k], "$in%d", k);
        names[k] = buf[k];
    }
}

static kiln_status input_names(kiln_ctx *ctx, const tir_func *f, const char **names) {
    if (f->n_inputs > TN_MAX_INPUTS)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "a kernel of %d inputs (traces name at most %d)", f->n_inputs,
                         TN_MAX_INPUTS);
    for (int k = 0; k < f->n_inputs; k++) names[k] = f->inputs[k]->name;
    return KILN_OK;
}

kiln_status tune_trace_between(kiln_ctx *ctx, const sch_trace *t, const tir_func *from, const tir_func *to,
                               sch_trace **out) {
    const char *a[TN_MAX_INPUTS], *b[TN_MAX_INPUTS];
    if (from->n_inputs != to->n_inputs)
        return kiln_fail(ctx, KILN_ERR_INVALID, "a trace of a %d-input kernel for one of %d inputs", from->n_inputs,
                         to->n_inputs);
    kiln_status s = input_names(ctx, from, a);
    if (!s) s = input_names(ctx, to, b);
    return s ? s : sch_trace_rename(ctx, t, from->n_inputs, a, b, out);
}

/* Between f's input names and positional ones, either way. */
static kiln_status rename_positional(kiln_ctx *ctx, const sch_trace *t, const tir_func *f, bool to_positional,
                                     sch_trace **out) {
    const char *names[TN_MAX_INPUTS], *pos[TN_MAX_INPUTS];
    char buf[TN_MAX_INPUTS][16];
    kiln_status s = input_names(ctx, f, names);
    if (s) return s;
    positional(f->n_inputs, buf, pos);
    return sch_trace_rename(ctx, t, f->n_inputs, to_positional ? names : pos, to_positional ? pos : names, out);
}

kiln_status tune_trace_canonical(kiln_ctx *ctx, const sch_trace *t, const tir_func *f, sch_trace **out) {
    return rename_positional(ctx, t, f, true, out);
}

kiln_status tune_trace_for(kiln_ctx *ctx, const sch_trace *t, const tir_func *f, sch_trace **out) {
    return rename_positional(ctx, t, f, false, out);
}
