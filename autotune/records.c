/*
** records.c — opening a records database: the checks that let kiln read a
** file from elsewhere without trusting it, creation and migration, and the
** SQL helpers the other records files use.
**
** Opening reads the header (application_id and user_version), then checks
** the schema against kiln's own before any other statement runs, so no
** trigger, view or odd default from a foreign file is ever executed (the
** connection also refuses them: trusted_schema off, triggers and views off,
** defensive mode). Creation and migration happen under BEGIN IMMEDIATE and
** re-read the header inside the transaction: two processes opening a new
** file at once create it once.
*/
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"
#include "ir/mem.h"

/* How long a writer waits for another process's transaction. Measurements
** take seconds; a commit milliseconds. */
#define BUSY_TIMEOUT_MS 60000

static kiln_status status_of(int rc) {
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return KILN_ERR_NOMEM;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_FORMAT: return KILN_ERR_PARSE;
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG: return KILN_ERR_INVALID;
    case SQLITE_INTERNAL:
    case SQLITE_MISUSE:
    case SQLITE_ERROR: return KILN_ERR_INTERNAL;
    default: return KILN_ERR_IO; /* busy, locked, readonly, full, cantopen, ioerr, ... */
    }
}

kiln_status tune_db_sqlfail(kiln_ctx *ctx, sqlite3 *h, const char *path, int rc, const char *what) {
    const char *msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
    return kiln_fail(ctx, status_of(rc), "%s: %s: %s", path, what, msg);
}

kiln_status tune_db_exec(kiln_ctx *ctx, tune_db *db, const char *sql, const char *what) {
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? KILN_OK : tune_db_sqlfail(ctx, db->h, db->path, rc, what);
}

kiln_status tune_db_prepare(kiln_ctx *ctx, tune_db *db, const char *sql, sqlite3_stmt **out) {
    int rc = sqlite3_prepare_v2(db->h, sql, -1, out, NULL);
    return rc == SQLITE_OK ? KILN_OK : tune_db_sqlfail(ctx, db->h, db->path, rc, "preparing a query");
}

kiln_status tune_db_begin(kiln_ctx *ctx, tune_db *db) {
    if (db->readonly)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: opened read-only, cannot write", db->path);
    if (db->txn_depth == 0) {
        kiln_status s = tune_db_exec(ctx, db, "BEGIN IMMEDIATE", "starting a transaction");
        if (s) return s;
    }
    db->txn_depth++;
    return KILN_OK;
}

kiln_status tune_db_end(kiln_ctx *ctx, tune_db *db, kiln_status s) {
    if (--db->txn_depth > 0) return s;
    if (s == KILN_OK) {
        s = tune_db_exec(ctx, db, "COMMIT", "committing");
        if (s == KILN_OK) return KILN_OK;
    }
    sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL); /* keeps the first error */
    return s;
}

kiln_status tune_db_harden(kiln_ctx *ctx, sqlite3 *h, const char *path) {
    static const int k_off[] = {SQLITE_DBCONFIG_TRUSTED_SCHEMA, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION,
                                SQLITE_DBCONFIG_ENABLE_TRIGGER, SQLITE_DBCONFIG_ENABLE_VIEW};
    int rc = sqlite3_db_config(h, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    for (size_t i = 0; rc == SQLITE_OK && i < sizeof k_off / sizeof k_off[0]; i++)
        rc = sqlite3_db_config(h, k_off[i], 0, (int *)NULL);
    if (rc == SQLITE_OK) rc = sqlite3_busy_timeout(h, BUSY_TIMEOUT_MS);
    if (rc == SQLITE_OK) rc = sqlite3_exec(h, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    return rc == SQLITE_OK ? KILN_OK : tune_db_sqlfail(ctx, h, path, rc, "configuring the connection");
}

static kiln_status pragma_int(kiln_ctx *ctx, tune_db *db, const char *sql, int64_t *out) {
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, sql, &st);
    if (s) return s;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) *out = sqlite3_column_int64(st, 0);
    else s = tune_db_sqlfail(ctx, db->h, db->path, rc, "reading the header");
    sqlite3_finalize(st);
    return s;
}

