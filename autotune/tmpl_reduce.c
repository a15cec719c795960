/*
** tmpl_reduce.c — functions with reductions that no specialised template
** claims: Reduce*, softmax rows, normalization statistics, ArgMax, the
** global pools, and anything else with a reduction axis.
**
** When the output is elementwise over statistics (softmax: row_max and
** row_sum, read back by the output at the row's index), the statistics are
** computed per row inside the output's loop, where the row is still in
** cache:
**
**   for (the axes outside the row, fused) parallel          P
**     row_max[P] = ...   (vector partial sums, or a vector accumulator)
**     row_sum[P] = ...
**     for the row's axes, the innermost vectorized
**       out = f(x, row_max[P], row_sum[P])
**
** Every other stage gets the generic schedule (tmpl_generic.c).
**
** Knobs: vectors, rfactor (inner reductions as vector partial sums), cache
** (accumulate in a local tile), parallel, attach (statistics inside the
** output's row loop), inline.
*/
#include "tmpl_internal.h"

#define MAX_STATS 64
#define STAT_REGION_MAX (1 << 16) /* elements of a statistic computed per row */


static const tir_stage *main_stage(const tir_func *f) {
    const tir_stage *best = NULL;
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->n_raxes && (!best || tmpl_work(f->stages[i]) > tmpl_work(best))) best = f->stages[i];
    return best;
}

static kiln_status rd_space(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx;
    const tir_stage *m = main_stage(f);
    *applies = m && tmpl_names_ok(f);
    if (!*applies) return KILN_OK;
    tmpl_gen g = tmpl_gen_default(m, t);
    int lanes = tmpl_lanes(t, tmpl_elem_bytes(m));
    static const int64_t vecs[] = {1, 2, 4, 0}, par[] = {1, 0, 2}, onoff[] = {1, 0};
    tmpl_knob(sp, "vectors", 4, vecs, g.vec / lanes);
    tmpl_knob(sp, "rfactor", 2, onoff, 1);
    tmpl_knob(sp, "cache", 2, onoff, 1);
    tmpl_knob(sp, "parallel", 3, par, 1);
    tmpl_knob(sp, "attach", 2, onoff, 1);
    tmpl_knob(sp, "inline", 2, onoff, 1);
    return KILN_OK;
}

/* ---- statistics computed inside the output's row loop ---- */

/* Whether every load of t in e indexes dims [0, upto) with q's own axes
** (or 0 where t has extent 1). */
static bool aligned(const ex_expr *e, const tir_tensor *t, const tir_stage *q, int upto) {
    if (e->kind == EX_LOAD && e->tensor == t) {
        if (e->n_args != t->rank || q->n_axes < upto) return false;
        for (int d = 0; d < upto; d++) {
            const ex_expr *a = e->args[d];
            int64_t c;
            bool ok = (a->kind == EX_VAR && a->var == q->axes[d]) ||
                      (t->dims[d] == 1 && ex_is_const_int(a, &c) && c == 0);
            if (!ok) return false;
        }
    }
    for (int i = 0; i < e->n_args; i++)
        if (!aligned(e->args[i], t, q, upto)) return false;
    return true;
}

typedef struct rows {
    const tir_stage *E;
    int n;                              /* candidate statistics */
    const tir_stage *stat[MAX_STATS];   /* in stage order */
    bool ok[MAX_STATS];
    int d0;                             /* the first reduced dim of E */
} rows;

static int stat_index(const rows *r, const tir_stage *s) {
    for (int i = 0; i < r->n; i++)
        if (r->stat[i] == s) return i;
    return -1;
}

/* Whether every reader of s is E or a statistic still ok. */
static bool readers_inside(tb *b, const tir_func *f, const rows *r, const tir_stage *s) {
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *q = f->stages[i];
        sch_stage *qs = tb_stage(b, q->name);
        if (q == s || !qs || qs->attach == SCH_INLINE || !tmpl_reads(q->body, s->out)) continue;
        if (q == r->E) continue;
        int k = stat_index(r, q);
        if (k < 0 || !r->ok[k]) return false;
    }
    /* an inlined reader reads it from wherever that reader's consumers run */
    for (int i = 0; i < f->n_stages; i++) {
        sch_stage *qs = tb_stage(b, f->stages[i]->name);
        if (qs && qs->attach == SCH_INLINE && tmpl_reads(f->stages[i]->body, s->out)) return false;
    }
    return true;
}

