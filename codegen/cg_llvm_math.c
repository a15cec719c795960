/*
** cg_llvm_math.c — math functions. Scalars call LLVM intrinsics or libm.
** Vectors of f32 use kiln's own approximations of exp, log, tanh, sigmoid
** and erf (the functions of GELU, softmax and normalization), emitted as
** internal always-inline LLVM functions; other vector math runs libm lane
** by lane.
**
** The approximations (coefficients fitted for minimax relative error):
**  exp:  x = n ln2 + r, |r| <= ln2/2 (Cody-Waite split of ln2, so n ln2 is
**        exact); exp(r) = 1 + r + r^2 q(r), q of degree 4; the result is
**        scaled by 2^n in two steps so that subnormal results round once.
**  log:  x = 2^k m, m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f/(2+f);
**        log(1+f) = f - hfsq + s (hfsq + R(s^2)), R the atanh series.
**  tanh: x + x^3 P(x^2) for |x| < 0.625, else 1 - 2/(exp(2|x|) + 1).
**  sigmoid: e = exp(-|x|); (x < 0 ? e : 1) / (1 + e), no overflow.
**  erf:  x P(x^2) for |x| < 0.9 (x times P's constant term rounds once),
**        else 1 - exp(-x^2) Q(|x| - 2.415), and 1 from |x| >= 3.93 (erf
**        rounds to 1 in f32 beyond 3.83).
** NaN propagates, infinities give the limits. The unit test measures the
** error against libm in double over 2^20 points per function (half of them
** random bit patterns): at most 1.0 ulp for exp, log and erf, 1.3 for tanh,
** 2.3 for sigmoid; relative error at most 1.7e-7.
*/
#include <string.h>

#include "codegen/cg_llvm_internal.h"

/* ---- scalar and lane-by-lane libm ---- */

static const char *libm_name(ex_fn fn, bool f32) {
    static const struct {
        ex_fn fn;
        const char *f, *d;
    } k_names[] = {
        {EX_TANH, "tanhf", "tanh"},   {EX_ERF, "erff", "erf"},       {EX_TAN, "tanf", "tan"},
        {EX_ASIN, "asinf", "asin"},   {EX_ACOS, "acosf", "acos"},    {EX_ATAN, "atanf", "atan"},
        {EX_SINH, "sinhf", "sinh"},   {EX_COSH, "coshf", "cosh"},    {EX_ASINH, "asinhf", "asinh"},
        {EX_ACOSH, "acoshf", "acosh"}, {EX_ATANH, "atanhf", "atanh"},
    };
    for (size_t i = 0; i < sizeof k_names / sizeof k_names[0]; i++)
        if (k_names[i].fn == fn) return f32 ? k_names[i].f : k_names[i].d;
    return NULL;
}

static LLVMValueRef libm_lanes(cg_emit *cg, const char *name, LLVMTypeRef ty, LLVMValueRef x) {
    if (LLVMGetTypeKind(LLVMTypeOf(x)) != LLVMVectorTypeKind) return cg_call_ext(cg, name, ty, &ty, 1, &x, true);
    unsigned n = LLVMGetVectorSize(LLVMTypeOf(x));
    LLVMValueRef r = LLVMGetPoison(LLVMTypeOf(x));
    for (unsigned i = 0; i < n; i++) {
        LLVMValueRef li = LLVMConstInt(cg->t_i32, i, 0);
        LLVMValueRef xi = LLVMBuildExtractElement(cg->b, x, li, "");
        r = LLVMBuildInsertElement(cg->b, r, cg_call_ext(cg, name, ty, &ty, 1, &xi, true), li, "");
    }
    return r;
}

static LLVMValueRef sigmoid_generic(cg_emit *cg, LLVMValueRef x) {
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef t = LLVMTypeOf(x);
    LLVMValueRef a = cg_intrin(cg, "llvm.fabs", &t, 1, &x, 1);
    LLVMValueRef na = LLVMBuildFNeg(b, a, "");
    LLVMValueRef e = cg_intrin(cg, "llvm.exp", &t, 1, &na, 1);
    LLVMValueRef num = LLVMBuildSelect(b, LLVMBuildFCmp(b, LLVMRealOLT, x, cg_fconst(cg, t, 0.0), ""), e,
                                       cg_fconst(cg, t, 1.0), "");
    return LLVMBuildFDiv(b, num, LLVMBuildFAdd(b, cg_fconst(cg, t, 1.0), e, ""), "");
}

