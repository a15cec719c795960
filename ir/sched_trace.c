/*
** sched_trace.c — schedule traces as data: construction, the text form
** (print and parse), structural checks of a step.
**
** One step a line: the primitive, its words (stage, axes, scope, tag), at
** most one bracketed list of integers, and "-> names" for what it creates.
** The word order per primitive is the one sched.h shows; cache_read and
** cache_write take an optional "at AXIS", and their scope is one of
** global, shared, local. A name that is not a plain word is written in
** double quotes (\" and \\ escape). '#' starts a comment; the header line
** "# kiln trace 1" gives the version. Errors name the line.
*/
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctx.h"
#include "sched_internal.h"

static const char *const k_prim_names[SCH_PRIM_COUNT] = {
    "split", "fuse", "reorder", "tile", "vectorize", "unroll", "parallel", "compute_at",
    "inline", "cache_read", "cache_write", "rfactor", "storage_align", "pack", "bind"};

const char *sch_prim_name(sch_prim p) {
    return (unsigned)p < SCH_PRIM_COUNT ? k_prim_names[p] : "?";
}

sch_trace *sch_trace_new(void) {
    sch_trace *t = kiln_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->arena = kiln_arena_new();
    if (!t->arena) {
        kiln_free(t);
        return NULL;
    }
    return t;
}

void sch_trace_free(sch_trace *t) {
    if (!t) return;
    kiln_free(t->steps);
    kiln_arena_free(t->arena);
    kiln_free(t);
}

/* ---- structural checks ---- */

bool sch_scope_from_name(const char *s, lir_scope *out) {
    static const char *const names[] = {"global", "shared", "local"};
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, names[i]) == 0) {
            *out = (lir_scope)i;
            return true;
        }
    return false;
}

bool sch_bind_tag(const char *s, lir_loop_kind *out) {
    for (int k = LIR_GPU_BLOCK_X; k <= LIR_GPU_THREAD_Z; k++)
        if (s && strcmp(s, lir_loop_kind_name((lir_loop_kind)k)) == 0) {
            *out = (lir_loop_kind)k;
            return true;
        }
    return false;
}

static bool name_ok(const char *s) {
    if (!s || !*s) return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) return false;
    return true;
}

/* Counts a primitive accepts: axes [lo, hi], ints exactly (or >= 1 for
** split), outs 0 or `outs`. */
typedef struct shape {
    int axes_lo, axes_hi, ints, outs;
    bool arg;
} shape;

static shape prim_shape(const sch_step *s) {
    switch (s->prim) {
    case SCH_SPLIT: return (shape){1, 1, -1, s->n_ints + 1, false};
    case SCH_FUSE: return (shape){2, SCH_MAX_NAMES, 0, 1, false};
    case SCH_REORDER: return (shape){1, SCH_MAX_NAMES, 0, 0, false};
    case SCH_TILE: return (shape){2, 2, 2, 4, false};
    case SCH_VECTORIZE:
    case SCH_UNROLL:
    case SCH_PARALLEL: return (shape){1, 1, 0, 0, false};
    case SCH_COMPUTE_AT: return (shape){1, 1, 0, 0, true};
    case SCH_COMPUTE_INLINE: return (shape){0, 0, 0, 0, false};
    case SCH_CACHE_READ: return (shape){1, 2, 0, 1, true};
    case SCH_CACHE_WRITE: return (shape){0, 1, 0, 1, true};
    case SCH_RFACTOR: return (shape){1, 1, 0, 1, false};
    case SCH_STORAGE_ALIGN: return (shape){1, 1, 2, 0, false};
    case SCH_PACK: return (shape){0, 0, 2, 1, false};
    case SCH_BIND: return (shape){1, 1, 0, 0, true};
    default: return (shape){0, 0, 0, 0, false};
    }
}

