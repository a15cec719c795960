/*
** test_gir_text.c — the graph IR's text form: print → parse → print gives
** the same text (hand-written graphs, graphs built in code with every dtype
** and attribute kind, ONNX conformance models); parse errors say where and
** what; garbage and allocation failures never crash or leak.
*/
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/onnx.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/gir_text.h"
#include "ir/mem.h"
#include "ir/tensor.h"

/* Parses `text`, prints it, parses and prints again; both prints must be
** equal. Returns the first print (kiln_malloc) or NULL. */
static char *round_trip(kiln_ctx *ctx, const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "parse: %s", kiln_errmsg(ctx));
    if (s) return NULL;
    char *a = gir_print_str(g, GIR_PRINT_FULL);
    gir_graph_free(g);
    CHECK(a != NULL);
    if (!a) return NULL;
    gir_graph *g2 = NULL;
    s = gir_parse(ctx, a, &g2);
    CHECK_MSG(s == KILN_OK, "reparse: %s\n%s", kiln_errmsg(ctx), a);
    if (s) return a;
    char *b = gir_print_str(g2, GIR_PRINT_FULL);
    gir_graph_free(g2);
    CHECK_MSG(b && strcmp(a, b) == 0, "second print differs:\n%s\n---\n%s", a, b ? b : "(null)");
    kiln_free(b);
    return a;
}

static const char *k_canonical =
    "graph \"tiny\" {\n"
    "  ir_version 8\n"
    "  producer \"hand 1.0\"\n"
    "  opset 17\n"
    "  opset com.microsoft 1\n"
    "  input %x : f32[batch,3,8,8]\n"
    "  input %n : i64[?,4]\n"
    "  input %r : f32[*]\n"
    "  input %u : ?\n"
    "  input %d : f32[2] = {1, 2.5}\n"
    "  const %w : f32[4,4,1,1] = {0.1, -2, 3e+10, -0, nan, -nan, inf, -inf, nan(0x7fc00001), 1e-45, 0.33333334, 7, 8, 9, 10, 11}\n"
    "  const %s : i64[2] = {1, -9223372036854775808}\n"
    "  const %\"onnx::Weird name\" : str[3] = {\"a\", \"b\\\"q\\\\\\n\", \"\\xe2\\x82\\xac\"}\n"
    "  const %h : f16[4] = {0.1, 65504, 6e-08, nan(0x7e01)}\n"
    "  const %bh : bf16[2] = {0.1, -3.39e+38}\n"
    "  const %b : bool[2] = {true, false}\n"
    "  const %q : u64[1] = {18446744073709551615}\n"
    "  const %e : f64[3] = {0.1, 1e-310, 3.141592653589793}\n"
    "  const %z : i8[0] = {}\n"
    "  const %sc : u8[] = {255}\n"
    "  %y : f32[batch,4,8,8] = Conv(%x, %w, _) {pads=[0, 0, 0, 0], strides=[1, 1], auto_pad=\"NOTSET\"} name=\"conv0\"\n"
    "  %m, _ = Dropout(%y)\n"
    "  %c = com.microsoft::FusedThing@2(%m) {alpha=1.0, beta=0x1.999999999999ap-4, g=-0.0, f=[1.5, nan, -inf], names=[\"a\", \"\"], e=ints[], ef=floats[], es=strings[], t=i32[2] {1, 2}, k=-3}\n"
    "  %%7 = If(%b) {then_branch=graph \"then\" {\n"
    "      %t1 = Identity(%c)\n"
    "      output %t1\n"
    "    }, else_branch=graph \"else\" {\n"
    "      input %z2 : f32[1]\n"
    "      %t2 : f32[1] = Relu(%z2)\n"
    "      output %t2 : f32[1]\n"
    "    }}\n"
    "  () = Print(%%7)\n"
    "  output %y : f32[batch,4,8,8]\n"
    "  output %%7\n"
    "}\n";

