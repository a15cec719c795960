/*
** compute_norm.c — compute definitions of the normalizations:
** BatchNormalization (inference), LayerNormalization, RMSNormalization,
** InstanceNormalization, GroupNormalization, LpNormalization,
** MeanVarianceNormalization and LRN.
**
** Statistics are two-pass like the reference's (a mean, then the mean of
** squared deviations), each pass a reduction stage over x's shape with the
** reduced dims kept as 1, so the statistic reads back at the normalized
** element's index with those dims at 0. The normalization itself is an
** elementwise stage.
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "nn_internal.h"

static ex_expr *I(tir_func *f, int64_t v) { return ex_int(&f->eb, v); }

typedef ex_expr *(*stat_fn)(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *xi);

typedef struct stat_plan {
    const tir_tensor *x;
    bool reduce[KILN_MAX_RANK];
    kiln_dtype calc;
    const tir_tensor *mean; /* for the second pass */
} stat_plan;

static const char *const k_rnames[KILN_MAX_RANK] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};

/* A stage of x's shape with the reduced dims 1: sum over them of fn(x index). */
static tir_stage *stat_stage(tir_func *f, const char *name, const stat_plan *p, stat_fn fn) {
    const tir_tensor *x = p->x;
    int64_t dims[KILN_MAX_RANK];
    int nr = 0;
    for (int d = 0; d < x->rank; d++) {
        dims[d] = p->reduce[d] ? 1 : x->dims[d];
        nr += p->reduce[d];
    }
    tir_stage *st = cmp_stage(f, name, p->calc, x->rank, dims, nr ? TIR_TAG_REDUCE : TIR_TAG_ELEMWISE, NULL);
    ex_expr *sp[KILN_MAX_RANK], *xi[KILN_MAX_RANK];
    cmp_axes(f, st, sp);
    if (!st) return NULL;
    for (int d = 0; d < x->rank; d++)
        xi[d] = p->reduce[d] ? ex_varref(&f->eb, cmp_raxis(f, st, k_rnames[d], x->dims[d])) : sp[d];
    ex_expr *v = fn(f, p, sp, xi);
    st->body = nr ? cmp_reduction(f, st, EX_SUM, v) : v;
    return st;
}

static ex_expr *xval(tir_func *f, const stat_plan *p, ex_expr *const *xi) {
    return cmp_to(f, cmp_load(f, p->x, xi), p->calc);
}

static ex_expr *src_x(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *xi) {
    (void)sp;
    return xval(f, arg, xi);
}

static ex_expr *src_sq(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *xi) {
    (void)sp;
    ex_expr *v = xval(f, arg, xi);
    return cmp_bin(f, EX_MUL, v, v);
}

static ex_expr *src_abs(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *xi) {
    (void)sp;
    return cmp_un(f, EX_ABS, xval(f, arg, xi));
}

/* (x - mean)^2, the mean read at the statistic's own index. */
static ex_expr *src_dev(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *xi) {
    const stat_plan *p = arg;
    ex_expr *d = cmp_bin(f, EX_SUB, xval(f, p, xi), cmp_load(f, p->mean, sp));
    return cmp_bin(f, EX_MUL, d, d);
}

/* A statistic's index for element idx of x: the reduced dims at 0. */
static void stat_index(tir_func *f, const stat_plan *p, ex_expr *const *idx, ex_expr **si) {
    for (int d = 0; d < p->x->rank; d++) si[d] = p->reduce[d] ? I(f, 0) : idx[d];
}

