/*
** cg_llvm_conv.c — dtypes in LLVM: register and memory types, the
** conversions between them (f16/bf16 live as f32 in registers, bool as i1
** in registers and a byte in memory) and casts between dtypes.
*/
#include "codegen/cg_llvm_internal.h"

bool cg_dtype_ok(kiln_dtype t) {
    switch (t) {
    case KILN_F32: case KILN_F64: case KILN_F16: case KILN_BF16:
    case KILN_I8: case KILN_I16: case KILN_I32: case KILN_I64:
    case KILN_U8: case KILN_U16: case KILN_U32: case KILN_U64:
    case KILN_BOOL: return true;
    default: return false;
    }
}

LLVMTypeRef cg_reg_type(cg_emit *cg, kiln_dtype t) {
    switch (t) {
    case KILN_F32: case KILN_F16: case KILN_BF16: return cg->t_f32;
    case KILN_F64: return cg->t_f64;
    case KILN_I8: case KILN_U8: return cg->t_i8;
    case KILN_I16: case KILN_U16: return cg->t_i16;
    case KILN_I32: case KILN_U32: return cg->t_i32;
    case KILN_BOOL: return cg->t_i1;
    default: return cg->t_i64;
    }
}

LLVMTypeRef cg_mem_type(cg_emit *cg, kiln_dtype t) {
    if (t == KILN_F16 || t == KILN_BF16) return cg->t_i16;
    if (t == KILN_BOOL) return cg->t_i8;
    return cg_reg_type(cg, t);
}

int cg_dtype_align(kiln_dtype t) {
    int n = (int)kiln_dtype_size(t);
    return n > 0 ? n : 1;
}

LLVMTypeRef cg_vtype(cg_emit *cg, LLVMTypeRef t, bool vec) {
    return vec ? LLVMVectorType(t, (unsigned)cg->width) : t;
}

/* The type of v with its scalar replaced by `elem`. */
static LLVMTypeRef like(LLVMValueRef v, LLVMTypeRef elem) {
    LLVMTypeRef t = LLVMTypeOf(v);
    return LLVMGetTypeKind(t) == LLVMVectorTypeKind ? LLVMVectorType(elem, LLVMGetVectorSize(t)) : elem;
}

static LLVMValueRef k32(cg_emit *cg, LLVMValueRef shape, int64_t v) {
    return cg_iconst(cg, like(shape, cg->t_i32), v);
}

static LLVMValueRef f16_bits_to_f32(cg_emit *cg, LLVMValueRef bits16) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef h = LLVMBuildZExt(b, bits16, like(bits16, cg->t_i32), "");
    LLVMValueRef sign = LLVMBuildShl(b, LLVMBuildAnd(b, h, k32(cg, h, 0x8000), ""), k32(cg, h, 16), "");
    LLVMValueRef e = LLVMBuildAnd(b, LLVMBuildLShr(b, h, k32(cg, h, 10), ""), k32(cg, h, 0x1f), "");
    LLVMValueRef m = LLVMBuildAnd(b, h, k32(cg, h, 0x3ff), "");
    LLVMValueRef m13 = LLVMBuildShl(b, m, k32(cg, h, 13), "");
    LLVMValueRef normal = LLVMBuildOr(b, LLVMBuildShl(b, LLVMBuildAdd(b, e, k32(cg, h, 112), ""), k32(cg, h, 23), ""), m13, "");
    LLVMValueRef special = LLVMBuildOr(b, k32(cg, h, 0x7f800000), m13, "");
    LLVMTypeRef ft = like(h, cg->t_f32);
    LLVMValueRef subf = LLVMBuildFMul(b, LLVMBuildUIToFP(b, m, ft, ""), cg_fconst(cg, ft, 0x1p-24), "");
    LLVMValueRef sub = LLVMBuildBitCast(b, subf, like(h, cg->t_i32), "");
    LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, e, k32(cg, h, 31), ""), special, normal, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, e, k32(cg, h, 0), ""), sub, r, "");
    return LLVMBuildBitCast(b, LLVMBuildOr(b, r, sign, ""), ft, "");
}

