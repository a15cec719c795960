/*
** sched_internal.h — private to ir/sched_*.c: the schedule state a trace
** is applied to (stages with iteration variables and their split/fuse
** relations, attach points, caches), and the pieces of lowering.
**
** The semantics of each primitive are written at the top of sched_lower.c.
*/
#ifndef KILN_SCHED_INTERNAL_H
#define KILN_SCHED_INTERNAL_H

#include "sched.h"

/* ---- trace helpers (sched_trace.c) ---- */

/* The step in one line, for messages ("split C i [32] -> io ii"). */
const char *sch_step_str(const sch_step *s, char *buf, size_t n);
bool sch_scope_from_name(const char *s, lir_scope *out);
bool sch_bind_tag(const char *s, lir_loop_kind *out);

/* ---- schedule state (sched_state.c) ---- */

/* An iteration variable of a stage: a root axis, or one made by split or
** fuse. Leaves are the loops a stage's nest has, in the stage's order. */
typedef struct sch_ivar {
    const char *name;
    bool reduce;
    bool leaf;
    int index;          /* position in its stage's ivars */
    int root;           /* a root: its axis (spatial 0..n_axes-1, then reduce); else -1 */
    int64_t ext;        /* extent over the full domain (lowering recomputes it) */
    lir_loop_kind kind; /* annotation */
    int kind_step;      /* step that annotated it, -1 */
    int gone_step;      /* step that split or fused it away, -1 */
} sch_ivar;

typedef enum sch_rel_kind { SCH_REL_SPLIT, SCH_REL_FUSE } sch_rel_kind;

/* split: parent -> outer * factor + inner; fuse: (outer, inner) -> fused
** (stored in parent). */
typedef struct sch_rel {
    sch_rel_kind kind;
    sch_ivar *parent, *outer, *inner;
    int64_t factor;
} sch_rel;

typedef enum sch_attach { SCH_ROOT, SCH_INLINE, SCH_AT } sch_attach;

typedef struct sch_stage {
    const char *name;
    tir_tensor *out;
    int n_axes;
    ex_var **axes;
    int n_raxes;
    ex_var **raxes;
    ex_expr *body;
    tir_tag tag;
    bool is_output;
    /* iteration variables (roots first) and relations in creation order */
    int n_ivars, cap_ivars;
    sch_ivar **ivars;
    int n_rels, cap_rels;
    sch_rel *rels;
    int n_leaves;
    sch_ivar **leaves; /* capacity n_ivars */
    int cap_leaves;
    /* where it is computed */
    sch_attach attach;
    struct sch_stage *at_stage;
    sch_ivar *at_ivar;
    int attach_step;
    /* memory */
    bool scope_set;
    lir_scope scope;
    int64_t align_factor[KILN_MAX_RANK], align_offset[KILN_MAX_RANK]; /* factor 0: none */
    /* cache_write */
    bool cw;
    lir_scope cw_scope;
    sch_ivar *cw_at; /* NULL: the whole stage */
    const char *cw_name;
    int cw_step;
    int id; /* creation order, for determinism */
} sch_stage;

/* A placeholder and its compile-time re-layout (pack). */
typedef struct sch_input {
    tir_tensor *t;
    int pack_dim; /* -1: not packed */
    int64_t pack_factor;
    const char *pack_name;
    int pack_step;
} sch_input;

typedef struct sch_state {
    kiln_ctx *ctx;
    const tir_func *f;
    kiln_arena *arena; /* new stages, tensors and bodies */
    ex_builder eb;
    int n_stages, cap_stages;
    sch_stage **stages; /* topological order */
    int n_inputs;
    sch_input *inputs;
    int next_stage_id;
    /* the trace, and the step being applied, for messages */
    const sch_step *steps;
    int n_steps;
    const sch_step *step;
    int step_index;
} sch_state;

kiln_status sch_state_init(kiln_ctx *ctx, sch_state *st, const tir_func *f);
void sch_state_release(sch_state *st);
kiln_status sch_state_apply(sch_state *st, const sch_step *s, int index);

/* Fails with the step's line and text: "trace line 3 (split C i [0]): ...". */
kiln_status sch_step_fail(sch_state *st, kiln_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Names a step by its line (or its number) for messages about later steps. */
const char *sch_step_where(const sch_state *st, int step_index, char *buf, size_t n);

sch_stage *sch_stage_of_tensor(const sch_state *st, const tir_tensor *t);
sch_input *sch_input_of_tensor(const sch_state *st, const tir_tensor *t);
int sch_leaf_pos(const sch_stage *s, const sch_ivar *iv);
bool sch_reads_tensor(const ex_expr *e, const tir_tensor *t);

/* Values of every ivar given the leaves' values (vals[iv->index] for
** leaves; NULL leaves leave what depends on them NULL). */
bool sch_ivar_values(ex_builder *b, const sch_stage *s, const int64_t *ext, ex_expr **vals);

#endif
