/*
** gir_print.c — prints a graph in the text form (see gir_text.h).
*/
#include <ctype.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "dtype.h"
#include "gir_text.h"
#include "tensor.h"

#define SUMMARY_MAX_ELEMS 16 /* a constant with more prints elided in summary mode */
#define SUMMARY_SHOW 4       /* elements shown before the "..." */

/* Where the text goes: a FILE, or a growing buffer. */
typedef struct psink {
    FILE *f;
    char *buf;
    size_t len, cap;
    bool oom;
} psink;

/* The enclosing graphs, for the opset a node inherits. */
typedef struct pscope {
    const gir_graph *g;
    const struct pscope *parent;
} pscope;

static void put(psink *s, const char *text, size_t n) {
    if (s->f) {
        fwrite(text, 1, n, s->f);
        return;
    }
    if (s->oom) return;
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->len + n + 1) cap *= 2;
        char *p = kiln_realloc(s->buf, cap);
        if (!p) {
            s->oom = true;
            return;
        }
        s->buf = p;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, text, n);
    s->len += n;
    s->buf[s->len] = 0;
}

static void puts_(psink *s, const char *text) { put(s, text, strlen(text)); }

static void pf(psink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void pf(psink *s, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    put(s, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static void indent(psink *s, int depth) {
    for (int i = 0; i < depth; i++) put(s, "  ", 2);
}

/* ---- names and strings ---- */

static void put_quoted(psink *s, const char *str, size_t n) {
    put(s, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)str[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(s, esc, 2);
        } else if (c == '\n') {
            put(s, "\\n", 2);
        } else if (c == '\t') {
            put(s, "\\t", 2);
        } else if (c == '\r') {
            put(s, "\\r", 2);
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            put(s, esc, 4);
        } else {
            put(s, (const char *)&c, 1);
        }
    }
    put(s, "\"", 1);
}

static bool is_value_char(int c) {
    return isalnum(c) || c == '_' || c == '.' || c == '%' || c == '/' || c == '-';
}

static void put_value(psink *s, const gir_value *v) {
    const char *n = v->name ? v->name : "";
    bool bare = n[0] != 0;
    for (const char *p = n; *p && bare; p++) bare = is_value_char((unsigned char)*p);
    put(s, "%", 1);
    if (bare)
        puts_(s, n);
    else
        put_quoted(s, n, strlen(n));
}

/* Words that the lexer reads as something other than a name. */
static bool reserved_word(const char *w) {
    static const char *const k[] = {"_", "nan", "inf", "true", "false", NULL};
    for (int i = 0; k[i]; i++)
        if (strcmp(w, k[i]) == 0) return true;
    return false;
}

/* An identifier (dots allowed when `dots`), or a quoted string. */
static void put_ident(psink *s, const char *w, bool dots) {
    if (!w) w = "";
    bool bare = (isalpha((unsigned char)w[0]) || w[0] == '_') && !reserved_word(w);
    for (const char *p = w; *p && bare; p++)
        bare = isalnum((unsigned char)*p) || *p == '_' || (dots && *p == '.');
    if (bare)
        puts_(s, w);
    else
        put_quoted(s, w, strlen(w));
}

/* ---- types ---- */

static void put_type(psink *s, const gir_type *t) {
    if (t->dtype == KILN_UNDEFINED && t->rank < 0) {
        put(s, "?", 1);
        return;
    }
    puts_(s, t->dtype == KILN_UNDEFINED ? "?" : kiln_dtype_name(t->dtype));
    if (t->rank < 0 || t->rank > KILN_MAX_RANK) {
        put(s, "[*]", 3);
        return;
    }
    put(s, "[", 1);
    for (int i = 0; i < t->rank; i++) {
        if (i) put(s, ",", 1);
        const gir_dim *d = &t->dims[i];
        if (d->value >= 0)
            pf(s, "%" PRId64, d->value);
        else if (d->sym && d->sym[0])
            put_ident(s, d->sym, false);
        else
            put(s, "?", 1);
    }
    put(s, "]", 1);
}

static bool type_known(const gir_type *t) { return t->dtype != KILN_UNDEFINED || t->rank >= 0; }

static void put_tensor_type(psink *s, const kiln_tensor *t) {
    gir_type ty;
    gir_type_from_tensor(&ty, t);
    put_type(s, &ty);
}

/* ---- numbers ---- */

static bool round_trips(char *buf, size_t n, kiln_dtype dt, double v, uint64_t bits, int digits) {
    uint64_t got;
    snprintf(buf, n, "%.*g", digits, v);
    return gir_text_float_bits(dt, buf, &got) && got == bits;
}

/* The shortest text (%.Ng, fewest digits) of `v` that parses back to exactly
** `bits`; an exponent form gives way to a shorter plain one ("10", not
** "1e+01"). The search halves the digit range: if N digits round-trip, N+1
** do too (the nearest N+1-digit decimal is no farther than the N-digit one). */
static void shortest(char *buf, size_t n, kiln_dtype dt, double v, uint64_t bits) {
    int lo = 1, hi = dt == KILN_F64 ? 17 : 9;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (round_trips(buf, n, dt, v, bits, mid)) hi = mid;
        else lo = mid + 1;
    }
    snprintf(buf, n, "%.*g", lo, v);
    if (!strchr(buf, 'e')) return;
    for (int q = lo + 1; q <= lo + 4 && q <= (dt == KILN_F64 ? 17 : 9); q++) {
        char alt[64];
        if (round_trips(alt, sizeof alt, dt, v, bits, q) && strlen(alt) < strlen(buf)) snprintf(buf, n, "%s", alt);
    }
}

static uint64_t canonical_nan(kiln_dtype dt) {
    switch (dt) {
    case KILN_F64: return 0x7ff8000000000000ull;
    case KILN_F16: return 0x7e00;
    case KILN_BF16: return 0x7fc0;
    default: return 0x7fc00000;
    }
}

static uint64_t sign_bit(kiln_dtype dt) {
    switch (dt) {
    case KILN_F64: return 0x8000000000000000ull;
    case KILN_F16:
    case KILN_BF16: return 0x8000;
    default: return 0x80000000;
    }
}

/* Formats a float element given its raw bits and its value. */
static void fmt_float(char *buf, size_t n, kiln_dtype dt, uint64_t bits, double v) {
    if (isnan(v)) {
        if (bits == canonical_nan(dt))
            snprintf(buf, n, "nan");
        else if (bits == (canonical_nan(dt) | sign_bit(dt)))
            snprintf(buf, n, "-nan");
        else
            snprintf(buf, n, "nan(0x%" PRIx64 ")", bits);
    } else if (isinf(v)) {
        snprintf(buf, n, v < 0 ? "-inf" : "inf");
    } else {
        shortest(buf, n, dt, v, bits);
    }
}

static void fmt_element(char *buf, size_t n, const kiln_tensor *t, int64_t i) {
    const void *d = t->data;
    switch (t->dtype) {
    case KILN_F32: {
        uint32_t b;
        memcpy(&b, (const char *)d + 4 * i, 4);
        float f;
        memcpy(&f, &b, 4);
        fmt_float(buf, n, KILN_F32, b, f);
        break;
    }
    case KILN_F64: {
        uint64_t b;
        memcpy(&b, (const char *)d + 8 * i, 8);
        double f;
        memcpy(&f, &b, 8);
        fmt_float(buf, n, KILN_F64, b, f);
        break;
    }
    case KILN_F16:
    case KILN_BF16: {
        uint16_t h;
        memcpy(&h, (const char *)d + 2 * i, 2);
        double f = t->dtype == KILN_F16 ? kiln_f16_to_f32(h) : kiln_bf16_to_f32(h);
        fmt_float(buf, n, t->dtype, h, f);
        break;
    }
    case KILN_BOOL: snprintf(buf, n, "%s", ((const uint8_t *)d)[i] ? "true" : "false"); break;
    case KILN_U64: {
        uint64_t u;
        memcpy(&u, (const char *)d + 8 * i, 8);
        snprintf(buf, n, "%" PRIu64, u);
        break;
    }
    default: snprintf(buf, n, "%" PRId64, kiln_load_i64(t->dtype, d, i)); break;
    }
}

/* An attribute float: marked as a float (".0" when it looks like an int);
** values that are not exact f32 values print as hex floats. */
static void put_attr_float(psink *s, double v) {
    char buf[64];
    bool as_f32 = isnan(v) || isinf(v) || (fabs(v) <= FLT_MAX && (double)(float)v == v);
    if (isnan(v)) {
        snprintf(buf, sizeof buf, "nan");
    } else if (as_f32) {
        float f = (float)v;
        uint32_t b;
        memcpy(&b, &f, 4);
        fmt_float(buf, sizeof buf, KILN_F32, b, f);
    } else {
        snprintf(buf, sizeof buf, "%a", v);
    }
    puts_(s, buf);
    if (!strpbrk(buf, ".eEnix")) put(s, ".0", 2);
}

/* ---- tensors ---- */

static void put_data(psink *s, const kiln_tensor *t, unsigned flags) {
    int64_t n = kiln_numel(t);
    if (n < 0 || !kiln_dtype_valid(t->dtype)) {
        puts_(s, "{?}");
        return;
    }
    bool elide = (flags & GIR_PRINT_SUMMARY) && n > SUMMARY_MAX_ELEMS;
    int64_t shown = elide ? SUMMARY_SHOW : n;
    put(s, "{", 1);
    for (int64_t i = 0; i < shown; i++) {
        if (i) put(s, ", ", 2);
        if (!t->data) {
            put(s, "?", 1);
        } else if (t->dtype == KILN_STRING) {
            const char *str = ((char *const *)t->data)[i];
            put_quoted(s, str ? str : "", str ? strlen(str) : 0);
        } else {
            char buf[64];
            fmt_element(buf, sizeof buf, t, i);
            puts_(s, buf);
        }
    }
    puts_(s, elide ? ", ...}" : "}");
}

/* ---- graphs ---- */

static void put_graph(psink *s, const gir_graph *g, unsigned flags, int depth, const pscope *up);

static void put_attr(psink *s, const gir_attr *a, unsigned flags, int depth, const pscope *sc) {
    put_ident(s, a->name, false);
    put(s, "=", 1);
    switch (a->kind) {
    case GIR_ATTR_INT: pf(s, "%" PRId64, a->i); break;
    case GIR_ATTR_FLOAT: put_attr_float(s, a->f); break;
    case GIR_ATTR_STRING: put_quoted(s, a->s ? a->s : "", a->s ? a->s_len : 0); break;
    case GIR_ATTR_INTS:
    case GIR_ATTR_FLOATS:
    case GIR_ATTR_STRINGS:
        if (a->n <= 0) {
            puts_(s, a->kind == GIR_ATTR_INTS ? "ints[]" : a->kind == GIR_ATTR_FLOATS ? "floats[]" : "strings[]");
            break;
        }
        put(s, "[", 1);
        for (int i = 0; i < a->n; i++) {
            if (i) put(s, ", ", 2);
            if (a->kind == GIR_ATTR_INTS) pf(s, "%" PRId64, a->ints[i]);
            else if (a->kind == GIR_ATTR_FLOATS) put_attr_float(s, a->floats[i]);
            else put_quoted(s, a->strings[i] ? a->strings[i] : "", a->strings[i] ? strlen(a->strings[i]) : 0);
        }
        put(s, "]", 1);
        break;
    case GIR_ATTR_TENSOR:
        if (!a->t) {
            put(s, "?", 1);
            break;
        }
        put_tensor_type(s, a->t);
        put(s, " ", 1);
        put_data(s, a->t, flags);
        break;
    case GIR_ATTR_GRAPH:
        if (!a->g) {
            put(s, "?", 1);
            break;
        }
        put_graph(s, a->g, flags, depth + 1, sc);
        break;
    default: put(s, "?", 1); break;
    }
}

static int64_t scope_opset(const pscope *sc, const char *domain) {
    for (; sc; sc = sc->parent) {
        int64_t v = gir_opset_version(sc->g, domain ? domain : "");
        if (v) return v;
    }
    return 0;
}

/* True when the name is the one gir_node_new would give the node unnamed. */
static bool auto_name(const gir_node *n, int index) {
    char tmp[256];
    snprintf(tmp, sizeof tmp, "%s_%d", n->op_type ? n->op_type : "", index);
    return n->name && strcmp(n->name, tmp) == 0;
}

static void put_op(psink *s, const gir_node *n, const pscope *sc) {
    if (n->domain && n->domain[0]) {
        put_ident(s, n->domain, true);
        put(s, "::", 2);
    }
    put_ident(s, n->op_type, false);
    if (n->opset != scope_opset(sc, n->domain)) pf(s, "@%d", n->opset);
}

static void put_node(psink *s, const gir_node *n, int index, unsigned flags, int depth,
                     const pscope *sc) {
    indent(s, depth);
    if (n->n_outputs == 0) put(s, "()", 2);
    for (int i = 0; i < n->n_outputs; i++) {
        if (i) put(s, ", ", 2);
        const gir_value *v = n->outputs[i];
        if (!v) {
            put(s, "_", 1);
            continue;
        }
        put_value(s, v);
        if (type_known(&v->type)) {
            put(s, " : ", 3);
            put_type(s, &v->type);
        }
    }
    put(s, " = ", 3);
    put_op(s, n, sc);
    put(s, "(", 1);
    for (int i = 0; i < n->n_inputs; i++) {
        if (i) put(s, ", ", 2);
        if (n->inputs[i]) put_value(s, n->inputs[i]);
        else put(s, "_", 1);
    }
    put(s, ")", 1);
    if (n->n_attrs > 0) {
        put(s, " {", 2);
        for (int i = 0; i < n->n_attrs; i++) {
            if (i) put(s, ", ", 2);
            put_attr(s, &n->attrs[i], flags, depth, sc);
        }
        put(s, "}", 1);
    }
    if (!auto_name(n, index)) {
        puts_(s, " name=");
        put_quoted(s, n->name ? n->name : "", n->name ? strlen(n->name) : 0);
    }
    put(s, "\n", 1);
}

static bool same_opsets(const gir_graph *a, const gir_graph *b) {
    if (a->n_opsets != b->n_opsets) return false;
    for (int i = 0; i < a->n_opsets; i++)
        if (a->opsets[i].version != b->opsets[i].version ||
            strcmp(a->opsets[i].domain ? a->opsets[i].domain : "", b->opsets[i].domain ? b->opsets[i].domain : ""))
            return false;
    return true;
}

/* A subgraph states only what differs from its parent (the parser copies the
** rest down, as the ONNX loader does). */
static void put_header(psink *s, const gir_graph *g, int depth, const gir_graph *up) {
    if (g->ir_version && !(up && up->ir_version == g->ir_version)) {
        indent(s, depth);
        pf(s, "ir_version %" PRId64 "\n", g->ir_version);
    }
    if (g->producer && g->producer[0] && !(up && up->producer && !strcmp(up->producer, g->producer))) {
        indent(s, depth);
        puts_(s, "producer ");
        put_quoted(s, g->producer, strlen(g->producer));
        put(s, "\n", 1);
    }
    if (up && same_opsets(g, up)) return;
    for (int i = 0; i < g->n_opsets; i++) {
        indent(s, depth);
        puts_(s, "opset ");
        const char *d = g->opsets[i].domain;
        if (d && d[0]) {
            put_ident(s, d, true);
            put(s, " ", 1);
        }
        pf(s, "%" PRId64 "\n", g->opsets[i].version);
    }
}

static void put_decl(psink *s, const char *kw, const gir_value *v, unsigned flags, int depth) {
    indent(s, depth);
    puts_(s, kw);
    put(s, " ", 1);
    put_value(s, v);
    put(s, " : ", 3);
    if (v->constant) {
        put_tensor_type(s, v->constant);
        put(s, " = ", 3);
        put_data(s, v->constant, flags);
    } else {
        put_type(s, &v->type);
    }
    put(s, "\n", 1);
}

static void put_body(psink *s, const gir_graph *g, unsigned flags, int depth, const pscope *sc) {
    put_header(s, g, depth, sc->parent ? sc->parent->g : NULL);
    for (int i = 0; i < g->n_inputs; i++) put_decl(s, "input", g->inputs[i], flags, depth);
    for (int i = 0; i < g->n_values; i++) {
        const gir_value *v = g->values[i];
        if (v->constant && !v->is_input) put_decl(s, "const", v, flags, depth);
    }
    for (int i = 0; i < g->n_nodes; i++) put_node(s, g->nodes[i], i, flags, depth, sc);
    for (int i = 0; i < g->n_outputs; i++) {
        const gir_value *v = g->outputs[i];
        indent(s, depth);
        puts_(s, "output ");
        put_value(s, v);
        if (type_known(&v->type)) {
            put(s, " : ", 3);
            put_type(s, &v->type);
        }
        put(s, "\n", 1);
    }
}

static void put_graph(psink *s, const gir_graph *g, unsigned flags, int depth, const pscope *up) {
    pscope sc = {g, up};
    puts_(s, "graph ");
    put_quoted(s, g->name ? g->name : "", g->name ? strlen(g->name) : 0);
    puts_(s, " {\n");
    put_body(s, g, flags, depth + 1, &sc);
    indent(s, depth);
    put(s, "}", 1);
}

void gir_print(FILE *f, const gir_graph *g, unsigned flags) {
    psink s = {.f = f};
    put_graph(&s, g, flags, 0, NULL);
    put(&s, "\n", 1);
}

const char *gir_type_str(const gir_type *t, char *buf, size_t n) {
    psink s = {0};
    put_type(&s, t);
    snprintf(buf, n, "%s", s.buf ? s.buf : "?");
    kiln_free(s.buf);
    return buf;
}

char *gir_print_str(const gir_graph *g, unsigned flags) {
    psink s = {0};
    put_graph(&s, g, flags, 0, NULL);
    put(&s, "\n", 1);
    if (s.oom) {
        kiln_free(s.buf);
        return NULL;
    }
    return s.buf;
}
