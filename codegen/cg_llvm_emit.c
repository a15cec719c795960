/*
** cg_llvm_emit.c — the module: one entry function per kernel, the body
** functions that receive buffers as noalias, aligned pointers, verification
** and the optimization pipeline.
*/
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cg_llvm_internal.h"

static void add_str_attr(cg_emit *cg, LLVMValueRef fn, const char *k, const char *v) {
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(cg->c, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

static void add_enum_attr(cg_emit *cg, LLVMValueRef fn, unsigned idx, const char *k, uint64_t v) {
    unsigned kind = LLVMGetEnumAttributeKindForName(k, strlen(k));
    LLVMAddAttributeAtIndex(fn, idx, LLVMCreateEnumAttribute(cg->c, kind, v));
}

void cg_set_fn_attrs(cg_emit *cg, LLVMValueRef fn) {
    char width[16];
    snprintf(width, sizeof width, "%d", cg->opt->target.vector_bits > 0 ? cg->opt->target.vector_bits : 128);
    if (cg->opt->target.cpu[0]) add_str_attr(cg, fn, "target-cpu", cg->opt->target.cpu);
    if (cg->opt->target.features[0]) add_str_attr(cg, fn, "target-features", cg->opt->target.features);
    add_str_attr(cg, fn, "prefer-vector-width", width);
    add_enum_attr(cg, fn, LLVMAttributeFunctionIndex, "nounwind", 0);
}

static int buf_align(const lir_buffer *b) {
    int align = b->align > 0 ? b->align : cg_dtype_align(b->dtype);
    if (b->arg_index < 0 && b->size * (int64_t)kiln_dtype_size(b->dtype) >= 64 && align < 64) align = 64;
    return align; /* locals: as cg_llvm_stmt.c allocates them */
}

/* ---- the captured environment ---- */

int cg_env_count(const cg_emit *cg, int *n_bufs, int *n_vars) {
    int nb = 0;
    for (int i = 0; i < cg->f->n_buffers; i++) nb += cg->bufs[i] != NULL;
    *n_bufs = nb;
    *n_vars = cg->n_binds;
    return nb + cg->n_binds;
}

LLVMTypeRef cg_env_type(const cg_emit *cg, int i) {
    int nb, nv;
    cg_env_count(cg, &nb, &nv);
    return i < nb ? cg->t_ptr : cg->t_i64;
}

void cg_env_values(const cg_emit *cg, LLVMValueRef *vals) {
    int k = 0;
    for (int i = 0; i < cg->f->n_buffers; i++)
        if (cg->bufs[i]) vals[k++] = cg->bufs[i];
    for (int i = 0; i < cg->n_binds; i++) vals[k++] = cg->binds[i].v;
}

kiln_status cg_body_fn(cg_emit *cg, const char *name, int n_extra, LLVMValueRef *extra, LLVMValueRef *fn_out,
                       cg_fn_saved *saved) {
    int nb, nv, n_env = cg_env_count(cg, &nb, &nv);
    for (int i = 0; i < cg->n_binds; i++)
        if (cg->binds[i].vec)
            return kiln_fail(cg->ctx, KILN_ERR_INTERNAL, "kernel '%s': outlining inside a vectorized loop", cg_fname(cg));
    int np = n_env + n_extra;
    LLVMTypeRef params[np > 0 ? np : 1];
    for (int i = 0; i < np; i++) params[i] = i < nb ? cg->t_ptr : cg->t_i64;
    LLVMValueRef fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(cg->t_void, params, (unsigned)np, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_set_fn_attrs(cg, fn);
    LLVMValueRef *bufs = kiln_calloc((size_t)(cg->f->n_buffers > 0 ? cg->f->n_buffers : 1), sizeof(LLVMValueRef));
    cg_bind *binds = nv ? kiln_malloc(sizeof(cg_bind) * (size_t)nv) : NULL;
    if (!bufs || (nv && !binds)) {
        kiln_free(bufs);
        kiln_free(binds);
        return kiln_fail(cg->ctx, KILN_ERR_NOMEM, "out of memory emitting kernel '%s'", cg_fname(cg));
    }
    /* argument buffers never overlap (the caller's contract), and distinct
    ** local buffers are distinct stack slots */
    int k = 0;
    for (int i = 0; i < cg->f->n_buffers; i++) {
        if (!cg->bufs[i]) continue;
        unsigned idx = (unsigned)k + 1;
        add_enum_attr(cg, fn, idx, "noalias", 0);
        add_enum_attr(cg, fn, idx, "nocapture", 0);
        add_enum_attr(cg, fn, idx, "align", (uint64_t)buf_align(cg->f->buffers[i]));
        bufs[i] = LLVMGetParam(fn, (unsigned)k++);
    }
    for (int i = 0; i < nv; i++) binds[i] = (cg_bind){cg->binds[i].var, LLVMGetParam(fn, (unsigned)k++), false};
    for (int i = 0; i < n_extra; i++) extra[i] = LLVMGetParam(fn, (unsigned)(n_env + i));
    *saved = (cg_fn_saved){cg->fn, cg->alloca_bb, LLVMGetInsertBlock(cg->b), cg->bufs, cg->binds, cg->n_binds,
                           cg->cap_binds};
    cg->fn = fn;
    cg->bufs = bufs;
    cg->binds = binds;
    cg->n_binds = cg->cap_binds = nv;
    cg->alloca_bb = cg_block(cg, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg_block(cg, "body"));
    *fn_out = fn;
    return KILN_OK;
}

void cg_fn_leave(cg_emit *cg, cg_fn_saved *saved) {
    if (!LLVMGetBasicBlockTerminator(LLVMGetInsertBlock(cg->b))) LLVMBuildRetVoid(cg->b);
    LLVMPositionBuilderAtEnd(cg->b, cg->alloca_bb);
    LLVMBuildBr(cg->b, LLVMGetNextBasicBlock(cg->alloca_bb));
    kiln_free(cg->bufs);
    kiln_free(cg->binds);
    cg->fn = saved->fn;
    cg->alloca_bb = saved->alloca_bb;
    cg->bufs = saved->bufs;
    cg->binds = saved->binds;
    cg->n_binds = saved->n_binds;
    cg->cap_binds = saved->cap_binds;
    LLVMPositionBuilderAtEnd(cg->b, saved->insert_bb);
}

/* ---- kernels ---- */

static bool is_identifier(const char *s) {
    if (!s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_')) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return false;
    return true;
}

static kiln_status check_kernels(kiln_ctx *ctx, lir_func *const *funcs, int n) {
    for (int i = 0; i < n; i++) {
        const lir_func *f = funcs[i];
        if (!f || !f->body) return kiln_fail(ctx, KILN_ERR_INVALID, "kernel %d has no body", i);
        if (f->eb.failed)
            return kiln_fail(ctx, KILN_ERR_INVALID, "kernel '%s' was not built completely (a constructor failed)",
                             f->name ? f->name : "?");
        if (!is_identifier(f->name) || strncmp(f->name, "krt_", 4) == 0)
            return kiln_fail(ctx, KILN_ERR_INVALID, "kernel name '%s' is not a C identifier outside krt_*",
                             f->name ? f->name : "");
        for (int j = 0; j < i; j++)
            if (strcmp(funcs[j]->name, f->name) == 0)
                return kiln_fail(ctx, KILN_ERR_INVALID, "two kernels are named '%s'", f->name);
        for (int a = 0; a < f->n_args; a++) {
            const lir_buffer *b = f->args[a];
            if (!b || b->arg_index != a || b->id < 0 || b->id >= f->n_buffers || f->buffers[b->id] != b)
                return kiln_fail(ctx, KILN_ERR_INVALID, "kernel '%s': argument %d is malformed", f->name, a);
            if (!cg_dtype_ok(b->dtype))
                return kiln_fail(ctx, KILN_ERR_UNSUPPORTED,
                                 "kernel '%s': argument '%s' has dtype %s, which the CPU backend does not support",
                                 f->name, b->name, kiln_dtype_name(b->dtype));
        }
    }
    return KILN_OK;
}

static kiln_status emit_kernel(cg_emit *cg, const lir_func *f, LLVMValueRef entry) {
    cg->f = f;
    cg->n_par = 0;
    cg->fn = entry;
    cg->alloca_bb = cg_block(cg, "entry");
    LLVMPositionBuilderAtEnd(cg->b, cg->alloca_bb);
    cg->bufs = kiln_calloc((size_t)(f->n_buffers > 0 ? f->n_buffers : 1), sizeof(LLVMValueRef));
    if (!cg->bufs) return kiln_fail(cg->ctx, KILN_ERR_NOMEM, "out of memory emitting kernel '%s'", f->name);
    LLVMValueRef args = LLVMGetParam(entry, 0);
    for (int i = 0; i < f->n_args; i++) {
        LLVMValueRef ix = LLVMConstInt(cg->t_i64, (unsigned long long)i, 0);
        LLVMValueRef p = LLVMBuildLoad2(cg->b, cg->t_ptr, LLVMBuildInBoundsGEP2(cg->b, cg->t_ptr, args, &ix, 1, ""), "");
        LLVMSetAlignment(p, 8);
        LLVMSetValueName2(p, f->args[i]->name, strlen(f->args[i]->name));
        cg->bufs[f->args[i]->id] = p;
    }
    char name[600];
    snprintf(name, sizeof name, "%s.body", f->name);
    LLVMValueRef body_fn;
    cg_fn_saved saved;
    kiln_status s = cg_body_fn(cg, name, 0, NULL, &body_fn, &saved);
    if (!s) {
        s = cg_stmt(cg, f->body);
        cg_fn_leave(cg, &saved);
    }
    if (!s) {
        int nb, nv, n_env = cg_env_count(cg, &nb, &nv);
        LLVMValueRef vals[n_env > 0 ? n_env : 1];
        cg_env_values(cg, vals);
        LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(body_fn), body_fn, vals, (unsigned)n_env, "");
        LLVMBuildRetVoid(cg->b);
    }
    kiln_free(cg->bufs);
    cg->bufs = NULL;
    return s;
}

static void emit_init(cg_emit *cg, kiln_ctx *ctx, const cg_options *o, LLVMContextRef c, LLVMModuleRef m) {
    memset(cg, 0, sizeof *cg);
    cg->ctx = ctx;
    cg->opt = o;
    cg->c = c;
    cg->mod = m;
    cg->b = LLVMCreateBuilderInContext(c);
    cg->t_void = LLVMVoidTypeInContext(c);
    cg->t_i1 = LLVMInt1TypeInContext(c);
    cg->t_i8 = LLVMInt8TypeInContext(c);
    cg->t_i16 = LLVMInt16TypeInContext(c);
    cg->t_i32 = LLVMInt32TypeInContext(c);
    cg->t_i64 = LLVMInt64TypeInContext(c);
    cg->t_f16 = LLVMHalfTypeInContext(c);
    cg->t_f32 = LLVMFloatTypeInContext(c);
    cg->t_f64 = LLVMDoubleTypeInContext(c);
    cg->t_ptr = LLVMPointerTypeInContext(c, 0);
    cg->f16c = cg_target_has(&o->target, "f16c");
}

static kiln_status emit_all(cg_emit *cg, lir_func *const *funcs, int n) {
    LLVMValueRef entries[n > 0 ? n : 1];
    LLVMTypeRef fty = LLVMFunctionType(cg->t_void, &cg->t_ptr, 1, 0);
    /* entry points first: internal helpers that collide get renamed, not them */
    for (int i = 0; i < n; i++) {
        entries[i] = LLVMAddFunction(cg->mod, funcs[i]->name, fty);
        cg_set_fn_attrs(cg, entries[i]);
    }
    for (int i = 0; i < n; i++) {
        kiln_status s = emit_kernel(cg, funcs[i], entries[i]);
        if (s) return s;
    }
    return KILN_OK;
}

static kiln_status verify(kiln_ctx *ctx, LLVMModuleRef m) {
    char *msg = NULL;
    if (!LLVMVerifyModule(m, LLVMReturnStatusAction, &msg)) {
        LLVMDisposeMessage(msg);
        return KILN_OK;
    }
    kiln_fail(ctx, KILN_ERR_INTERNAL, "LLVM rejected the generated code: %s", msg ? msg : "(no message)");
    LLVMDisposeMessage(msg);
    return KILN_ERR_INTERNAL;
}

static kiln_status optimize(kiln_ctx *ctx, LLVMModuleRef m, LLVMTargetMachineRef tm, int level) {
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", level < 0 ? 0 : level > 3 ? 3 : level);
    LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetSLPVectorization(po, level >= 2);
    LLVMPassBuilderOptionsSetLoopUnrolling(po, level >= 2);
    LLVMErrorRef err = LLVMRunPasses(m, pipeline, tm, po);
    LLVMDisposePassBuilderOptions(po);
    return err ? cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, "LLVM optimization failed") : KILN_OK;
}

kiln_status cg_llvm_build(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, LLVMContextRef c,
                          LLVMTargetMachineRef tm, bool opt, LLVMModuleRef *out) {
    if (n < 0 || (n > 0 && !funcs)) return kiln_fail(ctx, KILN_ERR_INVALID, "no kernels given");
    kiln_status s = check_kernels(ctx, funcs, n);
    if (s) return s;
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("kiln", c);
    LLVMSetTarget(m, o->target.triple);
    LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(m, td);
    LLVMDisposeTargetData(td);
    cg_emit cg;
    emit_init(&cg, ctx, o, c, m);
    s = emit_all(&cg, funcs, n);
    LLVMDisposeBuilder(cg.b);
    kiln_free(cg.memo);
    kiln_free(cg.binds);
    kiln_free(cg.bufs);
    if (!s) s = verify(ctx, m);
    if (!s && opt) s = optimize(ctx, m, tm, o->opt_level);
    if (s) {
        LLVMDisposeModule(m);
        return s;
    }
    *out = m;
    return KILN_OK;
}
