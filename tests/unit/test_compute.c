/*
** test_compute.c — every compute definition against its op's reference
** kernel, in the style of ggml's test-backend-ops.
**
** For every registry row that has a compute definition there are cases: a
** one-node graph in the text form whose element type T runs over the types
** the op takes (and shapes with broadcasting, extents of 1, primes, sizes
** that are no multiple of 16). Each case runs the reference kernel
** (gir_run_node) and the compute definition (tir_from_node) on every
** backend, and compares by normalized error: max|a - b| / max(max|b|, 1e-6)
** at most 1e-5 for f32 (looser for the half types), exact for integers and
** bools; NaN must meet NaN and infinities must match.
**
** A backend runs a tensor-IR function; the list is below. Inputs named with
** a "c_" prefix are bound to the function as constants (the way weights
** are); other name parts pick the random data: "pos" positive, "nz" nonzero,
** "ixN" integers in [-N, N), "uxN" in [0, N), "big" integers over the
** type's whole range, "nan" floats with NaN and infinities mixed in.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_llvm.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/lir.h"
#include "ir/mem.h"
#include "ir/sched.h"
#include "ir/tensor.h"
#include "ir/tir.h"
#include "tir_eval.h"

/* ---- backends ---- */

typedef kiln_status (*tc_backend_fn)(kiln_ctx *ctx, const tir_func *f, const kiln_tensor *in, kiln_tensor *out);

typedef struct tc_backend {
    const char *name;
    tc_backend_fn run;
} tc_backend;

/* Output buffers shaped like f's outputs, filled with a pattern so that an
** element a kernel forgets to write shows. */
static kiln_status alloc_outputs(kiln_ctx *ctx, const tir_func *f, kiln_tensor *out) {
    for (int k = 0; k < f->n_outputs; k++) {
        const tir_tensor *t = f->outputs[k];
        kiln_tensor_init(&out[k], t->dtype, t->rank, t->dims);
        kiln_status s = kiln_tensor_alloc(ctx, &out[k]);
        if (s) return s;
        size_t nb = kiln_nbytes(&out[k]);
        if (nb) memset(out[k].data, 0xa5, nb);
    }
    return KILN_OK;
}

/* The argument list of a lowered kernel: inputs, then outputs. */
static void kernel_args(const tir_func *f, const kiln_tensor *in, kiln_tensor *out, void **args) {
    for (int k = 0; k < f->n_inputs; k++) args[k] = in[k].data;
    for (int k = 0; k < f->n_outputs; k++) args[f->n_inputs + k] = out[k].data;
}

/* The default schedule (an empty trace) on the loop-IR interpreter. */
static kiln_status run_lir(kiln_ctx *ctx, const tir_func *f, const kiln_tensor *in, kiln_tensor *out) {
    lir_func *lf = NULL;
    void *args[128];
    if (f->n_inputs + f->n_outputs > 128) return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "too many arguments");
    kiln_status s = sch_lower(ctx, f, NULL, &lf);
    if (!s) s = alloc_outputs(ctx, f, out);
    if (!s) {
        kernel_args(f, in, out, args);
        s = lir_interp_run(ctx, lf, args);
    }
    lir_func_free(lf);
    return s;
}

/* The default schedule compiled by the LLVM backend and run natively. */
static kiln_status run_jit(kiln_ctx *ctx, const tir_func *f, const kiln_tensor *in, kiln_tensor *out) {
    lir_func *lf = NULL;
    cg_module *m = NULL;
    void *args[128];
    cg_options o;
    cg_options_default(&o);
    o.opt_level = 1;
    o.fast_math = false; /* contraction would move integer Resize's exact f64 ties */
    if (f->n_inputs + f->n_outputs > 128) return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "too many arguments");
    kiln_status s = sch_lower(ctx, f, NULL, &lf);
    if (!s) s = lir_simplify(ctx, lf);
    if (!s) s = cg_llvm_jit(ctx, &lf, 1, &o, &m);
    cg_kernel_fn fn = s ? NULL : cg_module_lookup(m, lf->name);
    if (!s && !fn) s = kiln_fail(ctx, KILN_ERR_INTERNAL, "kernel '%s' not found in the module", lf->name);
    if (!s) s = alloc_outputs(ctx, f, out);
    if (!s) {
        kernel_args(f, in, out, args);
        fn(args);
    }
    cg_module_free(m);
    lir_func_free(lf);
    return s;
}

static const tc_backend k_backends[] = {
    {"tir-eval", te_run},
    {"lir-interp", run_lir},
    {"llvm-jit", run_jit},
};
#define N_BACKENDS (int)(sizeof k_backends / sizeof k_backends[0])

/* ---- cases ---- */

typedef struct tc_case {
    int opset;
    const char *text;     /* graph lines; T is the element type under test */
    uint32_t dtypes;      /* T's candidates; 0: the op's dtype set */
    uint32_t unsupported; /* types whose compute definition may say KILN_ERR_UNSUPPORTED */
} tc_case;

#define F KILN_DT_FLOATS
#define INTS KILN_DT_INTS
#define SINTS KILN_DT_SINTS
#define NUM KILN_DT_NUMERIC
#define BOOLT KILN_DT(KILN_BOOL)
#define ALLT (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL))

#define UN(op, v) {v, "input %x : T[2,7,13]\n%y = " op "(%x)\noutput %y", 0, 0}
#define UNA(op, v, attrs) {v, "input %x : T[37]\n%y = " op "(%x) {" attrs "}\noutput %y", 0, 0}
#define BIN(op, v) {v, "input %a : T[3,1,7]\ninput %b : T[1,13,7]\n%y = " op "(%a, %b)\noutput %y", 0, 0}

