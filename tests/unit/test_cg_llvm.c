/*
** test_cg_llvm.c — the CPU backend: loop nests built by hand, compiled with
** the JIT, run on random and edge-case data and compared with plain C.
*/
#define _GNU_SOURCE
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cg_llvm.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/lir.h"
#include "runtime/krt_pool.h"

/* Debug helpers of cg_llvm_internal.h, which needs LLVM's headers. */
bool cg_target_has(const cg_cpu_target *t, const char *name);
kiln_status cg_llvm_asm_text(kiln_ctx *ctx, lir_func *const *funcs, int n, const cg_options *o, char **out);

static kiln_ctx *g_ctx;
static cg_options g_opt;

/* ---- small helpers ---- */

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}
static float rndf(float lo, float hi) { return lo + (hi - lo) * (float)((rnd() >> 40) / 16777216.0); }

static ex_expr *vr(lir_func *f, const ex_var *v) { return ex_varref(&f->eb, v); }
static ex_expr *ci(lir_func *f, int64_t x) { return ex_int(&f->eb, x); }
static ex_expr *ld(lir_func *f, const lir_buffer *b, ex_expr *i) { return ex_load_buffer(&f->eb, b, i); }
static ex_expr *bin(lir_func *f, ex_binop op, ex_expr *a, ex_expr *b) { return ex_binary(&f->eb, op, a, b); }
static ex_expr *add(lir_func *f, ex_expr *a, ex_expr *b) { return ex_add(&f->eb, a, b); }
static ex_expr *mul(lir_func *f, ex_expr *a, ex_expr *b) { return ex_mul(&f->eb, a, b); }

static lir_stmt *loop(lir_func *f, const char *name, int64_t min, int64_t extent, lir_loop_kind k,
                      const ex_var **v_out, lir_stmt *(*body)(lir_func *, const ex_var *, void *), void *ud) {
    const ex_var *v = ex_var_new(&f->eb, name, extent, false);
    if (v_out) *v_out = v;
    return lir_for(f, v, ci(f, min), ci(f, extent), k, v ? body(f, v, ud) : NULL);
}

/* The flat index i over [0, n) as a loop nest of the given form; body(f, i)
** builds the statement for one element. */
typedef enum { NEST_SERIAL, NEST_VEC, NEST_PAR_VEC } nest_kind;
typedef lir_stmt *(*elem_fn)(lir_func *f, ex_expr *i, void *ud);

static lir_stmt *elementwise(lir_func *f, int64_t n, nest_kind kind, int width, elem_fn body, void *ud) {
    ex_builder *eb = &f->eb;
    if (kind == NEST_SERIAL) {
        const ex_var *i = ex_var_new(eb, "i", n, false);
        return lir_for(f, i, ci(f, 0), ci(f, n), LIR_SERIAL, body(f, vr(f, i), ud));
    }
    int64_t chunks = n / width, rest = n - chunks * width;
    const ex_var *o = ex_var_new(eb, "o", chunks, false), *l = ex_var_new(eb, "l", width, false);
    ex_expr *idx = add(f, mul(f, vr(f, o), ci(f, width)), vr(f, l));
    lir_stmt *inner = lir_for(f, l, ci(f, 0), ci(f, width), LIR_VECTORIZED, body(f, idx, ud));
    lir_stmt *main = lir_for(f, o, ci(f, 0), ci(f, chunks), kind == NEST_PAR_VEC ? LIR_PARALLEL : LIR_SERIAL, inner);
    if (!rest) return main;
    const ex_var *r = ex_var_new(eb, "r", rest, false);
    lir_stmt *tail = lir_for(f, r, ci(f, chunks * width), ci(f, rest), LIR_SERIAL, body(f, vr(f, r), ud));
    lir_stmt *both[2] = {main, tail};
    return lir_seq(f, both, 2);
}

static cg_module *jit(lir_func *const *fs, int n, const cg_options *o) {
    cg_module *m = NULL;
    kiln_status s = cg_llvm_jit(g_ctx, fs, n, o ? o : &g_opt, &m);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return s ? NULL : m;
}

/* Compiles f alone and runs it once on args. */
static bool run1(lir_func *f, const cg_options *o, void **args) {
    CHECK(!f->eb.failed);
    cg_module *m = jit(&f, 1, o);
    if (!m) return false;
    cg_kernel_fn fn = cg_module_lookup(m, f->name);
    CHECK(fn != NULL);
    if (fn) fn(args);
    cg_module_free(m);
    return fn != NULL;
}

static char *ir_text(lir_func *f, const cg_options *o, bool optimized) {
    char *text = NULL;
    kiln_status s = cg_llvm_ir_text(g_ctx, &f, 1, o ? o : &g_opt, optimized, &text);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return text;
}

static char *asm_text(lir_func *f, const cg_options *o) {
    char *text = NULL;
    kiln_status s = cg_llvm_asm_text(g_ctx, &f, 1, o ? o : &g_opt, &text);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return text;
}

static bool same_float(double a, double b, double rel);

/* Runs f with the loop-IR interpreter and with the JIT on copies of args;
** every output must agree: integers exactly, floats within rel (relative)
** or abs, NaN where NaN. */
static void compare_interp(lir_func *f, void *const *args, double rel, double abs_tol, const char *what) {
    int n = f->n_args;
    void *ia[n > 0 ? n : 1], *ja[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) {
        size_t bytes = (size_t)f->args[i]->size * kiln_dtype_size(f->args[i]->dtype);
        ia[i] = malloc(bytes ? bytes : 1);
        ja[i] = malloc(bytes ? bytes : 1);
        memcpy(ia[i], args[i], bytes);
        memcpy(ja[i], args[i], bytes);
    }
    kiln_status s = lir_interp_run(g_ctx, f, ia);
    CHECK_MSG(s == KILN_OK, "%s: interpreter: %s", what, kiln_errmsg(g_ctx));
    if (!s && run1(f, NULL, ja)) {
        for (int i = f->n_inputs; i < n; i++) {
            const lir_buffer *b = f->args[i];
            int64_t bad = 0, first = -1;
            for (int64_t k = 0; k < b->size; k++) {
                bool ok;
                if (kiln_dtype_is_float(b->dtype)) {
                    double x = kiln_load_f64(b->dtype, ia[i], k), y = kiln_load_f64(b->dtype, ja[i], k);
                    ok = same_float(x, y, rel) || fabs(x - y) <= abs_tol;
                } else {
                    ok = kiln_load_i64(b->dtype, ia[i], k) == kiln_load_i64(b->dtype, ja[i], k);
                }
                if (!ok && !bad++) first = k;
            }
            CHECK_MSG(bad == 0, "%s: %lld elements of %s differ from the interpreter, first [%lld]: %g vs %g", what,
                      (long long)bad, b->name, (long long)first,
                      first >= 0 ? kiln_load_f64(b->dtype, ia[i], first) : 0.0,
                      first >= 0 ? kiln_load_f64(b->dtype, ja[i], first) : 0.0);
        }
    }
    for (int i = 0; i < n; i++) free(ia[i]), free(ja[i]);
}

/* Memory whose last byte is followed by an unmapped page, so generated
** code that reads or writes past the end crashes instead of passing. */
typedef struct guarded {
    void *map;
    size_t len;
    void *data;
} guarded;

static void *guarded_new(guarded *g, size_t bytes) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    size_t pages = (bytes + pg - 1) / pg;
    g->len = (pages + 1) * pg;
    g->map = mmap(NULL, g->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (g->map == MAP_FAILED) return g->data = NULL;
    mprotect((char *)g->map + pages * pg, pg, PROT_NONE);
    return g->data = (char *)g->map + pages * pg - bytes;
}

static void guarded_free(guarded *g) {
    if (g->data) munmap(g->map, g->len);
}

static bool same_float(double a, double b, double rel) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    if (isinf(a) || isinf(b)) return a == b;
    return fabs(a - b) <= rel * fmax(fabs(a), fabs(b)) + 1e-300;
}

/* ---- host ---- */

static void test_host(void) {
    cg_cpu_target t;
    CHECK(cg_cpu_host(g_ctx, &t) == KILN_OK);
    CHECK(t.triple[0] && t.cpu[0] && t.features[0]);
    CHECK(strncmp(t.llvm_version, "19.", 3) == 0);
    CHECK(t.vector_bits == 128 || t.vector_bits == 256 || t.vector_bits == 512);
    if (cg_target_has(&t, "avx512f")) CHECK(t.vector_bits >= 256);
    CHECK(!cg_target_has(&t, "avx512")); /* whole names only */
    printf("host: %s %s, %d-bit vectors, LLVM %s\n", t.triple, t.cpu, t.vector_bits, t.llvm_version);
    cg_options o;
    cg_options_default(&o);
    CHECK(o.opt_level == 3 && o.fast_math && strcmp(o.target.cpu, t.cpu) == 0);
}

/* ---- elementwise add, vectorized with a remainder loop ---- */

typedef struct bufs3 {
    lir_buffer *a, *b, *c;
} bufs3;

static lir_stmt *add_elem(lir_func *f, ex_expr *i, void *ud) {
    bufs3 *b = ud;
    return lir_store(f, b->c, i, add(f, ld(f, b->a, i), ld(f, b->b, i)));
}

static lir_func *add_kernel(const char *name, kiln_dtype dt, int64_t n, nest_kind kind, int width) {
    lir_func *f = lir_func_new(name);
    bufs3 b = {lir_arg_new(f, "A", dt, n, true), lir_arg_new(f, "B", dt, n, true), lir_arg_new(f, "C", dt, n, false)};
    f->body = elementwise(f, n, kind, width, add_elem, &b);
    return f;
}

static void test_add_f32(void) {
    static const nest_kind kinds[] = {NEST_SERIAL, NEST_VEC, NEST_PAR_VEC};
    krt_pool *pool = krt_pool_new(2);
    krt_pool_set_current(pool);
    for (int k = 0; k < 3; k++) {
        int64_t n = 1000; /* 62 chunks of 16 and 8 left over */
        lir_func *f = add_kernel("add_f32", KILN_F32, n, kinds[k], 16);
        guarded ga, gb, gc;
        float *a = guarded_new(&ga, n * 4), *b = guarded_new(&gb, n * 4), *c = guarded_new(&gc, n * 4);
        for (int64_t i = 0; i < n; i++) a[i] = rndf(-10, 10), b[i] = rndf(-10, 10), c[i] = NAN;
        void *args[3] = {a, b, c};
        if (run1(f, NULL, args)) {
            int bad = 0;
            for (int64_t i = 0; i < n; i++) bad += c[i] != a[i] + b[i];
            CHECK_MSG(bad == 0, "kind %d: %d wrong", k, bad);
        }
        compare_interp(f, args, 0, 0, "add_f32");
        if (kinds[k] != NEST_SERIAL) {
            char *ir = ir_text(f, NULL, true);
            CHECK(ir && strstr(ir, "<16 x float>"));
            kiln_free(ir);
        }
        guarded_free(&ga), guarded_free(&gb), guarded_free(&gc);
        lir_func_free(f);
    }
    krt_pool_set_current(NULL);
    krt_pool_free(pool);
}

/* ---- matmul with a parallel outer loop and a reduction ---- */

typedef struct mm {
    lir_buffer *a, *b, *c;
    int64_t m, n, k;
    const ex_var *i, *j, *kk;
} mm;

static lir_stmt *mm_k(lir_func *f, const ex_var *k, void *ud) {
    mm *p = ud;
    ex_expr *ci_ = add(f, mul(f, vr(f, p->i), ci(f, p->n)), vr(f, p->j));
    ex_expr *prod = mul(f, ld(f, p->a, add(f, mul(f, vr(f, p->i), ci(f, p->k)), vr(f, k))),
                        ld(f, p->b, add(f, mul(f, vr(f, k), ci(f, p->n)), vr(f, p->j))));
    return lir_store(f, p->c, ci_, add(f, ld(f, p->c, ci_), prod));
}

