/*
** test_tir.c — the tensor IR's printer, verifier and canonical hash, and
** tir_from_node: placeholders per present input, constants bound, outputs
** per present output, clear errors, no leak under failing allocations.
*/
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "ir/tir.h"
#include "tir_eval.h"

static char *print_str(const tir_func *f) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    tir_print(m, f);
    fclose(m);
    return buf;
}

/* C[i, j] = sum(k) A[i, k] * B[k, j], with the given names. */
static tir_func *matmul(const char *a, const char *b, const char *c, const char *k, int64_t m, int64_t n,
                        int64_t kk, kiln_dtype dt, const kiln_tensor *bconst) {
    tir_func *f = tir_func_new("mm");
    int64_t ad[2] = {m, kk}, bd[2] = {kk, n}, cd[2] = {m, n};
    tir_tensor *A = tir_placeholder(f, a, dt, 2, ad, NULL), *B = tir_placeholder(f, b, dt, 2, bd, bconst);
    tir_stage *s = tir_stage_new(f, c, dt, 2, cd, TIR_TAG_MATMUL);
    ex_builder *eb = &f->eb;
    ex_var *kv = tir_stage_add_raxis(f, s, k, kk);
    ex_expr *ai[2] = {ex_varref(eb, s->axes[0]), ex_varref(eb, kv)};
    ex_expr *bi[2] = {ex_varref(eb, kv), ex_varref(eb, s->axes[1])};
    ex_expr *prod = ex_mul(eb, ex_load_tensor(eb, A, ai), ex_load_tensor(eb, B, bi));
    const ex_var *rk[1] = {kv};
    s->body = ex_reduce(eb, EX_SUM, prod, rk, 1, ex_combiner_identity(eb, EX_SUM, dt));
    tir_mark_output(f, s->out);
    return f;
}

static void print_form(void) {
    kiln_tensor w;
    int64_t d[2] = {64, 32};
    kiln_tensor_init(&w, KILN_F32, 2, d);
    tir_func *f = matmul("A", "B", "C", "k", 128, 32, 64, KILN_F32, &w);
    f->stages[0]->axes[0]->name = "i";
    f->stages[0]->axes[1]->name = "j";
    char *s = print_str(f);
    CHECK_MSG(strstr(s, "C[i, j] = sum(k) (A[i, k] * B[k, j])"), "%s", s);
    CHECK_MSG(strstr(s, "input A : f32[128, 64]\n"), "%s", s);
    CHECK_MSG(strstr(s, "input B : f32[64, 32] const\n"), "%s", s);
    CHECK_MSG(strstr(s, "# f32[128, 32] matmul, over k=64"), "%s", s);
    CHECK_MSG(strstr(s, "output C\n"), "%s", s);
    free(s);
    /* a reduction whose init is not the identity says so */
    f->stages[0]->body->args[1] = ex_const_float(&f->eb, KILN_F32, 1.0);
    s = print_str(f);
    CHECK_MSG(strstr(s, "sum(k; init=1f)"), "%s", s);
    free(s);
    tir_func_free(f);
}

static kiln_status verify(tir_func *f, kiln_ctx *ctx) { return tir_verify(ctx, f); }

