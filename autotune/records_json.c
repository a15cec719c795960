/*
** records_json.c — one record as one line of JSON, both ways (the format is
** documented in records_io.c). The reader knows exactly the keys the writer
** writes: every key is required, an unknown or repeated key is an error, so
** a line from a newer format is refused rather than half read.
*/
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/records_internal.h"

/* ---- writing ---- */

static void put_str(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(out, "\\%c", *p);
        else if (*p == '\n') fputs("\\n", out);
        else if (*p == '\t') fputs("\\t", out);
        else if (*p == '\r') fputs("\\r", out);
        else if (*p < 0x20) fprintf(out, "\\u%04x", *p);
        else fputc(*p, out);
    }
    fputc('"', out);
}

/* The shortest of 15 or 17 significant digits that reads back exactly. */
static void put_seconds(FILE *out, double d) {
    if (isnan(d)) {
        fputs("null", out);
        return;
    }
    char buf[40];
    snprintf(buf, sizeof buf, "%.15g", d);
    if (strtod(buf, NULL) != d) snprintf(buf, sizeof buf, "%.17g", d);
    fputs(buf, out);
}

void tune_json_write_record(FILE *out, const tune_record *r) {
    char hash[17];
    tune_hex64(r->workload_hash, hash);
    fprintf(out, "{\"workload\":{\"hash\":\"%s\",\"ops\":", hash);
    put_str(out, r->workload_ops);
    fputs(",\"description\":", out);
    put_str(out, r->workload_desc);
    fputs("},\"target\":", out);
    put_str(out, r->target);
    fputs(",\"trace\":", out);
    put_str(out, r->trace);
    fputs(",\"knobs\":", out);
    put_str(out, r->knobs);
    fputs(",\"median_s\":", out);
    put_seconds(out, r->median_s);
    fputs(",\"spread_s\":", out);
    put_seconds(out, r->spread_s);
    fputs(",\"compile_s\":", out);
    put_seconds(out, r->compile_s);
    fprintf(out, ",\"n_repeats\":%d,\"status\":\"%s\",\"error\":", r->n_repeats, tune_status_name(r->status));
    put_str(out, r->error);
    fprintf(out, ",\"time\":%lld,\"kiln_version\":", (long long)r->time);
    put_str(out, r->kiln_version);
    fprintf(out, ",\"seed\":%lld,\"trial\":%lld}\n", (long long)r->seed, (long long)r->trial);
}

/* ---- reading ---- */

typedef struct jr {
    const char *line, *p;
    char *w; /* where the next unescaped string goes */
    char *err; /* the first error, with its column */
    size_t err_cap;
    bool failed;
} jr;

static void ws(jr *j) { j->p += strspn(j->p, " \t\r"); }

static bool fail(jr *j, const char *msg) {
    if (!j->failed) snprintf(j->err, j->err_cap, "%s (column %d)", msg, (int)(j->p - j->line) + 1);
    j->failed = true;
    return false;
}

static bool lit(jr *j, char c) {
    ws(j);
    if (*j->p != c) return fail(j, c == ':' ? "expected ':'" : c == '{' ? "expected '{'" : "expected ',' or '}'");
    j->p++;
    return true;
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static bool hex4(jr *j, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hexval(j->p[i]);
        if (d < 0) return fail(j, "a bad \\u escape");
        v = v << 4 | (unsigned)d;
    }
    j->p += 4;
    *out = v;
    return true;
}

static void put_utf8(jr *j, unsigned c) {
    if (c < 0x80) *j->w++ = (char)c;
    else if (c < 0x800) *j->w++ = (char)(0xc0 | c >> 6), *j->w++ = (char)(0x80 | (c & 0x3f));
    else if (c < 0x10000)
        *j->w++ = (char)(0xe0 | c >> 12), *j->w++ = (char)(0x80 | (c >> 6 & 0x3f)), *j->w++ = (char)(0x80 | (c & 0x3f));
    else
        *j->w++ = (char)(0xf0 | c >> 18), *j->w++ = (char)(0x80 | (c >> 12 & 0x3f)),
        *j->w++ = (char)(0x80 | (c >> 6 & 0x3f)), *j->w++ = (char)(0x80 | (c & 0x3f));
}

