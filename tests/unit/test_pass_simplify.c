/*
** test_pass_simplify.c — the identity, chain, common-subexpression and
** dead-code passes on small graphs: what they rewrite, what they must leave
** alone, and that the reference interpreter gives the same outputs before
** and after on random inputs.
*/
#include "pass_test.h"

static void identities_go_and_the_output_keeps_its_name(void) {
    gir_graph *g = pt_check("graph \"ids\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[4,6]\n"
                            "  const %one : f32[1] = {1}\n"
                            "  const %zero : f32[] = {0}\n"
                            "  const %shape : i64[2] = {4, 6}\n"
                            "  const %ratio : f32[] = {0.5}\n"
                            "  const %infer : bool[] = {false}\n"
                            "  %r = Relu(%x)\n"
                            "  %a = Identity(%r)\n"
                            "  %b = Dropout(%a)\n"
                            "  %b2 = Dropout(%b, %ratio, %infer)\n"
                            "  %c = Mul(%b2, %one)\n"
                            "  %d = Mul(%one, %c)\n"
                            "  %e = Div(%d, %one)\n"
                            "  %f = Add(%zero, %e)\n"
                            "  %g = Sub(%f, %zero)\n"
                            "  %h = Cast(%g) {to=1}\n"
                            "  %i = Reshape(%h, %shape)\n"
                            "  %j = Transpose(%i) {perm=[0, 1]}\n"
                            "  %k = Expand(%j, %shape)\n"
                            "  %l = Flatten(%k) {axis=1}\n"
                            "  %m = Squeeze(%l)\n"
                            "  output %m : f32[4,6]\n"
                            "}\n",
                            pass_simplify, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 1 && pt_count(g, "Relu") == 1, "%d nodes left", g->n_nodes);
    CHECK(!strcmp(g->outputs[0]->name, "m") && g->outputs[0]->producer == g->nodes[0]);
    gir_graph_free(g);
}

static void integer_identities_and_the_other_operand_order(void) {
    gir_graph *g = pt_check("graph \"ints\" {\n"
                            "  opset 17\n"
                            "  input %x : i32[3]\n"
                            "  input %y : f32[2,3]\n"
                            "  const %zero : i32[3] = {0, 0, 0}\n"
                            "  const %one : f32[1,1] = {1}\n"
                            "  %a = Add(%x, %zero)\n"
                            "  %b = Neg(%a)\n"
                            "  %c = Mul(%one, %y)\n"
                            "  %d = CastLike(%c, %y)\n"
                            "  %e = Abs(%d)\n"
                            "  output %b\n"
                            "  output %e\n"
                            "}\n",
                            pass_simplify, 0.0);
    if (!g) return;
    CHECK(g->n_nodes == 2 && pt_count(g, "Neg") == 1 && pt_count(g, "Abs") == 1);
    CHECK(g->nodes[0]->inputs[0] == g->inputs[0] && g->nodes[1]->inputs[0] == g->inputs[1]);
    gir_graph_free(g);
}

/* Nothing here computes its operand unchanged. */
static void look_alikes_stay(void) {
    gir_graph *g = pt_check("graph \"keep\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[1,6]\n"
                            "  const %two : f32[1] = {2}\n"
                            "  const %ones : f32[4,1] = {1, 1, 1, 1}\n"
                            "  const %zero : f32[] = {0}\n"
                            "  const %ratio : f32[] = {0}\n"
                            "  const %train : bool[] = {true}\n"
                            "  const %shape : i64[2] = {4, 6}\n"
                            "  %a = Mul(%x, %two)\n"
                            "  %b = Mul(%a, %ones)\n"       /* broadcasts to [4,6] */
                            "  %c = Dropout(%b, %ratio, %train)\n" /* training */
                            "  %d, %mask = Dropout(%c)\n"   /* its mask is read */
                            "  %e = Cast(%d) {to=11}\n"
                            "  %f = Cast(%e) {to=1}\n"
                            "  %t = Transpose(%f) {perm=[1, 0]}\n"
                            "  %r = Reshape(%t, %shape)\n"  /* [6,4] -> [4,6] */
                            "  %s = Sub(%zero, %r)\n"       /* 0 - x is not x */
                            "  output %s\n"
                            "  output %mask\n"
                            "}\n",
                            pass_simplify, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 9, "%d nodes", g->n_nodes);
    CHECK(pt_count(g, "Mul") == 2 && pt_count(g, "Dropout") == 2 && pt_count(g, "Cast") == 2);
    gir_graph_free(g);
}

