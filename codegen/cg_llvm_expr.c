/*
** cg_llvm_expr.c — scalar expressions to LLVM values. Inside a vectorized
** loop a value is either uniform (a scalar, the same in every lane) or a
** vector of the loop's width; operations widen a uniform operand only when
** the other one is a vector, so index arithmetic stays scalar.
**
** Expressions are DAGs (substitution shares subtrees), so each statement
** remembers the values it has emitted (the memo) and emits a shared node
** once.
*/
#include <string.h>

#include "codegen/cg_llvm_internal.h"

/* ---- the memo ---- */

static int memo_mode(const cg_emit *cg) { return (cg->scalar_index ? 1 : 0) | (cg->index_mode ? 2 : 0); }

void cg_memo_reset(cg_emit *cg) { cg->n_memo = 0; }
int cg_memo_mark(const cg_emit *cg) { return cg->n_memo; }
void cg_memo_release(cg_emit *cg, int mark) { cg->n_memo = mark; }

static bool memo_find(cg_emit *cg, const ex_expr *e, cg_val *out) {
    int mode = memo_mode(cg);
    for (int i = cg->n_memo - 1; i >= 0; i--)
        if (cg->memo[i].e == e && cg->memo[i].mode == mode) {
            *out = cg->memo[i].val;
            return true;
        }
    return false;
}

static void memo_add(cg_emit *cg, const ex_expr *e, cg_val v) {
    /* without room the value is simply emitted again when met again */
    if (!kiln_grow((void **)&cg->memo, &cg->cap_memo, cg->n_memo + 1, sizeof(cg_memo))) return;
    cg->memo[cg->n_memo++] = (cg_memo){e, memo_mode(cg), v};
}

/* ---- helpers ---- */

static kiln_status unsupported(cg_emit *cg, const ex_expr *e, const char *what) {
    return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED, "kernel '%s': %s %s on %s is not supported by the CPU backend",
                     cg_fname(cg), e->kind == EX_BINARY ? "operator" : "function",
                     e->kind == EX_BINARY ? ex_binop_name((ex_binop)e->op) : ex_fn_name((ex_fn)e->op), what);
}

static kiln_status check_dtype(cg_emit *cg, kiln_dtype t) {
    if (cg_dtype_ok(t)) return KILN_OK;
    return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED, "kernel '%s': dtype %s is not supported by the CPU backend",
                     cg_fname(cg), kiln_dtype_name(t));
}

/* Both operands with the same shape. */
static void unify(cg_emit *cg, cg_val *x, cg_val *y) {
    if (x->vec == y->vec) return;
    x->v = cg_widen(cg, *x);
    y->v = cg_widen(cg, *y);
    x->vec = y->vec = true;
}

static LLVMValueRef ty_const(cg_emit *cg, LLVMValueRef shape, int64_t v) {
    return cg_iconst(cg, LLVMTypeOf(shape), v);
}

/* ---- constants and variables ---- */

static kiln_status constant(cg_emit *cg, const ex_expr *e, cg_val *out) {
    LLVMTypeRef t = cg_reg_type(cg, e->dtype);
    out->vec = false;
    if (e->kind == EX_INT && !kiln_dtype_is_float(e->dtype)) {
        out->v = LLVMConstInt(t, e->dtype == KILN_BOOL ? e->ival != 0 : (unsigned long long)e->ival, 1);
        return KILN_OK;
    }
    double v = e->kind == EX_INT ? (double)e->ival : e->fval;
    if (!kiln_dtype_is_float(e->dtype)) /* a float constant of an integer type saturates */
        return cg_cast(cg, KILN_F64, e->dtype, (cg_val){LLVMConstReal(cg->t_f64, v), false}, out);
    if (e->dtype == KILN_F16) v = kiln_f16_to_f32(kiln_f32_to_f16((float)v));
    else if (e->dtype == KILN_BF16) v = kiln_bf16_to_f32(kiln_f32_to_bf16((float)v));
    out->v = LLVMConstReal(t, v);
    return KILN_OK;
}

static kiln_status variable(cg_emit *cg, const ex_expr *e, cg_val *out) {
    for (int i = cg->n_binds - 1; i >= 0; i--) {
        const cg_bind *bd = &cg->binds[i];
        if (bd->var != e->var) continue;
        if (!bd->vec || cg->scalar_index) {
            *out = (cg_val){bd->v, false};
            return KILN_OK;
        }
        LLVMValueRef base = cg_splat(cg, bd->v, cg->width);
        LLVMValueRef v = LLVMBuildAdd(cg->b, base, cg_lane_ids(cg, cg->width), "");
        if (cg->index_mode) LLVMSetNSW(v, 1);
        *out = (cg_val){v, true};
        return KILN_OK;
    }
    return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': variable '%s' is not bound by an enclosing loop",
                     cg_fname(cg), e->var->name);
}

