/*
** lir_interp.c — the loop-IR interpreter: runs any nest on the CPU, the
** oracle for schedules and backends.
**
** Semantics it fixes for the loop IR:
**  - Integer math is exact int64 arithmetic wrapped to the expression's
**    dtype (two's complement); u64 is compared and divided as unsigned.
**    Integer division or remainder by zero is an error.
**  - f32 math rounds to f32 at every operation (computed in float), f64 in
**    double; f16, bf16 and the 8-bit floats compute in float and round to
**    their type after every operation. Math functions are libm's (expf,
**    logf, tanhf, erff, ... for f32).
**  - min/max propagate NaN; comparisons are false on NaN except !=.
**  - Float to integer casts truncate toward zero and saturate (NaN gives 0);
**    integer to integer keeps the low bits.
**  - select evaluates only the chosen operand, && and || short-circuit.
**  - Every load and store is bounds-checked; an out-of-range access is a
**    KILN_ERR_INTERNAL error naming the buffer and the index.
**  - Allocated buffers start poisoned (floats NaN, integers 0xA5 bytes), so
**    a nest that reads before it writes shows it.
**  - Parallel, vectorized and unrolled loops run in order. A thread loop
**    starts a GPU block: with the thread loops nested directly inside it,
**    every thread of the block runs the body up to a barrier, then every
**    thread on to the next barrier, and so on (phase by phase, threads in
**    order). A barrier not reached by every thread is an error. Local
**    buffers allocated inside the thread loops are per thread.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "lir.h"

typedef union ip_val {
    int64_t i;
    double d;
} ip_val;

typedef struct ip_frame {
    const lir_stmt *s;
    int64_t i, end;
    int state, slot;
} ip_frame;

typedef struct ip_vb {
    const ex_var *v;
    int64_t x;
} ip_vb;

typedef struct ip_bb {
    const lir_buffer *b;
    void *d; /* owned */
} ip_bb;

/* A thread of execution: its statement stack and bindings. Lookups fall
** back to the parent, the code that started the block. */
typedef struct ip_mach {
    ip_frame *fr;
    int n_fr, cap_fr;
    ip_vb *vb;
    int n_vb, cap_vb;
    ip_bb *bb;
    int n_bb, cap_bb;
    const struct ip_mach *parent;
    bool in_block;
    const lir_stmt *barrier; /* where it waits */
} ip_mach;

typedef struct ip {
    kiln_ctx *ctx;
    const lir_func *f;
    void *const *args;
    kiln_status st;
} ip;

enum { RUN_DONE, RUN_BARRIER, RUN_ERROR };

#define MAX_BLOCK_THREADS 65536
#define MAX_ALLOC_BYTES ((int64_t)1 << 31)

__attribute__((format(printf, 3, 4))) static kiln_status ifail(ip *p, kiln_status s, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!p->st) p->st = kiln_fail(p->ctx, s, "lir_interp: kernel '%s': %s", p->f->name, msg);
    return p->st;
}

static kiln_status nomem(ip *p) { return ifail(p, KILN_ERR_NOMEM, "out of memory"); }

static bool is_fl(kiln_dtype t) { return kiln_dtype_is_float(t) || kiln_dtype_is_lowp_float(t); }
static bool is_thread(lir_loop_kind k) { return k >= LIR_GPU_THREAD_X && k <= LIR_GPU_THREAD_Z; }
static bool is_block(lir_loop_kind k) { return k >= LIR_GPU_BLOCK_X && k <= LIR_GPU_BLOCK_Z; }

/* ---- bindings ---- */

static bool lookup_var(const ip_mach *m, const ex_var *v, int64_t *out) {
    for (; m; m = m->parent)
        for (int i = m->n_vb - 1; i >= 0; i--)
            if (m->vb[i].v == v) {
                *out = m->vb[i].x;
                return true;
            }
    return false;
}

static void *lookup_buf(const ip *p, const ip_mach *m, const lir_buffer *b) {
    for (; m; m = m->parent)
        for (int i = m->n_bb - 1; i >= 0; i--)
            if (m->bb[i].b == b) return m->bb[i].d;
    if (b->arg_index >= 0 && b->arg_index < p->f->n_args && p->f->args[b->arg_index] == b) {
        void *d = p->args ? p->args[b->arg_index] : NULL;
        return d ? d : b->constant ? b->constant->data : NULL;
    }
    return NULL;
}

