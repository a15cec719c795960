/*
** expr.c — construction, comparison, hashing, substitution and printing
** of expressions.
*/
#include "expr.h"

#include <string.h>

#include "dtype.h"

void ex_builder_init(ex_builder *b, kiln_arena *arena) {
    memset(b, 0, sizeof *b);
    b->arena = arena;
}

static ex_expr *fail(ex_builder *b) {
    b->failed = true;
    return NULL;
}

static ex_expr *node(ex_builder *b, ex_kind k, kiln_dtype t, int n_args) {
    ex_expr *e = kiln_arena_alloc(b->arena, sizeof *e);
    if (!e) return fail(b);
    e->kind = k;
    e->dtype = t;
    e->n_args = n_args;
    if (n_args) {
        e->args = kiln_arena_alloc(b->arena, sizeof(ex_expr *) * (size_t)n_args);
        if (!e->args) return fail(b);
    }
    return e;
}

ex_var *ex_var_new(ex_builder *b, const char *name, int64_t extent, bool reduce) {
    ex_var *v = kiln_arena_alloc(b->arena, sizeof *v);
    if (!v || !(v->name = kiln_arena_strdup(b->arena, name))) {
        b->failed = true;
        return NULL;
    }
    v->extent = extent;
    v->reduce = reduce;
    v->id = b->next_var_id++;
    return v;
}

ex_expr *ex_const_int(ex_builder *b, kiln_dtype t, int64_t v) {
    ex_expr *e = node(b, EX_INT, t, 0);
    if (e) e->ival = v;
    return e;
}

ex_expr *ex_int(ex_builder *b, int64_t v) { return ex_const_int(b, KILN_I64, v); }

ex_expr *ex_const_float(ex_builder *b, kiln_dtype t, double v) {
    ex_expr *e = node(b, EX_FLOAT, t, 0);
    if (e) e->fval = v;
    return e;
}

ex_expr *ex_varref(ex_builder *b, const ex_var *v) {
    if (!v) return fail(b);
    ex_expr *e = node(b, EX_VAR, KILN_I64, 0);
    if (e) e->var = v;
    return e;
}

/* The tensor's rank and dtype are read through this accessor so expr.c does
** not depend on tir.h; tir.c defines it. */
int ex_tensor_rank_dtype(const struct tir_tensor *t, kiln_dtype *dt);
int ex_buffer_dtype(const struct lir_buffer *b, kiln_dtype *dt);

ex_expr *ex_load_tensor(ex_builder *b, const struct tir_tensor *t, ex_expr *const *idx) {
    kiln_dtype dt;
    if (!t) return fail(b);
    int rank = ex_tensor_rank_dtype(t, &dt);
    for (int i = 0; i < rank; i++)
        if (!idx[i]) return fail(b);
    ex_expr *e = node(b, EX_LOAD, dt, rank);
    if (!e) return NULL;
    e->tensor = t;
    for (int i = 0; i < rank; i++) e->args[i] = idx[i];
    return e;
}

ex_expr *ex_load_buffer(ex_builder *b, const struct lir_buffer *buf, ex_expr *idx) {
    kiln_dtype dt;
    if (!buf || !idx) return fail(b);
    ex_buffer_dtype(buf, &dt);
    ex_expr *e = node(b, EX_LOAD, dt, 1);
    if (!e) return NULL;
    e->buffer = buf;
    e->args[0] = idx;
    return e;
}

static bool is_compare(ex_binop op) { return op >= EX_EQ && op <= EX_GE; }

ex_expr *ex_binary(ex_builder *b, ex_binop op, ex_expr *x, ex_expr *y) {
    if (!x || !y || x->dtype != y->dtype || (unsigned)op >= EX_BINOP_COUNT) return fail(b);
    ex_expr *e = node(b, EX_BINARY, is_compare(op) ? KILN_BOOL : x->dtype, 2);
    if (!e) return NULL;
    e->op = op;
    e->args[0] = x;
    e->args[1] = y;
    return e;
}

ex_expr *ex_unary(ex_builder *b, ex_fn fn, ex_expr *x) {
    if (!x || (unsigned)fn >= EX_FN_COUNT) return fail(b);
    ex_expr *e = node(b, EX_UNARY, fn == EX_ISNAN || fn == EX_ISINF ? KILN_BOOL : x->dtype, 1);
    if (!e) return NULL;
    e->op = fn;
    e->args[0] = x;
    return e;
}

ex_expr *ex_select(ex_builder *b, ex_expr *c, ex_expr *x, ex_expr *y) {
    if (!c || !x || !y || c->dtype != KILN_BOOL || x->dtype != y->dtype) return fail(b);
    ex_expr *e = node(b, EX_SELECT, x->dtype, 3);
    if (!e) return NULL;
    e->args[0] = c;
    e->args[1] = x;
    e->args[2] = y;
    return e;
}

ex_expr *ex_cast(ex_builder *b, kiln_dtype t, ex_expr *x) {
    if (!x) return fail(b);
    if (x->dtype == t) return x;
    ex_expr *e = node(b, EX_CAST, t, 1);
    if (e) e->args[0] = x;
    return e;
}