/* An identity from a graph input straight to a graph output cannot go:
** the output must keep its name and nothing else can write it. */
static void input_to_output_identity_stays(void) {
    gir_graph *g = pt_check("graph \"io\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[3]\n"
                            "  %y = Identity(%x)\n"
                            "  output %y\n"
                            "}\n",
                            pass_simplify, 0.0);
    if (!g) return;
    CHECK(g->n_nodes == 1 && !strcmp(g->outputs[0]->name, "y"));
    gir_graph_free(g);
}

static void reshape_chains_become_one_reshape(void) {
    gir_graph *g = pt_check("graph \"chains\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[2,3,4]\n"
                            "  const %s1 : i64[2] = {6, 4}\n"
                            "  const %s2 : i64[2] = {4, 6}\n"
                            "  const %ax : i64[1] = {1}\n"
                            "  %r = Relu(%x)\n"
                            "  %a = Reshape(%r, %s1)\n"
                            "  %b = Reshape(%a, %s2)\n"
                            "  %c = Unsqueeze(%b, %ax)\n"
                            "  %d = Squeeze(%c, %ax)\n"
                            "  %e = Flatten(%d) {axis=0}\n"
                            "  %f = Reshape(%e, %s1)\n"
                            "  output %f\n"
                            "}\n",
                            pass_simplify_chains, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 2 && pt_count(g, "Reshape") == 1, "%d nodes", g->n_nodes);
    CHECK(g->outputs[0]->type.dims[0].value == 6 && !strcmp(g->outputs[0]->name, "f"));
    gir_graph_free(g);
}

static void a_chain_back_to_its_operand_goes(void) {
    gir_graph *g = pt_check("graph \"back\" {\n"
                            "  opset 11\n"
                            "  input %x : f32[2,3]\n"
                            "  %r = Relu(%x)\n"
                            "  %a = Unsqueeze(%r) {axes=[0, 3]}\n"
                            "  %b = Squeeze(%a) {axes=[3, 0]}\n"
                            "  output %b\n"
                            "}\n",
                            pass_simplify_chains, 0.0);
    if (!g) return;
    CHECK(g->n_nodes == 1 && pt_count(g, "Relu") == 1 && !strcmp(g->outputs[0]->name, "b"));
    gir_graph_free(g);
}

static void transpose_chains_compose(void) {
    gir_graph *g = pt_check("graph \"tt\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[2,3,4]\n"
                            "  %r = Relu(%x)\n"
                            "  %a = Transpose(%r) {perm=[1, 0, 2]}\n"
                            "  %b = Transpose(%a) {perm=[0, 2, 1]}\n"
                            "  %c = Transpose(%b) {perm=[2, 0, 1]}\n" /* composes to the identity */
                            "  %d = Transpose(%r)\n"                  /* [2,1,0] */
                            "  %e = Transpose(%d) {perm=[1, 0, 2]}\n"
                            "  output %c\n"
                            "  output %e\n"
                            "}\n",
                            pass_simplify_chains, 0.0);
    if (!g) return;
    CHECK_MSG(pt_count(g, "Transpose") == 1 && g->n_nodes == 2, "%d nodes", g->n_nodes);
    const int64_t *perm;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "Transpose"))
            CHECK(gir_attr_ints(g->nodes[i], "perm", &perm) == 3 && perm[0] == 1 && perm[1] == 2 && perm[2] == 0);
    CHECK(!strcmp(g->outputs[0]->name, "c") && g->outputs[0]->producer && !strcmp(g->outputs[0]->producer->op_type, "Relu"));
    gir_graph_free(g);
}

