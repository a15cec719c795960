/*
** compute_shape.c — compute definitions of the ops that only reshape or read
** shapes (Reshape, Flatten, Squeeze, Unsqueeze, Shape, Size) and of those
** that make tensors from shapes and scalars (ConstantOfShape, Range,
** EyeLike, the window generators). Outputs whose values follow from shapes
** alone are stages of constants, so a kernel that needs them computes them
** in place.
*/
#include <math.h>
#include <string.h>

#include "compute.h"

/* The op's output type; for the view ops a non-constant shape input is fine
** when the graph already knows the output's static type. */
static kiln_status view_type(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, kiln_tensor *ty) {
    kiln_status s = cmp_infer(ctx, n, in, ty);
    const gir_value *v = n->n_outputs > 0 ? n->outputs[0] : NULL;
    if (s != KILN_ERR_UNSUPPORTED || !v || !gir_type_is_static(&v->type)) return s;
    gir_type_to_tensor(&v->type, ty);
    if (ty->dtype != in[0]->dtype || kiln_numel(ty) != kiln_numel_dims(in[0]->rank, in[0]->dims))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the declared output type does not fit the input");
    return KILN_OK;
}

/* Reshape, Flatten, Squeeze, Unsqueeze: element i of the output is element i
** of the input, row-major. */
CMP_FN(view) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    char name[64];
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = view_type(ctx, n, in, &ty);
    if (s) return s;
    tir_stage *st = cmp_stage(f, cmp_lower(n, name, sizeof name), x->dtype, ty.rank, ty.dims, TIR_TAG_INJECTIVE,
                              NULL);
    ex_expr *idx[KILN_MAX_RANK], *src[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *flat = cmp_flatten(f, ty.rank, ty.dims, idx);
    cmp_unflatten(f, flat, x->rank, x->dims, src);
    st->body = cmp_load(f, x, src);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- outputs that are known from shapes ---- */

/* A stage of one value per element of an i64 vector: vals[i] at i. */
static tir_tensor *const_vector(tir_func *f, const char *name, const int64_t *vals, int64_t len) {
    tir_stage *st = cmp_stage(f, name, KILN_I64, 1, &len, TIR_TAG_INJECTIVE, NULL);
    if (!st) return NULL;
    ex_expr *i = cmp_ax(f, st, 0), *body = cmp_i(f, KILN_I64, len > 0 ? vals[len - 1] : 0);
    for (int64_t k = len - 2; k >= 0; k--)
        body = cmp_sel(f, cmp_bin(f, EX_EQ, i, ex_int(&f->eb, k)), cmp_i(f, KILN_I64, vals[k]), body);
    st->body = body;
    return st->out;
}

CMP_FN(shape) {
    tir_tensor *x = in[0];
    int rank = x->rank;
    int64_t s0 = gir_attr_int(n, "start", 0), e0 = gir_attr_int(n, "end", rank);
    if (s0 < 0) s0 += rank;
    if (e0 < 0) e0 += rank;
    s0 = s0 < 0 ? 0 : s0 > rank ? rank : s0;
    e0 = e0 < 0 ? 0 : e0 > rank ? rank : e0;
    if (e0 < s0) e0 = s0;
    out[0] = const_vector(f, "shape", x->dims + s0, e0 - s0);
    return cmp_done(ctx, f, n);
}

CMP_FN(size) {
    tir_stage *st = cmp_stage(f, "size", KILN_I64, 0, NULL, TIR_TAG_INJECTIVE, NULL);
    if (st) st->body = cmp_i(f, KILN_I64, kiln_numel_dims(in[0]->rank, in[0]->dims));
    out[0] = st ? st->out : NULL;
    return cmp_done(ctx, f, n);
}

CMP_FN(constant_of_shape) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = cmp_plain(ctx, n, ty.dtype);
    if (s) return s;
    const gir_attr *a = gir_attr_find(n, "value");
    const kiln_tensor *v = a && a->kind == GIR_ATTR_TENSOR ? a->t : NULL;
    if (v && (!v->data || kiln_numel(v) != 1))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'value' must hold one element");
    tir_stage *st = cmp_stage(f, "constant_of_shape", ty.dtype, ty.rank, ty.dims, TIR_TAG_INJECTIVE, NULL);
    if (st) {
        if (!v) st->body = cmp_num(f, ty.dtype, 0);
        else if (kiln_dtype_is_float(v->dtype)) st->body = cmp_f(f, v->dtype, kiln_load_f64(v->dtype, v->data, 0));
        else st->body = cmp_i(f, v->dtype, kiln_load_i64(v->dtype, v->data, 0));
        out[0] = st->out;
    }
    return cmp_done(ctx, f, n);
}

