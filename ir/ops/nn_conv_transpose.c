/*
** nn_conv_transpose.c — ConvTranspose: every input element scatters its
** products with the kernel into the output, at i*stride + k*dilation - pad.
*/
#include <string.h>

#include "nn_internal.h"

typedef struct convt_geom {
    int nsp;
    int64_t group, in_ch, out_ch;
    int64_t in[KILN_MAX_RANK], out[KILN_MAX_RANK], kernel[KILN_MAX_RANK];
    int64_t stride[KILN_MAX_RANK], dilation[KILN_MAX_RANK], pad_begin[KILN_MAX_RANK];
} convt_geom;

static const char *const k_auto_pad[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};

/* Floor division (total padding may be negative when output_shape asks for more). */
static int64_t floor_div2(int64_t v) { return v >= 0 ? v / 2 : -((-v + 1) / 2); }

static kiln_status read_output_shape(kiln_ctx *ctx, const gir_node *n, int nsp, int64_t *shape,
                                     bool *present) {
    const int64_t *v;
    int k = gir_attr_ints(n, "output_shape", &v);
    *present = k >= 0;
    if (k < 0) return KILN_OK;
    if (k != nsp && k != nsp + 2)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "output_shape has %d values, expected %d", k, nsp);
    memcpy(shape, v + (k - nsp), sizeof(int64_t) * (size_t)nsp);
    return KILN_OK;
}

static kiln_status check_operands(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                  const kiln_tensor *w, convt_geom *g) {
    g->group = gir_attr_int(n, "group", 1);
    if (x->rank < 3 || w->rank != x->rank)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X (rank %d) and W (rank %d) must have the same rank, 3 or more",
                            x->rank, w->rank);
    if (g->group < 1 || x->dims[1] % g->group || w->dims[0] != x->dims[1])
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "W has %lld input channels, X has %lld (group %lld)", (long long)w->dims[0],
                            (long long)x->dims[1], (long long)g->group);
    g->nsp = x->rank - 2;
    g->in_ch = x->dims[1];
    g->out_ch = w->dims[1] * g->group;
    memcpy(g->in, x->dims + 2, sizeof(int64_t) * (size_t)g->nsp);
    kiln_status s = nn_kernel_shape(ctx, n, g->nsp, w->dims + 2, g->kernel);
    int64_t kc = kiln_numel_dims(g->nsp, g->kernel);
    if (!s && (kc < 0 || kc > ((int64_t)1 << 30)))
        s = kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "the kernel has too many elements");
    return s;
}

static kiln_status convt_geometry(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                                  const kiln_tensor *w, convt_geom *g) {
    memset(g, 0, sizeof *g);
    kiln_status s = check_operands(ctx, n, x, w, g);
    int nsp = g->nsp, mode = 0;
    int64_t pads[2 * KILN_MAX_RANK], opad[KILN_MAX_RANK], oshape[KILN_MAX_RANK];
    bool has_oshape = false;
    if (!s) s = nn_attr_ints(ctx, n, "strides", nsp, 1, g->stride, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "dilations", nsp, 1, g->dilation, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "pads", 2 * nsp, 0, pads, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "output_padding", nsp, 0, opad, NULL);
    if (!s) s = nn_attr_choice(ctx, n, "auto_pad", "NOTSET", k_auto_pad, &mode);
    if (!s) s = read_output_shape(ctx, n, nsp, oshape, &has_oshape);
    if (s) return s;
    for (int i = 0; i < nsp; i++) {
        const int64_t lim = (int64_t)1 << 31;
        if (g->stride[i] < 1 || g->stride[i] > lim || g->dilation[i] < 1 || g->dilation[i] > lim ||
            pads[i] < 0 || pads[i] > lim || pads[nsp + i] < 0 || pads[nsp + i] > lim || opad[i] < 0 ||
            opad[i] > lim || g->in[i] > ((int64_t)1 << 40) ||
            (g->in[i] > 0 && g->stride[i] > ((int64_t)1 << 50) / g->in[i]))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "strides, dilations, pads or output_padding out of range");
        int64_t full = g->stride[i] * (g->in[i] - 1) + opad[i] + (g->kernel[i] - 1) * g->dilation[i] + 1;
        if (has_oshape || mode == NN_PAD_SAME_UPPER || mode == NN_PAD_SAME_LOWER) {
            int64_t want = has_oshape ? oshape[i] : g->in[i] * g->stride[i];
            if (want < 0 || want > ((int64_t)1 << 40))
                return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "output_shape %lld is invalid", (long long)want);
            int64_t total = full - want;
            g->pad_begin[i] = mode == NN_PAD_SAME_UPPER ? floor_div2(total) : total - floor_div2(total);
            g->out[i] = want;
        } else {
            if (mode == NN_PAD_VALID) pads[i] = pads[nsp + i] = 0;
            g->pad_begin[i] = pads[i];
            g->out[i] = full - pads[i] - pads[nsp + i];
            if (g->out[i] < 0)
                return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "pads leave a negative output extent");
        }
    }
    return KILN_OK;
}

