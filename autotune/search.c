/*
** search.c — the tuner's search over one task's knob space (search.h).
**
** Points are kept as value indices (one byte per knob) in a table that
** also caches their features and results; a hash index over the table
** finds a point by its indices. Every ordering that matters (candidates,
** batches, the best point) follows the table's insertion order or the
** PRNG, never addresses, so a seed and the same results give the same
** batches.
*/
#include "autotune/search.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/mem.h"

enum { P_NEW = 0, P_PENDING, P_DONE };

typedef struct point {
    uint8_t idx[TUNE_MAX_KNOBS];
    uint64_t hash;
    int state;
    int status;      /* P_DONE: 0 ok, else the failure */
    double seconds;  /* P_DONE and ok */
    bool has_feat;
    int mark;        /* the batch that last listed it as a candidate */
    int score_batch; /* the batch its score was predicted for */
    double score;
} point;

struct tune_search {
    kiln_ctx *ctx;
    const tir_func *f;
    const cg_cpu_target *target;
    tune_space space;
    uint64_t size;
    tune_search_opts o;
    tune_cost_model *own_model;
    uint64_t rng[4];
    /* the point table */
    point *pts;
    float *feat; /* per point, TUNE_N_FEATURES */
    int n_pts, cap_pts;
    int *slots; /* hash index: point index or -1 */
    int cap_slots;
    uint64_t n_taken; /* points proposed or reported */
    int n_done, n_failed, best;
    int batch; /* batches proposed */
    /* scratch for one batch */
    int *cands, n_cands, cap_cands;
};

/* ---- PRNG: xoshiro256** seeded by splitmix64 ---- */

static uint64_t splitmix(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t next_u64(tune_search *s) {
    uint64_t *r = s->rng, out = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0], r[3] ^= r[1], r[1] ^= r[2], r[0] ^= r[3], r[2] ^= t, r[3] = rotl(r[3], 45);
    return out;
}

/* Uniform in [0, n) (n > 0; the bias of a modulo over 64 bits is nil here). */
static int rand_below(tune_search *s, int n) { return (int)(next_u64(s) % (uint64_t)n); }
static double rand_unit(tune_search *s) { return (double)(next_u64(s) >> 11) / 9007199254740992.0; }

/* ---- the point table ---- */