static void canonical_text_round_trips(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    char *a = round_trip(ctx, k_canonical);
    CHECK_MSG(a && strcmp(a, k_canonical) == 0, "canonical text changed:\n%s", a ? a : "(null)");
    kiln_free(a);
    kiln_ctx_free(ctx);
}

static void parsed_graph_has_the_right_structure(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = NULL;
    CHECK(gir_parse(ctx, k_canonical, &g) == KILN_OK);
    if (!g) return;
    CHECK(g->n_inputs == 5 && g->n_outputs == 2 && g->n_nodes == 5);
    CHECK(g->ir_version == 8 && !strcmp(g->producer, "hand 1.0"));
    CHECK(gir_opset_version(g, "") == 17 && gir_opset_version(g, "com.microsoft") == 1);
    gir_value *x = gir_value_find(g, "x");
    CHECK(x && x->is_input && x->type.dtype == KILN_F32 && x->type.rank == 4);
    CHECK(x && x->type.dims[0].value < 0 && x->type.dims[0].sym && !strcmp(x->type.dims[0].sym, "batch"));
    CHECK(x && x->type.dims[1].value == 3);
    gir_value *r = gir_value_find(g, "r"), *u = gir_value_find(g, "u");
    CHECK(r && r->type.rank < 0 && r->type.dtype == KILN_F32);
    CHECK(u && u->type.rank < 0 && u->type.dtype == KILN_UNDEFINED);
    gir_value *d = gir_value_find(g, "d");
    CHECK(d && d->is_input && d->constant && ((float *)d->constant->data)[1] == 2.5f);
    gir_value *w = gir_value_find(g, "w");
    CHECK(w && w->constant && w->constant->rank == 4);
    if (w && w->constant) {
        const float *f = w->constant->data;
        uint32_t b;
        memcpy(&b, &f[8], 4);
        CHECK(b == 0x7fc00001u);
        memcpy(&b, &f[3], 4);
        CHECK(b == 0x80000000u);
        memcpy(&b, &f[9], 4);
        CHECK(b == 1u); /* the smallest denormal */
        CHECK(isnan(f[4]) && isinf(f[6]) && f[6] > 0 && f[0] == 0.1f);
    }
    gir_value *h = gir_value_find(g, "h");
    CHECK(h && ((uint16_t *)h->constant->data)[1] == 0x7bff && ((uint16_t *)h->constant->data)[3] == 0x7e01);
    gir_value *ws = gir_value_find(g, "onnx::Weird name");
    CHECK(ws && ws->constant && !strcmp(((char **)ws->constant->data)[1], "b\"q\\\n"));
    CHECK(ws && !strcmp(((char **)ws->constant->data)[2], "\xe2\x82\xac"));
    gir_node *conv = g->nodes[0];
    CHECK(!strcmp(conv->name, "conv0") && conv->n_inputs == 3 && conv->inputs[2] == NULL);
    CHECK(conv->opset == 17 && gir_attr_ints(conv, "pads", &(const int64_t *){0}) == 4);
    CHECK(!strcmp(gir_attr_string(conv, "auto_pad", ""), "NOTSET"));
    gir_node *drop = g->nodes[1];
    CHECK(!strcmp(drop->name, "Dropout_1") && drop->n_outputs == 2 && drop->outputs[1] == NULL);
    gir_node *ft = g->nodes[2];
    CHECK(!strcmp(ft->domain, "com.microsoft") && ft->opset == 2);
    CHECK(gir_attr_float(ft, "alpha", 0) == 1.0 && gir_attr_float(ft, "beta", 0) == 0.1);
    CHECK(gir_attr_int(ft, "k", 0) == -3);
    const gir_attr *t = gir_attr_find(ft, "t");
    CHECK(t && t->kind == GIR_ATTR_TENSOR && t->t->dtype == KILN_I32 && ((int32_t *)t->t->data)[1] == 2);
    const gir_attr *e = gir_attr_find(ft, "e");
    CHECK(e && e->kind == GIR_ATTR_INTS && e->n == 0);
    gir_node *iff = g->nodes[3];
    const gir_attr *eb = gir_attr_find(iff, "else_branch");
    CHECK(eb && eb->kind == GIR_ATTR_GRAPH && eb->g->n_nodes == 1 && eb->g->nodes[0]->opset == 17);
    CHECK(g->nodes[4]->n_outputs == 0);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

/* A graph built in code with awkward values of every dtype. */
static gir_graph *build_all_dtypes(void) {
    gir_graph *g = gir_graph_new();
    static const kiln_dtype dts[] = {KILN_F32, KILN_U8, KILN_I8, KILN_U16, KILN_I16, KILN_I32, KILN_I64,
                                     KILN_BOOL, KILN_F16, KILN_F64, KILN_U32, KILN_U64, KILN_BF16};
    uint64_t seed = 12345;
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "c_%s", kiln_dtype_name(dts[k]));
        gir_value *v = gir_value_new(g, name);
        kiln_tensor *t = kiln_arena_alloc(g->arena, sizeof *t);
        int64_t dims[2] = {8, 16};
        kiln_tensor_init(t, dts[k], 2, dims);
        size_t nb = kiln_dtype_size(dts[k]) * 128;
        unsigned char *data = kiln_arena_alloc(g->arena, nb);
        for (size_t i = 0; i < nb; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            data[i] = (unsigned char)(seed >> 56);
        }
        if (dts[k] == KILN_BOOL)
            for (size_t i = 0; i < nb; i++) data[i] &= 1;
        t->data = data;
        v->constant = t;
        gir_type_from_tensor(&v->type, t);
    }
    gir_value *sv = gir_value_new(g, NULL); /* an automatic name, "%N" */
    kiln_tensor *st = kiln_arena_alloc(g->arena, sizeof *st);
    int64_t three = 3;
    kiln_tensor_init(st, KILN_STRING, 1, &three);
    char **ss = kiln_arena_alloc(g->arena, 3 * sizeof(char *));
    ss[0] = kiln_arena_strdup(g->arena, "");
    ss[1] = kiln_arena_strdup(g->arena, "tab\there \x01\x7f end");
    ss[2] = kiln_arena_strdup(g->arena, "# not a comment");
    st->data = ss;
    sv->constant = st;
    gir_type_from_tensor(&sv->type, st);
    gir_node *n = gir_node_new(g, "Concat", NULL, 2, 1, 1);
    n->inputs[0] = g->values[0];
    n->inputs[1] = g->values[9];
    n->outputs[0] = gir_value_new(g, "out");
    n->outputs[0]->producer = n;
    n->attrs[0].name = "axis";
    n->attrs[0].kind = GIR_ATTR_INT;
    n->attrs[0].i = INT64_MIN;
    gir_add_output(g, n->outputs[0]);
    return g;
}