/* Whether the step has the parts its primitive needs; the reason in why. */
static bool step_shape_ok(const sch_step *s, const char **why) {
    if ((unsigned)s->prim >= SCH_PRIM_COUNT) return *why = "unknown primitive", false;
    if (!name_ok(s->stage)) return *why = "missing or malformed stage name", false;
    if (s->n_axes < 0 || s->n_axes > SCH_MAX_NAMES || s->n_ints < 0 || s->n_ints > SCH_MAX_INTS ||
        s->n_outs < 0 || s->n_outs > SCH_MAX_NAMES)
        return *why = "too many names or integers", false;
    shape sh = prim_shape(s);
    if (s->n_axes < sh.axes_lo || s->n_axes > sh.axes_hi)
        return *why = sh.axes_lo == sh.axes_hi && sh.axes_lo == 0 ? "takes no axis"
                    : sh.axes_lo == sh.axes_hi                    ? "wrong number of axes"
                                                                  : "too few or too many axes",
               false;
    if (sh.ints < 0 ? s->n_ints < 1 : s->n_ints != sh.ints)
        return *why = sh.ints < 0 ? "needs a list of factors [f1 f2 ..]"
                    : sh.ints == 0 ? "takes no integer list"
                                   : "needs an integer list of the right length",
               false;
    if (s->n_outs != 0 && s->n_outs != sh.outs)
        return *why = sh.outs ? "wrong number of names after ->" : "creates nothing (no -> names)", false;
    if (sh.arg != (s->arg != NULL)) return *why = sh.arg ? "missing scope, target or tag" : "unexpected word", false;
    for (int i = 0; i < s->n_axes; i++)
        if (!name_ok(s->axes[i])) return *why = "malformed axis name", false;
    for (int i = 0; i < s->n_outs; i++)
        if (!name_ok(s->outs[i])) return *why = "malformed name after ->", false;
    lir_scope sc;
    lir_loop_kind lk;
    if ((s->prim == SCH_CACHE_READ || s->prim == SCH_CACHE_WRITE) && !sch_scope_from_name(s->arg, &sc))
        return *why = "scope must be global, shared or local", false;
    if (s->prim == SCH_BIND && !sch_bind_tag(s->arg, &lk))
        return *why = "tag must be blockIdx.x/y/z or threadIdx.x/y/z", false;
    if (s->prim == SCH_COMPUTE_AT && !name_ok(s->arg)) return *why = "malformed target stage", false;
    return true;
}

kiln_status sch_trace_add(kiln_ctx *ctx, sch_trace *t, const sch_step *s) {
    const char *why;
    if (!t || !s) return kiln_fail(ctx, KILN_ERR_INVALID, "sch_trace_add: no trace or step");
    if (!step_shape_ok(s, &why))
        return kiln_fail(ctx, KILN_ERR_INVALID, "trace step %d (%s): %s", t->n_steps + 1,
                         sch_prim_name(s->prim), why);
    if (!kiln_grow((void **)&t->steps, &t->cap_steps, t->n_steps + 1, sizeof(sch_step)))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    sch_step c = *s;
    bool ok = (c.stage = kiln_arena_strdup(t->arena, s->stage)) != NULL;
    if (s->arg) ok = ok && (c.arg = kiln_arena_strdup(t->arena, s->arg)) != NULL;
    for (int i = 0; i < s->n_axes; i++) ok = ok && (c.axes[i] = kiln_arena_strdup(t->arena, s->axes[i]));
    for (int i = 0; i < s->n_outs; i++) ok = ok && (c.outs[i] = kiln_arena_strdup(t->arena, s->outs[i]));
    for (int i = s->n_axes; i < SCH_MAX_NAMES; i++) c.axes[i] = NULL;
    for (int i = s->n_outs; i < SCH_MAX_NAMES; i++) c.outs[i] = NULL;
    if (!ok) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    t->steps[t->n_steps++] = c;
    return KILN_OK;
}

/* ---- printing ---- */

/* Text goes to a FILE or into a fixed buffer (truncated). */
typedef struct sink {
    FILE *f;
    char *buf;
    size_t cap, len;
} sink;

static void put(sink *o, const char *s) {
    if (o->f) {
        fputs(s, o->f);
        return;
    }
    size_t n = strlen(s);
    if (o->len + 1 >= o->cap) return;
    if (n > o->cap - 1 - o->len) n = o->cap - 1 - o->len;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = 0;
}

