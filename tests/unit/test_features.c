/*
** test_features.c — the cost model's features (autotune/features.h): exact
** values on hand-built loop nests (footprints of contiguous and strided
** accesses, guards, local buffers), a tiled matmul's features following its
** tile sizes, determinism, bad knob values, allocation failures.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/features.h"
#include "harness.h"
#include "ir/mem.h"
#include "tune_kernel.h"

static kiln_ctx *g_ctx;
static cg_cpu_target g_host;

static void setup(void) {
    if (g_ctx) return;
    kiln_ctx_new(&g_ctx);
    if (cg_cpu_host(g_ctx, &g_host)) fprintf(stderr, "host: %s\n", kiln_errmsg(g_ctx));
}

static float gf(const float *v, int which) { return v[TUNE_FEAT_GLOBAL + which]; }
static float lf_(const float *v, int level, int which) { return v[level * TUNE_FEAT_PER_LEVEL + which]; }
static bool near(double a, double b) { return fabs(a - b) < 1e-4 * fmax(1.0, fabs(b)); }
static double lg(double x) { return log2(1.0 + x); }

static void dump(const float *v) {
    if (!getenv("KILN_TEST_PRINT")) return;
    char name[64];
    for (int i = 0; i < TUNE_N_FEATURES; i++)
        if (v[i] != 0) fprintf(stderr, "  %-22s %g\n", tune_feature_name(i, name, sizeof name), v[i]);
}

/* for i in [0, 64): for j in [0, 16) vectorized:
**   out[i*16 + j] = a[INDEX] * 2   (INDEX: i*16 + j, or j*64 + i when strided) */
static lir_func *copy_nest(bool strided, bool guard) {
    lir_func *f = lir_func_new("copy");
    ex_builder *b = &f->eb;
    lir_buffer *a = lir_arg_new(f, "a", KILN_F32, 1024, true);
    lir_buffer *o = lir_arg_new(f, "out", KILN_F32, 1024, false);
    ex_var *i = ex_var_new(b, "i", 64, false), *j = ex_var_new(b, "j", 16, false);
    ex_expr *vi = ex_varref(b, i), *vj = ex_varref(b, j);
    ex_expr *src = strided ? ex_add(b, ex_mul(b, vj, ex_int(b, 64)), vi) : ex_add(b, ex_mul(b, vi, ex_int(b, 16)), vj);
    ex_expr *val = ex_binary(b, EX_MUL, ex_load_buffer(b, a, src), ex_const_float(b, KILN_F32, 2.0));
    lir_stmt *st = lir_store(f, o, ex_add(b, ex_mul(b, vi, ex_int(b, 16)), vj), val);
    lir_stmt *inner = lir_for(f, j, ex_int(b, 0), ex_int(b, 16), LIR_VECTORIZED, st);
    if (guard) inner = lir_if(f, ex_lt(b, vi, ex_int(b, 60)), inner, NULL);
    f->body = lir_for(f, i, ex_int(b, 0), ex_int(b, 64), LIR_PARALLEL, inner);
    return f;
}

