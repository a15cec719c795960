/*
** test_compile_run.c — running compiled plans: results equal the reference
** interpreter's; runs repeated on other inputs and then on the first ones
** again give identical results (the arena is reused, never zeroed, so stale
** data would show); elementwise kernels write in place; nodes that run their
** reference kernel (heap values) mix with arena values; Pow by a constant
** 1, 2, 3, 0.5 or -1 needs no pow call and agrees with the reference on
** special values.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/compile.h"
#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tensor.h"
#include "runtime/krt_pool.h"

static kiln_ctx *g_ctx;

static gir_graph *parse(const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(g_ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) s = gir_bind_graph(g_ctx, g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return s ? NULL : g;
}

/* Equal within a relative tolerance; NaNs equal NaNs, infinities match. */
static bool close_to(const kiln_tensor *a, const kiln_tensor *b, double rtol) {
    if (a->dtype != b->dtype || !kiln_tensor_same_shape(a, b)) return false;
    int64_t n = kiln_numel(a);
    for (int64_t i = 0; i < n; i++) {
        double x = kiln_tensor_f64(a, i), y = kiln_tensor_f64(b, i);
        if (isnan(x) || isnan(y)) {
            if (isnan(x) != isnan(y)) return false;
            continue;
        }
        if (isinf(x) || isinf(y)) {
            if (x != y) return false;
            continue;
        }
        if (fabs(x - y) > rtol * fmax(1.0, fabs(y))) return false;
    }
    return true;
}

static bool same_bits(const kiln_tensor *a, const kiln_tensor *b) {
    return a->dtype == b->dtype && kiln_tensor_same_shape(a, b) &&
           !memcmp(a->data, b->data, kiln_nbytes(a));
}

static void release_all(kiln_tensor *t, int n) {
    for (int i = 0; i < n; i++) kiln_tensor_release(&t[i]);
}

/* ---- repeated runs ---- */

static const char *k_graph =
    "graph \"g\" {\n"
    "  opset 17\n"
    "  input %x : f32[4,16]\n"
    "  input %w : f32[16,16]\n"
    "  %a = MatMul(%x, %w)\n"
    "  %b = Relu(%a)\n"         /* a lives on: not in place */
    "  %c = Sigmoid(%b)\n"      /* b dies: in place */
    "  %d = Add(%c, %a)\n"      /* both die: in place */
    "  %e = Mul(%d, %d)\n"
    "  %f = Transpose(%e) {perm=[1,0]}\n"
    "  %nz = NonZero(%b)\n"     /* a reference kernel: its output's shape is known at run time */
    "  %g = Tanh(%f)\n"
    "  %h = Neg(%g)\n"
    "  output %h\n"
    "  output %c\n"             /* a graph output that later steps read */
    "  output %nz\n"
    "}\n";

static void fill(kiln_tensor *t, int64_t r, int64_t c, float *data, unsigned seed) {
    int64_t dims[2] = {r, c};
    for (int64_t i = 0; i < r * c; i++) {
        seed = seed * 1103515245u + 12345u;
        data[i] = (float)((int)((seed >> 16) % 2001) - 1000) / 700.0f;
    }
    kiln_tensor_init(t, KILN_F32, 2, dims);
    t->data = data;
}

