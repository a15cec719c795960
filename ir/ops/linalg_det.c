/*
** linalg_det.c — Det: the determinant of each square matrix in [..., M, M],
** by LU decomposition with partial pivoting in double.
*/
#include <math.h>
#include <string.h>

#include "nn_internal.h"

static kiln_status det_check(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x) {
    if (x->rank < 2 || x->dims[x->rank - 1] != x->dims[x->rank - 2])
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "input must be [..., M, M], got rank %d", x->rank);
    if (x->dims[x->rank - 1] > 4096) return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "matrices beyond 4096 x 4096");
    return KILN_OK;
}

kiln_status nn_infer_det(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    kiln_status s = det_check(ctx, n, in[0]);
    if (s) return s;
    kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank - 2, in[0]->dims);
    return KILN_OK;
}

/* Determinant of the m x m matrix a (destroyed). */
static double det_lu(double *a, int64_t m) {
    double det = 1;
    for (int64_t c = 0; c < m; c++) {
        int64_t piv = c;
        for (int64_t r = c + 1; r < m; r++)
            if (fabs(a[r * m + c]) > fabs(a[piv * m + c])) piv = r;
        if (a[piv * m + c] == 0) return 0;
        if (piv != c) {
            for (int64_t k = 0; k < m; k++) {
                double t = a[c * m + k];
                a[c * m + k] = a[piv * m + k];
                a[piv * m + k] = t;
            }
            det = -det;
        }
        det *= a[c * m + c];
        for (int64_t r = c + 1; r < m; r++) {
            double f = a[r * m + c] / a[c * m + c];
            for (int64_t k = c; k < m; k++) a[r * m + k] -= f * a[c * m + k];
        }
    }
    return det;
}

kiln_status nn_ref_det(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    kiln_status s = det_check(ctx, n, x);
    if (s) return s;
    int64_t m = x->dims[x->rank - 1], count = kiln_numel(&out[0]);
    double *a;
    s = nn_alloc_f64(ctx, n, m * m, &a);
    if (s) return s;
    for (int64_t q = 0; q < count; q++) {
        for (int64_t i = 0; i < m * m; i++) a[i] = kiln_tensor_f64(x, q * m * m + i);
        nn_store_round(&out[0], q, det_lu(a, m));
    }
    kiln_free(a);
    return KILN_OK;
}
