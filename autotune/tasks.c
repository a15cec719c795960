/*
** tasks.c — extracting the tuning tasks of a compiled plan.
*/
#include "tasks.h"

#include <inttypes.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/mem.h"
#include "ir/tensor.h"

static void describe_task(const kc_step *st, const tir_func *f, char *buf, size_t size) {
    char ops[64], shape[64] = "";
    kc_node_label(st->node, ops, sizeof ops);
    if (f->n_outputs > 0) {
        const tir_tensor *t = f->outputs[0];
        kiln_tensor ty;
        kiln_tensor_init(&ty, t->dtype, t->rank, t->dims);
        kiln_shape_str(&ty, shape, sizeof shape);
    }
    snprintf(buf, size, "%s %s", ops, shape);
}

static tune_task *find_task(tune_tasks *t, const kc_kernel *k) {
    for (int i = 0; i < t->n; i++)
        if (t->v[i].kernel == k) return &t->v[i];
    return NULL;
}

kiln_status tune_tasks_from_plan(kiln_ctx *ctx, const kc_plan *p, tune_tasks *out) {
    tune_tasks t = {0, kiln_calloc((size_t)p->n_kernels + 1, sizeof(tune_task))};
    if (!t.v) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = KILN_OK;
    for (int i = 0; i < p->n_steps && !s; i++) {
        const kc_step *st = &p->steps[i];
        if (!st->kernel) continue;
        tune_task *task = find_task(&t, st->kernel);
        if (task) {
            task->weight++;
            continue;
        }
        task = &t.v[t.n++];
        task->kernel = st->kernel;
        task->tir = st->kernel->tir;
        task->hash = st->kernel->hash;
        task->weight = 1;
        describe_task(st, task->tir, task->name, sizeof task->name);
        s = tune_space_for(ctx, task->tir, &p->cg.target, &task->space);
    }
    if (s) {
        tune_tasks_free(&t);
        return s;
    }
    *out = t;
    return KILN_OK;
}

void tune_tasks_free(tune_tasks *t) {
    kiln_free(t->v);
    t->v = NULL;
    t->n = 0;
}

void tune_tasks_print(FILE *f, const tune_tasks *t) {
    uint64_t total = 0;
    fprintf(f, "%-4s %-16s %6s  %-10s %-5s %14s  %s\n", "task", "workload", "weight", "template", "knobs",
            "space", "kernel");
    for (int i = 0; i < t->n; i++) {
        const tune_task *k = &t->v[i];
        uint64_t size = tune_space_size(&k->space);
        total = size > UINT64_MAX - total ? UINT64_MAX : total + size;
        fprintf(f, "%-4d %016" PRIx64 " %6d  %-10s %-5d %14" PRIu64 "  %s\n", i, k->hash, k->weight,
                k->space.template_name, k->space.n_knobs, size, k->name);
    }
    fprintf(f, "%d tasks, %" PRIu64 " schedules in all\n", t->n, total);
}
