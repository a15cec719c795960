/*
** nn_window.c — the sliding-window geometry shared by Conv and the pooling
** ops (strides, dilations, explicit or automatic pads, ceil mode), and the
** plain convolution kernel on doubles.
*/
#include <string.h>

#include "nn_internal.h"

/* Extents beyond these are rejected so that index arithmetic cannot overflow. */
#define NN_MAX_EXTENT ((int64_t)1 << 31)

static const char *const k_auto_pad[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", NULL};

kiln_status nn_kernel_shape(kiln_ctx *ctx, const gir_node *n, int nsp, const int64_t *w_dims,
                            int64_t *kernel) {
    bool present;
    kiln_status s = nn_attr_ints(ctx, n, "kernel_shape", nsp, 0, kernel, &present);
    if (s) return s;
    if (!present) {
        if (!w_dims) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'kernel_shape' is required");
        memcpy(kernel, w_dims, sizeof(int64_t) * (size_t)nsp);
    }
    for (int i = 0; i < nsp; i++)
        if (kernel[i] < 1 || kernel[i] > NN_MAX_EXTENT)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "kernel extent %lld is invalid",
                                (long long)kernel[i]);
    if (w_dims)
        for (int i = 0; i < nsp; i++)
            if (kernel[i] != w_dims[i])
                return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                                    "kernel_shape %lld disagrees with the weight's extent %lld",
                                    (long long)kernel[i], (long long)w_dims[i]);
    return KILN_OK;
}

static kiln_status read_window_attrs(kiln_ctx *ctx, const gir_node *n, nn_window *w, int *mode) {
    int nsp = w->nsp;
    int64_t pads[2 * KILN_MAX_RANK];
    kiln_status s = nn_attr_ints(ctx, n, "strides", nsp, 1, w->stride, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "dilations", nsp, 1, w->dilation, NULL);
    if (!s) s = nn_attr_ints(ctx, n, "pads", 2 * nsp, 0, pads, NULL);
    if (!s) s = nn_attr_choice(ctx, n, "auto_pad", "NOTSET", k_auto_pad, mode);
    if (s) return s;
    for (int i = 0; i < nsp; i++) {
        if (w->stride[i] < 1 || w->stride[i] > NN_MAX_EXTENT)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "stride %lld is invalid", (long long)w->stride[i]);
        if (w->dilation[i] < 1 || w->dilation[i] > NN_MAX_EXTENT)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "dilation %lld is invalid",
                                (long long)w->dilation[i]);
        if (pads[i] < 0 || pads[nsp + i] < 0 || pads[i] > NN_MAX_EXTENT || pads[nsp + i] > NN_MAX_EXTENT)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "pads must be between 0 and 2^31");
        w->pad_begin[i] = pads[i];
        w->pad_end[i] = pads[nsp + i];
    }
    return KILN_OK;
}

/* Output extent of one dim with explicit pads. In ceil mode the last window
** must start inside the input or its leading pad (as PyTorch and ONNX do). */
static kiln_status explicit_extent(kiln_ctx *ctx, const gir_node *n, nn_window *w, int i,
                                   bool ceil_mode) {
    int64_t ek = (w->kernel[i] - 1) * w->dilation[i] + 1;
    int64_t span = w->in[i] + w->pad_begin[i] + w->pad_end[i] - ek;
    if (span < 0)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "the window (%lld) is larger than the padded input (%lld) in spatial dim %d",
                            (long long)ek, (long long)(w->in[i] + w->pad_begin[i] + w->pad_end[i]), i);
    int64_t out = span / w->stride[i] + 1;
    if (ceil_mode) {
        if (span % w->stride[i]) out++;
        if ((out - 1) * w->stride[i] >= w->in[i] + w->pad_begin[i]) out--;
    }
    w->out[i] = out;
    return KILN_OK;
}

