/*
** test_onnx_load.c — the ONNX frontend on valid input: graph structure,
** attributes of every kind, subgraphs, every TensorProto data field, .pb
** files, weights referenced in place, external data, and ONNX's own
** conformance models.
*/
#define _GNU_SOURCE
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/onnx.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "test_onnx_util.h"

static kiln_ctx *g_ctx;

static gir_graph *load(pb *m) {
    gir_graph *g = NULL;
    kiln_status s = onnx_load_bytes(g_ctx, m->p, m->n, NULL, &g);
    CHECK_MSG(s == KILN_OK, "load: %s", kiln_errmsg(g_ctx));
    return g;
}

static const gir_node *find_node(const gir_graph *g, const char *name) {
    for (int i = 0; i < g->n_nodes; i++)
        if (strcmp(g->nodes[i]->name, name) == 0) return g->nodes[i];
    return NULL;
}

static void small_model_structure(void) {
    pb m = small_model();
    gir_graph *g = load(&m);
    pb_free(&m);
    if (!g) return;
    CHECK(g->n_inputs == 1 && strcmp(g->inputs[0]->name, "X") == 0);
    CHECK(g->inputs[0]->type.dtype == KILN_F32 && g->inputs[0]->type.rank == 2);
    CHECK(g->inputs[0]->type.dims[0].value == -1 && g->inputs[0]->type.dims[0].sym &&
          strcmp(g->inputs[0]->type.dims[0].sym, "N") == 0);
    CHECK(g->inputs[0]->type.dims[1].value == 3 && !g->inputs[0]->type.dims[1].sym);
    gir_value *w = gir_value_find(g, "W"), *b = gir_value_find(g, "B");
    CHECK(w && w->constant && !w->is_input && b && b->constant && !b->is_input);
    if (w && w->constant) CHECK(((float *)w->constant->data)[2] == 3.0f && (uintptr_t)w->constant->data % 4 == 0);
    if (b && b->constant) CHECK(((float *)b->constant->data)[2] == 2.0f && b->type.dims[0].value == 3);
    CHECK(g->n_nodes == 5 && g->n_outputs == 1 && strcmp(g->outputs[0]->name, "Y") == 0);
    CHECK(g->ir_version == 8 && g->producer && strcmp(g->producer, "kiln-test") == 0);
    CHECK(g->n_opsets == 1 && gir_opset_version(g, "") == 13);
    const gir_node *c = find_node(g, "c"), *mul = find_node(g, "Mul_2");
    CHECK(c && c->n_inputs == 0 && c->n_attrs == 1 && c->attrs[0].kind == GIR_ATTR_TENSOR);
    CHECK_MSG(mul != NULL, "an unnamed node gets a generated name");
    for (int i = 0; i < g->n_nodes; i++) CHECK(g->nodes[i]->opset == 13 && g->nodes[i]->domain[0] == 0);
    /* topological order: every input is defined before its use */
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i]->n_inputs; k++) {
            gir_value *v = g->nodes[i]->inputs[k];
            CHECK(!v->producer || v->producer->id < i);
        }
    gir_graph_free(g);
}

static void small_model_runs(void) {
    pb m = small_model();
    kiln_model *km = NULL;
    kiln_status s = kiln_model_load_memory(g_ctx, m.p, m.n, &km);
    pb_free(&m);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (s) return;
    CHECK(kiln_model_num_inputs(km) == 1 && kiln_model_num_outputs(km) == 1);
    CHECK(strcmp(kiln_model_input_name(km, 0), "X") == 0 && strcmp(kiln_model_output_name(km, 0), "Y") == 0);
    CHECK(kiln_model_input_name(km, 1) == NULL && kiln_model_graph(km) != NULL);
    float x[] = {0, 0, 0, -5, -5, -5};
    float want[] = {0.5f, 1, 6, -0.2f, -0.15f, -0.4f};
    int64_t dims[] = {2, 3};
    kiln_tensor in, out;
    kiln_tensor_init(&in, KILN_F32, 2, dims);
    in.data = x;
    s = kiln_model_run_ref(g_ctx, km, &in, 1, &out, 1);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        const float *y = out.data;
        for (int i = 0; i < 6; i++) CHECK_MSG(fabs(y[i] - want[i]) < 1e-6, "y[%d] = %g, want %g", i, y[i], want[i]);
        kiln_tensor_release(&out);
    }
    kiln_model_free(km);
}

