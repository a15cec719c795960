/*
** choose_layout.c — layout selection for convolution regions.
**
** Regions of Conv nodes (static 4-D f32 input, constant weights and bias)
** joined by layout-agnostic ops (unary activations, Clip with constant
** bounds, Add/Sub/Mul/Div of two region tensors or of a region tensor and a
** scalar or per-channel [C,1,1] constant) move to the blocked channel layout
** N C/c H W c of kiln's ai.kiln ops: each Conv becomes a ConvBlocked whose
** weights and bias are blocked here, at compile time; each elementwise op
** runs on the blocked tensors (its per-channel constants blocked too);
** LayoutToBlocked goes where a region reads an NCHW value, LayoutFromBlocked
** where NCHW code (or a graph output) reads a region's value. Conversions
** that meet (a LayoutFromBlocked read by a LayoutToBlocked of the same block)
** cancel.
**
** A Conv with fewer input channels than a block reading an NCHW value (an
** image's 3 channels) reads it as it is, as blocks of one channel, instead
** of padding it to a whole block: its output is blocked, no conversion and
** no multiply-adds on padding (cl_narrow).
**
** Channels past the real count (the last block's padding) hold values that
** nothing reads for a result: the blocked weights are zero there, so a
** ConvBlocked ignores them, and LayoutFromBlocked drops them. They stay
** finite (Div's padded divisor lanes are 1, a region tensor is never a
** divisor), so 0 * pad stays 0.
**
** The block (c) is a knob: pass_choose_layout_set_block (the tuner), else
** the environment variable KILN_LAYOUT_BLOCK, else the host's vector width
** in f32 lanes; 0 keeps NCHW. A Conv moves only when it pays: its channels
** padded to whole blocks cost little (cl_pays), and its region holds a
** depthwise Conv or several Convs to share the conversions (cl_drop_lone).
** Measured on one AVX-512 core: depthwise 3x3 runs 1.7-2.7x faster blocked
** (14x14 to 112x112), 1x1 and 3x3 about as fast as in NCHW.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg_llvm.h"
#include "ir/ctx.h"
#include "ir/op.h"
#include "ir/tensor.h"
#include "pass.h"

#define CL_DOMAIN "ai.kiln"
#define CL_OPSET 1

static int64_t g_block = -1;

void pass_choose_layout_set_block(int64_t block) { g_block = block < 0 ? -1 : block; }

int64_t pass_choose_layout_block(void) {
    if (g_block >= 0) return g_block;
    const char *e = getenv("KILN_LAYOUT_BLOCK");
    if (e && *e) {
        long v = strtol(e, NULL, 10);
        return v > 0 && v <= 64 ? v : 0;
    }
    static int64_t host = -1;
    if (host < 0) {
        cg_cpu_target t;
        kiln_ctx *ctx = NULL;
        int64_t lanes = 8;
        if (!kiln_ctx_new(&ctx) && !cg_cpu_host(ctx, &t) && t.vector_bits >= 128) lanes = t.vector_bits / 32;
        kiln_ctx_free(ctx);
        host = lanes;
    }
    return host;
}

/* ---- what may move ---- */

typedef struct cl_state {
    kiln_ctx *ctx;
    gir_graph *g;
    int64_t c;
    int n_vals;       /* values that existed before the pass */
    bool *in_region;  /* by node id (original nodes) */
    gir_value **blk;  /* by value id: the blocked form of an original value */
} cl_state;

static bool is_static_f32_4d(const gir_value *v) {
    return v && v->type.dtype == KILN_F32 && v->type.rank == 4 && gir_type_is_static(&v->type);
}

static int64_t dimv(const gir_value *v, int d) { return v->type.dims[d].value; }
static int64_t round_up(int64_t x, int64_t c) { return (x + c - 1) / c * c; }

static bool same_type(const gir_type *a, const gir_type *b) {
    if (a->dtype != b->dtype || a->rank != b->rank || !gir_type_is_static(a) || !gir_type_is_static(b)) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d].value != b->dims[d].value) return false;
    return true;
}

static bool region_value(const cl_state *st, const gir_value *v) {
    return v && v->id < st->n_vals && v->producer && st->in_region[v->producer->id] && is_static_f32_4d(v);
}