/* (q >> shift) rounded to nearest even, for shift in [1, 31]. */
static LLVMValueRef shift_round(cg_emit *cg, LLVMValueRef m, LLVMValueRef shift) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef q = LLVMBuildLShr(b, m, shift, "");
    LLVMValueRef one = k32(cg, m, 1);
    LLVMValueRef rem = LLVMBuildAnd(b, m, LLVMBuildSub(b, LLVMBuildShl(b, one, shift, ""), one, ""), "");
    LLVMValueRef mid = LLVMBuildShl(b, one, LLVMBuildSub(b, shift, one, ""), "");
    LLVMValueRef up = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntUGT, rem, mid, ""),
                                  LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, rem, mid, ""),
                                               LLVMBuildTrunc(b, q, like(m, cg->t_i1), ""), ""), "");
    return LLVMBuildAdd(b, q, LLVMBuildZExt(b, up, like(m, cg->t_i32), ""), "");
}

/* Round to nearest even, as kiln_f32_to_f16. */
static LLVMValueRef f32_to_f16_bits(cg_emit *cg, LLVMValueRef f) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef x = LLVMBuildBitCast(b, f, like(f, cg->t_i32), "");
    LLVMValueRef sign = LLVMBuildAnd(b, LLVMBuildLShr(b, x, k32(cg, x, 16), ""), k32(cg, x, 0x8000), "");
    LLVMValueRef exp = LLVMBuildAnd(b, LLVMBuildLShr(b, x, k32(cg, x, 23), ""), k32(cg, x, 0xff), "");
    LLVMValueRef mant = LLVMBuildAnd(b, x, k32(cg, x, 0x7fffff), "");
    LLVMValueRef e = LLVMBuildSub(b, exp, k32(cg, x, 112), "");
    LLVMValueRef nanbit = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntNE, mant, k32(cg, x, 0), ""),
                                          k32(cg, x, 0x200), k32(cg, x, 0), "");
    LLVMValueRef naninf = LLVMBuildOr(b, k32(cg, x, 0x7c00), nanbit, "");
    LLVMValueRef normal = shift_round(cg, LLVMBuildOr(b, LLVMBuildShl(b, e, k32(cg, x, 23), ""), mant, ""), k32(cg, x, 13));
    /* subnormal: shift 14 - e, at most 31 (everything shifted out rounds to 0) */
    LLVMValueRef sh = LLVMBuildSub(b, k32(cg, x, 14), e, "");
    sh = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGT, sh, k32(cg, x, 31), ""), k32(cg, x, 31), sh, "");
    sh = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSLT, sh, k32(cg, x, 14), ""), k32(cg, x, 14), sh, "");
    LLVMValueRef sub = shift_round(cg, LLVMBuildOr(b, mant, k32(cg, x, 0x800000), ""), sh);
    LLVMValueRef r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, e, k32(cg, x, 1), ""), normal, sub, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntSGE, e, k32(cg, x, 31), ""), k32(cg, x, 0x7c00), r, "");
    r = LLVMBuildSelect(b, LLVMBuildICmp(b, LLVMIntEQ, exp, k32(cg, x, 0xff), ""), naninf, r, "");
    r = LLVMBuildOr(b, r, sign, "");
    return LLVMBuildTrunc(b, r, like(x, cg->t_i16), "");
}

/* Round to nearest even; NaN stays a quiet NaN, as kiln_f32_to_bf16. */
static LLVMValueRef f32_to_bf16_bits(cg_emit *cg, LLVMValueRef f) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef x = LLVMBuildBitCast(b, f, like(f, cg->t_i32), "");
    LLVMValueRef hi = LLVMBuildLShr(b, x, k32(cg, x, 16), "");
    LLVMValueRef isnan = LLVMBuildICmp(b, LLVMIntUGT, LLVMBuildAnd(b, x, k32(cg, x, 0x7fffffff), ""),
                                       k32(cg, x, 0x7f800000), "");
    LLVMValueRef bias = LLVMBuildAdd(b, k32(cg, x, 0x7fff), LLVMBuildAnd(b, hi, k32(cg, x, 1), ""), "");
    LLVMValueRef r = LLVMBuildLShr(b, LLVMBuildAdd(b, x, bias, ""), k32(cg, x, 16), "");
    r = LLVMBuildSelect(b, isnan, LLVMBuildOr(b, hi, k32(cg, x, 0x40), ""), r, "");
    return LLVMBuildTrunc(b, r, like(x, cg->t_i16), "");
}

