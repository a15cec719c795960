/*
** records_schema.c — the records database's schema, its migrations, and the
** check that a file's schema is exactly kiln's.
**
** Every database, new or old, is built the same way: the version 1 schema,
** then the migrations to N+1 in turn. So a file of version N has exactly the
** sqlite_master of an empty database built that way, and the check compares
** the two row by row (type, name, table and SQL text): a foreign trigger,
** view, table or altered column is refused before anything reads the file.
**
** To change the schema: add a migration to k_migrations (SQL, and a C step
** when rows need rewriting), bump TUNE_DB_SCHEMA_VERSION, and let
** tune_db_record_columns read the new columns (and default them for older
** read-only files). Never edit an existing step: files in the wild were
** built by it.
*/
#include <string.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"
#include "ir/mem.h"

/* Version 1: workloads by tir_hash, targets by their whole description,
** records with a content hash that makes adding idempotent. */
static const char k_schema_v1[] =
    "CREATE TABLE workloads(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  hash TEXT NOT NULL UNIQUE,\n"
    "  description TEXT NOT NULL,\n"
    "  ops TEXT NOT NULL);\n"
    "CREATE TABLE targets(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  key TEXT NOT NULL,\n"
    "  description TEXT NOT NULL UNIQUE);\n"
    "CREATE INDEX targets_by_key ON targets(key);\n"
    "CREATE TABLE records(\n"
    "  id INTEGER PRIMARY KEY,\n"
    "  workload INTEGER NOT NULL REFERENCES workloads(id),\n"
    "  target INTEGER NOT NULL REFERENCES targets(id),\n"
    "  trace TEXT NOT NULL,\n"
    "  knobs TEXT NOT NULL,\n"
    "  median_s REAL,\n"
    "  spread_s REAL,\n"
    "  n_repeats INTEGER NOT NULL,\n"
    "  status TEXT NOT NULL CHECK(status IN ('ok','wrong','crash','timeout','oom','compile_error')),\n"
    "  error TEXT NOT NULL,\n"
    "  time INTEGER NOT NULL,\n"
    "  kiln_version TEXT NOT NULL,\n"
    "  content_hash TEXT NOT NULL UNIQUE);\n"
    "CREATE INDEX records_by_key ON records(workload, target);\n";

/* Version 2: the compile time, the search's seed and trial number, and an
** index for the best lookup. The content hash covers the new fields, so the
** rows' hashes are recomputed. */
static const char k_migrate_v2[] =
    "ALTER TABLE records ADD COLUMN compile_s REAL;\n"
    "ALTER TABLE records ADD COLUMN seed INTEGER NOT NULL DEFAULT 0;\n"
    "ALTER TABLE records ADD COLUMN trial INTEGER NOT NULL DEFAULT -1;\n"
    "CREATE INDEX records_best ON records(workload, target, status, median_s);\n";

static kiln_status rehash_records(kiln_ctx *ctx, tune_db *db);

typedef struct migration {
    const char *sql;
    kiln_status (*step)(kiln_ctx *ctx, tune_db *db); /* after the SQL; may be NULL */
} migration;

/* k_migrations[v] takes a database from version v to v + 1 (v = 0: create). */
static const migration k_migrations[TUNE_DB_SCHEMA_VERSION] = {
    {k_schema_v1, NULL},
    {k_migrate_v2, rehash_records},
};

kiln_status tune_schema_apply(kiln_ctx *ctx, sqlite3 *h, const char *path, int from, int to) {
    tune_db db = {.h = h, .path = (char *)path, .version = from};
    for (int v = from; v < to; v++) {
        kiln_status s = tune_db_exec(ctx, &db, k_migrations[v].sql, "applying the schema");
        db.version = v + 1;
        if (!s && k_migrations[v].step) s = k_migrations[v].step(ctx, &db);
        if (s) return s;
        char sql[96];
        snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d", TUNE_DB_APP_ID, v + 1);
        s = tune_db_exec(ctx, &db, sql, "setting the schema version");
        if (s) return s;
    }
    return KILN_OK;
}

/* Recomputes every record's content hash (after columns it covers were added). */
static kiln_status rehash_records(kiln_ctx *ctx, tune_db *db) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM records r JOIN workloads w ON w.id = r.workload "
             "JOIN targets t ON t.id = r.target", tune_db_record_columns(db->version));
    sqlite3_stmt *sel = NULL, *upd = NULL;
    kiln_status s = tune_db_prepare(ctx, db, sql, &sel);
    if (!s) s = tune_db_prepare(ctx, db, "UPDATE records SET content_hash = ?1 WHERE id = ?2", &upd);
    int rc;
    while (!s && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
        tune_record r;
        s = tune_db_row_record(ctx, db, sel, &r);
        if (s) break;
        char hex[17];
        tune_hex64(tune_record_content_hash(&r), hex);
        sqlite3_bind_text(upd, 1, hex, 16, SQLITE_TRANSIENT);
        sqlite3_bind_int64(upd, 2, r.id);
        rc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "rehashing records");
    }
    if (!s && rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "reading records");
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return s;
}