/* \uXXXX, with a surrogate pair as one character; no NUL (C strings). */
static bool unicode(jr *j) {
    unsigned c, lo;
    if (!hex4(j, &c)) return false;
    if (c >= 0xd800 && c < 0xdc00) {
        if (j->p[0] != '\\' || j->p[1] != 'u') return fail(j, "a lone surrogate in a \\u escape");
        j->p += 2;
        if (!hex4(j, &lo) || lo < 0xdc00 || lo > 0xdfff) return fail(j, "a lone surrogate in a \\u escape");
        c = 0x10000 + ((c - 0xd800) << 10) + (lo - 0xdc00);
    } else if (c >= 0xdc00 && c < 0xe000) return fail(j, "a lone surrogate in a \\u escape");
    if (c == 0) return fail(j, "a NUL character in a string");
    put_utf8(j, c);
    return true;
}

static bool escape(jr *j) {
    static const char k_from[] = "\"\\/bfnrt", k_to[] = "\"\\/\b\f\n\r\t";
    char c = *j->p++;
    if (c == 'u') return unicode(j);
    const char *k = c ? strchr(k_from, c) : NULL;
    if (!k) return fail(j, "a bad escape in a string");
    *j->w++ = k_to[k - k_from];
    return true;
}

/* A string, unescaped into the scratch buffer; *out points at it. */
static bool str(jr *j, const char **out) {
    ws(j);
    if (*j->p != '"') return fail(j, "expected a string");
    j->p++;
    char *start = j->w;
    for (;;) {
        unsigned char c = (unsigned char)*j->p++;
        if (c == '"') break;
        if (c == '\0') return fail(j, "an unterminated string");
        if (c < 0x20) return fail(j, "a control character in a string");
        if (c == '\\') {
            if (!escape(j)) return false;
        } else *j->w++ = (char)c;
    }
    *j->w++ = '\0';
    *out = start;
    return true;
}

/* A JSON number's text (strict grammar), copied to buf. */
static bool number_text(jr *j, char *buf, size_t cap, bool *integral) {
    ws(j);
    const char *s = j->p, *p = s;
    if (*p == '-') p++;
    if (*p == '0') p++;
    else if (*p >= '1' && *p <= '9') p += strspn(p, "0123456789");
    else return fail(j, "expected a number");
    *integral = *p != '.' && *p != 'e' && *p != 'E';
    if (*p == '.') {
        if (!(p[1] >= '0' && p[1] <= '9')) return fail(j, "a bad number");
        p += 1 + strspn(p + 1, "0123456789");
    }
    if (*p == 'e' || *p == 'E') {
        p += 1 + (p[1] == '+' || p[1] == '-');
        if (!(*p >= '0' && *p <= '9')) return fail(j, "a bad number");
        p += strspn(p, "0123456789");
    }
    if ((size_t)(p - s) >= cap) return fail(j, "a number too long");
    memcpy(buf, s, (size_t)(p - s));
    buf[p - s] = '\0';
    j->p = p;
    return true;
}

static bool integer(jr *j, int64_t *out) {
    char buf[64];
    bool integral;
    if (!number_text(j, buf, sizeof buf, &integral)) return false;
    if (!integral) return fail(j, "expected an integer");
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno == ERANGE) return fail(j, "an integer out of range");
    *out = v;
    return true;
}

/* null (NaN) or a finite, non-negative number of seconds. */
static bool seconds(jr *j, double *out) {
    ws(j);
    if (!strncmp(j->p, "null", 4)) {
        j->p += 4;
        *out = NAN;
        return true;
    }
    char buf[64];
    bool integral;
    if (!number_text(j, buf, sizeof buf, &integral)) return false;
    double d = strtod(buf, NULL);
    if (!isfinite(d) || d < 0) return fail(j, "a time that is not a finite, non-negative number");
    *out = d;
    return true;
}