/* ---- binary operators ---- */

static LLVMValueRef int_pow_fn(cg_emit *cg, LLVMTypeRef t, bool is_signed);

/* Division and remainder that never trap: see cg_llvm_internal.h. */
static LLVMValueRef int_div(cg_emit *cg, ex_binop op, LLVMValueRef x, LLVMValueRef y, bool sgn) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef zero = ty_const(cg, y, 0), one = ty_const(cg, y, 1);
    LLVMValueRef is_zero = LLVMBuildICmp(b, LLVMIntEQ, y, zero, "");
    LLVMValueRef bad = is_zero;
    if (sgn) {
        unsigned w = LLVMGetIntTypeWidth(cg_elem_type(LLVMTypeOf(x)));
        LLVMValueRef min = ty_const(cg, x, (int64_t)((uint64_t)1 << (w - 1)));
        LLVMValueRef ovf = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, x, min, ""),
                                        LLVMBuildICmp(b, LLVMIntEQ, y, ty_const(cg, y, -1), ""), "");
        bad = LLVMBuildOr(b, bad, ovf, "");
    }
    LLVMValueRef ys = LLVMBuildSelect(b, bad, one, y, "");
    LLVMValueRef q = sgn ? LLVMBuildSDiv(b, x, ys, "") : LLVMBuildUDiv(b, x, ys, "");
    LLVMValueRef r = sgn ? LLVMBuildSRem(b, x, ys, "") : LLVMBuildURem(b, x, ys, "");
    if (op == EX_MOD || (op == EX_FLOORMOD && !sgn)) return r;
    if (op == EX_DIV || !sgn) return LLVMBuildSelect(b, is_zero, zero, q, "");
    /* floor: step toward -inf when the remainder's sign differs from the divisor's */
    LLVMValueRef adj = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntNE, r, zero, ""),
                                    LLVMBuildICmp(b, LLVMIntSLT, LLVMBuildXor(b, r, ys, ""), zero, ""), "");
    if (op == EX_FLOORMOD) return LLVMBuildAdd(b, r, LLVMBuildSelect(b, adj, ys, zero, ""), "");
    q = LLVMBuildSub(b, q, LLVMBuildZExt(b, adj, LLVMTypeOf(q), ""), "");
    return LLVMBuildSelect(b, is_zero, zero, q, "");
}

static LLVMValueRef int_shift(cg_emit *cg, ex_binop op, LLVMValueRef x, LLVMValueRef y, bool sgn) {
    LLVMBuilderRef b = cg->b;
    unsigned w = LLVMGetIntTypeWidth(cg_elem_type(LLVMTypeOf(x)));
    LLVMValueRef big = LLVMBuildICmp(b, LLVMIntUGE, y, ty_const(cg, y, w), "");
    LLVMValueRef yc = LLVMBuildAnd(b, y, ty_const(cg, y, w - 1), "");
    if (op == EX_SHR && sgn) /* shifting out every bit leaves the sign */
        return LLVMBuildAShr(b, x, LLVMBuildSelect(b, big, ty_const(cg, y, w - 1), yc, ""), "");
    LLVMValueRef r = op == EX_SHL ? LLVMBuildShl(b, x, yc, "") : LLVMBuildLShr(b, x, yc, "");
    return LLVMBuildSelect(b, big, ty_const(cg, x, 0), r, "");
}

/* Applies a two-argument scalar function lane by lane. */
static LLVMValueRef per_lane2(cg_emit *cg, LLVMValueRef fn, LLVMValueRef x, LLVMValueRef y) {
    LLVMTypeRef fty = LLVMGlobalGetValueType(fn);
    if (LLVMGetTypeKind(LLVMTypeOf(x)) != LLVMVectorTypeKind) {
        LLVMValueRef args[2] = {x, y};
        return LLVMBuildCall2(cg->b, fty, fn, args, 2, "");
    }
    unsigned n = LLVMGetVectorSize(LLVMTypeOf(x));
    LLVMValueRef r = LLVMGetPoison(LLVMTypeOf(x));
    for (unsigned i = 0; i < n; i++) {
        LLVMValueRef li = LLVMConstInt(cg->t_i32, i, 0);
        LLVMValueRef args[2] = {LLVMBuildExtractElement(cg->b, x, li, ""), LLVMBuildExtractElement(cg->b, y, li, "")};
        r = LLVMBuildInsertElement(cg->b, r, LLVMBuildCall2(cg->b, fty, fn, args, 2, ""), li, "");
    }
    return r;
}

