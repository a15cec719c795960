/*
** test_records.c — the tuner's records database: adding and looking up
** records, the key (each component changed in turn misses), target
** descriptions, migration from a version 1 file, refusal of corrupt and
** foreign files (each naming the file), idempotent export/import and merge,
** pruning, concurrent writers in forked processes, and allocation failures.
*/
#define _GNU_SOURCE
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "autotune/records.h"
#include "autotune/records_internal.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/mem.h"

static kiln_ctx *g_ctx;
static char g_dir[64];
static char g_target[TUNE_TARGET_MAX];

static const char *path_of(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

/* A fresh file name: the file and its WAL side files removed. */
static const char *fresh(const char *name) {
    const char *p = path_of(name);
    char side[300];
    unlink(p);
    snprintf(side, sizeof side, "%s-wal", p), unlink(side);
    snprintf(side, sizeof side, "%s-shm", p), unlink(side);
    return p;
}

static bool msg_has(const char *s) { return strstr(kiln_errmsg(g_ctx), s) != NULL; }

static tune_record make(uint64_t hash, tune_status st, double median, int64_t trial) {
    tune_record r;
    tune_record_init(&r);
    r.workload_hash = hash;
    r.workload_desc = "C[i, j] = sum(k) (A[i, k] * B[k, j])";
    r.workload_ops = "MatMul";
    r.target = g_target;
    r.trace = "split C.i 4\nvectorize C.j.1";
    r.knobs = "tile_i=4 tile_j=16";
    r.status = st;
    if (st == TUNE_STATUS_OK) r.median_s = median, r.spread_s = median / 100, r.n_repeats = 10;
    else r.error = "it went wrong";
    r.time = 1700000000 + trial;
    r.kiln_version = KILN_VERSION_STRING;
    r.seed = 7;
    r.trial = trial;
    return r;
}

static tune_db *open_db(const char *path, unsigned flags) {
    tune_db *db = NULL;
    kiln_status s = tune_db_open(g_ctx, path, flags, &db);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return db;
}

static void add(tune_db *db, tune_record r, bool expect_added) {
    bool added = !expect_added;
    kiln_status s = tune_db_add_record(g_ctx, db, &r, &added);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(added == expect_added);
}

static int64_t count(tune_db *db, uint64_t hash, const char *target) {
    int64_t n = -1;
    CHECK(tune_db_count(g_ctx, db, hash, target, &n) == KILN_OK);
    return n;
}

/* ---- targets ---- */

static void test_target_describe(void) {
    cg_cpu_target t;
    CHECK(cg_cpu_host(g_ctx, &t) == KILN_OK);
    char d[TUNE_TARGET_MAX], v[2048], again[TUNE_TARGET_MAX];
    CHECK_MSG(tune_target_describe_cpu(g_ctx, &t, d, sizeof d) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(tune_target_get(d, "kind", v, sizeof v) && !strcmp(v, "cpu"));
    CHECK(tune_target_get(d, "llvm.cpu", v, sizeof v) && !strcmp(v, t.cpu));
    CHECK(tune_target_get(d, "llvm.features", v, sizeof v) && !strcmp(v, t.features));
    CHECK(tune_target_get(d, "llvm.version", v, sizeof v) && !strcmp(v, t.llvm_version));
    CHECK(tune_target_get(d, "cpu.model", v, sizeof v) && v[0]);
    CHECK(tune_target_get(d, "kiln.codegen", v, sizeof v) && atoi(v) == KILN_CODEGEN_VERSION);
    CHECK(!tune_target_get(d, "nosuch", v, sizeof v) && v[0] == '\0');
    CHECK(tune_target_canonical(g_ctx, d, again, sizeof again) == KILN_OK && !strcmp(again, d));
    char small[16];
    CHECK(tune_target_describe_cpu(g_ctx, &t, small, sizeof small) == KILN_ERR_INVALID);
}

static void test_target_canonical(void) {
    char b[256];
    CHECK(tune_target_canonical(g_ctx, "z=1\n\na=2\nm.x=3", b, sizeof b) == KILN_OK);
    CHECK(!strcmp(b, "a=2\nm.x=3\nz=1\n"));
    CHECK(tune_target_canonical(g_ctx, "gpu.name=H100\ncuda=12.4\n", b, sizeof b) == KILN_OK);
    CHECK(!strcmp(b, "cuda=12.4\ngpu.name=H100\n"));
    CHECK(tune_target_canonical(g_ctx, "a=1\nnoequals\n", b, sizeof b) == KILN_ERR_INVALID && msg_has("noequals"));
    CHECK(tune_target_canonical(g_ctx, "a=1\na=2\n", b, sizeof b) == KILN_ERR_INVALID && msg_has("twice"));
    CHECK(tune_target_canonical(g_ctx, "a b=1\n", b, sizeof b) == KILN_ERR_INVALID);
    CHECK(tune_target_canonical(g_ctx, "=1\n", b, sizeof b) == KILN_ERR_INVALID);
    CHECK(tune_target_canonical(g_ctx, "", b, sizeof b) == KILN_ERR_INVALID);
    CHECK(tune_target_canonical(g_ctx, "a=1\n", b, 4) == KILN_ERR_INVALID);
    CHECK(tune_target_canonical(g_ctx, "kind=cpu\nllvm.cpu=x\n", b, sizeof b) == KILN_OK);
    CHECK(tune_target_set(g_ctx, b, sizeof b, "runtime.threads", "8") == KILN_OK);
    CHECK(!strcmp(b, "kind=cpu\nllvm.cpu=x\nruntime.threads=8\n"));
    CHECK(tune_target_set(g_ctx, b, sizeof b, "llvm.cpu", "znver4") == KILN_OK);
    CHECK(!strcmp(b, "kind=cpu\nllvm.cpu=znver4\nruntime.threads=8\n"));
    CHECK(tune_target_set(g_ctx, b, sizeof b, "a", "x\ny") == KILN_ERR_INVALID);
    CHECK(tune_target_set(g_ctx, b, sizeof b, "bad key", "1") == KILN_ERR_INVALID);
    CHECK(!strcmp(b, "kind=cpu\nllvm.cpu=znver4\nruntime.threads=8\n")); /* untouched on failure */
    char k1[17], k2[17];
    tune_target_key("a=1\n", k1), tune_target_key("a=2\n", k2);
    CHECK(strlen(k1) == 16 && strcmp(k1, k2) != 0);
}

/* ---- workloads ---- */

/* B[i] = A[i] * 2 over n elements */
static tir_func *scale(int64_t n) {
    tir_func *f = tir_func_new("scale");
    tir_tensor *A = tir_placeholder(f, "A", KILN_F32, 1, (int64_t[]){n}, NULL);
    tir_stage *B = tir_stage_new(f, "B", KILN_F32, 1, (int64_t[]){n}, 0);
    ex_expr *i = ex_varref(&f->eb, B->axes[0]);
    B->body = ex_mul(&f->eb, ex_load_tensor(&f->eb, A, &i), ex_const_float(&f->eb, KILN_F32, 2));
    CHECK(tir_mark_output(f, B->out));
    return f;
}

static void test_workload(void) {
    tir_func *f = scale(16), *g = scale(32);
    char *text = NULL;
    CHECK(tune_workload_text(g_ctx, f, &text) == KILN_OK && text && strstr(text, "B[") && strstr(text, "A["));
    tune_db *db = open_db(fresh("workload.db"), TUNE_DB_CREATE);
    if (db && text) {
        tune_record r = make(tir_hash(f), TUNE_STATUS_OK, 1e-6, 1), best;
        r.workload_desc = text;
        add(db, r, true);
        bool found = false;
        CHECK(tune_db_best(g_ctx, db, tir_hash(f), g_target, &best, &found) == KILN_OK && found);
        if (found) CHECK(!strcmp(best.workload_desc, text));
        tune_record_clear(&best);
        CHECK(tune_db_best(g_ctx, db, tir_hash(g), g_target, &best, &found) == KILN_OK && !found);
    }
    tune_db_close(db);
    kiln_free(text);
    tir_func_free(f);
    tir_func_free(g);
}

/* ---- records ---- */

static void test_add_best_count(void) {
    tune_db *db = open_db(fresh("basic.db"), TUNE_DB_CREATE);
    if (!db) return;
    CHECK(tune_db_version(db) == TUNE_DB_SCHEMA_VERSION);
    tune_record best;
    tune_record_init(&best);
    bool found = true;
    CHECK(tune_db_best(g_ctx, db, 42, g_target, &best, &found) == KILN_OK && !found);
    add(db, make(42, TUNE_STATUS_OK, 3e-3, 1), true);
    add(db, make(42, TUNE_STATUS_OK, 1e-3, 2), true);
    add(db, make(42, TUNE_STATUS_OK, 2e-3, 3), true);
    add(db, make(42, TUNE_STATUS_WRONG, NAN, 4), true);
    add(db, make(42, TUNE_STATUS_CRASH, NAN, 5), true);
    tune_record fast_wrong = make(42, TUNE_STATUS_WRONG, NAN, 6);
    fast_wrong.median_s = 1e-6; /* timed, but failed the gate: never the best */
    add(db, fast_wrong, true);
    add(db, make(42, TUNE_STATUS_OK, 1e-3, 2), false); /* the same content again */
    add(db, make(43, TUNE_STATUS_OK, 5e-4, 1), true);
    CHECK(count(db, 42, g_target) == 6);
    CHECK(count(db, 43, g_target) == 1);
    CHECK(count(db, 44, g_target) == 0);
    CHECK(tune_db_best(g_ctx, db, 42, g_target, &best, &found) == KILN_OK && found);
    CHECK(best.median_s == 1e-3 && best.trial == 2 && best.status == TUNE_STATUS_OK);
    CHECK(!strcmp(best.trace, "split C.i 4\nvectorize C.j.1") && !strcmp(best.target, g_target));
    CHECK(!strcmp(best.knobs, "tile_i=4 tile_j=16") && best.n_repeats == 10 && best.seed == 7);
    CHECK(isnan(best.compile_s) && best.workload_hash == 42 && !strcmp(best.workload_ops, "MatMul"));
    tune_record_clear(&best);
    tune_db_stats st;
    CHECK(tune_db_get_stats(g_ctx, db, &st) == KILN_OK);
    CHECK(st.workloads == 2 && st.targets == 1 && st.records == 7 && st.keys_with_best == 2);
    CHECK(st.by_status[TUNE_STATUS_OK] == 4 && st.by_status[TUNE_STATUS_WRONG] == 2 &&
          st.by_status[TUNE_STATUS_CRASH] == 1 && st.by_status[TUNE_STATUS_OOM] == 0);
    tune_db_close(db);
}

static kiln_status count_cb(kiln_ctx *ctx, const tune_record *r, void *user) {
    ++*(int *)user;
    return r->trial == 99 ? KILN_ERR_MISMATCH : KILN_OK;
}

static void test_foreach_and_invalid(void) {
    tune_db *db = open_db(fresh("each.db"), TUNE_DB_CREATE);
    if (!db) return;
    for (int i = 0; i < 5; i++)
        add(db, make(1 + (uint64_t)(i % 2), i < 3 ? TUNE_STATUS_OK : TUNE_STATUS_TIMEOUT, 1e-3 * (i + 1), i), true);
    int n = 0;
    CHECK(tune_db_foreach(g_ctx, db, NULL, count_cb, &n) == KILN_OK && n == 5);
    tune_filter f = {.by_workload = true, .workload_hash = 1};
    n = 0;
    CHECK(tune_db_foreach(g_ctx, db, &f, count_cb, &n) == KILN_OK && n == 3);
    f.ok_only = true, n = 0;
    CHECK(tune_db_foreach(g_ctx, db, &f, count_cb, &n) == KILN_OK && n == 2);
    add(db, make(1, TUNE_STATUS_OK, 1, 99), true);
    n = 0;
    CHECK(tune_db_foreach(g_ctx, db, NULL, count_cb, &n) == KILN_ERR_MISMATCH && n == 6);
    /* invalid records are refused before anything is written */
    tune_record r = make(1, TUNE_STATUS_OK, NAN, 50);
    CHECK(tune_db_add_record(g_ctx, db, &r, NULL) == KILN_ERR_INVALID && msg_has("median"));
    r = make(1, TUNE_STATUS_OK, -1, 50);
    CHECK(tune_db_add_record(g_ctx, db, &r, NULL) == KILN_ERR_INVALID);
    r = make(1, TUNE_STATUS_OK, 1, 50);
    r.target = "b=1\na=2\n";
    CHECK(tune_db_add_record(g_ctx, db, &r, NULL) == KILN_ERR_INVALID && msg_has("canonical"));
    r.target = g_target, r.status = TUNE_STATUS_COUNT;
    CHECK(tune_db_add_record(g_ctx, db, &r, NULL) == KILN_ERR_INVALID && msg_has("status"));
    CHECK(count(db, 1, g_target) == 4);
    tune_db_close(db);
}

/* g_target with the value of `key` changed (or the key added). */
static void with_changed(const char *key, char *out) {
    char v[2048], nv[2100];
    tune_target_get(g_target, key, v, sizeof v);
    snprintf(nv, sizeof nv, "%s+changed", v);
    memcpy(out, g_target, sizeof g_target);
    CHECK(tune_target_set(g_ctx, out, TUNE_TARGET_MAX, key, nv) == KILN_OK);
    CHECK(strcmp(out, g_target) != 0);
}

static void test_key_misses(void) {
    tune_db *db = open_db(fresh("key.db"), TUNE_DB_CREATE);
    if (!db) return;
    add(db, make(0x8000000000000001ull, TUNE_STATUS_OK, 1e-3, 1), true); /* the top bit: no sign trouble */
    tune_record r;
    bool found = false;
    CHECK(tune_db_best(g_ctx, db, 0x8000000000000001ull, g_target, &r, &found) == KILN_OK && found);
    if (found) CHECK(r.workload_hash == 0x8000000000000001ull);
    tune_record_clear(&r);
    CHECK(tune_db_best(g_ctx, db, 0x8000000000000002ull, g_target, &r, &found) == KILN_OK && !found);
    CHECK(tune_db_best(g_ctx, db, 1, g_target, &r, &found) == KILN_OK && !found);
    static const char *const keys[] = {"kind", "cpu.model", "cpu.vector_bits", "llvm.triple", "llvm.cpu",
                                       "llvm.features", "llvm.version", "kiln.codegen"};
    char changed[TUNE_TARGET_MAX];
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        char v[2048];
        CHECK_MSG(tune_target_get(g_target, keys[i], v, sizeof v), "the CPU target lacks %s", keys[i]);
        with_changed(keys[i], changed);
        found = true;
        CHECK(tune_db_best(g_ctx, db, 0x8000000000000001ull, changed, &r, &found) == KILN_OK);
        CHECK_MSG(!found, "a lookup with %s changed found a record", keys[i]);
        CHECK(count(db, 0x8000000000000001ull, changed) == 0);
    }
    /* the declared fallback waives named keys only */
    static const char *const waive_model[] = {"cpu.model", NULL};
    with_changed("cpu.model", changed);
    CHECK(tune_db_best_similar(g_ctx, db, 0x8000000000000001ull, changed, waive_model, &r, &found) == KILN_OK);
    CHECK(found && !strcmp(r.target, g_target)); /* the record says where it came from */
    tune_record_clear(&r);
    with_changed("llvm.version", changed);
    CHECK(tune_db_best_similar(g_ctx, db, 0x8000000000000001ull, changed, waive_model, &r, &found) == KILN_OK &&
          !found);
    CHECK(tune_db_best_similar(g_ctx, db, 0x8000000000000002ull, g_target, waive_model, &r, &found) == KILN_OK &&
          !found);
    CHECK(tune_target_similar("a=1\nb=2\n", "a=1\nb=3\n", (const char *const[]){"b", NULL}));
    CHECK(tune_target_similar("a=1\nb=2\n", "a=1\n", (const char *const[]){"b", NULL}));
    CHECK(!tune_target_similar("a=1\nb=2\n", "a=1\n", NULL));
    CHECK(!tune_target_similar("a=1\nb=2\n", "a=2\nb=2\n", (const char *const[]){"b", NULL}));
    /* a GPU target is another key, no schema change */
    with_changed("gpu.name", changed);
    CHECK(tune_db_best(g_ctx, db, 0x8000000000000001ull, changed, &r, &found) == KILN_OK && !found);
    tune_record g = make(0x8000000000000001ull, TUNE_STATUS_OK, 5e-4, 2);
    g.target = changed;
    add(db, g, true);
    CHECK(tune_db_best(g_ctx, db, 0x8000000000000001ull, changed, &r, &found) == KILN_OK && found);
    if (found) CHECK(r.median_s == 5e-4);
    tune_record_clear(&r);
    CHECK(tune_db_best(g_ctx, db, 0x8000000000000001ull, g_target, &r, &found) == KILN_OK && found);
    if (found) CHECK(r.median_s == 1e-3);
    tune_record_clear(&r);
    tune_db_close(db);
}

/* ---- schema versions ---- */

static bool raw_exec(const char *path, const char *sql) {
    sqlite3 *h = NULL;
    bool ok = sqlite3_open(path, &h) == SQLITE_OK && sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK;
    if (!ok) fprintf(stderr, "raw_exec: %s\n", sqlite3_errmsg(h));
    sqlite3_close(h);
    return ok;
}

static void test_migrate_v1(void) {
    const char *p = fresh("v1.db");
    CHECK(tune_db_create_version(g_ctx, p, 1) == KILN_OK);
    char sql[TUNE_TARGET_MAX + 1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO workloads(id, hash, description, ops) VALUES(1, '00000000000000aa', 'desc', 'Relu');"
             "INSERT INTO targets(id, key, description) VALUES(1, 'k', '%s');"
             "INSERT INTO records(workload, target, trace, knobs, median_s, spread_s, n_repeats, status, error, "
             "time, kiln_version, content_hash) VALUES(1, 1, 'tr', 'kn', 0.5, 0.01, 5, 'ok', '', 1600000000, "
             "'0.0.9', 'old1');"
             "INSERT INTO records(workload, target, trace, knobs, median_s, spread_s, n_repeats, status, error, "
             "time, kiln_version, content_hash) VALUES(1, 1, 'tr2', 'kn2', NULL, NULL, 0, 'timeout', 'slow', "
             "1600000001, '0.0.9', 'old2');",
             g_target);
    CHECK(raw_exec(p, sql));
    /* read-only: read as version 1, not migrated */
    tune_db *db = open_db(p, TUNE_DB_READONLY);
    tune_record r;
    bool found = false;
    if (db) {
        CHECK(tune_db_version(db) == 1);
        CHECK(tune_db_best(g_ctx, db, 0xaa, g_target, &r, &found) == KILN_OK && found);
        if (found) CHECK(r.median_s == 0.5 && r.seed == 0 && r.trial == -1 && isnan(r.compile_s));
        tune_record_clear(&r);
        tune_record w = make(1, TUNE_STATUS_OK, 1, 1);
        CHECK(tune_db_add_record(g_ctx, db, &w, NULL) == KILN_ERR_INVALID && msg_has("read-only"));
        tune_db_close(db);
    }
    db = open_db(p, 0);
    if (!db) return;
    CHECK(tune_db_version(db) == TUNE_DB_SCHEMA_VERSION);
    CHECK(count(db, 0xaa, g_target) == 2);
    CHECK(tune_db_best(g_ctx, db, 0xaa, g_target, &r, &found) == KILN_OK && found);
    if (found) CHECK(r.median_s == 0.5 && !strcmp(r.trace, "tr") && !strcmp(r.kiln_version, "0.0.9"));
    /* the migration recomputed the content hashes: the same record is not added twice */
    bool added = true;
    CHECK(tune_db_add_record(g_ctx, db, &r, &added) == KILN_OK && !added);
    tune_record_clear(&r);
    tune_db_close(db);
    db = open_db(p, TUNE_DB_READONLY); /* now a current file */
    if (db) CHECK(tune_db_version(db) == TUNE_DB_SCHEMA_VERSION);
    tune_db_close(db);
}

/* A migration that fails half way leaves the file as it was: a row the
** rehash step refuses (a bad workload hash) after the columns were added. */
static void test_migrate_atomic(void) {
    const char *p = fresh("v1bad.db");
    CHECK(tune_db_create_version(g_ctx, p, 1) == KILN_OK);
    CHECK(raw_exec(p, "INSERT INTO workloads(id, hash, description, ops) VALUES(1, 'not hex', '', '');"
                      "INSERT INTO targets(id, key, description) VALUES(1, 'k', 'kind=cpu\n');"
                      "INSERT INTO records(workload, target, trace, knobs, median_s, spread_s, n_repeats, status, "
                      "error, time, kiln_version, content_hash) VALUES(1, 1, '', '', 1, 0, 1, 'ok', '', 1, '', 'h')"));
    tune_db *db = NULL;
    CHECK(tune_db_open(g_ctx, p, 0, &db) == KILN_ERR_PARSE && db == NULL);
    CHECK(msg_has(p) && msg_has("migrating from schema version 1") && msg_has("bad workload hash"));
    db = open_db(p, TUNE_DB_READONLY); /* still a valid version 1 file */
    if (db) CHECK(tune_db_version(db) == 1);
    tune_db_close(db);
}

static void test_newer_schema(void) {
    const char *p = fresh("newer.db");
    tune_db_close(open_db(p, TUNE_DB_CREATE));
    CHECK(raw_exec(p, "PRAGMA user_version=99"));
    tune_db *db = NULL;
    CHECK(tune_db_open(g_ctx, p, 0, &db) == KILN_ERR_UNSUPPORTED && db == NULL);
    CHECK(msg_has(p) && msg_has("newer kiln") && msg_has("99"));
    CHECK(tune_db_open(g_ctx, p, TUNE_DB_READONLY, &db) == KILN_ERR_UNSUPPORTED && msg_has("newer kiln"));
}

/* ---- corrupt and foreign files ---- */

static void expect_refused(const char *p, unsigned flags, const char *what) {
    tune_db *db = NULL;
    kiln_status s = tune_db_open(g_ctx, p, flags, &db);
    CHECK_MSG(s != KILN_OK && db == NULL, "%s was opened", p);
    CHECK_MSG(msg_has(p), "the message does not name the file: %s", kiln_errmsg(g_ctx));
    CHECK_MSG(msg_has(what), "expected '%s' in: %s", what, kiln_errmsg(g_ctx));
    tune_db_close(db);
}

static void write_bytes(const char *p, const void *b, size_t n) {
    FILE *f = fopen(p, "wb");
    CHECK(f && fwrite(b, 1, n, f) == n);
    if (f) fclose(f);
}

static void test_corrupt_files(void) {
    unsigned char junk[8192];
    srand(5);
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (unsigned char)rand();
    const char *p = fresh("random.db");
    write_bytes(p, junk, sizeof junk);
    expect_refused(p, 0, "not a kiln records database");
    expect_refused(p, TUNE_DB_READONLY, "not a kiln records database");

    /* a real database cut in half */
    p = fresh("truncated.db");
    tune_db *db = open_db(p, TUNE_DB_CREATE);
    if (!db) return;
    char trace[600];
    memset(trace, 'x', sizeof trace - 1), trace[sizeof trace - 1] = '\0';
    for (int i = 0; i < 200; i++) {
        tune_record r = make((uint64_t)i, TUNE_STATUS_OK, 1e-3, i);
        r.trace = trace;
        add(db, r, true);
    }
    tune_db_close(db); /* the last connection checkpoints the WAL into the file */
    FILE *f = fopen(p, "rb");
    long size = 0;
    if (f) fseek(f, 0, SEEK_END), size = ftell(f), fclose(f);
    CHECK(size > 65536);
    CHECK(truncate(p, size / 2) == 0);
    expect_refused(p, 0, "damaged or truncated database");

    p = fresh("other.db");
    CHECK(raw_exec(p, "CREATE TABLE songs(title TEXT); INSERT INTO songs VALUES('x')"));
    expect_refused(p, 0, "another program");
    CHECK(raw_exec(p, "PRAGMA application_id=12345"));
    expect_refused(p, TUNE_DB_READONLY, "another program");

    p = fresh("empty.db");
    write_bytes(p, "", 0);
    expect_refused(p, TUNE_DB_READONLY, "empty");
    expect_refused(path_of("nonexistent.db"), 0, "nonexistent.db");
    expect_refused(path_of("nonexistent.db"), TUNE_DB_READONLY | TUNE_DB_CREATE, "nonexistent.db");
}

/* A kiln database with something added to its schema is refused before
** anything runs: the trigger would fire on the first insert. */
static void test_foreign_schema(void) {
    static const struct {
        const char *sql, *what;
    } k_cases[] = {
        {"CREATE TRIGGER evil AFTER INSERT ON records BEGIN DELETE FROM workloads; END", "unexpected trigger 'evil'"},
        {"CREATE VIEW v AS SELECT * FROM records", "unexpected view 'v'"},
        {"CREATE TABLE extra(x)", "unexpected table 'extra'"},
        {"CREATE INDEX extra_idx ON records(trace)", "unexpected index 'extra_idx'"},
        {"DROP INDEX records_best", "no index 'records_best'"},
        {"ALTER TABLE records ADD COLUMN sneaky TEXT DEFAULT 'x'", "table 'records' differs"},
    };
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        const char *p = fresh("foreign.db");
        tune_db_close(open_db(p, TUNE_DB_CREATE));
        CHECK(raw_exec(p, k_cases[i].sql));
        expect_refused(p, 0, k_cases[i].what);
        expect_refused(p, TUNE_DB_READONLY, k_cases[i].what);
    }
}