/* An elementwise stage over the statistic's shape: s * k (a division by
** the element count, as a product like the reference's running v / len). */
static tir_stage *stat_scale(tir_func *f, const char *name, const tir_stage *s, double div, kiln_dtype dt) {
    if (!s) return NULL;
    tir_stage *st = cmp_stage(f, name, dt, s->out->rank, s->out->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    st->body = cmp_to(f, cmp_bin(f, EX_DIV, cmp_load(f, s->out, idx), cmp_f(f, s->out->dtype, div)), dt);
    return st;
}

/* 1 / sqrt(var + eps) over the statistic's shape. */
static tir_stage *inv_std(tir_func *f, const char *name, const tir_stage *var, double eps, kiln_dtype dt) {
    if (!var) return NULL;
    tir_stage *st = cmp_stage(f, name, dt, var->out->rank, var->out->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st) return NULL;
    kiln_dtype c = var->out->dtype;
    ex_expr *v = cmp_bin(f, EX_ADD, cmp_load(f, var->out, idx), cmp_f(f, c, eps));
    st->body = cmp_to(f, cmp_bin(f, EX_DIV, cmp_f(f, c, 1.0), cmp_un(f, EX_SQRT, v)), dt);
    return st;
}

static kiln_status float_only(kiln_ctx *ctx, const gir_node *n, kiln_dtype dt) {
    if (kiln_dtype_is_float(dt)) return KILN_OK;
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s is not supported", kiln_dtype_name(dt));
}

/* ---- BatchNormalization (inference) ---- */

/* Parameter t (C values, or C * spatial per activation) at channel c and
** spatial position sp of x. */
static ex_expr *bn_param(tir_func *f, const tir_tensor *t, bool per_act, const tir_tensor *x, ex_expr *const *idx) {
    ex_expr *flat = idx[1], *ti[KILN_MAX_RANK];
    if (per_act) flat = cmp_flatten(f, x->rank - 1, x->dims + 1, idx + 1);
    cmp_unflatten(f, flat, t->rank, t->dims, ti);
    return cmp_load(f, t, ti);
}

CMP_FN(batch_norm) {
    tir_tensor *x = in[0];
    kiln_tensor *ty = kiln_calloc((size_t)n->n_outputs, sizeof *ty);
    if (!ty) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, ty);
    if (!s && n->opset >= 14 && gir_attr_int(n, "training_mode", 0))
        s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "training mode has no compute definition");
    if (s) {
        kiln_free(ty);
        return s;
    }
    bool per_act = n->opset < 9 && !gir_attr_int(n, "spatial", 1);
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    kiln_dtype dt = x->dtype, c = cmp_calc(dt);
    tir_stage *st = cmp_stage(f, "batch_norm", dt, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (st) {
        ex_expr *p[5];
        for (int i = 1; i < 5; i++) p[i] = cmp_to(f, bn_param(f, in[i], per_act, x, idx), c);
        ex_expr *v = cmp_bin(f, EX_SUB, cmp_to(f, cmp_load(f, x, idx), c), p[3]);
        v = cmp_bin(f, EX_DIV, v, cmp_un(f, EX_SQRT, cmp_bin(f, EX_ADD, p[4], cmp_f(f, c, eps))));
        st->body = cmp_to(f, cmp_bin(f, EX_ADD, cmp_bin(f, EX_MUL, v, p[1]), p[2]), dt);
        out[0] = st->out;
    }
    /* outside training the running statistics pass through; the saved ones are 0 */
    for (int k = 1; k < n->n_outputs; k++) {
        if (!cmp_wants(n, k)) continue;
        if (k < 3) {
            out[k] = cmp_copy(f, k == 1 ? "running_mean" : "running_var", in[2 + k], ty[k].dtype, TIR_TAG_INJECTIVE);
        } else {
            tir_stage *z = cmp_stage(f, "saved_stat", ty[k].dtype, ty[k].rank, ty[k].dims, TIR_TAG_INJECTIVE, NULL);
            if (z) z->body = cmp_num(f, ty[k].dtype, 0);
            out[k] = z ? z->out : NULL;
        }
    }
    kiln_free(ty);
    return cmp_done(ctx, f, n);
}

/* ---- LayerNormalization / RMSNormalization: rows are the dims from axis on ---- */

