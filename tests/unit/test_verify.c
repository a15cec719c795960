/*
** test_verify.c — the IR verifier: broken graphs, stated in the text form
** (or broken in code where the text cannot say it), give a message that
** names the pass, the node, the op and the reason.
*/
#include <string.h>

#include "harness.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/op.h"

/* Parses text and binds each node to its registry entry directly (without
** gir_bind_op's own checks, so the verifier's are the ones tested). */
static gir_graph *parse_bound(kiln_ctx *ctx, const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "parse: %s", kiln_errmsg(ctx));
    for (int i = 0; g && i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        n->op = kiln_op_find(n->domain, n->op_type, n->opset, NULL);
    }
    return g;
}

/* Verifies and checks the status and that each expected piece is in the
** message. */
static void expect(const char *text, const char *pass, kiln_status want, const char *const *pieces) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse_bound(ctx, text);
    if (g) {
        kiln_status s = gir_verify(ctx, g, pass);
        CHECK_MSG(s == want, "status %s, want %s (%s)", kiln_status_name(s), kiln_status_name(want),
                  kiln_errmsg(ctx));
        for (int i = 0; want && pieces[i]; i++)
            CHECK_MSG(strstr(kiln_errmsg(ctx), pieces[i]) != NULL, "message \"%s\" lacks \"%s\"",
                      kiln_errmsg(ctx), pieces[i]);
    }
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

#define PIECES(...) ((const char *const[]){__VA_ARGS__, NULL})
#define HEAD "graph \"g\" {\n  opset 17\n  input %x : f32[2,3]\n"

static void a_good_graph_verifies(void) {
    expect(HEAD
           "  const %s : i64[2] = {3, 2}\n"
           "  %a : f32[2,3] = Relu(%x) name=\"r\"\n"
           "  %b : f32[3,2] = Reshape(%a, %s)\n"
           "  %c = Add(%b, %b)\n"
           "  %m, _ = Dropout(%c)\n"
           "  output %m\n}\n",
           NULL, KILN_OK, PIECES(""));
}

static void a_value_defined_twice(void) {
    expect(HEAD "  %a = Relu(%x) name=\"one\"\n  %a = Relu(%x) name=\"two\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'two' (Relu)", "value 'a' is defined more than once (also by node 'one' (Relu))"));
    expect(HEAD "  %x = Relu(%x) name=\"r\"\n  output %x\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'r' (Relu)", "value 'x' is defined more than once (also by the graph"));
    expect(HEAD "  %a, %a = Dropout(%x) name=\"d\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'd' (Dropout)", "value 'a' is defined more than once (also by node 'd'"));
}

static void a_use_before_definition(void) {
    expect(HEAD "  %b = Relu(%a) name=\"late\"\n  %a = Relu(%x) name=\"early\"\n  output %b\n}\n", NULL,
           KILN_ERR_INVALID,
           PIECES("node 'late' (Relu): input 0 'a' is used before it is defined by node 'early' (Relu)",
                  "not in topological order"));
}

static void a_cycle(void) {
    expect(HEAD "  %a = Add(%x, %b) name=\"n1\"\n  %b = Relu(%a) name=\"n2\"\n  output %b\n}\n", NULL,
           KILN_ERR_INVALID, PIECES("node 'n1' (Add): input 1 'b' is used before it is defined", "has a cycle through node 'n1'"));
}

static void an_undefined_input_and_output(void) {
    expect(HEAD "  %a = Relu(%nope) name=\"r\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'r' (Relu): input 0 'nope' is not defined"));
    expect(HEAD "  %a = Relu(%x)\n  output %q\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("graph output 'q' is not defined"));
}

static void arity_and_required_inputs(void) {
    expect(HEAD "  %a = Relu(%x, %x) name=\"r\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'r' (Relu): has 2 inputs, the op takes 1 to 1"));
    expect(HEAD "  %a = Add(%x, _) name=\"add\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'add' (Add): required input 1 is missing"));
    expect(HEAD "  %a, %b = Relu(%x) name=\"r\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'r' (Relu): has 2 outputs, the op gives 1 to 1"));
}

static void attributes_against_the_schema(void) {
    expect(HEAD "  %a = Relu(%x) {foo=1} name=\"r\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'r' (Relu): attribute 'foo' is not one the op knows"));
    expect("graph \"g\" {\n  opset 17\n  input %x : f32[1,1,4,4]\n"
           "  %a = MaxPool(%x) {kernel_shape=[2, 2], strides=2} name=\"pool\"\n  output %a\n}\n",
           NULL, KILN_ERR_INVALID, PIECES("node 'pool' (MaxPool): attribute 'strides' is an int, the op expects ints"));
    expect("graph \"g\" {\n  opset 17\n  input %x : f32[1,1,4,4]\n"
           "  %a = MaxPool(%x) {strides=[2, 2]} name=\"pool\"\n  output %a\n}\n",
           NULL, KILN_ERR_INVALID, PIECES("node 'pool' (MaxPool): required attribute 'kernel_shape' is missing"));
    expect(HEAD "  %a = Cast(%x) {to=1, to=7} name=\"c\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'c' (Cast): attribute 'to' is given twice"));
}