static void t_contiguous(void) {
    setup();
    lir_func *f = copy_nest(false, false);
    float v[TUNE_N_FEATURES];
    CHECK(tune_features_lir(g_ctx, f, v) == KILN_OK);
    dump(v);
    /* level 0: j, 16 lanes; store and load 64 bytes each, one line each */
    CHECK(near(lf_(v, 0, 0), lg(16)) && lf_(v, 0, 1) == 1 && lf_(v, 0, 2) == 0 && lf_(v, 0, 3) == 0);
    CHECK(near(lf_(v, 0, 4), lg(128)) && near(lf_(v, 0, 5), lg(2)));
    /* level 1: i, parallel; the whole arrays */
    CHECK(near(lf_(v, 1, 0), lg(64)) && lf_(v, 1, 3) == 1 && lf_(v, 1, 1) == 0);
    CHECK(near(lf_(v, 1, 4), lg(8192)) && near(lf_(v, 1, 5), lg(128)));
    for (int k = 2 * TUNE_FEAT_PER_LEVEL; k < TUNE_FEAT_GLOBAL; k++) CHECK(v[k] == 0);
    CHECK(near(gf(v, TUNE_FG_FLOPS), lg(1024)) && near(gf(v, TUNE_FG_BYTES), lg(8192)));
    CHECK(near(gf(v, TUNE_FG_INTENSITY), 1024.0 / 8192.0));
    CHECK(gf(v, TUNE_FG_STAGES) == 1 && gf(v, TUNE_FG_NESTS) == 1 && gf(v, TUNE_FG_DEPTH) == 2);
    CHECK(near(gf(v, TUNE_FG_PARALLEL), lg(64)) && near(gf(v, TUNE_FG_VECTOR), lg(16)));
    CHECK(gf(v, TUNE_FG_UNROLLED) == 1 /* lg(1): no unrolled loop */ && gf(v, TUNE_FG_INNER_GUARD) == 0);
    CHECK(gf(v, TUNE_FG_GUARDS) == 0 && gf(v, TUNE_FG_LOCAL_BYTES) == 0);
    CHECK(near(gf(v, TUNE_FG_MAIN_TRIPS), lg(1024)) && near(gf(v, TUNE_FG_INNER_BYTES), lg(8)));
    CHECK(gf(v, TUNE_FG_INNER_CONTIG) == 2 && gf(v, TUNE_FG_INNER_INVARIANT) == 0 && gf(v, TUNE_FG_INNER_STRIDED) == 0);
    for (int k = TUNE_FEAT_KNOBS; k < TUNE_N_FEATURES; k++) CHECK(v[k] == 0);
    lir_func_free(f);
}

/* A strided load touches a line per lane; a guard inside the nest shows. */
static void t_strided_guarded(void) {
    setup();
    lir_func *f = copy_nest(true, true);
    float v[TUNE_N_FEATURES];
    CHECK(tune_features_lir(g_ctx, f, v) == KILN_OK);
    dump(v);
    CHECK(near(lf_(v, 0, 4), lg(128)) && near(lf_(v, 0, 5), lg(1 + 16)));
    CHECK(near(lf_(v, 1, 4), lg(8192)));
    CHECK(gf(v, TUNE_FG_INNER_GUARD) == 1 && near(gf(v, TUNE_FG_GUARDS), lg(64)));
    CHECK(gf(v, TUNE_FG_INNER_CONTIG) == 1 && gf(v, TUNE_FG_INNER_STRIDED) == 1);
    lir_func_free(f);
}

/* Odd nests: an empty kernel, a loop that never runs, an else branch, a
** nest deeper than the walker follows (a clear error, not a crash). */
static void t_odd_nests(void) {
    setup();
    float v[TUNE_N_FEATURES];
    lir_func *f = lir_func_new("empty");
    CHECK(tune_features_lir(g_ctx, f, v) == KILN_OK);
    for (int i = 0; i < TUNE_N_FEATURES; i++) CHECK(v[i] == 0);
    lir_func_free(f);

    f = lir_func_new("odd");
    ex_builder *b = &f->eb;
    lir_buffer *o = lir_arg_new(f, "out", KILN_F32, 64, false);
    ex_var *i = ex_var_new(b, "i", 64, false), *j = ex_var_new(b, "j", 0, false);
    ex_expr *vi = ex_varref(b, i);
    lir_stmt *never = lir_for(f, j, ex_int(b, 0), ex_int(b, 0), LIR_SERIAL,
                              lir_store(f, o, ex_varref(b, j), ex_const_float(b, KILN_F32, 1)));
    lir_stmt *then_s = lir_store(f, o, vi, ex_const_float(b, KILN_F32, 2));
    lir_stmt *else_s = lir_store(f, o, vi, ex_unary(b, EX_NEG, ex_const_float(b, KILN_F32, 2)));
    lir_stmt *body[2] = {never, lir_if(f, ex_lt(b, vi, ex_int(b, 32)), then_s, else_s)};
    f->body = lir_for(f, i, ex_int(b, 0), ex_int(b, 64), LIR_SERIAL, lir_seq(f, body, 2));
    CHECK(!f->eb.failed && tune_features_lir(g_ctx, f, v) == KILN_OK);
    /* the store that never runs is not the main one; the else branch's negation counts */
    CHECK(near(gf(v, TUNE_FG_MAIN_TRIPS), lg(64)) && near(gf(v, TUNE_FG_FLOPS), lg(64)));
    CHECK(gf(v, TUNE_FG_INNER_GUARD) == 1 && gf(v, TUNE_FG_NESTS) == 1 && gf(v, TUNE_FG_STAGES) == 1);
    lir_func_free(f);

    f = lir_func_new("deep");
    b = &f->eb;
    o = lir_arg_new(f, "out", KILN_F32, 1, false);
    lir_stmt *st = lir_store(f, o, ex_int(b, 0), ex_const_float(b, KILN_F32, 0));
    for (int d = 0; d < 70; d++) {
        char name[16];
        snprintf(name, sizeof name, "l%d", d);
        st = lir_for(f, ex_var_new(b, name, 1, false), ex_int(b, 0), ex_int(b, 1), LIR_SERIAL, st);
    }
    f->body = st;
    for (int k = 0; k < TUNE_N_FEATURES; k++) v[k] = 7;
    CHECK(tune_features_lir(g_ctx, f, v) == KILN_ERR_UNSUPPORTED);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "deeper") && strstr(kiln_errmsg(g_ctx), "deep"), "%s", kiln_errmsg(g_ctx));
    CHECK(v[0] == 7);
    lir_func_free(f);
}