static kiln_status count_schema(kiln_ctx *ctx, tune_db *db, int64_t *n) {
    return pragma_int(ctx, db, "SELECT count(*) FROM sqlite_master", n);
}

/* Reads the header and says what the file is: 0 = empty (new), else its
** schema version, checked against kiln's. */
static kiln_status identify(kiln_ctx *ctx, tune_db *db, int *version) {
    int64_t app, ver, n;
    kiln_status s = pragma_int(ctx, db, "PRAGMA application_id", &app);
    if (!s) s = pragma_int(ctx, db, "PRAGMA user_version", &ver);
    if (!s) s = count_schema(ctx, db, &n);
    if (s == KILN_ERR_PARSE)
        return kiln_fail(ctx, s, "%s: %s (%s)", db->path,
                         (sqlite3_errcode(db->h) & 0xff) == SQLITE_CORRUPT ? "a damaged or truncated database"
                                                                          : "not a kiln records database",
                         sqlite3_errmsg(db->h));
    if (s) return s;
    if (app == 0 && ver == 0 && n == 0) {
        *version = 0;
        return KILN_OK;
    }
    if (app != TUNE_DB_APP_ID)
        return kiln_fail(ctx, KILN_ERR_PARSE,
                         "%s: not a kiln records database (a SQLite database of another program: "
                         "application_id %#llx)", db->path, (unsigned long long)app);
    if (ver > TUNE_DB_SCHEMA_VERSION)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED,
                         "%s: written by a newer kiln (records schema version %lld; this kiln reads "
                         "versions 1 to %d)", db->path, (long long)ver, TUNE_DB_SCHEMA_VERSION);
    if (ver < 1)
        return kiln_fail(ctx, KILN_ERR_PARSE, "%s: a kiln records database with a bad schema version %lld",
                         db->path, (long long)ver);
    s = tune_schema_check(ctx, db->h, db->path, (int)ver);
    if (s) return s;
    *version = (int)ver;
    return KILN_OK;
}

/* identify() on one snapshot: the header and sqlite_master are read in one
** read transaction, so a file another process is creating is seen either
** empty or complete. */
static kiln_status identify_snapshot(kiln_ctx *ctx, tune_db *db, int *version) {
    kiln_status s = tune_db_exec(ctx, db, "BEGIN", "starting a read");
    if (s) return s;
    s = identify(ctx, db, version);
    sqlite3_exec(db->h, s ? "ROLLBACK" : "COMMIT", NULL, NULL, NULL); /* a read: nothing to lose */
    return s;
}

/* Creates or migrates the file to the current schema; re-identifies it
** inside the transaction, since another process may have done it first. */
static kiln_status upgrade(kiln_ctx *ctx, tune_db *db) {
    kiln_status s = tune_db_begin(ctx, db);
    if (s) return s;
    int ver = 0;
    s = identify(ctx, db, &ver);
    if (!s && ver < TUNE_DB_SCHEMA_VERSION) {
        s = tune_schema_apply(ctx, db->h, db->path, ver, TUNE_DB_SCHEMA_VERSION);
        if (s) kiln_wrap(ctx, s, "%s: %s schema version %d", db->path,
                         ver ? "migrating from" : "creating", ver ? ver : TUNE_DB_SCHEMA_VERSION);
    }
    s = tune_db_end(ctx, db, s);
    if (!s) db->version = TUNE_DB_SCHEMA_VERSION;
    return s;
}

/* PRAGMA quick_check: a truncated or damaged file is refused at open, not
** in the middle of a tuning run. */
static kiln_status check_intact(kiln_ctx *ctx, tune_db *db) {
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, "PRAGMA quick_check(1)", &st);
    if (s) return s;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "checking the file");
    else {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (!r || strcmp(r, "ok") != 0)
            s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: the database is damaged: %s", db->path,
                          r ? r : "(no result)");
    }
    sqlite3_finalize(st);
    return s;
}

