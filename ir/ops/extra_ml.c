/*
** extra_ml.c — ai.onnx.ml LabelEncoder (v1: classes_strings; v2: keys_*
** and values_* lists; v4: also tensor-valued keys, values and default) and
** ArrayFeatureExtractor.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extra_ops.h"

/* ---- a list of keys or values from an attribute ---- */

typedef enum { LE_STR, LE_INT, LE_FLT } le_kind;

typedef struct le_list {
    le_kind kind;
    int n;
    const char **s;
    const int64_t *i;
    const double *f;
    const kiln_tensor *t; /* tensor-valued (v4) */
    kiln_dtype dtype;     /* the output type for values */
} le_list;

static int64_t le_int(const le_list *l, int k) { return l->t ? kiln_load_i64(l->t->dtype, l->t->data, k) : l->i[k]; }
static double le_flt(const le_list *l, int k) { return l->t ? kiln_load_f64(l->t->dtype, l->t->data, k) : l->f[k]; }
static const char *le_str(const le_list *l, int k) { return l->t ? xo_str(l->t, k) : l->s[k]; }

static kiln_status kind_of(kiln_ctx *ctx, const gir_node *n, kiln_dtype dt, le_kind *k) {
    if (dt == KILN_STRING) *k = LE_STR;
    else if (dt == KILN_I64 || dt == KILN_I32 || dt == KILN_I16) *k = LE_INT;
    else if (dt == KILN_F32 || dt == KILN_F64) *k = LE_FLT;
    else return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s cannot be mapped", kiln_dtype_name(dt));
    return KILN_OK;
}

/* Finds the one attribute of prefix_strings/_int64s/_floats/_tensor set. */
static kiln_status le_find(kiln_ctx *ctx, const gir_node *n, const char *prefix, le_list *l) {
    static const char *const sfx[] = {"strings", "int64s", "floats", "tensor"};
    static const gir_attr_kind kinds[] = {GIR_ATTR_STRINGS, GIR_ATTR_INTS, GIR_ATTR_FLOATS, GIR_ATTR_TENSOR};
    static const kiln_dtype dts[] = {KILN_STRING, KILN_I64, KILN_F32};
    int found = 0;
    for (int k = 0; k < 4; k++) {
        char name[32];
        snprintf(name, sizeof name, "%s_%s", prefix, sfx[k]);
        const gir_attr *a = xo_attr(n, name, kinds[k]);
        if (!a) continue;
        found++;
        memset(l, 0, sizeof *l);
        if (k < 3) {
            *l = (le_list){(le_kind)k, a->n, a->strings, a->ints, a->floats, NULL, dts[k]};
            continue;
        }
        kiln_status s = kind_of(ctx, n, a->t->dtype, &l->kind);
        if (s) return s;
        if (a->t->rank != 1 || a->t->dims[0] > INT32_MAX)
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must be 1-D and below 2^31 entries", name);
        l->t = a->t;
        l->n = (int)a->t->dims[0];
        l->dtype = a->t->dtype;
    }
    if (found != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "exactly one %s_* attribute is needed, %d are set", prefix,
                            found);
    return KILN_OK;
}

/* The default as a one-entry list of the values' kind. */
typedef struct le_value {
    const char *s;
    int64_t i;
    double f;
} le_value;

static kiln_status le_default(kiln_ctx *ctx, const gir_node *n, const le_list *vals, le_value *d) {
    const gir_attr *t = vals->t ? xo_attr(n, "default_tensor", GIR_ATTR_TENSOR) : NULL;
    *d = (le_value){gir_attr_string(n, "default_string", "_Unused"), gir_attr_int(n, "default_int64", -1),
                    gir_attr_float(n, "default_float", -0.0)};
    if (!t) return KILN_OK;
    le_kind k;
    kiln_status s = kind_of(ctx, n, t->t->dtype, &k);
    if (s) return s;
    if (k != vals->kind || kiln_numel(t->t) < 1)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "default_tensor (%s) must hold one value of the values' type",
                            kiln_dtype_name(t->t->dtype));
    if (k == LE_STR) d->s = xo_str(t->t, 0);
    else if (k == LE_INT) d->i = kiln_load_i64(t->t->dtype, t->t->data, 0);
    else d->f = kiln_load_f64(t->t->dtype, t->t->data, 0);
    return KILN_OK;
}

/* ---- lookup: keys sorted with their positions; the last duplicate wins ---- */

typedef struct le_entry {
    const char *s;
    int64_t i;
    double f;
    int pos;
} le_entry;

