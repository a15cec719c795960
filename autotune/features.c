/*
** features.c — the cost model's features of a lowered candidate (see
** features.h for the list). One walk over the loop IR keeps the stack of
** enclosing loops and guards, accumulates whole-kernel counts, and keeps a
** copy of the stack at the store executed most often (the main nest); the
** footprints of that store's accesses are then estimated level by level.
*/
#include "autotune/features.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"

#define MAX_DEPTH 64
#define LINE_BYTES 64
#define INNER_GUARD_LOOPS 4

typedef struct loop_info {
    const ex_var *var;
    int64_t extent;
    lir_loop_kind kind;
} loop_info;

typedef struct walker {
    kiln_ctx *ctx;
    loop_info loops[MAX_DEPTH];
    lir_var_range ranges[MAX_DEPTH];
    int depth;
    int guard_depth[MAX_DEPTH]; /* loops enclosing each active guard */
    int n_guards;
    double trips; /* executions of the current statement */
    double flops, bytes, guards;
    double local_bytes;
    int nests;
    const lir_buffer *stored[MAX_DEPTH];
    int n_stored, more_stored;
    /* the main nest */
    const lir_stmt *main;
    double main_trips;
    loop_info main_loops[MAX_DEPTH];
    int main_depth;
    bool main_inner_guard;
} walker;

static double lg(double x) { return log2(1.0 + (x > 0 ? x : 0)); }

static double elem_size(kiln_dtype t) {
    size_t s = kiln_dtype_size(t);
    return s ? (double)s : 1.0;
}

/* Arithmetic operations of a stored value (index math inside loads and
** casts are free). */
static int count_ops(const ex_expr *e) {
    if (!e || e->kind == EX_LOAD) return 0;
    int n = (e->kind == EX_BINARY || e->kind == EX_UNARY || e->kind == EX_SELECT) ? 1 : 0;
    for (int i = 0; i < e->n_args; i++) n += count_ops(e->args[i]);
    return n;
}

/* Bytes one evaluation of e loads. */
static double load_bytes(const ex_expr *e) {
    if (!e) return 0;
    double n = e->kind == EX_LOAD ? elem_size(e->dtype) : 0;
    for (int i = 0; i < e->n_args; i++) n += load_bytes(e->args[i]);
    return n;
}

static void note_stored(walker *w, const lir_buffer *b) {
    for (int i = 0; i < w->n_stored; i++)
        if (w->stored[i] == b) return;
    if (w->n_stored < MAX_DEPTH) w->stored[w->n_stored++] = b;
    else w->more_stored++;
}

static void visit_store(walker *w, const lir_stmt *s) {
    w->flops += w->trips * count_ops(s->value);
    w->bytes += w->trips * (load_bytes(s->value) + load_bytes(s->index) + elem_size(s->buffer->dtype));
    note_stored(w, s->buffer);
    if (w->main && w->trips <= w->main_trips) return;
    w->main = s;
    w->main_trips = w->trips;
    w->main_depth = w->depth;
    memcpy(w->main_loops, w->loops, sizeof(loop_info) * (size_t)w->depth);
    w->main_inner_guard = false;
    for (int g = 0; g < w->n_guards; g++)
        if (w->guard_depth[g] >= w->depth - INNER_GUARD_LOOPS) w->main_inner_guard = true;
}

/* A loop's trip count: its extent, or the extent's upper bound over the
** enclosing loops when it depends on them (1 when unknown). */
static int64_t trip_count(const walker *w, const lir_stmt *s, int64_t *min_lo) {
    int64_t lo = 0, hi = 0, ext = 1;
    *min_lo = lir_expr_bounds(s->min, w->ranges, w->depth, &lo, &hi) ? lo : 0;
    if (lir_expr_bounds(s->extent, w->ranges, w->depth, &lo, &hi)) ext = hi;
    return ext > 0 ? ext : 0;
}

static kiln_status walk(walker *w, const lir_stmt *s);

static kiln_status walk_for(walker *w, const lir_stmt *s) {
    if (w->depth >= MAX_DEPTH)
        return kiln_fail(w->ctx, KILN_ERR_UNSUPPORTED, "features: loop nest deeper than %d loops (loop '%s')",
                         MAX_DEPTH, s->var->name);
    int64_t lo, ext = trip_count(w, s, &lo);
    if (w->depth == 0) w->nests++;
    w->loops[w->depth] = (loop_info){s->var, ext, s->loop};
    w->ranges[w->depth] = (lir_var_range){s->var, lo, ext > 0 ? ext : 1};
    w->depth++;
    double saved = w->trips;
    w->trips *= (double)ext;
    kiln_status st = ext > 0 ? walk(w, s->body) : KILN_OK;
    w->trips = saved;
    w->depth--;
    return st;
}