static void verify_accepts_and_rejects(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    tir_func *f = matmul("A", "B", "C", "k", 4, 5, 6, KILN_F32, NULL);
    CHECK_MSG(verify(f, ctx) == KILN_OK, "%s", kiln_errmsg(ctx));
    tir_stage *s = f->stages[0];
    ex_expr *body = s->body;

    /* a reduction below the top */
    s->body = ex_add(&f->eb, body, ex_const_float(&f->eb, KILN_F32, 1));
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "stage 'C'"));

    /* a body of the wrong element type */
    s->body = ex_int(&f->eb, 0);
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "element type"));

    /* an axis that is not in scope: the reduction axis outside the reduction */
    s->body = body;
    body->args[1] = ex_cast(&f->eb, KILN_F32, ex_varref(&f->eb, s->raxes[0]));
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "'k'"));
    body->args[1] = ex_const_float(&f->eb, KILN_F32, 0);
    CHECK(verify(f, ctx) == KILN_OK);

    /* an index that is not i64 */
    ex_expr *load = body->args[0]->args[0];
    ex_expr *keep = load->args[0];
    load->args[0] = ex_const_int(&f->eb, KILN_I32, 0);
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "not i64"));
    load->args[0] = keep;

    /* a stage that reads a later one */
    int64_t d[2] = {4, 5};
    tir_stage *t = tir_stage_new(f, "D", KILN_F32, 2, d, TIR_TAG_ELEMWISE);
    ex_expr *ti[2] = {ex_varref(&f->eb, t->axes[0]), ex_varref(&f->eb, t->axes[1])};
    t->body = ex_load_tensor(&f->eb, s->out, ti);
    CHECK(verify(f, ctx) == KILN_OK);
    ex_expr *si[2] = {ex_varref(&f->eb, s->axes[0]), ex_varref(&f->eb, s->axes[1])};
    ex_expr *saved = body->args[0];
    body->args[0] = ex_load_tensor(&f->eb, t->out, si);
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "'D'"));
    body->args[0] = saved;

    /* an output that is a placeholder */
    tir_mark_output(f, f->inputs[0]);
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "output"));
    f->n_outputs--;
    CHECK(verify(f, ctx) == KILN_OK);

    /* an ill-typed constructor leaves the builder failed */
    CHECK(ex_add(&f->eb, ex_int(&f->eb, 1), ex_const_float(&f->eb, KILN_F32, 1)) == NULL);
    CHECK(verify(f, ctx) == KILN_ERR_INVALID && strstr(kiln_errmsg(ctx), "construction failed"));
    tir_func_free(f);
    kiln_ctx_free(ctx);
}

static void hash_is_canonical(void) {
    kiln_tensor w1, w2;
    int64_t d[2] = {6, 5};
    kiln_tensor_init(&w1, KILN_F32, 2, d);
    kiln_tensor_init(&w2, KILN_F32, 2, d);
    float a[30] = {1}, b[30] = {2};
    w1.data = a;
    w2.data = b;
    tir_func *f1 = matmul("A", "B", "C", "k", 4, 5, 6, KILN_F32, NULL);
    tir_func *f2 = matmul("x", "y", "z", "r", 4, 5, 6, KILN_F32, NULL);
    tir_func *f3 = matmul("A", "B", "C", "k", 4, 5, 7, KILN_F32, NULL);
    tir_func *f4 = matmul("A", "B", "C", "k", 4, 5, 6, KILN_F64, NULL);
    tir_func *f5 = matmul("A", "B", "C", "k", 4, 5, 6, KILN_F32, &w1);
    tir_func *f6 = matmul("A", "B", "C", "k", 4, 5, 6, KILN_F32, &w2);
    CHECK(tir_hash(f1) == tir_hash(f2));   /* names do not matter */
    CHECK(tir_hash(f1) != tir_hash(f3));   /* shapes do */
    CHECK(tir_hash(f1) != tir_hash(f4));   /* element types do */
    CHECK(tir_hash(f1) != tir_hash(f5));   /* constness does */
    CHECK(tir_hash(f5) == tir_hash(f6));   /* the weights' values do not */
    f2->stages[0]->tag = TIR_TAG_OPAQUE;
    CHECK(tir_hash(f1) != tir_hash(f2));   /* tags do */
    tir_func *fs[] = {f1, f2, f3, f4, f5, f6};
    for (int i = 0; i < 6; i++) tir_func_free(fs[i]);
}

/* ---- tir_from_node ---- */

typedef struct parsed {
    kiln_ctx *ctx;
    gir_graph *g;
    gir_node *n;
} parsed;

static bool parse_node(parsed *p, const char *text) {
    kiln_ctx_new(&p->ctx);
    p->g = NULL;
    kiln_status s = gir_parse(p->ctx, text, &p->g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(p->ctx));
    if (s) return false;
    p->n = p->g->nodes[p->g->n_nodes - 1];
    s = gir_bind_op(p->ctx, p->n);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(p->ctx));
    return s == KILN_OK;
}

static void parsed_free(parsed *p) {
    gir_graph_free(p->g);
    kiln_ctx_free(p->ctx);
}

/* Lowers the last node of a graph (types from the graph) and hashes it. */
static uint64_t node_hash(const char *text) {
    parsed p;
    uint64_t h = 0;
    if (parse_node(&p, text)) {
        tir_func *f = NULL;
        kiln_status s = tir_from_node(p.ctx, p.n, NULL, &f);
        CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(p.ctx));
        if (f) h = tir_hash(f);
        tir_func_free(f);
    }
    parsed_free(&p);
    return h;
}

