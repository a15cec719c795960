/*
** records_io.c — exporting records as text, importing them back, and merging
** another database file.
**
** The export format (stable; a change bumps the format number):
**   - UTF-8 text, one JSON object per line, lines ending in "\n".
**   - Line 1 is the header: {"kiln_records":1} (the format number).
**   - Every other line is one record, with every key present, in this order:
**       {"workload":{"hash":"<16 hex digits of tir_hash>","ops":"<op names>",
**                    "description":"<the kernel's canonical text>"},
**        "target":"<canonical description: key=value lines, sorted>",
**        "trace":"<schedule trace>","knobs":"<knob point>",
**        "median_s":<seconds|null>,"spread_s":<seconds|null>,
**        "compile_s":<seconds|null>,"n_repeats":<int>,
**        "status":"ok|wrong|crash|timeout|oom|compile_error","error":"<text>",
**        "time":<unix seconds>,"kiln_version":"<text>","seed":<int>,
**        "trial":<int>}
**     (written on one line; broken here to fit). Seconds are written with
**     the digits that read back bit-identical, so a record keeps its content
**     hash: importing the same lines twice adds nothing.
**   - Blank lines are ignored. An unknown or missing key, a bad value, or a
**     header of a newer format is an error naming the file and line; an
**     import is one transaction, so a bad line leaves the database unchanged.
*/
#include <string.h>
#include <sys/stat.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"
#include "ir/mem.h"

/* ---- export ---- */

static kiln_status write_one(kiln_ctx *ctx, const tune_record *r, void *user) {
    tune_json_write_record(user, r);
    return KILN_OK;
}

kiln_status tune_db_export(kiln_ctx *ctx, tune_db *db, FILE *out, const char *name) {
    fprintf(out, "{\"kiln_records\":%d}\n", TUNE_EXPORT_FORMAT);
    kiln_status s = tune_db_foreach(ctx, db, NULL, write_one, out);
    if (s) return s;
    if (fflush(out) != 0 || ferror(out)) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot write the export", name);
    return KILN_OK;
}

/* ---- import ---- */

typedef struct line_reader {
    FILE *in;
    char *buf;
    size_t cap, len;
    long lineno;
} line_reader;

/* The next line without its newline: 1, or 0 at the end; a NUL byte in a
** line is an error (-2), as is running out of memory (-1). */
static int next_line(line_reader *lr) {
    lr->len = 0;
    int c;
    bool any = false;
    while ((c = getc(lr->in)) != EOF) {
        any = true;
        if (c == '\n') break;
        if (c == '\0') return -2;
        if (lr->len + 1 >= lr->cap) {
            size_t cap = lr->cap ? lr->cap * 2 : 4096;
            char *b = kiln_realloc(lr->buf, cap);
            if (!b) return -1;
            lr->buf = b, lr->cap = cap;
        }
        lr->buf[lr->len++] = (char)c;
    }
    if (!any) return 0;
    if (!lr->buf && !(lr->buf = kiln_malloc(lr->cap = 64))) return -1;
    lr->buf[lr->len] = '\0';
    lr->lineno++;
    return 1;
}

static kiln_status read_failure(kiln_ctx *ctx, line_reader *lr, const char *name, int r) {
    if (r == -1) return kiln_fail(ctx, KILN_ERR_NOMEM, "%s:%ld: out of memory reading a line", name, lr->lineno + 1);
    return kiln_fail(ctx, KILN_ERR_PARSE, "%s:%ld: a NUL byte in the line", name, lr->lineno + 1);
}

static kiln_status check_header(kiln_ctx *ctx, line_reader *lr, const char *name, char *scratch) {
    char err[160];
    int64_t format = 0;
    if (!tune_json_read_header(lr->buf, scratch, &format, err, sizeof err))
        return kiln_fail(ctx, KILN_ERR_PARSE, "%s:%ld: not a kiln records export (no {\"kiln_records\":N} header: %s)",
                         name, lr->lineno, err);
    if (format > TUNE_EXPORT_FORMAT)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED,
                         "%s:%ld: an export of format %lld, from a newer kiln (this kiln reads format %d)", name,
                         lr->lineno, (long long)format, TUNE_EXPORT_FORMAT);
    if (format < 1) return kiln_fail(ctx, KILN_ERR_PARSE, "%s:%ld: a bad format number %lld", name, lr->lineno,
                                     (long long)format);
    return KILN_OK;
}

