/*
** extra_regex.c — a small RE2-syntax regular-expression engine for
** RegexFullMatch. The pattern is parsed into a tree, compiled into a
** Thompson program (class, split, jump, assertion, match) and run as a set
** of states over the text's code points, so matching is linear in the text
** whatever the pattern. Character classes are ranges of code points;
** negation and case folding are resolved when parsing.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "extra_ops.h"

#define RX_MAX_PROG 200000 /* instructions */
#define RX_MAX_REPEAT 1000 /* as RE2 */
#define RX_MAX_DEPTH 500   /* group nesting */
#define RX_MAX_CP 0x10FFFF

enum { RX_F_I = 1, RX_F_M = 2, RX_F_S = 4 }; /* case-insensitive, multi-line, dot matches \n */
enum { A_BOL, A_EOL, A_BOT, A_EOT, A_WORDB, A_NWORDB };
enum { N_EMPTY, N_CLASS, N_CAT, N_ALT, N_REP, N_ASSERT };
enum { I_CLASS, I_SPLIT, I_JMP, I_ASSERT, I_MATCH };

typedef struct rx_range {
    uint32_t lo, hi;
} rx_range;

typedef struct rx_node {
    int type, a, b, first, next; /* children chain through first/next */
} rx_node;

typedef struct rx_inst {
    int op, x, y;
} rx_inst;

struct xo_regex {
    rx_inst *prog;
    int n_prog;
    rx_range *ranges;
};

/* The parser's state: the pattern, the tree, the range pool, and the error. */
typedef struct rx_parser {
    const char *p;
    size_t len, pos;
    rx_node *nodes;
    int n_nodes, cap_nodes;
    rx_range *ranges;
    int n_ranges, cap_ranges;
    rx_inst *prog;
    int n_prog, cap_prog;
    int depth;
    bool nomem;
    char *err;
    size_t err_size;
    bool failed;
} rx_parser;

static int fail(rx_parser *P, const char *msg) {
    if (!P->failed) snprintf(P->err, P->err_size, "%s at offset %zu", msg, P->pos);
    P->failed = true;
    return -1;
}

static int new_node(rx_parser *P, int type, int a, int b) {
    if (P->n_nodes == P->cap_nodes && !kiln_grow((void **)&P->nodes, &P->cap_nodes, P->n_nodes + 1, sizeof(rx_node))) {
        P->nomem = true;
        return fail(P, "out of memory");
    }
    P->nodes[P->n_nodes] = (rx_node){type, a, b, -1, -1};
    return P->n_nodes++;
}

static void add_child(rx_parser *P, int parent, int *last, int child) {
    if (*last < 0) P->nodes[parent].first = child;
    else P->nodes[*last].next = child;
    *last = child;
}

/* ---- range sets: a scratch list turned into a sorted, merged class ---- */

typedef struct rx_set {
    rx_range *r;
    int n, cap;
    bool oom;
} rx_set;

static void set_add(rx_set *s, uint32_t lo, uint32_t hi) {
    if (s->n == s->cap && !kiln_grow((void **)&s->r, &s->cap, s->n + 1, sizeof(rx_range))) {
        s->oom = true;
        return;
    }
    s->r[s->n++] = (rx_range){lo, hi};
}

