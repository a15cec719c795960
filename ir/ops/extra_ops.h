/*
** extra_ops.h — private to the "extra" op family (ops_extra.c): signal
** processing (DFT, STFT, windows, MelWeightMatrix), NonMaxSuppression,
** string ops, ai.onnx.ml ops and ai.onnx.preview.training optimizers.
** Kernels live in extra_*.c; every function here is prefixed xo_.
*/
#ifndef KILN_EXTRA_OPS_H
#define KILN_EXTRA_OPS_H

#include <stddef.h>

#include "../op.h"

/* Most inputs or outputs a variadic op of this family takes. */
#define XO_VARIADIC 64

#define XO_OP(k)                                                                         \
    kiln_status xo_##k##_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, \
                               kiln_tensor *out);                                       \
    kiln_status xo_##k##_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,   \
                             kiln_tensor *out)

XO_OP(nms);
XO_OP(dft);
XO_OP(stft);
XO_OP(hann);
XO_OP(hamming);
XO_OP(blackman);
XO_OP(mel);
XO_OP(strnorm);
XO_OP(strsplit);
XO_OP(regex);
XO_OP(tfidf);
XO_OP(labelenc);
XO_OP(afe);
XO_OP(tree);
XO_OP(tree_reg);
XO_OP(tree_cls);
XO_OP(momentum);
XO_OP(adam);
XO_OP(adagrad);
XO_OP(has_elem);
XO_OP(get_elem);

/* ---- helpers (extra_util.c) ---- */

/* The optional input at slot i, or NULL. */
static inline const kiln_tensor *xo_in(const gir_node *n, const kiln_tensor *const *in, int i) {
    return i < n->n_inputs ? in[i] : NULL;
}

/* Reads a one-element integer (or, with allow_float, numeric) tensor.
** KILN_ERR_DYNAMIC (no message) when its data is not known. */
kiln_status xo_scalar_i64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what,
                          int64_t *v);
kiln_status xo_scalar_f64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what,
                          double *v);

/* The attribute `name` when present with the given kind, else NULL. */
const gir_attr *xo_attr(const gir_node *n, const char *name, gir_attr_kind kind);

/* Element i of a string tensor ("" for a NULL entry). */
static inline const char *xo_str(const kiln_tensor *t, int64_t i) {
    const char *s = ((char *const *)t->data)[i];
    return s ? s : "";
}

/* Replaces string slot *slot with a copy of s[0..len). */
kiln_status xo_set_str(kiln_ctx *ctx, const gir_node *n, char **slot, const char *s, size_t len);

/* UTF-8: decodes the code point at s[*i] (an invalid byte gives U+FFFD and
** advances by one); encodes cp into buf (4 bytes room), returning its length. */
uint32_t xo_utf8_next(const char *s, size_t len, size_t *i);
int xo_utf8_put(uint32_t cp, char *buf);
/* Simple case mapping for ASCII, Latin-1, Latin Extended-A, Greek and
** Cyrillic; other code points map to themselves. */
uint32_t xo_lower(uint32_t cp);
uint32_t xo_upper(uint32_t cp);

/* ---- tree ensembles (extra_tree.c), read from either attribute form ---- */

enum { XO_M_LEQ, XO_M_LT, XO_M_GTE, XO_M_GT, XO_M_EQ, XO_M_NEQ, XO_M_MEMBER, XO_M_LEAF };
enum { XO_AGG_AVERAGE, XO_AGG_SUM, XO_AGG_MIN, XO_AGG_MAX };
enum { XO_POST_NONE, XO_POST_SOFTMAX, XO_POST_LOGISTIC, XO_POST_SOFTMAX_ZERO, XO_POST_PROBIT };

/* A branch (feature, comparison, two child node indices) or a leaf (a run
** of target/weight pairs). */
typedef struct xo_te_node {
    int mode;
    bool missing_true;
    int64_t feature, tchild, fchild;
    double split;
    int64_t set_at, set_n;   /* XO_M_MEMBER: members in xo_te.members */
    int64_t leaf_at, leaf_n; /* XO_M_LEAF: pairs in targets/weights */
} xo_te_node;

typedef struct xo_te {
    xo_te_node *nodes;
    int64_t n_nodes;
    int64_t *roots, n_roots;
    int64_t *targets; /* leaf pairs */
    double *weights, *members, *base; /* base: NULL or n_targets values */
    int64_t n_targets;
    int agg, post;
    double init;      /* where MIN/MAX aggregation starts */
    bool nan_by_flag; /* NaN takes the missing-value branch whatever the mode */
    bool single;      /* scores accumulate in float, each step rounded */
} xo_te;

/* Allocates the arrays (zeroed; any count may be zero). */
kiln_status xo_te_alloc(kiln_ctx *ctx, const gir_node *n, xo_te *t, int64_t nodes, int64_t roots,
                        int64_t pairs, int64_t members);
void xo_te_free(xo_te *t);
/* Checks target ids against n_targets (< 0: max id + 1, which it sets). */
kiln_status xo_te_targets(kiln_ctx *ctx, const gir_node *n, xo_te *t, int64_t pairs, int64_t n_targets);
/* Aggregated scores of sample `row` of X [N, F] into acc[n_targets], plus
** the base values; post_transform is left to the caller. */
kiln_status xo_te_row(kiln_ctx *ctx, const gir_node *n, const xo_te *t, const kiln_tensor *x, int64_t row,
                      double *acc);
void xo_te_post(int post, double *v, int64_t m);

/* ---- a small regular-expression engine (extra_regex.c) ----
** RE2 syntax without captures' contents: literals, ., classes with ranges,
** negation, \d \w \s (and negations), POSIX [:name:] classes, groups,
** alternation, * + ? {n} {n,} {n,m} (lazy forms too), ^ $ \A \z \b \B and
** the flags i, m, s, U. Matching is on code points, in time linear in the
** text (a Thompson simulation), so no pattern can make it blow up. */
typedef struct xo_regex xo_regex;
/* On a syntax error returns KILN_ERR_INVALID with the reason in err. */
kiln_status xo_regex_compile(const char *pattern, size_t len, xo_regex **out, char *err,
                             size_t err_size);
void xo_regex_free(xo_regex *re);
/* Whether the whole of s matches; KILN_ERR_NOMEM when out of memory. */
kiln_status xo_regex_full_match(const xo_regex *re, const char *s, size_t len, bool *matched);

#endif
