/*
** lir_verify.c — structural checks of a loop-IR function: every variable
** is bound by an enclosing loop (and no loop rebinds one), every buffer is
** an argument of the function or allocated around its use, dtypes agree,
** vectorized and unrolled loops have constant extents, GPU loops nest as a
** GPU runs them (no block loop inside a thread loop, no shared allocation
** inside a thread loop).
*/
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "lir.h"
#include "tensor.h"

typedef struct vf {
    kiln_ctx *ctx;
    const lir_func *f;
    const ex_var **vars;
    int n_vars, cap_vars;
    const lir_buffer **bufs;
    int n_bufs, cap_bufs;
    int thread_depth;
    char where[160];
    kiln_status st;
} vf;

static kiln_status vfail(vf *v, const char *fmt, const char *a, const char *b) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, a ? a : "", b ? b : "");
    if (!v->st)
        v->st = kiln_fail(v->ctx, KILN_ERR_INTERNAL, "lir_verify: kernel '%s': %s: %s", v->f->name,
                          v->where[0] ? v->where : "body", msg);
    return v->st;
}

static bool is_int(kiln_dtype t) { return kiln_dtype_is_int(t) || t == KILN_BOOL || kiln_dtype_is_lowp_int(t); }
static bool is_float(kiln_dtype t) { return kiln_dtype_is_float(t) || kiln_dtype_is_lowp_float(t); }

static bool var_bound(const vf *v, const ex_var *x) {
    for (int i = 0; i < v->n_vars; i++)
        if (v->vars[i] == x) return true;
    return false;
}

static bool buf_in_scope(const vf *v, const lir_buffer *b) {
    if (b->arg_index >= 0 && b->arg_index < v->f->n_args && v->f->args[b->arg_index] == b) return true;
    for (int i = 0; i < v->n_bufs; i++)
        if (v->bufs[i] == b) return true;
    return false;
}

static bool buf_owned(const vf *v, const lir_buffer *b) {
    for (int i = 0; i < v->f->n_buffers; i++)
        if (v->f->buffers[i] == b) return true;
    return false;
}

static kiln_status check_expr(vf *v, const ex_expr *e);

static kiln_status check_args(vf *v, const ex_expr *e, int n) {
    if (e->n_args != n || !e->args) return vfail(v, "an expression has the wrong number of operands%s%s", 0, 0);
    for (int i = 0; i < n; i++)
        if (check_expr(v, e->args[i])) return v->st;
    return KILN_OK;
}

static kiln_status check_binary(vf *v, const ex_expr *e) {
    if (check_args(v, e, 2)) return v->st;
    kiln_dtype a = e->args[0]->dtype;
    if (a != e->args[1]->dtype) return vfail(v, "operands of '%s' differ in dtype%s", ex_binop_name((ex_binop)e->op), 0);
    bool cmp = e->op >= EX_EQ && e->op <= EX_GE;
    if (e->dtype != (cmp ? KILN_BOOL : a)) return vfail(v, "'%s' has the wrong result dtype%s", ex_binop_name((ex_binop)e->op), 0);
    bool bits = e->op == EX_AND || e->op == EX_OR || e->op == EX_XOR || e->op == EX_SHL || e->op == EX_SHR;
    if (bits && !is_int(a)) return vfail(v, "'%s' on a float type%s", ex_binop_name((ex_binop)e->op), 0);
    if ((unsigned)e->op >= EX_BINOP_COUNT) return vfail(v, "unknown binary operator%s%s", 0, 0);
    return KILN_OK;
}