/* Padded channels cost multiply-adds on zeros: worth it while they are a
** small share (a 3-channel image input would run 5x the work). */
static bool cl_pays(int64_t ic, int64_t oc, int64_t c, bool depthwise) {
    double w = depthwise ? (double)round_up(oc, c) / (double)oc
                         : (double)round_up(ic, c) * (double)round_up(oc, c) / ((double)ic * (double)oc);
    return w <= 1.4;
}

/* A one-group Conv with fewer input channels than a block, on a value
** outside the blocked region (NCHW): it reads that value as it is. */
static bool cl_narrow(const cl_state *st, const gir_node *n) {
    const gir_value *x = n->inputs[0];
    return gir_attr_int(n, "group", 1) == 1 && dimv(x, 1) < st->c && !region_value(st, x) &&
           !(x->id < st->n_vals && st->blk && st->blk[x->id]);
}

/* A Conv kiln can block: 2-D, explicit pads, constant f32 weights and bias,
** one group, depthwise, or groups of whole blocks. */
static bool cl_conv_ok(const cl_state *st, const gir_node *n) {
    if (strcmp(n->op_type, "Conv") || n->domain[0] || n->n_outputs != 1 || !n->outputs[0]) return false;
    const gir_value *x = gir_input(n, 0), *w = gir_input(n, 1), *b = gir_input(n, 2);
    if (!is_static_f32_4d(x) || !w || !w->constant || w->constant->dtype != KILN_F32 || w->constant->rank != 4) return false;
    if (b && (!b->constant || b->constant->dtype != KILN_F32 || kiln_numel(b->constant) != w->constant->dims[0]))
        return false;
    if (!is_static_f32_4d(n->outputs[0])) return false;
    const char *ap = gir_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET")) return false;
    const int64_t *v;
    int k = gir_attr_ints(n, "kernel_shape", &v);
    if (k >= 0 && (k != 2 || v[0] != w->constant->dims[2] || v[1] != w->constant->dims[3])) return false;
    int64_t G = gir_attr_int(n, "group", 1), IC = dimv(x, 1), OC = w->constant->dims[0], c = st->c;
    if (G < 1 || IC % G || OC % G || w->constant->dims[1] != IC / G) return false;
    bool dw = G > 1 && G == IC && G == OC;
    if (G > 1 && !dw && ((IC / G) % c || (OC / G) % c)) return false;
    return cl_pays(cl_narrow(st, n) ? c : IC, OC, c, dw);
}

static bool cl_unary(const char *op) {
    static const char *const ops[] = {"Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "LeakyRelu", "Tanh",
                                      "Neg", "Abs", NULL};
    for (int i = 0; ops[i]; i++)
        if (!strcmp(op, ops[i])) return true;
    return false;
}

static bool cl_binary(const char *op) {
    return !strcmp(op, "Add") || !strcmp(op, "Sub") || !strcmp(op, "Mul") || !strcmp(op, "Div");
}

/* A constant that broadcasts per channel over [N, C, H, W]: one element, or
** C of them as [C,1,1] / [1,C,1,1]. */
static bool cl_channel_const(const gir_value *k, int64_t C) {
    if (!k || !k->constant || k->constant->dtype != KILN_F32) return false;
    const kiln_tensor *t = k->constant;
    int64_t n = kiln_numel(t);
    if (n == 1) return true;
    if (n != C || t->rank < 3 || t->rank > 4) return false;
    return t->dims[t->rank - 3] == C && (t->rank == 3 || t->dims[0] == 1);
}

/* A constant f32 vector of C values (BatchNormalization's parameters). */
static bool cl_channel_vec(const gir_value *k, int64_t C) {
    return k && k->constant && k->constant->dtype == KILN_F32 && k->constant->rank == 1 && k->constant->dims[0] == C;
}

