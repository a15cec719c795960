/*
** lir_simplify.c — the arithmetic simplifier of the loop IR.
**
** Expressions: constants fold (integers wrap in their dtype; f32/f64
** + - * / min max in their own precision, as the interpreter computes
** them); i64 sums and products by constants become the canonical affine
** form  v1*c1 + v2*c2 + ... + c  (variables ordered by creation, other
** terms after them), so equal index expressions compare equal and terms
** cancel. floordiv/floormod by a positive constant split off the terms
** whose coefficient the divisor divides:  (io*32 + ii) floordiv 32 → io
** when 0 <= ii < 32, and their remainder part folds when its bounds fit in
** one period. Bounds come from interval arithmetic over the enclosing
** loops' ranges; they also decide min/max and comparisons.
**
** Statements: an IF whose condition is proven goes away (to its then or
** else branch), loops of extent 1 become their body with the variable
** replaced by the loop's start, loops of extent <= 0 and empty bodies
** disappear, nested sequences flatten, an IF nested in an IF of the same
** condition goes away.
**
** On failure (out of memory) the function is left as it was.
**
** The rewrites assume index arithmetic does not overflow int64 (the
** bounds are checked for overflow before a rule relies on them).
*/
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "lir.h"

typedef struct sp_sub {
    const ex_var *var;
    ex_expr *with;
} sp_sub;

typedef struct sp {
    ex_builder *b;
    const lir_var_range *base;
    int n_base;
    lir_var_range *r; /* ranges of the loops around the current statement */
    int n_r, cap_r;
    sp_sub *sub; /* variables of extent-1 loops */
    int n_sub, cap_sub;
    ex_expr **known; /* conditions of the enclosing IFs */
    int n_known, cap_known;
} sp;

typedef struct iv {
    int64_t lo, hi;
    bool ok;
} iv;

#define LIN_MAX 32

typedef struct lin_term {
    ex_expr *a;
    int64_t c;
} lin_term;

/* sum of t[i].a * t[i].c + c */
typedef struct lin {
    int n;
    lin_term t[LIN_MAX];
    int64_t c;
    bool ok;
} lin;