static kiln_status walk_if(walker *w, const lir_stmt *s) {
    if (w->n_guards >= MAX_DEPTH)
        return kiln_fail(w->ctx, KILN_ERR_UNSUPPORTED, "features: more than %d nested guards", MAX_DEPTH);
    w->guards += w->trips;
    w->guard_depth[w->n_guards++] = w->depth;
    kiln_status st = walk(w, s->body);
    if (!st) st = walk(w, s->else_body);
    w->n_guards--;
    return st;
}

static kiln_status walk(walker *w, const lir_stmt *s) {
    if (!s) return KILN_OK;
    switch (s->kind) {
    case LIR_FOR: return walk_for(w, s);
    case LIR_IF: return walk_if(w, s);
    case LIR_STORE: visit_store(w, s); return KILN_OK;
    case LIR_ALLOC:
        if (s->buffer->scope != LIR_SCOPE_GLOBAL)
            w->local_bytes += (double)s->buffer->size * elem_size(s->buffer->dtype);
        return walk(w, s->body);
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++) {
            kiln_status st = walk(w, s->stmts[i]);
            if (st) return st;
        }
        return KILN_OK;
    default: return KILN_OK;
    }
}

/* ---- footprints of the main store's accesses ---- */

/* The position of v among the relaxed loops main_loops[from ..], or -1. */
static int relaxed_index(const walker *w, int from, const ex_var *v) {
    for (int i = from; i < w->main_depth; i++)
        if (w->main_loops[i].var == v) return i;
    return -1;
}

static bool uses_relaxed(const walker *w, int from, const ex_expr *e) {
    if (!e) return false;
    if (e->kind == EX_VAR) return relaxed_index(w, from, e->var) >= 0;
    for (int i = 0; i < e->n_args; i++)
        if (uses_relaxed(w, from, e->args[i])) return true;
    return false;
}

static bool uses_var(const ex_expr *e, const ex_var *v) {
    if (!e) return false;
    if (e->kind == EX_VAR) return e->var == v;
    for (int i = 0; i < e->n_args; i++)
        if (uses_var(e->args[i], v)) return true;
    return false;
}

/* Adds scale times e's coefficients of the relaxed loops to coef (indexed
** by loop position); false when e is not affine in them. Terms free of
** relaxed loops are constants here, whatever their form. */
static bool affine(const walker *w, int from, const ex_expr *e, int64_t scale, int64_t *coef) {
    if (!uses_relaxed(w, from, e)) return true;
    int64_t c;
    switch (e->kind) {
    case EX_VAR: coef[relaxed_index(w, from, e->var)] += scale; return true;
    case EX_CAST: return affine(w, from, e->args[0], scale, coef);
    case EX_BINARY:
        if (e->op == EX_ADD)
            return affine(w, from, e->args[0], scale, coef) && affine(w, from, e->args[1], scale, coef);
        if (e->op == EX_SUB)
            return affine(w, from, e->args[0], scale, coef) && affine(w, from, e->args[1], -scale, coef);
        if (e->op == EX_MUL && ex_is_const_int(e->args[1], &c)) return affine(w, from, e->args[0], scale * c, coef);
        if (e->op == EX_MUL && ex_is_const_int(e->args[0], &c)) return affine(w, from, e->args[1], scale * c, coef);
        return false;
    default: return false;
    }
}

/* Distinct elements and cache lines one access touches while the loops
** main_loops[from ..] run through. */
static void footprint(const walker *w, int from, const ex_expr *index, double size, double *elems, double *lines) {
    int64_t coef[MAX_DEPTH] = {0};
    double prod = 1, span = 1, run = 1;
    if (!affine(w, from, index, 1, coef)) {
        /* the product over the loops the index uses: an upper bound */
        for (int i = from; i < w->main_depth; i++)
            if (uses_var(index, w->main_loops[i].var)) prod *= (double)w->main_loops[i].extent;
        *elems = prod;
        *lines = prod;
        return;
    }
    for (int i = from; i < w->main_depth; i++) {
        int64_t c = coef[i] < 0 ? -coef[i] : coef[i];
        double ext = (double)w->main_loops[i].extent;
        if (c == 0 || ext <= 1) continue;
        prod *= ext;
        span += (double)c * (ext - 1);
        if (c == 1) run = fmax(run, ext);
    }
    *elems = fmin(prod, span);
    run = fmin(run, fmax(1.0, LINE_BYTES / size));
    *lines = ceil(*elems / run);
}