static bool cl_elem_ok(const cl_state *st, const gir_node *n) {
    if (n->domain[0] || n->n_outputs != 1 || !is_static_f32_4d(n->outputs[0])) return false;
    const gir_value *x = gir_input(n, 0);
    if (!strcmp(n->op_type, "BatchNormalization")) {
        if (n->n_inputs != 5 || gir_attr_int(n, "training_mode", 0)) return false;
        for (int i = 1; i < 5; i++)
            if (!cl_channel_vec(n->inputs[i], dimv(n->outputs[0], 1))) return false;
        return region_value(st, x);
    }
    if (cl_unary(n->op_type)) {
        for (int i = 1; i < n->n_inputs; i++)
            if (n->inputs[i] && (!n->inputs[i]->constant || kiln_numel(n->inputs[i]->constant) != 1)) return false;
        return region_value(st, x);
    }
    if (!cl_binary(n->op_type) || n->n_inputs != 2) return false;
    const gir_value *y = n->inputs[1];
    bool rx = region_value(st, x), ry = region_value(st, y);
    int64_t C = dimv(n->outputs[0], 1);
    if (rx && ry) return strcmp(n->op_type, "Div") && same_type(&x->type, &y->type) &&
                         same_type(&x->type, &n->outputs[0]->type);
    if (rx) return cl_channel_const(y, C) && same_type(&x->type, &n->outputs[0]->type);
    if (ry) return strcmp(n->op_type, "Div") && cl_channel_const(x, C) && same_type(&y->type, &n->outputs[0]->type);
    return false;
}

static int cl_root(int *up, int i) {
    while (up[i] != i) i = up[i] = up[up[i]];
    return i;
}

static bool cl_depthwise(const gir_node *n) {
    int64_t G = gir_attr_int(n, "group", 1);
    return G > 1 && G == n->inputs[1]->constant->dims[0] && n->inputs[1]->constant->dims[1] == 1;
}

/* A region pays for its two conversions through its depthwise convolutions
** (the blocked layout's clear gain) or by sharing them among several
** convolutions; a lone regular Conv between conversions runs no faster than
** in NCHW (measured: parity for 1x1 and 3x3), so its region is dropped.
** Regions are closed under reading each other's values, so dropping one
** whole leaves the others consistent. */
static kiln_status cl_drop_lone(cl_state *st) {
    int n = st->g->n_nodes;
    int *up = kiln_calloc((size_t)n * 3, sizeof *up), *convs = up + n, *dw = up + 2 * n;
    if (!up) return kiln_fail(st->ctx, KILN_ERR_NOMEM, "choose_layout: out of memory");
    for (int i = 0; i < n; i++) up[i] = i;
    for (int i = 0; i < n; i++) {
        const gir_node *m = st->g->nodes[i];
        for (int k = 0; st->in_region[i] && k < m->n_inputs; k++)
            if (region_value(st, m->inputs[k])) up[cl_root(up, i)] = cl_root(up, m->inputs[k]->producer->id);
    }
    for (int i = 0; i < n; i++) {
        const gir_node *m = st->g->nodes[i];
        if (!st->in_region[i] || strcmp(m->op_type, "Conv")) continue;
        convs[cl_root(up, i)]++;
        dw[cl_root(up, i)] += cl_depthwise(m);
    }
    for (int i = 0; i < n; i++) {
        int r = cl_root(up, i);
        if (convs[r] < 2 && !dw[r]) st->in_region[i] = false;
    }
    kiln_free(up);
    return KILN_OK;
}

static kiln_status cl_mark(cl_state *st) {
    for (int i = 0; i < st->g->n_nodes; i++) {
        const gir_node *n = st->g->nodes[i];
        st->in_region[i] = cl_conv_ok(st, n) || cl_elem_ok(st, n);
    }
    return cl_drop_lone(st);
}

/* ---- blocked constants ---- */

/* A zeroed buffer for a constant of `dims`. */
static float *cl_buf(int rank, const int64_t *dims) {
    int64_t n = kiln_numel_dims(rank, dims);
    return n > 0 ? kiln_calloc((size_t)n, sizeof(float)) : NULL;
}

static gir_value *cl_const_done(cl_state *st, int rank, const int64_t *dims, float *data) {
    kiln_tensor t;
    kiln_tensor_init(&t, KILN_F32, rank, dims);
    t.data = data;
    gir_value *v = pass_new_constant(st->g, NULL, &t);
    kiln_free(data);
    return v;
}

