/*
** test_lir.c — the loop IR: printing, verification, and the interpreter
** (dtype semantics, bounds checks, GPU blocks run phase by phase).
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/lir.h"
#include "ir/mem.h"

static kiln_ctx *g_ctx;

static ex_expr *I(lir_func *f, int64_t v) { return ex_int(&f->eb, v); }
static ex_expr *V(lir_func *f, const ex_var *v) { return ex_varref(&f->eb, v); }
static ex_var *var(lir_func *f, const char *n, int64_t ext) { return ex_var_new(&f->eb, n, ext, false); }
static lir_stmt *loop(lir_func *f, ex_var *v, lir_loop_kind k, lir_stmt *body) {
    return lir_for(f, v, I(f, 0), I(f, v->extent), k, body);
}

/* C[i, j] = sum_k A[i, k] * B[k, j] for 3x4x5, written by hand. */
static lir_func *matmul_nest(void) {
    lir_func *f = lir_func_new("mm");
    ex_builder *b = &f->eb;
    lir_buffer *A = lir_arg_new(f, "A", KILN_F32, 15, true);
    lir_buffer *B = lir_arg_new(f, "B", KILN_F32, 20, true);
    lir_buffer *C = lir_arg_new(f, "C", KILN_F32, 12, false);
    ex_var *i = var(f, "i", 3), *j = var(f, "j", 4), *k = var(f, "k", 5);
    ex_expr *ci = ex_add(b, ex_mul(b, V(f, i), I(f, 4)), V(f, j));
    ex_expr *a = ex_load_buffer(b, A, ex_add(b, ex_mul(b, V(f, i), I(f, 5)), V(f, k)));
    ex_expr *bb = ex_load_buffer(b, B, ex_add(b, ex_mul(b, V(f, k), I(f, 4)), V(f, j)));
    lir_stmt *upd = lir_store(f, C, ci, ex_add(b, ex_load_buffer(b, C, ci), ex_mul(b, a, bb)));
    lir_stmt *init = lir_store(f, C, ci, ex_const_float(b, KILN_F32, 0));
    lir_stmt *inner[2] = {init, loop(f, k, LIR_SERIAL, upd)};
    f->body = loop(f, i, LIR_PARALLEL, loop(f, j, LIR_SERIAL, lir_seq(f, inner, 2)));
    return f;
}

static void runs_a_hand_written_matmul(void) {
    lir_func *f = matmul_nest();
    CHECK(!f->eb.failed);
    CHECK(lir_verify(g_ctx, f) == KILN_OK);
    float A[15], B[20], C[12], R[12];
    for (int i = 0; i < 15; i++) A[i] = (float)(i % 7) - 3;
    for (int i = 0; i < 20; i++) B[i] = (float)(i % 5) * 0.5f;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) {
            float s = 0;
            for (int k = 0; k < 5; k++) s += A[i * 5 + k] * B[k * 4 + j];
            R[i * 4 + j] = s;
        }
    void *args[] = {A, B, C};
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_OK);
    CHECK(memcmp(C, R, sizeof R) == 0);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    lir_print(mem, f);
    fclose(mem);
    CHECK(strstr(text, "kernel mm(in A: f32[15], in B: f32[20], out C: f32[12])") != NULL);
    CHECK(strstr(text, "for i in [0, 3) parallel:") != NULL);
    CHECK(strstr(text, "for k in [0, 5):") != NULL);
    free(text);
    lir_func_free(f);
}