static int range_cmp(const void *a, const void *b) {
    const rx_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static void set_normalize(rx_set *s) {
    if (!s->n) return;
    qsort(s->r, (size_t)s->n, sizeof(rx_range), range_cmp);
    int k = 0;
    for (int i = 1; i < s->n; i++) {
        if (s->r[i].lo <= s->r[k].hi + 1) {
            if (s->r[i].hi > s->r[k].hi) s->r[k].hi = s->r[i].hi;
        } else {
            s->r[++k] = s->r[i];
        }
    }
    s->n = k + 1;
}

static void set_negate(rx_set *s) {
    set_normalize(s);
    rx_set t = {0};
    uint32_t next = 0;
    for (int i = 0; i < s->n; i++) {
        if (s->r[i].lo > next) set_add(&t, next, s->r[i].lo - 1);
        next = s->r[i].hi + 1;
    }
    if (next <= RX_MAX_CP) set_add(&t, next, RX_MAX_CP);
    kiln_free(s->r);
    t.oom |= s->oom;
    *s = t;
}

/* Adds the other case of every code point with one (below U+0460, where
** xo_lower/xo_upper have mappings). */
static void set_fold(rx_set *s) {
    int n = s->n;
    for (int i = 0; i < n; i++)
        for (uint32_t c = s->r[i].lo; c <= s->r[i].hi && c < 0x460; c++) {
            uint32_t l = xo_lower(c), u = xo_upper(c);
            if (l != c) set_add(s, l, l);
            if (u != c) set_add(s, u, u);
        }
}

/* Moves a finished set into the pool as a class node. */
static int class_node(rx_parser *P, rx_set *s, int flags) {
    if (flags & RX_F_I) set_fold(s);
    set_normalize(s);
    int at = P->n_ranges, node = -1;
    if (s->oom || (P->n_ranges + s->n > P->cap_ranges &&
                   !kiln_grow((void **)&P->ranges, &P->cap_ranges, P->n_ranges + s->n, sizeof(rx_range)))) {
        P->nomem = true;
        fail(P, "out of memory");
    } else {
        if (s->n) memcpy(P->ranges + at, s->r, sizeof(rx_range) * (size_t)s->n);
        P->n_ranges += s->n;
        node = new_node(P, N_CLASS, at, s->n);
    }
    kiln_free(s->r);
    return node;
}

/* ---- parsing ---- */

static bool at_end(const rx_parser *P) { return P->pos >= P->len; }
static char peek(const rx_parser *P) { return at_end(P) ? '\0' : P->p[P->pos]; }
static uint32_t next_cp(rx_parser *P) { return xo_utf8_next(P->p, P->len, &P->pos); }

static void add_perl(rx_set *s, char c) {
    switch (c) {
    case 'd': set_add(s, '0', '9'); break;
    case 's':
        set_add(s, '\t', '\n');
        set_add(s, '\f', '\r');
        set_add(s, ' ', ' ');
        break;
    default: /* w */
        set_add(s, '0', '9');
        set_add(s, 'A', 'Z');
        set_add(s, 'a', 'z');
        set_add(s, '_', '_');
    }
}

/* \d \s \w and their negations into s. */
static void add_perl_class(rx_set *s, char c) {
    char lc = (char)(c | 0x20);
    if (c == lc) {
        add_perl(s, c);
        return;
    }
    rx_set t = {0};
    add_perl(&t, lc);
    set_negate(&t);
    for (int i = 0; i < t.n; i++) set_add(s, t.r[i].lo, t.r[i].hi);
    s->oom |= t.oom;
    kiln_free(t.r);
}

static int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* \xHH or \x{H...}; P->pos is after the 'x'. */
static int parse_hex(rx_parser *P, uint32_t *cp) {
    uint32_t v = 0;
    if (peek(P) == '{') {
        int digits = 0;
        P->pos++;
        while (!at_end(P) && peek(P) != '}') {
            int h = hex_val(peek(P));
            if (h < 0 || ++digits > 6) return fail(P, "invalid \\x{...} escape");
            v = v * 16 + (uint32_t)h;
            P->pos++;
        }
        if (at_end(P) || !digits) return fail(P, "invalid \\x{...} escape");
        P->pos++;
    } else {
        for (int k = 0; k < 2; k++) {
            int h = hex_val(peek(P));
            if (h < 0) return fail(P, "invalid \\x escape");
            v = v * 16 + (uint32_t)h;
            P->pos++;
        }
    }
    if (v > RX_MAX_CP) return fail(P, "escape beyond U+10FFFF");
    *cp = v;
    return 0;
}

/* A single-character escape (after the backslash) as a code point. */
static int escape_char(rx_parser *P, char c, uint32_t *cp) {
    static const char from[] = "ntrfva", to[] = "\n\t\r\f\v\a";
    const char *f = strchr(from, c);
    if (c && f) return *cp = (uint8_t)to[f - from], 0;
    if (c == 'x') return parse_hex(P, cp);
    if (c == '0') {
        uint32_t v = 0;
        for (int k = 0; k < 2 && peek(P) >= '0' && peek(P) <= '7'; k++) v = v * 8 + (uint32_t)(P->p[P->pos++] - '0');
        return *cp = v, 0;
    }
    if (c >= '1' && c <= '9') return fail(P, "backreferences are not supported by RE2 syntax");
    if (c && !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || (c & 0x80)))
        return *cp = (uint8_t)c, 0;
    return fail(P, "invalid or unsupported escape sequence");
}

