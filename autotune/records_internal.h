/*
** records_internal.h — what the records files share: the open database, SQL
** helpers that turn SQLite's errors into kiln's (naming the file), the
** schema and its migrations, row reading and hashing.
*/
#ifndef KILN_RECORDS_INTERNAL_H
#define KILN_RECORDS_INTERNAL_H

#include <sqlite3.h>

#include "autotune/records.h"

/* 'kiln' in ASCII: PRAGMA application_id of every kiln records database. */
#define TUNE_DB_APP_ID 0x6b696c6e

struct tune_db {
    sqlite3 *h;
    char *path;
    int version; /* the file's schema version */
    bool readonly;
    int txn_depth; /* tune_db_begin nesting: only the outermost one commits */
};

/* A SQLite failure as a kiln error: "PATH: WHAT: sqlite's message". */
kiln_status tune_db_sqlfail(kiln_ctx *ctx, sqlite3 *h, const char *path, int rc, const char *what);
kiln_status tune_db_exec(kiln_ctx *ctx, tune_db *db, const char *sql, const char *what);
kiln_status tune_db_prepare(kiln_ctx *ctx, tune_db *db, const char *sql, sqlite3_stmt **out);
/* Write transactions (BEGIN IMMEDIATE, so concurrent writers queue on the
** busy timeout instead of failing to upgrade a read lock); nested calls
** join the outermost. tune_db_end commits when s is KILN_OK, else rolls
** back, and returns s (or the commit's failure). */
kiln_status tune_db_begin(kiln_ctx *ctx, tune_db *db);
kiln_status tune_db_end(kiln_ctx *ctx, tune_db *db, kiln_status s);

/* SQLite connection settings for untrusted files: defensive mode, no
** trusted schema, no extensions, triggers or views, a busy timeout. */
kiln_status tune_db_harden(kiln_ctx *ctx, sqlite3 *h, const char *path);

/* ---- records_schema.c ---- */

/* Brings a database of schema version `from` (0: empty) to `to` inside the
** caller's transaction: the first schema, then each migration in turn. */
kiln_status tune_schema_apply(kiln_ctx *ctx, sqlite3 *h, const char *path, int from, int to);
/* Checks that sqlite_master holds exactly what kiln's schema of `version`
** creates: the same tables and indexes with the same SQL, nothing else. */
kiln_status tune_schema_check(kiln_ctx *ctx, sqlite3 *h, const char *path, int version);
/* For tests: creates a database file of an older schema version (no rows). */
kiln_status tune_db_create_version(kiln_ctx *ctx, const char *path, int version);

/* ---- records_rw.c ---- */

/* The SELECT list of a record (joined with its workload w and target t)
** for a file of schema `version`, in the order tune_db_row_record reads. */
const char *tune_db_record_columns(int version);
/* Reads the current row of a statement selecting tune_db_record_columns
** into r, whose strings borrow the statement's until the next step.
** Checks the values (a database is untrusted): KILN_ERR_PARSE naming the
** file and row. */
kiln_status tune_db_row_record(kiln_ctx *ctx, const tune_db *db, sqlite3_stmt *st, tune_record *r);
/* A deep copy of r into one block (r->owned_). */
kiln_status tune_record_copy(kiln_ctx *ctx, const tune_record *r, tune_record *out);

/* ---- records_json.c ---- */

/* The export format's version (its header line: {"kiln_records":1}). */
#define TUNE_EXPORT_FORMAT 1
/* Writes r as one line of JSON, its newline included. */
void tune_json_write_record(FILE *out, const tune_record *r);
/* Parses one line (no newline) into r, whose strings go to scratch (at least
** strlen(line) + 1 bytes). On failure, false with a message (and column) in err. */
bool tune_json_read_record(const char *line, char *scratch, tune_record *r, char *err, size_t err_cap);
bool tune_json_read_header(const char *line, char *scratch, int64_t *format, char *err, size_t err_cap);

/* ---- hashing (records_target.c) ---- */

uint64_t tune_hash_bytes(uint64_t h, const void *p, size_t n);
#define TUNE_HASH_SEED 0xcbf29ce484222325ull
/* The content hash that makes adding a record idempotent: every field but id. */
uint64_t tune_record_content_hash(const tune_record *r);
void tune_hex64(uint64_t v, char out[17]);
bool tune_parse_hex64(const char *s, uint64_t *out);

#endif