static bool plain_word(const char *s) {
    if (!*s || strcmp(s, "->") == 0) return false;
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || *p == '[' || *p == ']' || *p == '#' || *p == '"' || *p == '\\' ||
            *p == ',')
            return false;
    return true;
}

static void put_name(sink *o, const char *s) {
    put(o, " ");
    if (plain_word(s)) {
        put(o, s);
        return;
    }
    put(o, "\"");
    for (const char *p = s; *p; p++) {
        char c[3] = {*p, 0, 0};
        if (*p == '"' || *p == '\\') c[0] = '\\', c[1] = *p;
        put(o, c);
    }
    put(o, "\"");
}

static void put_ints(sink *o, const sch_step *s) {
    put(o, " [");
    for (int i = 0; i < s->n_ints; i++) {
        char num[32];
        snprintf(num, sizeof num, "%s%lld", i ? " " : "", (long long)s->ints[i]);
        put(o, num);
    }
    put(o, "]");
}

static void put_step(sink *o, const sch_step *s) {
    char head[32];
    snprintf(head, sizeof head, "%-12s", sch_prim_name(s->prim));
    put(o, head);
    put_name(o, s->stage);
    switch (s->prim) {
    case SCH_COMPUTE_AT:
        put_name(o, s->arg);
        put_name(o, s->axes[0]);
        break;
    case SCH_CACHE_READ:
        put_name(o, s->axes[0]);
        put_name(o, s->arg);
        if (s->n_axes > 1) put(o, " at"), put_name(o, s->axes[1]);
        break;
    case SCH_CACHE_WRITE:
        put_name(o, s->arg);
        if (s->n_axes > 0) put(o, " at"), put_name(o, s->axes[0]);
        break;
    default:
        for (int i = 0; i < s->n_axes; i++) put_name(o, s->axes[i]);
        if (s->n_ints) put_ints(o, s);
        if (s->arg) put_name(o, s->arg);
        break;
    }
    if (s->n_outs) {
        put(o, " ->");
        for (int i = 0; i < s->n_outs; i++) put_name(o, s->outs[i]);
    }
}

void sch_trace_print(FILE *out, const sch_trace *t) {
    sink o = {out, NULL, 0, 0};
    put(&o, "# kiln trace 1\n");
    for (int i = 0; t && i < t->n_steps; i++) {
        put_step(&o, &t->steps[i]);
        put(&o, "\n");
    }
}

const char *sch_step_str(const sch_step *s, char *buf, size_t n) {
    sink o = {NULL, buf, n, 0};
    if (n) buf[0] = 0;
    put_step(&o, s);
    /* the padding after the primitive is for columns in files, not messages */
    char *p = strchr(buf, ' ');
    if (p) {
        char *q = p;
        while (*q == ' ') q++;
        memmove(p + 1, q, strlen(q) + 1);
    }
    return buf;
}

/* ---- parsing ---- */

typedef enum tok_kind { TK_END, TK_WORD, TK_LBRACK, TK_RBRACK, TK_ARROW, TK_ERROR } tok_kind;

typedef struct lexer {
    const char *p, *end; /* the current line */
    char word[512];
    const char *err;
} lexer;

static tok_kind lex(lexer *lx) {
    while (lx->p < lx->end && (isspace((unsigned char)*lx->p) || *lx->p == ',')) lx->p++;
    if (lx->p >= lx->end || *lx->p == '#') return TK_END;
    char c = *lx->p;
    if (c == '[') return lx->p++, TK_LBRACK;
    if (c == ']') return lx->p++, TK_RBRACK;
    if (c == '-' && lx->p + 1 < lx->end && lx->p[1] == '>') return lx->p += 2, TK_ARROW;
    size_t n = 0;
    if (c == '"') {
        for (lx->p++;; lx->p++) {
            if (lx->p >= lx->end) return lx->err = "unterminated quoted name", TK_ERROR;
            if (*lx->p == '"') break;
            if (*lx->p == '\\' && lx->p + 1 < lx->end) lx->p++;
            if (n + 1 >= sizeof lx->word) return lx->err = "name too long", TK_ERROR;
            lx->word[n++] = *lx->p;
        }
        lx->p++;
    } else {
        while (lx->p < lx->end && !isspace((unsigned char)*lx->p) && !strchr("[]#\",", *lx->p)) {
            if (n + 1 >= sizeof lx->word) return lx->err = "name too long", TK_ERROR;
            lx->word[n++] = *lx->p++;
        }
    }
    lx->word[n] = 0;
    return TK_WORD;
}

