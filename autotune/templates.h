/*
** templates.h — schedule templates: per op class and target, a search space
** of knobs (tile sizes, unroll depth, vector width, parallel axes, staging)
** and a function from knob values to a trace. The default knob choice gives
** decent code without tuning.
*/
#ifndef KILN_TEMPLATES_H
#define KILN_TEMPLATES_H

#include "codegen/cg_llvm.h"
#include "ir/sched.h"

/* The default schedule of a kernel for a CPU target: the template chosen by
** the stages' tags with its default knobs. Always succeeds with a valid
** trace for any tir_func that tir_verify accepts (possibly empty). */
kiln_status tune_default_trace(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                               sch_trace **out);

#endif
