/*
** compute_util.c — helpers shared by the compute definitions: types through
** the ops' own shape inference, stages with readable axis names, loads with
** broadcasting, conversions that round like the reference kernels store.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "compute.h"

void cmp_type_of(const tir_tensor *t, kiln_tensor *out) {
    kiln_tensor_init(out, t->dtype, t->rank, t->dims);
    out->data = t->constant ? t->constant->data : NULL;
}

kiln_status cmp_infer(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, kiln_tensor *out) {
    int k = n->n_inputs;
    kiln_tensor *types = kiln_calloc((size_t)(k ? k : 1), sizeof *types);
    const kiln_tensor **ptrs = kiln_calloc((size_t)(k ? k : 1), sizeof *ptrs);
    if (!types || !ptrs) {
        kiln_free(types);
        kiln_free(ptrs);
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < k; i++)
        if (in[i]) {
            cmp_type_of(in[i], &types[i]);
            ptrs[i] = &types[i];
        }
    memset(out, 0, sizeof *out * (size_t)n->n_outputs);
    kiln_status s = n->op->infer(ctx, n, ptrs, out);
    kiln_free(types);
    kiln_free(ptrs);
    if (s == KILN_ERR_DYNAMIC)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                            "its output shape depends on input values that are not constants");
    return s;
}

void cmp_types_of(const gir_node *n, tir_tensor *const *in, cmp_types *ty) {
    memset(ty, 0, sizeof *ty);
    for (int i = 0; i < n->n_inputs && i < CMP_MAX_IN; i++)
        if (in[i]) {
            cmp_type_of(in[i], &ty->t[i]);
            ty->p[i] = &ty->t[i];
        }
}

kiln_status cmp_dynamic(kiln_ctx *ctx, const gir_node *n, kiln_status s, const char *what) {
    if (s != KILN_ERR_DYNAMIC) return s;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                        "%s must be a constant to compile the op (it is computed at run time)", what);
}

kiln_status cmp_plain(kiln_ctx *ctx, const gir_node *n, kiln_dtype dt) {
    if (dt != KILN_STRING && (KILN_DT(dt) & (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL)))) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s has no compute definition",
                        kiln_dtype_name(dt));
}

const char *cmp_lower(const gir_node *n, char *buf, size_t size) {
    size_t k = 0;
    for (const char *p = n->op_type; *p && k + 2 < size; p++) {
        bool up = *p >= 'A' && *p <= 'Z';
        if (up && p > n->op_type && p[-1] >= 'a' && p[-1] <= 'z') buf[k++] = '_';
        buf[k++] = (char)(up ? *p - 'A' + 'a' : *p);
    }
    buf[k] = '\0';
    return buf;
}

kiln_status cmp_need_const(kiln_ctx *ctx, const gir_node *n, const tir_tensor *t, const char *what) {
    if (!t || t->constant) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED,
                        "%s must be a constant to compile the op (it is computed at run time)", what);
}

static bool cmp_name_taken(const tir_func *f, const char *name) {
    for (int i = 0; i < f->n_stages; i++)
        if (!strcmp(f->stages[i]->name, name)) return true;
    for (int i = 0; i < f->n_inputs; i++)
        if (!strcmp(f->inputs[i]->name, name)) return true;
    return false;
}

tir_stage *cmp_stage(tir_func *f, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                     tir_tag tag, const char *const *axis_names) {
    char buf[96];
    snprintf(buf, sizeof buf, "%s", name);
    for (int k = 1; cmp_name_taken(f, buf) && k < 100000; k++) snprintf(buf, sizeof buf, "%s_%d", name, k);
    tir_stage *s = tir_stage_new(f, buf, dt, rank, dims, tag);
    if (!s || !axis_names) return s;
    for (int d = 0; d < rank; d++) {
        const char *an = kiln_arena_strdup(f->arena, axis_names[d]);
        if (!an) {
            f->eb.failed = true;
            return NULL;
        }
        s->axes[d]->name = an;
    }
    return s;
}

ex_var *cmp_raxis(tir_func *f, tir_stage *s, const char *name, int64_t extent) {
    if (!s) {
        f->eb.failed = true;
        return NULL;
    }
    return tir_stage_add_raxis(f, s, name, extent);
}

ex_expr *cmp_ax(tir_func *f, const tir_stage *s, int d) {
    if (!s) {
        f->eb.failed = true;
        return NULL;
    }
    return ex_varref(&f->eb, s->axes[d]);
}

void cmp_axes(tir_func *f, const tir_stage *s, ex_expr **idx) {
    for (int d = 0; s && d < s->n_axes; d++) idx[d] = cmp_ax(f, s, d);
    if (!s) f->eb.failed = true;
}

ex_expr *cmp_load(tir_func *f, const tir_tensor *t, ex_expr *const *idx) {
    ex_expr *none[1] = {NULL};
    return ex_load_tensor(&f->eb, t, idx ? idx : none);
}

ex_expr *cmp_load_bcast(tir_func *f, const tir_tensor *t, int r, ex_expr *const *idx) {
    ex_expr *ti[KILN_MAX_RANK];
    if (!t || t->rank > r) {
        f->eb.failed = true;
        return NULL;
    }
    for (int d = 0; d < t->rank; d++) ti[d] = t->dims[d] == 1 ? ex_int(&f->eb, 0) : idx[r - t->rank + d];
    return cmp_load(f, t, ti);
}

ex_expr *cmp_load_first(tir_func *f, const tir_tensor *t) {
    ex_expr *ti[KILN_MAX_RANK];
    if (!t) {
        f->eb.failed = true;
        return NULL;
    }
    for (int d = 0; d < t->rank; d++) ti[d] = ex_int(&f->eb, 0);
    return cmp_load(f, t, ti);
}

kiln_dtype cmp_calc(kiln_dtype dt) { return dt == KILN_F16 || dt == KILN_BF16 ? KILN_F32 : dt; }

ex_expr *cmp_up(tir_func *f, ex_expr *e) {
    if (!e) return ex_cast(&f->eb, KILN_F32, NULL);
    return ex_cast(&f->eb, cmp_calc(e->dtype), e);
}

ex_expr *cmp_f(tir_func *f, kiln_dtype dt, double v) { return ex_const_float(&f->eb, dt, v); }
ex_expr *cmp_i(tir_func *f, kiln_dtype dt, int64_t v) { return ex_const_int(&f->eb, dt, v); }

ex_expr *cmp_num(tir_func *f, kiln_dtype dt, double v) {
    if (kiln_dtype_is_float(dt)) return cmp_f(f, dt, v);
    if (dt == KILN_BOOL) return cmp_i(f, dt, v != 0);
    return cmp_i(f, dt, (int64_t)v);
}

ex_expr *cmp_bin(tir_func *f, ex_binop op, ex_expr *a, ex_expr *b) { return ex_binary(&f->eb, op, a, b); }
ex_expr *cmp_un(tir_func *f, ex_fn fn, ex_expr *a) { return ex_unary(&f->eb, fn, a); }
ex_expr *cmp_sel(tir_func *f, ex_expr *c, ex_expr *a, ex_expr *b) { return ex_select(&f->eb, c, a, b); }

ex_expr *cmp_to(tir_func *f, ex_expr *e, kiln_dtype dt) {
    ex_builder *b = &f->eb;
    if (!e) return ex_cast(b, dt, NULL);
    kiln_dtype from = e->dtype;
    if (from == dt) return e;
    if (dt == KILN_BOOL) return cmp_bin(f, EX_NE, e, cmp_num(f, from, 0));
    if (kiln_dtype_is_float(dt)) {
        /* integers reach f16/bf16 through f32, as the reference's (float)v */
        if ((dt == KILN_F16 || dt == KILN_BF16) && !kiln_dtype_is_float(from)) e = ex_cast(b, KILN_F32, e);
        return ex_cast(b, dt, e);
    }
    if (kiln_dtype_is_float(from) && dt != KILN_I64 && dt != KILN_U64) e = ex_cast(b, KILN_I64, e);
    return ex_cast(b, dt, e);
}

