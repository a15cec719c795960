/*
** test_templates.c — the default CPU schedules (autotune/templates.h).
**
** For kernels of real ops (one-node graphs lowered with tir_from_node):
** the expected template applies; its default trace and random points of
** its space lower and compute what the default nest (the empty trace)
** computes, on the loop-IR interpreter for small kernels and natively
** through the LLVM JIT for larger ones, on random inputs with the outputs
** poisoned first. Points are drawn for the host's vector width and for an
** AVX2-width target. Also: the space API (sizes, defaults, bad points).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/templates.h"
#include "codegen/cg_llvm.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/lir.h"
#include "ir/mem.h"
#include "ir/sched.h"
#include "ir/tensor.h"
#include "ir/tir.h"
#include "runtime/krt_pool.h"

static kiln_ctx *g_ctx;
static cg_cpu_target g_host, g_avx2;
static krt_pool *g_pool;
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static void setup(void) {
    if (g_ctx) return;
    kiln_ctx_new(&g_ctx);
    if (cg_cpu_host(g_ctx, &g_host)) fprintf(stderr, "host: %s\n", kiln_errmsg(g_ctx));
    g_avx2 = g_host;
    if (g_avx2.vector_bits > 256) g_avx2.vector_bits = 256;
    g_pool = krt_pool_new(2);
    krt_pool_set_current(g_pool);
}

/* ---- one kernel of one node ---- */

typedef struct kcase {
    gir_graph *g;
    gir_node *n;
    tir_func *f;
    kiln_tensor in[16]; /* per tir input, in order */
    int n_in;
    kiln_tensor ty[16]; /* per node input: what tir_from_node saw (constants keep pointing here) */
} kcase;

static void kcase_free(kcase *k) {
    for (int i = 0; i < k->n_in; i++) kiln_tensor_release(&k->in[i]);
    tir_func_free(k->f);
    gir_graph_free(k->g);
    memset(k, 0, sizeof *k);
}

static void fill(kiln_tensor *t, const char *name) {
    int64_t n = kiln_numel(t);
    for (int64_t i = 0; i < n; i++) {
        if (kiln_dtype_is_float(t->dtype))
            kiln_store_f64(t->dtype, t->data, i, (double)(rnd() % 2001) / 1000.0 - 1.0);
        else
            kiln_store_i64(t->dtype, t->data, i, strstr(name, "idx") ? (int64_t)(rnd() % 3) : (int64_t)(rnd() % 7) - 3);
    }
}

/* Parses "graph body" text (opset given), binds the last node and lowers
** it; inputs named c_* are bound as constants. */
static bool kcase_make(kcase *k, int opset, const char *body) {
    memset(k, 0, sizeof *k);
    char text[4096];
    snprintf(text, sizeof text, "graph \"t\" {\n opset %d\n%s\n}\n", opset, body);
    kiln_status s = gir_parse(g_ctx, text, &k->g);
    CHECK_MSG(s == KILN_OK, "parse: %s\n%s", kiln_errmsg(g_ctx), text);
    if (s) return false;
    k->n = k->g->nodes[k->g->n_nodes - 1];
    s = gir_bind_op(g_ctx, k->n);
    CHECK_MSG(s == KILN_OK, "bind: %s", kiln_errmsg(g_ctx));
    if (s) return false;
    const kiln_tensor *types[16];
    for (int i = 0; i < k->n->n_inputs && i < 16; i++) {
        const gir_value *v = k->n->inputs[i];
        types[i] = NULL;
        if (!v) continue;
        kiln_tensor *t = &k->in[k->n_in++];
        if (v->constant) {
            CHECK(kiln_tensor_copy(g_ctx, v->constant, t) == KILN_OK);
        } else {
            gir_type_to_tensor(&v->type, t);
            CHECK(kiln_tensor_alloc(g_ctx, t) == KILN_OK);
            fill(t, v->name);
        }
        types[i] = t;
    }
    /* non-constant inputs are passed as types only */
    kiln_tensor *ty = k->ty;
    for (int i = 0, j = 0; i < k->n->n_inputs && i < 16; i++) {
        const gir_value *v = k->n->inputs[i];
        if (!v) continue;
        ty[i] = k->in[j++];
        if (!v->constant && strncmp(v->name, "c_", 2) != 0) ty[i].data = NULL;
        types[i] = &ty[i];
    }
    s = tir_from_node(g_ctx, k->n, types, &k->f);
    CHECK_MSG(s == KILN_OK, "tir_from_node: %s", kiln_errmsg(g_ctx));
    return s == KILN_OK;
}

