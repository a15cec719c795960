/*
** records_admin.c — the database as a whole: its counts, and pruning.
*/
#include <math.h>
#include <string.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"

static kiln_status one_int(kiln_ctx *ctx, tune_db *db, const char *sql, int64_t *out) {
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, sql, &st);
    if (s) return s;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    else s = tune_db_sqlfail(ctx, db->h, db->path, rc, "counting");
    sqlite3_finalize(st);
    return s;
}

static kiln_status count_statuses(kiln_ctx *ctx, tune_db *db, tune_db_stats *st_out) {
    sqlite3_stmt *st = NULL;
    kiln_status s = tune_db_prepare(ctx, db, "SELECT status, count(*) FROM records GROUP BY status", &st);
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        tune_status k;
        if (!tune_status_parse(name, &k))
            s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: records with an unknown status '%s'", db->path,
                          name ? name : "(null)");
        else st_out->by_status[k] = sqlite3_column_int64(st, 1);
    }
    if (!s && rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "counting records by status");
    sqlite3_finalize(st);
    return s;
}

kiln_status tune_db_get_stats(kiln_ctx *ctx, tune_db *db, tune_db_stats *out) {
    tune_db_stats st;
    memset(&st, 0, sizeof st);
    kiln_status s = one_int(ctx, db, "SELECT count(*) FROM workloads", &st.workloads);
    if (!s) s = one_int(ctx, db, "SELECT count(*) FROM targets", &st.targets);
    if (!s) s = one_int(ctx, db, "SELECT count(*) FROM records", &st.records);
    if (!s)
        s = one_int(ctx, db,
                    "SELECT count(*) FROM (SELECT DISTINCT workload, target FROM records WHERE status = 'ok' "
                    "AND median_s IS NOT NULL)", &st.keys_with_best);
    if (!s) s = count_statuses(ctx, db, &st);
    if (!s) *out = st;
    return s;
}

static kiln_status key_row(kiln_ctx *ctx, tune_db *db, sqlite3_stmt *st, tune_key_summary *k) {
    const char *hash = (const char *)sqlite3_column_text(st, 0);
    if (!tune_parse_hex64(hash, &k->workload_hash))
        return kiln_fail(ctx, KILN_ERR_PARSE, "%s: a workload with a bad hash '%s'", db->path, hash ? hash : "");
    k->workload_ops = (const char *)sqlite3_column_text(st, 1);
    k->target = (const char *)sqlite3_column_text(st, 2);
    if (!k->workload_ops) k->workload_ops = "";
    if (!k->target) k->target = "";
    k->records = sqlite3_column_int64(st, 3);
    k->ok = sqlite3_column_int64(st, 4);
    k->best_s = sqlite3_column_type(st, 5) == SQLITE_NULL ? NAN : sqlite3_column_double(st, 5);
    return KILN_OK;
}

kiln_status tune_db_foreach_key(kiln_ctx *ctx, tune_db *db, tune_key_fn fn, void *user) {
    sqlite3_stmt *st = NULL;
    kiln_status s = tune_db_prepare(ctx, db,
                                    "SELECT w.hash, w.ops, t.description, count(*), "
                                    "sum(r.status = 'ok' AND r.median_s IS NOT NULL), "
                                    "min(CASE WHEN r.status = 'ok' THEN r.median_s END) "
                                    "FROM records r JOIN workloads w ON w.id = r.workload "
                                    "JOIN targets t ON t.id = r.target "
                                    "GROUP BY r.workload, r.target ORDER BY w.hash, t.description", &st);
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tune_key_summary k;
        s = key_row(ctx, db, st, &k);
        if (!s) s = fn(ctx, &k, user);
    }
    if (!s && rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "summarizing records");
    sqlite3_finalize(st);
    return s;
}

kiln_status tune_db_foreach_target(kiln_ctx *ctx, tune_db *db, tune_target_fn fn, void *user) {
    sqlite3_stmt *st = NULL;
    kiln_status s = tune_db_prepare(ctx, db,
                                    "SELECT t.description, (SELECT count(*) FROM records r WHERE r.target = t.id) "
                                    "FROM targets t ORDER BY t.description", &st);
    int rc = SQLITE_DONE;
    while (!s && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *d = (const char *)sqlite3_column_text(st, 0);
        s = fn(ctx, d ? d : "", sqlite3_column_int64(st, 1), user);
    }
    if (!s && rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "listing targets");
    sqlite3_finalize(st);
    return s;
}

/* Deletes with one statement; adds the rows it deleted to *n. */
static kiln_status delete_rows(kiln_ctx *ctx, tune_db *db, const char *sql, int keep, int64_t *n) {
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, sql, &st);
    if (s) return s;
    if (keep) sqlite3_bind_int(st, 1, keep);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) *n += sqlite3_changes(db->h);
    else s = tune_db_sqlfail(ctx, db->h, db->path, rc, "pruning");
    sqlite3_finalize(st);
    return s;
}

kiln_status tune_db_prune(kiln_ctx *ctx, tune_db *db, const tune_prune_opts *o, int64_t *removed) {
    if (o->keep_best < 0)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: pruning to keep %d records", db->path, o->keep_best);
    kiln_status s = tune_db_begin(ctx, db);
    if (s) return s;
    int64_t n = 0, orphans = 0;
    if (o->drop_failed) s = delete_rows(ctx, db, "DELETE FROM records WHERE status != 'ok'", 0, &n);
    if (!s && o->keep_best > 0)
        s = delete_rows(ctx, db,
                        "DELETE FROM records WHERE id IN (SELECT id FROM (SELECT id, row_number() OVER "
                        "(PARTITION BY workload, target ORDER BY median_s IS NULL, median_s, id) AS rank "
                        "FROM records WHERE status = 'ok') WHERE rank > ?1)",
                        o->keep_best, &n);
    if (!s)
        s = delete_rows(ctx, db, "DELETE FROM workloads WHERE id NOT IN (SELECT workload FROM records)", 0,
                        &orphans);
    if (!s)
        s = delete_rows(ctx, db, "DELETE FROM targets WHERE id NOT IN (SELECT target FROM records)", 0, &orphans);
    s = tune_db_end(ctx, db, s);
    if (!s && removed) *removed = n;
    return s;
}

kiln_status tune_db_vacuum(kiln_ctx *ctx, tune_db *db) {
    if (db->readonly) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: opened read-only, cannot vacuum", db->path);
    if (db->txn_depth) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: vacuum inside a transaction", db->path);
    kiln_status s = tune_db_exec(ctx, db, "VACUUM", "vacuuming");
    /* the rewritten pages sit in the WAL until a checkpoint moves them */
    if (!s) s = tune_db_exec(ctx, db, "PRAGMA wal_checkpoint(TRUNCATE)", "checkpointing");
    return s;
}
