/*
** templates.c — default CPU schedules. Until the per-class templates land,
** every kernel gets the default loop nest (an empty trace).
*/
#include "templates.h"

#include "ir/ctx.h"

kiln_status tune_default_trace(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                               sch_trace **out) {
    (void)f;
    (void)target;
    sch_trace *t = sch_trace_new();
    if (!t) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory creating a trace");
    *out = t;
    return KILN_OK;
}
