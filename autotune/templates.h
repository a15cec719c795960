/*
** templates.h — schedule templates: per op class and target, a search space
** of knobs (tile sizes, unroll depth, vector width, parallel axes, staging)
** and a function from knob values to a trace. The default knob choice gives
** decent code without tuning.
**
** A template is chosen by the kernel's stage tags and shapes (the first of
** matmul, conv, pool, reduce, elemwise that applies; "default", the empty
** trace, when none does). Its space is a list of named knobs, each with the
** values it may take; the space is a pure function of the tir_func and the
** target, so a point (one value per knob, in knob order) replays to the same
** trace. EVERY point of a space gives a valid trace that computes the same
** function as the default nest: the autotuner samples points freely.
**
**   tune_space sp;
**   int64_t knobs[TUNE_MAX_KNOBS];
**   tune_space_for(ctx, f, &target, &sp);      // "matmul": tile_i, tile_j, ...
**   tune_space_default(&sp, knobs);            // the default point
**   knobs[tune_knob_index(&sp, "tile_i")] = 4; // any listed value
**   tune_trace_from_knobs(ctx, f, &target, &sp, knobs, &trace);
*/
#ifndef KILN_TEMPLATES_H
#define KILN_TEMPLATES_H

#include "codegen/cg_llvm.h"
#include "ir/sched.h"

#define TUNE_MAX_KNOBS 16
#define TUNE_MAX_VALUES 32

typedef struct tune_knob {
    const char *name; /* static string */
    int n_values;     /* >= 1 */
    int64_t values[TUNE_MAX_VALUES];
    int default_index;
} tune_knob;

typedef struct tune_space {
    const char *template_name; /* static string */
    int template_id;           /* which template made it (private to templates.c) */
    int n_knobs;
    tune_knob knobs[TUNE_MAX_KNOBS];
} tune_space;

/* The template that applies to f on this target and its knobs. Fails only
** when out of memory or for a function sch_lower would refuse. */
kiln_status tune_space_for(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target, tune_space *out);

/* The default point: knob_values[k] = the default value of knob k. */
void tune_space_default(const tune_space *s, int64_t *knob_values);

/* The trace of one point of the space (knob_values in knob order, each one
** of its knob's values; anything else is KILN_ERR_INVALID naming the knob).
** s must come from tune_space_for on the same f and target. */
kiln_status tune_trace_from_knobs(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                                  const tune_space *s, const int64_t *knob_values, sch_trace **out);

/* The number of points (the product of the knobs' value counts, saturating
** at UINT64_MAX). */
uint64_t tune_space_size(const tune_space *s);

/* The index of the knob named `name`, or -1. */
int tune_knob_index(const tune_space *s, const char *name);

/* "matmul tile_i=6 tile_j=64 ..." into buf (truncated to n bytes). */
const char *tune_point_str(const tune_space *s, const int64_t *knob_values, char *buf, size_t n);

/* The default schedule of a kernel for a CPU target: the template chosen by
** the stages' tags with its default knobs. Always succeeds with a valid
** trace for any tir_func that tir_verify accepts (possibly empty: should a
** template fail on some function, that function gets the default nest;
** tune_trace_from_knobs reports such a failure). */
kiln_status tune_default_trace(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                               sch_trace **out);

#endif
