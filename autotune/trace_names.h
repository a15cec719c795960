/*
** trace_names.h — traces that do not depend on value names. A workload's
** hash leaves out the names of its inputs (the twelfth layer's weights run
** the first layer's kernel), but a trace that packs or caches an input
** names it. These move a trace between functions of one workload by input
** position, and write records with positional names ($in0, $in1, ...) that
** any function of the workload reads back. Prefix: tune_.
*/
#ifndef KILN_TRACE_NAMES_H
#define KILN_TRACE_NAMES_H

#include "ir/sched.h"
#include "ir/tir.h"

/* t, made for `from`, for `to` (same inputs in the same order). */
kiln_status tune_trace_between(kiln_ctx *ctx, const sch_trace *t, const tir_func *from, const tir_func *to,
                               sch_trace **out);
/* t, made for f, with f's input names replaced by positional ones. */
kiln_status tune_trace_canonical(kiln_ctx *ctx, const sch_trace *t, const tir_func *f, sch_trace **out);
/* A trace with positional input names for f (a trace with f's own names
** comes back the same). */
kiln_status tune_trace_for(kiln_ctx *ctx, const sch_trace *t, const tir_func *f, sch_trace **out);

#endif