static const struct {
    const char *name;
    const char *ranges; /* pairs of lo, hi */
} k_posix[] = {
    {"alnum", "09AZaz"}, {"alpha", "AZaz"}, {"ascii", "\x01\x7f"}, {"blank", "\t\t  "},
    {"cntrl", "\x01\x1f\x7f\x7f"}, {"digit", "09"}, {"graph", "!~"}, {"lower", "az"},
    {"print", " ~"}, {"punct", "!/:@[`{~"}, {"space", "\t\r  "}, {"upper", "AZ"},
    {"word", "09AZaz__"}, {"xdigit", "09AFaf"},
};

/* [:name:] or [:^name:] inside a class; P->pos at the first '['. */
static int parse_posix(rx_parser *P, rx_set *s) {
    size_t start = P->pos + 2;
    const char *end = memchr(P->p + start, ':', P->len - start);
    if (!end || (size_t)(end - P->p) + 1 >= P->len || end[1] != ']') return fail(P, "invalid POSIX class");
    bool neg = P->p[start] == '^';
    size_t nlen = (size_t)(end - P->p) - start - neg;
    for (size_t i = 0; i < sizeof k_posix / sizeof k_posix[0]; i++) {
        if (strlen(k_posix[i].name) != nlen || memcmp(k_posix[i].name, P->p + start + neg, nlen)) continue;
        rx_set t = {0};
        for (const char *r = k_posix[i].ranges; *r; r += 2) set_add(&t, (uint8_t)r[0], (uint8_t)r[1]);
        if (!strcmp(k_posix[i].name, "ascii")) set_add(&t, 0, 0);
        if (!strcmp(k_posix[i].name, "cntrl")) set_add(&t, 0, 0);
        if (neg) set_negate(&t);
        for (int k = 0; k < t.n; k++) set_add(s, t.r[k].lo, t.r[k].hi);
        s->oom |= t.oom;
        kiln_free(t.r);
        P->pos = (size_t)(end - P->p) + 2;
        return 0;
    }
    return fail(P, "unknown POSIX class");
}

/* One class member as a code point, or (returning 1) a whole set added. */
static int class_atom(rx_parser *P, rx_set *s, uint32_t *cp) {
    if (peek(P) == '[' && P->pos + 1 < P->len && P->p[P->pos + 1] == ':') return parse_posix(P, s) < 0 ? -1 : 1;
    if (peek(P) != '\\') return *cp = next_cp(P), 0;
    P->pos++;
    if (at_end(P)) return fail(P, "trailing backslash");
    char c = P->p[P->pos++];
    if (strchr("dDsSwW", c)) {
        add_perl_class(s, c);
        return 1;
    }
    if (c == 'p' || c == 'P') return fail(P, "Unicode classes (\\p) are not supported");
    return escape_char(P, c, cp);
}

