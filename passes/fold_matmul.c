/*
** fold_matmul.c — work around a MatMul or Gemm that its operands' layout
** and scale can absorb (see pass.h):
**
**   Gemm(Transpose(x), b)        -> Gemm(x, b) {transA flipped}   (likewise B)
**   MatMul(Transpose(W), x)      -> MatMul(W^T, x), W^T a new constant
**   Gemm(..) * s, Gemm(x * s, ..) -> Gemm {alpha * s (and beta * s)}
**   MatMul(x, W) * s, MatMul(x * s, W), and / s -> MatMul(x, W * s)
**
** s is a constant of one element; the scaled value and the scaling node's
** result must have the same type (no broadcast) and the scaled value no
** other reader. A scale on an operand that an elementwise node computes
** stays (see fuses_upstream). Scales are applied in double and rounded once. Only float
** types: an integer scale would change rounding.
*/
#include <math.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/op.h"
#include "ir/tensor.h"
#include "pass.h"

static bool is_op(const gir_node *n, const char *op) {
    return (!n->domain[0] || !strcmp(n->domain, "ai.onnx")) && !strcmp(n->op_type, op);
}

static bool is_matmul(const gir_node *n) { return n && (is_op(n, "MatMul") || is_op(n, "Gemm")); }

static kiln_status nomem(kiln_ctx *ctx, const gir_node *n) {
    char d[200];
    return kiln_fail(ctx, KILN_ERR_NOMEM, "fold_matmul: out of memory at %s", gir_node_desc(n, d, sizeof d));
}

/* Whether v is read only by its one reader and may disappear. */
static bool single_use(const gir_graph *g, const gir_value *v) {
    return v && v->producer && pass_value_replaceable(g, v) && pass_count_uses(g, v) == 1;
}

/* A Transpose's permutation (default: reversed); false if invalid. */
static bool read_perm(const gir_node *t, int rank, int64_t *perm) {
    const int64_t *p;
    int count = gir_attr_ints(t, "perm", &p);
    unsigned seen = 0;
    if (rank < 1 || rank > KILN_MAX_RANK || (count >= 0 && count != rank)) return false;
    for (int i = 0; i < rank; i++) {
        perm[i] = count < 0 ? rank - 1 - i : p[i];
        if (perm[i] < 0 || perm[i] >= rank || (seen & (1u << perm[i]))) return false;
        seen |= 1u << perm[i];
    }
    return true;
}

/* ---- Transpose into Gemm's transA / transB ---- */

static bool gemm_transpose(gir_graph *g, gir_node *gemm, int slot, bool *oom) {
    gir_value *t = gir_input(gemm, slot);
    gir_node *tr = t ? t->producer : NULL;
    int64_t perm[KILN_MAX_RANK];
    if (!tr || !is_op(tr, "Transpose") || !gir_input(tr, 0) || tr->inputs[0]->type.rank != 2) return false;
    if (!read_perm(tr, 2, perm) || perm[0] != 1) return false;
    const char *flag = slot == 0 ? "transA" : "transB";
    if (!pass_put_attr_int(g, gemm, flag, gir_attr_int(gemm, flag, 0) == 0)) return *oom = true, false;
    gemm->inputs[slot] = tr->inputs[0];
    /* the Transpose stays for its other readers */
    if (pass_value_replaceable(g, t) && pass_count_uses(g, t) == 0) pass_remove_node(g, tr);
    return true;
}

/* ---- a Transpose of a constant read by MatMul/Gemm ---- */

static void transpose_data(const kiln_tensor *in, const int64_t *perm, kiln_tensor *out) {
    int rank = in->rank;
    int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
    size_t es = kiln_dtype_size(in->dtype);
    kiln_strides(rank, in->dims, st);
    int64_t count = kiln_numel(out);
    const char *src = in->data;
    char *dst = out->data;
    for (int64_t o = 0; o < count; o++) {
        int64_t off = 0;
        for (int d = 0; d < rank; d++) off += idx[d] * st[perm[d]];
        memcpy(dst + (size_t)o * es, src + (size_t)off * es, es);
        kiln_index_next(rank, out->dims, idx);
    }
}