/* ---- the check ---- */

#define MAX_OBJECTS 64

typedef struct schema_obj {
    char *type, *name, *tbl, *sql; /* sql may be NULL (automatic indexes) */
} schema_obj;

typedef struct schema_list {
    int n;
    schema_obj o[MAX_OBJECTS];
} schema_list;

static void list_free(schema_list *l) {
    for (int i = 0; i < l->n; i++) {
        kiln_free(l->o[i].type);
        kiln_free(l->o[i].name);
        kiln_free(l->o[i].tbl);
        kiln_free(l->o[i].sql);
    }
    l->n = 0;
}

static char *dup_col(sqlite3_stmt *st, int i, bool *oom) {
    const char *t = (const char *)sqlite3_column_text(st, i);
    if (!t) return NULL;
    char *d = kiln_strdup(t);
    if (!d) *oom = true;
    return d;
}

/* Reads sqlite_master, at most MAX_OBJECTS rows (more is never kiln's). */
static kiln_status read_schema(kiln_ctx *ctx, sqlite3 *h, const char *path, schema_list *l) {
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(h, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) return tune_db_sqlfail(ctx, h, path, rc, "reading the schema");
    bool oom = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && l->n < MAX_OBJECTS && !oom) {
        schema_obj *o = &l->o[l->n++];
        o->type = dup_col(st, 0, &oom);
        o->name = dup_col(st, 1, &oom);
        o->tbl = dup_col(st, 2, &oom);
        o->sql = dup_col(st, 3, &oom);
        if (!o->type || !o->name || !o->tbl) oom = true;
    }
    sqlite3_finalize(st);
    if (oom) return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory reading the schema", path);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return tune_db_sqlfail(ctx, h, path, rc, "reading the schema");
    return KILN_OK;
}

static bool same(const char *a, const char *b) { return (!a && !b) || (a && b && !strcmp(a, b)); }

static const schema_obj *find(const schema_list *l, const schema_obj *o) {
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->o[i].type, o->type) && !strcmp(l->o[i].name, o->name)) return &l->o[i];
    return NULL;
}

static kiln_status compare(kiln_ctx *ctx, const char *path, int version, const schema_list *file,
                           const schema_list *ref) {
    for (int i = 0; i < file->n; i++) {
        const schema_obj *f = &file->o[i], *r = find(ref, f);
        if (!r)
            return kiln_fail(ctx, KILN_ERR_PARSE,
                             "%s: not kiln's records schema (version %d): unexpected %s '%s'", path,
                             version, f->type, f->name);
        if (!same(f->tbl, r->tbl) || !same(f->sql, r->sql))
            return kiln_fail(ctx, KILN_ERR_PARSE,
                             "%s: not kiln's records schema (version %d): %s '%s' differs", path,
                             version, f->type, f->name);
    }
    for (int i = 0; i < ref->n; i++)
        if (!find(file, &ref->o[i]))
            return kiln_fail(ctx, KILN_ERR_PARSE, "%s: not kiln's records schema (version %d): no %s '%s'",
                             path, version, ref->o[i].type, ref->o[i].name);
    return KILN_OK;
}

/* sqlite_master of an empty database built to `version`. */
static kiln_status reference_schema(kiln_ctx *ctx, const char *path, int version, schema_list *out) {
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(":memory:", &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, NULL);
    kiln_status s = rc == SQLITE_OK ? tune_db_harden(ctx, h, path)
                                    : tune_db_sqlfail(ctx, h, path, rc, "building the reference schema");
    if (!s) s = tune_schema_apply(ctx, h, path, 0, version);
    if (!s) s = read_schema(ctx, h, path, out);
    sqlite3_close_v2(h);
    return s;
}

kiln_status tune_schema_check(kiln_ctx *ctx, sqlite3 *h, const char *path, int version) {
    schema_list *file = kiln_calloc(1, sizeof *file), *ref = kiln_calloc(1, sizeof *ref);
    kiln_status s = file && ref ? KILN_OK
                                : kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory checking the schema", path);
    if (!s) s = read_schema(ctx, h, path, file);
    if (!s) s = reference_schema(ctx, path, version, ref);
    if (!s) s = compare(ctx, path, version, file, ref);
    if (file) list_free(file);
    if (ref) list_free(ref);
    kiln_free(file);
    kiln_free(ref);
    return s;
}

kiln_status tune_db_create_version(kiln_ctx *ctx, const char *path, int version) {
    if (version < 1 || version > TUNE_DB_SCHEMA_VERSION)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: no records schema version %d", path, version);
    sqlite3 *h = NULL;
    int rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    kiln_status s = rc == SQLITE_OK ? tune_db_harden(ctx, h, path) : tune_db_sqlfail(ctx, h, path, rc, "cannot open");
    if (!s) s = tune_schema_apply(ctx, h, path, 0, version);
    sqlite3_close_v2(h);
    return s;
}
