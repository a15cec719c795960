/*
** simplify.c — nodes that compute their operand unchanged go (see pass.h):
** readers read the operand instead, and a graph output keeps its name
** (pass_bypass_node). A node is only removed when its result has exactly
** the operand's element type and static shape, so broadcasting by the
** constant (x * ones[4,1]) or a conversion keeps the node.
*/
#include <string.h>

#include "ir/tensor.h"
#include "pass.h"

static bool default_domain(const gir_node *n) { return !n->domain[0] || !strcmp(n->domain, "ai.onnx"); }

static bool is_op(const gir_node *n, const char *op) { return default_domain(n) && !strcmp(n->op_type, op); }

/* Whether v is a constant whose every element equals x (at least one). */
static bool const_all(const gir_value *v, double x) {
    if (!v || !v->constant || v->constant->dtype == KILN_STRING || !v->constant->data) return false;
    int64_t count = kiln_numel(v->constant);
    if (count <= 0) return false;
    for (int64_t i = 0; i < count; i++)
        if (kiln_tensor_f64(v->constant, i) != x) return false;
    return true;
}

static bool same_as_output(const gir_node *n, int slot) {
    const gir_value *in = gir_input(n, slot), *out = n->n_outputs > 0 ? n->outputs[0] : NULL;
    return in && out && pass_same_static_type(&in->type, &out->type);
}

/* The input slot of a binary arithmetic node that passes through (x for
** x*1, 1*x, x/1, x+0, 0+x, x-0), or -1. Adding a zero can only change the
** sign of a zero result (-0 + 0 is +0), which compares equal. */
static int arithmetic_identity(const gir_node *n) {
    if (n->n_inputs != 2) return -1;
    bool mul = is_op(n, "Mul"), add = is_op(n, "Add");
    if (!mul && !add && !is_op(n, "Div") && !is_op(n, "Sub")) return -1;
    double unit = mul || is_op(n, "Div") ? 1.0 : 0.0;
    if (const_all(n->inputs[1], unit) && same_as_output(n, 0)) return 0;
    if ((mul || add) && const_all(n->inputs[0], unit) && same_as_output(n, 1)) return 1;
    return -1;
}

static bool value_unused(const gir_graph *g, const gir_value *v) {
    return !v || (!v->is_output && pass_count_uses(g, v) == 0);
}

/* Inference-mode Dropout whose mask nobody reads. */
static bool inference_dropout(const gir_graph *g, const gir_node *n) {
    if (!is_op(n, "Dropout")) return false;
    if (n->opset < 7 && gir_attr_int(n, "is_test", 0) == 0) return false;
    const gir_value *train = n->opset >= 12 ? gir_input(n, 2) : NULL;
    if (train && !(const_all(train, 0.0) && kiln_numel(train->constant) == 1)) return false;
    for (int k = 1; k < n->n_outputs; k++)
        if (!value_unused(g, n->outputs[k])) return false;
    return true;
}

static bool identity_permutation(const gir_node *n) {
    const gir_value *x = gir_input(n, 0);
    if (!x || x->type.rank < 0) return false;
    const int64_t *perm;
    int count = gir_attr_ints(n, "perm", &perm);
    if (count < 0) return x->type.rank <= 1; /* the default reverses the axes */
    if (count != x->type.rank) return false;
    for (int i = 0; i < count; i++)
        if (perm[i] != i) return false;
    return true;
}

/* The input slot that node n passes through unchanged, or -1. */
static int pass_through_slot(const gir_graph *g, const gir_node *n) {
    if (n->n_outputs < 1 || !n->outputs[0] || n->n_inputs < 1) return -1;
    if (is_op(n, "Identity")) return n->n_inputs == 1 && n->n_outputs == 1 ? 0 : -1;
    if (inference_dropout(g, n)) return 0;
    if (is_op(n, "Cast"))
        return gir_input(n, 0) && gir_attr_int(n, "to", -1) == (int64_t)n->inputs[0]->type.dtype && same_as_output(n, 0)
                   ? 0
                   : -1;
    if (is_op(n, "CastLike")) {
        const gir_value *like = gir_input(n, 1);
        return like && like->type.dtype != KILN_UNDEFINED && same_as_output(n, 0) &&
                       like->type.dtype == n->inputs[0]->type.dtype
                   ? 0
                   : -1;
    }
    static const char *const shape_ops[] = {"Reshape", "Expand", "Squeeze", "Unsqueeze", "Flatten"};
    for (size_t i = 0; i < sizeof shape_ops / sizeof shape_ops[0]; i++)
        if (is_op(n, shape_ops[i])) return same_as_output(n, 0) ? 0 : -1;
    if (is_op(n, "Transpose")) return identity_permutation(n) ? 0 : -1;
    return arithmetic_identity(n);
}

kiln_status pass_simplify(kiln_ctx *ctx, gir_graph *g) {
    (void)ctx;
    for (int i = 0; i < g->n_nodes;) {
        gir_node *n = g->nodes[i];
        int slot = pass_through_slot(g, n);
        /* a bypassed node leaves the list: the next one moved into slot i */
        if (slot < 0 || !pass_bypass_node(g, n, slot, 0)) i++;
    }
    return KILN_OK;
}
