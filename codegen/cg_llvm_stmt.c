/*
** cg_llvm_stmt.c — statements: loops of every CPU kind, stores, local
** allocations, guards.
**
** serial     a counted loop (rotated: the test sits at the bottom)
** unrolled   copied at emission when the extent is a small constant, else a
**            loop with llvm.loop.unroll.full
** vectorized the body once, as vector lanes (cg_llvm_vec.c); a loop whose
**            lanes could interfere, or whose extent is not constant, runs
**            serially; a very wide one runs as a loop of 64-lane chunks
**            and a narrower rest
** parallel   the body is outlined into NAME_parK(closure, begin, end) and run
**            by krt_parallel_for; the closure holds every buffer pointer and
**            loop variable in scope and the loop's start
*/
#include <string.h>

#include "codegen/cg_llvm_internal.h"

#define CG_UNROLL_MAX 64     /* larger unrolled loops keep their loop (with metadata) */
#define CG_VEC_MAX 256       /* wider vectorized loops run as chunks */
#define CG_VEC_CHUNK 64
#define CG_LOCAL_MAX (4 << 20) /* bytes of one local buffer, on the stack */

const char *cg_fname(const cg_emit *cg) { return cg->f ? cg->f->name : "?"; }

kiln_status cg_bind_push(cg_emit *cg, const ex_var *v, LLVMValueRef val, bool vec) {
    if (!kiln_grow((void **)&cg->binds, &cg->cap_binds, cg->n_binds + 1, sizeof(cg_bind)))
        return kiln_fail(cg->ctx, KILN_ERR_NOMEM, "out of memory emitting kernel '%s'", cg_fname(cg));
    cg->binds[cg->n_binds++] = (cg_bind){v, val, vec};
    return KILN_OK;
}

void cg_bind_pop(cg_emit *cg) { cg->n_binds--; }

/* A loop bound: uniform, i64. */
static kiln_status bound(cg_emit *cg, const ex_expr *e, LLVMValueRef *out) {
    cg_val v;
    kiln_status s = cg_index(cg, e, &v);
    if (s) return s;
    if (v.vec)
        return kiln_fail(cg->ctx, KILN_ERR_INTERNAL, "kernel '%s': a loop bound that differs between vector lanes",
                         cg_fname(cg));
    *out = v.v;
    return KILN_OK;
}

/* ---- counted loops ---- */

typedef struct cg_loop {
    LLVMBasicBlockRef header, exit;
    LLVMValueRef iv, end;
} cg_loop;

/* Starts `for (iv = begin; iv < end; iv++)`; the builder is left in the body. */
static void loop_begin(cg_emit *cg, LLVMValueRef begin, LLVMValueRef end, cg_loop *lp) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
    lp->header = cg_block(cg, "loop");
    lp->exit = cg_block(cg, "loop.end");
    lp->end = end;
    LLVMValueRef enter = LLVMBuildICmp(cg->b, LLVMIntSLT, begin, end, "");
    LLVMBuildCondBr(cg->b, enter, lp->header, lp->exit);
    LLVMPositionBuilderAtEnd(cg->b, lp->header);
    lp->iv = LLVMBuildPhi(cg->b, cg->t_i64, "iv");
    LLVMAddIncoming(lp->iv, &begin, &pre, 1);
}

static void loop_end(cg_emit *cg, cg_loop *lp, const char *md) {
    LLVMValueRef next = LLVMBuildNSWAdd(cg->b, lp->iv, LLVMConstInt(cg->t_i64, 1, 0), "");
    LLVMSetNUW(next, 1);
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(cg->b);
    LLVMValueRef br = LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, next, lp->end, ""), lp->header, lp->exit);
    if (md) cg_loop_md(cg, br, md);
    LLVMAddIncoming(lp->iv, &next, &latch, 1);
    LLVMPositionBuilderAtEnd(cg->b, lp->exit);
}

static LLVMValueRef add_min(cg_emit *cg, LLVMValueRef min, LLVMValueRef iv) {
    if (LLVMIsConstant(min) && LLVMConstIntGetSExtValue(min) == 0) return iv;
    return LLVMBuildNSWAdd(cg->b, min, iv, "");
}