/* Runs lowered kernel lf on the case's inputs (packed constants from the
** kernel itself) into freshly allocated outputs, poisoned first. */
static kiln_status run_lir(kcase *k, lir_func *lf, bool jit, kiln_tensor *out) {
    const tir_func *f = k->f;
    void *args[64];
    if (f->n_inputs + f->n_outputs > 64 || lf->n_args != f->n_inputs + f->n_outputs)
        return kiln_fail(g_ctx, KILN_ERR_INTERNAL, "argument count");
    for (int i = 0; i < f->n_outputs; i++) {
        const tir_tensor *t = f->outputs[i];
        kiln_tensor_init(&out[i], t->dtype, t->rank, t->dims);
        kiln_status s = kiln_tensor_alloc(g_ctx, &out[i]);
        if (s) return s;
        memset(out[i].data, 0xff, kiln_nbytes(&out[i]));
        args[f->n_inputs + i] = out[i].data;
    }
    for (int i = 0; i < f->n_inputs; i++) {
        const lir_buffer *b = lf->args[i];
        args[i] = b->constant ? b->constant->data : k->in[i].data;
    }
    if (!jit) return lir_interp_run(g_ctx, lf, args);
    cg_options o;
    cg_options_default(&o);
    o.opt_level = 2;
    cg_module *m = NULL;
    kiln_status s = cg_llvm_jit(g_ctx, &lf, 1, &o, &m);
    cg_kernel_fn fn = s ? NULL : cg_module_lookup(m, lf->name);
    if (!s && !fn) s = kiln_fail(g_ctx, KILN_ERR_INTERNAL, "kernel not found");
    if (!s) fn(args);
    cg_module_free(m);
    return s;
}

static kiln_status run_trace(kcase *k, const sch_trace *t, bool jit, kiln_tensor *out) {
    lir_func *lf = NULL;
    kiln_status s = sch_lower(g_ctx, k->f, t, &lf);
    if (!s) s = run_lir(k, lf, jit, out);
    lir_func_free(lf);
    return s;
}

static double max_err(const kiln_tensor *got, const kiln_tensor *want) {
    int64_t n = kiln_numel(want);
    double maxb = 0, maxd = 0;
    for (int64_t i = 0; i < n; i++) {
        double a = kiln_load_f64(got->dtype, got->data, i), b = kiln_load_f64(want->dtype, want->data, i);
        if (isnan(a) != isnan(b)) return INFINITY;
        if (isnan(a)) continue;
        maxb = fmax(maxb, fabs(b));
        maxd = fmax(maxd, fabs(a - b));
    }
    return maxd / (maxb > 1e-6 ? maxb : 1e-6);
}

static int g_points, g_jit_points;

/* Checks one trace against the reference outputs; `what` names it. */
static void check_trace(kcase *k, const sch_trace *t, bool jit, const kiln_tensor *ref, const char *what,
                        const char *text) {
    kiln_tensor out[8];
    memset(out, 0, sizeof out);
    kiln_status s = run_trace(k, t, jit, out);
    CHECK_MSG(s == KILN_OK, "%s: %s\n  %s", what, kiln_errmsg(g_ctx), text);
    for (int o = 0; !s && o < k->f->n_outputs; o++) {
        double e = max_err(&out[o], &ref[o]);
        CHECK_MSG(e <= 1e-5, "%s: output %d error %g\n  %s", what, o, e, text);
        if (e > 1e-5 && getenv("KILN_TEST_PRINT")) sch_trace_print(stderr, t);
    }
    for (int o = 0; o < k->f->n_outputs; o++) kiln_tensor_release(&out[o]);
    g_points++;
    g_jit_points += jit;
}

static void random_point(const tune_space *sp, int64_t *pt) {
    for (int i = 0; i < sp->n_knobs; i++) pt[i] = sp->knobs[i].values[rnd() % (uint64_t)sp->knobs[i].n_values];
}