static bool same_bits(const kiln_tensor *a, const kiln_tensor *b) {
    if (a->dtype != b->dtype || !kiln_tensor_same_shape(a, b)) return false;
    int64_t n = kiln_numel(a);
    if (a->dtype == KILN_STRING) {
        for (int64_t i = 0; i < n; i++)
            if (strcmp(((char **)a->data)[i], ((char **)b->data)[i])) return false;
        return true;
    }
    return memcmp(a->data, b->data, (size_t)n * kiln_dtype_size(a->dtype)) == 0;
}

static void every_dtype_round_trips_bit_for_bit(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = build_all_dtypes();
    char *text = gir_print_str(g, GIR_PRINT_FULL);
    CHECK(text != NULL);
    char *again = text ? round_trip(ctx, text) : NULL;
    CHECK_MSG(again && !strcmp(again, text), "text changed:\n%s\n---\n%s", text, again ? again : "");
    gir_graph *g2 = NULL;
    CHECK(text && gir_parse(ctx, text, &g2) == KILN_OK);
    for (int i = 0; g2 && i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        if (!v->constant) continue;
        const gir_value *w = gir_value_find(g2, v->name);
        CHECK_MSG(w && w->constant && same_bits(v->constant, w->constant), "constant '%s' changed", v->name);
    }
    CHECK(text && strstr(text, "const %%") != NULL); /* an automatic name, printed bare */
    kiln_free(text);
    kiln_free(again);
    gir_graph_free(g);
    gir_graph_free(g2);
    kiln_ctx_free(ctx);
}

