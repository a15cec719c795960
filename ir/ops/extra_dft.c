/*
** extra_dft.c — DFT (opset 17: axis attribute; opset 20: axis input) and
** STFT. Complex values are a trailing dim of 2 (real, imaginary); a real
** signal has a trailing dim of 1. The transforms are plain O(n^2) sums in
** double with exact twiddle indices ((k*n) mod N), obviously correct rather
** than fast.
*/
#include <math.h>
#include <string.h>

#include "extra_ops.h"

/* Longest transform accepted: keeps k*n in int64 and the tables bounded. */
#define DFT_MAX_LEN ((int64_t)1 << 28)

/* cos/sin of 2*pi*j/len for j < len. */
typedef struct dft_table {
    int64_t len;
    double *c, *s;
} dft_table;

static kiln_status table_init(kiln_ctx *ctx, const gir_node *n, dft_table *t, int64_t len) {
    t->len = len;
    t->c = kiln_malloc(sizeof(double) * (size_t)len);
    t->s = kiln_malloc(sizeof(double) * (size_t)len);
    if (!t->c || !t->s) {
        kiln_free(t->c);
        kiln_free(t->s);
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for a transform of length %lld", (long long)len);
    }
    for (int64_t j = 0; j < len; j++) {
        double a = 2.0 * M_PI * (double)j / (double)len;
        t->c[j] = cos(a);
        t->s[j] = sin(a);
    }
    return KILN_OK;
}

static void table_free(dft_table *t) {
    kiln_free(t->c);
    kiln_free(t->s);
}

/* y[k] for k < nout of the length-len transform of x[0..nin) (zero beyond);
** the inverse uses e^{+i} and divides by len. */
static void dft_line(const dft_table *t, const double *xr, const double *xi, int64_t nin, bool inverse,
                     int64_t nout, double *yr, double *yi) {
    int64_t len = t->len, m = nin < len ? nin : len;
    double sign = inverse ? 1.0 : -1.0;
    for (int64_t k = 0; k < nout; k++) {
        double ar = 0, ai = 0;
        for (int64_t j = 0; j < m; j++) {
            int64_t w = (k * j) % len;
            double c = t->c[w], s = sign * t->s[w];
            ar += xr[j] * c - xi[j] * s;
            ai += xr[j] * s + xi[j] * c;
        }
        yr[k] = inverse ? ar / (double)len : ar;
        yi[k] = inverse ? ai / (double)len : ai;
    }
}

/* Rebuilds the full Hermitian spectrum of length len from the nin one-sided
** bins in xr/xi (in place: both have room for len). The imaginary parts of
** the DC and Nyquist bins cannot exist in a real signal and are dropped. */
static void hermitian_fill(double *xr, double *xi, int64_t nin, int64_t len) {
    int64_t half = len / 2;
    for (int64_t k = nin; k <= half; k++) xr[k] = xi[k] = 0;
    for (int64_t k = half + 1; k < len; k++) {
        xr[k] = xr[len - k];
        xi[k] = -xi[len - k];
    }
    xi[0] = 0;
    if (len % 2 == 0) xi[half] = 0;
}

/* ---- DFT ---- */

typedef struct dft_plan {
    int axis;
    int64_t len, in_len, out_len;
    bool inverse, onesided;
} dft_plan;

static kiln_status dft_read(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, dft_plan *p) {
    const kiln_tensor *x = in[0], *t;
    int r = x->rank;
    if (r < 2 || (x->dims[r - 1] != 1 && x->dims[r - 1] != 2))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the input must end in a dim of 1 (real) or 2 (complex)");
    int64_t axis = n->opset < 20 ? gir_attr_int(n, "axis", 1) : -2, len = -1;
    kiln_status s = KILN_OK;
    if (n->opset >= 20 && (t = xo_in(n, in, 2))) s = xo_scalar_i64(ctx, n, t, "axis", &axis);
    if (!s && (t = xo_in(n, in, 1))) s = xo_scalar_i64(ctx, n, t, "dft_length", &len);
    if (s) return s;
    if (axis < -r || axis > r - 2 || axis == -1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "axis %lld is outside [-%d, -2] and [0, %d]", (long long)axis,
                            r, r - 2);
    p->axis = (int)(axis < 0 ? axis + r : axis);
    p->inverse = gir_attr_int(n, "inverse", 0) != 0;
    p->onesided = gir_attr_int(n, "onesided", 0) != 0;
    p->in_len = x->dims[p->axis];
    if (len < 0) len = p->inverse && p->onesided ? 2 * (p->in_len - 1) : p->in_len;
    if (len < 1 || len > DFT_MAX_LEN)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the transform length %lld is not in [1, 2^28]", (long long)len);
    p->len = len;
    p->out_len = !p->inverse && p->onesided ? len / 2 + 1 : len;
    return KILN_OK;
}

kiln_status xo_dft_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    dft_plan p;
    kiln_status s = dft_read(ctx, n, in, &p);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, in[0]->dims, sizeof(int64_t) * (size_t)in[0]->rank);
    dims[p.axis] = p.out_len;
    dims[in[0]->rank - 1] = p.inverse && p.onesided ? 1 : 2;
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, dims);
    return KILN_OK;
}

