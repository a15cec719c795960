/*
** tir_eval.h — a direct evaluator of the tensor IR for tests (included by
** the test files that use it; everything here is static).
**
** Every stage is computed by walking its spatial axes and evaluating its
** body per element, with the expression semantics ir/ops/compute.h states:
** float arithmetic rounded to the element type after every operation,
** NaN-propagating min/max, integers wrapping in their width, float-to-int
** casts truncating and saturating (NaN gives 0). Both arms of a select are
** evaluated and every load is bounds-checked, so a definition that counts
** on a select to guard an out-of-range load, or divides by a zero it meant
** to select away, is caught. It is independent of the scheduler and the
** loop IR: a second oracle next to the reference kernels.
*/
#ifndef KILN_TEST_TIR_EVAL_H
#define KILN_TEST_TIR_EVAL_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "ir/tir.h"

typedef struct te_val {
    double f;  /* float types */
    int64_t i; /* integers (u64 as its bits) and bool */
} te_val;

#define TE_MAX_VARS 64

typedef struct te_state {
    kiln_ctx *ctx;
    const tir_func *f;
    const kiln_tensor *in; /* per input */
    kiln_tensor *bufs;     /* per stage */
    int n_vars;
    const ex_var *vars[TE_MAX_VARS];
    int64_t vals[TE_MAX_VARS];
    kiln_status err;
} te_state;

static bool te_isfloat(kiln_dtype t) { return kiln_dtype_is_float(t); }
static bool te_unsigned(kiln_dtype t) { return !kiln_dtype_is_signed(t) && !te_isfloat(t); }

static void te_fail(te_state *s, const char *what, const char *name) {
    if (s->err) return;
    char buf[256];
    snprintf(buf, sizeof buf, "tir eval of '%s': %s%s%s", s->f->name, what, name ? " " : "", name ? name : "");
    s->err = kiln_fail(s->ctx, KILN_ERR_INTERNAL, "%s", buf);
}

/* Keeps the low bits of v as type t would, sign- or zero-extended. */
static int64_t te_wrap(kiln_dtype t, uint64_t v) {
    switch (t) {
    case KILN_I8: return (int8_t)v;
    case KILN_U8: return (uint8_t)v;
    case KILN_I16: return (int16_t)v;
    case KILN_U16: return (uint16_t)v;
    case KILN_I32: return (int32_t)v;
    case KILN_U32: return (uint32_t)v;
    case KILN_BOOL: return v & 1;
    default: return (int64_t)v;
    }
}

static double te_round(kiln_dtype t, double v) {
    switch (t) {
    case KILN_F32: return (float)v;
    case KILN_F16: return kiln_f16_to_f32(kiln_f32_to_f16((float)v));
    case KILN_BF16: return kiln_bf16_to_f32(kiln_f32_to_bf16((float)v));
    default: return v;
    }
}