static void bounds_check_catches_an_off_by_one_guard(void) {
    lir_func *f = lir_func_new("copy");
    ex_builder *b = &f->eb;
    lir_buffer *A = lir_arg_new(f, "A", KILN_F32, 37, true);
    lir_buffer *C = lir_arg_new(f, "C", KILN_F32, 37, false);
    ex_var *o = var(f, "io", 5), *i = var(f, "ii", 8);
    ex_expr *idx = ex_add(b, ex_mul(b, V(f, o), I(f, 8)), V(f, i));
    /* the guard should be idx < 37 */
    lir_stmt *st = lir_if(f, ex_lt(b, idx, I(f, 38)), lir_store(f, C, idx, ex_load_buffer(b, A, idx)), NULL);
    f->body = loop(f, o, LIR_SERIAL, loop(f, i, LIR_VECTORIZED, st));
    CHECK(lir_verify(g_ctx, f) == KILN_OK);
    float a[37] = {0}, c[37];
    void *args[] = {a, c};
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "C[37]") && strstr(kiln_errmsg(g_ctx), "out of bounds"), "%s", kiln_errmsg(g_ctx));
    lir_func_free(f);
}

/* out[0] = e, run once, returns out[0] as raw bits through kiln_load_*. */
static kiln_status run_scalar(lir_func *f, ex_expr *e, void *out) {
    lir_buffer *O = lir_arg_new(f, "O", e->dtype, 1, false);
    f->body = lir_store(f, O, I(f, 0), e);
    void *args[] = {out};
    return lir_interp_run(g_ctx, f, args);
}

static void dtype_semantics(void) {
    lir_func *f = lir_func_new("t");
    ex_builder *b = &f->eb;
    int8_t r8;
    CHECK(run_scalar(f, ex_add(b, ex_const_int(b, KILN_I8, 100), ex_const_int(b, KILN_I8, 100)), &r8) == KILN_OK);
    CHECK(r8 == -56);
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    float x = 16777216.0f, r;
    ex_expr *e = ex_add(b, ex_add(b, ex_const_float(b, KILN_F32, x), ex_const_float(b, KILN_F32, 1)),
                        ex_const_float(b, KILN_F32, 1));
    CHECK(run_scalar(f, e, &r) == KILN_OK);
    CHECK(r == 16777216.0f); /* each f32 add rounds */
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    uint64_t u;
    e = ex_select(b, ex_lt(b, ex_const_int(b, KILN_U64, -1), ex_const_int(b, KILN_U64, 1)), ex_const_int(b, KILN_U64, 1),
                  ex_const_int(b, KILN_U64, 2));
    CHECK(run_scalar(f, e, &u) == KILN_OK);
    CHECK(u == 2); /* 2^64-1 is not below 1 */
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    int32_t i32;
    CHECK(run_scalar(f, ex_cast(b, KILN_I32, ex_const_float(b, KILN_F32, 3e10)), &i32) == KILN_OK);
    CHECK(i32 == INT32_MAX);
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    int64_t i64;
    CHECK(run_scalar(f, ex_floordiv(b, I(f, -7), I(f, 2)), &i64) == KILN_OK && i64 == -4);
    lir_func_free(f);
    f = lir_func_new("t");
    CHECK(run_scalar(f, ex_floormod(&f->eb, I(f, -7), I(f, 2)), &i64) == KILN_OK && i64 == 1);
    lir_func_free(f);
    f = lir_func_new("t");
    CHECK(run_scalar(f, ex_binary(&f->eb, EX_DIV, I(f, 5), I(f, 0)), &i64) == KILN_ERR_INVALID);
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    CHECK(run_scalar(f, ex_unary(b, EX_EXP, ex_const_float(b, KILN_F32, 1.5f)), &r) == KILN_OK);
    CHECK(r == expf(1.5f));
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    CHECK(run_scalar(f, ex_max(b, ex_const_float(b, KILN_F32, NAN), ex_const_float(b, KILN_F32, 1)), &r) == KILN_OK);
    CHECK(isnan(r));
    lir_func_free(f);

    f = lir_func_new("t");
    b = &f->eb;
    uint16_t h;
    e = ex_add(b, ex_const_float(b, KILN_F16, 2048), ex_const_float(b, KILN_F16, 1));
    CHECK(run_scalar(f, e, &h) == KILN_OK);
    CHECK(kiln_f16_to_f32(h) == 2048.0f); /* f16 rounds after the add */
    lir_func_free(f);
}

