/*
** tasks.h — the tuning tasks of a compiled model: its distinct kernels,
** keyed by the workload hash of their compute DAG (tir_hash: ops, shapes,
** dtypes, constant-ness; not names), each weighted by how many times one
** run of the model calls it, with its template's search space.
*/
#ifndef KILN_TASKS_H
#define KILN_TASKS_H

#include <stdio.h>

#include "compile.h"
#include "templates.h"

typedef struct tune_task {
    uint64_t hash;        /* the workload hash */
    const tir_func *tir;  /* borrowed from the plan */
    kc_kernel *kernel;    /* borrowed from the plan */
    int weight;           /* calls per model run */
    char name[96];        /* what it computes, e.g. "Conv+Add+Relu f32[1,64,56,56]" */
    tune_space space;     /* the template's knobs on the plan's target */
} tune_task;

typedef struct tune_tasks {
    int n;
    tune_task *v;
} tune_tasks;

/* The tasks of a compiled plan, in the order the plan first uses them. */
kiln_status tune_tasks_from_plan(kiln_ctx *ctx, const kc_plan *p, tune_tasks *out);
void tune_tasks_free(tune_tasks *t);
/* A table: task, workload, weight, template, knobs, space size. */
void tune_tasks_print(FILE *f, const tune_tasks *t);

#endif