static bool readers_are_matmuls(const gir_graph *g, const gir_value *v) {
    gir_node *r[8];
    int count = pass_consumers(g, v, r, 8);
    if (count < 1 || count > 8) return false;
    for (int i = 0; i < count; i++)
        if (!is_matmul(r[i])) return false;
    return true;
}

static kiln_status const_transpose(kiln_ctx *ctx, gir_graph *g, gir_node *tr, bool *done) {
    const gir_value *w = gir_input(tr, 0);
    gir_value *t = tr->n_outputs == 1 ? tr->outputs[0] : NULL;
    int64_t perm[KILN_MAX_RANK];
    if (!w || !w->constant || !w->constant->data || w->is_input || w->constant->dtype == KILN_STRING ||
        kiln_dtype_is_packed(w->constant->dtype) || !t || !pass_value_replaceable(g, t) ||
        !read_perm(tr, w->constant->rank, perm) || !readers_are_matmuls(g, t))
        return KILN_OK;
    /* a second copy of a huge weight only when the first one goes */
    if (kiln_nbytes(w->constant) > KILN_FOLD_MAX_BYTES && pass_count_uses(g, w) != 1) return KILN_OK;
    kiln_tensor out = *w->constant;
    for (int d = 0; d < out.rank; d++) out.dims[d] = w->constant->dims[perm[d]];
    gir_value *c = pass_new_constant(g, NULL, &out); /* copies the bytes, rearranged below */
    if (!c) return nomem(ctx, tr);
    transpose_data(w->constant, perm, c->constant);
    pass_replace_uses(g, t, c);
    pass_remove_node(g, tr);
    *done = true;
    return KILN_OK;
}

/* ---- scalar factors ---- */

/* The factor of a Mul/Div node that scales its input `slot` by a constant
** of one element: *mul gets whether to multiply; false when it is not one. */
static bool scalar_factor(const gir_node *m, int slot, double *s, bool *mul) {
    bool is_mul = is_op(m, "Mul");
    if ((!is_mul && !is_op(m, "Div")) || m->n_inputs != 2 || m->n_outputs != 1 || !m->outputs[0]) return false;
    if (!is_mul && slot != 0) return false;
    const gir_value *x = m->inputs[slot], *c = m->inputs[1 - slot];
    if (!x || !c || !c->constant || !c->constant->data || c->is_input || kiln_numel(c->constant) != 1) return false;
    kiln_dtype dt = x->type.dtype;
    if (!kiln_dtype_is_float(dt) || kiln_dtype_is_lowp(dt) || c->constant->dtype != dt) return false;
    if (!pass_same_static_type(&x->type, &m->outputs[0]->type)) return false;
    *s = kiln_tensor_f64(c->constant, 0);
    *mul = is_mul;
    return isfinite(*s) && (is_mul || *s != 0.0);
}

/* Applies the factor to mm: Gemm's alpha (and beta when the scale covers
** its bias too), or a copy of a MatMul's constant operand `wslot`. */
static bool absorb(gir_graph *g, gir_node *mm, double s, bool mul, bool with_bias, int wslot, bool *oom) {
    if (is_op(mm, "Gemm")) {
        double f = mul ? s : 1.0 / s;
        bool ok = pass_put_attr_float(g, mm, "alpha", gir_attr_float(mm, "alpha", 1.0) * f);
        if (ok && with_bias && gir_input(mm, 2)) ok = pass_put_attr_float(g, mm, "beta", gir_attr_float(mm, "beta", 1.0) * f);
        return ok || (*oom = true, false);
    }
    const gir_value *w = gir_input(mm, wslot);
    if (!w || !w->constant || !w->constant->data || w->is_input || w->constant->dtype != mm->outputs[0]->type.dtype)
        return false;
    gir_value *c = pass_new_constant(g, NULL, w->constant);
    if (!c) return *oom = true, false;
    kiln_tensor *t = c->constant;
    for (int64_t i = 0, n = kiln_numel(t); i < n; i++) {
        double x = kiln_load_f64(t->dtype, t->data, i);
        kiln_store_f64(t->dtype, t->data, i, mul ? x * s : x / s);
    }
    mm->inputs[wslot] = c;
    return true;
}

