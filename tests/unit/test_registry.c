/*
** test_registry.c — walks the op registry and fails for an entry that lacks
** a part; checks the ops the foundation promises are all there.
*/
#include <string.h>

#include "harness.h"
#include "ir/op.h"

static void every_entry_is_complete(void) {
    int n = kiln_op_count();
    CHECK(n > 0);
    for (int i = 0; i < n; i++) {
        const kiln_op_def *d = kiln_op_at(i);
        CHECK_MSG(d->name && d->name[0], "entry %d has no name", i);
        CHECK_MSG(d->domain != NULL, "%s: no domain", d->name);
        CHECK_MSG(d->infer != NULL, "%s: no shape inference", d->name);
        CHECK_MSG(d->reference != NULL, "%s: no reference kernel", d->name);
        CHECK_MSG(d->attrs != NULL, "%s: no attribute schema", d->name);
        CHECK_MSG(d->fusion != KILN_FUSE_NONE, "%s: no fusion class", d->name);
        CHECK_MSG(d->dtypes != 0, "%s: no dtypes", d->name);
        CHECK_MSG(d->min_opset >= 1 && d->min_opset <= d->max_opset, "%s: bad opset range", d->name);
        CHECK_MSG(d->min_inputs >= 0 && d->min_inputs <= d->max_inputs, "%s: bad input arity", d->name);
        CHECK_MSG(d->min_outputs >= 1 && d->min_outputs <= d->max_outputs, "%s: bad output arity", d->name);
    }
}

static void no_overlapping_versions(void) {
    int n = kiln_op_count();
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const kiln_op_def *a = kiln_op_at(i), *b = kiln_op_at(j);
            if (strcmp(a->name, b->name) || strcmp(a->domain, b->domain)) continue;
            CHECK_MSG(a->max_opset < b->min_opset || b->max_opset < a->min_opset,
                      "%s: two entries cover the same opset", a->name);
        }
}

static void foundation_ops_present(void) {
    static const char *const ops[] = {
        "Add", "AveragePool", "BatchNormalization", "Cast", "Clip", "Concat", "Constant", "Conv",
        "ConvTranspose", "Div", "Erf", "Expand", "Flatten", "Gather", "Gemm", "GlobalAveragePool",
        "MatMul", "MaxPool", "Mul", "Pad", "Pow", "ReduceMean", "ReduceSum", "Relu", "Reshape",
        "Resize", "Sigmoid", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh",
        "Transpose", "Unsqueeze", "Where", "Shape", "ConstantOfShape", "Range", "Equal", "Less",
        "Greater", "Not", "Neg", "Reciprocal", "Identity", "Dropout", "LayerNormalization", "Gelu",
        "HardSigmoid", "HardSwish", "Exp", "Log", "Min", "Max", "CumSum", "Trilu", "Sin", "Cos",
        "ReduceMax"};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        bool any = false;
        kiln_op_find("", ops[i], 17, &any);
        CHECK_MSG(any, "op %s is missing from the registry", ops[i]);
    }
}

TEST_MAIN(T(every_entry_is_complete), T(no_overlapping_versions), T(foundation_ops_present))