ex_expr *ex_reduce(ex_builder *b, ex_combiner c, ex_expr *src, const ex_var *const *raxes, int n,
                   ex_expr *init) {
    if (!src || !init || init->dtype != src->dtype || (unsigned)c >= EX_COMBINER_COUNT || n < 1)
        return fail(b);
    ex_expr *e = node(b, EX_REDUCE, src->dtype, 2);
    if (!e) return NULL;
    e->op = c;
    e->args[0] = src;
    e->args[1] = init;
    e->raxes = kiln_arena_alloc(b->arena, sizeof(ex_var *) * (size_t)n);
    if (!e->raxes) return fail(b);
    for (int i = 0; i < n; i++) e->raxes[i] = raxes[i];
    e->n_raxes = n;
    return e;
}

ex_expr *ex_add(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_ADD, x, y); }
ex_expr *ex_sub(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_SUB, x, y); }
ex_expr *ex_mul(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_MUL, x, y); }
ex_expr *ex_min(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_MIN, x, y); }
ex_expr *ex_max(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_MAX, x, y); }
ex_expr *ex_floordiv(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_FLOORDIV, x, y); }
ex_expr *ex_floormod(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_FLOORMOD, x, y); }
ex_expr *ex_lt(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_LT, x, y); }
ex_expr *ex_and(ex_builder *b, ex_expr *x, ex_expr *y) { return ex_binary(b, EX_AND, x, y); }

ex_expr *ex_combiner_identity(ex_builder *b, ex_combiner c, kiln_dtype t) {
    bool fl = kiln_dtype_is_float(t);
    switch (c) {
    case EX_SUM: return fl ? ex_const_float(b, t, 0.0) : ex_const_int(b, t, 0);
    case EX_PROD: return fl ? ex_const_float(b, t, 1.0) : ex_const_int(b, t, 1);
    case EX_RMAX:
        if (fl) return ex_const_float(b, t, -__builtin_inf());
        return ex_const_int(b, t, t == KILN_BOOL || !kiln_dtype_is_signed(t) ? 0
                                 : t == KILN_I8 ? INT8_MIN : t == KILN_I16 ? INT16_MIN
                                 : t == KILN_I32 ? INT32_MIN : INT64_MIN);
    case EX_RMIN:
        if (fl) return ex_const_float(b, t, __builtin_inf());
        return ex_const_int(b, t, t == KILN_BOOL ? 1 : t == KILN_U8 ? UINT8_MAX : t == KILN_U16 ? UINT16_MAX
                                 : t == KILN_U32 ? UINT32_MAX : t == KILN_U64 ? -1
                                 : t == KILN_I8 ? INT8_MAX : t == KILN_I16 ? INT16_MAX
                                 : t == KILN_I32 ? INT32_MAX : INT64_MAX);
    default: return fail(b);
    }
}

bool ex_equal(const ex_expr *a, const ex_expr *b) {
    if (a == b) return true;
    if (!a || !b || a->kind != b->kind || a->dtype != b->dtype || a->op != b->op ||
        a->n_args != b->n_args || a->n_raxes != b->n_raxes)
        return false;
    switch (a->kind) {
    case EX_INT: return a->ival == b->ival;
    case EX_FLOAT: return memcmp(&a->fval, &b->fval, sizeof(double)) == 0;
    case EX_VAR: return a->var == b->var;
    case EX_LOAD:
        if (a->tensor != b->tensor || a->buffer != b->buffer) return false;
        break;
    default: break;
    }
    for (int i = 0; i < a->n_raxes; i++)
        if (a->raxes[i] != b->raxes[i]) return false;
    for (int i = 0; i < a->n_args; i++)
        if (!ex_equal(a->args[i], b->args[i])) return false;
    return true;
}

