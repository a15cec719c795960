/*
** test_cg_gather.c — vectorized loads that gather (a depthwise convolution
** vectorized across channels, or across output columns through its clamped
** padding): the JIT's results against the loop-IR interpreter, and the
** machine code of those kernels free of gathers that AVX-512 CPUs reject
** (#UD, SIGILL: a gather whose destination and index are the same register).
*/
#include <elf.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/measure.h"
#include "codegen/cg_llvm.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/mem.h"
#include "ir/sched.h"
#include "ir/tensor.h"
#include "ir/tir.h"

static kiln_ctx *g_ctx;

/* LLVM's disassembler (llvm-c/Disassembler.h; kiln links LLVM but keeps its
** headers private, so the few functions used are declared here). */
typedef void *LLVMDisasmContextRef;
LLVMDisasmContextRef LLVMCreateDisasm(const char *triple, void *info, int tag, void *op_info, void *lookup);
size_t LLVMDisasmInstruction(LLVMDisasmContextRef dc, uint8_t *bytes, uint64_t size, uint64_t pc, char *out,
                             size_t out_size);
void LLVMDisasmDispose(LLVMDisasmContextRef dc);
void LLVMInitializeX86TargetInfo(void);
void LLVMInitializeX86TargetMC(void);
void LLVMInitializeX86Disassembler(void);

/* A depthwise 3x3 convolution with padding 1 of x[1, C, H, W]. */
static tir_func *depthwise(gir_graph **g, int64_t C, int64_t H, int64_t W) {
    char text[1024];
    snprintf(text, sizeof text,
             "graph \"dw\" {\n opset 13\n input %%x : f32[1,%lld,%lld,%lld]\n input %%w : f32[%lld,1,3,3]\n"
             " %%y = Conv(%%x, %%w) {group=%lld, kernel_shape=[3, 3], pads=[1, 1, 1, 1]}\n output %%y\n}\n",
             (long long)C, (long long)H, (long long)W, (long long)C, (long long)C);
    tir_func *f = NULL;
    kiln_status s = gir_parse(g_ctx, text, g);
    gir_node *n = s ? NULL : (*g)->nodes[(*g)->n_nodes - 1];
    if (!s) s = gir_bind_op(g_ctx, n);
    if (!s) {
        kiln_tensor ty[2];
        const kiln_tensor *in[2] = {&ty[0], &ty[1]};
        gir_type_to_tensor(&n->inputs[0]->type, &ty[0]);
        gir_type_to_tensor(&n->inputs[1]->type, &ty[1]);
        s = tir_from_node(g_ctx, n, in, &f);
    }
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return f;
}

/* Runs lf compiled and on the interpreter on the same random inputs. */
static void jit_matches_interp(lir_func *lf, const char *what) {
    void *args[8];
    float *data[8];
    CHECK(lf->n_args <= 8);
    unsigned seed = 5;
    for (int a = 0; a < lf->n_args && a < 8; a++) {
        data[a] = kiln_malloc(sizeof(float) * (size_t)lf->args[a]->size * 2);
        for (int64_t i = 0; i < lf->args[a]->size; i++) {
            seed = seed * 1103515245u + 12345u;
            data[a][i] = (float)((seed >> 16) % 2001) / 1000.0f - 1.0f;
        }
    }
    cg_options o;
    cg_options_default(&o);
    cg_module *m = NULL;
    kiln_status s = cg_llvm_jit(g_ctx, &lf, 1, &o, &m);
    CHECK_MSG(s == KILN_OK, "%s: %s", what, kiln_errmsg(g_ctx));
    cg_kernel_fn fn = s ? NULL : cg_module_lookup(m, lf->name);
    int out = lf->n_inputs;
    int64_t n = lf->args[out]->size;
    float *want = data[out] + n;
    for (int a = 0; a < lf->n_args; a++) args[a] = data[a];
    if (fn) fn(args);
    args[out] = want;
    CHECK(lir_interp_run(g_ctx, lf, args) == KILN_OK);
    int bad = 0;
    for (int64_t i = 0; fn && i < n && bad < 3; i++) {
        if (fabsf(data[out][i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i])) continue;
        CHECK_MSG(false, "%s: element %lld is %g, expected %g", what, (long long)i, data[out][i], want[i]);
        bad++;
    }
    cg_module_free(m);
    for (int a = 0; a < lf->n_args; a++) kiln_free(data[a]);
}