ex_expr *cmp_store_f64(tir_func *f, ex_expr *e, kiln_dtype dt) {
    if ((dt == KILN_F16 || dt == KILN_BF16) && e) e = cmp_to(f, e, KILN_F32);
    return cmp_to(f, e, dt);
}

/* The range of an integer dtype as doubles. */
static void cmp_int_range(kiln_dtype dt, double *lo, double *hi) {
    switch (dt) {
    case KILN_I8: *lo = -128, *hi = 127; break;
    case KILN_U8: *lo = 0, *hi = 255; break;
    case KILN_I16: *lo = -32768, *hi = 32767; break;
    case KILN_U16: *lo = 0, *hi = 65535; break;
    case KILN_I32: *lo = -2147483648.0, *hi = 2147483647.0; break;
    case KILN_U32: *lo = 0, *hi = 4294967295.0; break;
    default: *lo = -INFINITY, *hi = INFINITY; break; /* 64-bit: the cast saturates */
    }
}

ex_expr *cmp_round_to_int(tir_func *f, ex_expr *e, kiln_dtype dt) {
    if (!e) return NULL;
    if (dt == KILN_BOOL) return cmp_to(f, e, dt);
    kiln_dtype c = e->dtype;
    double lo, hi;
    cmp_int_range(dt, &lo, &hi);
    ex_expr *r = cmp_un(f, EX_ROUND_EVEN, e);
    r = cmp_sel(f, cmp_un(f, EX_ISNAN, e), cmp_f(f, c, 0), r);
    if (isfinite(lo)) {
        r = cmp_sel(f, cmp_bin(f, EX_LT, r, cmp_f(f, c, lo)), cmp_f(f, c, lo), r);
        r = cmp_sel(f, cmp_bin(f, EX_GT, r, cmp_f(f, c, hi)), cmp_f(f, c, hi), r);
    }
    return cmp_to(f, r, dt);
}