static pb then_branch(const char *name, const char *outer) {
    graph_parts sg = {.name = name};
    sg.nodes[sg.n_nodes++] = node("Identity", NULL, LIST(outer), LIST("out"), 0, NULL);
    sg.outputs[sg.n_outputs++] = vi("out", 1, -1, NULL);
    return graph(&sg);
}

static void attributes_of_every_kind(void) {
    graph_parts gp = {.name = "attrs"};
    int64_t d2[] = {2}, iv[] = {4, -5, 6};
    float fv[] = {0.25f, -1.5f};
    const char *sv[] = {"alpha", "", "gamma"};
    gp.inputs[gp.n_inputs++] = vi("X", 1, 1, d2);
    pb a[8];
    a[0] = a_float("f", 0.75f);
    a[1] = a_int("i", -42);
    pb s = {0};
    pb_str(&s, 1, "s");
    pb_bytes(&s, 4, "a\0b", 3);
    pb_int(&s, 20, 3);
    a[2] = s;
    int32_t tv[] = {7, 8};
    a[3] = a_tensor("t", t_raw("tv", 6, 1, d2, tv, sizeof tv));
    a[4] = a_graph("g", then_branch("body", "X"));
    a[5] = a_floats("fs", 2, fv);
    a[6] = a_ints("is", 3, iv);
    a[7] = a_strs("ss", 3, sv);
    pb n = node("Thing", "thing", LIST("X"), LIST("Y"), 8, a);
    pb_str(&n, 7, "com.example");
    gp.nodes[gp.n_nodes++] = n;
    gp.outputs[gp.n_outputs++] = vi("Y", 1, -1, NULL);
    pb m = model(graph(&gp), 17, "com.example");
    gir_graph *g = load(&m);
    if (g) {
        const gir_node *t = g->nodes[0];
        CHECK(strcmp(t->domain, "com.example") == 0 && t->opset == 1 && t->n_attrs == 8);
        CHECK(gir_attr_float(t, "f", 0) == 0.75 && gir_attr_int(t, "i", 0) == -42);
        const gir_attr *sa = gir_attr_find(t, "s");
        CHECK(sa && sa->s_len == 3 && memcmp(sa->s, "a\0b", 4) == 0);
        const gir_attr *ta = gir_attr_find(t, "t");
        CHECK(ta && ta->t && ta->t->dtype == KILN_I32 && ((int32_t *)ta->t->data)[1] == 8);
        const gir_attr *ga = gir_attr_find(t, "g");
        CHECK(ga && ga->g && ga->g->n_nodes == 1 && ga->g->n_outputs == 1 && ga->g->n_inputs == 0);
        if (ga && ga->g) {
            gir_value *x = gir_value_find(ga->g, "X");
            CHECK_MSG(x && !x->producer && !x->is_input && !x->constant && x->type.dtype == KILN_F32,
                      "an outer-scope name becomes a free value of the subgraph");
            CHECK(gir_opset_version(ga->g, "") == 17 && strcmp(ga->g->name, "body") == 0);
        }
        const double *fs;
        const int64_t *is;
        CHECK(gir_attr_floats(t, "fs", &fs) == 2 && fs[1] == -1.5);
        CHECK(gir_attr_ints(t, "is", &is) == 3 && is[1] == -5);
        const gir_attr *ss = gir_attr_find(t, "ss");
        CHECK(ss && ss->n == 3 && strcmp(ss->strings[2], "gamma") == 0 && ss->strings[1][0] == 0);
        kiln_status s2 = onnx_bind_graph(g_ctx, g);
        CHECK(s2 == KILN_ERR_UNSUPPORTED && strstr(kiln_errmsg(g_ctx), "thing"));
        gir_graph_free(g);
    }
    pb_free(&m);
}