static lir_stmt *mm_j(lir_func *f, const ex_var *j, void *ud) {
    mm *p = ud;
    p->j = j;
    ex_expr *ci_ = add(f, mul(f, vr(f, p->i), ci(f, p->n)), vr(f, j));
    lir_stmt *s[2] = {lir_store(f, p->c, ci_, ex_const_float(&f->eb, KILN_F32, 0.0)),
                      loop(f, "k", 0, p->k, LIR_SERIAL, NULL, mm_k, p)};
    return lir_seq(f, s, 2);
}

static lir_stmt *mm_i(lir_func *f, const ex_var *i, void *ud) {
    mm *p = ud;
    p->i = i;
    return loop(f, "j", 0, p->n, LIR_SERIAL, NULL, mm_j, p);
}

static void test_matmul_parallel(void) {
    krt_pool *pool = krt_pool_new(3);
    krt_pool_set_current(pool);
    lir_func *f = lir_func_new("matmul");
    mm p = {.m = 37, .n = 29, .k = 23};
    p.a = lir_arg_new(f, "A", KILN_F32, p.m * p.k, true);
    p.b = lir_arg_new(f, "B", KILN_F32, p.k * p.n, true);
    p.c = lir_arg_new(f, "C", KILN_F32, p.m * p.n, false);
    f->body = loop(f, "i", 0, p.m, LIR_PARALLEL, NULL, mm_i, &p);
    float *a = malloc(sizeof(float) * p.m * p.k), *b = malloc(sizeof(float) * p.k * p.n);
    float *c = malloc(sizeof(float) * p.m * p.n);
    for (int64_t i = 0; i < p.m * p.k; i++) a[i] = rndf(-1, 1);
    for (int64_t i = 0; i < p.k * p.n; i++) b[i] = rndf(-1, 1);
    void *args[3] = {a, b, c};
    if (run1(f, NULL, args)) {
        double worst = 0;
        for (int64_t i = 0; i < p.m; i++)
            for (int64_t j = 0; j < p.n; j++) {
                double ref = 0;
                for (int64_t k = 0; k < p.k; k++) ref += (double)a[i * p.k + k] * b[k * p.n + j];
                worst = fmax(worst, fabs(ref - c[i * p.n + j]));
            }
        CHECK_MSG(worst < 1e-5, "max error %g", worst);
    }
    compare_interp(f, args, 1e-5, 1e-6, "matmul");
    char *ir = ir_text(f, NULL, false);
    CHECK(ir && strstr(ir, "krt_parallel_for") && strstr(ir, "matmul_par0"));
    kiln_free(ir);
    free(a), free(b), free(c);
    lir_func_free(f);
    krt_pool_set_current(NULL);
    krt_pool_free(pool);
}

/* ---- reductions ---- */

static void test_reduction(void) {
    int64_t n = 10007;
    lir_func *f = lir_func_new("reduce");
    lir_buffer *x = lir_arg_new(f, "X", KILN_F32, n, true);
    lir_buffer *sum = lir_arg_new(f, "S", KILN_F64, 1, false), *mx = lir_arg_new(f, "M", KILN_F32, 1, false);
    const ex_var *i = ex_var_new(&f->eb, "i", n, true);
    ex_expr *xi = ld(f, x, vr(f, i));
    lir_stmt *body[2] = {
        lir_store(f, sum, ci(f, 0), add(f, ld(f, sum, ci(f, 0)), ex_cast(&f->eb, KILN_F64, xi))),
        lir_store(f, mx, ci(f, 0), bin(f, EX_MAX, ld(f, mx, ci(f, 0)), xi))};
    lir_stmt *init[3] = {lir_store(f, sum, ci(f, 0), ex_const_float(&f->eb, KILN_F64, 0)),
                         lir_store(f, mx, ci(f, 0), ex_const_float(&f->eb, KILN_F32, -INFINITY)),
                         lir_for(f, i, ci(f, 0), ci(f, n), LIR_SERIAL, lir_seq(f, body, 2))};
    f->body = lir_seq(f, init, 3);
    float *xs = malloc(sizeof(float) * n);
    double ref = 0;
    float ref_max = -INFINITY;
    for (int64_t k = 0; k < n; k++) xs[k] = rndf(-3, 3), ref += xs[k], ref_max = fmaxf(ref_max, xs[k]);
    double s = 0;
    float m = 0;
    void *args[3] = {xs, &s, &m};
    if (run1(f, NULL, args)) CHECK(s == ref && m == ref_max);
    xs[5000] = NAN; /* max propagates NaN, as the reference kernels do */
    if (run1(f, NULL, args)) CHECK(isnan(m));
    compare_interp(f, args, 0, 0, "reduce");
    free(xs);
    lir_func_free(f);
}

/* ---- integers: every operator on edge cases, scalar and vectorized ---- */

static const ex_binop k_int_ops[] = {EX_ADD, EX_SUB, EX_MUL, EX_DIV, EX_MOD, EX_FLOORDIV, EX_FLOORMOD,
                                     EX_MIN, EX_MAX, EX_POW, EX_AND, EX_OR, EX_XOR, EX_SHL, EX_SHR,
                                     EX_EQ, EX_NE, EX_LT, EX_LE, EX_GT, EX_GE};
#define N_INT_OPS ((int)(sizeof k_int_ops / sizeof k_int_ops[0]))

static int width_of(kiln_dtype t) { return 8 * (int)kiln_dtype_size(t); }

/* v's low bits as a value of t (sign- or zero-extended into 64 bits) */
static uint64_t wrap(kiln_dtype t, uint64_t v) {
    int w = width_of(t);
    if (w == 64) return v;
    uint64_t m = (1ull << w) - 1;
    v &= m;
    if (kiln_dtype_is_signed(t) && (v >> (w - 1))) v |= ~m;
    return v;
}

static uint64_t ref_pow(kiln_dtype t, uint64_t b, uint64_t e) {
    bool sgn = kiln_dtype_is_signed(t);
    if (sgn && (int64_t)e < 0) {
        if ((int64_t)b == 1) return 1;
        if ((int64_t)b == -1) return (e & 1) ? (uint64_t)-1 : 1;
        return 0;
    }
    uint64_t r = 1;
    e &= width_of(t) == 64 ? ~0ull : (1ull << width_of(t)) - 1;
    for (; e; e >>= 1, b = wrap(t, b * b))
        if (e & 1) r = wrap(t, r * b);
    return r;
}

static uint64_t ref_int(kiln_dtype t, ex_binop op, uint64_t a, uint64_t b) {
    bool sgn = kiln_dtype_is_signed(t);
    int w = width_of(t);
    int64_t sa = (int64_t)a, sb = (int64_t)b;
    uint64_t ua = a & (w == 64 ? ~0ull : (1ull << w) - 1), ub = b & (w == 64 ? ~0ull : (1ull << w) - 1);
    int64_t smin = w == 64 ? INT64_MIN : -(1ll << (w - 1));
    switch (op) {
    case EX_ADD: return wrap(t, a + b);
    case EX_SUB: return wrap(t, a - b);
    case EX_MUL: return wrap(t, a * b);
    case EX_DIV: case EX_MOD: case EX_FLOORDIV: case EX_FLOORMOD:
        if (b == 0) return 0;
        if (!sgn) return op == EX_DIV || op == EX_FLOORDIV ? ua / ub : ua % ub;
        if (sa == smin && sb == -1) return op == EX_DIV || op == EX_FLOORDIV ? (uint64_t)smin : 0;
        {
            int64_t q = sa / sb, r = sa % sb;
            if (op == EX_DIV) return (uint64_t)q;
            if (op == EX_MOD) return (uint64_t)r;
            bool adj = r != 0 && ((r < 0) != (sb < 0));
            return op == EX_FLOORDIV ? (uint64_t)(q - adj) : (uint64_t)(adj ? r + sb : r);
        }
    case EX_MIN: return sgn ? (sa < sb ? a : b) : (ua < ub ? a : b);
    case EX_MAX: return sgn ? (sa > sb ? a : b) : (ua > ub ? a : b);
    case EX_POW: return ref_pow(t, a, b);
    case EX_AND: return a & b;
    case EX_OR: return a | b;
    case EX_XOR: return a ^ b;
    case EX_SHL: return ub >= (uint64_t)w ? 0 : wrap(t, ua << ub);
    case EX_SHR:
        if (sgn) return ub >= (uint64_t)w ? (sa < 0 ? (uint64_t)-1 : 0) : (uint64_t)(sa >> ub);
        return ub >= (uint64_t)w ? 0 : ua >> ub;
    case EX_EQ: return a == b;
    case EX_NE: return a != b;
    case EX_LT: return sgn ? sa < sb : ua < ub;
    case EX_LE: return sgn ? sa <= sb : ua <= ub;
    case EX_GT: return sgn ? sa > sb : ua > ub;
    case EX_GE: return sgn ? sa >= sb : ua >= ub;
    default: return 0;
    }
}

typedef struct intk {
    lir_buffer *x, *y, *out[N_INT_OPS];
} intk;

static lir_stmt *int_elem(lir_func *f, ex_expr *i, void *ud) {
    intk *k = ud;
    lir_stmt *s[N_INT_OPS];
    for (int o = 0; o < N_INT_OPS; o++)
        s[o] = lir_store(f, k->out[o], i, bin(f, k_int_ops[o], ld(f, k->x, i), ld(f, k->y, i)));
    return lir_seq(f, s, N_INT_OPS);
}

static void int_edge_values(kiln_dtype t, uint64_t *v, int *n) {
    int w = width_of(t);
    uint64_t max = w == 64 ? (kiln_dtype_is_signed(t) ? INT64_MAX : UINT64_MAX)
                           : (kiln_dtype_is_signed(t) ? (1ull << (w - 1)) - 1 : (1ull << w) - 1);
    uint64_t min = kiln_dtype_is_signed(t) ? wrap(t, max + 1) : 0;
    uint64_t list[] = {0, 1, wrap(t, -1), 2, wrap(t, -2), 3, 7, wrap(t, -7), min, max, wrap(t, min + 1),
                       wrap(t, max - 1), (uint64_t)w - 1, (uint64_t)w, (uint64_t)w + 1, 100};
    *n = 0;
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++) v[(*n)++] = wrap(t, list[i]);
}

static void check_int_dtype(kiln_dtype t, nest_kind kind) {
    enum { N = 512 };
    lir_func *f = lir_func_new("intops");
    intk k;
    k.x = lir_arg_new(f, "X", t, N, true);
    k.y = lir_arg_new(f, "Y", t, N, true);
    for (int o = 0; o < N_INT_OPS; o++)
        k.out[o] = lir_arg_new(f, ex_binop_name(k_int_ops[o]), k_int_ops[o] >= EX_EQ && k_int_ops[o] <= EX_GE ? KILN_BOOL : t,
                               N, false);
    f->body = elementwise(f, N, kind, 8, int_elem, &k);
    uint64_t edge[16];
    int ne;
    int_edge_values(t, edge, &ne);
    size_t es = kiln_dtype_size(t);
    uint8_t *x = malloc(es * N), *y = malloc(es * N), *out[N_INT_OPS];
    void *args[2 + N_INT_OPS] = {x, y};
    for (int o = 0; o < N_INT_OPS; o++) args[2 + o] = out[o] = calloc(N, es);
    uint64_t xv[N], yv[N];
    for (int i = 0; i < N; i++) {
        xv[i] = i < ne * ne ? edge[i / ne] : wrap(t, rnd());
        yv[i] = i < ne * ne ? edge[i % ne] : wrap(t, i % 3 ? rnd() % 70 : rnd());
        kiln_store_i64(t, x, i, (int64_t)xv[i]);
        kiln_store_i64(t, y, i, (int64_t)yv[i]);
    }
    if (run1(f, NULL, args)) {
        for (int o = 0; o < N_INT_OPS; o++) {
            bool cmp = k_int_ops[o] >= EX_EQ && k_int_ops[o] <= EX_GE;
            int bad = 0, first = -1;
            for (int i = 0; i < N; i++) {
                uint64_t want = ref_int(t, k_int_ops[o], xv[i], yv[i]);
                uint64_t got = cmp ? out[o][i] : wrap(t, (uint64_t)kiln_load_i64(t, out[o], i));
                if (got != want && !bad++) first = i;
            }
            CHECK_MSG(bad == 0, "%s %s (%s): %d wrong, first x=%llx y=%llx got %llx want %llx",
                      kiln_dtype_name(t), ex_binop_name(k_int_ops[o]), kind == NEST_SERIAL ? "scalar" : "vector",
                      bad, first >= 0 ? (unsigned long long)xv[first] : 0ull,
                      first >= 0 ? (unsigned long long)yv[first] : 0ull,
                      first >= 0 ? (unsigned long long)(cmp ? out[o][first] : wrap(t, (uint64_t)kiln_load_i64(t, out[o], first))) : 0ull,
                      first >= 0 ? (unsigned long long)ref_int(t, k_int_ops[o], xv[first], yv[first]) : 0ull);
        }
    }
    for (int i = 0; i < N; i++) { /* the interpreter rejects division by zero */
        if (yv[i] == 0) kiln_store_i64(t, y, i, 1);
        if (t == KILN_U64 && (yv[i] >> 63)) /* and takes such exponents as negative */
            kiln_store_i64(t, y, i, (int64_t)(yv[i] >> 1));
    }
    compare_interp(f, args, 0, 0, kiln_dtype_name(t));
    free(x), free(y);
    for (int o = 0; o < N_INT_OPS; o++) free(out[o]);
    lir_func_free(f);
}