static bool push_frame(ip *p, ip_mach *m, const lir_stmt *s) {
    if (!kiln_grow((void **)&m->fr, &m->cap_fr, m->n_fr + 1, sizeof(ip_frame))) return nomem(p), false;
    m->fr[m->n_fr++] = (ip_frame){s, 0, 0, 0, 0};
    return true;
}

static bool push_var(ip *p, ip_mach *m, const ex_var *v, int64_t x) {
    if (!kiln_grow((void **)&m->vb, &m->cap_vb, m->n_vb + 1, sizeof(ip_vb))) return nomem(p), false;
    m->vb[m->n_vb++] = (ip_vb){v, x};
    return true;
}

static void mach_release(ip_mach *m) {
    for (int i = 0; i < m->n_bb; i++) kiln_free(m->bb[i].d);
    kiln_free(m->fr);
    kiln_free(m->vb);
    kiln_free(m->bb);
    memset(m, 0, sizeof *m);
}

/* ---- scalar semantics ---- */

static int64_t inorm(kiln_dtype t, uint64_t v) {
    switch (t) {
    case KILN_BOOL: return v != 0;
    case KILN_I8: return (int8_t)(uint8_t)v;
    case KILN_U8: return (uint8_t)v;
    case KILN_I16: return (int16_t)(uint16_t)v;
    case KILN_U16: return (uint16_t)v;
    case KILN_I32: return (int32_t)(uint32_t)v;
    case KILN_U32: return (uint32_t)v;
    case KILN_I4: return (int64_t)(v & 15) - ((v & 8) ? 16 : 0);
    case KILN_U4: return (int64_t)(v & 15);
    case KILN_I2: return (int64_t)(v & 3) - ((v & 2) ? 4 : 0);
    case KILN_U2: return (int64_t)(v & 3);
    default: return (int64_t)v;
    }
}

static int int_bits(kiln_dtype t) {
    if (t == KILN_I4 || t == KILN_U4) return 4;
    if (t == KILN_I2 || t == KILN_U2) return 2;
    if (t == KILN_BOOL) return 1;
    return (int)kiln_dtype_size(t) * 8;
}

static bool is_signed_int(kiln_dtype t) { return t != KILN_BOOL && kiln_dtype_is_signed(t); }

static double fround(kiln_dtype t, double v) {
    if (t == KILN_F64) return v;
    if (t == KILN_F32) return (float)v;
    uint8_t tmp[8];
    kiln_store_f64(t, tmp, 0, v);
    return kiln_load_f64(t, tmp, 0);
}

static double fnan_max(double a, double b, bool mx) {
    if (isnan(a) || isnan(b)) return NAN;
    return mx ? (a > b ? a : b) : (a < b ? a : b);
}

static double fbin32(int op, float a, float b) {
    switch (op) {
    case EX_ADD: return a + b;
    case EX_SUB: return a - b;
    case EX_MUL: return a * b;
    case EX_DIV: return a / b;
    case EX_MOD: return fmodf(a, b);
    case EX_FLOORDIV: return floorf(a / b);
    case EX_FLOORMOD: {
        float r = fmodf(a, b);
        return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
    }
    case EX_MIN: return (float)fnan_max(a, b, false);
    case EX_MAX: return (float)fnan_max(a, b, true);
    case EX_POW: return powf(a, b);
    default: return 0;
    }
}

static double fbin64(int op, double a, double b) {
    switch (op) {
    case EX_ADD: return a + b;
    case EX_SUB: return a - b;
    case EX_MUL: return a * b;
    case EX_DIV: return a / b;
    case EX_MOD: return fmod(a, b);
    case EX_FLOORDIV: return floor(a / b);
    case EX_FLOORMOD: {
        double r = fmod(a, b);
        return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
    }
    case EX_MIN: return fnan_max(a, b, false);
    case EX_MAX: return fnan_max(a, b, true);
    case EX_POW: return pow(a, b);
    default: return 0;
    }
}

static int64_t ipow(kiln_dtype t, int64_t a, int64_t b) {
    if (b < 0) return a == 1 ? 1 : a == -1 ? (b & 1 ? -1 : 1) : 0;
    uint64_t r = 1, x = (uint64_t)a;
    for (uint64_t e = (uint64_t)b; e; e >>= 1, x *= x)
        if (e & 1) r *= x;
    return inorm(t, r);
}

