/*
** nn_deform_roi.c — 2-D ops that sample an image bilinearly at fractional
** positions: DeformConv (each kernel tap shifted by a learned offset and
** scaled by an optional mask) and RoiAlign (average or max of samples in
** each bin of a region of interest).
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

/* Bilinear sample of plane xs [h, w] at (y, x); positions outside read zero. */
static double bilinear_zero(const double *xs, int64_t h, int64_t w, double y, double x) {
    if (!(y > -2 && y < (double)h + 1 && x > -2 && x < (double)w + 1)) return 0; /* NaN too */
    double y0 = floor(y), x0 = floor(x), ly = y - y0, lx = x - x0, acc = 0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            int64_t yy = (int64_t)y0 + dy, xx = (int64_t)x0 + dx;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            acc += (dy ? ly : 1 - ly) * (dx ? lx : 1 - lx) * xs[yy * w + xx];
        }
    return acc;
}

/* ---- DeformConv ---- */

typedef struct dc_plan {
    nn_window win;
    int64_t group, ogroup, batch, ic, oc;
} dc_plan;

static kiln_status dc_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, dc_plan *p) {
    const kiln_tensor *x = in[0], *w = in[1], *off = in[2], *b = NN_IN(n, in, 3), *mask = NN_IN(n, in, 4);
    if (x->rank != 4 || w->rank != 4)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "only 2-D DeformConv ([N, C, H, W]) is supported");
    p->group = gir_attr_int(n, "group", 1);
    p->ogroup = gir_attr_int(n, "offset_group", 1);
    p->batch = x->dims[0], p->ic = x->dims[1], p->oc = w->dims[0];
    if (p->group < 1 || p->ogroup < 1 || p->ic != w->dims[1] * p->group || p->oc % p->group || p->ic % p->ogroup)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "channels do not divide into the groups");
    int64_t kernel[2];
    kiln_status s = nn_kernel_shape(ctx, n, 2, w->dims + 2, kernel);
    if (!s) s = nn_window_init(ctx, n, x, kernel, false, &p->win);
    if (s) return s;
    int64_t kc = kernel[0] * kernel[1], oh = p->win.out[0], ow = p->win.out[1];
    if (off->rank != 4 || off->dims[0] != p->batch || off->dims[1] != p->ogroup * kc * 2 || off->dims[2] != oh ||
        off->dims[3] != ow)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "offset must be [N, %lld, %lld, %lld]",
                            (long long)(p->ogroup * kc * 2), (long long)oh, (long long)ow);
    if (mask && (mask->rank != 4 || mask->dims[0] != p->batch || mask->dims[1] != p->ogroup * kc ||
                 mask->dims[2] != oh || mask->dims[3] != ow))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "mask must be [N, %lld, %lld, %lld]", (long long)(p->ogroup * kc),
                            (long long)oh, (long long)ow);
    if (b && (b->rank != 1 || b->dims[0] != p->oc)) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "B must be [M]");
    for (int i = 1; i < 5; i++)
        if ((s = nn_check_same_dtype(ctx, n, x, NN_IN(n, in, i), "W, offset, B or mask"))) return s;
    return KILN_OK;
}

kiln_status nn_infer_deform_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                 kiln_tensor *out) {
    dc_plan p;
    kiln_status s = dc_setup(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, 4, (int64_t[]){p.batch, p.oc, p.win.out[0], p.win.out[1]});
    return KILN_OK;
}