static const tc_case k_cases[] = {
    /* unary math */
    UN("Sqrt", 13), UN("Exp", 13), UN("Log", 13), UN("Erf", 13), UN("Tanh", 13), UN("Sigmoid", 13),
    UN("Sin", 13), UN("Cos", 13), UN("Tan", 13), UN("Asin", 13), UN("Acos", 13), UN("Atan", 13),
    UN("Sinh", 13), UN("Cosh", 13), UN("Asinh", 13), UN("Acosh", 13), UN("Atanh", 13),
    UN("Reciprocal", 13), UN("Ceil", 13), UN("Floor", 13), UN("Round", 13), UN("Softplus", 13),
    UN("Softsign", 13), UN("Mish", 18), UN("Elu", 13), UN("LeakyRelu", 13), UN("ThresholdedRelu", 13),
    UN("Swish", 24), UN("Selu", 13), UN("HardSigmoid", 13), UN("HardSwish", 14), UN("Celu", 13),
    UN("Gelu", 20), UN("Shrink", 13), UN("Abs", 13), UN("Neg", 13), UN("Relu", 14), UN("Sign", 13),
    UN("Not", 13), UN("BitwiseNot", 18), UN("IsNaN", 13), UN("IsInf", 13),
    UNA("Elu", 13, "alpha=0.5"), UNA("LeakyRelu", 13, "alpha=0.25"), UNA("ThresholdedRelu", 13, "alpha=0.5"),
    UNA("Swish", 24, "alpha=1.5"), UNA("Selu", 5, ""), UNA("Selu", 13, "alpha=1.5, gamma=2.0"),
    UNA("HardSigmoid", 13, "alpha=0.3, beta=0.4"), UNA("Celu", 13, "alpha=2.0"),
    UNA("Gelu", 20, "approximate=\"tanh\""), UNA("Shrink", 13, "lambd=1.5, bias=0.5"),
    UNA("IsInf", 13, "detect_negative=0"), UNA("IsInf", 13, "detect_positive=0"),
    {13, "input %nan_x : T[37]\n%y = IsNaN(%nan_x)\noutput %y", 0, 0},
    {13, "input %nan_x : T[37]\n%y = IsInf(%nan_x)\noutput %y", 0, 0},
    {13, "input %nan_x : T[37]\n%y = HardSigmoid(%nan_x)\noutput %y", 0, 0},
    {13, "input %nan_x : T[37]\n%y = Relu(%nan_x)\noutput %y", 0, 0},
    {13, "input %big_x : T[37]\n%y = Abs(%big_x)\noutput %y", INTS, 0},
    {13, "input %big_x : T[37]\n%y = Neg(%big_x)\noutput %y", SINTS, 0},
    /* binary, broadcasting both ways */
    BIN("Add", 14), BIN("Sub", 14), BIN("Mul", 14), BIN("Equal", 13), BIN("Less", 13), BIN("Greater", 13),
    BIN("LessOrEqual", 16), BIN("GreaterOrEqual", 16), BIN("And", 7), BIN("Or", 7), BIN("Xor", 7),
    BIN("BitwiseAnd", 18), BIN("BitwiseOr", 18), BIN("BitwiseXor", 18),
    {14, "input %a : T[13,7]\ninput %nz_b : T[7]\n%y = Div(%a, %nz_b)\noutput %y", 0, 0},
    {14, "input %big_a : T[37]\ninput %big_b : T[37]\n%y = Mul(%big_a, %big_b)\noutput %y", INTS, 0},
    {14, "input %big_a : T[37]\ninput %big_b : T[1]\n%y = Add(%big_a, %big_b)\noutput %y", INTS, 0},
    {14, "input %big_a : T[37]\ninput %nz_b : T[37]\n%y = Div(%big_a, %nz_b)\noutput %y", INTS, 0},
    {13, "input %a : T[3,7]\ninput %nz_b : T[3,1]\n%y = Mod(%a, %nz_b)\noutput %y", INTS, 0},
    {13, "input %a : T[3,7]\ninput %nz_b : T[3,1]\n%y = Mod(%a, %nz_b) {fmod=1}\noutput %y", NUM, 0},
    {13, "input %big_a : T[37]\ninput %nz_b : T[37]\n%y = Mod(%big_a, %nz_b)\noutput %y", SINTS, 0},
    {15, "input %pos_a : T[5,7]\ninput %b : T[7]\n%y = Pow(%pos_a, %b)\noutput %y", 0, INTS},
    {15, "input %a : T[2,7]\ninput %ix3_b : i64[7]\n%y = Pow(%a, %ix3_b)\noutput %y", F, 0},
    {15, "input %ux9_a : T[2,7]\ninput %b : f32[7]\n%y = Pow(%ux9_a, %b)\noutput %y", INTS, 0},
    {6, "input %a : T[2,3,4,5]\ninput %b : T[3,4]\n%y = Add(%a, %b) {broadcast=1, axis=1}\noutput %y", F, 0},
    {6, "input %a : T[2,3,4,5]\ninput %b : T[5]\n%y = Mul(%a, %b) {broadcast=1}\noutput %y", F, 0},
    {6, "input %a : T[2,3]\ninput %b : T[2,3]\n%y = Sub(%a, %b)\noutput %y", F, 0},
    {13, "input %nan_a : T[37]\ninput %nan_b : T[37]\n%y = Equal(%nan_a, %nan_b)\noutput %y", F, 0},
    {11, "input %big_a : T[37]\ninput %ux70_b : T[37]\n%y = BitShift(%big_a, %ux70_b) {direction=\"LEFT\"}\n"
         "output %y", 0, 0},
    {11, "input %big_a : T[37]\ninput %ux70_b : T[37]\n%y = BitShift(%big_a, %ux70_b) {direction=\"RIGHT\"}\n"
         "output %y", 0, 0},
    {16, "input %x : T[2,3,7]\ninput %s : T[3,1]\n%y = PRelu(%x, %s)\noutput %y", 0, 0},
    {16, "input %x : T[2,3,7]\ninput %s : T[1]\n%y = PRelu(%x, %s)\noutput %y", 0, 0},
    {6, "input %x : T[2,3,7]\ninput %s : T[1,1]\n%y = PRelu(%x, %s)\noutput %y", F, 0},
    {28, "input %a : T[3,13]\ninput %b : T[3,13]\n%y = SwiGLU(%a, %b) {alpha=1.5}\noutput %y", 0, 0},
    {13, "input %a : T[3,1,7]\ninput %b : T[13,1]\ninput %c : T[7]\n%y = Max(%a, %b, %c)\noutput %y", 0, 0},
    {13, "input %nan_a : T[37]\ninput %nan_b : T[37]\n%y = Max(%nan_a, %nan_b)\noutput %y", F, 0},
    {13, "input %a : T[3,1,7]\ninput %b : T[13,1]\n%y = Min(%a, %b)\noutput %y", 0, 0},
    {13, "input %a : T[3,1,7]\ninput %b : T[13,1]\ninput %c : T[7]\n%y = Sum(%a, %b, %c)\noutput %y", 0, 0},
    {13, "input %a : T[3,1,7]\ninput %b : T[13,1]\ninput %c : T[7]\n%y = Mean(%a, %b, %c)\noutput %y", 0, 0},
    {13, "input %a : T[5]\n%y = Sum(%a)\noutput %y", 0, 0},
    /* misc */
    {19, "input %x : T[3,7]\n%y = Cast(%x) {to=1}\noutput %y", ALLT, 0},
    {19, "input %x : T[3,7]\n%y = Cast(%x) {to=10}\noutput %y", ALLT, 0},
    {19, "input %x : T[3,7]\n%y = Cast(%x) {to=16}\noutput %y", ALLT, 0},
    {19, "input %x : T[3,7]\n%y = Cast(%x) {to=11}\noutput %y", ALLT, 0},
    {19, "input %nan_x : T[37]\n%y = Cast(%nan_x) {to=7}\noutput %y", ALLT, 0},
    {19, "input %nan_x : T[37]\n%y = Cast(%nan_x) {to=3}\noutput %y", ALLT, 0},
    {19, "input %nan_x : T[37]\n%y = Cast(%nan_x) {to=13}\noutput %y", ALLT, 0},
    {19, "input %nan_x : T[37]\n%y = Cast(%nan_x) {to=12}\noutput %y", ALLT, 0},
    {19, "input %nan_x : T[37]\n%y = Cast(%nan_x) {to=9}\noutput %y", ALLT, 0},
    {19, "input %big_x : T[37]\n%y = Cast(%big_x) {to=2}\noutput %y", ALLT, 0},
    {19, "input %big_x : T[37]\n%y = Cast(%big_x) {to=5}\noutput %y", ALLT, 0},
    {19, "input %big_x : T[37]\n%y = Cast(%big_x) {to=1}\noutput %y", ALLT, 0},
    {19, "input %x : T[3,7]\ninput %like : i16[1]\n%y = CastLike(%x, %like)\noutput %y", ALLT, 0},
    {19, "input %x : T[3,7]\ninput %like : f16[1]\n%y = CastLike(%x, %like)\noutput %y", ALLT, 0},
    {1, "input %x : T[3,7]\n%y = ai.onnx.ml::Binarizer(%x) {threshold=0.5}\noutput %y", 0, 0},
    {13, "input %x : T[3,7]\ninput %lo : T[]\ninput %hi : T[]\n%y = Clip(%x, %lo, %hi)\noutput %y", 0, 0},
    {13, "input %x : T[3,7]\ninput %lo : T[]\n%y = Clip(%x, %lo)\noutput %y", 0, 0},
    {13, "input %x : T[3,7]\ninput %c_hi : T[1]\n%y = Clip(%x, _, %c_hi)\noutput %y", 0, 0},
    {6, "input %x : T[3,7]\n%y = Clip(%x) {min=-0.5, max=0.75}\noutput %y", F, 0},
    {6, "input %nan_x : T[37]\n%y = Clip(%nan_x) {min=-0.5}\noutput %y", F, 0},
    {16, "input %c : bool[3,1,7]\ninput %a : T[13,1]\ninput %b : T[7]\n%y = Where(%c, %a, %b)\noutput %y", ALLT, 0},
    {16, "input %x : T[3,7]\n%y = Identity(%x)\noutput %y", ALLT, 0},
    {13, "input %x : T[3,7]\n%y, %m = Dropout(%x)\noutput %y\noutput %m", NUM, 0},
    {7, "input %x : T[3,7]\n%y, %m = Dropout(%x) {ratio=0.25}\noutput %y\noutput %m", F, 0},
    {13, "input %x : T[3,7]\nconst %r : f32[] = {0.0}\nconst %t : bool[] = {true}\n"
         "%y = Dropout(%x, %r, %t)\noutput %y", F, 0},
    /* shapes and views */
    {14, "input %x : T[2,3,7]\nconst %s : i64[3] = {7, -1, 2}\n%y = Reshape(%x, %s)\noutput %y", ALLT, 0},
    {14, "input %x : T[2,3,7]\nconst %s : i64[2] = {0, -1}\n%y = Reshape(%x, %s)\noutput %y", ALLT, 0},
    {4, "input %x : T[2,3,7]\n%y = Reshape(%x) {shape=[7, 0, 2]}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,3,7]\n%y = Flatten(%x) {axis=2}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,3,7]\n%y = Flatten(%x) {axis=0}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,1,7,1]\nconst %a : i64[1] = {-1}\n%y = Squeeze(%x, %a)\noutput %y", ALLT, 0},
    {13, "input %x : T[2,1,7,1]\n%y = Squeeze(%x)\noutput %y", ALLT, 0},
    {11, "input %x : T[2,1,7,1]\n%y = Squeeze(%x) {axes=[1]}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,7]\nconst %a : i64[2] = {0, 3}\n%y = Unsqueeze(%x, %a)\noutput %y", ALLT, 0},
    {11, "input %x : T[2,7]\n%y = Unsqueeze(%x) {axes=[-1]}\noutput %y", ALLT, 0},
    {15, "input %x : T[2,3,7,5]\n%y = Shape(%x) {start=1, end=-1}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,3,7]\n%y = Shape(%x)\noutput %y", ALLT, 0},
    {13, "input %x : T[2,3,7]\n%y = Size(%x)\noutput %y", ALLT, 0},
    {20, "const %s : i64[3] = {2, 1, 7}\n%y = ConstantOfShape(%s)\noutput %y", 0, 0},
    {20, "const %s : i64[2] = {3, 7}\n%y = ConstantOfShape(%s) {value=i32[1] {-7}}\noutput %y", 0, 0},
    {20, "const %s : i64[2] = {3, 7}\n%y = ConstantOfShape(%s) {value=f16[1] {2.5}}\noutput %y", 0, 0},
    {20, "const %s : i64[0] = {}\n%y = ConstantOfShape(%s) {value=bool[1] {true}}\noutput %y", 0, 0},
    {11, "const %a : T[] = {3}\nconst %b : T[] = {40}\nconst %d : T[] = {3}\n%y = Range(%a, %b, %d)\noutput %y",
     F | KILN_DT_SINTS | KILN_DT(KILN_U8) | KILN_DT(KILN_U16) | KILN_DT(KILN_U32), 0},
    {11, "const %a : T[] = {10}\nconst %b : T[] = {-7}\nconst %d : T[] = {-2}\n%y = Range(%a, %b, %d)\noutput %y",
     F | KILN_DT_SINTS, 0},
    {11, "const %a : T[] = {0.5}\nconst %b : T[] = {4.25}\nconst %d : T[] = {0.3}\n%y = Range(%a, %b, %d)\noutput %y",
     F, 0},
    {9, "input %x : T[5,7]\n%y = EyeLike(%x) {k=2}\noutput %y", 0, 0},
    {9, "input %x : T[7,5]\n%y = EyeLike(%x) {k=-1, dtype=9}\noutput %y", 0, 0},
    /* data movement */
    {13, "input %x : T[2,3,7]\n%y = Transpose(%x)\noutput %y", ALLT, 0},
    {13, "input %x : T[2,3,7,5]\n%y = Transpose(%x) {perm=[1, 3, 0, 2]}\noutput %y", ALLT, 0},
    {13, "input %a : T[2,3,7]\ninput %b : T[2,1,7]\ninput %c : T[2,0,7]\ninput %d : T[2,5,7]\n"
         "%y = Concat(%a, %b, %c, %d) {axis=1}\noutput %y", ALLT, 0},
    {13, "input %a : T[2,3]\ninput %b : T[2,4]\n%y = Concat(%a, %b) {axis=-1}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,13,3]\nconst %s : i64[3] = {2, 7, 4}\n%a, %b, %c = Split(%x, %s) {axis=1}\n"
         "output %a\noutput %b\noutput %c", ALLT, 0},
    {18, "input %x : T[2,13]\n%a, %b, %c = Split(%x) {axis=-1, num_outputs=3}\noutput %a\noutput %b\noutput %c",
     ALLT, 0},
    {11, "input %x : T[6,5]\n%a, %b = Split(%x) {split=[1, 5]}\noutput %a\noutput %b", ALLT, 0},
    {13, "input %x : T[7,13,5]\nconst %st : i64[3] = {1, -2, 100}\nconst %en : i64[3] = {6, 0, -100}\n"
         "const %ax : i64[3] = {0, 1, 2}\nconst %sp : i64[3] = {2, -3, -2}\n%y = Slice(%x, %st, %en, %ax, %sp)\n"
         "output %y", ALLT, 0},
    {13, "input %x : T[7,13]\nconst %st : i64[1] = {3}\nconst %en : i64[1] = {9}\nconst %ax : i64[1] = {-1}\n"
         "%y = Slice(%x, %st, %en, %ax)\noutput %y", ALLT, 0},
    {9, "input %x : T[7,13]\n%y = Slice(%x) {starts=[1, 2], ends=[4, 1000]}\noutput %y", ALLT, 0},
    {13, "input %x : T[3,7]\nconst %p : i64[4] = {1, 2, 2, 0}\ninput %v : T[]\n%y = Pad(%x, %p, %v)\noutput %y",
     ALLT & ~KILN_DT(KILN_BOOL), 0},
    {13, "input %x : T[3,7]\nconst %p : i64[4] = {1, -2, 2, 3}\n%y = Pad(%x, %p)\noutput %y", ALLT, 0},
    {13, "input %x : T[3,7]\nconst %p : i64[4] = {2, 5, 2, 4}\n%y = Pad(%x, %p) {mode=\"reflect\"}\noutput %y",
     ALLT, 0},
    {13, "input %x : T[3,7]\nconst %p : i64[4] = {2, 5, 4, 1}\n%y = Pad(%x, %p) {mode=\"edge\"}\noutput %y", ALLT, 0},
    {19, "input %x : T[3,7]\nconst %p : i64[4] = {4, 9, 5, -2}\n%y = Pad(%x, %p) {mode=\"wrap\"}\noutput %y", ALLT, 0},
    {18, "input %x : T[3,5,7]\nconst %p : i64[2] = {2, 3}\nconst %v : T[] = {1}\nconst %a : i64[1] = {1}\n"
         "%y = Pad(%x, %p, %v, %a)\noutput %y", ALLT, 0},
    {2, "input %x : T[3,7]\n%y = Pad(%x) {pads=[0, 1, 2, 3], value=1.5}\noutput %y", F, 0},
    {13, "input %x : T[3,1,7]\nconst %r : i64[3] = {2, 3, 1}\n%y = Tile(%x, %r)\noutput %y", ALLT, 0},
    {13, "input %x : T[3,1]\nconst %s : i64[3] = {2, 3, 7}\n%y = Expand(%x, %s)\noutput %y", ALLT, 0},
    {13, "input %x : T[3,5]\nconst %s : i64[1] = {1}\n%y = Expand(%x, %s)\noutput %y", ALLT, 0},
    {13, "input %x : T[2,12,3,5]\n%y = DepthToSpace(%x) {blocksize=2}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,12,3,5]\n%y = DepthToSpace(%x) {blocksize=2, mode=\"CRD\"}\noutput %y", ALLT, 0},
    {13, "input %x : T[2,3,6,4]\n%y = SpaceToDepth(%x) {blocksize=2}\noutput %y", ALLT, 0},
    {14, "input %x : T[2,5,7]\n%y = Trilu(%x)\noutput %y", ALLT, 0},
    {14, "input %x : T[2,5,7]\nconst %k : i64[] = {-2}\n%y = Trilu(%x, %k) {upper=0}\noutput %y", ALLT, 0},
    {18, "input %x : T[5,7]\nconst %s : i64[2] = {3, 11}\n%y = CenterCropPad(%x, %s)\noutput %y", ALLT, 0},
    {18, "input %x : T[5,7,4]\nconst %s : i64[1] = {8}\n%y = CenterCropPad(%x, %s) {axes=[-2]}\noutput %y", ALLT, 0},
    {10, "input %x : T[6,4,3]\ninput %ux7_l : i64[4]\n%y = ReverseSequence(%x, %ux7_l)\noutput %y", ALLT, 0},
    {10, "input %x : T[4,6,3]\ninput %ux7_l : i32[4]\n%y = ReverseSequence(%x, %ux7_l) {batch_axis=0, time_axis=1}\n"
         "output %y", ALLT, 0},
    /* gathers */
    {13, "input %x : T[5,7,3]\ninput %ix7_i : i64[2,4]\n%y = Gather(%x, %ix7_i) {axis=1}\noutput %y", ALLT, 0},
    {13, "input %x : T[5,7]\ninput %ix5_i : i32[]\n%y = Gather(%x, %ix5_i)\noutput %y", ALLT, 0},
    {13, "input %x : T[5,7]\ninput %c_ix5_i : i64[3]\n%y = Gather(%x, %c_ix5_i)\noutput %y", ALLT, 0},
    {13, "input %x : T[5,7]\ninput %ix5_i : i64[8,5]\n%y = GatherElements(%x, %ix5_i)\noutput %y", ALLT, 0},
    {13, "input %x : T[5,7]\ninput %ix7_i : i32[3,7]\n%y = GatherElements(%x, %ix7_i) {axis=-1}\noutput %y", ALLT, 0},
    {13, "input %x : T[5,7,3]\ninput %ix5_i : i64[4,2,2]\n%y = GatherND(%x, %ix5_i)\noutput %y", ALLT, 0},
    {13, "input %x : T[5,7,3]\ninput %ix3_i : i64[5,4,1]\n%y = GatherND(%x, %ix3_i) {batch_dims=1}\noutput %y",
     ALLT, 0},
    {11, "input %ix9_i : T[3,4]\nconst %d : i64[] = {7}\nconst %v : f32[2] = {-1, 2}\n"
         "%y = OneHot(%ix9_i, %d, %v)\noutput %y", 0, 0},
    {11, "input %ix9_i : T[3,4]\nconst %d : f32[] = {5}\ninput %v : i32[2]\n%y = OneHot(%ix9_i, %d, %v) {axis=1}\n"
         "output %y", 0, 0},
    /* reductions */
    {13, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceSum(%x, %a)\noutput %y", 0, 0},
    {13, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceSum(%x, %a) {keepdims=0}\noutput %y", 0, 0},
    {11, "input %x : T[3,7,5]\n%y = ReduceSum(%x) {axes=[2]}\noutput %y", 0, 0},
    {13, "input %x : T[3,7,5]\n%y = ReduceSum(%x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceMean(%x, %a)\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceMean(%x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceMean(%x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceMean(%x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceMax(%x, %a)\noutput %y", ALLT, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceMax(%x, %a) {keepdims=0}\noutput %y", ALLT, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceMax(%x) {axes=[2]}\noutput %y", ALLT, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceMax(%x) {keepdims=0}\noutput %y", ALLT, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceMin(%x, %a)\noutput %y", ALLT, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceMin(%x, %a) {keepdims=0}\noutput %y", ALLT, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceMin(%x) {axes=[2]}\noutput %y", ALLT, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceMin(%x) {keepdims=0}\noutput %y", ALLT, 0},
    {18, "input %ux3_x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceProd(%ux3_x, %a)\noutput %y", 0, 0},
    {18, "input %ux3_x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceProd(%ux3_x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %ux3_x : T[3,7,5]\n%y = ReduceProd(%ux3_x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %ux3_x : T[3,7,5]\n%y = ReduceProd(%ux3_x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceL1(%x, %a)\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceL1(%x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceL1(%x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceL1(%x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceL2(%x, %a)\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceL2(%x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceL2(%x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceL2(%x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %pos_x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceLogSum(%pos_x, %a)\noutput %y", 0, 0},
    {18, "input %pos_x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceLogSum(%pos_x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %pos_x : T[3,7,5]\n%y = ReduceLogSum(%pos_x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %pos_x : T[3,7,5]\n%y = ReduceLogSum(%pos_x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceLogSumExp(%x, %a)\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceLogSumExp(%x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceLogSumExp(%x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceLogSumExp(%x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[2] = {0, -1}\n%y = ReduceSumSquare(%x, %a)\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\nconst %a : i64[1] = {1}\n%y = ReduceSumSquare(%x, %a) {keepdims=0}\noutput %y", 0, 0},
    {17, "input %x : T[3,7,5]\n%y = ReduceSumSquare(%x) {axes=[2]}\noutput %y", 0, 0},
    {18, "input %x : T[3,7,5]\n%y = ReduceSumSquare(%x) {keepdims=0}\noutput %y", 0, 0},
    {18, "input %x : T[3,7]\nconst %a : i64[0] = {}\n%y = ReduceSum(%x, %a) {noop_with_empty_axes=1}\noutput %y", 0, 0},
    {18, "input %x : T[3,0,5]\nconst %a : i64[1] = {1}\n%y = ReduceMax(%x, %a)\noutput %y", 0, 0},
    {18, "input %x : T[3,0,5]\nconst %a : i64[1] = {1}\n%y = ReduceSum(%x, %a)\noutput %y", 0, 0},
    {18, "input %nan_x : T[5,13]\nconst %a : i64[1] = {1}\n%y = ReduceMax(%nan_x, %a)\noutput %y", F, 0},
    {18, "input %nan_x : T[5,13]\nconst %a : i64[1] = {1}\n%y = ReduceLogSumExp(%nan_x, %a)\noutput %y", F, 0},
    {18, "input %big_x : T[5,13]\nconst %a : i64[1] = {1}\n%y = ReduceSum(%big_x, %a)\noutput %y", INTS, 0},
    {13, "input %x : T[3,7,5]\n%y = ArgMax(%x) {axis=1}\noutput %y", 0, 0},
    {13, "input %ix2_x : T[3,7,5]\n%y = ArgMax(%ix2_x) {axis=-1, keepdims=0, select_last_index=1}\noutput %y", 0, 0},
    {13, "input %x : T[3,7,5]\n%y = ArgMin(%x) {axis=1, keepdims=0}\noutput %y", 0, 0},
    {13, "input %ix2_x : T[3,7,5]\n%y = ArgMin(%ix2_x) {axis=0, select_last_index=1}\noutput %y", 0, 0},
    {13, "input %nan_x : T[5,13]\n%y = ArgMax(%nan_x) {axis=1}\noutput %y", F, 0},
    {13, "input %nan_x : T[5,13]\n%y = ArgMin(%nan_x) {axis=1, select_last_index=1}\noutput %y", F, 0},
    {14, "input %x : T[3,13,5]\nconst %a : i32[] = {1}\n%y = CumSum(%x, %a)\noutput %y", 0, 0},
    {14, "input %x : T[3,13,5]\nconst %a : i64[1] = {-1}\n%y = CumSum(%x, %a) {exclusive=1}\noutput %y", 0, 0},
    {14, "input %x : T[3,13,5]\nconst %a : i64[] = {0}\n%y = CumSum(%x, %a) {reverse=1}\noutput %y", 0, 0},
    {14, "input %x : T[3,13,5]\nconst %a : i64[] = {1}\n%y = CumSum(%x, %a) {reverse=1, exclusive=1}\noutput %y", 0, 0},
    {26, "input %ux3_x : T[3,9]\nconst %a : i64[] = {1}\n%y = CumProd(%ux3_x, %a)\noutput %y", 0, 0},
    {26, "input %x : T[3,9]\nconst %a : i64[] = {1}\n%y = CumProd(%x, %a) {exclusive=1, reverse=1}\noutput %y", F, 0},
    /* matrix products */
    {13, "input %a : T[3,7]\ninput %b : T[7,13]\n%y = MatMul(%a, %b)\noutput %y", 0, 0},
    {13, "input %a : T[2,1,5,7]\ninput %b : T[3,7,4]\n%y = MatMul(%a, %b)\noutput %y", 0, 0},
    {13, "input %a : T[7]\ninput %b : T[2,7,5]\n%y = MatMul(%a, %b)\noutput %y", 0, 0},
    {13, "input %a : T[2,5,7]\ninput %b : T[7]\n%y = MatMul(%a, %b)\noutput %y", 0, 0},
    {13, "input %a : T[37]\ninput %c_b : T[37]\n%y = MatMul(%a, %c_b)\noutput %y", 0, 0},
    {8, "input %a : T[3,7]\ninput %b : T[7,13]\n%y = MatMul(%a, %b)\noutput %y", 0, 0},
    {13, "input %big_a : T[5,7]\ninput %big_b : T[7,3]\n%y = MatMul(%big_a, %big_b)\noutput %y",
     KILN_DT(KILN_I32) | KILN_DT(KILN_I64) | KILN_DT(KILN_U32) | KILN_DT(KILN_U64), 0},
    {13, "input %a : T[7,3]\ninput %b : T[13,7]\ninput %c : T[13]\n"
         "%y = Gemm(%a, %b, %c) {transA=1, transB=1, alpha=0.5, beta=2.0}\noutput %y", 0, 0},
    {13, "input %a : T[3,7]\ninput %c_b : T[7,13]\n%y = Gemm(%a, %c_b)\noutput %y", 0, 0},
    {13, "input %a : T[3,7]\ninput %b : T[7,13]\ninput %c : T[3,1]\n%y = Gemm(%a, %b, %c)\noutput %y", 0, 0},
    {13, "input %a : T[3,7]\ninput %b : T[7,13]\ninput %c : T[]\n%y = Gemm(%a, %b, %c) {alpha=2.0}\noutput %y", 0, 0},
    {9, "input %a : T[3,7]\ninput %b : T[7,13]\ninput %c : T[3,13]\n%y = Gemm(%a, %b, %c) {beta=0.25}\noutput %y", 0, 0},
    /* convolution */
    {11, "input %x : T[1,3,13,11]\ninput %c_w : T[4,3,3,3]\n%y = Conv(%x, %c_w) {pads=[1, 1, 1, 1], strides=[2, 2]}\n"
         "output %y", 0, 0},
    {11, "input %x : T[2,3,7,9]\ninput %w : T[5,3,2,3]\ninput %b : T[5]\n%y = Conv(%x, %w, %b)\noutput %y", 0, 0},
    {11, "input %x : T[2,6,7,9]\ninput %w : T[6,1,3,3]\ninput %b : T[6]\n"
         "%y = Conv(%x, %w, %b) {group=6, pads=[1, 0, 1, 2], dilations=[2, 1]}\noutput %y", 0, 0},
    {11, "input %x : T[1,4,8,7]\ninput %w : T[6,2,3,3]\n%y = Conv(%x, %w) {group=2, auto_pad=\"SAME_UPPER\", strides=[2, 2]}\n"
         "output %y", 0, 0},
    {11, "input %x : T[1,4,8,7]\ninput %w : T[6,4,3,2]\n%y = Conv(%x, %w) {auto_pad=\"SAME_LOWER\"}\noutput %y", 0, 0},
    {11, "input %x : T[2,3,17]\ninput %w : T[5,3,4]\ninput %b : T[5]\n%y = Conv(%x, %w, %b) {pads=[2, 1], strides=[3]}\n"
         "output %y", 0, 0},
    {11, "input %x : T[1,2,5,6,7]\ninput %w : T[3,2,2,3,2]\n%y = Conv(%x, %w) {pads=[0, 1, 1, 1, 0, 0]}\noutput %y", 0, 0},
    {11, "input %x : T[1,3,5,7]\ninput %w : T[3,4,3,3]\n"
         "%y = ConvTranspose(%x, %w) {strides=[2, 2], pads=[1, 0, 1, 0], output_padding=[1, 0]}\noutput %y", 0, 0},
    {11, "input %x : T[1,4,5,5]\ninput %w : T[4,3,3,3]\ninput %b : T[6]\n"
         "%y = ConvTranspose(%x, %w, %b) {group=2, dilations=[2, 1]}\noutput %y", 0, 0},
    {11, "input %x : T[1,2,4,5]\ninput %w : T[2,3,3,3]\n"
         "%y = ConvTranspose(%x, %w) {strides=[2, 3], output_shape=[9, 13], auto_pad=\"SAME_UPPER\"}\noutput %y", 0, 0},
    {11, "input %x : T[2,3,7]\ninput %c_w : T[3,2,4]\n%y = ConvTranspose(%x, %c_w) {strides=[3], pads=[1, 2]}\noutput %y",
     0, 0},
    /* pooling */
    {19, "input %x : T[2,3,13,11]\n%y = AveragePool(%x) {kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]}\n"
         "output %y", 0, 0},
    {19, "input %x : T[2,3,13,11]\n%y = AveragePool(%x) {kernel_shape=[3, 2], pads=[1, 1, 2, 1], count_include_pad=1, "
         "ceil_mode=1, strides=[2, 3]}\noutput %y", 0, 0},
    {19, "input %x : T[1,2,17]\n%y = AveragePool(%x) {kernel_shape=[4], dilations=[2], pads=[2, 3], strides=[2]}\n"
         "output %y", 0, 0},
    {19, "input %x : T[1,2,7,8]\n%y = AveragePool(%x) {kernel_shape=[3, 3], auto_pad=\"SAME_UPPER\"}\noutput %y", 0, 0},
    {12, "input %x : T[2,3,13,11]\n%y, %i = MaxPool(%x) {kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]}\n"
         "output %y\noutput %i", 0, 0},
    {12, "input %ix3_x : T[1,2,9,8]\n%y, %i = MaxPool(%ix3_x) {kernel_shape=[2, 3], storage_order=1, ceil_mode=1, "
         "strides=[2, 2]}\noutput %y\noutput %i", 0, 0},
    {12, "input %x : T[1,2,17]\n%y = MaxPool(%x) {kernel_shape=[3], dilations=[3], pads=[1, 2]}\noutput %y", 0, 0},
    {12, "input %x : T[1,2,5,6,7]\n%y = MaxPool(%x) {kernel_shape=[2, 2, 3], strides=[1, 2, 2]}\noutput %y", 0, 0},
    {18, "input %x : T[1,3,9,8]\n%y = LpPool(%x) {kernel_shape=[3, 2], pads=[1, 0, 1, 1], p=3}\noutput %y", 0, 0},
    {18, "input %x : T[1,3,9,8]\n%y = LpPool(%x) {kernel_shape=[2, 2], strides=[2, 2]}\noutput %y", 0, 0},
    {13, "input %x : T[2,3,7,9]\n%y = GlobalAveragePool(%x)\noutput %y", 0, 0},
    {13, "input %x : T[2,3,7]\n%y = GlobalMaxPool(%x)\noutput %y", 0, 0},
    {13, "input %x : T[2,3,7,5]\n%y = GlobalLpPool(%x) {p=3}\noutput %y", 0, 0},
    /* normalization */
    {15, "input %x : T[2,3,7,5]\ninput %s : T[3]\ninput %b : T[3]\ninput %m : T[3]\ninput %pos_v : T[3]\n"
         "%y = BatchNormalization(%x, %s, %b, %m, %pos_v) {epsilon=0.01}\noutput %y", 0, 0},
    {7, "input %x : T[2,3,4]\ninput %s : T[3,4]\ninput %b : T[3,4]\ninput %m : T[3,4]\ninput %pos_v : T[3,4]\n"
        "%y = BatchNormalization(%x, %s, %b, %m, %pos_v) {spatial=0}\noutput %y", 0, 0},
    {15, "input %x : T[2,3]\ninput %s : T[3]\ninput %b : T[3]\ninput %m : T[3]\ninput %pos_v : T[3]\n"
         "%y, %rm, %rv = BatchNormalization(%x, %s, %b, %m, %pos_v)\noutput %y\noutput %rm\noutput %rv", 0, 0},
    {17, "input %x : T[2,3,37]\ninput %s : T[37]\ninput %b : T[37]\n%y = LayerNormalization(%x, %s, %b)\noutput %y", 0, 0},
    {17, "input %x : T[2,3,7]\ninput %s : T[3,1]\n%y, %m, %r = LayerNormalization(%x, %s) {axis=1, epsilon=0.1}\n"
         "output %y\noutput %m\noutput %r", 0, 0},
    {23, "input %x : T[2,3,13]\ninput %s : T[13]\n%y = RMSNormalization(%x, %s)\noutput %y", 0, 0},
    {13, "input %x : T[2,3,7,5]\ninput %s : T[3]\ninput %b : T[3]\n%y = InstanceNormalization(%x, %s, %b)\noutput %y", 0, 0},
    {18, "input %x : T[2,6,7]\ninput %s : T[3]\ninput %b : T[3]\n%y = GroupNormalization(%x, %s, %b) {num_groups=3}\n"
         "output %y", 0, 0},
    {21, "input %x : T[2,6,5,3]\ninput %s : T[6]\ninput %b : T[6]\n%y = GroupNormalization(%x, %s, %b) {num_groups=2}\n"
         "output %y", 0, 0},
    {13, "input %x : T[3,7,5]\n%y = LpNormalization(%x) {axis=1, p=1}\noutput %y", 0, 0},
    {13, "input %x : T[3,7,5]\n%y = LpNormalization(%x)\noutput %y", 0, 0},
    {13, "input %x : T[2,3,7,5]\n%y = MeanVarianceNormalization(%x)\noutput %y", 0, 0},
    {13, "input %x : T[2,3,7]\n%y = MeanVarianceNormalization(%x) {axes=[1, 2]}\noutput %y", 0, 0},
    {13, "input %x : T[2,7,3,5]\n%y = LRN(%x) {size=3, alpha=0.001, beta=0.6, bias=2.0}\noutput %y", 0, 0},
    {13, "input %x : T[2,7,4]\n%y = LRN(%x) {size=4}\noutput %y", 0, 0},
    {11, "input %x : T[2,3,7]\n%y = Softmax(%x)\noutput %y", 0, 0},
    {13, "input %x : T[2,13,7]\n%y = Softmax(%x) {axis=1}\noutput %y", 0, 0},
    {11, "input %x : T[2,3,7]\n%y = LogSoftmax(%x) {axis=0}\noutput %y", 0, 0},
    {13, "input %x : T[2,13,7]\n%y = LogSoftmax(%x)\noutput %y", 0, 0},
    {13, "input %ix2_x : T[2,13,7]\n%y = Hardmax(%ix2_x) {axis=1}\noutput %y", 0, 0},
    {11, "input %ix2_x : T[2,3,7]\n%y = Hardmax(%ix2_x)\noutput %y", 0, 0},
    {13, "input %nan_x : T[5,7]\n%y = Hardmax(%nan_x)\noutput %y", 0, 0},
    {13, "input %nan_x : T[5,7]\n%y = Softmax(%nan_x)\noutput %y", 0, 0},
    /* attention */
    {23, "input %q : T[2,3,5,7]\ninput %k : T[2,3,6,7]\ninput %v : T[2,3,6,4]\n%y = Attention(%q, %k, %v)\noutput %y", 0, 0},
    {23, "input %q : T[1,4,5,8]\ninput %k : T[1,2,5,8]\ninput %v : T[1,2,5,3]\ninput %ux2_m : bool[5,5]\n"
         "%y = Attention(%q, %k, %v, %ux2_m) {is_causal=1, scale=0.3}\noutput %y", 0, 0},
    {23, "input %q : T[2,5,12]\ninput %k : T[2,7,12]\ninput %v : T[2,7,9]\ninput %m : T[2,1,5,4]\n"
         "%y = Attention(%q, %k, %v, %m) {q_num_heads=3, kv_num_heads=3, softcap=2.0}\noutput %y", 0, 0},
    {23, "input %q : T[1,2,7,3]\ninput %k : T[1,2,9,3]\ninput %v : T[1,2,9,5]\ninput %m : T[1,1,1,9]\n"
         "%y = Attention(%q, %k, %v, %m) {left_window_size=2, right_window_size=1}\noutput %y", 0, 0},
    /* kiln's own ops: a fused kernel (its members' definitions composed) and the blocked layout */
    {17, "input %a : T[3,1,7]\ninput %b : T[1,13,7]\n%y = ai.kiln::FusedKernel@1(%a, %b) {body=graph \"body\" {\n"
         "input %p : T[3,1,7]\ninput %q : T[1,13,7]\n%s = Add(%p, %q)\n%t = Neg(%s)\noutput %t\n}}\noutput %y", F, 0},
    {17, "input %x : T[1,5,3,4]\n%y = ai.kiln::LayoutToBlocked@1(%x) {block=4}\noutput %y", KILN_DT(KILN_F32), 0},
    {17, "input %x : T[1,2,3,4,4]\n%y = ai.kiln::LayoutFromBlocked@1(%x) {channels=5}\noutput %y", KILN_DT(KILN_F32), 0},
    {17, "input %x : T[1,2,5,5,4]\ninput %w : T[2,2,3,3,4,4]\ninput %b : T[2,4]\n"
         "%y = ai.kiln::ConvBlocked@1(%x, %w, %b) {pads=[1,1,1,1]}\noutput %y", KILN_DT(KILN_F32), 0},
    {17, "input %x : T[1,2,5,7,4]\n%y = ai.kiln::WinogradInput@1(%x) {pads=[1,2], tiles=[3,4]}\noutput %y",
     KILN_DT(KILN_F32), 0},
    {17, "input %m : T[16,12,8]\ninput %b : T[2,4]\n"
         "%y = ai.kiln::WinogradOutput@1(%m, %b) {shape=[1,5,7], block=4}\noutput %y", KILN_DT(KILN_F32), 0},
    /* resize */
    {13, "input %x : T[1,2,5,7]\nconst %sz : i64[4] = {1, 2, 9, 4}\n%y = Resize(%x, _, _, %sz)\noutput %y", ALLT & ~BOOLT, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sz : i64[4] = {1, 2, 9, 13}\n"
         "%y = Resize(%x, _, _, %sz) {coordinate_transformation_mode=\"asymmetric\", nearest_mode=\"ceil\"}\noutput %y",
     ALLT & ~BOOLT, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sc : f32[4] = {1, 1, 1.5, 0.6}\n"
         "%y = Resize(%x, _, %sc) {coordinate_transformation_mode=\"align_corners\", nearest_mode=\"round_prefer_ceil\"}\n"
         "output %y", ALLT & ~BOOLT, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sc : f32[4] = {1, 1, 2, 1.5}\n%y = Resize(%x, _, %sc) {mode=\"linear\"}\noutput %y",
     0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sz : i64[4] = {1, 2, 3, 11}\n"
         "%y = Resize(%x, _, _, %sz) {mode=\"linear\", coordinate_transformation_mode=\"align_corners\"}\noutput %y", 0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sz : i64[4] = {1, 2, 8, 3}\n"
         "%y = Resize(%x, _, _, %sz) {mode=\"linear\", coordinate_transformation_mode=\"pytorch_half_pixel\"}\noutput %y",
     0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sc : f32[4] = {1, 1, 1.7, 0.8}\n"
         "%y = Resize(%x, _, %sc) {mode=\"cubic\", exclude_outside=1, cubic_coeff_a=-0.5}\noutput %y", 0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sz : i64[4] = {1, 2, 9, 12}\n"
         "%y = Resize(%x, _, _, %sz) {mode=\"cubic\", coordinate_transformation_mode=\"half_pixel_symmetric\"}\noutput %y",
     0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %roi : f32[8] = {0, 0, 0.2, -0.3, 1, 1, 0.9, 1.4}\nconst %sz : i64[4] = {1, 2, 6, 9}\n"
         "%y = Resize(%x, %roi, _, %sz) {mode=\"linear\", coordinate_transformation_mode=\"tf_crop_and_resize\", "
         "extrapolation_value=-2.5}\noutput %y", 0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %roi : f32[8] = {0, 0, 0.2, -0.3, 1, 1, 0.9, 1.4}\nconst %sz : i64[4] = {1, 2, 6, 9}\n"
         "%y = Resize(%x, %roi, _, %sz) {coordinate_transformation_mode=\"tf_crop_and_resize\", extrapolation_value=3}\n"
         "output %y", 0, 0},
    {13, "input %x : T[1,2,5,7]\nconst %sc : f32[4] = {1, 1, 2, 2}\n"
         "%y = Resize(%x, _, %sc) {coordinate_transformation_mode=\"tf_half_pixel_for_nn\", nearest_mode=\"floor\"}\n"
         "output %y", 0, 0},
    {18, "input %x : T[1,2,5,7]\nconst %sz : i64[2] = {9, 9}\n"
         "%y = Resize(%x, _, _, %sz) {axes=[3, 2], mode=\"linear\", keep_aspect_ratio_policy=\"not_larger\"}\noutput %y",
     0, 0},
    {10, "input %x : T[1,2,5,7]\nconst %sc : f32[4] = {1, 1, 2, 1.5}\n%y = Resize(%x, %sc) {mode=\"linear\"}\noutput %y", 0, 0},
    {10, "input %x : T[1,2,5,7]\nconst %sc : f32[4] = {1, 1, 0.5, 1.5}\n%y = Resize(%x, %sc)\noutput %y", 0, 0},
    {9, "input %x : T[1,2,3,4]\nconst %sc : f32[4] = {1, 1, 2, 3}\n%y = Upsample(%x, %sc)\noutput %y", 0, 0},
    {7, "input %x : T[1,2,3,4]\n%y = Upsample(%x) {scales=[1.0, 1.0, 2.0, 2.5], mode=\"linear\"}\noutput %y", 0, 0},
    /* quantized */
    {13, "input %x : T[3,7]\nconst %s : f32[] = {0.05}\nconst %z : u8[] = {128}\n%y = QuantizeLinear(%x, %s, %z)\noutput %y",
     F | KILN_DT(KILN_I32), 0},
    {13, "input %x : T[2,3,5]\nconst %s : f32[3] = {0.03, 0.1, 0.25}\nconst %z : i8[3] = {-3, 0, 7}\n"
         "%y = QuantizeLinear(%x, %s, %z) {axis=1}\noutput %y", KILN_DT(KILN_F32) | KILN_DT(KILN_I32), 0},
    {21, "input %x : T[2,5,3]\nconst %s : f32[2,3,3] = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, "
         "1.4, 1.5, 1.6, 1.7, 1.8}\n%y = QuantizeLinear(%x, %s) {axis=1, block_size=2, output_dtype=5}\noutput %y",
     KILN_DT(KILN_F32), 0},
    {21, "input %x : T[3,7]\nconst %s : T[] = {0.125}\nconst %z : i16[] = {-300}\n%y = QuantizeLinear(%x, %s, %z)\n"
         "output %y", F, 0},
    {19, "input %x : T[3,7]\nconst %s : f32[] = {0.05}\n%y = DequantizeLinear(%x, %s)\noutput %y",
     KILN_DT(KILN_I8) | KILN_DT(KILN_U8) | KILN_DT(KILN_I16) | KILN_DT(KILN_U16) | KILN_DT(KILN_I32), 0},
    {19, "input %x : T[2,3,5]\ninput %pos_s : f16[3]\ninput %z : T[3]\n%y = DequantizeLinear(%x, %pos_s, %z) {axis=1}\n"
         "output %y", KILN_DT(KILN_I8) | KILN_DT(KILN_U8) | KILN_DT(KILN_I16) | KILN_DT(KILN_U16), 0},
    {19, "input %x : T[3,7]\ninput %pos_s : f64[]\ninput %z : T[]\n%y = DequantizeLinear(%x, %pos_s, %z)\noutput %y",
     KILN_DT(KILN_I8) | KILN_DT(KILN_U8), 0},
    {10, "input %a : T[5,7]\ninput %b : i8[7,3]\ninput %az : T[]\ninput %bz : i8[3]\n%y = MatMulInteger(%a, %b, %az, %bz)\n"
         "output %y", 0, 0},
    {10, "input %a : T[2,5,7]\ninput %b : u8[7,3]\ninput %az : T[5]\n%y = MatMulInteger(%a, %b, %az)\noutput %y", 0, 0},
    {10, "input %x : T[1,3,7,7]\ninput %w : u8[4,3,3,3]\ninput %xz : T[]\ninput %wz : u8[4]\n"
         "%y = ConvInteger(%x, %w, %xz, %wz) {pads=[1, 1, 1, 1]}\noutput %y", 0, 0},
    {10, "input %x : T[1,2,5,6]\ninput %w : i8[2,2,2,2]\n%y = ConvInteger(%x, %w) {strides=[2, 2]}\noutput %y", 0, 0},
    /* einsum */
    {12, "input %a : T[3,7]\ninput %b : T[7,5]\n%y = Einsum(%a, %b) {equation=\"ij,jk->ik\"}\noutput %y", 0, 0},
    {12, "input %a : T[2,3,7]\ninput %b : T[2,7,5]\n%y = Einsum(%a, %b) {equation=\"bij, bjk -> bik\"}\noutput %y", 0, 0},
    {12, "input %a : T[5,5]\n%y = Einsum(%a) {equation=\"ii->i\"}\noutput %y", 0, 0},
    {12, "input %a : T[3,7]\n%y = Einsum(%a) {equation=\"ij->ji\"}\noutput %y", 0, 0},
    {12, "input %a : T[2,1,3,7]\ninput %b : T[4,7,5]\n%y = Einsum(%a, %b) {equation=\"...ij,...jk\"}\noutput %y", 0, 0},
    {12, "input %a : T[13]\ninput %b : T[13]\n%y = Einsum(%a, %b) {equation=\"i,i\"}\noutput %y", 0, 0},
    {12, "input %a : T[3,4]\ninput %b : T[4,5]\ninput %c : T[5]\n%y = Einsum(%a, %b, %c) {equation=\"ij,jk,k->i\"}\n"
         "output %y", 0, 0},
    /* window generators */
    {17, "const %n : T[] = {13}\n%y = HannWindow(%n)\noutput %y", 0, 0},
    {17, "const %n : T[] = {10}\n%y = HammingWindow(%n) {periodic=0, output_datatype=11}\noutput %y", 0, 0},
    {17, "const %n : T[] = {7}\n%y = BlackmanWindow(%n) {output_datatype=10}\noutput %y", 0, 0},
    {17, "const %n : T[] = {7}\n%y = HannWindow(%n) {output_datatype=16}\noutput %y", 0, 0},
    {11, "input %x : T[3,7]\n%y, %s, %z = DynamicQuantizeLinear(%x)\noutput %y\noutput %s\noutput %z", 0, 0},
    {11, "input %nan_x : T[37]\n%y, %s, %z = DynamicQuantizeLinear(%nan_x)\noutput %y\noutput %s\noutput %z", 0, 0},
    {11, "input %pos_x : T[2,5]\n%y = DynamicQuantizeLinear(%pos_x)\noutput %y", 0, 0},
    /* rotary embedding */
    {23, "input %x : T[2,3,5,8]\ninput %c : T[2,5,4]\ninput %s : T[2,5,4]\n%y = RotaryEmbedding(%x, %c, %s)\noutput %y",
     0, 0},
    {23, "input %x : T[2,5,12]\ninput %c : T[9,2]\ninput %s : T[9,2]\ninput %ux9_p : i64[2,5]\n"
         "%y = RotaryEmbedding(%x, %c, %s, %ux9_p) {num_heads=2, rotary_embedding_dim=4, interleaved=1}\noutput %y", 0, 0},
    {23, "input %x : T[1,2,3,7]\ninput %c : T[6,2]\ninput %s : T[6,2]\ninput %ux6_p : i64[1,3]\n"
         "%y = RotaryEmbedding(%x, %c, %s, %ux6_p) {rotary_embedding_dim=4}\noutput %y", 0, 0},
    {10, "input %a : T[5,7]\nconst %as : f32[] = {0.02}\ninput %az : T[]\ninput %b : T[7,3]\nconst %bs : f32[] = {0.03}\n"
         "input %bz : T[]\nconst %ys : f32[] = {0.5}\ninput %yz : u8[]\n"
         "%y = QLinearMatMul(%a, %as, %az, %b, %bs, %bz, %ys, %yz)\noutput %y", 0, 0},
    {10, "input %a : T[2,5,7]\ninput %pos_as : f32[5]\ninput %az : T[5]\ninput %b : T[7,3]\ninput %pos_bs : f32[3]\n"
         "input %bz : T[3]\nconst %ys : f32[] = {7.5}\ninput %yz : i8[]\n"
         "%y = QLinearMatMul(%a, %pos_as, %az, %b, %pos_bs, %bz, %ys, %yz)\noutput %y", 0, 0},
    {10, "input %x : T[1,3,7,7]\nconst %xs : f32[] = {0.02}\ninput %xz : T[]\ninput %w : u8[4,3,3,3]\n"
         "input %pos_ws : f32[4]\ninput %wz : u8[4]\nconst %ys : f32[] = {3.5}\ninput %yz : i8[]\ninput %b : i32[4]\n"
         "%y = QLinearConv(%x, %xs, %xz, %w, %pos_ws, %wz, %ys, %yz, %b) {pads=[1, 1, 1, 1]}\noutput %y", 0, 0},
    {10, "input %x : T[1,2,5,6]\nconst %xs : f32[] = {0.1}\ninput %xz : T[]\ninput %w : i8[2,2,2,2]\n"
         "const %ws : f32[] = {0.05}\ninput %wz : i8[]\nconst %ys : f32[] = {0.25}\ninput %yz : u8[]\n"
         "%y = QLinearConv(%x, %xs, %xz, %w, %ws, %wz, %ys, %yz) {strides=[2, 2]}\noutput %y", 0, 0},
};
#define N_CASES (int)(sizeof k_cases / sizeof k_cases[0])

/* ---- random inputs ---- */

static uint64_t g_rng = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static double rnd_unit(void) { return (double)(rnd() >> 11) / 9007199254740992.0; }

/* The number after `key` in name ("ix7" -> 7), or -1. */
static long name_num(const char *name, const char *key) {
    const char *p = strstr(name, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static double gen_float(const char *name) {
    if (strstr(name, "nan")) {
        static const double special[] = {NAN, INFINITY, -INFINITY, 0.0, -0.0};
        uint64_t r = rnd() % 10;
        if (r < 5) return special[r];
    }
    if (strstr(name, "pos")) return 0.25 + 2.75 * rnd_unit();
    if (name_num(name, "ix") >= 0) {
        long k = name_num(name, "ix");
        return (double)((int64_t)(rnd() % (uint64_t)(2 * k)) - k);
    }
    double v = -3.0 + 6.0 * rnd_unit();
    if (strstr(name, "nz") && fabs(v) < 0.25) v = v < 0 ? -0.5 : 0.5;
    return v;
}

static int64_t gen_int(const char *name, kiln_dtype t) {
    bool sgn = kiln_dtype_is_signed(t);
    long k;
    if (t == KILN_BOOL) return (int64_t)(rnd() & 1);
    if (strstr(name, "big")) return (int64_t)rnd(); /* stored wrapped to the type */
    if ((k = name_num(name, "ux")) >= 0) return (int64_t)(rnd() % (uint64_t)k);
    if ((k = name_num(name, "ix")) >= 0) return (int64_t)(rnd() % (uint64_t)(2 * k)) - k;
    int64_t v = sgn ? (int64_t)(rnd() % 101) - 50 : (int64_t)(rnd() % 101);
    if (strstr(name, "pos")) v = 1 + (int64_t)(rnd() % 20);
    if (strstr(name, "nz") && v == 0) v = 3;
    return v;
}

static kiln_status gen_tensor(kiln_ctx *ctx, const gir_value *v, kiln_tensor *t) {
    gir_type_to_tensor(&v->type, t);
    kiln_status s = kiln_tensor_alloc(ctx, t);
    if (s) return s;
    int64_t count = kiln_numel(t);
    for (int64_t i = 0; i < count; i++) {
        if (kiln_dtype_is_float(t->dtype)) kiln_store_f64(t->dtype, t->data, i, gen_float(v->name));
        else kiln_store_i64(t->dtype, t->data, i, gen_int(v->name, t->dtype));
    }
    return KILN_OK;
}

/* ---- comparison ---- */

static double tolerance(kiln_dtype t) {
    switch (t) {
    case KILN_F32: return 1e-5;
    case KILN_F64: return 1e-12;
    case KILN_F16: return 2e-3;
    case KILN_BF16: return 1.6e-2;
    default: return 0;
    }
}

/* Normalized error of got against want, or INFINITY on a NaN/inf or
** integer mismatch; *where gets the worst element. */
static double compare(const kiln_tensor *got, const kiln_tensor *want, int64_t *where) {
    int64_t count = kiln_numel(want);
    double maxb = 0, maxd = 0;
    *where = -1;
    if (got->dtype != want->dtype || !kiln_tensor_same_shape(got, want)) return INFINITY;
    for (int64_t i = 0; i < count; i++) {
        if (!kiln_dtype_is_float(want->dtype)) {
            if (kiln_load_i64(got->dtype, got->data, i) != kiln_load_i64(want->dtype, want->data, i)) {
                *where = i;
                return INFINITY;
            }
            continue;
        }
        double a = kiln_load_f64(got->dtype, got->data, i), b = kiln_load_f64(want->dtype, want->data, i);
        if (isnan(b) || isnan(a) || isinf(b) || isinf(a)) {
            bool same = (isnan(a) && isnan(b)) || a == b;
            if (!same) {
                *where = i;
                return INFINITY;
            }
            continue;
        }
        if (fabs(b) > maxb) maxb = fabs(b);
        if (fabs(a - b) > maxd) maxd = fabs(a - b), *where = i;
    }
    return maxd / (maxb > 1e-6 ? maxb : 1e-6);
}

/* ---- running one case at one element type ---- */

typedef struct tc_run {
    kiln_ctx *ctx;
    gir_graph *g;
    gir_node *n;
    int n_in;
    kiln_tensor *data;    /* per node input: the values */
    kiln_tensor *types;   /* per node input: the type given to tir_from_node */
    bool *owned;
    kiln_tensor ref[16];
    int n_ref;
} tc_run;

static bool g_covered[4096];
static int g_runs, g_unsupported;
static double g_worst[KILN_DTYPE_COUNT]; /* the largest error seen per output type */

static char *subst_type(const char *text, int opset, kiln_dtype t) {
    const char *name = kiln_dtype_name(t);
    size_t cap = strlen(text) * 4 + 128;
    char *out = malloc(cap);
    size_t k = (size_t)snprintf(out, cap, "graph \"t\" {\n  opset %d\n  opset ai.onnx.ml 3\n", opset);
    for (const char *p = text; *p; p++) {
        bool type_t = *p == 'T' && p[1] == '[' && (p == text || p[-1] == ' ');
        if (type_t) k += (size_t)snprintf(out + k, cap - k, "%s", name);
        else out[k++] = *p;
    }
    snprintf(out + k, cap - k, "\n}\n");
    return out;
}

static void run_free(tc_run *r) {
    for (int i = 0; i < r->n_in; i++)
        if (r->owned && r->owned[i]) kiln_tensor_release(&r->data[i]);
    for (int i = 0; i < r->n_ref; i++) kiln_tensor_release(&r->ref[i]);
    free(r->data);
    free(r->types);
    free(r->owned);
    gir_graph_free(r->g);
}

static bool run_setup(tc_run *r, const tc_case *c, kiln_dtype t) {
    char *text = subst_type(c->text, c->opset, t);
    kiln_status s = gir_parse(r->ctx, text, &r->g);
    CHECK_MSG(s == KILN_OK, "parse: %s\n%s", kiln_errmsg(r->ctx), text);
    free(text);
    if (s) return false;
    r->n = r->g->nodes[r->g->n_nodes - 1];
    s = gir_bind_op(r->ctx, r->n);
    CHECK_MSG(s == KILN_OK, "bind: %s", kiln_errmsg(r->ctx));
    if (s) return false;
    r->n_in = r->n->n_inputs;
    r->data = calloc((size_t)r->n_in + 1, sizeof *r->data);
    r->types = calloc((size_t)r->n_in + 1, sizeof *r->types);
    r->owned = calloc((size_t)r->n_in + 1, sizeof *r->owned);
    for (int i = 0; i < r->n_in; i++) {
        const gir_value *v = r->n->inputs[i];
        if (!v) continue;
        if (v->constant) {
            r->data[i] = *v->constant;
            r->data[i].alloc = NULL;
        } else {
            s = gen_tensor(r->ctx, v, &r->data[i]);
            CHECK(s == KILN_OK);
            if (s) return false;
            r->owned[i] = true;
        }
        r->types[i] = r->data[i];
        bool as_const = v->constant || !strncmp(v->name, "c_", 2);
        if (!as_const) r->types[i].data = NULL;
    }
    return true;
}

static void report(const char *what, const tc_case *c, kiln_dtype t, const char *detail) {
    fprintf(stderr, "  %s [%s] opset %d: %s\n    %s\n", what, kiln_dtype_name(t), c->opset, detail, c->text);
}

static void check_backend(tc_run *r, const tc_case *c, kiln_dtype t, const tc_backend *be, const tir_func *f) {
    kiln_tensor in[64], out[16];
    int k = 0;
    memset(out, 0, sizeof out);
    for (int i = 0; i < r->n_in && k < 64; i++)
        if (r->n->inputs[i]) in[k++] = r->data[i];
    kiln_status s = be->run(r->ctx, f, in, out);
    char msg[2048];
    if (s) {
        snprintf(msg, sizeof msg, "%s failed: %s", be->name, kiln_errmsg(r->ctx));
        report("FAIL", c, t, msg);
        kt_failures++;
        return;
    }
    for (int o = 0, j = 0; o < r->n->n_outputs; o++) {
        if (!r->n->outputs[o]) continue;
        int64_t where;
        double err = compare(&out[j], &r->ref[o], &where);
        if (err > g_worst[r->ref[o].dtype]) g_worst[r->ref[o].dtype] = err;
        if (err > tolerance(r->ref[o].dtype)) {
            double got = where >= 0 ? kiln_load_f64(out[j].dtype, out[j].data, where) : 0;
            double want = where >= 0 ? kiln_load_f64(r->ref[o].dtype, r->ref[o].data, where) : 0;
            snprintf(msg, sizeof msg, "%s output %d: error %.3g (element %lld: got %.9g, want %.9g)", be->name, o,
                     err, (long long)where, got, want);
            report("FAIL", c, t, msg);
            kt_failures++;
        }
        j++;
    }
    for (int j = 0; j < f->n_outputs; j++) kiln_tensor_release(&out[j]);
}

static void check_tir(tc_run *r, const tc_case *c, kiln_dtype t, tir_func *f) {
    uint64_t h = tir_hash(f);
    CHECK(h == tir_hash(f));
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    tir_print(mem, f);
    fclose(mem);
    CHECK(len > 0 && strstr(buf, "output"));
    if (getenv("KILN_TEST_PRINT")) fprintf(stderr, "[%s] %s", kiln_dtype_name(t), buf);
    free(buf);
    (void)r;
    (void)c;
}

/* KILN_TEST_BACKENDS="tir-eval,lir-interp" limits the backends run. */
static bool backend_wanted(const tc_backend *b) {
    const char *want = getenv("KILN_TEST_BACKENDS");
    return !want || strstr(want, b->name) != NULL;
}

static void run_case_type(kiln_ctx *ctx, const tc_case *c, kiln_dtype t) {
    tc_run r = {0};
    r.ctx = ctx;
    if (!run_setup(&r, c, t)) {
        run_free(&r);
        return;
    }
    const kiln_tensor *ins[64], *tys[64];
    for (int i = 0; i < r.n_in && i < 64; i++) {
        ins[i] = r.n->inputs[i] ? &r.data[i] : NULL;
        tys[i] = r.n->inputs[i] ? &r.types[i] : NULL;
    }
    kiln_status s = gir_run_node(ctx, r.n, ins, r.ref);
    CHECK_MSG(s == KILN_OK, "reference [%s] %s: %s", kiln_dtype_name(t), c->text, kiln_errmsg(ctx));
    if (s) {
        run_free(&r);
        return;
    }
    r.n_ref = r.n->n_outputs;
    tir_func *f = NULL;
    s = tir_from_node(ctx, r.n, tys, &f);
    if (s == KILN_ERR_UNSUPPORTED && (c->unsupported & KILN_DT(t))) {
        g_unsupported++;
    } else if (s) {
        report("FAIL", c, t, kiln_errmsg(ctx));
        kt_failures++;
    } else {
        g_runs++;
        check_tir(&r, c, t, f);
        for (int b = 0; b < N_BACKENDS; b++)
            if (backend_wanted(&k_backends[b])) check_backend(&r, c, t, &k_backends[b], f);
    }
    tir_func_free(f);
    run_free(&r);
}

/* The op row a case binds to (parsed once with T = f32). */
static const kiln_op_def *case_row(kiln_ctx *ctx, const tc_case *c) {
    char *text = subst_type(c->text, c->opset, KILN_F32);
    gir_graph *g = NULL;
    const kiln_op_def *op = NULL;
    if (gir_parse(ctx, text, &g) == KILN_OK && g->n_nodes > 0) {
        gir_node *n = g->nodes[g->n_nodes - 1];
        if (gir_bind_op(ctx, n) == KILN_OK) op = n->op;
    }
    CHECK_MSG(op, "case does not bind: %s (%s)", c->text, kiln_errmsg(ctx));
    gir_graph_free(g);
    free(text);
    return op;
}

static int row_index(const kiln_op_def *op) {
    for (int i = 0; i < kiln_op_count(); i++)
        if (kiln_op_at(i) == op) return i;
    return -1;
}

static void every_case(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    for (int i = 0; i < N_CASES; i++) {
        const tc_case *c = &k_cases[i];
        const kiln_op_def *op = case_row(ctx, c);
        if (!op) continue;
        int ri = row_index(op);
        if (ri >= 0 && ri < 4096) g_covered[ri] = true;
        CHECK_MSG(op->compute, "%s has a case but no compute definition", op->name);
        uint32_t types = (c->dtypes ? c->dtypes : op->dtypes) & ~(KILN_DT(KILN_STRING) | KILN_DT_LOWP);
        for (int t = 1; t < KILN_DTYPE_COUNT; t++)
            if (types & KILN_DT(t)) run_case_type(ctx, c, (kiln_dtype)t);
    }
    printf("compute: %d case runs on %d backend(s), %d expected-unsupported\n", g_runs, N_BACKENDS, g_unsupported);
    printf("compute: worst normalized error:");
    for (int t = 0; t < KILN_DTYPE_COUNT; t++)
        if (kiln_dtype_is_float((kiln_dtype)t)) printf(" %s %.2g", kiln_dtype_name((kiln_dtype)t), g_worst[t]);
    printf("\n");
    kiln_ctx_free(ctx);
}

/* Every row with a compute definition is exercised by some case. */
static void every_definition_has_cases(void) {
    int with = 0, total = kiln_op_count();
    for (int i = 0; i < total; i++) {
        const kiln_op_def *op = kiln_op_at(i);
        if (!op->compute) continue;
        with++;
        CHECK_MSG(g_covered[i], "%s (opsets %d..%d) has a compute definition but no test case", op->name,
                  op->min_opset, op->max_opset);
    }
    printf("compute: %d of %d registry rows have a compute definition\n", with, total);
}

/* An op with no compute definition is a clear error from tir_from_node. */
static void missing_definition_is_an_error(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = NULL;
    CHECK(gir_parse(ctx, "graph \"t\" {\n opset 17\n input %x : f32[4]\n const %k : i64[1] = {2}\n"
                         " %y, %i = TopK(%x, %k) name=\"tk\"\n output %y\n}\n", &g) == KILN_OK);
    if (g) {
        gir_node *n = g->nodes[0];
        tir_func *f = NULL;
        CHECK(gir_bind_op(ctx, n) == KILN_OK);
        CHECK(tir_from_node(ctx, n, NULL, &f) == KILN_ERR_UNSUPPORTED && f == NULL);
        CHECK(strstr(kiln_errmsg(ctx), "tk") && strstr(kiln_errmsg(ctx), "TopK"));
    }
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(every_case), T(every_definition_has_cases), T(missing_definition_is_an_error))