static int cmp_f(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) - isnan(b); /* NaN keys match any NaN */
    return a < b ? -1 : a > b;
}
static int ent_cmp_s(const void *a, const void *b) {
    const le_entry *x = a, *y = b;
    int c = strcmp(x->s, y->s);
    return c ? c : x->pos - y->pos;
}
static int ent_cmp_i(const void *a, const void *b) {
    const le_entry *x = a, *y = b;
    return x->i != y->i ? (x->i < y->i ? -1 : 1) : x->pos - y->pos;
}
static int ent_cmp_f(const void *a, const void *b) {
    const le_entry *x = a, *y = b;
    int c = cmp_f(x->f, y->f);
    return c ? c : x->pos - y->pos;
}

static int key_cmp(le_kind k, const le_entry *e, const le_entry *q) {
    if (k == LE_STR) return strcmp(e->s, q->s);
    if (k == LE_INT) return e->i != q->i ? (e->i < q->i ? -1 : 1) : 0;
    return cmp_f(e->f, q->f);
}

/* Position of the last key equal to q, or -1. */
static int le_lookup(le_kind k, const le_entry *e, int n, const le_entry *q) {
    int lo = 0, hi = n; /* first entry greater than q */
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (key_cmp(k, &e[mid], q) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo > 0 && key_cmp(k, &e[lo - 1], q) == 0 ? e[lo - 1].pos : -1;
}

typedef struct le_map {
    le_list keys, vals;
    le_value dflt;
} le_map;

static kiln_status le_read(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, le_map *m) {
    kiln_status s = le_find(ctx, n, "keys", &m->keys);
    if (!s) s = le_find(ctx, n, "values", &m->vals);
    if (!s) s = le_default(ctx, n, &m->vals, &m->dflt);
    if (s) return s;
    if (m->keys.n != m->vals.n)
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%d keys but %d values", m->keys.n, m->vals.n);
    le_kind xk;
    s = kind_of(ctx, n, x->dtype, &xk);
    if (s) return s;
    if (xk != m->keys.kind)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "a %s input does not match the keys' type",
                            kiln_dtype_name(x->dtype));
    return KILN_OK;
}

static void le_put(kiln_tensor *y, int64_t at, const le_list *vals, int pos, const le_value *d, kiln_ctx *ctx,
                   const gir_node *n, kiln_status *s) {
    if (vals->kind == LE_STR) {
        const char *v = pos >= 0 ? le_str(vals, pos) : d->s;
        if (!*s) *s = xo_set_str(ctx, n, (char **)y->data + at, v, strlen(v));
    } else if (vals->kind == LE_INT) {
        kiln_store_i64(y->dtype, y->data, at, pos >= 0 ? le_int(vals, pos) : d->i);
    } else {
        kiln_store_f64(y->dtype, y->data, at, pos >= 0 ? le_flt(vals, pos) : d->f);
    }
}

static le_entry le_key(const le_list *l, const kiln_tensor *x, int64_t at, int pos) {
    le_entry e = {"", 0, 0, pos};
    if (l) {
        if (l->kind == LE_STR) e.s = le_str(l, pos);
        else if (l->kind == LE_INT) e.i = le_int(l, pos);
        else e.f = le_flt(l, pos);
    } else if (x->dtype == KILN_STRING) {
        e.s = xo_str(x, at);
    } else if (kiln_dtype_is_int(x->dtype)) {
        e.i = kiln_load_i64(x->dtype, x->data, at);
    } else {
        e.f = kiln_load_f64(x->dtype, x->data, at);
    }
    return e;
}

static kiln_status le_map_run(kiln_ctx *ctx, const gir_node *n, const le_map *m, const kiln_tensor *x, kiln_tensor *y) {
    int nk = m->keys.n;
    le_entry *e = kiln_malloc(sizeof *e * (size_t)(nk ? nk : 1));
    if (!e) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for %d keys", nk);
    for (int k = 0; k < nk; k++) e[k] = le_key(&m->keys, NULL, 0, k);
    int (*cmp)(const void *, const void *) =
        m->keys.kind == LE_STR ? ent_cmp_s : m->keys.kind == LE_INT ? ent_cmp_i : ent_cmp_f;
    qsort(e, (size_t)nk, sizeof *e, cmp);
    kiln_status s = KILN_OK;
    int64_t total = kiln_numel(x);
    for (int64_t i = 0; i < total && !s; i++) {
        le_entry q = le_key(NULL, x, i, 0);
        le_put(y, i, &m->vals, le_lookup(m->keys.kind, e, nk, &q), &m->dflt, ctx, n, &s);
    }
    kiln_free(e);
    return s;
}