/* start + i * delta: integers wrap in their type, floats compute in f64 and
** round once, as the reference does. start and delta are read at run time;
** only the length needs constants. */
CMP_FN(range) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = cmp_plain(ctx, n, ty.dtype);
    if (s) return s;
    kiln_dtype dt = ty.dtype, c = kiln_dtype_is_float(dt) ? KILN_F64 : dt;
    tir_stage *st = cmp_stage(f, "range", dt, 1, ty.dims, TIR_TAG_INJECTIVE, NULL);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *i = cmp_to(f, cmp_ax(f, st, 0), c);
    ex_expr *a = cmp_to(f, cmp_load_first(f, in[0]), c), *d = cmp_to(f, cmp_load_first(f, in[2]), c);
    st->body = cmp_to(f, cmp_bin(f, EX_ADD, a, cmp_bin(f, EX_MUL, i, d)), dt);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(eye_like) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = cmp_plain(ctx, n, ty.dtype);
    if (s) return s;
    int64_t k = gir_attr_int(n, "k", 0);
    tir_stage *st = cmp_stage(f, "eye_like", ty.dtype, 2, ty.dims, TIR_TAG_INJECTIVE, NULL);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *diag = cmp_bin(f, EX_EQ, cmp_bin(f, EX_SUB, cmp_ax(f, st, 1), cmp_ax(f, st, 0)), ex_int(&f->eb, k));
    st->body = cmp_sel(f, diag, cmp_num(f, ty.dtype, 1), cmp_num(f, ty.dtype, 0));
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- window generators: a0 - a1 cos(x) + a2 cos(2x), x = 2 pi k / N ---- */

static kiln_status cosine_window(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in,
                                 tir_tensor **out, const char *name, double a0, double a1, double a2) {
    kiln_tensor ty;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = cmp_plain(ctx, n, ty.dtype);
    if (s) return s;
    int64_t size = ty.dims[0];
    double den = gir_attr_int(n, "periodic", 1) ? (double)size : (double)size - 1;
    tir_stage *st = cmp_stage(f, name, ty.dtype, 1, ty.dims, TIR_TAG_INJECTIVE, NULL);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *k = cmp_to(f, cmp_ax(f, st, 0), KILN_F64);
    ex_expr *x = cmp_bin(f, EX_DIV, cmp_bin(f, EX_MUL, cmp_f(f, KILN_F64, 2.0 * M_PI), k), cmp_f(f, KILN_F64, den));
    ex_expr *v = cmp_bin(f, EX_SUB, cmp_f(f, KILN_F64, a0),
                         cmp_bin(f, EX_MUL, cmp_f(f, KILN_F64, a1), cmp_un(f, EX_COS, x)));
    ex_expr *x2 = cmp_bin(f, EX_MUL, cmp_f(f, KILN_F64, 2.0), x);
    v = cmp_bin(f, EX_ADD, v, cmp_bin(f, EX_MUL, cmp_f(f, KILN_F64, a2), cmp_un(f, EX_COS, x2)));
    st->body = cmp_store_f64(f, v, ty.dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(hann_window) { return cosine_window(ctx, f, n, in, out, "hann_window", 0.5, 0.5, 0.0); }
CMP_FN(hamming_window) {
    return cosine_window(ctx, f, n, in, out, "hamming_window", 25.0 / 46.0, 21.0 / 46.0, 0.0);
}
CMP_FN(blackman_window) { return cosine_window(ctx, f, n, in, out, "blackman_window", 0.42, 0.5, 0.08); }