static kiln_status serial_loop(cg_emit *cg, const lir_stmt *s, const char *md) {
    LLVMValueRef min, ext;
    cg_memo_reset(cg);
    kiln_status st = bound(cg, s->min, &min);
    if (!st) st = bound(cg, s->extent, &ext);
    if (st) return st;
    cg_loop lp;
    loop_begin(cg, LLVMConstInt(cg->t_i64, 0, 0), ext, &lp);
    if ((st = cg_bind_push(cg, s->var, add_min(cg, min, lp.iv), false))) return st;
    st = cg_stmt(cg, s->body);
    cg_bind_pop(cg);
    if (st) return st;
    loop_end(cg, &lp, md);
    return KILN_OK;
}

static kiln_status unrolled_loop(cg_emit *cg, const lir_stmt *s) {
    int64_t ext;
    if (!ex_is_const_int(s->extent, &ext) || ext > CG_UNROLL_MAX)
        return serial_loop(cg, s, ex_is_const_int(s->extent, &ext) ? "llvm.loop.unroll.full" : "llvm.loop.unroll.enable");
    LLVMValueRef min;
    cg_memo_reset(cg);
    kiln_status st = bound(cg, s->min, &min);
    for (int64_t i = 0; !st && i < ext; i++) {
        LLVMValueRef v = add_min(cg, min, LLVMConstInt(cg->t_i64, (unsigned long long)i, 1));
        if ((st = cg_bind_push(cg, s->var, v, false))) break;
        st = cg_stmt(cg, s->body);
        cg_bind_pop(cg);
    }
    return st;
}

/* ---- vectorized loops ---- */

static kiln_status vector_body(cg_emit *cg, const lir_stmt *s, LLVMValueRef base, int width) {
    int saved_w = cg->width;
    const ex_var *saved_v = cg->vvar;
    LLVMValueRef saved_m = cg->mask;
    cg->width = width;
    cg->vvar = s->var;
    cg->mask = NULL;
    kiln_status st = cg_bind_push(cg, s->var, base, true);
    if (!st) {
        st = cg_stmt(cg, s->body);
        cg_bind_pop(cg);
    }
    cg->width = saved_w;
    cg->vvar = saved_v;
    cg->mask = saved_m;
    return st;
}

/* The body for one lane at `base`, without vectors. */
static kiln_status scalar_body(cg_emit *cg, const lir_stmt *s, LLVMValueRef base) {
    kiln_status st = cg_bind_push(cg, s->var, base, false);
    if (st) return st;
    st = cg_stmt(cg, s->body);
    cg_bind_pop(cg);
    return st;
}

static kiln_status vector_loop(cg_emit *cg, const lir_stmt *s) {
    int64_t ext;
    /* a vectorized loop inside another one runs its iterations in order,
    ** each over the outer loop's lanes */
    if (cg->width || !ex_is_const_int(s->extent, &ext) || ext < 2 || !cg_vec_legal(s))
        return serial_loop(cg, s, NULL);
    LLVMValueRef min;
    cg_memo_reset(cg);
    kiln_status st = bound(cg, s->min, &min);
    if (st) return st;
    if (ext <= CG_VEC_MAX) return vector_body(cg, s, min, (int)ext);
    /* very wide: a loop over chunks of CG_VEC_CHUNK lanes, then the rest */
    int64_t chunks = ext / CG_VEC_CHUNK, rest = ext % CG_VEC_CHUNK;
    cg_loop lp;
    loop_begin(cg, LLVMConstInt(cg->t_i64, 0, 0), LLVMConstInt(cg->t_i64, (unsigned long long)chunks, 0), &lp);
    LLVMValueRef step = LLVMConstInt(cg->t_i64, CG_VEC_CHUNK, 0);
    if ((st = vector_body(cg, s, add_min(cg, min, LLVMBuildNSWMul(cg->b, lp.iv, step, "")), CG_VEC_CHUNK))) return st;
    loop_end(cg, &lp, NULL);
    if (!rest) return KILN_OK;
    LLVMValueRef base = add_min(cg, min, LLVMConstInt(cg->t_i64, (unsigned long long)(chunks * CG_VEC_CHUNK), 0));
    return rest == 1 ? scalar_body(cg, s, base) : vector_body(cg, s, base, (int)rest);
}

/* ---- parallel loops ---- */

static LLVMValueRef krt_parallel_for_decl(cg_emit *cg, LLVMTypeRef *fty) {
    LLVMTypeRef params[3] = {cg->t_i64, cg->t_ptr, cg->t_ptr};
    *fty = LLVMFunctionType(cg->t_void, params, 3, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, "krt_parallel_for");
    if (!fn) fn = LLVMAddFunction(cg->mod, "krt_parallel_for", *fty);
    return fn;
}

