/*
** test_sched.c — schedule traces and their lowering: the text form round
** trip, the default nest against hand-written references, random valid
** traces against the default nest (run on the loop-IR interpreter), GPU
** style schedules, packing, and clear errors for invalid traces.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tir_matmul.h"
#include "ir/ctx.h"
#include "ir/mem.h"
#include "ir/sched.h"
#include "ir/tensor.h"

static kiln_ctx *g_ctx;

/* ---- functions ---- */

static ex_expr *ax(tir_func *f, const tir_stage *s, int d) { return ex_varref(&f->eb, s->axes[d]); }
static ex_expr *cf(tir_func *f, double v) { return ex_const_float(&f->eb, KILN_F32, v); }
static ex_expr *ci(tir_func *f, int64_t v) { return ex_int(&f->eb, v); }

static void name_axes(tir_stage *s, const char *const *names) {
    for (int d = 0; d < s->n_axes; d++) s->axes[d]->name = names[d];
}

/* B = X*2 + 1; C[i, j] = B[i, j]*2 - B[i, 18 - j] + X[i, j] */
static tir_func *make_chain(void) {
    tir_func *f = tir_func_new("chain");
    ex_builder *b = &f->eb;
    int64_t d[2] = {37, 19};
    tir_tensor *X = tir_placeholder(f, "X", KILN_F32, 2, d, NULL);
    tir_stage *B = tir_stage_new(f, "B", KILN_F32, 2, d, TIR_TAG_ELEMWISE);
    name_axes(B, (const char *[]){"i", "j"});
    ex_expr *ix[2] = {ax(f, B, 0), ax(f, B, 1)};
    B->body = ex_add(b, ex_mul(b, ex_load_tensor(b, X, ix), cf(f, 2)), cf(f, 1));
    tir_stage *C = tir_stage_new(f, "C", KILN_F32, 2, d, TIR_TAG_INJECTIVE);
    name_axes(C, (const char *[]){"i", "j"});
    ex_expr *c0[2] = {ax(f, C, 0), ax(f, C, 1)}, *c1[2] = {ax(f, C, 0), ex_sub(b, ci(f, 18), ax(f, C, 1))};
    ex_expr *x0[2] = {ax(f, C, 0), ax(f, C, 1)};
    C->body = ex_add(b, ex_sub(b, ex_mul(b, ex_load_tensor(b, B->out, c0), cf(f, 2)), ex_load_tensor(b, B->out, c1)),
                     ex_load_tensor(b, X, x0));
    tir_mark_output(f, C->out);
    return f;
}

/* mx = max_j X; e = exp(X - mx); s = sum_j e; out = e / s */
static tir_func *make_softmax(int64_t R, int64_t N) {
    tir_func *f = tir_func_new("softmax");
    ex_builder *b = &f->eb;
    int64_t d[2] = {R, N};
    tir_tensor *X = tir_placeholder(f, "X", KILN_F32, 2, d, NULL);
    tir_stage *mx = tir_stage_new(f, "mx", KILN_F32, 1, d, TIR_TAG_REDUCE);
    name_axes(mx, (const char *[]){"i"});
    ex_var *j = tir_stage_add_raxis(f, mx, "j", N);
    ex_expr *xi[2] = {ax(f, mx, 0), ex_varref(b, j)};
    mx->body = ex_reduce(b, EX_RMAX, ex_load_tensor(b, X, xi), (const ex_var *const *)&j, 1,
                         ex_combiner_identity(b, EX_RMAX, KILN_F32));
    tir_stage *e = tir_stage_new(f, "e", KILN_F32, 2, d, TIR_TAG_ELEMWISE);
    name_axes(e, (const char *[]){"i", "j"});
    ex_expr *ei[2] = {ax(f, e, 0), ax(f, e, 1)}, *mi[1] = {ax(f, e, 0)};
    e->body = ex_unary(b, EX_EXP, ex_sub(b, ex_load_tensor(b, X, ei), ex_load_tensor(b, mx->out, mi)));
    tir_stage *s = tir_stage_new(f, "s", KILN_F32, 1, d, TIR_TAG_REDUCE);
    name_axes(s, (const char *[]){"i"});
    ex_var *j2 = tir_stage_add_raxis(f, s, "j", N);
    ex_expr *si[2] = {ax(f, s, 0), ex_varref(b, j2)};
    s->body = ex_reduce(b, EX_SUM, ex_load_tensor(b, e->out, si), (const ex_var *const *)&j2, 1, cf(f, 0));
    tir_stage *o = tir_stage_new(f, "out", KILN_F32, 2, d, TIR_TAG_ELEMWISE);
    name_axes(o, (const char *[]){"i", "j"});
    ex_expr *oi[2] = {ax(f, o, 0), ax(f, o, 1)}, *os[1] = {ax(f, o, 0)};
    o->body = ex_binary(b, EX_DIV, ex_load_tensor(b, e->out, oi), ex_load_tensor(b, s->out, os));
    tir_mark_output(f, o->out);
    return f;
}

/* C = A x B; T = C + bias[j]; R = max(T, 0): a GEMM with its epilogue */
static tir_func *make_mm_relu(void) {
    tir_func *f = test_tir_matmul(37, 29, 13, NULL);
    ex_builder *b = &f->eb;
    f->n_outputs = 0;
    tir_tensor *bias = tir_placeholder(f, "bias", KILN_F32, 1, (int64_t[]){29}, NULL);
    tir_stage *C = f->stages[0];
    tir_stage *T = tir_stage_new(f, "T", KILN_F32, 2, C->out->dims, TIR_TAG_ELEMWISE);
    name_axes(T, (const char *[]){"i", "j"});
    ex_expr *ti[2] = {ax(f, T, 0), ax(f, T, 1)}, *bi[1] = {ax(f, T, 1)};
    T->body = ex_add(b, ex_load_tensor(b, C->out, ti), ex_load_tensor(b, bias, bi));
    tir_stage *R = tir_stage_new(f, "R", KILN_F32, 2, C->out->dims, TIR_TAG_ELEMWISE);
    name_axes(R, (const char *[]){"i", "j"});
    ex_expr *ri[2] = {ax(f, R, 0), ax(f, R, 1)};
    R->body = ex_max(b, ex_load_tensor(b, T->out, ri), cf(f, 0));
    tir_mark_output(f, R->out);
    return f;
}