kiln_status cg_math_unary(cg_emit *cg, ex_fn fn, LLVMTypeRef ty, cg_val x, LLVMValueRef *out) {
    bool f32 = ty == cg->t_f32;
    LLVMValueRef v = x.v;
    LLVMTypeRef vt = LLVMTypeOf(v);
    if (f32 && x.vec && (fn == EX_EXP || fn == EX_LOG || fn == EX_TANH || fn == EX_SIGMOID || fn == EX_ERF)) {
        *out = cg_vmath(cg, fn, v, cg->width);
        return KILN_OK;
    }
    switch (fn) {
    case EX_EXP: *out = cg_intrin(cg, "llvm.exp", &vt, 1, &v, 1); return KILN_OK;
    case EX_LOG: *out = cg_intrin(cg, "llvm.log", &vt, 1, &v, 1); return KILN_OK;
    case EX_SIN: *out = cg_intrin(cg, "llvm.sin", &vt, 1, &v, 1); return KILN_OK;
    case EX_COS: *out = cg_intrin(cg, "llvm.cos", &vt, 1, &v, 1); return KILN_OK;
    case EX_SIGMOID: *out = sigmoid_generic(cg, v); return KILN_OK;
    default: break;
    }
    const char *name = libm_name(fn, f32);
    if (!name)
        return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED, "kernel '%s': function %s is not supported by the CPU backend",
                         cg_fname(cg), ex_fn_name(fn));
    *out = libm_lanes(cg, name, ty, v);
    return KILN_OK;
}

kiln_status cg_math_pow(cg_emit *cg, LLVMTypeRef ty, cg_val x, cg_val y, LLVMValueRef *out) {
    (void)ty;
    LLVMValueRef args[2] = {x.v, y.v};
    LLVMTypeRef t = LLVMTypeOf(x.v);
    *out = cg_intrin(cg, "llvm.pow", &t, 1, args, 2);
    return KILN_OK;
}

/* ---- kiln's f32 approximations ---- */

typedef struct vm {
    cg_emit *cg;
    LLVMBuilderRef b;
    LLVMTypeRef ft, it; /* float and i32, scalar or vector */
    int width;
} vm;

static LLVMValueRef F(vm *m, double v) { return cg_fconst(m->cg, m->ft, v); }
static LLVMValueRef I(vm *m, int64_t v) { return cg_iconst(m->cg, m->it, v); }
static LLVMValueRef add(vm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFAdd(m->b, a, b, ""); }
static LLVMValueRef sub(vm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(m->b, a, b, ""); }
static LLVMValueRef mul(vm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFMul(m->b, a, b, ""); }
static LLVMValueRef fdiv(vm *m, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFDiv(m->b, a, b, ""); }
static LLVMValueRef sel(vm *m, LLVMValueRef c, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(m->b, c, a, b, "");
}
static LLVMValueRef fcmp(vm *m, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildFCmp(m->b, p, a, b, "");
}
static LLVMValueRef isnan_(vm *m, LLVMValueRef x) { return fcmp(m, LLVMRealUNO, x, x); }
static LLVMValueRef fmuladd(vm *m, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return cg_intrin(m->cg, "llvm.fmuladd", &m->ft, 1, args, 3);
}
static LLVMValueRef intrin1(vm *m, const char *name, LLVMValueRef x) { return cg_intrin(m->cg, name, &m->ft, 1, &x, 1); }
static LLVMValueRef copysign_(vm *m, LLVMValueRef mag, LLVMValueRef sgn) {
    LLVMValueRef args[2] = {mag, sgn};
    return cg_intrin(m->cg, "llvm.copysign", &m->ft, 1, args, 2);
}
/* c[0] + t (c[1] + t (c[2] + ...)) */
static LLVMValueRef horner(vm *m, LLVMValueRef t, const float *c, int n) {
    LLVMValueRef acc = F(m, c[n - 1]);
    for (int i = n - 2; i >= 0; i--) acc = fmuladd(m, acc, t, F(m, c[i]));
    return acc;
}
/* 2^k for k in [-126, 127] (i32 lanes) as floats */
static LLVMValueRef pow2i(vm *m, LLVMValueRef k) {
    LLVMValueRef bits = LLVMBuildShl(m->b, LLVMBuildAdd(m->b, k, I(m, 127), ""), I(m, 23), "");
    return LLVMBuildBitCast(m->b, bits, m->ft, "");
}

#define LN2_HI 0.693145751953125              /* 15 significant bits: n * LN2_HI is exact */
#define LN2_LO 1.42860682030941723212e-6      /* ln 2 - LN2_HI */