static int64_t wadd(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static int64_t wmul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static int64_t fdiv(int64_t a, int64_t c) { return a / c - ((a % c != 0) && ((a < 0) != (c < 0))); }
static int64_t fmodi(int64_t a, int64_t c) { return a - fdiv(a, c) * c; }

static bool is_const(const ex_expr *e, int64_t *v) { return e && e->kind == EX_INT && e->dtype == KILN_I64 && (*v = e->ival, true); }

/* ---- ranges ---- */

static bool var_range(const sp *s, const ex_var *v, int64_t *lo, int64_t *hi) {
    for (int i = s->n_r - 1; i >= 0; i--)
        if (s->r[i].var == v) return s->r[i].extent >= 1 && (*lo = s->r[i].min, *hi = s->r[i].min + s->r[i].extent - 1, true);
    for (int i = s->n_base - 1; i >= 0; i--)
        if (s->base[i].var == v)
            return s->base[i].extent >= 1 && (*lo = s->base[i].min, *hi = s->base[i].min + s->base[i].extent - 1, true);
    return false;
}

static iv iv_none(void) { return (iv){0, 0, false}; }
static iv iv_of(int64_t lo, int64_t hi) { return (iv){lo, hi, true}; }

static iv type_range(kiln_dtype t) {
    switch (t) {
    case KILN_BOOL: return iv_of(0, 1);
    case KILN_I8: return iv_of(INT8_MIN, INT8_MAX);
    case KILN_U8: return iv_of(0, UINT8_MAX);
    case KILN_I16: return iv_of(INT16_MIN, INT16_MAX);
    case KILN_U16: return iv_of(0, UINT16_MAX);
    case KILN_I32: return iv_of(INT32_MIN, INT32_MAX);
    case KILN_U32: return iv_of(0, UINT32_MAX);
    case KILN_I4: return iv_of(-8, 7);
    case KILN_U4: return iv_of(0, 15);
    case KILN_I2: return iv_of(-2, 1);
    case KILN_U2: return iv_of(0, 3);
    default: return iv_none();
    }
}

static iv iv_mul(iv a, iv b) {
    int64_t p[4];
    if (__builtin_mul_overflow(a.lo, b.lo, &p[0]) || __builtin_mul_overflow(a.lo, b.hi, &p[1]) ||
        __builtin_mul_overflow(a.hi, b.lo, &p[2]) || __builtin_mul_overflow(a.hi, b.hi, &p[3]))
        return iv_none();
    iv r = iv_of(p[0], p[0]);
    for (int i = 1; i < 4; i++) {
        if (p[i] < r.lo) r.lo = p[i];
        if (p[i] > r.hi) r.hi = p[i];
    }
    return r;
}

static iv bounds(const sp *s, const ex_expr *e);

static iv bounds_div(const sp *s, const ex_expr *e, iv a, iv d) {
    if (!d.ok || d.lo <= 0) return e->op == EX_FLOORMOD && d.ok && d.lo > 0 ? iv_of(0, d.hi - 1) : iv_none();
    switch (e->op) {
    case EX_FLOORDIV:
    case EX_DIV: {
        if (!a.ok) return iv_none();
        int64_t (*q)(int64_t, int64_t) = e->op == EX_FLOORDIV ? fdiv : NULL;
        int64_t c[4] = {q ? q(a.lo, d.lo) : a.lo / d.lo, q ? q(a.lo, d.hi) : a.lo / d.hi,
                        q ? q(a.hi, d.lo) : a.hi / d.lo, q ? q(a.hi, d.hi) : a.hi / d.hi};
        iv r = iv_of(c[0], c[0]);
        for (int i = 1; i < 4; i++) r.lo = c[i] < r.lo ? c[i] : r.lo, r.hi = c[i] > r.hi ? c[i] : r.hi;
        return r;
    }
    case EX_FLOORMOD:
        if (a.ok && d.lo == d.hi && fdiv(a.lo, d.lo) == fdiv(a.hi, d.lo)) return iv_of(fmodi(a.lo, d.lo), fmodi(a.hi, d.lo));
        return iv_of(0, d.hi - 1);
    case EX_MOD:
        if (a.ok && a.lo >= 0) {
            if (d.lo == d.hi && a.lo / d.lo == a.hi / d.lo) return iv_of(a.lo % d.lo, a.hi % d.lo);
            return iv_of(0, a.hi < d.hi - 1 ? a.hi : d.hi - 1);
        }
        return iv_of(-(d.hi - 1), d.hi - 1);
    default: return iv_none();
    }
    (void)s;
}

static iv bounds_binary(const sp *s, const ex_expr *e) {
    if (e->dtype == KILN_BOOL) return iv_of(0, 1);
    if (e->dtype != KILN_I64) return type_range(e->dtype);
    iv a = bounds(s, e->args[0]), b = bounds(s, e->args[1]);
    switch (e->op) {
    case EX_ADD:
        if (!a.ok || !b.ok || __builtin_add_overflow(a.lo, b.lo, &a.lo) || __builtin_add_overflow(a.hi, b.hi, &a.hi))
            return iv_none();
        return a;
    case EX_SUB: {
        int64_t lo, hi;
        if (!a.ok || !b.ok || __builtin_sub_overflow(a.lo, b.hi, &lo) || __builtin_sub_overflow(a.hi, b.lo, &hi))
            return iv_none();
        return iv_of(lo, hi);
    }
    case EX_MUL: return a.ok && b.ok ? iv_mul(a, b) : iv_none();
    case EX_FLOORDIV:
    case EX_FLOORMOD:
    case EX_DIV:
    case EX_MOD: return bounds_div(s, e, a, b);
    case EX_MIN:
        if (!a.ok || !b.ok) return iv_none();
        return iv_of(a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi);
    case EX_MAX:
        if (!a.ok || !b.ok) return iv_none();
        return iv_of(a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
    default: return iv_none();
    }
}

static iv bounds(const sp *s, const ex_expr *e) {
    if (!e) return iv_none();
    if (e->dtype == KILN_BOOL && e->kind != EX_INT) return iv_of(0, 1);
    switch (e->kind) {
    case EX_INT: return kiln_dtype_is_int(e->dtype) || e->dtype == KILN_BOOL ? iv_of(e->ival, e->ival) : iv_none();
    case EX_VAR: {
        int64_t lo, hi;
        return var_range(s, e->var, &lo, &hi) ? iv_of(lo, hi) : iv_none();
    }
    case EX_BINARY: return bounds_binary(s, e);
    case EX_UNARY:
        if (e->dtype == KILN_I64 && e->op == EX_NEG) {
            iv a = bounds(s, e->args[0]);
            if (!a.ok || a.lo == INT64_MIN) return iv_none();
            return iv_of(-a.hi, -a.lo);
        }
        return type_range(e->dtype);
    case EX_SELECT: {
        if (e->dtype != KILN_I64) return type_range(e->dtype);
        iv a = bounds(s, e->args[1]), b = bounds(s, e->args[2]);
        if (!a.ok || !b.ok) return iv_none();
        return iv_of(a.lo < b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
    }
    case EX_CAST: {
        kiln_dtype from = e->args[0]->dtype;
        if (e->dtype != KILN_I64) return type_range(e->dtype);
        if (from == KILN_U64 || from == KILN_I64 || !(kiln_dtype_is_int(from) || from == KILN_BOOL || kiln_dtype_is_lowp_int(from)))
            return iv_none();
        return type_range(from);
    }
    default: return type_range(e->dtype);
    }
}

bool lir_expr_bounds(const ex_expr *e, const lir_var_range *ranges, int n, int64_t *lo, int64_t *hi) {
    sp s = {0};
    s.base = ranges;
    s.n_base = n;
    iv r = bounds(&s, e);
    if (r.ok) *lo = r.lo, *hi = r.hi;
    return r.ok;
}

/* ---- the affine form ---- */

static int term_cmp(const ex_expr *a, const ex_expr *b) {
    bool va = a->kind == EX_VAR, vb = b->kind == EX_VAR;
    if (va != vb) return va ? -1 : 1;
    if (va) {
        if (a->var->id != b->var->id) return a->var->id < b->var->id ? -1 : 1;
        return strcmp(a->var->name, b->var->name);
    }
    uint64_t ha = ex_hash(a, 0), hb = ex_hash(b, 0);
    return ha < hb ? -1 : ha > hb;
}

static void lin_add(lin *L, ex_expr *a, int64_t c) {
    if (c == 0) return;
    for (int i = 0; i < L->n; i++)
        if (ex_equal(L->t[i].a, a)) {
            L->t[i].c = wadd(L->t[i].c, c);
            return;
        }
    if (L->n == LIN_MAX) {
        L->ok = false;
        return;
    }
    L->t[L->n++] = (lin_term){a, c};
}

/* Adds scale * e to L (e already simplified). */
static void to_lin(lin *L, ex_expr *e, int64_t scale) {
    int64_t c;
    if (e->dtype != KILN_I64) {
        L->ok = false;
        return;
    }
    if (is_const(e, &c)) {
        L->c = wadd(L->c, wmul(scale, c));
        return;
    }
    if (e->kind == EX_BINARY && (e->op == EX_ADD || e->op == EX_SUB)) {
        to_lin(L, e->args[0], scale);
        to_lin(L, e->args[1], e->op == EX_SUB ? wmul(scale, -1) : scale);
        return;
    }
    if (e->kind == EX_BINARY && e->op == EX_MUL) {
        if (is_const(e->args[1], &c)) return to_lin(L, e->args[0], wmul(scale, c));
        if (is_const(e->args[0], &c)) return to_lin(L, e->args[1], wmul(scale, c));
    }
    if (e->kind == EX_UNARY && e->op == EX_NEG) return to_lin(L, e->args[0], wmul(scale, -1));
    lin_add(L, e, scale);
}

static ex_expr *from_lin(ex_builder *b, lin *L) {
    for (int i = 1; i < L->n; i++) /* stable insertion sort: determinism */
        for (int j = i; j > 0 && term_cmp(L->t[j - 1].a, L->t[j].a) > 0; j--) {
            lin_term t = L->t[j];
            L->t[j] = L->t[j - 1];
            L->t[j - 1] = t;
        }
    ex_expr *acc = NULL;
    for (int i = 0; i < L->n; i++) {
        ex_expr *a = L->t[i].a;
        int64_t c = L->t[i].c;
        if (c == 0) continue;
        if (!acc) acc = c == 1 ? a : ex_mul(b, a, ex_int(b, c));
        else if (c > 0) acc = ex_add(b, acc, c == 1 ? a : ex_mul(b, a, ex_int(b, c)));
        else if (c != INT64_MIN) acc = ex_sub(b, acc, c == -1 ? a : ex_mul(b, a, ex_int(b, -c)));
        else acc = ex_add(b, acc, ex_mul(b, a, ex_int(b, c)));
    }
    if (!acc) return ex_int(b, L->c);
    if (L->c > 0) return ex_add(b, acc, ex_int(b, L->c));
    if (L->c < 0 && L->c != INT64_MIN) return ex_sub(b, acc, ex_int(b, -L->c));
    if (L->c) return ex_add(b, acc, ex_int(b, L->c));
    return acc;
}

static lin lin_zero(void) {
    lin L;
    L.n = 0;
    L.c = 0;
    L.ok = true;
    return L;
}

static lin lin_of(ex_expr *e) {
    lin L = lin_zero();
    to_lin(&L, e, 1);
    return L;
}

/* ---- expressions ---- */

static ex_expr *sx(sp *s, ex_expr *e);

static int64_t inorm(kiln_dtype t, uint64_t v) {
    switch (t) {
    case KILN_BOOL: return v != 0;
    case KILN_I8: return (int8_t)(uint8_t)v;
    case KILN_U8: return (uint8_t)v;
    case KILN_I16: return (int16_t)(uint16_t)v;
    case KILN_U16: return (uint16_t)v;
    case KILN_I32: return (int32_t)(uint32_t)v;
    case KILN_U32: return (uint32_t)v;
    default: return (int64_t)v;
    }
}

static bool foldable_int(kiln_dtype t) {
    return t == KILN_BOOL || t == KILN_I8 || t == KILN_U8 || t == KILN_I16 || t == KILN_U16 || t == KILN_I32 ||
           t == KILN_U32 || t == KILN_I64;
}

/* Folds an integer binary op on constants the way the interpreter
** computes it; false when it would fault (division by zero) or is not
** handled. */
static bool fold_int(int op, kiln_dtype t, int64_t a, int64_t b, int64_t *r) {
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (op) {
    case EX_ADD: *r = inorm(t, ua + ub); return true;
    case EX_SUB: *r = inorm(t, ua - ub); return true;
    case EX_MUL: *r = inorm(t, ua * ub); return true;
    case EX_FLOORDIV:
    case EX_FLOORMOD:
    case EX_DIV:
    case EX_MOD: {
        if (b == 0 || b == -1) return false;
        int64_t q = (op == EX_FLOORDIV || op == EX_FLOORMOD) ? fdiv(a, b) : a / b;
        *r = inorm(t, (uint64_t)(op == EX_FLOORDIV || op == EX_DIV ? q : (int64_t)(ua - (uint64_t)q * ub)));
        return true;
    }
    case EX_MIN: *r = a < b ? a : b; return true;
    case EX_MAX: *r = a > b ? a : b; return true;
    case EX_EQ: *r = a == b; return true;
    case EX_NE: *r = a != b; return true;
    case EX_LT: *r = a < b; return true;
    case EX_LE: *r = a <= b; return true;
    case EX_GT: *r = a > b; return true;
    case EX_GE: *r = a >= b; return true;
    case EX_AND: *r = inorm(t, ua & ub); return true;
    case EX_OR: *r = inorm(t, ua | ub); return true;
    case EX_XOR: *r = inorm(t, ua ^ ub); return true;
    default: return false;
    }
}

static bool fold_float(int op, kiln_dtype t, double a, double b, double *r) {
    if (t == KILN_F32) {
        float x = (float)a, y = (float)b;
        switch (op) {
        case EX_ADD: *r = x + y; return true;
        case EX_SUB: *r = x - y; return true;
        case EX_MUL: *r = x * y; return true;
        case EX_DIV: *r = x / y; return true;
        default: return false;
        }
    }
    if (t != KILN_F64) return false;
    switch (op) {
    case EX_ADD: *r = a + b; return true;
    case EX_SUB: *r = a - b; return true;
    case EX_MUL: *r = a * b; return true;
    case EX_DIV: *r = a / b; return true;
    default: return false;
    }
}

static ex_expr *mk_bool(sp *s, bool v) { return ex_const_int(s->b, KILN_BOOL, v); }

/* floordiv(a, c) or floormod(a, c) for a constant c > 0. */
static ex_expr *simp_div(sp *s, ex_expr *a, int64_t c, bool mod) {
    ex_builder *b = s->b;
    int64_t k, c1;
    if (is_const(a, &k)) return ex_int(b, mod ? fmodi(k, c) : fdiv(k, c));
    if (c == 1) return mod ? ex_int(b, 0) : a;
    iv ba = bounds(s, a);
    if (ba.ok && fdiv(ba.lo, c) == fdiv(ba.hi, c)) {
        int64_t q = fdiv(ba.lo, c);
        if (!mod) return ex_int(b, q);
        lin L = lin_of(a);
        L.c = wadd(L.c, wmul(-q, c));
        return L.ok ? from_lin(b, &L) : ex_floormod(b, a, ex_int(b, c));
    }
    if (a->kind == EX_BINARY && is_const(a->args[1], &c1) && c1 > 0) {
        if (!mod && a->op == EX_FLOORDIV && c1 <= INT64_MAX / c) return simp_div(s, a->args[0], c1 * c, false);
        if (mod && a->op == EX_FLOORMOD && c1 % c == 0) return simp_div(s, a->args[0], c, true);
    }
    if (ba.ok) {
        lin L = lin_of(a), Q = lin_zero(), R = lin_zero();
        for (int i = 0; i < L.n && L.ok; i++) {
            lin_add(&Q, L.t[i].a, fdiv(L.t[i].c, c));
            lin_add(&R, L.t[i].a, fmodi(L.t[i].c, c));
        }
        Q.c = fdiv(L.c, c);
        R.c = fmodi(L.c, c);
        if (L.ok && (Q.n || Q.c)) {
            ex_expr *r = from_lin(b, &R);
            iv br = bounds(s, r);
            if (br.ok && fdiv(br.lo, c) == fdiv(br.hi, c)) {
                int64_t m = fdiv(br.lo, c);
                if (mod) {
                    R.c = wadd(R.c, wmul(-m, c));
                    return from_lin(b, &R);
                }
                Q.c = wadd(Q.c, m);
                return from_lin(b, &Q);
            }
            ex_expr *inner = mod ? ex_floormod(b, r, ex_int(b, c)) : ex_floordiv(b, r, ex_int(b, c));
            if (mod || !inner) return inner;
            lin_add(&Q, inner, 1);
            return Q.ok ? from_lin(b, &Q) : ex_floordiv(b, a, ex_int(b, c));
        }
    }
    return mod ? ex_floormod(b, a, ex_int(b, c)) : ex_floordiv(b, a, ex_int(b, c));
}

static ex_expr *simp_minmax(sp *s, int op, ex_expr *a, ex_expr *x) {
    if (ex_equal(a, x)) return a;
    iv ba = bounds(s, a), bx = bounds(s, x);
    bool mn = op == EX_MIN;
    if (ba.ok && bx.ok) {
        if (ba.hi <= bx.lo) return mn ? a : x;
        if (bx.hi <= ba.lo) return mn ? x : a;
    }
    lin d = lin_of(a);
    to_lin(&d, x, -1);
    bool zero = true;
    for (int i = 0; i < d.n; i++) zero &= d.t[i].c == 0;
    if (d.ok && zero) return (d.c <= 0) == mn ? a : x;
    return ex_binary(s->b, (ex_binop)op, a, x);
}

static ex_expr *simp_compare(sp *s, int op, ex_expr *a, ex_expr *x) {
    lin d = lin_of(a);
    to_lin(&d, x, -1);
    if (d.ok) {
        ex_expr *de = from_lin(s->b, &d);
        iv r = bounds(s, de);
        if (r.ok) {
            switch (op) {
            case EX_LT: if (r.hi < 0 || r.lo >= 0) return mk_bool(s, r.hi < 0); break;
            case EX_LE: if (r.hi <= 0 || r.lo > 0) return mk_bool(s, r.hi <= 0); break;
            case EX_GT: if (r.lo > 0 || r.hi <= 0) return mk_bool(s, r.lo > 0); break;
            case EX_GE: if (r.lo >= 0 || r.hi < 0) return mk_bool(s, r.lo >= 0); break;
            case EX_EQ:
            case EX_NE:
                if (r.lo == 0 && r.hi == 0) return mk_bool(s, op == EX_EQ);
                if (r.lo > 0 || r.hi < 0) return mk_bool(s, op == EX_NE);
                break;
            default: break;
            }
        }
    }
    return ex_binary(s->b, (ex_binop)op, a, x);
}

static ex_expr *simp_i64(sp *s, int op, ex_expr *a, ex_expr *x) {
    int64_t c;
    switch (op) {
    case EX_ADD:
    case EX_SUB:
    case EX_MUL: {
        lin L = lin_zero();
        if (op == EX_MUL && !is_const(a, &c) && !is_const(x, &c)) {
            if (term_cmp(a, x) > 0) {
                ex_expr *t = a;
                a = x, x = t;
            }
            lin_add(&L, ex_mul(s->b, a, x), 1);
        } else if (op == EX_MUL) {
            int64_t k;
            if (is_const(x, &k)) to_lin(&L, a, k);
            else to_lin(&L, x, c);
        } else {
            to_lin(&L, a, 1);
            to_lin(&L, x, op == EX_SUB ? -1 : 1);
        }
        return L.ok ? from_lin(s->b, &L) : ex_binary(s->b, (ex_binop)op, a, x);
    }
    case EX_FLOORDIV:
    case EX_FLOORMOD:
    case EX_DIV:
    case EX_MOD:
        if (is_const(x, &c) && c > 0) {
            if (op == EX_DIV || op == EX_MOD) {
                iv ba = bounds(s, a);
                if (!ba.ok || ba.lo < 0) break;
            }
            return simp_div(s, a, c, op == EX_FLOORMOD || op == EX_MOD);
        }
        break;
    case EX_MIN:
    case EX_MAX: return simp_minmax(s, op, a, x);
    case EX_EQ:
    case EX_NE:
    case EX_LT:
    case EX_LE:
    case EX_GT:
    case EX_GE: return simp_compare(s, op, a, x);
    default: break;
    }
    return ex_binary(s->b, (ex_binop)op, a, x);
}

static ex_expr *simp_bool(sp *s, int op, ex_expr *a, ex_expr *x) {
    int64_t ka = -1, kx = -1;
    if (a->kind == EX_INT) ka = a->ival != 0;
    if (x->kind == EX_INT) kx = x->ival != 0;
    if (op == EX_AND) {
        if (ka == 0 || kx == 0) return mk_bool(s, false);
        if (ka == 1) return x;
        if (kx == 1) return a;
        if (ex_equal(a, x)) return a;
    } else if (op == EX_OR) {
        if (ka == 1 || kx == 1) return mk_bool(s, true);
        if (ka == 0) return x;
        if (kx == 0) return a;
        if (ex_equal(a, x)) return a;
    }
    return ex_binary(s->b, (ex_binop)op, a, x);
}

static ex_expr *sx_binary(sp *s, ex_expr *e) {
    ex_expr *a = sx(s, e->args[0]), *x = a ? sx(s, e->args[1]) : NULL;
    if (!x) return NULL;
    kiln_dtype t = a->dtype;
    if (a->kind == EX_INT && x->kind == EX_INT && foldable_int(t)) {
        int64_t r;
        if (fold_int(e->op, t, a->ival, x->ival, &r)) return ex_const_int(s->b, e->dtype, r);
    }
    if (a->kind == EX_FLOAT && x->kind == EX_FLOAT) {
        double r;
        if (fold_float(e->op, t, a->fval, x->fval, &r)) return ex_const_float(s->b, t, r);
    }
    if (t == KILN_I64) return simp_i64(s, e->op, a, x);
    if (t == KILN_BOOL && (e->op == EX_AND || e->op == EX_OR)) return simp_bool(s, e->op, a, x);
    if (a == e->args[0] && x == e->args[1]) return e;
    return ex_binary(s->b, (ex_binop)e->op, a, x);
}

static ex_expr *sx_cast(sp *s, ex_expr *e) {
    ex_expr *a = sx(s, e->args[0]);
    if (!a) return NULL;
    kiln_dtype t = e->dtype;
    if (a->kind == EX_INT && foldable_int(a->dtype) && a->dtype != KILN_BOOL) {
        if (foldable_int(t)) return ex_const_int(s->b, t, inorm(t, (uint64_t)a->ival));
        if (t == KILN_F64) return ex_const_float(s->b, t, (double)a->ival);
        if (t == KILN_F32) return ex_const_float(s->b, t, (float)a->ival);
    }
    if (a->kind == EX_FLOAT && a->dtype == KILN_F64 && t == KILN_F32) return ex_const_float(s->b, t, (float)a->fval);
    if (a->kind == EX_FLOAT && a->dtype == KILN_F32 && t == KILN_F64) return ex_const_float(s->b, t, a->fval);
    return a == e->args[0] ? e : ex_cast(s->b, t, a);
}

static ex_expr *sx_unary(sp *s, ex_expr *e) {
    ex_expr *a = sx(s, e->args[0]);
    if (!a) return NULL;
    if (e->op == EX_NEG && a->dtype == KILN_I64) {
        lin L = lin_zero();
        to_lin(&L, a, -1);
        if (L.ok) return from_lin(s->b, &L);
    }
    if (e->op == EX_NOT && a->dtype == KILN_BOOL) {
        if (a->kind == EX_INT) return mk_bool(s, a->ival == 0);
        if (a->kind == EX_UNARY && a->op == EX_NOT) return a->args[0];
    }
    return a == e->args[0] ? e : ex_unary(s->b, (ex_fn)e->op, a);
}

static ex_expr *sx_select(sp *s, ex_expr *e) {
    ex_expr *c = sx(s, e->args[0]);
    if (!c) return NULL;
    if (c->kind == EX_INT) return sx(s, e->args[c->ival ? 1 : 2]);
    ex_expr *x = sx(s, e->args[1]), *y = x ? sx(s, e->args[2]) : NULL;
    if (!y) return NULL;
    if (ex_equal(x, y)) return x;
    if (c == e->args[0] && x == e->args[1] && y == e->args[2]) return e;
    return ex_select(s->b, c, x, y);
}

static ex_expr *sx_load(sp *s, ex_expr *e) {
    ex_expr *args[KILN_MAX_RANK];
    bool changed = false;
    if (e->n_args > KILN_MAX_RANK) return e;
    for (int i = 0; i < e->n_args; i++) {
        if (!(args[i] = sx(s, e->args[i]))) return NULL;
        changed |= args[i] != e->args[i];
    }
    if (!changed) return e;
    return e->buffer ? ex_load_buffer(s->b, e->buffer, args[0]) : ex_load_tensor(s->b, e->tensor, args);
}

static ex_expr *sx(sp *s, ex_expr *e) {
    if (!e) {
        s->b->failed = true;
        return NULL;
    }
    switch (e->kind) {
    case EX_INT:
    case EX_FLOAT: return e;
    case EX_VAR: {
        for (int i = s->n_sub - 1; i >= 0; i--)
            if (s->sub[i].var == e->var) return s->sub[i].with;
        int64_t lo, hi;
        if (var_range(s, e->var, &lo, &hi) && lo == hi) return ex_int(s->b, lo);
        return e;
    }
    case EX_LOAD: return sx_load(s, e);
    case EX_REDUCE: return e;
    default: break;
    }
    ex_expr *r = e->kind == EX_BINARY ? sx_binary(s, e) : e->kind == EX_UNARY ? sx_unary(s, e)
               : e->kind == EX_SELECT ? sx_select(s, e) : sx_cast(s, e);
    /* keep the original node when nothing changed, so a second pass is a no-op */
    return r && r != e && ex_equal(r, e) ? e : r;
}

ex_expr *lir_simplify_expr(ex_builder *b, ex_expr *e, const lir_var_range *ranges, int n) {
    sp s = {0};
    s.b = b;
    s.base = ranges;
    s.n_base = n;
    ex_expr *r = sx(&s, e);
    kiln_free(s.r);
    kiln_free(s.sub);
    return b->failed ? NULL : r;
}

/* ---- relaxed bounds ---- */

static bool in_list(const ex_var *v, const ex_var *const *l, int n) {
    for (int i = 0; i < n; i++)
        if (l[i] == v) return true;
    return false;
}

/* Whether e uses relaxed variables (*rel) and fixed ones (*fix). */
static void var_kinds(const ex_expr *e, const ex_var *const *relax, int n, bool *rel, bool *fix) {
    if (!e) return;
    if (e->kind == EX_VAR) {
        if (in_list(e->var, relax, n)) *rel = true;
        else *fix = true;
    }
    for (int i = 0; i < e->n_args; i++) var_kinds(e->args[i], relax, n, rel, fix);
}

bool lir_relaxed_bounds(ex_builder *b, ex_expr *e, const lir_var_range *ranges, int n,
                        const ex_var *const *relax, int n_relax, ex_expr **lo, int64_t *extent) {
    ex_expr *x = lir_simplify_expr(b, e, ranges, n);
    if (!x || x->dtype != KILN_I64) return false;
    sp s = {0};
    s.base = ranges;
    s.n_base = n;
    lin L = lin_of(x), fixed = lin_zero();
    if (!L.ok) return false;
    int64_t nlo = 0, nhi = 0;
    for (int i = 0; i < L.n; i++) {
        bool rel = false, fix = false;
        var_kinds(L.t[i].a, relax, n_relax, &rel, &fix);
        if (!rel) {
            lin_add(&fixed, L.t[i].a, L.t[i].c);
            continue;
        }
        if (fix) return false;
        iv a = bounds(&s, L.t[i].a);
        if (!a.ok) return false;
        iv t = iv_mul(a, iv_of(L.t[i].c, L.t[i].c));
        if (!t.ok || __builtin_add_overflow(nlo, t.lo, &nlo) || __builtin_add_overflow(nhi, t.hi, &nhi)) return false;
    }
    int64_t ext;
    if (!fixed.ok || __builtin_sub_overflow(nhi, nlo, &ext) || ext == INT64_MAX) return false;
    fixed.c = wadd(L.c, nlo);
    ex_expr *r = from_lin(b, &fixed);
    if (!r) return false;
    *lo = r;
    *extent = ext + 1;
    return true;
}

/* ---- statements ---- */

static lir_stmt *nop(lir_func *f) {
    lir_stmt *s = kiln_arena_alloc(f->arena, sizeof *s);
    if (!s) f->eb.failed = true;
    else s->kind = LIR_NOP;
    return s;
}

static bool is_nop(const lir_stmt *s) { return s->kind == LIR_NOP || (s->kind == LIR_SEQ && s->n_stmts == 0); }

static lir_stmt *ss(sp *s, lir_func *f, lir_stmt *st);

static lir_stmt *ss_for(sp *s, lir_func *f, lir_stmt *st) {
    ex_expr *mn = sx(s, st->min), *ext = mn ? sx(s, st->extent) : NULL;
    if (!ext) return NULL;
    int64_t k;
    if (is_const(ext, &k) && k <= 0) return nop(f);
    lir_stmt *body;
    if (is_const(ext, &k) && k == 1) {
        if (!kiln_grow((void **)&s->sub, &s->cap_sub, s->n_sub + 1, sizeof(sp_sub))) return f->eb.failed = true, NULL;
        s->sub[s->n_sub++] = (sp_sub){st->var, mn};
        body = ss(s, f, st->body);
        s->n_sub--;
        return body;
    }
    iv bm = bounds(s, mn), be = bounds(s, ext);
    bool ranged = bm.ok && be.ok && be.hi >= 1 && bm.hi <= INT64_MAX - be.hi;
    if (ranged) {
        if (!kiln_grow((void **)&s->r, &s->cap_r, s->n_r + 1, sizeof(lir_var_range))) return f->eb.failed = true, NULL;
        s->r[s->n_r++] = (lir_var_range){st->var, bm.lo, bm.hi + be.hi - bm.lo};
    }
    body = ss(s, f, st->body);
    if (ranged) s->n_r--;
    if (!body) return NULL;
    if (is_nop(body)) return nop(f);
    if (mn == st->min && ext == st->extent && body == st->body) return st;
    return lir_for(f, st->var, mn, ext, st->loop, body);
}

static lir_stmt *ss_seq(sp *s, lir_func *f, lir_stmt *st) {
    int n = 0, cap = 0;
    lir_stmt **out = NULL;
    bool changed = false;
    for (int i = 0; i < st->n_stmts; i++) {
        lir_stmt *c = ss(s, f, st->stmts[i]);
        if (!c) goto fail;
        changed |= c != st->stmts[i];
        int k = c->kind == LIR_SEQ ? c->n_stmts : is_nop(c) ? 0 : 1;
        changed |= k != 1;
        if (!kiln_grow((void **)&out, &cap, n + k + 1, sizeof(lir_stmt *))) goto fail;
        if (c->kind == LIR_SEQ) memcpy(out + n, c->stmts, sizeof(lir_stmt *) * (size_t)c->n_stmts);
        else if (k) out[n] = c;
        n += k;
    }
    lir_stmt *r = !changed ? st : n == 0 ? nop(f) : n == 1 ? out[0] : lir_seq(f, out, n);
    kiln_free(out);
    return r;
fail:
    kiln_free(out);
    f->eb.failed = true;
    return NULL;
}

static lir_stmt *ss(sp *s, lir_func *f, lir_stmt *st) {
    if (!st) return f->eb.failed = true, NULL;
    switch (st->kind) {
    case LIR_FOR: return ss_for(s, f, st);
    case LIR_SEQ: return ss_seq(s, f, st);
    case LIR_STORE: {
        ex_expr *i = sx(s, st->index), *v = i ? sx(s, st->value) : NULL;
        if (!v) return NULL;
        return i == st->index && v == st->value ? st : lir_store(f, st->buffer, i, v);
    }
    case LIR_ALLOC: {
        lir_stmt *b = ss(s, f, st->body);
        if (!b) return NULL;
        if (is_nop(b)) return nop(f);
        return b == st->body ? st : lir_alloc(f, st->buffer, b);
    }
    case LIR_IF: {
        ex_expr *c = sx(s, st->cond);
        if (!c) return NULL;
        for (int i = 0; i < s->n_known && c->kind != EX_INT; i++)
            if (ex_equal(c, s->known[i])) c = ex_const_int(s->b, KILN_BOOL, 1);
        if (!c) return NULL;
        if (c->kind == EX_INT) return c->ival ? ss(s, f, st->body) : st->else_body ? ss(s, f, st->else_body) : nop(f);
        if (!kiln_grow((void **)&s->known, &s->cap_known, s->n_known + 1, sizeof(ex_expr *))) return f->eb.failed = true, NULL;
        s->known[s->n_known++] = c;
        lir_stmt *t = ss(s, f, st->body);
        s->n_known--;
        lir_stmt *e = st->else_body ? ss(s, f, st->else_body) : NULL;
        if (!t || (st->else_body && !e)) return NULL;
        if (e && is_nop(e)) e = NULL;
        if (is_nop(t) && !e) return nop(f);
        if (c == st->cond && t == st->body && e == st->else_body) return st;
        if (is_nop(t)) return lir_if(f, ex_unary(&f->eb, EX_NOT, c), e, NULL);
        return lir_if(f, c, t, e);
    }
    case LIR_BARRIER:
    case LIR_NOP: return st;
    }
    return st;
}

kiln_status lir_simplify(kiln_ctx *ctx, lir_func *f) {
    if (!f || !f->body) return kiln_fail(ctx, KILN_ERR_INVALID, "lir_simplify: no kernel or no body");
    if (f->eb.failed) return kiln_fail(ctx, KILN_ERR_INVALID, "lir_simplify: kernel '%s' was not built completely", f->name);
    sp s = {0};
    s.b = &f->eb;
    lir_stmt *body = ss(&s, f, f->body);
    kiln_free(s.r);
    kiln_free(s.sub);
    kiln_free(s.known);
    if (!body || f->eb.failed) {
        f->eb.failed = false; /* the body is untouched; what was built is unreachable */
        return kiln_fail(ctx, KILN_ERR_NOMEM, "lir_simplify: out of memory");
    }
    f->body = body;
    return KILN_OK;
}
