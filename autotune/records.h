/*
** records.h — the tuner's records database: every measurement the tuner
** makes, kept in one SQLite file (WAL mode, so many tuning processes may
** write into one database at once).
**
** A record is keyed by everything that changes the generated code or its
** speed:
**   - the workload: tir_hash() of the kernel's compute DAG (stored as 16 hex
**     digits), with a canonical text of the kernel (tir_print) and its op
**     names for people reading the database;
**   - the target: a canonical description, one "key=value" line per
**     property, sorted by key (tune_target_*). For the CPU it holds the CPU
**     model, LLVM's triple, CPU name and feature string, the vector width,
**     the LLVM version and KILN_CODEGEN_VERSION; a GPU target adds its own
**     keys (device name, compute capability, driver, CUDA and NVRTC versions)
**     with no change to the database.
** A lookup matches the workload hash and the whole target description
** exactly; tune_db_best never falls back to a near match. A fallback is
** declared by the caller: tune_db_best_similar names the keys it waives.
**
** Records are data, never code. Opening a file checks that its schema is
** exactly kiln's (no triggers, views or anything else), with SQLite's
** trusted_schema off and extension loading off; a file that is not a kiln
** database, is corrupt, or comes from a newer kiln is refused with an error
** naming it. The trace and knob texts a lookup returns are untrusted text:
** the caller parses them (sch_trace_parse) and replays them only against
** the current workload (sch_lower), which validates them.
**
** Usage (a tuning process):
**   tune_db *db;
**   char target[TUNE_TARGET_MAX];
**   cg_cpu_host(ctx, &cpu);
**   tune_target_describe_cpu(ctx, &cpu, target, sizeof target);
**   tune_target_set(ctx, target, sizeof target, "runtime.threads", "8");
**   tune_db_open(ctx, "kiln.db", TUNE_DB_CREATE, &db);
**   tune_db_count(ctx, db, tir_hash(f), target, &n);  // trials so far
**   tune_record r;
**   tune_record_init(&r);                 // NaN times, "" strings
**   r.workload_hash = tir_hash(f), r.workload_desc = text, r.target = target;
**   r.trace = trace_text, r.knobs = knob_text, r.status = ..., r.median_s = ...;
**   tune_db_add_record(ctx, db, &r, NULL);
**   tune_db_best(ctx, db, tir_hash(f), target, &best, &found);
**   ... sch_trace_parse(ctx, best.trace, ...) ...; tune_record_clear(&best);
**   tune_db_close(db);
*/
#ifndef KILN_RECORDS_H
#define KILN_RECORDS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "codegen/cg_llvm.h"
#include "ir/tir.h"
#include "kiln/kiln.h"

/* The schema version this kiln writes (PRAGMA user_version). Older files are
** migrated when opened writable; newer ones are refused. */
#define TUNE_DB_SCHEMA_VERSION 2

/* The most bytes a target description takes, its NUL included. */
#define TUNE_TARGET_MAX 4096

/* ---- the target ---- */

/* The host CPU's description: cpu.model (from /proc/cpuinfo), llvm.triple,
** llvm.cpu, llvm.features, cpu.vector_bits, llvm.version (t->llvm_version,
** else the LLVM kiln was built with) and kiln.codegen. Canonical (sorted). */
kiln_status tune_target_describe_cpu(kiln_ctx *ctx, const cg_cpu_target *t, char *buf, size_t cap);

/* Canonicalizes a description given as "key=value" lines in any order:
** sorts them by key, drops empty lines; a line without '=', an empty or
** repeated key, a key with characters other than [A-Za-z0-9_.-], or a
** description that does not fit in cap is KILN_ERR_INVALID. buf may be in. */
kiln_status tune_target_canonical(kiln_ctx *ctx, const char *in, char *buf, size_t cap);

/* Sets `key` to `value` in a canonical description (replaced or added),
** keeping it canonical. For settings outside the target that change the
** speed of the code, e.g. the number of threads kernels run on:
**   tune_target_set(ctx, desc, sizeof desc, "runtime.threads", "8");
** A value may not hold a newline. */
kiln_status tune_target_set(kiln_ctx *ctx, char *desc, size_t cap, const char *key, const char *value);

/* The short key of a canonical description: 16 hex digits of its hash. */
void tune_target_key(const char *desc, char out[17]);

