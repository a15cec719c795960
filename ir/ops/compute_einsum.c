/*
** compute_einsum.c — the compute definition of Einsum: one stage whose
** spatial axes are the output's labels and whose reduction axes are the
** labels summed away, its body the product of the operands, each read at
** its labels (a label repeated in a term reads the diagonal; an ellipsis
** dim of extent 1 broadcasts). Axes are named after their letters.
**
** The equation is read as the reference reads it (linalg_einsum.c): labels
** 0..51 are the letters, 52.. the dims an ellipsis stands for, aligned to
** the right across operands; without "->" the output is the ellipsis, then
** the letters used once in character order.
*/
#include <ctype.h>
#include <string.h>

#include "compute.h"

#define EN_LETTERS 52
#define EN_LABELS (EN_LETTERS + KILN_MAX_RANK)
#define EN_MAX_IN 16

typedef struct en_term {
    int n;
    int label[KILN_MAX_RANK];
} en_term;

typedef struct en_plan {
    int n_in, n_ell;
    en_term in[EN_MAX_IN], out;
    int64_t extent[EN_LABELS];
    bool used[EN_LABELS];
} en_plan;

static int en_letter(char c) { return islower((unsigned char)c) ? c - 'a' : c - 'A' + 26; }

/* Splits the equation (spaces removed) into its input terms and output. */
static bool en_split(const char *eq, char *buf, size_t size, const char **terms, size_t *lens, int n_in,
                     const char **out) {
    size_t len = 0;
    for (const char *c = eq; *c; c++)
        if (!isspace((unsigned char)*c)) {
            if (len + 1 >= size) return false;
            buf[len++] = *c;
        }
    buf[len] = 0;
    char *arrow = strstr(buf, "->");
    *out = arrow ? arrow + 2 : NULL;
    size_t lhs = arrow ? (size_t)(arrow - buf) : len;
    const char *s = buf;
    for (int i = 0; i < n_in; i++) {
        const char *end = memchr(s, ',', lhs - (size_t)(s - buf));
        if (!end) end = buf + lhs;
        if ((i < n_in - 1) != (end < buf + lhs)) return false;
        terms[i] = s;
        lens[i] = (size_t)(end - s);
        s = end + 1;
    }
    return true;
}

static int en_letters(const char *s, size_t len) {
    int k = 0;
    for (size_t i = 0; i < len; i++) k += isalpha((unsigned char)s[i]) != 0;
    return k;
}

/* Labels of a term for an operand of rank `rank` (-1: the output). */
static bool en_term_of(const char *s, size_t len, int rank, const en_plan *p, en_term *t) {
    bool ell = memchr(s, '.', len) != NULL;
    int letters = en_letters(s, len), n_ell = !ell ? 0 : rank < 0 ? p->n_ell : rank - letters;
    if ((rank >= 0 && (n_ell < 0 || (!ell && letters != rank))) || letters + n_ell > KILN_MAX_RANK) return false;
    t->n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '.') {
            if (i + 2 >= len || s[i + 1] != '.' || s[i + 2] != '.') return false;
            for (int e = 0; e < n_ell; e++) t->label[t->n++] = EN_LETTERS + (p->n_ell - n_ell) + e;
            i += 2;
        } else if (isalpha((unsigned char)s[i])) {
            t->label[t->n++] = en_letter(s[i]);
        } else {
            return false;
        }
    }
    return true;
}

static void en_implicit_output(en_plan *p) {
    int count[EN_LABELS] = {0};
    for (int i = 0; i < p->n_in; i++)
        for (int d = 0; d < p->in[i].n; d++) count[p->in[i].label[d]]++;
    p->out.n = 0;
    for (int e = 0; e < p->n_ell; e++) p->out.label[p->out.n++] = EN_LETTERS + e;
    for (int l = 26; l < EN_LETTERS; l++)
        if (count[l] == 1 && p->out.n < KILN_MAX_RANK) p->out.label[p->out.n++] = l;
    for (int l = 0; l < 26; l++)
        if (count[l] == 1 && p->out.n < KILN_MAX_RANK) p->out.label[p->out.n++] = l;
}