static kiln_status int_binary(cg_emit *cg, const ex_expr *e, LLVMValueRef x, LLVMValueRef y, LLVMValueRef *out) {
    LLVMBuilderRef b = cg->b;
    bool sgn = kiln_dtype_is_signed(e->args[0]->dtype);
    bool nsw = cg->index_mode && e->args[0]->dtype == KILN_I64;
    static const LLVMIntPredicate k_cmp[2][6] = {
        {LLVMIntEQ, LLVMIntNE, LLVMIntULT, LLVMIntULE, LLVMIntUGT, LLVMIntUGE},
        {LLVMIntEQ, LLVMIntNE, LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE}};
    switch ((ex_binop)e->op) {
    case EX_ADD: *out = nsw ? LLVMBuildNSWAdd(b, x, y, "") : LLVMBuildAdd(b, x, y, ""); break;
    case EX_SUB: *out = nsw ? LLVMBuildNSWSub(b, x, y, "") : LLVMBuildSub(b, x, y, ""); break;
    case EX_MUL: *out = nsw ? LLVMBuildNSWMul(b, x, y, "") : LLVMBuildMul(b, x, y, ""); break;
    case EX_DIV: case EX_MOD: case EX_FLOORDIV: case EX_FLOORMOD:
        *out = int_div(cg, (ex_binop)e->op, x, y, sgn);
        break;
    case EX_MIN: case EX_MAX: {
        LLVMValueRef args[2] = {x, y};
        LLVMTypeRef t = LLVMTypeOf(x);
        const char *n = e->op == EX_MIN ? (sgn ? "llvm.smin" : "llvm.umin") : (sgn ? "llvm.smax" : "llvm.umax");
        *out = cg_intrin(cg, n, &t, 1, args, 2);
        break;
    }
    case EX_POW:
        if (LLVMGetIntTypeWidth(cg_elem_type(LLVMTypeOf(x))) == 1) /* bool: x^0 = 1, x^1 = x */
            *out = LLVMBuildSelect(b, y, x, ty_const(cg, x, 1), "");
        else
            *out = per_lane2(cg, int_pow_fn(cg, cg_elem_type(LLVMTypeOf(x)), sgn), x, y);
        break;
    case EX_EQ: case EX_NE: case EX_LT: case EX_LE: case EX_GT: case EX_GE:
        *out = LLVMBuildICmp(b, k_cmp[sgn][e->op - EX_EQ], x, y, "");
        break;
    case EX_AND: *out = LLVMBuildAnd(b, x, y, ""); break;
    case EX_OR: *out = LLVMBuildOr(b, x, y, ""); break;
    case EX_XOR: *out = LLVMBuildXor(b, x, y, ""); break;
    case EX_SHL: case EX_SHR: *out = int_shift(cg, (ex_binop)e->op, x, y, sgn); break;
    default: return unsupported(cg, e, "integers");
    }
    return KILN_OK;
}

/* bool is a 1-bit unsigned integer whose results are "!= 0": x + y is
** x || y; -, * and the rest follow from 1-bit arithmetic. */
static kiln_status bool_binary(cg_emit *cg, const ex_expr *e, LLVMValueRef x, LLVMValueRef y, LLVMValueRef *out) {
    if (e->op == EX_ADD) {
        *out = LLVMBuildOr(cg->b, x, y, "");
        return KILN_OK;
    }
    return int_binary(cg, e, x, y, out);
}