/* The value of `key` in a description into buf ("" when absent); false when
** the key is absent. */
bool tune_target_get(const char *desc, const char *key, char *buf, size_t cap);

/* ---- workloads ---- */

/* The text a workload is stored with: tir_print of f, for people reading
** the database (lookups use tir_hash). Free with kiln_free. */
kiln_status tune_workload_text(kiln_ctx *ctx, const tir_func *f, char **out);

/* ---- records ---- */

typedef enum tune_status {
    TUNE_STATUS_OK = 0,        /* measured and passed the correctness gate */
    TUNE_STATUS_WRONG,         /* failed the correctness gate */
    TUNE_STATUS_CRASH,         /* the candidate crashed its process */
    TUNE_STATUS_TIMEOUT,       /* did not finish in time */
    TUNE_STATUS_OOM,           /* ran out of memory */
    TUNE_STATUS_COMPILE_ERROR, /* did not compile */
    TUNE_STATUS_COUNT
} tune_status;

/* "ok", "wrong", "crash", "timeout", "oom", "compile_error". */
const char *tune_status_name(tune_status s);
/* false for an unknown name. */
bool tune_status_parse(const char *name, tune_status *out);

/* One measurement. The strings are borrowed when adding; a record filled by
** tune_db_best owns them (release with tune_record_clear); a record passed to
** a tune_db_foreach callback borrows them for the call only. */
typedef struct tune_record {
    uint64_t workload_hash;    /* tir_hash() of the kernel */
    const char *workload_desc; /* canonical text of the kernel (tir_print) */
    const char *workload_ops;  /* its op names, comma-separated ("" if unknown) */
    const char *target;        /* a canonical target description */
    const char *trace;         /* the schedule trace (sch_trace_print) */
    const char *knobs;         /* the knob point ("tile_i=4 tile_j=16 ...") */
    double median_s;           /* median time in seconds; NaN when not measured */
    double spread_s;           /* spread of the repeats in seconds; NaN when not measured */
    double compile_s;          /* compile time in seconds; NaN when not known */
    int n_repeats;             /* timed repeats behind the median (0 when not measured) */
    tune_status status;
    const char *error;         /* why it failed ("" when ok) */
    int64_t time;              /* when, unix seconds */
    const char *kiln_version;  /* KILN_VERSION_STRING of the measuring kiln */
    int64_t seed;              /* the search's seed */
    int64_t trial;             /* the trial number in its search (-1 when none) */
    int64_t id;                /* the row id (set by reads; ignored when adding) */
    void *owned_;              /* private: the block the strings live in */
} tune_record;

/* A record with every field empty: NaN times, trial -1, "" strings. */
void tune_record_init(tune_record *r);
/* Frees what a record filled by tune_db_best owns, then re-inits it. */
void tune_record_clear(tune_record *r);

/* ---- the database ---- */

typedef struct tune_db tune_db;

enum {
    TUNE_DB_CREATE = 1,   /* create the file when it does not exist */
    TUNE_DB_READONLY = 2, /* never write (no migration: an older file is read as it is) */
};

/* Opens (or with TUNE_DB_CREATE creates) a records database. Checks that
** it is a SQLite file of kiln's own schema and intact (PRAGMA quick_check),
** migrates an older schema in one transaction (unless read-only), and
** turns on WAL mode, a busy timeout and foreign keys. Errors name the file. */
kiln_status tune_db_open(kiln_ctx *ctx, const char *path, unsigned flags, tune_db **out);
void tune_db_close(tune_db *db); /* NULL is fine */
const char *tune_db_path(const tune_db *db);
int tune_db_version(const tune_db *db); /* the file's schema version */

/* Adds a record (and its workload and target when new; a workload already
** there keeps the text it was first stored with). A record whose
** content (every field but id) is already there is not added again: *added
** (may be NULL) says which. Invalid fields (an unknown status, an ok record
** without a finite non-negative median, a target that is not canonical)
** are KILN_ERR_INVALID. */
kiln_status tune_db_add_record(kiln_ctx *ctx, tune_db *db, const tune_record *r, bool *added);

/* The best record for exactly this key: status ok, the lowest median (the
** earliest among equals). *found is false (and *out untouched) when none. */
kiln_status tune_db_best(kiln_ctx *ctx, tune_db *db, uint64_t workload_hash, const char *target,
                         tune_record *out, bool *found);