static const char *k_matmul = "input %a : f32[64,96]\ninput %c_b : f32[96,128]\n%y = MatMul(%a, %c_b)\noutput %y";

static void set_knob(const tune_space *sp, int64_t *pt, const char *name, int64_t v) {
    int k = tune_knob_index(sp, name);
    CHECK_MSG(k >= 0, "no knob %s in %s", name, sp->template_name);
    if (k >= 0) pt[k] = v;
}

/* The matmul template's register tile: rows x vectors x lanes; the features
** show the tile (vector width, unrolled extent, accumulator bytes). */
static void t_matmul_tiles(void) {
    setup();
    tk_kernel k;
    if (!tk_make(g_ctx, &k, 13, k_matmul)) return;
    tune_space sp;
    CHECK(tune_space_for(g_ctx, k.f, &g_host, &sp) == KILN_OK && strcmp(sp.template_name, "matmul") == 0);
    int lanes = g_host.vector_bits / 32;
    static const int64_t rows[] = {1, 2, 4, 8}, vecs[] = {1, 2, 4}, kus[] = {1, 4};
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 3; c++)
            for (int u = 0; u < 2; u++) {
                int64_t pt[TUNE_MAX_KNOBS];
                float v[TUNE_N_FEATURES], again[TUNE_N_FEATURES];
                tune_space_default(&sp, pt);
                set_knob(&sp, pt, "vec_axis", 0);
                set_knob(&sp, pt, "rows", rows[r]);
                set_knob(&sp, pt, "vectors", vecs[c]);
                set_knob(&sp, pt, "k_unroll", kus[u]);
                set_knob(&sp, pt, "parallel", (r + c) % 2);
                kiln_status s = tune_features_point(g_ctx, k.f, &g_host, &sp, pt, v);
                CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
                if (s) continue;
                char ps[256];
                tune_point_str(&sp, pt, ps, sizeof ps);
                if (getenv("KILN_TEST_PRINT")) fprintf(stderr, "%s\n", ps), dump(v);
                CHECK_MSG(near(gf(v, TUNE_FG_VECTOR), lg(lanes)), "%s", ps);
                CHECK_MSG(near(gf(v, TUNE_FG_UNROLLED), lg((double)(rows[r] * vecs[c] * kus[u]))), "%s: %g", ps,
                          gf(v, TUNE_FG_UNROLLED));
                CHECK_MSG(near(gf(v, TUNE_FG_LOCAL_BYTES), lg((double)(rows[r] * vecs[c] * lanes * 4))), "%s", ps);
                CHECK_MSG(near(lf_(v, 0, 0), lg(lanes)) && lf_(v, 0, 1) == 1, "%s", ps);
                CHECK_MSG((gf(v, TUNE_FG_PARALLEL) > 1) == ((r + c) % 2 == 1), "%s", ps); /* lg(1): none */
                /* along the lanes: the accumulator (load and store) and B step by 1, A stays */
                CHECK_MSG(gf(v, TUNE_FG_INNER_CONTIG) == 3 && gf(v, TUNE_FG_INNER_INVARIANT) == 1 &&
                              gf(v, TUNE_FG_INNER_STRIDED) == 0, "%s", ps);
                /* the same matmul however tiled */
                CHECK(near(gf(v, TUNE_FG_MAIN_TRIPS), lg(64.0 * 96 * 128)));
                CHECK(near(v[TUNE_FEAT_KNOBS + 2 * tune_knob_index(&sp, "rows") + 1], lg((double)rows[r])));
                CHECK(tune_features_point(g_ctx, k.f, &g_host, &sp, pt, again) == KILN_OK);
                CHECK(memcmp(v, again, sizeof v) == 0);
            }
    tk_free(&k);
}

