/*
** cg_llvm_jit.c — kernels compiled in memory with ORC LLJIT.
**
** Generated code calls krt_parallel_for, libm and a few libc functions.
** Their addresses are taken here in C and defined as absolute symbols in
** the JIT's main dylib, so nothing depends on how the executable was linked
** (-rdynamic or not); a process-symbol generator stays behind them for
** anything else LLVM's code generator may call.
*/
#define _GNU_SOURCE
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cg_llvm_internal.h"
#include "runtime/krt_pool.h"

struct cg_module {
    LLVMOrcLLJITRef jit;
    int n;
    char **names;
    cg_kernel_fn *fns;
    char session_error[512]; /* what the linker reported while compiling */
};

typedef struct host_symbol {
    const char *name;
    uintptr_t addr;
} host_symbol;

#define SYM(f) {#f, (uintptr_t)f}
/* Function pointers through uintptr_t: math.h may define some as macros. */
static const host_symbol k_host_symbols[] = {
    {"krt_parallel_for", (uintptr_t)krt_parallel_for},
    SYM(expf), SYM(exp), SYM(exp2f), SYM(exp2), SYM(exp10f), SYM(exp10), SYM(expm1f), SYM(expm1),
    SYM(logf), SYM(log), SYM(log2f), SYM(log2), SYM(log10f), SYM(log10), SYM(log1pf), SYM(log1p),
    SYM(powf), SYM(pow), SYM(sqrtf), SYM(sqrt), SYM(cbrtf), SYM(cbrt), SYM(fmodf), SYM(fmod),
    SYM(sinf), SYM(sin), SYM(cosf), SYM(cos), SYM(tanf), SYM(tan), SYM(sincosf), SYM(sincos),
    SYM(asinf), SYM(asin), SYM(acosf), SYM(acos), SYM(atanf), SYM(atan), SYM(atan2f), SYM(atan2),
    SYM(sinhf), SYM(sinh), SYM(coshf), SYM(cosh), SYM(tanhf), SYM(tanh),
    SYM(asinhf), SYM(asinh), SYM(acoshf), SYM(acosh), SYM(atanhf), SYM(atanh),
    SYM(erff), SYM(erf), SYM(erfcf), SYM(erfc),
    SYM(floorf), SYM(floor), SYM(ceilf), SYM(ceil), SYM(truncf), SYM(trunc), SYM(roundf), SYM(round),
    SYM(rintf), SYM(rint), SYM(nearbyintf), SYM(nearbyint), SYM(roundevenf), SYM(roundeven),
    SYM(ldexpf), SYM(ldexp),
    SYM(fmaf), SYM(fma), SYM(fminf), SYM(fmin), SYM(fmaxf), SYM(fmax),
    SYM(memcpy), SYM(memmove), SYM(memset),
};

static void report_session_error(void *ctx, LLVMErrorRef err) {
    cg_module *m = ctx;
    char *msg = LLVMGetErrorMessage(err);
    if (!m->session_error[0]) snprintf(m->session_error, sizeof m->session_error, "%s", msg ? msg : "?");
    LLVMDisposeErrorMessage(msg);
}

static kiln_status define_host_symbols(kiln_ctx *ctx, LLVMOrcLLJITRef j) {
    size_t n = sizeof k_host_symbols / sizeof k_host_symbols[0];
    LLVMOrcCSymbolMapPair pairs[sizeof k_host_symbols / sizeof k_host_symbols[0]];
    for (size_t i = 0; i < n; i++) {
        pairs[i].Name = LLVMOrcLLJITMangleAndIntern(j, k_host_symbols[i].name);
        pairs[i].Sym.Address = (LLVMOrcExecutorAddress)k_host_symbols[i].addr;
        pairs[i].Sym.Flags.GenericFlags = LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable;
        pairs[i].Sym.Flags.TargetFlags = 0;
    }
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(pairs, n);
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j);
    LLVMErrorRef err = LLVMOrcJITDylibDefine(jd, mu);
    if (err) {
        LLVMOrcDisposeMaterializationUnit(mu);
        return cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, "defining the runtime's symbols in the JIT");
    }
    LLVMOrcDefinitionGeneratorRef gen;
    err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j), NULL, NULL);
    if (err) return cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, "searching the process for symbols");
    LLVMOrcJITDylibAddGenerator(jd, gen);
    return KILN_OK;
}

