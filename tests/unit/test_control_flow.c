/*
** test_control_flow.c — If, Loop and Scan on the reference interpreter:
** graphs in the text form whose subgraphs read values of the graphs around
** them, the errors that name the node, static inference, and constant
** folding leaving control flow alone.
*/
#include <string.h>

#include "harness.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "passes/pass.h"

static kiln_ctx *g_ctx;

static gir_graph *parse(const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(g_ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (g && (s = gir_bind_graph(g_ctx, g)) != KILN_OK) {
        CHECK_MSG(false, "%s", kiln_errmsg(g_ctx));
        gir_graph_free(g);
        g = NULL;
    }
    return g;
}

static kiln_tensor tensor(kiln_dtype dt, int rank, const int64_t *dims, void *data) {
    kiln_tensor t;
    kiln_tensor_init(&t, dt, rank, dims);
    t.data = data;
    return t;
}

static kiln_tensor f32v(int64_t n, float *data) { return tensor(KILN_F32, 1, &n, data); }

static bool same_f32(const kiln_tensor *t, const float *want, int64_t n) {
    if (t->dtype != KILN_F32 || kiln_numel(t) != n) return false;
    for (int64_t i = 0; i < n; i++)
        if (((const float *)t->data)[i] != want[i]) return false;
    return true;
}

static bool has_dims(const kiln_tensor *t, int rank, const int64_t *dims) {
    if (t->rank != rank) return false;
    for (int i = 0; i < rank; i++)
        if (t->dims[i] != dims[i]) return false;
    return true;
}

static bool msg_has(const char *piece) { return strstr(kiln_errmsg(g_ctx), piece) != NULL; }

static void release(kiln_tensor *t, int n) {
    for (int i = 0; i < n; i++) kiln_tensor_release(&t[i]);
}

/* ---- If ---- */

static const char *k_if_graph =
    "graph \"g\" {\n"
    "  opset 17\n"
    "  input %c : bool[]\n"
    "  input %x : f32[3]\n"
    "  %a = Relu(%x)\n"
    "  %b = Neg(%a)\n" /* the last direct use of %a: the branches still read it */
    "  %y = If(%c) {then_branch=graph \"then\" {\n"
    "      %t = Add(%a, %x)\n"
    "      output %t : f32[3]\n"
    "    }, else_branch=graph \"else\" {\n"
    "      %e = Mul(%b, %x)\n"
    "      output %e : f32[3]\n"
    "    }} name=\"choose\"\n"
    "  output %y\n"
    "}\n";

/* An If listed before the node producing a value its branches read: sorting
** must still put the producer first. */
static void toposort_orders_values_subgraphs_read(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %c : bool[]\n"
                         "  input %x : f32[3]\n"
                         "  %y = If(%c) {then_branch=graph \"t\" { %t = Identity(%a)\n output %t : f32[3] },\n"
                         "               else_branch=graph \"e\" { %e = Identity(%x)\n output %e : f32[3] }}\n"
                         "  %a = Relu(%x)\n"
                         "  output %y\n"
                         "}\n");
    if (!g) return;
    CHECK_MSG(gir_toposort(g_ctx, g) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(!strcmp(g->nodes[0]->op_type, "Relu") && !strcmp(g->nodes[1]->op_type, "If"));
    gir_graph_free(g);
}

static void if_takes_the_branch_cond_picks(void) {
    gir_graph *g = parse(k_if_graph);
    if (!g) return;
    float xs[3] = {1, -2, 3};
    for (int c = 0; c < 2; c++) {
        uint8_t cv = (uint8_t)c;
        kiln_tensor in[2] = {tensor(KILN_BOOL, 0, NULL, &cv), f32v(3, xs)}, out;
        kiln_status s = gir_interp_run(g_ctx, g, in, 2, &out, 1);
        CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
        if (s) continue;
        float then_want[3] = {2, -2, 6}, else_want[3] = {-1, 0, -9};
        CHECK(same_f32(&out, c ? then_want : else_want, 3));
        kiln_tensor_release(&out);
    }
    gir_graph_free(g);
}

static void if_static_inference_needs_agreeing_branches(void) {
    gir_graph *g = parse(k_if_graph);
    if (!g) return;
    CHECK_MSG(pass_infer_shapes(g_ctx, g) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    gir_value *y = gir_value_find(g, "y");
    CHECK(y && y->type.dtype == KILN_F32 && y->type.rank == 1 && y->type.dims[0].value == 3);
    gir_graph_free(g);

    g = parse("graph \"g\" {\n"
              "  opset 17\n"
              "  input %c : bool[]\n"
              "  const %p : f32[2] = {1, 2}\n"
              "  const %q : f32[3] = {1, 2, 3}\n"
              "  %y = If(%c) {then_branch=graph \"t\" { %t = Identity(%p)\n output %t : f32[2] },\n"
              "               else_branch=graph \"e\" { %e = Identity(%q)\n output %e : f32[3] }}\n"
              "  output %y\n"
              "}\n");
    if (!g) return;
    CHECK(pass_infer_shapes(g_ctx, g) == KILN_OK);
    y = gir_value_find(g, "y");
    CHECK(y && y->type.rank < 0); /* the shapes differ: only a run tells */
    uint8_t cv = 0;
    kiln_tensor in = tensor(KILN_BOOL, 0, NULL, &cv), out;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) == KILN_OK);
    float want[3] = {1, 2, 3};
    CHECK(same_f32(&out, want, 3));
    kiln_tensor_release(&out);
    gir_graph_free(g);
}

