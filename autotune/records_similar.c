/*
** records_similar.c — the declared fallback of a lookup: the best record of
** the workload on a target that differs from the wanted one only in keys
** the caller names (e.g. cpu.model: the same ISA, LLVM and codegen on
** another machine). The caller says which keys it waives and reports that
** the record came from another target; tune_db_best stays exact.
*/
#include <string.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"

static bool waived(const char *line, size_t key_len, const char *const *ignore) {
    for (int i = 0; ignore && ignore[i]; i++)
        if (strlen(ignore[i]) == key_len && !strncmp(line, ignore[i], key_len)) return true;
    return false;
}

/* The next line of a description whose key is not waived; false at the end. */
static bool next_kept(const char **p, const char *const *ignore, const char **line, size_t *len) {
    while (**p) {
        const char *e = strchr(*p, '\n');
        size_t n = e ? (size_t)(e - *p) : strlen(*p);
        const char *l = *p;
        *p += n + (e != NULL);
        if (!waived(l, strcspn(l, "="), ignore)) {
            *line = l, *len = n;
            return true;
        }
    }
    return false;
}

bool tune_target_similar(const char *a, const char *b, const char *const *ignore) {
    for (;;) {
        const char *la, *lb;
        size_t na, nb;
        bool ha = next_kept(&a, ignore, &la, &na), hb = next_kept(&b, ignore, &lb, &nb);
        if (!ha || !hb) return ha == hb;
        if (na != nb || memcmp(la, lb, na) != 0) return false;
    }
}

kiln_status tune_db_best_similar(kiln_ctx *ctx, tune_db *db, uint64_t workload_hash, const char *target,
                                 const char *const *ignore, tune_record *out, bool *found) {
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT %s FROM records r JOIN workloads w ON w.id = r.workload JOIN targets t ON t.id = r.target "
             "WHERE w.hash = ?1 AND r.status = 'ok' AND r.median_s IS NOT NULL ORDER BY r.median_s, r.id",
             tune_db_record_columns(db->version));
    sqlite3_stmt *st;
    kiln_status s = tune_db_prepare(ctx, db, sql, &st);
    if (s) return s;
    char hash[17];
    tune_hex64(workload_hash, hash);
    sqlite3_bind_text(st, 1, hash, 16, SQLITE_TRANSIENT);
    int rc = SQLITE_DONE;
    bool hit = false;
    while (!s && !hit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        tune_record r;
        s = tune_db_row_record(ctx, db, st, &r);
        if (!s && tune_target_similar(r.target, target, ignore)) {
            s = tune_record_copy(ctx, &r, out);
            hit = s == KILN_OK;
        }
    }
    if (!s && !hit && rc != SQLITE_DONE) s = tune_db_sqlfail(ctx, db->h, db->path, rc, "looking up a fallback record");
    sqlite3_finalize(st);
    if (!s) *found = hit;
    return s;
}