static LLVMValueRef v_exp(vm *m, LLVMValueRef x) {
    static const float q[5] = {0.49999994f, 0.166665211f, 0.041668389f, 0.00836873055f, 0.00138145685f};
    /* beyond [-104, 89] the result is 0 or inf anyway */
    LLVMValueRef xc = sel(m, fcmp(m, LLVMRealOGT, x, F(m, 89.0)), F(m, 89.0), x);
    xc = sel(m, fcmp(m, LLVMRealOLT, xc, F(m, -104.0)), F(m, -104.0), xc);
    xc = sel(m, isnan_(m, x), F(m, 0.0), xc);
    LLVMValueRef n = intrin1(m, "llvm.roundeven", mul(m, xc, F(m, 1.44269504088896341)));
    LLVMValueRef r = sub(m, xc, mul(m, n, F(m, LN2_HI)));
    r = sub(m, r, mul(m, n, F(m, LN2_LO)));
    LLVMValueRef p = add(m, F(m, 1.0), fmuladd(m, mul(m, r, r), horner(m, r, q, 5), r));
    LLVMValueRef ni = LLVMBuildFPToSI(m->b, n, m->it, "");
    LLVMValueRef n1 = LLVMBuildAShr(m->b, ni, I(m, 1), "");
    LLVMValueRef n2 = LLVMBuildSub(m->b, ni, n1, "");
    LLVMValueRef res = mul(m, mul(m, p, pow2i(m, n1)), pow2i(m, n2));
    return sel(m, isnan_(m, x), x, res);
}

static LLVMValueRef v_log(vm *m, LLVMValueRef x) {
    static const float c[4] = {0.666666667f, 0.4f, 0.285714286f, 0.222222222f};
    LLVMBuilderRef b = m->b;
    LLVMValueRef small = fcmp(m, LLVMRealOLT, x, F(m, 0x1p-126)); /* subnormal: scale up first */
    LLVMValueRef xs = sel(m, small, mul(m, x, F(m, 0x1p23)), x);
    LLVMValueRef ix = LLVMBuildSub(b, LLVMBuildBitCast(b, xs, m->it, ""), I(m, 0x3f3504f3), "");
    LLVMValueRef k = LLVMBuildAdd(b, LLVMBuildAShr(b, ix, I(m, 23), ""), sel(m, small, I(m, -23), I(m, 0)), "");
    LLVMValueRef mbits = LLVMBuildAdd(b, LLVMBuildAnd(b, ix, I(m, 0x7fffff), ""), I(m, 0x3f3504f3), "");
    LLVMValueRef f = sub(m, LLVMBuildBitCast(b, mbits, m->ft, ""), F(m, 1.0));
    LLVMValueRef s = fdiv(m, f, add(m, F(m, 2.0), f));
    LLVMValueRef z = mul(m, s, s);
    LLVMValueRef R = mul(m, z, horner(m, z, c, 4));
    LLVMValueRef hfsq = mul(m, F(m, 0.5), mul(m, f, f));
    LLVMValueRef dk = LLVMBuildSIToFP(b, k, m->ft, "");
    LLVMValueRef t = fmuladd(m, s, add(m, hfsq, R), mul(m, dk, F(m, LN2_LO)));
    LLVMValueRef res = add(m, mul(m, dk, F(m, LN2_HI)), sub(m, f, sub(m, hfsq, t)));
    res = sel(m, fcmp(m, LLVMRealOEQ, x, F(m, 0.0)), F(m, -__builtin_inf()), res);
    res = sel(m, fcmp(m, LLVMRealOLT, x, F(m, 0.0)), F(m, __builtin_nan("")), res);
    res = sel(m, fcmp(m, LLVMRealOEQ, x, F(m, __builtin_inf())), x, res);
    return sel(m, isnan_(m, x), x, res);
}

static LLVMValueRef v_tanh(vm *m, LLVMValueRef x) {
    static const float p[6] = {-0.333333313f, 0.133332059f, -0.0539467633f,
                               0.0217007045f, -0.00817740057f, 0.0021429637f};
    LLVMValueRef a = intrin1(m, "llvm.fabs", x);
    LLVMValueRef u = mul(m, x, x);
    LLVMValueRef ps = fmuladd(m, mul(m, x, u), horner(m, u, p, 6), x);
    LLVMValueRef e = v_exp(m, add(m, a, a));
    LLVMValueRef pl = copysign_(m, sub(m, F(m, 1.0), fdiv(m, F(m, 2.0), add(m, e, F(m, 1.0)))), x);
    return sel(m, fcmp(m, LLVMRealOLT, a, F(m, 0.625)), ps, pl);
}

