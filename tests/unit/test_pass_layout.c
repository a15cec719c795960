/*
** test_pass_layout.c — the blocked channel layout: the ai.kiln ops'
** reference kernels against Conv on random inputs, the compiled ConvBlocked
** kernel (every point of its schedule space on the loop-IR interpreter, the
** default one JIT-compiled) against its reference kernel, and the
** choose_layout pass on small graphs in the text form.
*/
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/compile.h"
#include "autotune/templates.h"
#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/lir.h"
#include "ir/mem.h"
#include "ir/op.h"
#include "ir/sched.h"
#include "ir/tensor.h"
#include "op_node.h"
#include "passes/pass.h"

/* ---- building graphs in the text form ---- */

typedef struct sbuf {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n >= 0 && b->s && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 256;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
}

static uint32_t g_seed = 12345;
static float rnd(void) {
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xffff) / 32768.0f - 1.0f;
}

/* A constant of random values: "const %name : f32[dims] = {...}". */
static void sb_const(sbuf *b, const char *name, int rank, const int64_t *dims) {
    int64_t n = kiln_numel_dims(rank, dims);
    sb_add(b, "  const %%%s : f32[", name);
    for (int d = 0; d < rank; d++) sb_add(b, "%s%lld", d ? "," : "", (long long)dims[d]);
    sb_add(b, "] = {");
    for (int64_t i = 0; i < n; i++) sb_add(b, "%s%.4f", i ? ", " : "", rnd());
    sb_add(b, "}\n");
}

static gir_graph *parse(kiln_ctx *ctx, const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(ctx));
    if (s) return NULL;
    s = pass_infer_shapes(ctx, g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(ctx));
    return g;
}

static int count_op(const gir_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i]->op_type, op);
    return n;
}

static gir_node *find_op(const gir_graph *g, const char *op) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i]->op_type, op)) return g->nodes[i];
    return NULL;
}

/* A random input shaped like graph input k. */
static kiln_tensor random_input(const gir_graph *g, int k) {
    kiln_tensor t;
    gir_type_to_tensor(&g->inputs[k]->type, &t);
    int64_t n = kiln_numel(&t);
    float *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++) d[i] = rnd();
    t.data = d;
    return t;
}

