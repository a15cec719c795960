/*
** tir_hash.c — the canonical hash of a tensor-IR function: the tuner's
** workload key.
**
** Everything that changes the generated code goes in: element types, shapes,
** stage structure, tags, every expression, which inputs are constants and
** the order of the outputs. Names do not: tensors are numbered by position
** (inputs, then stages) and axes by their place in their stage, so two
** definitions that differ only in names hash alike.
**
** Constant placeholders hash their type and constness, not their data. The
** weights' values never change the generated code: a compute definition that
** needs a constant's value at compile time (Reshape's shape, Slice's starts,
** Clip's bounds) writes that value into its expressions, where it is hashed.
** Schedules that pre-pack weights (the `pack` step) re-lay them out at
** compile time whatever their values, so one tuning record serves every
** model that shares the shapes.
*/
#include <string.h>

#include "tir.h"

static uint64_t th_mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

static uint64_t th_type(uint64_t h, const tir_tensor *t) {
    h = th_mix(h, (uint64_t)t->dtype);
    h = th_mix(h, (uint64_t)t->rank);
    for (int d = 0; d < t->rank; d++) h = th_mix(h, (uint64_t)t->dims[d]);
    return h;
}

/* A tensor's canonical number: inputs 0.., stages 1<<20 + id. */
static uint64_t th_tensor_id(const struct tir_tensor *t) {
    if (!t) return UINT64_MAX;
    return t->stage ? (UINT64_C(1) << 20) + (uint64_t)t->stage->id : (uint64_t)t->arg_index;
}

/* An axis's canonical number: its place among the stage's axes, reduction
** axes after 1<<20; an axis of no stage (an invalid function) by extent. */
static uint64_t th_var_id(const tir_stage *s, const ex_var *x) {
    for (int d = 0; d < s->n_axes; d++)
        if (s->axes[d] == x) return (uint64_t)d;
    for (int r = 0; r < s->n_raxes; r++)
        if (s->raxes[r] == x) return (UINT64_C(1) << 20) + (uint64_t)r;
    return UINT64_MAX;
}

static uint64_t th_expr(uint64_t h, const tir_stage *s, const ex_expr *e) {
    if (!e) return th_mix(h, 0xdead);
    h = th_mix(h, (uint64_t)e->kind * 1315423911u + (uint64_t)e->dtype * 2654435761u + (uint64_t)e->op);
    switch (e->kind) {
    case EX_INT: h = th_mix(h, (uint64_t)e->ival); break;
    case EX_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &e->fval, sizeof bits);
        h = th_mix(h, bits);
        break;
    }
    case EX_VAR: h = th_mix(h, th_var_id(s, e->var)); break;
    case EX_LOAD: h = th_mix(h, th_tensor_id(e->tensor)); break;
    default: break;
    }
    h = th_mix(h, (uint64_t)e->n_args);
    for (int i = 0; i < e->n_raxes; i++) h = th_mix(h, th_var_id(s, e->raxes[i]));
    for (int i = 0; i < e->n_args; i++) h = th_expr(h, s, e->args[i]);
    return h;
}

uint64_t tir_hash(const tir_func *f) {
    if (!f) return 0;
    uint64_t h = th_mix(0x6b696c6e74697231ull, (uint64_t)f->n_inputs);
    for (int i = 0; i < f->n_inputs; i++) {
        h = th_type(h, f->inputs[i]);
        h = th_mix(h, f->inputs[i]->constant != NULL);
    }
    h = th_mix(h, (uint64_t)f->n_stages);
    for (int k = 0; k < f->n_stages; k++) {
        const tir_stage *s = f->stages[k];
        h = th_type(h, s->out);
        h = th_mix(h, (uint64_t)s->tag);
        h = th_mix(h, (uint64_t)s->n_raxes);
        for (int r = 0; r < s->n_raxes; r++) h = th_mix(h, (uint64_t)s->raxes[r]->extent);
        h = th_expr(h, s, s->body);
    }
    h = th_mix(h, (uint64_t)f->n_outputs);
    for (int i = 0; i < f->n_outputs; i++) h = th_mix(h, th_tensor_id(f->outputs[i]));
    return h;
}