static kiln_status float_binary(cg_emit *cg, const ex_expr *e, cg_val xv, cg_val yv, LLVMValueRef *out) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef x = xv.v, y = yv.v;
    LLVMTypeRef t = LLVMTypeOf(x);
    static const LLVMRealPredicate k_cmp[] = {LLVMRealOEQ, LLVMRealUNE, LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE};
    switch ((ex_binop)e->op) {
    case EX_ADD: *out = cg_fmath_flags(cg, LLVMBuildFAdd(b, x, y, "")); break;
    case EX_SUB: *out = cg_fmath_flags(cg, LLVMBuildFSub(b, x, y, "")); break;
    case EX_MUL: *out = cg_fmath_flags(cg, LLVMBuildFMul(b, x, y, "")); break;
    case EX_DIV: *out = cg_fmath_flags(cg, LLVMBuildFDiv(b, x, y, "")); break;
    case EX_MOD: *out = LLVMBuildFRem(b, x, y, ""); break;
    case EX_FLOORDIV: {
        LLVMValueRef q = LLVMBuildFDiv(b, x, y, "");
        *out = cg_intrin(cg, "llvm.floor", &t, 1, &q, 1);
        break;
    }
    case EX_FLOORMOD: { /* fmod, moved into the divisor's sign */
        LLVMValueRef r = LLVMBuildFRem(b, x, y, ""), zero = cg_fconst(cg, t, 0.0);
        LLVMValueRef differ = LLVMBuildXor(b, LLVMBuildFCmp(b, LLVMRealOLT, r, zero, ""),
                                           LLVMBuildFCmp(b, LLVMRealOLT, y, zero, ""), "");
        LLVMValueRef adj = LLVMBuildAnd(b, LLVMBuildFCmp(b, LLVMRealONE, r, zero, ""), differ, "");
        *out = LLVMBuildSelect(b, adj, LLVMBuildFAdd(b, r, y, ""), r, "");
        break;
    }
    case EX_MIN: case EX_MAX: {
        /* as the loop-IR interpreter: NaN if either is NaN, else x if it is
        ** strictly smaller (larger), else y. llvm.minimum orders -0 < +0,
        ** and LLVM 19 lowers it wrongly for NaN once narrowed to f16. */
        LLVMValueRef pick = LLVMBuildFCmp(b, e->op == EX_MIN ? LLVMRealOLT : LLVMRealOGT, x, y, "");
        LLVMValueRef r = LLVMBuildSelect(b, pick, x, y, "");
        LLVMValueRef nan = LLVMBuildFCmp(b, LLVMRealUNO, x, y, "");
        *out = LLVMBuildSelect(b, nan, LLVMBuildFAdd(b, x, y, ""), r, "");
        break;
    }
    case EX_POW: return cg_math_pow(cg, cg_elem_type(t), xv, yv, out);
    case EX_EQ: case EX_NE: case EX_LT: case EX_LE: case EX_GT: case EX_GE:
        *out = LLVMBuildFCmp(b, k_cmp[e->op - EX_EQ], x, y, "");
        break;
    default: return unsupported(cg, e, "floats");
    }
    return KILN_OK;
}

static bool is_fmul(const ex_expr *e, kiln_dtype t) {
    return e->kind == EX_BINARY && e->op == EX_MUL && e->dtype == t;
}

/* a*b + c, c + a*b, a*b - c and c - a*b as llvm.fmuladd when contraction
** is allowed */
static kiln_status try_fmuladd(cg_emit *cg, const ex_expr *e, cg_val *out, bool *done) {
    *done = false;
    kiln_dtype t = e->dtype;
    if (!cg->opt->fast_math || !kiln_dtype_is_float(t) || (e->op != EX_ADD && e->op != EX_SUB)) return KILN_OK;
    int m = is_fmul(e->args[0], t) ? 0 : is_fmul(e->args[1], t) ? 1 : -1;
    if (m < 0) return KILN_OK;
    cg_val a, bv, c;
    kiln_status s = cg_expr(cg, e->args[m]->args[0], &a);
    if (!s) s = cg_expr(cg, e->args[m]->args[1], &bv);
    if (!s) s = cg_expr(cg, e->args[1 - m], &c);
    if (s) return s;
    bool vec = a.vec || bv.vec || c.vec;
    LLVMValueRef args[3] = {a.v, bv.v, c.v};
    if (vec) {
        args[0] = cg_widen(cg, a);
        args[1] = cg_widen(cg, bv);
        args[2] = cg_widen(cg, c);
    }
    if (e->op == EX_SUB) args[m == 0 ? 2 : 0] = LLVMBuildFNeg(cg->b, args[m == 0 ? 2 : 0], "");
    LLVMTypeRef ty = LLVMTypeOf(args[0]);
    *out = (cg_val){cg_intrin(cg, "llvm.fmuladd", &ty, 1, args, 3), vec};
    *done = true;
    return KILN_OK;
}

static kiln_status short_circuit(cg_emit *cg, const ex_expr *e, cg_val *out, bool *done);

