/*
** records_rw.c — adding, looking up, walking, counting and pruning records.
**
** Everything read back is checked as it is read (a database may come from
** elsewhere): a workload hash of 16 hex digits, a known status, numbers of
** the right type and sign. Strings are returned as text for the caller to
** parse and validate; nothing read is ever executed.
*/
#include <math.h>
#include <string.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"
#include "ir/mem.h"

void tune_record_init(tune_record *r) {
    memset(r, 0, sizeof *r);
    r->workload_desc = r->workload_ops = r->target = r->trace = r->knobs = r->error = r->kiln_version = "";
    r->median_s = r->spread_s = r->compile_s = NAN;
    r->trial = -1;
}

void tune_record_clear(tune_record *r) {
    kiln_free(r->owned_);
    tune_record_init(r);
}

static const char *nz(const char *s) { return s ? s : ""; }

/* ---- reading rows ---- */

const char *tune_db_record_columns(int version) {
    if (version < 2)
        return "r.id, w.hash, w.description, w.ops, t.description, r.trace, r.knobs, r.median_s, "
               "r.spread_s, r.n_repeats, r.status, r.error, r.time, r.kiln_version, NULL, 0, -1";
    return "r.id, w.hash, w.description, w.ops, t.description, r.trace, r.knobs, r.median_s, "
           "r.spread_s, r.n_repeats, r.status, r.error, r.time, r.kiln_version, r.compile_s, r.seed, r.trial";
}

static const char *col_text(sqlite3_stmt *st, int i) { return nz((const char *)sqlite3_column_text(st, i)); }

/* A time column: NULL is NaN; a number must be finite and not negative. */
static bool col_seconds(sqlite3_stmt *st, int i, double *out) {
    int t = sqlite3_column_type(st, i);
    if (t == SQLITE_NULL) {
        *out = NAN;
        return true;
    }
    if (t != SQLITE_FLOAT && t != SQLITE_INTEGER) return false;
    *out = sqlite3_column_double(st, i);
    return isfinite(*out) && *out >= 0;
}

static bool col_int(sqlite3_stmt *st, int i, int64_t *out) {
    if (sqlite3_column_type(st, i) != SQLITE_INTEGER) return false;
    *out = sqlite3_column_int64(st, i);
    return true;
}

kiln_status tune_db_row_record(kiln_ctx *ctx, const tune_db *db, sqlite3_stmt *st, tune_record *r) {
    tune_record_init(r);
    r->id = sqlite3_column_int64(st, 0);
    const char *bad = NULL;
    int64_t reps = 0;
    if (!tune_parse_hex64(col_text(st, 1), &r->workload_hash)) bad = "workload hash";
    else if (!col_seconds(st, 7, &r->median_s)) bad = "median";
    else if (!col_seconds(st, 8, &r->spread_s)) bad = "spread";
    else if (!col_int(st, 9, &reps) || reps < 0 || reps > INT32_MAX) bad = "repeat count";
    else if (!tune_status_parse(col_text(st, 10), &r->status)) bad = "status";
    else if (!col_int(st, 12, &r->time)) bad = "time";
    else if (!col_seconds(st, 14, &r->compile_s)) bad = "compile time";
    else if (!col_int(st, 15, &r->seed)) bad = "seed";
    else if (!col_int(st, 16, &r->trial)) bad = "trial";
    else if (r->status == TUNE_STATUS_OK && isnan(r->median_s)) bad = "median (an ok record without one)";
    if (bad)
        return kiln_fail(ctx, KILN_ERR_PARSE, "%s: record %lld has a bad %s", db->path, (long long)r->id, bad);
    r->n_repeats = (int)reps;
    r->workload_desc = col_text(st, 2);
    r->workload_ops = col_text(st, 3);
    r->target = col_text(st, 4);
    r->trace = col_text(st, 5);
    r->knobs = col_text(st, 6);
    r->error = col_text(st, 11);
    r->kiln_version = col_text(st, 13);
    return KILN_OK;
}

kiln_status tune_record_copy(kiln_ctx *ctx, const tune_record *r, tune_record *out) {
    const char *src[] = {r->workload_desc, r->workload_ops, r->target, r->trace, r->knobs, r->error, r->kiln_version};
    enum { N = sizeof src / sizeof src[0] };
    size_t len[N], total = 0;
    for (int i = 0; i < N; i++) total += (len[i] = strlen(nz(src[i]))) + 1;
    char *block = kiln_malloc(total);
    if (!block) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory copying a record");
    const char *dst[N];
    char *p = block;
    for (int i = 0; i < N; i++) {
        memcpy(p, nz(src[i]), len[i] + 1);
        dst[i] = p;
        p += len[i] + 1;
    }
    *out = *r;
    out->workload_desc = dst[0], out->workload_ops = dst[1], out->target = dst[2], out->trace = dst[3];
    out->knobs = dst[4], out->error = dst[5], out->kiln_version = dst[6];
    out->owned_ = block;
    return KILN_OK;
}