static int parse_class(rx_parser *P, int flags) {
    rx_set s = {0};
    bool neg = false, first = true;
    P->pos++; /* '[' */
    if (peek(P) == '^') neg = true, P->pos++;
    while (!at_end(P) && (first || peek(P) != ']')) {
        uint32_t lo, hi;
        int k = first && peek(P) == ']' ? (P->pos++, lo = ']', 0) : class_atom(P, &s, &lo);
        first = false;
        if (k < 0) break;
        if (k == 1) continue;
        hi = lo;
        if (peek(P) == '-' && P->pos + 1 < P->len && P->p[P->pos + 1] != ']') {
            P->pos++;
            k = class_atom(P, &s, &hi);
            if (k != 0 || hi < lo) {
                kiln_free(s.r);
                return fail(P, "invalid character class range");
            }
        }
        set_add(&s, lo, hi);
    }
    if (P->failed || at_end(P)) {
        kiln_free(s.r);
        return fail(P, "missing closing ]");
    }
    P->pos++;
    if (flags & RX_F_I) set_fold(&s);
    if (neg) set_negate(&s);
    return class_node(P, &s, 0);
}

static int single_class(rx_parser *P, uint32_t lo, uint32_t hi, int flags) {
    rx_set s = {0};
    set_add(&s, lo, hi);
    return class_node(P, &s, flags);
}

static int parse_alt(rx_parser *P, int *flags);

/* (?flags) or (?flags:...) after "(?"; returns the group, or -2 when the
** flags apply to the rest of the enclosing group. */
static int parse_flags(rx_parser *P, int *flags) {
    int f = *flags;
    bool neg = false;
    while (!at_end(P)) {
        char c = P->p[P->pos++];
        int bit = c == 'i' ? RX_F_I : c == 'm' ? RX_F_M : c == 's' ? RX_F_S : c == 'U' ? -1 : 0;
        if (c == '-' && !neg) {
            neg = true;
            continue;
        }
        if (c == ')') return *flags = f, -2;
        if (c == ':') {
            int node = parse_alt(P, &f);
            if (node >= 0 && peek(P) != ')') return fail(P, "missing closing )");
            P->pos++;
            return node;
        }
        if (!bit) return fail(P, "invalid or unsupported group flags");
        if (bit > 0) f = neg ? f & ~bit : f | bit;
    }
    return fail(P, "missing closing )");
}

static int parse_group(rx_parser *P, int *flags) {
    P->pos++; /* '(' */
    if (++P->depth > RX_MAX_DEPTH) return fail(P, "groups nest too deeply");
    int node;
    if (peek(P) == '?') {
        P->pos++;
        if (peek(P) == 'P' || peek(P) == '<') { /* named group: skip the name */
            const char *gt = memchr(P->p + P->pos, '>', P->len - P->pos);
            if (!gt) return fail(P, "invalid named group");
            P->pos = (size_t)(gt - P->p) + 1;
        } else {
            node = parse_flags(P, flags);
            P->depth--;
            return node;
        }
    }
    int f = *flags;
    node = parse_alt(P, &f);
    if (node >= 0 && peek(P) != ')') return fail(P, "missing closing )");
    P->pos++;
    P->depth--;
    return node;
}

static int parse_escape(rx_parser *P, int flags) {
    P->pos++;
    if (at_end(P)) return fail(P, "trailing backslash");
    char c = P->p[P->pos++];
    static const char asserts[] = "AzbB";
    static const int kinds[] = {A_BOT, A_EOT, A_WORDB, A_NWORDB};
    const char *a = strchr(asserts, c);
    if (a) return new_node(P, N_ASSERT, kinds[a - asserts], 0);
    if (c == 'Q') { /* literal text up to \E */
        int cat = new_node(P, N_CAT, 0, 0), last = -1;
        while (cat >= 0 && !at_end(P) && !(peek(P) == '\\' && P->pos + 1 < P->len && P->p[P->pos + 1] == 'E')) {
            uint32_t cp = next_cp(P);
            int k = single_class(P, cp, cp, flags);
            if (k < 0) return -1;
            add_child(P, cat, &last, k);
        }
        if (!at_end(P)) P->pos += 2;
        return cat;
    }
    if (strchr("dDsSwW", c)) {
        rx_set s = {0};
        add_perl_class(&s, c);
        return class_node(P, &s, flags);
    }
    if (c == 'p' || c == 'P') return fail(P, "Unicode classes (\\p) are not supported");
    uint32_t cp;
    if (escape_char(P, c, &cp) < 0) return -1;
    return single_class(P, cp, cp, flags);
}