static kiln_status binary(cg_emit *cg, const ex_expr *e, cg_val *out) {
    bool done;
    kiln_status s = try_fmuladd(cg, e, out, &done);
    if (!s && !done) s = short_circuit(cg, e, out, &done);
    if (s || done) return s;
    cg_val x, y;
    if ((s = cg_expr(cg, e->args[0], &x)) || (s = cg_expr(cg, e->args[1], &y))) return s;
    unify(cg, &x, &y);
    kiln_dtype t = e->args[0]->dtype;
    LLVMValueRef r;
    if (kiln_dtype_is_float(t)) s = float_binary(cg, e, x, y, &r);
    else if (t == KILN_BOOL) s = bool_binary(cg, e, x.v, y.v, &r);
    else s = int_binary(cg, e, x.v, y.v, &r);
    if (s) return s;
    *out = (cg_val){r, x.vec};
    return KILN_OK;
}

/* ---- unary functions ---- */

static LLVMValueRef sign_of(cg_emit *cg, LLVMValueRef x, bool is_float, bool sgn) {
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef t = LLVMTypeOf(x);
    if (is_float) {
        LLVMValueRef zero = cg_fconst(cg, t, 0.0);
        LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, zero, ""), cg_fconst(cg, t, -1.0), x, "");
        return LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOGT, x, zero, ""), cg_fconst(cg, t, 1.0), r, "");
    }
    LLVMValueRef zero = cg_iconst(cg, t, 0);
    LLVMValueRef pos = LLVMBuildZExt(b, LLVMBuildICmp(b, sgn ? LLVMIntSGT : LLVMIntNE, x, zero, ""), t, "");
    if (!sgn) return pos;
    return LLVMBuildSub(b, pos, LLVMBuildZExt(b, LLVMBuildICmp(b, LLVMIntSLT, x, zero, ""), t, ""), "");
}

static kiln_status float_unary(cg_emit *cg, const ex_expr *e, cg_val x, LLVMValueRef *out) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef v = x.v;
    LLVMTypeRef t = LLVMTypeOf(v);
    switch ((ex_fn)e->op) {
    case EX_NEG: *out = LLVMBuildFNeg(b, v, ""); break;
    case EX_ABS: *out = cg_intrin(cg, "llvm.fabs", &t, 1, &v, 1); break;
    case EX_SIGN: *out = sign_of(cg, v, true, true); break;
    case EX_SQRT: *out = cg_intrin(cg, "llvm.sqrt", &t, 1, &v, 1); break;
    case EX_RSQRT:
        *out = LLVMBuildFDiv(b, cg_fconst(cg, t, 1.0), cg_intrin(cg, "llvm.sqrt", &t, 1, &v, 1), "");
        break;
    case EX_RECIP: *out = LLVMBuildFDiv(b, cg_fconst(cg, t, 1.0), v, ""); break;
    case EX_FLOOR: *out = cg_intrin(cg, "llvm.floor", &t, 1, &v, 1); break;
    case EX_CEIL: *out = cg_intrin(cg, "llvm.ceil", &t, 1, &v, 1); break;
    case EX_ROUND_EVEN: *out = cg_intrin(cg, "llvm.roundeven", &t, 1, &v, 1); break;
    case EX_ISNAN: *out = LLVMBuildFCmp(b, LLVMRealUNO, v, v, ""); break;
    case EX_ISINF: {
        LLVMValueRef a = cg_intrin(cg, "llvm.fabs", &t, 1, &v, 1);
        *out = LLVMBuildFCmp(b, LLVMRealOEQ, a, cg_fconst(cg, t, __builtin_inf()), "");
        break;
    }
    case EX_NOT: return unsupported(cg, e, "floats");
    default: return cg_math_unary(cg, (ex_fn)e->op, cg_elem_type(t), x, out);
    }
    return KILN_OK;
}

static kiln_status int_unary(cg_emit *cg, const ex_expr *e, cg_val x, LLVMValueRef *out) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef v = x.v;
    LLVMTypeRef t = LLVMTypeOf(v);
    kiln_dtype dt = e->args[0]->dtype;
    bool sgn = kiln_dtype_is_signed(dt), is_bool = dt == KILN_BOOL;
    switch ((ex_fn)e->op) {
    case EX_NEG: *out = LLVMBuildNeg(b, v, ""); break;
    case EX_NOT: *out = LLVMBuildNot(b, v, ""); break;
    case EX_ABS:
        if (sgn && !is_bool) {
            LLVMValueRef args[2] = {v, LLVMConstInt(cg->t_i1, 0, 0)}; /* abs(MIN) wraps to MIN */
            *out = cg_intrin(cg, "llvm.abs", &t, 1, args, 2);
        } else {
            *out = v;
        }
        break;
    case EX_SIGN: *out = is_bool ? v : sign_of(cg, v, false, sgn); break;
    case EX_FLOOR: case EX_CEIL: case EX_ROUND_EVEN: *out = v; break;
    case EX_ISNAN: case EX_ISINF: *out = cg_iconst(cg, cg_vtype(cg, cg->t_i1, x.vec), 0); break;
    default: { /* math on an integer: in f64, converted back with saturation */
        cg_val d, r;
        kiln_status s = cg_cast(cg, dt, KILN_F64, x, &d);
        if (!s) s = float_unary(cg, e, d, &r.v);
        r.vec = x.vec;
        if (!s) s = cg_cast(cg, KILN_F64, dt, r, &r);
        if (s) return s;
        *out = r.v;
        break;
    }
    }
    return KILN_OK;
}