/* double -> float rounding to odd, so a second rounding to f16/bf16 is exact. */
static float te_f32_odd(double d) {
    float x = (float)d;
    if ((double)x == d || !isfinite(x)) return x;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    if (!(bits & 1)) bits += fabs((double)x) > fabs(d) ? (uint32_t)-1 : 1u;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void te_int_range(kiln_dtype t, double *lo, double *hi) {
    int bits = (int)kiln_dtype_size(t) * 8;
    if (t == KILN_BOOL) bits = 1;
    if (te_unsigned(t)) {
        *lo = 0;
        *hi = ldexp(1.0, bits) - 1;
    } else {
        *lo = -ldexp(1.0, bits - 1);
        *hi = ldexp(1.0, bits - 1) - 1;
    }
}

static te_val te_cast(kiln_dtype from, te_val v, kiln_dtype to) {
    te_val r = {0, 0};
    if (te_isfloat(from)) {
        double x = v.f;
        if (te_isfloat(to)) {
            if (to == KILN_F16) r.f = kiln_f16_to_f32(kiln_f32_to_f16(te_f32_odd(x)));
            else if (to == KILN_BF16) r.f = kiln_bf16_to_f32(kiln_f32_to_bf16(te_f32_odd(x)));
            else r.f = te_round(to, x);
        } else if (to == KILN_BOOL) {
            r.i = x != 0;
        } else {
            double lo, hi, t = trunc(x);
            te_int_range(to, &lo, &hi);
            if (x != x) r.i = 0;
            else if (t <= lo) r.i = te_unsigned(to) ? 0 : (to == KILN_I64 ? INT64_MIN : (int64_t)lo);
            else if (t >= hi) r.i = to == KILN_U64 ? -1 : to == KILN_I64 ? INT64_MAX : (int64_t)hi;
            else r.i = to == KILN_U64 ? (int64_t)(uint64_t)t : (int64_t)t;
        }
        return r;
    }
    bool u = te_unsigned(from);
    if (te_isfloat(to)) {
        float fl = u ? (float)(uint64_t)v.i : (float)v.i;
        if (to == KILN_F64) r.f = u ? (double)(uint64_t)v.i : (double)v.i;
        else r.f = te_round(to, fl);
    } else if (to == KILN_BOOL) {
        r.i = v.i != 0;
    } else {
        r.i = te_wrap(to, (uint64_t)v.i);
    }
    return r;
}

static te_val te_load_elem(const kiln_tensor *t, int64_t i) {
    te_val v = {0, 0};
    if (te_isfloat(t->dtype)) v.f = kiln_load_f64(t->dtype, t->data, i);
    else v.i = kiln_load_i64(t->dtype, t->data, i);
    return v;
}

static void te_store_elem(kiln_tensor *t, int64_t i, te_val v) {
    if (te_isfloat(t->dtype)) kiln_store_f64(t->dtype, t->data, i, v.f);
    else kiln_store_i64(t->dtype, t->data, i, v.i);
}

static te_val te_expr(te_state *s, const ex_expr *e);

static int64_t te_var(te_state *s, const ex_var *x) {
    for (int i = s->n_vars - 1; i >= 0; i--)
        if (s->vars[i] == x) return s->vals[i];
    te_fail(s, "unbound variable", x->name);
    return 0;
}

static const kiln_tensor *te_tensor_data(te_state *s, const struct tir_tensor *t) {
    if (t->stage) return &s->bufs[t->stage->id];
    return &s->in[t->arg_index];
}

static te_val te_load(te_state *s, const ex_expr *e) {
    const struct tir_tensor *t = e->tensor;
    te_val zero = {0, 0};
    if (!t) {
        te_fail(s, "a load from a buffer", NULL);
        return zero;
    }
    int64_t off = 0;
    for (int d = 0; d < t->rank; d++) {
        int64_t k = te_expr(s, e->args[d]).i;
        if (k < 0 || k >= t->dims[d]) {
            char what[128];
            snprintf(what, sizeof what, "index %lld out of range [0, %lld) in dim %d of", (long long)k,
                     (long long)t->dims[d], d);
            te_fail(s, what, t->name);
            return zero;
        }
        off = off * t->dims[d] + k;
    }
    return te_load_elem(te_tensor_data(s, t), off);
}

static int te_cmp(kiln_dtype t, te_val a, te_val b) {
    if (te_isfloat(t)) return a.f < b.f ? -1 : a.f > b.f ? 1 : a.f == b.f ? 0 : 2;
    if (te_unsigned(t)) return (uint64_t)a.i < (uint64_t)b.i ? -1 : (uint64_t)a.i > (uint64_t)b.i;
    return a.i < b.i ? -1 : a.i > b.i;
}

static te_val te_float_bin(te_state *s, int op, kiln_dtype t, double a, double b) {
    te_val r = {0, 0};
    double v = 0;
    switch (op) {
    case EX_ADD: v = a + b; break;
    case EX_SUB: v = a - b; break;
    case EX_MUL: v = a * b; break;
    case EX_DIV: v = a / b; break;
    case EX_MOD: v = fmod(a, b); break;
    case EX_FLOORDIV: v = floor(a / b); break;
    case EX_FLOORMOD: v = a - b * floor(a / b); break;
    case EX_MIN: v = a != a || b != b ? NAN : a < b ? a : b; break;
    case EX_MAX: v = a != a || b != b ? NAN : a > b ? a : b; break;
    case EX_POW: v = pow(a, b); break;
    default: te_fail(s, "an unsupported float operator", ex_binop_name((ex_binop)op));
    }
    r.f = te_round(t, v);
    return r;
}

static te_val te_int_bin(te_state *s, int op, kiln_dtype t, te_val x, te_val y) {
    uint64_t a = (uint64_t)x.i, b = (uint64_t)y.i, v = 0;
    bool u = te_unsigned(t);
    te_val r = {0, 0};
    if ((op == EX_DIV || op == EX_MOD || op == EX_FLOORDIV || op == EX_FLOORMOD) &&
        (b == 0 || (!u && x.i == INT64_MIN && y.i == -1))) {
        te_fail(s, "an integer division that traps", ex_binop_name((ex_binop)op));
        return r;
    }
    switch (op) {
    case EX_ADD: v = a + b; break;
    case EX_SUB: v = a - b; break;
    case EX_MUL: v = a * b; break;
    case EX_DIV: v = u ? a / b : (uint64_t)(x.i / y.i); break;
    case EX_MOD: v = u ? a % b : (uint64_t)(x.i % y.i); break;
    case EX_FLOORDIV:
        if (u) v = a / b;
        else v = (uint64_t)(x.i / y.i - ((x.i % y.i != 0) && ((x.i < 0) != (y.i < 0))));
        break;
    case EX_FLOORMOD:
        if (u) v = a % b;
        else {
            int64_t m = x.i % y.i;
            v = (uint64_t)(m != 0 && ((m < 0) != (y.i < 0)) ? m + y.i : m);
        }
        break;
    case EX_MIN: v = te_cmp(t, x, y) < 0 ? a : b; break;
    case EX_MAX: v = te_cmp(t, x, y) > 0 ? a : b; break;
    case EX_AND: v = a & b; break;
    case EX_OR: v = a | b; break;
    case EX_XOR: v = a ^ b; break;
    case EX_SHL:
    case EX_SHR:
        if (b >= kiln_dtype_size(t) * 8) {
            te_fail(s, "a shift by the width or more", NULL);
            return r;
        }
        v = op == EX_SHL ? a << b : (u ? a >> b : (uint64_t)(x.i >> b));
        break;
    default: te_fail(s, "an unsupported integer operator", ex_binop_name((ex_binop)op));
    }
    r.i = te_wrap(t, v);
    return r;
}

static te_val te_binary(te_state *s, const ex_expr *e) {
    te_val a = te_expr(s, e->args[0]), b = te_expr(s, e->args[1]), r = {0, 0};
    kiln_dtype t = e->args[0]->dtype;
    if (e->op >= EX_EQ && e->op <= EX_GE) {
        int c = te_cmp(t, a, b);
        switch (e->op) {
        case EX_EQ: r.i = c == 0; break;
        case EX_NE: r.i = c != 0; break;
        case EX_LT: r.i = c == -1; break;
        case EX_LE: r.i = c == -1 || c == 0; break;
        case EX_GT: r.i = c == 1; break;
        default: r.i = c == 1 || c == 0; break;
        }
        return r;
    }
    if (te_isfloat(t)) return te_float_bin(s, e->op, t, a.f, b.f);
    return te_int_bin(s, e->op, t, a, b);
}

static double te_sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double z = exp(x);
    return z / (1.0 + z);
}