/* v1: strings to their index in classes_strings, or int64 back to strings. */
static kiln_status le_read_v1(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, le_map *m) {
    const gir_attr *a = xo_attr(n, "classes_strings", GIR_ATTR_STRINGS);
    int count = a ? a->n : 0;
    if (x->dtype != KILN_STRING && x->dtype != KILN_I64)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "element type %s cannot be mapped", kiln_dtype_name(x->dtype));
    memset(m, 0, sizeof *m);
    m->dflt = (le_value){gir_attr_string(n, "default_string", "_Unused"), gir_attr_int(n, "default_int64", -1), 0};
    m->keys = (le_list){LE_STR, count, a ? a->strings : NULL, NULL, NULL, NULL, KILN_STRING};
    m->vals = (le_list){LE_INT, count, NULL, NULL, NULL, NULL, KILN_I64};
    if (x->dtype == KILN_I64) {
        m->vals = m->keys;
        m->keys = (le_list){LE_INT, count, NULL, NULL, NULL, NULL, KILN_I64};
    }
    return KILN_OK;
}

kiln_status xo_labelenc_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    le_map m;
    kiln_status s = n->opset < 2 ? le_read_v1(ctx, n, in[0], &m) : le_read(ctx, n, in[0], &m);
    if (s) return s;
    kiln_tensor_init(&out[0], m.vals.dtype, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

static kiln_status le_run_v1(kiln_ctx *ctx, const gir_node *n, const le_map *m, const kiln_tensor *x, kiln_tensor *y) {
    kiln_status s = KILN_OK;
    int64_t total = kiln_numel(x);
    if (x->dtype == KILN_I64) {
        for (int64_t i = 0; i < total && !s; i++) {
            int64_t v = ((const int64_t *)x->data)[i];
            const char *str = v >= 0 && v < m->vals.n ? m->vals.s[v] : m->dflt.s;
            s = xo_set_str(ctx, n, (char **)y->data + i, str, strlen(str));
        }
        return s;
    }
    le_map idx = *m; /* the string's position is its value */
    int64_t *pos = kiln_malloc(sizeof(int64_t) * (size_t)(m->keys.n ? m->keys.n : 1));
    if (!pos) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for %d classes", m->keys.n);
    for (int k = 0; k < m->keys.n; k++) pos[k] = k;
    idx.vals.i = pos;
    s = le_map_run(ctx, n, &idx, x, y);
    kiln_free(pos);
    return s;
}

kiln_status xo_labelenc_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    le_map m;
    if (n->opset < 2) {
        kiln_status s = le_read_v1(ctx, n, in[0], &m);
        return s ? s : le_run_v1(ctx, n, &m, in[0], &out[0]);
    }
    kiln_status s = le_read(ctx, n, in[0], &m);
    return s ? s : le_map_run(ctx, n, &m, in[0], &out[0]);
}

/* ---- ArrayFeatureExtractor: picks entries of the last axis ---- */

kiln_status xo_afe_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0], *idx = in[1];
    if (idx->dtype != KILN_I64) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the indices must be int64");
    if (x->rank < 1) return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the input must have at least one dim");
    int64_t dims[KILN_MAX_RANK] = {1};
    int rank = x->rank == 1 ? 2 : x->rank;
    if (x->rank > 1) memcpy(dims, x->dims, sizeof(int64_t) * (size_t)(x->rank - 1));
    dims[rank - 1] = kiln_numel(idx);
    kiln_tensor_init(&out[0], x->dtype, rank, dims);
    return KILN_OK;
}

kiln_status xo_afe_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    const int64_t *idx = in[1]->data;
    int64_t k = kiln_numel(in[1]), last = x->dims[x->rank - 1], rows = last ? kiln_numel(x) / last : 0;
    size_t es = kiln_dtype_size(x->dtype);
    for (int64_t j = 0; j < k; j++)
        if (idx[j] < 0 || idx[j] >= last)
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "index %lld is outside [0, %lld)", (long long)idx[j],
                                (long long)last);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < k; j++) {
            int64_t src = r * last + idx[j], dst = r * k + j;
            if (x->dtype != KILN_STRING) {
                memcpy((char *)out[0].data + dst * (int64_t)es, (const char *)x->data + src * (int64_t)es, es);
                continue;
            }
            const char *str = xo_str(x, src);
            kiln_status s = xo_set_str(ctx, n, (char **)out[0].data + dst, str, strlen(str));
            if (s) return s;
        }
    return KILN_OK;
}