/* MatMul(..) * s: the scaling node m goes. */
static bool scaled_result(gir_graph *g, gir_node *m, bool *oom) {
    if (!is_op(m, "Mul") && !is_op(m, "Div")) return false;
    for (int slot = 0; slot < 2; slot++) {
        double s;
        bool mul;
        gir_value *y = gir_input(m, slot);
        gir_node *mm = y ? y->producer : NULL;
        if (!is_matmul(mm) || !single_use(g, y) || !scalar_factor(m, slot, &s, &mul)) continue;
        if (is_op(mm, "Gemm") && !absorb(g, mm, s, mul, true, 0, oom)) return false;
        if (is_op(mm, "MatMul") && !absorb(g, mm, s, mul, false, 1, oom) && !absorb(g, mm, s, mul, false, 0, oom))
            continue;
        if (pass_bypass_node(g, m, slot, 0)) return true;
        /* unreachable: y is a node's single-use, replaceable result */
        *oom = true;
        return false;
    }
    return false;
}

/* Whether the scale on x would fuse into x's elementwise producer anyway
** (kernel fusion makes it free there). Such a scale is left where it is: it
** is often the end of a larger product that pattern fusion reads (GELU's
** x * (1 + erf(..)) * 0.5 before the next layer's MatMul). */
static bool fuses_upstream(const gir_value *x) {
    const gir_node *p = x ? x->producer : NULL;
    return p && p->op && (p->op->fusion == KILN_FUSE_ELEMWISE || p->op->fusion == KILN_FUSE_BROADCAST);
}

/* MatMul(x * s, W): the operand's scaling node goes. */
static bool scaled_operand(gir_graph *g, gir_node *mm, bool *oom) {
    bool gemm = is_op(mm, "Gemm");
    for (int j = 0; j < (gemm ? 3 : 2); j++) {
        gir_value *v = gir_input(mm, j);
        gir_node *m = v ? v->producer : NULL;
        if (!m || !single_use(g, v)) continue;
        for (int slot = 0; slot < 2; slot++) {
            double s;
            bool mul;
            if (!scalar_factor(m, slot, &s, &mul) || fuses_upstream(m->inputs[slot])) continue;
            if (gemm && j == 2) {
                if (!pass_put_attr_float(g, mm, "beta", gir_attr_float(mm, "beta", 1.0) * (mul ? s : 1.0 / s)))
                    return *oom = true, false;
            } else if (!absorb(g, mm, s, mul, false, 1 - j, oom)) {
                break;
            }
            mm->inputs[j] = m->inputs[slot];
            pass_remove_node(g, m);
            return true;
        }
    }
    return false;
}

static kiln_status round_once(kiln_ctx *ctx, gir_graph *g, bool *changed) {
    *changed = false;
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        bool oom = false, done = false;
        kiln_status s = KILN_OK;
        if (is_op(n, "Gemm")) {
            bool a = gemm_transpose(g, n, 0, &oom), b = gemm_transpose(g, n, 1, &oom); /* both operands */
            done = a || b;
        }
        if (!done && !oom && is_matmul(n)) done = scaled_operand(g, n, &oom);
        if (!done && !oom && is_op(n, "Transpose")) s = const_transpose(ctx, g, n, &done);
        if (!done && !oom && !s) done = scaled_result(g, n, &oom);
        if (oom) return nomem(ctx, n);
        if (s) return s;
        if (done) {
            /* nodes before i may have gone: step back; a later round sees what this one skipped */
            *changed = true;
            i = i >= 2 ? i - 2 : -1;
        }
    }
    return KILN_OK;
}

kiln_status pass_fold_matmul(kiln_ctx *ctx, gir_graph *g) {
    bool changed = true;
    kiln_status s = KILN_OK;
    while (changed && !s) s = round_once(ctx, g, &changed);
    return s;
}