/* The default trace and n_random random points for one target. */
static void check_points(kcase *k, const cg_cpu_target *tg, const char *tmpl, int n_random, bool jit,
                         const kiln_tensor *ref, const char *text) {
    tune_space sp;
    int64_t pt[TUNE_MAX_KNOBS];
    char what[1024], ps[512];
    kiln_status s = tune_space_for(g_ctx, k->f, tg, &sp);
    CHECK_MSG(s == KILN_OK, "space: %s", kiln_errmsg(g_ctx));
    if (s) return;
    CHECK_MSG(strcmp(sp.template_name, tmpl) == 0, "template %s, expected %s\n  %s", sp.template_name, tmpl, text);
    for (int i = -1; i < n_random; i++) {
        if (i < 0) tune_space_default(&sp, pt);
        else random_point(&sp, pt);
        sch_trace *t = NULL;
        snprintf(what, sizeof what, "%s (%d-bit)", tune_point_str(&sp, pt, ps, sizeof ps), tg->vector_bits);
        s = tune_trace_from_knobs(g_ctx, k->f, tg, &sp, pt, &t);
        CHECK_MSG(s == KILN_OK, "%s: %s\n  %s", what, kiln_errmsg(g_ctx), text);
        if (!s) check_trace(k, t, jit, ref, what, text);
        sch_trace_free(t);
    }
}

static void print_default(kcase *k, const sch_trace *t, const char *text) {
    lir_func *lf = NULL;
    fprintf(stderr, "==== %s\n", text);
    tir_print(stderr, k->f);
    sch_trace_print(stderr, t);
    if (sch_lower(g_ctx, k->f, t, &lf) == KILN_OK) lir_print(stderr, lf);
    lir_func_free(lf);
}

typedef struct tcase {
    int opset;
    const char *tmpl; /* the template expected to apply */
    bool jit;         /* run natively (larger kernels) */
    const char *text;
} tcase;

static void run_case(const tcase *c, int n_random) {
    setup();
    kcase k;
    if (!kcase_make(&k, c->opset, c->text)) {
        kcase_free(&k);
        return;
    }
    kiln_tensor ref[8];
    memset(ref, 0, sizeof ref);
    sch_trace *empty = sch_trace_new();
    kiln_status s = run_trace(&k, empty, c->jit, ref);
    CHECK_MSG(s == KILN_OK, "reference: %s\n  %s", kiln_errmsg(g_ctx), c->text);
    if (!s) {
        check_points(&k, &g_host, c->tmpl, n_random, c->jit, ref, c->text);
        check_points(&k, &g_avx2, c->tmpl, n_random / 2, c->jit, ref, c->text);
        sch_trace *t = NULL;
        s = tune_default_trace(g_ctx, k.f, &g_host, &t);
        CHECK_MSG(s == KILN_OK && t, "tune_default_trace: %s", kiln_errmsg(g_ctx));
        if (!s && getenv("KILN_TEST_PRINT")) print_default(&k, t, c->text);
        sch_trace_free(t);
    }
    sch_trace_free(empty);
    for (int o = 0; o < 8; o++) kiln_tensor_release(&ref[o]);
    kcase_free(&k);
}

static void run_cases(const tcase *cs, int n, int n_random) {
    for (int i = 0; i < n; i++) run_case(&cs[i], cs[i].jit ? n_random / 2 : n_random);
}

#define N_OF(a) (int)(sizeof(a) / sizeof((a)[0]))

/* ---- the cases ---- */

static void t_elemwise(void) {
    static const tcase cs[] = {
        {13, "elemwise", false, "input %x : f32[2,3,7,9]\ninput %y : f32[3,1,9]\n%z = Add(%x, %y)\noutput %z"},
        {13, "elemwise", false, "input %x : f32[2,5,33]\ninput %y : f32[1]\n%z = Mul(%x, %y)\noutput %z"},
        {13, "elemwise", false, "input %x : f32[3,4,5,6]\n%z = Transpose(%x) {perm=[0, 2, 3, 1]}\noutput %z"},
        {13, "elemwise", false, "input %x : f32[4,37]\nconst %lo : f32[] = {-0.25}\nconst %hi : f32[] = {0.5}\n"
                                "%z = Clip(%x, %lo, %hi)\noutput %z"},
        {13, "elemwise", false, "input %x : f32[5]\n%z = Erf(%x)\noutput %z"},
        {13, "elemwise", false, "input %x : f32[2,3]\ninput %y : f32[2,3]\n%z = Less(%x, %y)\noutput %z"},
        {13, "elemwise", false, "input %x : i32[6,17]\ninput %y : i32[17]\n%z = Add(%x, %y)\noutput %z"},
        {13, "elemwise", true, "input %x : f32[1,64,20,20]\n%z = Relu(%x)\noutput %z"},
        {13, "elemwise", true, "input %x : f32[1,32,56,56]\ninput %s : f32[32,1,1]\n%z = Mul(%x, %s)\noutput %z"},
        {13, "elemwise", true, "input %x : f32[1,12,128,64]\n%z = Transpose(%x) {perm=[0, 2, 1, 3]}\noutput %z"},
    };
    run_cases(cs, N_OF(cs), 8);
}