static kiln_tensor decode(pb *t) {
    kiln_tensor out;
    memset(&out, 0, sizeof out);
    kiln_status s = onnx_tensor_decode(g_ctx, t->p, t->n, &out);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    pb_free(t);
    return out;
}

/* A TensorProto with dims {n} and `count` values in repeated field `field`. */
static pb typed(int dtype, int field, int wt, int count, const int64_t *vals) {
    pb t = {0}, packed = {0};
    pb_int(&t, 1, count);
    pb_int(&t, 2, dtype);
    for (int i = 0; i < count; i++) {
        if (wt == 0) pb_varint(&packed, (uint64_t)vals[i]);
        else if (wt == 1) {
            double d = (double)vals[i];
            pb_raw(&packed, &d, 8);
        }
    }
    pb_msg(&t, field, packed);
    return t;
}

static void tensor_data_fields(void) {
    int64_t v[] = {-3, 200, 1};
    pb t = typed(3, 5, 0, 3, v); /* int8 in int32_data */
    kiln_tensor k = decode(&t);
    if (k.data) CHECK(k.dtype == KILN_I8 && ((int8_t *)k.data)[0] == -3 && ((int8_t *)k.data)[1] == (int8_t)200);
    kiln_tensor_release(&k);
    int64_t hv[] = {0x3c00, 0xc000, 0};
    t = typed(10, 5, 0, 3, hv); /* f16 bit patterns in int32_data */
    k = decode(&t);
    if (k.data) CHECK(kiln_f16_to_f32(((uint16_t *)k.data)[1]) == -2.0f);
    kiln_tensor_release(&k);
    int64_t bv[] = {0, 5, 1};
    t = typed(9, 5, 0, 3, bv);
    k = decode(&t);
    if (k.data) CHECK(((uint8_t *)k.data)[1] == 1 && ((uint8_t *)k.data)[0] == 0);
    kiln_tensor_release(&k);
    int64_t lv[] = {INT64_MIN, -1, INT64_MAX};
    t = typed(7, 7, 0, 3, lv);
    k = decode(&t);
    if (k.data) CHECK(((int64_t *)k.data)[0] == INT64_MIN && ((int64_t *)k.data)[2] == INT64_MAX);
    kiln_tensor_release(&k);
    int64_t uv[] = {1, 4000000000LL, 7};
    t = typed(12, 11, 0, 3, uv); /* uint32 in uint64_data */
    k = decode(&t);
    if (k.data) CHECK(k.dtype == KILN_U32 && ((uint32_t *)k.data)[1] == 4000000000u);
    kiln_tensor_release(&k);
    t = typed(11, 10, 1, 3, v); /* double_data */
    k = decode(&t);
    if (k.data) CHECK(((double *)k.data)[1] == 200.0);
    kiln_tensor_release(&k);
    pb st = {0};
    pb_int(&st, 1, 2);
    pb_int(&st, 2, 8);
    pb_str(&st, 6, "hello");
    pb_str(&st, 6, "");
    pb_str(&st, 8, "names");
    k = decode(&st);
    if (k.data) CHECK(k.dtype == KILN_STRING && strcmp(((char **)k.data)[0], "hello") == 0 && ((char **)k.data)[1][0] == 0);
    kiln_tensor_release(&k);
    pb sc = {0}; /* a scalar: no dims, one value */
    pb_int(&sc, 2, 1);
    pb_f32(&sc, 4, 2.5f);
    k = decode(&sc);
    if (k.data) CHECK(k.rank == 0 && ((float *)k.data)[0] == 2.5f);
    kiln_tensor_release(&k);
    int64_t d3[] = {3}, d5[] = {5};
    uint8_t i4raw[] = {0x87, 0x0f}; /* int4 7, -8, -1: two per byte, first in the low bits */
    pb t4 = t_raw("q", 22, 1, d3, i4raw, 2);
    k = decode(&t4);
    if (k.data) CHECK(k.dtype == KILN_I4 && ((int8_t *)k.data)[0] == 7 && ((int8_t *)k.data)[1] == -8 && ((int8_t *)k.data)[2] == -1);
    kiln_tensor_release(&k);
    t = (pb){0}; /* the same in int32_data: two elements per value */
    pb_int(&t, 1, 3);
    pb_int(&t, 2, 22);
    pb packed = {0};
    pb_varint(&packed, 0x87);
    pb_varint(&packed, 0x0f);
    pb_msg(&t, 5, packed);
    k = decode(&t);
    if (k.data) CHECK(((int8_t *)k.data)[1] == -8 && ((int8_t *)k.data)[2] == -1);
    kiln_tensor_release(&k);
    uint8_t u2raw[] = {0x39, 0x01}; /* uint2 1, 2, 3, 0, 1: four per byte */
    pb t2 = t_raw("u", 25, 1, d5, u2raw, 2);
    k = decode(&t2);
    if (k.data) CHECK(k.dtype == KILN_U2 && ((uint8_t *)k.data)[2] == 3 && ((uint8_t *)k.data)[4] == 1);
    kiln_tensor_release(&k);
    pb t8 = t_raw("f8", 17, 1, d3, "\x38\x40\xb8", 3); /* float8e4m3fn: one byte each */
    k = decode(&t8);
    if (k.data) CHECK(k.dtype == KILN_F8E4M3FN && ((uint8_t *)k.data)[2] == 0xb8);
    kiln_tensor_release(&k);
    pb e = {0}; /* an empty tensor: no data at all */
    pb_int(&e, 1, 0);
    pb_int(&e, 1, 4);
    pb_int(&e, 2, 1);
    k = decode(&e);
    CHECK(k.rank == 2 && kiln_numel(&k) == 0);
    kiln_tensor_release(&k);
}

