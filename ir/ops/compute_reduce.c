/*
** compute_reduce.c — compute definitions of the reductions: Reduce*,
** ArgMax/ArgMin, CumSum/CumProd (a reduction over the triangular window
** k <= i), and the row ops Softmax, LogSoftmax and Hardmax.
**
** A reduction stage's body is the reduction itself (tir.h), so whatever
** follows it (Mean's division, L2's square root, a cast back to f16) is an
** elementwise epilogue stage that a schedule can inline. Floats accumulate
** in the calc type; integer sums and products wrap in their own type, which
** is what the reference's 64-bit arithmetic truncated on store gives.
*/
#include <math.h>
#include <string.h>

#include "compute.h"
#include "shape_ops.h"

static ex_expr *I(tir_func *f, int64_t v) { return ex_int(&f->eb, v); }

/* A stage over `dims` reducing `src` (built over idx/raxes by the caller)
** with combiner c; with no reduced axes the stage is src itself. */
typedef ex_expr *(*red_src_fn)(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx);

typedef struct red_axes {
    int n;                       /* reduced axes */
    int64_t ext[KILN_MAX_RANK];  /* their extents */
    const char *names[KILN_MAX_RANK];
} red_axes;

static tir_stage *red_stage(tir_func *f, const char *name, kiln_dtype dt, int rank, const int64_t *dims,
                            const red_axes *ra, ex_combiner c, red_src_fn fn, const void *arg, tir_tag tag) {
    tir_stage *st = cmp_stage(f, name, dt, rank, dims, ra->n ? tag : TIR_TAG_ELEMWISE, NULL);
    ex_expr *sp[KILN_MAX_RANK], *rx[KILN_MAX_RANK];
    cmp_axes(f, st, sp);
    if (!st) return NULL;
    for (int r = 0; r < ra->n; r++) rx[r] = ex_varref(&f->eb, cmp_raxis(f, st, ra->names[r], ra->ext[r]));
    ex_expr *src = fn(f, arg, sp, rx);
    st->body = ra->n ? cmp_reduction(f, st, c, src) : src;
    return st;
}

/* ---- Reduce* ---- */

typedef enum red_kind {
    RK_SUM, RK_MEAN, RK_MAX, RK_MIN, RK_PROD, RK_L1, RK_L2, RK_LOGSUM, RK_LOGSUMEXP, RK_SUMSQUARE
} red_kind;

static const char *const k_red_names[] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd",
                                          "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp",
                                          "ReduceSumSquare"};

/* What one reduction reads: x indexed by output axes and reduced axes. */
typedef struct red_plan {
    const tir_tensor *x;
    bool reduce[KILN_MAX_RANK];
    bool keep;
    kiln_dtype calc;
    red_kind kind;
    const tir_tensor *max; /* LogSumExp's max stage, loaded at the output index */
} red_plan;

/* x's index from the output axes sp and the reduced axes rx. */
static void red_index(const red_plan *p, ex_expr *const *sp, ex_expr *const *rx, ex_expr **xi) {
    for (int d = 0, o = 0, r = 0; d < p->x->rank; d++) {
        if (p->reduce[d]) {
            xi[d] = rx[r++];
            if (p->keep) o++;
        } else {
            xi[d] = sp[o++];
        }
    }
}

static ex_expr *red_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    const red_plan *p = arg;
    ex_expr *xi[KILN_MAX_RANK];
    red_index(p, sp, rx, xi);
    ex_expr *v = cmp_to(f, cmp_load(f, p->x, xi), p->calc);
    switch (p->kind) {
    case RK_L1:
        if (kiln_dtype_is_float(p->calc)) return cmp_un(f, EX_ABS, v);
        if (!kiln_dtype_is_signed(p->calc)) return v;
        return cmp_sel(f, cmp_bin(f, EX_LT, v, cmp_num(f, p->calc, 0)), cmp_bin(f, EX_SUB, cmp_num(f, p->calc, 0), v), v);
    case RK_L2:
    case RK_SUMSQUARE: return cmp_bin(f, EX_MUL, v, v);
    case RK_LOGSUMEXP:
        if (!p->max) return v;
        return cmp_un(f, EX_EXP, cmp_bin(f, EX_SUB, v, cmp_load(f, p->max, sp)));
    default: return v;
    }
}

static ex_combiner red_combiner(red_kind k) {
    switch (k) {
    case RK_MAX: return EX_RMAX;
    case RK_MIN: return EX_RMIN;
    case RK_PROD: return EX_PROD;
    default: return EX_SUM;
    }
}