/* ---- the machine code ---- */

/* The register number after the last '%' of "...mm<N>" in s (or -1). */
static int mm_number(const char *s) {
    const char *p = strstr(s, "mm");
    return p ? atoi(p + 2) : -1;
}

/* AT&T syntax: "vgatherqps (%rdx,%zmm28,4), %ymm30 {%k1}". Returns whether
** the instruction is a gather; *same when its index and destination are
** one register. */
static bool gather_regs(const char *ins, bool *same) {
    const char *g = strstr(ins, "gather");
    if (!g || !strchr(ins, '(')) return false;
    const char *open = strchr(ins, '('), *close = strchr(open, ')');
    char inside[64] = "";
    if (!close || close - open >= (long)sizeof inside) return true;
    memcpy(inside, open + 1, (size_t)(close - open - 1));
    const char *comma = strchr(inside, ',');
    int index = comma ? mm_number(comma) : -1;
    int dest = mm_number(close);
    *same = index >= 0 && index == dest;
    return true;
}

/* Disassembles every executable section of an ELF object; counts gathers
** and the illegal ones. */
static void scan_object(const unsigned char *obj, size_t size, int *gathers, int *illegal) {
    *gathers = *illegal = 0;
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)obj;
    CHECK(size > sizeof *eh && !memcmp(eh->e_ident, ELFMAG, SELFMAG));
    if (size <= sizeof *eh || eh->e_shoff + (size_t)eh->e_shnum * sizeof(Elf64_Shdr) > size) return;
    LLVMDisasmContextRef dc = LLVMCreateDisasm("x86_64-pc-linux-gnu", NULL, 0, NULL, NULL);
    CHECK(dc != NULL);
    if (!dc) return;
    const Elf64_Shdr *sh = (const Elf64_Shdr *)(obj + eh->e_shoff);
    for (int i = 0; i < eh->e_shnum; i++) {
        if (!(sh[i].sh_flags & SHF_EXECINSTR) || sh[i].sh_type != SHT_PROGBITS) continue;
        const uint8_t *code = obj + sh[i].sh_offset;
        uint64_t at = 0;
        while (at < sh[i].sh_size) {
            char text[256];
            size_t len = LLVMDisasmInstruction(dc, (uint8_t *)code + at, sh[i].sh_size - at, at, text, sizeof text);
            if (!len) len = 1;
            bool same = false;
            if (gather_regs(text, &same)) {
                (*gathers)++;
                if (same) {
                    (*illegal)++;
                    fprintf(stderr, "illegal gather: %s\n", text);
                }
            }
            at += len;
        }
    }
    LLVMDisasmDispose(dc);
}

static void no_illegal_gathers(lir_func *lf, const char *what) {
    cg_options o;
    cg_options_default(&o);
    /* an AVX-512 CPU whatever the host is: the code is only disassembled */
    snprintf(o.target.cpu, sizeof o.target.cpu, "skylake-avx512");
    o.target.features[0] = 0;
    void *bytes = NULL;
    size_t size = 0;
    kiln_status s = cg_llvm_object(g_ctx, &lf, 1, &o, &bytes, &size);
    CHECK_MSG(s == KILN_OK, "%s: %s", what, kiln_errmsg(g_ctx));
    if (s) return;
    int gathers, illegal;
    scan_object(bytes, size, &gathers, &illegal);
    CHECK_MSG(illegal == 0, "%s: %d of %d gathers have the same destination and index register", what, illegal,
              gathers);
    kiln_free(bytes);
}