static int parse_atom(rx_parser *P, int *flags) {
    char c = peek(P);
    switch (c) {
    case '(': return parse_group(P, flags);
    case '[': return parse_class(P, *flags);
    case '\\': return parse_escape(P, *flags);
    case '.':
        P->pos++;
        if (*flags & RX_F_S) return single_class(P, 0, RX_MAX_CP, 0);
        {
            rx_set s = {0};
            set_add(&s, 0, '\n' - 1);
            set_add(&s, '\n' + 1, RX_MAX_CP);
            return class_node(P, &s, 0);
        }
    case '^': P->pos++; return new_node(P, N_ASSERT, *flags & RX_F_M ? A_BOL : A_BOT, 0);
    case '$': P->pos++; return new_node(P, N_ASSERT, *flags & RX_F_M ? A_EOL : A_EOT, 0);
    case '*': case '+': case '?': return fail(P, "missing argument to repetition operator");
    default: {
        uint32_t cp = next_cp(P);
        return single_class(P, cp, cp, *flags);
    }
    }
}

static bool parse_int(rx_parser *P, int *v) {
    if (!(peek(P) >= '0' && peek(P) <= '9')) return false;
    long x = 0;
    while (peek(P) >= '0' && peek(P) <= '9') {
        x = x * 10 + (P->p[P->pos++] - '0');
        if (x > 100000) x = 100000;
    }
    *v = (int)x;
    return true;
}

/* {n}, {n,} or {n,m} at P->pos; false (position restored) when the text is
** not a repetition, which RE2 then reads as a literal '{'. */
static bool parse_braces(rx_parser *P, int *lo, int *hi) {
    size_t save = P->pos++;
    if (!parse_int(P, lo)) goto literal;
    *hi = *lo;
    if (peek(P) == ',') {
        P->pos++;
        *hi = -1;
        if (peek(P) != '}' && !parse_int(P, hi)) goto literal;
    }
    if (peek(P) == '}') {
        P->pos++;
        return true;
    }
literal:
    P->pos = save;
    return false;
}

static int parse_repeat(rx_parser *P, int *flags) {
    int atom = parse_atom(P, flags);
    bool repeated = false;
    while (atom >= 0 && !at_end(P)) {
        char c = peek(P);
        int lo, hi;
        if (c == '*' || c == '+' || c == '?') {
            P->pos++;
            lo = c == '+';
            hi = c == '?' ? 1 : -1;
        } else if (c != '{' || !parse_braces(P, &lo, &hi)) {
            break;
        } else if (lo > RX_MAX_REPEAT || hi > RX_MAX_REPEAT || (hi >= 0 && hi < lo)) {
            return fail(P, "bad repetition count");
        }
        if (repeated) return fail(P, "bad repetition operator");
        repeated = true;
        if (peek(P) == '?') P->pos++; /* lazy: the same set of matches */
        int rep = new_node(P, N_REP, lo, hi);
        if (rep < 0) return -1;
        P->nodes[rep].first = atom;
        atom = rep;
    }
    return atom;
}

static int parse_cat(rx_parser *P, int *flags) {
    int cat = new_node(P, N_CAT, 0, 0), last = -1;
    while (cat >= 0 && !at_end(P) && peek(P) != '|' && peek(P) != ')') {
        int k = parse_repeat(P, flags);
        if (k == -2) continue; /* a flags group */
        if (k < 0) return -1;
        add_child(P, cat, &last, k);
    }
    return cat;
}

static int parse_alt(rx_parser *P, int *flags) {
    int alt = new_node(P, N_ALT, 0, 0), last = -1;
    for (;;) {
        int k = parse_cat(P, flags);
        if (k < 0 || alt < 0) return -1;
        add_child(P, alt, &last, k);
        if (peek(P) != '|') return alt;
        P->pos++;
    }
}