static void test_int_ops(void) {
    static const kiln_dtype types[] = {KILN_I8, KILN_I16, KILN_I32, KILN_I64, KILN_U8, KILN_U16, KILN_U32, KILN_U64};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_int_dtype(types[i], NEST_SERIAL);
        check_int_dtype(types[i], NEST_VEC);
    }
}

/* ---- floats: operators on every float dtype ---- */

static const ex_binop k_float_ops[] = {EX_ADD, EX_SUB, EX_MUL, EX_DIV, EX_MOD, EX_FLOORDIV, EX_FLOORMOD,
                                       EX_MIN, EX_MAX, EX_POW, EX_EQ, EX_NE, EX_LT, EX_LE, EX_GT, EX_GE};
#define N_FLOAT_OPS ((int)(sizeof k_float_ops / sizeof k_float_ops[0]))

static double ref_float(ex_binop op, double a, double b) {
    switch (op) {
    case EX_ADD: return a + b;
    case EX_SUB: return a - b;
    case EX_MUL: return a * b;
    case EX_DIV: return a / b;
    case EX_MOD: return fmod(a, b);
    case EX_FLOORDIV: return floor(a / b);
    case EX_FLOORMOD: {
        double r = fmod(a, b);
        return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
    }
    case EX_MIN: return isnan(a) || isnan(b) ? NAN : a < b ? a : b;
    case EX_MAX: return isnan(a) || isnan(b) ? NAN : a > b ? a : b;
    case EX_POW: return pow(a, b);
    case EX_EQ: return a == b;
    case EX_NE: return a != b;
    case EX_LT: return a < b;
    case EX_LE: return a <= b;
    case EX_GT: return a > b;
    case EX_GE: return a >= b;
    default: return NAN;
    }
}

static float ref_floatf(ex_binop op, float a, float b) {
    switch (op) {
    case EX_ADD: return a + b;
    case EX_SUB: return a - b;
    case EX_MUL: return a * b;
    case EX_DIV: return a / b;
    case EX_MOD: return fmodf(a, b);
    case EX_FLOORDIV: return floorf(a / b);
    case EX_FLOORMOD: {
        float r = fmodf(a, b);
        return r != 0 && ((r < 0) != (b < 0)) ? r + b : r;
    }
    case EX_POW: return powf(a, b);
    default: return (float)ref_float(op, a, b);
    }
}

typedef struct fltk {
    lir_buffer *x, *y, *out[N_FLOAT_OPS];
} fltk;

static lir_stmt *float_elem(lir_func *f, ex_expr *i, void *ud) {
    fltk *k = ud;
    lir_stmt *s[N_FLOAT_OPS];
    for (int o = 0; o < N_FLOAT_OPS; o++)
        s[o] = lir_store(f, k->out[o], i, bin(f, k_float_ops[o], ld(f, k->x, i), ld(f, k->y, i)));
    return lir_seq(f, s, N_FLOAT_OPS);
}

/* Rounds a double result the way the kernel's dtype stores it. */
static double to_dtype(kiln_dtype t, double v) {
    double out;
    uint8_t tmp[8];
    kiln_store_f64(t, tmp, 0, t == KILN_F16 || t == KILN_BF16 ? (double)(float)v : v);
    out = kiln_load_f64(t, tmp, 0);
    return out;
}

static void check_float_dtype(kiln_dtype t, nest_kind kind) {
    enum { N = 400 };
    lir_func *f = lir_func_new("floatops");
    fltk k;
    k.x = lir_arg_new(f, "X", t, N, true);
    k.y = lir_arg_new(f, "Y", t, N, true);
    for (int o = 0; o < N_FLOAT_OPS; o++)
        k.out[o] = lir_arg_new(f, ex_binop_name(k_float_ops[o]), k_float_ops[o] >= EX_EQ ? KILN_BOOL : t, N, false);
    f->body = elementwise(f, N, kind, 16, float_elem, &k);
    static const double edge[] = {0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.0, 0.5, INFINITY, -INFINITY, NAN, 7.0};
    int ne = (int)(sizeof edge / sizeof edge[0]);
    size_t es = kiln_dtype_size(t);
    uint8_t *x = malloc(es * N), *y = malloc(es * N), *out[N_FLOAT_OPS];
    void *args[2 + N_FLOAT_OPS] = {x, y};
    for (int o = 0; o < N_FLOAT_OPS; o++) args[2 + o] = out[o] = calloc(N, es);
    for (int i = 0; i < N; i++) {
        kiln_store_f64(t, x, i, i < ne * ne ? edge[i / ne] : rndf(-8, 8));
        kiln_store_f64(t, y, i, i < ne * ne ? edge[i % ne] : rndf(-8, 8));
    }
    if (run1(f, NULL, args)) {
        for (int o = 0; o < N_FLOAT_OPS; o++) {
            bool cmp = k_float_ops[o] >= EX_EQ;
            int bad = 0;
            for (int i = 0; i < N; i++) {
                double a = kiln_load_f64(t, x, i), b = kiln_load_f64(t, y, i);
                /* f32 and narrower compute in f32 */
                double want = t == KILN_F64 ? ref_float(k_float_ops[o], a, b) : ref_floatf(k_float_ops[o], (float)a, (float)b);
                if (!cmp) want = to_dtype(t, want);
                double got = cmp ? out[o][i] : kiln_load_f64(t, out[o], i);
                bool ok = same_float(got, want, 0) && (isnan(want) || signbit(got) == signbit(want));
                if (!ok && getenv("KILN_TEST_VERBOSE"))
                    fprintf(stderr, "  %s(%g, %g) = %g, want %g\n", ex_binop_name(k_float_ops[o]), a, b, got, want);
                bad += !ok;
            }
            CHECK_MSG(bad == 0, "%s %s (%s): %d wrong", kiln_dtype_name(t), ex_binop_name(k_float_ops[o]),
                      kind == NEST_SERIAL ? "scalar" : "vector", bad);
        }
    }
    compare_interp(f, args, 0, 0, kiln_dtype_name(t));
    free(x), free(y);
    for (int o = 0; o < N_FLOAT_OPS; o++) free(out[o]);
    lir_func_free(f);
}

static void test_float_ops(void) {
    static const kiln_dtype types[] = {KILN_F32, KILN_F64, KILN_F16, KILN_BF16};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_float_dtype(types[i], NEST_SERIAL);
        check_float_dtype(types[i], NEST_VEC);
    }
}

/* ---- bool: a 1-bit unsigned integer whose results mean "!= 0" ---- */

static const ex_binop k_bool_ops[] = {EX_ADD, EX_SUB, EX_MUL, EX_MIN, EX_MAX, EX_POW, EX_AND, EX_OR, EX_XOR,
                                      EX_SHL, EX_SHR, EX_EQ, EX_NE, EX_LT, EX_LE, EX_GT, EX_GE};
#define N_BOOL_OPS ((int)(sizeof k_bool_ops / sizeof k_bool_ops[0]))

typedef struct boolk {
    lir_buffer *x, *y, *out[N_BOOL_OPS];
} boolk;

static lir_stmt *bool_elem(lir_func *f, ex_expr *i, void *ud) {
    boolk *k = ud;
    lir_stmt *s[N_BOOL_OPS];
    for (int o = 0; o < N_BOOL_OPS; o++) s[o] = lir_store(f, k->out[o], i, bin(f, k_bool_ops[o], ld(f, k->x, i), ld(f, k->y, i)));
    return lir_seq(f, s, N_BOOL_OPS);
}

static void test_bool_ops(void) {
    enum { N = 64 };
    for (int kind = 0; kind < 2; kind++) {
        lir_func *f = lir_func_new("boolops");
        boolk k = {lir_arg_new(f, "X", KILN_BOOL, N, true), lir_arg_new(f, "Y", KILN_BOOL, N, true)};
        for (int o = 0; o < N_BOOL_OPS; o++) k.out[o] = lir_arg_new(f, ex_binop_name(k_bool_ops[o]), KILN_BOOL, N, false);
        f->body = elementwise(f, N, kind ? NEST_VEC : NEST_SERIAL, 16, bool_elem, &k);
        uint8_t x[N], y[N], out[N_BOOL_OPS][N];
        void *args[2 + N_BOOL_OPS] = {x, y};
        for (int o = 0; o < N_BOOL_OPS; o++) args[2 + o] = out[o];
        for (int i = 0; i < N; i++) x[i] = (uint8_t)(i & 1), y[i] = (uint8_t)((i >> 1) & 1);
        if (run1(f, NULL, args)) {
            int bad = 0;
            for (int i = 0; i < N; i++) {
                int a = x[i], b = y[i];
                int want[N_BOOL_OPS] = {a | b, a ^ b, a & b, a & b, a | b, b ? a : 1, a & b, a | b, a ^ b,
                                        b ? 0 : a, b ? 0 : a, a == b, a != b, a < b, a <= b, a > b, a >= b};
                for (int o = 0; o < N_BOOL_OPS; o++) bad += out[o][i] != want[o];
            }
            CHECK_MSG(bad == 0, "%d wrong", bad);
        }
        compare_interp(f, args, 0, 0, "bool");
        lir_func_free(f);
    }
}

/* ---- casts between every pair of dtypes ---- */

static const kiln_dtype k_all_types[] = {KILN_F32, KILN_F64, KILN_F16, KILN_BF16, KILN_I8, KILN_I16, KILN_I32,
                                         KILN_I64, KILN_U8, KILN_U16, KILN_U32, KILN_U64, KILN_BOOL};
#define N_TYPES ((int)(sizeof k_all_types / sizeof k_all_types[0]))

static uint64_t ref_sat(kiln_dtype t, double v) {
    int w = width_of(t);
    if (isnan(v)) return 0;
    v = trunc(v);
    if (kiln_dtype_is_signed(t)) {
        double lo = -ldexp(1.0, w - 1), hi = ldexp(1.0, w - 1);
        if (v <= lo) return wrap(t, (uint64_t)(int64_t)lo);
        if (v >= hi) return wrap(t, (uint64_t)(w == 64 ? INT64_MAX : (int64_t)hi - 1));
        return wrap(t, (uint64_t)(int64_t)v);
    }
    if (v <= 0) return 0;
    if (v >= ldexp(1.0, w)) return w == 64 ? UINT64_MAX : (1ull << w) - 1;
    return (uint64_t)v;
}