static void find_stats(tb *b, const tir_func *f, rows *r) {
    const tir_stage *E = r->E;
    int n = E->n_axes;
    r->n = 0;
    r->d0 = n;
    for (int i = 0; i < f->n_stages && f->stages[i] != E && r->n < MAX_STATS; i++) {
        const tir_stage *s = f->stages[i];
        sch_stage *ss = tb_stage(b, s->name);
        if (!ss || ss->attach != SCH_ROOT || ss->n_rels || ss->cw || tmpl_is_output(f, s->out) || s->n_axes != n)
            continue;
        r->stat[r->n++] = s;
        for (int d = 0; d < n; d++)
            if (s->out->dims[d] == 1 && E->out->dims[d] > 1) {
                if (d < r->d0) r->d0 = d;
                break;
            }
    }
    /* readers first: a statistic qualifies when all its readers are inside */
    for (int k = r->n - 1; k >= 0; k--) {
        const tir_stage *s = r->stat[k];
        int64_t region = 1;
        for (int d = r->d0; d < n; d++) region *= s->out->dims[d] > 0 ? s->out->dims[d] : 1;
        bool ok = region <= STAT_REGION_MAX && r->d0 > 0;
        r->ok[k] = false;
        for (int i = 0; ok && i < f->n_stages; i++) {
            const tir_stage *q = f->stages[i];
            if (q != s && tmpl_reads(q->body, s->out) && (q == E || stat_index(r, q) >= 0))
                ok = q->n_axes == n && aligned(q->body, s->out, q, r->d0 < n ? r->d0 : n);
        }
        r->ok[k] = ok && readers_inside(b, f, r, s);
    }
}

static void row_schedule(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt,
                         const tir_stage *E) {
    rows r = {.E = E};
    int n = E->n_axes;
    sch_stage *es = tb_stage(b, E->name);
    if (n < 1 || n > SCH_MAX_NAMES - 1 || !es || es->attach != SCH_ROOT || es->n_rels) return;
    find_stats(b, f, &r);
    int any = 0;
    int64_t work = tmpl_work(E);
    for (int k = 0; k < r.n; k++)
        if (r.ok[k]) any++, work += tmpl_work(r.stat[k]);
    if (!any) return;
    tmpl_gen g = tmpl_gen_at(E, t, sp, pt);
    int64_t par = tmpl_val(sp, pt, "parallel", 1);
    g.parallel = par == 2 || (par == 1 && work >= TMPL_PAR_MIN_WORK);
    const char *name = E->name, *vi = E->axes[n - 1]->name, *vo = NULL, *outer[SCH_MAX_NAMES];
    int no = 0;
    if (g.vec > 1) g.vec = tmpl_vec_tile(E->axes[n - 1]->extent, g.vec, g.lanes, false).tile;
    if (g.vec > 1 && E->axes[n - 1]->extent > g.vec) tb_split1(b, name, vi, g.vec, &vo, &vi);
    if (r.d0 < n) {
        for (int d = 0; d < r.d0; d++) outer[no++] = E->axes[d]->name;
    } else {
        for (int d = 0; d < n - 1; d++) outer[no++] = E->axes[d]->name;
        if (vo) outer[no++] = vo;
    }
    const char *p = no ? tb_fuse(b, name, no, outer) : NULL;
    if (!p) return;
    if (g.vec > 1 && tb_extent(b, name, vi) >= 2) tb_vectorize(b, name, vi);
    if (g.parallel) tb_parallel(b, name, p);
    for (int k = 0; k < r.n && !b->err; k++) {
        if (!r.ok[k]) continue;
        tb_compute_at(b, r.stat[k]->name, name, p);
        tmpl_gen gs = tmpl_gen_at(r.stat[k], t, sp, pt);
        tmpl_sched_stage(b, r.stat[k], &gs, true);
    }
}

static void rd_trace(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    if (tmpl_val(sp, pt, "inline", 1)) tmpl_inline_chains(b, f, NULL);
    const tir_stage *E = f->n_outputs ? f->outputs[f->n_outputs - 1]->stage : NULL;
    if (E && !E->n_raxes && tmpl_val(sp, pt, "attach", 1)) row_schedule(b, f, t, sp, pt, E);
    tmpl_sched_rest(b, f, t, sp, pt);
}

const tmpl_def tmpl_reduce = {"reduce", rd_space, rd_trace};