static void if_errors_name_the_node(void) {
    /* a branch with the wrong number of outputs */
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %c : bool[]\n"
                         "  const %p : f32[1] = {1}\n"
                         "  %y = If(%c) {then_branch=graph \"t\" { %t = Identity(%p)\n output %t\n output %p },\n"
                         "               else_branch=graph \"e\" { %e = Identity(%p)\n output %e }} name=\"two\"\n"
                         "  output %y\n"
                         "}\n");
    if (!g) return;
    uint8_t cv = 1;
    kiln_tensor in = tensor(KILN_BOOL, 0, NULL, &cv), out;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) == KILN_ERR_INVALID);
    CHECK_MSG(msg_has("node 'two' (If)") && msg_has("then_branch gives 2 outputs"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);

    /* a branch producing another type than the other declares */
    g = parse("graph \"g\" {\n"
              "  opset 17\n"
              "  input %c : bool[]\n"
              "  const %p : f32[1] = {1}\n"
              "  %y = If(%c) {then_branch=graph \"t\" { %t = Identity(%p)\n output %t },\n"
              "               else_branch=graph \"e\" { %e = Cast(%p) {to=7}\n output %e : i64[1] }} name=\"mixed\"\n"
              "  output %y\n"
              "}\n");
    if (!g) return;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) == KILN_ERR_SHAPE);
    CHECK_MSG(msg_has("node 'mixed' (If)") && msg_has("then_branch output 0 is f32") && msg_has("i64"), "%s",
              kiln_errmsg(g_ctx));
    gir_graph_free(g);

    /* cond of several elements */
    g = parse("graph \"g\" {\n"
              "  opset 17\n"
              "  input %c : bool[*]\n"
              "  const %p : f32[1] = {1}\n"
              "  %y = If(%c) {then_branch=graph \"t\" { %t = Identity(%p)\n output %t },\n"
              "               else_branch=graph \"e\" { %e = Identity(%p)\n output %e }} name=\"choose\"\n"
              "  output %y\n"
              "}\n");
    if (!g) return;
    uint8_t cs[2] = {1, 1};
    int64_t two = 2;
    kiln_tensor in2 = tensor(KILN_BOOL, 1, &two, cs);
    CHECK(gir_interp_run(g_ctx, g, &in2, 1, &out, 1) == KILN_ERR_SHAPE);
    CHECK_MSG(msg_has("node 'choose' (If): cond must hold one element"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);
}