LLVMValueRef cg_from_mem(cg_emit *cg, kiln_dtype t, LLVMValueRef v) {
    LLVMBuilderRef b = cg->b;
    switch (t) {
    case KILN_BOOL: return LLVMBuildICmp(b, LLVMIntNE, v, cg_iconst(cg, LLVMTypeOf(v), 0), "");
    case KILN_BF16: {
        LLVMValueRef w = LLVMBuildZExt(b, v, like(v, cg->t_i32), "");
        return LLVMBuildBitCast(b, LLVMBuildShl(b, w, k32(cg, w, 16), ""), like(v, cg->t_f32), "");
    }
    case KILN_F16:
        if (cg->f16c)
            return LLVMBuildFPExt(b, LLVMBuildBitCast(b, v, like(v, cg->t_f16), ""), like(v, cg->t_f32), "");
        return f16_bits_to_f32(cg, v);
    default: return v;
    }
}

LLVMValueRef cg_to_mem(cg_emit *cg, kiln_dtype t, LLVMValueRef v) {
    LLVMBuilderRef b = cg->b;
    switch (t) {
    case KILN_BOOL: return LLVMBuildZExt(b, v, like(v, cg->t_i8), "");
    case KILN_BF16: return f32_to_bf16_bits(cg, v);
    case KILN_F16:
        if (cg->f16c)
            return LLVMBuildBitCast(b, LLVMBuildFPTrunc(b, v, like(v, cg->t_f16), ""), like(v, cg->t_i16), "");
        return f32_to_f16_bits(cg, v);
    default: return v;
    }
}

static bool is_f(kiln_dtype t) { return kiln_dtype_is_float(t); }
static bool is_half(kiln_dtype t) { return t == KILN_F16 || t == KILN_BF16; }

static LLVMValueRef float_to_int(cg_emit *cg, LLVMValueRef v, kiln_dtype to) {
    LLVMTypeRef over[2] = {like(v, cg_reg_type(cg, to)), LLVMTypeOf(v)};
    const char *name = kiln_dtype_is_signed(to) ? "llvm.fptosi.sat" : "llvm.fptoui.sat";
    return cg_intrin(cg, name, over, 2, &v, 1);
}

kiln_status cg_cast(cg_emit *cg, kiln_dtype from, kiln_dtype to, cg_val x, cg_val *out) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef v = x.v;
    LLVMTypeRef rt = like(v, cg_reg_type(cg, to));
    if (from == to) {
        *out = x;
        return KILN_OK;
    }
    if (is_half(to)) { /* through f32, then rounded to the narrow type */
        cg_val f;
        kiln_status s = is_half(from) ? (f = x, KILN_OK) : cg_cast(cg, from, KILN_F32, x, &f);
        if (s) return s;
        out->v = cg_from_mem(cg, to, cg_to_mem(cg, to, f.v));
        out->vec = x.vec;
        return KILN_OK;
    }
    if (is_half(from)) from = KILN_F32; /* already f32 in registers */
    if (from == to) v = x.v;
    else if (is_f(from) && is_f(to))
        v = to == KILN_F64 ? LLVMBuildFPExt(b, v, rt, "") : LLVMBuildFPTrunc(b, v, rt, "");
    else if (is_f(from) && to == KILN_BOOL)
        v = LLVMBuildFCmp(b, LLVMRealUNE, v, cg_fconst(cg, LLVMTypeOf(v), 0.0), "");
    else if (is_f(from))
        v = float_to_int(cg, v, to);
    else if (is_f(to))
        v = kiln_dtype_is_signed(from) ? LLVMBuildSIToFP(b, v, rt, "") : LLVMBuildUIToFP(b, v, rt, "");
    else if (to == KILN_BOOL)
        v = LLVMBuildICmp(b, LLVMIntNE, v, cg_iconst(cg, LLVMTypeOf(v), 0), "");
    else {
        unsigned fw = LLVMGetIntTypeWidth(cg_elem_type(LLVMTypeOf(v)));
        unsigned tw = LLVMGetIntTypeWidth(cg_elem_type(rt));
        if (tw < fw) v = LLVMBuildTrunc(b, v, rt, "");
        else if (tw > fw)
            v = kiln_dtype_is_signed(from) ? LLVMBuildSExt(b, v, rt, "") : LLVMBuildZExt(b, v, rt, "");
    }
    out->v = v;
    out->vec = x.vec;
    return KILN_OK;
}
