/*
** test_onnx_errors.c — malformed models never crash the loader and give an
** error that names what is wrong and where.
*/
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/onnx.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "test_onnx_util.h"

static kiln_ctx *g_ctx;
static char g_dir[256];

/* Loads m (consumed); expects status `want` and every needle in the message. */
static void expect(int line, pb m, const char *dir, kiln_status want, const char *n1, const char *n2,
                   const char *n3) {
    gir_graph *g = NULL;
    kiln_ctx_free(g_ctx);
    kiln_ctx_new(&g_ctx);
    kiln_status s = onnx_load_bytes(g_ctx, m.p, m.n, dir, &g);
    if (!s) {
        s = onnx_bind_graph(g_ctx, g);
        gir_graph_free(g);
    } else {
        CHECK_MSG(g == NULL, "line %d: the out-parameter is untouched on failure", line);
    }
    const char *msg = kiln_errmsg(g_ctx);
    if (getenv("KILN_TEST_VERBOSE")) printf("line %d: %s: %s\n", line, kiln_status_name(s), msg);
    CHECK_MSG(s == want, "line %d: status %s, want %s (%s)", line, kiln_status_name(s), kiln_status_name(want), msg);
    const char *needles[] = {n1, n2, n3};
    for (int i = 0; i < 3; i++)
        if (needles[i]) CHECK_MSG(strstr(msg, needles[i]) != NULL, "line %d: '%s' not in: %s", line, needles[i], msg);
    pb_free(&m);
}
#define EXPECT(m, st, a, b, c) expect(__LINE__, m, NULL, st, a, b, c)

/* A graph X -> op(X, extra) -> Y with `extra` inits/inputs left to the caller. */
static pb one_node(const char *op, const char *const *ins, int opset) {
    graph_parts gp = {.name = "g"};
    int64_t d[] = {3};
    gp.inputs[gp.n_inputs++] = vi("X", 1, 1, d);
    gp.nodes[gp.n_nodes++] = node(op, "n0", ins, LIST("Y"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, 1, d);
    return model(graph(&gp), opset, NULL);
}

static pb with_init(pb t) {
    graph_parts gp = {.name = "g"};
    int64_t d[] = {3};
    gp.inits[gp.n_inits++] = t;
    gp.inputs[gp.n_inputs++] = vi("X", 1, 1, d);
    gp.nodes[gp.n_nodes++] = node("Add", "add", LIST("X", "W"), LIST("Y"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, 1, d);
    return model(graph(&gp), 13, NULL);
}

static void truncated_bytes(void) {
    pb m = small_model();
    int failed = 0;
    for (size_t len = 0; len < m.n; len++) {
        gir_graph *g = NULL;
        kiln_status s = onnx_load_bytes(g_ctx, m.p, len, NULL, &g);
        if (s) {
            failed++;
            CHECK(strcmp(kiln_errmsg(g_ctx), "no error") != 0);
        }
        gir_graph_free(g);
    }
    CHECK(failed == (int)m.n); /* the graph is the last field: every prefix cuts it */
    kiln_status s = onnx_load_bytes(g_ctx, m.p, m.n - 1, NULL, &(gir_graph *){NULL});
    CHECK(s == KILN_ERR_PARSE && strstr(kiln_errmsg(g_ctx), "byte") && strstr(kiln_errmsg(g_ctx), "past the end"));
    pb_free(&m);
}

static void random_and_mutated_bytes(void) {
    srand(1234);
    uint8_t buf[512];
    for (int i = 0; i < 3000; i++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t k = 0; k < n; k++) buf[k] = (uint8_t)rand();
        gir_graph *g = NULL;
        if (onnx_load_bytes(g_ctx, buf, n, NULL, &g) == KILN_OK) gir_graph_free(g);
        kiln_tensor t;
        if (onnx_tensor_decode(g_ctx, buf, n, &t) == KILN_OK) kiln_tensor_release(&t);
    }
    pb m = small_model();
    uint8_t *copy = malloc(m.n);
    for (int i = 0; i < 3000; i++) {
        memcpy(copy, m.p, m.n);
        for (int k = 0; k < 1 + i % 4; k++) copy[rand() % (int)m.n] = (uint8_t)rand();
        gir_graph *g = NULL;
        if (onnx_load_bytes(g_ctx, copy, m.n, NULL, &g) == KILN_OK) {
            onnx_bind_graph(g_ctx, g);
            gir_graph_free(g);
        }
    }
    free(copy);
    pb_free(&m);
}

static void wrong_wire_types(void) {
    pb m = {0};
    pb_int(&m, 7, 5); /* graph as a varint */
    EXPECT(m, KILN_ERR_PARSE, "ModelProto", "graph", "byte 0");
    graph_parts gp = {.name = "g"};
    pb a = {0};
    pb_str(&a, 1, "value");
    pb_int(&a, 5, 3); /* t as a varint */
    gp.nodes[gp.n_nodes++] = node("Constant", "c", NULL, LIST("Y"), 1, &a);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, -1, NULL);
    EXPECT(model(graph(&gp), 13, NULL), KILN_ERR_PARSE, "ModelProto.graph.node.attribute", "'t'", NULL);
    pb t = {0};
    pb_f32(&t, 1, 3.0f); /* dims as fixed32 */
    pb_int(&t, 2, 1);
    pb_str(&t, 8, "W");
    EXPECT(with_init(t), KILN_ERR_PARSE, "graph.initializer", "'dims'", NULL);
    pb r = {0};
    pb_int(&r, 2, 1);
    pb_str(&r, 8, "W");
    pb_int(&r, 9, 12); /* raw_data as a varint */
    EXPECT(with_init(r), KILN_ERR_PARSE, "ModelProto.graph.initializer", "raw_data", NULL);
    pb s = {0};
    pb_tag(&s, 7, 3); /* a group */
    EXPECT(s, KILN_ERR_PARSE, "group", NULL, NULL);
}