static void every_f16_and_bf16_value_round_trips(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    for (int dt = 0; dt < 2; dt++) {
        gir_graph *g = gir_graph_new();
        gir_value *v = gir_value_new(g, "all");
        kiln_tensor *t = kiln_arena_alloc(g->arena, sizeof *t);
        int64_t n = 65536;
        kiln_tensor_init(t, dt ? KILN_BF16 : KILN_F16, 1, &n);
        uint16_t *d = kiln_arena_alloc(g->arena, 2 * 65536);
        for (int i = 0; i < 65536; i++) d[i] = (uint16_t)i;
        t->data = d;
        v->constant = t;
        char *text = gir_print_str(g, GIR_PRINT_FULL);
        gir_graph *g2 = NULL;
        CHECK(text && gir_parse(ctx, text, &g2) == KILN_OK);
        const gir_value *w = g2 ? gir_value_find(g2, "all") : NULL;
        CHECK_MSG(w && w->constant && same_bits(t, w->constant), "%s values changed", dt ? "bf16" : "f16");
        kiln_free(text);
        gir_graph_free(g);
        gir_graph_free(g2);
    }
    kiln_ctx_free(ctx);
}

static void f32_values_round_trip(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = gir_graph_new();
    gir_value *v = gir_value_new(g, "f");
    kiln_tensor *t = kiln_arena_alloc(g->arena, sizeof *t);
    int64_t n = 20000;
    kiln_tensor_init(t, KILN_F32, 1, &n);
    uint32_t *d = kiln_arena_alloc(g->arena, 4 * (size_t)n);
    uint64_t seed = 99;
    for (int64_t i = 0; i < n; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        d[i] = (uint32_t)(seed >> 32);
    }
    t->data = d;
    v->constant = t;
    char *text = gir_print_str(g, GIR_PRINT_FULL);
    gir_graph *g2 = NULL;
    CHECK(text && gir_parse(ctx, text, &g2) == KILN_OK);
    const gir_value *w = g2 ? gir_value_find(g2, "f") : NULL;
    CHECK(w && w->constant && same_bits(t, w->constant));
    kiln_free(text);
    gir_graph_free(g);
    gir_graph_free(g2);
    kiln_ctx_free(ctx);
}

