/*
** cg_llvm_object.c — kernels as text (LLVM IR, assembly) and as a
** relocatable, position-independent object file.
*/
#include <string.h>

#include "codegen/cg_llvm_internal.h"

/* A module of the kernels in a fresh context, with its target machine. */
typedef struct built {
    LLVMTargetMachineRef tm;
    LLVMContextRef c;
    LLVMModuleRef m;
} built;

static void built_free(built *b) {
    if (b->m) LLVMDisposeModule(b->m);
    if (b->c) LLVMContextDispose(b->c);
    if (b->tm) LLVMDisposeTargetMachine(b->tm);
}

static kiln_status build(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, bool optimized,
                         built *out) {
    memset(out, 0, sizeof *out);
    if (!o) return kiln_fail(ctx, KILN_ERR_INVALID, "no codegen options");
    kiln_status s = cg_llvm_target_machine(ctx, o, &out->tm);
    if (s) return s;
    out->c = LLVMContextCreate();
    s = cg_llvm_build(ctx, funcs, n, o, out->c, out->tm, optimized, &out->m);
    if (s) built_free(out);
    return s;
}

static kiln_status copy_out(kiln_ctx *ctx, const char *data, size_t size, bool nul, void **out) {
    char *p = kiln_malloc(size + (nul ? 1 : 0) + (size == 0));
    if (!p) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory copying %zu bytes of generated code", size);
    memcpy(p, data, size);
    if (nul) p[size] = '\0';
    *out = p;
    return KILN_OK;
}

kiln_status cg_llvm_ir_text(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, bool optimized,
                            char **out) {
    built b;
    kiln_status s = build(ctx, funcs, n, o, optimized, &b);
    if (s) return s;
    char *text = LLVMPrintModuleToString(b.m);
    void *copy = NULL;
    s = copy_out(ctx, text, strlen(text), true, &copy);
    LLVMDisposeMessage(text);
    built_free(&b);
    if (!s) *out = copy;
    return s;
}

static kiln_status emit_file(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o,
                             LLVMCodeGenFileType kind, bool nul, void **bytes, size_t *size) {
    built b;
    kiln_status s = build(ctx, funcs, n, o, true, &b);
    if (s) return s;
    char *err = NULL;
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(b.tm, b.m, kind, &err, &buf)) {
        s = kiln_fail(ctx, KILN_ERR_INTERNAL, "LLVM could not emit %s: %s",
                      kind == LLVMObjectFile ? "an object file" : "assembly", err ? err : "(no message)");
        LLVMDisposeMessage(err);
        built_free(&b);
        return s;
    }
    size_t n_bytes = LLVMGetBufferSize(buf);
    void *copy = NULL;
    s = copy_out(ctx, LLVMGetBufferStart(buf), n_bytes, nul, &copy);
    LLVMDisposeMemoryBuffer(buf);
    built_free(&b);
    if (s) return s;
    *bytes = copy;
    if (size) *size = n_bytes;
    return KILN_OK;
}

kiln_status cg_llvm_object(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, void **bytes,
                           size_t *size) {
    return emit_file(ctx, funcs, n, o, LLVMObjectFile, false, bytes, size);
}

kiln_status cg_llvm_asm_text(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, char **out) {
    void *p;
    kiln_status s = emit_file(ctx, funcs, n, o, LLVMAssemblyFile, true, &p, NULL);
    if (!s) *out = p;
    return s;
}