static kiln_status rows_norm(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out,
                             bool rms) {
    tir_tensor *x = in[0], *scale = in[1], *bias = rms ? NULL : cmp_in(n, in, 2);
    kiln_tensor ty[3];
    int axis;
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s && n->n_outputs > 3) s = kiln_op_fail(ctx, n, KILN_ERR_INVALID, "too many outputs");
    if (!s) s = cmp_infer(ctx, n, in, ty);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -1), x->rank, &axis);
    if (s) return s;
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    stat_plan p = {x, {false}, cmp_calc(x->dtype), NULL};
    int64_t len = 1;
    for (int d = axis; d < x->rank; d++) {
        p.reduce[d] = true;
        len *= x->dims[d];
    }
    kiln_dtype stash = n->n_outputs > 1 ? ty[1].dtype : p.calc;
    tir_stage *mean = NULL, *var;
    if (!rms) {
        mean = stat_scale(f, "mean", stat_stage(f, "row_sum", &p, src_x), (double)len, p.calc);
        p.mean = mean ? mean->out : NULL;
        var = stat_scale(f, "var", stat_stage(f, "row_sqdev", &p, src_dev), (double)len, p.calc);
    } else {
        var = stat_scale(f, "var", stat_stage(f, "row_sumsq", &p, src_sq), (double)len, p.calc);
    }
    tir_stage *inv = inv_std(f, "inv_std_dev", var, eps, p.calc);
    char name[64];
    tir_stage *st = cmp_stage(f, cmp_lower(n, name, sizeof name), x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *si[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !inv || (!rms && !mean)) return cmp_done(ctx, f, n);
    stat_index(f, &p, idx, si);
    ex_expr *v = cmp_to(f, cmp_load(f, x, idx), p.calc);
    if (!rms) v = cmp_bin(f, EX_SUB, v, cmp_load(f, mean->out, si));
    v = cmp_bin(f, EX_MUL, cmp_bin(f, EX_MUL, v, cmp_load(f, inv->out, si)),
                cmp_to(f, cmp_load_bcast(f, scale, x->rank, idx), p.calc));
    if (bias) v = cmp_bin(f, EX_ADD, v, cmp_to(f, cmp_load_bcast(f, bias, x->rank, idx), p.calc));
    st->body = cmp_to(f, v, x->dtype);
    out[0] = st->out;
    if (cmp_wants(n, 1)) out[1] = cmp_copy(f, "saved_mean", mean ? mean->out : NULL, stash, TIR_TAG_ELEMWISE);
    if (cmp_wants(n, 2)) out[2] = cmp_copy(f, "saved_inv_std_dev", inv->out, stash, TIR_TAG_ELEMWISE);
    return cmp_done(ctx, f, n);
}

CMP_FN(layer_norm) { return rows_norm(ctx, f, n, in, out, false); }
CMP_FN(rms_norm) { return rows_norm(ctx, f, n, in, out, true); }

/* ---- InstanceNormalization: per (sample, channel) over the spatial dims ---- */