static void summary_elides_large_constants(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = build_all_dtypes();
    char *text = gir_print_str(g, GIR_PRINT_SUMMARY);
    CHECK(text && strstr(text, ", ...}") != NULL);
    CHECK(text && strstr(text, "\"# not a comment\"}") != NULL); /* small ones stay whole */
    gir_graph *g2 = NULL;
    CHECK(text && gir_parse(ctx, text, &g2) == KILN_ERR_PARSE);
    CHECK_MSG(strstr(kiln_errmsg(ctx), "elided") != NULL, "%s", kiln_errmsg(ctx));
    kiln_free(text);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

/* Each bad text and a piece of the message it must give. */
static void parse_errors_say_where_and_what(void) {
    static const struct { const char *text, *msg; } cases[] = {
        {"", "line 1, column 1: expected 'graph', got end of input"},
        {"graph \"g\" {\n  input %x f32[1]\n}", "line 2, column 12: expected ':', got 'f32'"},
        {"graph \"g\" {\n  input %x : f33[1]\n}", "line 2, column 14: expected an element type"},
        {"graph \"g\" {\n  const %w : f32[2] = {1}\n}", "line 2, column 25: f32[2] needs 2 values, got 1"},
        {"graph \"g\" {\n  const %w : f32[?] = {1}\n}", "line 2, column 14: constant data needs a static type"},
        {"graph \"g\" {\n  const %w : u8[1] = {256}\n}", "line 2, column 23: expected a u8 value, got '256'"},
        {"graph \"g\" {\n  const %w : f16[1] = {70000}\n}", "expected a f16 value, got '70000'"},
        {"graph \"g\" {\n  %y = Relu(%x\n}", "line 3, column 1: expected ',', got '}'"},
        {"graph \"g\" {\n  %y = Relu(%x) {a=}\n}", "line 2, column 20: expected an attribute value, got '}'"},
        {"graph \"g\" {\n  %y = Relu(%x) {a=[]}\n}", "an empty list needs its kind"},
        {"graph \"g\" {\n  %y = Relu(%x) {a=\"\\q\"}\n}", "line 2, column 21: bad escape"},
        {"graph \"g\" {\n  %y = Relu(%x) {a=\"abc}\n}", "line 2, column 20: unterminated string"},
        {"graph \"g\" {\n  input %x : f32[1,2,3,4,5,6,7,8,9]\n}", "rank exceeds 8"},
        {"graph \"g\" {\n  %y = Relu(%x)\n  opset 13\n}", "line 3, column 3: opset imports must come before the nodes"},
        {"graph \"g\" {\n  %y = Relu(%x)\n", "expected '}' closing the graph, got end of input"},
        {"graph \"g\" {\n}\nextra", "line 3, column 1: expected end of input, got 'extra'"},
        {"graph \"g\" {\n  input %x : f32[1]\n  input %x : f32[1]\n}", "line 3, column 9: %x is already an input"},
        {"graph \"g\" {\n  $\n}", "line 2, column 3: unexpected character '$'"},
        {"graph \"g\" {\n  input % : f32[1]\n}", "expected a value name after '%'"},
        {"graph \"g\" {\n  %y = Relu(%x)\n  output %y : f32[1]\n  output %x : f32[2]\n  output %x : f32[3]\n}",
         "line 5, column 10: the type given for output %x differs"},
        {"graph \"g\" {\n  const %w : f32[3] = {1, ..., 3}\n}", "constant data is elided"},
        {"graph \"g\" {\n  input %x : f32[1]\n  %y = Relu(%x) {a=9223372036854775808}\n}", "expected an integer"},
    };
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gir_graph *g = NULL;
        kiln_status s = gir_parse(ctx, cases[i].text, &g);
        CHECK_MSG(s == KILN_ERR_PARSE && g == NULL, "case %zu parsed", i);
        CHECK_MSG(strstr(kiln_errmsg(ctx), cases[i].msg) != NULL, "case %zu: got \"%s\", want \"%s\"", i,
                  kiln_errmsg(ctx), cases[i].msg);
        gir_graph_free(g);
    }
    kiln_ctx_free(ctx);
}