static kiln_status check_expr(vf *v, const ex_expr *e) {
    if (!e) return vfail(v, "missing expression%s%s", 0, 0);
    if (!kiln_dtype_valid(e->dtype) || e->dtype == KILN_STRING || e->dtype == KILN_UNDEFINED)
        return vfail(v, "an expression has an invalid dtype%s%s", 0, 0);
    switch (e->kind) {
    case EX_INT:
        if (!is_int(e->dtype)) return vfail(v, "integer constant of a float type%s%s", 0, 0);
        return KILN_OK;
    case EX_FLOAT:
        if (!is_float(e->dtype)) return vfail(v, "float constant of an integer type%s%s", 0, 0);
        return KILN_OK;
    case EX_VAR:
        if (!e->var) return vfail(v, "variable without a name%s%s", 0, 0);
        if (!var_bound(v, e->var)) return vfail(v, "variable %s is not bound by an enclosing loop%s", e->var->name, 0);
        if (e->dtype != KILN_I64) return vfail(v, "variable %s is not i64%s", e->var->name, 0);
        return KILN_OK;
    case EX_LOAD:
        if (e->tensor || !e->buffer) return vfail(v, "a tensor load in the loop IR%s%s", 0, 0);
        if (!buf_owned(v, e->buffer)) return vfail(v, "load from %s, a buffer of another function%s", e->buffer->name, 0);
        if (!buf_in_scope(v, e->buffer)) return vfail(v, "load from %s outside its allocation%s", e->buffer->name, 0);
        if (check_args(v, e, 1)) return v->st;
        if (e->args[0]->dtype != KILN_I64) return vfail(v, "index into %s is not i64%s", e->buffer->name, 0);
        if (e->dtype != e->buffer->dtype) return vfail(v, "load from %s has the wrong dtype%s", e->buffer->name, 0);
        return KILN_OK;
    case EX_BINARY: return check_binary(v, e);
    case EX_UNARY:
        if (check_args(v, e, 1)) return v->st;
        if ((unsigned)e->op >= EX_FN_COUNT) return vfail(v, "unknown function%s%s", 0, 0);
        if (e->dtype != (e->op == EX_ISNAN || e->op == EX_ISINF ? KILN_BOOL : e->args[0]->dtype))
            return vfail(v, "%s has the wrong result dtype%s", ex_fn_name((ex_fn)e->op), 0);
        return KILN_OK;
    case EX_SELECT:
        if (check_args(v, e, 3)) return v->st;
        if (e->args[0]->dtype != KILN_BOOL) return vfail(v, "select condition is not bool%s%s", 0, 0);
        if (e->args[1]->dtype != e->dtype || e->args[2]->dtype != e->dtype) return vfail(v, "select arms differ in dtype%s%s", 0, 0);
        return KILN_OK;
    case EX_CAST: return check_args(v, e, 1);
    case EX_REDUCE: return vfail(v, "a reduction expression in the loop IR%s%s", 0, 0);
    }
    return vfail(v, "unknown expression kind%s%s", 0, 0);
}

static bool is_gpu_block(lir_loop_kind k) { return k >= LIR_GPU_BLOCK_X && k <= LIR_GPU_BLOCK_Z; }
static bool is_gpu_thread(lir_loop_kind k) { return k >= LIR_GPU_THREAD_X && k <= LIR_GPU_THREAD_Z; }

static kiln_status check_stmt(vf *v, const lir_stmt *s);

static kiln_status check_for(vf *v, const lir_stmt *s) {
    snprintf(v->where, sizeof v->where, "loop %s", s->var ? s->var->name : "?");
    if (!s->var || !s->body) return vfail(v, "loop without a variable or body%s%s", 0, 0);
    if ((unsigned)s->loop >= LIR_LOOP_KIND_COUNT) return vfail(v, "unknown loop kind%s%s", 0, 0);
    if (var_bound(v, s->var)) return vfail(v, "variable %s is bound again inside its own loop%s", s->var->name, 0);
    if (check_expr(v, s->min) || check_expr(v, s->extent)) return v->st;
    if (s->min->dtype != KILN_I64 || s->extent->dtype != KILN_I64) return vfail(v, "loop bounds are not i64%s%s", 0, 0);
    int64_t ext;
    if ((s->loop == LIR_VECTORIZED || s->loop == LIR_UNROLLED) && !ex_is_const_int(s->extent, &ext))
        return vfail(v, "a %s loop needs a constant extent%s", lir_loop_kind_name(s->loop), 0);
    if (is_gpu_block(s->loop) && v->thread_depth)
        return vfail(v, "a %s loop inside a thread loop%s", lir_loop_kind_name(s->loop), 0);
    if (!kiln_grow((void **)&v->vars, &v->cap_vars, v->n_vars + 1, sizeof(ex_var *)))
        return v->st = kiln_fail(v->ctx, KILN_ERR_NOMEM, "out of memory");
    v->vars[v->n_vars++] = s->var;
    bool th = is_gpu_thread(s->loop);
    v->thread_depth += th;
    check_stmt(v, s->body);
    v->thread_depth -= th;
    v->n_vars--;
    return v->st;
}

static kiln_status check_alloc(vf *v, const lir_stmt *s) {
    const lir_buffer *b = s->buffer;
    snprintf(v->where, sizeof v->where, "alloc %s", b ? b->name : "?");
    if (!b || !s->body) return vfail(v, "allocation without a buffer or body%s%s", 0, 0);
    if (!buf_owned(v, b)) return vfail(v, "%s is a buffer of another function%s", b->name, 0);
    if (b->arg_index >= 0) return vfail(v, "%s is an argument: it is not allocated%s", b->name, 0);
    if (buf_in_scope(v, b)) return vfail(v, "%s is allocated again inside its own allocation%s", b->name, 0);
    if (b->size < 0 || kiln_dtype_size(b->dtype) == 0) return vfail(v, "%s has a bad size or dtype%s", b->name, 0);
    if (b->scope == LIR_SCOPE_SHARED && v->thread_depth)
        return vfail(v, "shared buffer %s is allocated inside a thread loop%s", b->name, 0);
    if (!kiln_grow((void **)&v->bufs, &v->cap_bufs, v->n_bufs + 1, sizeof(lir_buffer *)))
        return v->st = kiln_fail(v->ctx, KILN_ERR_NOMEM, "out of memory");
    v->bufs[v->n_bufs++] = b;
    check_stmt(v, s->body);
    v->n_bufs--;
    return v->st;
}