/* The type a kind accumulates in: integers stay exact where the reference
** keeps them integer (sum, prod, l1, sum of squares, max, min); Mean sums in
** i64; the others go through f64 as the reference does. */
static kiln_dtype red_calc(red_kind k, kiln_dtype dt) {
    if (kiln_dtype_is_float(dt)) return cmp_calc(dt);
    if (k == RK_MEAN) return kiln_dtype_is_signed(dt) ? KILN_I64 : KILN_U64;
    if (k == RK_L2 || k == RK_LOGSUM || k == RK_LOGSUMEXP) return KILN_F64;
    return dt;
}

static kiln_status red_setup(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, red_plan *p, red_axes *ra,
                             bool *noop) {
    tir_tensor *x = in[0];
    cmp_types tys;
    cmp_types_of(n, in, &tys);
    int64_t axes[KILN_MAX_RANK];
    int count, norm[KILN_MAX_RANK];
    kiln_status s = cmp_dynamic(ctx, n, shp_ints_arg(ctx, n, tys.p, "axes", 1, axes, KILN_MAX_RANK, &count), "axes");
    if (s) return s;
    memset(p, 0, sizeof *p);
    memset(ra, 0, sizeof *ra);
    p->x = x;
    p->keep = gir_attr_int(n, "keepdims", 1) != 0;
    *noop = count <= 0 && gir_attr_int(n, "noop_with_empty_axes", 0) != 0;
    if (*noop) return KILN_OK;
    if ((s = shp_norm_axes(ctx, n, axes, count > 0 ? count : 0, x->rank, norm))) return s;
    for (int i = 0; i < count; i++) p->reduce[norm[i]] = true;
    static const char *const names[KILN_MAX_RANK] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
    for (int d = 0; d < x->rank; d++) {
        if (count <= 0) p->reduce[d] = true;
        if (p->reduce[d]) {
            ra->names[ra->n] = names[d];
            ra->ext[ra->n++] = x->dims[d];
        }
    }
    return KILN_OK;
}

static red_kind red_kind_of(const gir_node *n) {
    for (int k = 0; k < (int)(sizeof k_red_names / sizeof *k_red_names); k++)
        if (!strcmp(n->op_type, k_red_names[k])) return (red_kind)k;
    return RK_SUM;
}

/* The epilogue after the accumulation acc (at the output index). */
static ex_expr *red_finish(tir_func *f, const red_plan *p, ex_expr *acc, int64_t cnt, kiln_dtype dt) {
    kiln_dtype c = acc->dtype;
    switch (p->kind) {
    case RK_MEAN:
        if (kiln_dtype_is_float(c)) acc = cmp_bin(f, EX_DIV, acc, cmp_f(f, c, (double)cnt));
        else acc = cmp_bin(f, EX_DIV, acc, cmp_i(f, c, cnt > 0 ? cnt : 1));
        break;
    case RK_L2: acc = cmp_un(f, EX_SQRT, acc); break;
    case RK_LOGSUM: acc = cmp_un(f, EX_LOG, acc); break;
    default: break;
    }
    return cmp_to(f, acc, dt);
}