typedef struct castk {
    lir_buffer *x, *out[N_TYPES];
} castk;

static lir_stmt *cast_elem(lir_func *f, ex_expr *i, void *ud) {
    castk *k = ud;
    lir_stmt *s[N_TYPES];
    for (int o = 0; o < N_TYPES; o++) s[o] = lir_store(f, k->out[o], i, ex_cast(&f->eb, k_all_types[o], ld(f, k->x, i)));
    return lir_seq(f, s, N_TYPES);
}

static void check_casts_from(kiln_dtype from, nest_kind kind) {
    enum { N = 256 };
    static const double fedge[] = {0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, 127.5, 128, 255.9, 256, -129, 32767.5,
                                   65504, 65520, 65535, 65536, 2147483648.0, -2147483649.0, 4294967296.0,
                                   9007199254740993.0, 1e19, -1e19, 1.8e19, 3e38, INFINITY, -INFINITY, NAN,
                                   1e-40, -3.7, 1e-8, 0.1};
    lir_func *f = lir_func_new("casts");
    castk k;
    k.x = lir_arg_new(f, "X", from, N, true);
    for (int o = 0; o < N_TYPES; o++) k.out[o] = lir_arg_new(f, kiln_dtype_name(k_all_types[o]), k_all_types[o], N, false);
    f->body = elementwise(f, N, kind, 16, cast_elem, &k);
    uint8_t *x = calloc(N, 8), *out[N_TYPES];
    void *args[1 + N_TYPES] = {x};
    for (int o = 0; o < N_TYPES; o++) args[1 + o] = out[o] = calloc(N, 8);
    bool ffrom = kiln_dtype_is_float(from);
    uint64_t iedge[16];
    int ne = 0;
    if (from != KILN_BOOL && !ffrom) int_edge_values(from, iedge, &ne);
    for (int i = 0; i < N; i++) {
        if (ffrom) kiln_store_f64(from, x, i, i < (int)(sizeof fedge / sizeof fedge[0]) ? fedge[i] : rndf(-300, 300));
        else if (from == KILN_BOOL) x[i] = (uint8_t)(i & 1);
        else kiln_store_i64(from, x, i, (int64_t)(i < ne ? iedge[i] : wrap(from, rnd() >> (rnd() % 64))));
    }
    if (run1(f, NULL, args)) {
        for (int o = 0; o < N_TYPES; o++) {
            kiln_dtype to = k_all_types[o];
            int bad = 0, first = -1;
            for (int i = 0; i < N; i++) {
                double fv = ffrom ? kiln_load_f64(from, x, i) : 0;
                uint64_t iv = ffrom ? 0 : from == KILN_BOOL ? x[i] : wrap(from, (uint64_t)kiln_load_i64(from, x, i));
                bool ok;
                if (kiln_dtype_is_float(to)) {
                    double src;
                    if (ffrom) src = to == KILN_F64 ? fv : (double)(float)fv;
                    else if (from != KILN_BOOL && kiln_dtype_is_signed(from))
                        src = to == KILN_F64 ? (double)(int64_t)iv : (double)(float)(int64_t)iv;
                    else src = to == KILN_F64 ? (double)iv : (double)(float)iv;
                    ok = same_float(kiln_load_f64(to, out[o], i), to_dtype(to, src), 0);
                } else if (to == KILN_BOOL) {
                    ok = out[o][i] == (ffrom ? fv != 0 : iv != 0);
                } else {
                    uint64_t want = ffrom ? ref_sat(to, from == KILN_F64 ? fv : (double)(float)fv) : wrap(to, iv);
                    ok = wrap(to, (uint64_t)kiln_load_i64(to, out[o], i)) == want;
                }
                if (!ok && !bad++) first = i;
            }
            CHECK_MSG(bad == 0, "%s -> %s (%s): %d wrong, first at %d", kiln_dtype_name(from), kiln_dtype_name(to),
                      kind == NEST_SERIAL ? "scalar" : "vector", bad, first);
        }
    }
    for (int i = 0; ffrom && i < N; i++) /* NaN -> bool: the interpreter says false, C says true */
        if (isnan(kiln_load_f64(from, x, i))) kiln_store_f64(from, x, i, 1.0);
    compare_interp(f, args, 0, 0, kiln_dtype_name(from));
    free(x);
    for (int o = 0; o < N_TYPES; o++) free(out[o]);
    lir_func_free(f);
}

static void test_casts(void) {
    for (int i = 0; i < N_TYPES; i++) {
        check_casts_from(k_all_types[i], NEST_SERIAL);
        check_casts_from(k_all_types[i], NEST_VEC);
    }
}

/* f16/bf16 conversions in hardware (F16C) and in integer code agree with
** kiln's reference conversions on every f16 and many f32 values. */
static void check_half(kiln_dtype half, const cg_options *o) {
    enum { N = 65536 };
    lir_func *f = lir_func_new("halfconv");
    lir_buffer *h = lir_arg_new(f, "H", half, N, true), *w = lir_arg_new(f, "W", KILN_F32, N, true);
    lir_buffer *hw = lir_arg_new(f, "HW", KILN_F32, N, false), *wh = lir_arg_new(f, "WH", half, N, false);
    const ex_var *o_ = ex_var_new(&f->eb, "o", N / 16, false), *l = ex_var_new(&f->eb, "l", 16, false);
    ex_expr *i = add(f, mul(f, vr(f, o_), ci(f, 16)), vr(f, l));
    lir_stmt *s[2] = {lir_store(f, hw, i, ex_cast(&f->eb, KILN_F32, ld(f, h, i))),
                      lir_store(f, wh, i, ex_cast(&f->eb, half, ld(f, w, i)))};
    f->body = lir_for(f, o_, ci(f, 0), ci(f, N / 16), LIR_SERIAL,
                      lir_for(f, l, ci(f, 0), ci(f, 16), LIR_VECTORIZED, lir_seq(f, s, 2)));
    uint16_t *hb = malloc(2 * N), *whb = malloc(2 * N);
    float *wf = malloc(4 * N), *hwf = malloc(4 * N);
    static const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.99f, 65520.0f, 1e-8f, 2.9802322e-08f, 2.98023259e-08f,
                                 5.96046448e-08f, 6.1035156e-05f, 6.1e-05f, INFINITY, -INFINITY, NAN, 1e38f, 3.4e38f};
    for (int k = 0; k < N; k++) {
        hb[k] = (uint16_t)k;
        uint32_t bits = (uint32_t)rnd();
        if (k % 4 == 1) bits = (bits & 0x8fffffffu) | 0x30000000u; /* near the f16 range */
        memcpy(&wf[k], &bits, 4);
        if (k < (int)(sizeof edge / sizeof edge[0])) wf[k] = edge[k];
    }
    void *args[4] = {hb, wf, hwf, whb};
    if (run1(f, o, args)) {
        int bad = 0;
        for (int k = 0; k < N; k++) {
            float ref = half == KILN_F16 ? kiln_f16_to_f32(hb[k]) : kiln_bf16_to_f32(hb[k]);
            bad += !(isnan(ref) ? isnan(hwf[k]) : memcmp(&ref, &hwf[k], 4) == 0);
            uint16_t r16 = half == KILN_F16 ? kiln_f32_to_f16(wf[k]) : kiln_f32_to_bf16(wf[k]);
            float back = half == KILN_F16 ? kiln_f16_to_f32(whb[k]) : kiln_bf16_to_f32(whb[k]);
            bad += !(isnan(wf[k]) ? isnan(back) : r16 == whb[k]);
        }
        CHECK_MSG(bad == 0, "%s conversions (%s): %d wrong", kiln_dtype_name(half),
                  cg_target_has(&o->target, "f16c") ? "F16C" : "integer code", bad);
    }
    free(hb), free(whb), free(wf), free(hwf);
    lir_func_free(f);
}

static void test_half_conversions(void) {
    cg_options soft = g_opt;
    char *p = strstr(soft.target.features, "+f16c");
    if (p) p[0] = '-';
    CHECK(!cg_target_has(&soft.target, "f16c"));
    check_half(KILN_F16, &g_opt);
    check_half(KILN_F16, &soft);
    check_half(KILN_BF16, &g_opt);
    char *ir = NULL;
    lir_func *f = add_kernel("addh", KILN_F16, 64, NEST_VEC, 16);
    CHECK(cg_llvm_ir_text(g_ctx, &f, 1, &soft, true, &ir) == KILN_OK);
    CHECK(ir && !strstr(ir, "half")); /* no f16 arithmetic: integer code */
    kiln_free(ir);
    lir_func_free(f);
}

/* ---- selects read only the chosen arm ---- */

typedef struct selk {
    lir_buffer *a, *out, *and_, *or_;
    int64_t valid;
} selk;

static lir_stmt *sel_elem(lir_func *f, ex_expr *i, void *ud) {
    selk *k = ud;
    ex_builder *eb = &f->eb;
    ex_expr *c = ex_lt(eb, i, ci(f, k->valid));
    ex_expr *v = ex_select(eb, c, ld(f, k->a, i), ex_const_float(eb, KILN_F32, -1.0));
    ex_expr *pos = bin(f, EX_GT, ld(f, k->a, i), ex_const_float(eb, KILN_F32, 0.0));
    lir_stmt *s[3] = {lir_store(f, k->out, i, v), lir_store(f, k->and_, i, ex_and(eb, c, pos)),
                      lir_store(f, k->or_, i, bin(f, EX_OR, bin(f, EX_GE, i, ci(f, k->valid)), pos))};
    return lir_seq(f, s, 3);
}

static void test_select_lazy(void) {
    for (int kind = 0; kind < 2; kind++) {
        int64_t n = 100, valid = 60;
        lir_func *f = lir_func_new("sel");
        selk k = {lir_arg_new(f, "A", KILN_F32, valid, true), lir_arg_new(f, "O", KILN_F32, n, false),
                  lir_arg_new(f, "And", KILN_BOOL, n, false), lir_arg_new(f, "Or", KILN_BOOL, n, false), valid};
        f->body = elementwise(f, n, kind ? NEST_VEC : NEST_SERIAL, 16, sel_elem, &k);
        guarded ga; /* A[60] is in the guard page: an eager load would crash */
        float *a = guarded_new(&ga, (size_t)valid * 4), *o = malloc(sizeof(float) * (size_t)n);
        uint8_t *and_ = malloc((size_t)n), *or_ = malloc((size_t)n);
        for (int64_t i = 0; i < valid; i++) a[i] = (float)i * 0.5f - 10;
        void *args[4] = {a, o, and_, or_};
        if (run1(f, NULL, args)) {
            int bad = 0;
            for (int64_t i = 0; i < n; i++) {
                bad += o[i] != (i < valid ? (float)i * 0.5f - 10 : -1.0f);
                bad += and_[i] != (i < valid && a[i] > 0) || or_[i] != (i >= valid || a[i] > 0);
            }
            CHECK_MSG(bad == 0, "%d wrong", bad);
        }
        compare_interp(f, args, 0, 0, "select");
        guarded_free(&ga);
        free(o), free(and_), free(or_);
        lir_func_free(f);
    }
}

/* ---- a guard inside a vectorized loop becomes a mask ---- */

typedef struct guardk {
    lir_buffer *a, *c, *d;
    const ex_var *o;
    int64_t n;
} guardk;

static lir_stmt *guard_body(lir_func *f, const ex_var *l, void *ud) {
    guardk *k = ud;
    ex_expr *i = add(f, mul(f, vr(f, k->o), ci(f, 16)), vr(f, l));
    ex_expr *two = ex_const_float(&f->eb, KILN_F32, 2.0);
    lir_stmt *then_s = lir_store(f, k->c, i, ex_mul(&f->eb, ld(f, k->a, i), two));
    lir_stmt *else_s = lir_store(f, k->d, i, ex_cast(&f->eb, KILN_F32, i));
    return lir_if(f, ex_lt(&f->eb, i, ci(f, k->n)), then_s, else_s);
}