/* Output (b, m, i, j): taps at the window position plus their offsets. */
static double dc_point(const dc_plan *p, const kiln_tensor *const *in, const gir_node *n, const double *xv,
                       int64_t b, int64_t m, int64_t i, int64_t j) {
    const kiln_tensor *w = in[1], *off = in[2], *mask = NN_IN(n, in, 4), *bias = NN_IN(n, in, 3);
    const nn_window *win = &p->win;
    int64_t kh = win->kernel[0], kw = win->kernel[1], kc = kh * kw, oh = win->out[0], ow = win->out[1];
    int64_t h = win->in[0], wd = win->in[1], cg = p->ic / p->group, g = m / (p->oc / p->group);
    double acc = bias ? kiln_tensor_f64(bias, m) : 0;
    for (int64_t c = g * cg; c < (g + 1) * cg; c++) {
        int64_t og = c / (p->ic / p->ogroup);
        for (int64_t k = 0; k < kc; k++) {
            int64_t ki = k / kw, kj = k % kw, oc2 = (og * kc + k) * 2;
            double dy = kiln_tensor_f64(off, ((b * off->dims[1] + oc2) * oh + i) * ow + j);
            double dx = kiln_tensor_f64(off, ((b * off->dims[1] + oc2 + 1) * oh + i) * ow + j);
            double y = (double)(i * win->stride[0] - win->pad_begin[0] + ki * win->dilation[0]) + dy;
            double x = (double)(j * win->stride[1] - win->pad_begin[1] + kj * win->dilation[1]) + dx;
            double v = bilinear_zero(xv + (b * p->ic + c) * h * wd, h, wd, y, x);
            if (mask) v *= kiln_tensor_f64(mask, ((b * mask->dims[1] + og * kc + k) * oh + i) * ow + j);
            acc += v * kiln_tensor_f64(w, (m * cg + (c - g * cg)) * kc + k);
        }
    }
    return acc;
}

kiln_status nn_ref_deform_conv(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    dc_plan p;
    const double *xv = NULL;
    kiln_status s = dc_setup(ctx, n, in, &p);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (s) return s;
    int64_t oh = p.win.out[0], ow = p.win.out[1];
    for (int64_t b = 0; b < p.batch; b++)
        for (int64_t m = 0; m < p.oc; m++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++)
                    nn_store_round(&out[0], ((b * p.oc + m) * oh + i) * ow + j, dc_point(&p, in, n, xv, b, m, i, j));
    nn_release_f64(in[0], xv);
    return KILN_OK;
}

/* ---- RoiAlign ---- */

static const char *const k_roi_modes[] = {"avg", "max", NULL};
static const char *const k_roi_ctms[] = {"half_pixel", "output_half_pixel", NULL};

typedef struct roi_plan {
    int mode;
    bool half_pixel;
    int64_t oh, ow, sampling;
    double scale;
} roi_plan;

static kiln_status roi_setup(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, roi_plan *p) {
    const kiln_tensor *x = in[0], *rois = in[1], *bi = in[2];
    int ctm;
    kiln_status s = nn_attr_choice(ctx, n, "mode", "avg", k_roi_modes, &p->mode);
    if (!s) s = nn_attr_choice(ctx, n, "coordinate_transformation_mode",
                               n->opset < 16 ? "output_half_pixel" : "half_pixel", k_roi_ctms, &ctm);
    if (s) return s;
    p->half_pixel = ctm == 0;
    p->oh = gir_attr_int(n, "output_height", 1);
    p->ow = gir_attr_int(n, "output_width", 1);
    p->sampling = gir_attr_int(n, "sampling_ratio", 0);
    p->scale = gir_attr_float(n, "spatial_scale", 1.0);
    if (p->oh < 1 || p->ow < 1 || p->oh > ((int64_t)1 << 20) || p->ow > ((int64_t)1 << 20) || p->sampling < 0 ||
        p->sampling > 4096)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "output size or sampling_ratio is invalid");
    if (x->rank != 4 || rois->rank != 2 || rois->dims[1] != 4 || bi->rank != 1 || bi->dims[0] != rois->dims[0] ||
        !kiln_dtype_is_int(bi->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "X must be [N, C, H, W], rois [R, 4] and batch_indices [R]");
    return nn_check_same_dtype(ctx, n, x, rois, "rois");
}

kiln_status nn_infer_roi_align(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                               kiln_tensor *out) {
    roi_plan p;
    kiln_status s = roi_setup(ctx, n, in, &p);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, 4, (int64_t[]){in[1]->dims[0], in[0]->dims[1], p.oh, p.ow});
    return KILN_OK;
}