CMP_FN(reduce) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    red_plan p;
    red_axes ra;
    bool noop;
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = red_setup(ctx, n, in, &p, &ra, &noop);
    if (s) return s;
    if (noop) {
        out[0] = cmp_copy(f, "reduce", x, x->dtype, TIR_TAG_INJECTIVE);
        return cmp_done(ctx, f, n);
    }
    p.kind = red_kind_of(n);
    p.calc = red_calc(p.kind, x->dtype);
    int64_t cnt = 1;
    for (int r = 0; r < ra.n; r++) cnt *= ra.ext[r];
    char name[64];
    cmp_lower(n, name, sizeof name);
    if (p.kind == RK_LOGSUMEXP) {
        red_plan mp = p;
        mp.kind = RK_MAX;
        tir_stage *m = red_stage(f, "reduce_max", p.calc, ty.rank, ty.dims, &ra, EX_RMAX, red_src, &mp, TIR_TAG_REDUCE);
        p.max = m ? m->out : NULL;
    }
    bool epilogue = p.kind == RK_MEAN || p.kind == RK_L2 || p.kind == RK_LOGSUM || p.kind == RK_LOGSUMEXP ||
                    p.calc != x->dtype;
    tir_stage *acc = red_stage(f, epilogue ? "reduce_acc" : name, p.calc, ty.rank, ty.dims, &ra,
                               red_combiner(p.kind), red_src, &p, TIR_TAG_REDUCE);
    if (!epilogue || !acc) {
        out[0] = acc ? acc->out : NULL;
        return cmp_done(ctx, f, n);
    }
    tir_stage *st = cmp_stage(f, name, x->dtype, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *sp[KILN_MAX_RANK];
    cmp_axes(f, st, sp);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *a = cmp_load(f, acc->out, sp);
    if (p.kind == RK_LOGSUMEXP) {
        ex_expr *m = cmp_load(f, p.max, sp);
        ex_expr *bad = cmp_bin(f, EX_OR, cmp_un(f, EX_ISNAN, m), cmp_un(f, EX_ISINF, m));
        a = cmp_sel(f, bad, m, cmp_bin(f, EX_ADD, m, cmp_un(f, EX_LOG, a)));
    }
    st->body = red_finish(f, &p, a, cnt, x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- ArgMax / ArgMin: the best value, then the first (or last) index of it ---- */

typedef struct arg_plan {
    red_plan rp;
    bool is_max, last, fl;
    int axis;
    int64_t dim;
    const tir_tensor *best;
} arg_plan;

/* The value compared: ArgMin skips NaN (NaN sorts after every number). */
static ex_expr *arg_value(tir_func *f, const arg_plan *a, ex_expr *const *sp, ex_expr *const *rx) {
    ex_expr *xi[KILN_MAX_RANK];
    red_index(&a->rp, sp, rx, xi);
    ex_expr *v = cmp_to(f, cmp_load(f, a->rp.x, xi), a->rp.calc);
    if (a->fl && !a->is_max) v = cmp_sel(f, cmp_un(f, EX_ISNAN, v), cmp_f(f, a->rp.calc, INFINITY), v);
    return v;
}

static ex_expr *arg_best_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    return arg_value(f, arg, sp, rx);
}

static ex_expr *arg_index_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    const arg_plan *a = arg;
    ex_expr *xi[KILN_MAX_RANK];
    red_index(&a->rp, sp, rx, xi);
    ex_expr *v = cmp_to(f, cmp_load(f, a->rp.x, xi), a->rp.calc), *m = cmp_load(f, a->best, sp);
    ex_expr *hit = cmp_bin(f, EX_EQ, v, m);
    if (a->fl && a->is_max) hit = cmp_sel(f, cmp_un(f, EX_ISNAN, m), cmp_un(f, EX_ISNAN, v), hit);
    return cmp_sel(f, hit, rx[0], I(f, a->last ? -1 : a->dim));
}

CMP_FN(arg_max_min) {
    tir_tensor *x = in[0];
    kiln_tensor ty;
    arg_plan a;
    memset(&a, 0, sizeof a);
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), x->rank, &a.axis);
    if (s) return s;
    a.rp.x = x;
    a.rp.keep = gir_attr_int(n, "keepdims", 1) != 0;
    a.rp.reduce[a.axis] = true;
    a.rp.calc = cmp_calc(x->dtype);
    a.is_max = !strcmp(n->op_type, "ArgMax");
    a.last = gir_attr_int(n, "select_last_index", 0) != 0;
    a.fl = kiln_dtype_is_float(x->dtype);
    a.dim = x->dims[a.axis];
    red_axes ra = {1, {a.dim}, {"k"}};
    tir_stage *b = red_stage(f, "arg_best", a.rp.calc, ty.rank, ty.dims, &ra, a.is_max ? EX_RMAX : EX_RMIN,
                             arg_best_src, &a, TIR_TAG_REDUCE);
    a.best = b ? b->out : NULL;
    bool fix = a.fl && !a.is_max; /* all NaN: the reference keeps the first (or last) */
    const char *name = a.is_max ? "arg_max" : "arg_min";
    tir_stage *r = red_stage(f, fix ? "arg_index" : name, KILN_I64, ty.rank, ty.dims, &ra,
                             a.last ? EX_RMAX : EX_RMIN, arg_index_src, &a, TIR_TAG_REDUCE);
    if (!fix || !r) {
        out[0] = r ? r->out : NULL;
        return cmp_done(ctx, f, n);
    }
    tir_stage *st = cmp_stage(f, name, KILN_I64, ty.rank, ty.dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *sp[KILN_MAX_RANK];
    cmp_axes(f, st, sp);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *k = cmp_load(f, r->out, sp);
    int64_t none = a.last ? -1 : a.dim, pick = a.last ? a.dim - 1 : 0;
    st->body = cmp_sel(f, cmp_bin(f, EX_EQ, k, I(f, none)), I(f, pick), k);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

/* ---- CumSum / CumProd: out[.., i, ..] = sum over k in the window of i ---- */

typedef struct cum_plan {
    const tir_tensor *x;
    int axis;
    bool excl, rev, prod;
    kiln_dtype calc;
} cum_plan;

static ex_expr *cum_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    const cum_plan *c = arg;
    ex_expr *xi[KILN_MAX_RANK];
    memcpy(xi, sp, sizeof(ex_expr *) * (size_t)c->x->rank);
    xi[c->axis] = rx[0];
    ex_binop op = c->rev ? (c->excl ? EX_GT : EX_GE) : (c->excl ? EX_LT : EX_LE);
    ex_expr *in_window = cmp_bin(f, op, rx[0], sp[c->axis]);
    ex_expr *v = cmp_to(f, cmp_load(f, c->x, xi), c->calc);
    return cmp_sel(f, in_window, v, cmp_num(f, c->calc, c->prod ? 1 : 0));
}