/* Weights [OC, ICg, KH, KW] -> [OCB, ICBW, KH, KW, bi, c] (see ops_layout.c);
** an NCHW input's blocks are of one channel (ci 1), else of c. */
static gir_value *cl_weights(cl_state *st, const kiln_tensor *w, bool dw, int64_t ci) {
    int64_t c = st->c, OC = w->dims[0], ICg = w->dims[1], KH = w->dims[2], KW = w->dims[3];
    int64_t bi = dw ? 1 : ci, OCB = (OC + c - 1) / c, ICBW = dw ? 1 : (ICg + ci - 1) / ci;
    int64_t dims[6] = {OCB, ICBW, KH, KW, bi, c};
    float *d = cl_buf(6, dims);
    if (!d) return NULL;
    const float *src = w->data;
    for (int64_t oc = 0; oc < OC; oc++)
        for (int64_t ic = 0; ic < ICg; ic++)
            for (int64_t k = 0; k < KH * KW; k++) {
                int64_t ib = dw ? 0 : ic / ci, ii = dw ? 0 : ic % ci;
                d[(((oc / c) * ICBW + ib) * KH * KW + k) * bi * c + ii * c + oc % c] = src[(oc * ICg + ic) * KH * KW + k];
            }
    return cl_const_done(st, 6, dims, d);
}

/* A per-channel vector (C values) blocked as [CB, 1, 1, c] (rank2: [CB, c]),
** padded lanes `pad`. */
static gir_value *cl_channels(cl_state *st, const kiln_tensor *t, int64_t C, bool rank2, float pad) {
    int64_t c = st->c, CB = (C + c - 1) / c;
    int64_t d4[4] = {CB, 1, 1, c}, d2[2] = {CB, c};
    float *d = cl_buf(rank2 ? 2 : 4, rank2 ? d2 : d4);
    if (!d) return NULL;
    for (int64_t i = 0; i < CB * c; i++) d[i] = i < C ? ((const float *)t->data)[i] : pad;
    return cl_const_done(st, rank2 ? 2 : 4, rank2 ? d2 : d4, d);
}

/* ---- the rewrite ---- */

static gir_node *cl_insert(cl_state *st, gir_node *before, const char *op, bool kiln_op, int opset,
                           gir_value *const *in, int n_in, int n_attrs) {
    gir_node *n = pass_insert_node(st->g, before, op, NULL, in, n_in, 1, n_attrs);
    if (n && kiln_op) n->domain = CL_DOMAIN, n->opset = CL_OPSET;
    else if (n) n->opset = opset;
    return n;
}

/* The blocked form of v, converted once (before `before`) when v comes
** from outside the region. */
static gir_value *cl_blocked_input(cl_state *st, gir_value *v, gir_node *before) {
    if (v->id < st->n_vals && st->blk[v->id]) return st->blk[v->id];
    gir_node *t = cl_insert(st, before, "LayoutToBlocked", true, 0, &v, 1, 1);
    if (!t || !pass_set_attr_int(st->g, t, 0, "block", st->c)) return NULL;
    if (v->id < st->n_vals) st->blk[v->id] = t->outputs[0];
    return t->outputs[0];
}

static bool cl_copy_ints(cl_state *st, gir_node *to, int k, const gir_node *from, const char *name, int count,
                         int64_t dflt) {
    const int64_t *v;
    int64_t vals[4];
    int got = gir_attr_ints(from, name, &v);
    for (int i = 0; i < count; i++) vals[i] = got == count ? v[i] : dflt;
    return pass_set_attr_ints(st->g, to, k, name, vals, count);
}