/* A kernel run outside a graph run has no scope: the outer value is missing. */
static void missing_outer_values_are_named(void) {
    gir_graph *g = parse(k_if_graph);
    if (!g) return;
    const gir_node *n = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "If")) n = g->nodes[i];
    if (!n) return;
    uint8_t cv = 1;
    kiln_tensor c = tensor(KILN_BOOL, 0, NULL, &cv), out[1];
    const kiln_tensor *in[1] = {&c};
    CHECK(gir_run_node(g_ctx, n, in, out) == KILN_ERR_INVALID);
    CHECK_MSG(msg_has("node 'choose' (If): then_branch") && msg_has("reads 'a' from an enclosing graph"), "%s",
              kiln_errmsg(g_ctx));
    gir_graph_free(g);
}

/* Another executor runs the nodes itself and lends its value array (no
** `have` array: a value with data is there) as the scope. */
static void executors_can_lend_their_values(void) {
    gir_graph *g = parse(k_if_graph);
    if (!g) return;
    kiln_tensor *vals = kiln_calloc((size_t)g->n_values + 1, sizeof *vals);
    int *last_use = kiln_calloc((size_t)g->n_values + 1, sizeof *last_use);
    if (!vals || !last_use) return;
    uint8_t cv = 1;
    float xs[3] = {1, -2, 3};
    vals[gir_value_find(g, "c")->id] = tensor(KILN_BOOL, 0, NULL, &cv);
    vals[gir_value_find(g, "x")->id] = f32v(3, xs);
    int if_idx = -1;
    for (int v = 0; v < g->n_values; v++) last_use[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_note_outer_uses(g, g->nodes[i], i, last_use);
        if (!strcmp(g->nodes[i]->op_type, "If")) if_idx = i;
    }
    CHECK(if_idx >= 0 && last_use[gir_value_find(g, "a")->id] == if_idx);
    gir_scope scope = {NULL, g, vals, NULL};
    const gir_scope *prev = gir_scope_enter(&scope);
    kiln_status s = KILN_OK;
    for (int i = 0; i < g->n_nodes && !s; i++) {
        const gir_node *n = g->nodes[i];
        const kiln_tensor *in[2] = {NULL, NULL};
        for (int k = 0; k < n->n_inputs; k++) in[k] = &vals[n->inputs[k]->id];
        s = gir_run_node(g_ctx, n, in, &vals[n->outputs[0]->id]);
    }
    gir_scope_leave(prev);
    CHECK(gir_scope_current() == prev);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    float want[3] = {2, -2, 6};
    if (!s) CHECK(same_f32(&vals[gir_value_find(g, "y")->id], want, 3));
    for (int v = 0; v < g->n_values; v++) kiln_tensor_release(&vals[v]);
    kiln_free(vals);
    kiln_free(last_use);
    gir_graph_free(g);
}

/* ---- Loop ---- */

static const char *k_loop_graph =
    "graph \"g\" {\n"
    "  opset 17\n"
    "  input %m : i64[]\n"
    "  input %c : bool[]\n"
    "  input %y0 : f32[2]\n"
    "  input %step : f32[2]\n"
    "  const %limit : i64[] = {2}\n"
    "  %yf, %ys, %is = Loop(%m, %c, %y0) {body=graph \"body\" {\n"
    "      input %i : i64[]\n"
    "      input %cin : bool[]\n"
    "      input %yin : f32[2]\n"
    "      %yout = Add(%yin, %step)\n"
    "      %cout = Less(%i, %limit)\n"
    "      %iout = Identity(%i)\n"
    "      output %cout\n"
    "      output %yout : f32[2]\n"
    "      output %yout\n"
    "      output %iout : i64[]\n"
    "    }} name=\"loop\"\n"
    "  output %yf\n"
    "  output %ys\n"
    "  output %is\n"
    "}\n";

static kiln_status run_loop(gir_graph *g, int64_t *m, uint8_t *c, kiln_tensor *out) {
    float y0[2] = {0, 10}, step[2] = {1, -1};
    kiln_tensor in[4] = {tensor(KILN_I64, 0, NULL, m), tensor(KILN_BOOL, 0, NULL, c), f32v(2, y0), f32v(2, step)};
    return gir_interp_run(g_ctx, g, in, 4, out, 3);
}