/* A declared fallback: the best ok record of the workload on any target
** whose description equals `target` but for the keys in `ignore` (a
** NULL-terminated list, e.g. {"cpu.model", NULL}). The record's target
** says where it came from; the caller reports that it is not an exact match. */
kiln_status tune_db_best_similar(kiln_ctx *ctx, tune_db *db, uint64_t workload_hash, const char *target,
                                 const char *const *ignore, tune_record *out, bool *found);
/* Whether two canonical descriptions are equal but for the keys in ignore. */
bool tune_target_similar(const char *a, const char *b, const char *const *ignore);

/* How many records (of any status: every measured trial) the key has. */
kiln_status tune_db_count(kiln_ctx *ctx, tune_db *db, uint64_t workload_hash, const char *target,
                          int64_t *out);

/* Which records tune_db_foreach visits. */
typedef struct tune_filter {
    bool by_workload;
    uint64_t workload_hash;
    const char *target; /* NULL: every target */
    bool ok_only;
} tune_filter;

/* Calls fn on each matching record in row order; fn's nonzero status stops
** the walk and is returned. f may be NULL (every record). The record is
** borrowed for the call only. */
typedef kiln_status (*tune_record_fn)(kiln_ctx *ctx, const tune_record *r, void *user);
kiln_status tune_db_foreach(kiln_ctx *ctx, tune_db *db, const tune_filter *f, tune_record_fn fn,
                            void *user);

/* Counts for `kiln db stats`. */
typedef struct tune_db_stats {
    int64_t workloads, targets, records;
    int64_t by_status[TUNE_STATUS_COUNT];
    int64_t keys_with_best; /* workload/target pairs that have an ok record */
} tune_db_stats;
kiln_status tune_db_get_stats(kiln_ctx *ctx, tune_db *db, tune_db_stats *out);

/* One workload/target pair: its records and its best time. */
typedef struct tune_key_summary {
    uint64_t workload_hash;
    const char *workload_ops;
    const char *target;
    int64_t records, ok;
    double best_s; /* NaN when no ok record */
} tune_key_summary;
typedef kiln_status (*tune_key_fn)(kiln_ctx *ctx, const tune_key_summary *k, void *user);
/* Calls fn on each workload/target pair that has records, by workload
** hash then target; strings are borrowed for the call. */
kiln_status tune_db_foreach_key(kiln_ctx *ctx, tune_db *db, tune_key_fn fn, void *user);

/* Calls fn on each target description, in order, with its record count. */
typedef kiln_status (*tune_target_fn)(kiln_ctx *ctx, const char *target, int64_t records, void *user);
kiln_status tune_db_foreach_target(kiln_ctx *ctx, tune_db *db, tune_target_fn fn, void *user);

/* Deletes records: with drop_failed every record that is not ok; with
** keep_best > 0 the ok records beyond the best keep_best of each
** workload/target. Workloads and targets left without records go too.
** *removed (may be NULL) counts the records deleted. */
typedef struct tune_prune_opts {
    bool drop_failed;
    int keep_best;
} tune_prune_opts;
kiln_status tune_db_prune(kiln_ctx *ctx, tune_db *db, const tune_prune_opts *o, int64_t *removed);

/* Rewrites the file without the space deleted records left (SQLite's
** VACUUM); waits for other writers like a transaction. */
kiln_status tune_db_vacuum(kiln_ctx *ctx, tune_db *db);

/* ---- export, import, merge (records_io.c) ---- */

/* Writes every record as JSON lines (the format is documented in
** records_io.c); `name` names the output in errors. */
kiln_status tune_db_export(kiln_ctx *ctx, tune_db *db, FILE *out, const char *name);

/* Reads an export into the database in one transaction; records already
** there are skipped, so importing twice changes nothing. Errors name the
** file (`name`) and line. *added and *skipped may be NULL. */
kiln_status tune_db_import(kiln_ctx *ctx, tune_db *db, FILE *in, const char *name, int64_t *added,
                           int64_t *skipped);

/* Adds every record of the database file `other` (opened read-only) in one
** transaction, with the same idempotence. */
kiln_status tune_db_merge(kiln_ctx *ctx, tune_db *db, const char *other, int64_t *added,
                          int64_t *skipped);

#endif