/* ---- export, import, merge, prune ---- */

static void fill(tune_db *db, uint64_t base, int n) {
    for (int i = 0; i < n; i++) {
        tune_record r = make(base + (uint64_t)(i % 3), i % 4 == 3 ? TUNE_STATUS_OOM : TUNE_STATUS_OK,
                             1e-3 / (i + 1), i);
        r.error = i % 4 == 3 ? "quote \" backslash \\ newline \n tab \t ctrl \x01 é" : "";
        r.compile_s = i % 2 ? 0.25 : NAN;
        add(db, r, true);
    }
}

static char *export_text(tune_db *db) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    CHECK(f && tune_db_export(g_ctx, db, f, "memory") == KILN_OK);
    if (f) fclose(f);
    return buf;
}

static kiln_status import_text(tune_db *db, const char *text, int64_t *added, int64_t *skipped) {
    FILE *f = fmemopen((void *)text, strlen(text), "r");
    kiln_status s = tune_db_import(g_ctx, db, f, "in.jsonl", added, skipped);
    fclose(f);
    return s;
}

static void test_export_import(void) {
    tune_db *a = open_db(fresh("exp_a.db"), TUNE_DB_CREATE), *b = open_db(fresh("exp_b.db"), TUNE_DB_CREATE);
    if (!a || !b) return;
    fill(a, 100, 12);
    char *text = export_text(a);
    CHECK(text && !strncmp(text, "{\"kiln_records\":1}\n", 19));
    int64_t added = -1, skipped = -1;
    CHECK_MSG(import_text(b, text, &added, &skipped) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(added == 12 && skipped == 0);
    CHECK(import_text(b, text, &added, &skipped) == KILN_OK && added == 0 && skipped == 12);
    char *again = export_text(b);
    CHECK(again && text && !strcmp(again, text)); /* a round trip is exact */
    free(again);
    free(text);
    tune_db_close(a);
    tune_db_close(b);
}

static void test_import_errors(void) {
    tune_db *db = open_db(fresh("imp_err.db"), TUNE_DB_CREATE);
    if (!db) return;
    fill(db, 200, 2);
    char *good = export_text(db);
    if (!good) return;
    char *second = strchr(good, '\n') + 1; /* the first record line */
    char *end = strchr(second, '\n');
    char rec[4096];
    snprintf(rec, sizeof rec, "%.*s", (int)(end - second), second);
    static const struct {
        const char *from, *to, *what;
    } k_edits[] = {
        {"\"status\":\"ok\"", "\"status\":\"fine\"", "unknown status"},
        {"\"seed\":7", "\"seed\":7,\"extra\":1", "unknown key 'extra'"},
        {",\"seed\":7", "", "missing key"},
        {"\"trial\":0", "\"trial\":0.5", "expected an integer"},
        {"\"median_s\":", "\"median_s\":-", "non-negative"},
        {"\"hash\":\"", "\"hash\":\"zz", "16 hex"},
        {"\"knobs\":\"", "\"knobs\":\"\\q", "bad escape"},
        {"\"target\":\"", "\"target\":\"nokey\\n", "not key=value"},
    };
    char text[8192];
    for (size_t i = 0; i < sizeof k_edits / sizeof k_edits[0]; i++) {
        char *at = strstr(rec, k_edits[i].from);
        CHECK_MSG(at, "edit %zu does not apply", i);
        if (!at) continue;
        /* line 2 is good, line 3 is bad: nothing of the file is imported */
        snprintf(text, sizeof text, "{\"kiln_records\":1}\n%s\n%.*s%s%s\n", rec, (int)(at - rec), rec,
                 k_edits[i].to, at + strlen(k_edits[i].from));
        tune_db *fresh_db = open_db(fresh("imp_target.db"), TUNE_DB_CREATE);
        if (!fresh_db) continue;
        CHECK_MSG(import_text(fresh_db, text, NULL, NULL) != KILN_OK, "edit %zu imported", i);
        CHECK_MSG(msg_has("in.jsonl:3") && msg_has(k_edits[i].what), "edit %zu: %s", i, kiln_errmsg(g_ctx));
        tune_db_stats st;
        CHECK(tune_db_get_stats(g_ctx, fresh_db, &st) == KILN_OK && st.records == 0 && st.workloads == 0);
        tune_db_close(fresh_db);
    }
    CHECK(import_text(db, "", NULL, NULL) == KILN_ERR_PARSE && msg_has("empty"));
    CHECK(import_text(db, "{\"kiln_records\":2}\n", NULL, NULL) == KILN_ERR_UNSUPPORTED && msg_has("in.jsonl:1"));
    CHECK(import_text(db, "hello\n", NULL, NULL) == KILN_ERR_PARSE && msg_has("in.jsonl:1") && msg_has("header"));
    FILE *f = fmemopen((void *)"{\"kiln_records\":1}\n{\"wo\0rk\n", 27, "r");
    CHECK(tune_db_import(g_ctx, db, f, "nul.jsonl", NULL, NULL) == KILN_ERR_PARSE && msg_has("nul.jsonl:2"));
    fclose(f);
    free(good);
    tune_db_close(db);
}

static void test_merge(void) {
    tune_db *a = open_db(fresh("merge_a.db"), TUNE_DB_CREATE), *b = open_db(fresh("merge_b.db"), TUNE_DB_CREATE);
    if (!a || !b) return;
    fill(a, 300, 8);
    fill(b, 300, 4); /* the same first 4 records */
    fill(b, 400, 3);
    int64_t added = -1, skipped = -1;
    CHECK_MSG(tune_db_merge(g_ctx, b, path_of("merge_a.db"), &added, &skipped) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(added == 4 && skipped == 4);
    CHECK(tune_db_merge(g_ctx, b, path_of("merge_a.db"), &added, &skipped) == KILN_OK && added == 0 && skipped == 8);
    tune_db_stats st;
    CHECK(tune_db_get_stats(g_ctx, b, &st) == KILN_OK && st.records == 11 && st.workloads == 6);
    CHECK(tune_db_merge(g_ctx, b, path_of("merge_b.db"), NULL, NULL) == KILN_ERR_INVALID && msg_has("itself"));
    CHECK(tune_db_merge(g_ctx, b, path_of("random.db"), NULL, NULL) != KILN_OK && msg_has("random.db"));
    tune_db_close(a);
    tune_db_close(b);
}

static void test_prune(void) {
    tune_db *db = open_db(fresh("prune.db"), TUNE_DB_CREATE);
    if (!db) return;
    for (int i = 0; i < 6; i++) add(db, make(1, TUNE_STATUS_OK, 1e-3 * (6 - i), i), true);
    add(db, make(1, TUNE_STATUS_CRASH, NAN, 10), true);
    add(db, make(2, TUNE_STATUS_COMPILE_ERROR, NAN, 11), true);
    int64_t removed = -1;
    tune_prune_opts o = {.drop_failed = true};
    CHECK(tune_db_prune(g_ctx, db, &o, &removed) == KILN_OK && removed == 2);
    tune_db_stats st;
    CHECK(tune_db_get_stats(g_ctx, db, &st) == KILN_OK && st.records == 6 && st.workloads == 1);
    o = (tune_prune_opts){.keep_best = 2};
    CHECK(tune_db_prune(g_ctx, db, &o, &removed) == KILN_OK && removed == 4);
    CHECK(count(db, 1, g_target) == 2);
    tune_record r;
    bool found = false;
    CHECK(tune_db_best(g_ctx, db, 1, g_target, &r, &found) == KILN_OK && found && r.trial == 5);
    tune_record_clear(&r);
    o = (tune_prune_opts){.keep_best = -1};
    CHECK(tune_db_prune(g_ctx, db, &o, NULL) == KILN_ERR_INVALID);
    tune_db_close(db);
}

static long file_size(const char *p) {
    FILE *f = fopen(p, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (f) fclose(f);
    return n;
}

static void test_vacuum(void) {
    const char *p = fresh("vacuum.db");
    tune_db *db = open_db(p, TUNE_DB_CREATE);
    if (!db) return;
    static char trace[2000];
    memset(trace, 't', sizeof trace - 1);
    for (int i = 0; i < 100; i++) {
        tune_record r = make(3, TUNE_STATUS_OK, 1e-3 * (i + 1), i);
        r.trace = trace;
        add(db, r, true);
    }
    tune_db_close(db); /* checkpoints the WAL: the file holds every record */
    long before = file_size(p);
    db = open_db(p, 0);
    if (!db) return;
    tune_prune_opts o = {.keep_best = 1};
    CHECK(tune_db_prune(g_ctx, db, &o, NULL) == KILN_OK);
    CHECK_MSG(tune_db_vacuum(g_ctx, db) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    long after = file_size(p);
    CHECK_MSG(before > 150000 && after < before / 4, "%ld bytes before, %ld after", before, after);
    CHECK(count(db, 3, g_target) == 1);
    tune_db_close(db);
    db = open_db(p, TUNE_DB_READONLY);
    if (db) CHECK(tune_db_vacuum(g_ctx, db) == KILN_ERR_INVALID && msg_has("read-only"));
    tune_db_close(db);
}

/* ---- concurrency ---- */

#define WRITERS 4
#define PER_WRITER 40

static int writer(const char *p, int w) {
    kiln_ctx *ctx = NULL;
    if (kiln_ctx_new(&ctx)) return 2;
    tune_db *db = NULL;
    int rc = 0;
    if (tune_db_open(ctx, p, TUNE_DB_CREATE, &db)) {
        fprintf(stderr, "writer %d: %s\n", w, kiln_errmsg(ctx));
        rc = 3;
    }
    for (int i = 0; !rc && i < PER_WRITER; i++) {
        tune_record r = make((uint64_t)(i % 5), TUNE_STATUS_OK, 1e-3 + w * 1e-5 + i * 1e-7, w * 1000 + i);
        if (tune_db_add_record(ctx, db, &r, NULL)) {
            fprintf(stderr, "writer %d: %s\n", w, kiln_errmsg(ctx));
            rc = 4;
        }
    }
    tune_db_close(db);
    kiln_ctx_free(ctx);
    return rc;
}

static void test_concurrent_writers(void) {
    const char *p = fresh("concurrent.db"); /* the writers create it together */
    pid_t pids[WRITERS];
    for (int w = 0; w < WRITERS; w++) {
        pids[w] = fork();
        if (pids[w] == 0) _exit(writer(p, w));
        CHECK(pids[w] > 0);
    }
    for (int w = 0; w < WRITERS; w++) {
        int st = 0;
        CHECK(pids[w] > 0 && waitpid(pids[w], &st, 0) == pids[w]);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "writer %d failed (status %d)", w, st);
    }
    tune_db *db = open_db(p, TUNE_DB_READONLY);
    if (!db) return;
    tune_db_stats st;
    CHECK(tune_db_get_stats(g_ctx, db, &st) == KILN_OK);
    CHECK_MSG(st.records == WRITERS * PER_WRITER, "%lld records", (long long)st.records);
    CHECK(st.workloads == 5 && st.targets == 1);
    tune_db_close(db);
}

/* ---- allocation failures ---- */

static kiln_status alloc_round(const char *p, const char *text) {
    tune_db *db = NULL;
    kiln_status s = tune_db_open(g_ctx, p, TUNE_DB_CREATE, &db);
    tune_record r = make(9, TUNE_STATUS_OK, 1e-3, 1), best;
    bool found = false;
    if (!s) s = tune_db_add_record(g_ctx, db, &r, NULL);
    if (!s) s = tune_db_best(g_ctx, db, 9, g_target, &best, &found);
    if (!s && found) tune_record_clear(&best);
    if (!s) s = import_text(db, text, NULL, NULL);
    if (!s) s = tune_db_merge(g_ctx, db, path_of("alloc_src.db"), NULL, NULL);
    tune_prune_opts o = {.drop_failed = true, .keep_best = 1};
    if (!s) s = tune_db_prune(g_ctx, db, &o, NULL);
    if (!s) s = tune_db_best_similar(g_ctx, db, 9, g_target, (const char *const[]){"cpu.model", NULL}, &best, &found);
    if (!s && found) tune_record_clear(&best);
    tune_db_close(db);
    return s;
}

static void test_alloc_failures(void) {
    tune_db *src = open_db(fresh("alloc_src.db"), TUNE_DB_CREATE);
    if (!src) return;
    fill(src, 500, 3);
    char *text = export_text(src);
    tune_db_close(src);
    if (!text) return;
    long base = kiln_mem_live();
    int failures = 0;
    bool succeeded = false;
    for (long n = 0; n < 400; n++) {
        const char *p = fresh("alloc.db");
        kiln_mem_fail_after(n);
        kiln_status s = alloc_round(p, text);
        kiln_mem_fail_after(-1);
        CHECK_MSG(s == KILN_OK || s == KILN_ERR_NOMEM, "n=%ld: %s", n, kiln_errmsg(g_ctx));
        CHECK_MSG(kiln_mem_live() == base, "n=%ld: %ld blocks leaked", n, kiln_mem_live() - base);
        if (s == KILN_OK) {
            succeeded = true;
            break;
        }
        failures++;
    }
    CHECK(succeeded);
    CHECK(failures > 5); /* the sweep went through several allocations */
    free(text);
}

static void setup(void) {
    CHECK(kiln_ctx_new(&g_ctx) == KILN_OK);
    /* memory-backed when there is one: the test opens and syncs ~100 files */
    snprintf(g_dir, sizeof g_dir, "%s/kiln_records_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    CHECK(mkdtemp(g_dir) != NULL);
    cg_cpu_target t;
    CHECK(cg_cpu_host(g_ctx, &t) == KILN_OK);
    CHECK_MSG(tune_target_describe_cpu(g_ctx, &t, g_target, sizeof g_target) == KILN_OK, "%s", kiln_errmsg(g_ctx));
}

static void teardown(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
    kiln_ctx_free(g_ctx);
}

TEST_MAIN(T(setup), T(test_target_describe), T(test_target_canonical), T(test_workload), T(test_add_best_count),
          T(test_foreach_and_invalid), T(test_key_misses), T(test_migrate_v1), T(test_migrate_atomic),
          T(test_newer_schema),
          T(test_corrupt_files), T(test_foreign_schema), T(test_export_import), T(test_import_errors),
          T(test_merge), T(test_prune), T(test_vacuum), T(test_concurrent_writers), T(test_alloc_failures), T(teardown))
