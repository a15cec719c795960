/*
** tmpl_internal.h — private to autotune/templates.c and autotune/tmpl_*.c:
** the template table, a trace builder that checks every step against the
** schedule state as it is made, and the analyses templates share.
**
** A template has two functions. `space` looks at the function and fills
** the knobs (or says it does not apply); `trace` turns one point of that
** space into steps through the builder. Both must be deterministic, and
** `trace` must make a valid trace for EVERY point: a knob value that makes
** no sense for this shape is clamped or ignored, never an error.
*/
#ifndef KILN_TMPL_INTERNAL_H
#define KILN_TMPL_INTERNAL_H

#include "ir/sched_internal.h"
#include "templates.h"

/* ---- the trace builder (tmpl_build.c) ----
** Each step is appended to the trace and applied to a schedule state, the
** one sch_lower replays; the names the state gives to new axes and stages
** are written into the step and returned (they live in the trace's arena).
** Errors are sticky: after the first failure every call does nothing and
** returns NULL. */
typedef struct tb {
    kiln_ctx *ctx;
    const tir_func *f;
    sch_state st;
    sch_trace *t;
    kiln_status err;
    bool st_live;
} tb;

kiln_status tb_init(tb *b, kiln_ctx *ctx, const tir_func *f);
/* Hands the trace to *out (on success) and releases the rest. */
kiln_status tb_finish(tb *b, sch_trace **out);
void tb_release(tb *b);

sch_stage *tb_stage(tb *b, const char *name);
sch_ivar *tb_leaf(tb *b, const char *stage, const char *axis);
int64_t tb_extent(tb *b, const char *stage, const char *axis);

/* split S ax [f1 .. fn]: outs[0..n] get the new axes, outer to inner. */
bool tb_split(tb *b, const char *stage, const char *axis, int n, const int64_t *factors, const char **outs);
/* split S ax [f] -> *o *i */
bool tb_split1(tb *b, const char *stage, const char *axis, int64_t factor, const char **o, const char **i);
/* fuse of n adjacent leaves (n == 1: returns the axis itself, no step). */
const char *tb_fuse(tb *b, const char *stage, int n, const char *const *axes);
bool tb_reorder(tb *b, const char *stage, int n, const char *const *axes);
bool tb_vectorize(tb *b, const char *stage, const char *axis);
bool tb_unroll(tb *b, const char *stage, const char *axis);
bool tb_parallel(tb *b, const char *stage, const char *axis);
bool tb_compute_at(tb *b, const char *stage, const char *target, const char *axis);
bool tb_inline(tb *b, const char *stage);
/* cache_write S local [at ax] (ax NULL: the whole stage); the cache's name. */
const char *tb_cache_write(tb *b, const char *stage, const char *axis);
/* cache_read T R local (at the root): R reads tensor T through a copy;
** the copy stage's name. */
const char *tb_cache_read(tb *b, const char *tensor, const char *reader);
/* rfactor S rax; the new stage's name. */
const char *tb_rfactor(tb *b, const char *stage, const char *raxis);
/* pack INPUT [dim factor]; the packed name. */
const char *tb_pack(tb *b, const char *input, int dim, int64_t factor);

/* The stage's body with the stages inlined so far substituted (what its
** loops will compute); NULL when the stage is missing or out of memory. */
const ex_expr *tb_body(tb *b, const char *stage);
/* Whether any step has scheduled the stage (split, fused, reordered,
** annotated, attached, cached, or holding another stage); a missing stage
** counts as touched. */
bool tb_touched(tb *b, const char *stage);
/* The leaves of a stage, outermost first (names in the state). */
int tb_leaves(tb *b, const char *stage, const char **names, int cap);

/* Intermediate tensors computed at the root live on the kernel's stack
** (the CPU backend allows a few MiB): larger ones are inlined or computed
** per tile. */
#define TMPL_ROOT_MAX_BYTES (2 << 20)

/* Starting a parallel loop costs tens of microseconds (waking the pool's
** threads): below these amounts of work a kernel is faster on one thread. */
#define TMPL_PAR_MIN_ELEMS (1 << 18) /* elementwise: elements */
#define TMPL_PAR_MIN_WORK (1 << 19)  /* reductions and pools: elements times taps */
#define TMPL_PAR_MIN_MACS (1 << 21)  /* matmul and conv: multiply-adds */

/* ---- knobs (templates.c) ---- */

/* Adds a knob; the default is the listed value equal to `def` (else the
** first). Values beyond TUNE_MAX_VALUES are dropped; duplicates kept out. */
void tmpl_knob(tune_space *s, const char *name, int n, const int64_t *values, int64_t def);
/* The value of knob `name` at the point, or `fallback` when the space has
** no such knob. */
int64_t tmpl_val(const tune_space *s, const int64_t *point, const char *name, int64_t fallback);

/* ---- analyses (tmpl_util.c) ---- */

/* Vector lanes of the target for elements of `bytes` bytes (>= 1). */
int tmpl_lanes(const cg_cpu_target *t, int bytes);
/* The largest element size a stage stores or loads, in bytes. */
int tmpl_elem_bytes(const tir_stage *s);

