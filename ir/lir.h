/*
** lir.h — the loop IR: an explicit loop nest over flat buffers.
**
** A lir_func is one kernel: argument buffers (the kernel's inputs, then its
** outputs, all in global scope), local or shared buffers it allocates, and a
** body statement. Loops run var over [min, min + extent) and carry a kind:
** serial, parallel (run by the runtime's thread pool), vectorized (the body
** is executed as vector lanes by the backend), unrolled, or bound to a GPU
** block/thread index. Loads (ex_expr EX_LOAD with a buffer) and stores take
** one flat element index. Guards are IF statements. Barriers synchronise the
** threads of a GPU block.
**
** The same lir_func is executed by the loop-IR interpreter (lir_interp.c, the
** checker of schedules, GPU-bound nests included), compiled to LLVM IR
** (codegen/cg_llvm_*) and printed as CUDA C (later).
*/
#ifndef KILN_LIR_H
#define KILN_LIR_H

#include "expr.h"

typedef enum lir_loop_kind {
    LIR_SERIAL = 0,
    LIR_PARALLEL,
    LIR_VECTORIZED,
    LIR_UNROLLED,
    LIR_GPU_BLOCK_X, LIR_GPU_BLOCK_Y, LIR_GPU_BLOCK_Z,
    LIR_GPU_THREAD_X, LIR_GPU_THREAD_Y, LIR_GPU_THREAD_Z,
    LIR_LOOP_KIND_COUNT
} lir_loop_kind;

typedef enum lir_scope { LIR_SCOPE_GLOBAL = 0, LIR_SCOPE_SHARED, LIR_SCOPE_LOCAL } lir_scope;

typedef struct lir_buffer {
    const char *name;
    kiln_dtype dtype;
    int64_t size;    /* elements */
    lir_scope scope;
    int arg_index;   /* position among the function's arguments, or -1 */
    int align;       /* bytes; 0 = the dtype's natural alignment */
    const kiln_tensor *constant; /* argument bound to constant data (packed weights), or NULL */
    int id;
} lir_buffer;

typedef enum lir_kind { LIR_FOR, LIR_STORE, LIR_ALLOC, LIR_IF, LIR_SEQ, LIR_BARRIER, LIR_NOP } lir_kind;

typedef struct lir_stmt {
    lir_kind kind;
    /* LIR_FOR */
    const ex_var *var;
    ex_expr *min, *extent;
    lir_loop_kind loop;
    /* LIR_STORE: buffer[index] = value; LIR_ALLOC: buffer lives in body */
    const lir_buffer *buffer;
    ex_expr *index, *value;
    /* LIR_IF */
    ex_expr *cond;
    /* LIR_FOR, LIR_ALLOC, LIR_IF (then) */
    struct lir_stmt *body;
    struct lir_stmt *else_body;
    /* LIR_SEQ */
    int n_stmts;
    struct lir_stmt **stmts;
} lir_stmt;

typedef struct lir_func {
    kiln_arena *arena;
    ex_builder eb;
    const char *name;
    int n_args, cap_args;
    lir_buffer **args; /* inputs first, then outputs */
    int n_inputs;
    int n_buffers, cap_buffers;
    lir_buffer **buffers; /* every buffer, arguments included */
    lir_stmt *body;
} lir_func;

lir_func *lir_func_new(const char *name);
void lir_func_free(lir_func *f);
lir_buffer *lir_buffer_new(lir_func *f, const char *name, kiln_dtype dt, int64_t size, lir_scope scope);
/* Appends an argument buffer (global scope). */
lir_buffer *lir_arg_new(lir_func *f, const char *name, kiln_dtype dt, int64_t size, bool is_input);

/* Statement constructors (NULL on failure, sticky in f->eb.failed). */
lir_stmt *lir_for(lir_func *f, const ex_var *v, ex_expr *min, ex_expr *extent, lir_loop_kind k, lir_stmt *body);
lir_stmt *lir_store(lir_func *f, const lir_buffer *b, ex_expr *index, ex_expr *value);
lir_stmt *lir_alloc(lir_func *f, const lir_buffer *b, lir_stmt *body);
lir_stmt *lir_if(lir_func *f, ex_expr *cond, lir_stmt *then_s, lir_stmt *else_s);
lir_stmt *lir_seq(lir_func *f, lir_stmt *const *stmts, int n);
lir_stmt *lir_barrier(lir_func *f);

/* Prints the nest:  for i in [0, 128) parallel: ...  */
void lir_print(FILE *out, const lir_func *f);
const char *lir_loop_kind_name(lir_loop_kind k);

/* Checks structure: variables bound by an enclosing loop, buffers in scope,
** dtypes agree, vectorized loops have a constant extent. */
kiln_status lir_verify(kiln_ctx *ctx, const lir_func *f);

/* The arithmetic simplifier: constant folding, affine index algebra, and
** bound analysis that removes guards that cannot fail. Rewrites f->body. */
kiln_status lir_simplify(kiln_ctx *ctx, lir_func *f);

/* ---- arithmetic on index expressions (lir_simplify.c) ----
** Used by lir_simplify and by schedule lowering (bound inference). */

/* A variable known to take the values [min, min + extent). */
typedef struct lir_var_range {
    const ex_var *var;
    int64_t min, extent;
} lir_var_range;

/* e simplified: constants folded, i64 sums in the canonical affine form
** (terms var*coef ordered by variable, then the constant), floordiv,
** floormod, min, max and comparisons decided by the variables' ranges.
** New nodes come from b; NULL when b fails. */
ex_expr *lir_simplify_expr(ex_builder *b, ex_expr *e, const lir_var_range *ranges, int n);

/* Constant bounds of an integer expression over the ranges (interval
** arithmetic); false when unknown. */
bool lir_expr_bounds(const ex_expr *e, const lir_var_range *ranges, int n, int64_t *lo, int64_t *hi);

/* Bounds of e while the variables in relax[] take every value of their
** range and the other variables stay fixed: *lo is an expression in the
** fixed variables and *extent the constant number of values between the
** smallest and the largest. False when e is not of that form (e.g. a term
** mixes relaxed and fixed variables non-linearly). */
bool lir_relaxed_bounds(ex_builder *b, ex_expr *e, const lir_var_range *ranges, int n,
                        const ex_var *const *relax, int n_relax, ex_expr **lo, int64_t *extent);

/* Runs the nest on the CPU. args[i] points at the data of argument i
** (n_args entries). Every load and store is bounds-checked against its
** buffer (an out-of-range access is a KILN_ERR_INTERNAL error naming the
** buffer and the index, never a crash); GPU-bound loops run every thread of a
** block phase by phase between barriers. */
kiln_status lir_interp_run(kiln_ctx *ctx, const lir_func *f, void *const *args);

#endif
