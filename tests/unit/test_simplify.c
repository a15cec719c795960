/*
** test_simplify.c — the loop-IR arithmetic simplifier: the rules it must
** apply, and a fuzz test that random index expressions and guards over
** bounded loops compute the same values before and after simplification.
*/
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/ctx.h"
#include "ir/lir.h"

static kiln_ctx *g_ctx;

static char *print_expr(const ex_expr *e) {
    static char buf[4096];
    FILE *m = fmemopen(buf, sizeof buf, "w");
    ex_print(m, e);
    fclose(m);
    return buf;
}

static void floordiv_of_a_split_index_folds(void) {
    lir_func *f = lir_func_new("t");
    ex_builder *b = &f->eb;
    ex_var *io = ex_var_new(b, "io", 4, false), *ii = ex_var_new(b, "ii", 32, false);
    lir_var_range r[2] = {{io, 0, 4}, {ii, 0, 32}};
    ex_expr *x = ex_add(b, ex_mul(b, ex_varref(b, io), ex_int(b, 32)), ex_varref(b, ii));
    ex_expr *d = lir_simplify_expr(b, ex_floordiv(b, x, ex_int(b, 32)), r, 2);
    CHECK(d && d->kind == EX_VAR && d->var == io);
    ex_expr *m = lir_simplify_expr(b, ex_floormod(b, x, ex_int(b, 32)), r, 2);
    CHECK(m && m->kind == EX_VAR && m->var == ii);
    /* (io*32 + ii + 64) floordiv 16 -> io*2 + ii floordiv 16 + 4 */
    ex_expr *y = lir_simplify_expr(b, ex_floordiv(b, ex_add(b, x, ex_int(b, 64)), ex_int(b, 16)), r, 2);
    CHECK_MSG(strcmp(print_expr(y), "(((io * 2) + floordiv(ii, 16)) + 4)") == 0, "%s", print_expr(y));
    /* affine canonical form: terms collect and cancel */
    ex_expr *z = ex_sub(b, ex_add(b, ex_mul(b, ex_int(b, 3), ex_varref(b, ii)), x), ex_mul(b, ex_varref(b, ii), ex_int(b, 4)));
    z = lir_simplify_expr(b, z, r, 2);
    CHECK_MSG(strcmp(print_expr(z), "(io * 32)") == 0, "%s", print_expr(z));
    ex_expr *lo;
    int64_t ext;
    ex_var *relax[1] = {ii};
    ex_expr *w = ex_add(b, ex_mul(b, ex_varref(b, ii), ex_int(b, 2)), ex_add(b, x, ex_int(b, 5)));
    CHECK(lir_relaxed_bounds(b, w, r, 2, (const ex_var *const *)relax, 1, &lo, &ext));
    CHECK_MSG(strcmp(print_expr(lo), "((io * 32) + 5)") == 0 && ext == 94, "%s %lld", print_expr(lo), (long long)ext);
    int64_t l, h;
    CHECK(lir_expr_bounds(ex_floormod(b, ex_varref(b, io), ex_int(b, 3)), r, 2, &l, &h) && l == 0 && h == 2);
    lir_func_free(f);
}

static int count_ifs(const lir_stmt *s) {
    if (!s) return 0;
    switch (s->kind) {
    case LIR_IF: return 1 + count_ifs(s->body) + count_ifs(s->else_body);
    case LIR_FOR:
    case LIR_ALLOC: return count_ifs(s->body);
    case LIR_SEQ: {
        int n = 0;
        for (int i = 0; i < s->n_stmts; i++) n += count_ifs(s->stmts[i]);
        return n;
    }
    default: return 0;
    }
}

/* for io in [0, 4): for ii in [0, 32): if io*32 + ii < limit: C[io*32+ii] = 1 */
static lir_func *guarded(int64_t limit) {
    lir_func *f = lir_func_new("g");
    ex_builder *b = &f->eb;
    lir_buffer *C = lir_arg_new(f, "C", KILN_F32, 128, false);
    ex_var *io = ex_var_new(b, "io", 4, false), *ii = ex_var_new(b, "ii", 32, false);
    ex_expr *x = ex_add(b, ex_mul(b, ex_varref(b, io), ex_int(b, 32)), ex_varref(b, ii));
    lir_stmt *st = lir_if(f, ex_lt(b, x, ex_int(b, limit)), lir_store(f, C, x, ex_const_float(b, KILN_F32, 1)), NULL);
    f->body = lir_for(f, io, ex_int(b, 0), ex_int(b, 4), LIR_SERIAL, lir_for(f, ii, ex_int(b, 0), ex_int(b, 32), LIR_SERIAL, st));
    return f;
}