/* How a stage's loads index memory as axis variable v moves by one. */
typedef struct tmpl_access {
    int contiguous; /* loads whose flat index moves by 1 */
    int uniform;    /* loads that do not depend on v */
    int strided;    /* loads that move by a constant other than 0 and 1 */
    int general;    /* loads whose index is not affine in v (gathers) */
} tmpl_access;
tmpl_access tmpl_access_of(const tir_stage *s, const ex_var *v);
/* The same, leaving out the loads of tensor skip. */
tmpl_access tmpl_access_skip(const tir_stage *s, const ex_var *v, const tir_tensor *skip);
/* The same for an expression (a body with producers inlined). */
tmpl_access tmpl_access_expr(const ex_expr *body, const ex_var *v);

/* The first axis k such that s's axes k..n-1 can be fused into one loop
** whose loads still move contiguously (or not at all): body's loads are
** affine over them and agree with a row-major walk. n-1 when none can. */
int tmpl_flat_suffix(const ex_expr *body, const tir_stage *s);

/* Whether the function's stage and axis names are unambiguous (what the
** trace names must resolve to). A template applies only then. */
bool tmpl_names_ok(const tir_func *f);
bool tmpl_is_output(const tir_func *f, const tir_tensor *t);
/* Stages of f that read tensor t (up to cap); the count. */
int tmpl_readers(const tir_func *f, const tir_tensor *t, const tir_stage **out, int cap);
bool tmpl_reads(const ex_expr *e, const tir_tensor *t);
bool tmpl_uses_var(const ex_expr *e, const ex_var *v);
int64_t tmpl_numel(const tir_tensor *t);
/* Multiply-adds (or elements times reduction size) of a stage. */
int64_t tmpl_work(const tir_stage *s);
/* A vectorized tile: `tile` lanes in vectors of `vlen` (tile a multiple of
** vlen: LLVM splits vectors of other widths into odd pieces). */
typedef struct tmpl_vtile {
    int64_t tile, vlen;
} tmpl_vtile;
/* The tile of an axis of extent ext, about `want` lanes wide, for a target
** of `lanes` lanes. With `divide` (register tiles: a masked lane would keep
** the accumulators out of registers) the widest whole number of vectors
** (of lanes, else half or a quarter of it) that divides ext; without (or
** when none does), the widest tile that pads the axis little. An axis no
** longer than one vector is one tile. */
tmpl_vtile tmpl_vec_tile(int64_t ext, int64_t want, int lanes, bool divide);
/* The largest of cands[] that divides n and is <= n, or 0. */
int64_t tmpl_divisor(int64_t n, const int64_t *cands, int n_cands);

/* A constant input that e reads with the plain variable v at one index
** (and v in no other index), its dimension in *dim; NULL if none. */
const tir_tensor *tmpl_packable(const ex_expr *e, const ex_var *v, int *dim);
/* The output stage of an anchor stage A (matmul, conv): A itself when it is
** the only output, or the last stage when every stage after A is
** elementwise over A's shape, reads A and the stages between at its own
** index, and only the last is an output. NULL otherwise. */
const tir_stage *tmpl_epilogue(const tir_func *f, const tir_stage *A);

/* ---- schedules templates share (tmpl_util.c) ---- */

typedef struct tmpl_gen {
    int64_t vec;      /* inner vector extent; 0: no vectorization */
    int lanes;        /* of the target's vector for the stage's elements */
    bool parallel;    /* a parallel outer loop */
    bool cache;       /* reductions accumulate in a local tile */
    bool rfactor;     /* inner reductions as vector partial sums */
} tmpl_gen;

/* The default generic options for a root stage. */
tmpl_gen tmpl_gen_default(const tir_stage *s, const cg_cpu_target *t);
/* The generic options of stage s at a point of a space with the knobs
** "vectors", "parallel", "rfactor", "cache" (those it has). */
tmpl_gen tmpl_gen_at(const tir_stage *s, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt);

/* Schedules one stage computed at the root (or, with attached, inside
** another stage's loop: no parallel loop then): spatial axes fused outside
** a vectorized inner tile of the innermost axis, reductions inside the tile
** (a vector accumulator) or, for reductions over the contiguous innermost
** axis, as vector partial sums (rfactor). Returns the name of the stage's
** outermost spatial loop after the schedule (NULL: none). */
const char *tmpl_sched_stage(tb *b, const tir_stage *s, const tmpl_gen *g, bool attached);

/* Schedules every stage of f not yet touched (root, not inlined, never
** split): tmpl_sched_stage with tmpl_gen_at's options. */
void tmpl_sched_rest(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt);

/* Inlines the stages that can be (not outputs, not reductions) and whose
** every reader is elementwise or injective. `keep` (may be NULL) is not
** inlined. Returns how many were inlined. */
int tmpl_inline_chains(tb *b, const tir_func *f, const tir_stage *keep);

/* ---- the templates ---- */

typedef struct tmpl_def {
    const char *name;
    /* Fills the knobs; *applies false when the template does not fit f. */
    kiln_status (*space)(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies);
    /* Steps for one point of the space. */
    void (*trace)(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *point);
} tmpl_def;

extern const tmpl_def tmpl_matmul;
extern const tmpl_def tmpl_conv;
extern const tmpl_def tmpl_pool;
extern const tmpl_def tmpl_winograd;
extern const tmpl_def tmpl_reduce;
extern const tmpl_def tmpl_elemwise;

#endif
