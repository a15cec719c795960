/*
** linalg_einsum.c — Einsum by direct summation: every label gets an extent,
** every operand a stride per label (a label repeated in one term adds its
** strides: the diagonal), and the kernel walks all label values.
** Labels 0..51 are letters; 52.. are the dims an ellipsis stands for.
*/
#include <ctype.h>
#include <string.h>

#include "nn_internal.h"

#define EIN_MAX_IN 16
#define EIN_LETTERS 52
#define EIN_LABELS (EIN_LETTERS + KILN_MAX_RANK)

typedef struct ein_term {
    int n;                    /* labels in the term, ellipsis expanded */
    int label[KILN_MAX_RANK]; /* per dim */
} ein_term;

typedef struct ein_plan {
    int n_in, n_ell; /* operands, dims covered by the ellipsis */
    ein_term in[EIN_MAX_IN], out;
    int64_t extent[EIN_LABELS];
    bool used[EIN_LABELS];
} ein_plan;

static int letter_label(char c) { return islower((unsigned char)c) ? c - 'a' : c - 'A' + 26; }

/* Parses one term ("ab...c") of an operand of rank `rank` (-1: the output). */
static kiln_status parse_term(kiln_ctx *ctx, const gir_node *n, const char *s, size_t len, int rank,
                              ein_plan *p, ein_term *t) {
    int letters = 0, ell = -1;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (ell >= 0 || i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.')
                return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "malformed ellipsis in equation");
            ell = letters;
            i += 2;
        } else if (isalpha((unsigned char)s[i])) {
            letters++;
        } else {
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "unexpected character '%c' in equation", s[i]);
        }
    }
    int n_ell = ell < 0 ? 0 : rank < 0 ? p->n_ell : rank - letters;
    if (rank >= 0 && (n_ell < 0 || (ell < 0 && letters != rank)))
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "equation term has %d labels for an operand of rank %d",
                            letters, rank);
    if (letters + n_ell > KILN_MAX_RANK)
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "equation term has too many dims");
    t->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            /* ellipsis dims align to the right across operands, as numpy broadcasting */
            for (int e = 0; e < n_ell; e++) t->label[t->n++] = EIN_LETTERS + (p->n_ell - n_ell) + e;
            i += 2;
        } else {
            t->label[t->n++] = letter_label(s[i]);
        }
    }
    return KILN_OK;
}

/* Records extents; ellipsis dims of extent 1 broadcast. */
static kiln_status bind_extents(kiln_ctx *ctx, const gir_node *n, const ein_term *t, const kiln_tensor *x,
                                ein_plan *p) {
    for (int d = 0; d < t->n; d++) {
        int l = t->label[d];
        int64_t e = x->dims[d];
        bool bcast = l >= EIN_LETTERS;
        if (!p->used[l] || (bcast && p->extent[l] == 1)) {
            p->extent[l] = e;
        } else if (p->extent[l] != e && !(bcast && e == 1)) {
            return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "label extents disagree: %lld and %lld",
                                (long long)p->extent[l], (long long)e);
        }
        p->used[l] = true;
    }
    return KILN_OK;
}

static void implicit_output(ein_plan *p) {
    int count[EIN_LABELS] = {0};
    for (int i = 0; i < p->n_in; i++)
        for (int d = 0; d < p->in[i].n; d++) count[p->in[i].label[d]]++;
    p->out.n = 0;
    for (int e = 0; e < p->n_ell; e++) p->out.label[p->out.n++] = EIN_LETTERS + e;
    /* numpy's order: by character code, so upper case first */
    for (int l = 26; l < EIN_LETTERS; l++)
        if (count[l] == 1 && p->out.n < KILN_MAX_RANK) p->out.label[p->out.n++] = l;
    for (int l = 0; l < 26; l++)
        if (count[l] == 1 && p->out.n < KILN_MAX_RANK) p->out.label[p->out.n++] = l;
}