static void t_reduce(void) {
    static const tcase cs[] = {
        {13, "reduce", false, "input %x : f32[4,10,33]\n%z = Softmax(%x)\noutput %z"},
        {13, "reduce", false, "input %x : f32[2,5,6,7]\n%z = Softmax(%x) {axis=1}\noutput %z"},
        {11, "reduce", false, "input %x : f32[3,4,9]\n%z = LogSoftmax(%x) {axis=1}\noutput %z"},
        {13, "reduce", false, "input %x : f32[2,30,40]\n%z = ReduceMean(%x) {axes=[-1]}\noutput %z"},
        {13, "reduce", false, "input %x : f32[2,30,40]\n%z = ReduceSum(%x) {axes=[0, 1], keepdims=0}\noutput %z"},
        {13, "reduce", false, "input %x : f32[20,3,5]\n%z = ReduceMax(%x) {axes=[0]}\noutput %z"},
        {13, "reduce", false, "input %x : f32[300]\n%z = ReduceSum(%x) {keepdims=0}\noutput %z"},
        {13, "reduce", false, "input %x : f32[5,19]\n%z = ArgMax(%x) {axis=1}\noutput %z"},
        {13, "reduce", false, "input %x : f32[1,16,7,7]\n%z = GlobalAveragePool(%x)\noutput %z"},
        {17, "reduce", false, "input %x : f32[2,5,64]\ninput %c_g : f32[64]\ninput %c_b : f32[64]\n"
                              "%z = LayerNormalization(%x, %c_g, %c_b) {axis=-1}\noutput %z"},
        {13, "reduce", true, "input %x : f32[1,12,128,128]\n%z = Softmax(%x)\noutput %z"},
        {13, "reduce", true, "input %x : f32[1,128,768]\n%z = ReduceMean(%x) {axes=[-1]}\noutput %z"},
    };
    run_cases(cs, N_OF(cs), 8);
}

/* ---- the space API ---- */

static char *trace_text(const sch_trace *t) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    sch_trace_print(m, t);
    fclose(m);
    return buf;
}

static char *lir_text(const lir_func *f) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    lir_print(m, f);
    fclose(m);
    return buf;
}

