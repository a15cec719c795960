/*
** cg_llvm_target.c — the host CPU as LLVM sees it, the default options, and
** target machines.
*/
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cg_llvm_internal.h"

static pthread_once_t g_init_once = PTHREAD_ONCE_INIT;

static void init_native(void) {
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    LLVMInitializeNativeAsmParser();
}

void cg_llvm_init(void) { pthread_once(&g_init_once, init_native); }

kiln_status cg_llvm_error(kiln_ctx *ctx, kiln_status s, LLVMErrorRef err, const char *what) {
    char *msg = LLVMGetErrorMessage(err); /* consumes err */
    kiln_fail(ctx, s, "%s: %s", what, msg ? msg : "unknown LLVM error");
    LLVMDisposeErrorMessage(msg);
    return s;
}

bool cg_target_has(const cg_cpu_target *t, const char *name) {
    size_t n = strlen(name);
    for (const char *p = t->features; (p = strstr(p, name)) != NULL; p += n) {
        bool starts = p > t->features && p[-1] == '+' && (p - 1 == t->features || p[-2] == ',');
        if (starts && (p[n] == ',' || p[n] == '\0')) return true;
    }
    return false;
}

/* Intel cores with AVX-512 whose frequency drops with 512-bit vectors; LLVM
** tunes them for 256-bit vectors too. AMD Zen 4/5 run 512-bit ops at full
** clock. */
static bool prefers_256(const char *cpu) {
    static const char *const k_names[] = {
        "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client",
        "icelake-server", "tigerlake",   "rocketlake", "sapphirerapids", "emeraldrapids",
        "graniterapids",  "graniterapids-d"};
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++)
        if (strcmp(cpu, k_names[i]) == 0) return true;
    return false;
}

static int vector_bits_of(const cg_cpu_target *t) {
    /* "-evex512": AVX-512 instructions limited to 256-bit registers */
    if (cg_target_has(t, "avx512f") && !strstr(t->features, "-evex512") && !prefers_256(t->cpu)) return 512;
    if (cg_target_has(t, "avx")) return 256;
    return 128;
}

static kiln_status copy_field(kiln_ctx *ctx, char *dst, size_t cap, char *src, const char *what) {
    if (!src) return kiln_fail(ctx, KILN_ERR_INTERNAL, "LLVM reported no host %s", what);
    size_t n = strlen(src);
    if (n >= cap) {
        LLVMDisposeMessage(src);
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "the host %s is too long (%zu characters)", what, n);
    }
    memcpy(dst, src, n + 1);
    LLVMDisposeMessage(src);
    return KILN_OK;
}

kiln_status cg_cpu_host(kiln_ctx *ctx, cg_cpu_target *out) {
    cg_llvm_init();
    cg_cpu_target t;
    memset(&t, 0, sizeof t);
    kiln_status s = copy_field(ctx, t.triple, sizeof t.triple, LLVMGetDefaultTargetTriple(), "target triple");
    if (!s) s = copy_field(ctx, t.cpu, sizeof t.cpu, LLVMGetHostCPUName(), "CPU name");
    if (!s) s = copy_field(ctx, t.features, sizeof t.features, LLVMGetHostCPUFeatures(), "CPU features");
    if (s) return s;
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    snprintf(t.llvm_version, sizeof t.llvm_version, "%u.%u.%u", major, minor, patch);
    t.vector_bits = vector_bits_of(&t);
    *out = t;
    return KILN_OK;
}

void cg_options_default(cg_options *o) {
    memset(o, 0, sizeof *o);
    /* the host never fails to describe itself short of a broken LLVM; then
    ** the target stays empty and compiling reports it */
    if (cg_cpu_host(NULL, &o->target) != KILN_OK) memset(&o->target, 0, sizeof o->target);
    o->opt_level = 3;
    o->fast_math = true;
}

kiln_status cg_llvm_target_machine(kiln_ctx *ctx, const cg_options *o, LLVMTargetMachineRef *out) {
    cg_llvm_init();
    if (!o->target.triple[0])
        return kiln_fail(ctx, KILN_ERR_INVALID, "the CPU target has no triple (use cg_cpu_host)");
    LLVMTargetRef target;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(o->target.triple, &target, &err)) {
        kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "no LLVM target for '%s': %s", o->target.triple,
                  err ? err : "unknown");
        LLVMDisposeMessage(err);
        return KILN_ERR_UNSUPPORTED;
    }
    LLVMCodeGenOptLevel lvl = o->opt_level <= 0   ? LLVMCodeGenLevelNone
                              : o->opt_level == 1 ? LLVMCodeGenLevelLess
                              : o->opt_level == 2 ? LLVMCodeGenLevelDefault
                                                  : LLVMCodeGenLevelAggressive;
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, o->target.triple, o->target.cpu,
                                                      o->target.features, lvl, LLVMRelocPIC,
                                                      LLVMCodeModelDefault);
    if (!tm)
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "LLVM could not create a target machine for %s (%s)",
                         o->target.triple, o->target.cpu);
    *out = tm;
    return KILN_OK;
}
