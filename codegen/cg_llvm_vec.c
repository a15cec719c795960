/*
** cg_llvm_vec.c — memory accesses, scalar and vector, and the check that a
** vectorized loop may run its iterations as lanes.
**
** In a vectorized loop over v an access whose index is affine in v with
** coefficient 1 becomes one vector load/store at the index of lane 0; an
** index that does not depend on v is a scalar load (splatted where a vector
** is needed); any other index loads lane by lane (stores scatter). Under a
** mask (a guard that differs between lanes) loads and stores are masked,
** so inactive lanes touch no memory.
*/
#include "codegen/cg_llvm_internal.h"

bool cg_uses_var(const ex_expr *e, const ex_var *v) {
    if (!e || !v) return false;
    if (e->kind == EX_VAR) return e->var == v;
    for (int i = 0; i < e->n_args; i++)
        if (cg_uses_var(e->args[i], v)) return true;
    return false;
}

bool cg_affine(const ex_expr *e, const ex_var *v, int64_t *coef) {
    if (!cg_uses_var(e, v)) {
        *coef = 0;
        return true;
    }
    int64_t a, b, c;
    if (e->kind == EX_VAR) {
        *coef = 1;
        return true;
    }
    if (e->kind == EX_UNARY && e->op == EX_NEG && kiln_dtype_is_signed(e->dtype)) {
        if (!cg_affine(e->args[0], v, &a) || a == INT64_MIN) return false;
        *coef = -a;
        return true;
    }
    if (e->kind != EX_BINARY || !kiln_dtype_is_int(e->dtype)) return false;
    switch (e->op) {
    case EX_ADD:
    case EX_SUB:
        if (!cg_affine(e->args[0], v, &a) || !cg_affine(e->args[1], v, &b)) return false;
        return !(e->op == EX_ADD ? __builtin_add_overflow(a, b, coef) : __builtin_sub_overflow(a, b, coef));
    case EX_MUL:
        for (int k = 0; k < 2; k++)
            if (ex_is_const_int(e->args[k], &c)) {
                if (!cg_affine(e->args[1 - k], v, &a)) return false;
                return !__builtin_mul_overflow(a, c, coef);
            }
        return false;
    default: return false;
    }
}

/* ---- legality of a vectorized loop ---- */

typedef struct vl_store {
    const lir_buffer *buf;
    const ex_expr *index;
} vl_store;

typedef struct vl_state {
    const ex_var *v;
    const ex_var *inner[64];
    int n_inner;
    vl_store stores[64];
    int n_stores;
    bool ok;
} vl_state;

static bool uses_inner(const vl_state *st, const ex_expr *e) {
    for (int i = 0; i < st->n_inner; i++)
        if (cg_uses_var(e, st->inner[i])) return true;
    return false;
}

static void collect(vl_state *st, const lir_stmt *s) {
    if (!s || !st->ok) return;
    switch (s->kind) {
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++) collect(st, s->stmts[i]);
        break;
    case LIR_IF:
        collect(st, s->body);
        collect(st, s->else_body);
        break;
    case LIR_FOR:
        if (s->loop != LIR_SERIAL && s->loop != LIR_UNROLLED && s->loop != LIR_VECTORIZED) st->ok = false;
        else if (cg_uses_var(s->min, st->v) || cg_uses_var(s->extent, st->v) || st->n_inner == 64) st->ok = false;
        else {
            st->inner[st->n_inner++] = s->var;
            collect(st, s->body);
        }
        break;
    case LIR_STORE:
        if (st->n_stores == 64) st->ok = false;
        else st->stores[st->n_stores++] = (vl_store){s->buffer, s->index};
        break;
    case LIR_NOP: break;
    default: st->ok = false; /* allocations and barriers need their own iterations */
    }
}

/* Whether every load of buf in e reads at `index`. */
static bool loads_at(const ex_expr *e, const lir_buffer *buf, const ex_expr *index, bool *any) {
    if (!e) return true;
    if (e->kind == EX_LOAD && e->buffer == buf) {
        *any = true;
        if (!ex_equal(e->args[0], index)) return false;
    }
    for (int i = 0; i < e->n_args; i++)
        if (!loads_at(e->args[i], buf, index, any)) return false;
    return true;
}

