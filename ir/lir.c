/*
** lir.c — construction of loop-IR functions, buffers and statements.
*/
#include "lir.h"

#include <string.h>

#include "dtype.h"

int ex_buffer_dtype(const struct lir_buffer *b, kiln_dtype *dt) {
    *dt = b->dtype;
    return 1;
}

const char *ex_buffer_name(const struct lir_buffer *b) { return b->name; }

lir_func *lir_func_new(const char *name) {
    lir_func *f = kiln_calloc(1, sizeof *f);
    if (!f) return NULL;
    f->arena = kiln_arena_new();
    if (!f->arena || !(f->name = kiln_arena_strdup(f->arena, name))) {
        lir_func_free(f);
        return NULL;
    }
    ex_builder_init(&f->eb, f->arena);
    return f;
}

void lir_func_free(lir_func *f) {
    if (!f) return;
    kiln_free(f->args);
    kiln_free(f->buffers);
    kiln_arena_free(f->arena);
    kiln_free(f);
}

lir_buffer *lir_buffer_new(lir_func *f, const char *name, kiln_dtype dt, int64_t size, lir_scope scope) {
    if (!kiln_grow((void **)&f->buffers, &f->cap_buffers, f->n_buffers + 1, sizeof(lir_buffer *))) {
        f->eb.failed = true;
        return NULL;
    }
    lir_buffer *b = kiln_arena_alloc(f->arena, sizeof *b);
    if (!b || !(b->name = kiln_arena_strdup(f->arena, name))) {
        f->eb.failed = true;
        return NULL;
    }
    b->dtype = dt;
    b->size = size;
    b->scope = scope;
    b->arg_index = -1;
    b->id = f->n_buffers;
    f->buffers[f->n_buffers++] = b;
    return b;
}

lir_buffer *lir_arg_new(lir_func *f, const char *name, kiln_dtype dt, int64_t size, bool is_input) {
    if (!kiln_grow((void **)&f->args, &f->cap_args, f->n_args + 1, sizeof(lir_buffer *))) {
        f->eb.failed = true;
        return NULL;
    }
    lir_buffer *b = lir_buffer_new(f, name, dt, size, LIR_SCOPE_GLOBAL);
    if (!b) return NULL;
    b->arg_index = f->n_args;
    f->args[f->n_args++] = b;
    if (is_input) f->n_inputs++;
    return b;
}

static lir_stmt *stmt(lir_func *f, lir_kind k) {
    lir_stmt *s = kiln_arena_alloc(f->arena, sizeof *s);
    if (!s) f->eb.failed = true;
    else s->kind = k;
    return s;
}

static lir_stmt *failed(lir_func *f) {
    f->eb.failed = true;
    return NULL;
}

lir_stmt *lir_for(lir_func *f, const ex_var *v, ex_expr *min, ex_expr *extent, lir_loop_kind k, lir_stmt *body) {
    if (!v || !min || !extent || !body) return failed(f);
    lir_stmt *s = stmt(f, LIR_FOR);
    if (!s) return NULL;
    s->var = v;
    s->min = min;
    s->extent = extent;
    s->loop = k;
    s->body = body;
    return s;
}

lir_stmt *lir_store(lir_func *f, const lir_buffer *b, ex_expr *index, ex_expr *value) {
    if (!b || !index || !value) return failed(f);
    lir_stmt *s = stmt(f, LIR_STORE);
    if (!s) return NULL;
    s->buffer = b;
    s->index = index;
    s->value = value;
    return s;
}

lir_stmt *lir_alloc(lir_func *f, const lir_buffer *b, lir_stmt *body) {
    if (!b || !body) return failed(f);
    lir_stmt *s = stmt(f, LIR_ALLOC);
    if (!s) return NULL;
    s->buffer = b;
    s->body = body;
    return s;
}

lir_stmt *lir_if(lir_func *f, ex_expr *cond, lir_stmt *then_s, lir_stmt *else_s) {
    if (!cond || !then_s) return failed(f);
    lir_stmt *s = stmt(f, LIR_IF);
    if (!s) return NULL;
    s->cond = cond;
    s->body = then_s;
    s->else_body = else_s;
    return s;
}

lir_stmt *lir_seq(lir_func *f, lir_stmt *const *stmts, int n) {
    for (int i = 0; i < n; i++)
        if (!stmts[i]) return failed(f);
    lir_stmt *s = stmt(f, LIR_SEQ);
    if (!s) return NULL;
    s->stmts = kiln_arena_alloc(f->arena, sizeof(lir_stmt *) * (size_t)(n ? n : 1));
    if (!s->stmts) return failed(f);
    if (n) memcpy(s->stmts, stmts, sizeof(lir_stmt *) * (size_t)n);
    s->n_stmts = n;
    return s;
}

lir_stmt *lir_barrier(lir_func *f) { return stmt(f, LIR_BARRIER); }

const char *lir_loop_kind_name(lir_loop_kind k) {
    static const char *const names[LIR_LOOP_KIND_COUNT] = {
        "serial", "parallel", "vectorized", "unrolled", "blockIdx.x", "blockIdx.y",
        "blockIdx.z", "threadIdx.x", "threadIdx.y", "threadIdx.z"};
    return (unsigned)k < LIR_LOOP_KIND_COUNT ? names[k] : "?";
}
