/*
** test_measure.c — measuring candidates in a child process: a good schedule
** is checked and timed; an invalid trace, a crash, a hang and kernels that
** do not fit in memory get their status while the caller goes on; batches
** recover from a candidate that kills its child. Times are not asserted
** (the machine is shared), only statuses and that timing happened.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/measure.h"
#include "autotune/templates.h"
#include "harness.h"
#include "tir_matmul.h"
#include "ir/ctx.h"
#include "ir/mem.h"
#include "runtime/krt_pool.h"

static kiln_ctx *g_ctx;

static sch_trace *trace_of(const char *text) {
    sch_trace *t = NULL;
    kiln_status s = sch_trace_parse(g_ctx, text, &t);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return t;
}

static void opts(tune_measure_opts *o) {
    tune_measure_opts_default(o);
    o->budget_ms = 20;
    o->min_samples = 3;
    o->min_sample_ms = 0.2;
    o->timeout_s = 5;
}

#define TILED "split C i [8] -> io ii\nsplit C j [16] -> jo ji\nreorder C io jo k ii ji\nvectorize C ji\n"

static void good_candidate(void) {
    tir_func *f = test_tir_matmul(40, 48, 24, NULL);
    tune_measure_opts o;
    opts(&o);
    o.threads = 2;
    tune_reference *ref = NULL;
    CHECK(tune_reference_new(g_ctx, f, &o, TUNE_REF_INTERP, &ref) == KILN_OK);
    sch_trace *t = trace_of(TILED "parallel C io\n");
    tune_result r;
    kiln_status s = tune_measure(g_ctx, f, t, ref, &o, &r);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK_MSG(r.status == TUNE_STATUS_OK, "status %d: %s", r.status, r.msg);
    CHECK(r.checked);
    CHECK(r.median_ns > 0 && r.min_ns <= r.median_ns && r.median_ns <= r.max_ns);
    CHECK(r.samples >= 3 && r.iters >= 1);
    CHECK(r.spread >= 0);
    /* the compiled reference gives the same verdict */
    tune_reference *cref = NULL;
    s = tune_reference_new(g_ctx, f, &o, TUNE_REF_COMPILED, &cref);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!s) {
        CHECK(tune_measure(g_ctx, f, t, cref, &o, &r) == KILN_OK);
        CHECK_MSG(r.status == TUNE_STATUS_OK && r.checked, "status %d: %s", r.status, r.msg);
    }
    /* without a reference: timed, not checked */
    CHECK(tune_measure(g_ctx, f, t, NULL, &o, &r) == KILN_OK);
    CHECK(r.status == TUNE_STATUS_OK && !r.checked && r.median_ns > 0);
    tune_reference_free(cref);
    tune_reference_free(ref);
    sch_trace_free(t);
    tir_func_free(f);
}