/* An i32 row sum: s[i] = sum(j) X[i, j] * 3 */
static tir_func *make_int_rowsum(void) {
    tir_func *f = tir_func_new("rowsum");
    ex_builder *b = &f->eb;
    tir_tensor *X = tir_placeholder(f, "X", KILN_I32, 2, (int64_t[]){9, 70}, NULL);
    tir_stage *S = tir_stage_new(f, "S", KILN_I32, 1, (int64_t[]){9}, TIR_TAG_REDUCE);
    name_axes(S, (const char *[]){"i"});
    ex_var *j = tir_stage_add_raxis(f, S, "j", 70);
    ex_expr *xi[2] = {ax(f, S, 0), ex_varref(b, j)};
    ex_expr *src = ex_mul(b, ex_load_tensor(b, X, xi), ex_const_int(b, KILN_I32, 3));
    S->body = ex_reduce(b, EX_SUM, src, (const ex_var *const *)&j, 1, ex_const_int(b, KILN_I32, 0));
    tir_mark_output(f, S->out);
    return f;
}

static ex_expr *clamp(tir_func *f, ex_expr *v, int64_t lo, int64_t hi) {
    return ex_min(&f->eb, ex_max(&f->eb, v, ci(f, lo)), ci(f, hi));
}

/* P = I padded by 1 (clamped loads, selected zero); O[f, y, x] = sum(c, r, s) P[c, y+r, x+s] * W[f, c, r, s] */
static tir_func *make_conv(void) {
    tir_func *f = tir_func_new("conv");
    ex_builder *b = &f->eb;
    int64_t C = 3, H = 9, Wd = 11, F = 4;
    tir_tensor *I = tir_placeholder(f, "I", KILN_F32, 3, (int64_t[]){C, H, Wd}, NULL);
    tir_tensor *W = tir_placeholder(f, "W", KILN_F32, 4, (int64_t[]){F, C, 3, 3}, NULL);
    tir_stage *P = tir_stage_new(f, "P", KILN_F32, 3, (int64_t[]){C, H + 2, Wd + 2}, TIR_TAG_INJECTIVE);
    name_axes(P, (const char *[]){"c", "h", "w"});
    ex_expr *h = ex_sub(b, ax(f, P, 1), ci(f, 1)), *w = ex_sub(b, ax(f, P, 2), ci(f, 1));
    ex_expr *in = ex_and(b, ex_and(b, ex_binary(b, EX_GE, h, ci(f, 0)), ex_lt(b, h, ci(f, H))),
                         ex_and(b, ex_binary(b, EX_GE, w, ci(f, 0)), ex_lt(b, w, ci(f, Wd))));
    ex_expr *ii[3] = {ax(f, P, 0), clamp(f, h, 0, H - 1), clamp(f, w, 0, Wd - 1)};
    P->body = ex_select(b, in, ex_load_tensor(b, I, ii), cf(f, 0));
    tir_stage *O = tir_stage_new(f, "O", KILN_F32, 3, (int64_t[]){F, H, Wd}, TIR_TAG_CONV);
    name_axes(O, (const char *[]){"f", "y", "x"});
    ex_var *rc = tir_stage_add_raxis(f, O, "rc", C), *ry = tir_stage_add_raxis(f, O, "ry", 3),
           *rx = tir_stage_add_raxis(f, O, "rx", 3);
    ex_expr *pi[3] = {ex_varref(b, rc), ex_add(b, ax(f, O, 1), ex_varref(b, ry)), ex_add(b, ax(f, O, 2), ex_varref(b, rx))};
    ex_expr *wi[4] = {ax(f, O, 0), ex_varref(b, rc), ex_varref(b, ry), ex_varref(b, rx)};
    ex_expr *src = ex_mul(b, ex_load_tensor(b, P->out, pi), ex_load_tensor(b, W, wi));
    O->body = ex_reduce(b, EX_SUM, src, (const ex_var *const *)O->raxes, 3, cf(f, 0));
    tir_mark_output(f, O->out);
    return f;
}

/* ---- running ---- */

typedef struct bufs {
    int n;
    float *data[8];
    int64_t size[8];
} bufs;

static unsigned g_seed = 777;
static int rnd(int n) {
    g_seed = g_seed * 1103515245u + 12345u;
    return (int)((g_seed >> 8) % (unsigned)n);
}

/* Random small integers (exact float sums) or, with smooth, values in [-2, 2]. */
static void fill_inputs(const tir_func *f, bufs *in, bool smooth) {
    in->n = f->n_inputs;
    for (int i = 0; i < f->n_inputs; i++) {
        int64_t n = kiln_numel_dims(f->inputs[i]->rank, f->inputs[i]->dims);
        in->size[i] = n;
        in->data[i] = malloc(sizeof(float) * (size_t)n);
        for (int64_t k = 0; k < n; k++)
            in->data[i][k] = smooth ? (float)(rnd(4001) - 2000) / 1000.0f : (float)(rnd(7) - 3);
    }
}

static void free_bufs(bufs *b) {
    for (int i = 0; i < b->n; i++) free(b->data[i]);
    b->n = 0;
}

/* Lowers f with the trace (text, may be NULL) and runs it; outputs in out. */
static kiln_status run_trace(const tir_func *f, const char *text, const bufs *in, bufs *out, lir_func **keep) {
    sch_trace *t = NULL;
    kiln_status st = text ? sch_trace_parse(g_ctx, text, &t) : KILN_OK;
    lir_func *lf = NULL;
    if (!st) st = sch_lower(g_ctx, f, t, &lf);
    sch_trace_free(t);
    if (st) return st;
    void *args[16];
    for (int i = 0; i < f->n_inputs; i++) args[i] = lf->args[i]->constant ? NULL : in->data[i];
    out->n = f->n_outputs;
    for (int k = 0; k < f->n_outputs; k++) {
        out->size[k] = lf->args[f->n_inputs + k]->size;
        out->data[k] = malloc(sizeof(float) * (size_t)out->size[k]);
        for (int64_t e = 0; e < out->size[k]; e++) out->data[k][e] = NAN;
        args[f->n_inputs + k] = out->data[k];
    }
    st = lir_interp_run(g_ctx, lf, args);
    if (keep) *keep = lf;
    else lir_func_free(lf);
    return st;
}

static bool same(const bufs *a, const bufs *b, double tol) {
    if (a->n != b->n) return false;
    for (int k = 0; k < a->n; k++)
        for (int64_t e = 0; e < a->size[k]; e++) {
            double x = a->data[k][e], y = b->data[k][e];
            if (isnan(x) || isnan(y) || fabs(x - y) > tol * (1 + fabs(x))) return false;
        }
    return true;
}

static char *lir_text(const lir_func *lf) {
    static char buf[1 << 16];
    FILE *m = fmemopen(buf, sizeof buf, "w");
    lir_print(m, lf);
    fclose(m);
    return buf;
}

/* ---- traces: text form ---- */