/* Reverses each block of 8 through a shared buffer: B[b*8+t] = A[b*8+7-t]. */
static lir_func *reverse_kernel(bool with_barrier) {
    lir_func *f = lir_func_new("rev");
    ex_builder *b = &f->eb;
    lir_buffer *A = lir_arg_new(f, "A", KILN_F32, 32, true);
    lir_buffer *B = lir_arg_new(f, "B", KILN_F32, 32, false);
    lir_buffer *S = lir_buffer_new(f, "S", KILN_F32, 8, LIR_SCOPE_SHARED);
    ex_var *bx = var(f, "bx", 4), *tx = var(f, "tx", 8);
    ex_expr *g = ex_add(b, ex_mul(b, V(f, bx), I(f, 8)), V(f, tx));
    lir_stmt *st[3] = {lir_store(f, S, V(f, tx), ex_load_buffer(b, A, g)), lir_barrier(f),
                       lir_store(f, B, g, ex_load_buffer(b, S, ex_sub(b, I(f, 7), V(f, tx))))};
    if (!with_barrier) st[1] = lir_seq(f, st, 0); /* empty */
    lir_stmt *body = loop(f, tx, LIR_GPU_THREAD_X, lir_seq(f, st, 3));
    f->body = loop(f, bx, LIR_GPU_BLOCK_X, lir_alloc(f, S, body));
    return f;
}

static void gpu_blocks_run_phase_by_phase(void) {
    float a[32], out[32];
    for (int i = 0; i < 32; i++) a[i] = (float)i;
    void *args[] = {a, out};
    lir_func *f = reverse_kernel(true);
    CHECK(lir_verify(g_ctx, f) == KILN_OK);
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_OK);
    for (int i = 0; i < 32; i++) CHECK(out[i] == (float)((i / 8) * 8 + 7 - i % 8));
    lir_func_free(f);
    /* without the barrier, thread 0 reads a slot no thread has written yet */
    f = reverse_kernel(false);
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_OK);
    CHECK(isnan(out[0]));
    lir_func_free(f);
}

static void barrier_in_divergent_code_is_an_error(void) {
    lir_func *f = lir_func_new("div");
    ex_builder *b = &f->eb;
    lir_buffer *B = lir_arg_new(f, "B", KILN_F32, 8, false);
    ex_var *tx = var(f, "tx", 8);
    lir_stmt *st[2] = {lir_if(f, ex_lt(b, V(f, tx), I(f, 4)), lir_barrier(f), NULL),
                       lir_store(f, B, V(f, tx), ex_const_float(b, KILN_F32, 1))};
    f->body = loop(f, tx, LIR_GPU_THREAD_X, lir_seq(f, st, 2));
    float out[8];
    void *args[] = {out};
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "barrier") != NULL, "%s", kiln_errmsg(g_ctx));
    lir_func_free(f);
}

static void local_buffers_are_per_thread(void) {
    lir_func *f = lir_func_new("loc");
    ex_builder *b = &f->eb;
    lir_buffer *B = lir_arg_new(f, "B", KILN_I32, 4, false);
    lir_buffer *L = lir_buffer_new(f, "L", KILN_I32, 1, LIR_SCOPE_LOCAL);
    ex_var *tx = var(f, "tx", 4);
    ex_expr *t32 = ex_cast(b, KILN_I32, V(f, tx));
    lir_stmt *st[3] = {lir_store(f, L, I(f, 0), t32), lir_barrier(f), lir_store(f, B, V(f, tx), ex_load_buffer(b, L, I(f, 0)))};
    f->body = loop(f, tx, LIR_GPU_THREAD_X, lir_alloc(f, L, lir_seq(f, st, 3)));
    CHECK(lir_verify(g_ctx, f) == KILN_OK);
    int32_t out[4];
    void *args[] = {out};
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_OK);
    for (int i = 0; i < 4; i++) CHECK(out[i] == i);
    lir_func_free(f);
}