static char g_dir[256];

static void make_dir(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/kiln_onnx_XXXXXX");
    if (!mkdtemp(g_dir)) g_dir[0] = 0;
}

static void tensor_file_roundtrip(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/t.pb", g_dir);
    int64_t dims[] = {2, 2};
    float v[] = {1, -2, 3.5f, 1e-30f};
    kiln_tensor t, r;
    kiln_tensor_init(&t, KILN_F32, 2, dims);
    t.data = v;
    CHECK(kiln_tensor_save_pb(g_ctx, path, &t, "x") == KILN_OK);
    CHECK_MSG(kiln_tensor_load_pb(g_ctx, path, &r) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(r.dtype == KILN_F32 && kiln_tensor_same_shape(&t, &r) && memcmp(r.data, v, sizeof v) == 0);
    CHECK(r.alloc == r.data && (uintptr_t)r.data % 16 == 0);
    kiln_tensor_release(&r);
    int8_t q[] = {7, -8, -1};
    int64_t d3[] = {3};
    kiln_tensor_init(&t, KILN_I4, 1, d3);
    t.data = q;
    CHECK(kiln_tensor_save_pb(g_ctx, path, &t, "q") == KILN_OK);
    CHECK(kiln_tensor_load_pb(g_ctx, path, &r) == KILN_OK);
    if (r.data) CHECK(r.dtype == KILN_I4 && memcmp(r.data, q, 3) == 0);
    kiln_tensor_release(&r);
    char *strs[] = {"a", "bc", "", "def"};
    kiln_tensor_init(&t, KILN_STRING, 2, dims);
    t.data = strs;
    CHECK(kiln_tensor_save_pb(g_ctx, path, &t, "s") == KILN_OK);
    CHECK(kiln_tensor_load_pb(g_ctx, path, &r) == KILN_OK);
    if (r.data) CHECK(strcmp(((char **)r.data)[3], "def") == 0 && ((char **)r.data)[2][0] == 0);
    kiln_tensor_release(&r);
    unlink(path);
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    if (!f) return;
    CHECK(fwrite(p, 1, n, f) == n);
    fclose(f);
}

/* Is p inside a mapping of a file whose path contains `name`? */
static bool in_file_mapping(const void *p, const char *name) {
    FILE *f = fopen("/proc/self/maps", "r");
    char line[1024];
    bool found = false;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx", &lo, &hi) != 2 || !strstr(line, name)) continue;
        if ((uintptr_t)p >= lo && (uintptr_t)p < hi) found = true;
    }
    if (f) fclose(f);
    return found;
}