ex_expr *cmp_clamp(tir_func *f, ex_expr *v, int64_t lo, int64_t hi) {
    if (hi < lo) hi = lo;
    return ex_min(&f->eb, ex_max(&f->eb, v, ex_int(&f->eb, lo)), ex_int(&f->eb, hi));
}

ex_expr *cmp_in_range(tir_func *f, ex_expr *v, int64_t lo, int64_t hi) {
    ex_builder *b = &f->eb;
    return ex_and(b, ex_binary(b, EX_GE, v, ex_int(b, lo)), ex_lt(b, v, ex_int(b, hi)));
}

ex_expr *cmp_flatten(tir_func *f, int rank, const int64_t *dims, ex_expr *const *idx) {
    ex_builder *b = &f->eb;
    ex_expr *flat = NULL;
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; d--) {
        if (dims[d] != 1) {
            ex_expr *term = stride == 1 ? idx[d] : ex_mul(b, idx[d], ex_int(b, stride));
            flat = flat ? ex_add(b, term, flat) : term;
        }
        stride *= dims[d];
    }
    return flat ? flat : ex_int(b, 0);
}

void cmp_unflatten(tir_func *f, ex_expr *flat, int rank, const int64_t *dims, ex_expr **idx) {
    ex_builder *b = &f->eb;
    int64_t stride = 1;
    for (int d = rank - 1; d >= 0; d--) {
        if (dims[d] == 1) {
            idx[d] = ex_int(b, 0);
            continue;
        }
        ex_expr *q = stride == 1 ? flat : ex_floordiv(b, flat, ex_int(b, stride));
        idx[d] = d == 0 || kiln_numel_dims(d, dims) == 1 ? q : ex_floormod(b, q, ex_int(b, dims[d]));
        stride *= dims[d];
    }
}

ex_expr *cmp_reduction(tir_func *f, tir_stage *s, ex_combiner c, ex_expr *src) {
    if (!s || !src) {
        f->eb.failed = true;
        return NULL;
    }
    ex_expr *init = ex_combiner_identity(&f->eb, c, src->dtype);
    return ex_reduce(&f->eb, c, src, (const ex_var *const *)s->raxes, s->n_raxes, init);
}

kiln_status cmp_done(kiln_ctx *ctx, tir_func *f, const gir_node *n) {
    if (!f->eb.failed) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_NOMEM,
                        "building the compute definition failed (out of memory or an ill-typed expression)");
}

tir_tensor *cmp_copy(tir_func *f, const char *name, tir_tensor *src, kiln_dtype dt, tir_tag tag) {
    if (!src) {
        f->eb.failed = true;
        return NULL;
    }
    tir_stage *s = cmp_stage(f, name, dt, src->rank, src->dims, tag, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, s, idx);
    if (!s) return NULL;
    s->body = cmp_to(f, cmp_load(f, src, idx), dt);
    return s->out;
}
