/*
** tune_lookup.c — the schedules a compile takes from the records database.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/mem.h"
#include "trace_names.h"
#include "tuner.h"

#define MAX_FALLBACK_KEYS 8

struct tune_lookup {
    tune_db *db;
    char target[TUNE_TARGET_MAX];
    const char *fallback[MAX_FALLBACK_KEYS + 1]; /* point into keys */
    char keys[MAX_FALLBACK_KEYS][64];
    int tuned, fallback_used, untuned, invalid;
    char first_invalid[256];
    uint64_t *seen; /* workloads counted already: a kernel shared by nodes counts once */
    int n_seen, cap_seen;
};

/* Whether hash is counted for the first time (out of memory: counted again). */
static bool first_time(tune_lookup *l, uint64_t hash) {
    for (int i = 0; i < l->n_seen; i++)
        if (l->seen[i] == hash) return false;
    if (kiln_grow((void **)&l->seen, &l->cap_seen, l->n_seen + 1, sizeof(uint64_t))) l->seen[l->n_seen++] = hash;
    return true;
}

kiln_status tune_lookup_open(kiln_ctx *ctx, const char *db_path, const cg_cpu_target *target, int threads,
                             const char *const *fallback_keys, tune_lookup **out) {
    tune_lookup *l = kiln_calloc(1, sizeof *l);
    if (!l) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    kiln_status s = KILN_OK;
    for (int n = 0; fallback_keys && fallback_keys[n] && n < MAX_FALLBACK_KEYS && !s; n++) {
        if (strlen(fallback_keys[n]) >= sizeof l->keys[n])
            s = kiln_fail(ctx, KILN_ERR_INVALID, "target key '%s' is too long", fallback_keys[n]);
        snprintf(l->keys[n], sizeof l->keys[n], "%s", fallback_keys[n]);
        l->fallback[n] = l->keys[n];
    }
    if (!s) s = tune_target_for(ctx, target, threads, l->target, sizeof l->target);
    if (!s) s = tune_db_open(ctx, db_path, TUNE_DB_READONLY, &l->db);
    if (s) {
        kiln_free(l);
        return s;
    }
    *out = l;
    return KILN_OK;
}

void tune_lookup_close(tune_lookup *l) {
    if (!l) return;
    tune_db_close(l->db);
    kiln_free(l->seen);
    kiln_free(l);
}

/* The best confirmation record if the key has one, else the best record. */
typedef struct best_confirmed {
    double median_s;
    char *trace;
} best_confirmed;

static kiln_status keep_confirmed(kiln_ctx *ctx, const tune_record *r, void *user) {
    best_confirmed *b = user;
    if (r->trial != TUNE_TRIAL_CONFIRM || !(r->median_s < b->median_s)) return KILN_OK;
    char *copy = kiln_malloc(strlen(r->trace) + 1);
    if (!copy) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    strcpy(copy, r->trace);
    kiln_free(b->trace);
    b->trace = copy;
    b->median_s = r->median_s;
    return KILN_OK;
}

/* The trace text of the best record of the exact key (NULL when none). */
static kiln_status exact_trace(kiln_ctx *ctx, tune_lookup *l, uint64_t hash, char **out) {
    best_confirmed b = {INFINITY, NULL};
    tune_filter f = {true, hash, l->target, true};
    kiln_status s = tune_db_foreach(ctx, l->db, &f, keep_confirmed, &b);
    if (s || b.trace) {
        *out = b.trace;
        return s;
    }
    tune_record r;
    tune_record_init(&r);
    bool found = false;
    s = tune_db_best(ctx, l->db, hash, l->target, &r, &found);
    if (!s && found && !(*out = kiln_malloc(strlen(r.trace) + 1))) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!s && found) strcpy(*out, r.trace);
    tune_record_clear(&r);
    return s;
}

static kiln_status fallback_trace(kiln_ctx *ctx, tune_lookup *l, uint64_t hash, char **out) {
    if (!l->fallback[0]) return KILN_OK;
    tune_record r;
    tune_record_init(&r);
    bool found = false;
    kiln_status s = tune_db_best_similar(ctx, l->db, hash, l->target, l->fallback, &r, &found);
    if (!s && found && !(*out = kiln_malloc(strlen(r.trace) + 1))) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!s && found) strcpy(*out, r.trace);
    tune_record_clear(&r);
    return s;
}

/* A record's trace must parse and replay on this kernel. */
static bool replays(kiln_ctx *ctx, tune_lookup *l, const tir_func *f, const char *text, sch_trace **out) {
    sch_trace *parsed = NULL, *t = NULL;
    lir_func *lf = NULL;
    kiln_status s = sch_trace_parse(ctx, text, &parsed);
    if (!s) s = tune_trace_for(ctx, parsed, f, &t); /* positional input names: this function's */
    if (!s) s = sch_lower(ctx, f, t, &lf);
    lir_func_free(lf);
    sch_trace_free(parsed);
    if (!s) {
        *out = t;
        return true;
    }
    if (!l->invalid++) snprintf(l->first_invalid, sizeof l->first_invalid, "%s", kiln_errmsg(ctx));
    sch_trace_free(t);
    return false;
}

kiln_status tune_lookup_trace(kiln_ctx *ctx, tune_lookup *l, const tir_func *f, sch_trace **out,
                              const char **from) {
    char *text = NULL;
    *out = NULL;
    *from = NULL;
    uint64_t hash = tir_hash(f);
    kiln_status s = exact_trace(ctx, l, hash, &text);
    bool exact = text != NULL;
    if (!s && !text) s = fallback_trace(ctx, l, hash, &text);
    if (s) return s;
    bool first = first_time(l, hash);
    if (text && replays(ctx, l, f, text, out)) {
        *from = exact ? "db" : "db-fallback";
        if (first) exact ? l->tuned++ : l->fallback_used++;
    } else if (first) {
        l->untuned++;
    }
    kiln_free(text);
    return KILN_OK;
}

void tune_lookup_summary(FILE *f, const tune_lookup *l) {
    fprintf(f, "records: %d kernel(s) tuned, %d from a declared fallback, %d untuned", l->tuned, l->fallback_used,
            l->untuned);
    if (l->invalid) fprintf(f, "; %d record(s) did not replay (%s)", l->invalid, l->first_invalid);
    fputc('\n', f);
}