/* The intermediate value has another reader (a node, or the graph's
** outputs): the pairs stay. */
static void shared_intermediates_stay(void) {
    gir_graph *g = pt_check("graph \"shared\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[2,3,4]\n"
                            "  const %s1 : i64[2] = {6, 4}\n"
                            "  const %s2 : i64[2] = {4, 6}\n"
                            "  %a = Reshape(%x, %s1)\n"
                            "  %b = Reshape(%a, %s2)\n"
                            "  %t = Transpose(%x) {perm=[1, 0, 2]}\n"
                            "  %u = Transpose(%t) {perm=[1, 0, 2]}\n"
                            "  %v = Neg(%t)\n"
                            "  output %a\n"
                            "  output %b\n"
                            "  output %u\n"
                            "  output %v\n"
                            "}\n",
                            pass_simplify_chains, 0.0);
    if (!g) return;
    CHECK(g->n_nodes == 5 && pt_count(g, "Reshape") == 2 && pt_count(g, "Transpose") == 2);
    gir_graph_free(g);
}

/* Shapes known only by rank: Squeeze∘Unsqueeze of the same axes still goes,
** other axes stay. */
static void squeeze_pairs_by_rank(void) {
    gir_graph *g = pt_parse("graph \"dyn\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[n,3]\n"
                            "  const %a2 : i64[1] = {2}\n"
                            "  const %am1 : i64[1] = {-1}\n"
                            "  const %a1 : i64[1] = {1}\n"
                            "  %r = Relu(%x)\n"
                            "  %u = Unsqueeze(%r, %am1)\n"
                            "  %s = Squeeze(%u, %a2)\n"
                            "  %v = Unsqueeze(%r, %a2)\n"
                            "  %w = Squeeze(%v, %a1)\n"
                            "  output %s\n"
                            "  output %w\n"
                            "}\n");
    if (!g) return;
    /* Relu keeps the rank; inference leaves symbolic shapes alone */
    gir_type *rt = &g->nodes[0]->outputs[0]->type;
    rt->dtype = KILN_F32;
    rt->rank = 2;
    rt->dims[0].value = -1;
    rt->dims[1].value = 3;
    if (pt_passes(g, (pt_pass[]){pass_simplify_chains}, 1)) {
        CHECK_MSG(g->n_nodes == 3 && pt_count(g, "Squeeze") == 1, "%d nodes", g->n_nodes);
        CHECK(!strcmp(g->outputs[0]->name, "s") && g->outputs[0]->producer == g->nodes[0]);
    }
    gir_graph_free(g);
}

static void common_nodes_and_constants_merge(void) {
    gir_graph *g = pt_check("graph \"cse\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[4]\n"
                            "  const %c1 : f32[4] = {1, 2, 3, 4}\n"
                            "  const %c2 : f32[4] = {1, 2, 3, 4}\n"
                            "  const %c3 : f32[4] = {1, 2, 3, 5}\n"
                            "  const %c4 : f64[4] = {1, 2, 3, 4}\n"
                            "  %a = Add(%x, %c1)\n"
                            "  %b = Add(%x, %c2)\n"
                            "  %p = Mul(%a, %a)\n"
                            "  %q = Mul(%b, %b)\n"
                            "  %r = Add(%x, %c3)\n"
                            "  %s = Softmax(%p) {axis=0}\n"
                            "  %t = Softmax(%q) {axis=-1}\n"
                            "  %d = Cast(%c4) {to=1}\n"
                            "  %u = Sum(%s, %t, %r, %d)\n"
                            "  output %u\n"
                            "  output %q\n"
                            "}\n",
                            pass_eliminate_common, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 7, "%d nodes", g->n_nodes);
    CHECK(pt_count(g, "Add") == 2 && pt_count(g, "Mul") == 1 && pt_count(g, "Softmax") == 2);
    /* q was a graph output: the kept Mul now writes it */
    CHECK(!strcmp(g->outputs[1]->name, "q") && g->outputs[1]->producer &&
          !strcmp(g->outputs[1]->producer->op_type, "Mul"));
    gir_graph_free(g);
}