static void provable_guards_disappear(void) {
    lir_func *f = guarded(128);
    CHECK(lir_simplify(g_ctx, f) == KILN_OK);
    CHECK(count_ifs(f->body) == 0);
    lir_func_free(f);
    f = guarded(100);
    CHECK(lir_simplify(g_ctx, f) == KILN_OK);
    CHECK(count_ifs(f->body) == 1);
    lir_func_free(f);
    f = guarded(0); /* never true: the whole nest goes */
    CHECK(lir_simplify(g_ctx, f) == KILN_OK);
    CHECK(f->body->kind == LIR_NOP);
    lir_func_free(f);
}

static void unit_and_empty_loops_go_away(void) {
    lir_func *f = lir_func_new("u");
    ex_builder *b = &f->eb;
    lir_buffer *C = lir_arg_new(f, "C", KILN_F32, 8, false);
    ex_var *o = ex_var_new(b, "o", 1, false), *i = ex_var_new(b, "i", 8, false), *z = ex_var_new(b, "z", 0, false);
    ex_expr *x = ex_add(b, ex_mul(b, ex_varref(b, o), ex_int(b, 8)), ex_varref(b, i));
    lir_stmt *s1 = lir_store(f, C, x, ex_const_float(b, KILN_F32, 1));
    lir_stmt *s2 = lir_for(f, z, ex_int(b, 0), ex_int(b, 0), LIR_SERIAL, lir_store(f, C, ex_varref(b, z), ex_const_float(b, KILN_F32, 2)));
    lir_stmt *seq[2] = {s1, s2};
    f->body = lir_for(f, o, ex_int(b, 0), ex_int(b, 1), LIR_SERIAL,
                      lir_for(f, i, ex_int(b, 0), ex_int(b, 8), LIR_VECTORIZED, lir_seq(f, seq, 2)));
    CHECK(lir_simplify(g_ctx, f) == KILN_OK);
    CHECK(lir_verify(g_ctx, f) == KILN_OK);
    const lir_stmt *s = f->body;
    CHECK(s->kind == LIR_FOR && s->var == i && s->loop == LIR_VECTORIZED);
    CHECK(s->body->kind == LIR_STORE && s->body->index->kind == EX_VAR && s->body->index->var == i);
    lir_func_free(f);
}

/* ---- fuzz ---- */

static unsigned g_seed = 12345;
static int rnd(int n) {
    g_seed = g_seed * 1103515245u + 12345u;
    return (int)((g_seed >> 8) % (unsigned)n);
}

static ex_expr *rand_expr(ex_builder *b, ex_var **v, int nv, int depth) {
    if (depth == 0 || rnd(5) == 0) return rnd(3) ? ex_varref(b, v[rnd(nv)]) : ex_int(b, rnd(41) - 20);
    ex_expr *x = rand_expr(b, v, nv, depth - 1);
    switch (rnd(12)) {
    case 0: return ex_add(b, x, rand_expr(b, v, nv, depth - 1));
    case 1: return ex_sub(b, x, rand_expr(b, v, nv, depth - 1));
    case 2: return ex_mul(b, x, ex_int(b, rnd(9) - 4));
    case 3: return ex_mul(b, x, rand_expr(b, v, nv, depth - 2 < 0 ? 0 : depth - 2));
    case 4: return ex_floordiv(b, x, ex_int(b, 1 + rnd(40)));
    case 5: return ex_floormod(b, x, ex_int(b, 1 + rnd(40)));
    case 6: return ex_min(b, x, rand_expr(b, v, nv, depth - 1));
    case 7: return ex_max(b, x, rand_expr(b, v, nv, depth - 1));
    case 8: {
        ex_expr *c = ex_binary(b, (ex_binop)(EX_EQ + rnd(6)), x, rand_expr(b, v, nv, depth - 1));
        return ex_select(b, c, rand_expr(b, v, nv, depth - 1), rand_expr(b, v, nv, depth - 1));
    }
    case 9: return ex_binary(b, EX_DIV, x, ex_int(b, 1 + rnd(12)));
    case 10: return ex_binary(b, EX_MOD, x, ex_int(b, 1 + rnd(12)));
    default: return ex_add(b, ex_mul(b, x, ex_int(b, 1 + rnd(64))), rand_expr(b, v, nv, depth - 1));
    }
}

