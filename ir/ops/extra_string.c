/*
** extra_string.c — StringNormalizer, StringSplit and RegexFullMatch.
*/
#include <string.h>

#include "extra_ops.h"

/* ---- StringNormalizer: drop stop words, then change case ---- */

typedef enum { CASE_NONE, CASE_LOWER, CASE_UPPER } case_action;

/* Copies s re-cased into a new kiln_malloc'd string (NULL when out of memory). */
static char *recase(const char *s, case_action act) {
    size_t len = strlen(s), i = 0, o = 0;
    char *r = kiln_malloc(len * 3 + 1); /* an invalid byte becomes U+FFFD, 3 bytes */
    if (!r) return NULL;
    while (i < len) {
        uint32_t cp = xo_utf8_next(s, len, &i);
        if (act == CASE_LOWER) cp = xo_lower(cp);
        if (act == CASE_UPPER) cp = xo_upper(cp);
        o += (size_t)xo_utf8_put(cp, r + o);
    }
    r[o] = '\0';
    return r;
}

static bool same_caseless(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), i = 0, j = 0;
    while (i < la && j < lb)
        if (xo_lower(xo_utf8_next(a, la, &i)) != xo_lower(xo_utf8_next(b, lb, &j))) return false;
    return i == la && j == lb;
}

static kiln_status strnorm_action(kiln_ctx *ctx, const gir_node *n, case_action *act) {
    const char *a = gir_attr_string(n, "case_change_action", "NONE");
    if (!strcmp(a, "NONE")) *act = CASE_NONE;
    else if (!strcmp(a, "LOWER")) *act = CASE_LOWER;
    else if (!strcmp(a, "UPPER")) *act = CASE_UPPER;
    else return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "case_change_action '%s' is not NONE, LOWER or UPPER", a);
    return KILN_OK;
}

static bool is_stopword(const gir_node *n, const char *s) {
    const gir_attr *a = xo_attr(n, "stopwords", GIR_ATTR_STRINGS);
    bool sensitive = gir_attr_int(n, "is_case_sensitive", 0) != 0;
    for (int k = 0; a && k < a->n; k++)
        if (sensitive ? !strcmp(a->strings[k], s) : same_caseless(a->strings[k], s)) return true;
    return false;
}

kiln_status xo_strnorm_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    case_action act;
    kiln_status s = strnorm_action(ctx, n, &act);
    if (s) return s;
    if (x->dtype != KILN_STRING || !(x->rank == 1 || (x->rank == 2 && x->dims[0] == 1)))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "the input must be a [C] or [1, C] string tensor");
    int64_t c = x->dims[x->rank - 1], kept = 0;
    if (c && !x->data) return KILN_ERR_DYNAMIC;
    for (int64_t i = 0; i < c; i++) kept += !is_stopword(n, xo_str(x, i));
    int64_t dims[2] = {1, kept ? kept : 1};
    kiln_tensor_init(&out[0], KILN_STRING, x->rank, x->rank == 1 ? dims + 1 : dims);
    return KILN_OK;
}

kiln_status xo_strnorm_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    case_action act;
    kiln_status s = strnorm_action(ctx, n, &act);
    if (s) return s;
    char **y = out[0].data;
    int64_t c = x->dims[x->rank - 1], k = 0, room = kiln_numel(&out[0]);
    for (int64_t i = 0; i < c; i++) {
        const char *w = xo_str(x, i);
        if (is_stopword(n, w)) continue;
        if (k >= room) return kiln_op_fail(ctx, n, KILN_ERR_INTERNAL, "more strings kept than inferred");
        char *r = recase(w, act);
        if (!r) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory re-casing a string");
        kiln_free(y[k]);
        y[k++] = r;
    }
    return KILN_OK;
}

/* ---- StringSplit ---- */

