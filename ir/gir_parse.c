/*
** gir_parse.c — parses the graph IR's text form (see gir_text.h).
**
** The parser checks syntax and builds the graph as written; whether the
** graph makes sense is the verifier's question, so broken graphs can be
** written down in tests and bug reports.
*/
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "dtype.h"
#include "gir_text.h"
#include "tensor.h"

#define MAX_DEPTH 16     /* subgraph nesting */
#define MAX_NUM_TEXT 80  /* longest number token */

typedef enum tkind { T_EOF, T_IDENT, T_NUMBER, T_STRING, T_VALUE, T_PUNCT } tkind;

typedef struct token {
    tkind kind;
    const char *p; /* for T_VALUE: the name after '%' (quoted or bare) */
    size_t n;
    int line, col;
} token;

/* Values of one graph by name. */
typedef struct vmap {
    gir_value **slot;
    size_t cap, n;
} vmap;

typedef struct scope {
    gir_graph *g;
    vmap map;
    bool seen_node;
    const struct scope *parent;
} scope;

typedef struct parser {
    kiln_ctx *ctx;
    const char *src;
    size_t pos;
    int line, col;
    token tok;
    kiln_status st;
    int depth;
    char *buf; /* decoded strings */
    size_t buf_cap;
} parser;

/* ---- errors ---- */