static void t_space_api(void) {
    setup();
    kcase k;
    if (!kcase_make(&k, 13, "input %a : f32[16,32]\ninput %c_b : f32[48,32]\ninput %c : f32[48]\n"
                            "%y = Gemm(%a, %c_b, %c) {transB=1}\noutput %y")) {
        kcase_free(&k);
        return;
    }
    tune_space sp;
    int64_t pt[TUNE_MAX_KNOBS];
    CHECK(tune_space_for(g_ctx, k.f, &g_host, &sp) == KILN_OK);
    CHECK(strcmp(sp.template_name, "matmul") == 0);
    uint64_t size = 1;
    for (int i = 0; i < sp.n_knobs; i++) {
        CHECK(sp.knobs[i].n_values >= 1 && sp.knobs[i].n_values <= TUNE_MAX_VALUES);
        CHECK(sp.knobs[i].default_index >= 0 && sp.knobs[i].default_index < sp.knobs[i].n_values);
        CHECK(tune_knob_index(&sp, sp.knobs[i].name) == i);
        size *= (uint64_t)sp.knobs[i].n_values;
    }
    CHECK(tune_space_size(&sp) == size && size > 1);
    CHECK(tune_knob_index(&sp, "no_such_knob") == -1);
    tune_space_default(&sp, pt);
    char buf[512];
    tune_point_str(&sp, pt, buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "matmul vec_axis=", 16) == 0, "%s", buf);

    /* the same point gives the same trace; its text replays to the same loops */
    sch_trace *t1 = NULL, *t2 = NULL, *t3 = NULL;
    CHECK(tune_trace_from_knobs(g_ctx, k.f, &g_host, &sp, pt, &t1) == KILN_OK);
    CHECK(tune_trace_from_knobs(g_ctx, k.f, &g_host, &sp, pt, &t2) == KILN_OK);
    char *a = t1 ? trace_text(t1) : NULL, *b = t2 ? trace_text(t2) : NULL;
    CHECK(a && b && strcmp(a, b) == 0);
    CHECK(a && sch_trace_parse(g_ctx, a, &t3) == KILN_OK);
    lir_func *l1 = NULL, *l3 = NULL;
    CHECK(t1 && sch_lower(g_ctx, k.f, t1, &l1) == KILN_OK);
    CHECK(t3 && sch_lower(g_ctx, k.f, t3, &l3) == KILN_OK);
    char *x = l1 ? lir_text(l1) : NULL, *y = l3 ? lir_text(l3) : NULL;
    CHECK(x && y && strcmp(x, y) == 0);
    free(a), free(b), free(x), free(y);
    lir_func_free(l1), lir_func_free(l3);
    sch_trace_free(t1), sch_trace_free(t2), sch_trace_free(t3);

    /* a value the knob does not list is refused, naming the knob */
    int ki = tune_knob_index(&sp, "rows");
    sch_trace *bad = NULL;
    pt[ki] = 1000;
    CHECK(tune_trace_from_knobs(g_ctx, k.f, &g_host, &sp, pt, &bad) == KILN_ERR_INVALID && !bad);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "rows") != NULL, "%s", kiln_errmsg(g_ctx));
    kcase_free(&k);
}

/* A function no template can name (two stages of one name) gets the
** default template: an empty space and the empty trace. */
static void t_default_template(void) {
    setup();
    tir_func *f = tir_func_new("dup");
    int64_t dims[1] = {8};
    tir_tensor *x = tir_placeholder(f, "x", KILN_F32, 1, dims, NULL);
    tir_stage *s1 = tir_stage_new(f, "s", KILN_F32, 1, dims, TIR_TAG_ELEMWISE);
    ex_expr *i1 = ex_varref(&f->eb, s1->axes[0]);
    s1->body = ex_load_tensor(&f->eb, x, &i1);
    tir_stage *s2 = tir_stage_new(f, "s", KILN_F32, 1, dims, TIR_TAG_ELEMWISE);
    ex_expr *i2 = ex_varref(&f->eb, s2->axes[0]);
    s2->body = ex_load_tensor(&f->eb, s1->out, &i2);
    tir_mark_output(f, s2->out);
    tune_space sp;
    sch_trace *t = NULL;
    CHECK(tune_space_for(g_ctx, f, &g_host, &sp) == KILN_OK);
    CHECK(strcmp(sp.template_name, "default") == 0 && sp.n_knobs == 0 && tune_space_size(&sp) == 1);
    CHECK(tune_default_trace(g_ctx, f, &g_host, &t) == KILN_OK && t && t->n_steps == 0);
    sch_trace_free(t);
    tir_func_free(f);
}

/* Every allocation failure while choosing a schedule is an error, never
** a crash or a leak. */
static void t_allocation_failures(void) {
    setup();
    static const char *const texts[] = {
        "input %a : f32[16,32]\ninput %c_b : f32[48,32]\ninput %c : f32[48]\n%y = Gemm(%a, %c_b, %c) {transB=1}\noutput %y",
        "input %x : f32[4,10,33]\n%z = Softmax(%x)\noutput %z",
        "input %x : f32[1,8,10,12]\ninput %c_w : f32[16,8,3,3]\ninput %c_b : f32[16]\n"
        "%y = Conv(%x, %c_w, %c_b) {pads=[1, 1, 1, 1]}\noutput %y",
    };
    for (int c = 0; c < 3; c++) {
        kcase k;
        if (!kcase_make(&k, 13, texts[c])) {
            kcase_free(&k);
            continue;
        }
        long live = kiln_mem_live();
        int ok_at = -1;
        for (int n = 0; n < 2000 && ok_at < 0; n++) {
            sch_trace *t = NULL;
            kiln_mem_fail_after(n);
            kiln_status st = tune_default_trace(g_ctx, k.f, &g_host, &t);
            kiln_mem_fail_after(-1);
            CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
            if (st == KILN_OK) ok_at = n;
            sch_trace_free(t);
            CHECK_MSG(kiln_mem_live() == live, "n=%d leaks", n);
        }
        CHECK(ok_at > 0);
        kcase_free(&k);
    }
}