#define MAX_ACCESSES 256

typedef struct access {
    const ex_expr *index;
    double size;
} access;

static void collect_loads(const ex_expr *e, access *acc, int *n) {
    if (!e) return;
    if (e->kind == EX_LOAD && e->buffer && e->n_args == 1 && *n < MAX_ACCESSES)
        acc[(*n)++] = (access){e->args[0], elem_size(e->dtype)};
    for (int i = 0; i < e->n_args; i++) collect_loads(e->args[i], acc, n);
}

/* Bytes and cache lines the main store's accesses touch while the loops
** main_loops[from ..] run through. */
static void level_footprint(const walker *w, const access *acc, int n, int from, double *bytes, double *lines) {
    *bytes = 0, *lines = 0;
    for (int a = 0; a < n; a++) {
        double e, l;
        footprint(w, from, acc[a].index, acc[a].size, &e, &l);
        *bytes += e * acc[a].size;
        *lines += l;
    }
}

/* How the accesses move with the innermost loop: counts of contiguous
** (step 1), invariant (step 0) and strided or irregular ones. */
static void inner_strides(const walker *w, const access *acc, int n, float *g) {
    int inner = w->main_depth - 1;
    for (int a = 0; a < n; a++) {
        int64_t coef[MAX_DEPTH] = {0};
        bool lin = inner >= 0 && affine(w, inner, acc[a].index, 1, coef);
        int64_t c = inner >= 0 ? coef[inner] : 0;
        if (inner < 0 || (lin && c == 0)) g[TUNE_FG_INNER_INVARIANT] += 1;
        else if (lin && (c == 1 || c == -1)) g[TUNE_FG_INNER_CONTIG] += 1;
        else g[TUNE_FG_INNER_STRIDED] += 1;
    }
}

static void main_features(const walker *w, float *out) {
    access local[MAX_ACCESSES];
    int n = 0;
    const lir_stmt *s = w->main;
    local[n++] = (access){s->index, elem_size(s->buffer->dtype)};
    collect_loads(s->value, local, &n);
    collect_loads(s->index, local, &n);
    for (int l = 0; l < TUNE_FEAT_LEVELS && l < w->main_depth; l++) {
        const loop_info *li = &w->main_loops[w->main_depth - 1 - l];
        float *o = out + l * TUNE_FEAT_PER_LEVEL;
        double bytes, lines;
        level_footprint(w, local, n, w->main_depth - 1 - l, &bytes, &lines);
        o[0] = (float)lg((double)li->extent);
        o[1] = li->kind == LIR_VECTORIZED;
        o[2] = li->kind == LIR_UNROLLED;
        o[3] = li->kind == LIR_PARALLEL;
        o[4] = (float)lg(bytes);
        o[5] = (float)lg(lines);
    }
    double par = 1, vec = 1, unr = 1, bytes_all, lines_all, inner = 0;
    for (int i = 0; i < w->main_depth; i++) {
        const loop_info *li = &w->main_loops[i];
        if (li->kind == LIR_PARALLEL) par *= (double)li->extent;
        if (li->kind == LIR_VECTORIZED) vec *= (double)li->extent;
        if (li->kind == LIR_UNROLLED) unr *= (double)li->extent;
    }
    for (int a = 0; a < n; a++) inner += local[a].size;
    level_footprint(w, local, n, 0, &bytes_all, &lines_all);
    float *g = out + TUNE_FEAT_GLOBAL;
    double main_flops = w->main_trips * count_ops(s->value);
    g[TUNE_FG_INTENSITY] = (float)(bytes_all > 0 ? main_flops / bytes_all : 0);
    g[TUNE_FG_PARALLEL] = (float)lg(par);
    g[TUNE_FG_VECTOR] = (float)lg(vec);
    g[TUNE_FG_UNROLLED] = (float)lg(unr);
    g[TUNE_FG_DEPTH] = (float)w->main_depth;
    g[TUNE_FG_INNER_GUARD] = w->main_inner_guard;
    g[TUNE_FG_MAIN_TRIPS] = (float)lg(w->main_trips);
    g[TUNE_FG_INNER_BYTES] = (float)lg(inner);
    inner_strides(w, local, n, g);
}

