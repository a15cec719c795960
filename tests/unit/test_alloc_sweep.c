/*
** test_alloc_sweep.c — fails the Nth allocation, N = 0, 1, 2, ..., while
** loading a small but complete model (initializers raw, typed and external,
** attributes of every kind, a Constant node, a subgraph) until a load
** succeeds. Every failed load must report KILN_ERR_NOMEM and leave no block
** behind.
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

/* small_model plus a node with attributes of every kind (one a subgraph
** with its own initializer and an outer-scope name) and an external weight. */
static pb sweep_model(void) {
    graph_parts gp = {.name = "sweep"};
    int64_t d3[] = {3}, dN3[] = {-1, 3}, iv[] = {1, 2};
    float w[] = {1, 2, 3}, bb[] = {0.5f, 0.5f, 2}, fv[] = {0.5f};
    const char *sv[] = {"x", "yy"};
    gp.inits[gp.n_inits++] = t_raw("W", 1, 1, d3, w, sizeof w);
    gp.inits[gp.n_inits++] = t_floats("B", 1, d3, bb, 3);
    pb ext = {0}, e1 = {0}, e2 = {0};
    pb_int(&ext, 1, 3);
    pb_int(&ext, 2, 1);
    pb_str(&ext, 8, "E");
    pb_str(&e1, 1, "location");
    pb_str(&e1, 2, "sweep.bin");
    pb_msg(&ext, 13, e1);
    pb_str(&e2, 1, "offset");
    pb_str(&e2, 2, "1"); /* unaligned: copied */
    pb_msg(&ext, 13, e2);
    pb_int(&ext, 14, 1);
    gp.inits[gp.n_inits++] = ext;
    gp.inputs[gp.n_inputs++] = vi("X", 1, 2, dN3);
    gp.inputs[gp.n_inputs++] = vi("B", 1, 1, d3);
    pb ca = a_tensor("value", t_raw(NULL, 1, 1, d3, w, sizeof w));
    gp.nodes[gp.n_nodes++] = node("Constant", "c", NULL, LIST("C"), 1, &ca);
    gp.nodes[gp.n_nodes++] = node("Add", "add", LIST("X", "W"), LIST("S"), 0, NULL);
    gp.nodes[gp.n_nodes++] = node("Mul", "", LIST("S", "C"), LIST("S2"), 0, NULL);
    graph_parts sg = {.name = "body"};
    sg.inits[sg.n_inits++] = t_raw("K", 1, 1, d3, w, sizeof w);
    sg.nodes[sg.n_nodes++] = node("Add", "inner", LIST("S2", "K"), LIST("out"), 0, NULL);
    sg.outputs[sg.n_outputs++] = vi("out", 1, -1, NULL);
    pb a[8] = {a_float("f", 0.5f), a_int("i", 3), a_str("s", "text"), a_tensor("t", t_floats("tv", 1, d3, w, 3)),
               a_graph("g", graph(&sg)), a_floats("fs", 1, fv), a_ints("is", 2, iv), a_strs("ss", 2, sv)};
    pb th = node("Thing", "thing", LIST("S2", "E", ""), LIST("P", ""), 8, a);
    pb_str(&th, 7, "com.example");
    gp.nodes[gp.n_nodes++] = th;
    gp.nodes[gp.n_nodes++] = node("Mul", "mul", LIST("P", "B"), LIST("Y"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, 2, dN3);
    return model(graph(&gp), 13, "com.example");
}

typedef kiln_status (*load_fn)(const char *path, const pb *m);

static kiln_status load_bytes(const char *path, const pb *m) {
    gir_graph *g = NULL;
    kiln_status s = onnx_load_bytes(g_ctx, m->p, m->n, g_dir, &g);
    gir_graph_free(g);
    return s;
}

static kiln_status load_file(const char *path, const pb *m) {
    gir_graph *g = NULL;
    kiln_status s = onnx_load_file(g_ctx, path, &g);
    gir_graph_free(g);
    return s;
}

static kiln_status load_model(const char *path, const pb *m) {
    kiln_model *km = NULL;
    kiln_status s = kiln_model_load(g_ctx, path, &km);
    kiln_model_free(km);
    return s;
}

static kiln_status load_tensor(const char *path, const pb *m) {
    kiln_tensor t;
    kiln_status s = onnx_tensor_read_file(g_ctx, path, &t);
    if (!s) kiln_tensor_release(&t);
    return s;
}

/* Runs `fn` with the Nth allocation failing until it succeeds. */
static void sweep(const char *name, load_fn fn, const char *path, const pb *m) {
    long base = kiln_mem_live();
    long n;
    for (n = 0; n < 100000; n++) {
        kiln_mem_fail_after(n);
        kiln_status s = fn(path, m);
        kiln_mem_fail_after(-1);
        CHECK_MSG(kiln_mem_live() == base, "%s: %ld blocks leaked when allocation %ld failed", name,
                  kiln_mem_live() - base, n);
        if (s == KILN_OK) break;
        CHECK_MSG(s == KILN_ERR_NOMEM, "%s: allocation %ld failed gave '%s': %s", name, n, kiln_status_name(s),
                  kiln_errmsg(g_ctx));
        if (kiln_mem_live() != base || s != KILN_ERR_NOMEM) break;
    }
    printf("%s: succeeded after %ld failing runs\n", name, n);
    CHECK(n > 10 && n < 100000);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

static void sweeps(void) {
    char model_path[512], bin[512], small_path[512], pbpath[512];
    snprintf(model_path, sizeof model_path, "%s/sweep.onnx", g_dir);
    snprintf(small_path, sizeof small_path, "%s/small.onnx", g_dir);
    snprintf(bin, sizeof bin, "%s/sweep.bin", g_dir);
    snprintf(pbpath, sizeof pbpath, "%s/t.pb", g_dir);
    float w[4] = {0, 1, 2, 3};
    write_file(bin, w, sizeof w);
    pb m = sweep_model(), s = small_model();
    write_file(model_path, m.p, m.n);
    write_file(small_path, s.p, s.n);
    CHECK_MSG(load_bytes(NULL, &m) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    sweep("onnx_load_bytes", load_bytes, NULL, &m);
    sweep("onnx_load_file", load_file, model_path, NULL);
    CHECK_MSG(load_model(small_path, NULL) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    sweep("kiln_model_load", load_model, small_path, NULL);
    const char *strs[] = {"a", "bcd", ""};
    int64_t d[] = {3};
    kiln_tensor t;
    kiln_tensor_init(&t, KILN_STRING, 1, d);
    t.data = (void *)strs;
    CHECK(kiln_tensor_save_pb(g_ctx, pbpath, &t, "s") == KILN_OK);
    sweep("onnx_tensor_read_file", load_tensor, pbpath, NULL);
    pb_free(&m);
    pb_free(&s);
    unlink(model_path);
    unlink(small_path);
    unlink(bin);
    unlink(pbpath);
}

static void setup(void) {
    CHECK(kiln_ctx_new(&g_ctx) == KILN_OK);
    snprintf(g_dir, sizeof g_dir, "/tmp/kiln_sweep_XXXXXX");
    CHECK(mkdtemp(g_dir) != NULL);
}

static void teardown(void) {
    rmdir(g_dir);
    kiln_ctx_free(g_ctx);
    CHECK(kiln_mem_live() == 0);
}

TEST_MAIN(T(setup), T(sweeps), T(teardown))