static uint64_t rnd(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Random bytes, and the canonical text with random edits: never a crash,
** always either a graph or a message. */
static void garbage_never_crashes(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    long live = kiln_mem_live();
    uint64_t seed = 7;
    size_t len = strlen(k_canonical);
    char *buf = malloc(len + 64);
    static const char alphabet[] = "{}()[],=:@*?%\"_#.\\-+0123456789aefinx graph input output const opset\n";
    for (int iter = 0; iter < 4000; iter++) {
        if (iter < 500) {
            size_t n = rnd(&seed) % 200;
            for (size_t i = 0; i < n; i++)
                buf[i] = (char)(iter % 2 ? alphabet[rnd(&seed) % (sizeof alphabet - 1)] : (char)(1 + rnd(&seed) % 255));
            buf[n] = 0;
        } else {
            memcpy(buf, k_canonical, len + 1);
            int edits = 1 + (int)(rnd(&seed) % 4);
            for (int e = 0; e < edits && buf[0]; e++) {
                size_t at = rnd(&seed) % strlen(buf);
                int op = (int)(rnd(&seed) % 3);
                if (op == 0) buf[at] = alphabet[rnd(&seed) % (sizeof alphabet - 1)];
                else if (op == 1) memmove(buf + at, buf + at + 1, strlen(buf + at));
                else buf[at] = 0;
            }
        }
        gir_graph *g = NULL;
        kiln_status s = gir_parse(ctx, buf, &g);
        if (s == KILN_OK) {
            char *t = gir_print_str(g, GIR_PRINT_FULL);
            gir_verify(ctx, g, NULL);
            kiln_free(t);
            gir_graph_free(g);
        } else {
            CHECK(s == KILN_ERR_PARSE && strstr(kiln_errmsg(ctx), "line ") == kiln_errmsg(ctx));
        }
    }
    free(buf);
    CHECK(kiln_mem_live() == live);
    kiln_ctx_free(ctx);
}

static void allocation_failures_are_clean(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    long live = kiln_mem_live();
    bool done = false;
    for (long n = 0; n < 100000 && !done; n++) {
        gir_graph *g = NULL;
        kiln_mem_fail_after(n);
        kiln_status s = gir_parse(ctx, k_canonical, &g);
        char *t = s ? NULL : gir_print_str(g, GIR_PRINT_FULL);
        kiln_mem_fail_after(-1);
        CHECK(s == KILN_OK || s == KILN_ERR_NOMEM);
        if (s == KILN_OK && t) done = true;
        kiln_free(t);
        gir_graph_free(g);
        CHECK(kiln_mem_live() == live);
    }
    CHECK(done);
    kiln_ctx_free(ctx);
}

static const char *tests_dir(char *buf, size_t n) {
    const char *src = getenv("KILN_SOURCE_DIR");
    snprintf(buf, n, "%s/../shared/onnx-node-tests", src ? src : ".");
    return buf;
}

/* Every conformance model the loader reads prints and parses back to the
** same text. */
static void conformance_models_round_trip(void) {
    char dir[1024];
    DIR *d = opendir(tests_dir(dir, sizeof dir));
    if (!d) {
        printf("skipped: no conformance models at %s\n", dir);
        return;
    }
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    int loaded = 0, same = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "test_", 5)) continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s/model.onnx", dir, e->d_name);
        gir_graph *g = NULL;
        if (onnx_load_file(ctx, path, &g)) continue;
        loaded++;
        char *a = gir_print_str(g, GIR_PRINT_FULL);
        gir_graph *g2 = NULL;
        kiln_status s = a ? gir_parse(ctx, a, &g2) : KILN_ERR_NOMEM;
        CHECK_MSG(s == KILN_OK, "%s: %s", e->d_name, kiln_errmsg(ctx));
        char *b = s ? NULL : gir_print_str(g2, GIR_PRINT_FULL);
        if (a && b && !strcmp(a, b)) same++;
        else CHECK_MSG(0, "%s: text changed:\n%s\n---\n%s", e->d_name, a, b ? b : "");
        kiln_free(a);
        kiln_free(b);
        gir_graph_free(g);
        gir_graph_free(g2);
    }
    closedir(d);
    printf("%d conformance models loaded, %d round-trip\n", loaded, same);
    CHECK(loaded > 100);
    kiln_ctx_free(ctx);
}