kiln_status tune_features_lir(kiln_ctx *ctx, const lir_func *lf, float out[TUNE_N_FEATURES]) {
    walker *w = kiln_calloc(1, sizeof *w);
    if (!w) return kiln_fail(ctx, KILN_ERR_NOMEM, "features of kernel '%s': out of memory", lf->name);
    w->ctx = ctx;
    w->trips = 1;
    kiln_status st = walk(w, lf->body);
    if (st) {
        kiln_wrap(ctx, st, "kernel '%s'", lf->name);
        kiln_free(w);
        return st;
    }
    memset(out, 0, sizeof(float) * TUNE_N_FEATURES);
    if (w->main) main_features(w, out);
    float *g = out + TUNE_FEAT_GLOBAL;
    g[TUNE_FG_FLOPS] = (float)lg(w->flops);
    g[TUNE_FG_BYTES] = (float)lg(w->bytes);
    g[TUNE_FG_STAGES] = (float)(w->n_stored + w->more_stored);
    g[TUNE_FG_LOCAL_BYTES] = (float)lg(w->local_bytes);
    g[TUNE_FG_GUARDS] = (float)lg(w->guards);
    g[TUNE_FG_NESTS] = (float)w->nests;
    kiln_free(w);
    return KILN_OK;
}

kiln_status tune_features_knobs(kiln_ctx *ctx, const tune_space *sp, const int64_t *knobs, float out[TUNE_N_FEATURES]) {
    float tmp[2 * TUNE_MAX_KNOBS] = {0};
    for (int k = 0; k < sp->n_knobs && k < TUNE_MAX_KNOBS; k++) {
        const tune_knob *kb = &sp->knobs[k];
        int at = -1;
        for (int v = 0; v < kb->n_values && at < 0; v++)
            if (kb->values[v] == knobs[k]) at = v;
        if (at < 0)
            return kiln_fail(ctx, KILN_ERR_INVALID, "features: %s=%lld is not one of the knob's values (template %s)",
                             kb->name, (long long)knobs[k], sp->template_name);
        tmp[2 * k] = kb->n_values > 1 ? (float)at / (float)(kb->n_values - 1) : 0.0f;
        tmp[2 * k + 1] = (float)lg(fabs((double)knobs[k]));
    }
    memcpy(out + TUNE_FEAT_KNOBS, tmp, sizeof tmp);
    return KILN_OK;
}

kiln_status tune_features_point(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                                const tune_space *sp, const int64_t *knobs, float out[TUNE_N_FEATURES]) {
    float tmp[TUNE_N_FEATURES];
    sch_trace *t = NULL;
    lir_func *lf = NULL;
    kiln_status st = tune_trace_from_knobs(ctx, f, target, sp, knobs, &t);
    if (!st) st = sch_lower(ctx, f, t, &lf);
    if (!st) st = tune_features_lir(ctx, lf, tmp);
    if (!st) st = tune_features_knobs(ctx, sp, knobs, tmp);
    if (!st) memcpy(out, tmp, sizeof tmp);
    lir_func_free(lf);
    sch_trace_free(t);
    return st;
}

const char *tune_feature_name(int i, char *buf, size_t n) {
    static const char *const level[TUNE_FEAT_PER_LEVEL] = {"extent", "vectorized", "unrolled", "parallel", "bytes", "lines"};
    static const char *const global[TUNE_FEAT_N_GLOBAL] = {
        "flops", "bytes", "intensity", "stages", "local_bytes", "parallel_extent", "vector_width",
        "unrolled_extent", "depth", "inner_guard", "guards", "main_trips", "nests", "inner_bytes",
        "inner_contiguous", "inner_invariant", "inner_strided"};
    if (i < 0 || i >= TUNE_N_FEATURES) snprintf(buf, n, "?");
    else if (i < TUNE_FEAT_GLOBAL) snprintf(buf, n, "l%d.%s", i / TUNE_FEAT_PER_LEVEL, level[i % TUNE_FEAT_PER_LEVEL]);
    else if (i < TUNE_FEAT_KNOBS) snprintf(buf, n, "%s", global[i - TUNE_FEAT_GLOBAL]);
    else snprintf(buf, n, "k%d.%s", (i - TUNE_FEAT_KNOBS) / 2, (i - TUNE_FEAT_KNOBS) % 2 ? "size" : "position");
    return buf;
}