static const char *k_all_prims =
    "# kiln trace 1\n"
    "split        C i [32] -> io ii\n"
    "split        C j [64 16] -> jo jm ji\n"
    "fuse         C io jo -> ij\n"
    "reorder      C ij k ii jm ji\n"
    "tile         D x y [8 4] -> xo yo xi yi\n"
    "vectorize    C ji\n"
    "unroll       C jm\n"
    "parallel     C ij\n"
    "compute_at   P C ij\n"
    "inline       relu\n"
    "cache_read   A C shared at k -> A_sh\n"
    "cache_read   B C local\n"
    "cache_write  C local at ij -> C_acc\n"
    "cache_write  D shared\n"
    "rfactor      E ko -> E_rf\n"
    "storage_align A_sh ax0 [32 1]\n"
    "pack         B [1 16] -> Bp\n"
    "bind         C ij blockIdx.x\n"
    "bind         \"odd name\" \"a\\\"b\" threadIdx.y\n";

static bool step_equal(const sch_step *a, const sch_step *b) {
    if (a->prim != b->prim || strcmp(a->stage, b->stage) || a->n_axes != b->n_axes || a->n_ints != b->n_ints ||
        a->n_outs != b->n_outs || (!a->arg) != (!b->arg) || (a->arg && strcmp(a->arg, b->arg)))
        return false;
    for (int i = 0; i < a->n_axes; i++)
        if (strcmp(a->axes[i], b->axes[i])) return false;
    for (int i = 0; i < a->n_ints; i++)
        if (a->ints[i] != b->ints[i]) return false;
    for (int i = 0; i < a->n_outs; i++)
        if (strcmp(a->outs[i], b->outs[i])) return false;
    return true;
}

static void trace_text_round_trips(void) {
    sch_trace *t = NULL, *u = NULL;
    CHECK_MSG(sch_trace_parse(g_ctx, k_all_prims, &t) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (!t) return;
    CHECK(t->n_steps == 19);
    CHECK(t->steps[1].n_ints == 2 && t->steps[1].ints[0] == 64 && t->steps[1].n_outs == 3);
    CHECK(t->steps[10].prim == SCH_CACHE_READ && t->steps[10].n_axes == 2 && strcmp(t->steps[10].arg, "shared") == 0);
    CHECK(strcmp(t->steps[18].axes[0], "a\"b") == 0 && t->steps[18].line == 20);
    char *text = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&text, &len);
    sch_trace_print(m, t);
    fclose(m);
    CHECK_MSG(strcmp(text, k_all_prims) == 0, "printed:\n%s", text);
    CHECK(sch_trace_parse(g_ctx, text, &u) == KILN_OK);
    CHECK(u && u->n_steps == t->n_steps);
    for (int i = 0; u && i < t->n_steps; i++) CHECK_MSG(step_equal(&t->steps[i], &u->steps[i]), "step %d", i);
    free(text);
    sch_trace_free(t);
    sch_trace_free(u);
    /* programmatic steps are copied, and checked */
    t = sch_trace_new();
    sch_step s = {.prim = SCH_SPLIT, .stage = "C", .n_axes = 1, .axes = {"i"}, .n_ints = 1, .ints = {4}};
    CHECK(sch_trace_add(g_ctx, t, &s) == KILN_OK);
    s.n_outs = 1;
    s.outs[0] = "only_one";
    CHECK(sch_trace_add(g_ctx, t, &s) == KILN_ERR_INVALID);
    CHECK(t->n_steps == 1 && t->steps[0].stage != s.stage);
    sch_trace_free(t);
}

static void trace_parse_errors_name_the_line(void) {
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"split C i [32] -> io ii\nfrobnicate C\n", "line 2: unknown primitive 'frobnicate'"},
        {"\n\nsplit C i [3x]\n", "line 3: split: malformed integer"},
        {"split C i [4 8] -> a b\n", "line 1: split: wrong number of names after ->"},
        {"cache_read A C register\n", "scope must be global, shared or local"},
        {"bind C i warpIdx.x\n", "tag must be blockIdx"},
        {"reorder C a\nvectorize C a b\n", "line 2: vectorize: wrong number of axes"},
        {"split C i [4\n", "line 1: split: unterminated integer list"},
        {"# kiln trace 2\n", "unsupported trace format version"},
        {"fuse C \"a b\n", "unterminated quoted name"},
        {"compute_at P C\n", "expected: compute_at STAGE TARGET AXIS"},
        {"split C i -> a b\n", "needs a list of factors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sch_trace *t = NULL;
        kiln_status st = sch_trace_parse(g_ctx, cases[i].text, &t);
        CHECK(st == KILN_ERR_PARSE && t == NULL);
        CHECK_MSG(strstr(kiln_errmsg(g_ctx), cases[i].msg) != NULL, "case %zu: %s", i, kiln_errmsg(g_ctx));
        sch_trace_free(t);
    }
}

/* ---- the default nest ---- */