/* Both are graph outputs (both names must stay); a subgraph attribute; a
** nondeterministic op; different attributes. */
static void some_equal_nodes_stay(void) {
    gir_graph *g = pt_parse("graph \"stay\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[3]\n"
                            "  input %c : bool[]\n"
                            "  %a = Neg(%x)\n"
                            "  %b = Neg(%x)\n"
                            "  %i = If(%c) {then_branch=graph \"t\" { %t = Identity(%x)\n output %t : f32[3] },\n"
                            "               else_branch=graph \"e\" { %e = Neg(%x)\n output %e : f32[3] }}\n"
                            "  %j = If(%c) {then_branch=graph \"t\" { %t = Identity(%x)\n output %t : f32[3] },\n"
                            "               else_branch=graph \"e\" { %e = Neg(%x)\n output %e : f32[3] }}\n"
                            "  %k = Relu(%x)\n"
                            "  %l = Relu(%x)\n"
                            "  %m = LeakyRelu(%x) {alpha=0.5}\n"
                            "  %n = LeakyRelu(%x) {alpha=0.25}\n"
                            "  %s = Sum(%i, %j, %k, %l, %m, %n)\n"
                            "  output %a\n"
                            "  output %b\n"
                            "  output %s\n"
                            "}\n");
    if (!g) return;
    /* pretend Relu is nondeterministic: such nodes are never merged */
    static kiln_op_def random_relu;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, "Relu")) {
            random_relu = *g->nodes[i]->op;
            random_relu.nondeterministic = true;
            g->nodes[i]->op = &random_relu;
        }
    int before = g->n_nodes;
    if (pt_passes(g, (pt_pass[]){pass_eliminate_common}, 1)) CHECK_MSG(g->n_nodes == before, "%d nodes", g->n_nodes);
    gir_graph_free(g);
}

static void dead_nodes_and_constants_go(void) {
    gir_graph *g = pt_check("graph \"dead\" {\n"
                            "  opset 13\n"
                            "  input %x : f32[4]\n"
                            "  input %cond : bool[]\n"
                            "  const %unused : f32[4] = {1, 2, 3, 4}\n"
                            "  const %branch : f32[4] = {5, 6, 7, 8}\n"
                            "  const %dead_branch : f32[4] = {9, 9, 9, 9}\n"
                            "  %a = Relu(%x)\n"
                            "  %d1 = Neg(%a)\n"
                            "  %d2 = Exp(%d1)\n"
                            "  %k = Sigmoid(%x)\n"
                            "  %w = Tanh(%x)\n"
                            "  %y = If(%cond) {then_branch=graph \"t\" { %t = Add(%k, %branch)\n output %t : f32[4] },\n"
                            "                  else_branch=graph \"e\" { %e = Identity(%a)\n output %e : f32[4] }}\n"
                            "  %z = If(%cond) {then_branch=graph \"t\" { %t = Add(%w, %dead_branch)\n output %t : f32[4] },\n"
                            "                  else_branch=graph \"e\" { %e = Identity(%w)\n output %e : f32[4] }}\n"
                            "  output %y\n"
                            "}\n",
                            pass_eliminate_dead, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 3 && pt_count(g, "Relu") == 1 && pt_count(g, "Sigmoid") == 1 && pt_count(g, "If") == 1,
              "%d nodes", g->n_nodes);
    CHECK(!gir_value_find(g, "unused") && !gir_value_find(g, "dead_branch") && !gir_value_find(g, "d2"));
    CHECK(gir_value_find(g, "branch") && gir_value_find(g, "k"));
    for (int i = 0; i < g->n_values; i++) CHECK(g->values[i]->id == i);
    gir_graph_free(g);
}

