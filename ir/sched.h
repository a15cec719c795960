/*
** sched.h — schedules as traces, and their lowering to the loop IR.
**
** A schedule transforms a tir_func's loop structure without changing what it
** computes. It is recorded as a trace: the ordered primitive applications
** with their parameters, plain data with a stable text form, one step a line:
**
**   # kiln trace 1
**   split        C i [32] -> io ii
**   split        C j [64 16] -> jo jm ji
**   reorder      C io jo k ii jm ji
**   cache_write  C local at jo
**   vectorize    C ji
**   unroll       C jm
**   parallel     C io
**   inline       relu
**
** Stages and axes are named: stage names are the tir stages' names, root
** axes the stage's ex_var names; the names after "->" name the new axes (or
** stages) a step creates. Replaying a trace on the same tir_func gives the
** same loop IR, bit for bit. An invalid step (an axis that no longer exists,
** vectorizing a reduction axis without rfactor, a zero factor, compute_at a
** loop that does not enclose the consumer's use) is a clear error naming the
** line, the step and the reason.
*/
#ifndef KILN_SCHED_H
#define KILN_SCHED_H

#include "lir.h"
#include "tir.h"

typedef enum sch_prim {
    SCH_SPLIT,          /* split S ax [f1 f2 ..] -> o m .. i : inner factors, outer gets the rest */
    SCH_FUSE,           /* fuse S a b -> ab (adjacent axes) */
    SCH_REORDER,        /* reorder S a b c ..: the new order of (a subset of) the leaf axes */
    SCH_TILE,           /* tile S x y [fx fy] -> xo yo xi yi (split both, reorder) */
    SCH_VECTORIZE,      /* vectorize S ax */
    SCH_UNROLL,         /* unroll S ax */
    SCH_PARALLEL,       /* parallel S ax */
    SCH_COMPUTE_AT,     /* compute_at S T ax: compute S inside T's loop ax */
    SCH_COMPUTE_INLINE, /* inline S */
    SCH_CACHE_READ,     /* cache_read S T scope -> S_T : stage T reads S through a copy */
    SCH_CACHE_WRITE,    /* cache_write S scope at ax -> S_local : accumulate in scope, write back at ax */
    SCH_RFACTOR,        /* rfactor S rax -> S_rf : factor a reduction axis into a new stage */
    SCH_STORAGE_ALIGN,  /* storage_align S dim [factor offset] */
    SCH_PACK,           /* pack INPUT [...]: re-layout a constant input at compile time */
    SCH_BIND,           /* bind S ax blockIdx.x|threadIdx.y|... */
    SCH_PRIM_COUNT
} sch_prim;

#define SCH_MAX_NAMES 12
#define SCH_MAX_INTS 8

typedef struct sch_step {
    sch_prim prim;
    const char *stage;
    int n_axes;
    const char *axes[SCH_MAX_NAMES]; /* axes (or stages) the step reads */
    int n_ints;
    int64_t ints[SCH_MAX_INTS];      /* factors, offsets */
    const char *arg;                 /* scope, target stage, bind tag */
    int n_outs;
    const char *outs[SCH_MAX_NAMES]; /* names it creates */
    int line;                        /* source line when parsed, for messages */
} sch_step;

typedef struct sch_trace {
    kiln_arena *arena;
    int n_steps, cap_steps;
    sch_step *steps;
} sch_trace;

sch_trace *sch_trace_new(void);
void sch_trace_free(sch_trace *t);
/* Appends a copy of the step (names are copied into the trace's arena). */
kiln_status sch_trace_add(kiln_ctx *ctx, sch_trace *t, const sch_step *s);
kiln_status sch_trace_parse(kiln_ctx *ctx, const char *text, sch_trace **out);
void sch_trace_print(FILE *out, const sch_trace *t);
const char *sch_prim_name(sch_prim p);

/* A copy of t for a function whose inputs from[i] are named to[i] (the
** same workload with other value names): the tensor of each pack and
** cache_read renamed, and the names those steps derive from it ("W_packed"). */
kiln_status sch_trace_rename(kiln_ctx *ctx, const sch_trace *t, int n, const char *const *from,
                             const char *const *to, sch_trace **out);
/* Applies the trace to the function and lowers the result to the loop IR
** (the default nest when the trace is empty: every stage a root loop nest in
** its axes' order, reductions initialised before their loops). */
kiln_status sch_lower(kiln_ctx *ctx, const tir_func *f, const sch_trace *t, lir_func **out);

#endif