static LLVMValueRef v_sigmoid(vm *m, LLVMValueRef x) {
    LLVMValueRef e = v_exp(m, LLVMBuildFNeg(m->b, intrin1(m, "llvm.fabs", x), ""));
    LLVMValueRef num = sel(m, fcmp(m, LLVMRealOLT, x, F(m, 0.0)), e, F(m, 1.0));
    return fdiv(m, num, add(m, F(m, 1.0), e));
}

static LLVMValueRef v_erf(vm *m, LLVMValueRef x) {
    /* 2/sqrt(pi) + u (p[0] + u (p[1] + ...)); the constant term in two
    ** parts, so that x times it rounds once */
    static const float p[6] = {-0.376126349f, 0.112837151f, -0.0268605109f,
                               0.00520386267f, -0.000817567343f, 8.51323202e-05f};
    static const float q[9] = {0.217312917f,    -0.0787577033f,  0.0270632748f,
                               -0.00907290354f, 0.00256324676f,  -0.000783514814f,
                               0.000670142763f, 0.000296296348f, 0.000137057898f};
    LLVMValueRef a = intrin1(m, "llvm.fabs", x);
    LLVMValueRef u = mul(m, x, x);
    LLVMValueRef lo = fmuladd(m, u, horner(m, u, p, 6), F(m, -5.86353835e-08));
    LLVMValueRef small = fmuladd(m, x, F(m, 1.12837922573089599609), mul(m, x, lo));
    LLVMValueRef Q = horner(m, sub(m, a, F(m, 2.415)), q, 9);
    LLVMValueRef E = v_exp(m, LLVMBuildFNeg(m->b, u, ""));
    LLVMValueRef large = sub(m, F(m, 1.0), mul(m, E, Q));
    large = sel(m, fcmp(m, LLVMRealOGE, a, F(m, 3.93)), F(m, 1.0), large);
    large = copysign_(m, large, x);
    return sel(m, fcmp(m, LLVMRealOLT, a, F(m, 0.9)), small, large);
}

static LLVMValueRef vmath_fn(cg_emit *cg, ex_fn fn, int width) {
    static const char *const k_names[] = {[EX_EXP] = "exp", [EX_LOG] = "log", [EX_TANH] = "tanh",
                                          [EX_SIGMOID] = "sigmoid", [EX_ERF] = "erf"};
    char name[64];
    if (width) snprintf(name, sizeof name, "kiln.%s.v%df32", k_names[fn], width);
    else snprintf(name, sizeof name, "kiln.%s.f32", k_names[fn]);
    LLVMValueRef f = LLVMGetNamedFunction(cg->mod, name);
    if (f) return f;
    vm m = {cg, NULL, width ? LLVMVectorType(cg->t_f32, (unsigned)width) : cg->t_f32,
            width ? LLVMVectorType(cg->t_i32, (unsigned)width) : cg->t_i32, width};
    f = LLVMAddFunction(cg->mod, name, LLVMFunctionType(m.ft, &m.ft, 1, 0));
    LLVMSetLinkage(f, LLVMInternalLinkage);
    cg_set_fn_attrs(cg, f);
    unsigned ai = LLVMGetEnumAttributeKindForName("alwaysinline", 12);
    LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->c, ai, 0));
    LLVMBuilderRef saved = cg->b;
    m.b = cg->b = LLVMCreateBuilderInContext(cg->c);
    LLVMPositionBuilderAtEnd(m.b, LLVMAppendBasicBlockInContext(cg->c, f, "entry"));
    LLVMValueRef x = LLVMGetParam(f, 0), r;
    switch (fn) {
    case EX_EXP: r = v_exp(&m, x); break;
    case EX_LOG: r = v_log(&m, x); break;
    case EX_TANH: r = v_tanh(&m, x); break;
    case EX_SIGMOID: r = v_sigmoid(&m, x); break;
    default: r = v_erf(&m, x); break;
    }
    LLVMBuildRet(m.b, r);
    LLVMDisposeBuilder(m.b);
    cg->b = saved;
    return f;
}

LLVMValueRef cg_vmath(cg_emit *cg, ex_fn fn, LLVMValueRef x, int width) {
    LLVMValueRef f = vmath_fn(cg, fn, width);
    return LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(f), f, &x, 1, "");
}