/* One sample at (y, x): the four bilinear terms, or none outside [-1, size]. */
static double roi_sample(const double *xs, int64_t h, int64_t w, double y, double x, bool max_mode) {
    if (!(y >= -1.0 && y <= (double)h && x >= -1.0 && x <= (double)w) || h < 1 || w < 1) return 0;
    y = y < 0 ? 0 : y;
    x = x < 0 ? 0 : x;
    int64_t y0 = (int64_t)y, x0 = (int64_t)x, y1, x1;
    if (y0 >= h - 1) y0 = y1 = h - 1, y = (double)y0;
    else y1 = y0 + 1;
    if (x0 >= w - 1) x0 = x1 = w - 1, x = (double)x0;
    else x1 = x0 + 1;
    double ly = y - (double)y0, lx = x - (double)x0, hy = 1 - ly, hx = 1 - lx;
    double t[4] = {hy * hx * xs[y0 * w + x0], hy * lx * xs[y0 * w + x1], ly * hx * xs[y1 * w + x0],
                   ly * lx * xs[y1 * w + x1]};
    if (!max_mode) return t[0] + t[1] + t[2] + t[3];
    return fmax(fmax(t[0], t[1]), fmax(t[2], t[3]));
}

/* Samples per bin along one axis: the ratio, or enough to cover the bin. */
static int64_t roi_grid(const roi_plan *p, double extent, int64_t bins) {
    if (p->sampling > 0) return p->sampling;
    double g = ceil(extent / (double)bins);
    return g >= 1 && g <= 4096 ? (int64_t)g : g > 4096 ? 4096 : 0;
}

static void roi_one(const roi_plan *p, const double *xs, int64_t h, int64_t w, const double *box, double *y) {
    double off = p->half_pixel ? 0.5 : 0.0;
    double sw = box[0] * p->scale - off, sh = box[1] * p->scale - off;
    double rw = box[2] * p->scale - off - sw, rh = box[3] * p->scale - off - sh;
    if (!p->half_pixel) rw = fmax(rw, 1.0), rh = fmax(rh, 1.0);
    double bh = rh / (double)p->oh, bw = rw / (double)p->ow;
    int64_t gh = roi_grid(p, rh, p->oh), gw = roi_grid(p, rw, p->ow);
    int64_t count = gh * gw > 1 ? gh * gw : 1;
    for (int64_t ph = 0; ph < p->oh; ph++)
        for (int64_t pw = 0; pw < p->ow; pw++) {
            double acc = 0;
            bool first = true;
            for (int64_t iy = 0; iy < gh; iy++)
                for (int64_t ix = 0; ix < gw; ix++) {
                    double yy = sh + (double)ph * bh + ((double)iy + 0.5) * bh / (double)gh;
                    double xx = sw + (double)pw * bw + ((double)ix + 0.5) * bw / (double)gw;
                    double v = roi_sample(xs, h, w, yy, xx, p->mode == 1);
                    if (p->mode == 0) acc += v;
                    else acc = first || v > acc ? v : acc;
                    first = false;
                }
            y[ph * p->ow + pw] = p->mode == 0 ? acc / (double)count : acc;
        }
}

kiln_status nn_ref_roi_align(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    roi_plan p;
    const double *xv = NULL;
    double *yv = NULL;
    kiln_status s = roi_setup(ctx, n, in, &p);
    if (!s) s = nn_read_f64(ctx, n, in[0], &xv);
    if (!s) s = nn_out_f64(ctx, n, &out[0], &yv);
    int64_t nb = in[0]->dims[0], ch = in[0]->dims[1], h = in[0]->dims[2], w = in[0]->dims[3];
    for (int64_t r = 0; !s && r < in[1]->dims[0]; r++) {
        int64_t b = kiln_tensor_i64(in[2], r);
        double box[4];
        if (b < 0 || b >= nb) {
            s = kiln_op_fail(ctx, n, KILN_ERR_INVALID, "batch index %lld is out of range", (long long)b);
            break;
        }
        for (int k = 0; k < 4; k++) box[k] = kiln_tensor_f64(in[1], r * 4 + k);
        for (int64_t c = 0; c < ch; c++)
            roi_one(&p, xv + (b * ch + c) * h * w, h, w, box, yv + (r * ch + c) * p.oh * p.ow);
    }
    if (yv) nn_out_done(&out[0], yv);
    nn_release_f64(in[0], xv);
    return s;
}
