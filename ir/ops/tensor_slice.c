/*
** tensor_slice.c — ops that cut, grow or repeat a tensor: Slice, Pad, Tile,
** Expand, CenterCropPad.
*/
#include <string.h>

#include "shape_ops.h"

/* ---- Slice ---- */

typedef struct slice_plan {
    int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK], len[KILN_MAX_RANK];
} slice_plan;

/* Clamps one axis the ONNX way and gives its first index and length. */
static void slice_axis(int64_t d, int64_t s, int64_t e, int64_t k, int64_t *start, int64_t *len) {
    if (s < 0) s += d;
    if (e < 0) e += d;
    int64_t n;
    if (k > 0) {
        s = s < 0 ? 0 : s > d ? d : s;
        e = e < 0 ? 0 : e > d ? d : e;
        n = e > s ? (e - s - 1) / k + 1 : 0;
    } else {
        s = s < 0 ? 0 : s > d - 1 ? d - 1 : s;
        e = e < -1 ? -1 : e > d - 1 ? d - 1 : e;
        n = s > e ? (s - e - 1) / (-k) + 1 : 0;
    }
    *start = n ? s : 0;
    *len = n;
}

static kiln_status slice_args(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              int64_t (*v)[KILN_MAX_RANK], int *cnt) {
    static const char *const names[4] = {"starts", "ends", "axes", "steps"};
    for (int i = 0; i < 4; i++) {
        kiln_status s = shp_ints_arg(ctx, n, in, names[i], i + 1, v[i], KILN_MAX_RANK, &cnt[i]);
        if (s) return s;
    }
    if (cnt[0] < 0 || cnt[1] < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "starts and ends are required");
    if (cnt[1] != cnt[0] || (cnt[2] >= 0 && cnt[2] != cnt[0]) || (cnt[3] >= 0 && cnt[3] != cnt[0]))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "starts, ends, axes and steps differ in length");
    return KILN_OK;
}

static kiln_status slice_make(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              slice_plan *p) {
    const kiln_tensor *x = in[0];
    int64_t v[4][KILN_MAX_RANK];
    int cnt[4], axes[KILN_MAX_RANK];
    kiln_status s = slice_args(ctx, n, in, v, cnt);
    if (s) return s;
    if (cnt[2] < 0)
        for (int i = 0; i < cnt[0]; i++) v[2][i] = i;
    s = shp_norm_axes(ctx, n, v[2], cnt[0], x->rank, axes);
    if (s) return s;
    for (int d = 0; d < x->rank; d++) {
        p->start[d] = 0;
        p->step[d] = 1;
        p->len[d] = x->dims[d];
    }
    for (int i = 0; i < cnt[0]; i++) {
        int64_t k = cnt[3] < 0 ? 1 : v[3][i];
        if (k == 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "steps[%d] is zero", i);
        if (k == INT64_MIN) k = -INT64_MAX;
        int a = axes[i];
        p->step[a] = k;
        slice_axis(x->dims[a], v[0][i], v[1][i], k, &p->start[a], &p->len[a]);
    }
    return KILN_OK;
}

kiln_status tns_slice_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    slice_plan p;
    kiln_status s = slice_make(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, in[0]->rank, p.len);
    return KILN_OK;
}

kiln_status tns_slice_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    slice_plan p;
    kiln_status s = slice_make(ctx, n, in, &p);
    if (s) return s;
    const kiln_tensor *x = in[0];
    int64_t st[KILN_MAX_RANK], base = 0;
    kiln_strides(x->rank, x->dims, st);
    for (int d = 0; d < x->rank; d++) {
        base += p.start[d] * st[d];
        if (p.len[d] > 1) st[d] *= p.step[d]; /* |step| < extent here, so this fits */
    }
    return shp_strided_copy(ctx, n, &out[0], 0, x, base, x->rank, p.len, st);
}

/* ---- Pad ---- */

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP } pad_mode;

/* Negative pads crop first; the other modes then read the cropped data. */
typedef struct pad_plan {
    pad_mode mode;
    int64_t lo[KILN_MAX_RANK], len[KILN_MAX_RANK], before[KILN_MAX_RANK], out[KILN_MAX_RANK];
} pad_plan;

static kiln_status pad_mode_of(kiln_ctx *ctx, const gir_node *n, pad_mode *m) {
    static const char *const names[] = {"constant", "reflect", "edge", "wrap"};
    const char *s = gir_attr_string(n, "mode", "constant");
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            if (i == PAD_WRAP && n->opset < 19) break;
            *m = (pad_mode)i;
            return KILN_OK;
        }
    return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "mode '%s' is not supported at opset %d", s, n->opset);
}