static gir_node *cl_conv(cl_state *st, gir_node *n) {
    const kiln_tensor *w = n->inputs[1]->constant;
    const gir_value *b = gir_input(n, 2);
    int64_t G = gir_attr_int(n, "group", 1), IC = dimv(n->inputs[0], 1);
    bool dw = G > 1 && G == IC && G == w->dims[0], narrow = cl_narrow(st, n);
    gir_value *in[3] = {narrow ? n->inputs[0] : cl_blocked_input(st, n->inputs[0], n),
                        cl_weights(st, w, dw, narrow ? 1 : st->c), NULL};
    if (b) in[2] = cl_channels(st, b->constant, w->dims[0], true, 0.0f);
    if (!in[0] || !in[1] || (b && !in[2])) return NULL;
    gir_node *c = cl_insert(st, n, "ConvBlocked", true, 0, in, b ? 3 : 2, 4);
    if (!c || !cl_copy_ints(st, c, 0, n, "strides", 2, 1) || !cl_copy_ints(st, c, 1, n, "pads", 4, 0) ||
        !cl_copy_ints(st, c, 2, n, "dilations", 2, 1) || !pass_set_attr_int(st->g, c, 3, "group", G))
        return NULL;
    return c;
}

static gir_node *cl_elem(cl_state *st, gir_node *n) {
    gir_value *in[8];
    int64_t C = dimv(n->outputs[0], 1);
    if (n->n_inputs > 8) return NULL;
    for (int i = 0; i < n->n_inputs; i++) {
        gir_value *v = n->inputs[i];
        if (!v || (v->constant && kiln_numel(v->constant) == 1)) in[i] = v;
        else if (v->constant) in[i] = cl_channels(st, v->constant, C, false, strcmp(n->op_type, "Div") ? 0.0f : 1.0f);
        else in[i] = v->id < st->n_vals ? st->blk[v->id] : NULL;
        if (v && !in[i]) return NULL;
    }
    gir_node *e = cl_insert(st, n, n->op_type, false, n->opset, in, n->n_inputs, n->n_attrs);
    if (!e) return NULL;
    for (int a = 0; a < n->n_attrs; a++) e->attrs[a] = n->attrs[a];
    return e;
}

/* Inference BatchNormalization as the per-channel affine x * scale + shift
** (Mul then Add on the blocked tensor). */
static gir_node *cl_batch_norm(cl_state *st, gir_node *n) {
    int64_t C = dimv(n->outputs[0], 1);
    double eps = gir_attr_float(n, "epsilon", 1e-5);
    float *sc = kiln_calloc((size_t)C * 2, sizeof *sc);
    if (!sc) return NULL;
    const float *g = n->inputs[1]->constant->data, *b = n->inputs[2]->constant->data;
    const float *m = n->inputs[3]->constant->data, *v = n->inputs[4]->constant->data;
    for (int64_t i = 0; i < C; i++) {
        double k = (double)g[i] / sqrt((double)v[i] + eps);
        sc[i] = (float)k;
        sc[C + i] = (float)((double)b[i] - (double)m[i] * k);
    }
    kiln_tensor ts, tb;
    kiln_tensor_init(&ts, KILN_F32, 1, &C);
    kiln_tensor_init(&tb, KILN_F32, 1, &C);
    ts.data = sc, tb.data = sc + C;
    gir_value *in[2] = {n->inputs[0]->id < st->n_vals ? st->blk[n->inputs[0]->id] : NULL,
                        cl_channels(st, &ts, C, false, 0.0f)};
    gir_value *shift = cl_channels(st, &tb, C, false, 0.0f);
    kiln_free(sc);
    int opset = (int)gir_opset_version(st->g, "");
    gir_node *mul = in[0] && in[1] && shift ? cl_insert(st, n, "Mul", false, opset, in, 2, 0) : NULL;
    if (!mul) return NULL;
    in[0] = mul->outputs[0], in[1] = shift;
    return cl_insert(st, n, "Add", false, opset, in, 2, 0);
}

/* Readers of v among the region's nodes (input slots). */
static int cl_region_reads(gir_node *const *reg, int n_reg, const gir_value *v) {
    int count = 0;
    for (int i = 0; i < n_reg; i++)
        for (int k = 0; k < reg[i]->n_inputs; k++) count += reg[i]->inputs[k] == v;
    return count;
}