static void describe(const token *t, char *out, size_t n) {
    if (t->kind == T_EOF) {
        snprintf(out, n, "end of input");
        return;
    }
    char text[40];
    size_t k = 0;
    for (size_t i = 0; i < t->n && k + 4 < sizeof text; i++) {
        unsigned char c = (unsigned char)t->p[i];
        text[k++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    text[k] = 0;
    const char *more = k < t->n ? "..." : "";
    snprintf(out, n, "'%s%s%s'", t->kind == T_VALUE ? "%" : "", text, more);
}

static bool fail_at(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bool fail_at(parser *p, int line, int col, const char *fmt, ...) {
    if (p->st) return false;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    p->st = kiln_fail(p->ctx, KILN_ERR_PARSE, "line %d, column %d: %s", line, col, msg);
    return false;
}

/* "expected X, got Y" at the current token. */
static bool expected(parser *p, const char *what) {
    char got[64];
    describe(&p->tok, got, sizeof got);
    return fail_at(p, p->tok.line, p->tok.col, "expected %s, got %s", what, got);
}

static bool nomem(parser *p) {
    if (!p->st) p->st = kiln_fail(p->ctx, KILN_ERR_NOMEM, "out of memory parsing the graph");
    return false;
}

/* ---- lexer ---- */

static char peekc(const parser *p, size_t k) {
    for (size_t i = 0; i < k; i++)
        if (!p->src[p->pos + i]) return 0;
    return p->src[p->pos + k];
}

static void advance(parser *p, size_t k) {
    for (size_t i = 0; i < k && p->src[p->pos]; i++) {
        if (p->src[p->pos] == '\n') {
            p->line++;
            p->col = 1;
        } else {
            p->col++;
        }
        p->pos++;
    }
}

static void skip_space(parser *p) {
    for (;;) {
        char c = peekc(p, 0);
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            advance(p, 1);
        } else if (c == '#') {
            while (peekc(p, 0) && peekc(p, 0) != '\n') advance(p, 1);
        } else {
            return;
        }
    }
}

static bool is_value_char(char c) {
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '%' || c == '/' || c == '-';
}

static bool is_ident_char(char c) { return isalnum((unsigned char)c) || c == '_' || c == '.'; }

/* Consumes a quoted string starting at the current '"'. */
static bool lex_quoted(parser *p) {
    int line = p->line, col = p->col;
    advance(p, 1);
    for (;;) {
        char c = peekc(p, 0);
        if (!c || c == '\n') return fail_at(p, line, col, "unterminated string");
        if (c == '"') {
            advance(p, 1);
            return true;
        }
        advance(p, c == '\\' && peekc(p, 1) && peekc(p, 1) != '\n' ? 2 : 1);
    }
}

/* A sign may follow the exponent letter: e/E in decimal, p/P in hex. */
static bool exponent_sign(const parser *p, size_t start) {
    char c = peekc(p, 0);
    if ((c != '+' && c != '-') || p->pos == start) return false;
    char prev = p->src[p->pos - 1];
    bool hex = p->pos - start >= 2 && (p->src[start + 1] == 'x' || p->src[start + 1] == 'X');
    return hex ? prev == 'p' || prev == 'P' : prev == 'e' || prev == 'E';
}

static void lex_number(parser *p) {
    if (peekc(p, 0) == '-' || peekc(p, 0) == '+') advance(p, 1);
    size_t start = p->pos;
    while (is_ident_char(peekc(p, 0)) || exponent_sign(p, start)) advance(p, 1);
    /* nan(0xBITS) */
    if (p->pos - start == 3 && strncmp(p->src + start, "nan", 3) == 0 && peekc(p, 0) == '(') {
        advance(p, 1);
        while (isalnum((unsigned char)peekc(p, 0))) advance(p, 1);
        if (peekc(p, 0) == ')') advance(p, 1);
    }
}

static bool starts_number(const parser *p) {
    char c = peekc(p, 0), d = peekc(p, 1);
    if (isdigit((unsigned char)c)) return true;
    if (c == '.' && isdigit((unsigned char)d)) return true;
    if (c == '-' || c == '+') {
        if (isdigit((unsigned char)d) || d == '.') return true;
        return (d == 'i' && peekc(p, 2) == 'n' && peekc(p, 3) == 'f') ||
               (d == 'n' && peekc(p, 2) == 'a' && peekc(p, 3) == 'n');
    }
    return false;
}

static bool lex_value(parser *p) {
    advance(p, 1);
    p->tok.p = p->src + p->pos;
    if (peekc(p, 0) == '"') return lex_quoted(p);
    while (is_value_char(peekc(p, 0))) advance(p, 1);
    if (p->src + p->pos == p->tok.p) return expected(p, "a value name after '%'");
    return true;
}

/* Reads the next token into p->tok. */
static bool next(parser *p) {
    if (p->st) return false;
    skip_space(p);
    token *t = &p->tok;
    t->line = p->line;
    t->col = p->col;
    t->p = p->src + p->pos;
    char c = peekc(p, 0);
    bool ok = true;
    if (!c) {
        t->kind = T_EOF;
    } else if (c == '"') {
        t->kind = T_STRING;
        ok = lex_quoted(p);
    } else if (c == '%') {
        t->kind = T_VALUE;
        ok = lex_value(p);
    } else if (starts_number(p)) {
        t->kind = T_NUMBER;
        lex_number(p);
    } else if (isalpha((unsigned char)c) || c == '_') {
        t->kind = T_IDENT;
        while (is_ident_char(peekc(p, 0))) advance(p, 1);
        size_t n = (size_t)(p->src + p->pos - t->p);
        if ((n == 3 && !strncmp(t->p, "nan", 3)) || (n == 3 && !strncmp(t->p, "inf", 3))) {
            p->pos -= 3;
            p->col -= 3;
            t->kind = T_NUMBER;
            lex_number(p);
        }
    } else if (c == '.' && peekc(p, 1) == '.' && peekc(p, 2) == '.') {
        t->kind = T_PUNCT;
        advance(p, 3);
    } else if (c == ':' && peekc(p, 1) == ':') {
        t->kind = T_PUNCT;
        advance(p, 2);
    } else if (strchr("{}()[],=:@*?", c)) {
        t->kind = T_PUNCT;
        advance(p, 1);
    } else {
        unsigned char u = (unsigned char)c;
        return fail_at(p, t->line, t->col, u >= 0x20 && u < 0x7f ? "unexpected character '%c'"
                                                                  : "unexpected byte 0x%02x",
                       u);
    }
    t->n = (size_t)(p->src + p->pos - t->p);
    return ok;
}

static bool is_punct(const parser *p, const char *s) {
    return p->tok.kind == T_PUNCT && p->tok.n == strlen(s) && !strncmp(p->tok.p, s, p->tok.n);
}

static bool is_word(const parser *p, const char *s) {
    return p->tok.kind == T_IDENT && p->tok.n == strlen(s) && !strncmp(p->tok.p, s, p->tok.n);
}

static bool expect_punct(parser *p, const char *s) {
    if (!is_punct(p, s)) {
        char what[16];
        snprintf(what, sizeof what, "'%s'", s);
        return expected(p, what);
    }
    return next(p);
}

/* ---- token contents ---- */

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static bool reserve(parser *p, size_t n) {
    if (n <= p->buf_cap) return true;
    size_t cap = p->buf_cap ? p->buf_cap : 64;
    while (cap < n) cap *= 2;
    char *b = kiln_realloc(p->buf, cap);
    if (!b) return nomem(p);
    p->buf = b;
    p->buf_cap = cap;
    return true;
}

/* Decodes the current token's text (a quoted string or a bare word) into
** p->buf, NUL-terminated; *len gets its length. */
static bool token_text(parser *p, size_t *len) {
    const token *t = &p->tok;
    if (!reserve(p, t->n + 1)) return false;
    if (t->p[0] != '"') {
        memcpy(p->buf, t->p, t->n);
        p->buf[t->n] = 0;
        *len = t->n;
        return true;
    }
    size_t k = 0;
    for (size_t i = 1; i + 1 < t->n; i++) {
        char c = t->p[i];
        if (c == '\\') {
            int col = t->col + (int)i + (t->kind == T_VALUE);
            char e = t->p[++i];
            if (e == 'n') c = '\n';
            else if (e == 't') c = '\t';
            else if (e == 'r') c = '\r';
            else if (e == '"' || e == '\\') c = e;
            else if (e == 'x' && i + 2 < t->n && hexval(t->p[i + 1]) >= 0 && hexval(t->p[i + 2]) >= 0) {
                c = (char)(hexval(t->p[i + 1]) * 16 + hexval(t->p[i + 2]));
                i += 2;
            } else {
                return fail_at(p, t->line, col, "bad escape in string (use \\n \\t \\r \\\" \\\\ or \\xHH)");
            }
        }
        p->buf[k++] = c;
    }
    p->buf[k] = 0;
    *len = k;
    return true;
}

/* The current token's text copied into the graph's arena. */
static const char *arena_text(parser *p, gir_graph *g, size_t *len) {
    size_t n;
    if (!token_text(p, &n)) return NULL;
    char *s = kiln_arena_strndup(g->arena, p->buf, n);
    if (!s) {
        nomem(p);
        return NULL;
    }
    if (len) *len = n;
    return s;
}

/* The current number token NUL-terminated in p->buf. */
static const char *number_text(parser *p) {
    if (p->tok.kind != T_NUMBER) {
        expected(p, "a number");
        return NULL;
    }
    if (p->tok.n > MAX_NUM_TEXT) {
        fail_at(p, p->tok.line, p->tok.col, "number too long");
        return NULL;
    }
    size_t n;
    return token_text(p, &n) ? p->buf : NULL;
}

static bool parse_i64_text(const char *s, int64_t *out) {
    if (!*s || isspace((unsigned char)*s)) return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*end || errno) return false;
    *out = v;
    return true;
}

static bool parse_u64_text(const char *s, uint64_t *out) {
    if (!*s || isspace((unsigned char)*s) || *s == '-') return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end || errno) return false;
    *out = v;
    return true;
}

