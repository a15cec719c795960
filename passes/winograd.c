/*
** winograd.c — 3x3 convolutions in the blocked layout as Winograd
** F(2x2, 3x3): a ConvBlocked with a 3x3 kernel, stride 1, no dilation, one
** group, on blocked input becomes
**
**   v = WinogradInput(x)       [16, T, IC]   the tiles' 4x4 patches, B^T d B
**   m = MatMul(v, U)           [16, T, OC]   U = G g G^T, computed here
**   y = WinogradOutput(m, b)   blocked, A^T m A (+ bias)
**
** (ir/ops/ops_winograd.c): 16 multiplies per 2x2 outputs instead of 36, the
** bulk of them in a batched matrix product kiln runs near the machine's
** peak. The transforms cost two passes over memory, so small images (whose
** 2x2 tiles also overhang more) keep the direct convolution: measured on
** one AVX-512 core, ResNet-50's 3x3 convolutions at 56x56 to 14x14 ran
** WG_MIN_SIDE and up faster this way, at 7x7 not. Elementwise consumers
** (bias, Relu) then fuse into WinogradOutput. Rounding differs from the
** direct sum by a few units in the last place (F(2x2, 3x3)'s transforms
** are exact in binary but for the halves of G).
*/
#include <string.h>

#include "ir/ctx.h"
#include "ir/op.h"
#include "ir/tensor.h"
#include "pass.h"

#define WG_MIN_SIDE 14 /* output rows and columns: smaller stays direct */

static const double k_G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};

static bool wg_ints_are(const gir_node *n, const char *name, int count, int64_t want) {
    const int64_t *v;
    int got = gir_attr_ints(n, name, &v);
    if (got < 0) return true; /* the default: 1 */
    if (got != count) return false;
    for (int i = 0; i < count; i++)
        if (v[i] != want) return false;
    return true;
}

/* A ConvBlocked the transform applies to, with blocked input and output. */
static bool wg_applies(const gir_node *n) {
    if (strcmp(n->domain, "ai.kiln") || strcmp(n->op_type, "ConvBlocked") || n->n_outputs != 1 || !n->outputs[0])
        return false;
    const gir_value *x = gir_input(n, 0), *w = gir_input(n, 1), *b = gir_input(n, 2), *y = n->outputs[0];
    if (!x || x->type.rank != 5 || !gir_type_is_static(&x->type) || !w || !w->constant || w->constant->rank != 6)
        return false;
    if (!y || y->type.rank != 5 || !gir_type_is_static(&y->type) || (b && !b->constant)) return false;
    const int64_t *wd = w->constant->dims, c = x->type.dims[4].value;
    if (wd[2] != 3 || wd[3] != 3 || wd[4] != c || wd[5] != c || wd[1] != x->type.dims[1].value) return false;
    if (gir_attr_int(n, "group", 1) != 1 || !wg_ints_are(n, "strides", 2, 1) || !wg_ints_are(n, "dilations", 2, 1))
        return false;
    return y->type.dims[2].value >= WG_MIN_SIDE && y->type.dims[3].value >= WG_MIN_SIDE;
}

/* U[4a+b, icb*c+i, ocb*c+o] = (G g G^T)[a, b] of the blocked weights
** w[ocb, icb, kh, kw, i, o]. */
static gir_value *wg_weights(gir_graph *g, const kiln_tensor *w) {
    int64_t OCB = w->dims[0], ICB = w->dims[1], c = w->dims[5], IC = ICB * c, OC = OCB * c;
    int64_t dims[3] = {16, IC, OC};
    float *u = kiln_calloc((size_t)(16 * IC * OC), sizeof *u);
    if (!u) return NULL;
    const float *src = w->data;
    for (int64_t ocb = 0; ocb < OCB; ocb++)
        for (int64_t icb = 0; icb < ICB; icb++)
            for (int64_t i = 0; i < c; i++)
                for (int64_t o = 0; o < c; o++) {
                    double k[3][3];
                    for (int kh = 0; kh < 3; kh++)
                        for (int kw = 0; kw < 3; kw++)
                            k[kh][kw] = src[((((ocb * ICB + icb) * 3 + kh) * 3 + kw) * c + i) * c + o];
                    for (int a = 0; a < 4; a++)
                        for (int b = 0; b < 4; b++) {
                            double s = 0;
                            for (int kh = 0; kh < 3; kh++)
                                for (int kw = 0; kw < 3; kw++) s += k_G[a][kh] * k[kh][kw] * k_G[b][kw];
                            u[((a * 4 + b) * IC + icb * c + i) * OC + ocb * c + o] = (float)s;
                        }
                }
    kiln_tensor t;
    kiln_tensor_init(&t, KILN_F32, 3, dims);
    t.data = u;
    gir_value *v = pass_new_constant(g, NULL, &t);
    kiln_free(u);
    return v;
}

static gir_node *wg_kiln_node(gir_graph *g, gir_node *before, const char *op, gir_value *const *in, int n_in,
                              int n_attrs) {
    gir_node *m = pass_insert_node(g, before, op, NULL, in, n_in, 1, n_attrs);
    if (m) m->domain = "ai.kiln", m->opset = 1;
    return m;
}

static bool wg_rewrite(gir_graph *g, gir_node *n) {
    const gir_type *xt = &n->inputs[0]->type, *yt = &n->outputs[0]->type;
    int64_t OH = yt->dims[2].value, OW = yt->dims[3].value, pads[4] = {0, 0, 0, 0};
    const int64_t *pv;
    if (gir_attr_ints(n, "pads", &pv) == 4) memcpy(pads, pv, sizeof pads);
    int64_t tiles[2] = {(OH + 1) / 2, (OW + 1) / 2}, shape[3] = {xt->dims[0].value, OH, OW};
    gir_value *u = wg_weights(g, n->inputs[1]->constant);
    gir_node *in = u ? wg_kiln_node(g, n, "WinogradInput", &n->inputs[0], 1, 2) : NULL;
    if (!in || !pass_set_attr_ints(g, in, 0, "pads", pads, 2) || !pass_set_attr_ints(g, in, 1, "tiles", tiles, 2))
        return false;
    gir_value *mm_in[2] = {in->outputs[0], u};
    gir_node *mm = pass_insert_node(g, n, "MatMul", NULL, mm_in, 2, 1, 0);
    if (!mm) return false;
    gir_value *out_in[2] = {mm->outputs[0], gir_input(n, 2)};
    gir_node *out = wg_kiln_node(g, n, "WinogradOutput", out_in, out_in[1] ? 2 : 1, 2);
    if (!out || !pass_set_attr_ints(g, out, 0, "shape", shape, 3) ||
        !pass_set_attr_int(g, out, 1, "block", xt->dims[4].value))
        return false;
    pass_take_outputs(g, out, n);
    return true;
}

kiln_status pass_winograd(kiln_ctx *ctx, gir_graph *g) {
    int done = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        if (!wg_applies(n)) continue;
        if (!wg_rewrite(g, n))
            return kiln_fail(ctx, KILN_ERR_NOMEM, "winograd: out of memory rewriting node '%s'", n->name);
        done++;
        i = -1; /* nodes moved: start over (each rewrite removes one ConvBlocked) */
    }
    return done ? pass_infer_shapes(ctx, g) : KILN_OK;
}