static uint64_t mix(uint64_t h, uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* Variables and tensors hash by their id/position through the callers'
** canonical numbering; here a variable hashes by id, a load by its kind. */
uint64_t ex_hash(const ex_expr *e, uint64_t seed) {
    if (!e) return mix(seed, 0);
    uint64_t h = mix(seed, (uint64_t)e->kind * 131 + (uint64_t)e->dtype * 7 + (uint64_t)e->op);
    switch (e->kind) {
    case EX_INT: h = mix(h, (uint64_t)e->ival); break;
    case EX_FLOAT: {
        uint64_t bits;
        memcpy(&bits, &e->fval, 8);
        h = mix(h, bits);
        break;
    }
    case EX_VAR: h = mix(h, (uint64_t)e->var->id * 977 + (uint64_t)e->var->extent); break;
    default: break;
    }
    for (int i = 0; i < e->n_raxes; i++) h = mix(h, (uint64_t)e->raxes[i]->id * 31 + (uint64_t)e->raxes[i]->extent);
    for (int i = 0; i < e->n_args; i++) h = ex_hash(e->args[i], h);
    return h;
}

ex_expr *ex_with_args(ex_builder *b, const ex_expr *e, ex_expr *const *args) {
    ex_expr *c = node(b, e->kind, e->dtype, e->n_args);
    if (!c) return NULL;
    ex_expr **keep = c->args;
    *c = *e;
    c->args = keep;
    for (int i = 0; i < e->n_args; i++) c->args[i] = args[i];
    return c;
}

ex_expr *ex_substitute(ex_builder *b, ex_expr *e, const ex_var *const *vars, ex_expr *const *with, int n) {
    if (!e) return fail(b);
    if (e->kind == EX_VAR) {
        for (int i = 0; i < n; i++)
            if (e->var == vars[i]) return with[i];
        return e;
    }
    if (e->n_args == 0) return e;
    ex_expr *args[KILN_MAX_RANK > 3 ? KILN_MAX_RANK : 3];
    bool changed = false;
    for (int i = 0; i < e->n_args; i++) {
        args[i] = ex_substitute(b, e->args[i], vars, with, n);
        if (!args[i]) return NULL;
        changed |= args[i] != e->args[i];
    }
    if (!changed) return e; /* unchanged subtrees are shared, as Halide's mutators do */
    return ex_with_args(b, e, args);
}

bool ex_is_const_int(const ex_expr *e, int64_t *v) {
    if (!e || e->kind != EX_INT) return false;
    *v = e->ival;
    return true;
}

static const char *const k_binop_names[EX_BINOP_COUNT] = {
    "+", "-", "*", "/", "%", "floordiv", "floormod", "min", "max", "pow",
    "==", "!=", "<", "<=", ">", ">=", "&&", "||", "^", "<<", ">>"};
static const char *const k_fn_names[EX_FN_COUNT] = {
    "neg", "not", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "recip", "tanh", "sigmoid", "erf",
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh",
    "floor", "ceil", "round_even", "isnan", "isinf"};
static const char *const k_combiner_names[EX_COMBINER_COUNT] = {"sum", "prod", "max", "min"};

const char *ex_binop_name(ex_binop op) { return (unsigned)op < EX_BINOP_COUNT ? k_binop_names[op] : "?"; }
const char *ex_fn_name(ex_fn fn) { return (unsigned)fn < EX_FN_COUNT ? k_fn_names[fn] : "?"; }
const char *ex_combiner_name(ex_combiner c) {
    return (unsigned)c < EX_COMBINER_COUNT ? k_combiner_names[c] : "?";
}

/* Name of a tensor or buffer for printing; defined in tir.c / lir.c. */
const char *ex_tensor_name(const struct tir_tensor *t);
const char *ex_buffer_name(const struct lir_buffer *b);

void ex_print(FILE *f, const ex_expr *e) {
    if (!e) {
        fputs("<null>", f);
        return;
    }
    switch (e->kind) {
    case EX_INT:
        if (e->dtype == KILN_BOOL) fputs(e->ival ? "true" : "false", f);
        else fprintf(f, e->dtype == KILN_I64 ? "%lld" : "%lld:%s", (long long)e->ival, kiln_dtype_name(e->dtype));
        break;
    case EX_FLOAT:
        fprintf(f, e->dtype == KILN_F32 ? "%.9gf" : "%.17g:%s", e->fval, kiln_dtype_name(e->dtype));
        break;
    case EX_VAR: fputs(e->var->name, f); break;
    case EX_LOAD:
        fputs(e->tensor ? ex_tensor_name(e->tensor) : ex_buffer_name(e->buffer), f);
        fputc('[', f);
        for (int i = 0; i < e->n_args; i++) {
            if (i) fputs(", ", f);
            ex_print(f, e->args[i]);
        }
        fputc(']', f);
        break;
    case EX_BINARY:
        if (e->op >= EX_FLOORDIV && e->op <= EX_POW) {
            fprintf(f, "%s(", k_binop_names[e->op]);
            ex_print(f, e->args[0]);
            fputs(", ", f);
            ex_print(f, e->args[1]);
            fputc(')', f);
        } else {
            fputc('(', f);
            ex_print(f, e->args[0]);
            fprintf(f, " %s ", k_binop_names[e->op]);
            ex_print(f, e->args[1]);
            fputc(')', f);
        }
        break;
    case EX_UNARY:
        fprintf(f, "%s(", ex_fn_name((ex_fn)e->op));
        ex_print(f, e->args[0]);
        fputc(')', f);
        break;
    case EX_SELECT:
        fputs("select(", f);
        for (int i = 0; i < 3; i++) {
            if (i) fputs(", ", f);
            ex_print(f, e->args[i]);
        }
        fputc(')', f);
        break;
    case EX_CAST:
        fprintf(f, "%s(", kiln_dtype_name(e->dtype));
        ex_print(f, e->args[0]);
        fputc(')', f);
        break;
    case EX_REDUCE:
        fprintf(f, "%s(", ex_combiner_name((ex_combiner)e->op));
        for (int i = 0; i < e->n_raxes; i++) fprintf(f, "%s%s", i ? ", " : "", e->raxes[i]->name);
        fputs(") ", f);
        ex_print(f, e->args[0]);
        break;
    }
}