static double max_diff(const kiln_tensor *a, const kiln_tensor *b) {
    if (!kiln_tensor_same_shape(a, b) || a->dtype != KILN_F32 || b->dtype != KILN_F32) return INFINITY;
    double m = 0;
    const float *x = a->data, *y = b->data;
    for (int64_t i = 0; i < kiln_numel(a); i++) {
        double d = fabs((double)x[i] - (double)y[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* ---- a convolution case ---- */

typedef struct conv_case {
    const char *what;
    int64_t ic, oc, h, w, k, stride, pad, dil, group, block;
    bool bias;
} conv_case;

static const conv_case k_convs[] = {
    {"3x3, channels padded", 7, 15, 6, 7, 3, 1, 1, 1, 1, 4, true},
    {"1x1", 15, 14, 5, 9, 1, 1, 0, 1, 1, 8, true},
    {"3x3 stride 2", 7, 11, 9, 8, 3, 2, 1, 1, 1, 4, false},
    {"depthwise", 11, 11, 7, 6, 3, 1, 1, 1, 11, 4, true},
    {"depthwise stride 2", 14, 14, 9, 9, 3, 2, 1, 1, 14, 8, true},
    {"groups of whole blocks", 8, 16, 5, 5, 3, 1, 1, 1, 2, 4, true},
    {"dilation 2, 5x5", 4, 8, 9, 10, 5, 1, 3, 2, 1, 4, false},
    {"NCHW input of 3 channels, 3x3 stride 2", 3, 14, 9, 9, 3, 2, 1, 1, 1, 8, true},
    {"NCHW input of 3 channels, 7x7 no pads", 3, 8, 11, 10, 7, 2, 0, 1, 1, 4, false},
};
#define N_CONVS (int)(sizeof k_convs / sizeof k_convs[0])

/* Fewer input channels than a block: the first Conv reads x as it is. */
static bool reads_nchw(const conv_case *c) { return c->group == 1 && c->ic < c->block; }

/* x -> Conv -> Relu -> 1x1 Conv -> y in the text form (two convolutions:
** a lone regular one stays NCHW). */
static char *conv_graph(const conv_case *c) {
    sbuf b = {0};
    int64_t wd[4] = {c->oc, c->ic / c->group, c->k, c->k}, bd[1] = {c->oc}, w2[4] = {c->oc, c->oc, 1, 1};
    sb_add(&b, "graph \"conv\" {\n  opset 17\n  input %%x : f32[1,%lld,%lld,%lld]\n", (long long)c->ic,
           (long long)c->h, (long long)c->w);
    sb_const(&b, "w", 4, wd);
    if (c->bias) sb_const(&b, "b", 1, bd);
    sb_const(&b, "w2", 4, w2);
    sb_add(&b, "  %%c = Conv(%%x, %%w%s) {group=%lld, kernel_shape=[%lld, %lld], pads=[%lld, %lld, %lld, %lld], "
               "strides=[%lld, %lld], dilations=[%lld, %lld]}\n",
           c->bias ? ", %b" : "", (long long)c->group, (long long)c->k, (long long)c->k, (long long)c->pad,
           (long long)c->pad, (long long)c->pad, (long long)c->pad, (long long)c->stride, (long long)c->stride,
           (long long)c->dil, (long long)c->dil);
    sb_add(&b, "  %%r = Relu(%%c)\n  %%y = Conv(%%r, %%w2)\n  output %%y\n}\n");
    return b.s;
}

/* Runs g on the reference interpreter. */
static bool run_ref(kiln_ctx *ctx, const gir_graph *g, const kiln_tensor *in, int n_in, kiln_tensor *out) {
    kiln_status s = gir_interp_run(ctx, g, in, n_in, out, 1);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(ctx));
    return s == KILN_OK;
}

/* The pass with block c, then the verifier. */
static kiln_status choose(kiln_ctx *ctx, gir_graph *g, int64_t c) {
    pass_choose_layout_set_block(c);
    kiln_status s = pass_choose_layout(ctx, g);
    pass_choose_layout_set_block(-1);
    if (!s) s = gir_verify(ctx, g, "choose_layout");
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(ctx));
    return s;
}

/* Conv on NCHW and ConvBlocked between the conversions, both on the
** reference kernels: the same numbers. */
static void reference_kernels_match_conv(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    for (int i = 0; i < N_CONVS; i++) {
        const conv_case *c = &k_convs[i];
        char *text = conv_graph(c);
        gir_graph *g = parse(ctx, text), *gb = parse(ctx, text);
        free(text);
        if (!g || !gb) continue;
        kiln_tensor x = random_input(g, 0), want, got;
        if (!choose(ctx, gb, c->block) && run_ref(ctx, g, &x, 1, &want)) {
            CHECK_MSG(count_op(gb, "ConvBlocked") == 2 && count_op(gb, "Conv") == 0, "%s: not blocked", c->what);
            CHECK_MSG(count_op(gb, "LayoutToBlocked") == !reads_nchw(c) && count_op(gb, "LayoutFromBlocked") == 1,
                      "%s: %d To, %d From", c->what, count_op(gb, "LayoutToBlocked"), count_op(gb, "LayoutFromBlocked"));
            if (run_ref(ctx, gb, &x, 1, &got)) {
                double d = max_diff(&want, &got);
                CHECK_MSG(d < 1e-4, "%s: blocked differs by %g", c->what, d);
                kiln_tensor_release(&got);
            }
            kiln_tensor_release(&want);
        }
        free(x.data);
        gir_graph_free(g);
        gir_graph_free(gb);
    }
    kiln_ctx_free(ctx);
}

/* LayoutToBlocked pads the last block with zeros; LayoutFromBlocked drops
** them again. */
static void conversions_pad_and_round_trip(void) {
    tnode to, from;
    int64_t dims[4] = {2, 5, 2, 3};
    float x[60];
    for (int i = 0; i < 60; i++) x[i] = (float)i + 1;
    kiln_tensor tx = tn_view(KILN_F32, 4, dims, x);
    const kiln_tensor *in[1] = {&tx};
    tn_init_dom(&to, "ai.kiln", "LayoutToBlocked", 1, 1, 1);
    tn_int(&to, "block", 4);
    CHECK_MSG(tn_run(&to, in) == KILN_OK, "%s", kiln_errmsg(to.ctx));
    int64_t bd[5] = {2, 2, 2, 3, 4};
    CHECK(tn_dims_are(&to.out[0], 5, bd));
    if (tn_dims_are(&to.out[0], 5, bd)) {
        const float *y = to.out[0].data;
        /* n=1, channel 4 (block 1, lane 0) at h=1, w=2; lanes 1..3 of block 1 are padding */
        CHECK(y[(((1 * 2 + 1) * 2 + 1) * 3 + 2) * 4 + 0] == x[((1 * 5 + 4) * 2 + 1) * 3 + 2]);
        CHECK(y[(((1 * 2 + 1) * 2 + 1) * 3 + 2) * 4 + 3] == 0.0f);
        CHECK(y[((0 * 2 + 0) * 2 + 0) * 3 * 4 + 2] == x[2 * 6]);
        tn_init_dom(&from, "ai.kiln", "LayoutFromBlocked", 1, 1, 1);
        tn_int(&from, "channels", 5);
        const kiln_tensor *fin[1] = {&to.out[0]};
        CHECK_MSG(tn_run(&from, fin) == KILN_OK, "%s", kiln_errmsg(from.ctx));
        CHECK(tn_dims_are(&from.out[0], 4, dims) && !memcmp(from.out[0].data, x, sizeof x));
        tn_free(&from);
    }
    tn_free(&to);
    /* channels that do not fill the blocks: a clear error naming the node */
    tn_init_dom(&from, "ai.kiln", "LayoutFromBlocked", 1, 1, 1);
    tn_int(&from, "channels", 9);
    kiln_tensor bad = tn_view(KILN_F32, 5, bd, x);
    const kiln_tensor *bin[1] = {&bad};
    CHECK(tn_infer(&from, bin) == KILN_ERR_SHAPE && tn_names_node(&from));
    tn_free(&from);
}

/* ---- the compiled kernel ---- */

static kiln_status alloc_like(kiln_ctx *ctx, const tir_tensor *t, kiln_tensor *out) {
    kiln_tensor_init(out, t->dtype, t->rank, t->dims);
    kiln_status s = kiln_tensor_alloc(ctx, out);
    if (!s) memset(out->data, 0xa5, kiln_nbytes(out)); /* a NaN pattern: unwritten elements show */
    return s;
}

/* Every point of ConvBlocked's space that varies one knob from the default
** runs on the loop-IR interpreter and equals the reference kernel. */
static void check_space(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, const kiln_tensor *want,
                        const char *what) {
    tir_func *f = NULL;
    kiln_status s = tir_from_node(ctx, n, in, &f);
    CHECK_MSG(s == KILN_OK, "%s: %s", what, kiln_errmsg(ctx));
    if (s) return;
    cg_cpu_target t;
    tune_space sp;
    s = cg_cpu_host(ctx, &t);
    if (!s) s = tune_space_for(ctx, f, &t, &sp);
    CHECK_MSG(s == KILN_OK && !strcmp(sp.template_name, "conv_blocked"), "%s: template %s", what,
              s ? kiln_errmsg(ctx) : sp.template_name);
    int64_t def[TUNE_MAX_KNOBS], pt[TUNE_MAX_KNOBS];
    tune_space_default(&sp, def);
    for (int k = -1; !s && k < sp.n_knobs; k++) {
        for (int v = 0; v < (k < 0 ? 1 : sp.knobs[k].n_values); v++) {
            memcpy(pt, def, sizeof pt);
            if (k >= 0) pt[k] = sp.knobs[k].values[v];
            sch_trace *tr = NULL;
            lir_func *lf = NULL;
            kiln_tensor out;
            void *args[4];
            char buf[256];
            kiln_status r = tune_trace_from_knobs(ctx, f, &t, &sp, pt, &tr);
            if (!r) r = sch_lower(ctx, f, tr, &lf);
            if (!r) r = alloc_like(ctx, f->outputs[0], &out);
            if (!r) {
                for (int i = 0; i < f->n_inputs; i++) args[i] = (void *)in[f->inputs[i]->arg_index]->data;
                args[f->n_inputs] = out.data;
                r = lir_interp_run(ctx, lf, args);
                double d = r ? 0 : max_diff(want, &out);
                CHECK_MSG(d < 1e-4, "%s at %s: differs by %g", what, tune_point_str(&sp, pt, buf, sizeof buf), d);
                kiln_tensor_release(&out);
            }
            CHECK_MSG(r == KILN_OK, "%s at %s: %s", what, tune_point_str(&sp, pt, buf, sizeof buf), kiln_errmsg(ctx));
            lir_func_free(lf);
            sch_trace_free(tr);
        }
    }
    tir_func_free(f);
}

/* The ConvBlocked node of a blocked graph, run alone: its inputs (the
** blocked x computed by the reference, the constants), its reference output. */
static void compiled_kernel_matches_reference(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    for (int i = 0; i < N_CONVS; i++) {
        const conv_case *c = &k_convs[i];
        char *text = conv_graph(c);
        gir_graph *g = parse(ctx, text);
        free(text);
        if (!g || choose(ctx, g, c->block)) {
            gir_graph_free(g);
            continue;
        }
        gir_node *to = find_op(g, "LayoutToBlocked"), *cb = find_op(g, "ConvBlocked");
        kiln_tensor x = random_input(g, 0), xb, want, got;
        const kiln_tensor *xin[1] = {&x};
        CHECK_MSG(cb && (!to) == reads_nchw(c), "%s: %s", c->what, cb ? "conversion" : "no ConvBlocked");
        bool have_x = to ? cb && !gir_run_node(ctx, to, xin, &xb) : cb && cb->inputs[0] == g->inputs[0];
        if (have_x) {
            const kiln_tensor *in[3] = {to ? &xb : &x, cb->inputs[1]->constant,
                                        cb->n_inputs > 2 ? cb->inputs[2]->constant : NULL};
            if (!gir_run_node(ctx, cb, in, &want)) {
                check_space(ctx, cb, in, &want, c->what);
                kiln_tensor_release(&want);
            }
            if (to) kiln_tensor_release(&xb);
        }
        /* the whole blocked graph compiled (JIT) against the reference interpreter */
        kc_options o;
        kc_options_default(&o);
        o.passes.opt_level = 0;
        kc_plan *p = NULL;
        kiln_tensor ref;
        kiln_status s = kc_compile(ctx, g, &x, 1, &o, &p);
        CHECK_MSG(s == KILN_OK, "%s: %s", c->what, kiln_errmsg(ctx));
        for (int k = 0; !s && k < p->n_steps; k++)
            CHECK_MSG(p->steps[k].kernel, "%s: %s runs its reference kernel", c->what, p->steps[k].node->op_type);
        if (!s && run_ref(ctx, g, &x, 1, &ref)) {
            s = kc_run(ctx, p, &x, 1, &got, 1);
            CHECK_MSG(s == KILN_OK, "%s: %s", c->what, kiln_errmsg(ctx));
            if (!s) {
                double d = max_diff(&ref, &got);
                CHECK_MSG(d < 1e-4, "%s: compiled differs by %g", c->what, d);
                kiln_tensor_release(&got);
            }
            kiln_tensor_release(&ref);
        }
        kc_plan_free(p);
        free(x.data);
        gir_graph_free(g);
    }
    kiln_ctx_free(ctx);
}

/* ---- the pass on graphs ---- */

/* An inverted residual block (1x1 expand, Clip, 3x3 depthwise, Clip, a
** per-channel scale, 1x1 project, residual Add), then a pool at the edge. */
static char *block_graph(int64_t ch, int64_t mid) {
    sbuf b = {0};
    int64_t we[4] = {mid, ch, 1, 1}, wd[4] = {mid, 1, 3, 3}, wp[4] = {ch, mid, 1, 1}, bm[1] = {mid}, bc[1] = {ch};
    int64_t sc[3] = {mid, 1, 1};
    sb_add(&b, "graph \"block\" {\n  opset 17\n  input %%x : f32[1,%lld,6,5]\n", (long long)ch);
    sb_const(&b, "we", 4, we);
    sb_const(&b, "be", 1, bm);
    sb_const(&b, "wd", 4, wd);
    sb_const(&b, "scale", 3, sc);
    sb_const(&b, "wp", 4, wp);
    sb_const(&b, "bp", 1, bc);
    sb_add(&b, "  const %%lo : f32[] = {0}\n  const %%hi : f32[] = {6}\n  const %%half : f32[] = {0.5}\n");
    sb_add(&b, "  %%e = Conv(%%x, %%we, %%be) {kernel_shape=[1, 1]}\n"
               "  %%e6 = Clip(%%e, %%lo, %%hi)\n"
               "  %%d = Conv(%%e6, %%wd) {group=%lld, kernel_shape=[3, 3], pads=[1, 1, 1, 1]}\n"
               "  %%d6 = Clip(%%d, %%lo, %%hi)\n"
               "  %%s = Mul(%%d6, %%scale)\n"
               "  %%p = Conv(%%s, %%wp, %%bp) {kernel_shape=[1, 1]}\n"
               "  %%ph = Mul(%%p, %%half)\n"
               "  %%r = Add(%%ph, %%p)\n"
               "  %%q = Conv(%%r, %%wp2) {kernel_shape=[1, 1]}\n"
               "  %%y = GlobalAveragePool(%%q)\n"
               "  output %%y\n  output %%r\n}\n", (long long)mid);
    return b.s;
}

static char *with_wp2(int64_t ch) {
    char *body = block_graph(ch, 2 * ch);
    sbuf b = {0};
    int64_t w2[4] = {ch, ch, 1, 1};
    char *at = strstr(body, "  const %lo");
    sb_add(&b, "%.*s", (int)(at - body), body);
    sb_const(&b, "wp2", 4, w2);
    sb_add(&b, "%s", at);
    free(body);
    return b.s;
}

static bool same_outputs(kiln_ctx *ctx, const gir_graph *a, const gir_graph *b, const char *what) {
    kiln_tensor x = random_input(a, 0), oa[2], ob[2];
    bool ok = false;
    kiln_status s = gir_interp_run(ctx, a, &x, 1, oa, a->n_outputs);
    if (!s) {
        s = gir_interp_run(ctx, b, &x, 1, ob, b->n_outputs);
        CHECK_MSG(s == KILN_OK, "%s: %s", what, kiln_errmsg(ctx));
        ok = !s;
        for (int k = 0; !s && k < a->n_outputs; k++) {
            double d = max_diff(&oa[k], &ob[k]);
            CHECK_MSG(d < 1e-4, "%s: output %d differs by %g", what, k, d);
            ok &= d < 1e-4;
            kiln_tensor_release(&ob[k]);
        }
        for (int k = 0; k < a->n_outputs; k++) kiln_tensor_release(&oa[k]);
    }
    free(x.data);
    return ok;
}

/* One region: every Conv and the elementwise ops between them blocked, one
** conversion in, one out before the pool and one for the graph output r,
** which keeps its name. */
static void region_of_a_block(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    char *text = with_wp2(12);
    gir_graph *g = parse(ctx, text), *gb = parse(ctx, text);
    free(text);
    if (g && gb && !choose(ctx, gb, 4)) {
        CHECK(count_op(gb, "Conv") == 0 && count_op(gb, "ConvBlocked") == 4);
        CHECK_MSG(count_op(gb, "LayoutToBlocked") == 1 && count_op(gb, "LayoutFromBlocked") == 2, "%d To, %d From",
                  count_op(gb, "LayoutToBlocked"), count_op(gb, "LayoutFromBlocked"));
        CHECK(count_op(gb, "Clip") == 2 && count_op(gb, "Mul") == 2 && count_op(gb, "Add") == 1);
        gir_value *r = gir_value_find(gb, "r");
        CHECK(r && r->producer && !strcmp(r->producer->op_type, "LayoutFromBlocked") && r->is_output);
        gir_node *pool = find_op(gb, "GlobalAveragePool");
        CHECK(pool && pool->inputs[0]->producer && !strcmp(pool->inputs[0]->producer->op_type, "LayoutFromBlocked"));
        same_outputs(ctx, g, gb, "block");
        /* a second run finds nothing more to do */
        int n = gb->n_nodes;
        CHECK(!choose(ctx, gb, 4) && gb->n_nodes == n);
    }
    gir_graph_free(g);
    gir_graph_free(gb);
    kiln_ctx_free(ctx);
}

/* A LayoutFromBlocked read by a LayoutToBlocked of the same block cancels;
** of another block it stays. */
static void conversions_that_meet_cancel(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    static const char *const text =
        "graph \"meet\" {\n  opset 17\n  input %x : f32[1,6,3,3]\n"
        "  %a = \"ai.kiln\"::LayoutToBlocked@1(%x) {block=4}\n"
        "  %b = \"ai.kiln\"::LayoutFromBlocked@1(%a) {channels=6}\n"
        "  %r = Relu(%b)\n"
        "  %c = \"ai.kiln\"::LayoutToBlocked@1(%b) {block=4}\n"
        "  %d = \"ai.kiln\"::LayoutFromBlocked@1(%c) {channels=6}\n"
        "  %e = \"ai.kiln\"::LayoutToBlocked@1(%d) {block=2}\n"
        "  %f = \"ai.kiln\"::LayoutFromBlocked@1(%e) {channels=6}\n"
        "  %y = Add(%f, %r)\n"
        "  output %y\n}\n";
    gir_graph *g = parse(ctx, text), *gb = parse(ctx, text);
    if (g && gb && !choose(ctx, gb, 4)) {
        /* c went (d reads a), block 2 stays; b still feeds the Relu */
        CHECK_MSG(count_op(gb, "LayoutToBlocked") == 2 && count_op(gb, "LayoutFromBlocked") == 3, "%d To, %d From",
                  count_op(gb, "LayoutToBlocked"), count_op(gb, "LayoutFromBlocked"));
        gir_value *d = gir_value_find(gb, "d");
        CHECK(d && d->producer && d->producer->inputs[0] == gir_value_find(gb, "a"));
        same_outputs(ctx, g, gb, "meet");
    }
    gir_graph_free(g);
    gir_graph_free(gb);
    /* block 0 keeps NCHW but still cancels what meets */
    gb = parse(ctx, text);
    if (gb && !choose(ctx, gb, 0)) CHECK(count_op(gb, "LayoutToBlocked") == 2);
    gir_graph_free(gb);
    kiln_ctx_free(ctx);
}

/* What must stay NCHW: unknown shapes, weights computed at run time,
** automatic pads, channels that would be mostly padding (2 of a block of
** 4), block 0. */
static void what_stays_nchw(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    static const char *const cases[] = {
        "graph \"dyn\" {\n  opset 17\n  input %x : f32[?,8,5,5]\n  const %w : f32[8,8,1,1] = {%W64}\n"
        "  %y = Conv(%x, %w)\n  output %y\n}\n",
        "graph \"wvar\" {\n  opset 17\n  input %x : f32[1,8,5,5]\n  input %w : f32[8,8,1,1]\n"
        "  %y = Conv(%x, %w)\n  output %y\n}\n",
        "graph \"auto\" {\n  opset 17\n  input %x : f32[1,8,5,5]\n  const %w : f32[8,8,1,1] = {%W64}\n"
        "  %y = Conv(%x, %w) {auto_pad=\"SAME_UPPER\"}\n  output %y\n}\n",
        "graph \"two\" {\n  opset 17\n  input %x : f32[1,2,5,5]\n  const %w : f32[8,2,1,1] = {%W16}\n"
        "  %y = Conv(%x, %w)\n  output %y\n}\n",
    };
    char w64[64 * 6], w16[16 * 6];
    w64[0] = w16[0] = 0;
    for (int i = 0; i < 64; i++) strcat(w64, i ? ", 0.5" : "0.5");
    for (int i = 0; i < 16; i++) strcat(w16, i ? ", 0.5" : "0.5");
    for (int i = 0; i < 4; i++) {
        sbuf b = {0};
        const char *t = cases[i], *at = strstr(t, "%W");
        if (at) sb_add(&b, "%.*s%s%s", (int)(at - t), t, at[2] == '6' ? w64 : w16, at + 4);
        else sb_add(&b, "%s", t);
        gir_graph *g = parse(ctx, b.s);
        free(b.s);
        if (g && !choose(ctx, g, 4)) CHECK_MSG(count_op(g, "Conv") == 1 && g->n_nodes == 1, "case %d was blocked", i);
        gir_graph_free(g);
    }
    char *text = conv_graph(&k_convs[0]);
    gir_graph *g = parse(ctx, text);
    free(text);
    if (g && !choose(ctx, g, 0)) CHECK(count_op(g, "Conv") == 2 && count_op(g, "ConvBlocked") == 0);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

/* A region of one regular Conv does not pay for its conversions; one
** depthwise Conv does. */
static void lone_convolutions(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    for (int dw = 0; dw < 2; dw++) {
        sbuf b = {0};
        int64_t wd[4] = {8, dw ? 1 : 8, 3, 3};
        sb_add(&b, "graph \"lone\" {\n  opset 17\n  input %%x : f32[1,8,6,6]\n");
        sb_const(&b, "w", 4, wd);
        sb_add(&b, "  %%c = Conv(%%x, %%w) {group=%d, pads=[1, 1, 1, 1]}\n  %%y = Relu(%%c)\n  output %%y\n}\n",
               dw ? 8 : 1);
        gir_graph *g = parse(ctx, b.s), *gb = parse(ctx, b.s);
        free(b.s);
        if (g && gb && !choose(ctx, gb, 4)) {
            CHECK_MSG(count_op(gb, "ConvBlocked") == dw && count_op(gb, "Conv") == 1 - dw, "depthwise %d", dw);
            CHECK(count_op(gb, "Relu") == 1);
            same_outputs(ctx, g, gb, dw ? "lone depthwise" : "lone conv");
        }
        gir_graph_free(g);
        gir_graph_free(gb);
    }
    kiln_ctx_free(ctx);
}

/* ConvBlocked's shape checks: clear errors naming the node. */
static void bad_blocked_shapes_are_errors(void) {
    tnode t;
    int64_t xd[5] = {1, 2, 4, 4, 4}, wd[6] = {2, 2, 3, 3, 3, 4}; /* weight blocks of 3 input lanes, blocks of 4 */
    float z[2048] = {0};
    kiln_tensor x = tn_view(KILN_F32, 5, xd, z), w = tn_view(KILN_F32, 6, wd, z);
    const kiln_tensor *in[2] = {&x, &w};
    tn_init_dom(&t, "ai.kiln", "ConvBlocked", 1, 2, 1);
    CHECK(tn_infer(&t, in) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
    wd[4] = 4;
    w = tn_view(KILN_F32, 6, wd, z);
    tn_init_dom(&t, "ai.kiln", "ConvBlocked", 1, 2, 1);
    tn_int(&t, "group", 3);
    CHECK(tn_infer(&t, in) == KILN_ERR_SHAPE && tn_names_node(&t));
    tn_free(&t);
    tn_init_dom(&t, "ai.kiln", "ConvBlocked", 1, 2, 1);
    CHECK_MSG(tn_infer(&t, in) == KILN_OK, "%s", kiln_errmsg(t.ctx));
    int64_t yd[5] = {1, 2, 2, 2, 4};
    CHECK(tn_dims_are(&t.out[0], 5, yd));
    tn_free(&t);
}

/* Every allocation of the pass failing in turn: out of memory or done,
** nothing leaks, and once it is done the graph is the blocked one. */
static void allocation_failures_leak_nothing(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    char *text = with_wp2(12);
    bool done = false;
    pass_choose_layout_set_block(4);
    for (long n = 0; n < 5000 && !done; n++) {
        long base = kiln_mem_live();
        gir_graph *g = parse(ctx, text);
        if (!g) break;
        kiln_mem_fail_after(n);
        kiln_status s = pass_choose_layout(ctx, g);
        kiln_mem_fail_after(-1);
        if (s == KILN_OK) {
            done = true;
            CHECK(gir_verify(ctx, g, "choose_layout") == KILN_OK && count_op(g, "ConvBlocked") == 4);
        } else {
            CHECK_MSG(s == KILN_ERR_NOMEM, "allocation %ld: %s", n, kiln_errmsg(ctx));
        }
        gir_graph_free(g);
        CHECK_MSG(kiln_mem_live() == base, "allocation %ld leaks %ld blocks", n, kiln_mem_live() - base);
    }
    pass_choose_layout_set_block(-1);
    CHECK(done);
    free(text);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(reference_kernels_match_conv), T(conversions_pad_and_round_trip), T(compiled_kernel_matches_reference),
          T(region_of_a_block), T(conversions_that_meet_cancel), T(what_stays_nchw), T(lone_convolutions), T(bad_blocked_shapes_are_errors),
          T(allocation_failures_leak_nothing))