static void bad_dims_and_data(void) {
    float w[3] = {1, 2, 3};
    int64_t neg[] = {-3};
    EXPECT(with_init(t_raw("W", 1, 1, neg, w, 12)), KILN_ERR_INVALID, "initializer 'W'", "negative", NULL);
    int64_t huge[] = {1LL << 40, 1LL << 40};
    EXPECT(with_init(t_raw("W", 1, 2, huge, w, 12)), KILN_ERR_INVALID, "initializer 'W'", "overflow", NULL);
    int64_t four[] = {4};
    EXPECT(with_init(t_raw("W", 1, 1, four, w, 12)), KILN_ERR_INVALID, "initializer 'W'", "16 bytes", "12");
    EXPECT(with_init(t_floats("W", 1, four, w, 3)), KILN_ERR_INVALID, "initializer 'W'", "float_data holds 3", NULL);
    int64_t nine[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    EXPECT(with_init(t_raw("W", 1, 9, nine, w, 4)), KILN_ERR_UNSUPPORTED, "initializer 'W'", "rank 9", NULL);
    int64_t d3[] = {3};
    EXPECT(with_init(t_raw("W", 14, 1, d3, w, 12)), KILN_ERR_UNSUPPORTED, "initializer 'W'", "14 (COMPLEX64)", NULL);
    EXPECT(with_init(t_raw("W", 0, 1, d3, w, 12)), KILN_ERR_INVALID, "initializer 'W'", "undefined", NULL);
    pb st = t_raw("W", 8, 1, d3, "abc", 3);
    EXPECT(with_init(st), KILN_ERR_INVALID, "initializer 'W'", "string", NULL);
    pb both = t_floats("W", 1, d3, w, 3);
    pb_bytes(&both, 9, w, 12);
    EXPECT(with_init(both), KILN_ERR_INVALID, "initializer 'W'", "both", NULL);
    EXPECT(with_init(t_raw(NULL, 1, 1, d3, w, 12)), KILN_ERR_INVALID, "initializer 0 has no name", NULL, NULL);
    /* negative dims of a declared input */
    graph_parts gp = {.name = "g"};
    pb v = {0}, ty = {0}, tt = {0}, sh = {0}, dd = {0};
    pb_int(&dd, 1, -7);
    pb_msg(&sh, 1, dd);
    pb_int(&tt, 1, 1);
    pb_msg(&tt, 2, sh);
    pb_msg(&ty, 1, tt);
    pb_str(&v, 1, "X");
    pb_msg(&v, 2, ty);
    gp.inputs[gp.n_inputs++] = v;
    gp.outputs[gp.n_outputs++] = vi("X", 1, -1, NULL);
    EXPECT(model(graph(&gp), 13, NULL), KILN_ERR_INVALID, "input 'X'", "negative", NULL);
}

static void graph_structure(void) {
    graph_parts gp = {.name = "cyc"};
    gp.nodes[gp.n_nodes++] = node("Relu", "a", LIST("q"), LIST("p"), 0, NULL);
    gp.nodes[gp.n_nodes++] = node("Relu", "b", LIST("p"), LIST("q"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("q", 1, -1, NULL);
    EXPECT(model(graph(&gp), 13, NULL), KILN_ERR_INVALID, "cycle", "(Relu)", NULL);
    EXPECT(one_node("Add", LIST("X", "nope"), 13), KILN_ERR_INVALID, "node 'n0' (Add)", "'nope'", NULL);
    graph_parts g2 = {.name = "g"};
    g2.nodes[g2.n_nodes++] = node("Relu", "r", LIST("X"), LIST("Y"), 0, NULL); /* X never declared */
    g2.outputs[g2.n_outputs++] = vi("Y", 1, -1, NULL);
    EXPECT(model(graph(&g2), 13, NULL), KILN_ERR_INVALID, "node 'r' (Relu)", "input 'X'", NULL);
    graph_parts g3 = {.name = "g"};
    int64_t d[] = {3};
    g3.inputs[g3.n_inputs++] = vi("X", 1, 1, d);
    g3.nodes[g3.n_nodes++] = node("Relu", "r", LIST("X"), LIST("Y"), 0, NULL);
    g3.outputs[g3.n_outputs++] = vi("Z", 1, -1, NULL);
    EXPECT(model(graph(&g3), 13, NULL), KILN_ERR_INVALID, "output 'Z'", "not produced", NULL);
    graph_parts g4 = {.name = "g"};
    g4.inputs[g4.n_inputs++] = vi("X", 1, 1, d);
    g4.nodes[g4.n_nodes++] = node("Relu", "r1", LIST("X"), LIST("Y"), 0, NULL);
    g4.nodes[g4.n_nodes++] = node("Neg", "r2", LIST("X"), LIST("Y"), 0, NULL);
    g4.outputs[g4.n_outputs++] = vi("Y", 1, -1, NULL);
    EXPECT(model(graph(&g4), 13, NULL), KILN_ERR_INVALID, "node 'r2' (Neg)", "node 'r1' (Relu)", "'Y'");
    graph_parts g5 = {.name = "g"};
    g5.inputs[g5.n_inputs++] = vi("X", 1, 1, d);
    g5.nodes[g5.n_nodes++] = node("Relu", "r1", LIST("X"), LIST("X"), 0, NULL);
    g5.outputs[g5.n_outputs++] = vi("X", 1, -1, NULL);
    EXPECT(model(graph(&g5), 13, NULL), KILN_ERR_INVALID, "node 'r1' (Relu)", "graph input", NULL);
    graph_parts g6 = {.name = "g"};
    g6.inputs[g6.n_inputs++] = vi("X", 1, 1, d);
    g6.inputs[g6.n_inputs++] = vi("X", 1, 1, d);
    g6.outputs[g6.n_outputs++] = vi("X", 1, -1, NULL);
    EXPECT(model(graph(&g6), 13, NULL), KILN_ERR_INVALID, "input 'X'", "twice", NULL);
    EXPECT(model(graph(&(graph_parts){.name = "empty"}), 13, NULL), KILN_OK, NULL, NULL, NULL);
    pb nomodel = {0};
    EXPECT(nomodel, KILN_ERR_INVALID, "no graph", NULL, NULL);
}

static void ops_and_opsets(void) {
    EXPECT(one_node("FooBar", LIST("X"), 13), KILN_ERR_UNSUPPORTED, "node 'n0' (FooBar)", "unsupported op", NULL);
    EXPECT(one_node("Relu", LIST("X"), 1000), KILN_ERR_UNSUPPORTED, "node 'n0' (Relu)", "opset 1000", NULL);
    pb n = node("Gizmo", "gz", LIST("X"), LIST("Y"), 0, NULL);
    pb_str(&n, 7, "com.unknown");
    graph_parts gp = {.name = "g"};
    int64_t d[] = {3};
    gp.inputs[gp.n_inputs++] = vi("X", 1, 1, d);
    gp.nodes[gp.n_nodes++] = n;
    gp.outputs[gp.n_outputs++] = vi("Y", 1, -1, NULL);
    pb m = model(graph(&gp), 13, "com.unknown");
    gir_graph *g = NULL;
    CHECK_MSG(onnx_load_bytes(g_ctx, m.p, m.n, NULL, &g) == KILN_OK, "an unknown imported domain still loads: %s",
              kiln_errmsg(g_ctx));
    if (g) CHECK(g->nodes[0]->opset == 1 && strcmp(g->nodes[0]->domain, "com.unknown") == 0);
    gir_graph_free(g);
    kiln_model *km = (kiln_model *)1;
    CHECK(kiln_model_load_memory(g_ctx, m.p, m.n, &km) == KILN_ERR_UNSUPPORTED && km == (kiln_model *)1);
    CHECK(strstr(kiln_errmsg(g_ctx), "com.unknown") && strstr(kiln_errmsg(g_ctx), "gz"));
    pb_free(&m);
    pb n2 = node("Gizmo", "gz", LIST("X"), LIST("Y"), 0, NULL);
    pb_str(&n2, 7, "com.unimported");
    graph_parts g2 = {.name = "g"};
    g2.inputs[g2.n_inputs++] = vi("X", 1, 1, d);
    g2.nodes[g2.n_nodes++] = n2;
    g2.outputs[g2.n_outputs++] = vi("Y", 1, -1, NULL);
    EXPECT(model(graph(&g2), 13, NULL), KILN_ERR_INVALID, "node 'gz'", "no opset for domain 'com.unimported'", NULL);
}

static void unsupported_kinds(void) {
    graph_parts gp = {.name = "g"};
    pb v = {0}, ty = {0}, sq = {0};
    pb_msg(&ty, 4, sq); /* sequence_type */
    pb_str(&v, 1, "S");
    pb_msg(&v, 2, ty);
    gp.inputs[gp.n_inputs++] = v;
    gp.outputs[gp.n_outputs++] = vi("S", 1, -1, NULL);
    EXPECT(model(graph(&gp), 13, NULL), KILN_ERR_UNSUPPORTED, "input 'S'", "sequence", NULL);
    graph_parts g2 = {.name = "g"};
    pb a = {0};
    pb_str(&a, 1, "many");
    pb_int(&a, 20, 9); /* TENSORS */
    g2.nodes[g2.n_nodes++] = node("Constant", "c", NULL, LIST("Y"), 1, &a);
    g2.outputs[g2.n_outputs++] = vi("Y", 1, -1, NULL);
    EXPECT(model(graph(&g2), 13, NULL), KILN_ERR_UNSUPPORTED, "node 'c' (Constant)", "attribute 'many'", "TENSORS");
    graph_parts g3 = {.name = "g"};
    pb sp = {0}, spv = {0};
    int64_t d[] = {1};
    float one = 1;
    spv = t_raw("sp", 1, 1, d, &one, 4);
    pb_msg(&sp, 1, spv);
    pb gb = graph(&g3);
    pb_msg(&gb, 15, sp);
    EXPECT(model(gb, 13, NULL), KILN_ERR_UNSUPPORTED, "sparse initializer 'sp'", NULL, NULL);
}

/* Subgraphs nested `depth` deep. */
static pb nested(int depth) {
    graph_parts gp = {.name = "inner"};
    gp.nodes[gp.n_nodes++] = node("Identity", "id", LIST("X"), LIST("Y"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, -1, NULL);
    pb g = graph(&gp);
    for (int i = 0; i < depth; i++) {
        graph_parts o = {.name = "outer"};
        pb a = a_graph("body", g);
        o.nodes[o.n_nodes++] = node("Loopish", "l", NULL, LIST("Y"), 1, &a);
        o.outputs[o.n_outputs++] = vi("Y", 1, -1, NULL);
        g = graph(&o);
    }
    graph_parts top = {.name = "top"};
    int64_t d[] = {3};
    top.inputs[top.n_inputs++] = vi("X", 1, 1, d);
    pb a = a_graph("body", g);
    top.nodes[top.n_nodes++] = node("If", "if", NULL, LIST("Y"), 1, &a);
    top.outputs[top.n_outputs++] = vi("Y", 1, -1, NULL);
    return model(graph(&top), 13, NULL);
}

static void subgraphs(void) {
    EXPECT(nested(3), KILN_ERR_INVALID, "node 'if' (If)", NULL, NULL); /* loads; binding names the malformed If */
    EXPECT(nested(40), KILN_ERR_PARSE, "nested deeper", NULL, NULL);
    graph_parts sg = {.name = "body"};
    sg.nodes[sg.n_nodes++] = node("Identity", "id", LIST("nowhere"), LIST("out"), 0, NULL);
    sg.outputs[sg.n_outputs++] = vi("out", 1, -1, NULL);
    graph_parts gp = {.name = "top"};
    pb a = a_graph("then_branch", graph(&sg));
    gp.nodes[gp.n_nodes++] = node("If", "if", NULL, LIST("Y"), 1, &a);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, -1, NULL);
    EXPECT(model(graph(&gp), 13, NULL), KILN_ERR_INVALID, "attribute 'then_branch'", "node 'id' (Identity)",
           "'nowhere'");
}

static pb ext_model(const char *loc, const char *off, const char *len) {
    pb t = {0}, e = {0};
    pb_int(&t, 1, 3);
    pb_int(&t, 2, 1);
    pb_str(&t, 8, "W");
    pb_str(&e, 1, "location");
    pb_str(&e, 2, loc);
    pb_msg(&t, 13, e);
    if (off) {
        pb o = {0};
        pb_str(&o, 1, "offset");
        pb_str(&o, 2, off);
        pb_msg(&t, 13, o);
    }
    if (len) {
        pb l = {0};
        pb_str(&l, 1, "length");
        pb_str(&l, 2, len);
        pb_msg(&t, 13, l);
    }
    pb_int(&t, 14, 1);
    return with_init(t);
}

static void external_data_errors(void) {
    char path[512], link[512];
    snprintf(path, sizeof path, "%s/w.bin", g_dir);
    FILE *f = fopen(path, "wb");
    float w[4] = {1, 2, 3, 4};
    if (f) {
        fwrite(w, 1, sizeof w, f);
        fclose(f);
    }
    snprintf(link, sizeof link, "%s/escape.bin", g_dir);
    CHECK(symlink("/etc/hostname", link) == 0);
    expect(__LINE__, ext_model("w.bin", "4", "12"), g_dir, KILN_OK, NULL, NULL, NULL);
    expect(__LINE__, ext_model("../w.bin", NULL, NULL), g_dir, KILN_ERR_INVALID, "initializer 'W'", "leaves", NULL);
    expect(__LINE__, ext_model("a/../../w.bin", NULL, NULL), g_dir, KILN_ERR_INVALID, "leaves", NULL, NULL);
    expect(__LINE__, ext_model("/etc/passwd", NULL, NULL), g_dir, KILN_ERR_INVALID, "absolute", NULL, NULL);
    expect(__LINE__, ext_model("escape.bin", NULL, NULL), g_dir, KILN_ERR_INVALID, "outside the model's folder", NULL, NULL);
    expect(__LINE__, ext_model("w.bin", "8", NULL), g_dir, KILN_ERR_INVALID, "initializer 'W'", "outside", "w.bin");
    expect(__LINE__, ext_model("w.bin", "99999999999999999999", NULL), g_dir, KILN_ERR_INVALID, "offset", NULL, NULL);
    expect(__LINE__, ext_model("w.bin", "-4", NULL), g_dir, KILN_ERR_INVALID, "offset", NULL, NULL);
    expect(__LINE__, ext_model("w.bin", NULL, "8"), g_dir, KILN_ERR_INVALID, "length 8", NULL, NULL);
    expect(__LINE__, ext_model("missing.bin", NULL, NULL), g_dir, KILN_ERR_IO, "missing.bin", NULL, NULL);
    expect(__LINE__, ext_model("w.bin", NULL, NULL), NULL, KILN_ERR_INVALID, "without a folder", NULL, NULL);
    unlink(link);
    unlink(path);
}

static void tensor_file_errors(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/nope.pb", g_dir);
    kiln_tensor t = {.dtype = KILN_F32};
    CHECK(kiln_tensor_load_pb(g_ctx, path, &t) == KILN_ERR_IO && strstr(kiln_errmsg(g_ctx), "nope.pb"));
    CHECK(t.dtype == KILN_F32 && t.data == NULL);
    CHECK(kiln_tensor_load_pb(g_ctx, g_dir, &t) == KILN_ERR_IO);
    int64_t d[] = {2};
    pb bad = t_raw("x", 1, 1, d, "abc", 3);
    CHECK(onnx_tensor_decode(g_ctx, bad.p, bad.n, &t) == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "tensor 'x'"));
    pb_free(&bad);
    kiln_tensor w;
    kiln_tensor_init(&w, KILN_F32, 1, d);
    float v[2] = {0};
    w.data = v;
    CHECK(kiln_tensor_save_pb(g_ctx, "/nonexistent-dir/x.pb", &w, "x") == KILN_ERR_IO);
}

static void model_file_errors(void) {
    gir_graph *g = (gir_graph *)1;
    CHECK(onnx_load_file(g_ctx, "/nonexistent/m.onnx", &g) == KILN_ERR_IO);
    CHECK(strstr(kiln_errmsg(g_ctx), "/nonexistent/m.onnx") && g == (gir_graph *)1);
    CHECK(onnx_load_file(g_ctx, g_dir, &g) == KILN_ERR_IO && g == (gir_graph *)1);
    char path[512];
    snprintf(path, sizeof path, "%s/empty.onnx", g_dir);
    FILE *f = fopen(path, "wb");
    if (f) fclose(f);
    CHECK(onnx_load_file(g_ctx, path, &g) == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "no graph"));
    kiln_model *m = (kiln_model *)1;
    CHECK(kiln_model_load(g_ctx, "/nonexistent/m.onnx", &m) == KILN_ERR_IO && m == (kiln_model *)1);
    unlink(path);
}

static void no_leaks(void) { CHECK_MSG(kiln_mem_live() == 1, "%ld blocks live (the context is one)", kiln_mem_live()); }

static void setup(void) {
    CHECK(kiln_ctx_new(&g_ctx) == KILN_OK);
    snprintf(g_dir, sizeof g_dir, "/tmp/kiln_onnx_err_XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
}

static void teardown(void) {
    rmdir(g_dir);
    kiln_ctx_free(g_ctx);
}

TEST_MAIN(T(setup), T(truncated_bytes), T(random_and_mutated_bytes), T(wrong_wire_types), T(bad_dims_and_data),
          T(graph_structure), T(ops_and_opsets), T(unsupported_kinds), T(subgraphs), T(external_data_errors),
          T(tensor_file_errors), T(model_file_errors), T(no_leaks), T(teardown))
