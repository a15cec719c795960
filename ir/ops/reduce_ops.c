/*
** reduce_ops.c — the Reduce* kernels and ArgMax/ArgMin.
**
** Floating types accumulate in double; integer types stay exact (sums and
** products wrap like the integer type, max/min compare as integers).
*/
#include <math.h>
#include <string.h>

#include "shape_ops.h"

/* Which reduction a table row computes: the row's name decides. */
typedef enum red_kind {
    RK_SUM, RK_MEAN, RK_MAX, RK_MIN, RK_PROD, RK_L1, RK_L2, RK_LOGSUM, RK_LOGSUMEXP, RK_SUMSQUARE
} red_kind;

static const char *const k_red_names[] = {
    "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
    "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare"};

static red_kind red_kind_of(const gir_node *n) {
    for (int k = 0; k < (int)(sizeof k_red_names / sizeof k_red_names[0]); k++)
        if (!strcmp(n->op->name, k_red_names[k])) return (red_kind)k;
    return RK_SUM;
}

typedef struct red_plan {
    bool noop;                 /* empty axes with noop_with_empty_axes: identity */
    bool reduce[KILN_MAX_RANK];
    int rank;
    int64_t dims[KILN_MAX_RANK];
} red_plan;

static kiln_status red_make(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, red_plan *p) {
    const kiln_tensor *x = in[0];
    int64_t axes[KILN_MAX_RANK];
    int count, norm[KILN_MAX_RANK];
    bool keep = gir_attr_int(n, "keepdims", 1) != 0;
    kiln_status s = shp_ints_arg(ctx, n, in, "axes", 1, axes, KILN_MAX_RANK, &count);
    if (s) return s;
    memset(p, 0, sizeof *p);
    if (count <= 0 && gir_attr_int(n, "noop_with_empty_axes", 0)) {
        p->noop = true;
        p->rank = x->rank;
        memcpy(p->dims, x->dims, sizeof p->dims);
        return KILN_OK;
    }
    s = shp_norm_axes(ctx, n, axes, count > 0 ? count : 0, x->rank, norm);
    if (s) return s;
    for (int i = 0; i < count; i++) p->reduce[norm[i]] = true;
    for (int d = 0; d < x->rank; d++) {
        if (count <= 0) p->reduce[d] = true;
        if (!p->reduce[d]) p->dims[p->rank++] = x->dims[d];
        else if (keep) p->dims[p->rank++] = 1;
    }
    return KILN_OK;
}

kiln_status red_reduce_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    red_plan p;
    kiln_status s = red_make(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, p.rank, p.dims);
    return KILN_OK;
}

static double red_float(red_kind k, const kiln_tensor *x, int64_t base, const int64_t *roff, int64_t cnt) {
    kiln_dtype t = x->dtype;
    double acc = k == RK_PROD ? 1 : k == RK_MAX || k == RK_LOGSUMEXP ? -INFINITY : k == RK_MIN ? INFINITY : 0;
    for (int64_t i = 0; i < cnt; i++) {
        double v = kiln_load_f64(t, x->data, base + roff[i]);
        switch (k) {
        case RK_PROD: acc *= v; break;
        case RK_MAX: case RK_LOGSUMEXP: acc = v != v || acc != acc ? NAN : v > acc ? v : acc; break;
        case RK_MIN: acc = v != v || acc != acc ? NAN : v < acc ? v : acc; break;
        case RK_L1: acc += fabs(v); break;
        case RK_L2: case RK_SUMSQUARE: acc += v * v; break;
        default: acc += v; break;
        }
    }
    if (k == RK_LOGSUMEXP && isfinite(acc)) {
        double m = acc, sum = 0;
        for (int64_t i = 0; i < cnt; i++) sum += exp(kiln_load_f64(t, x->data, base + roff[i]) - m);
        return m + log(sum);
    }
    switch (k) {
    case RK_MEAN: return acc / (double)cnt;
    case RK_L2: return sqrt(acc);
    case RK_LOGSUM: return log(acc);
    default: return acc;
    }
}