/* Reads pads (and axes) into per-dim begin/end amounts. */
static kiln_status pad_amounts(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               int64_t *begin, int64_t *end) {
    int rank = in[0]->rank, np, na;
    int64_t pads[2 * KILN_MAX_RANK], axes_raw[KILN_MAX_RANK];
    int axes[KILN_MAX_RANK];
    const char *attr = gir_attr_find(n, "paddings") ? "paddings" : "pads";
    kiln_status s = shp_ints_arg(ctx, n, in, attr, 1, pads, 2 * KILN_MAX_RANK, &np);
    if (!s) s = shp_ints_arg(ctx, n, in, "axes", 3, axes_raw, KILN_MAX_RANK, &na);
    if (s) return s;
    if (np < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "no pads are given");
    if (na < 0) {
        na = rank;
        for (int i = 0; i < rank; i++) axes_raw[i] = i;
    }
    s = shp_norm_axes(ctx, n, axes_raw, na, rank, axes);
    if (s) return s;
    if (np != 2 * na)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "pads has %d values, expected %d", np, 2 * na);
    for (int d = 0; d < rank; d++) begin[d] = end[d] = 0;
    for (int i = 0; i < na; i++) {
        begin[axes[i]] = pads[i];
        end[axes[i]] = pads[na + i];
    }
    return KILN_OK;
}

static kiln_status pad_make(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            pad_plan *p) {
    const kiln_tensor *x = in[0];
    int64_t b[KILN_MAX_RANK], e[KILN_MAX_RANK];
    kiln_status s = pad_mode_of(ctx, n, &p->mode);
    if (!s) s = pad_amounts(ctx, n, in, b, e);
    if (s) return s;
    for (int d = 0; d < x->rank; d++) {
        int64_t dim = x->dims[d];
        if (b[d] < -dim || e[d] < -dim)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "pads crop more than axis %d holds", d);
        int64_t cb = b[d] < 0 ? -b[d] : 0, ce = e[d] < 0 ? -e[d] : 0;
        if (ce > dim - cb)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "pads crop more than axis %d holds", d);
        p->lo[d] = cb;
        p->len[d] = dim - cb - ce;
        p->before[d] = b[d] > 0 ? b[d] : 0;
        int64_t after = e[d] > 0 ? e[d] : 0;
        if (p->before[d] > (INT64_C(1) << 40) || after > (INT64_C(1) << 40))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "pads on axis %d are too large", d);
        if (p->len[d] == 0 && (p->before[d] || after) && p->mode != PAD_CONSTANT)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "cannot pad an empty axis %d in this mode", d);
        p->out[d] = p->len[d] + p->before[d] + after;
    }
    return KILN_OK;
}

kiln_status tns_pad_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    pad_plan p;
    const kiln_tensor *v = shp_in(n, in, 2);
    if (v && kiln_numel(v) > 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "constant_value must hold one element");
    if (v && kiln_numel(v) == 1) {
        kiln_status s = shp_same_dtype(ctx, n, v, in[0]->dtype, "constant_value");
        if (s) return s;
    }
    kiln_status s = pad_make(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, in[0]->rank, p.out);
    return KILN_OK;
}

/* Maps an index t (relative to the kept data) into [0, len); -1 = constant. */
static int64_t pad_src(pad_mode m, int64_t t, int64_t len) {
    if (t >= 0 && t < len) return t;
    switch (m) {
    case PAD_EDGE: return t < 0 ? 0 : len - 1;
    case PAD_WRAP: return ((t % len) + len) % len;
    case PAD_REFLECT: {
        if (len == 1) return 0;
        int64_t period = 2 * (len - 1), r = ((t % period) + period) % period;
        return r < len ? r : period - r;
    }
    default: return -1;
    }
}

/* The fill value as one element of the output's dtype. */
static void pad_value(const gir_node *n, const kiln_tensor *const *in, kiln_tensor *val, int64_t *buf) {
    const kiln_tensor *v = shp_in(n, in, 2);
    kiln_tensor_init(val, in[0]->dtype, 0, NULL);
    buf[0] = buf[1] = 0;
    val->data = buf;
    if (v && kiln_numel(v) == 1 && v->data)
        memcpy(buf, v->data, kiln_dtype_size(v->dtype));
    else
        kiln_store_f64(val->dtype, buf, 0, gir_attr_float(n, "value", 0.0));
}

kiln_status tns_pad_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    pad_plan p;
    kiln_status s = pad_make(ctx, n, in, &p);
    if (s) return s;
    const kiln_tensor *x = in[0];
    kiln_tensor val;
    int64_t buf[2], st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    pad_value(n, in, &val, buf);
    kiln_strides(x->rank, x->dims, st);
    int64_t total = kiln_numel(&out[0]);
    for (int64_t o = 0; o < total; o++, kiln_index_next(x->rank, p.out, idx)) {
        int64_t off = 0;
        bool fill = false;
        for (int d = 0; d < x->rank && !fill; d++) {
            int64_t t = pad_src(p.mode, idx[d] - p.before[d], p.len[d]);
            fill = t < 0;
            off += (p.lo[d] + t) * st[d];
        }
        s = fill ? shp_copy(ctx, n, &out[0], o, &val, 0, 1) : shp_copy(ctx, n, &out[0], o, x, off, 1);
        if (s) return s;
    }
    return KILN_OK;
}

