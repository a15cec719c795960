/*
** tmpl_util.c — what the schedule templates share: vector widths, how a
** stage's loads move through memory, and the generic schedule of one stage
** (the fallback for stages no template claims, and the side stages of the
** ones they do).
*/
#include <string.h>

#include "ir/dtype.h"
#include "tmpl_internal.h"

/* ---- vector widths ---- */

int tmpl_lanes(const cg_cpu_target *t, int bytes) {
    int bits = t && t->vector_bits >= 128 ? t->vector_bits : 128;
    if (bytes < 1) bytes = 1;
    int lanes = bits / (8 * bytes);
    return lanes < 1 ? 1 : lanes > 64 ? 64 : lanes;
}

static int dt_bytes(kiln_dtype dt) {
    int n = (int)kiln_dtype_size(dt);
    return n < 1 ? 1 : n;
}

static int max_load_bytes(const ex_expr *e) {
    int m = e->kind == EX_LOAD || e->kind == EX_CAST ? dt_bytes(e->dtype) : 0;
    for (int i = 0; i < e->n_args; i++) {
        int k = max_load_bytes(e->args[i]);
        if (k > m) m = k;
    }
    return m;
}

int tmpl_elem_bytes(const tir_stage *s) {
    int m = dt_bytes(s->out->dtype), k = s->body ? max_load_bytes(s->body) : 0;
    return k > m ? k : m;
}

/* ---- access patterns ---- */

bool tmpl_uses_var(const ex_expr *e, const ex_var *v) {
    if (e->kind == EX_VAR) return e->var == v;
    for (int i = 0; i < e->n_args; i++)
        if (tmpl_uses_var(e->args[i], v)) return true;
    return false;
}

/* Whether e = coef * v + (terms without v); the coefficient in *coef. */
static bool affine(const ex_expr *e, const ex_var *v, int64_t *coef) {
    int64_t a, b, c;
    if (!tmpl_uses_var(e, v)) return *coef = 0, true;
    if (e->kind == EX_VAR) return *coef = 1, true;
    if (e->kind == EX_UNARY && e->op == EX_NEG) {
        if (!affine(e->args[0], v, &a) || a == INT64_MIN) return false;
        return *coef = -a, true;
    }
    if (e->kind != EX_BINARY || !kiln_dtype_is_int(e->dtype)) return false;
    switch (e->op) {
    case EX_ADD:
    case EX_SUB:
        if (!affine(e->args[0], v, &a) || !affine(e->args[1], v, &b)) return false;
        return !(e->op == EX_ADD ? __builtin_add_overflow(a, b, coef) : __builtin_sub_overflow(a, b, coef));
    case EX_MUL:
        for (int k = 0; k < 2; k++)
            if (ex_is_const_int(e->args[k], &c)) {
                if (!affine(e->args[1 - k], v, &a)) return false;
                return !__builtin_mul_overflow(a, c, coef);
            }
        return false;
    default: return false;
    }
}

/* How far a load's flat (row-major) index moves as v moves by one. */
static bool flat_coef(const ex_expr *e, const ex_var *v, int64_t *coef) {
    const tir_tensor *t = e->tensor;
    int64_t flat = 0, stride = 1;
    bool ok = e->n_args == t->rank;
    for (int d = t->rank - 1; ok && d >= 0; d--) {
        int64_t c, term;
        ok = affine(e->args[d], v, &c) && !__builtin_mul_overflow(c, stride, &term) &&
             !__builtin_add_overflow(flat, term, &flat);
        if (t->dims[d] > 0 && __builtin_mul_overflow(stride, t->dims[d], &stride)) ok = false;
    }
    *coef = flat;
    return ok;
}

static void classify(const ex_expr *e, const ex_var *v, const tir_tensor *skip, tmpl_access *acc) {
    for (int i = 0; i < e->n_args; i++) classify(e->args[i], v, skip, acc);
    if (e->kind != EX_LOAD || !e->tensor || e->tensor == skip) return;
    int64_t flat;
    bool ok = flat_coef(e, v, &flat);
    if (!ok) acc->general++;
    else if (flat == 0) acc->uniform++;
    else if (flat == 1) acc->contiguous++;
    else acc->strided++;
}