static kiln_status unary(cg_emit *cg, const ex_expr *e, cg_val *out) {
    cg_val x;
    kiln_status s = cg_expr(cg, e->args[0], &x);
    if (s) return s;
    LLVMValueRef r;
    s = kiln_dtype_is_float(e->args[0]->dtype) ? float_unary(cg, e, x, &r) : int_unary(cg, e, x, &r);
    if (s) return s;
    *out = (cg_val){r, x.vec};
    return KILN_OK;
}

/* ---- select ---- */

static bool has_load(const ex_expr *e) {
    if (e->kind == EX_LOAD) return true;
    for (int i = 0; i < e->n_args; i++)
        if (has_load(e->args[i])) return true;
    return false;
}

/* Whether cond reads l whenever it is evaluated: not only inside a
** select's arm or the right side of && / ||, which may be skipped. */
static bool reads_always(const ex_expr *cond, const ex_expr *l) {
    if (cond->kind == EX_LOAD && ex_equal(cond, l)) return true;
    int n = cond->n_args;
    if (cond->kind == EX_SELECT || (cond->kind == EX_BINARY && (cond->op == EX_AND || cond->op == EX_OR))) n = 1;
    for (int i = 0; i < n; i++)
        if (reads_always(cond->args[i], l)) return true;
    return false;
}

/* Whether an arm reads memory its select's condition did not already read
** (Clip's `x < lo ? lo : x` reads nothing new: no need to evaluate it
** lazily, and eager arms let LLVM see a plain max/min). */
static bool reads_new(const ex_expr *e, const ex_expr *cond) {
    if (e->kind == EX_LOAD) return !reads_always(cond, e);
    for (int i = 0; i < e->n_args; i++)
        if (reads_new(e->args[i], cond)) return true;
    return false;
}

/* One side of a lazy choice: an expression, or (e NULL) a constant. */
typedef struct cg_arm {
    const ex_expr *e;
    LLVMValueRef k;
} cg_arm;

/* An arm emitted in its own block (scalar condition) or under a narrowed
** mask (vector condition); values it memoized do not outlive it. */
static kiln_status arm(cg_emit *cg, cg_arm a, LLVMValueRef mask, bool widen, cg_val *out) {
    kiln_status s = KILN_OK;
    if (a.e) {
        int mark = cg_memo_mark(cg);
        LLVMValueRef saved = cg->mask;
        if (mask) cg->mask = mask;
        s = cg_expr(cg, a.e, out);
        cg->mask = saved;
        cg_memo_release(cg, mark);
    } else {
        *out = (cg_val){a.k, false};
    }
    if (!s && widen && !out->vec) *out = (cg_val){cg_widen(cg, *out), true};
    return s;
}

static kiln_status choice_branch(cg_emit *cg, cg_val c, cg_arm at, cg_arm af, cg_val *out) {
    LLVMBasicBlockRef bt = cg_block(cg, "sel.then"), bf = cg_block(cg, "sel.else"), bm = cg_block(cg, "sel.end");
    LLVMBuildCondBr(cg->b, c.v, bt, bf);
    cg_val x, y;
    LLVMPositionBuilderAtEnd(cg->b, bt);
    kiln_status s = arm(cg, at, NULL, false, &x);
    if (s) return s;
    LLVMBasicBlockRef bt_end = LLVMGetInsertBlock(cg->b);
    LLVMPositionBuilderAtEnd(cg->b, bf);
    if ((s = arm(cg, af, NULL, false, &y))) return s;
    LLVMBasicBlockRef bf_end = LLVMGetInsertBlock(cg->b);
    /* a uniform arm next to a vector one is widened in its own block */
    bool vec = x.vec || y.vec;
    LLVMPositionBuilderAtEnd(cg->b, bt_end);
    if (vec && !x.vec) x = (cg_val){cg_widen(cg, x), true};
    LLVMBuildBr(cg->b, bm);
    LLVMPositionBuilderAtEnd(cg->b, bf_end);
    if (vec && !y.vec) y = (cg_val){cg_widen(cg, y), true};
    LLVMBuildBr(cg->b, bm);
    LLVMPositionBuilderAtEnd(cg->b, bm);
    LLVMValueRef phi = LLVMBuildPhi(cg->b, LLVMTypeOf(x.v), "");
    LLVMValueRef vals[2] = {x.v, y.v};
    LLVMBasicBlockRef blocks[2] = {bt_end, bf_end};
    LLVMAddIncoming(phi, vals, blocks, 2);
    *out = (cg_val){phi, vec};
    return KILN_OK;
}

