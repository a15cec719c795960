/*
** cg_llvm_internal.h — shared state of the CPU backend's files (not an API).
**
** cg_llvm_emit.c builds one LLVM module from lir_funcs: every kernel becomes
** `void NAME(void *const *args)`, a thin wrapper that loads the argument
** pointers and calls `NAME.body`, whose pointer parameters carry `noalias`
** and `align` (the wrapper is inlined away, the attributes become alias
** scopes and alignment facts). Parallel loops are outlined the same way:
** `NAME_parK(closure, begin, end)` loads the captured values and calls
** `NAME_parK.body`. Statements are emitted by cg_llvm_stmt.c, expressions
** by cg_llvm_expr.c, dtype conversions by cg_llvm_conv.c, vector memory
** accesses and the vectorization checks by cg_llvm_vec.c, math functions
** by cg_llvm_math.c.
**
** Semantics of generated code: those of the loop-IR interpreter
** (ir/lir_interp.c), the oracle the tests compare with, except where noted:
**  - argument buffers never overlap (they are declared noalias);
**  - integer arithmetic wraps; bool is a 1-bit unsigned integer whose
**    results mean "!= 0" (so x + y is x || y);
**  - integer division or remainder by zero gives 0 instead of trapping (the
**    interpreter reports an error); MIN / -1 wraps to MIN, MIN % -1 is 0;
**    floor division/modulo round toward negative infinity;
**  - a shift by a count outside [0, width) gives 0 (>> of a negative signed
**    value: -1);
**  - float -> int casts truncate and saturate, NaN gives 0; float -> bool is
**    x != 0, so NaN is true (as C, numpy and the Cast kernel; the
**    interpreter says false);
**  - math functions of integers run in f64 and saturate back;
**  - min/max of floats: NaN if either input is NaN, else x if strictly
**    smaller (larger), else y;
**  - f16/bf16 values are computed in f32 and rounded when stored or cast
**    (the interpreter rounds after every operation); f64 -> f16 rounds
**    through f32;
**  - a select evaluates only the chosen side's loads, and bool && / ||
**    skip their right side's loads when the left decides (other operands
**    are evaluated eagerly: nothing else can trap);
**  - vector lanes and parallel iterations run unordered where the result
**    cannot tell: a vectorized loop whose iterations may interfere (a
**    stored buffer read at another index, a store whose index does not vary
**    with the lane) is emitted as a serial loop.
*/
#ifndef KILN_CG_LLVM_INTERNAL_H
#define KILN_CG_LLVM_INTERNAL_H

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/cg_llvm.h"
#include "ir/ctx.h"
#include "ir/dtype.h"

/* A value in registers: a scalar, or a vector of cg_emit.width lanes. */
typedef struct cg_val {
    LLVMValueRef v;
    bool vec;
} cg_val;

/* A loop variable in scope. In a vectorized loop the loop's own variable is
** bound with vec = true and v = the scalar value of lane 0. */
typedef struct cg_bind {
    const ex_var *var;
    LLVMValueRef v;
    bool vec;
} cg_bind;

typedef struct cg_memo {
    const ex_expr *e;
    int mode;
    cg_val val;
} cg_memo;

typedef struct cg_emit {
    kiln_ctx *ctx;
    const cg_options *opt;
    LLVMContextRef c;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    const lir_func *f;
    LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f16, t_f32, t_f64, t_ptr;
    bool f16c; /* the target converts f16 <-> f32 in hardware */
    /* the LLVM function being emitted */
    LLVMValueRef fn;
    LLVMBasicBlockRef alloca_bb;
    LLVMValueRef *bufs; /* by lir_buffer id; NULL: not in scope */
    cg_bind *binds;
    int n_binds, cap_binds;
    /* inside a vectorized loop: its width and variable, and the lanes that
    ** run (NULL: all) */
    int width;
    const ex_var *vvar;
    LLVMValueRef mask;
    bool scalar_index; /* evaluate the vectorized variable as lane 0 */
    bool index_mode;   /* emitting an index: i64 arithmetic cannot overflow */
    /* values of the expressions emitted so far in this statement */
    cg_memo *memo;
    int n_memo, cap_memo;
    int n_par;
} cg_emit;

/* ---- cg_llvm_target.c ---- */
void cg_llvm_init(void);
/* A target machine for o->target (PIC relocations); dispose with
** LLVMDisposeTargetMachine. */
kiln_status cg_llvm_target_machine(kiln_ctx *ctx, const cg_options *o, LLVMTargetMachineRef *out);
/* Whether the feature string enables `name` (e.g. "f16c"). */
bool cg_target_has(const cg_cpu_target *t, const char *name);
/* Turns an LLVMErrorRef into a kiln_fail message (consumes it). */
kiln_status cg_llvm_error(kiln_ctx *ctx, kiln_status s, LLVMErrorRef err, const char *what);

/* ---- cg_llvm_emit.c ---- */
/* Emits the kernels into a new module in context c, verifies it and, when
** optimize, runs the O-level pipeline with tm. */
kiln_status cg_llvm_build(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o,
                          LLVMContextRef c, LLVMTargetMachineRef tm, bool optimize,
                          LLVMModuleRef *out);