/* Walks an object's members: calls member(j, key, ctx) for each, which
** reads the value; `seen` catches repeats (keys indexed by `keys`). */
static int key_index(const char *const *keys, int n, const char *k) {
    for (int i = 0; i < n; i++)
        if (!strcmp(keys[i], k)) return i;
    return -1;
}

typedef bool (*member_fn)(jr *j, int key, void *user);

static bool object(jr *j, const char *const *keys, int n, member_fn member, void *user) {
    if (!lit(j, '{')) return false;
    unsigned seen = 0;
    for (;;) {
        const char *k;
        char *mark = j->w;
        if (!str(j, &k)) return false;
        int i = key_index(keys, n, k);
        j->w = mark; /* the key's text is not kept */
        if (i < 0) {
            char msg[96];
            snprintf(msg, sizeof msg, "an unknown key '%.40s'", k);
            return fail(j, msg);
        }
        if (seen >> i & 1) return fail(j, "a repeated key");
        seen |= 1u << i;
        if (!lit(j, ':') || !member(j, i, user)) return false;
        ws(j);
        if (*j->p == '}') break;
        if (!lit(j, ',')) return false;
    }
    j->p++;
    if (seen != (1u << n) - 1) return fail(j, "a missing key");
    return true;
}

static const char *const k_workload_keys[] = {"hash", "ops", "description"};

static bool workload_member(jr *j, int key, void *user) {
    tune_record *r = user;
    const char *s;
    if (!str(j, &s)) return false;
    if (key == 0 && !tune_parse_hex64(s, &r->workload_hash))
        return fail(j, "a workload hash that is not 16 hex digits");
    if (key == 1) r->workload_ops = s;
    if (key == 2) r->workload_desc = s;
    return true;
}

static const char *const k_record_keys[] = {"workload", "target", "trace",  "knobs",        "median_s",
                                            "spread_s", "compile_s", "n_repeats", "status", "error",
                                            "time",     "kiln_version", "seed",   "trial"};

static bool record_member(jr *j, int key, void *user) {
    tune_record *r = user;
    const char *s;
    int64_t v;
    switch (key) {
    case 0: return object(j, k_workload_keys, 3, workload_member, r);
    case 1: return str(j, &r->target);
    case 2: return str(j, &r->trace);
    case 3: return str(j, &r->knobs);
    case 4: return seconds(j, &r->median_s);
    case 5: return seconds(j, &r->spread_s);
    case 6: return seconds(j, &r->compile_s);
    case 7:
        if (!integer(j, &v)) return false;
        if (v < 0 || v > INT32_MAX) return fail(j, "a repeat count out of range");
        r->n_repeats = (int)v;
        return true;
    case 8:
        if (!str(j, &s)) return false;
        return tune_status_parse(s, &r->status) || fail(j, "an unknown status");
    case 9: return str(j, &r->error);
    case 10: return integer(j, &r->time);
    case 11: return str(j, &r->kiln_version);
    case 12: return integer(j, &r->seed);
    default: return integer(j, &r->trial);
    }
}

static bool at_end(jr *j) {
    ws(j);
    return *j->p == '\0' || fail(j, "text after the record");
}

bool tune_json_read_record(const char *line, char *scratch, tune_record *r, char *err, size_t err_cap) {
    jr j = {.line = line, .p = line, .w = scratch, .err = err, .err_cap = err_cap};
    tune_record_init(r);
    int n = (int)(sizeof k_record_keys / sizeof k_record_keys[0]);
    return object(&j, k_record_keys, n, record_member, r) && at_end(&j);
}

static const char *const k_header_keys[] = {"kiln_records"};

static bool header_member(jr *j, int key, void *user) { return integer(j, user); }

bool tune_json_read_header(const char *line, char *scratch, int64_t *format, char *err, size_t err_cap) {
    jr j = {.line = line, .p = line, .w = scratch, .err = err, .err_cap = err_cap};
    int64_t v = 0;
    if (!object(&j, k_header_keys, 1, header_member, &v) || !at_end(&j)) return false;
    *format = v;
    return true;
}