/* Integer reductions that stay in the integer domain. */
static bool red_int(red_kind k, const kiln_tensor *x, int64_t base, const int64_t *roff, int64_t cnt,
                    kiln_tensor *out, int64_t o) {
    kiln_dtype t = x->dtype;
    bool u = t == KILN_U64;
    if (k == RK_MAX || k == RK_MIN) {
        /* start from the type's limits, which is also the empty result */
        int bits = t == KILN_BOOL ? 1 : (int)kiln_dtype_size(t) * 8;
        bool sgn = kiln_dtype_is_signed(t);
        int64_t lo = sgn ? -(int64_t)((UINT64_C(1) << (bits - 1)) - 1) - 1 : 0;
        int64_t hi = bits == 64 ? INT64_MAX : sgn ? (int64_t)((UINT64_C(1) << (bits - 1)) - 1)
                                                  : (int64_t)((UINT64_C(1) << bits) - 1);
        uint64_t ua = k == RK_MAX ? 0 : UINT64_MAX;
        int64_t sa = k == RK_MAX ? lo : hi;
        for (int64_t i = 0; i < cnt; i++) {
            int64_t v = kiln_load_i64(t, x->data, base + roff[i]);
            if (u) ua = (k == RK_MAX) == ((uint64_t)v > ua) ? (uint64_t)v : ua;
            else sa = (k == RK_MAX) == (v > sa) ? v : sa;
        }
        if (u) ((uint64_t *)out->data)[o] = ua;
        else kiln_store_i64(t, out->data, o, sa);
        return true;
    }
    if (k != RK_SUM && k != RK_PROD && k != RK_L1 && k != RK_SUMSQUARE) return false;
    uint64_t acc = k == RK_PROD;
    for (int64_t i = 0; i < cnt; i++) {
        uint64_t v = (uint64_t)kiln_load_i64(t, x->data, base + roff[i]);
        if (k == RK_L1 && !u && (int64_t)v < 0) v = -v;
        acc = k == RK_PROD ? acc * v : k == RK_SUMSQUARE ? acc + v * v : acc + v;
    }
    kiln_store_i64(t, out->data, o, (int64_t)acc);
    return true;
}

/* Offsets (relative to an output's first input element) of the elements
** reduced into one output; and, per output, that first element. */
static kiln_status red_offsets(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, const red_plan *p,
                               bool want_reduced, int64_t **offs, int64_t *count) {
    int64_t st[KILN_MAX_RANK], dims[KILN_MAX_RANK], sst[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    int r = 0;
    kiln_strides(x->rank, x->dims, st);
    for (int d = 0; d < x->rank; d++)
        if (p->reduce[d] == want_reduced) {
            dims[r] = x->dims[d];
            sst[r++] = st[d];
        }
    int64_t c = kiln_numel_dims(r, dims);
    if (c < 0 || c > SHP_MAX_ELEMS) return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "the reduction is too large");
    int64_t *o = kiln_malloc(sizeof(int64_t) * (size_t)(c + 1));
    if (!o) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; i < c; i++, kiln_index_next(r, dims, idx)) {
        o[i] = 0;
        for (int d = 0; d < r; d++) o[i] += idx[d] * sst[d];
    }
    *offs = o;
    *count = c;
    return KILN_OK;
}

kiln_status red_reduce_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    red_plan p;
    kiln_status s = red_make(ctx, n, in, &p);
    if (s) return s;
    if (p.noop) return shp_copy(ctx, n, &out[0], 0, x, 0, kiln_numel(x));
    red_kind k = red_kind_of(n);
    int64_t *roff = NULL, *koff = NULL, rc, kc;
    s = red_offsets(ctx, n, x, &p, true, &roff, &rc);
    if (!s) s = red_offsets(ctx, n, x, &p, false, &koff, &kc);
    for (int64_t o = 0; !s && o < kc; o++) {
        if (kiln_dtype_is_int(x->dtype) || x->dtype == KILN_BOOL)
            if (red_int(k, x, koff[o], roff, rc, &out[0], o)) continue;
        kiln_store_f64(out[0].dtype, out[0].data, o, red_float(k, x, koff[o], roff, rc));
    }
    kiln_free(roff);
    kiln_free(koff);
    return s;
}

/* ---- ArgMax / ArgMin ---- */

static kiln_status arg_axis(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, int *axis) {
    if (x->rank == 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must have rank >= 1");
    kiln_status s = kiln_op_axis(ctx, n, gir_attr_int(n, "axis", 0), x->rank, axis);
    if (!s && x->dims[*axis] == 0)
        s = kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "cannot take the arg of an empty axis");
    return s;
}

kiln_status red_arg_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int axis;
    kiln_status s = arg_axis(ctx, n, x, &axis);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    int r = 0;
    bool keep = gir_attr_int(n, "keepdims", 1) != 0;
    for (int d = 0; d < x->rank; d++)
        if (d != axis) dims[r++] = x->dims[d];
        else if (keep) dims[r++] = 1;
    kiln_tensor_init(out, KILN_I64, r, dims);
    return KILN_OK;
}

kiln_status red_arg_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int axis;
    kiln_status s = arg_axis(ctx, n, x, &axis);
    if (s) return s;
    bool is_max = !strcmp(n->op->name, "ArgMax"), last = gir_attr_int(n, "select_last_index", 0) != 0;
    int64_t dim = x->dims[axis], outer = kiln_numel_dims(axis, x->dims);
    int64_t inner = kiln_numel_dims(x->rank - axis - 1, x->dims + axis + 1);
    int64_t *o = out[0].data;
    for (int64_t a = 0; a < outer; a++)
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = a * dim * inner + i, best = 0;
            for (int64_t j = 1; j < dim; j++) {
                int c = shp_cmp_elem(x, base + j * inner, x, base + best * inner);
                if (!is_max) c = -c;
                if (c > 0 || (c == 0 && last)) best = j;
            }
            o[a * inner + i] = best;
        }
    return KILN_OK;
}