static void loop_counts_and_stacks_scan_outputs(void) {
    gir_graph *g = parse(k_loop_graph);
    if (!g) return;
    int64_t m = 10;
    uint8_t c = 1;
    kiln_tensor out[3];
    kiln_status s = run_loop(g, &m, &c, out);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        /* the body's condition (i < 2) stops it after iterations 0, 1, 2 */
        float yf[2] = {3, 7}, ys[6] = {1, 9, 2, 8, 3, 7};
        int64_t d32[2] = {3, 2}, d3[1] = {3};
        CHECK(same_f32(&out[0], yf, 2));
        CHECK(has_dims(&out[1], 2, d32) && same_f32(&out[1], ys, 6));
        CHECK(has_dims(&out[2], 1, d3) && ((int64_t *)out[2].data)[2] == 2);
        release(out, 3);
    }
    m = 2; /* the trip count stops it first */
    s = run_loop(g, &m, &c, out);
    CHECK(s == KILN_OK && out[1].dims[0] == 2);
    if (!s) release(out, 3);
    gir_graph_free(g);
}

static void loop_of_no_iteration_gives_initial_values(void) {
    gir_graph *g = parse(k_loop_graph);
    if (!g) return;
    int64_t m = 5;
    uint8_t c = 0;
    kiln_tensor out[3];
    kiln_status s = run_loop(g, &m, &c, out);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        float y0[2] = {0, 10};
        int64_t d02[2] = {0, 2}, d0[1] = {0};
        CHECK(same_f32(&out[0], y0, 2));
        CHECK(has_dims(&out[1], 2, d02) && has_dims(&out[2], 1, d0));
        release(out, 3);
    }
    m = -3; /* a negative trip count runs nothing either */
    c = 1;
    s = run_loop(g, &m, &c, out);
    CHECK(s == KILN_OK && out[1].dims[0] == 0);
    if (!s) release(out, 3);
    gir_graph_free(g);
}

static void loop_without_bounds_or_with_bad_bodies_fails(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %y0 : f32[1]\n"
                         "  %yf = Loop(_, _, %y0) {body=graph \"b\" {\n"
                         "      input %i : i64[]\n      input %c : bool[]\n      input %y : f32[1]\n"
                         "      output %c\n      output %y\n"
                         "    }} name=\"forever\"\n"
                         "  output %yf\n"
                         "}\n");
    if (!g) return;
    float y0 = 1;
    kiln_tensor in = f32v(1, &y0), out;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) == KILN_ERR_UNSUPPORTED);
    CHECK_MSG(msg_has("node 'forever' (Loop)") && msg_has("never end"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);

    /* a loop-carried value that changes type */
    g = parse("graph \"g\" {\n"
              "  opset 17\n"
              "  input %y0 : f32[1]\n"
              "  const %m : i64[] = {3}\n"
              "  %yf = Loop(%m, _, %y0) {body=graph \"b\" {\n"
              "      input %i : i64[]\n      input %c : bool[]\n      input %y : f32[1]\n"
              "      %z = Cast(%y) {to=11}\n"
              "      output %c\n      output %z\n"
              "    }} name=\"drift\"\n"
              "  output %yf\n"
              "}\n");
    if (!g) return;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) == KILN_ERR_SHAPE);
    CHECK_MSG(msg_has("node 'drift' (Loop)") && msg_has("turns from f32 into f64"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);

    /* a body whose inputs do not match the node */
    g = parse("graph \"g\" {\n"
              "  opset 17\n"
              "  input %y0 : f32[1]\n"
              "  const %m : i64[] = {3}\n"
              "  %yf = Loop(%m, _, %y0) {body=graph \"b\" {\n"
              "      input %i : i64[]\n      input %c : bool[]\n"
              "      output %c\n      output %c\n"
              "    }} name=\"short\"\n"
              "  output %yf\n"
              "}\n");
    if (!g) return;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) == KILN_ERR_INVALID);
    CHECK_MSG(msg_has("node 'short' (Loop): the body takes 2 inputs"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);

    /* an error inside the body names the node, the body and the iteration */
    g = parse("graph \"g\" {\n"
              "  opset 17\n"
              "  input %y0 : f32[1]\n"
              "  const %m : i64[] = {3}\n"
              "  const %shape : i64[1] = {5}\n"
              "  %yf = Loop(%m, _, %y0) {body=graph \"b\" {\n"
              "      input %i : i64[]\n      input %c : bool[]\n      input %y : f32[1]\n"
              "      %z = Reshape(%y, %shape) name=\"bad\"\n"
              "      output %c\n      output %z\n"
              "    }} name=\"outer\"\n"
              "  output %yf\n"
              "}\n");
    if (!g) return;
    CHECK(gir_interp_run(g_ctx, g, &in, 1, &out, 1) != KILN_OK);
    CHECK_MSG(msg_has("node 'outer' (Loop): body, iteration 0") && msg_has("node 'bad' (Reshape)"), "%s",
              kiln_errmsg(g_ctx));
    gir_graph_free(g);
}