static void default_matmul_matches_reference(void) {
    tir_func *f = test_tir_matmul(37, 29, 13, NULL);
    CHECK(!f->eb.failed);
    bufs in, out;
    fill_inputs(f, &in, false);
    lir_func *lf = NULL;
    CHECK_MSG(run_trace(f, NULL, &in, &out, &lf) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    for (int i = 0; i < 37; i++)
        for (int j = 0; j < 29; j++) {
            float s = 0;
            for (int k = 0; k < 13; k++) s += in.data[0][i * 13 + k] * in.data[1][k * 29 + j];
            CHECK(out.data[0][i * 29 + j] == s);
        }
    CHECK(lf && lf->n_args == 3 && lf->n_inputs == 2 && lf->args[2]->size == 37 * 29);
    const char *text = lir_text(lf);
    CHECK_MSG(strstr(text, "for i in [0, 37):") && strstr(text, "for k in [0, 13):"), "%s", text);
    lir_func_free(lf);
    free_bufs(&in);
    free_bufs(&out);
    tir_func_free(f);
}

static void default_softmax_and_conv_are_correct(void) {
    tir_func *f = make_softmax(13, 21);
    bufs in, out;
    fill_inputs(f, &in, true);
    lir_func *lf = NULL;
    CHECK_MSG(run_trace(f, NULL, &in, &out, &lf) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    for (int i = 0; i < 13; i++) {
        double sum = 0;
        for (int j = 0; j < 21; j++) sum += out.data[0][i * 21 + j];
        CHECK(fabs(sum - 1) < 1e-5);
    }
    const char *text = lir_text(lf);
    CHECK_MSG(strstr(text, "alloc mx: f32[13] global") && strstr(text, "alloc e: f32[273] global"), "%s", text);
    lir_func_free(lf);
    free_bufs(&in);
    free_bufs(&out);
    tir_func_free(f);

    f = make_conv();
    fill_inputs(f, &in, false);
    CHECK_MSG(run_trace(f, NULL, &in, &out, NULL) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    const float *I = in.data[0], *W = in.data[1];
    for (int fo = 0; fo < 4; fo++)
        for (int y = 0; y < 9; y++)
            for (int x = 0; x < 11; x++) {
                float s = 0;
                for (int c = 0; c < 3; c++)
                    for (int r = 0; r < 3; r++)
                        for (int q = 0; q < 3; q++) {
                            int h = y + r - 1, w = x + q - 1;
                            float v = h >= 0 && h < 9 && w >= 0 && w < 11 ? I[(c * 9 + h) * 11 + w] : 0;
                            s += v * W[((fo * 3 + c) * 3 + r) * 3 + q];
                        }
                CHECK(out.data[0][(fo * 9 + y) * 11 + x] == s);
            }
    free_bufs(&in);
    free_bufs(&out);
    tir_func_free(f);
}

/* ---- specific schedules ---- */

static void expect_same(tir_func *f, const char *trace, bool smooth, const char *must_contain) {
    bufs in, ref, out;
    g_seed = 4242;
    fill_inputs(f, &in, smooth);
    CHECK(run_trace(f, NULL, &in, &ref, NULL) == KILN_OK);
    lir_func *lf = NULL;
    kiln_status st = run_trace(f, trace, &in, &out, &lf);
    CHECK_MSG(st == KILN_OK, "%s\n%s", kiln_errmsg(g_ctx), trace);
    if (!st) {
        CHECK_MSG(same(&ref, &out, smooth ? 1e-5 : 0), "values differ for\n%s\n%s", trace, lir_text(lf));
        if (must_contain) CHECK_MSG(strstr(lir_text(lf), must_contain) != NULL, "no '%s' in\n%s", must_contain, lir_text(lf));
        free_bufs(&out);
    }
    lir_func_free(lf);
    free_bufs(&in);
    free_bufs(&ref);
}

static void gemm_micro_kernel_schedule(void) {
    tir_func *f = test_tir_matmul(37, 29, 13, NULL);
    expect_same(f,
                "split C i [8] -> io ii\n"
                "split C j [4 4] -> jo jm ji\n"
                "split C k [4] -> ko ki\n"
                "reorder C io jo ko ki ii jm ji\n"
                "cache_write C local at jo -> C_acc\n"
                "vectorize C ji\n"
                "unroll C jm\n"
                "parallel C io\n",
                false, "alloc C_acc: f32[128] local");
    /* replaying a trace gives the same loop IR */
    sch_trace *t = NULL;
    lir_func *l1 = NULL, *l2 = NULL;
    CHECK(sch_trace_parse(g_ctx, "split C i [8] -> io ii\nsplit C j [16] -> jo ji\ncache_write C local at jo\nparallel C io\n", &t) == KILN_OK);
    CHECK(sch_lower(g_ctx, f, t, &l1) == KILN_OK && sch_lower(g_ctx, f, t, &l2) == KILN_OK);
    if (l1 && l2) {
        char *a = strdup(lir_text(l1));
        CHECK(strcmp(a, lir_text(l2)) == 0);
        free(a);
    }
    lir_func_free(l1);
    lir_func_free(l2);
    sch_trace_free(t);
    /* the accumulator is written back by its own vectorized nest */
    expect_same(f, "split C j [16] -> jo ji\nreorder C i jo k ji\ncache_write C local at jo\nvectorize C ji\n", false,
                "vectorized");
    tir_func_free(f);
}

static void compute_at_and_inline_schedules(void) {
    tir_func *f = make_chain();
    /* B's region per row: one row, all columns (C reads B[i, 18 - j]) */
    expect_same(f, "split C i [8] -> io ii\ncompute_at B C ii\n", false, "alloc B: f32[19] global");
    expect_same(f, "split C j [4] -> jo ji\ncompute_at B C jo\n", false, "alloc B: f32[19]");
    expect_same(f, "inline B\nsplit C j [5] -> jo ji\nvectorize C ji\n", false, NULL);
    tir_func_free(f);
    f = make_softmax(13, 21);
    expect_same(f, "inline e\ncompute_at mx out i\ncompute_at s out i\nsplit out j [8] -> jo ji\nvectorize out ji\n", true,
                "alloc mx: f32[1]");
    expect_same(f, "compute_at e out i\ncompute_at s out i\ncompute_at mx out i\n", true, NULL);
    tir_func_free(f);
    f = make_conv();
    /* the padded input is computed per output row: 3 rows of 13 */
    expect_same(f, "reorder O y f x rc ry rx\ncompute_at P O y\n", false, "alloc P: f32[117]");
    expect_same(f, "split O x [4] -> xo xi\nreorder O f y xo rc ry rx xi\ncompute_at P O xo\nvectorize O xi\n", false, NULL);
    tir_func_free(f);
}

static void rfactor_schedules(void) {
    tir_func *f = test_tir_matmul(7, 5, 37, NULL);
    expect_same(f, "split C k [8] -> ko ki\nrfactor C ki -> C_rf\nvectorize C_rf ki\nreorder C_rf i j ko ki\n", false,
                "vectorized");
    expect_same(f, "split C k [8] -> ko ki\nrfactor C ko\n", false, NULL);
    tir_func_free(f);
    f = make_softmax(13, 21);
    expect_same(f, "split s j [4] -> jo ji\nrfactor s ji -> s_rf\ncompute_at s_rf out i\ncompute_at s out i\n", true, NULL);
    tir_func_free(f);
}

static void gpu_schedules_run_on_the_interpreter(void) {
    tir_func *f = test_tir_matmul(37, 29, 13, NULL);
    expect_same(f,
                "split C i [8] -> bi ti\n"
                "split C j [8] -> bj tj\n"
                "split C k [4] -> ko ki\n"
                "reorder C bi bj ti tj ko ki\n"
                "bind C bi blockIdx.y\n"
                "bind C bj blockIdx.x\n"
                "bind C ti threadIdx.y\n"
                "bind C tj threadIdx.x\n"
                "cache_read A C shared at ko -> A_sh\n"
                "cache_read B C shared at ko -> B_sh\n"
                "bind A_sh ax0 threadIdx.y\n"
                "bind A_sh ax1 threadIdx.x\n"
                "bind B_sh ax0 threadIdx.y\n"
                "bind B_sh ax1 threadIdx.x\n"
                "cache_write C local at tj\n"
                "storage_align A_sh ax0 [8 1]\n",
                false, "barrier");
    /* a k tile of 8: the last column block's idle threads still fill A's tile */
    expect_same(f,
                "split C i [8] -> bi ti\nsplit C j [8] -> bj tj\nsplit C k [8] -> ko ki\n"
                "reorder C bi bj ti tj ko ki\nbind C bi blockIdx.y\nbind C bj blockIdx.x\n"
                "bind C ti threadIdx.y\nbind C tj threadIdx.x\n"
                "cache_read A C shared at ko -> A_sh\nbind A_sh ax0 threadIdx.y\nbind A_sh ax1 threadIdx.x\n",
                false, "alloc A_sh: f32[64] shared");
    tir_func_free(f);
    f = make_softmax(13, 21);
    expect_same(f,
                "bind out i blockIdx.x\n"
                "split out j [32] -> jo tx\n"
                "bind out tx threadIdx.x\n"
                "split s j [32] -> sjo sji\n"
                "rfactor s sji -> s_rf\n"
                "compute_at s_rf out i\n"
                "bind s_rf sji threadIdx.x\n"
                "compute_at s out i\n"
                "compute_at mx out i\n"
                "inline e\n",
                true, "threadIdx.x");
    tir_func_free(f);
}

static void pack_relayouts_a_constant_weight(void) {
    kiln_tensor w;
    int64_t K = 13, N = 29;
    kiln_tensor_init(&w, KILN_F32, 2, (int64_t[]){K, N});
    kiln_tensor_alloc(g_ctx, &w);
    for (int64_t i = 0; i < K * N; i++) ((float *)w.data)[i] = (float)(i % 5) - 2;
    tir_func *f = test_tir_matmul(7, N, K, &w);
    bufs in;
    fill_inputs(f, &in, false);
    memcpy(in.data[1], w.data, sizeof(float) * (size_t)(K * N));
    bufs ref, out;
    CHECK(run_trace(f, NULL, &in, &ref, NULL) == KILN_OK);
    lir_func *lf = NULL;
    const char *tr = "pack B [1 16] -> Bp\nsplit C j [16] -> jo ji\nreorder C i jo k ji\nvectorize C ji\n";
    CHECK_MSG(run_trace(f, tr, &in, &out, &lf) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(same(&ref, &out, 0));
    if (lf) {
        const lir_buffer *bp = lf->args[1];
        CHECK(strcmp(bp->name, "Bp") == 0 && bp->constant && bp->size == 2 * K * 16);
        CHECK(bp->constant->rank == 3 && bp->constant->dims[0] == 2 && bp->constant->dims[1] == K && bp->constant->dims[2] == 16);
        const float *p = bp->constant->data;
        CHECK(p[(1 * K + 3) * 16 + 5] == ((float *)w.data)[3 * N + 21]); /* Bp[21/16][3][21%16] = B[3][21] */
        CHECK(p[(1 * K + 3) * 16 + 15] == 0);                            /* padding */
    }
    lir_func_free(lf);
    free_bufs(&ref);
    free_bufs(&out);
    free_bufs(&in);
    tir_func_free(f);
    /* only constants pack */
    f = test_tir_matmul(7, N, K, NULL);
    lir_func *x = NULL;
    sch_trace *t;
    CHECK(sch_trace_parse(g_ctx, "split C i [2]\npack B [1 16]\n", &t) == KILN_OK);
    CHECK(sch_lower(g_ctx, f, t, &x) == KILN_ERR_INVALID && x == NULL);
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "line 2") && strstr(kiln_errmsg(g_ctx), "not a constant"), "%s", kiln_errmsg(g_ctx));
    sch_trace_free(t);
    tir_func_free(f);
    kiln_tensor_release(&w);
}

static void epilogue_and_integer_schedules(void) {
    tir_func *f = make_mm_relu();
    expect_same(f,
                "split R i [8] -> io ii\n"
                "split R j [16] -> jo ji\n"
                "reorder R io jo ii ji\n"
                "inline T\n"
                "compute_at C R jo\n"
                "split C k [4] -> ko ki\n"
                "reorder C ko ki i j\n"
                "cache_write C local\n"
                "vectorize R ji\n"
                "parallel R io\n",
                false, "alloc C_local: f32[128] local");
    tir_func_free(f);
    f = make_int_rowsum();
    lir_func *lf = NULL;
    sch_trace *t;
    CHECK(sch_trace_parse(g_ctx, "split S j [8] -> jo ji\nrfactor S ji\nvectorize S_rf ji\ncache_write S local\n", &t) == KILN_OK);
    CHECK_MSG(sch_lower(g_ctx, f, t, &lf) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    int32_t x[9 * 70], out[9];
    for (int i = 0; i < 9 * 70; i++) x[i] = i * 7919 % 100003 - 50000;
    void *args[] = {x, out};
    CHECK(lf && lir_interp_run(g_ctx, lf, args) == KILN_OK);
    for (int i = 0; i < 9; i++) {
        uint32_t sum = 0;
        for (int j = 0; j < 70; j++) sum += (uint32_t)x[i * 70 + j] * 3u;
        CHECK(out[i] == (int32_t)sum);
    }
    lir_func_free(lf);
    sch_trace_free(t);
    tir_func_free(f);
}

/* A kernel whose output is its input, or one output listed twice. */
static void outputs_that_are_not_stages_are_copied(void) {
    tir_func *f = tir_func_new("id");
    tir_tensor *X = tir_placeholder(f, "X", KILN_F32, 2, (int64_t[]){3, 4}, NULL);
    tir_mark_output(f, X);
    tir_stage *Y = tir_stage_new(f, "Y", KILN_F32, 2, (int64_t[]){3, 4}, TIR_TAG_ELEMWISE);
    ex_expr *yi[2] = {ax(f, Y, 0), ax(f, Y, 1)};
    Y->body = ex_mul(&f->eb, ex_load_tensor(&f->eb, X, yi), cf(f, 2));
    tir_mark_output(f, Y->out);
    tir_mark_output(f, Y->out);
    lir_func *lf = NULL;
    CHECK_MSG(sch_lower(g_ctx, f, NULL, &lf) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    float x[12], o0[12], o1[12], o2[12];
    for (int i = 0; i < 12; i++) x[i] = (float)i;
    void *args[] = {x, o0, o1, o2};
    CHECK(lf && lf->n_args == 4 && lir_interp_run(g_ctx, lf, args) == KILN_OK);
    for (int i = 0; i < 12; i++) CHECK(o0[i] == x[i] && o1[i] == 2 * x[i] && o2[i] == 2 * x[i]);
    CHECK(lf && strcmp(lf->args[1]->name, "X_1") == 0 && strcmp(lf->args[3]->name, "Y_1") == 0);
    lir_func_free(lf);
    tir_func_free(f);
}

static void storage_align_pads_the_stride(void) {
    tir_func *f = make_chain();
    expect_same(f, "storage_align B i [32 3]\n", false, "alloc B: f32[1295] global"); /* row stride 35 */
    tir_func_free(f);
}

static lir_stmt *find_if(lir_stmt *s) {
    if (!s) return NULL;
    if (s->kind == LIR_IF) return s;
    if (s->kind == LIR_FOR || s->kind == LIR_ALLOC) return find_if(s->body);
    for (int i = 0; s->kind == LIR_SEQ && i < s->n_stmts; i++) {
        lir_stmt *r = find_if(s->stmts[i]);
        if (r) return r;
    }
    return NULL;
}

/* A lowered nest with its split guard made off by one reads past A. */
static void broken_guard_is_caught_by_the_interpreter(void) {
    tir_func *f = test_tir_matmul(37, 29, 13, NULL);
    bufs in, out;
    fill_inputs(f, &in, false);
    lir_func *lf = NULL;
    CHECK(run_trace(f, "split C i [8] -> io ii\n", &in, &out, &lf) == KILN_OK);
    free_bufs(&out);
    lir_stmt *g = lf ? find_if(lf->body) : NULL;
    CHECK(g && g->cond->kind == EX_BINARY && g->cond->op == EX_LT && g->cond->args[1]->ival == 37);
    if (g) {
        g->cond->args[1]->ival = 38;
        float o[37 * 29];
        void *args[] = {in.data[0], in.data[1], o};
        CHECK(lir_interp_run(g_ctx, lf, args) == KILN_ERR_INTERNAL);
        CHECK_MSG(strstr(kiln_errmsg(g_ctx), "out of bounds"), "%s", kiln_errmsg(g_ctx));
    }
    lir_func_free(lf);
    free_bufs(&in);
    tir_func_free(f);
}

/* ---- invalid traces ---- */

static void invalid_traces_fail_clearly(void) {
    static const struct {
        int fn;
        const char *trace, *msg;
    } cases[] = {
        {0, "split C q [4]\n", "line 1 (split C q [4]): C has no axis 'q' (its loops: i j k)"},
        {0, "split C i [4] -> io ii\nsplit C i [2]\n", "line 2 (split C i [2]): axis 'i' of C no longer exists: line 1 split or fused it"},
        {0, "split C i [0]\n", "factor 0 is not positive"},
        {0, "split C i [-3]\n", "factor -3 is not positive"},
        {0, "vectorize C k\n", "'k' is a reduction axis of C: it can only be vectorized after rfactor"},
        {0, "parallel C k\n", "reduction axis"},
        {0, "split D i [4]\n", "no stage named 'D'"},
        {0, "inline C\n", "C is a reduction: it cannot be inlined"},
        {1, "inline C\n", "C is an output of the kernel"},
        {1, "split C i [4] -> io ii\ncompute_at B C io\ncompute_at B C q\n", "line 3"},
        {1, "compute_at C B i\n", "B is computed before C"},
        {2, "compute_at mx s i\n", "mx is also read by e, which is not computed inside s's loop i"},
        {0, "cache_write C local at k\n", "reduction loop"},
        {0, "reorder C k i j\ncache_write C local at i\n", "reduction loop k of C is outside the cache's loop i"},
        {0, "fuse C j k\n", "cannot fuse a spatial axis with a reduction axis"},
        {0, "fuse C j i\n", "adjacent loops, outer to inner"},
        {0, "split C i [4] -> io ii\nvectorize C ii\nsplit C ii [2]\n", "ii' of C is vectorized (line 2)"},
        {0, "bind C i threadIdx.x\nbind C j threadIdx.x\n", "threadIdx.x is already bound to axis 'i' of C"},
        {0, "bind C i threadIdx.x\nbind C j blockIdx.x\n", "block loop j of C is inside thread loop i"},
        {0, "rfactor C i\n", "'i' is not a reduction axis of C"},
        {0, "storage_align C i [4 1]\n", "C is an output"},
        {1, "storage_align B j [4 1]\n", "innermost dimension"},
        {1, "cache_read X B local -> B\n", "the name 'B' is taken"},
        {0, "cache_read A C local\ncache_read A C local\n", "C does not read A"},
        {1, "split C i [4] -> io ii\nsplit C j [4] -> io jj\n", "C already has an axis named 'io'"},
        {0, "reorder C i i\n", "axis 'i' listed twice"},
        {0, "split C j [8] -> jo ji\nbind C jo blockIdx.x\nbind C ji threadIdx.x\ncache_read A C shared at ji\n"
            "split A_shared ax1 [16] -> a b\nbind A_shared b threadIdx.x\n",
         "b of A_shared needs 13 along threadIdx.x, but the enclosing ji loop has 8"},
        {0, "split C j [8] -> jo ji\nbind C ji threadIdx.x\ncache_read A C local at ji\nbind A_local ax1 threadIdx.x\n",
         "ax1 of A_local is bound to threadIdx.x, which its enclosing loop ji already is: only a shared stage"},
        {0, "bind C i threadIdx.y\ncache_read A C shared at j\nbind A_shared ax1 threadIdx.x\n",
         "ax1 of A_shared is bound to threadIdx.x inside the threadIdx.y loop i it is computed in"},
    };
    tir_func *fs[3] = {test_tir_matmul(37, 29, 13, NULL), make_chain(), make_softmax(5, 7)};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sch_trace *t = NULL;
        lir_func *lf = NULL;
        CHECK(sch_trace_parse(g_ctx, cases[i].trace, &t) == KILN_OK);
        kiln_status st = sch_lower(g_ctx, fs[cases[i].fn], t, &lf);
        CHECK_MSG(st == KILN_ERR_INVALID && lf == NULL, "case %zu: status %d", i, (int)st);
        CHECK_MSG(strstr(kiln_errmsg(g_ctx), cases[i].msg) != NULL, "case %zu: %s", i, kiln_errmsg(g_ctx));
        lir_func_free(lf);
        sch_trace_free(t);
    }
    for (int i = 0; i < 3; i++) tir_func_free(fs[i]);
}

/* ---- random traces ---- */

#define MAXL 24
typedef struct sim_stage {
    char name[32];
    int n;
    char leaf[MAXL][32];
    bool red[MAXL];
    int n_roots;
    char roots[8][32];
    bool reduction, output, inlined, gone;
} sim_stage;

typedef struct sim {
    int n;
    sim_stage s[12];
    int counter;
} sim;

static void sim_init(sim *m, const tir_func *f) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *t = f->stages[i];
        sim_stage *s = &m->s[m->n++];
        snprintf(s->name, sizeof s->name, "%s", t->name);
        for (int d = 0; d < t->n_axes; d++) {
            snprintf(s->leaf[s->n++], 32, "%s", t->axes[d]->name);
            snprintf(s->roots[s->n_roots++], 32, "%s", t->axes[d]->name);
        }
        for (int r = 0; r < t->n_raxes; r++) {
            s->red[s->n] = true;
            snprintf(s->leaf[s->n++], 32, "%s", t->raxes[r]->name);
        }
        s->reduction = t->n_raxes > 0;
        for (int k = 0; k < f->n_outputs; k++) s->output |= f->outputs[k] == t->out;
    }
}

/* Proposes one random step as text and applies it to the model (the
** caller keeps the model only if lowering accepts the step). */
static void propose(sim *m, char *out, size_t n) {
    sim_stage *s;
    do s = &m->s[rnd(m->n)];
    while (s->inlined);
    int p = s->n ? rnd(s->n) : 0, c = ++m->counter;
    out[0] = 0;
    switch (rnd(14)) {
    case 11: { /* tile two adjacent spatial leaves */
        if (p + 1 >= s->n || s->red[p] || s->red[p + 1]) return;
        char n4[4][32];
        for (int k = 0; k < 4; k++) snprintf(n4[k], 32, "t%d_%d", c, k);
        snprintf(out, n, "tile %s %s %s [%d %d] -> %s %s %s %s\n", s->name, s->leaf[p], s->leaf[p + 1], 1 + rnd(6),
                 1 + rnd(6), n4[0], n4[1], n4[2], n4[3]);
        if (s->n + 2 > MAXL - 3) return (void)(out[0] = 0);
        memmove(&s->leaf[p + 4], &s->leaf[p + 2], sizeof s->leaf[0] * (size_t)(s->n - p - 2));
        memmove(&s->red[p + 4], &s->red[p + 2], sizeof s->red[0] * (size_t)(s->n - p - 2));
        for (int k = 0; k < 4; k++) memcpy(s->leaf[p + k], n4[k], 32), s->red[p + k] = false;
        s->n += 2;
        return;
    }
    case 12: /* GPU style: the outer loops become a block and its threads */
        if (s->n >= 2 && !s->red[0] && !s->red[1])
            snprintf(out, n, rnd(2) ? "bind %s %s blockIdx.x\n" : "bind %s %s threadIdx.x\n", s->name, s->leaf[rnd(2)]);
        return;
    case 13:
        if (!s->output && s->n_roots >= 2)
            snprintf(out, n, "storage_align %s %s [%d %d]\n", s->name, s->roots[s->n_roots - 2], 8, rnd(8));
        else if (s->reduction)
            snprintf(out, n, "cache_write %s shared\n", s->name);
        return;
    case 0:
    case 1: {
        if (!s->n) return;
        int f1 = 1 + rnd(8), two = rnd(3) == 0;
        char o[32], mid[32], in[32];
        snprintf(o, 32, "o%d", c), snprintf(mid, 32, "m%d", c), snprintf(in, 32, "n%d", c);
        if (two) snprintf(out, n, "split %s %s [%d %d] -> %s %s %s\n", s->name, s->leaf[p], 1 + rnd(4), f1, o, mid, in);
        else snprintf(out, n, "split %s %s [%d] -> %s %s\n", s->name, s->leaf[p], f1, o, in);
        bool r = s->red[p];
        int k = two ? 3 : 2;
        memmove(&s->leaf[p + k], &s->leaf[p + 1], sizeof s->leaf[0] * (size_t)(s->n - p - 1));
        memmove(&s->red[p + k], &s->red[p + 1], sizeof s->red[0] * (size_t)(s->n - p - 1));
        snprintf(s->leaf[p], 32, "%s", o), s->red[p] = r;
        if (two) snprintf(s->leaf[p + 1], 32, "%s", mid), s->red[p + 1] = r;
        snprintf(s->leaf[p + k - 1], 32, "%s", in), s->red[p + k - 1] = r;
        s->n += k - 1;
        if (s->n > MAXL - 3) out[0] = 0;
        return;
    }
    case 2: { /* reorder: a random permutation */
        if (s->n < 2 || s->n > SCH_MAX_NAMES) return;
        int perm[MAXL];
        for (int i = 0; i < s->n; i++) perm[i] = i;
        for (int i = s->n - 1; i > 0; i--) {
            int j = rnd(i + 1), t = perm[i];
            perm[i] = perm[j], perm[j] = t;
        }
        size_t len = (size_t)snprintf(out, n, "reorder %s", s->name);
        sim_stage old = *s;
        for (int i = 0; i < s->n; i++) {
            len += (size_t)snprintf(out + len, n - len, " %s", old.leaf[perm[i]]);
            snprintf(s->leaf[i], 32, "%s", old.leaf[perm[i]]);
            s->red[i] = old.red[perm[i]];
        }
        snprintf(out + len, n - len, "\n");
        return;
    }
    case 3: { /* fuse two adjacent leaves of the same kind */
        if (p + 1 >= s->n || s->red[p] != s->red[p + 1]) return;
        snprintf(out, n, "fuse %s %s %s -> f%d\n", s->name, s->leaf[p], s->leaf[p + 1], c);
        snprintf(s->leaf[p], 32, "f%d", c);
        memmove(&s->leaf[p + 1], &s->leaf[p + 2], sizeof s->leaf[0] * (size_t)(s->n - p - 2));
        memmove(&s->red[p + 1], &s->red[p + 2], sizeof s->red[0] * (size_t)(s->n - p - 2));
        s->n--;
        return;
    }
    case 4: { /* vectorize or unroll the innermost leaf */
        if (!s->n) return;
        int q = s->n - 1;
        snprintf(out, n, "%s %s %s\n", s->red[q] || rnd(2) ? "unroll" : "vectorize", s->name, s->leaf[q]);
        return;
    }
    case 5:
        if (s->n && !s->red[0]) snprintf(out, n, "parallel %s %s\n", s->name, s->leaf[0]);
        return;
    case 6: /* compute a producer at a loop of a later stage */
        for (int i = 0; i < m->n; i++)
            if (&m->s[i] == s) {
                if (i + 1 >= m->n) return;
                sim_stage *t = &m->s[i + 1 + rnd(m->n - i - 1)];
                if (t->inlined || !t->n) return;
                snprintf(out, n, "compute_at %s %s %s\n", s->name, t->name, t->leaf[rnd(t->n)]);
            }
        return;
    case 7:
        if (!s->reduction && !s->output) {
            snprintf(out, n, "inline %s\n", s->name);
            s->inlined = true;
        }
        return;
    case 8: { /* cache_write at a spatial loop outside every reduction loop */
        int q = 0;
        while (q < s->n && !s->red[q]) q++;
        if (q == 0 || rnd(3) == 0) snprintf(out, n, "cache_write %s local\n", s->name);
        else snprintf(out, n, "cache_write %s local at %s\n", s->name, s->leaf[rnd(q)]);
        return;
    }
    case 9: { /* rfactor a reduction leaf */
        if (!s->red[p] || m->n >= 11) return;
        char rf[32];
        snprintf(rf, 32, "rf%d", c);
        snprintf(out, n, "rfactor %s %s -> %s\n", s->name, s->leaf[p], rf);
        int idx = (int)(s - m->s);
        memmove(&m->s[idx + 1], &m->s[idx], sizeof m->s[0] * (size_t)(m->n - idx));
        m->n++;
        sim_stage *r = &m->s[idx], *o = &m->s[idx + 1];
        memset(r, 0, sizeof *r);
        snprintf(r->name, 32, "%s", rf);
        r->n_roots = o->n_roots;
        memcpy(r->roots, o->roots, sizeof r->roots);
        for (int i = 0; i < o->n_roots; i++) memcpy(r->leaf[r->n++], o->roots[i], 32);
        memcpy(r->leaf[r->n++], o->leaf[p], 32);
        for (int i = 0; i < o->n; i++)
            if (o->red[i] && i != p) r->red[r->n] = true, memcpy(r->leaf[r->n++], o->leaf[i], 32);
        r->reduction = r->n > o->n_roots + 1;
        char keep[32];
        memcpy(keep, o->leaf[p], 32);
        int w = 0;
        for (int i = 0; i < o->n; i++)
            if (!o->red[i]) {
                if (w != i) memcpy(o->leaf[w], o->leaf[i], 32);
                o->red[w++] = false;
            }
        memcpy(o->leaf[w], keep, 32);
        o->red[w++] = true;
        o->n = w;
        return;
    }
    default: { /* cache_read an input of the next stage at one of its loops */
        if (!s->n) return;
        static const char *const scopes[3] = {"local", "global", "shared"};
        snprintf(out, n, "cache_read %s %s %s at %s -> cr%d\n", rnd(2) ? "A" : "B", s->name, scopes[rnd(3)],
                 s->leaf[rnd(s->n)], c);
        return;
    }
    }
}

static int g_prim_count[SCH_PRIM_COUNT];
static const char *const k_prims[SCH_PRIM_COUNT] = {"split", "fuse", "reorder", "tile", "vectorize", "unroll",
                                                    "parallel", "compute_at", "inline", "cache_read", "cache_write",
                                                    "rfactor", "storage_align", "pack", "bind"};

static void count_prim(const char *step) {
    for (int p = 0; p < SCH_PRIM_COUNT; p++)
        if (strncmp(step, k_prims[p], strlen(k_prims[p])) == 0 && step[strlen(k_prims[p])] == ' ') g_prim_count[p]++;
}

static void random_traces(tir_func *f, int n_traces, bool smooth, int *accepted_steps) {
    bufs in, ref;
    fill_inputs(f, &in, smooth);
    CHECK(run_trace(f, NULL, &in, &ref, NULL) == KILN_OK);
    for (int t = 0; t < n_traces; t++) {
        sim m;
        sim_init(&m, f);
        char trace[8192] = "";
        size_t len = 0;
        for (int k = 0; k < 10; k++) {
            sim keep = m;
            char step[512];
            propose(&m, step, sizeof step);
            if (!step[0] || len + strlen(step) + 1 >= sizeof trace) {
                m = keep;
                continue;
            }
            char cand[8192];
            snprintf(cand, sizeof cand, "%s%s", trace, step);
            bufs out;
            lir_func *lf = NULL;
            kiln_status st = run_trace(f, cand, &in, &out, &lf);
            if (st == KILN_ERR_INVALID) {
                CHECK_MSG(strstr(kiln_errmsg(g_ctx), "trace ") != NULL, "%s", kiln_errmsg(g_ctx));
                m = keep;
                continue;
            }
            CHECK_MSG(st == KILN_OK, "%s\ntrace:\n%s", kiln_errmsg(g_ctx), cand);
            if (st == KILN_OK) {
                bool ok = same(&ref, &out, smooth ? 1e-5 : 0);
                CHECK_MSG(ok, "values differ for trace:\n%s", cand);
                if (!ok) lir_print(stderr, lf);
                free_bufs(&out);
                memcpy(trace, cand, strlen(cand) + 1);
                len = strlen(trace);
                (*accepted_steps)++;
                count_prim(step);
            }
            lir_func_free(lf);
            if (st != KILN_OK) break;
        }
    }
    free_bufs(&in);
    free_bufs(&ref);
}

static void random_traces_compute_the_default_values(void) {
    int acc = 0;
    const char *seed = getenv("KILN_TEST_SEED");
    g_seed = seed ? (unsigned)atoi(seed) : 99;
    tir_func *f = test_tir_matmul(37, 29, 13, NULL);
    random_traces(f, 60, false, &acc);
    tir_func_free(f);
    f = make_chain();
    random_traces(f, 40, false, &acc);
    tir_func_free(f);
    f = make_softmax(13, 21);
    random_traces(f, 40, true, &acc);
    tir_func_free(f);
    f = make_conv();
    random_traces(f, 25, false, &acc);
    tir_func_free(f);
    f = make_mm_relu();
    random_traces(f, 30, false, &acc);
    tir_func_free(f);
    CHECK_MSG(acc > 400, "only %d random steps were accepted", acc);
    printf("random traces: %d steps accepted:", acc);
    for (int p = 0; p < SCH_PRIM_COUNT; p++)
        if (g_prim_count[p]) printf(" %s %d", k_prims[p], g_prim_count[p]);
    printf("\n");
}

/* Every allocation failure during lowering is an error, never a crash. */
static void allocation_failures_are_errors(void) {
    tir_func *f = make_softmax(5, 7);
    sch_trace *t;
    CHECK(sch_trace_parse(g_ctx, "split out j [4] -> jo ji\ncompute_at s out i\ninline e\ncache_write mx local\n", &t) ==
          KILN_OK);
    long live = kiln_mem_live();
    int ok_at = -1;
    for (int n = 0; n < 400 && ok_at < 0; n++) {
        lir_func *lf = NULL;
        kiln_mem_fail_after(n);
        kiln_status st = sch_lower(g_ctx, f, t, &lf);
        kiln_mem_fail_after(-1);
        CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
        if (st == KILN_OK) ok_at = n;
        lir_func_free(lf);
        CHECK(kiln_mem_live() == live);
    }
    CHECK(ok_at > 0);
    sch_trace_free(t);
    tir_func_free(f);
    ok_at = -1;
    live = kiln_mem_live();
    for (int n = 0; n < 200 && ok_at < 0; n++) {
        sch_trace *u = NULL;
        kiln_mem_fail_after(n);
        kiln_status st = sch_trace_parse(g_ctx, k_all_prims, &u);
        kiln_mem_fail_after(-1);
        CHECK_MSG(st == KILN_OK || st == KILN_ERR_NOMEM, "n=%d: %s", n, kiln_errmsg(g_ctx));
        if (st == KILN_OK) ok_at = n;
        sch_trace_free(u);
        CHECK(kiln_mem_live() == live);
    }
    CHECK(ok_at > 0);
}

static void setup(void) { kiln_ctx_new(&g_ctx); }
static void teardown(void) { kiln_ctx_free(g_ctx); }

TEST_MAIN(T(setup), T(trace_text_round_trips), T(trace_parse_errors_name_the_line), T(default_matmul_matches_reference),
          T(default_softmax_and_conv_are_correct), T(gemm_micro_kernel_schedule), T(compute_at_and_inline_schedules),
          T(rfactor_schedules), T(gpu_schedules_run_on_the_interpreter), T(pack_relayouts_a_constant_weight),
          T(storage_align_pads_the_stride), T(epilogue_and_integer_schedules),
          T(outputs_that_are_not_stages_are_copied), T(broken_guard_is_caught_by_the_interpreter), T(invalid_traces_fail_clearly), T(random_traces_compute_the_default_values),
          T(allocation_failures_are_errors), T(teardown))