/* Reads an integer token into [lo, hi]. */
static bool read_int(parser *p, int64_t lo, int64_t hi, const char *what, int64_t *out) {
    const char *s = number_text(p);
    if (!s) return false;
    int64_t v;
    if (!parse_i64_text(s, &v)) return expected(p, what);
    if (v < lo || v > hi)
        return fail_at(p, p->tok.line, p->tok.col, "%s out of range: %s", what, s);
    *out = v;
    return next(p);
}

/* ---- floats ---- */

static uint64_t float_sign(kiln_dtype dt) {
    return dt == KILN_F64 ? 0x8000000000000000ull : dt == KILN_F32 ? 0x80000000u : 0x8000u;
}

static bool nan_bits(kiln_dtype dt, const char *q, bool neg, uint64_t *bits) {
    static const uint64_t canon[] = {0x7fc00000u, 0x7ff8000000000000ull, 0x7e00u, 0x7fc0u};
    int k = dt == KILN_F32 ? 0 : dt == KILN_F64 ? 1 : dt == KILN_F16 ? 2 : 3;
    if (!q[0]) {
        *bits = canon[k] | (neg ? float_sign(dt) : 0);
        return true;
    }
    if (neg || q[0] != '(' || q[1] != '0' || q[2] != 'x') return false;
    uint64_t b = 0;
    int digits = 0;
    const char *c = q + 3;
    for (; hexval(*c) >= 0 && digits < 16; c++, digits++) b = b * 16 + (uint64_t)hexval(*c);
    if (!digits || c[0] != ')' || c[1]) return false;
    int ebits = dt == KILN_F32 ? 8 : dt == KILN_F64 ? 11 : dt == KILN_F16 ? 5 : 8;
    int width = dt == KILN_F64 ? 64 : dt == KILN_F32 ? 32 : 16;
    int mbits = width - 1 - ebits;
    uint64_t emask = ((1ull << ebits) - 1) << mbits, mmask = (1ull << mbits) - 1;
    if (width < 64 && b >> width) return false;
    if ((b & emask) != emask || !(b & mmask)) return false; /* not a NaN */
    *bits = b;
    return true;
}

bool gir_text_float_bits(kiln_dtype dt, const char *s, uint64_t *bits) {
    if (dt != KILN_F32 && dt != KILN_F64 && dt != KILN_F16 && dt != KILN_BF16) return false;
    bool neg = s[0] == '-';
    const char *q = s + (s[0] == '-' || s[0] == '+');
    if (!strncmp(q, "nan", 3)) return nan_bits(dt, q + 3, neg, bits);
    bool inf = !strcmp(q, "inf");
    if (!inf && !(isdigit((unsigned char)q[0]) || q[0] == '.')) return false;
    char *end;
    double d = 0;
    float f = 0;
    if (inf) {
        d = neg ? -INFINITY : INFINITY;
        f = (float)d;
    } else if (dt == KILN_F64) {
        d = strtod(s, &end);
        if (*end || isinf(d)) return false;
    } else {
        f = strtof(s, &end);
        if (*end || isinf(f)) return false;
    }
    if (dt == KILN_F64) {
        memcpy(bits, &d, 8);
    } else if (dt == KILN_F32) {
        uint32_t b;
        memcpy(&b, &f, 4);
        *bits = b;
    } else {
        uint16_t h = dt == KILN_F16 ? kiln_f32_to_f16(f) : kiln_f32_to_bf16(f);
        uint16_t inf_bits = dt == KILN_F16 ? 0x7c00 : 0x7f80;
        if (!inf && (h & 0x7fff) == inf_bits) return false;
        *bits = h;
    }
    return true;
}

/* ---- value names ---- */

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static gir_value *vmap_get(const vmap *m, const char *name) {
    if (!m->cap) return NULL;
    for (size_t i = hash_name(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slot[i]) return NULL;
        if (!strcmp(m->slot[i]->name, name)) return m->slot[i];
    }
}

static bool vmap_put(vmap *m, gir_value *v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        gir_value **slot = kiln_calloc(cap, sizeof *slot);
        if (!slot) return false;
        for (size_t k = 0; k < m->cap; k++) {
            if (!m->slot[k]) continue;
            size_t i = hash_name(m->slot[k]->name) & (cap - 1);
            while (slot[i]) i = (i + 1) & (cap - 1);
            slot[i] = m->slot[k];
        }
        kiln_free(m->slot);
        m->slot = slot;
        m->cap = cap;
    }
    size_t i = hash_name(v->name) & (m->cap - 1);
    while (m->slot[i]) i = (i + 1) & (m->cap - 1);
    m->slot[i] = v;
    m->n++;
    return true;
}