static bool stmt_loads_at(const lir_stmt *s, const lir_buffer *buf, const ex_expr *index, bool *any) {
    if (!s) return true;
    switch (s->kind) {
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++)
            if (!stmt_loads_at(s->stmts[i], buf, index, any)) return false;
        return true;
    case LIR_IF:
        return loads_at(s->cond, buf, index, any) && stmt_loads_at(s->body, buf, index, any) &&
               stmt_loads_at(s->else_body, buf, index, any);
    case LIR_FOR:
        return loads_at(s->min, buf, index, any) && loads_at(s->extent, buf, index, any) &&
               stmt_loads_at(s->body, buf, index, any);
    case LIR_STORE: return loads_at(s->index, buf, index, any) && loads_at(s->value, buf, index, any);
    default: return true;
    }
}

/* Lanes must not interfere: each stored buffer is written at one index that
** varies with the lane (and with no loop inside the vectorized one), and
** read, if at all, only at that same index by an injective map of lanes. */
bool cg_vec_legal(const lir_stmt *s) {
    vl_state st = {.v = s->var, .ok = true};
    collect(&st, s->body);
    for (int i = 0; st.ok && i < st.n_stores; i++) {
        const vl_store *w = &st.stores[i];
        if (!cg_uses_var(w->index, st.v) || uses_inner(&st, w->index)) return false;
        for (int j = 0; j < i; j++)
            if (st.stores[j].buf == w->buf && !ex_equal(st.stores[j].index, w->index)) return false;
        bool any = false;
        if (!stmt_loads_at(s->body, w->buf, w->index, &any)) return false;
        int64_t coef;
        if (any && (!cg_affine(w->index, st.v, &coef) || coef == 0)) return false;
    }
    return st.ok;
}

/* ---- loads and stores ---- */

static kiln_status buffer_ptr(cg_emit *cg, const lir_buffer *b, LLVMValueRef *out) {
    if (!b || b->id < 0 || b->id >= cg->f->n_buffers || cg->f->buffers[b->id] != b)
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': an access to a buffer of another function",
                         cg_fname(cg));
    if (!cg_dtype_ok(b->dtype))
        return kiln_fail(cg->ctx, KILN_ERR_UNSUPPORTED,
                         "kernel '%s': buffer '%s' has dtype %s, which the CPU backend does not support",
                         cg_fname(cg), b->name, kiln_dtype_name(b->dtype));
    if (!cg->bufs[b->id])
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': buffer '%s' is used outside its allocation",
                         cg_fname(cg), b->name);
    *out = cg->bufs[b->id];
    return KILN_OK;
}

/* The index of lane 0, and how the lanes' indices relate to it. */
typedef enum { IX_UNIFORM, IX_CONTIGUOUS, IX_STRIDED, IX_GENERAL } ix_kind;

static kiln_status lane_index(cg_emit *cg, const ex_expr *idx, ix_kind *kind, cg_val *v) {
    int64_t coef = 0;
    if (cg->width == 0 || !cg_uses_var(idx, cg->vvar)) *kind = IX_UNIFORM;
    else if (!cg_affine(idx, cg->vvar, &coef)) *kind = IX_GENERAL;
    else *kind = coef == 0 ? IX_UNIFORM : coef == 1 ? IX_CONTIGUOUS : IX_STRIDED;
    if (*kind == IX_GENERAL) return cg_index(cg, idx, v);
    bool saved = cg->scalar_index;
    cg->scalar_index = true;
    kiln_status s = cg_index(cg, idx, v);
    cg->scalar_index = saved;
    if (s || *kind != IX_STRIDED) return s;
    LLVMValueRef step = LLVMBuildMul(cg->b, cg_lane_ids(cg, cg->width), cg_iconst(cg, LLVMVectorType(cg->t_i64, (unsigned)cg->width), coef), "");
    *v = (cg_val){LLVMBuildAdd(cg->b, cg_splat(cg, v->v, cg->width), step, ""), true};
    return KILN_OK;
}