/* The passes one after the other, as the pipeline runs them. */
static void passes_compose(void) {
    static const pt_pass all[] = {pass_simplify, pass_simplify_chains, pass_eliminate_common, pass_eliminate_dead};
    gir_graph *g = pt_check_n("graph \"all\" {\n"
                              "  opset 13\n"
                              "  input %x : f32[2,6]\n"
                              "  const %one : f32[] = {1}\n"
                              "  const %s : i64[3] = {2, 2, 3}\n"
                              "  const %s2 : i64[3] = {2, 2, 3}\n"
                              "  const %flat : i64[2] = {4, 3}\n"
                              "  %a = Mul(%x, %one)\n"
                              "  %b = Reshape(%a, %s)\n"
                              "  %c = Reshape(%b, %flat)\n"
                              "  %d = Reshape(%x, %s2)\n"
                              "  %e = Reshape(%d, %flat)\n"
                              "  %f = Add(%c, %e)\n"
                              "  %g = Identity(%f)\n"
                              "  output %g\n"
                              "}\n",
                              all, 4, 0.0);
    if (!g) return;
    CHECK_MSG(g->n_nodes == 2 && pt_count(g, "Reshape") == 1 && pt_count(g, "Add") == 1, "%d nodes", g->n_nodes);
    int consts = 0;
    for (int i = 0; i < g->n_values; i++) consts += g->values[i]->constant != NULL;
    CHECK_MSG(consts == 1, "%d constants", consts);
    gir_graph_free(g);
}

/* Graphs the passes do not understand (no types: inference never ran;
** bad permutations and axes) are left as they are. */
static void malformed_graphs_are_left_alone(void) {
    static const char *const texts[] = {
        "graph \"a\" {\n opset 13\n input %x : f32[2,3]\n"
        " %t = Transpose(%x) {perm=[0]}\n %u = Transpose(%t) {perm=[0, 0]}\n output %u\n}\n",
        "graph \"b\" {\n opset 13\n input %x : f32[2,3]\n const %ax : i64[1] = {7}\n"
        " %u = Unsqueeze(%x, %ax)\n %s = Squeeze(%u, %ax)\n %m = Mul(%s, %ax)\n output %m\n}\n",
        "graph \"c\" {\n opset 13\n input %x : f32[2,3]\n const %t : bool[2] = {false, false}\n"
        " %r = Relu(%x)\n %d = Dropout(%r, _, %t)\n %c = Cast(%d) {to=99}\n %i = Identity(%c, %c)\n output %i\n}\n",
    };
    static const pt_pass all[] = {pass_simplify,       pass_simplify_chains,  pass_fold_batch_norm,
                                  pass_fold_matmul,    pass_eliminate_common, pass_eliminate_dead};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        gir_graph *g = NULL;
        if (!pt_ctx && kiln_ctx_new(&pt_ctx) == KILN_OK) atexit(pt_free_ctx);
        CHECK_MSG(gir_parse(pt_ctx, texts[t], &g) == KILN_OK, "%s", kiln_errmsg(pt_ctx));
        if (!g) continue;
        int before = g->n_nodes;
        for (size_t p = 0; p < sizeof all / sizeof all[0]; p++) {
            kiln_status s = all[p](pt_ctx, g);
            CHECK_MSG(s == KILN_OK || s == KILN_ERR_INVALID, "graph %zu pass %zu: %s", t, p, kiln_errmsg(pt_ctx));
        }
        CHECK_MSG(g->n_nodes == before, "graph %zu: %d nodes", t, g->n_nodes);
        gir_graph_free(g);
    }
}

/* Dropping values shortens the list that automatic names ("%N", N the
** list's length) come from: the names left must not meet the names of
** values made later. */
static void automatic_names_stay_unique(void) {
    static const char *const texts[] = {
        "graph \"renamed\" {\n opset 13\n input %x : f32[2]\n const %%5 : f32[2] = {1, 2}\n"
        " const %%9 : f32[2] = {3, 4}\n %%20 = Add(%x, %%9)\n %y = Neg(%%20)\n %d = Neg(%x)\n output %y\n}\n",
        /* an output keeps its automatic name: the list stays whole */
        "graph \"pinned\" {\n opset 13\n input %x : f32[2]\n const %%5 : f32[2] = {1, 2}\n"
        " const %%9 : f32[2] = {3, 4}\n %%7 = Add(%x, %%9)\n %d = Neg(%x)\n output %%7\n}\n",
    };
    for (int t = 0; t < 2; t++) {
        gir_graph *g = pt_check(texts[t], pass_eliminate_dead, 0.0);
        if (!g) continue;
        CHECK_MSG(g->n_values == (t == 0 ? 4 : 5), "graph %d: %d values", t, g->n_values);
        CHECK(g->n_nodes == (t == 0 ? 2 : 1));
        /* (the text form itself may name a value "%5" in a shorter list: only
        ** the renamed graph is sure to take new values) */
        for (int i = 0; t == 0 && i < 24; i++) CHECK(gir_value_new(g, NULL) != NULL);
        CHECK_MSG(gir_verify(pt_ctx, g, "new values after eliminate_dead") == KILN_OK, "%s", kiln_errmsg(pt_ctx));
        gir_graph_free(g);
    }
}

