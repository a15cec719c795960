/*
** cg_llvm.h — the CPU backend: loop IR → LLVM IR (LLVM 19 C API), optimized
** with the new pass manager for the host CPU, JIT-compiled with ORC LLJIT,
** or emitted as an object file.
**
** Every kernel becomes a function `void NAME(void *const *args)` taking its
** argument buffers in lir_func order. Parallel loops are outlined into
** `void NAME_parN(void *closure, int64_t begin, int64_t end)` and run through
** krt_parallel_for (runtime/krt_pool.h), which the JIT resolves in the host
** process. Vectorized loops become LLVM vector operations of the loop's
** width; math functions use kiln's own vector approximations (accuracy
** tested against libm) or libm calls.
*/
#ifndef KILN_CG_LLVM_H
#define KILN_CG_LLVM_H

#include "ir/lir.h"

/* The version of the code this backend generates. Change it whenever the
** code generated for a given loop IR and target would change (lowering,
** vector math, LLVM passes and options): it is part of the key of the
** tuner's records, so measurements of older code are not reused. */
#define KILN_CODEGEN_VERSION 3

/* The CPU to compile for. */
typedef struct cg_cpu_target {
    char triple[64];
    char cpu[64];        /* e.g. "znver4" */
    char features[2048]; /* "+avx2,+fma,..." */
    int vector_bits;     /* preferred vector width: 512, 256 or 128 */
    char llvm_version[16];
} cg_cpu_target;

/* The host CPU as LLVM sees it. */
kiln_status cg_cpu_host(kiln_ctx *ctx, cg_cpu_target *out);

typedef struct cg_options {
    cg_cpu_target target;
    int opt_level;  /* 0..3; default 3 */
    bool fast_math; /* allow reassociation/contraction where the op allows */
} cg_options;

void cg_options_default(cg_options *o); /* the host, -O3, contraction on */

typedef void (*cg_kernel_fn)(void *const *args);
typedef struct cg_module cg_module;

/* Compiles the kernels into one JIT module; their names must be unique. */
kiln_status cg_llvm_jit(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o,
                        cg_module **out);
/* The entry point of kernel `name`, or NULL. */
cg_kernel_fn cg_module_lookup(cg_module *m, const char *name);
void cg_module_free(cg_module *m);

/* The optimized (or, with optimized=false, unoptimized) LLVM IR as text;
** free with kiln_free. */
kiln_status cg_llvm_ir_text(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o,
                            bool optimized, char **out);
/* A relocatable, position-independent object file in memory; free with kiln_free. */
kiln_status cg_llvm_object(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o,
                           void **bytes, size_t *size);

#endif