/* NAME_parK(closure, begin, end): loads the captures and calls the body. */
static void par_wrapper(cg_emit *cg, LLVMValueRef wrapper, LLVMTypeRef closure_ty, int n_env,
                        LLVMValueRef body_fn) {
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->c);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(cg->c, wrapper, "entry"));
    LLVMValueRef clo = LLVMGetParam(wrapper, 0);
    LLVMValueRef args[n_env + 3];
    for (int i = 0; i <= n_env; i++) { /* the captures, then the loop's start */
        LLVMValueRef p = LLVMBuildStructGEP2(b, closure_ty, clo, (unsigned)i, "");
        args[i] = LLVMBuildLoad2(b, LLVMStructGetTypeAtIndex(closure_ty, (unsigned)i), p, "");
    }
    args[n_env + 1] = LLVMGetParam(wrapper, 1);
    args[n_env + 2] = LLVMGetParam(wrapper, 2);
    LLVMBuildCall2(b, LLVMGlobalGetValueType(body_fn), body_fn, args, (unsigned)n_env + 3, "");
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
}

static kiln_status parallel_body(cg_emit *cg, const lir_stmt *s, LLVMValueRef *extra) {
    cg_loop lp;
    loop_begin(cg, extra[1], extra[2], &lp);
    kiln_status st = cg_bind_push(cg, s->var, add_min(cg, extra[0], lp.iv), false);
    if (st) return st;
    st = cg_stmt(cg, s->body);
    cg_bind_pop(cg);
    if (!st) loop_end(cg, &lp, NULL);
    return st;
}

static kiln_status parallel_loop(cg_emit *cg, const lir_stmt *s) {
    if (cg->width) return serial_loop(cg, s, NULL); /* cg_vec_legal never lets this happen */
    LLVMValueRef min, ext;
    cg_memo_reset(cg);
    kiln_status st = bound(cg, s->min, &min);
    if (!st) st = bound(cg, s->extent, &ext);
    if (st) return st;
    char name[512];
    snprintf(name, sizeof name, "%s_par%d", cg->f->name, cg->n_par++);
    /* the closure: captures in cg_body_fn's order, then the loop's start */
    int nb, nv, n_env = cg_env_count(cg, &nb, &nv);
    LLVMTypeRef fields[n_env + 1];
    LLVMValueRef vals[n_env + 1];
    for (int i = 0; i < n_env; i++) fields[i] = cg_env_type(cg, i);
    fields[n_env] = cg->t_i64;
    cg_env_values(cg, vals);
    vals[n_env] = min;
    LLVMTypeRef closure_ty = LLVMStructTypeInContext(cg->c, fields, (unsigned)n_env + 1, 0);
    LLVMValueRef clo = cg_alloca(cg, closure_ty, 8, "closure");
    for (int i = 0; i <= n_env; i++) LLVMBuildStore(cg->b, vals[i], LLVMBuildStructGEP2(cg->b, closure_ty, clo, (unsigned)i, ""));
    /* the body function, emitted with the captures bound to its parameters */
    char body_name[600];
    snprintf(body_name, sizeof body_name, "%s.body", name);
    LLVMValueRef extra[3], body_fn;
    cg_fn_saved saved;
    if ((st = cg_body_fn(cg, body_name, 3, extra, &body_fn, &saved))) return st;
    st = parallel_body(cg, s, extra);
    cg_fn_leave(cg, &saved);
    if (st) return st;
    LLVMTypeRef wparams[3] = {cg->t_ptr, cg->t_i64, cg->t_i64};
    LLVMValueRef wrapper = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->t_void, wparams, 3, 0));
    LLVMSetLinkage(wrapper, LLVMInternalLinkage);
    cg_set_fn_attrs(cg, wrapper);
    par_wrapper(cg, wrapper, closure_ty, n_env, body_fn);
    LLVMTypeRef pty;
    LLVMValueRef pf = krt_parallel_for_decl(cg, &pty);
    LLVMValueRef args[3] = {ext, wrapper, clo};
    LLVMBuildCall2(cg->b, pty, pf, args, 3, "");
    return KILN_OK;
}

/* ---- other statements ---- */