static kiln_status check_file(kiln_ctx *ctx, const char *path, unsigned flags) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno == ENOENT && (flags & TUNE_DB_CREATE) && !(flags & TUNE_DB_READONLY)) return KILN_OK;
        return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (!S_ISREG(sb.st_mode)) return kiln_fail(ctx, KILN_ERR_IO, "%s: not a regular file", path);
    return KILN_OK;
}

/* Turns on WAL mode unless it is on. Changing the journal mode does not
** wait on the busy handler: when processes open a new file at once, the
** change is retried until the busy timeout. */
static kiln_status set_wal(kiln_ctx *ctx, tune_db *db) {
    for (int waited_ms = 0;; waited_ms += 10) {
        sqlite3_stmt *st;
        kiln_status s = tune_db_prepare(ctx, db, "PRAGMA journal_mode", &st);
        if (s) return s;
        int rc = sqlite3_step(st);
        bool on = rc == SQLITE_ROW && !sqlite3_stricmp((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        if (!on && rc == SQLITE_ROW) rc = sqlite3_exec(db->h, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (on || rc == SQLITE_OK) return KILN_OK;
        if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= BUSY_TIMEOUT_MS)
            return tune_db_sqlfail(ctx, db->h, db->path, rc, "turning on WAL mode");
        sqlite3_sleep(10);
    }
}

static kiln_status open_checked(kiln_ctx *ctx, tune_db *db, unsigned flags) {
    int oflags = db->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    int rc = sqlite3_open_v2(db->path, &db->h, oflags | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) return tune_db_sqlfail(ctx, db->h, db->path, rc, "cannot open");
    sqlite3_extended_result_codes(db->h, 1);
    kiln_status s = tune_db_harden(ctx, db->h, db->path);
    int ver = 0;
    if (!s) s = identify_snapshot(ctx, db, &ver);
    if (s) return s;
    db->version = ver;
    if (db->readonly && ver == 0)
        return kiln_fail(ctx, KILN_ERR_PARSE, "%s: an empty file, not a kiln records database", db->path);
    /* with WAL, NORMAL cannot corrupt the file; a power cut may lose the
    ** last commits, which costs a few re-measurements */
    s = tune_db_exec(ctx, db, "PRAGMA synchronous=NORMAL", "setting the sync mode");
    /* a new file is kiln's: WAL before creating it saves a rollback journal;
    ** any other file only once it is known to be a kiln database */
    if (!s && !db->readonly && ver == 0) s = set_wal(ctx, db);
    if (!s && !db->readonly && ver < TUNE_DB_SCHEMA_VERSION) s = upgrade(ctx, db);
    if (!s) s = check_intact(ctx, db);
    if (!s && !db->readonly) s = set_wal(ctx, db);
    return s;
}

kiln_status tune_db_open(kiln_ctx *ctx, const char *path, unsigned flags, tune_db **out) {
    if (!path || !*path) return kiln_fail(ctx, KILN_ERR_INVALID, "tune_db_open: no file name");
    kiln_status s = check_file(ctx, path, flags);
    if (s) return s;
    tune_db *db = kiln_calloc(1, sizeof *db);
    if (!db || !(db->path = kiln_strdup(path))) {
        kiln_free(db);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory opening the records database", path);
    }
    db->readonly = (flags & TUNE_DB_READONLY) != 0;
    s = open_checked(ctx, db, flags);
    if (s) {
        tune_db_close(db);
        return s;
    }
    *out = db;
    return KILN_OK;
}

void tune_db_close(tune_db *db) {
    if (!db) return;
    sqlite3_close_v2(db->h); /* NULL is a no-op */
    kiln_free(db->path);
    kiln_free(db);
}

const char *tune_db_path(const tune_db *db) { return db->path; }
int tune_db_version(const tune_db *db) { return db->version; }