kiln_status nn_window_init(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x,
                           const int64_t *kernel, bool pool, nn_window *w) {
    memset(w, 0, sizeof *w);
    if (x->rank < 3)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must have rank 3 or more [N, C, spatial...], got %d",
                            x->rank);
    w->nsp = x->rank - 2;
    int mode;
    kiln_status s = read_window_attrs(ctx, n, w, &mode);
    if (s) return s;
    bool ceil_mode = pool && gir_attr_int(n, "ceil_mode", 0) != 0;
    for (int i = 0; i < w->nsp; i++) {
        w->kernel[i] = kernel[i];
        w->in[i] = x->dims[i + 2];
        if (w->in[i] > ((int64_t)1 << 40))
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "spatial extent %lld is too large", (long long)w->in[i]);
        int64_t ek = (w->kernel[i] - 1) * w->dilation[i] + 1;
        if (mode == NN_PAD_SAME_UPPER || mode == NN_PAD_SAME_LOWER) {
            int64_t out = (w->in[i] + w->stride[i] - 1) / w->stride[i];
            int64_t total = (out - 1) * w->stride[i] + ek - w->in[i];
            if (total < 0) total = 0;
            w->pad_begin[i] = mode == NN_PAD_SAME_UPPER ? total / 2 : total - total / 2;
            w->pad_end[i] = total - w->pad_begin[i];
            w->out[i] = out;
            continue;
        }
        if (mode == NN_PAD_VALID) w->pad_begin[i] = w->pad_end[i] = 0;
        s = explicit_extent(ctx, n, w, i, ceil_mode && mode == NN_PAD_NOTSET);
        if (s) return s;
    }
    int64_t kc = nn_window_kernel_count(w);
    if (kc < 0 || kc > ((int64_t)1 << 30))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "the window has too many elements");
    return KILN_OK;
}

int64_t nn_window_out_count(const nn_window *w) { return kiln_numel_dims(w->nsp, w->out); }
int64_t nn_window_in_count(const nn_window *w) { return kiln_numel_dims(w->nsp, w->in); }
int64_t nn_window_kernel_count(const nn_window *w) { return kiln_numel_dims(w->nsp, w->kernel); }

int nn_window_taps(const nn_window *w, const int64_t *opos, int64_t *kidx, int64_t *ioff) {
    int64_t k[KILN_MAX_RANK] = {0};
    int count = 0;
    int64_t flat = 0;
    do {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < w->nsp && inside; d++) {
            int64_t p = opos[d] * w->stride[d] - w->pad_begin[d] + k[d] * w->dilation[d];
            inside = p >= 0 && p < w->in[d];
            off = off * w->in[d] + p;
        }
        if (inside) {
            kidx[count] = flat;
            ioff[count] = off;
            count++;
        }
        flat++;
    } while (kiln_index_next(w->nsp, w->kernel, k));
    return count;
}

kiln_status nn_conv_core(kiln_ctx *ctx, const gir_node *n, const nn_conv_args *a) {
    const nn_window *w = a->win;
    int64_t kc = nn_window_kernel_count(w), osz = nn_window_out_count(w), isz = nn_window_in_count(w);
    int64_t cg = a->in_ch / a->group, mg = a->out_ch / a->group;
    int64_t *kidx = kiln_malloc(sizeof(int64_t) * (size_t)kc * 2);
    if (!kidx) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    int64_t *ioff = kidx + kc;
    for (int64_t b = 0; b < a->batch; b++) {
        int64_t opos[KILN_MAX_RANK] = {0};
        for (int64_t o = 0; o < osz; o++, kiln_index_next(w->nsp, w->out, opos)) {
            int nt = nn_window_taps(w, opos, kidx, ioff);
            for (int64_t m = 0; m < a->out_ch; m++) {
                int64_t g = m / mg;
                double acc = a->b ? a->b[m] : 0.0;
                for (int64_t c = 0; c < cg; c++) {
                    const double *xs = a->x + (b * a->in_ch + g * cg + c) * isz;
                    const double *ws = a->w + (m * cg + c) * kc;
                    for (int t = 0; t < nt; t++) acc += xs[ioff[t]] * ws[kidx[t]];
                }
                a->y[(b * a->out_ch + m) * osz + o] = acc;
            }
        }
    }
    kiln_free(kidx);
    return KILN_OK;
}
