/*
** infer_shapes.c — static shape and type inference (see pass.h).
**
** Each node's op infers its outputs from its inputs' dtypes and dims, and
** from their data where the data is known: constants, and small values that
** the pass computes with the reference kernels when all of a node's inputs
** are known (a Constant node, a Concat of constant shapes, ...). That data
** lives only while the pass runs; folding it into the graph is another
** pass's job.
*/
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "pass.h"

#define MAX_IO 64
#define KNOWN_MAX_OUT 4096      /* elements: outputs this small are computed */
#define KNOWN_MAX_IN (1 << 16) /* elements: from inputs no larger than this */

typedef struct infer_state {
    kiln_tensor *known; /* per value id: computed data (owned) */
    bool *have;
} infer_state;


/* Writes the inferred type of output k into its value, unless the value
** declares a different static dtype, rank or extent. */
static kiln_status merge(kiln_ctx *ctx, const gir_node *n, int k, gir_value *v, const kiln_tensor *t) {
    const gir_type *ty = &v->type;
    bool ok = (ty->dtype == KILN_UNDEFINED || ty->dtype == t->dtype) && (ty->rank < 0 || ty->rank == t->rank);
    for (int i = 0; ok && ty->rank >= 0 && i < ty->rank; i++)
        ok = ty->dims[i].value < 0 || ty->dims[i].value == t->dims[i];
    if (!ok) {
        char a[160], b[160];
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "output %d '%s' is declared %s, but the op infers %s", k,
                            v->name, gir_type_str(ty, a, sizeof a), kiln_shape_str(t, b, sizeof b));
    }
    gir_type_from_tensor(&v->type, t);
    return KILN_OK;
}

/* The inputs as tensors; false when one is not static (the node is skipped).
** *all_data tells whether every input's data is known. */
static bool gather_inputs(const gir_node *n, const infer_state *st, kiln_tensor *ts, const kiln_tensor **in,
                          bool *all_data, int64_t *in_elems) {
    *all_data = true;
    *in_elems = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        const gir_value *v = n->inputs[k];
        in[k] = NULL;
        if (!v) continue;
        if (v->constant) {
            ts[k] = *v->constant;
            ts[k].alloc = NULL;
        } else if (st->have[v->id]) {
            ts[k] = st->known[v->id];
            ts[k].alloc = NULL;
        } else if (gir_type_is_static(&v->type)) {
            gir_type_to_tensor(&v->type, &ts[k]);
        } else {
            return false;
        }
        in[k] = &ts[k];
        if (!ts[k].data && kiln_numel(&ts[k]) != 0) *all_data = false;
        *in_elems += kiln_numel(&ts[k]);
    }
    return true;
}

static kiln_status check_result(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *out) {
    for (int k = 0; k < n->n_outputs; k++) {
        const kiln_tensor *t = &out[k];
        if (!n->outputs[k]) continue;
        bool ok = kiln_dtype_valid(t->dtype) && t->rank >= 0 && t->rank <= KILN_MAX_RANK;
        for (int i = 0; ok && i < t->rank; i++) ok = t->dims[i] >= 0;
        if (!ok)
            return kiln_op_fail(ctx, n, KILN_ERR_INTERNAL, "shape inference gave output %d an invalid type", k);
    }
    return KILN_OK;
}

/* Computes a node's (small) outputs from its known inputs. */
static kiln_status compute(kiln_ctx *ctx, const gir_node *n, infer_state *st, const kiln_tensor *const *in,
                           const kiln_tensor *out) {
    for (int k = 0; k < n->n_outputs; k++)
        if (kiln_numel(&out[k]) > KNOWN_MAX_OUT) return KILN_OK;
    kiln_tensor res[MAX_IO];
    kiln_status s = gir_run_node(ctx, n, in, res);
    if (s) return s;
    for (int k = 0; k < n->n_outputs; k++) {
        gir_value *v = n->outputs[k];
        if (!v || st->have[v->id]) {
            kiln_tensor_release(&res[k]);
            continue;
        }
        st->known[v->id] = res[k];
        st->have[v->id] = true;
    }
    return KILN_OK;
}

static kiln_status infer_node(kiln_ctx *ctx, gir_node *n, infer_state *st) {
    if (!n->op) {
        kiln_status s = gir_bind_op(ctx, n);
        if (s) return s;
    }
    if (n->n_inputs > MAX_IO || n->n_outputs > MAX_IO)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "more than %d inputs or outputs", MAX_IO);
    kiln_tensor ts[MAX_IO], out[MAX_IO];
    const kiln_tensor *in[MAX_IO] = {0};
    bool all_data;
    int64_t in_elems;
    if (!gather_inputs(n, st, ts, in, &all_data, &in_elems)) return KILN_OK;
    memset(out, 0, sizeof(kiln_tensor) * (size_t)n->n_outputs);
    kiln_status s = n->op->infer(ctx, n, in, out);
    if (s == KILN_ERR_DYNAMIC) return KILN_OK;
    if (!s) s = check_result(ctx, n, out);
    for (int k = 0; k < n->n_outputs && !s; k++)
        if (n->outputs[k]) s = merge(ctx, n, k, n->outputs[k], &out[k]);
    if (!s && all_data && in_elems <= KNOWN_MAX_IN && n->op->reference) s = compute(ctx, n, st, in, out);
    return s;
}

kiln_status pass_infer_shapes(kiln_ctx *ctx, gir_graph *g) {
    size_t nv = (size_t)g->n_values + 1;
    infer_state st = {kiln_calloc(nv, sizeof(kiln_tensor)), kiln_calloc(nv, sizeof(bool))};
    kiln_status s = KILN_OK;
    if (!st.known || !st.have) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory inferring shapes");
    for (int i = 0; i < g->n_nodes && !s; i++) s = infer_node(ctx, g->nodes[i], &st);
    if (st.known)
        for (int v = 0; v < g->n_values; v++) kiln_tensor_release(&st.known[v]);
    kiln_free(st.known);
    kiln_free(st.have);
    return s;
}