static kiln_status ibin(ip *p, int op, kiln_dtype t, int64_t a, int64_t b, int64_t *r) {
    bool u = t == KILN_U64;
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    int bits = int_bits(t);
    switch (op) {
    case EX_ADD: *r = inorm(t, ua + ub); break;
    case EX_SUB: *r = inorm(t, ua - ub); break;
    case EX_MUL: *r = inorm(t, ua * ub); break;
    case EX_DIV:
    case EX_MOD:
    case EX_FLOORDIV:
    case EX_FLOORMOD: {
        if (b == 0) return ifail(p, KILN_ERR_INVALID, "integer %s by zero", op == EX_DIV || op == EX_FLOORDIV ? "division" : "remainder");
        if (u) {
            *r = (int64_t)(op == EX_DIV || op == EX_FLOORDIV ? ua / ub : ua % ub);
            break;
        }
        int64_t q = b == -1 ? (int64_t)(0 - ua) : a / b, m = b == -1 ? 0 : a % b;
        if (op == EX_FLOORDIV && m != 0 && ((m < 0) != (b < 0))) q--;
        if (op == EX_FLOORMOD && m != 0 && ((m < 0) != (b < 0))) m += b;
        *r = inorm(t, (uint64_t)(op == EX_DIV || op == EX_FLOORDIV ? q : m));
        break;
    }
    case EX_MIN: *r = (u ? ua < ub : a < b) ? a : b; break;
    case EX_MAX: *r = (u ? ua > ub : a > b) ? a : b; break;
    case EX_POW: *r = ipow(t, a, b); break;
    case EX_EQ: *r = a == b; break;
    case EX_NE: *r = a != b; break;
    case EX_LT: *r = u ? ua < ub : a < b; break;
    case EX_LE: *r = u ? ua <= ub : a <= b; break;
    case EX_GT: *r = u ? ua > ub : a > b; break;
    case EX_GE: *r = u ? ua >= ub : a >= b; break;
    case EX_AND: *r = inorm(t, ua & ub); break;
    case EX_OR: *r = inorm(t, ua | ub); break;
    case EX_XOR: *r = inorm(t, ua ^ ub); break;
    case EX_SHL: *r = b < 0 || b >= bits ? 0 : inorm(t, ua << b); break;
    case EX_SHR:
        if (b < 0 || b >= bits) *r = is_signed_int(t) && a < 0 ? -1 : 0;
        else *r = u ? (int64_t)(ua >> b) : a >> b;
        break;
    default: return ifail(p, KILN_ERR_INTERNAL, "unknown operator %d", op);
    }
    return KILN_OK;
}

static kiln_status fcmp_or_bin(ip *p, const ex_expr *e, double a, double b, ip_val *out) {
    kiln_dtype t = e->args[0]->dtype;
    switch (e->op) {
    case EX_EQ: out->i = a == b; return KILN_OK;
    case EX_NE: out->i = a != b; return KILN_OK;
    case EX_LT: out->i = a < b; return KILN_OK;
    case EX_LE: out->i = a <= b; return KILN_OK;
    case EX_GT: out->i = a > b; return KILN_OK;
    case EX_GE: out->i = a >= b; return KILN_OK;
    case EX_AND:
    case EX_OR:
    case EX_XOR:
    case EX_SHL:
    case EX_SHR: return ifail(p, KILN_ERR_INTERNAL, "'%s' on %s", ex_binop_name((ex_binop)e->op), kiln_dtype_name(t));
    default: break;
    }
    if (t == KILN_F64) out->d = fbin64(e->op, a, b);
    else out->d = fround(t, fbin32(e->op, (float)a, (float)b));
    return KILN_OK;
}