static lir_stmt *guard_outer(lir_func *f, const ex_var *o, void *ud) {
    guardk *k = ud;
    k->o = o;
    return loop(f, "l", 0, 16, LIR_VECTORIZED, NULL, guard_body, k);
}

static void test_guard_vectorized(void) {
    int64_t n = 100, chunks = 7; /* 112 lanes, 12 guarded off */
    lir_func *f = lir_func_new("guard");
    guardk k = {lir_arg_new(f, "A", KILN_F32, n, true), lir_arg_new(f, "C", KILN_F32, n, false),
                lir_arg_new(f, "D", KILN_F32, chunks * 16, false), NULL, n};
    f->body = loop(f, "o", 0, chunks, LIR_SERIAL, NULL, guard_outer, &k);
    guarded ga, gc;
    float *a = guarded_new(&ga, (size_t)n * 4), *c = guarded_new(&gc, (size_t)n * 4);
    float *d = calloc((size_t)(chunks * 16), sizeof(float));
    for (int64_t i = 0; i < n; i++) a[i] = rndf(-5, 5);
    void *args[3] = {a, c, d};
    if (run1(f, NULL, args)) {
        int bad = 0;
        for (int64_t i = 0; i < n; i++) bad += c[i] != a[i] * 2 || d[i] != 0;
        for (int64_t i = n; i < chunks * 16; i++) bad += d[i] != (float)i;
        CHECK_MSG(bad == 0, "%d wrong", bad);
    }
    compare_interp(f, args, 0, 0, "guard");
    char *ir = ir_text(f, NULL, false);
    CHECK(ir && strstr(ir, "llvm.masked.load") && strstr(ir, "llvm.masked.store"));
    kiln_free(ir);
    guarded_free(&ga), guarded_free(&gc);
    free(d);
    lir_func_free(f);
}

/* ---- strided, gathered, uniform and reversed accesses in a vector loop ---- */

typedef struct stridek {
    lir_buffer *a, *idx, *o1, *o2, *o3, *o4, *s, *r;
} stridek;

static lir_stmt *stride_elem(lir_func *f, ex_expr *i, void *ud) {
    stridek *k = ud;
    ex_builder *eb = &f->eb;
    lir_stmt *s[6] = {
        lir_store(f, k->o1, i, ld(f, k->a, add(f, mul(f, ci(f, 3), i), ci(f, 1)))),
        lir_store(f, k->o2, i, ld(f, k->a, ex_floormod(eb, mul(f, i, i), ci(f, 17)))),
        lir_store(f, k->o3, i, ld(f, k->a, ci(f, 5))),
        lir_store(f, k->o4, i, ld(f, k->a, ex_cast(eb, KILN_I64, ld(f, k->idx, i)))),
        lir_store(f, k->s, mul(f, i, ci(f, 2)), ld(f, k->a, i)),
        lir_store(f, k->r, ex_sub(eb, ci(f, 63), i), ld(f, k->a, i)),
    };
    return lir_seq(f, s, 6);
}

static void test_strided_vectorized(void) {
    enum { N = 64 };
    lir_func *f = lir_func_new("strided");
    stridek k = {lir_arg_new(f, "A", KILN_F32, 3 * N + 1, true), lir_arg_new(f, "Idx", KILN_I32, N, true),
                 lir_arg_new(f, "O1", KILN_F32, N, false), lir_arg_new(f, "O2", KILN_F32, N, false),
                 lir_arg_new(f, "O3", KILN_F32, N, false), lir_arg_new(f, "O4", KILN_F32, N, false),
                 lir_arg_new(f, "S", KILN_F32, 2 * N, false), lir_arg_new(f, "R", KILN_F32, N, false)};
    f->body = elementwise(f, N, NEST_VEC, 16, stride_elem, &k);
    float a[3 * N + 1], o1[N], o2[N], o3[N], o4[N], sv[2 * N], r[N];
    int32_t idx[N];
    for (int i = 0; i < 3 * N + 1; i++) a[i] = (float)i + 0.25f;
    for (int i = 0; i < N; i++) idx[i] = (int32_t)(rnd() % (3 * N + 1));
    memset(sv, 0, sizeof sv);
    void *args[8] = {a, idx, o1, o2, o3, o4, sv, r};
    if (run1(f, NULL, args)) {
        int bad = 0;
        for (int i = 0; i < N; i++) {
            bad += o1[i] != a[3 * i + 1] || o2[i] != a[(i * i) % 17] || o3[i] != a[5] || o4[i] != a[idx[i]];
            bad += sv[2 * i] != a[i] || sv[2 * i + 1] != 0 || r[63 - i] != a[i];
        }
        CHECK_MSG(bad == 0, "%d wrong", bad);
    }
    compare_interp(f, args, 0, 0, "strided");
    char *ir = ir_text(f, NULL, false);
    /* gathering loads go lane by lane (see cg_llvm_vec.c: no 64-bit-index gathers) */
    CHECK(ir && !strstr(ir, "llvm.masked.gather") && strstr(ir, "llvm.masked.scatter"));
    kiln_free(ir);
    lir_func_free(f);
}

/* ---- vectorized loops whose lanes interfere run serially ---- */

static void test_vector_fallback(void) {
    enum { N = 32 };
    lir_func *f = lir_func_new("fallback");
    lir_buffer *x = lir_arg_new(f, "X", KILN_F32, N, true), *acc = lir_arg_new(f, "Acc", KILN_F32, 1, false);
    lir_buffer *p = lir_arg_new(f, "P", KILN_F32, N + 1, false);
    const ex_var *i = ex_var_new(&f->eb, "i", N, false), *j = ex_var_new(&f->eb, "j", N, false);
    /* acc[0] += x[i]: every lane stores the same element */
    lir_stmt *sum = lir_for(f, i, ci(f, 0), ci(f, N), LIR_VECTORIZED,
                            lir_store(f, acc, ci(f, 0), add(f, ld(f, acc, ci(f, 0)), ld(f, x, vr(f, i)))));
    /* p[j+1] = p[j] + x[j]: a prefix sum, each lane reads the previous lane's store */
    lir_stmt *pre = lir_for(f, j, ci(f, 0), ci(f, N), LIR_VECTORIZED,
                            lir_store(f, p, add(f, vr(f, j), ci(f, 1)), add(f, ld(f, p, vr(f, j)), ld(f, x, vr(f, j)))));
    lir_stmt *both[2] = {sum, pre};
    f->body = lir_seq(f, both, 2);
    float xs[N], a = 0, ps[N + 1] = {0};
    float ref = 0, pref[N + 1] = {0};
    for (int k = 0; k < N; k++) xs[k] = (float)(k + 1), ref += xs[k], pref[k + 1] = pref[k] + xs[k];
    void *args[3] = {xs, &a, ps};
    if (run1(f, NULL, args)) {
        CHECK(a == ref);
        CHECK(memcmp(ps, pref, sizeof ps) == 0);
    }
    compare_interp(f, args, 0, 0, "fallback");
    lir_func_free(f);
}

/* ---- loop forms: nested parallel loops, a local buffer shared by the
** threads, big and dynamic unrolled loops, odd and very wide vectors ---- */

static void test_loop_forms(void) {
    enum { N = 24, M = 300 };
    lir_func *f = lir_func_new("forms");
    ex_builder *eb = &f->eb;
    lir_buffer *x = lir_arg_new(f, "X", KILN_F32, N * N, true), *len = lir_arg_new(f, "Len", KILN_I64, 1, true);
    lir_buffer *y = lir_arg_new(f, "Y", KILN_F32, N * N, false), *z = lir_arg_new(f, "Z", KILN_F32, M, false);
    lir_buffer *w = lir_arg_new(f, "W", KILN_F32, 7 * 13, false), *u = lir_arg_new(f, "U", KILN_F32, 128, false);
    lir_buffer *tmp = lir_buffer_new(f, "Tmp", KILN_F32, N * N, LIR_SCOPE_LOCAL);
    const ex_var *i = ex_var_new(eb, "i", N, false), *j = ex_var_new(eb, "j", N, false);
    const ex_var *k = ex_var_new(eb, "k", N, false), *i2 = ex_var_new(eb, "i2", N * N, false);
    ex_expr *ij = add(f, mul(f, vr(f, i), ci(f, N)), vr(f, j));
    /* tmp[i, j] = 2 x[i, j] over parallel i > serial j > parallel k (k writes once per (i, j)) */
    lir_stmt *inner = lir_for(f, k, ci(f, 0), ci(f, 1), LIR_PARALLEL,
                              lir_store(f, tmp, add(f, ij, mul(f, vr(f, k), ci(f, 0))),
                                        ex_mul(eb, ld(f, x, ij), ex_const_float(eb, KILN_F32, 2))));
    lir_stmt *fill = lir_for(f, i, ci(f, 0), ci(f, N), LIR_PARALLEL, lir_for(f, j, ci(f, 0), ci(f, N), LIR_SERIAL, inner));
    /* y = tmp + 1, read by another parallel loop */
    lir_stmt *copy = lir_for(f, i2, ci(f, 0), ci(f, N * N), LIR_PARALLEL,
                             lir_store(f, y, vr(f, i2), add(f, ld(f, tmp, vr(f, i2)), ex_const_float(eb, KILN_F32, 1))));
    lir_stmt *both[2] = {fill, copy};
    lir_stmt *shared = lir_alloc(f, tmp, lir_seq(f, both, 2));
    /* a 300-wide vectorized loop (chunks), unrolled by 100 */
    const ex_var *a = ex_var_new(eb, "a", M, false);
    lir_stmt *wide = lir_for(f, a, ci(f, 0), ci(f, M), LIR_VECTORIZED,
                             lir_store(f, z, vr(f, a), ex_cast(eb, KILN_F32, mul(f, vr(f, a), vr(f, a)))));
    /* 7-lane vectors starting at 3, inside a loop unrolled 13 times */
    const ex_var *r = ex_var_new(eb, "r", 13, false), *c = ex_var_new(eb, "c", 7, false);
    ex_expr *rc = add(f, mul(f, vr(f, r), ci(f, 7)), ex_sub(eb, vr(f, c), ci(f, 3)));
    lir_stmt *odd = lir_for(f, r, ci(f, 0), ci(f, 13), LIR_UNROLLED,
                            lir_for(f, c, ci(f, 3), ci(f, 7), LIR_VECTORIZED, lir_store(f, w, rc, ex_cast(eb, KILN_F32, rc))));
    /* an unrolled loop whose extent is read at run time, and one of 100 */
    const ex_var *d = ex_var_new(eb, "d", 128, false), *e = ex_var_new(eb, "e", 100, false);
    lir_stmt *dyn = lir_for(f, d, ci(f, 0), ld(f, len, ci(f, 0)), LIR_UNROLLED,
                            lir_store(f, u, vr(f, d), ex_const_float(eb, KILN_F32, 5)));
    lir_stmt *big = lir_for(f, e, ci(f, 0), ci(f, 100), LIR_UNROLLED,
                            lir_store(f, u, vr(f, e), add(f, ld(f, u, vr(f, e)), ex_const_float(eb, KILN_F32, 1))));
    lir_stmt *all[5] = {shared, wide, odd, dyn, big};
    f->body = lir_seq(f, all, 5);
    float xs[N * N], ys[N * N], zs[M], ws[7 * 13], us[128];
    int64_t n_len = 128;
    for (int q = 0; q < N * N; q++) xs[q] = rndf(-1, 1);
    void *args[6] = {xs, &n_len, ys, zs, ws, us};
    krt_pool *pool = krt_pool_new(3);
    krt_pool_set_current(pool);
    compare_interp(f, args, 0, 0, "loop forms");
    if (run1(f, NULL, args)) {
        int bad = 0;
        for (int q = 0; q < N * N; q++) bad += ys[q] != xs[q] * 2 + 1;
        for (int q = 0; q < M; q++) bad += zs[q] != (float)(q * q);
        for (int q = 0; q < 7 * 13; q++) bad += ws[q] != (float)q;
        for (int q = 0; q < 128; q++) bad += us[q] != (q < 100 ? 6.0f : 5.0f);
        CHECK_MSG(bad == 0, "%d wrong", bad);
    }
    cg_options o0 = g_opt; /* the same without optimization */
    o0.opt_level = 0;
    memset(ys, 0, sizeof ys);
    if (run1(f, &o0, args)) {
        int bad = 0;
        for (int q = 0; q < N * N; q++) bad += ys[q] != xs[q] * 2 + 1;
        CHECK_MSG(bad == 0, "-O0: %d wrong", bad);
    }
    char *ir = ir_text(f, NULL, false);
    CHECK(ir && strstr(ir, "llvm.loop.unroll.full") && strstr(ir, "llvm.loop.unroll.enable") && strstr(ir, "<7 x float>") &&
          strstr(ir, "<64 x float>") && strstr(ir, "<44 x float>"));
    kiln_free(ir);
    krt_pool_set_current(NULL);
    krt_pool_free(pool);
    lir_func_free(f);
}

