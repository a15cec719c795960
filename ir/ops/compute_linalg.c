/*
** compute_linalg.c — compute definitions of MatMul (numpy semantics:
** batched, broadcast batch dims, 1-D operands) and Gemm.
**
** The product is one stage tagged TIR_TAG_MATMUL with spatial axes named
** "b0".."bN" (batch), "i", "j" and the reduction axis "k", which is what the
** matmul schedule templates look for; Gemm's alpha, beta and C, and a cast
** back to a half type, are an elementwise epilogue stage.
*/
#include <string.h>

#include "compute.h"
#include "nn_internal.h"

static const char *const k_batch_names[KILN_MAX_RANK] = {"b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7"};

static kiln_status mm_check(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in) {
    kiln_dtype dt = in[0]->dtype;
    if (!(KILN_DT(dt) & KILN_DT_NUMERIC))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported", kiln_dtype_name(dt));
    return KILN_OK;
}

/* A 2-D-or-more operand's index: its batch dims aligned right against the
** output's batch axes (broadcast dims read 0), then its two matrix indices. */
static void mm_operand_index(tir_func *f, const tir_tensor *t, int nb, ex_expr *const *batch, ex_expr *row,
                             ex_expr *col, ex_expr **idx) {
    int tb = t->rank - 2;
    for (int d = 0; d < tb; d++)
        idx[d] = t->dims[d] == 1 ? ex_int(&f->eb, 0) : batch[nb - tb + d];
    idx[tb] = row;
    idx[tb + 1] = col;
}

/* A zero point's value for the operand element at index ti (rank r): one
** value, one per row (a 1-D zero point of M values on the row operand), or
** broadcast like numpy against the operand. */
static ex_expr *mm_zero_point(tir_func *f, const tir_tensor *zp, const tir_tensor *t, ex_expr *const *ti,
                              bool rows) {
    if (kiln_numel_dims(zp->rank, zp->dims) == 1) return cmp_load_first(f, zp);
    if (rows && zp->rank == 1 && t->rank >= 2 && zp->dims[0] == t->dims[t->rank - 2])
        return cmp_load(f, zp, &ti[t->rank - 2]);
    return cmp_load_bcast(f, zp, t->rank, ti);
}

/* The product stage of MatMul, MatMulInteger and QLinearMatMul: sum over k
** of (a - az) * (b - bz) in c, over the output dims od (rank r). */
static tir_stage *mm_acc(kiln_ctx *ctx, tir_func *f, const gir_node *n, const tir_tensor *a, const tir_tensor *b,
                         const tir_tensor *az, const tir_tensor *bz, kiln_dtype c, kiln_status *st_out) {
    kiln_tensor ta, tb;
    nn_matmul_shape ms;
    cmp_type_of(a, &ta);
    cmp_type_of(b, &tb);
    *st_out = nn_matmul_shape_of(ctx, n, &ta, &tb, &ms);
    if (*st_out) return NULL;
    const char *names[KILN_MAX_RANK];
    int r = 0;
    for (int d = 0; d < ms.batch_rank; d++) names[r++] = k_batch_names[d];
    if (a->rank > 1) names[r++] = "i";
    if (b->rank > 1) names[r++] = "j";
    tir_stage *st = cmp_stage(f, "matmul", c, ms.out_rank, ms.out, TIR_TAG_MATMUL, names);
    ex_expr *ax[KILN_MAX_RANK], *ai[KILN_MAX_RANK], *bi[KILN_MAX_RANK];
    cmp_axes(f, st, ax);
    if (!st) return NULL;
    ex_expr *k = ex_varref(&f->eb, cmp_raxis(f, st, "k", ms.k));
    ex_expr *i = a->rank > 1 ? ax[ms.batch_rank] : NULL, *j = b->rank > 1 ? ax[r - 1] : NULL;
    if (a->rank == 1) ai[0] = k;
    else mm_operand_index(f, a, ms.batch_rank, ax, i, k, ai);
    if (b->rank == 1) bi[0] = k;
    else mm_operand_index(f, b, ms.batch_rank, ax, k, j, bi);
    ex_expr *av = cmp_to(f, cmp_load(f, a, ai), c), *bv = cmp_to(f, cmp_load(f, b, bi), c);
    if (az) av = cmp_bin(f, EX_SUB, av, cmp_to(f, mm_zero_point(f, az, a, ai, true), c));
    if (bz) bv = cmp_bin(f, EX_SUB, bv, cmp_to(f, mm_zero_point(f, bz, b, bi, false), c));
    st->body = cmp_reduction(f, st, EX_SUM, cmp_bin(f, EX_MUL, av, bv));
    return st;
}

static kiln_status mm_build(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out,
                            const tir_tensor *az, const tir_tensor *bz, kiln_dtype c) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    tir_stage *st = mm_acc(ctx, f, n, in[0], in[1], az, bz, c, &s);
    if (s) return s;
    if (st) out[0] = c != ty.dtype ? cmp_copy(f, "matmul_out", st->out, ty.dtype, TIR_TAG_ELEMWISE) : st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(matmul) {
    kiln_status s = mm_check(ctx, n, in);
    return s ? s : mm_build(ctx, f, n, in, out, NULL, NULL, cmp_calc(in[0]->dtype));
}

/* 8-bit operands minus their zero points, exact in i32. */
CMP_FN(matmul_integer) { return mm_build(ctx, f, n, in, out, cmp_in(n, in, 2), cmp_in(n, in, 3), KILN_I32); }