/* The value named by the current T_VALUE token, created on first mention. */
static gir_value *value_ref(parser *p, scope *sc) {
    if (p->tok.kind != T_VALUE) {
        expected(p, "a value (%name)");
        return NULL;
    }
    size_t n;
    if (!token_text(p, &n)) return NULL;
    if (n == 0 || strlen(p->buf) != n) {
        fail_at(p, p->tok.line, p->tok.col, "a value name must be non-empty and free of NUL bytes");
        return NULL;
    }
    gir_value *v = vmap_get(&sc->map, p->buf);
    if (!v) {
        v = gir_value_new(sc->g, p->buf);
        if (!v || !vmap_put(&sc->map, v)) {
            nomem(p);
            return NULL;
        }
    }
    return next(p) ? v : NULL;
}

/* ---- types ---- */

static bool parse_dim(parser *p, gir_graph *g, gir_dim *d) {
    d->value = -1;
    d->sym = NULL;
    if (is_punct(p, "?")) return next(p);
    if (p->tok.kind == T_IDENT || p->tok.kind == T_STRING) {
        d->sym = arena_text(p, g, NULL);
        return d->sym && next(p);
    }
    if (p->tok.kind != T_NUMBER) return expected(p, "a dimension (an extent, a symbol or ?)");
    return read_int(p, 0, INT64_MAX, "a dimension", &d->value);
}

static bool parse_dims(parser *p, gir_graph *g, gir_type *ty) {
    if (!expect_punct(p, "[")) return false;
    ty->rank = 0;
    if (is_punct(p, "*")) {
        ty->rank = -1;
        return next(p) && expect_punct(p, "]");
    }
    while (!is_punct(p, "]")) {
        if (ty->rank && !expect_punct(p, ",")) return false;
        if (ty->rank == KILN_MAX_RANK)
            return fail_at(p, p->tok.line, p->tok.col, "rank exceeds %d", KILN_MAX_RANK);
        if (!parse_dim(p, g, &ty->dims[ty->rank])) return false;
        ty->rank++;
    }
    return next(p);
}

static bool parse_type(parser *p, gir_graph *g, gir_type *ty) {
    memset(ty, 0, sizeof *ty);
    ty->rank = -1;
    if (is_punct(p, "?")) {
        if (!next(p)) return false;
        return is_punct(p, "[") ? parse_dims(p, g, ty) : true;
    }
    if (p->tok.kind != T_IDENT) return expected(p, "a type such as f32[1,3] or ?");
    char name[16];
    size_t n = p->tok.n < sizeof name - 1 ? p->tok.n : sizeof name - 1;
    memcpy(name, p->tok.p, n);
    name[n] = 0;
    ty->dtype = p->tok.n < sizeof name ? kiln_dtype_from_name(name) : KILN_UNDEFINED;
    if (ty->dtype == KILN_UNDEFINED)
        return expected(p, "an element type (f32 f64 f16 bf16 i8 i16 i32 i64 u8 u16 u32 u64 bool str)");
    return next(p) && parse_dims(p, g, ty);
}

static bool same_type(const gir_type *a, const gir_type *b) {
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++) {
        const gir_dim *x = &a->dims[i], *y = &b->dims[i];
        if (x->value != y->value) return false;
        if (x->value < 0 && strcmp(x->sym ? x->sym : "", y->sym ? y->sym : "")) return false;
    }
    return true;
}

/* ---- constant data ---- */

typedef struct elems {
    unsigned char *bytes;
    size_t len, cap;
    int64_t count;
} elems;

static bool elems_add(parser *p, elems *e, const void *v, size_t n) {
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        while (cap < e->len + n) cap *= 2;
        unsigned char *b = kiln_realloc(e->bytes, cap);
        if (!b) return nomem(p);
        e->bytes = b;
        e->cap = cap;
    }
    memcpy(e->bytes + e->len, v, n);
    e->len += n;
    e->count++;
    return true;
}

static bool int_range(kiln_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case KILN_I8: *lo = INT8_MIN, *hi = INT8_MAX; return true;
    case KILN_I16: *lo = INT16_MIN, *hi = INT16_MAX; return true;
    case KILN_I32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
    case KILN_I64: *lo = INT64_MIN, *hi = INT64_MAX; return true;
    case KILN_U8: *lo = 0, *hi = UINT8_MAX; return true;
    case KILN_U16: *lo = 0, *hi = UINT16_MAX; return true;
    case KILN_U32: *lo = 0, *hi = UINT32_MAX; return true;
    default: return false;
    }
}