static bool parse_int(const char *s, int64_t *v) {
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || end == s || *end) return false;
    *v = x;
    return true;
}

static sch_prim prim_from_name(const char *s) {
    if (strcmp(s, "compute_inline") == 0) return SCH_COMPUTE_INLINE;
    for (int p = 0; p < SCH_PRIM_COUNT; p++)
        if (strcmp(s, k_prim_names[p]) == 0) return (sch_prim)p;
    return SCH_PRIM_COUNT;
}

/* The words of a line (after the primitive), its integers and outputs. */
typedef struct line_parts {
    int n_words;
    const char *words[SCH_MAX_NAMES + 4];
    int n_ints;
    int64_t ints[SCH_MAX_INTS];
    bool has_ints;
    int n_outs;
    const char *outs[SCH_MAX_NAMES];
} line_parts;

static const char k_oom[] = "out of memory";

static const char *split_line(lexer *lx, kiln_arena *a, line_parts *lp) {
    memset(lp, 0, sizeof *lp);
    bool arrow = false;
    for (;;) {
        tok_kind k = lex(lx);
        if (k == TK_END) break;
        if (k == TK_ERROR) return lx->err;
        if (k == TK_RBRACK) return "']' without '['";
        if (k == TK_ARROW) {
            if (arrow) return "two '->'";
            arrow = true;
            continue;
        }
        if (k == TK_LBRACK) {
            if (arrow || lp->has_ints) return "unexpected '['";
            lp->has_ints = true;
            for (;;) {
                k = lex(lx);
                if (k == TK_RBRACK) break;
                if (k != TK_WORD) return k == TK_ERROR ? lx->err : "unterminated integer list";
                if (lp->n_ints >= SCH_MAX_INTS) return "too many integers";
                if (!parse_int(lx->word, &lp->ints[lp->n_ints++])) return "malformed integer";
            }
            continue;
        }
        const char *w = kiln_arena_strdup(a, lx->word);
        if (!w) return k_oom;
        if (arrow) {
            if (lp->n_outs >= SCH_MAX_NAMES) return "too many names after ->";
            lp->outs[lp->n_outs++] = w;
        } else {
            if (lp->n_words >= (int)(sizeof lp->words / sizeof lp->words[0])) return "too many words";
            lp->words[lp->n_words++] = w;
        }
    }
    if (arrow && !lp->n_outs) return "no names after ->";
    return NULL;
}

/* Places the words of a line into the step's fields by the primitive's
** word order. */
static const char *assign_words(sch_step *s, const line_parts *lp) {
    const char *const *w = lp->words;
    int n = lp->n_words;
    if (n < 1) return "missing stage name";
    s->stage = w[0];
    int first_axis = 1, n_ax = n - 1;
    switch (s->prim) {
    case SCH_COMPUTE_AT:
        if (n != 3) return "expected: compute_at STAGE TARGET AXIS";
        s->arg = w[1];
        first_axis = 2, n_ax = 1;
        break;
    case SCH_CACHE_READ:
        if (n != 3 && !(n == 5 && strcmp(w[3], "at") == 0))
            return "expected: cache_read TENSOR READER SCOPE [at AXIS] [-> NAME]";
        s->axes[0] = w[1];
        s->arg = w[2];
        if (n == 5) s->axes[1] = w[4];
        s->n_axes = n == 5 ? 2 : 1;
        return NULL;
    case SCH_CACHE_WRITE:
        if (n != 2 && !(n == 4 && strcmp(w[2], "at") == 0))
            return "expected: cache_write STAGE SCOPE [at AXIS] [-> NAME]";
        s->arg = w[1];
        if (n == 4) s->axes[0] = w[3];
        s->n_axes = n == 4 ? 1 : 0;
        return NULL;
    case SCH_BIND:
        if (n != 3) return "expected: bind STAGE AXIS TAG";
        s->arg = w[2];
        n_ax = 1;
        break;
    default: break;
    }
    if (n_ax > SCH_MAX_NAMES) return "too many axes";
    s->n_axes = n_ax;
    for (int i = 0; i < n_ax; i++) s->axes[i] = w[first_axis + i];
    return NULL;
}