static kiln_status en_parse(kiln_ctx *ctx, const gir_node *n, tir_tensor *const *in, en_plan *p) {
    memset(p, 0, sizeof *p);
    char buf[512];
    const char *terms[EN_MAX_IN], *outs;
    size_t lens[EN_MAX_IN];
    const char *eq = gir_attr_string(n, "equation", "");
    p->n_in = n->n_inputs;
    if (p->n_in > EN_MAX_IN || !en_split(eq, buf, sizeof buf, terms, lens, p->n_in, &outs))
        return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "equation '%s' cannot be compiled", eq);
    for (int i = 0; i < p->n_in; i++)
        if (memchr(terms[i], '.', lens[i]) && in[i]->rank - en_letters(terms[i], lens[i]) > p->n_ell)
            p->n_ell = in[i]->rank - en_letters(terms[i], lens[i]);
    for (int i = 0; i < p->n_in; i++) {
        if (!en_term_of(terms[i], lens[i], in[i]->rank, p, &p->in[i]))
            return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "equation term %d does not fit its operand", i);
        for (int d = 0; d < p->in[i].n; d++) {
            int l = p->in[i].label[d];
            int64_t e = in[i]->dims[d];
            if (!p->used[l] || (l >= EN_LETTERS && p->extent[l] == 1)) p->extent[l] = e;
            p->used[l] = true;
        }
    }
    if (!outs) en_implicit_output(p);
    else if (!en_term_of(outs, strlen(outs), -1, p, &p->out))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "the equation's output term is malformed");
    return KILN_OK;
}

static const char *en_name(int l, char *buf) {
    if (l < 26) buf[0] = (char)('a' + l), buf[1] = 0;
    else if (l < EN_LETTERS) buf[0] = (char)('A' + l - 26), buf[1] = 0;
    else buf[0] = 'e', buf[1] = (char)('0' + l - EN_LETTERS), buf[2] = 0;
    return buf;
}

CMP_FN(einsum) {
    kiln_tensor ty;
    en_plan p;
    kiln_status s = cmp_infer(ctx, n, in, &ty);
    if (!s) s = cmp_plain(ctx, n, ty.dtype);
    if (!s) s = en_parse(ctx, n, in, &p);
    if (s) return s;
    kiln_dtype dt = ty.dtype, c = cmp_calc(dt);
    char names[KILN_MAX_RANK][4], rn[4];
    const char *an[KILN_MAX_RANK];
    bool is_out[EN_LABELS] = {false};
    for (int d = 0; d < p.out.n; d++) {
        an[d] = en_name(p.out.label[d], names[d]);
        is_out[p.out.label[d]] = true;
    }
    bool cast = c != dt;
    tir_stage *st = cmp_stage(f, cast ? "einsum_acc" : "einsum", c, ty.rank, ty.dims, TIR_TAG_REDUCE, an);
    if (!st) return cmp_done(ctx, f, n);
    ex_expr *var[EN_LABELS] = {NULL};
    for (int d = 0; d < p.out.n; d++) var[p.out.label[d]] = cmp_ax(f, st, d);
    for (int l = 0; l < EN_LABELS; l++)
        if (p.used[l] && !is_out[l]) var[l] = ex_varref(&f->eb, cmp_raxis(f, st, en_name(l, rn), p.extent[l]));
    ex_expr *prod = NULL;
    for (int i = 0; i < p.n_in; i++) {
        ex_expr *xi[KILN_MAX_RANK];
        for (int d = 0; d < p.in[i].n; d++) {
            int l = p.in[i].label[d];
            xi[d] = in[i]->dims[d] == 1 && p.extent[l] != 1 ? ex_int(&f->eb, 0) : var[l];
        }
        ex_expr *v = cmp_to(f, cmp_load(f, in[i], xi), c);
        prod = prod ? cmp_bin(f, EX_MUL, prod, v) : v;
    }
    st->tag = st->n_raxes ? TIR_TAG_REDUCE : TIR_TAG_ELEMWISE;
    st->body = st->n_raxes ? cmp_reduction(f, st, EX_SUM, prod) : prod;
    out[0] = cast ? cmp_copy(f, "einsum", st->out, dt, TIR_TAG_ELEMWISE) : st->out;
    return cmp_done(ctx, f, n);
}
