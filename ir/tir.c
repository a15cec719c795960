/*
** tir.c — construction of tensor-IR functions: placeholders and stages.
*/
#include "tir.h"

#include <stdio.h>
#include <string.h>

int ex_tensor_rank_dtype(const struct tir_tensor *t, kiln_dtype *dt) {
    *dt = t->dtype;
    return t->rank;
}

const char *ex_tensor_name(const struct tir_tensor *t) { return t->name; }

tir_func *tir_func_new(const char *name) {
    tir_func *f = kiln_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->arena = kiln_arena_new();
    if (!f->arena || !(f->name = kiln_arena_strdup(f->arena, name))) {
        tir_func_free(f);
        return NULL;
    }
    ex_builder_init(&f->eb, f->arena);
    return f;
}

void tir_func_free(tir_func *f) {
    if (!f) return;
    kiln_free(f->inputs);
    kiln_free(f->stages);
    kiln_free(f->outputs);
    kiln_arena_free(f->arena);
    kiln_free(f);
}

static tir_tensor *tensor_new(tir_func *f, const char *name, kiln_dtype dt, int rank, const int64_t *dims) {
    if (rank < 0 || rank > KILN_MAX_RANK) {
        f->eb.failed = true;
        return NULL;
    }
    tir_tensor *t = kiln_arena_alloc(f->arena, sizeof *t);
    if (!t || !(t->name = kiln_arena_strdup(f->arena, name))) {
        f->eb.failed = true;
        return NULL;
    }
    t->dtype = dt;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->arg_index = -1;
    return t;
}

tir_tensor *tir_placeholder(tir_func *f, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                            const kiln_tensor *constant) {
    if (!kiln_grow((void **)&f->inputs, &f->cap_inputs, f->n_inputs + 1, sizeof(tir_tensor *))) {
        f->eb.failed = true;
        return NULL;
    }
    tir_tensor *t = tensor_new(f, name, dt, rank, dims);
    if (!t) return NULL;
    t->arg_index = f->n_inputs;
    t->constant = constant;
    f->inputs[f->n_inputs++] = t;
    return t;
}

tir_stage *tir_stage_new(tir_func *f, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                         tir_tag tag) {
    if (!kiln_grow((void **)&f->stages, &f->cap_stages, f->n_stages + 1, sizeof(tir_stage *))) {
        f->eb.failed = true;
        return NULL;
    }
    tir_tensor *t = tensor_new(f, name, dt, rank, dims);
    tir_stage *s = kiln_arena_alloc(f->arena, sizeof *s);
    if (!t || !s) {
        f->eb.failed = true;
        return NULL;
    }
    s->name = t->name;
    s->out = t;
    s->tag = tag;
    s->n_axes = rank;
    s->axes = kiln_arena_alloc(f->arena, sizeof(ex_var *) * (size_t)(rank ? rank : 1));
    if (!s->axes) {
        f->eb.failed = true;
        return NULL;
    }
    for (int d = 0; d < rank; d++) {
        char an[16];
        snprintf(an, sizeof an, "i%d", d);
        s->axes[d] = ex_var_new(&f->eb, an, dims[d], false);
        if (!s->axes[d]) return NULL;
    }
    t->stage = s;
    s->id = f->n_stages;
    f->stages[f->n_stages++] = s;
    return s;
}

ex_var *tir_stage_add_raxis(tir_func *f, tir_stage *s, const char *name, int64_t extent) {
    ex_var **ax = kiln_arena_alloc(f->arena, sizeof(ex_var *) * (size_t)(s->n_raxes + 1));
    ex_var *v = ex_var_new(&f->eb, name, extent, true);
    if (!ax || !v) {
        f->eb.failed = true;
        return NULL;
    }
    if (s->n_raxes) memcpy(ax, s->raxes, sizeof(ex_var *) * (size_t)s->n_raxes);
    ax[s->n_raxes++] = v;
    s->raxes = ax;
    return v;
}

bool tir_mark_output(tir_func *f, tir_tensor *t) {
    if (!t || !kiln_grow((void **)&f->outputs, &f->cap_outputs, f->n_outputs + 1, sizeof(tir_tensor *))) {
        f->eb.failed = true;
        return false;
    }
    f->outputs[f->n_outputs++] = t;
    return true;
}