/* Emits `fn_name` as an internal function whose parameters are the
** buffers and variables in scope, then `n_extra` i64 parameters; on return
** the builder sits in its body with everything bound. Restore the caller's
** state with cg_fn_leave. */
typedef struct cg_fn_saved {
    LLVMValueRef fn;
    LLVMBasicBlockRef alloca_bb, insert_bb;
    LLVMValueRef *bufs;
    cg_bind *binds;
    int n_binds, cap_binds;
} cg_fn_saved;
kiln_status cg_fn_enter(cg_emit *cg, LLVMValueRef fn, LLVMBasicBlockRef alloca_bb, cg_fn_saved *saved);
void cg_fn_leave(cg_emit *cg, cg_fn_saved *saved);
/* The captured environment: buffers and scalar variables in scope. */
int cg_env_count(const cg_emit *cg, int *n_bufs, int *n_vars);
/* Creates the internal body function NAME with parameters (captures...,
** extra i64s), enters it and binds the captures. *extra gets the extra
** parameters. */
kiln_status cg_body_fn(cg_emit *cg, const char *name, int n_extra, LLVMValueRef *extra,
                       LLVMValueRef *fn_out, cg_fn_saved *saved);
/* The captured values in the order cg_body_fn's parameters take them. */
void cg_env_values(const cg_emit *cg, LLVMValueRef *vals);
LLVMTypeRef cg_env_type(const cg_emit *cg, int i);
void cg_set_fn_attrs(cg_emit *cg, LLVMValueRef fn);

/* ---- cg_llvm_stmt.c ---- */
kiln_status cg_stmt(cg_emit *cg, const lir_stmt *s);
kiln_status cg_bind_push(cg_emit *cg, const ex_var *v, LLVMValueRef val, bool vec);
void cg_bind_pop(cg_emit *cg);
const char *cg_fname(const cg_emit *cg);

/* ---- cg_llvm_expr.c ---- */
kiln_status cg_expr(cg_emit *cg, const ex_expr *e, cg_val *out);
/* An index expression (any int dtype) as an i64 value. */
kiln_status cg_index(cg_emit *cg, const ex_expr *e, cg_val *out);
void cg_memo_reset(cg_emit *cg);
int cg_memo_mark(const cg_emit *cg);
void cg_memo_release(cg_emit *cg, int mark);

/* ---- cg_llvm_conv.c ---- */
bool cg_dtype_ok(kiln_dtype t);
LLVMTypeRef cg_reg_type(cg_emit *cg, kiln_dtype t); /* scalar register type */
LLVMTypeRef cg_mem_type(cg_emit *cg, kiln_dtype t); /* scalar memory type */
int cg_dtype_align(kiln_dtype t);
LLVMTypeRef cg_vtype(cg_emit *cg, LLVMTypeRef t, bool vec);
/* Memory representation <-> register representation, scalar or vector. */
LLVMValueRef cg_from_mem(cg_emit *cg, kiln_dtype t, LLVMValueRef v);
LLVMValueRef cg_to_mem(cg_emit *cg, kiln_dtype t, LLVMValueRef v);
kiln_status cg_cast(cg_emit *cg, kiln_dtype from, kiln_dtype to, cg_val x, cg_val *out);

/* ---- cg_llvm_vec.c ---- */
bool cg_uses_var(const ex_expr *e, const ex_var *v);
/* If e is affine in v with a constant coefficient, stores it. */
bool cg_affine(const ex_expr *e, const ex_var *v, int64_t *coef);
/* Whether the vectorized loop s can run its iterations as lanes. */
bool cg_vec_legal(const lir_stmt *s);
kiln_status cg_load(cg_emit *cg, const ex_expr *e, cg_val *out);
kiln_status cg_store(cg_emit *cg, const lir_stmt *s);

/* ---- cg_llvm_math.c ---- */
/* Float unary math (exp, log, tanh, ...) on a register value of float type
** ty (float or double), scalar or vector. */
kiln_status cg_math_unary(cg_emit *cg, ex_fn fn, LLVMTypeRef ty, cg_val x, LLVMValueRef *out);
kiln_status cg_math_pow(cg_emit *cg, LLVMTypeRef ty, cg_val x, cg_val y, LLVMValueRef *out);
/* kiln's own f32 approximations (any vector width; width 0: scalar). */
LLVMValueRef cg_vmath(cg_emit *cg, ex_fn fn, LLVMValueRef x, int width);

/* ---- cg_llvm_util.c ---- */
LLVMValueRef cg_intrin(cg_emit *cg, const char *name, LLVMTypeRef *over, int n_over,
                       LLVMValueRef *args, int n_args);
LLVMValueRef cg_call_ext(cg_emit *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                         int n_params, LLVMValueRef *args, bool pure);
/* A scalar widened to the current width (vectors pass through). */
LLVMValueRef cg_widen(cg_emit *cg, cg_val x);
LLVMValueRef cg_splat(cg_emit *cg, LLVMValueRef x, int width);
LLVMValueRef cg_lane_ids(cg_emit *cg, int width); /* <0, 1, ..., width-1> as i64 */
LLVMValueRef cg_fconst(cg_emit *cg, LLVMTypeRef ty, double v); /* ty scalar or vector */
LLVMValueRef cg_iconst(cg_emit *cg, LLVMTypeRef ty, int64_t v);
LLVMValueRef cg_fmath_flags(cg_emit *cg, LLVMValueRef inst);
LLVMBasicBlockRef cg_block(cg_emit *cg, const char *name);
LLVMValueRef cg_alloca(cg_emit *cg, LLVMTypeRef ty, int align, const char *name);
LLVMTypeRef cg_elem_type(LLVMTypeRef ty); /* scalar of a vector type, or ty */
/* A loop's self-referential metadata with one property (e.g.
** "llvm.loop.unroll.full"), attached to the branch br. */
void cg_loop_md(cg_emit *cg, LLVMValueRef br, const char *prop);

/* A debug helper: the kernels as assembly text (free with kiln_free). */
kiln_status cg_llvm_asm_text(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o,
                             char **out);

#endif