/* A Loop whose body holds an If that reads the root graph and the body. */
static void nested_subgraphs_see_every_enclosing_scope(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %x : f32[2]\n"
                         "  const %m : i64[] = {4}\n"
                         "  const %two : i64[] = {2}\n"
                         "  %sum = Loop(%m, _, %x) {body=graph \"b\" {\n"
                         "      input %i : i64[]\n      input %c : bool[]\n      input %acc : f32[2]\n"
                         "      %small = Less(%i, %two)\n"
                         "      %next = If(%small) {then_branch=graph \"t\" {\n"
                         "          %u = Add(%acc, %x)\n          output %u\n"
                         "        }, else_branch=graph \"e\" {\n"
                         "          %v = Sub(%acc, %x)\n          output %v\n"
                         "        }}\n"
                         "      output %c\n      output %next\n"
                         "    }}\n"
                         "  output %sum\n"
                         "}\n");
    if (!g) return;
    float xs[2] = {1, 5};
    kiln_tensor in = f32v(2, xs), out;
    kiln_status s = gir_interp_run(g_ctx, g, &in, 1, &out, 1);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        float want[2] = {1, 5}; /* x + x + x - x - x */
        CHECK(same_f32(&out, want, 2));
        kiln_tensor_release(&out);
    }
    gir_graph_free(g);
}

static void loop_stacks_strings(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %m : i64[]\n"
                         "  const %w : str[2] = {\"ab\", \"c\"}\n"
                         "  %s = Loop(%m, _) {body=graph \"b\" {\n"
                         "      input %i : i64[]\n      input %c : bool[]\n"
                         "      %o = Identity(%w)\n"
                         "      output %c\n      output %o\n"
                         "    }}\n"
                         "  output %s\n"
                         "}\n");
    if (!g) return;
    int64_t m = 3;
    kiln_tensor in = tensor(KILN_I64, 0, NULL, &m), out;
    kiln_status s = gir_interp_run(g_ctx, g, &in, 1, &out, 1);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        int64_t d[2] = {3, 2};
        CHECK(has_dims(&out, 2, d) && out.dtype == KILN_STRING);
        CHECK(!strcmp(((char **)out.data)[4], "ab") && !strcmp(((char **)out.data)[5], "c"));
        kiln_tensor_release(&out);
    }
    gir_graph_free(g);
}

/* ---- Scan ---- */