/* The footprint of one step of the row loop (level 2, above the lanes and
** the vectors) grows with the rows of the register tile. */
static void t_matmul_reuse(void) {
    setup();
    tk_kernel k;
    if (!tk_make(g_ctx, &k, 13, k_matmul)) return;
    tune_space sp;
    CHECK(tune_space_for(g_ctx, k.f, &g_host, &sp) == KILN_OK);
    double prev = -1;
    for (int64_t r = 2; r <= 8; r *= 2) {
        int64_t pt[TUNE_MAX_KNOBS];
        float v[TUNE_N_FEATURES];
        tune_space_default(&sp, pt);
        set_knob(&sp, pt, "vec_axis", 0);
        set_knob(&sp, pt, "rows", r);
        CHECK(tune_features_point(g_ctx, k.f, &g_host, &sp, pt, v) == KILN_OK);
        CHECK_MSG(gf(v, TUNE_FG_INTENSITY) > 0, "rows=%lld", (long long)r);
        double l2 = lf_(v, 2, 4);
        CHECK_MSG(l2 > prev, "rows=%lld: %g <= %g", (long long)r, l2, prev);
        prev = l2;
    }
    tk_free(&k);
}

/* Every template's points: features computed, finite, the same twice. */
static void t_all_templates(void) {
    setup();
    static const struct {
        int opset;
        const char *tmpl, *text;
    } cs[] = {
        {11, "conv", "input %x : f32[1,8,10,12]\ninput %c_w : f32[16,8,3,3]\ninput %c_b : f32[16]\n"
                     "%y = Conv(%x, %c_w, %c_b) {pads=[1, 1, 1, 1]}\noutput %y"},
        {11, "conv", "input %x : f32[1,8,9,9]\ninput %c_w : f32[8,1,3,3]\n"
                     "%y = Conv(%x, %c_w) {group=8, pads=[1, 1, 1, 1], strides=[2, 2]}\noutput %y"},
        {12, "pool", "input %x : f32[1,4,15,15]\n%y = MaxPool(%x) {kernel_shape=[3, 3], strides=[2, 2]}\noutput %y"},
        {13, "reduce", "input %x : f32[4,10,33]\n%z = Softmax(%x)\noutput %z"},
        {13, "reduce", "input %x : f32[2,30,40]\n%z = ReduceMean(%x) {axes=[-1]}\noutput %z"},
        {13, "elemwise", "input %x : f32[2,3,7,9]\ninput %y : f32[3,1,9]\n%z = Add(%x, %y)\noutput %z"},
        {13, "matmul", "input %a : f32[2,3,5,7]\ninput %b : f32[3,7,18]\n%y = MatMul(%a, %b)\noutput %y"},
    };
    uint64_t rng = 77;
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        tk_kernel k;
        if (!tk_make(g_ctx, &k, cs[c].opset, cs[c].text)) continue;
        tune_space sp;
        CHECK(tune_space_for(g_ctx, k.f, &g_host, &sp) == KILN_OK);
        CHECK_MSG(strcmp(sp.template_name, cs[c].tmpl) == 0, "%s for %s", sp.template_name, cs[c].text);
        for (int p = 0; p < 12; p++) {
            int64_t pt[TUNE_MAX_KNOBS];
            float v[TUNE_N_FEATURES], again[TUNE_N_FEATURES];
            tune_space_default(&sp, pt);
            for (int i = 0; p > 0 && i < sp.n_knobs; i++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                pt[i] = sp.knobs[i].values[(rng >> 33) % (uint64_t)sp.knobs[i].n_values];
            }
            char ps[256];
            tune_point_str(&sp, pt, ps, sizeof ps);
            kiln_status s = tune_features_point(g_ctx, k.f, &g_host, &sp, pt, v);
            CHECK_MSG(s == KILN_OK, "%s: %s", ps, kiln_errmsg(g_ctx));
            if (s) continue;
            bool finite = true;
            for (int i = 0; i < TUNE_N_FEATURES; i++) finite &= isfinite(v[i]) != 0;
            CHECK_MSG(finite, "%s", ps);
            CHECK_MSG(gf(v, TUNE_FG_FLOPS) > 0 && gf(v, TUNE_FG_MAIN_TRIPS) > 0 && gf(v, TUNE_FG_DEPTH) >= 1, "%s", ps);
            CHECK(tune_features_point(g_ctx, k.f, &g_host, &sp, pt, again) == KILN_OK && memcmp(v, again, sizeof v) == 0);
        }
        tk_free(&k);
    }
}