/* ---- adding ---- */

static kiln_status check_record(kiln_ctx *ctx, const tune_db *db, const tune_record *r) {
    const char *bad = NULL;
    if ((unsigned)r->status >= TUNE_STATUS_COUNT) bad = "an unknown status";
    else if (r->status == TUNE_STATUS_OK && !(isfinite(r->median_s) && r->median_s >= 0))
        bad = "status ok without a finite, non-negative median";
    else if (!isnan(r->median_s) && !(isfinite(r->median_s) && r->median_s >= 0)) bad = "a bad median";
    else if (!isnan(r->spread_s) && !(isfinite(r->spread_s) && r->spread_s >= 0)) bad = "a bad spread";
    else if (!isnan(r->compile_s) && !(isfinite(r->compile_s) && r->compile_s >= 0)) bad = "a bad compile time";
    else if (r->n_repeats < 0) bad = "a negative repeat count";
    else if (!r->target || !*r->target) bad = "no target";
    if (bad) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: a record with %s", db->path, bad);
    char *canon = kiln_malloc(TUNE_TARGET_MAX);
    if (!canon) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory checking a record's target");
    kiln_status s = tune_target_canonical(ctx, r->target, canon, TUNE_TARGET_MAX);
    if (!s && strcmp(canon, r->target) != 0)
        s = kiln_fail(ctx, KILN_ERR_INVALID, "%s: a record's target is not canonical (use tune_target_canonical)",
                      db->path);
    kiln_free(canon);
    return s;
}

/* Runs a statement to completion; *id (may be NULL) gets the first row's
** first column. */
static kiln_status run(kiln_ctx *ctx, tune_db *db, sqlite3_stmt *st, int64_t *id, const char *what) {
    int rc;
    bool got = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (id && !got) *id = sqlite3_column_int64(st, 0), got = true;
    if (rc != SQLITE_DONE) return tune_db_sqlfail(ctx, db->h, db->path, rc, what);
    if (id && !got) return kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: %s: no row", db->path, what);
    return KILN_OK;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s) { sqlite3_bind_text(st, i, nz(s), -1, SQLITE_STATIC); }
static void bind_seconds(sqlite3_stmt *st, int i, double d) {
    if (isnan(d)) sqlite3_bind_null(st, i);
    else sqlite3_bind_double(st, i, d);
}

/* Inserts a row unless its unique column is there, then reads its id. */
static kiln_status upsert(kiln_ctx *ctx, tune_db *db, const char *insert, const char *select, const char *a,
                          const char *b, const char *c, int64_t *id) {
    sqlite3_stmt *ins = NULL, *sel = NULL;
    kiln_status s = tune_db_prepare(ctx, db, insert, &ins);
    if (!s) s = tune_db_prepare(ctx, db, select, &sel);
    if (!s) {
        bind_text(ins, 1, a), bind_text(ins, 2, b), bind_text(ins, 3, c), bind_text(sel, 1, a);
        s = run(ctx, db, ins, NULL, "adding a workload or target");
    }
    if (!s) s = run(ctx, db, sel, id, "looking up a workload or target");
    sqlite3_finalize(ins);
    sqlite3_finalize(sel);
    return s;
}

static kiln_status insert_record(kiln_ctx *ctx, tune_db *db, const tune_record *r, int64_t wid, int64_t tid,
                                 bool *added) {
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db,
                                    "INSERT INTO records(workload, target, trace, knobs, median_s, spread_s, "
                                    "n_repeats, status, error, time, kiln_version, content_hash, compile_s, seed, "
                                    "trial) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15) "
                                    "ON CONFLICT(content_hash) DO NOTHING", &st);
    if (s) return s;
    char hex[17];
    tune_hex64(tune_record_content_hash(r), hex);
    sqlite3_bind_int64(st, 1, wid);
    sqlite3_bind_int64(st, 2, tid);
    bind_text(st, 3, r->trace), bind_text(st, 4, r->knobs);
    bind_seconds(st, 5, r->median_s), bind_seconds(st, 6, r->spread_s);
    sqlite3_bind_int(st, 7, r->n_repeats);
    bind_text(st, 8, tune_status_name(r->status)), bind_text(st, 9, r->error);
    sqlite3_bind_int64(st, 10, r->time);
    bind_text(st, 11, r->kiln_version), bind_text(st, 12, hex);
    bind_seconds(st, 13, r->compile_s);
    sqlite3_bind_int64(st, 14, r->seed);
    sqlite3_bind_int64(st, 15, r->trial);
    s = run(ctx, db, st, NULL, "adding a record");
    if (!s) *added = sqlite3_changes(db->h) > 0;
    sqlite3_finalize(st);
    return s;
}