static kiln_status parse_line(kiln_ctx *ctx, sch_trace *t, kiln_arena *scratch, const char *p,
                              const char *end, int line) {
    lexer lx = {p, end, {0}, NULL};
    tok_kind k = lex(&lx);
    if (k == TK_END) return KILN_OK;
    if (k != TK_WORD) return kiln_fail(ctx, KILN_ERR_PARSE, "trace line %d: expected a primitive", line);
    sch_step s;
    memset(&s, 0, sizeof s);
    s.prim = prim_from_name(lx.word);
    if (s.prim == SCH_PRIM_COUNT)
        return kiln_fail(ctx, KILN_ERR_PARSE, "trace line %d: unknown primitive '%s'", line, lx.word);
    line_parts lp;
    const char *why = split_line(&lx, scratch, &lp);
    if (why == k_oom) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!why) why = assign_words(&s, &lp);
    if (why) return kiln_fail(ctx, KILN_ERR_PARSE, "trace line %d: %s: %s", line, sch_prim_name(s.prim), why);
    s.n_ints = lp.n_ints;
    memcpy(s.ints, lp.ints, sizeof lp.ints);
    if (lp.has_ints && !lp.n_ints)
        return kiln_fail(ctx, KILN_ERR_PARSE, "trace line %d: %s: empty integer list", line, sch_prim_name(s.prim));
    s.n_outs = lp.n_outs;
    for (int i = 0; i < lp.n_outs; i++) s.outs[i] = lp.outs[i];
    s.line = line;
    if (!step_shape_ok(&s, &why))
        return kiln_fail(ctx, KILN_ERR_PARSE, "trace line %d: %s: %s", line, sch_prim_name(s.prim), why);
    kiln_status st = sch_trace_add(ctx, t, &s);
    return st;
}

/* "# kiln trace N" names the format's version; other comments are free. */
static kiln_status check_header(kiln_ctx *ctx, const char *p, const char *end, int line) {
    while (p < end && isspace((unsigned char)*p)) p++;
    if (p >= end || *p != '#') return KILN_OK;
    p++;
    while (p < end && *p == ' ') p++;
    static const char tag[] = "kiln trace";
    if ((size_t)(end - p) < sizeof tag - 1 || memcmp(p, tag, sizeof tag - 1) != 0) return KILN_OK;
    p += sizeof tag - 1;
    if (p < end && !isspace((unsigned char)*p)) return KILN_OK;
    long v = strtol(p, NULL, 10);
    if (v != 1)
        return kiln_fail(ctx, KILN_ERR_PARSE, "trace line %d: unsupported trace format version (this kiln reads 1)", line);
    return KILN_OK;
}

kiln_status sch_trace_parse(kiln_ctx *ctx, const char *text, sch_trace **out) {
    if (!text) return kiln_fail(ctx, KILN_ERR_INVALID, "sch_trace_parse: no text");
    sch_trace *t = sch_trace_new();
    kiln_arena *scratch = kiln_arena_new();
    if (!t || !scratch) {
        sch_trace_free(t);
        kiln_arena_free(scratch);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    }
    kiln_status st = KILN_OK;
    int line = 1;
    for (const char *p = text; *p && st == KILN_OK; line++) {
        const char *e = strchr(p, '\n');
        if (!e) e = p + strlen(p);
        st = check_header(ctx, p, e, line);
        if (st == KILN_OK) st = parse_line(ctx, t, scratch, p, e, line);
        p = *e ? e + 1 : e;
    }
    kiln_arena_free(scratch);
    if (st != KILN_OK) {
        sch_trace_free(t);
        return st;
    }
    *out = t;
    return KILN_OK;
}