static double fun32(int fn, float x) {
    switch (fn) {
    case EX_NEG: return -x;
    case EX_ABS: return fabsf(x);
    case EX_SIGN: return x > 0 ? 1.0f : x < 0 ? -1.0f : x;
    case EX_EXP: return expf(x);
    case EX_LOG: return logf(x);
    case EX_SQRT: return sqrtf(x);
    case EX_RSQRT: return 1.0f / sqrtf(x);
    case EX_RECIP: return 1.0f / x;
    case EX_TANH: return tanhf(x);
    case EX_SIGMOID: return 1.0f / (1.0f + expf(-x));
    case EX_ERF: return erff(x);
    case EX_SIN: return sinf(x);
    case EX_COS: return cosf(x);
    case EX_TAN: return tanf(x);
    case EX_ASIN: return asinf(x);
    case EX_ACOS: return acosf(x);
    case EX_ATAN: return atanf(x);
    case EX_SINH: return sinhf(x);
    case EX_COSH: return coshf(x);
    case EX_ASINH: return asinhf(x);
    case EX_ACOSH: return acoshf(x);
    case EX_ATANH: return atanhf(x);
    case EX_FLOOR: return floorf(x);
    case EX_CEIL: return ceilf(x);
    case EX_ROUND_EVEN: return nearbyintf(x);
    default: return NAN;
    }
}

static double fun64(int fn, double x) {
    switch (fn) {
    case EX_NEG: return -x;
    case EX_ABS: return fabs(x);
    case EX_SIGN: return x > 0 ? 1.0 : x < 0 ? -1.0 : x;
    case EX_EXP: return exp(x);
    case EX_LOG: return log(x);
    case EX_SQRT: return sqrt(x);
    case EX_RSQRT: return 1.0 / sqrt(x);
    case EX_RECIP: return 1.0 / x;
    case EX_TANH: return tanh(x);
    case EX_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case EX_ERF: return erf(x);
    case EX_SIN: return sin(x);
    case EX_COS: return cos(x);
    case EX_TAN: return tan(x);
    case EX_ASIN: return asin(x);
    case EX_ACOS: return acos(x);
    case EX_ATAN: return atan(x);
    case EX_SINH: return sinh(x);
    case EX_COSH: return cosh(x);
    case EX_ASINH: return asinh(x);
    case EX_ACOSH: return acosh(x);
    case EX_ATANH: return atanh(x);
    case EX_FLOOR: return floor(x);
    case EX_CEIL: return ceil(x);
    case EX_ROUND_EVEN: return nearbyint(x);
    default: return NAN;
    }
}

/* Float to integer: toward zero, saturated to t's range, NaN gives 0. */
static int64_t f2i(kiln_dtype t, double x) {
    if (isnan(x)) return 0;
    if (t == KILN_BOOL) return x != 0;
    x = trunc(x);
    if (t == KILN_U64) return x <= 0 ? 0 : x >= 18446744073709551616.0 ? (int64_t)UINT64_MAX : (int64_t)(uint64_t)x;
    int bits = int_bits(t);
    double lo = is_signed_int(t) ? -ldexp(1, bits - 1) : 0, hi = is_signed_int(t) ? ldexp(1, bits - 1) - 1 : ldexp(1, bits) - 1;
    if (bits == 64) {
        if (x <= -9223372036854775808.0) return INT64_MIN;
        if (x >= 9223372036854775808.0) return INT64_MAX;
        return (int64_t)x;
    }
    return (int64_t)(x < lo ? lo : x > hi ? hi : x);
}

static double i2f(kiln_dtype to, kiln_dtype from, int64_t v) {
    if (to == KILN_F32) return from == KILN_U64 ? (float)(uint64_t)v : (float)v;
    double d = from == KILN_U64 ? (double)(uint64_t)v : (double)v;
    return fround(to, d);
}

static kiln_status eval(ip *p, const ip_mach *m, const ex_expr *e, ip_val *out);

static kiln_status eval_unary(ip *p, const ip_mach *m, const ex_expr *e, ip_val *out) {
    ip_val a;
    if (eval(p, m, e->args[0], &a)) return p->st;
    kiln_dtype t = e->args[0]->dtype;
    if (e->op == EX_ISNAN || e->op == EX_ISINF) {
        out->i = is_fl(t) && (e->op == EX_ISNAN ? isnan(a.d) : isinf(a.d));
        return KILN_OK;
    }
    if (is_fl(t)) {
        if (e->op == EX_NOT) return ifail(p, KILN_ERR_INTERNAL, "'not' on %s", kiln_dtype_name(t));
        out->d = t == KILN_F64 ? fun64(e->op, a.d) : fround(t, fun32(e->op, (float)a.d));
        return KILN_OK;
    }
    uint64_t u = (uint64_t)a.i;
    switch (e->op) {
    case EX_NEG: out->i = inorm(t, 0 - u); break;
    case EX_NOT: out->i = t == KILN_BOOL ? !a.i : inorm(t, ~u); break;
    case EX_ABS: out->i = is_signed_int(t) && a.i < 0 ? inorm(t, 0 - u) : a.i; break;
    case EX_SIGN: out->i = t == KILN_U64 ? a.i != 0 : (a.i > 0) - (a.i < 0); break;
    case EX_FLOOR:
    case EX_CEIL:
    case EX_ROUND_EVEN: out->i = a.i; break;
    default: out->i = f2i(t, fun64(e->op, t == KILN_U64 ? (double)u : (double)a.i)); break;
    }
    return KILN_OK;
}

