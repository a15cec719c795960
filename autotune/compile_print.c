/*
** compile_print.c — what a plan contains: a summary line, and per kernel its
** compute DAG, trace, loop IR and LLVM IR.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "ir/mem.h"

const char *kc_node_label(const gir_node *n, char *buf, size_t size) {
    const gir_attr *a = strcmp(n->op_type, "FusedKernel") ? NULL : gir_attr_find(n, "body");
    if (!a || a->kind != GIR_ATTR_GRAPH || !a->g || a->g->n_nodes == 0) {
        snprintf(buf, size, "%s", n->op_type);
        return buf;
    }
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < a->g->n_nodes && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? "+" : "", a->g->nodes[i]->op_type);
    return buf;
}

#define LABELS_SHOWN 12

/* One line: how many nodes run each kind of fused kernel, most first. */
static void fused_summary(FILE *f, const kc_plan *p) {
    char labels[LABELS_SHOWN][160], buf[160];
    int counts[LABELS_SHOWN], n = 0, fused = 0, other = 0;
    for (int i = 0; i < p->n_steps; i++) {
        const gir_node *nd = p->steps[i].node;
        if (!p->steps[i].kernel || strcmp(nd->op_type, "FusedKernel")) continue;
        fused++;
        kc_node_label(nd, buf, sizeof buf);
        int k = 0;
        while (k < n && strcmp(labels[k], buf)) k++;
        if (k == n && n == LABELS_SHOWN) {
            other++;
            continue;
        }
        if (k == n) snprintf(labels[n], sizeof labels[n], "%s", buf), counts[n++] = 0;
        counts[k]++;
    }
    if (!fused) return;
    fprintf(f, "  %d fused kernel node(s):", fused);
    for (int shown = 0; shown < n; shown++) {
        int best = 0;
        for (int k = 1; k < n; k++)
            if (counts[k] > counts[best]) best = k;
        fprintf(f, "%s %dx %s", shown ? "," : "", counts[best], labels[best]);
        counts[best] = -1;
    }
    if (other) fprintf(f, ", %d of other kinds", other);
    fputc('\n', f);
}

void kc_plan_summary(FILE *f, const kc_plan *p) {
    int compiled = 0, ref = 0;
    for (int i = 0; i < p->n_steps; i++) p->steps[i].kernel ? compiled++ : ref++;
    fprintf(f, "cpu: %d nodes run %d distinct compiled kernels (lowering %.0f ms, JIT %.0f ms)", compiled,
            p->n_kernels, p->lower_ms, p->jit_ms);
    if (!ref) {
        fputc('\n', f);
        fused_summary(f, p);
        return;
    }
    fprintf(f, "; %d node(s) run their reference kernel:\n", ref);
    for (int i = 0; i < p->n_steps; i++) {
        const kc_step *s = &p->steps[i];
        if (s->kernel) continue;
        fprintf(f, "  %s '%s': %s\n", s->node->op_type, s->node->name, s->why_reference);
    }
    fused_summary(f, p);
}

kiln_status kc_plan_print_kernels(kiln_ctx *ctx, FILE *f, const kc_plan *p, bool llvm) {
    for (int i = 0; i < p->n_kernels; i++) {
        const kc_kernel *k = p->kernels[i];
        char label[512] = "?";
        for (int s = 0; s < p->n_steps; s++)
            if (p->steps[s].kernel == k) {
                kc_node_label(p->steps[s].node, label, sizeof label);
                break;
            }
        fprintf(f, "== kernel %s (%s)  workload %016llx  used by %d node(s)  schedule: %s\n", k->name, label,
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

typedef struct step_time {
    double ms;
    int step;
} step_time;

static int by_ms_desc(const void *a, const void *b) {
    double x = ((const step_time *)a)->ms, y = ((const step_time *)b)->ms;
    return x < y ? 1 : x > y ? -1 : 0;
}

void kc_plan_print_profile(FILE *f, const kc_plan *p, int top) {
    if (!p->step_ms || p->profiled_runs < 1) return;
    step_time *order = kiln_calloc((size_t)p->n_steps + 1, sizeof(step_time));
    if (!order) return;
    double total = 0;
    for (int i = 0; i < p->n_steps; i++) order[i] = (step_time){p->step_ms[i], i}, total += p->step_ms[i];
    qsort(order, (size_t)p->n_steps, sizeof(step_time), by_ms_desc);
    fprintf(f, "profile: %.3f ms per run in %d steps; the %d longest:\n", total / p->profiled_runs, p->n_steps,
            top < p->n_steps ? top : p->n_steps);
    for (int r = 0; r < top && r < p->n_steps; r++) {
        const kc_step *s = &p->steps[order[r].step];
        char label[160];
        double ms = order[r].ms / p->profiled_runs;
        fprintf(f, "  %8.3f ms %5.1f%%  %-10s %s '%s'\n", ms, total > 0 ? 100 * order[r].ms / total : 0,
                s->kernel ? s->kernel->name : "reference", kc_node_label(s->node, label, sizeof label), s->node->name);
    }
    kiln_free(order);
}