/* A LayoutFromBlocked before n that takes over v (n's output) for the
** readers outside the region. */
static bool cl_from_blocked(cl_state *st, gir_node *n, gir_value *v) {
    gir_value *src = st->blk[v->id];
    gir_node *f = cl_insert(st, n, "LayoutFromBlocked", true, 0, &src, 1, 1);
    if (!f || !pass_set_attr_int(st->g, f, 0, "channels", dimv(v, 1))) return false;
    f->outputs[0]->producer = NULL;
    f->outputs[0] = v;
    v->producer = f;
    v->producer_slot = 0;
    return true;
}

static kiln_status cl_rewrite(cl_state *st, gir_node **reg, int n_reg) {
    for (int i = 0; i < n_reg; i++) {
        gir_node *n = reg[i];
        bool conv = !strcmp(n->op_type, "Conv");
        gir_node *m = conv ? cl_conv(st, n) : !strcmp(n->op_type, "BatchNormalization") ? cl_batch_norm(st, n) : cl_elem(st, n);
        if (!m) return kiln_fail(st->ctx, KILN_ERR_NOMEM, "choose_layout: out of memory blocking node '%s'", n->name);
        gir_value *v = n->outputs[0];
        st->blk[v->id] = m->outputs[0];
        if (pass_count_uses(st->g, v) > cl_region_reads(reg, n_reg, v) && !cl_from_blocked(st, n, v))
            return kiln_fail(st->ctx, KILN_ERR_NOMEM, "choose_layout: out of memory after node '%s'", n->name);
    }
    for (int i = 0; i < n_reg; i++) pass_remove_node(st->g, reg[i]);
    return KILN_OK;
}

static bool cl_is(const gir_node *n, const char *op) { return !strcmp(n->domain, CL_DOMAIN) && !strcmp(n->op_type, op); }

/* LayoutFromBlocked then LayoutToBlocked of the same block: the blocked
** tensor itself. Returns how many conversions went. */
static int cl_cancel(gir_graph *g) {
    int gone = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *t = g->nodes[i], *f = t->n_inputs == 1 && t->inputs[0] ? t->inputs[0]->producer : NULL;
        if (!cl_is(t, "LayoutToBlocked") || !f || !cl_is(f, "LayoutFromBlocked") || !f->inputs[0]) continue;
        const gir_value *b = f->inputs[0], *out = t->outputs[0];
        if (b->type.rank != 5 || b->type.dims[4].value != gir_attr_int(t, "block", 0) || !out ||
            !pass_value_replaceable(g, out))
            continue;
        pass_replace_uses(g, out, f->inputs[0]);
        pass_remove_node(g, t);
        gone++;
        if (!pass_count_uses(g, f->outputs[0])) pass_remove_node(g, f), gone++;
        i = -1; /* ids moved: start over */
    }
    return gone;
}

kiln_status pass_choose_layout(kiln_ctx *ctx, gir_graph *g) {
    cl_state st = {ctx, g, pass_choose_layout_block(), g->n_values, NULL, NULL};
    int n0 = g->n_nodes, n_reg = 0;
    kiln_status s = KILN_OK;
    bool had_kiln = false;
    for (int i = 0; i < n0; i++) had_kiln |= cl_is(g->nodes[i], "LayoutToBlocked");
    if (st.c <= 0 || !n0) return had_kiln && cl_cancel(g) ? pass_infer_shapes(ctx, g) : KILN_OK;
    st.in_region = kiln_calloc((size_t)n0, sizeof *st.in_region);
    st.blk = kiln_calloc((size_t)g->n_values + 1, sizeof *st.blk);
    gir_node **reg = kiln_calloc((size_t)n0, sizeof *reg);
    if (!st.in_region || !st.blk || !reg) {
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "choose_layout: out of memory");
        goto done;
    }
    if ((s = cl_mark(&st))) goto done;
    bool any_conv = false;
    for (int i = 0; i < n0; i++)
        if (st.in_region[i]) {
            reg[n_reg++] = g->nodes[i];
            any_conv |= !strcmp(g->nodes[i]->op_type, "Conv");
        }
    if (any_conv) s = cl_rewrite(&st, reg, n_reg);
    if (!s && (any_conv || had_kiln)) {
        cl_cancel(g);
        s = pass_infer_shapes(ctx, g);
    }
done:
    kiln_free(reg);
    kiln_free(st.blk);
    kiln_free(st.in_region);
    return s;
}