CMP_FN(cumsum) {
    tir_tensor *x = in[0];
    kiln_tensor ty, at;
    int64_t a = 0;
    cum_plan c = {x, 0, false, false, false, cmp_calc(x->dtype)};
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = cmp_infer(ctx, n, in, &ty);
    if (!s) {
        cmp_type_of(in[1], &at);
        s = cmp_dynamic(ctx, n, shp_read_scalar_int(ctx, n, &at, "axis", &a), "axis");
    }
    if (!s) s = kiln_op_axis(ctx, n, a, x->rank, &c.axis);
    if (s) return s;
    c.excl = gir_attr_int(n, "exclusive", 0) != 0;
    c.rev = gir_attr_int(n, "reverse", 0) != 0;
    c.prod = !strcmp(n->op_type, "CumProd");
    red_axes ra = {1, {x->dims[c.axis]}, {"k"}};
    const char *name = c.prod ? "cumprod" : "cumsum";
    bool cast = c.calc != x->dtype;
    tir_stage *acc = red_stage(f, cast ? "cum_acc" : name, c.calc, x->rank, x->dims, &ra,
                               c.prod ? EX_PROD : EX_SUM, cum_src, &c, TIR_TAG_REDUCE);
    out[0] = cast ? cmp_copy(f, name, acc ? acc->out : NULL, x->dtype, TIR_TAG_ELEMWISE) : acc ? acc->out : NULL;
    return cmp_done(ctx, f, n);
}

/* ---- Softmax, LogSoftmax, Hardmax: rows along `axis` (before 13, every axis
** from `axis` on, as the input coerced to 2-D) ---- */

typedef struct sm_plan {
    red_plan rp; /* keep = true: the row stages have x's shape with 1s on the row */
    int kind;    /* 0 softmax, 1 log, 2 hard */
    const tir_tensor *max, *sum;
    int64_t row_dims[KILN_MAX_RANK];
    int n_row;
} sm_plan;

/* x at the row position rx of the row holding output index sp. */
static ex_expr *sm_x(tir_func *f, const sm_plan *p, ex_expr *const *sp, ex_expr *const *rx) {
    ex_expr *xi[KILN_MAX_RANK];
    red_index(&p->rp, sp, rx, xi);
    return cmp_to(f, cmp_load(f, p->rp.x, xi), p->rp.calc);
}

/* Hardmax ignores NaN in its max (the reference compares with >). */
static ex_expr *sm_max_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    const sm_plan *p = arg;
    ex_expr *v = sm_x(f, p, sp, rx);
    if (p->kind == 2) v = cmp_sel(f, cmp_un(f, EX_ISNAN, v), cmp_f(f, p->rp.calc, -INFINITY), v);
    return v;
}

static ex_expr *sm_sum_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    const sm_plan *p = arg;
    return cmp_un(f, EX_EXP, cmp_bin(f, EX_SUB, sm_x(f, p, sp, rx), cmp_load(f, p->max, sp)));
}

/* Hardmax: the first row position (row-major) holding the max. */
static ex_expr *sm_arg_src(tir_func *f, const void *arg, ex_expr *const *sp, ex_expr *const *rx) {
    const sm_plan *p = arg;
    ex_expr *key = cmp_flatten(f, p->n_row, p->row_dims, rx);
    ex_expr *hit = cmp_bin(f, EX_EQ, sm_x(f, p, sp, rx), cmp_load(f, p->max, sp));
    return cmp_sel(f, hit, key, I(f, kiln_numel_dims(p->n_row, p->row_dims)));
}