CMP_FN(instance_norm) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    stat_plan p = {x, {false}, cmp_calc(x->dtype), NULL};
    int64_t len = 1;
    for (int d = 2; d < x->rank; d++) {
        p.reduce[d] = true;
        len *= x->dims[d];
    }
    tir_stage *mean = stat_scale(f, "mean", stat_stage(f, "plane_sum", &p, src_x), (double)len, p.calc);
    p.mean = mean ? mean->out : NULL;
    tir_stage *var = stat_scale(f, "var", stat_stage(f, "plane_sqdev", &p, src_dev), (double)len, p.calc);
    tir_stage *inv = inv_std(f, "inv_std_dev", var, eps, p.calc);
    tir_stage *st = cmp_stage(f, "instance_normalization", x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *si[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !inv || !mean) return cmp_done(ctx, f, n);
    stat_index(f, &p, idx, si);
    ex_expr *v = cmp_bin(f, EX_SUB, cmp_to(f, cmp_load(f, x, idx), p.calc), cmp_load(f, mean->out, si));
    v = cmp_bin(f, EX_MUL, v, cmp_load(f, inv->out, si));
    v = cmp_bin(f, EX_MUL, v, cmp_to(f, cmp_load(f, in[1], &idx[1]), p.calc));
    st->body = cmp_to(f, cmp_bin(f, EX_ADD, v, cmp_to(f, cmp_load(f, in[2], &idx[1]), p.calc)), x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- GroupNormalization: per (sample, group) over its channels and space ---- */

typedef struct gn_plan {
    const tir_tensor *x, *mean;
    int64_t cpg;
    kiln_dtype calc;
    bool dev;
} gn_plan;

static tir_stage *gn_stat(tir_func *f, const char *name, const gn_plan *g, int64_t groups) {
    const tir_tensor *x = g->x;
    int64_t dims[2] = {x->dims[0], groups};
    tir_stage *st = cmp_stage(f, name, g->calc, 2, dims, TIR_TAG_REDUCE, (const char *const[]){"n", "g"});
    ex_expr *sp[2], *xi[KILN_MAX_RANK];
    cmp_axes(f, st, sp);
    if (!st) return NULL;
    ex_expr *rc = ex_varref(&f->eb, cmp_raxis(f, st, "rc", g->cpg));
    xi[0] = sp[0];
    xi[1] = ex_add(&f->eb, ex_mul(&f->eb, sp[1], I(f, g->cpg)), rc);
    for (int d = 2; d < x->rank; d++) xi[d] = ex_varref(&f->eb, cmp_raxis(f, st, k_rnames[d], x->dims[d]));
    ex_expr *v = cmp_to(f, cmp_load(f, x, xi), g->calc);
    if (g->dev) {
        v = cmp_bin(f, EX_SUB, v, cmp_load(f, g->mean, sp));
        v = cmp_bin(f, EX_MUL, v, v);
    }
    st->body = cmp_reduction(f, st, EX_SUM, v);
    return st;
}

CMP_FN(group_norm) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    int64_t groups = gir_attr_int(n, "num_groups", 1), ch = x->dims[1];
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    gn_plan g = {x, NULL, ch / groups, cmp_calc(x->dtype), false};
    int64_t len = g.cpg * kiln_numel_dims(x->rank - 2, x->dims + 2);
    tir_stage *mean = stat_scale(f, "mean", gn_stat(f, "group_sum", &g, groups), (double)len, g.calc);
    g.mean = mean ? mean->out : NULL;
    g.dev = true;
    tir_stage *var = stat_scale(f, "var", gn_stat(f, "group_sqdev", &g, groups), (double)len, g.calc);
    tir_stage *inv = inv_std(f, "inv_std_dev", var, eps, g.calc);
    tir_stage *st = cmp_stage(f, "group_normalization", x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !inv || !mean) return cmp_done(ctx, f, n);
    ex_expr *gi[2] = {idx[0], ex_floordiv(&f->eb, idx[1], I(f, g.cpg))};
    ex_expr *pi = n->opset < 21 ? gi[1] : idx[1]; /* scale and bias per group before opset 21 */
    ex_expr *v = cmp_bin(f, EX_SUB, cmp_to(f, cmp_load(f, x, idx), g.calc), cmp_load(f, mean->out, gi));
    v = cmp_bin(f, EX_MUL, v, cmp_load(f, inv->out, gi));
    v = cmp_bin(f, EX_MUL, v, cmp_to(f, cmp_load(f, in[1], &pi), g.calc));
    st->body = cmp_to(f, cmp_bin(f, EX_ADD, v, cmp_to(f, cmp_load(f, in[2], &pi), g.calc)), x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- LpNormalization: x / ||row||_p along axis (0 where the norm is 0) ---- */

CMP_FN(lp_norm) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    int axis;
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", -1), x->rank, &axis);
    if (s) return s;
    bool l1 = gir_attr_int(n, "p", 2) == 1;
    stat_plan p = {x, {false}, cmp_calc(x->dtype), NULL};
    p.reduce[axis] = true;
    tir_stage *acc = stat_stage(f, "row_norm", &p, l1 ? src_abs : src_sq);
    tir_stage *st = cmp_stage(f, "lp_normalization", x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *si[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !acc) return cmp_done(ctx, f, n);
    stat_index(f, &p, idx, si);
    ex_expr *norm = cmp_load(f, acc->out, si), *zero = cmp_f(f, p.calc, 0);
    if (!l1) norm = cmp_un(f, EX_SQRT, norm);
    ex_expr *v = cmp_bin(f, EX_DIV, cmp_to(f, cmp_load(f, x, idx), p.calc), norm);
    st->body = cmp_to(f, cmp_sel(f, cmp_bin(f, EX_EQ, norm, zero), zero, v), x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- MeanVarianceNormalization: (x - mean) / (std + 1e-9) over axes ---- */

CMP_FN(mvn) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    stat_plan p = {x, {false}, cmp_calc(x->dtype), NULL};
    const int64_t *a;
    static const int64_t dflt[] = {0, 2, 3};
    int k = gir_attr_ints(n, "axes", &a);
    if (k < 0) a = dflt, k = 3;
    int64_t per = 1;
    for (int i = 0; i < k; i++) {
        int ax;
        if ((s = kiln_op_axis(ctx, n, a[i], x->rank, &ax))) return s;
        p.reduce[ax] = true;
    }
    for (int d = 0; d < x->rank; d++)
        if (p.reduce[d]) per *= x->dims[d];
    tir_stage *mean = stat_scale(f, "mean", stat_stage(f, "mvn_sum", &p, src_x), (double)per, p.calc);
    p.mean = mean ? mean->out : NULL;
    tir_stage *var = stat_scale(f, "var", stat_stage(f, "mvn_sqdev", &p, src_dev), (double)per, p.calc);
    tir_stage *st = cmp_stage(f, "mean_variance_normalization", x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *si[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !mean || !var) return cmp_done(ctx, f, n);
    stat_index(f, &p, idx, si);
    ex_expr *v = cmp_bin(f, EX_SUB, cmp_to(f, cmp_load(f, x, idx), p.calc), cmp_load(f, mean->out, si));
    ex_expr *sd = cmp_bin(f, EX_ADD, cmp_un(f, EX_SQRT, cmp_load(f, var->out, si)), cmp_f(f, p.calc, 1e-9));
    st->body = cmp_to(f, cmp_bin(f, EX_DIV, v, sd), x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- LRN: x / (bias + alpha / size * sum of squares over nearby channels)^beta ---- */

CMP_FN(lrn) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    kiln_status s = float_only(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (s) return s;
    int64_t size = gir_attr_int(n, "size", 1), lo = (size - 1) / 2, ch = x->dims[1];
    double alpha = gir_attr_float(n, "alpha", 1e-4), beta = gir_attr_float(n, "beta", 0.75);
    double bias = gir_attr_float(n, "bias", 1.0);
    kiln_dtype c = cmp_calc(x->dtype);
    tir_stage *sq = cmp_stage(f, "lrn_sumsq", c, x->rank, x->dims, TIR_TAG_REDUCE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *xi[KILN_MAX_RANK];
    cmp_axes(f, sq, idx);
    if (!sq) return cmp_done(ctx, f, n);
    ex_expr *k = ex_varref(&f->eb, cmp_raxis(f, sq, "kc", size));
    ex_expr *chn = ex_add(&f->eb, ex_sub(&f->eb, idx[1], I(f, lo)), k);
    memcpy(xi, idx, sizeof(ex_expr *) * (size_t)x->rank);
    xi[1] = cmp_clamp(f, chn, 0, ch - 1);
    ex_expr *v = cmp_to(f, cmp_load(f, x, xi), c);
    sq->body = cmp_reduction(f, sq, EX_SUM, cmp_sel(f, cmp_in_range(f, chn, 0, ch), cmp_bin(f, EX_MUL, v, v),
                                                    cmp_f(f, c, 0)));
    tir_stage *st = cmp_stage(f, "lrn", x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    cmp_axes(f, st, idx);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *den = cmp_bin(f, EX_ADD, cmp_f(f, c, bias),
                           cmp_bin(f, EX_MUL, cmp_f(f, c, alpha / (double)size), cmp_load(f, sq->out, idx)));
    den = cmp_bin(f, EX_POW, den, cmp_f(f, c, beta));
    st->body = cmp_to(f, cmp_bin(f, EX_DIV, cmp_to(f, cmp_load(f, x, idx), c), den), x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}