/* At -O0 every node is a kernel; at -O2 elementwise chains fuse. */
static void repeated_runs_at(int opt_level) {
    gir_graph *ref = parse(k_graph), *g = parse(k_graph);
    if (!ref || !g) return;
    static float xa[64], wa[256], xb[64], wb[256];
    kiln_tensor in_a[2], in_b[2];
    fill(&in_a[0], 4, 16, xa, 1), fill(&in_a[1], 16, 16, wa, 2);
    fill(&in_b[0], 4, 16, xb, 3), fill(&in_b[1], 16, 16, wb, 4);
    kc_options o;
    kc_options_default(&o);
    o.passes.opt_level = opt_level;
    kc_plan *p = NULL;
    kiln_status s = kc_compile(g_ctx, g, in_a, 2, &o, &p);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (s) goto done;
    CHECK_MSG(opt_level > 0 || (p->mem.n_inplace >= 2 && p->mem.n_in_arena >= 4), "%d in place, %d in the arena", p->mem.n_inplace,
              p->mem.n_in_arena);
    krt_pool *pool = krt_pool_new(2);
    krt_pool_set_current(pool);
    kiln_tensor r1[3] = {0}, r2[3] = {0}, r3[3] = {0}, want_a[3] = {0}, want_b[3] = {0};
    CHECK(kc_run(g_ctx, p, in_a, 2, r1, 3) == KILN_OK);
    CHECK(kc_run(g_ctx, p, in_b, 2, r2, 3) == KILN_OK);
    CHECK(kc_run(g_ctx, p, in_a, 2, r3, 3) == KILN_OK);
    s = gir_interp_run(g_ctx, ref, in_a, 2, want_a, 3);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(gir_interp_run(g_ctx, ref, in_b, 2, want_b, 3) == KILN_OK);
    for (int k = 0; k < 3; k++) {
        CHECK_MSG(close_to(&r1[k], &want_a[k], 1e-4), "output %d, first inputs", k);
        char a[64], b[64];
        CHECK_MSG(close_to(&r2[k], &want_b[k], 1e-4), "output %d, second inputs: %s vs %s", k,
                  kiln_shape_str(&r2[k], a, sizeof a), kiln_shape_str(&want_b[k], b, sizeof b));
        CHECK_MSG(same_bits(&r1[k], &r3[k]), "output %d differs between runs on the same inputs", k);
        CHECK(r1[k].alloc != NULL && r1[k].data != r3[k].data); /* each run's outputs are the caller's own */
    }
    kiln_tensor bad[3] = {0};
    CHECK(kc_run(g_ctx, p, in_a, 1, bad, 3) == KILN_ERR_INVALID);
    CHECK(kc_run(g_ctx, p, in_a, 2, bad, 2) == KILN_ERR_INVALID);
    CHECK(bad[0].data == NULL);
    release_all(r1, 3), release_all(r2, 3), release_all(r3, 3), release_all(want_a, 3), release_all(want_b, 3);
    krt_pool_set_current(NULL);
    krt_pool_free(pool);
done:
    kc_plan_free(p);
    gir_graph_free(ref);
    gir_graph_free(g);
}

static void repeated_runs_are_identical(void) {
    repeated_runs_at(0);
    repeated_runs_at(2);
}

/* ---- Pow by a constant ---- */

static bool has_pow(const ex_expr *e) {
    if (!e) return false;
    if (e->kind == EX_BINARY && e->op == EX_POW) return true;
    for (int i = 0; i < e->n_args; i++)
        if (has_pow(e->args[i])) return true;
    return false;
}

static void pow_by_constants(void) {
    static const char *const exps[] = {"1", "2", "3", "0.5", "-1", "2.5", "{2, 2, 2}", "{2, 3, 2}"};
    static const bool special[] = {true, true, true, true, true, false, true, false};
    static float xs[12] = {0.0f, -0.0f, 1.5f, -2.25f, 3e19f, 1e-20f, INFINITY, -INFINITY, NAN, 0.7f, -1.0f, 7.0f};
    for (size_t k = 0; k < sizeof exps / sizeof exps[0]; k++) {
        char text[512];
        bool vec = exps[k][0] == '{';
        snprintf(text, sizeof text,
                 "graph \"p\" {\n  opset 17\n  input %%x : f32[4,3]\n  const %%e : f32[%s] = %s%s%s\n"
                 "  %%y = Pow(%%x, %%e)\n  output %%y\n}\n",
                 vec ? "3" : "", vec ? "" : "{", exps[k], vec ? "" : "}");
        gir_graph *ref = parse(text), *g = parse(text);
        if (!ref || !g) return;
        int64_t dims[2] = {4, 3};
        kiln_tensor in;
        kiln_tensor_init(&in, KILN_F32, 2, dims);
        in.data = xs;
        kc_options o;
        kc_options_default(&o);
        kc_plan *p = NULL;
        kiln_tensor got = {0}, want = {0};
        kiln_status s = kc_compile(g_ctx, g, &in, 1, &o, &p);
        CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
        if (!s) {
            CHECK(p->n_kernels == 1 && p->kernels[0]->tir);
            CHECK_MSG(has_pow(p->kernels[0]->tir->stages[0]->body) != special[k], "exponent %s", exps[k]);
            CHECK(kc_run(g_ctx, p, &in, 1, &got, 1) == KILN_OK);
            s = gir_interp_run(g_ctx, ref, &in, 1, &want, 1);
            CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
            CHECK_MSG(close_to(&got, &want, 1e-6), "exponent %s", exps[k]);
        }
        kiln_tensor_release(&got);
        kiln_tensor_release(&want);
        kc_plan_free(p);
        gir_graph_free(ref);
        gir_graph_free(g);
    }
}

static void open_ctx(void) { CHECK(kiln_ctx_new(&g_ctx) == KILN_OK); }
static void close_ctx(void) { kiln_ctx_free(g_ctx); }

TEST_MAIN(T(open_ctx), T(repeated_runs_are_identical), T(pow_by_constants), T(close_ctx))