/* The kernel's own (unoptimized) IR has no 16-lane gather with 64-bit
** indices: the lanes load one by one. */
static void no_wide_gather_emitted(lir_func *lf, const char *what) {
    cg_options o;
    cg_options_default(&o);
    char *ir = NULL;
    CHECK(cg_llvm_ir_text(g_ctx, &lf, 1, &o, false, &ir) == KILN_OK);
    CHECK_MSG(ir && !strstr(ir, "llvm.masked.gather"), "%s: the backend emitted a gather", what);
    kiln_free(ir);
}

static const char *const k_traces[] = {
    /* channels as lanes: every tap gathers (stride H*W) */
    "split conv oc [16] -> oc_o oc_i\nreorder conv n oc_o oh ow oc_i\nvectorize conv oc_i\n",
    /* columns as lanes through the inlined, clamped padding; a masked tail */
    "inline pad\nsplit conv ow [16] -> ow_o ow_i\nvectorize conv ow_i\n",
    /* 8 lanes of channels, parallel rows */
    "split conv oc [8] -> oc_o oc_i\nreorder conv n oc_o oh ow oc_i\nvectorize conv oc_i\nparallel conv oc_o\n",
};

static void depthwise_gathers(void) {
    gir_graph *g = NULL;
    tir_func *f = depthwise(&g, 32, 12, 12);
    for (size_t t = 0; f && t < sizeof k_traces / sizeof k_traces[0]; t++) {
        sch_trace *tr = NULL;
        lir_func *lf = NULL;
        kiln_status s = sch_trace_parse(g_ctx, k_traces[t], &tr);
        if (!s) s = sch_lower(g_ctx, f, tr, &lf);
        CHECK_MSG(s == KILN_OK, "trace %zu: %s", t, kiln_errmsg(g_ctx));
        if (!s) {
            jit_matches_interp(lf, k_traces[t]);
            no_wide_gather_emitted(lf, k_traces[t]);
            no_illegal_gathers(lf, k_traces[t]);
        }
        lir_func_free(lf);
        sch_trace_free(tr);
    }
    tir_func_free(f);
    gir_graph_free(g);
}

/* The kernel of the report, x[1, 144, 56, 56] with channels as lanes, run
** in a child behind the correctness gate: an illegal instruction would be
** a crash there, not the end of this test. */
static void full_size_measured(void) {
    gir_graph *g = NULL;
    tir_func *f = depthwise(&g, 144, 56, 56);
    sch_trace *tr = NULL;
    CHECK(f && sch_trace_parse(g_ctx, k_traces[0], &tr) == KILN_OK);
    tune_measure_opts o;
    tune_measure_opts_default(&o);
    o.budget_ms = 5;
    o.min_samples = 1;
    tune_reference *ref = NULL;
    CHECK(f && tune_reference_new(g_ctx, f, &o, TUNE_REF_COMPILED, &ref) == KILN_OK);
    tune_result r;
    CHECK(ref && tr && tune_measure(g_ctx, f, tr, ref, &o, &r) == KILN_OK);
    CHECK_MSG(ref && tr && r.status == TUNE_STATUS_OK && r.checked, "status %d: %s", r.status, r.msg);
    tune_reference_free(ref);
    sch_trace_free(tr);
    tir_func_free(f);
    gir_graph_free(g);
}

/* The instruction scanner itself. */
static void scanner(void) {
    bool same = false;
    CHECK(gather_regs("\tvgatherqps\t(%rdx,%zmm28,4), %ymm28 {%k1}", &same) && same);
    CHECK(gather_regs("\tvgatherqps\t(%rdx,%zmm28,4), %ymm30 {%k1}", &same) && !same);
    CHECK(gather_regs("\tvgatherdps\t(,%zmm3), %zmm3 {%k1}", &same) && same);
    CHECK(!gather_regs("\tvmovups\t(%rdx), %zmm1", &same));
}

int main(void) {
    kiln_ctx_new(&g_ctx);
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86Disassembler();
    kt_case cases[] = {
        {"scanner", scanner},
        {"depthwise_gathers", depthwise_gathers},
        {"full_size_measured", full_size_measured},
    };
    int r = kt_run(cases, (int)(sizeof cases / sizeof cases[0]));
    kiln_ctx_free(g_ctx);
    return r;
}