/* Sums the columns of x [2, 3] right to left (input axis 1, reversed) and
** writes the running sums as columns (output axis 1) and, reversed, rows. */
static void scan_follows_axes_and_directions(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %s0 : f32[2]\n"
                         "  input %x : f32[2,3]\n"
                         "  %sf, %cols, %rows = Scan(%s0, %x) {num_scan_inputs=1, scan_input_axes=[1],\n"
                         "      scan_input_directions=[1], scan_output_axes=[-1, 0], scan_output_directions=[0, 1],\n"
                         "      body=graph \"b\" {\n"
                         "      input %s : f32[2]\n      input %col : f32[2]\n"
                         "      %n = Add(%s, %col)\n      %r = Identity(%n)\n"
                         "      output %n : f32[2]\n      output %n\n      output %r : f32[2]\n"
                         "    }}\n"
                         "  output %sf\n  output %cols\n  output %rows\n"
                         "}\n");
    if (!g) return;
    float s0[2] = {0, 100}, x[6] = {1, 2, 3, 4, 5, 6};
    int64_t d23[2] = {2, 3};
    kiln_tensor in[2] = {f32v(2, s0), tensor(KILN_F32, 2, d23, x)}, out[3];
    kiln_status s = gir_interp_run(g_ctx, g, in, 2, out, 3);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        /* steps see columns 2, 1, 0: sums (3,106), (5,111), (6,115) */
        float sf[2] = {6, 115}, cols[6] = {3, 5, 6, 106, 111, 115}, rows[6] = {6, 115, 5, 111, 3, 106};
        int64_t d32[2] = {3, 2};
        CHECK(same_f32(&out[0], sf, 2));
        CHECK(has_dims(&out[1], 2, d23) && same_f32(&out[1], cols, 6));
        CHECK(has_dims(&out[2], 2, d32) && same_f32(&out[2], rows, 6));
        release(out, 3);
    }
    CHECK_MSG(pass_infer_shapes(g_ctx, g) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    gir_value *cols = gir_value_find(g, "cols"), *rows = gir_value_find(g, "rows");
    CHECK(cols && cols->type.rank == 2 && cols->type.dims[0].value == 2 && cols->type.dims[1].value == 3);
    CHECK(rows && rows->type.rank == 2 && rows->type.dims[0].value == 3 && rows->type.dims[1].value == 2);
    gir_graph_free(g);
}

/* Scan 8: a batch of two sequences of lengths 3 and 1, the second reversed. */
static void scan8_runs_each_batch_entry_to_its_length(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 8\n"
                         "  input %lens : i64[2]\n"
                         "  input %s0 : f32[2,1]\n"
                         "  input %x : f32[2,3,1]\n"
                         "  %sf, %all = Scan(%lens, %s0, %x) {num_scan_inputs=1, directions=[1], body=graph \"b\" {\n"
                         "      input %s : f32[1]\n      input %e : f32[1]\n"
                         "      %n = Add(%s, %e)\n"
                         "      output %n\n      output %n\n"
                         "    }}\n"
                         "  output %sf\n  output %all\n"
                         "}\n");
    if (!g) return;
    int64_t lens[2] = {3, 1}, two = 2, d21[2] = {2, 1}, d231[3] = {2, 3, 1};
    float s0[2] = {0, 0}, x[6] = {1, 2, 3, 10, 20, 30};
    kiln_tensor in[3] = {tensor(KILN_I64, 1, &two, lens), tensor(KILN_F32, 2, d21, s0),
                         tensor(KILN_F32, 3, d231, x)},
                out[2];
    kiln_status s = gir_interp_run(g_ctx, g, in, 3, out, 2);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        float sf[2] = {6, 10}, all[6] = {3, 5, 6, 10, 0, 0};
        CHECK(has_dims(&out[0], 2, d21) && same_f32(&out[0], sf, 2));
        CHECK(has_dims(&out[1], 3, d231) && same_f32(&out[1], all, 6));
        release(out, 2);
    }
    lens[1] = 4; /* longer than the sequences */
    CHECK(gir_interp_run(g_ctx, g, in, 3, out, 2) == KILN_ERR_INVALID);
    CHECK_MSG(msg_has("sequence_lens[1] = 4 is outside [0, 3]"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);
}

static void scan_checks_its_inputs(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %a : f32[3]\n"
                         "  input %b : f32[4]\n"
                         "  %o = Scan(%a, %b) {num_scan_inputs=2, body=graph \"b\" {\n"
                         "      input %p : f32[]\n      input %q : f32[]\n"
                         "      %n = Add(%p, %q)\n      output %n\n"
                         "    }} name=\"zip\"\n"
                         "  output %o\n"
                         "}\n");
    if (!g) return;
    float a[3] = {0}, b[4] = {0};
    kiln_tensor in[2] = {f32v(3, a), f32v(4, b)}, out;
    CHECK(gir_interp_run(g_ctx, g, in, 2, &out, 1) == KILN_ERR_SHAPE);
    CHECK_MSG(msg_has("node 'zip' (Scan): scan input 1 has 4 steps, scan input 0 has 3"), "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);
}

