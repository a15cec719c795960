/*
** nn_col2im.c — Col2Im (the inverse of im2col: blocks summed back into an
** image, using the Conv window geometry) and MaxUnpool (values scattered to
** the flat positions MaxPool's Indices name).
*/
#include <string.h>

#include "nn_internal.h"

/* ---- Col2Im: input [N, C * prod(block), L] -> [N, C, image...] ---- */

typedef struct c2i_plan {
    nn_window win;
    int64_t batch, ch, kc; /* kc: values per block */
} c2i_plan;

static kiln_status c2i_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, c2i_plan *p) {
    const kiln_tensor *x = in[0];
    int64_t image[KILN_MAX_RANK], block[KILN_MAX_RANK];
    int ni, nb;
    kiln_status s = kiln_op_read_ints(ctx, n, in[1], image, KILN_MAX_RANK - 2, &ni);
    if (!s) s = kiln_op_read_ints(ctx, n, in[2], block, KILN_MAX_RANK - 2, &nb);
    if (s) return s;
    if (ni != nb || ni < 1 || x->rank != 3)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "input must be [N, C*K, L] with image_shape and block_shape of one length");
    for (int i = 0; i < ni; i++)
        if (image[i] < 0 || image[i] > ((int64_t)1 << 40) || block[i] < 1 || block[i] > ((int64_t)1 << 31))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "image_shape or block_shape value is invalid");
    kiln_tensor img;
    int64_t dims[KILN_MAX_RANK] = {x->dims[0], 1};
    memcpy(dims + 2, image, sizeof(int64_t) * (size_t)ni);
    kiln_tensor_init(&img, x->dtype, ni + 2, dims);
    s = nn_window_init(ctx, n, &img, block, false, &p->win);
    if (s) return s;
    p->batch = x->dims[0];
    p->kc = nn_window_kernel_count(&p->win);
    if (x->dims[1] % p->kc || x->dims[2] != nn_window_out_count(&p->win))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input has %lld x %lld values per sample, expected C*%lld x %lld",
                            (long long)x->dims[1], (long long)x->dims[2], (long long)p->kc,
                            (long long)nn_window_out_count(&p->win));
    p->ch = x->dims[1] / p->kc;
    return KILN_OK;
}

kiln_status nn_infer_col2im(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    c2i_plan p;
    kiln_status s = c2i_setup(ctx, n, in, &p);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK] = {p.batch, p.ch};
    memcpy(dims + 2, p.win.in, sizeof(int64_t) * (size_t)p.win.nsp);
    kiln_tensor_init(&out[0], in[0]->dtype, p.win.nsp + 2, dims);
    return KILN_OK;
}

kiln_status nn_ref_col2im(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    c2i_plan p;
    const double *xv = NULL;
    double *yv = NULL;
    int64_t *kidx = NULL;
    kiln_status s = c2i_setup(ctx, n, in, &p);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    if (!s && !(kidx = kiln_malloc(sizeof(int64_t) * (size_t)p.kc * 2)))
        s = kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    if (!s) {
        int64_t *ioff = kidx + p.kc, nblk = nn_window_out_count(&p.win), isz = nn_window_in_count(&p.win);
        int64_t opos[KILN_MAX_RANK] = {0};
        for (int64_t o = 0; o < nblk; o++, kiln_index_next(p.win.nsp, p.win.out, opos)) {
            int nt = nn_window_taps(&p.win, opos, kidx, ioff);
            for (int64_t b = 0; b < p.batch; b++)
                for (int64_t c = 0; c < p.ch; c++)
                    for (int t = 0; t < nt; t++)
                        yv[(b * p.ch + c) * isz + ioff[t]] += xv[((b * p.ch + c) * p.kc + kidx[t]) * nblk + o];
        }
    }
    kiln_free(kidx);
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], xv);
    return s;
}

/* ---- MaxUnpool ---- */

/* The unpooled extents: (in - 1) * stride - pads + kernel, or output_shape. */
static kiln_status unpool_shape(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int64_t *dims,
                                int64_t *full) {
    const kiln_tensor *x = in[0], *idx = in[1], *oshape = NN_IN(n, in, 2);
    int nsp = x->rank - 2;
    int64_t kernel[KILN_MAX_RANK], strides[KILN_MAX_RANK], pads[2 * KILN_MAX_RANK];
    if (x->rank < 3 || !kiln_tensor_same_shape(x, idx) || !kiln_dtype_is_int(idx->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must be [N, C, ...] and I integer indices of its shape");
    kiln_status s = nn_kernel_shape(ctx, n, nsp, NULL, kernel);
    if (!s) s = nn_attr_ints(ctx, n, "strides", nsp, 1, strides, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "pads", 2 * nsp, 0, pads, NULL);
    if (s) return s;
    dims[0] = x->dims[0], dims[1] = x->dims[1];
    for (int i = 0; i < nsp; i++) {
        if (strides[i] < 1 || strides[i] > ((int64_t)1 << 31) || pads[i] < 0 || pads[nsp + i] < 0 ||
            pads[i] > ((int64_t)1 << 40) || pads[nsp + i] > ((int64_t)1 << 40) ||
            (x->dims[i + 2] > 0 && strides[i] > ((int64_t)1 << 50) / x->dims[i + 2]))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "strides or pads out of range");
        dims[i + 2] = (x->dims[i + 2] - 1) * strides[i] - pads[i] - pads[nsp + i] + kernel[i];
        if (dims[i + 2] < 0) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "pads leave a negative extent");
    }
    memcpy(full, dims, sizeof(int64_t) * (size_t)x->rank);
    if (!oshape) return KILN_OK;
    int k;
    s = kiln_op_read_ints(ctx, n, oshape, dims, KILN_MAX_RANK, &k);
    if (s) return s;
    if (k != x->rank) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "output_shape must have %d values", x->rank);
    for (int i = 0; i < k; i++)
        if (dims[i] < full[i] || dims[i] > ((int64_t)1 << 40))
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "output_shape is smaller than the unpooled extent");
    return KILN_OK;
}

kiln_status nn_infer_max_unpool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                kiln_tensor *out) {
    int64_t dims[KILN_MAX_RANK], full[KILN_MAX_RANK];
    kiln_status s = unpool_shape(ctx, n, in, dims, full);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, dims);
    return KILN_OK;
}

/* Indices address the unpooled tensor of extents `full`; a larger output_shape
** keeps that tensor in its leading corner. */
kiln_status nn_ref_max_unpool(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                              kiln_tensor *out) {
    int64_t dims[KILN_MAX_RANK], full[KILN_MAX_RANK];
    kiln_status s = unpool_shape(ctx, n, in, dims, full);
    if (s) return s;
    int rank = in[0]->rank;
    int64_t count = kiln_numel(in[0]), limit = kiln_numel_dims(rank, full);
    for (int64_t i = 0; i < count; i++) {
        int64_t at = kiln_tensor_i64(in[1], i), off = 0, mul = 1;
        if (at < 0 || at >= limit)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "index %lld is outside the unpooled tensor", (long long)at);
        for (int d = rank - 1; d >= 0; d--) {
            off += (at % full[d]) * mul;
            at /= full[d];
            mul *= dims[d];
        }
        nn_store_round(&out[0], off, kiln_tensor_f64(in[0], i));
    }
    return KILN_OK;
}