static bool read_element(parser *p, gir_graph *g, kiln_dtype dt, elems *e) {
    unsigned char tmp[8];
    size_t es = kiln_dtype_size(dt);
    if (is_punct(p, "..."))
        return fail_at(p, p->tok.line, p->tok.col,
                       "constant data is elided ('...', a summary print); print the graph in full to parse it");
    if (dt == KILN_STRING) {
        if (p->tok.kind != T_STRING) return expected(p, "a string");
        const char *s = arena_text(p, g, NULL);
        return s && elems_add(p, e, &s, sizeof s) && next(p);
    }
    if (dt == KILN_BOOL && (is_word(p, "true") || is_word(p, "false"))) {
        tmp[0] = is_word(p, "true");
        return elems_add(p, e, tmp, 1) && next(p);
    }
    const char *s = number_text(p);
    if (!s) return false;
    char what[48];
    snprintf(what, sizeof what, "a %s value", kiln_dtype_name(dt));
    if (kiln_dtype_is_float(dt)) {
        uint64_t bits;
        if (!gir_text_float_bits(dt, s, &bits)) return expected(p, what);
        if (es == 2) {
            uint16_t h = (uint16_t)bits;
            memcpy(tmp, &h, 2);
        } else if (es == 4) {
            uint32_t b = (uint32_t)bits;
            memcpy(tmp, &b, 4);
        } else {
            memcpy(tmp, &bits, 8);
        }
    } else if (dt == KILN_U64) {
        uint64_t u;
        if (!parse_u64_text(s, &u)) return expected(p, what);
        memcpy(tmp, &u, 8);
    } else {
        int64_t v, lo = 0, hi = 1;
        if (dt != KILN_BOOL && !int_range(dt, &lo, &hi)) return expected(p, "a supported element type");
        if (!parse_i64_text(s, &v) || v < lo || v > hi) return expected(p, what);
        kiln_store_i64(dt, tmp, 0, v);
    }
    return elems_add(p, e, tmp, es) && next(p);
}

/* Parses `{e, e, ...}` for a static type into a tensor in g's arena. */
static bool parse_data(parser *p, gir_graph *g, const gir_type *ty, int line, int col,
                       kiln_tensor **out) {
    if (!gir_type_is_static(ty))
        return fail_at(p, line, col, "constant data needs a static type (known element type and extents)");
    if (!expect_punct(p, "{")) return false;
    elems e = {0};
    bool ok = true;
    while (ok && !is_punct(p, "}")) {
        if (e.count && !expect_punct(p, ",")) ok = false;
        else ok = read_element(p, g, ty->dtype, &e);
    }
    kiln_tensor *t = NULL;
    if (ok) {
        t = kiln_arena_alloc(g->arena, sizeof *t);
        if (!t) ok = nomem(p);
    }
    if (ok) {
        gir_type_to_tensor(ty, t);
        int64_t want = kiln_numel(t);
        if (want != e.count) {
            char shape[160];
            ok = fail_at(p, p->tok.line, p->tok.col, "%s needs %" PRId64 " values, got %" PRId64,
                         kiln_shape_str(t, shape, sizeof shape), want, e.count);
        }
    }
    if (ok) {
        t->data = kiln_arena_memdup(g->arena, e.bytes, e.len);
        if (!t->data) ok = nomem(p);
    }
    kiln_free(e.bytes);
    if (!ok) return false;
    *out = t;
    return next(p);
}

/* ---- attributes ---- */

static bool parse_graph(parser *p, scope *sc);

static bool looks_float(const char *s) { return strpbrk(s, ".eEpPnix") != NULL; }

static bool attr_float(parser *p, const char *s, double *out) {
    const char *q = s + (s[0] == '-' || s[0] == '+');
    if (strchr(s, 'x') && strncmp(q, "nan", 3)) {
        char *end;
        double d = strtod(s, &end);
        if (*end || isinf(d) || isspace((unsigned char)*s)) return expected(p, "a float");
        *out = d;
        return true;
    }
    uint64_t bits;
    if (!gir_text_float_bits(KILN_F32, s, &bits)) return expected(p, "a float");
    uint32_t b = (uint32_t)bits;
    float f;
    memcpy(&f, &b, 4);
    *out = f;
    return true;
}

/* A list [a, b, ...]: strings, floats (any element looks like one) or ints. */
static bool parse_list(parser *p, gir_graph *g, gir_attr *a) {
    int line = p->tok.line, col = p->tok.col;
    if (!next(p)) return false;
    if (is_punct(p, "]"))
        return fail_at(p, line, col, "an empty list needs its kind: ints[], floats[] or strings[]");
    size_t save_pos = p->pos;
    int save_line = p->line, save_col = p->col;
    token save_tok = p->tok;
    /* first pass: count and find the kind */
    int n = 0;
    bool strings = p->tok.kind == T_STRING, floats = false;
    while (!is_punct(p, "]")) {
        if (n && !expect_punct(p, ",")) return false;
        if (strings ? p->tok.kind != T_STRING : p->tok.kind != T_NUMBER)
            return expected(p, strings ? "a string" : "a number");
        if (!strings) {
            const char *s = number_text(p);
            if (!s) return false;
            floats |= looks_float(s);
        }
        if (++n > (1 << 24)) return fail_at(p, line, col, "list too long");
        if (!next(p)) return false;
    }
    p->pos = save_pos, p->line = save_line, p->col = save_col, p->tok = save_tok;
    a->kind = strings ? GIR_ATTR_STRINGS : floats ? GIR_ATTR_FLOATS : GIR_ATTR_INTS;
    a->n = n;
    void *arr = kiln_arena_alloc(g->arena, (size_t)n * 8);
    if (!arr) return nomem(p);
    a->ints = a->kind == GIR_ATTR_INTS ? arr : NULL;
    a->floats = a->kind == GIR_ATTR_FLOATS ? arr : NULL;
    a->strings = a->kind == GIR_ATTR_STRINGS ? arr : NULL;
    for (int i = 0; i < n; i++) {
        if (i && !expect_punct(p, ",")) return false;
        if (strings) {
            a->strings[i] = arena_text(p, g, NULL);
            if (!a->strings[i]) return false;
        } else {
            const char *s = number_text(p);
            if (!s) return false;
            if (floats && !attr_float(p, s, &a->floats[i])) return false;
            if (!floats && !parse_i64_text(s, &a->ints[i])) return expected(p, "an integer (int64)");
        }
        if (!next(p)) return false;
    }
    return next(p);
}