/* One line along the axis: load, transform, store. buf holds 4*len doubles. */
static void dft_one(const dft_plan *p, const dft_table *t, const kiln_tensor *x, kiln_tensor *y, int64_t o,
                    int64_t i, int64_t inner, double *buf) {
    int64_t len = p->len, ic = x->dims[x->rank - 1], oc = y->dims[y->rank - 1];
    double *xr = buf, *xi = buf + len, *yr = buf + 2 * len, *yi = buf + 3 * len;
    int64_t m = p->in_len < len ? p->in_len : len;
    for (int64_t k = 0; k < m; k++) {
        int64_t at = ((o * p->in_len + k) * inner + i) * ic;
        xr[k] = kiln_load_f64(x->dtype, x->data, at);
        xi[k] = ic == 2 ? kiln_load_f64(x->dtype, x->data, at + 1) : 0.0;
    }
    if (p->inverse && p->onesided) {
        hermitian_fill(xr, xi, m, len);
        m = len;
    }
    dft_line(t, xr, xi, m, p->inverse, p->out_len, yr, yi);
    for (int64_t k = 0; k < p->out_len; k++) {
        int64_t at = ((o * p->out_len + k) * inner + i) * oc;
        kiln_store_f64(y->dtype, y->data, at, yr[k]);
        if (oc == 2) kiln_store_f64(y->dtype, y->data, at + 1, yi[k]);
    }
}

kiln_status xo_dft_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    dft_plan p;
    dft_table t;
    kiln_status s = dft_read(ctx, n, in, &p);
    if (s) return s;
    const kiln_tensor *x = in[0];
    int64_t outer = kiln_numel_dims(p.axis, x->dims);
    int64_t inner = kiln_numel_dims(x->rank - 2 - p.axis, x->dims + p.axis + 1);
    if (outer * inner == 0 || kiln_numel(&out[0]) == 0) return KILN_OK;
    double *buf = kiln_malloc(sizeof(double) * 4 * (size_t)p.len);
    if (!buf) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for a transform of length %lld", (long long)p.len);
    s = table_init(ctx, n, &t, p.len);
    if (s) {
        kiln_free(buf);
        return s;
    }
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) dft_one(&p, &t, x, &out[0], o, i, inner, buf);
    table_free(&t);
    kiln_free(buf);
    return KILN_OK;
}

/* ---- STFT ---- */

typedef struct stft_plan {
    int64_t step, len, frames, bins;
} stft_plan;

static kiln_status stft_read(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, stft_plan *p) {
    const kiln_tensor *x = in[0], *w = xo_in(n, in, 2), *fl = xo_in(n, in, 3);
    if (x->rank != 3 || (x->dims[2] != 1 && x->dims[2] != 2))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the signal must be [batch, length, 1 or 2]");
    if (w && (w->rank != 1 || w->dtype != x->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the window must be 1-D of the signal's type");
    int64_t len = w ? w->dims[0] : x->dims[1];
    kiln_status s = xo_scalar_i64(ctx, n, in[1], "frame_step", &p->step);
    if (!s && fl) s = xo_scalar_i64(ctx, n, fl, "frame_length", &len);
    if (s) return s;
    if (w && len != w->dims[0])
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "frame_length %lld differs from the window's length %lld",
                            (long long)len, (long long)w->dims[0]);
    if (p->step < 1) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "frame_step must be positive");
    if (len < 1 || len > x->dims[1] || len > DFT_MAX_LEN)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "frame_length %lld must be in [1, signal length %lld]",
                            (long long)len, (long long)x->dims[1]);
    p->len = len;
    p->frames = (x->dims[1] - len) / p->step + 1;
    p->bins = gir_attr_int(n, "onesided", 1) ? len / 2 + 1 : len;
    return KILN_OK;
}

kiln_status xo_stft_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    stft_plan p;
    kiln_status s = stft_read(ctx, n, in, &p);
    if (s) return s;
    int64_t dims[4] = {in[0]->dims[0], p.frames, p.bins, 2};
    kiln_tensor_init(&out[0], in[0]->dtype, 4, dims);
    return KILN_OK;
}

static void stft_frame(const stft_plan *p, const dft_table *t, const kiln_tensor *x, const kiln_tensor *w,
                       kiln_tensor *y, int64_t b, int64_t f, double *buf) {
    int64_t len = p->len, c = x->dims[2];
    double *xr = buf, *xi = buf + len, *yr = buf + 2 * len, *yi = buf + 3 * len;
    for (int64_t k = 0; k < len; k++) {
        int64_t at = (b * x->dims[1] + f * p->step + k) * c;
        double wk = w ? kiln_load_f64(w->dtype, w->data, k) : 1.0;
        xr[k] = kiln_load_f64(x->dtype, x->data, at) * wk;
        xi[k] = c == 2 ? kiln_load_f64(x->dtype, x->data, at + 1) * wk : 0.0;
    }
    dft_line(t, xr, xi, len, false, p->bins, yr, yi);
    for (int64_t k = 0; k < p->bins; k++) {
        int64_t at = ((b * p->frames + f) * p->bins + k) * 2;
        kiln_store_f64(y->dtype, y->data, at, yr[k]);
        kiln_store_f64(y->dtype, y->data, at + 1, yi[k]);
    }
}

kiln_status xo_stft_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    stft_plan p;
    dft_table t;
    kiln_status s = stft_read(ctx, n, in, &p);
    if (s) return s;
    if (kiln_numel(&out[0]) == 0) return KILN_OK;
    double *buf = kiln_malloc(sizeof(double) * 4 * (size_t)p.len);
    if (!buf) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for frames of %lld", (long long)p.len);
    s = table_init(ctx, n, &t, p.len);
    if (s) {
        kiln_free(buf);
        return s;
    }
    for (int64_t b = 0; b < in[0]->dims[0]; b++)
        for (int64_t f = 0; f < p.frames; f++) stft_frame(&p, &t, in[0], xo_in(n, in, 2), &out[0], b, f, buf);
    table_free(&t);
    kiln_free(buf);
    return KILN_OK;
}