/* c ? at : af, reading memory only for the chosen side: a branch for a
** uniform condition, masks for one that differs between lanes. */
static kiln_status lazy_choice(cg_emit *cg, cg_val c, cg_arm at, cg_arm af, cg_val *out) {
    if (!c.vec) return choice_branch(cg, c, at, af, out);
    cg_val x, y;
    LLVMValueRef mt = cg->mask ? LLVMBuildAnd(cg->b, cg->mask, c.v, "") : c.v;
    LLVMValueRef nc = LLVMBuildNot(cg->b, c.v, "");
    LLVMValueRef mf = cg->mask ? LLVMBuildAnd(cg->b, cg->mask, nc, "") : nc;
    kiln_status s = arm(cg, at, mt, true, &x);
    if (!s) s = arm(cg, af, mf, true, &y);
    if (s) return s;
    *out = (cg_val){LLVMBuildSelect(cg->b, c.v, x.v, y.v, ""), true};
    return KILN_OK;
}

static kiln_status select_expr(cg_emit *cg, const ex_expr *e, cg_val *out) {
    cg_val c, x, y;
    kiln_status s = cg_expr(cg, e->args[0], &c);
    if (s) return s;
    if (!LLVMIsConstant(c.v) && (reads_new(e->args[1], e->args[0]) || reads_new(e->args[2], e->args[0])))
        return lazy_choice(cg, c, (cg_arm){e->args[1], NULL}, (cg_arm){e->args[2], NULL}, out);
    if ((s = cg_expr(cg, e->args[1], &x)) || (s = cg_expr(cg, e->args[2], &y))) return s;
    unify(cg, &x, &y);
    if (c.vec && !x.vec) {
        x = (cg_val){cg_widen(cg, x), true};
        y = (cg_val){cg_widen(cg, y), true};
    }
    *out = (cg_val){LLVMBuildSelect(cg->b, c.v, x.v, y.v, ""), x.vec};
    return KILN_OK;
}

/* bool && and || skip their right side when the left decides, as the
** interpreter does, so `i < n && A[i] > 0` never reads past A. */
static kiln_status short_circuit(cg_emit *cg, const ex_expr *e, cg_val *out, bool *done) {
    *done = false;
    if (e->args[0]->dtype != KILN_BOOL || (e->op != EX_AND && e->op != EX_OR) || !has_load(e->args[1]))
        return KILN_OK;
    cg_val x;
    kiln_status s = cg_expr(cg, e->args[0], &x);
    if (s) return s;
    *done = true;
    LLVMValueRef k = LLVMConstInt(cg->t_i1, e->op == EX_OR, 0);
    if (e->op == EX_AND) return lazy_choice(cg, x, (cg_arm){e->args[1], NULL}, (cg_arm){NULL, k}, out);
    return lazy_choice(cg, x, (cg_arm){NULL, k}, (cg_arm){e->args[1], NULL}, out);
}

/* ---- entry points ---- */

static kiln_status emit(cg_emit *cg, const ex_expr *e, cg_val *out) {
    switch (e->kind) {
    case EX_INT: case EX_FLOAT: return constant(cg, e, out);
    case EX_VAR: return variable(cg, e, out);
    case EX_LOAD: return cg_load(cg, e, out);
    case EX_BINARY: return binary(cg, e, out);
    case EX_UNARY: return unary(cg, e, out);
    case EX_SELECT: return select_expr(cg, e, out);
    case EX_CAST: {
        cg_val x;
        kiln_status s = cg_expr(cg, e->args[0], &x);
        return s ? s : cg_cast(cg, e->args[0]->dtype, e->dtype, x, out);
    }
    default:
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': a reduction expression in the loop IR",
                         cg_fname(cg));
    }
}

kiln_status cg_expr(cg_emit *cg, const ex_expr *e, cg_val *out) {
    if (!e) return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': missing expression", cg_fname(cg));
    if (memo_find(cg, e, out)) return KILN_OK;
    kiln_status s = check_dtype(cg, e->dtype);
    for (int i = 0; !s && i < e->n_args && e->kind != EX_LOAD; i++) s = check_dtype(cg, e->args[i]->dtype);
    if (!s) s = emit(cg, e, out);
    if (!s) memo_add(cg, e, *out);
    return s;
}