static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* Finds the pieces of s. With a delimiter, consecutive delimiters delimit
** empty strings; without one, runs of whitespace separate and the ends are
** trimmed (Python's str.split). maxsplit < 0: no limit. Calls emit for each
** piece (when non-NULL) and returns the count. */
typedef kiln_status (*piece_fn)(void *arg, int64_t k, const char *p, size_t len);

static kiln_status split_one(const char *s, const char *delim, int64_t maxsplit, piece_fn emit, void *arg,
                             int64_t *count) {
    size_t len = strlen(s), dl = strlen(delim), i = 0;
    int64_t k = 0;
    kiln_status st = KILN_OK;
    if (dl) {
        for (;;) {
            const char *hit = maxsplit < 0 || k < maxsplit ? strstr(s + i, delim) : NULL;
            size_t end = hit ? (size_t)(hit - s) : len;
            if (emit && (st = emit(arg, k, s + i, end - i))) return st;
            k++;
            if (!hit) break;
            i = end + dl;
        }
    } else {
        while (i < len) {
            while (i < len && is_space(s[i])) i++;
            if (i == len) break;
            size_t end = i;
            if (maxsplit >= 0 && k >= maxsplit) end = len;
            else
                while (end < len && !is_space(s[end])) end++;
            if (emit && (st = emit(arg, k, s + i, end - i))) return st;
            k++;
            i = end;
        }
    }
    *count = k;
    return KILN_OK;
}

static kiln_status split_attrs(kiln_ctx *ctx, const gir_node *n, const char **delim, int64_t *maxsplit) {
    *delim = gir_attr_string(n, "delimiter", "");
    *maxsplit = gir_attr_int(n, "maxsplit", -1);
    const gir_attr *a = xo_attr(n, "delimiter", GIR_ATTR_STRING);
    if (a && a->s_len != strlen(a->s))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "a delimiter holding a NUL byte is not supported");
    return KILN_OK;
}

kiln_status xo_strsplit_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    const char *delim;
    int64_t maxsplit, widest = 0, total = kiln_numel(x);
    kiln_status s = split_attrs(ctx, n, &delim, &maxsplit);
    if (s) return s;
    if (x->rank >= KILN_MAX_RANK)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "input rank %d leaves no room for the pieces' dim", x->rank);
    if (total && !x->data) return KILN_ERR_DYNAMIC;
    for (int64_t i = 0; i < total; i++) {
        int64_t c;
        split_one(xo_str(x, i), delim, maxsplit, NULL, NULL, &c);
        if (c > widest) widest = c;
    }
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, x->dims, sizeof(int64_t) * (size_t)x->rank);
    dims[x->rank] = widest;
    kiln_tensor_init(&out[0], KILN_STRING, x->rank + 1, dims);
    if (n->n_outputs > 1) kiln_tensor_init(&out[1], KILN_I64, x->rank, x->dims);
    return KILN_OK;
}

typedef struct split_sink {
    kiln_ctx *ctx;
    const gir_node *n;
    char **row;
    int64_t width;
} split_sink;

static kiln_status put_piece(void *arg, int64_t k, const char *p, size_t len) {
    split_sink *sk = arg;
    if (k >= sk->width) return kiln_op_fail(sk->ctx, sk->n, KILN_ERR_INTERNAL, "more pieces than inferred");
    return xo_set_str(sk->ctx, sk->n, &sk->row[k], p, len);
}

kiln_status xo_strsplit_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    const kiln_tensor *x = in[0];
    const char *delim;
    int64_t maxsplit, total = kiln_numel(x), width = out[0].dims[x->rank];
    kiln_status s = split_attrs(ctx, n, &delim, &maxsplit);
    for (int64_t i = 0; !s && i < total; i++) {
        split_sink sk = {ctx, n, (char **)out[0].data + i * width, width};
        int64_t c;
        s = split_one(xo_str(x, i), delim, maxsplit, put_piece, &sk, &c);
        if (!s && n->n_outputs > 1) ((int64_t *)out[1].data)[i] = c;
    }
    return s;
}

/* ---- RegexFullMatch ---- */

static kiln_status regex_compile(kiln_ctx *ctx, const gir_node *n, xo_regex **re) {
    const gir_attr *a = xo_attr(n, "pattern", GIR_ATTR_STRING);
    if (!a) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'pattern' is required");
    char err[256];
    kiln_status s = xo_regex_compile(a->s, a->s_len, re, err, sizeof err);
    if (s == KILN_ERR_NOMEM) return kiln_op_fail(ctx, n, s, "out of memory compiling the pattern");
    if (s) return kiln_op_fail(ctx, n, s, "pattern '%s': %s", a->s, err);
    return KILN_OK;
}

kiln_status xo_regex_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_regex *re;
    kiln_status s = regex_compile(ctx, n, &re);
    if (s) return s;
    xo_regex_free(re);
    kiln_tensor_init(&out[0], KILN_BOOL, in[0]->rank, in[0]->dims);
    return KILN_OK;
}

kiln_status xo_regex_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, kiln_tensor *out) {
    xo_regex *re;
    kiln_status s = regex_compile(ctx, n, &re);
    if (s) return s;
    int64_t total = kiln_numel(in[0]);
    bool *y = out[0].data;
    for (int64_t i = 0; i < total && !s; i++) {
        const char *str = xo_str(in[0], i);
        s = xo_regex_full_match(re, str, strlen(str), &y[i]);
        if (s) s = kiln_op_fail(ctx, n, s, "out of memory matching string %lld", (long long)i);
    }
    xo_regex_free(re);
    return s;
}