static uint64_t hash_idx(const tune_search *s, const uint8_t *idx) {
    uint64_t h = 0x243f6a8885a308d3ull;
    for (int k = 0; k < s->space.n_knobs; k++) {
        h = (h ^ idx[k]) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    return h;
}

static int find_point(const tune_search *s, const uint8_t *idx, uint64_t h) {
    if (!s->cap_slots) return -1;
    for (size_t at = h & (size_t)(s->cap_slots - 1);; at = (at + 1) & (size_t)(s->cap_slots - 1)) {
        int i = s->slots[at];
        if (i < 0) return -1;
        if (s->pts[i].hash == h && memcmp(s->pts[i].idx, idx, (size_t)s->space.n_knobs) == 0) return i;
    }
}

static void insert_slot(tune_search *s, int i) {
    size_t at = s->pts[i].hash & (size_t)(s->cap_slots - 1);
    while (s->slots[at] >= 0) at = (at + 1) & (size_t)(s->cap_slots - 1);
    s->slots[at] = i;
}

static kiln_status grow_table(tune_search *s) {
    int cap = s->cap_pts ? 2 * s->cap_pts : 256;
    point *p = kiln_realloc(s->pts, sizeof(point) * (size_t)cap);
    if (p) s->pts = p;
    float *fe = p ? kiln_realloc(s->feat, sizeof(float) * TUNE_N_FEATURES * (size_t)cap) : NULL;
    if (fe) s->feat = fe;
    int *slots = fe ? kiln_malloc(sizeof(int) * 2 * (size_t)cap) : NULL;
    if (!slots) return kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory for %d points", s->space.template_name, cap);
    kiln_free(s->slots);
    s->slots = slots;
    s->cap_slots = 2 * cap;
    s->cap_pts = cap;
    for (int i = 0; i < s->cap_slots; i++) s->slots[i] = -1;
    for (int i = 0; i < s->n_pts; i++) insert_slot(s, i);
    return KILN_OK;
}

/* The index of the point with these value indices, added when new. */
static kiln_status add_point(tune_search *s, const uint8_t *idx, int *out) {
    uint64_t h = hash_idx(s, idx);
    int i = find_point(s, idx, h);
    if (i < 0) {
        if (s->n_pts == s->cap_pts) {
            kiln_status st = grow_table(s);
            if (st) return st;
        }
        i = s->n_pts++;
        point *p = &s->pts[i];
        memset(p, 0, sizeof *p);
        memcpy(p->idx, idx, (size_t)s->space.n_knobs);
        p->hash = h;
        p->mark = p->score_batch = -1;
        insert_slot(s, i);
    }
    *out = i;
    return KILN_OK;
}

static void idx_to_knobs(const tune_search *s, const uint8_t *idx, int64_t *knobs) {
    for (int k = 0; k < s->space.n_knobs; k++) knobs[k] = s->space.knobs[k].values[idx[k]];
}

static kiln_status knobs_to_idx(const tune_search *s, const int64_t *knobs, uint8_t *idx) {
    for (int k = 0; k < s->space.n_knobs; k++) {
        const tune_knob *kb = &s->space.knobs[k];
        int at = -1;
        for (int v = 0; v < kb->n_values && at < 0; v++)
            if (kb->values[v] == knobs[k]) at = v;
        if (at < 0)
            return kiln_fail(s->ctx, KILN_ERR_INVALID, "search (%s): %s=%lld is not one of the knob's values",
                             s->space.template_name, kb->name, (long long)knobs[k]);
        idx[k] = (uint8_t)at;
    }
    return KILN_OK;
}

static kiln_status point_features(tune_search *s, int i) {
    if (s->pts[i].has_feat) return KILN_OK;
    int64_t knobs[TUNE_MAX_KNOBS];
    idx_to_knobs(s, s->pts[i].idx, knobs);
    kiln_status st = tune_features_point(s->ctx, s->f, s->target, &s->space, knobs, s->feat + (size_t)i * TUNE_N_FEATURES);
    if (st) return kiln_wrap(s->ctx, st, "search (%s)", s->space.template_name);
    s->pts[i].has_feat = true;
    return KILN_OK;
}

static void random_idx(tune_search *s, uint8_t *idx) {
    for (int k = 0; k < s->space.n_knobs; k++) idx[k] = (uint8_t)rand_below(s, s->space.knobs[k].n_values);
}

/* ---- life ---- */

void tune_search_opts_default(tune_search_opts *o) {
    memset(o, 0, sizeof *o);
    o->population = 64;
    o->generations = 4;
    o->mutate_prob = 0.85;
    o->eps = 0.125;
    o->exhaustive_max = 64;
}

kiln_status tune_search_new(kiln_ctx *ctx, const tir_func *f, const tune_space *space, const cg_cpu_target *target,
                            uint64_t seed, const tune_search_opts *opts, tune_search **out) {
    if (space->n_knobs < 0 || space->n_knobs > TUNE_MAX_KNOBS)
        return kiln_fail(ctx, KILN_ERR_INVALID, "search (%s): %d knobs", space->template_name, space->n_knobs);
    for (int k = 0; k < space->n_knobs; k++)
        if (space->knobs[k].n_values < 1 || space->knobs[k].n_values > TUNE_MAX_VALUES)
            return kiln_fail(ctx, KILN_ERR_INVALID, "search (%s): knob %s has %d values", space->template_name,
                             space->knobs[k].name, space->knobs[k].n_values);
    tune_search *s = kiln_calloc(1, sizeof *s);
    if (!s) return kiln_fail(ctx, KILN_ERR_NOMEM, "search (%s): out of memory", space->template_name);
    s->ctx = ctx, s->f = f, s->target = target, s->space = *space;
    s->size = tune_space_size(space);
    if (opts) s->o = *opts;
    else tune_search_opts_default(&s->o);
    if (s->o.population < 2) s->o.population = 2;
    if (s->o.generations < 1) s->o.generations = 1;
    s->best = -1;
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) s->rng[i] = splitmix(&x);
    kiln_status st = KILN_OK;
    if (!s->o.model) {
        st = tune_cost_model_new(ctx, seed, &s->own_model);
        s->o.model = s->own_model;
    }
    if (st) {
        kiln_free(s);
        return st;
    }
    *out = s;
    return KILN_OK;
}