static kiln_status check_stmt(vf *v, const lir_stmt *s) {
    if (v->st) return v->st;
    if (!s) return vfail(v, "missing statement%s%s", 0, 0);
    switch (s->kind) {
    case LIR_FOR: return check_for(v, s);
    case LIR_ALLOC: return check_alloc(v, s);
    case LIR_STORE:
        snprintf(v->where, sizeof v->where, "store to %s", s->buffer ? s->buffer->name : "?");
        if (!s->buffer) return vfail(v, "store without a buffer%s%s", 0, 0);
        if (!buf_owned(v, s->buffer)) return vfail(v, "%s is a buffer of another function%s", s->buffer->name, 0);
        if (!buf_in_scope(v, s->buffer)) return vfail(v, "store to %s outside its allocation%s", s->buffer->name, 0);
        if (s->buffer->constant) return vfail(v, "store to %s, a constant argument%s", s->buffer->name, 0);
        if (check_expr(v, s->index) || check_expr(v, s->value)) return v->st;
        if (s->index->dtype != KILN_I64) return vfail(v, "index is not i64%s%s", 0, 0);
        if (s->value->dtype != s->buffer->dtype)
            return vfail(v, "stores a %s value into a %s buffer", kiln_dtype_name(s->value->dtype), kiln_dtype_name(s->buffer->dtype));
        return KILN_OK;
    case LIR_IF:
        snprintf(v->where, sizeof v->where, "if");
        if (!s->body) return vfail(v, "if without a body%s%s", 0, 0);
        if (check_expr(v, s->cond)) return v->st;
        if (s->cond->dtype != KILN_BOOL) return vfail(v, "condition is not bool%s%s", 0, 0);
        if (check_stmt(v, s->body)) return v->st;
        return s->else_body ? check_stmt(v, s->else_body) : KILN_OK;
    case LIR_SEQ:
        if (s->n_stmts < 0 || (s->n_stmts && !s->stmts)) return vfail(v, "malformed sequence%s%s", 0, 0);
        for (int i = 0; i < s->n_stmts; i++)
            if (check_stmt(v, s->stmts[i])) return v->st;
        return KILN_OK;
    case LIR_BARRIER:
    case LIR_NOP: return KILN_OK;
    }
    return vfail(v, "unknown statement kind%s%s", 0, 0);
}

static kiln_status check_signature(vf *v) {
    const lir_func *f = v->f;
    snprintf(v->where, sizeof v->where, "arguments");
    if (f->n_inputs < 0 || f->n_inputs > f->n_args) return vfail(v, "more inputs than arguments%s%s", 0, 0);
    for (int i = 0; i < f->n_args; i++) {
        const lir_buffer *b = f->args[i];
        if (!b || b->arg_index != i || !buf_owned(v, b)) return vfail(v, "argument list is inconsistent%s%s", 0, 0);
        if (b->scope != LIR_SCOPE_GLOBAL) return vfail(v, "argument %s is not in global scope%s", b->name, 0);
        if (b->size < 0 || kiln_dtype_size(b->dtype) == 0) return vfail(v, "argument %s has a bad size or dtype%s", b->name, 0);
        if (b->constant) {
            if (i >= f->n_inputs) return vfail(v, "output %s is bound to constant data%s", b->name, 0);
            if (b->constant->dtype != b->dtype || kiln_numel(b->constant) != b->size || !b->constant->data)
                return vfail(v, "constant data of %s does not match the buffer%s", b->name, 0);
        }
    }
    return KILN_OK;
}

kiln_status lir_verify(kiln_ctx *ctx, const lir_func *f) {
    if (!f) return kiln_fail(ctx, KILN_ERR_INVALID, "lir_verify: no function");
    vf v;
    memset(&v, 0, sizeof v);
    v.ctx = ctx;
    v.f = f;
    if (!check_signature(&v)) {
        v.where[0] = 0;
        if (!f->body) vfail(&v, "the kernel has no body%s%s", 0, 0);
        else check_stmt(&v, f->body);
    }
    kiln_free(v.vars);
    kiln_free(v.bufs);
    return v.st;
}