/* ---- every dtype through memory: copies and adds ---- */

typedef struct copyk {
    lir_buffer *x, *y, *c, *s;
    kiln_dtype t;
} copyk;

static lir_stmt *copy_elem(lir_func *f, ex_expr *i, void *ud) {
    copyk *k = ud;
    ex_expr *x = ld(f, k->x, i), *y = ld(f, k->y, i);
    ex_expr *sum = k->t == KILN_BOOL ? bin(f, EX_OR, x, y) : add(f, x, y);
    lir_stmt *s[2] = {lir_store(f, k->c, i, x), lir_store(f, k->s, i, sum)};
    return lir_seq(f, s, 2);
}

static void test_each_dtype(void) {
    enum { N = 77 };
    for (int ti = 0; ti < N_TYPES; ti++)
        for (int kind = 0; kind < 3; kind++) {
            kiln_dtype t = k_all_types[ti];
            lir_func *f = lir_func_new("copy");
            copyk k = {lir_arg_new(f, "X", t, N, true), lir_arg_new(f, "Y", t, N, true),
                       lir_arg_new(f, "C", t, N, false), lir_arg_new(f, "S", t, N, false), t};
            f->body = elementwise(f, N, (nest_kind)kind, kind == 1 ? 7 : 16, copy_elem, &k);
            size_t es = kiln_dtype_size(t);
            uint8_t *x = malloc(N * es), *y = malloc(N * es), *c = calloc(N, es), *sm = calloc(N, es);
            for (int i = 0; i < N; i++) {
                if (kiln_dtype_is_float(t)) {
                    kiln_store_f64(t, x, i, rndf(-100, 100));
                    kiln_store_f64(t, y, i, rndf(-100, 100));
                } else if (t == KILN_BOOL) {
                    x[i] = (uint8_t)(rnd() & 1);
                    y[i] = (uint8_t)(rnd() & 1);
                } else {
                    kiln_store_i64(t, x, i, (int64_t)rnd());
                    kiln_store_i64(t, y, i, (int64_t)rnd());
                }
            }
            void *args[4] = {x, y, c, sm};
            if (run1(f, NULL, args)) {
                int bad = memcmp(x, c, N * es) != 0;
                for (int i = 0; i < N; i++) {
                    if (kiln_dtype_is_float(t)) {
                        double a = kiln_load_f64(t, x, i), b = kiln_load_f64(t, y, i);
                        double want = t == KILN_F64 ? a + b : to_dtype(t, (float)a + (float)b);
                        bad += kiln_load_f64(t, sm, i) != want;
                    } else if (t == KILN_BOOL) {
                        bad += sm[i] != (x[i] | y[i]);
                    } else {
                        uint64_t want = wrap(t, (uint64_t)kiln_load_i64(t, x, i) + (uint64_t)kiln_load_i64(t, y, i));
                        bad += wrap(t, (uint64_t)kiln_load_i64(t, sm, i)) != want;
                    }
                }
                CHECK_MSG(bad == 0, "%s, nest %d: %d wrong", kiln_dtype_name(t), kind, bad);
            }
            compare_interp(f, args, 0, 0, kiln_dtype_name(t));
            free(x), free(y), free(c), free(sm);
            lir_func_free(f);
        }
}

/* ---- unary functions ---- */

static const ex_fn k_float_fns[] = {EX_NEG,  EX_ABS,   EX_SIGN,  EX_EXP,   EX_LOG,   EX_SQRT,  EX_RSQRT,
                                    EX_RECIP, EX_TANH, EX_SIGMOID, EX_ERF, EX_SIN,   EX_COS,   EX_TAN,
                                    EX_ASIN, EX_ACOS,  EX_ATAN,  EX_SINH,  EX_COSH,  EX_ASINH, EX_ACOSH,
                                    EX_ATANH, EX_FLOOR, EX_CEIL, EX_ROUND_EVEN, EX_ISNAN, EX_ISINF};
#define N_FLOAT_FNS ((int)(sizeof k_float_fns / sizeof k_float_fns[0]))

static double ref_fn(ex_fn fn, double x) {
    switch (fn) {
    case EX_NEG: return -x;
    case EX_ABS: return fabs(x);
    case EX_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x;
    case EX_EXP: return exp(x);
    case EX_LOG: return log(x);
    case EX_SQRT: return sqrt(x);
    case EX_RSQRT: return 1 / sqrt(x);
    case EX_RECIP: return 1 / x;
    case EX_TANH: return tanh(x);
    case EX_SIGMOID: return 1 / (1 + exp(-x));
    case EX_ERF: return erf(x);
    case EX_SIN: return sin(x);
    case EX_COS: return cos(x);
    case EX_TAN: return tan(x);
    case EX_ASIN: return asin(x);
    case EX_ACOS: return acos(x);
    case EX_ATAN: return atan(x);
    case EX_SINH: return sinh(x);
    case EX_COSH: return cosh(x);
    case EX_ASINH: return asinh(x);
    case EX_ACOSH: return acosh(x);
    case EX_ATANH: return atanh(x);
    case EX_FLOOR: return floor(x);
    case EX_CEIL: return ceil(x);
    case EX_ROUND_EVEN: return nearbyint(x);
    case EX_ISNAN: return isnan(x);
    case EX_ISINF: return isinf(x) != 0;
    default: return NAN;
    }
}

typedef struct unk {
    lir_buffer *x, *out[N_FLOAT_FNS];
} unk;

static lir_stmt *unary_elem(lir_func *f, ex_expr *i, void *ud) {
    unk *k = ud;
    lir_stmt *s[N_FLOAT_FNS];
    for (int o = 0; o < N_FLOAT_FNS; o++) s[o] = lir_store(f, k->out[o], i, ex_unary(&f->eb, k_float_fns[o], ld(f, k->x, i)));
    return lir_seq(f, s, N_FLOAT_FNS);
}

static void check_unary(kiln_dtype t, nest_kind kind) {
    enum { N = 300 };
    static const double edge[] = {0, -0.0, 0.5, -0.5, 1.5, 2.5, -2.5, 1, -1, 3, INFINITY, -INFINITY, NAN, 100, -100};
    lir_func *f = lir_func_new("unary");
    unk k;
    k.x = lir_arg_new(f, "X", t, N, true);
    for (int o = 0; o < N_FLOAT_FNS; o++)
        k.out[o] = lir_arg_new(f, ex_fn_name(k_float_fns[o]), k_float_fns[o] >= EX_ISNAN ? KILN_BOOL : t, N, false);
    f->body = elementwise(f, N, kind, 16, unary_elem, &k);
    size_t es = kiln_dtype_size(t);
    uint8_t *x = malloc(N * es), *out[N_FLOAT_FNS];
    void *args[1 + N_FLOAT_FNS] = {x};
    for (int o = 0; o < N_FLOAT_FNS; o++) args[1 + o] = out[o] = calloc(N, 8);
    for (int i = 0; i < N; i++) kiln_store_f64(t, x, i, i < (int)(sizeof edge / sizeof edge[0]) ? edge[i] : rndf(-4, 4));
    /* f32: libm in f32 for scalars, kiln's approximations for vectors */
    double tol = t == KILN_F64 ? 1e-15 : t == KILN_F32 ? 4e-7 : t == KILN_BF16 ? 1.6e-2 : 2e-3;
    if (run1(f, NULL, args)) {
        for (int o = 0; o < N_FLOAT_FNS; o++) {
            int bad = 0, first = -1;
            for (int i = 0; i < N; i++) {
                double xv = kiln_load_f64(t, x, i);
                double want = ref_fn(k_float_fns[o], xv);
                double got = k_float_fns[o] >= EX_ISNAN ? out[o][i] : kiln_load_f64(t, out[o], i);
                if (k_float_fns[o] < EX_ISNAN) want = to_dtype(t, want);
                bool ok = same_float(got, want, tol) || fabs(got - want) < tol * 1e-2;
                if (!ok && !bad++) first = i;
            }
            CHECK_MSG(bad == 0, "%s %s (%s): %d wrong, first x=%g got %g want %g", kiln_dtype_name(t),
                      ex_fn_name(k_float_fns[o]), kind == NEST_SERIAL ? "scalar" : "vector", bad,
                      first >= 0 ? kiln_load_f64(t, x, first) : 0.0,
                      first >= 0 ? (k_float_fns[o] >= EX_ISNAN ? out[o][first] : kiln_load_f64(t, out[o], first)) : 0.0,
                      first >= 0 ? ref_fn(k_float_fns[o], kiln_load_f64(t, x, first)) : 0.0);
        }
    }
    /* the interpreter calls libm (in f32 for f32 and narrower) */
    compare_interp(f, args, tol, t == KILN_F16 ? 1.2e-7 : 1e-37, kiln_dtype_name(t));
    free(x);
    for (int o = 0; o < N_FLOAT_FNS; o++) free(out[o]);
    lir_func_free(f);
}

static void test_unary(void) {
    static const kiln_dtype types[] = {KILN_F32, KILN_F64, KILN_F16, KILN_BF16};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        check_unary(types[i], NEST_SERIAL);
        check_unary(types[i], NEST_VEC);
    }
}

static void test_int_unary(void) {
    static const kiln_dtype types[] = {KILN_I8, KILN_I32, KILN_I64, KILN_U8, KILN_U64, KILN_BOOL};
    static const ex_fn fns[] = {EX_NEG, EX_NOT, EX_ABS, EX_SIGN, EX_FLOOR, EX_ISNAN};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        kiln_dtype t = types[ti];
        enum { N = 40 };
        lir_func *f = lir_func_new("iunary");
        lir_buffer *x = lir_arg_new(f, "X", t, N, true), *out[6];
        for (int o = 0; o < 6; o++) out[o] = lir_arg_new(f, ex_fn_name(fns[o]), fns[o] == EX_ISNAN ? KILN_BOOL : t, N, false);
        const ex_var *i = ex_var_new(&f->eb, "i", N, false);
        lir_stmt *s[6];
        int n_s = 0;
        for (int o = 0; o < 6; o++)
            if (!(t == KILN_BOOL && fns[o] == EX_NEG))
                s[n_s++] = lir_store(f, out[o], vr(f, i), ex_unary(&f->eb, fns[o], ld(f, x, vr(f, i))));
        f->body = lir_for(f, i, ci(f, 0), ci(f, N), LIR_VECTORIZED, lir_seq(f, s, n_s));
        uint64_t edge[16];
        int ne = 2;
        if (t == KILN_BOOL) edge[0] = 0, edge[1] = 1;
        else int_edge_values(t, edge, &ne);
        uint8_t *xb = calloc(N, 8), *ob[6];
        void *args[7] = {xb};
        for (int o = 0; o < 6; o++) args[1 + o] = ob[o] = calloc(N, 8);
        for (int k = 0; k < N; k++) kiln_store_i64(t, xb, k, (int64_t)edge[k % ne]);
        if (run1(f, NULL, args)) {
            int bad = 0;
            bool sgn = t != KILN_BOOL && kiln_dtype_is_signed(t);
            for (int k = 0; k < N; k++) {
                uint64_t v = t == KILN_BOOL ? xb[k] : wrap(t, (uint64_t)kiln_load_i64(t, xb, k));
                uint64_t want[6] = {wrap(t, -v), t == KILN_BOOL ? !v : wrap(t, ~v),
                                    sgn && (int64_t)v < 0 ? wrap(t, -v) : v,
                                    sgn ? (uint64_t)(((int64_t)v > 0) - ((int64_t)v < 0)) : v != 0, v, 0};
                if (t == KILN_BOOL) want[3] = v;
                for (int o = 0; o < 6; o++) {
                    if (t == KILN_BOOL && fns[o] == EX_NEG) continue;
                    uint64_t got = fns[o] == EX_ISNAN || t == KILN_BOOL ? ob[o][k] : wrap(t, (uint64_t)kiln_load_i64(t, ob[o], k));
                    bad += got != wrap(t == KILN_BOOL || fns[o] == EX_ISNAN ? KILN_U8 : t, want[o]);
                }
            }
            CHECK_MSG(bad == 0, "%s: %d wrong", kiln_dtype_name(t), bad);
        }
        compare_interp(f, args, 0, 0, kiln_dtype_name(t));
        free(xb);
        for (int o = 0; o < 6; o++) free(ob[o]);
        lir_func_free(f);
    }
}