kiln_status tune_db_add_record(kiln_ctx *ctx, tune_db *db, const tune_record *r, bool *added) {
    kiln_status s = check_record(ctx, db, r);
    if (!s) s = tune_db_begin(ctx, db);
    if (s) return s;
    char hash[17], key[17];
    tune_hex64(r->workload_hash, hash);
    tune_target_key(r->target, key);
    int64_t wid = 0, tid = 0;
    bool did = false;
    s = upsert(ctx, db, "INSERT INTO workloads(hash, description, ops) VALUES(?1,?2,?3) ON CONFLICT(hash) DO NOTHING",
               "SELECT id FROM workloads WHERE hash = ?1", hash, r->workload_desc, r->workload_ops, &wid);
    if (!s)
        s = upsert(ctx, db, "INSERT INTO targets(description, key) VALUES(?1,?2) ON CONFLICT(description) DO NOTHING",
                   "SELECT id FROM targets WHERE description = ?1", r->target, key, NULL, &tid);
    if (!s) s = insert_record(ctx, db, r, wid, tid, &did);
    s = tune_db_end(ctx, db, s);
    if (!s && added) *added = did;
    return s;
}

/* ---- looking up ---- */

/* A SELECT of records joined with their workload and target, filtered. */
static kiln_status select_records(kiln_ctx *ctx, tune_db *db, const tune_filter *f, const char *tail,
                                  sqlite3_stmt **out) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM records r JOIN workloads w ON w.id = r.workload JOIN targets t ON t.id = r.target "
             "WHERE 1%s%s%s %s", tune_db_record_columns(db->version),
             f && f->by_workload ? " AND w.hash = ?1" : "", f && f->target ? " AND t.description = ?2" : "",
             f && f->ok_only ? " AND r.status = 'ok' AND r.median_s IS NOT NULL" : "", tail);
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, sql, &st);
    if (s) return s;
    char hash[17];
    if (f && f->by_workload) {
        tune_hex64(f->workload_hash, hash);
        sqlite3_bind_text(st, 1, hash, 16, SQLITE_TRANSIENT);
    }
    if (f && f->target) sqlite3_bind_text(st, 2, f->target, -1, SQLITE_TRANSIENT);
    *out = st;
    return KILN_OK;
}

kiln_status tune_db_best(kiln_ctx *ctx, tune_db *db, uint64_t workload_hash, const char *target,
                         tune_record *out, bool *found) {
    tune_filter f = {.by_workload = true, .workload_hash = workload_hash, .target = nz(target), .ok_only = true};
    sqlite3_stmt *st;
    kiln_status s = select_records(ctx, db, &f, "ORDER BY r.median_s, r.id LIMIT 1", &st);
    if (s) return s;
    int rc = sqlite3_step(st);
    tune_record r;
    if (rc == SQLITE_ROW) {
        s = tune_db_row_record(ctx, db, st, &r);
        if (!s) s = tune_record_copy(ctx, &r, out);
        if (!s) *found = true;
    } else if (rc == SQLITE_DONE) *found = false;
    else s = tune_db_sqlfail(ctx, db->h, db->path, rc, "looking up the best record");
    sqlite3_finalize(st);
    return s;
}

kiln_status tune_db_foreach(kiln_ctx *ctx, tune_db *db, const tune_filter *f, tune_record_fn fn, void *user) {
    sqlite3_stmt *st = NULL;
    kiln_status s = select_records(ctx, db, f, "ORDER BY r.id", &st);
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tune_record r;
        s = tune_db_row_record(ctx, db, st, &r);
        if (!s) s = fn(ctx, &r, user);
    }
    if (!s && rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "reading records");
    sqlite3_finalize(st);
    return s;
}

static kiln_status count_query(kiln_ctx *ctx, tune_db *db, const char *sql, const char *a, const char *b,
                               int64_t *out) {
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, sql, &st);
    if (s) return s;
    if (a) bind_text(st, 1, a);
    if (b) bind_text(st, 2, b);
    s = run(ctx, db, st, out, "counting records");
    sqlite3_finalize(st);
    return s;
}

kiln_status tune_db_count(kiln_ctx *ctx, tune_db *db, uint64_t workload_hash, const char *target, int64_t *out) {
    char hash[17];
    tune_hex64(workload_hash, hash);
    return count_query(ctx, db,
                       "SELECT count(*) FROM records r JOIN workloads w ON w.id = r.workload "
                       "JOIN targets t ON t.id = r.target WHERE w.hash = ?1 AND t.description = ?2",
                       hash, nz(target), out);
}