static void t_summary(void) {
    printf("templates: %d points checked (%d natively)\n", g_points, g_jit_points);
    krt_pool_set_current(NULL);
    krt_pool_free(g_pool);
    kiln_ctx_free(g_ctx);
}

static void t_matmul(void) {
    static const tcase cs[] = {
        {13, "matmul", false, "input %a : f32[37,13]\ninput %b : f32[13,29]\n%y = MatMul(%a, %b)\noutput %y"},
        {13, "matmul", false, "input %a : f32[20,24]\ninput %c_b : f32[24,40]\n%y = MatMul(%a, %c_b)\noutput %y"},
        {13, "matmul", false, "input %a : f32[2,3,5,7]\ninput %b : f32[3,7,18]\n%y = MatMul(%a, %b)\noutput %y"},
        {13, "matmul", false, "input %a : f32[7]\ninput %c_b : f32[2,7,21]\n%y = MatMul(%a, %c_b)\noutput %y"},
        {13, "matmul", false, "input %c_a : f32[19,11]\ninput %b : f32[11]\n%y = MatMul(%c_a, %b)\noutput %y"},
        {13, "reduce", false, "input %a : f32[19,11]\ninput %b : f32[11]\n%y = MatMul(%a, %b)\noutput %y"},
        {13, "matmul", false, "input %a : i32[9,10]\ninput %b : i32[10,17]\n%y = MatMul(%a, %b)\noutput %y"},
        {13, "matmul", false, "input %a : f32[16,32]\ninput %c_b : f32[48,32]\ninput %c : f32[48]\n"
                              "%y = Gemm(%a, %c_b, %c) {transB=1, alpha=0.5, beta=2.0}\noutput %y"},
        {13, "matmul", false, "input %a : f32[32,9]\ninput %b : f32[32,40]\ninput %c : f32[9,1]\n"
                              "%y = Gemm(%a, %b, %c) {transA=1}\noutput %y"},
        {13, "matmul", true, "input %a : f32[1,512]\ninput %c_b : f32[512,1000]\n%y = MatMul(%a, %c_b)\noutput %y"},
        {13, "matmul", true, "input %a : f32[12,128,64]\ninput %b : f32[12,64,128]\n%y = MatMul(%a, %b)\noutput %y"},
        {13, "matmul", true, "input %a : f32[1,2048]\ninput %c_b : f32[1000,2048]\ninput %c_c : f32[1000]\n"
                             "%y = Gemm(%a, %c_b, %c_c) {transB=1}\noutput %y"},
        {13, "matmul", true, "input %a : f32[128,96]\ninput %c_b : f32[96,200]\n%y = MatMul(%a, %c_b)\noutput %y"},
        {13, "matmul", false, "input %a : f32[32,24]\ninput %c_b : f32[24,203]\n%y = MatMul(%a, %c_b)\noutput %y"},
        {13, "matmul", true, "input %a : f32[64,96]\ninput %c_b : f32[96,1001]\ninput %c_c : f32[1001]\n"
                             "%y = Gemm(%a, %c_b, %c_c)\noutput %y"},
    };
    run_cases(cs, N_OF(cs), 10);
}