/* What a subgraph does not state it inherits, as the ONNX loader gives it. */
static bool inherit_meta(parser *p, gir_graph *sub, const gir_graph *up) {
    if (!sub->ir_version) sub->ir_version = up->ir_version;
    if (!sub->producer && up->producer && !(sub->producer = kiln_arena_strdup(sub->arena, up->producer)))
        return nomem(p);
    if (sub->n_opsets || !up->n_opsets) return true;
    sub->opsets = kiln_arena_alloc(sub->arena, sizeof(gir_opset) * (size_t)up->n_opsets);
    if (!sub->opsets) return nomem(p);
    for (int i = 0; i < up->n_opsets; i++) {
        sub->opsets[i].version = up->opsets[i].version;
        sub->opsets[i].domain = kiln_arena_strdup(sub->arena, up->opsets[i].domain ? up->opsets[i].domain : "");
        if (!sub->opsets[i].domain) return nomem(p);
    }
    sub->n_opsets = up->n_opsets;
    return true;
}

static bool parse_subgraph(parser *p, scope *sc, gir_attr *a) {
    if (p->depth >= MAX_DEPTH) return fail_at(p, p->tok.line, p->tok.col, "subgraphs nested too deep");
    gir_graph *sub = gir_graph_new();
    if (!sub) return nomem(p);
    scope inner = {.g = sub, .parent = sc};
    p->depth++;
    bool ok = parse_graph(p, &inner) && inherit_meta(p, sub, sc->g);
    p->depth--;
    kiln_free(inner.map.slot);
    if (!ok) {
        gir_graph_free(sub);
        return false;
    }
    a->kind = GIR_ATTR_GRAPH;
    a->g = sub;
    return true;
}

static bool parse_word_attr(parser *p, scope *sc, gir_attr *a) {
    if (is_word(p, "graph")) return parse_subgraph(p, sc, a);
    static const struct { const char *w; gir_attr_kind k; } empties[] = {
        {"ints", GIR_ATTR_INTS}, {"floats", GIR_ATTR_FLOATS}, {"strings", GIR_ATTR_STRINGS}};
    for (int i = 0; i < 3; i++) {
        if (!is_word(p, empties[i].w)) continue;
        a->kind = empties[i].k;
        return next(p) && expect_punct(p, "[") && expect_punct(p, "]");
    }
    int line = p->tok.line, col = p->tok.col;
    gir_type ty;
    if (!parse_type(p, sc->g, &ty)) return false;
    a->kind = GIR_ATTR_TENSOR;
    return parse_data(p, sc->g, &ty, line, col, &a->t);
}

static bool parse_attr_value(parser *p, scope *sc, gir_attr *a) {
    gir_graph *g = sc->g;
    if (p->tok.kind == T_STRING) {
        a->kind = GIR_ATTR_STRING;
        a->s = arena_text(p, g, &a->s_len);
        return a->s && next(p);
    }
    if (p->tok.kind == T_NUMBER) {
        const char *s = number_text(p);
        if (!s) return false;
        if (looks_float(s)) {
            a->kind = GIR_ATTR_FLOAT;
            if (!attr_float(p, s, &a->f)) return false;
        } else {
            a->kind = GIR_ATTR_INT;
            if (!parse_i64_text(s, &a->i)) return expected(p, "an integer (int64)");
        }
        return next(p);
    }
    if (is_punct(p, "[")) return parse_list(p, g, a);
    if (p->tok.kind == T_IDENT) return parse_word_attr(p, sc, a);
    return expected(p, "an attribute value");
}

/* ---- nodes ---- */

/* Everything a node statement holds until the node is made. */
typedef struct node_parts {
    gir_value **outs, **ins;
    gir_type *out_types;
    bool *out_typed;
    int n_outs, cap_outs, n_ins, cap_ins, cap_types, cap_typed;
    gir_attr *attrs;
    int n_attrs, cap_attrs;
    const char *domain, *op_type, *name;
    int64_t opset;
    bool has_opset;
} node_parts;

static void parts_free(node_parts *np, bool free_graphs) {
    if (free_graphs)
        for (int i = 0; i < np->n_attrs; i++) gir_graph_free(np->attrs[i].g);
    kiln_free(np->outs);
    kiln_free(np->ins);
    kiln_free(np->out_types);
    kiln_free(np->out_typed);
    kiln_free(np->attrs);
}