void tune_search_free(tune_search *s) {
    if (!s) return;
    tune_cost_model_free(s->own_model);
    kiln_free(s->pts);
    kiln_free(s->feat);
    kiln_free(s->slots);
    kiln_free(s->cands);
    kiln_free(s);
}

int tune_search_n_measured(const tune_search *s) { return s->n_done; }
int tune_search_n_failed(const tune_search *s) { return s->n_failed; }
bool tune_search_exhausted(const tune_search *s) { return s->n_taken >= s->size; }

bool tune_search_best(const tune_search *s, int64_t *knobs, double *median_s) {
    if (s->best < 0) return false;
    if (knobs) idx_to_knobs(s, s->pts[s->best].idx, knobs);
    if (median_s) *median_s = s->pts[s->best].seconds;
    return true;
}

/* ---- results ---- */

static kiln_status report_one(tune_search *s, const uint8_t *idx, double seconds, int status) {
    int i;
    kiln_status st = add_point(s, idx, &i);
    if (!st) st = point_features(s, i);
    bool ok = status == 0;
    if (!st) st = tune_cost_model_add(s->ctx, s->o.model, s->o.task, s->feat + (size_t)i * TUNE_N_FEATURES, seconds, ok);
    if (st) return st;
    point *p = &s->pts[i];
    if (p->state != P_DONE) {
        if (p->state == P_NEW) s->n_taken++;
        p->state = P_DONE;
        p->status = status;
        p->seconds = seconds;
        s->n_done++;
        s->n_failed += !ok;
    } else if (ok && (p->status != 0 || seconds < p->seconds)) {
        s->n_failed -= p->status != 0;
        p->status = 0;
        p->seconds = seconds;
    }
    if (p->status == 0 && (s->best < 0 || p->seconds < s->pts[s->best].seconds)) s->best = i;
    return KILN_OK;
}

kiln_status tune_search_report(tune_search *s, const int64_t *points, int n, const double *median_s,
                               const int *status) {
    int nk = s->space.n_knobs;
    for (int i = 0; i < n; i++) {
        uint8_t idx[TUNE_MAX_KNOBS];
        kiln_status st = knobs_to_idx(s, points + (size_t)i * (size_t)nk, idx);
        if (!st && status[i] == 0 && !(isfinite(median_s[i]) && median_s[i] > 0))
            st = kiln_fail(s->ctx, KILN_ERR_INVALID, "search (%s): point %d of the report: time %g s", s->space.template_name,
                           i, median_s[i]);
        if (st) return st;
    }
    for (int i = 0; i < n; i++) {
        uint8_t idx[TUNE_MAX_KNOBS];
        knobs_to_idx(s, points + (size_t)i * (size_t)nk, idx);
        kiln_status st = report_one(s, idx, median_s[i], status[i]);
        if (st) return st;
    }
    return KILN_OK;
}

/* ---- candidates ---- */

static kiln_status add_cand(tune_search *s, int i) {
    if (s->pts[i].mark == s->batch) return KILN_OK;
    if (s->n_cands == s->cap_cands) {
        int cap = s->cap_cands ? 2 * s->cap_cands : 256;
        int *c = kiln_realloc(s->cands, sizeof(int) * (size_t)cap);
        if (!c) return kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory for candidates", s->space.template_name);
        s->cands = c, s->cap_cands = cap;
    }
    s->pts[i].mark = s->batch;
    s->cands[s->n_cands++] = i;
    return KILN_OK;
}

