/*
** op_registry.c — the op table assembled from the family tables.
*/
#include "op.h"

#include <string.h>

extern const kiln_op_def kiln_ops_fused[]; /* ir/ops/ops_fused.c: kiln's own ops */
extern const kiln_op_def kiln_ops_layout[]; /* ir/ops/ops_layout.c: blocked channel layouts */
extern const kiln_op_def kiln_ops_winograd[]; /* ir/ops/ops_winograd.c: Winograd transforms */

static const kiln_op_def *const k_families[] = {
    kiln_ops_unary, kiln_ops_binary, kiln_ops_reduce, kiln_ops_nn,
    kiln_ops_linalg, kiln_ops_shape, kiln_ops_tensor, kiln_ops_misc,
    kiln_ops_control, kiln_ops_extra, kiln_ops_fused,
    kiln_ops_layout, kiln_ops_winograd,
};
#define N_FAMILIES (int)(sizeof k_families / sizeof k_families[0])

static int family_len(const kiln_op_def *f) {
    int n = 0;
    while (f[n].name) n++;
    return n;
}

int kiln_op_count(void) {
    int n = 0;
    for (int i = 0; i < N_FAMILIES; i++) n += family_len(k_families[i]);
    return n;
}

const kiln_op_def *kiln_op_at(int i) {
    for (int f = 0; f < N_FAMILIES; f++) {
        int n = family_len(k_families[f]);
        if (i < n) return &k_families[f][i];
        i -= n;
    }
    return NULL;
}

static bool same_domain(const char *a, const char *b) {
    if (!a || strcmp(a, "ai.onnx") == 0) a = "";
    if (!b || strcmp(b, "ai.onnx") == 0) b = "";
    return strcmp(a, b) == 0;
}

const kiln_op_def *kiln_op_find(const char *domain, const char *name, int64_t opset,
                                bool *any_version) {
    bool any = false;
    for (int f = 0; f < N_FAMILIES; f++) {
        for (const kiln_op_def *d = k_families[f]; d->name; d++) {
            if (strcmp(d->name, name) != 0 || !same_domain(d->domain, domain)) continue;
            any = true;
            if (opset >= d->min_opset && opset <= d->max_opset) {
                if (any_version) *any_version = true;
                return d;
            }
        }
    }
    if (any_version) *any_version = any;
    return NULL;
}
