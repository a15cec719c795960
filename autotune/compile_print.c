/*
** compile_print.c — what a plan contains: a summary line, and per kernel its
** compute DAG, trace, loop IR and LLVM IR.
*/
#include <string.h>

#include "compile.h"
#include "ir/mem.h"

void kc_plan_summary(FILE *f, const kc_plan *p) {
    int compiled = 0, ref = 0;
    for (int i = 0; i < p->n_steps; i++) p->steps[i].kernel ? compiled++ : ref++;
    fprintf(f, "cpu: %d nodes run %d distinct compiled kernels (lowering %.0f ms, JIT %.0f ms)", compiled,
            p->n_kernels, p->lower_ms, p->jit_ms);
    if (!ref) {
        fputc('\n', f);
        return;
    }
    fprintf(f, "; %d node(s) run their reference kernel:\n", ref);
    for (int i = 0; i < p->n_steps; i++) {
        const kc_step *s = &p->steps[i];
        if (s->kernel) continue;
        fprintf(f, "  %s '%s': %s\n", s->node->op_type, s->node->name, s->why_reference);
    }
}

kiln_status kc_plan_print_kernels(kiln_ctx *ctx, FILE *f, const kc_plan *p, bool llvm) {
    for (int i = 0; i < p->n_kernels; i++) {
        const kc_kernel *k = p->kernels[i];
        fprintf(f, "== kernel %s  workload %016llx  used by %d node(s)  schedule: %s\n", k->name,
                (unsigned long long)k->hash, k->uses, k->schedule_from);
        fprintf(f, "-- compute\n");
        tir_print(f, k->tir);
        fprintf(f, "-- trace\n");
        sch_trace_print(f, k->trace);
        fprintf(f, "-- loop IR\n");
        lir_print(f, k->lir);
        if (llvm) {
            char *text = NULL;
            kiln_status s = cg_llvm_ir_text(ctx, (lir_func *const *)&k->lir, 1, &p->cg, true, &text);
            if (s) return s;
            fprintf(f, "-- LLVM IR\n%s", text);
            kiln_free(text);
        }
        fputc('\n', f);
    }
    return KILN_OK;
}
