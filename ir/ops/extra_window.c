/*
** extra_window.c — the window generators (HannWindow, HammingWindow,
** BlackmanWindow) and MelWeightMatrix. Values are computed in double and
** stored in output_datatype.
*/
#include <math.h>

#include "extra_ops.h"

/* Longest window or matrix side accepted. */
#define WIN_MAX ((int64_t)1 << 31)

static kiln_status out_dtype(kiln_ctx *ctx, const gir_node *n, kiln_dtype *dt) {
    int64_t v = gir_attr_int(n, "output_datatype", KILN_F32);
    if (v <= 0 || v >= KILN_DTYPE_COUNT || !(KILN_DT((int)v) & KILN_DT_NUMERIC))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "output_datatype %lld is not a supported numeric type",
                            (long long)v);
    *dt = (kiln_dtype)v;
    return KILN_OK;
}

/* ---- windows ---- */

static kiln_status window_size(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, int64_t *size) {
    kiln_status s = xo_scalar_i64(ctx, n, in[0], "size", size);
    if (s) return s;
    if (*size < 0 || *size > WIN_MAX)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "window size %lld is not in [0, 2^31]", (long long)*size);
    return KILN_OK;
}

static kiln_status window_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    int64_t size;
    kiln_dtype dt;
    kiln_status s = out_dtype(ctx, n, &dt);
    if (!s) s = window_size(ctx, n, in, &size);
    if (s) return s;
    kiln_tensor_init(&out[0], dt, 1, &size);
    return KILN_OK;
}

kiln_status xo_hann_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return window_infer(ctx, n, in, out);
}
kiln_status xo_hamming_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return window_infer(ctx, n, in, out);
}
kiln_status xo_blackman_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    return window_infer(ctx, n, in, out);
}

/* The cosine-sum window a0 - a1 cos(x) + a2 cos(2x), x = 2*pi*k/N with N the
** size (periodic) or size - 1 (symmetric), as ONNX's function bodies define. */
static kiln_status cosine_window(const gir_node *n, kiln_tensor *y, double a0, double a1, double a2) {
    int64_t size = y->dims[0];
    double den = gir_attr_int(n, "periodic", 1) ? (double)size : (double)size - 1;
    for (int64_t k = 0; k < size; k++) {
        double x = 2.0 * M_PI * (double)k / den;
        kiln_store_f64(y->dtype, y->data, k, a0 - a1 * cos(x) + a2 * cos(2 * x));
    }
    return KILN_OK;
}

kiln_status xo_hann_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx;
    (void)in;
    return cosine_window(n, &out[0], 0.5, 0.5, 0.0);
}
kiln_status xo_hamming_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx;
    (void)in;
    return cosine_window(n, &out[0], 25.0 / 46.0, 21.0 / 46.0, 0.0);
}
kiln_status xo_blackman_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    (void)ctx;
    (void)in;
    return cosine_window(n, &out[0], 0.42, 0.5, 0.08);
}

/* ---- MelWeightMatrix ---- */

typedef struct mel_params {
    int64_t mels, dft_len, rate;
    double lo, hi;
} mel_params;

static kiln_status mel_read(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, mel_params *p) {
    kiln_status s = xo_scalar_i64(ctx, n, in[0], "num_mel_bins", &p->mels);
    if (!s) s = xo_scalar_i64(ctx, n, in[1], "dft_length", &p->dft_len);
    if (!s) s = xo_scalar_i64(ctx, n, in[2], "sample_rate", &p->rate);
    if (!s) s = xo_scalar_f64(ctx, n, in[3], "lower_edge_hertz", &p->lo);
    if (!s) s = xo_scalar_f64(ctx, n, in[4], "upper_edge_hertz", &p->hi);
    if (s) return s;
    if (p->mels < 1 || p->mels > WIN_MAX || p->dft_len < 1 || p->dft_len > WIN_MAX || p->rate < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "num_mel_bins, dft_length and sample_rate must be positive");
    if (!(p->lo >= 0 && p->lo <= p->hi && isfinite(p->hi)))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the edges %g and %g Hz must satisfy 0 <= lower <= upper",
                            p->lo, p->hi);
    return KILN_OK;
}

kiln_status xo_mel_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    mel_params p;
    kiln_dtype dt;
    kiln_status s = out_dtype(ctx, n, &dt);
    if (!s) s = mel_read(ctx, n, in, &p);
    if (s) return s;
    int64_t dims[2] = {p.dft_len / 2 + 1, p.mels};
    kiln_tensor_init(&out[0], dt, 2, dims);
    return KILN_OK;
}

/* Python's float floor division, which ONNX's reference uses for the bins. */
static double py_floordiv(double a, double b) {
    double mod = fmod(a, b), div = (a - mod) / b;
    if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1.0;
    double f = floor(div);
    if (div - f > 0.5) f += 1.0;
    return f;
}

/* Spectrogram bin of each of the mels + 2 points spaced evenly in mel. */
static kiln_status mel_points(kiln_ctx *ctx, const gir_node *n, const mel_params *p, int64_t *bins) {
    double lo = 2595.0 * log1p(p->lo / 700.0) / log(10.0), hi = 2595.0 * log1p(p->hi / 700.0) / log(10.0);
    double step = (hi - lo) / (double)(p->mels + 2);
    int64_t nbins = p->dft_len / 2 + 1;
    for (int64_t j = 0; j < p->mels + 2; j++) {
        double hz = 700.0 * expm1(((double)j * step + lo) / 2595.0 * log(10.0));
        double b = py_floordiv((double)(p->dft_len + 1) * hz, (double)p->rate);
        if (!(b >= 0 && b < (double)nbins))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID,
                                "the band edge %g Hz falls outside the %lld spectrogram bins (is upper_edge_hertz "
                                "above half the sample rate?)",
                                hz, (long long)nbins);
        bins[j] = (int64_t)b;
    }
    return KILN_OK;
}

kiln_status xo_mel_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    mel_params p;
    kiln_status s = mel_read(ctx, n, in, &p);
    if (s) return s;
    int64_t *bins = kiln_malloc(sizeof(int64_t) * (size_t)(p.mels + 2));
    if (!bins) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for %lld mel bins", (long long)p.mels);
    s = mel_points(ctx, n, &p, bins);
    kiln_tensor *y = &out[0];
    for (int64_t i = 0; !s && i < p.mels; i++) {
        int64_t left = bins[i], center = bins[i + 1], right = bins[i + 2];
        if (center == left)
            kiln_store_f64(y->dtype, y->data, center * p.mels + i, 1.0);
        else
            for (int64_t j = left; j <= center; j++)
                kiln_store_f64(y->dtype, y->data, j * p.mels + i, (double)(j - left) / (double)(center - left));
        for (int64_t j = center; j < right; j++)
            kiln_store_f64(y->dtype, y->data, j * p.mels + i, (double)(right - j) / (double)(right - center));
    }
    kiln_free(bins);
    return s;
}