static LLVMValueRef all_lanes(cg_emit *cg) {
    return cg->mask ? cg->mask : cg_iconst(cg, LLVMVectorType(cg->t_i1, (unsigned)cg->width), -1);
}

/* A load every lane makes at one address, under a mask: one scalar load
** when any lane is active (zero otherwise), not a gather of that address by
** every lane. */
static kiln_status uniform_masked_load(cg_emit *cg, kiln_dtype dt, LLVMTypeRef mt, LLVMValueRef p, unsigned align,
                                       cg_val *out) {
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef mask_t = LLVMTypeOf(cg->mask);
    LLVMValueRef any = cg_intrin(cg, "llvm.vector.reduce.or", &mask_t, 1, &cg->mask, 1);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(b), bl = cg_block(cg, "ld.any"), bm = cg_block(cg, "ld.end");
    LLVMBuildCondBr(b, any, bl, bm);
    LLVMPositionBuilderAtEnd(b, bl);
    LLVMValueRef v = LLVMBuildLoad2(b, mt, p, "");
    LLVMSetAlignment(v, align);
    LLVMBuildBr(b, bm);
    LLVMPositionBuilderAtEnd(b, bm);
    LLVMValueRef phi = LLVMBuildPhi(b, mt, "");
    LLVMValueRef vals[2] = {LLVMConstNull(mt), v};
    LLVMBasicBlockRef blocks[2] = {pre, bl};
    LLVMAddIncoming(phi, vals, blocks, 2);
    *out = (cg_val){cg_from_mem(cg, dt, phi), false};
    return KILN_OK;
}

/* A gather as one scalar load per lane. With 64-bit lane indices LLVM 19
** splits a 16-lane f32 gather into two AVX-512 vgatherqps, and one was seen
** to get the same register number for its destination and its index, an
** encoding the CPU rejects (#UD, SIGILL). Loads per lane have no such form
** (LLVM's own vectorizers may still pair them into gathers where their cost
** model prefers). An inactive lane loads element 0 of the buffer (always
** there) and reads zero, as the masked gather did: a poison divisor would
** be undefined. */
static LLVMValueRef lane_loads(cg_emit *cg, LLVMTypeRef mt, LLVMValueRef base, LLVMValueRef ix, unsigned align) {
    LLVMBuilderRef b = cg->b;
    LLVMValueRef v = LLVMGetUndef(LLVMVectorType(mt, (unsigned)cg->width)), zero = LLVMConstNull(mt);
    for (int l = 0; l < cg->width; l++) {
        LLVMValueRef lane = LLVMConstInt(cg->t_i32, (unsigned long long)l, 0);
        LLVMValueRef i = LLVMBuildExtractElement(b, ix, lane, "");
        LLVMValueRef on = cg->mask ? LLVMBuildExtractElement(b, cg->mask, lane, "") : NULL;
        if (on) i = LLVMBuildSelect(b, on, i, LLVMConstInt(LLVMTypeOf(i), 0, 0), "");
        LLVMValueRef x = LLVMBuildLoad2(b, mt, LLVMBuildInBoundsGEP2(b, mt, base, &i, 1, ""), "");
        LLVMSetAlignment(x, align);
        if (on) x = LLVMBuildSelect(b, on, x, zero, "");
        v = LLVMBuildInsertElement(b, v, x, lane, "");
    }
    return v;
}