/* Gives the points list[0 .. n) that lack one this batch's score. */
static kiln_status score_points(tune_search *s, const int *list, int n) {
    int *todo = kiln_malloc(sizeof(int) * (size_t)(n ? n : 1));
    float *x = todo ? kiln_malloc(sizeof(float) * TUNE_N_FEATURES * (size_t)(n ? n : 1)) : NULL;
    double *y = x ? kiln_malloc(sizeof(double) * (size_t)(n ? n : 1)) : NULL;
    kiln_status st = y ? KILN_OK : kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory for scores", s->space.template_name);
    int m = 0;
    for (int j = 0; !st && j < n; j++) {
        int i = list[j];
        if (s->pts[i].score_batch == s->batch) continue;
        st = point_features(s, i);
        if (st) break;
        s->pts[i].score_batch = s->batch;
        memcpy(x + (size_t)m * TUNE_N_FEATURES, s->feat + (size_t)i * TUNE_N_FEATURES, sizeof(float) * TUNE_N_FEATURES);
        todo[m++] = i;
    }
    if (!st) st = tune_cost_model_predict(s->ctx, s->o.model, x, m, y);
    for (int j = 0; !st && j < m; j++) s->pts[todo[j]].score = y[j];
    kiln_free(todo), kiln_free(x), kiln_free(y);
    return st;
}

static int tournament(tune_search *s, const int *pop, int n) {
    int a = pop[rand_below(s, n)], b = pop[rand_below(s, n)];
    return s->pts[b].score > s->pts[a].score ? b : a;
}

/* One or two knobs (of those with a choice) set to another of their values. */
static void mutate(tune_search *s, uint8_t *idx) {
    int var[TUNE_MAX_KNOBS], n_var = 0;
    for (int k = 0; k < s->space.n_knobs; k++)
        if (s->space.knobs[k].n_values > 1) var[n_var++] = k;
    if (!n_var) return;
    int changes = 1 + (n_var > 1 && rand_unit(s) < 0.3);
    for (int c = 0; c < changes; c++) {
        int k = var[rand_below(s, n_var)], nv = s->space.knobs[k].n_values;
        idx[k] = (uint8_t)((idx[k] + 1 + rand_below(s, nv - 1)) % nv);
    }
}

static void crossover(tune_search *s, const uint8_t *a, const uint8_t *b, uint8_t *child) {
    for (int k = 0; k < s->space.n_knobs; k++) child[k] = (next_u64(s) >> 40) & 1 ? a[k] : b[k];
}

typedef struct ranked {
    double key;
    int i;
} ranked;

