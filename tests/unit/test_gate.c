/*
** test_gate.c — the correctness gate: the comparison rules (NaN, infinities,
** tolerances, integers), and broken schedules planted in the loop IR of a
** tiled matmul (a guard off by one, no guard, no reduction init, a part of
** the output never written, a racing parallel reduction, a write into an
** input), every one rejected while the intact schedule passes.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/measure.h"
#include "harness.h"
#include "tir_matmul.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"

static kiln_ctx *g_ctx;

static void compare_rules(void) {
    char msg[200];
    float want[4] = {1.0f, NAN, INFINITY, -2.0f};
    float got[4] = {1.0f, NAN, INFINITY, -2.0f};
    CHECK(tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    got[0] = 1.00001f; /* within tolerance */
    CHECK(tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    got[0] = 1.01f;
    CHECK(!tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    CHECK(strstr(msg, "element 0") != NULL);
    got[0] = NAN; /* an unwritten (poisoned) element */
    CHECK(!tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    CHECK(strstr(msg, "unwritten") != NULL);
    got[0] = 1.0f, got[1] = 0.0f; /* NaN expected, a number given */
    CHECK(!tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    got[1] = NAN, got[2] = -INFINITY;
    CHECK(!tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    got[2] = 1e30f;
    CHECK(!tune_gate_compare(KILN_F32, got, want, 4, msg, sizeof msg));
    int32_t wi[3] = {1, 2, 3}, gi[3] = {1, 2, 3};
    CHECK(tune_gate_compare(KILN_I32, gi, wi, 3, msg, sizeof msg));
    gi[2] = 4;
    CHECK(!tune_gate_compare(KILN_I32, gi, wi, 3, msg, sizeof msg));
    CHECK(strstr(msg, "element 2 is 4, expected 3") != NULL);
    double rtol, as;
    tune_gate_tolerance(KILN_I8, &rtol, &as);
    CHECK(rtol == 0 && as == 0);
    tune_gate_tolerance(KILN_F16, &rtol, &as);
    CHECK(rtol > 0);
}

/* ---- planted bugs ---- */

/* R[i] = sum(k) X[i, k] */
static tir_func *make_rowsum(int64_t M, int64_t K) {
    tir_func *f = tir_func_new("rowsum");
    ex_builder *b = &f->eb;
    tir_tensor *X = tir_placeholder(f, "X", KILN_F32, 2, (int64_t[]){M, K}, NULL);
    tir_stage *R = tir_stage_new(f, "R", KILN_F32, 1, (int64_t[]){M}, TIR_TAG_REDUCE);
    ex_var *k = tir_stage_add_raxis(f, R, "k", K);
    ex_expr *ix[2] = {ex_varref(b, R->axes[0]), ex_varref(b, k)};
    R->body = ex_reduce(b, EX_SUM, ex_load_tensor(b, X, ix), (const ex_var *const *)&k, 1,
                        ex_const_float(b, KILN_F32, 0));
    tir_mark_output(f, R->out);
    return f;
}

static lir_func *lower(const tir_func *f, const char *text) {
    sch_trace *t = NULL;
    lir_func *lf = NULL;
    kiln_status s = sch_trace_parse(g_ctx, text, &t);
    if (!s) s = sch_lower(g_ctx, f, t, &lf);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    sch_trace_free(t);
    return lf;
}

typedef enum mutation { M_GUARD_PLUS_ONE, M_NO_GUARD, M_NO_INIT, M_HALF_OUTER, M_PARALLEL_REDUCE } mutation;

/* Relaxes every `x < c` in a guard to `x < c + 1`. */
static int relax(ex_expr *e) {
    if (!e) return 0;
    if (e->kind == EX_BINARY && e->op == EX_LT && e->args[1]->kind == EX_INT) {
        e->args[1]->ival += 1;
        return 1;
    }
    int n = 0;
    for (int i = 0; i < e->n_args; i++) n += relax(e->args[i]);
    return n;
}

/* Applies the mutation everywhere it fits below s; returns how often. */
static int mutate(lir_stmt *s, mutation m, int depth) {
    if (!s) return 0;
    int n = 0;
    switch (s->kind) {
    case LIR_IF:
        if (m == M_GUARD_PLUS_ONE) n += relax(s->cond);
        if (m == M_NO_GUARD && !s->else_body) {
            lir_stmt *body = s->body;
            *s = *body; /* the guarded statement without its guard */
            return 1 + mutate(s, m, depth);
        }
        return n + mutate(s->body, m, depth + 1) + mutate(s->else_body, m, depth + 1);
    case LIR_STORE:
        if (m == M_NO_INIT && s->value->kind == EX_FLOAT) {
            s->kind = LIR_NOP;
            return 1;
        }
        return 0;
    case LIR_FOR:
        if (m == M_HALF_OUTER && depth == 0 && s->extent->kind == EX_INT && s->extent->ival > 1) {
            s->extent->ival /= 2;
            return 1;
        }
        if (m == M_PARALLEL_REDUCE && !strcmp(s->var->name, "k")) {
            s->loop = LIR_PARALLEL;
            n = 1;
        }
        return n + mutate(s->body, m, depth + 1);
    case LIR_ALLOC: return mutate(s->body, m, depth);
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++) n += mutate(s->stmts[i], m, depth);
        return n;
    default: return 0;
    }
}

static void expect_rejected(const tir_func *f, const tune_reference *ref, const char *trace, mutation m,
                            const tune_measure_opts *o, const char *what) {
    lir_func *lf = lower(f, trace);
    if (!lf) return;
    int n = mutate(lf->body, m, 0);
    CHECK_MSG(n > 0, "%s: nothing to mutate", what);
    if (getenv("KILN_TEST_VERBOSE")) lir_print(stderr, lf);
    tune_result r;
    CHECK(tune_measure_lir(g_ctx, lf, ref, o, &r) == KILN_OK);
    CHECK_MSG(r.status == TUNE_STATUS_WRONG || r.status == TUNE_STATUS_CRASH, "%s: status %d (%s)", what, r.status,
              r.msg);
    CHECK_MSG(r.median_ns == 0 && !r.checked, "%s: a rejected candidate has a time", what);
    if (getenv("KILN_TEST_VERBOSE")) fprintf(stderr, "%s: %d %s\n", what, r.status, r.msg);
    lir_func_free(lf);
}

#define TILED "split C i [8] -> io ii\nsplit C j [8] -> jo ji\nreorder C io jo k ii ji\n"

static void opts(tune_measure_opts *o) {
    tune_measure_opts_default(o);
    o->budget_ms = 5;
    o->min_samples = 1;
    o->min_sample_ms = 0.1;
    o->timeout_s = 5;
}

static void planted_bugs(void) {
    tir_func *f = test_tir_matmul(30, 20, 17, NULL);
    tune_measure_opts o;
    opts(&o);
    tune_reference *ref = NULL;
    CHECK(tune_reference_new(g_ctx, f, &o, TUNE_REF_INTERP, &ref) == KILN_OK);
    if (!ref) return;
    /* the intact schedules pass */
    static const char *const good[] = {TILED, TILED "vectorize C ji\n", ""};
    for (int i = 0; i < 3; i++) {
        lir_func *lf = lower(f, good[i]);
        tune_result r;
        CHECK(lf && tune_measure_lir(g_ctx, lf, ref, &o, &r) == KILN_OK);
        CHECK_MSG(r.status == TUNE_STATUS_OK && r.checked, "intact %d: %d %s", i, r.status, r.msg);
        lir_func_free(lf);
    }
    expect_rejected(f, ref, TILED, M_GUARD_PLUS_ONE, &o, "guard off by one");
    expect_rejected(f, ref, TILED, M_NO_GUARD, &o, "guard dropped");
    expect_rejected(f, ref, TILED "vectorize C ji\n", M_NO_GUARD, &o, "vector guard dropped");
    expect_rejected(f, ref, TILED, M_NO_INIT, &o, "no reduction init");
    expect_rejected(f, ref, "", M_NO_INIT, &o, "no reduction init, default nest");
    expect_rejected(f, ref, TILED, M_HALF_OUTER, &o, "half of the output");
    tune_reference_free(ref);
    tir_func_free(f);
}

/* A reduction axis run in parallel without rfactor: threads race on the
** accumulator. A run shows it only when threads happen to overlap, so the
** gate finds it in the nest itself; an rfactor'ed parallel reduction is
** race-free and passes. */
static void racing_reduction(void) {
    tir_func *f = make_rowsum(8, 4096);
    tune_measure_opts o;
    opts(&o);
    o.threads = 2;
    tune_reference *ref = NULL;
    CHECK(tune_reference_new(g_ctx, f, &o, TUNE_REF_COMPILED, &ref) == KILN_OK);
    if (!ref) return;
    lir_func *lf = lower(f, "");
    tune_result r;
    CHECK(lf && tune_measure_lir(g_ctx, lf, ref, &o, &r) == KILN_OK);
    CHECK_MSG(r.status == TUNE_STATUS_OK, "serial: %d %s", r.status, r.msg);
    lir_func_free(lf);
    expect_rejected(f, ref, "", M_PARALLEL_REDUCE, &o, "parallel reduction");
    lir_func *rf = lower(f, "split R k [64] -> ko ki\nrfactor R ko -> R_rf\nparallel R_rf ko\n");
    char msg[200];
    CHECK(rf && tune_gate_race_free(rf, msg, sizeof msg));
    CHECK(rf && tune_measure_lir(g_ctx, rf, ref, &o, &r) == KILN_OK);
    CHECK_MSG(r.status == TUNE_STATUS_OK && r.checked, "rfactor: %d %s", r.status, r.msg);
    lir_func_free(rf);
    lf = lower(f, "");
    mutate(lf->body, M_PARALLEL_REDUCE, 0);
    CHECK(!tune_gate_race_free(lf, msg, sizeof msg));
    CHECK(strstr(msg, "race") != NULL);
    lir_func_free(lf);
    tune_reference_free(ref);
    tir_func_free(f);
}

/* A kernel that writes into its input faults (inputs are read-only). */
static void writes_input(void) {
    tir_func *f = make_rowsum(4, 8);
    tune_measure_opts o;
    opts(&o);
    tune_reference *ref = NULL;
    CHECK(tune_reference_new(g_ctx, f, &o, TUNE_REF_AUTO, &ref) == KILN_OK);
    lir_func *lf = lower(f, "");
    if (!ref || !lf) return;
    ex_builder *b = &lf->eb;
    lir_stmt *clobber = lir_store(lf, lf->args[0], ex_int(b, 3), ex_const_float(b, KILN_F32, 0));
    lf->body = lir_seq(lf, (lir_stmt *[]){lf->body, clobber}, 2);
    tune_result r;
    CHECK(tune_measure_lir(g_ctx, lf, ref, &o, &r) == KILN_OK);
    CHECK_MSG(r.status == TUNE_STATUS_CRASH, "writes its input: %d %s", r.status, r.msg);
    /* a kernel with other arguments than the reference's is refused */
    lir_func *other = lower(f, "");
    other->args[0]->size -= 1;
    CHECK(tune_measure_lir(g_ctx, other, ref, &o, &r) == KILN_OK);
    CHECK(r.status == TUNE_STATUS_COMPILE_ERROR);
    lir_func_free(other);
    lir_func_free(lf);
    tune_reference_free(ref);
    tir_func_free(f);
}

/* for i in [0, n): y[i] = x[i] * 2, integers: an element left unwritten
** fails the gate whatever value the reference has there (two poisons). */
static lir_func *twice(kiln_dtype dt, int64_t size, int64_t n) {
    lir_func *lf = lir_func_new("twice");
    lir_buffer *x = lir_arg_new(lf, "x", dt, size, true), *y = lir_arg_new(lf, "y", dt, size, false);
    ex_builder *b = &lf->eb;
    ex_var *i = ex_var_new(b, "i", n, false);
    ex_expr *v = ex_binary(b, EX_MUL, ex_load_buffer(b, x, ex_varref(b, i)), ex_const_int(b, dt, 2));
    lf->body = lir_for(lf, i, ex_int(b, 0), ex_int(b, n), LIR_SERIAL, lir_store(lf, y, ex_varref(b, i), v));
    return lf;
}

static void integer_outputs(void) {
    static const kiln_dtype dts[] = {KILN_I32, KILN_U8, KILN_I64};
    for (int d = 0; d < 3; d++) {
        tune_measure_opts o;
        opts(&o);
        lir_func *ref_nest = twice(dts[d], 64, 64), *good = twice(dts[d], 64, 64), *partial = twice(dts[d], 64, 63);
        tune_reference *ref = NULL;
        CHECK(tune_reference_from_lir(g_ctx, ref_nest, &o, TUNE_REF_INTERP, &ref) == KILN_OK);
        tune_result r;
        CHECK(ref && tune_measure_lir(g_ctx, good, ref, &o, &r) == KILN_OK);
        CHECK_MSG(r.status == TUNE_STATUS_OK && r.checked, "%s: %d %s", kiln_dtype_name(dts[d]), r.status, r.msg);
        CHECK(ref && tune_measure_lir(g_ctx, partial, ref, &o, &r) == KILN_OK);
        CHECK_MSG(r.status == TUNE_STATUS_WRONG && strstr(r.msg, "element 63"), "%s: %d %s", kiln_dtype_name(dts[d]),
                  r.status, r.msg);
        tune_reference_free(ref);
        lir_func_free(ref_nest);
        lir_func_free(good);
        lir_func_free(partial);
    }
}

int main(void) {
    kiln_ctx_new(&g_ctx);
    kt_case cases[] = {
        {"compare_rules", compare_rules},
        {"planted_bugs", planted_bugs},
        {"racing_reduction", racing_reduction},
        {"writes_input", writes_input},
        {"integer_outputs", integer_outputs},
    };
    int r = kt_run(cases, (int)(sizeof cases / sizeof cases[0]));
    kiln_ctx_free(g_ctx);
    return r;
}