static kiln_status eval_cast(ip *p, const ip_mach *m, const ex_expr *e, ip_val *out) {
    ip_val a;
    if (eval(p, m, e->args[0], &a)) return p->st;
    kiln_dtype from = e->args[0]->dtype, to = e->dtype;
    if (is_fl(to)) out->d = is_fl(from) ? fround(to, a.d) : i2f(to, from, a.i);
    else if (is_fl(from)) out->i = f2i(to, a.d);
    else out->i = inorm(to, (uint64_t)a.i);
    return KILN_OK;
}

static kiln_status check_index(ip *p, const lir_buffer *b, int64_t idx, const char *what) {
    if (idx < 0 || idx >= b->size)
        return ifail(p, KILN_ERR_INTERNAL, "%s %s[%lld] out of bounds (the buffer has %lld elements)", what, b->name,
                     (long long)idx, (long long)b->size);
    return KILN_OK;
}

static kiln_status eval_load(ip *p, const ip_mach *m, const ex_expr *e, ip_val *out) {
    ip_val idx;
    const lir_buffer *b = e->buffer;
    if (!b || e->n_args != 1) return ifail(p, KILN_ERR_INTERNAL, "malformed load");
    if (eval(p, m, e->args[0], &idx) || check_index(p, b, idx.i, "load from")) return p->st;
    void *d = lookup_buf(p, m, b);
    if (!d) return ifail(p, KILN_ERR_INTERNAL, "load from %s outside its allocation", b->name);
    if (is_fl(b->dtype)) out->d = kiln_load_f64(b->dtype, d, idx.i);
    else out->i = kiln_load_i64(b->dtype, d, idx.i);
    return KILN_OK;
}

static kiln_status eval_binary(ip *p, const ip_mach *m, const ex_expr *e, ip_val *out) {
    ip_val a, b;
    kiln_dtype t = e->args[0]->dtype;
    if (eval(p, m, e->args[0], &a)) return p->st;
    if (t == KILN_BOOL && (e->op == EX_AND || e->op == EX_OR) && (a.i != 0) == (e->op == EX_OR)) {
        out->i = a.i != 0;
        return KILN_OK;
    }
    if (eval(p, m, e->args[1], &b)) return p->st;
    if (is_fl(t)) return fcmp_or_bin(p, e, a.d, b.d, out);
    return ibin(p, e->op, t, a.i, b.i, &out->i);
}

static kiln_status eval(ip *p, const ip_mach *m, const ex_expr *e, ip_val *out) {
    if (!e) return ifail(p, KILN_ERR_INTERNAL, "missing expression");
    switch (e->kind) {
    case EX_INT:
        if (is_fl(e->dtype)) out->d = (double)e->ival;
        else out->i = inorm(e->dtype, (uint64_t)e->ival);
        return KILN_OK;
    case EX_FLOAT:
        if (is_fl(e->dtype)) out->d = fround(e->dtype, e->fval);
        else out->i = f2i(e->dtype, e->fval);
        return KILN_OK;
    case EX_VAR:
        if (!lookup_var(m, e->var, &out->i))
            return ifail(p, KILN_ERR_INTERNAL, "variable %s is not bound", e->var ? e->var->name : "?");
        return KILN_OK;
    case EX_LOAD: return eval_load(p, m, e, out);
    case EX_BINARY: return eval_binary(p, m, e, out);
    case EX_UNARY: return eval_unary(p, m, e, out);
    case EX_SELECT: {
        ip_val c;
        if (eval(p, m, e->args[0], &c)) return p->st;
        return eval(p, m, e->args[c.i ? 1 : 2], out);
    }
    case EX_CAST: return eval_cast(p, m, e, out);
    case EX_REDUCE: return ifail(p, KILN_ERR_INTERNAL, "a reduction expression in the loop IR");
    }
    return ifail(p, KILN_ERR_INTERNAL, "unknown expression kind");
}