static void verifier_names_the_problem(void) {
    lir_func *f = lir_func_new("bad");
    ex_builder *b = &f->eb;
    lir_buffer *C = lir_arg_new(f, "C", KILN_F32, 4, false);
    ex_var *i = var(f, "i", 4), *j = var(f, "j", 4);
    f->body = loop(f, i, LIR_SERIAL, lir_store(f, C, V(f, j), ex_const_float(b, KILN_F32, 0)));
    CHECK(lir_verify(g_ctx, f) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "variable j is not bound") != NULL, "%s", kiln_errmsg(g_ctx));
    f->body = loop(f, i, LIR_SERIAL, lir_store(f, C, V(f, i), I(f, 0)));
    CHECK(lir_verify(g_ctx, f) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "stores a i64 value into a f32 buffer") != NULL, "%s", kiln_errmsg(g_ctx));
    lir_stmt *st = lir_store(f, C, V(f, i), ex_const_float(b, KILN_F32, 0));
    f->body = lir_for(f, i, I(f, 0), ex_min(b, I(f, 4), I(f, 3)), LIR_VECTORIZED, st);
    CHECK(lir_verify(g_ctx, f) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "vectorized loop needs a constant extent") != NULL, "%s", kiln_errmsg(g_ctx));
    lir_buffer *S = lir_buffer_new(f, "S", KILN_F32, 4, LIR_SCOPE_SHARED);
    f->body = loop(f, i, LIR_GPU_THREAD_X, lir_alloc(f, S, st));
    CHECK(lir_verify(g_ctx, f) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "shared buffer S is allocated inside a thread loop") != NULL, "%s", kiln_errmsg(g_ctx));
    f->body = loop(f, i, LIR_SERIAL, lir_store(f, S, V(f, i), ex_const_float(b, KILN_F32, 0)));
    CHECK(lir_verify(g_ctx, f) == KILN_ERR_INTERNAL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "store to S outside its allocation") != NULL, "%s", kiln_errmsg(g_ctx));
    f->body = loop(f, i, LIR_SERIAL, loop(f, i, LIR_SERIAL, st));
    CHECK(lir_verify(g_ctx, f) == KILN_ERR_INTERNAL);
    lir_func_free(f);
}

static void missing_argument_data_is_an_error(void) {
    lir_func *f = matmul_nest();
    float A[15] = {0}, C[12];
    void *args[] = {A, NULL, C};
    CHECK(lir_interp_run(g_ctx, f, args) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(g_ctx), "B") != NULL);
    lir_func_free(f);
}

/* Allocation failures while running, simplifying or verifying are errors. */
static void allocation_failures_are_errors(void) {
    float a[32], out[32];
    for (int i = 0; i < 32; i++) a[i] = (float)i;
    void *args[] = {a, out};
    for (int which = 0; which < 3; which++) {
        lir_func *f = reverse_kernel(true);
        long live = kiln_mem_live();
        bool done = false;
        for (int n = 0; n < 300 && !done; n++) {
            kiln_mem_fail_after(n);
            kiln_status st = which == 0 ? lir_interp_run(g_ctx, f, args) : which == 1 ? lir_verify(g_ctx, f) : lir_simplify(g_ctx, f);
            kiln_mem_fail_after(-1);
            CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "%d/%d: %s", which, n, kiln_errmsg(g_ctx));
            done = st == KILN_OK;
            if (which != 2) CHECK(kiln_mem_live() == live);
        }
        CHECK(done);
        lir_func_free(f);
    }
}

static void setup(void) { kiln_ctx_new(&g_ctx); }
static void teardown(void) { kiln_ctx_free(g_ctx); }

TEST_MAIN(T(setup), T(runs_a_hand_written_matmul), T(bounds_check_catches_an_off_by_one_guard), T(dtype_semantics),
          T(gpu_blocks_run_phase_by_phase), T(barrier_in_divergent_code_is_an_error), T(local_buffers_are_per_thread),
          T(verifier_names_the_problem), T(missing_argument_data_is_an_error),
          T(allocation_failures_are_errors), T(teardown))