kiln_status nn_infer_conv_transpose(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                    kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[1], *b = NN_IN(n, in, 2);
    convt_geom g;
    kiln_status s = nn_check_same_dtype(ctx, n, x, w, "W");
    if (!s) s = nn_check_same_dtype(ctx, n, x, b, "B");
    if (!s) s = convt_geometry(ctx, n, x, w, &g);
    if (s) return s;
    if (b && (b->rank != 1 || b->dims[0] != g.out_ch))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "B must have shape [%lld]", (long long)g.out_ch);
    int64_t dims[KILN_MAX_RANK];
    dims[0] = x->dims[0];
    dims[1] = g.out_ch;
    memcpy(dims + 2, g.out, sizeof(int64_t) * (size_t)g.nsp);
    kiln_tensor_init(&out[0], x->dtype, x->rank, dims);
    return KILN_OK;
}

/* Adds x_val * w[k] into every output position the kernel reaches from ipos. */
static void scatter(const convt_geom *g, const int64_t *ipos, double xv, const double *wk,
                    double *ys) {
    int64_t k[KILN_MAX_RANK] = {0}, kflat = 0;
    do {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < g->nsp && inside; d++) {
            int64_t p = ipos[d] * g->stride[d] + k[d] * g->dilation[d] - g->pad_begin[d];
            inside = p >= 0 && p < g->out[d];
            off = off * g->out[d] + p;
        }
        if (inside) ys[off] += xv * wk[kflat];
        kflat++;
    } while (kiln_index_next(g->nsp, g->kernel, k));
}

static void convt_core(const convt_geom *g, int64_t batch, const double *x, const double *w,
                       const double *b, double *y) {
    int64_t isz = kiln_numel_dims(g->nsp, g->in), osz = kiln_numel_dims(g->nsp, g->out);
    int64_t kc = kiln_numel_dims(g->nsp, g->kernel);
    int64_t cg = g->in_ch / g->group, mg = g->out_ch / g->group;
    for (int64_t nb = 0; nb < batch; nb++)
        for (int64_t c = 0; c < g->in_ch; c++) {
            int64_t grp = c / cg;
            const double *xs = x + (nb * g->in_ch + c) * isz;
            for (int64_t m = 0; m < mg; m++) {
                double *ys = y + (nb * g->out_ch + grp * mg + m) * osz;
                const double *wk = w + (c * mg + m) * kc;
                int64_t ipos[KILN_MAX_RANK] = {0};
                for (int64_t i = 0; i < isz; i++, kiln_index_next(g->nsp, g->in, ipos))
                    scatter(g, ipos, xs[i], wk, ys);
            }
        }
    if (b)
        for (int64_t nb = 0; nb < batch; nb++)
            for (int64_t m = 0; m < g->out_ch; m++)
                for (int64_t o = 0; o < osz; o++) y[(nb * g->out_ch + m) * osz + o] += b[m];
}

kiln_status nn_ref_conv_transpose(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                  kiln_tensor *out) {
    const kiln_tensor *x = in[0], *w = in[1], *b = NN_IN(n, in, 2);
    convt_geom g;
    const double *xv = NULL, *wv = NULL, *bv = NULL;
    double *yv = NULL;
    kiln_status s = convt_geometry(ctx, n, x, w, &g);
    if (!s) s = nn_read_f64(ctx, n, x, &xv);
    if (!s) s = nn_read_f64(ctx, n, w, &wv);
    if (!s) s = nn_read_f64(ctx, n, b, &bv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s) convt_core(&g, x->dims[0], xv, wv, bv, yv);
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(x, xv);
    nn_release_f64(w, wv);
    nn_release_f64(b, bv);
    return s;
}