/* Descending key, then ascending index: a total order, so sorting is
** deterministic. */
static int cmp_ranked(const void *pa, const void *pb) {
    const ranked *a = pa, *b = pb;
    if (a->key != b->key) return a->key > b->key ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* The first population: the best measured points (up to half), then random ones. */
static kiln_status seed_population(tune_search *s, int *pop, int *n_pop) {
    int P = s->o.population, n = 0;
    ranked *r = kiln_malloc(sizeof(ranked) * (size_t)(s->n_pts ? s->n_pts : 1));
    if (!r) return kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory", s->space.template_name);
    int m = 0;
    for (int i = 0; i < s->n_pts; i++)
        if (s->pts[i].state == P_DONE && s->pts[i].status == 0) r[m++] = (ranked){-s->pts[i].seconds, i};
    qsort(r, (size_t)m, sizeof *r, cmp_ranked);
    for (int j = 0; j < m && n < P / 2; j++) pop[n++] = r[j].i;
    kiln_free(r);
    while (n < P) {
        uint8_t idx[TUNE_MAX_KNOBS];
        random_idx(s, idx);
        kiln_status st = add_point(s, idx, &pop[n]);
        if (st) return st;
        n++;
    }
    *n_pop = n;
    return KILN_OK;
}

static kiln_status next_generation(tune_search *s, const int *pop, int n, int *next) {
    for (int c = 0; c < s->o.population; c++) {
        uint8_t child[TUNE_MAX_KNOBS];
        int p1 = tournament(s, pop, n);
        if (rand_unit(s) < s->o.mutate_prob) {
            memcpy(child, s->pts[p1].idx, sizeof child);
            mutate(s, child);
        } else {
            crossover(s, s->pts[p1].idx, s->pts[tournament(s, pop, n)].idx, child);
        }
        kiln_status st = add_point(s, child, &next[c]);
        if (st) return st;
    }
    return KILN_OK;
}

static kiln_status evolve(tune_search *s) {
    int P = s->o.population, n = 0;
    int *pop = kiln_malloc(sizeof(int) * 2 * (size_t)P);
    if (!pop) return kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory", s->space.template_name);
    int *next = pop + P;
    kiln_status st = seed_population(s, pop, &n);
    for (int g = 0; !st && g < s->o.generations; g++) {
        st = score_points(s, pop, n);
        for (int j = 0; !st && j < n; j++) st = add_cand(s, pop[j]);
        if (st || g == s->o.generations - 1) break;
        st = next_generation(s, pop, n, next);
        int *t = pop;
        pop = next, next = t;
        n = P;
    }
    kiln_free(pop < next ? pop : next);
    return st;
}

/* Every point not yet proposed, in mixed-radix order (knob 0 slowest). */
static kiln_status enumerate(tune_search *s) {
    uint8_t idx[TUNE_MAX_KNOBS] = {0};
    for (uint64_t c = 0; c < s->size; c++) {
        uint64_t h = hash_idx(s, idx);
        int i = find_point(s, idx, h);
        kiln_status st = i < 0 ? add_point(s, idx, &i) : KILN_OK;
        if (!st && s->pts[i].state == P_NEW) st = add_cand(s, i);
        if (st) return st;
        for (int k = s->space.n_knobs - 1; k >= 0; k--) {
            if (++idx[k] < s->space.knobs[k].n_values) break;
            idx[k] = 0;
        }
    }
    return KILN_OK;
}

/* ---- batches ---- */

typedef struct batch_out {
    int64_t *points;
    int n, got;
} batch_out;

static void take(tune_search *s, batch_out *b, int i) {
    s->pts[i].state = P_PENDING;
    s->n_taken++;
    idx_to_knobs(s, s->pts[i].idx, b->points + (size_t)b->got * (size_t)s->space.n_knobs);
    b->got++;
}

static kiln_status take_default(tune_search *s, batch_out *b) {
    uint8_t idx[TUNE_MAX_KNOBS];
    int i;
    for (int k = 0; k < s->space.n_knobs; k++) idx[k] = (uint8_t)s->space.knobs[k].default_index;
    kiln_status st = add_point(s, idx, &i);
    if (!st && s->pts[i].state == P_NEW && b->got < b->n) take(s, b, i);
    return st;
}

/* Exploration, points not yet proposed (64 draws each at most): every
** other one a neighbour of the best point so far (one or two knobs
** changed: what the model, fitted to few points, may misjudge right where
** it matters), the others uniformly random. */
static kiln_status take_random(tune_search *s, batch_out *b, int want) {
    for (int r = 0; r < want && b->got < b->n; r++)
        for (int tries = 0; tries < 64; tries++) {
            uint8_t idx[TUNE_MAX_KNOBS];
            int i;
            if (r % 2 == 0 && s->best >= 0 && tries < 32) {
                memcpy(idx, s->pts[s->best].idx, sizeof idx);
                mutate(s, idx);
            } else {
                random_idx(s, idx);
            }
            kiln_status st = add_point(s, idx, &i);
            if (st) return st;
            if (s->pts[i].state == P_NEW) {
                take(s, b, i);
                break;
            }
        }
    return KILN_OK;
}

/* The candidates by score, best first. */
static kiln_status rank_cands(tune_search *s, ranked **out) {
    kiln_status st = score_points(s, s->cands, s->n_cands);
    ranked *r = st ? NULL : kiln_malloc(sizeof(ranked) * (size_t)(s->n_cands ? s->n_cands : 1));
    if (!st && !r) st = kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory", s->space.template_name);
    if (st) return st;
    for (int j = 0; j < s->n_cands; j++) r[j] = (ranked){s->pts[s->cands[j]].score, s->cands[j]};
    qsort(r, (size_t)s->n_cands, sizeof *r, cmp_ranked);
    *out = r;
    return KILN_OK;
}

static int take_ranked(tune_search *s, batch_out *b, const ranked *r, int n_r, int from, int upto) {
    int j = from;
    for (; j < n_r && b->got < upto; j++)
        if (s->pts[r[j].i].state == P_NEW) take(s, b, r[j].i);
    return j;
}

static kiln_status fill_batch(tune_search *s, batch_out *b) {
    bool whole = s->size <= s->o.exhaustive_max;
    kiln_status st = whole ? enumerate(s) : evolve(s);
    ranked *r = NULL;
    if (!st) st = rank_cands(s, &r);
    if (st) return st;
    int left = b->n - b->got;
    int n_rand = s->o.eps > 0 ? (int)lround(s->o.eps * left) : 0;
    if (s->o.eps > 0 && left >= 4 && n_rand < 1) n_rand = 1;
    if (n_rand > left) n_rand = left;
    int j = take_ranked(s, b, r, s->n_cands, 0, b->n - n_rand);
    st = take_random(s, b, n_rand);
    if (!st) take_ranked(s, b, r, s->n_cands, j, b->n);
    kiln_free(r);
    /* a nearly exhausted space: the points no draw found */
    if (!st && b->got < b->n && !tune_search_exhausted(s) && !whole && s->size <= ((uint64_t)1 << 22)) {
        s->n_cands = 0;
        s->batch++;
        st = enumerate(s);
        for (int c = 0; !st && c < s->n_cands && b->got < b->n; c++)
            if (s->pts[s->cands[c]].state == P_NEW) take(s, b, s->cands[c]);
    }
    return st;
}

kiln_status tune_search_next_batch(tune_search *s, int n, int64_t *points, int *n_out) {
    batch_out b = {points, n, 0};
    if (n <= 0) {
        *n_out = 0;
        return KILN_OK;
    }
    s->batch++;
    s->n_cands = 0;
    kiln_status st = tune_cost_model_train(s->ctx, s->o.model);
    if (!st) st = take_default(s, &b);
    if (!st && b.got < n && !tune_search_exhausted(s)) st = fill_batch(s, &b);
    if (st) return kiln_wrap(s->ctx, st, "search (%s)", s->space.template_name);
    *n_out = b.got;
    return KILN_OK;
}

kiln_status tune_search_run(tune_search *s, int n_trials, int batch, tune_measure_fn fn, void *arg) {
    if (batch < 1) batch = 1;
    size_t nk = s->space.n_knobs ? (size_t)s->space.n_knobs : 1;
    int64_t *pts = kiln_malloc(sizeof(int64_t) * nk * (size_t)batch);
    double *secs = pts ? kiln_malloc(sizeof(double) * (size_t)batch) : NULL;
    int *status = secs ? kiln_malloc(sizeof(int) * (size_t)batch) : NULL;
    kiln_status st = status ? KILN_OK : kiln_fail(s->ctx, KILN_ERR_NOMEM, "search (%s): out of memory", s->space.template_name);
    for (int done = 0; !st && done < n_trials;) {
        int got = 0, want = n_trials - done < batch ? n_trials - done : batch;
        st = tune_search_next_batch(s, want, pts, &got);
        if (st || got == 0) break;
        for (int i = 0; i < got; i++) secs[i] = 0, status[i] = 0;
        st = fn(arg, pts, got, secs, status);
        if (st) {
            kiln_wrap(s->ctx, st, "search (%s): measuring %d points", s->space.template_name, got);
            break;
        }
        st = tune_search_report(s, pts, got, secs, status);
        done += got;
    }
    kiln_free(pts), kiln_free(secs), kiln_free(status);
    return st;
}