/* ---- statements ---- */

static kiln_status exec_store(ip *p, ip_mach *m, const lir_stmt *s) {
    ip_val idx, v;
    const lir_buffer *b = s->buffer;
    if (eval(p, m, s->index, &idx) || check_index(p, b, idx.i, "store to")) return p->st;
    if (eval(p, m, s->value, &v)) return p->st;
    void *d = lookup_buf(p, m, b);
    if (!d) return ifail(p, KILN_ERR_INTERNAL, "store to %s outside its allocation", b->name);
    if (is_fl(b->dtype)) kiln_store_f64(b->dtype, d, idx.i, v.d);
    else kiln_store_i64(b->dtype, d, idx.i, v.i);
    return KILN_OK;
}

static kiln_status exec_alloc(ip *p, ip_mach *m, const lir_buffer *b) {
    size_t es = kiln_dtype_size(b->dtype);
    if (!es || b->size < 0 || b->size > MAX_ALLOC_BYTES / (int64_t)es)
        return ifail(p, KILN_ERR_UNSUPPORTED, "cannot allocate %s (%lld elements of %s)", b->name, (long long)b->size,
                     kiln_dtype_name(b->dtype));
    void *d = kiln_malloc(b->size ? (size_t)b->size * es : 1);
    if (!d || !kiln_grow((void **)&m->bb, &m->cap_bb, m->n_bb + 1, sizeof(ip_bb))) {
        kiln_free(d);
        return nomem(p);
    }
    memset(d, is_fl(b->dtype) ? 0xFF : 0xA5, b->size ? (size_t)b->size * es : 1);
    m->bb[m->n_bb++] = (ip_bb){b, d};
    return KILN_OK;
}

static kiln_status run_block(ip *p, ip_mach *launcher, const lir_stmt *s);

static kiln_status for_start(ip *p, ip_mach *m, ip_frame *F) {
    const lir_stmt *s = F->s;
    ip_val lo, ext;
    if (is_block(s->loop) && m->in_block)
        return ifail(p, KILN_ERR_INTERNAL, "%s loop %s inside a thread loop", lir_loop_kind_name(s->loop), s->var->name);
    if (eval(p, m, s->min, &lo) || eval(p, m, s->extent, &ext)) return p->st;
    if (ext.i > 0 && lo.i > INT64_MAX - ext.i) return ifail(p, KILN_ERR_INTERNAL, "loop %s overflows", s->var->name);
    F->i = lo.i;
    F->end = ext.i > 0 ? lo.i + ext.i : lo.i;
    F->state = 1;
    F->slot = m->n_vb;
    return push_var(p, m, s->var, lo.i) ? KILN_OK : p->st;
}

/* Runs the machine until it finishes or waits at a barrier. */
static int run(ip *p, ip_mach *m) {
    while (m->n_fr > 0) {
        ip_frame *F = &m->fr[m->n_fr - 1];
        const lir_stmt *s = F->s, *next = NULL;
        switch (s->kind) {
        case LIR_NOP: m->n_fr--; break;
        case LIR_STORE:
            if (exec_store(p, m, s)) return RUN_ERROR;
            m->n_fr--;
            break;
        case LIR_BARRIER:
            m->n_fr--;
            if (m->in_block) {
                m->barrier = s;
                return RUN_BARRIER;
            }
            break;
        case LIR_SEQ:
            if (F->i < s->n_stmts) next = s->stmts[F->i++];
            else m->n_fr--;
            break;
        case LIR_IF:
            if (F->state == 0) {
                ip_val c;
                if (eval(p, m, s->cond, &c)) return RUN_ERROR;
                F->state = 1;
                next = c.i ? s->body : s->else_body;
                if (!next) m->n_fr--;
            } else {
                m->n_fr--;
            }
            break;
        case LIR_ALLOC:
            if (F->state == 0) {
                if (exec_alloc(p, m, s->buffer)) return RUN_ERROR;
                F->state = 1;
                next = s->body;
            } else {
                kiln_free(m->bb[--m->n_bb].d);
                m->n_fr--;
            }
            break;
        case LIR_FOR:
            if (F->state == 0 && is_thread(s->loop)) {
                if (m->in_block) {
                    ifail(p, KILN_ERR_INTERNAL, "thread loop %s is not directly inside the block's thread loops", s->var->name);
                    return RUN_ERROR;
                }
                if (run_block(p, m, s)) return RUN_ERROR;
                m->n_fr--;
                break;
            }
            if (F->state == 0 && for_start(p, m, F)) return RUN_ERROR;
            if (F->i < F->end) {
                m->vb[F->slot].x = F->i++;
                next = s->body;
            } else {
                m->n_vb--;
                m->n_fr--;
            }
            break;
        default: ifail(p, KILN_ERR_INTERNAL, "unknown statement kind %d", (int)s->kind); return RUN_ERROR;
        }
        if (next && !push_frame(p, m, next)) return RUN_ERROR;
    }
    return RUN_DONE;
}