static kiln_status create_jit(kiln_ctx *ctx, cg_module *m) {
    cg_llvm_init();
    LLVMOrcJITTargetMachineBuilderRef jtmb;
    LLVMErrorRef err = LLVMOrcJITTargetMachineBuilderDetectHost(&jtmb);
    if (err) return cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, "detecting the host for the JIT");
    LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
    LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
    if ((err = LLVMOrcCreateLLJIT(&m->jit, builder)))
        return cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, "creating the JIT");
    LLVMOrcExecutionSessionSetErrorReporter(LLVMOrcLLJITGetExecutionSession(m->jit), report_session_error, m);
    return define_host_symbols(ctx, m->jit);
}

/* Builds the optimized module in a thread-safe context and hands it over. */
static kiln_status add_module(kiln_ctx *ctx, cg_module *m, lir_func *const *funcs, int n, const cg_options *o) {
    LLVMTargetMachineRef tm;
    kiln_status s = cg_llvm_target_machine(ctx, o, &tm);
    if (s) return s;
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMModuleRef mod;
    s = cg_llvm_build(ctx, funcs, n, o, LLVMOrcThreadSafeContextGetContext(tsc), tm, true, &mod);
    LLVMDisposeTargetMachine(tm);
    if (!s && strcmp(LLVMGetDataLayoutStr(mod), LLVMOrcLLJITGetDataLayoutStr(m->jit)) != 0) {
        s = kiln_fail(ctx, KILN_ERR_INVALID, "the CPU target (%s, %s) is not the host the JIT runs on",
                      o->target.triple, o->target.cpu);
        LLVMDisposeModule(mod);
    }
    if (s) {
        LLVMOrcDisposeThreadSafeContext(tsc);
        return s;
    }
    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
    LLVMOrcDisposeThreadSafeContext(tsc); /* the module keeps it alive */
    LLVMErrorRef err = LLVMOrcLLJITAddLLVMIRModule(m->jit, LLVMOrcLLJITGetMainJITDylib(m->jit), tsm);
    return err ? cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, "adding the kernels to the JIT") : KILN_OK;
}

/* Looking a kernel up compiles the module; do it now so errors surface here. */
static kiln_status lookup_all(kiln_ctx *ctx, cg_module *m, lir_func *const *funcs, int n) {
    m->names = kiln_calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
    m->fns = kiln_calloc((size_t)(n > 0 ? n : 1), sizeof(cg_kernel_fn));
    if (!m->names || !m->fns) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        LLVMOrcExecutorAddress addr = 0;
        LLVMErrorRef err = LLVMOrcLLJITLookup(m->jit, &addr, funcs[i]->name);
        if (err) {
            char what[700];
            snprintf(what, sizeof what, "compiling kernel '%s'%s%s", funcs[i]->name,
                     m->session_error[0] ? ": " : "", m->session_error);
            return cg_llvm_error(ctx, KILN_ERR_INTERNAL, err, what);
        }
        if (!(m->names[i] = kiln_strdup(funcs[i]->name))) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
        m->fns[i] = (cg_kernel_fn)(uintptr_t)addr;
        m->n = i + 1;
    }
    return KILN_OK;
}

kiln_status cg_llvm_jit(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, cg_module **out) {
    if (!o) return kiln_fail(ctx, KILN_ERR_INVALID, "no codegen options");
    cg_module *m = kiln_calloc(1, sizeof *m);
    if (!m) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = create_jit(ctx, m);
    if (!s) s = add_module(ctx, m, funcs, n, o);
    if (!s) s = lookup_all(ctx, m, funcs, n);
    if (s) {
        cg_module_free(m);
        return s;
    }
    *out = m;
    return KILN_OK;
}

cg_kernel_fn cg_module_lookup(cg_module *m, const char *name) {
    if (!m || !name) return NULL;
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->names[i], name) == 0) return m->fns[i];
    return NULL;
}

void cg_module_free(cg_module *m) {
    if (!m) return;
    if (m->jit) {
        LLVMErrorRef err = LLVMOrcDisposeLLJIT(m->jit);
        if (err) LLVMConsumeError(err); /* nothing left to tell anyone */
    }
    for (int i = 0; m->names && i < m->n; i++) kiln_free(m->names[i]);
    kiln_free(m->names);
    kiln_free(m->fns);
    kiln_free(m);
}