kiln_status cg_index(cg_emit *cg, const ex_expr *e, cg_val *out) {
    if (!e) return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': missing index expression", cg_fname(cg));
    if (!kiln_dtype_is_int(e->dtype) && e->dtype != KILN_BOOL)
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': an index of dtype %s (integers only)",
                         cg_fname(cg), kiln_dtype_name(e->dtype));
    bool saved = cg->index_mode;
    cg->index_mode = true;
    cg_val v;
    kiln_status s = cg_expr(cg, e, &v);
    cg->index_mode = saved;
    if (s) return s;
    return cg_cast(cg, e->dtype == KILN_BOOL ? KILN_U8 : e->dtype, KILN_I64,
                   e->dtype == KILN_BOOL ? (cg_val){LLVMBuildZExt(cg->b, v.v, cg_vtype(cg, cg->t_i8, v.vec), ""), v.vec} : v,
                   out);
}

/* ---- integer power: an internal helper, exponentiation by squaring ---- */

static LLVMValueRef int_pow_fn(cg_emit *cg, LLVMTypeRef t, bool sgn) {
    char name[48];
    snprintf(name, sizeof name, "kiln.ipow.i%u.%c", LLVMGetIntTypeWidth(t), sgn ? 's' : 'u');
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (fn) return fn;
    LLVMTypeRef params[2] = {t, t};
    fn = LLVMAddFunction(cg->mod, name, LLVMFunctionType(t, params, 2, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    cg_set_fn_attrs(cg, fn);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(cg->c);
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->c, fn, "entry");
    LLVMBasicBlockRef neg = LLVMAppendBasicBlockInContext(cg->c, fn, "neg");
    LLVMBasicBlockRef loop = LLVMAppendBasicBlockInContext(cg->c, fn, "loop");
    LLVMBasicBlockRef step = LLVMAppendBasicBlockInContext(cg->c, fn, "step");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(cg->c, fn, "done");
    LLVMValueRef base = LLVMGetParam(fn, 0), ex = LLVMGetParam(fn, 1);
    LLVMValueRef zero = LLVMConstInt(t, 0, 0), one = LLVMConstInt(t, 1, 0), m1 = LLVMConstAllOnes(t);
    LLVMPositionBuilderAtEnd(b, entry);
    LLVMValueRef is_neg = sgn ? LLVMBuildICmp(b, LLVMIntSLT, ex, zero, "") : LLVMConstInt(cg->t_i1, 0, 0);
    LLVMBuildCondBr(b, is_neg, neg, loop);
    /* a negative exponent: 1/base^-e truncated, so 0 unless |base| is 1 */
    LLVMPositionBuilderAtEnd(b, neg);
    LLVMValueRef odd = LLVMBuildTrunc(b, ex, cg->t_i1, "");
    LLVMValueRef rm1 = LLVMBuildSelect(b, odd, m1, one, "");
    LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, base, m1, ""), rm1, zero, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, base, one, ""), one, r, "");
    LLVMBuildRet(b, r);
    LLVMPositionBuilderAtEnd(b, loop);
    LLVMValueRef pr = LLVMBuildPhi(b, t, "r"), pb = LLVMBuildPhi(b, t, "b"), pe = LLVMBuildPhi(b, t, "e");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, pe, zero, ""), done, step);
    LLVMPositionBuilderAtEnd(b, step);
    LLVMValueRef bit = LLVMBuildTrunc(b, pe, cg->t_i1, "");
    LLVMValueRef nr = LLVMBuildSelect(b, bit, LLVMBuildMul(b, pr, pb, ""), pr, "");
    LLVMValueRef nb = LLVMBuildMul(b, pb, pb, "");
    LLVMValueRef ne = LLVMBuildLShr(b, pe, one, "");
    LLVMBuildBr(b, loop);
    LLVMValueRef vr[2] = {one, nr}, vb[2] = {base, nb}, ve[2] = {ex, ne};
    LLVMBasicBlockRef from[2] = {entry, step};
    LLVMAddIncoming(pr, vr, from, 2);
    LLVMAddIncoming(pb, vb, from, 2);
    LLVMAddIncoming(pe, ve, from, 2);
    LLVMPositionBuilderAtEnd(b, done);
    LLVMBuildRet(b, pr);
    LLVMDisposeBuilder(b);
    return fn;
}