/* QLinearMatMul (a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): the
** exact integer product rescaled by a factor computed in the scales' type,
** rounded half to even and saturated, as the reference does. */
CMP_FN(qlinear_matmul) {
    tir_tensor *a = in[0], *as = in[1], *b = in[3], *bs = in[4], *ys = in[6], *yz = in[7];
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    tir_stage *acc = mm_acc(ctx, f, n, a, b, in[2], in[5], KILN_I32, &s);
    if (s) return s;
    tir_stage *st = cmp_stage(f, "qlinear_matmul", ty.dtype, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *ax[KILN_MAX_RANK];
    cmp_axes(f, st, ax);
    if (!st || !acc) return cmp_done(ctx, f, n);
    kiln_dtype sd = cmp_calc(as->dtype);
    /* a_scale per row (axis i), b_scale per column (axis j), when not scalars */
    int r = ty.rank;
    ex_expr *i = a->rank > 1 ? ax[b->rank > 1 ? r - 2 : r - 1] : NULL, *j = b->rank > 1 ? ax[r - 1] : NULL;
    bool arow = kiln_numel_dims(as->rank, as->dims) > 1 && i, bcol = kiln_numel_dims(bs->rank, bs->dims) > 1 && j;
    ex_expr *av = arow ? cmp_load(f, as, &i) : cmp_load_first(f, as);
    ex_expr *bv = bcol ? cmp_load(f, bs, &j) : cmp_load_first(f, bs);
    ex_expr *prod = cmp_to(f, cmp_bin(f, EX_MUL, cmp_to(f, av, sd), cmp_to(f, bv, sd)), as->dtype);
    ex_expr *fac = cmp_bin(f, EX_DIV, cmp_to(f, prod, sd), cmp_to(f, cmp_load_first(f, ys), sd));
    fac = cmp_to(f, cmp_to(f, fac, as->dtype), KILN_F64);
    ex_expr *v = cmp_bin(f, EX_MUL, cmp_to(f, cmp_load(f, acc->out, ax), KILN_F64), fac);
    v = cmp_bin(f, EX_ADD, v, cmp_to(f, cmp_load_first(f, yz), KILN_F64));
    st->body = cmp_round_to_int(f, v, ty.dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- Gemm: Y = alpha * op(A) op(B) + beta * C ---- */

CMP_FN(gemm) {
    tir_tensor *a = in[0], *b = in[1], *cc = cmp_in(n, in, 2);
    kiln_tensor ty;
    kiln_status s = mm_check(ctx, n, in);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    double alpha = gir_attr_float(n, "alpha", 1.0), beta = gir_attr_float(n, "beta", 1.0);
    bool ta = gir_attr_int(n, "transA", 0) != 0, tb = gir_attr_int(n, "transB", 0) != 0;
    kiln_dtype dt = a->dtype, c = cmp_calc(dt);
    bool is_int = !kiln_dtype_is_float(dt), plain_int = is_int && alpha == 1.0 && beta == 1.0;
    int64_t kdim = a->dims[ta ? 0 : 1];
    static const char *const names[2] = {"i", "j"};
    bool epilogue = cc || c != dt || alpha != 1.0;
    tir_stage *st = cmp_stage(f, epilogue ? "matmul" : "gemm", c, 2, ty.dims, TIR_TAG_MATMUL, names);
    ex_expr *ax[2];
    cmp_axes(f, st, ax);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *k = ex_varref(&f->eb, cmp_raxis(f, st, "k", kdim));
    ex_expr *ai[2] = {ta ? k : ax[0], ta ? ax[0] : k}, *bi[2] = {tb ? ax[1] : k, tb ? k : ax[1]};
    ex_expr *prod = cmp_bin(f, EX_MUL, cmp_to(f, cmp_load(f, a, ai), c), cmp_to(f, cmp_load(f, b, bi), c));
    st->body = cmp_reduction(f, st, EX_SUM, prod);
    if (!epilogue) {
        out[0] = st->out;
        return cmp_done(ctx, f, n);
    }
    tir_stage *y = cmp_stage(f, "gemm", dt, 2, ty.dims, TIR_TAG_ELEMWISE, names);
    ex_expr *yi[2];
    cmp_axes(f, y, yi);
    if (!y) return cmp_done(ctx, f, n);
    ex_expr *acc = cmp_load(f, st->out, yi), *cv = cc ? cmp_load_bcast(f, cc, 2, yi) : NULL;
    if (plain_int) {
        y->body = cv ? cmp_bin(f, EX_ADD, acc, cv) : acc;
    } else if (is_int) {
        /* the reference scales integers in double and rounds to nearest */
        ex_expr *v = cmp_bin(f, EX_MUL, cmp_f(f, KILN_F64, alpha), cmp_to(f, cmp_to(f, acc, KILN_I64), KILN_F64));
        if (cv) v = cmp_bin(f, EX_ADD, v, cmp_bin(f, EX_MUL, cmp_f(f, KILN_F64, beta), cmp_to(f, cv, KILN_F64)));
        y->body = cmp_round_to_int(f, v, dt);
    } else {
        ex_expr *v = alpha == 1.0 ? acc : cmp_bin(f, EX_MUL, cmp_f(f, c, alpha), acc);
        if (cv) v = cmp_bin(f, EX_ADD, v, cmp_bin(f, EX_MUL, cmp_f(f, c, beta), cmp_to(f, cv, c)));
        y->body = cmp_to(f, v, dt);
    }
    out[0] = y->out;
    return cmp_done(ctx, f, n);
}