/* Model with one large initializer W whose raw bytes start at offset % 64 == `mis`. */
static pb weight_model(int mis, float *w, int n) {
    for (int pad = 0; pad < 64; pad++) {
        graph_parts gp = {.name = "w"};
        int64_t d[] = {n};
        gp.inits[gp.n_inits++] = t_raw("W", 1, 1, d, w, (size_t)n * 4);
        gp.inputs[gp.n_inputs++] = vi("X", 1, 1, d);
        gp.nodes[gp.n_nodes++] = node("Add", "add", LIST("X", "W"), LIST("Y"), 0, NULL);
        gp.outputs[gp.n_outputs++] = vi("Y", 1, 1, d);
        pb m = {0};
        char padding[64];
        memset(padding, 'p', sizeof padding);
        pb_bytes(&m, 6, padding, (size_t)pad); /* doc_string shifts the weights */
        pb rest = model(graph(&gp), 13, NULL);
        pb_raw(&m, rest.p, rest.n);
        pb_free(&rest);
        uint8_t *at = memmem(m.p, m.n, w, (size_t)n * 4);
        if ((at - m.p) % 64 == mis) return m;
        pb_free(&m);
    }
    pb none = {0};
    return none;
}

static void weights_in_place_or_copied(void) {
    enum { N = 4096 };
    static float w[N];
    for (int i = 0; i < N; i++) w[i] = (float)i * 0.5f;
    for (int mis = 0; mis < 3; mis++) {
        pb m = weight_model(mis == 0 ? 0 : mis == 1 ? 2 : 16, w, N);
        char path[512];
        snprintf(path, sizeof path, "%s/weights%d.onnx", g_dir, mis);
        write_file(path, m.p, m.n);
        pb_free(&m);
        gir_graph *g = NULL;
        kiln_status s = onnx_load_file(g_ctx, path, &g);
        CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
        if (s) continue;
        gir_value *v = gir_value_find(g, "W");
        CHECK(v && v->constant && memcmp(v->constant->data, w, sizeof w) == 0);
        CHECK((uintptr_t)v->constant->data % 4 == 0);
        bool mapped = in_file_mapping(v->constant->data, "weights");
        CHECK_MSG(mapped == (mis != 1), "aligned weights are referenced in place, unaligned ones copied (case %d)", mis);
        gir_graph_free(g);
        unlink(path);
    }
}