kiln_status cg_load(cg_emit *cg, const ex_expr *e, cg_val *out) {
    const lir_buffer *buf = e->buffer;
    LLVMValueRef base;
    kiln_status s = buffer_ptr(cg, buf, &base);
    ix_kind kind;
    cg_val idx;
    if (!s) s = lane_index(cg, e->args[0], &kind, &idx);
    if (s) return s;
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef mt = cg_mem_type(cg, buf->dtype);
    unsigned align = (unsigned)cg_dtype_align(buf->dtype);
    LLVMValueRef v;
    if (kind == IX_UNIFORM) {
        LLVMValueRef p = LLVMBuildInBoundsGEP2(b, mt, base, &idx.v, 1, "");
        if (cg->width && cg->mask) return uniform_masked_load(cg, buf->dtype, mt, p, align, out);
        v = LLVMBuildLoad2(b, mt, p, "");
        LLVMSetAlignment(v, align);
        *out = (cg_val){cg_from_mem(cg, buf->dtype, v), false};
        return KILN_OK;
    }
    LLVMTypeRef vt = LLVMVectorType(mt, (unsigned)cg->width);
    LLVMValueRef al = LLVMConstInt(cg->t_i32, align, 0);
    if (kind == IX_CONTIGUOUS) {
        LLVMValueRef p = LLVMBuildInBoundsGEP2(b, mt, base, &idx.v, 1, "");
        if (cg->mask) {
            LLVMTypeRef over[2] = {vt, cg->t_ptr};
            LLVMValueRef args[4] = {p, al, cg->mask, LLVMConstNull(vt)};
            v = cg_intrin(cg, "llvm.masked.load", over, 2, args, 4);
        } else {
            v = LLVMBuildLoad2(b, vt, p, "");
            LLVMSetAlignment(v, align);
        }
    } else {
        v = lane_loads(cg, mt, base, idx.vec ? idx.v : cg_splat(cg, idx.v, cg->width), align);
    }
    *out = (cg_val){cg_from_mem(cg, buf->dtype, v), true};
    return KILN_OK;
}

kiln_status cg_store(cg_emit *cg, const lir_stmt *st) {
    const lir_buffer *buf = st->buffer;
    LLVMValueRef base;
    kiln_status s = buffer_ptr(cg, buf, &base);
    if (s) return s;
    if (!st->value || st->value->dtype != buf->dtype)
        return kiln_fail(cg->ctx, KILN_ERR_INVALID, "kernel '%s': a store of %s into buffer '%s' of %s", cg_fname(cg),
                         st->value ? kiln_dtype_name(st->value->dtype) : "nothing", buf->name,
                         kiln_dtype_name(buf->dtype));
    cg_memo_reset(cg);
    cg_val val, idx;
    ix_kind kind;
    if ((s = cg_expr(cg, st->value, &val)) || (s = lane_index(cg, st->index, &kind, &idx))) return s;
    LLVMBuilderRef b = cg->b;
    LLVMTypeRef mt = cg_mem_type(cg, buf->dtype);
    unsigned align = (unsigned)cg_dtype_align(buf->dtype);
    if (cg->width == 0) {
        LLVMValueRef p = LLVMBuildInBoundsGEP2(b, mt, base, &idx.v, 1, "");
        LLVMSetAlignment(LLVMBuildStore(b, cg_to_mem(cg, buf->dtype, val.v), p), align);
        return KILN_OK;
    }
    if (kind == IX_UNIFORM) /* cg_vec_legal keeps such loops serial */
        return kiln_fail(cg->ctx, KILN_ERR_INTERNAL, "kernel '%s': a store to '%s' that every lane would make",
                         cg_fname(cg), buf->name);
    LLVMValueRef mv = cg_to_mem(cg, buf->dtype, cg_widen(cg, val));
    LLVMTypeRef vt = LLVMTypeOf(mv);
    LLVMValueRef al = LLVMConstInt(cg->t_i32, align, 0);
    if (kind == IX_CONTIGUOUS) {
        LLVMValueRef p = LLVMBuildInBoundsGEP2(b, mt, base, &idx.v, 1, "");
        if (cg->mask) {
            LLVMTypeRef over[2] = {vt, cg->t_ptr};
            LLVMValueRef args[4] = {mv, p, al, cg->mask};
            cg_intrin(cg, "llvm.masked.store", over, 2, args, 4);
        } else {
            LLVMSetAlignment(LLVMBuildStore(b, mv, p), align);
        }
        return KILN_OK;
    }
    /* overlapping lanes are written in lane order, as the serial loop would */
    LLVMValueRef ptrs = LLVMBuildInBoundsGEP2(b, mt, base, &idx.v, 1, "");
    LLVMTypeRef over[2] = {vt, LLVMVectorType(cg->t_ptr, (unsigned)cg->width)};
    LLVMValueRef args[4] = {mv, ptrs, al, all_lanes(cg)};
    cg_intrin(cg, "llvm.masked.scatter", over, 2, args, 4);
    return KILN_OK;
}
