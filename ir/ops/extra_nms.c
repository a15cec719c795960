/*
** extra_nms.c — NonMaxSuppression: per batch and class, greedy selection of
** boxes by descending score (lower index first on ties), dropping a box
** whose IoU with a selected one is strictly above the threshold.
*/
#include <stdlib.h>

#include "extra_ops.h"

typedef struct nms_params {
    int64_t batches, classes, boxes, max_out;
    double iou, score;
    bool has_score, center, exact; /* exact: f64 data, else float arithmetic */
} nms_params;

typedef struct nms_cand {
    double score;
    int64_t idx;
} nms_cand;

static kiln_status nms_read_params(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                                   nms_params *p) {
    const kiln_tensor *b = in[0], *sc = in[1];
    if (!(KILN_DT(sc->dtype) & KILN_DT_FLOATS) || sc->dtype != b->dtype)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "scores (%s) must have the boxes' type (%s)",
                            kiln_dtype_name(sc->dtype), kiln_dtype_name(b->dtype));
    if (b->rank != 3 || b->dims[2] != 4 || sc->rank != 3 || sc->dims[0] != b->dims[0] ||
        sc->dims[2] != b->dims[1]) {
        char x[128], y[128];
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE,
                            "boxes %s and scores %s must be [batches, boxes, 4] and [batches, classes, boxes]",
                            kiln_shape_str(b, x, sizeof x), kiln_shape_str(sc, y, sizeof y));
    }
    int64_t cpb = gir_attr_int(n, "center_point_box", 0);
    if (cpb != 0 && cpb != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "center_point_box must be 0 or 1, got %lld", (long long)cpb);
    *p = (nms_params){b->dims[0], sc->dims[1], b->dims[1], 0, 0, 0, false, cpb == 1, b->dtype == KILN_F64};
    const kiln_tensor *t = xo_in(n, in, 2);
    kiln_status s = KILN_OK;
    if (t && kiln_numel(t) != 0) s = xo_scalar_i64(ctx, n, t, "max_output_boxes_per_class", &p->max_out);
    if (p->max_out < 0) p->max_out = 0;
    if (!s && (t = xo_in(n, in, 3)) && kiln_numel(t) != 0) s = xo_scalar_f64(ctx, n, t, "iou_threshold", &p->iou);
    if (!s && (t = xo_in(n, in, 4)) && kiln_numel(t) != 0) {
        s = xo_scalar_f64(ctx, n, t, "score_threshold", &p->score);
        p->has_score = true;
    }
    if (!s && (kiln_numel(b) || kiln_numel(sc)) && (!b->data || !sc->data)) return KILN_ERR_DYNAMIC;
    return s;
}

/* Rounds to float unless the boxes are f64, so that IoU is computed in the
** precision of the data (each operation rounded once, as in float code). */
static double rnd(const nms_params *p, double v) { return p->exact ? v : (double)(float)v; }

static void box_extent(const nms_params *p, const kiln_tensor *b, int64_t at, double lo[2], double hi[2]) {
    double v[4];
    for (int k = 0; k < 4; k++) v[k] = kiln_load_f64(b->dtype, b->data, at + k);
    if (p->center) { /* [x_center, y_center, width, height] */
        for (int d = 0; d < 2; d++) {
            double half = rnd(p, v[2 + d] / 2);
            lo[d] = rnd(p, v[d] - half);
            hi[d] = rnd(p, v[d] + half);
        }
        return;
    }
    for (int d = 0; d < 2; d++) { /* [y1, x1, y2, x2], corners in any order; d=0 is x */
        double a = v[1 - d], c = v[3 - d];
        lo[d] = a < c ? a : c;
        hi[d] = a < c ? c : a;
    }
}

static bool suppresses(const nms_params *p, const kiln_tensor *b, int64_t batch, int64_t i, int64_t j) {
    double lo1[2], hi1[2], lo2[2], hi2[2], ext[2];
    box_extent(p, b, (batch * p->boxes + i) * 4, lo1, hi1);
    box_extent(p, b, (batch * p->boxes + j) * 4, lo2, hi2);
    for (int d = 0; d < 2; d++) {
        double lo = lo1[d] > lo2[d] ? lo1[d] : lo2[d], hi = hi1[d] < hi2[d] ? hi1[d] : hi2[d];
        if (!(hi > lo)) return false;
        ext[d] = rnd(p, hi - lo);
    }
    double inter = rnd(p, ext[0] * ext[1]);
    double a1 = rnd(p, rnd(p, hi1[0] - lo1[0]) * rnd(p, hi1[1] - lo1[1]));
    double a2 = rnd(p, rnd(p, hi2[0] - lo2[0]) * rnd(p, hi2[1] - lo2[1]));
    double uni = rnd(p, rnd(p, a1 + a2) - inter);
    if (!(inter > 0) || !(a1 > 0) || !(a2 > 0) || !(uni > 0)) return false;
    return rnd(p, inter / uni) > p->iou;
}

static int cand_cmp(const void *a, const void *b) {
    const nms_cand *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Runs the selection, writing at most cap triples to out (NULL to count). */
static kiln_status nms_run(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           const nms_params *p, int64_t *out, int64_t cap, int64_t *count) {
    nms_cand *c = kiln_malloc(sizeof *c * (size_t)(p->boxes ? p->boxes : 1));
    int64_t *sel = kiln_malloc(sizeof *sel * (size_t)(p->boxes ? p->boxes : 1));
    if (!c || !sel) {
        kiln_free(c);
        kiln_free(sel);
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for %lld boxes", (long long)p->boxes);
    }
    int64_t total = 0;
    for (int64_t bi = 0; bi < p->batches; bi++)
        for (int64_t ci = 0; ci < p->classes; ci++) {
            int64_t nc = 0, ns = 0, base = (bi * p->classes + ci) * p->boxes;
            for (int64_t k = 0; k < p->boxes; k++) {
                double s = kiln_load_f64(in[1]->dtype, in[1]->data, base + k);
                if (!p->has_score || s > p->score) c[nc++] = (nms_cand){s, k};
            }
            qsort(c, (size_t)nc, sizeof *c, cand_cmp);
            for (int64_t k = 0; k < nc && ns < p->max_out; k++) {
                bool keep = true;
                for (int64_t m = 0; m < ns && keep; m++) keep = !suppresses(p, in[0], bi, sel[m], c[k].idx);
                if (!keep) continue;
                sel[ns++] = c[k].idx;
                if (out && total < cap) {
                    out[total * 3] = bi;
                    out[total * 3 + 1] = ci;
                    out[total * 3 + 2] = c[k].idx;
                }
                total++;
            }
        }
    kiln_free(c);
    kiln_free(sel);
    *count = total;
    return KILN_OK;
}

kiln_status xo_nms_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    nms_params p;
    int64_t count;
    kiln_status s = nms_read_params(ctx, n, in, &p);
    if (!s) s = nms_run(ctx, n, in, &p, NULL, 0, &count);
    if (s) return s;
    int64_t dims[2] = {count, 3};
    kiln_tensor_init(&out[0], KILN_I64, 2, dims);
    return KILN_OK;
}

kiln_status xo_nms_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    nms_params p;
    int64_t count;
    kiln_status s = nms_read_params(ctx, n, in, &p);
    if (!s) s = nms_run(ctx, n, in, &p, out[0].data, out[0].dims[0], &count);
    if (!s && count != out[0].dims[0])
        return kiln_op_fail(ctx, n, KILN_ERR_INTERNAL, "selected %lld boxes, inferred %lld", (long long)count,
                            (long long)out[0].dims[0]);
    return s;
}