/* Reads and adds every record; the caller holds the transaction. */
static kiln_status import_lines(kiln_ctx *ctx, tune_db *db, line_reader *lr, const char *name, int64_t *added,
                                int64_t *skipped) {
    char *scratch = NULL, err[160];
    bool header = false;
    int r;
    kiln_status s = KILN_OK;
    while (!s && (r = next_line(lr)) == 1) {
        if (lr->buf[strspn(lr->buf, " \t\r")] == '\0') continue;
        kiln_free(scratch);
        if (!(scratch = kiln_malloc(lr->len + 1))) {
            s = kiln_fail(ctx, KILN_ERR_NOMEM, "%s:%ld: out of memory", name, lr->lineno);
            break;
        }
        if (!header) {
            s = check_header(ctx, lr, name, scratch);
            header = true;
            continue;
        }
        tune_record rec;
        if (!tune_json_read_record(lr->buf, scratch, &rec, err, sizeof err)) {
            s = kiln_fail(ctx, KILN_ERR_PARSE, "%s:%ld: a bad record: %s", name, lr->lineno, err);
            break;
        }
        bool did = false;
        s = tune_db_add_record(ctx, db, &rec, &did);
        if (s) kiln_wrap(ctx, s, "%s:%ld", name, lr->lineno);
        else ++*(did ? added : skipped);
    }
    kiln_free(scratch);
    if (!s && r < 0) s = read_failure(ctx, lr, name, r);
    if (!s && ferror(lr->in)) s = kiln_fail(ctx, KILN_ERR_IO, "%s: cannot read", name);
    if (!s && !header) s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: empty, not a kiln records export", name);
    return s;
}

kiln_status tune_db_import(kiln_ctx *ctx, tune_db *db, FILE *in, const char *name, int64_t *added,
                           int64_t *skipped) {
    line_reader lr = {.in = in};
    int64_t a = 0, k = 0;
    kiln_status s = tune_db_begin(ctx, db);
    if (s) return s;
    s = tune_db_end(ctx, db, import_lines(ctx, db, &lr, name, &a, &k));
    kiln_free(lr.buf);
    if (s) return s;
    if (added) *added = a;
    if (skipped) *skipped = k;
    return KILN_OK;
}

/* ---- merge ---- */

typedef struct merge_state {
    tune_db *into;
    const char *from;
    int64_t added, skipped;
} merge_state;

static kiln_status merge_one(kiln_ctx *ctx, const tune_record *r, void *user) {
    merge_state *m = user;
    bool did = false;
    kiln_status s = tune_db_add_record(ctx, m->into, r, &did);
    if (s) return kiln_wrap(ctx, s, "%s: record %lld", m->from, (long long)r->id);
    ++*(did ? &m->added : &m->skipped);
    return KILN_OK;
}

static bool same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

kiln_status tune_db_merge(kiln_ctx *ctx, tune_db *db, const char *other, int64_t *added, int64_t *skipped) {
    if (same_file(db->path, other))
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: merging a database into itself", other);
    tune_db *src = NULL;
    kiln_status s = tune_db_open(ctx, other, TUNE_DB_READONLY, &src);
    if (s) return s;
    merge_state m = {.into = db, .from = other};
    s = tune_db_begin(ctx, db);
    if (!s) s = tune_db_end(ctx, db, tune_db_foreach(ctx, src, NULL, merge_one, &m));
    tune_db_close(src);
    if (s) return s;
    if (added) *added = m.added;
    if (skipped) *skipped = m.skipped;
    return KILN_OK;
}
