/*
** cg_llvm_util.c — small helpers over the LLVM C API: intrinsic and library
** calls, constants and splats, blocks, stack slots, loop metadata.
*/
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "codegen/cg_llvm_internal.h"

LLVMValueRef cg_intrin(cg_emit *cg, const char *name, LLVMTypeRef *over, int n_over,
                       LLVMValueRef *args, int n_args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, over, (size_t)n_over);
    LLVMTypeRef fty = LLVMGlobalGetValueType(fn);
    return LLVMBuildCall2(cg->b, fty, fn, args, (unsigned)n_args, "");
}

static void add_fn_attr(cg_emit *cg, LLVMValueRef fn, const char *kind, uint64_t val) {
    unsigned k = LLVMGetEnumAttributeKindForName(kind, strlen(kind));
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->c, k, val));
}

LLVMValueRef cg_call_ext(cg_emit *cg, const char *name, LLVMTypeRef ret, LLVMTypeRef *params,
                         int n_params, LLVMValueRef *args, bool pure) {
    LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)n_params, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(cg->mod, name, fty);
        add_fn_attr(cg, fn, "nounwind", 0);
        if (pure) {
            /* libm's errno is never read by generated code */
            add_fn_attr(cg, fn, "willreturn", 0);
            add_fn_attr(cg, fn, "memory", 0);
        }
    }
    return LLVMBuildCall2(cg->b, fty, fn, args, (unsigned)n_params, "");
}

LLVMTypeRef cg_elem_type(LLVMTypeRef ty) {
    return LLVMGetTypeKind(ty) == LLVMVectorTypeKind ? LLVMGetElementType(ty) : ty;
}

LLVMValueRef cg_splat(cg_emit *cg, LLVMValueRef x, int width) {
    if (LLVMIsConstant(x)) {
        LLVMValueRef lanes[256];
        LLVMValueRef *v = width <= 256 ? lanes : kiln_malloc(sizeof(LLVMValueRef) * (size_t)width);
        if (v) {
            for (int i = 0; i < width; i++) v[i] = x;
            LLVMValueRef r = LLVMConstVector(v, (unsigned)width);
            if (v != lanes) kiln_free(v);
            return r;
        }
    }
    LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(x), (unsigned)width);
    LLVMValueRef one = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), x, LLVMConstInt(cg->t_i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)width));
    return LLVMBuildShuffleVector(cg->b, one, LLVMGetPoison(vt), zeros, "");
}

LLVMValueRef cg_widen(cg_emit *cg, cg_val x) { return x.vec ? x.v : cg_splat(cg, x.v, cg->width); }

LLVMValueRef cg_lane_ids(cg_emit *cg, int width) {
    LLVMValueRef lanes[256];
    LLVMValueRef *v = width <= 256 ? lanes : kiln_malloc(sizeof(LLVMValueRef) * (size_t)width);
    if (!v) return NULL;
    for (int i = 0; i < width; i++) v[i] = LLVMConstInt(cg->t_i64, (unsigned long long)i, 0);
    LLVMValueRef r = LLVMConstVector(v, (unsigned)width);
    if (v != lanes) kiln_free(v);
    return r;
}

LLVMValueRef cg_fconst(cg_emit *cg, LLVMTypeRef ty, double v) {
    if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind)
        return cg_splat(cg, LLVMConstReal(LLVMGetElementType(ty), v), (int)LLVMGetVectorSize(ty));
    return LLVMConstReal(ty, v);
}

LLVMValueRef cg_iconst(cg_emit *cg, LLVMTypeRef ty, int64_t v) {
    if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind)
        return cg_splat(cg, LLVMConstInt(LLVMGetElementType(ty), (unsigned long long)v, 1),
                        (int)LLVMGetVectorSize(ty));
    return LLVMConstInt(ty, (unsigned long long)v, 1);
}

/* Contraction (a*b+c -> fma) is the only fast-math freedom kiln takes. */
LLVMValueRef cg_fmath_flags(cg_emit *cg, LLVMValueRef inst) {
    if (cg->opt->fast_math && LLVMIsAInstruction(inst) && LLVMCanValueUseFastMathFlags(inst))
        LLVMSetFastMathFlags(inst, LLVMFastMathAllowContract);
    return inst;
}

LLVMBasicBlockRef cg_block(cg_emit *cg, const char *name) {
    return LLVMAppendBasicBlockInContext(cg->c, cg->fn, name);
}

LLVMValueRef cg_alloca(cg_emit *cg, LLVMTypeRef ty, int align, const char *name) {
    LLVMBuilderRef ab = LLVMCreateBuilderInContext(cg->c);
    LLVMValueRef term = LLVMGetBasicBlockTerminator(cg->alloca_bb);
    if (term) LLVMPositionBuilderBefore(ab, term);
    else LLVMPositionBuilderAtEnd(ab, cg->alloca_bb);
    LLVMValueRef a = LLVMBuildAlloca(ab, ty, name);
    LLVMSetAlignment(a, (unsigned)align);
    LLVMDisposeBuilder(ab);
    return a;
}

void cg_loop_md(cg_emit *cg, LLVMValueRef br, const char *prop) {
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(cg->c, NULL, 0);
    LLVMMetadataRef name = LLVMMDStringInContext2(cg->c, prop, strlen(prop));
    LLVMMetadataRef p = LLVMMDNodeInContext2(cg->c, &name, 1);
    LLVMMetadataRef ops[2] = {tmp, p};
    LLVMMetadataRef loop = LLVMMDNodeInContext2(cg->c, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, loop); /* the loop id refers to itself */
    unsigned kind = LLVMGetMDKindIDInContext(cg->c, "llvm.loop", 9);
    LLVMSetMetadata(br, kind, LLVMMetadataAsValue(cg->c, loop));
}