#define G(body) "graph \"t\" {\n opset 17\n" body "\n}\n"

static void equal_workloads_hash_equal(void) {
    const char *conv1 = G("input %x : f32[2,3,8,8]\ninput %w : f32[4,3,3,3]\n%y = Conv(%x, %w) {pads=[1, 1, 1, 1]}\n"
                          "output %y");
    const char *conv2 = G("input %img : f32[2,3,8,8]\ninput %k : f32[4,3,3,3]\n"
                          "%out = Conv(%img, %k) {pads=[1, 1, 1, 1]} name=\"other\"\noutput %out");
    const char *conv3 = G("input %x : f32[2,3,8,8]\ninput %w : f32[4,3,3,3]\n%y = Conv(%x, %w) {pads=[1, 1, 1, 1], "
                          "strides=[2, 2]}\noutput %y");
    const char *conv4 = G("input %x : f32[2,3,9,8]\ninput %w : f32[4,3,3,3]\n%y = Conv(%x, %w) {pads=[1, 1, 1, 1]}\n"
                          "output %y");
    const char *conv5 = G("input %x : f16[2,3,8,8]\ninput %w : f16[4,3,3,3]\n%y = Conv(%x, %w) {pads=[1, 1, 1, 1]}\n"
                          "output %y");
    uint64_t h1 = node_hash(conv1), h2 = node_hash(conv2), h3 = node_hash(conv3), h4 = node_hash(conv4),
             h5 = node_hash(conv5);
    CHECK(h1 && h1 == h2);
    CHECK(h1 != h3 && h1 != h4 && h1 != h5 && h3 != h4);
    /* a constant's value is part of the code when the definition reads it */
    uint64_t r1 = node_hash(G("input %x : f32[6]\nconst %s : i64[2] = {2, 3}\n%y = Reshape(%x, %s)\noutput %y"));
    uint64_t r2 = node_hash(G("input %x : f32[6]\nconst %s : i64[2] = {3, 2}\n%y = Reshape(%x, %s)\noutput %y"));
    CHECK(r1 && r2 && r1 != r2);
}

static void placeholders_and_outputs(void) {
    parsed p;
    if (parse_node(&p, G("input %x : f32[3,7]\ninput %hi : f32[]\n%y = Clip(%x, _, %hi)\noutput %y"))) {
        tir_func *f = NULL;
        CHECK(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_OK);
        CHECK(f && f->n_inputs == 2 && f->n_outputs == 1);
        CHECK(f && !strcmp(f->inputs[1]->name, "hi") && f->inputs[1]->rank == 0 && !f->inputs[1]->constant);
        tir_func_free(f);
    }
    parsed_free(&p);
    /* a constant initializer is bound; a given type with data binds too */
    if (parse_node(&p, G("input %x : f32[2,3]\ninput %b : f32[3]\nconst %s : i64[1] = {6}\n"
                         "%r = Reshape(%x, %s)\n%y = Add(%x, %b)\noutput %y\noutput %r"))) {
        tir_func *f = NULL;
        CHECK(tir_from_node(p.ctx, p.g->nodes[0], NULL, &f) == KILN_OK);
        CHECK(f && f->n_inputs == 2 && f->inputs[1]->constant && f->outputs[0]->rank == 1);
        tir_func_free(f);
        f = NULL;
        float bias[3] = {1, 2, 3};
        kiln_tensor tx, tb;
        kiln_tensor_init(&tx, KILN_F32, 2, (int64_t[]){2, 3});
        kiln_tensor_init(&tb, KILN_F32, 1, (int64_t[]){3});
        tb.data = bias;
        const kiln_tensor *types[2] = {&tx, &tb};
        CHECK(tir_from_node(p.ctx, p.n, types, &f) == KILN_OK);
        CHECK(f && !f->inputs[0]->constant && f->inputs[1]->constant == &tb);
        tir_func_free(f);
    }
    parsed_free(&p);
    /* an omitted output gets no output tensor */
    if (parse_node(&p, G("input %x : f32[2,3,5,5]\n%y, _ = MaxPool(%x) {kernel_shape=[2, 2]}\noutput %y"))) {
        tir_func *f = NULL;
        CHECK(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_OK);
        CHECK(f && f->n_outputs == 1);
        tir_func_free(f);
    }
    parsed_free(&p);
}