/* ---- random graphs: the passes against the interpreter ---- */

typedef struct rg_value {
    int rank;
    int64_t dims[4];
} rg_value;

static const int64_t rg_shapes[][4] = {{24}, {2, 12}, {4, 6}, {6, 4}, {2, 3, 4}, {4, 3, 2}, {1, 24}, {2, 1, 12}, {3, 8}, {1, 2, 3, 4}};
static const int rg_ranks[] = {1, 2, 2, 2, 3, 3, 2, 3, 2, 4};
#define RG_NSHAPES 10

static int rg_pick(int n) { return (int)(pt_unit() * n) % n; }

/* One random node reading earlier values; appends its text to buf. */
static void rg_node(char *buf, size_t cap, rg_value *vals, int *nv) {
    int a = pt_unit() < 0.6 ? *nv - 1 : rg_pick(*nv), kind = rg_pick(10), out = *nv; /* mostly chains */
    rg_value *v = &vals[a], r = *v;
    size_t len = strlen(buf);
    char *p = buf + len;
    size_t room = cap - len;
    switch (kind) {
    case 0: snprintf(p, room, "  %%v%d = Relu(%%v%d)\n", out, a); break;
    case 1: snprintf(p, room, "  %%v%d = Identity(%%v%d)\n", out, a); break;
    case 2: snprintf(p, room, "  %%v%d = Mul(%%v%d, %%one)\n", out, a); break;
    case 3: snprintf(p, room, "  %%v%d = Add(%%zero, %%v%d)\n", out, a); break;
    case 4: {
        int k = rg_pick(RG_NSHAPES);
        r.rank = rg_ranks[k];
        memcpy(r.dims, rg_shapes[k], sizeof r.dims);
        snprintf(p, room, "  %%v%d = Reshape(%%v%d, %%s%d)\n", out, a, k);
        break;
    }
    case 5: {
        int64_t perm[4] = {0, 1, 2, 3};
        for (int i = v->rank - 1; i > 0; i--) {
            int j = rg_pick(i + 1);
            int64_t t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        char list[64] = "";
        for (int i = 0; i < v->rank; i++) {
            r.dims[i] = v->dims[perm[i]];
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%lld", i ? ", " : "", (long long)perm[i]);
        }
        snprintf(p, room, "  %%v%d = Transpose(%%v%d) {perm=[%s]}\n", out, a, list);
        break;
    }
    case 6:
        if (v->rank < 4) {
            r.rank = v->rank + 1;
            r.dims[0] = 1;
            memcpy(r.dims + 1, v->dims, sizeof(int64_t) * (size_t)v->rank);
            snprintf(p, room, "  %%v%d = Unsqueeze(%%v%d, %%ax0)\n", out, a);
        } else {
            snprintf(p, room, "  %%v%d = Neg(%%v%d)\n", out, a);
        }
        break;
    case 7:
        if (v->dims[0] == 1 && v->rank > 1) {
            r.rank = v->rank - 1;
            memmove(r.dims, v->dims + 1, sizeof(int64_t) * (size_t)r.rank);
            snprintf(p, room, "  %%v%d = Squeeze(%%v%d, %%ax0)\n", out, a);
        } else {
            r.rank = 2;
            r.dims[0] = v->dims[0];
            r.dims[1] = 24 / v->dims[0];
            snprintf(p, room, "  %%v%d = Flatten(%%v%d) {axis=1}\n", out, a);
        }
        break;
    case 8: { /* the same node again, or a sum of two values of one shape */
        int b = rg_pick(*nv);
        bool same = vals[b].rank == v->rank && !memcmp(vals[b].dims, v->dims, sizeof(int64_t) * (size_t)v->rank);
        snprintf(p, room, "  %%v%d = Add(%%v%d, %%v%d)\n", out, a, same ? b : a);
        break;
    }
    default: snprintf(p, room, "  %%v%d = Mul(%%v%d, %%two)\n", out, a); break;
    }
    vals[(*nv)++] = r;
}

static void random_graphs_agree_with_the_interpreter(void) {
    static const pt_pass all[] = {pass_simplify,    pass_simplify_chains,  pass_fold_batch_norm,
                                  pass_fold_matmul, pass_eliminate_common, pass_eliminate_dead};
    static char text[16384];
    int removed = 0;
    int rounds = getenv("KILN_RANDOM_GRAPHS") ? atoi(getenv("KILN_RANDOM_GRAPHS")) : 60;
    for (int round = 0; round < rounds; round++) {
        rg_value vals[40] = {{3, {2, 3, 4}}};
        int nv = 1;
        snprintf(text, sizeof text, "graph \"random%d\" {\n  opset 13\n  input %%v0 : f32[2,3,4]\n"
                 "  const %%one : f32[] = {1}\n  const %%zero : f32[1] = {0}\n  const %%two : f32[] = {2}\n"
                 "  const %%ax0 : i64[1] = {0}\n", round);
        for (int k = 0; k < RG_NSHAPES; k++) {
            size_t len = strlen(text);
            snprintf(text + len, sizeof text - len, "  const %%s%d : i64[%d] = {", k, rg_ranks[k]);
            for (int i = 0; i < rg_ranks[k]; i++) {
                len = strlen(text);
                snprintf(text + len, sizeof text - len, "%s%lld", i ? ", " : "", (long long)rg_shapes[k][i]);
            }
            strcat(text, "}\n");
        }
        int n_nodes = 6 + rg_pick(30);
        for (int i = 0; i < n_nodes; i++) rg_node(text, sizeof text, vals, &nv);
        size_t len = strlen(text);
        snprintf(text + len, sizeof text - len, "  output %%v%d\n  output %%v%d\n}\n", nv - 1, 1 + rg_pick(nv - 2));
        int failures = kt_failures;
        gir_graph *g = pt_check_n(text, all, 6, 0.0);
        if (kt_failures != failures) fprintf(stderr, "the graph:\n%s", text);
        if (!g) return;
        removed += n_nodes - g->n_nodes;
        gir_graph_free(g);
    }
    CHECK_MSG(removed > rounds * 3, "the passes removed only %d nodes in %d graphs", removed, rounds);
}

static void the_pipeline_lists_the_passes_in_order(void) {
    static const char *const order[] = {"fold_constants",   "simplify",         "simplify_chains", "fold_batch_norm",
                                        "fold_matmul",      "eliminate_common", "eliminate_dead"};
    int last = -1;
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        int at = -1;
        for (int k = 0; k < pass_count(); k++)
            if (!strcmp(pass_at(k)->name, order[i])) at = k;
        CHECK_MSG(at > last, "%s is at %d", order[i], at);
        CHECK(at < 0 || i == 0 || pass_at(at)->level == 2);
        last = at;
    }
}

TEST_MAIN(T(identities_go_and_the_output_keeps_its_name), T(integer_identities_and_the_other_operand_order),
          T(look_alikes_stay), T(input_to_output_identity_stays), T(reshape_chains_become_one_reshape),
          T(a_chain_back_to_its_operand_goes), T(transpose_chains_compose), T(shared_intermediates_stay),
          T(squeeze_pairs_by_rank), T(common_nodes_and_constants_merge), T(some_equal_nodes_stay),
          T(dead_nodes_and_constants_go), T(automatic_names_stay_unique), T(random_graphs_agree_with_the_interpreter), T(passes_compose), T(malformed_graphs_are_left_alone),
          T(the_pipeline_lists_the_passes_in_order))