/* B bound to constant data, packed by one candidate: the packed copy and
** the plain constant give the same result. */
static void constants_and_packing(void) {
    static float bd[24 * 32];
    for (int i = 0; i < 24 * 32; i++) bd[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    kiln_tensor B = {KILN_F32, 2, {24, 32}, bd, NULL};
    tir_func *f = test_tir_matmul(16, 32, 24, &B);
    tune_measure_opts o;
    opts(&o);
    tune_ref_cache *cache = tune_ref_cache_new();
    const tune_reference *ref = NULL, *again = NULL;
    CHECK(tune_ref_cache_get(g_ctx, cache, f, &o, &ref) == KILN_OK);
    CHECK(tune_ref_cache_get(g_ctx, cache, f, &o, &again) == KILN_OK);
    CHECK(ref && ref == again);
    sch_trace *t = trace_of("pack B [1 16] -> Bp\nsplit C j [16] -> jo ji\nreorder C jo i k ji\nvectorize C ji\n");
    sch_trace *plain = trace_of(TILED);
    const sch_trace *ts[2] = {t, plain};
    tune_result r[2];
    CHECK(tune_measure_batch(g_ctx, f, ts, 2, ref, &o, r) == KILN_OK);
    for (int i = 0; i < 2; i++) CHECK_MSG(r[i].status == TUNE_STATUS_OK && r[i].checked, "%d: %d %s", i, r[i].status, r[i].msg);
    sch_trace_free(t);
    sch_trace_free(plain);
    tune_ref_cache_free(cache);
    tir_func_free(f);
}

/* ---- planted kernels ---- */

/* out[0..n) of f32, with a body built by the caller. */
static lir_func *kernel(const char *name, int64_t n, lir_buffer **out) {
    lir_func *lf = lir_func_new(name);
    lir_arg_new(lf, "x", KILN_F32, 16, true);
    *out = lir_arg_new(lf, "y", KILN_F32, n, false);
    return lf;
}

/* for i in [0, n): y[i * stride + off] = x[0] + 1 */
static lir_func *store_at(int64_t n, int64_t stride, int64_t off, int64_t size) {
    lir_buffer *y;
    lir_func *lf = kernel("store_at", size, &y);
    ex_builder *b = &lf->eb;
    ex_var *i = ex_var_new(b, "i", n, false);
    ex_expr *v = ex_add(b, ex_load_buffer(b, lf->args[0], ex_int(b, 0)), ex_const_float(b, KILN_F32, 1));
    lf->body = lir_for(lf, i, ex_int(b, 0), ex_int(b, n), LIR_SERIAL, lir_store(lf, y, ex_add(b, ex_mul(b, ex_varref(b, i), ex_int(b, stride)), ex_int(b, off)), v));
    return lf;
}

/* for i in [0, 2^62): y[0] = y[0] + x[i % 16] */
static lir_func *endless(void) {
    lir_buffer *y;
    lir_func *lf = kernel("endless", 1, &y);
    ex_builder *b = &lf->eb;
    int64_t n = (int64_t)1 << 62;
    ex_var *i = ex_var_new(b, "i", n, false);
    ex_expr *x = ex_load_buffer(b, lf->args[0], ex_floormod(b, ex_varref(b, i), ex_int(b, 16)));
    ex_expr *v = ex_add(b, ex_load_buffer(b, y, ex_int(b, 0)), x);
    lir_stmt *init = lir_store(lf, y, ex_int(b, 0), ex_const_float(b, KILN_F32, 0));
    lir_stmt *loop = lir_for(lf, i, ex_int(b, 0), ex_int(b, n), LIR_SERIAL, lir_store(lf, y, ex_int(b, 0), v));
    lf->body = lir_seq(lf, (lir_stmt *[]){init, loop}, 2);
    return lf;
}

/* Three nested local buffers of 3.5 MiB each: more than a stack holds. */
static lir_func *big_locals(void) {
    lir_buffer *y;
    lir_func *lf = kernel("big_locals", 1, &y);
    ex_builder *b = &lf->eb;
    int64_t n = (int64_t)7 << 17;
    lir_buffer *t[3];
    for (int k = 0; k < 3; k++) t[k] = lir_buffer_new(lf, k == 0 ? "t0" : k == 1 ? "t1" : "t2", KILN_F32, n, LIR_SCOPE_LOCAL);
    lir_stmt *s = lir_store(lf, y, ex_int(b, 0), ex_const_float(b, KILN_F32, 1));
    for (int k = 2; k >= 0; k--) s = lir_alloc(lf, t[k], s);
    lf->body = s;
    return lf;
}

static void check_status(const tune_result *r, tune_status want, const char *what) {
    CHECK_MSG(r->status == want, "%s: status %d, expected %d (%s)", what, r->status, want, r->msg);
    CHECK_MSG(r->median_ns == 0 && !r->checked, "%s: a failed candidate has no time", what);
    CHECK_MSG(r->msg[0], "%s: no message", what);
}

static void crash_hang_oom(void) {
    tune_measure_opts o;
    opts(&o);
    o.timeout_s = 2; /* the endless loop costs this, twice; a loaded machine still finishes the rest */
    o.mem_limit = (uint64_t)1 << 30;
    tune_result r;

    lir_func *crash = store_at(1, 1, (int64_t)1 << 40, 16);
    CHECK(tune_measure_lir(g_ctx, crash, NULL, &o, &r) == KILN_OK);
    CHECK_MSG(r.status == TUNE_STATUS_CRASH, "crash: %d %s", r.status, r.msg);
    CHECK_MSG(r.signal == SIGSEGV || r.signal == 0 /* a sanitizer's exit */, "signal %d", r.signal);
    CHECK_MSG(r.signal == 0 || strstr(r.msg, " at "), "no address: %s", r.msg);
    if (getenv("KILN_TEST_VERBOSE")) fprintf(stderr, "crash: %s\n", r.msg);

    lir_func *hang = endless();
    CHECK(tune_measure_lir(g_ctx, hang, NULL, &o, &r) == KILN_OK);
    check_status(&r, TUNE_STATUS_TIMEOUT, "endless loop");

    lir_func *locals = big_locals();
    CHECK(tune_measure_lir(g_ctx, locals, NULL, &o, &r) == KILN_OK);
    check_status(&r, TUNE_STATUS_OOM, "huge local buffers");

    lir_func *huge = store_at(1, 1, 0, (int64_t)1 << 34); /* a 64 GiB output */
    CHECK(tune_measure_lir(g_ctx, huge, NULL, &o, &r) == KILN_OK);
    check_status(&r, TUNE_STATUS_OOM, "huge output");

    /* the caller goes on: a good kernel still measures */
    lir_func *good = store_at(16, 1, 0, 16);
    CHECK(tune_measure_lir(g_ctx, good, NULL, &o, &r) == KILN_OK);
    CHECK_MSG(r.status == TUNE_STATUS_OK && r.median_ns > 0, "good: %d %s", r.status, r.msg);

    /* one batch: the crash and the hang cost only themselves */
    const lir_func *batch[5] = {good, crash, good, hang, good};
    tune_result rs[5];
    CHECK(tune_measure_lir_batch(g_ctx, batch, 5, NULL, &o, rs) == KILN_OK);
    CHECK_MSG(rs[1].status == TUNE_STATUS_CRASH, "batch crash: %d %s", rs[1].status, rs[1].msg);
    check_status(&rs[3], TUNE_STATUS_TIMEOUT, "batch hang");
    for (int i = 0; i < 5; i += 2) CHECK_MSG(rs[i].status == TUNE_STATUS_OK, "batch %d: %d %s", i, rs[i].status, rs[i].msg);
    for (lir_func **p = (lir_func *[]){crash, hang, locals, huge, good}, **e = p + 5; p < e; p++) lir_func_free(*p);
}

static void compile_errors(void) {
    tir_func *f = test_tir_matmul(8, 16, 8, NULL);
    tune_measure_opts o;
    opts(&o);
    sch_trace *bad = trace_of("split C q [4] -> qo qi\n");
    sch_trace *good = trace_of("vectorize C j\n");
    const sch_trace *ts[3] = {good, bad, good};
    tune_result r[3];
    CHECK(tune_measure_batch(g_ctx, f, ts, 3, NULL, &o, r) == KILN_OK);
    check_status(&r[1], TUNE_STATUS_COMPILE_ERROR, "unknown axis");
    CHECK(strstr(r[1].msg, "q") != NULL);
    CHECK(r[0].status == TUNE_STATUS_OK && r[2].status == TUNE_STATUS_OK);
    /* bad options are the caller's error */
    o.timeout_s = 0;
    CHECK(tune_measure(g_ctx, f, good, NULL, &o, r) == KILN_ERR_INVALID);
    sch_trace_free(bad);
    sch_trace_free(good);
    tir_func_free(f);
}

/* Points of the matmul template's space, in one batch: every one passes
** the gate (the templates promise the same function at every point). */
static void template_points(void) {
    tir_func *f = test_tir_matmul(48, 64, 40, NULL);
    tune_measure_opts o;
    opts(&o);
    o.threads = 2;
    tune_space sp;
    CHECK(tune_space_for(g_ctx, f, &o.cg.target, &sp) == KILN_OK);
    tune_reference *ref = NULL;
    CHECK(tune_reference_new(g_ctx, f, &o, TUNE_REF_AUTO, &ref) == KILN_OK);
    enum { N = 6 };
    sch_trace *ts[N] = {0};
    int64_t knobs[TUNE_MAX_KNOBS];
    unsigned seed = 7;
    for (int p = 0; p < N; p++) {
        tune_space_default(&sp, knobs);
        for (int k = 0; p > 0 && k < sp.n_knobs; k++) {
            seed = seed * 1103515245u + 12345u;
            knobs[k] = sp.knobs[k].values[(seed >> 16) % (unsigned)sp.knobs[k].n_values];
        }
        CHECK(tune_trace_from_knobs(g_ctx, f, &o.cg.target, &sp, knobs, &ts[p]) == KILN_OK);
    }
    tune_result r[N];
    CHECK(tune_measure_batch(g_ctx, f, (const sch_trace *const *)ts, N, ref, &o, r) == KILN_OK);
    for (int p = 0; p < N; p++) {
        CHECK_MSG(r[p].status == TUNE_STATUS_OK && r[p].checked, "point %d: %d %s", p, r[p].status, r[p].msg);
        sch_trace_free(ts[p]);
    }
    tune_reference_free(ref);
    tir_func_free(f);
}

/* The caller may hold LLVM state (a JIT module of its own) and a thread
** pool whose workers have run: the child still compiles and runs. */
static void parent_holds_jit_and_pool(void) {
    tir_func *f = test_tir_matmul(32, 32, 32, NULL);
    sch_trace *t = trace_of(TILED "parallel C io\n");
    lir_func *lf = NULL;
    CHECK(sch_lower(g_ctx, f, t, &lf) == KILN_OK);
    cg_options co;
    cg_options_default(&co);
    cg_module *m = NULL;
    CHECK(lf && cg_llvm_jit(g_ctx, &lf, 1, &co, &m) == KILN_OK);
    krt_pool *pool = krt_pool_new(2);
    krt_pool_set_current(pool);
    static float a[32 * 32], b[32 * 32], c[32 * 32];
    void *args[3] = {a, b, c};
    cg_kernel_fn fn = m ? cg_module_lookup(m, lf->name) : NULL;
    if (fn) fn(args); /* the pool's workers have run */
    tune_measure_opts o;
    opts(&o);
    o.threads = 2;
    tune_reference *ref = NULL;
    CHECK(tune_reference_new(g_ctx, f, &o, TUNE_REF_COMPILED, &ref) == KILN_OK);
    const sch_trace *ts[3] = {t, t, t};
    tune_result r[3];
    CHECK(tune_measure_batch(g_ctx, f, ts, 3, ref, &o, r) == KILN_OK);
    for (int i = 0; i < 3; i++) CHECK_MSG(r[i].status == TUNE_STATUS_OK && r[i].checked, "%d: %d %s", i, r[i].status, r[i].msg);
    if (fn) fn(args); /* and the caller's JIT and pool still work */
    krt_pool_set_current(NULL);
    krt_pool_free(pool);
    tune_reference_free(ref);
    cg_module_free(m);
    lir_func_free(lf);
    sch_trace_free(t);
    tir_func_free(f);
}

static void setup(void) { kiln_ctx_new(&g_ctx); }

int main(void) {
    setup();
    kt_case cases[] = {
        {"good_candidate", good_candidate},
        {"constants_and_packing", constants_and_packing},
        {"crash_hang_oom", crash_hang_oom},
        {"compile_errors", compile_errors},
        {"template_points", template_points},
        {"parent_holds_jit_and_pool", parent_holds_jit_and_pool},
    };
    int r = kt_run(cases, (int)(sizeof cases / sizeof cases[0]));
    kiln_ctx_free(g_ctx);
    return r;
}