static void types_against_inference(void) {
    expect(HEAD "  %a : f32[3] = Relu(%x) name=\"r\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("node 'r' (Relu): output 0 'a' has type f32[3], but the op infers f32[2,3]"));
    expect(HEAD "  %a : i64[2,3] = Relu(%x) name=\"r\"\n  output %a\n}\n", NULL, KILN_ERR_INVALID,
           PIECES("output 0 'a' has type i64[2,3], but the op infers f32[2,3]"));
    /* symbolic and unknown dims agree with anything */
    expect(HEAD "  %a : f32[n,?] = Relu(%x) name=\"r\"\n  output %a\n}\n", NULL, KILN_OK, PIECES(""));
    expect(HEAD "  input %y : f32[4]\n  %a = Add(%x, %y) name=\"add\"\n  output %a\n}\n", NULL, KILN_ERR_SHAPE,
           PIECES("node 'add' (Add)", "do not broadcast"));
    expect("graph \"g\" {\n  opset 17\n  input %x : str[2]\n  %a = Relu(%x) name=\"r\"\n  output %a\n}\n", NULL,
           KILN_ERR_INVALID, PIECES("node 'r' (Relu): element type str of input 0 is not supported"));
}

static void the_pass_is_named(void) {
    expect(HEAD "  %a = Relu(%nope) name=\"r\"\n  output %a\n}\n", "fold-constants", KILN_ERR_INTERNAL,
           PIECES("after pass 'fold-constants': node 'r' (Relu): input 0 'nope' is not defined"));
}

static void subgraphs(void) {
    /* an outer-scope name is fine; an undefined one is not */
    expect("graph \"g\" {\n  opset 17\n  input %c : bool[]\n  input %x : f32[2]\n"
           "  %y = If(%c) {then_branch=graph \"t\" {\n    %a = Relu(%x)\n    output %a\n  }, "
           "else_branch=graph \"e\" {\n    %b = Neg(%x)\n    output %b\n  }} name=\"if\"\n  output %y\n}\n",
           NULL, KILN_OK, PIECES(""));
    expect("graph \"g\" {\n  opset 17\n  input %c : bool[]\n  input %x : f32[2]\n"
           "  %y = If(%c) {then_branch=graph \"t\" {\n    %a = Relu(%zz) name=\"inner\"\n    output %a\n  }, "
           "else_branch=graph \"e\" {\n    output %x\n  }} name=\"if\"\n  output %y\n}\n",
           NULL, KILN_ERR_INVALID,
           PIECES("in subgraph 'then_branch' of node 'if' (If): node 'inner' (Relu): input 0 'zz' is not defined"));
}

/* What the text cannot state: broken in code. */
static void broken_in_code(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = parse_bound(ctx, HEAD "  const %w : f32[3] = {1, 2, 3}\n  %a = Relu(%w)\n  output %a\n}\n");
    if (!g) return;
    CHECK(gir_verify(ctx, g, NULL) == KILN_OK);
    gir_value *w = gir_value_find(g, "w");
    w->type.dims[0].value = 2;
    CHECK(gir_verify(ctx, g, NULL) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(ctx), "constant 'w' holds f32[3] data but its type says f32[2]"), "%s",
              kiln_errmsg(ctx));
    w->type.dims[0].value = 3;
    void *data = w->constant->data;
    w->constant->data = NULL;
    CHECK(gir_verify(ctx, g, NULL) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(ctx), "constant 'w' has no data"), "%s", kiln_errmsg(ctx));
    w->constant->data = data;
    const char *name = w->name;
    w->name = "x";
    CHECK(gir_verify(ctx, g, NULL) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(ctx), "two values are named 'x'"), "%s", kiln_errmsg(ctx));
    w->name = name;
    gir_node *n = g->nodes[0];
    n->opset = 0;
    CHECK(gir_verify(ctx, g, NULL) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(ctx), "(Relu): is bound to the op's entry for opsets"), "%s", kiln_errmsg(ctx));
    n->opset = 17;
    gir_value *a = gir_value_find(g, "a");
    a->producer_slot = 1;
    CHECK(gir_verify(ctx, g, NULL) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(ctx), "output 0 'a' does not name this node as its producer"), "%s",
              kiln_errmsg(ctx));
    a->producer_slot = 0;
    CHECK(gir_verify(ctx, g, NULL) == KILN_OK);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(a_good_graph_verifies), T(a_value_defined_twice), T(a_use_before_definition), T(a_cycle),
          T(an_undefined_input_and_output), T(arity_and_required_inputs), T(attributes_against_the_schema),
          T(types_against_inference), T(the_pass_is_named), T(subgraphs), T(broken_in_code))