static void file_printing_and_reading(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = NULL;
    CHECK(gir_parse(ctx, k_canonical, &g) == KILN_OK);
    char path[] = "/tmp/kiln_test_gir_text_XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    CHECK(f != NULL);
    if (f && g) {
        gir_print(f, g, GIR_PRINT_FULL);
        fclose(f);
        gir_graph *g2 = NULL;
        CHECK_MSG(gir_parse_file(ctx, path, &g2) == KILN_OK, "%s", kiln_errmsg(ctx));
        char *a = g2 ? gir_print_str(g2, GIR_PRINT_FULL) : NULL;
        CHECK(a && !strcmp(a, k_canonical));
        kiln_free(a);
        gir_graph_free(g2);
        /* a NUL byte, and a missing file */
        f = fopen(path, "wb");
        fwrite("graph \"g\" {\0}", 1, 13, f);
        fclose(f);
        CHECK(gir_parse_file(ctx, path, &g2) == KILN_ERR_PARSE && strstr(kiln_errmsg(ctx), "a NUL byte at offset 11"));
    }
    if (fd >= 0) remove(path);
    gir_graph *g3 = NULL;
    CHECK(gir_parse_file(ctx, "/nonexistent/x.kir", &g3) == KILN_ERR_IO && g3 == NULL);
    CHECK(strstr(kiln_errmsg(ctx), "/nonexistent/x.kir: cannot open") != NULL);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

/* Names the lexer would read as something else get quoted. */
static void odd_names_round_trip(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = gir_graph_new();
    gir_value *x = gir_value_new(g, "_");
    x->type = (gir_type){.dtype = KILN_F32, .rank = 4, .dims = {{-1, "nan"}, {-1, "_"}, {-1, "a b"}, {-1, "true"}}};
    gir_add_input(g, x);
    gir_node *n = gir_node_new(g, "1x", "line\nbreak", 1, 1, 1);
    n->domain = "my domain";
    n->opset = 3;
    n->inputs[0] = x;
    n->outputs[0] = gir_value_new(g, "graph");
    n->outputs[0]->producer = n;
    n->attrs[0] = (gir_attr){.name = "inf", .kind = GIR_ATTR_STRING, .s = "a\0b", .s_len = 3};
    gir_add_output(g, n->outputs[0]);
    char *a = gir_print_str(g, GIR_PRINT_FULL);
    gir_graph *g2 = NULL;
    CHECK_MSG(a && gir_parse(ctx, a, &g2) == KILN_OK, "%s\n%s", kiln_errmsg(ctx), a);
    char *b = g2 ? gir_print_str(g2, GIR_PRINT_FULL) : NULL;
    CHECK_MSG(a && b && !strcmp(a, b), "%s\n---\n%s", a, b);
    if (g2) {
        const gir_value *v = gir_value_find(g2, "_");
        CHECK(v && v->is_input && !strcmp(v->type.dims[0].sym, "nan") && !strcmp(v->type.dims[3].sym, "true"));
        const gir_node *m = g2->nodes[0];
        CHECK(!strcmp(m->op_type, "1x") && !strcmp(m->domain, "my domain") && m->opset == 3);
        CHECK(!strcmp(m->name, "line\nbreak") && m->outputs[0] == gir_value_find(g2, "graph"));
        const gir_attr *at = gir_attr_find(m, "inf");
        CHECK(at && at->kind == GIR_ATTR_STRING && at->s_len == 3 && !memcmp(at->s, "a\0b", 3));
    }
    kiln_free(a);
    kiln_free(b);
    gir_graph_free(g);
    gir_graph_free(g2);
    kiln_ctx_free(ctx);
}

static void type_strings(void) {
    char buf[128];
    gir_type t = {.dtype = KILN_F32, .rank = 3, .dims = {{2, NULL}, {-1, "n"}, {-1, NULL}}};
    CHECK(!strcmp(gir_type_str(&t, buf, sizeof buf), "f32[2,n,?]"));
    t.rank = -1;
    CHECK(!strcmp(gir_type_str(&t, buf, sizeof buf), "f32[*]"));
    t.dtype = KILN_UNDEFINED;
    CHECK(!strcmp(gir_type_str(&t, buf, sizeof buf), "?"));
}

TEST_MAIN(T(canonical_text_round_trips), T(parsed_graph_has_the_right_structure),
          T(every_dtype_round_trips_bit_for_bit), T(every_f16_and_bf16_value_round_trips),
          T(f32_values_round_trip), T(summary_elides_large_constants), T(parse_errors_say_where_and_what),
          T(garbage_never_crashes), T(allocation_failures_are_clean), T(file_printing_and_reading),
          T(type_strings), T(odd_names_round_trip), T(conformance_models_round_trip))