/* The thread loops nested directly in s, and the threads' body. */
static int thread_chain(ip *p, const lir_stmt *s, const lir_stmt **chain, const lir_stmt **body) {
    int n = 0;
    for (; s->kind == LIR_FOR && is_thread(s->loop); s = s->body) {
        for (int i = 0; i < n; i++)
            if (chain[i]->loop == s->loop) {
                ifail(p, KILN_ERR_INTERNAL, "two %s loops nested", lir_loop_kind_name(s->loop));
                return -1;
            }
        chain[n++] = s;
    }
    *body = s;
    return n;
}

static kiln_status run_phases(ip *p, ip_mach *th, int64_t n) {
    for (;;) {
        int64_t waiting = 0, done = 0;
        const lir_stmt *bar = NULL;
        for (int64_t t = 0; t < n; t++) {
            if (th[t].n_fr == 0) {
                done++;
                continue;
            }
            int r = run(p, &th[t]);
            if (r == RUN_ERROR) return p->st;
            if (r == RUN_DONE) {
                done++;
                continue;
            }
            waiting++;
            if (bar && th[t].barrier != bar)
                return ifail(p, KILN_ERR_INTERNAL, "threads of a block wait at different barriers");
            bar = th[t].barrier;
        }
        if (!waiting) return KILN_OK;
        if (done) return ifail(p, KILN_ERR_INTERNAL, "a barrier is not reached by every thread of the block");
    }
}

static kiln_status run_block(ip *p, ip_mach *launcher, const lir_stmt *s) {
    const lir_stmt *chain[3], *body;
    int nc = thread_chain(p, s, chain, &body);
    if (nc < 0) return p->st;
    int64_t lo[3], ext[3], n = 1;
    for (int k = 0; k < nc; k++) {
        ip_val a, b;
        if (eval(p, launcher, chain[k]->min, &a) || eval(p, launcher, chain[k]->extent, &b)) return p->st;
        lo[k] = a.i;
        ext[k] = b.i > 0 ? b.i : 0;
        if (ext[k] && n > MAX_BLOCK_THREADS / ext[k])
            return ifail(p, KILN_ERR_UNSUPPORTED, "a block of more than %d threads", MAX_BLOCK_THREADS);
        n *= ext[k];
    }
    if (n == 0) return KILN_OK;
    ip_mach *th = kiln_calloc((size_t)n, sizeof *th);
    if (!th) return nomem(p);
    for (int64_t t = 0; t < n && !p->st; t++) {
        th[t].parent = launcher;
        th[t].in_block = true;
        int64_t rem = t;
        for (int k = nc - 1; k >= 0; k--, rem /= ext[k + 1]) push_var(p, &th[t], chain[k]->var, lo[k] + rem % ext[k]);
        push_frame(p, &th[t], body);
    }
    if (!p->st) run_phases(p, th, n);
    for (int64_t t = 0; t < n; t++) mach_release(&th[t]);
    kiln_free(th);
    return p->st;
}

kiln_status lir_interp_run(kiln_ctx *ctx, const lir_func *f, void *const *args) {
    if (!f || !f->body) return kiln_fail(ctx, KILN_ERR_INVALID, "lir_interp: no kernel or no body");
    ip p = {ctx, f, args, KILN_OK};
    for (int i = 0; i < f->n_args; i++)
        if (!lookup_buf(&p, NULL, f->args[i]))
            return ifail(&p, KILN_ERR_INVALID, "argument %d (%s) has no data", i, f->args[i]->name);
    ip_mach m;
    memset(&m, 0, sizeof m);
    if (push_frame(&p, &m, f->body)) run(&p, &m);
    mach_release(&m);
    return p.st;
}