static void t_conv(void) {
    static const tcase cs[] = {
        {11, "conv", false, "input %x : f32[1,8,10,12]\ninput %c_w : f32[16,8,3,3]\ninput %c_b : f32[16]\n"
                            "%y = Conv(%x, %c_w, %c_b) {pads=[1, 1, 1, 1]}\noutput %y"},
        {11, "conv", false, "input %x : f32[2,16,7,7]\ninput %c_w : f32[32,16,1,1]\n%y = Conv(%x, %c_w)\noutput %y"},
        {11, "conv", false, "input %x : f32[1,3,20,20]\ninput %c_w : f32[8,3,7,7]\n"
                            "%y = Conv(%x, %c_w) {pads=[3, 3, 3, 3], strides=[2, 2]}\noutput %y"},
        {11, "conv", false, "input %x : f32[1,8,9,9]\ninput %c_w : f32[8,1,3,3]\ninput %c_b : f32[8]\n"
                            "%y = Conv(%x, %c_w, %c_b) {group=8, pads=[1, 1, 1, 1], strides=[2, 2]}\noutput %y"},
        {11, "conv", false, "input %x : f32[1,6,8,7]\ninput %w : f32[4,3,3,2]\n%y = Conv(%x, %w) {group=2}\noutput %y"},
        {11, "conv", false, "input %x : f32[2,3,17]\ninput %c_w : f32[5,3,4]\ninput %b : f32[5]\n"
                            "%y = Conv(%x, %c_w, %b) {pads=[2, 1], strides=[3]}\noutput %y"},
        {11, "conv", false, "input %x : f32[1,2,5,6,7]\ninput %c_w : f32[3,2,2,3,2]\n"
                            "%y = Conv(%x, %c_w) {pads=[0, 1, 1, 1, 0, 0]}\noutput %y"},
        {11, "conv", false, "input %x : f32[1,4,5,5]\ninput %c_w : f32[4,3,3,3]\n"
                            "%y = ConvTranspose(%x, %c_w) {strides=[2, 2], pads=[1, 1, 1, 1]}\noutput %y"},
        {11, "conv", true, "input %x : f32[1,64,28,28]\ninput %c_w : f32[64,64,3,3]\ninput %c_b : f32[64]\n"
                           "%y = Conv(%x, %c_w, %c_b) {pads=[1, 1, 1, 1]}\noutput %y"},
        {11, "conv", true, "input %x : f32[1,32,28,28]\ninput %c_w : f32[32,1,3,3]\n"
                           "%y = Conv(%x, %c_w) {group=32, pads=[1, 1, 1, 1]}\noutput %y"},
        {11, "conv", true, "input %x : f32[1,64,14,14]\ninput %c_w : f32[128,64,1,1]\ninput %c_b : f32[128]\n"
                           "%y = Conv(%x, %c_w, %c_b) {strides=[2, 2]}\noutput %y"},
    };
    run_cases(cs, N_OF(cs), 10);
}

static void t_pool(void) {
    static const tcase cs[] = {
        {12, "pool", false, "input %x : f32[1,4,15,15]\n%y = MaxPool(%x) {kernel_shape=[3, 3], strides=[2, 2], "
                            "pads=[1, 1, 1, 1]}\noutput %y"},
        {11, "pool", false, "input %x : f32[2,3,9,8]\n%y = AveragePool(%x) {kernel_shape=[3, 3], pads=[1, 1, 1, 1]}\n"
                            "output %y"},
        {11, "pool", false, "input %x : f32[1,2,9,20]\n%y = AveragePool(%x) {kernel_shape=[2, 3], strides=[1, 2], "
                            "count_include_pad=1, pads=[0, 1, 1, 1]}\noutput %y"},
        {11, "pool", false, "input %x : f32[1,3,19]\n%y = MaxPool(%x) {kernel_shape=[4], strides=[3]}\noutput %y"},
        {11, "pool", false, "input %x : f32[1,2,5,6,7]\n%y = AveragePool(%x) {kernel_shape=[2, 2, 3]}\noutput %y"},
        {11, "pool", false, "input %x : f32[1,3,8,8]\n%y = LpPool(%x) {kernel_shape=[2, 2], p=3}\noutput %y"},
        {12, "reduce", false, "input %x : f32[1,2,9,8]\n%y, %i = MaxPool(%x) {kernel_shape=[2, 3], strides=[2, 2]}\n"
                              "output %y\noutput %i"},
        {11, "reduce", false, "input %x : f32[2,5,6,7]\n%y = GlobalMaxPool(%x)\noutput %y"},
        {12, "pool", true, "input %x : f32[1,64,112,112]\n%y = MaxPool(%x) {kernel_shape=[3, 3], strides=[2, 2], "
                           "pads=[1, 1, 1, 1]}\noutput %y"},
    };
    run_cases(cs, N_OF(cs), 10);
}

TEST_MAIN(T(t_space_api), T(t_default_template), T(t_allocation_failures), T(t_elemwise), T(t_reduce), T(t_matmul),
          T(t_conv), T(t_pool), T(t_summary))