static void t_bad_knobs(void) {
    setup();
    tk_kernel k;
    if (!tk_make(g_ctx, &k, 13, k_matmul)) return;
    tune_space sp;
    CHECK(tune_space_for(g_ctx, k.f, &g_host, &sp) == KILN_OK);
    int64_t pt[TUNE_MAX_KNOBS];
    float v[TUNE_N_FEATURES];
    for (int i = 0; i < TUNE_N_FEATURES; i++) v[i] = 42;
    tune_space_default(&sp, pt);
    set_knob(&sp, pt, "rows", 1000);
    CHECK(tune_features_knobs(g_ctx, &sp, pt, v) == KILN_ERR_INVALID);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "rows") != NULL, "%s", kiln_errmsg(g_ctx));
    CHECK(tune_features_point(g_ctx, k.f, &g_host, &sp, pt, v) == KILN_ERR_INVALID);
    for (int i = 0; i < TUNE_N_FEATURES; i++) CHECK(v[i] == 42); /* untouched on failure */
    tk_free(&k);
}

static void t_names(void) {
    char buf[64];
    CHECK(strcmp(tune_feature_name(0, buf, sizeof buf), "l0.extent") == 0);
    CHECK(strcmp(tune_feature_name(TUNE_FEAT_PER_LEVEL + 4, buf, sizeof buf), "l1.bytes") == 0);
    CHECK(strcmp(tune_feature_name(TUNE_FEAT_GLOBAL + TUNE_FG_INTENSITY, buf, sizeof buf), "intensity") == 0);
    CHECK(strcmp(tune_feature_name(TUNE_FEAT_KNOBS + 3, buf, sizeof buf), "k1.size") == 0);
    CHECK(strcmp(tune_feature_name(TUNE_N_FEATURES, buf, sizeof buf), "?") == 0);
}

static void t_allocation_failures(void) {
    setup();
    tk_kernel k;
    if (!tk_make(g_ctx, &k, 13, k_matmul)) return;
    tune_space sp;
    CHECK(tune_space_for(g_ctx, k.f, &g_host, &sp) == KILN_OK);
    int64_t pt[TUNE_MAX_KNOBS];
    tune_space_default(&sp, pt);
    long live = kiln_mem_live();
    int ok_at = -1;
    for (int n = 0; n < 5000 && ok_at < 0; n++) {
        float v[TUNE_N_FEATURES];
        kiln_mem_fail_after(n);
        kiln_status s = tune_features_point(g_ctx, k.f, &g_host, &sp, pt, v);
        kiln_mem_fail_after(-1);
        CHECK_MSG(s == KILN_OK || s == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
        if (s == KILN_OK) ok_at = n;
        CHECK_MSG(kiln_mem_live() == live, "n=%d leaks", n);
    }
    CHECK(ok_at > 0);
    tk_free(&k);
    kiln_ctx_free(g_ctx);
    g_ctx = NULL;
}

TEST_MAIN(T(t_contiguous), T(t_strided_guarded), T(t_odd_nests), T(t_matmul_tiles), T(t_matmul_reuse), T(t_all_templates), T(t_bad_knobs), T(t_names),
          T(t_allocation_failures))