static te_val te_float_un(te_state *s, int fn, kiln_dtype t, double x) {
    te_val r = {0, 0};
    double v = 0;
    switch (fn) {
    case EX_NEG: v = -x; break;
    case EX_ABS: v = fabs(x); break;
    case EX_SIGN: v = x > 0 ? 1 : x < 0 ? -1 : x; break;
    case EX_EXP: v = exp(x); break;
    case EX_LOG: v = log(x); break;
    case EX_SQRT: v = sqrt(x); break;
    case EX_RSQRT: v = 1.0 / sqrt(x); break;
    case EX_RECIP: v = 1.0 / x; break;
    case EX_TANH: v = tanh(x); break;
    case EX_SIGMOID: v = te_sigmoid(x); break;
    case EX_ERF: v = erf(x); break;
    case EX_SIN: v = sin(x); break;
    case EX_COS: v = cos(x); break;
    case EX_TAN: v = tan(x); break;
    case EX_ASIN: v = asin(x); break;
    case EX_ACOS: v = acos(x); break;
    case EX_ATAN: v = atan(x); break;
    case EX_SINH: v = sinh(x); break;
    case EX_COSH: v = cosh(x); break;
    case EX_ASINH: v = asinh(x); break;
    case EX_ACOSH: v = acosh(x); break;
    case EX_ATANH: v = atanh(x); break;
    case EX_FLOOR: v = floor(x); break;
    case EX_CEIL: v = ceil(x); break;
    case EX_ROUND_EVEN: v = nearbyint(x); break;
    case EX_ISNAN: r.i = x != x; return r;
    case EX_ISINF: r.i = isinf(x) != 0; return r;
    default: te_fail(s, "an unsupported float function", ex_fn_name((ex_fn)fn));
    }
    r.f = te_round(t, v);
    return r;
}

static te_val te_unary(te_state *s, const ex_expr *e) {
    te_val a = te_expr(s, e->args[0]), r = {0, 0};
    kiln_dtype t = e->args[0]->dtype;
    if (te_isfloat(t)) return te_float_un(s, e->op, t, a.f);
    switch (e->op) {
    case EX_NEG: r.i = te_wrap(t, 0u - (uint64_t)a.i); break;
    case EX_NOT: r.i = t == KILN_BOOL ? !a.i : te_wrap(t, ~(uint64_t)a.i); break;
    case EX_ABS: r.i = te_unsigned(t) || a.i >= 0 ? a.i : te_wrap(t, 0u - (uint64_t)a.i); break;
    case EX_SIGN: r.i = te_unsigned(t) ? a.i != 0 : (a.i > 0) - (a.i < 0); break;
    default: te_fail(s, "an unsupported integer function", ex_fn_name((ex_fn)e->op));
    }
    return r;
}