static bool parse_outputs(parser *p, scope *sc, node_parts *np) {
    if (is_punct(p, "(")) return next(p) && expect_punct(p, ")");
    for (;;) {
        int k = np->n_outs;
        if (!kiln_grow((void **)&np->outs, &np->cap_outs, k + 1, sizeof *np->outs) ||
            !kiln_grow((void **)&np->out_types, &np->cap_types, k + 1, sizeof *np->out_types) ||
            !kiln_grow((void **)&np->out_typed, &np->cap_typed, k + 1, sizeof *np->out_typed))
            return nomem(p);
        np->outs[k] = NULL;
        np->out_typed[k] = false;
        np->n_outs++;
        if (is_word(p, "_")) {
            if (!next(p)) return false;
        } else {
            np->outs[k] = value_ref(p, sc);
            if (!np->outs[k]) return false;
            if (is_punct(p, ":")) {
                np->out_typed[k] = true;
                if (!next(p) || !parse_type(p, sc->g, &np->out_types[k])) return false;
            }
        }
        if (!is_punct(p, ",")) return true;
        if (!next(p)) return false;
    }
}

static bool parse_inputs(parser *p, scope *sc, node_parts *np) {
    if (!expect_punct(p, "(")) return false;
    while (!is_punct(p, ")")) {
        if (np->n_ins && !expect_punct(p, ",")) return false;
        if (!kiln_grow((void **)&np->ins, &np->cap_ins, np->n_ins + 1, sizeof *np->ins)) return nomem(p);
        gir_value *v = NULL;
        if (is_word(p, "_")) {
            if (!next(p)) return false;
        } else if (!(v = value_ref(p, sc))) {
            return false;
        }
        np->ins[np->n_ins++] = v;
    }
    return next(p);
}

static bool parse_attrs(parser *p, scope *sc, node_parts *np) {
    if (!next(p)) return false;
    while (!is_punct(p, "}")) {
        if (np->n_attrs && !expect_punct(p, ",")) return false;
        if (p->tok.kind != T_IDENT && p->tok.kind != T_STRING) return expected(p, "an attribute name");
        if (!kiln_grow((void **)&np->attrs, &np->cap_attrs, np->n_attrs + 1, sizeof *np->attrs))
            return nomem(p);
        gir_attr *a = &np->attrs[np->n_attrs++];
        memset(a, 0, sizeof *a);
        a->name = arena_text(p, sc->g, NULL);
        if (!a->name || !next(p) || !expect_punct(p, "=")) return false;
        if (!parse_attr_value(p, sc, a)) return false;
    }
    return next(p);
}

static bool parse_op(parser *p, scope *sc, node_parts *np) {
    if (p->tok.kind != T_IDENT && p->tok.kind != T_STRING) return expected(p, "an op type");
    const char *first = arena_text(p, sc->g, NULL);
    if (!first || !next(p)) return false;
    np->domain = "";
    np->op_type = first;
    if (is_punct(p, "::")) {
        np->domain = first;
        if (!next(p)) return false;
        if (p->tok.kind != T_IDENT && p->tok.kind != T_STRING) return expected(p, "an op type after '::'");
        np->op_type = arena_text(p, sc->g, NULL);
        if (!np->op_type || !next(p)) return false;
    }
    if (is_punct(p, "@")) {
        np->has_opset = true;
        return next(p) && read_int(p, 0, INT32_MAX, "an opset version", &np->opset);
    }
    return true;
}

static int64_t scope_opset(const scope *sc, const char *domain) {
    for (; sc; sc = sc->parent) {
        int64_t v = gir_opset_version(sc->g, domain);
        if (v) return v;
    }
    return 0;
}

static bool make_node(parser *p, scope *sc, node_parts *np) {
    gir_node *n = gir_node_new(sc->g, np->op_type, np->name, np->n_ins, np->n_outs, np->n_attrs);
    if (!n) return nomem(p);
    n->domain = np->domain;
    n->opset = (int)(np->has_opset ? np->opset : scope_opset(sc, np->domain));
    for (int i = 0; i < np->n_ins; i++) n->inputs[i] = np->ins[i];
    for (int i = 0; i < np->n_attrs; i++) n->attrs[i] = np->attrs[i];
    for (int i = 0; i < np->n_outs; i++) {
        gir_value *v = np->outs[i];
        n->outputs[i] = v;
        if (!v) continue;
        v->producer = n;
        v->producer_slot = i;
        if (np->out_typed[i]) v->type = np->out_types[i];
    }
    return true;
}

static bool parse_node(parser *p, scope *sc) {
    node_parts np = {0};
    bool ok = parse_outputs(p, sc, &np) && expect_punct(p, "=") && parse_op(p, sc, &np) &&
              parse_inputs(p, sc, &np);
    if (ok && is_punct(p, "{")) ok = parse_attrs(p, sc, &np);
    if (ok && is_word(p, "name")) {
        ok = next(p) && expect_punct(p, "=");
        if (ok && p->tok.kind != T_STRING) ok = expected(p, "the node's name as a string");
        if (ok) ok = (np.name = arena_text(p, sc->g, NULL)) && next(p);
    }
    if (ok) ok = make_node(p, sc, &np);
    parts_free(&np, !ok);
    sc->seen_node = true;
    return ok;
}

/* ---- statements ---- */

static bool parse_opset(parser *p, scope *sc) {
    gir_graph *g = sc->g;
    if (sc->seen_node)
        return fail_at(p, p->tok.line, p->tok.col, "opset imports must come before the nodes");
    if (!next(p)) return false;
    const char *domain = "";
    if (p->tok.kind == T_IDENT || p->tok.kind == T_STRING) {
        domain = arena_text(p, g, NULL);
        if (!domain || !next(p)) return false;
    }
    int64_t version;
    if (!read_int(p, 1, INT64_MAX, "an opset version", &version)) return false;
    gir_opset *ops = kiln_arena_alloc(g->arena, sizeof *ops * (size_t)(g->n_opsets + 1));
    if (!ops) return nomem(p);
    if (g->n_opsets) memcpy(ops, g->opsets, sizeof *ops * (size_t)g->n_opsets);
    ops[g->n_opsets].domain = domain;
    ops[g->n_opsets].version = version;
    g->opsets = ops;
    g->n_opsets++;
    return true;
}