static kiln_status ein_parse(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in, ein_plan *p) {
    memset(p, 0, sizeof *p);
    const char *eq = gir_attr_string(n, "equation", NULL);
    char buf[512];
    size_t len = 0;
    if (!eq) return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "attribute 'equation' is required");
    for (const char *c = eq; *c; c++)
        if (!isspace((unsigned char)*c)) {
            if (len + 1 >= sizeof buf) return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "equation is too long");
            buf[len++] = *c;
        }
    buf[len] = 0;
    char *arrow = strstr(buf, "->");
    size_t lhs_len = arrow ? (size_t)(arrow - buf) : len;
    p->n_in = n->n_inputs;
    if (p->n_in > EIN_MAX_IN) return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "too many operands");
    /* first pass: the widest ellipsis */
    const char *s = buf;
    for (int i = 0; i < p->n_in; i++) {
        const char *end = memchr(s, ',', lhs_len - (size_t)(s - buf));
        if (!end) end = buf + lhs_len;
        if ((i < p->n_in - 1) != (end < buf + lhs_len))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "equation has a different number of terms than inputs");
        int letters = 0;
        bool ell = memchr(s, '.', (size_t)(end - s)) != NULL;
        for (const char *c = s; c < end; c++) letters += isalpha((unsigned char)*c) != 0;
        if (ell && in[i]->rank - letters > p->n_ell) p->n_ell = in[i]->rank - letters;
        s = end + 1;
    }
    s = buf;
    for (int i = 0; i < p->n_in; i++) {
        const char *end = memchr(s, ',', lhs_len - (size_t)(s - buf));
        if (!end) end = buf + lhs_len;
        kiln_status st = parse_term(ctx, n, s, (size_t)(end - s), in[i]->rank, p, &p->in[i]);
        if (!st) st = bind_extents(ctx, n, &p->in[i], in[i], p);
        if (st) return st;
        s = end + 1;
    }
    if (!arrow) {
        implicit_output(p);
        return KILN_OK;
    }
    kiln_status st = parse_term(ctx, n, arrow + 2, strlen(arrow + 2), -1, p, &p->out);
    if (st) return st;
    bool seen[EIN_LABELS] = {0};
    for (int d = 0; d < p->out.n; d++) {
        int l = p->out.label[d];
        if (seen[l] || !p->used[l])
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "output label repeated or not in any input");
        seen[l] = true;
    }
    return KILN_OK;
}

kiln_status nn_infer_einsum(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                            kiln_tensor *out) {
    ein_plan p;
    for (int i = 1; i < n->n_inputs; i++) {
        kiln_status s = nn_check_same_dtype(ctx, n, in[0], in[i], "an operand");
        if (s) return s;
    }
    kiln_status s = ein_parse(ctx, n, in, &p);
    if (s) return s;
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0; d < p.out.n; d++) dims[d] = p.extent[p.out.label[d]];
    kiln_tensor_init(&out[0], in[0]->dtype, p.out.n, dims);
    return KILN_OK;
}

/* Per operand and label, the element stride (0 where it broadcasts). */
static void label_strides(const ein_plan *p, const kiln_tensor *const *in, int64_t (*str)[EIN_LABELS]) {
    for (int i = 0; i < p->n_in; i++) {
        int64_t st[KILN_MAX_RANK];
        kiln_strides(in[i]->rank, in[i]->dims, st);
        memset(str[i], 0, sizeof(int64_t) * EIN_LABELS);
        for (int d = 0; d < p->in[i].n; d++)
            if (in[i]->dims[d] != 1 || p->extent[p->in[i].label[d]] == 1) str[i][p->in[i].label[d]] += st[d];
    }
}

kiln_status nn_ref_einsum(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                          kiln_tensor *out) {
    ein_plan p;
    kiln_status s = ein_parse(ctx, n, in, &p);
    if (s) return s;
    /* loop order: output labels, then the summed ones */
    int order[EIN_LABELS], nl = 0;
    bool is_out[EIN_LABELS] = {0};
    int64_t ext[EIN_LABELS], idx[EIN_LABELS] = {0};
    for (int d = 0; d < p.out.n; d++) order[nl++] = p.out.label[d], is_out[p.out.label[d]] = true;
    for (int l = 0; l < EIN_LABELS; l++)
        if (p.used[l] && !is_out[l]) order[nl++] = l;
    for (int i = 0; i < nl; i++) ext[i] = p.extent[order[i]];
    int64_t (*str)[EIN_LABELS] = kiln_malloc(sizeof(int64_t) * EIN_LABELS * (size_t)p.n_in);
    double *acc;
    if (!str) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    s = nn_alloc_f64(ctx, n, kiln_numel(&out[0]), &acc);
    if (s) {
        kiln_free(str);
        return s;
    }
    label_strides(&p, in, str);
    bool ints = kiln_dtype_is_int(out[0].dtype);
    int64_t total = kiln_numel_dims(nl, ext), inner = kiln_numel_dims(nl - p.out.n, ext + p.out.n);
    uint64_t iacc = 0;
    double facc = 0;
    for (int64_t it = 0; it < total; it++, kiln_index_next(nl, ext, idx)) {
        double fprod = 1;
        uint64_t iprod = 1;
        for (int i = 0; i < p.n_in; i++) {
            int64_t off = 0;
            for (int k = 0; k < nl; k++) off += idx[k] * str[i][order[k]];
            if (ints) iprod *= (uint64_t)kiln_tensor_i64(in[i], off);
            else fprod *= kiln_tensor_f64(in[i], off);
        }
        iacc += iprod;
        facc += fprod;
        if ((it + 1) % inner == 0) {
            /* integer sums stay exact in wrapping 64-bit arithmetic */
            if (ints) kiln_store_i64(out[0].dtype, out[0].data, it / inner, (int64_t)iacc);
            else acc[it / inner] = facc;
            iacc = 0;
            facc = 0;
        }
    }
    if (ints) {
        kiln_free(acc);
        acc = NULL;
    }
    if (acc) nn_out_done(&out[0], acc);
    kiln_free(str);
    return KILN_OK;
}