static void clear_errors(void) {
    parsed p;
    tir_func *f = NULL;
    /* no compute definition */
    if (parse_node(&p, G("input %x : f32[5]\n%y = NonZero(%x) name=\"nz\"\noutput %y"))) {
        CHECK(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_ERR_UNSUPPORTED && !f);
        CHECK(strstr(kiln_errmsg(p.ctx), "'nz'") && strstr(kiln_errmsg(p.ctx), "NonZero"));
    }
    parsed_free(&p);
    /* an input without a static shape */
    if (parse_node(&p, G("input %x : f32[batch,5]\n%y = Relu(%x)\noutput %y"))) {
        CHECK(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_ERR_DYNAMIC && !f);
        CHECK(strstr(kiln_errmsg(p.ctx), "Relu"));
    }
    parsed_free(&p);
    /* a value needed at compile time that is only known at run time */
    if (parse_node(&p, G("input %x : f32[4,5]\ninput %s : i64[2]\n%y = Reshape(%x, %s)\noutput %y"))) {
        CHECK(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_ERR_UNSUPPORTED && !f);
        CHECK(strstr(kiln_errmsg(p.ctx), "Reshape"));
    }
    parsed_free(&p);
    /* ... unless the graph already knows the output type */
    if (parse_node(&p, G("input %x : f32[4,5]\ninput %s : i64[2]\n%y : f32[10,2] = Reshape(%x, %s)\noutput %y"))) {
        CHECK_MSG(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_OK, "%s", kiln_errmsg(p.ctx));
        CHECK(f && f->outputs[0]->dims[0] == 10);
        tir_func_free(f);
        f = NULL;
    }
    parsed_free(&p);
    /* an out-of-range constant index is rejected like the reference does */
    if (parse_node(&p, G("input %x : f32[4,5]\nconst %i : i64[2] = {1, 4}\n%y = Gather(%x, %i)\noutput %y"))) {
        CHECK(tir_from_node(p.ctx, p.n, NULL, &f) == KILN_ERR_INVALID && !f);
        CHECK(strstr(kiln_errmsg(p.ctx), "out of range"));
    }
    parsed_free(&p);
}

/* Every allocation failure gives an error, never a crash or a leak, and
** leaves the out-parameter alone. */
static void allocation_failures(void) {
    parsed p;
    if (!parse_node(&p, G("input %x : f32[1,3,8,8]\ninput %w : f32[4,3,3,3]\ninput %b : f32[4]\n"
                          "%y = Conv(%x, %w, %b) {pads=[1, 1, 1, 1]}\noutput %y"))) {
        parsed_free(&p);
        return;
    }
    int failures = 0;
    for (long n = 0; n < 100000; n++) {
        tir_func *f = (tir_func *)&failures;
        long live = kiln_mem_live();
        kiln_mem_fail_after(n);
        kiln_status s = tir_from_node(p.ctx, p.n, NULL, &f);
        kiln_mem_fail_after(-1);
        if (s == KILN_OK) {
            tir_func_free(f);
            CHECK(kiln_mem_live() == live);
            break;
        }
        failures++;
        CHECK_MSG(s == KILN_ERR_NOMEM, "n=%ld: %s", n, kiln_errmsg(p.ctx));
        CHECK(f == (tir_func *)&failures);
        CHECK_MSG(kiln_mem_live() == live, "leak at n=%ld", n);
    }
    CHECK(failures > 5);
    parsed_free(&p);
}

/* The evaluator used by test_compute, on a hand-built function. */
static void evaluator_runs_a_matmul(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    tir_func *f = matmul("A", "B", "C", "k", 2, 2, 3, KILN_F32, NULL);
    float a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, 0, 1, 1, 1};
    kiln_tensor in[2], out[1];
    kiln_tensor_init(&in[0], KILN_F32, 2, (int64_t[]){2, 3});
    kiln_tensor_init(&in[1], KILN_F32, 2, (int64_t[]){3, 2});
    in[0].data = a;
    in[1].data = b;
    CHECK(te_run(ctx, f, in, out) == KILN_OK);
    const float *c = out[0].data;
    CHECK(c[0] == 4 && c[1] == 5 && c[2] == 10 && c[3] == 11);
    kiln_tensor_release(&out[0]);
    tir_func_free(f);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(print_form), T(verify_accepts_and_rejects), T(hash_is_canonical), T(equal_workloads_hash_equal),
          T(placeholders_and_outputs), T(clear_errors), T(allocation_failures), T(evaluator_runs_a_matmul))