static kiln_status sm_build(kiln_ctx *ctx, tir_func *f, const gir_node *n, tir_tensor *const *in, tir_tensor **out,
                            int kind) {
    tir_tensor *x = in[0];
    sm_plan p;
    memset(&p, 0, sizeof p);
    bool legacy = n->opset < 13;
    int axis;
    kiln_status s = cmp_plain(ctx, n, x->dtype);
    if (!s) s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", legacy ? 1 : -1), x->rank, &axis);
    if (s) return s;
    p.kind = kind;
    p.rp.x = x;
    p.rp.keep = true;
    p.rp.calc = cmp_calc(x->dtype);
    red_axes ra = {0};
    int64_t rdims[KILN_MAX_RANK];
    static const char *const names[KILN_MAX_RANK] = {"r0", "r1", "r2", "r3", "r4", "r5", "r6", "r7"};
    for (int d = 0; d < x->rank; d++) {
        p.rp.reduce[d] = legacy ? d >= axis : d == axis;
        rdims[d] = p.rp.reduce[d] ? 1 : x->dims[d];
        if (p.rp.reduce[d]) {
            ra.names[ra.n] = names[d];
            p.row_dims[ra.n] = x->dims[d];
            ra.ext[ra.n++] = x->dims[d];
        }
    }
    p.n_row = ra.n;
    tir_stage *m = red_stage(f, "row_max", p.rp.calc, x->rank, rdims, &ra, EX_RMAX, sm_max_src, &p, TIR_TAG_REDUCE);
    p.max = m ? m->out : NULL;
    tir_stage *sum = red_stage(f, kind == 2 ? "row_argmax" : "row_sum", kind == 2 ? KILN_I64 : p.rp.calc, x->rank,
                               rdims, &ra, kind == 2 ? EX_RMIN : EX_SUM, kind == 2 ? sm_arg_src : sm_sum_src, &p,
                               TIR_TAG_REDUCE);
    p.sum = sum ? sum->out : NULL;
    char name[64];
    tir_stage *st = cmp_stage(f, cmp_lower(n, name, sizeof name), x->dtype, x->rank, x->dims, TIR_TAG_ELEMWISE, NULL);
    ex_expr *idx[KILN_MAX_RANK], *rx[KILN_MAX_RANK], *ri[KILN_MAX_RANK];
    cmp_axes(f, st, idx);
    if (!st || !p.max || !p.sum) return cmp_done(ctx, f, n);
    /* ri: the row's index in the row stages; rx: the position within the row */
    for (int d = 0, r0 = 0; d < x->rank; d++) {
        ri[d] = p.rp.reduce[d] ? I(f, 0) : idx[d];
        if (p.rp.reduce[d]) rx[r0++] = idx[d];
    }
    ex_expr *mx = cmp_load(f, p.max, ri), *sm = cmp_load(f, p.sum, ri), *v = sm_x(f, &p, ri, rx), *r;
    kiln_dtype c = p.rp.calc;
    if (kind == 0) {
        r = cmp_bin(f, EX_DIV, cmp_un(f, EX_EXP, cmp_bin(f, EX_SUB, v, mx)), sm);
    } else if (kind == 1) {
        r = cmp_bin(f, EX_SUB, cmp_bin(f, EX_SUB, v, mx), cmp_un(f, EX_LOG, sm));
    } else {
        /* a NaN at the row's first position wins, as the reference's scan gives */
        ex_expr *zi[KILN_MAX_RANK], *first;
        for (int r0 = 0; r0 < ra.n; r0++) zi[r0] = I(f, 0);
        first = sm_x(f, &p, ri, zi);
        ex_expr *arg = cmp_sel(f, cmp_un(f, EX_ISNAN, first), I(f, 0), sm);
        ex_expr *hit = cmp_bin(f, EX_EQ, cmp_flatten(f, p.n_row, p.row_dims, rx), arg);
        r = cmp_sel(f, hit, cmp_num(f, c, 1), cmp_num(f, c, 0));
    }
    st->body = cmp_to(f, r, x->dtype);
    out[0] = st->out;
    return cmp_done(ctx, f, n);
}

CMP_FN(softmax) { return sm_build(ctx, f, n, in, out, 0); }
CMP_FN(log_softmax) { return sm_build(ctx, f, n, in, out, 1); }
CMP_FN(hardmax) { return sm_build(ctx, f, n, in, out, 2); }
