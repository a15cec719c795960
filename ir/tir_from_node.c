/*
** tir_from_node.c — one graph node to a tensor-IR function through its
** op's compute definition.
**
** The function's inputs are one placeholder per present input of the node,
** in slot order (an omitted optional input gets none); its outputs are the
** node's present outputs, in slot order. An input's type is its in_types
** entry, or (in_types or the entry NULL) the graph value's static type. It
** is bound to constant data when its in_types entry carries data, or else
** when the graph value is a constant (an initializer); the placeholder
** points at that tensor, which must outlive the function. The outputs are checked against the op's own
** shape inference, and the function is verified, so a broken definition is
** an internal error here rather than wrong code later.
*/
#include <string.h>

#include "ctx.h"
#include "op.h"
#include "tensor.h"
#include "tir.h"

static kiln_status tf_input_type(kiln_ctx *ctx, const gir_node *n, int i, const kiln_tensor *const *in_types,
                                 kiln_tensor *ty, const kiln_tensor **constant) {
    const gir_value *v = n->inputs[i];
    char d[256];
    const kiln_tensor *given = in_types ? in_types[i] : NULL;
    if (given) {
        kiln_tensor_init(ty, given->dtype, given->rank, given->dims);
    } else if (v->constant) {
        kiln_tensor_init(ty, v->constant->dtype, v->constant->rank, v->constant->dims);
    } else if (gir_type_is_static(&v->type)) {
        gir_type_to_tensor(&v->type, ty);
    } else {
        return kiln_fail(ctx, KILN_ERR_DYNAMIC, "%s: input %d ('%s') has no static shape",
                         gir_node_desc(n, d, sizeof d), i, v->name);
    }
    *constant = given && given->data ? given : v->constant;
    if (*constant && !kiln_tensor_same_shape(*constant, ty)) *constant = NULL;
    if (*constant && (*constant)->dtype != ty->dtype) *constant = NULL;
    return KILN_OK;
}

/* Placeholders for the present inputs; ph[i] stays NULL for omitted ones. */
static kiln_status tf_placeholders(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in_types,
                                   tir_func *f, tir_tensor **ph) {
    for (int i = 0; i < n->n_inputs; i++) {
        if (!n->inputs[i]) continue;
        kiln_tensor ty;
        const kiln_tensor *c = NULL;
        kiln_status s = tf_input_type(ctx, n, i, in_types, &ty, &c);
        if (s) return s;
        ph[i] = tir_placeholder(f, n->inputs[i]->name, ty.dtype, ty.rank, ty.dims, c);
        if (!ph[i]) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory building the tensor IR");
    }
    return KILN_OK;
}

/* The outputs must have the types the op's inference gives. */
static kiln_status tf_check_outputs(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *ph, tir_tensor **outs) {
    kiln_tensor *want = kiln_calloc((size_t)n->n_outputs, sizeof *want);
    kiln_tensor *types = kiln_calloc((size_t)(n->n_inputs ? n->n_inputs : 1), sizeof *types);
    const kiln_tensor **ptrs = kiln_calloc((size_t)(n->n_inputs ? n->n_inputs : 1), sizeof *ptrs);
    kiln_status s = want && types && ptrs ? KILN_OK : kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; !s && i < n->n_inputs; i++)
        if (ph[i]) {
            kiln_tensor_init(&types[i], ph[i]->dtype, ph[i]->rank, ph[i]->dims);
            types[i].data = ph[i]->constant ? ph[i]->constant->data : NULL;
            ptrs[i] = &types[i];
        }
    if (!s && n->op->infer(ctx, n, ptrs, want) == KILN_OK) {
        char d[256];
        for (int i = 0; !s && i < n->n_outputs; i++) {
            const tir_tensor *t = outs[i];
            if (!n->outputs[i] || !t) continue;
            bool same = t->dtype == want[i].dtype && t->rank == want[i].rank;
            for (int k = 0; same && k < t->rank; k++) same = t->dims[k] == want[i].dims[k];
            if (!same)
                s = kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: output %d of the compute definition has the wrong type",
                              gir_node_desc(n, d, sizeof d), i);
        }
    }
    kiln_free(want);
    kiln_free(types);
    kiln_free(ptrs);
    return s;
}

static kiln_status tf_mark_outputs(kiln_ctx *ctx, const gir_node *n, tir_func *f, tir_tensor **outs) {
    char d[256];
    for (int i = 0; i < n->n_outputs; i++) {
        if (!n->outputs[i]) continue;
        if (!outs[i])
            return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: the compute definition does not give output %d",
                             gir_node_desc(n, d, sizeof d), i);
        if (!outs[i]->stage)
            return kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: output %d of the compute definition is an input",
                             gir_node_desc(n, d, sizeof d), i);
        if (!tir_mark_output(f, outs[i])) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    }
    return KILN_OK;
}

static kiln_status tf_build(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in_types, tir_func *f) {
    int ni = n->n_inputs, no = n->n_outputs;
    tir_tensor **ph = kiln_calloc((size_t)(ni ? ni : 1), sizeof *ph);
    tir_tensor **outs = kiln_calloc((size_t)(no ? no : 1), sizeof *outs);
    kiln_status s = ph && outs ? KILN_OK : kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    char d[256];
    if (!s) s = tf_placeholders(ctx, n, in_types, f, ph);
    if (!s && ni > 0 && ph[0] && !(n->op->dtypes & KILN_DT(ph[0]->dtype)))
        s = kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: element type %s is not supported",
                      gir_node_desc(n, d, sizeof d), kiln_dtype_name(ph[0]->dtype));
    if (!s) s = n->op->compute(ctx, f, n, ph, outs);
    if (!s && f->eb.failed) s = kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory building the tensor IR",
                                          gir_node_desc(n, d, sizeof d));
    if (!s) s = tf_mark_outputs(ctx, n, f, outs);
    if (!s) s = tf_check_outputs(ctx, n, ph, outs);
    if (!s && tir_verify(ctx, f))
        s = kiln_wrap(ctx, KILN_ERR_INTERNAL, "%s: invalid compute definition", gir_node_desc(n, d, sizeof d));
    kiln_free(ph);
    kiln_free(outs);
    return s;
}

kiln_status tir_from_node(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in_types,
                          tir_func **out) {
    char d[256];
    const kiln_op_def *op = n->op;
    if (!op) op = kiln_op_find(n->domain, n->op_type, n->opset, NULL);
    if (!op) return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: unknown op", gir_node_desc(n, d, sizeof d));
    if (!op->compute)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: the op has no compute definition",
                         gir_node_desc(n, d, sizeof d));
    gir_node bound = *n;
    bound.op = op;
    tir_func *f = tir_func_new(n->name && n->name[0] ? n->name : n->op_type);
    if (!f) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = tf_build(ctx, &bound, in_types, f);
    if (s) {
        tir_func_free(f);
        return s;
    }
    *out = f;
    return KILN_OK;
}