/* ---- compiling ---- */

static int emit(rx_parser *P, int op, int x, int y) {
    if (P->n_prog >= RX_MAX_PROG) return fail(P, "pattern too large");
    if (P->n_prog == P->cap_prog && !kiln_grow((void **)&P->prog, &P->cap_prog, P->n_prog + 1, sizeof(rx_inst))) {
        P->nomem = true;
        return fail(P, "out of memory");
    }
    P->prog[P->n_prog] = (rx_inst){op, x, y};
    return P->n_prog++;
}

static int compile(rx_parser *P, int node);

static int compile_alt(rx_parser *P, const rx_node *nd) {
    int jumps = -1; /* chain of JMPs to patch, linked through x */
    for (int c = nd->first; c >= 0; c = P->nodes[c].next) {
        bool last = P->nodes[c].next < 0;
        int split = last ? -1 : emit(P, I_SPLIT, 0, 0);
        if ((!last && split < 0) || compile(P, c) < 0) return -1;
        if (last) break;
        int j = emit(P, I_JMP, jumps, 0);
        if (j < 0) return -1;
        jumps = j;
        P->prog[split] = (rx_inst){I_SPLIT, split + 1, P->n_prog};
    }
    while (jumps >= 0) {
        int next = P->prog[jumps].x;
        P->prog[jumps].x = P->n_prog;
        jumps = next;
    }
    return 0;
}

static int compile_rep(rx_parser *P, const rx_node *nd) {
    int lo = nd->a, hi = nd->b, child = nd->first;
    for (int k = 0; k < lo; k++)
        if (compile(P, child) < 0) return -1;
    if (hi < 0) {
        int split = emit(P, I_SPLIT, 0, 0);
        if (split < 0 || compile(P, child) < 0 || emit(P, I_JMP, split, 0) < 0) return -1;
        P->prog[split] = (rx_inst){I_SPLIT, split + 1, P->n_prog};
        return 0;
    }
    int skips = -1; /* chain of SPLITs whose y goes past the optional copies */
    for (int k = lo; k < hi; k++) {
        int split = emit(P, I_SPLIT, 0, skips);
        if (split < 0 || compile(P, child) < 0) return -1;
        P->prog[split].x = split + 1;
        skips = split;
    }
    while (skips >= 0) {
        int next = P->prog[skips].y;
        P->prog[skips].y = P->n_prog;
        skips = next;
    }
    return 0;
}

static int compile(rx_parser *P, int node) {
    const rx_node *nd = &P->nodes[node];
    switch (nd->type) {
    case N_CLASS: return emit(P, I_CLASS, nd->a, nd->b) < 0 ? -1 : 0;
    case N_ASSERT: return emit(P, I_ASSERT, nd->a, 0) < 0 ? -1 : 0;
    case N_ALT: return compile_alt(P, nd);
    case N_REP: return compile_rep(P, nd);
    case N_CAT:
        for (int c = nd->first; c >= 0; c = P->nodes[c].next)
            if (compile(P, c) < 0) return -1;
        return 0;
    default: return 0;
    }
}

kiln_status xo_regex_compile(const char *pattern, size_t len, xo_regex **out, char *err, size_t err_size) {
    rx_parser P = {.p = pattern, .len = len, .err = err, .err_size = err_size};
    int flags = 0;
    int root = parse_alt(&P, &flags);
    if (root >= 0 && !at_end(&P)) root = fail(&P, "unmatched )");
    if (root >= 0 && (compile(&P, root) < 0 || emit(&P, I_MATCH, 0, 0) < 0)) root = -1;
    xo_regex *re = root >= 0 ? kiln_calloc(1, sizeof *re) : NULL;
    kiln_free(P.nodes);
    if (!re) {
        kiln_free(P.prog);
        kiln_free(P.ranges);
        if (root >= 0 || P.nomem) snprintf(err, err_size, "out of memory");
        return root >= 0 || P.nomem ? KILN_ERR_NOMEM : KILN_ERR_INVALID;
    }
    *re = (xo_regex){P.prog, P.n_prog, P.ranges};
    *out = re;
    return KILN_OK;
}