/* The verifier and static inference accept control flow. */
static void control_flow_graphs_verify(void) {
    const char *texts[] = {k_if_graph, k_loop_graph};
    for (int i = 0; i < 2; i++) {
        gir_graph *g = parse(texts[i]);
        if (!g) continue;
        CHECK_MSG(gir_verify(g_ctx, g, NULL) == KILN_OK, "%s", kiln_errmsg(g_ctx));
        CHECK_MSG(pass_infer_shapes(g_ctx, g) == KILN_OK, "%s", kiln_errmsg(g_ctx));
        CHECK_MSG(gir_verify(g_ctx, g, "infer-shapes") == KILN_OK, "%s", kiln_errmsg(g_ctx));
        gir_graph_free(g);
    }
}

/* ---- constant folding ---- */

/* Control flow with constant inputs stays: its subgraphs read values that
** folding cannot see, and its shapes come only from running it. */
static void folding_leaves_control_flow_alone(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %x : f32[2]\n"
                         "  const %c : bool[] = {true}\n"
                         "  const %m : i64[] = {3}\n"
                         "  const %k : f32[2] = {1, 2}\n"
                         "  %y = If(%c) {then_branch=graph \"t\" { %t = Add(%x, %k)\n output %t },\n"
                         "               else_branch=graph \"e\" { %e = Sub(%x, %k)\n output %e }}\n"
                         "  %z = Loop(%m, _, %k) {body=graph \"b\" {\n"
                         "      input %i : i64[]\n      input %cc : bool[]\n      input %v : f32[2]\n"
                         "      %w = Add(%v, %v)\n      output %cc\n      output %w\n"
                         "    }}\n"
                         "  %r = Add(%y, %z)\n"
                         "  output %r\n"
                         "}\n");
    if (!g) return;
    CHECK_MSG(pass_fold_constants(g_ctx, g) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(g->n_nodes == 3);
    float xs[2] = {10, 20};
    kiln_tensor in = f32v(2, xs), out;
    kiln_status s = gir_interp_run(g_ctx, g, &in, 1, &out, 1);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        float want[2] = {19, 38};
        CHECK(same_f32(&out, want, 2));
        kiln_tensor_release(&out);
    }
    gir_graph_free(g);
}

/* ---- allocation failures ---- */

static void allocation_failures_leak_nothing(void) {
    gir_graph *g = parse(k_loop_graph);
    if (!g) return;
    long base = kiln_mem_live();
    bool done = false;
    for (long n = 0; n < 2000 && !done; n++) {
        int64_t m = 10;
        uint8_t c = 1;
        kiln_tensor out[3];
        kiln_mem_fail_after(n);
        kiln_status s = run_loop(g, &m, &c, out);
        kiln_mem_fail_after(-1);
        if (s == KILN_OK) {
            release(out, 3);
            done = true;
        } else {
            CHECK_MSG(s == KILN_ERR_NOMEM, "allocation %ld: %s", n, kiln_errmsg(g_ctx));
        }
        CHECK_MSG(kiln_mem_live() == base, "allocation %ld leaks %ld blocks", n, kiln_mem_live() - base);
    }
    CHECK(done);
    gir_graph_free(g);
}

static void setup(void) { kiln_ctx_new(&g_ctx); }
static void teardown(void) { kiln_ctx_free(g_ctx); }

TEST_MAIN(T(setup), T(toposort_orders_values_subgraphs_read), T(if_takes_the_branch_cond_picks), T(if_static_inference_needs_agreeing_branches),
          T(if_errors_name_the_node), T(missing_outer_values_are_named), T(executors_can_lend_their_values), T(loop_counts_and_stacks_scan_outputs),
          T(loop_of_no_iteration_gives_initial_values), T(loop_without_bounds_or_with_bad_bodies_fails),
          T(nested_subgraphs_see_every_enclosing_scope), T(loop_stacks_strings), T(scan_follows_axes_and_directions), T(control_flow_graphs_verify),
          T(scan8_runs_each_batch_entry_to_its_length), T(scan_checks_its_inputs), T(folding_leaves_control_flow_alone),
          T(allocation_failures_leak_nothing), T(teardown))