/* Whether every load in e moves over axes[k..n) either not at all or the
** way a row-major tensor of those extents does (up to a constant factor). */
static bool loads_flatten(const ex_expr *e, const tir_stage *s, int k) {
    for (int i = 0; i < e->n_args; i++)
        if (!loads_flatten(e->args[i], s, k)) return false;
    if (e->kind != EX_LOAD || !e->tensor) return true;
    int64_t c[KILN_MAX_RANK], unit = 0;
    for (int d = k; d < s->n_axes; d++)
        if (!flat_coef(e, s->axes[d], &c[d])) return false;
    bool zero = true;
    for (int d = k; d < s->n_axes; d++) zero &= c[d] == 0;
    if (zero) return true;
    unit = c[s->n_axes - 1];
    for (int d = s->n_axes - 1; d > k; d--)
        if (c[d - 1] != c[d] * s->axes[d]->extent) return false;
    return unit != 0;
}

int tmpl_flat_suffix(const ex_expr *body, const tir_stage *s) {
    int k = s->n_axes - 1;
    while (k > 0 && body && loads_flatten(body, s, k - 1)) k--;
    return k < 0 ? 0 : k;
}

tmpl_access tmpl_access_of(const tir_stage *s, const ex_var *v) { return tmpl_access_skip(s, v, NULL); }

tmpl_access tmpl_access_expr(const ex_expr *body, const ex_var *v) {
    tmpl_access acc = {0, 0, 0, 0};
    if (body && v) classify(body, v, NULL, &acc);
    return acc;
}

tmpl_access tmpl_access_skip(const tir_stage *s, const ex_var *v, const tir_tensor *skip) {
    tmpl_access acc = {0, 0, 0, 0};
    if (s->body && v) classify(s->body, v, skip, &acc);
    return acc;
}

/* ---- structure ---- */

bool tmpl_names_ok(const tir_func *f) {
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (!s->name || !s->out || s->out->rank != s->n_axes) return false;
        for (int j = 0; j < i; j++)
            if (strcmp(f->stages[j]->name, s->name) == 0) return false;
        for (int j = 0; j < f->n_inputs; j++)
            if (strcmp(f->inputs[j]->name, s->name) == 0) return false;
        int n = s->n_axes + s->n_raxes;
        for (int a = 0; a < n; a++) {
            const ex_var *x = a < s->n_axes ? s->axes[a] : s->raxes[a - s->n_axes];
            if (!x || !x->name || !x->name[0]) return false;
            for (int c = 0; c < a; c++) {
                const ex_var *y = c < s->n_axes ? s->axes[c] : s->raxes[c - s->n_axes];
                if (strcmp(x->name, y->name) == 0) return false;
            }
        }
    }
    return true;
}

bool tmpl_is_output(const tir_func *f, const tir_tensor *t) {
    for (int i = 0; i < f->n_outputs; i++)
        if (f->outputs[i] == t) return true;
    return false;
}

bool tmpl_reads(const ex_expr *e, const tir_tensor *t) {
    if (!e) return false;
    if (e->kind == EX_LOAD && e->tensor == t) return true;
    for (int i = 0; i < e->n_args; i++)
        if (tmpl_reads(e->args[i], t)) return true;
    return false;
}

int tmpl_readers(const tir_func *f, const tir_tensor *t, const tir_stage **out, int cap) {
    int n = 0;
    for (int i = 0; i < f->n_stages; i++)
        if (tmpl_reads(f->stages[i]->body, t)) {
            if (n < cap) out[n] = f->stages[i];
            n++;
        }
    return n;
}

int64_t tmpl_numel(const tir_tensor *t) {
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++)
        if (__builtin_mul_overflow(n, t->dims[d], &n)) return INT64_MAX;
    return n;
}

int64_t tmpl_work(const tir_stage *s) {
    int64_t n = tmpl_numel(s->out);
    for (int r = 0; r < s->n_raxes; r++)
        if (__builtin_mul_overflow(n, s->raxes[r]->extent, &n)) return INT64_MAX;
    return n;
}