static void external_data(void) {
    enum { N = 1000 };
    static float w[N + 3];
    for (int i = 0; i < N + 3; i++) w[i] = (float)i;
    char path[512];
    snprintf(path, sizeof path, "%s/ext.bin", g_dir);
    write_file(path, w, sizeof w);
    graph_parts gp = {.name = "ext"};
    int64_t d[] = {N};
    for (int k = 0; k < 2; k++) {
        pb t = {0}, e1 = {0}, e2 = {0}, e3 = {0};
        pb_int(&t, 1, N);
        pb_int(&t, 2, 1);
        pb_str(&t, 8, k ? "W1" : "W0");
        pb_str(&e1, 1, "location");
        pb_str(&e1, 2, "ext.bin");
        pb_msg(&t, 13, e1);
        pb_str(&e2, 1, "offset");
        pb_str(&e2, 2, k ? "12" : "0");
        pb_msg(&t, 13, e2);
        pb_str(&e3, 1, "length");
        pb_str(&e3, 2, "4000");
        pb_msg(&t, 13, e3);
        pb_int(&t, 14, 1);
        gp.inits[gp.n_inits++] = t;
    }
    gp.nodes[gp.n_nodes++] = node("Add", "add", LIST("W0", "W1"), LIST("Y"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, 1, d);
    pb m = model(graph(&gp), 13, NULL);
    snprintf(path, sizeof path, "%s/ext.onnx", g_dir);
    write_file(path, m.p, m.n);
    gir_graph *g = NULL;
    kiln_status s = onnx_load_file(g_ctx, path, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        gir_value *w0 = gir_value_find(g, "W0"), *w1 = gir_value_find(g, "W1");
        CHECK(((float *)w0->constant->data)[999] == 999.0f && ((float *)w1->constant->data)[0] == 3.0f);
        CHECK(in_file_mapping(w0->constant->data, "ext.bin"));
        gir_graph_free(g);
    }
    g = NULL;
    s = onnx_load_bytes(g_ctx, m.p, m.n, g_dir, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    gir_graph_free(g);
    pb_free(&m);
    unlink(path);
    snprintf(path, sizeof path, "%s/ext.bin", g_dir);
    unlink(path);
}

/* Every conformance model loads, or fails only as unsupported. */
static void conformance_models(void) {
    const char *src = getenv("KILN_SOURCE_DIR");
    char root[1024];
    snprintf(root, sizeof root, "%s/../shared/onnx-node-tests", src ? src : ".");
    DIR *d = opendir(root);
    if (!d) {
        printf("conformance_models: %s not found, skipped\n", root);
        return;
    }
    int loaded = 0, unsupported = 0, tensors = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5) != 0) continue;
        char p[2048];
        snprintf(p, sizeof p, "%s/%s/model.onnx", root, e->d_name);
        gir_graph *g = NULL;
        kiln_status s = onnx_load_file(g_ctx, p, &g);
        CHECK_MSG(s == KILN_OK || s == KILN_ERR_UNSUPPORTED, "%s: %s", e->d_name, kiln_errmsg(g_ctx));
        if (!s) loaded++;
        else unsupported++;
        gir_graph_free(g);
        for (int k = 0; k < 16; k++) {
            snprintf(p, sizeof p, "%s/%s/test_data_set_0/input_%d.pb", root, e->d_name, k);
            if (access(p, R_OK) != 0) break;
            kiln_tensor t;
            s = onnx_tensor_read_file(g_ctx, p, &t);
            CHECK_MSG(s == KILN_OK || s == KILN_ERR_UNSUPPORTED, "%s: %s", p, kiln_errmsg(g_ctx));
            if (!s) tensors++;
            kiln_tensor_release(&t);
        }
    }
    closedir(d);
    printf("conformance_models: %d loaded, %d unsupported, %d input tensors read\n", loaded, unsupported, tensors);
    CHECK(loaded > 1000);
}

static void no_leaks(void) { CHECK_MSG(kiln_mem_live() == 1, "%ld blocks live (the context is one)", kiln_mem_live()); }

static void setup(void) {
    CHECK(kiln_ctx_new(&g_ctx) == KILN_OK);
    make_dir();
    CHECK(g_dir[0] != 0);
}

static void teardown(void) {
    rmdir(g_dir);
    kiln_ctx_free(g_ctx);
}

TEST_MAIN(T(setup), T(small_model_structure), T(small_model_runs), T(attributes_of_every_kind),
          T(tensor_data_fields), T(tensor_file_roundtrip), T(weights_in_place_or_copied), T(external_data),
          T(conformance_models), T(no_leaks), T(teardown))