/* Three nested loops with random starts and extents; each point stores a
** random expression and the outcome of a random guard. */
static lir_func *rand_kernel(int64_t *npoints) {
    lir_func *f = lir_func_new("fz");
    ex_builder *b = &f->eb;
    ex_var *v[3];
    int64_t lo[3], ext[3];
    for (int k = 0; k < 3; k++) {
        lo[k] = rnd(3) ? 0 : rnd(11) - 5;
        ext[k] = 1 + rnd(7);
        char n[4] = {(char)('a' + k), 0};
        v[k] = ex_var_new(b, n, ext[k], false);
    }
    int64_t n = ext[0] * ext[1] * ext[2];
    lir_buffer *O = lir_arg_new(f, "O", KILN_I64, 2 * n, false);
    ex_expr *flat = ex_int(b, 0);
    for (int k = 0; k < 3; k++) flat = ex_add(b, ex_mul(b, flat, ex_int(b, ext[k])), ex_sub(b, ex_varref(b, v[k]), ex_int(b, lo[k])));
    lir_stmt *st[2];
    st[0] = lir_store(f, O, flat, rand_expr(b, v, 3, 5));
    ex_expr *cond = ex_binary(b, (ex_binop)(EX_EQ + rnd(6)), rand_expr(b, v, 3, 3), rand_expr(b, v, 3, 3));
    ex_expr *at = ex_add(b, flat, ex_int(b, n));
    st[1] = lir_if(f, cond, lir_store(f, O, at, ex_int(b, 1)), rnd(2) ? lir_store(f, O, at, ex_int(b, 2)) : NULL);
    lir_stmt *body = lir_seq(f, st, 2);
    for (int k = 2; k >= 0; k--) body = lir_for(f, v[k], ex_int(b, lo[k]), ex_int(b, ext[k]), LIR_SERIAL, body);
    f->body = body;
    *npoints = 2 * n;
    return f;
}

static void fuzz_simplified_expressions_agree(void) {
    int mismatches = 0;
    for (int iter = 0; iter < 3000; iter++) {
        int64_t n;
        lir_func *f = rand_kernel(&n);
        CHECK(!f->eb.failed);
        int64_t before[2 * 7 * 7 * 7], after[2 * 7 * 7 * 7];
        for (int64_t i = 0; i < n; i++) before[i] = after[i] = -99;
        void *a0[] = {before}, *a1[] = {after};
        CHECK(lir_interp_run(g_ctx, f, a0) == KILN_OK);
        CHECK(lir_simplify(g_ctx, f) == KILN_OK);
        CHECK(lir_verify(g_ctx, f) == KILN_OK);
        CHECK(lir_interp_run(g_ctx, f, a1) == KILN_OK);
        if (memcmp(before, after, sizeof(int64_t) * (size_t)n) != 0 && mismatches++ < 3) {
            CHECK_MSG(0, "iteration %d differs after simplification", iter);
            lir_print(stderr, f);
        }
        /* simplifying again changes nothing */
        lir_stmt *once = f->body;
        CHECK(lir_simplify(g_ctx, f) == KILN_OK);
        CHECK(f->body == once);
        lir_func_free(f);
    }
}

static void setup(void) { kiln_ctx_new(&g_ctx); }
static void teardown(void) { kiln_ctx_free(g_ctx); }

TEST_MAIN(T(setup), T(floordiv_of_a_split_index_folds), T(provable_guards_disappear), T(unit_and_empty_loops_go_away),
          T(fuzz_simplified_expressions_agree), T(teardown))