static te_val te_combine(int c, kiln_dtype t, te_val acc, te_val v) {
    te_val r = acc;
    bool fl = te_isfloat(t);
    switch (c) {
    case EX_SUM:
        if (fl) r.f = te_round(t, acc.f + v.f);
        else r.i = te_wrap(t, (uint64_t)acc.i + (uint64_t)v.i);
        break;
    case EX_PROD:
        if (fl) r.f = te_round(t, acc.f * v.f);
        else r.i = te_wrap(t, (uint64_t)acc.i * (uint64_t)v.i);
        break;
    default: {
        bool mx = c == EX_RMAX;
        if (fl && (acc.f != acc.f || v.f != v.f)) r.f = NAN;
        else if (mx ? te_cmp(t, v, acc) == 1 : te_cmp(t, v, acc) == -1) r = v;
    }
    }
    return r;
}

static te_val te_reduce(te_state *s, const ex_expr *e) {
    te_val acc = te_expr(s, e->args[1]);
    int n = e->n_raxes, base = s->n_vars;
    if (base + n > TE_MAX_VARS) {
        te_fail(s, "too many variables", NULL);
        return acc;
    }
    int64_t dims[KILN_MAX_RANK * 2], idx[KILN_MAX_RANK * 2] = {0};
    for (int r = 0; r < n; r++) {
        dims[r] = e->raxes[r]->extent;
        s->vars[base + r] = e->raxes[r];
        if (dims[r] == 0) return acc;
    }
    s->n_vars = base + n;
    do {
        for (int r = 0; r < n; r++) s->vals[base + r] = idx[r];
        acc = te_combine(e->op, e->dtype, acc, te_expr(s, e->args[0]));
    } while (!s->err && kiln_index_next(n, dims, idx));
    s->n_vars = base;
    return acc;
}

static te_val te_expr(te_state *s, const ex_expr *e) {
    te_val r = {0, 0};
    if (s->err) return r;
    switch (e->kind) {
    case EX_INT: r.i = e->ival; return r;
    case EX_FLOAT: r.f = te_round(e->dtype, e->fval); return r;
    case EX_VAR: r.i = te_var(s, e->var); return r;
    case EX_LOAD: return te_load(s, e);
    case EX_BINARY: return te_binary(s, e);
    case EX_UNARY: return te_unary(s, e);
    case EX_SELECT: {
        te_val c = te_expr(s, e->args[0]), a = te_expr(s, e->args[1]), b = te_expr(s, e->args[2]);
        return c.i ? a : b;
    }
    case EX_CAST: return te_cast(e->args[0]->dtype, te_expr(s, e->args[0]), e->dtype);
    case EX_REDUCE: return te_reduce(s, e);
    }
    return r;
}

static void te_stage(te_state *s, const tir_stage *st) {
    kiln_tensor *out = &s->bufs[st->id];
    int64_t idx[KILN_MAX_RANK] = {0}, total = kiln_numel(out);
    s->n_vars = st->n_axes;
    for (int d = 0; d < st->n_axes; d++) s->vars[d] = st->axes[d];
    for (int64_t i = 0; i < total && !s->err; i++, kiln_index_next(out->rank, out->dims, idx)) {
        for (int d = 0; d < st->n_axes; d++) s->vals[d] = idx[d];
        te_store_elem(out, i, te_expr(s, st->body));
    }
}

static kiln_status te_run(kiln_ctx *ctx, const tir_func *f, const kiln_tensor *in, kiln_tensor *out) {
    te_state s = {ctx, f, in, NULL, 0, {0}, {0}, KILN_OK};
    s.bufs = kiln_calloc((size_t)(f->n_stages ? f->n_stages : 1), sizeof *s.bufs);
    if (!s.bufs) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int k = 0; k < f->n_stages && !s.err; k++) {
        const tir_tensor *t = f->stages[k]->out;
        kiln_tensor_init(&s.bufs[k], t->dtype, t->rank, t->dims);
        s.err = kiln_tensor_alloc(ctx, &s.bufs[k]);
        if (!s.err) te_stage(&s, f->stages[k]);
    }
    for (int i = 0; i < f->n_outputs && !s.err; i++) {
        kiln_tensor *b = &s.bufs[f->outputs[i]->stage->id];
        out[i] = *b;
        b->data = b->alloc = NULL;
    }
    for (int k = 0; k < f->n_stages; k++) kiln_tensor_release(&s.bufs[k]);
    kiln_free(s.bufs);
    return s.err;
}

#endif