/* ---- accuracy of the vector math against libm in double ---- */

typedef struct acc_stats {
    double max_ulp, max_rel, worst_x;
    long n, special_bad;
} acc_stats;

static double ulp_of(float r) {
    float a = fabsf(r);
    if (a < FLT_MIN) return ldexp(1.0, -149);
    int e;
    frexpf(a, &e);
    return ldexp(1.0, e - 24);
}

static void account(acc_stats *st, float x, float got, double ref) {
    st->n++;
    float rf = (float)ref;
    if (isnan(ref) || isnan(got)) {
        st->special_bad += !(isnan(ref) && isnan(got));
        return;
    }
    if (isinf(rf) || isinf(got)) { /* past FLT_MAX: within an ulp of it is fine */
        if (got != rf && !(isinf(rf) && fabs(got) == FLT_MAX) && !(isinf(got) && fabs(rf) == FLT_MAX)) st->special_bad++;
        return;
    }
    double ulp = fabs(got - ref) / ulp_of(rf);
    if (ulp > st->max_ulp) st->max_ulp = ulp, st->worst_x = x;
    if (fabs(ref) >= FLT_MIN) st->max_rel = fmax(st->max_rel, fabs(got - ref) / fabs(ref));
}

static double ref_math(ex_fn fn, double x) {
    switch (fn) {
    case EX_EXP: return exp(x);
    case EX_LOG: return log(x);
    case EX_TANH: return tanh(x);
    case EX_SIGMOID: return 1.0 / (1.0 + exp(-x));
    default: return erf(x);
    }
}

static void test_vector_math_accuracy(void) {
    static const ex_fn fns[] = {EX_EXP, EX_LOG, EX_TANH, EX_SIGMOID, EX_ERF};
    static const float ranges[][2] = {{-104, 89}, {0, 100}, {-10, 10}, {-105, 105}, {-5, 5}};
    static const float edge[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, 1e-45f, -1e-45f, 1e-40f, FLT_MIN,
                                 FLT_MAX, -FLT_MAX, 88.7228394f, 88.72284f, 88.8f, -87.33655f, -87.4f, -103.97f,
                                 -104.0f, -150.0f, 0.625f, -0.625f, 0.6249999f, 0.9f, 0.8999999f, 3.93f, 3.83f,
                                 1.0f, 0.70710677f, 0.7071068f, 1.4142135f, 2.0f, 0.5f, 9.01f, -9.01f, 44.4f, 1e-20f};
    enum { N = 1 << 20 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    for (size_t fi = 0; fi < sizeof fns / sizeof fns[0]; fi++) {
        lir_func *f = lir_func_new("vmath");
        lir_buffer *xb = lir_arg_new(f, "X", KILN_F32, N, true), *yb = lir_arg_new(f, "Y", KILN_F32, N, false);
        const ex_var *o = ex_var_new(&f->eb, "o", N / 16, false), *l = ex_var_new(&f->eb, "l", 16, false);
        ex_expr *i = add(f, mul(f, vr(f, o), ci(f, 16)), vr(f, l));
        f->body = lir_for(f, o, ci(f, 0), ci(f, N / 16), LIR_SERIAL,
                          lir_for(f, l, ci(f, 0), ci(f, 16), LIR_VECTORIZED,
                                  lir_store(f, yb, i, ex_unary(&f->eb, fns[fi], ld(f, xb, i)))));
        for (int k = 0; k < N; k++) {
            if (k < (int)(sizeof edge / sizeof edge[0])) x[k] = edge[k];
            else if (k % 2) {
                uint32_t bits = (uint32_t)rnd(); /* anywhere among all floats */
                memcpy(&x[k], &bits, 4);
            } else {
                x[k] = rndf(ranges[fi][0], ranges[fi][1]);
            }
        }
        void *args[2] = {x, y};
        if (run1(f, NULL, args)) {
            acc_stats st = {0};
            for (int k = 0; k < N; k++) account(&st, x[k], y[k], ref_math(fns[fi], x[k]));
            printf("vector %-7s: %ld points, max error %.2f ulp (at x=%.9g), max relative error %.3g\n",
                   ex_fn_name(fns[fi]), st.n, st.max_ulp, st.worst_x, st.max_rel);
            CHECK_MSG(st.special_bad == 0, "%s: %ld special values wrong", ex_fn_name(fns[fi]), st.special_bad);
            CHECK_MSG(st.max_ulp <= 2.5 && st.max_rel <= 2e-7, "%s: %.2f ulp, %.3g relative", ex_fn_name(fns[fi]),
                      st.max_ulp, st.max_rel);
        }
        lir_func_free(f);
    }
    free(x), free(y);
}

/* ---- contraction into FMA, and what the target gets ---- */

typedef struct fmak {
    lir_buffer *a, *b, *c, *o, *o2;
} fmak;

static lir_stmt *fma_elem(lir_func *f, ex_expr *i, void *ud) {
    fmak *k = ud;
    ex_expr *ab = mul(f, ld(f, k->a, i), ld(f, k->b, i));
    lir_stmt *s[2] = {lir_store(f, k->o, i, add(f, ab, ld(f, k->c, i))),
                      lir_store(f, k->o2, i, ex_sub(&f->eb, ld(f, k->c, i), ab))};
    return lir_seq(f, s, 2);
}

static void test_fast_math_fma(void) {
    enum { N = 256 };
    for (int fast = 0; fast < 2; fast++) {
        cg_options o = g_opt;
        o.fast_math = fast;
        lir_func *f = lir_func_new("fmadd");
        fmak k = {lir_arg_new(f, "A", KILN_F32, N, true), lir_arg_new(f, "B", KILN_F32, N, true),
                  lir_arg_new(f, "C", KILN_F32, N, true), lir_arg_new(f, "O", KILN_F32, N, false),
                  lir_arg_new(f, "O2", KILN_F32, N, false)};
        f->body = elementwise(f, N, NEST_VEC, 16, fma_elem, &k);
        float a[N], b[N], c[N], out[N], out2[N];
        for (int i = 0; i < N; i++) a[i] = rndf(-1, 1), b[i] = rndf(-1, 1), c[i] = rndf(-1, 1);
        void *args[5] = {a, b, c, out, out2};
        bool has_fma = cg_target_has(&o.target, "fma");
        if (run1(f, &o, args)) {
            int bad = 0;
            for (int i = 0; i < N; i++) {
                bad += out[i] != (fast && has_fma ? fmaf(a[i], b[i], c[i]) : a[i] * b[i] + c[i]);
                bad += out2[i] != (fast && has_fma ? fmaf(-a[i], b[i], c[i]) : c[i] - a[i] * b[i]);
            }
            CHECK_MSG(bad == 0, "fast_math=%d: %d wrong", fast, bad);
        }
        compare_interp(f, args, 1e-6, 1e-7, "fmadd");
        char *ir = ir_text(f, &o, true);
        CHECK(ir && (strstr(ir, "fmuladd") != NULL) == fast);
        kiln_free(ir);
        char *as = asm_text(f, &o);
        if (as && fast && has_fma) {
            CHECK(strstr(as, "vfmadd") != NULL);
            CHECK(strstr(as, o.target.vector_bits == 512 ? "zmm" : "ymm") != NULL);
        }
        kiln_free(as);
        lir_func_free(f);
    }
}

/* ---- object files ---- */

static void test_object(void) {
    lir_func *fs[2] = {add_kernel("obj_add", KILN_F32, 100, NEST_PAR_VEC, 16), add_kernel("obj_add2", KILN_F64, 10, NEST_SERIAL, 1)};
    void *bytes = NULL;
    size_t size = 0;
    CHECK_MSG(cg_llvm_object(g_ctx, fs, 2, &g_opt, &bytes, &size) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (bytes) {
        const unsigned char *p = bytes;
        CHECK(size > 64 && memcmp(p, "\x7f" "ELF", 4) == 0);
        uint16_t type;
        memcpy(&type, p + 16, 2);
        CHECK(type == 1); /* ET_REL */
        CHECK(memmem(bytes, size, "obj_add2", 8) != NULL && memmem(bytes, size, "krt_parallel_for", 16) != NULL);
    }
    kiln_free(bytes);
    char *ir = NULL;
    CHECK(cg_llvm_ir_text(g_ctx, fs, 2, &g_opt, false, &ir) == KILN_OK);
    CHECK(ir && strstr(ir, "define void @obj_add(ptr") && strstr(ir, "noalias"));
    kiln_free(ir);
    cg_options narrow = g_opt; /* the caller may ask for narrower vectors */
    narrow.target.vector_bits = 256;
    ir = NULL;
    CHECK(cg_llvm_ir_text(g_ctx, fs, 1, &narrow, true, &ir) == KILN_OK);
    CHECK(ir && strstr(ir, "\"prefer-vector-width\"=\"256\""));
    kiln_free(ir);
    lir_func_free(fs[0]);
    lir_func_free(fs[1]);
}

/* ---- errors: clear messages, no crash, nothing leaked ---- */

static void expect_error(lir_func *const *fs, int n, kiln_status want, const char *needle) {
    long live = kiln_mem_live();
    cg_module *m = NULL;
    kiln_status s = cg_llvm_jit(g_ctx, fs, n, &g_opt, &m);
    CHECK_MSG(s == want && m == NULL, "status %s (%s), wanted %s", kiln_status_name(s), kiln_errmsg(g_ctx),
              kiln_status_name(want));
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), needle) != NULL, "message '%s' lacks '%s'", kiln_errmsg(g_ctx), needle);
    CHECK(kiln_mem_live() == live);
}

static lir_func *one_store(const char *name, kiln_dtype t, lir_loop_kind k) {
    lir_func *f = lir_func_new(name);
    lir_buffer *x = lir_arg_new(f, "X", t, 8, false);
    const ex_var *i = ex_var_new(&f->eb, "i", 8, false);
    f->body = lir_for(f, i, ci(f, 0), ci(f, 8), k, lir_store(f, x, vr(f, i), ex_const_int(&f->eb, t, 1)));
    return f;
}