static bool parse_decl(parser *p, scope *sc, bool is_input) {
    if (!next(p)) return false;
    int line = p->tok.line, col = p->tok.col;
    gir_value *v = value_ref(p, sc);
    if (!v) return false;
    if (is_input && v->is_input) return fail_at(p, line, col, "%%%s is already an input", v->name);
    if (v->constant) return fail_at(p, line, col, "%%%s is already a constant", v->name);
    if (!expect_punct(p, ":")) return false;
    int tline = p->tok.line, tcol = p->tok.col;
    gir_type ty;
    if (!parse_type(p, sc->g, &ty)) return false;
    v->type = ty;
    if (is_input && !gir_add_input(sc->g, v)) return nomem(p);
    if (!is_input && !is_punct(p, "=")) return expected(p, "'=' and the constant's data");
    if (!is_punct(p, "=")) return true;
    return next(p) && parse_data(p, sc->g, &ty, tline, tcol, &v->constant);
}

static bool parse_output(parser *p, scope *sc) {
    if (!next(p)) return false;
    int line = p->tok.line, col = p->tok.col;
    gir_value *v = value_ref(p, sc);
    if (!v) return false;
    if (!gir_add_output(sc->g, v)) return nomem(p);
    if (!is_punct(p, ":")) return true;
    gir_type ty;
    if (!next(p) || !parse_type(p, sc->g, &ty)) return false;
    if (v->type.dtype == KILN_UNDEFINED && v->type.rank < 0) v->type = ty;
    else if (!same_type(&v->type, &ty))
        return fail_at(p, line, col, "the type given for output %%%s differs from its definition", v->name);
    return true;
}

static bool parse_stmt(parser *p, scope *sc) {
    gir_graph *g = sc->g;
    if (is_word(p, "input")) return parse_decl(p, sc, true);
    if (is_word(p, "const")) return parse_decl(p, sc, false);
    if (is_word(p, "output")) return parse_output(p, sc);
    if (is_word(p, "opset")) return parse_opset(p, sc);
    if (is_word(p, "ir_version")) return next(p) && read_int(p, 0, INT64_MAX, "an IR version", &g->ir_version);
    if (is_word(p, "producer")) {
        if (!next(p)) return false;
        if (p->tok.kind != T_STRING) return expected(p, "the producer as a string");
        g->producer = arena_text(p, g, NULL);
        return g->producer && next(p);
    }
    if (p->tok.kind == T_VALUE || is_word(p, "_") || is_punct(p, "(")) return parse_node(p, sc);
    return expected(p, "a statement (input, const, a node, output, opset, ...) or '}'");
}

static bool parse_graph(parser *p, scope *sc) {
    if (!is_word(p, "graph")) return expected(p, "'graph'");
    if (!next(p)) return false;
    if (p->tok.kind == T_STRING || p->tok.kind == T_IDENT) {
        sc->g->name = arena_text(p, sc->g, NULL);
        if (!sc->g->name || !next(p)) return false;
    } else {
        return expected(p, "the graph's name as a string");
    }
    if (!expect_punct(p, "{")) return false;
    while (!is_punct(p, "}")) {
        if (p->tok.kind == T_EOF) return expected(p, "'}' closing the graph");
        if (!parse_stmt(p, sc)) return false;
    }
    return next(p);
}

kiln_status gir_parse(kiln_ctx *ctx, const char *text, gir_graph **out) {
    parser p = {.ctx = ctx, .src = text, .line = 1, .col = 1};
    gir_graph *g = gir_graph_new();
    if (!g) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory parsing the graph");
    scope sc = {.g = g};
    if (next(&p) && parse_graph(&p, &sc) && p.tok.kind != T_EOF) expected(&p, "end of input");
    kiln_free(sc.map.slot);
    kiln_free(p.buf);
    if (p.st) {
        gir_graph_free(g);
        return p.st;
    }
    *out = g;
    return KILN_OK;
}

kiln_status gir_parse_file(kiln_ctx *ctx, const char *path, gir_graph **out) {
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    kiln_status s = KILN_OK;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb = kiln_realloc(buf, ncap);
            if (!nb) {
                s = kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory reading the file", path);
                break;
            }
            buf = nb;
            cap = ncap;
        }
        size_t k = fread(buf + len, 1, cap - len - 1, f);
        len += k;
        if (k == 0) break;
    }
    if (!s && ferror(f)) s = kiln_fail(ctx, KILN_ERR_IO, "%s: read error", path);
    fclose(f);
    if (!s) {
        buf[len] = 0;
        const char *nul = memchr(buf, 0, len);
        if (nul)
            s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: a NUL byte at offset %zu (not a text file?)", path,
                          (size_t)(nul - buf));
    }
    if (!s) {
        s = gir_parse(ctx, buf, out);
        if (s) kiln_wrap(ctx, s, "%s", path);
    }
    kiln_free(buf);
    return s;
}