static kiln_status alloc_stmt(cg_emit *cg, const lir_stmt *s) {
    const lir_buffer *b = s->buffer;
    if (!b || b->id < 0 || b->id >= cg->f->n_buffers || cg->f->buffers[b->id] != b || b->arg_index >= 0)
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': an allocation of a buffer that is not local",
                         cg_fname(cg));
    if (!cg_dtype_ok(b->dtype))
        return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED,
                         "kernel '%s': buffer '%s' has dtype %s, which the CPU backend does not support", cg_fname(cg),
                         b->name, kiln_dtype_name(b->dtype));
    int64_t bytes = b->size * (int64_t)kiln_dtype_size(b->dtype);
    if (b->size <= 0 || bytes > CG_LOCAL_MAX)
        return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED,
                         "kernel '%s': local buffer '%s' of %lld elements (the CPU backend keeps at most %d bytes on the stack)",
                         cg_fname(cg), b->name, (long long)b->size, CG_LOCAL_MAX);
    int align = b->align > 0 ? b->align : cg_dtype_align(b->dtype);
    if (bytes >= 64 && align < 64) align = 64;
    LLVMValueRef p = cg_alloca(cg, LLVMArrayType2(cg_mem_type(cg, b->dtype), (uint64_t)b->size), align, b->name);
    LLVMValueRef saved = cg->bufs[b->id];
    cg->bufs[b->id] = p;
    kiln_status st = cg_stmt(cg, s->body);
    cg->bufs[b->id] = saved;
    return st;
}

static kiln_status if_stmt(cg_emit *cg, const lir_stmt *s) {
    cg_val c;
    cg_memo_reset(cg);
    if (!s->cond || s->cond->dtype != KILN_BOOL)
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': a guard that is not a bool", cg_fname(cg));
    kiln_status st = cg_expr(cg, s->cond, &c);
    if (st) return st;
    if (c.vec) { /* lanes differ: run both sides under masks */
        LLVMValueRef saved = cg->mask, nc = LLVMBuildNot(cg->b, c.v, "");
        cg->mask = saved ? LLVMBuildAnd(cg->b, saved, c.v, "") : c.v;
        LLVMValueRef m_else = saved ? LLVMBuildAnd(cg->b, saved, nc, "") : nc;
        st = cg_stmt(cg, s->body);
        cg->mask = m_else;
        if (!st && s->else_body) st = cg_stmt(cg, s->else_body);
        cg->mask = saved;
        return st;
    }
    LLVMBasicBlockRef bt = cg_block(cg, "if.then"), be = s->else_body ? cg_block(cg, "if.else") : NULL;
    LLVMBasicBlockRef bm = cg_block(cg, "if.end");
    LLVMBuildCondBr(cg->b, c.v, bt, be ? be : bm);
    LLVMPositionBuilderAtEnd(cg->b, bt);
    if ((st = cg_stmt(cg, s->body))) return st;
    LLVMBuildBr(cg->b, bm);
    if (be) {
        LLVMPositionBuilderAtEnd(cg->b, be);
        if ((st = cg_stmt(cg, s->else_body))) return st;
        LLVMBuildBr(cg->b, bm);
    }
    LLVMPositionBuilderAtEnd(cg->b, bm);
    return KILN_OK;
}

static kiln_status for_stmt(cg_emit *cg, const lir_stmt *s) {
    if (!s->var || !s->body)
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': a loop without a variable or body", cg_fname(cg));
    switch (s->loop) {
    case LIR_SERIAL: return serial_loop(cg, s, NULL);
    case LIR_UNROLLED: return unrolled_loop(cg, s);
    case LIR_VECTORIZED: return vector_loop(cg, s);
    case LIR_PARALLEL: return parallel_loop(cg, s);
    default:
        return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED,
                         "kernel '%s': loop '%s' is bound to %s; the CPU backend runs no GPU-bound loops",
                         cg_fname(cg), s->var->name, lir_loop_kind_name(s->loop));
    }
}

kiln_status cg_stmt(cg_emit *cg, const lir_stmt *s) {
    if (!s) return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': missing statement", cg_fname(cg));
    switch (s->kind) {
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++) {
            kiln_status st = cg_stmt(cg, s->stmts[i]);
            if (st) return st;
        }
        return KILN_OK;
    case LIR_STORE: return cg_store(cg, s);
    case LIR_FOR: return for_stmt(cg, s);
    case LIR_ALLOC: return alloc_stmt(cg, s);
    case LIR_IF: return if_stmt(cg, s);
    case LIR_NOP: return KILN_OK;
    case LIR_BARRIER:
        return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED, "kernel '%s': a GPU barrier in a kernel compiled for the CPU",
                         cg_fname(cg));
    default: return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': unknown statement kind %d", cg_fname(cg), (int)s->kind);
    }
}