void xo_regex_free(xo_regex *re) {
    if (!re) return;
    kiln_free(re->prog);
    kiln_free(re->ranges);
    kiln_free(re);
}

/* ---- matching ---- */

static bool is_word(const uint32_t *text, int64_t n, int64_t i) {
    if (i < 0 || i >= n) return false;
    uint32_t c = text[i];
    return c == '_' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static bool assert_holds(int kind, const uint32_t *text, int64_t n, int64_t i) {
    switch (kind) {
    case A_BOT: return i == 0;
    case A_EOT: return i == n;
    case A_BOL: return i == 0 || text[i - 1] == '\n';
    case A_EOL: return i == n || text[i] == '\n';
    case A_WORDB: return is_word(text, n, i - 1) != is_word(text, n, i);
    default: return is_word(text, n, i - 1) == is_word(text, n, i);
    }
}

static bool class_has(const xo_regex *re, const rx_inst *in, uint32_t c) {
    const rx_range *r = re->ranges + in->x;
    int lo = 0, hi = in->y - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid - 1;
        else if (c > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

typedef struct rx_run {
    const xo_regex *re;
    const uint32_t *text;
    int64_t n;
    uint32_t *mark, gen;
    int *stack;
} rx_run;

/* Adds pc and everything reachable from it without consuming text at
** position i to list (class and match states only). */
static void add_state(rx_run *R, int *list, int *count, int pc, int64_t i) {
    int sp = 0;
    R->stack[sp++] = pc;
    while (sp) {
        pc = R->stack[--sp];
        if (R->mark[pc] == R->gen) continue;
        R->mark[pc] = R->gen;
        const rx_inst *in = &R->re->prog[pc];
        switch (in->op) {
        case I_JMP: R->stack[sp++] = in->x; break;
        case I_SPLIT:
            R->stack[sp++] = in->y;
            R->stack[sp++] = in->x;
            break;
        case I_ASSERT:
            if (assert_holds(in->x, R->text, R->n, i)) R->stack[sp++] = pc + 1;
            break;
        default: list[(*count)++] = pc;
        }
    }
}

static bool simulate(rx_run *R, int *cur, int *nxt) {
    int nc = 0, nn;
    R->gen++;
    add_state(R, cur, &nc, 0, 0);
    for (int64_t i = 0; i < R->n && nc; i++) {
        nn = 0;
        R->gen++;
        for (int k = 0; k < nc; k++) {
            const rx_inst *in = &R->re->prog[cur[k]];
            if (in->op == I_CLASS && class_has(R->re, in, R->text[i])) add_state(R, nxt, &nn, cur[k] + 1, i + 1);
        }
        int *t = cur;
        cur = nxt;
        nxt = t;
        nc = nn;
    }
    for (int k = 0; k < nc; k++)
        if (R->re->prog[cur[k]].op == I_MATCH) return true;
    return false;
}

kiln_status xo_regex_full_match(const xo_regex *re, const char *s, size_t len, bool *matched) {
    size_t np = (size_t)re->n_prog;
    uint32_t *text = kiln_malloc(sizeof(uint32_t) * (len + 1));
    uint32_t *mark = kiln_calloc(np, sizeof(uint32_t));
    int *lists = kiln_malloc(sizeof(int) * np * 2), *stack = kiln_malloc(sizeof(int) * (np * 2 + 1));
    kiln_status st = KILN_OK;
    if (!text || !mark || !lists || !stack) {
        st = KILN_ERR_NOMEM;
    } else {
        int64_t n = 0;
        for (size_t i = 0; i < len;) text[n++] = xo_utf8_next(s, len, &i);
        rx_run R = {re, text, n, mark, 0, stack};
        *matched = simulate(&R, lists, lists + np);
    }
    kiln_free(text);
    kiln_free(mark);
    kiln_free(lists);
    kiln_free(stack);
    return st;
}