static void test_errors(void) {
    lir_func *f = one_store("gpu", KILN_I32, LIR_GPU_BLOCK_X);
    expect_error(&f, 1, KILN_ERR_UNSUPPORTED, "blockIdx.x");
    lir_func_free(f);

    f = one_store("lowp", KILN_F8E4M3FN, LIR_SERIAL);
    expect_error(&f, 1, KILN_ERR_UNSUPPORTED, "f8");
    lir_func_free(f);

    lir_func *two[2] = {one_store("same", KILN_I32, LIR_SERIAL), one_store("same", KILN_I32, LIR_SERIAL)};
    expect_error(two, 2, KILN_ERR_INVALID, "two kernels are named 'same'");
    lir_func_free(two[0]);
    lir_func_free(two[1]);

    f = one_store("9lives", KILN_I32, LIR_SERIAL);
    expect_error(&f, 1, KILN_ERR_INVALID, "not a C identifier");
    lir_func_free(f);

    f = lir_func_new("barrier");
    f->body = lir_barrier(f);
    expect_error(&f, 1, KILN_ERR_UNSUPPORTED, "barrier");
    lir_func_free(f);

    f = lir_func_new("unbound"); /* a variable no loop binds */
    lir_buffer *x = lir_arg_new(f, "X", KILN_I32, 8, false);
    const ex_var *v = ex_var_new(&f->eb, "v", 8, false);
    f->body = lir_store(f, x, vr(f, v), ex_const_int(&f->eb, KILN_I32, 0));
    expect_error(&f, 1, KILN_ERR_INVALID, "variable 'v'");
    lir_func_free(f);

    f = lir_func_new("noalloc"); /* a local buffer used outside its allocation */
    lir_buffer *t = lir_buffer_new(f, "T", KILN_F32, 4, LIR_SCOPE_LOCAL);
    f->body = lir_store(f, t, ci(f, 0), ex_const_float(&f->eb, KILN_F32, 0));
    expect_error(&f, 1, KILN_ERR_INVALID, "buffer 'T'");
    lir_func_free(f);

    f = lir_func_new("bigalloc");
    t = lir_buffer_new(f, "Huge", KILN_F64, 1 << 22, LIR_SCOPE_LOCAL);
    f->body = lir_alloc(f, t, lir_store(f, t, ci(f, 0), ex_const_float(&f->eb, KILN_F64, 0)));
    expect_error(&f, 1, KILN_ERR_UNSUPPORTED, "Huge");
    lir_func_free(f);

    f = lir_func_new("fshift"); /* bitwise operators have no meaning on floats */
    x = lir_arg_new(f, "X", KILN_F32, 1, false);
    ex_expr *one = ex_const_float(&f->eb, KILN_F32, 1);
    f->body = lir_store(f, x, ci(f, 0), bin(f, EX_SHL, one, one));
    expect_error(&f, 1, KILN_ERR_UNSUPPORTED, "<<");
    lir_func_free(f);

    f = lir_func_new("broken");
    f->eb.failed = true;
    f->body = lir_barrier(f);
    expect_error(&f, 1, KILN_ERR_INVALID, "not built completely");
    lir_func_free(f);

    cg_options o = g_opt;
    strcpy(o.target.triple, "no-such-arch-none");
    cg_module *m = NULL;
    f = one_store("ok", KILN_I32, LIR_SERIAL);
    CHECK(cg_llvm_jit(g_ctx, &f, 1, &o, &m) == KILN_ERR_UNSUPPORTED && m == NULL);
    lir_func_free(f);
    cg_module_free(NULL);
    CHECK(cg_module_lookup(NULL, "x") == NULL);
}

/* ---- a register-blocked GEMM: the code the default schedules will produce ---- */

typedef struct gemm {
    int64_t m, n, k, mr, nr;
    lir_buffer *a, *b, *c, *acc;
    const ex_var *io, *jo, *kk, *i;
} gemm;

static ex_expr *acc_ix(lir_func *f, gemm *g, const ex_var *j) { return add(f, mul(f, vr(f, g->i), ci(f, g->nr)), vr(f, j)); }

static lir_stmt *gemm_zero_j(lir_func *f, const ex_var *j, void *ud) {
    gemm *g = ud;
    return lir_store(f, g->acc, acc_ix(f, g, j), ex_const_float(&f->eb, KILN_F32, 0));
}

static lir_stmt *gemm_fma_j(lir_func *f, const ex_var *j, void *ud) {
    gemm *g = ud;
    ex_expr *row = add(f, mul(f, vr(f, g->io), ci(f, g->mr)), vr(f, g->i));
    ex_expr *a = ld(f, g->a, add(f, mul(f, row, ci(f, g->k)), vr(f, g->kk)));
    ex_expr *col = add(f, mul(f, vr(f, g->jo), ci(f, g->nr)), vr(f, j));
    ex_expr *b = ld(f, g->b, add(f, mul(f, vr(f, g->kk), ci(f, g->n)), col));
    return lir_store(f, g->acc, acc_ix(f, g, j), add(f, ld(f, g->acc, acc_ix(f, g, j)), mul(f, a, b)));
}

static lir_stmt *gemm_out_j(lir_func *f, const ex_var *j, void *ud) {
    gemm *g = ud;
    ex_expr *row = add(f, mul(f, vr(f, g->io), ci(f, g->mr)), vr(f, g->i));
    ex_expr *col = add(f, mul(f, vr(f, g->jo), ci(f, g->nr)), vr(f, j));
    return lir_store(f, g->c, add(f, mul(f, row, ci(f, g->n)), col), ld(f, g->acc, acc_ix(f, g, j)));
}

static lir_stmt *(*g_gemm_inner)(lir_func *, const ex_var *, void *);

static lir_stmt *gemm_i(lir_func *f, const ex_var *i, void *ud) {
    gemm *g = ud;
    g->i = i;
    return loop(f, "j", 0, g->nr, LIR_VECTORIZED, NULL, g_gemm_inner, g);
}

static lir_stmt *gemm_rows(lir_func *f, gemm *g, lir_stmt *(*inner)(lir_func *, const ex_var *, void *)) {
    g_gemm_inner = inner;
    return loop(f, "i", 0, g->mr, LIR_UNROLLED, NULL, gemm_i, g);
}

static lir_stmt *gemm_k(lir_func *f, const ex_var *k, void *ud) {
    gemm *g = ud;
    g->kk = k;
    return gemm_rows(f, g, gemm_fma_j);
}

static lir_stmt *gemm_jo(lir_func *f, const ex_var *jo, void *ud) {
    gemm *g = ud;
    g->jo = jo;
    lir_stmt *s[3];
    s[0] = gemm_rows(f, g, gemm_zero_j);
    s[1] = loop(f, "k", 0, g->k, LIR_SERIAL, NULL, gemm_k, g);
    s[2] = gemm_rows(f, g, gemm_out_j);
    return lir_alloc(f, g->acc, lir_seq(f, s, 3));
}

static lir_stmt *gemm_io(lir_func *f, const ex_var *io, void *ud) {
    gemm *g = ud;
    g->io = io;
    return loop(f, "jo", 0, g->n / g->nr, LIR_SERIAL, NULL, gemm_jo, g);
}

static lir_func *gemm_kernel(int64_t size, int64_t mr, int64_t nr) {
    lir_func *f = lir_func_new("gemm");
    gemm g = {.m = size, .n = size, .k = size, .mr = mr, .nr = nr};
    g.a = lir_arg_new(f, "A", KILN_F32, size * size, true);
    g.b = lir_arg_new(f, "B", KILN_F32, size * size, true);
    g.c = lir_arg_new(f, "C", KILN_F32, size * size, false);
    g.a->align = g.b->align = g.c->align = 64;
    g.acc = lir_buffer_new(f, "acc", KILN_F32, mr * nr, LIR_SCOPE_LOCAL);
    f->body = loop(f, "io", 0, size / mr, LIR_PARALLEL, NULL, gemm_io, &g);
    return f;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_gemm_perf(void) {
    enum { S = 512 };
    static const int64_t tiles[][2] = {{4, 32}, {8, 32}, {4, 64}};
    float *a = aligned_alloc(64, sizeof(float) * S * S), *b = aligned_alloc(64, sizeof(float) * S * S);
    float *c = aligned_alloc(64, sizeof(float) * S * S);
    for (int i = 0; i < S * S; i++) a[i] = rndf(-1, 1), b[i] = rndf(-1, 1);
    lir_func *small = gemm_kernel(64, 4, 32); /* the same nest, checked against the interpreter */
    float *sa = malloc(sizeof(float) * 64 * 64), *sb = malloc(sizeof(float) * 64 * 64), *sc = malloc(sizeof(float) * 64 * 64);
    for (int i = 0; i < 64 * 64; i++) sa[i] = rndf(-1, 1), sb[i] = rndf(-1, 1);
    void *sargs[3] = {sa, sb, sc};
    compare_interp(small, sargs, 1e-4, 1e-4, "gemm 64");
    free(sa), free(sb), free(sc);
    lir_func_free(small);
    krt_pool *pool = krt_pool_new((int)sysconf(_SC_NPROCESSORS_ONLN));
    for (size_t t = 0; t < sizeof tiles / sizeof tiles[0]; t++) {
        if (S % tiles[t][0]) continue;
        lir_func *f = gemm_kernel(S, tiles[t][0], tiles[t][1]);
        cg_module *m = jit(&f, 1, NULL);
        cg_kernel_fn fn = m ? cg_module_lookup(m, "gemm") : NULL;
        if (fn) {
            void *args[3] = {a, b, c};
            double best[2] = {1e30, 1e30};
            for (int threads = 0; threads < 2; threads++) {
                krt_pool_set_current(threads ? pool : NULL);
                for (int rep = 0; rep < 6; rep++) {
                    double t0 = now_s();
                    fn(args);
                    best[threads] = fmin(best[threads], now_s() - t0);
                }
            }
            krt_pool_set_current(NULL);
            double worst = 0;
            for (int s = 0; s < 200; s++) {
                int i = (int)(rnd() % S), j = (int)(rnd() % S);
                double ref = 0;
                for (int k = 0; k < S; k++) ref += (double)a[i * S + k] * b[k * S + j];
                worst = fmax(worst, fabs(ref - c[i * S + j]));
            }
            CHECK_MSG(worst < 1e-3, "gemm %lldx%lld tile: error %g", (long long)tiles[t][0], (long long)tiles[t][1], worst);
            double flop = 2.0 * S * S * S;
            printf("gemm %dx%dx%d f32, %lldx%lld register tile: %.1f GFLOP/s on 1 thread, %.1f GFLOP/s on %d threads\n",
                   S, S, S, (long long)tiles[t][0], (long long)tiles[t][1], flop / best[0] * 1e-9, flop / best[1] * 1e-9,
                   krt_pool_threads(pool));
        }
        if (t == 0) {
            char *as = asm_text(f, NULL);
            if (as && getenv("KILN_CG_DUMP_ASM")) fputs(as, stderr); /* to read the micro-kernel */
            if (as && cg_target_has(&g_opt.target, "fma")) {
                CHECK(strstr(as, g_opt.target.vector_bits == 512 ? "vfmadd231ps\t(%r" : "vfmadd231ps") ||
                      strstr(as, g_opt.target.vector_bits == 512 ? "zmm" : "ymm"));
                CHECK(strstr(as, "vfmadd") != NULL);
            }
            kiln_free(as);
        }
        cg_module_free(m);
        lir_func_free(f);
    }
    krt_pool_free(pool);
    free(a), free(b), free(c);
}

static void test_setup(void) {
    CHECK(kiln_ctx_new(&g_ctx) == KILN_OK);
    cg_options_default(&g_opt);
    CHECK(g_opt.target.triple[0] != 0);
}

static void test_teardown(void) {
    kiln_ctx_free(g_ctx);
    g_ctx = NULL;
}

TEST_MAIN(T(test_setup), T(test_host), T(test_add_f32), T(test_matmul_parallel), T(test_reduction), T(test_int_ops), T(test_bool_ops),
          T(test_float_ops), T(test_casts), T(test_half_conversions), T(test_select_lazy), T(test_guard_vectorized),
          T(test_strided_vectorized), T(test_vector_fallback), T(test_loop_forms), T(test_each_dtype), T(test_unary), T(test_int_unary),
          T(test_vector_math_accuracy), T(test_fast_math_fma), T(test_object), T(test_errors), T(test_gemm_perf),
          T(test_teardown))