/* ---- Tile ---- */

kiln_status tns_tile_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t reps[KILN_MAX_RANK], dims[KILN_MAX_RANK];
    int count;
    kiln_status s = shp_read_ints(ctx, n, in[1], "repeats", reps, KILN_MAX_RANK, &count);
    if (s) return s;
    if (count != x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "repeats has %d values for rank %d", count, x->rank);
    for (int d = 0; d < x->rank; d++) {
        if (reps[d] < 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "repeats[%d] is negative", d);
        if (reps[d] && x->dims[d] > INT64_MAX / reps[d])
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the tiled extent overflows");
        dims[d] = x->dims[d] * reps[d];
    }
    kiln_tensor_init(out, x->dtype, x->rank, dims);
    return KILN_OK;
}

kiln_status tns_tile_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                         kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0}, total = kiln_numel(&out[0]);
    kiln_strides(x->rank, x->dims, st);
    for (int64_t o = 0; o < total; o++, kiln_index_next(x->rank, out[0].dims, idx)) {
        int64_t off = 0;
        for (int d = 0; d < x->rank; d++) off += (idx[d] % x->dims[d]) * st[d];
        kiln_status s = shp_copy(ctx, n, &out[0], o, x, off, 1);
        if (s) return s;
    }
    return KILN_OK;
}

/* ---- Expand ---- */

kiln_status tns_expand_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    kiln_tensor shape;
    int64_t dims[KILN_MAX_RANK];
    int count;
    kiln_status s = shp_read_ints(ctx, n, in[1], "the shape", dims, KILN_MAX_RANK, &count);
    if (s) return s;
    for (int i = 0; i < count; i++)
        if (dims[i] < 0)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "shape[%d] is negative", i);
    kiln_tensor_init(&shape, in[0]->dtype, count, dims);
    const kiln_tensor *ts[2] = {in[0], &shape};
    return kiln_op_infer_broadcast(ctx, n, ts, 0, 2, in[0]->dtype, out);
}

kiln_status tns_expand_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    int64_t bst[KILN_MAX_RANK];
    kiln_broadcast_strides(in[0], out[0].rank, out[0].dims, bst);
    return shp_strided_copy(ctx, n, &out[0], 0, in[0], 0, out[0].rank, out[0].dims, bst);
}

/* ---- CenterCropPad ---- */

/* Per-dim shift from output index to input index. */
static kiln_status ccp_make(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            int64_t *dims, int64_t *shift) {
    const kiln_tensor *x = in[0];
    int64_t shape[KILN_MAX_RANK], axes_raw[KILN_MAX_RANK];
    int count, na, axes[KILN_MAX_RANK];
    kiln_status s = shp_read_ints(ctx, n, in[1], "shape", shape, KILN_MAX_RANK, &count);
    if (!s) s = shp_ints_arg(ctx, n, in, "axes", -1, axes_raw, KILN_MAX_RANK, &na);
    if (s) return s;
    if (na < 0) {
        na = x->rank;
        for (int i = 0; i < na; i++) axes_raw[i] = i;
    }
    s = shp_norm_axes(ctx, n, axes_raw, na, x->rank, axes);
    if (s) return s;
    if (count != na)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "shape has %d values for %d axes", count, na);
    for (int d = 0; d < x->rank; d++) {
        dims[d] = x->dims[d];
        shift[d] = 0;
    }
    for (int i = 0; i < na; i++) {
        int a = axes[i];
        if (shape[i] < 0) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "shape[%d] is negative", i);
        dims[a] = shape[i];
        shift[a] = x->dims[a] >= shape[i] ? (x->dims[a] - shape[i]) / 2 : -((shape[i] - x->dims[a]) / 2);
    }
    return KILN_OK;
}

kiln_status tns_ccp_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    int64_t dims[KILN_MAX_RANK], shift[KILN_MAX_RANK];
    kiln_status s = ccp_make(ctx, n, in, dims, shift);
    if (s) return s;
    kiln_tensor_init(out, in[0]->dtype, in[0]->rank, dims);
    return KILN_OK;
}

kiln_status tns_ccp_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                        kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    int64_t dims[KILN_MAX_RANK], shift[KILN_MAX_RANK], st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    kiln_status s = ccp_make(ctx, n, in, dims, shift);
    if (s) return s;
    kiln_strides(x->rank, x->dims, st);
    int64_t total = kiln_numel(&out[0]);
    for (int64_t o = 0; o < total; o++, kiln_index_next(x->rank, dims, idx)) {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < x->rank && inside; d++) {
            int64_t t = idx[d] + shift[d];
            inside = t >= 0 && t < x->dims[d];
            off += t * st[d];
        }
        if (inside && (s = shp_copy(ctx, n, &out[0], o, x, off, 1))) return s;
    }
    return KILN_OK;
}