tmpl_vtile tmpl_vec_tile(int64_t ext, int64_t want, int lanes, bool divide) {
    int64_t L = lanes > 0 ? lanes : 1;
    if (ext < 1) ext = 1;
    if (want < 1) want = 1;
    if (ext <= want && ext <= L) return (tmpl_vtile){ext, ext};
    int64_t top = want < ext ? want : ext;
    for (int64_t V = L; divide && V >= 1; V /= 2) {
        for (int64_t d = (top / V) * V; d >= V; d -= V)
            if (ext % d == 0) return (tmpl_vtile){d, V};
        if (V < 8) break; /* narrower vectors are not worth it */
    }
    int64_t V = L;
    while (V > 1 && V > want) V /= 2;
    int64_t w = (top / V) * V;
    if (w < V) w = V;
    /* wider tiles reuse more; padded lanes are wasted work */
    int64_t best = w;
    double score = -1;
    for (int64_t d = w; d >= V; d -= V) {
        double u = (double)ext / (double)(((ext + d - 1) / d) * d), sc = (double)d * u * u;
        if (sc > score + 1e-9) best = d, score = sc;
    }
    return (tmpl_vtile){best, V};
}

int64_t tmpl_divisor(int64_t n, const int64_t *cands, int n_cands) {
    int64_t best = 0;
    for (int i = 0; i < n_cands; i++)
        if (cands[i] > 0 && cands[i] <= n && n % cands[i] == 0 && cands[i] > best) best = cands[i];
    return best;
}

/* ---- anchors and epilogues ---- */

/* A constant input read with the plain variable v at one index (and v in
** no other index); that index in *dim. */
const tir_tensor *tmpl_packable(const ex_expr *e, const ex_var *v, int *dim) {
    if (e->kind == EX_LOAD && e->tensor && e->tensor->constant && !e->tensor->stage && e->n_args == e->tensor->rank) {
        int at = -1;
        bool ok = true;
        for (int d = 0; d < e->n_args && ok; d++) {
            const ex_expr *a = e->args[d];
            if (a->kind == EX_VAR && a->var == v) ok = at < 0, at = d;
            else ok = !tmpl_uses_var(a, v);
        }
        if (ok && at >= 0) {
            *dim = at;
            return e->tensor;
        }
    }
    for (int i = 0; i < e->n_args; i++) {
        const tir_tensor *t = tmpl_packable(e->args[i], v, dim);
        if (t) return t;
    }
    return NULL;
}

/* Whether every load of t in e indexes dimension d with exactly q's axis d
** (or with 0 where both have extent 1: broadcasting definitions index a
** dimension of one element so). */
static bool reads_aligned(const ex_expr *e, const tir_tensor *t, const tir_stage *q) {
    if (e->kind == EX_LOAD && e->tensor == t) {
        if (e->n_args != q->n_axes) return false;
        for (int d = 0; d < e->n_args; d++) {
            int64_t c;
            if (e->args[d]->kind == EX_VAR && e->args[d]->var == q->axes[d]) continue;
            if (!ex_is_const_int(e->args[d], &c) || c != 0 || t->dims[d] != 1 || q->axes[d]->extent != 1)
                return false;
        }
    }
    for (int i = 0; i < e->n_args; i++)
        if (!reads_aligned(e->args[i], t, q)) return false;
    return true;
}

static bool same_dims(const tir_tensor *a, const tir_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int d = 0; d < a->rank; d++)
        if (a->dims[d] != b->dims[d]) return false;
    return true;
}

/* The epilogue: every stage after M is elementwise over M's shape and reads
** the earlier ones (M included) at its own index; the last is the output. */
const tir_stage *tmpl_epilogue(const tir_func *f, const tir_stage *M) {
    int at = -1;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i] == M) at = i;
    if (f->n_outputs != 1) return NULL;
    if (at == f->n_stages - 1) return f->outputs[0] == M->out ? M : NULL;
    const tir_stage *E = f->stages[f->n_stages - 1];
    if (f->outputs[0] != E->out || tmpl_is_output(f, M->out)) return NULL;
    for (int i = at + 1; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        if (s->n_raxes || !same_dims(s->out, M->out) || (s != E && tmpl_is_output(f, s->out))) return NULL;
        for (int j = at; j < i; j++)
            if (!reads_aligned(s->body, f->stages[j]->out, s)) return NULL;
    }
    return E;
}
