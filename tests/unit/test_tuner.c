/*
** test_tuner.c — tuning a small model into a records database: every
** candidate is recorded; a second run measures nothing for tasks at their
** budget; two runs with the same seed propose the same first candidates; a
** compile with the database takes the records (and a target that differs
** in one key misses, unless that key is a declared fallback); an
** interrupted run keeps what it measured.
*/
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/compile.h"
#include "autotune/tasks.h"
#include "autotune/trace_names.h"
#include "autotune/tuner.h"
#include "autotune/records.h"
#include "autotune/templates.h"
#include <stdio.h>
#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tensor.h"

static kiln_ctx *g_ctx;
static char g_dir[64];

static const char *k_body =
    "  %m = MatMul(%x, %w)\n"
    "  %a = Add(%m, %b)\n"
    "  %y = Relu(%a)\n"
    "  %z = Sigmoid(%x)\n"
    "  output %y : f32[16,40]\n"
    "  output %z : f32[16,48]\n"
    "}\n";

/* Appends "  const %name : f32[dims] = {...}" of n values ((i * mul) % mod) / div - off. */
static size_t put_const(char *t, size_t cap, size_t len, const char *name, const char *dims, int n, int mul, int mod,
                        double div, double off) {
    len += (size_t)snprintf(t + len, cap - len, "  const %%%s : f32[%s] = {", name, dims);
    for (int i = 0; i < n; i++) len += (size_t)snprintf(t + len, cap - len, "%s%g", i ? ", " : "", ((i * mul) % mod) / div - off);
    return len + (size_t)snprintf(t + len, cap - len, "}\n");
}

/* The model's text: weights of n values written out. */
static char *model_text(void) {
    size_t cap = 64 * 1024, len = 0;
    char *t = malloc(cap);
    if (!t) return NULL;
    len += (size_t)snprintf(t + len, cap - len, "graph \"mlp\" {\n  opset 17\n  input %%x : f32[16,48]\n");
    len = put_const(t, cap, len, "w", "48,40", 48 * 40, 5, 11, 22.0, 0.25);
    len = put_const(t, cap, len, "b", "40", 40, 1, 1 << 30, 40.0, 0);
    snprintf(t + len, cap - len, "%s", k_body);
    return t;
}



typedef struct fixture {
    gir_graph *g;
    kc_plan *plan;
    tune_tasks tasks;
    kiln_tensor in;
} fixture;

static bool ensure_ctx(void) {
    if (!g_ctx) {
        kiln_ctx_new(&g_ctx);
        snprintf(g_dir, sizeof g_dir, "/tmp/kiln_tuner_XXXXXX");
        CHECK(mkdtemp(g_dir) != NULL);
    }
    return g_ctx != NULL;
}

static bool setup(fixture *fx) {
    memset(fx, 0, sizeof *fx);
    ensure_ctx();
    int64_t dims[2] = {16, 48};
    kiln_tensor_init(&fx->in, KILN_F32, 2, dims);
    kiln_status s = kiln_tensor_alloc(g_ctx, &fx->in);
    for (int64_t i = 0; !s && i < 16 * 48; i++) ((float *)fx->in.data)[i] = (float)((i * 7) % 13) / 13.0f - 0.5f;
    char *text = model_text();
    if (!s) s = text ? gir_parse(g_ctx, text, &fx->g) : KILN_ERR_NOMEM;
    free(text);
    if (!s) s = gir_bind_graph(g_ctx, fx->g);
    kc_options ko;
    kc_options_default(&ko);
    if (!s) s = kc_compile(g_ctx, fx->g, &fx->in, 1, &ko, &fx->plan);
    if (!s) s = tune_tasks_from_plan(g_ctx, fx->plan, &fx->tasks);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    return s == KILN_OK;
}

static void teardown(fixture *fx) {
    tune_tasks_free(&fx->tasks);
    kc_plan_free(fx->plan);
    gir_graph_free(fx->g);
    kiln_tensor_release(&fx->in);
}

static void opts_for(tune_run_opts *o, const char *db, int trials) {
    tune_run_opts_default(o);
    o->db_path = db;
    o->trials = trials;
    o->batch = 4;
    o->confirm = 2;
    o->seed = 7;
    o->measure.budget_ms = 5;
    o->measure.min_samples = 3;
}

static int total(const tune_run_report *r, bool now) {
    int n = 0;
    for (int i = 0; i < r->n_tasks; i++) n += now ? r->tasks[i].measured_now : r->tasks[i].measured_before;
    return n;
}

typedef struct knob_list {
    char items[64][256];
    int n;
} knob_list;

static kiln_status collect(kiln_ctx *ctx, const tune_record *r, void *user) {
    knob_list *l = user;
    if (l->n < 64 && r->trial >= 0) snprintf(l->items[l->n++], 256, "%016llx %s", (unsigned long long)r->workload_hash, r->knobs);
    return KILN_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

static void read_knobs(const char *db_path, knob_list *l) {
    tune_db *db = NULL;
    memset(l, 0, sizeof *l);
    CHECK(tune_db_open(g_ctx, db_path, TUNE_DB_READONLY, &db) == KILN_OK);
    if (db) CHECK(tune_db_foreach(g_ctx, db, NULL, collect, l) == KILN_OK);
    tune_db_close(db);
    qsort(l->items, (size_t)l->n, sizeof l->items[0], cmp_str);
}

/* Whether a confirmation record of the task holds its default point. */
typedef struct confirm_probe {
    uint64_t hash;
    char want[256];
    bool found;
} confirm_probe;

static kiln_status find_default_confirmed(kiln_ctx *ctx, const tune_record *r, void *user) {
    confirm_probe *p = user;
    size_t lw = strlen(p->want), lk = strlen(r->knobs);
    if (r->workload_hash == p->hash && r->trial == TUNE_TRIAL_CONFIRM && lk >= lw && !strcmp(r->knobs + lk - lw, p->want))
        p->found = true;
    return KILN_OK;
}

static bool default_confirmed(const char *db_path, const tune_task *task) {
    confirm_probe p = {task->hash, "", false};
    int64_t def[TUNE_MAX_KNOBS];
    tune_space_default(&task->space, def);
    tune_point_str(&task->space, def, p.want, sizeof p.want);
    tune_db *db = NULL;
    if (tune_db_open(g_ctx, db_path, TUNE_DB_READONLY, &db) == KILN_OK) tune_db_foreach(g_ctx, db, NULL, find_default_confirmed, &p);
    tune_db_close(db);
    return p.found;
}

static void tunes_and_resumes(void) {
    fixture fx;
    if (!setup(&fx)) return;
    char db[128];
    snprintf(db, sizeof db, "%s/a.db", g_dir);
    tune_run_opts o;
    opts_for(&o, db, 3);
    tune_run_report r1, r2;
    CHECK_MSG(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r1) == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(r1.n_tasks == fx.tasks.n && fx.tasks.n >= 2);
    CHECK(total(&r1, false) == 0);
    for (int i = 0; i < r1.n_tasks; i++) {
        CHECK(r1.tasks[i].measured_now >= 1 && r1.tasks[i].measured_now <= 3);
        CHECK(isfinite(r1.tasks[i].default_s) && r1.tasks[i].default_s > 0);
        CHECK(isfinite(r1.tasks[i].best_s) && r1.tasks[i].best_s > 0);
        /* the default is measured again beside the best candidates */
        CHECK_MSG(default_confirmed(db, &fx.tasks.v[i]), "task %d: default not confirmed", i);
    }
    /* at its budget: nothing measured again */
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r2) == KILN_OK);
    CHECK(total(&r2, true) == 0);
    CHECK(total(&r2, false) == total(&r1, true));
    tune_run_report_free(&r1);
    tune_run_report_free(&r2);
    /* a larger budget continues where the records stop */
    opts_for(&o, db, 5);
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r2) == KILN_OK);
    for (int i = 0; i < r2.n_tasks; i++) CHECK(r2.tasks[i].measured_before + r2.tasks[i].measured_now <= 5);
    tune_run_report_free(&r2);
    teardown(&fx);
}

static void same_seed_same_candidates(void) {
    fixture fx;
    if (!setup(&fx)) return;
    char a[128], b[128];
    snprintf(a, sizeof a, "%s/s1.db", g_dir);
    snprintf(b, sizeof b, "%s/s2.db", g_dir);
    tune_run_opts o;
    tune_run_report r;
    opts_for(&o, a, 4);
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r) == KILN_OK);
    tune_run_report_free(&r);
    opts_for(&o, b, 4);
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r) == KILN_OK);
    tune_run_report_free(&r);
    knob_list *x = calloc(2, sizeof *x);
    read_knobs(a, &x[0]);
    read_knobs(b, &x[1]);
    CHECK(x[0].n > 0 && x[0].n == x[1].n);
    for (int i = 0; i < x[0].n && i < x[1].n; i++) CHECK_MSG(!strcmp(x[0].items[i], x[1].items[i]), "%s vs %s", x[0].items[i], x[1].items[i]);
    free(x);
    teardown(&fx);
}

static void compile_takes_records(void) {
    fixture fx;
    if (!setup(&fx)) return;
    char db[128];
    snprintf(db, sizeof db, "%s/c.db", g_dir);
    tune_run_opts o;
    tune_run_report r;
    opts_for(&o, db, 2);
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r) == KILN_OK);
    tune_run_report_free(&r);
    tune_lookup *l = NULL;
    CHECK(tune_lookup_open(g_ctx, db, &fx.plan->cg.target, 1, NULL, &l) == KILN_OK);
    for (int i = 0; l && i < fx.tasks.n; i++) {
        sch_trace *t = NULL;
        const char *from = NULL;
        CHECK(tune_lookup_trace(g_ctx, l, fx.tasks.v[i].tir, &t, &from) == KILN_OK);
        CHECK(t != NULL && from && !strcmp(from, "db"));
        sch_trace_free(t);
    }
    tune_lookup_close(l);
    /* two threads are another key: a miss, unless declared a fallback */
    const char *keys[] = {"runtime.threads", NULL};
    for (int k = 0; k < 2; k++) {
        CHECK(tune_lookup_open(g_ctx, db, &fx.plan->cg.target, 2, k ? keys : NULL, &l) == KILN_OK);
        sch_trace *t = NULL;
        const char *from = NULL;
        CHECK(tune_lookup_trace(g_ctx, l, fx.tasks.v[0].tir, &t, &from) == KILN_OK);
        CHECK(k ? t && !strcmp(from, "db-fallback") : t == NULL && from == NULL);
        sch_trace_free(t);
        tune_lookup_close(l);
    }
    teardown(&fx);
}

/* Two layers of one workload (other weights, other names) and a record
** whose schedule packs the weights otherwise than the default: both layers
** run the tuned kernel, each with its own weights packed its way. */
static const char *k_layers =
    "  %m1 = MatMul(%x, %w1)\n  %y = Relu(%m1)\n"
    "  %m2 = MatMul(%x, %w2)\n  %z = Relu(%m2)\n"
    "  output %y : f32[8,64]\n  output %z : f32[8,64]\n}\n";

static gir_graph *layers_graph(void) {
    size_t cap = 64 * 1024, len = 0;
    char *t = malloc(cap);
    gir_graph *g = NULL;
    if (!t) return NULL;
    len += (size_t)snprintf(t + len, cap - len, "graph \"layers\" {\n  opset 17\n  input %%x : f32[8,24]\n");
    len = put_const(t, cap, len, "w1", "24,64", 24 * 64, 7, 17, 17.0, 0.5);
    len = put_const(t, cap, len, "w2", "24,64", 24 * 64, 11, 17, 17.0, 0.5);
    snprintf(t + len, cap - len, "%s", k_layers);
    if (gir_parse(g_ctx, t, &g) || gir_bind_graph(g_ctx, g)) CHECK_MSG(false, "%s", kiln_errmsg(g_ctx));
    free(t);
    return g;
}

/* A record of the task at a point whose `vectors` differs from the default,
** its inputs named by position or (as older records) by the first layer's names. */
static bool add_other_point(const char *db_path, const tune_task *task, const cg_cpu_target *target, bool positional) {
    int64_t pt[TUNE_MAX_KNOBS];
    tune_space_default(&task->space, pt);
    int k = tune_knob_index(&task->space, "vectors");
    if (k < 0) return false;
    const tune_knob *kn = &task->space.knobs[k];
    int64_t want = pt[k] == 1 ? 4 : 1; /* 16 or 64 columns a tile: another packing */
    for (int v = 0; v < kn->n_values; v++)
        if (kn->values[v] == want) pt[k] = want;
    if (pt[k] != want) return false;
    sch_trace *tr = NULL, *c = NULL;
    char desc[TUNE_TARGET_MAX], *text = NULL;
    size_t len = 0;
    bool ok = !tune_trace_from_knobs(g_ctx, task->tir, target, &task->space, pt, &tr) &&
              !(positional ? tune_trace_canonical(g_ctx, tr, task->tir, &c) : tune_trace_between(g_ctx, tr, task->tir, task->tir, &c)) &&
              !tune_target_for(g_ctx, target, 1, desc, sizeof desc);
    FILE *f = ok ? open_memstream(&text, &len) : NULL;
    if (f) sch_trace_print(f, c), fclose(f);
    tune_db *db = NULL;
    if (text && !tune_db_open(g_ctx, db_path, TUNE_DB_CREATE, &db)) {
        tune_record r;
        tune_record_init(&r);
        r.workload_hash = task->hash, r.workload_desc = "layers", r.workload_ops = task->name, r.target = desc;
        r.trace = text, r.knobs = "vectors", r.median_s = 1e-6, r.n_repeats = 1, r.trial = TUNE_TRIAL_CONFIRM;
        r.kiln_version = "test", r.error = "";
        ok = !tune_db_add_record(g_ctx, db, &r, NULL) && (strstr(text, "$in1_packed") != NULL) == positional;
    }
    tune_db_close(db);
    free(text);
    sch_trace_free(tr);
    sch_trace_free(c);
    return ok;
}

static void layers_run_tuned_kernel(bool positional) {
    if (!ensure_ctx()) return;
    gir_graph *g = layers_graph();
    int64_t dims[2] = {8, 24};
    kiln_tensor x, want[2], got[2];
    kiln_tensor_init(&x, KILN_F32, 2, dims);
    kc_plan *p = NULL, *q = NULL;
    tune_tasks tasks = {0, NULL};
    kc_options ko;
    kc_options_default(&ko);
    kiln_status s = g ? kiln_tensor_alloc(g_ctx, &x) : KILN_ERR_INVALID;
    for (int64_t i = 0; !s && i < 8 * 24; i++) ((float *)x.data)[i] = (float)((i * 5) % 7) / 7.0f - 0.4f;
    if (!s) s = kc_compile(g_ctx, g, &x, 1, &ko, &p);
    if (!s) s = tune_tasks_from_plan(g_ctx, p, &tasks);
    CHECK_MSG(!s && tasks.n == 1 && tasks.v[0].weight == 2, "%s", kiln_errmsg(g_ctx));
    char db[128];
    snprintf(db, sizeof db, "%s/layers%d.db", g_dir, positional);
    if (!s && tasks.n == 1) CHECK(add_other_point(db, &tasks.v[0], &p->cg.target, positional));
    tune_lookup *l = NULL;
    if (!s) s = tune_lookup_open(g_ctx, db, &p->cg.target, 1, NULL, &l);
    ko.records = l;
    if (!s) s = kc_compile(g_ctx, g, &x, 1, &ko, &q);
    if (!s) s = gir_interp_run(g_ctx, g, &x, 1, want, 2);
    if (!s) s = kc_run(g_ctx, q, &x, 1, got, 2);
    CHECK_MSG(!s, "%s", kiln_errmsg(g_ctx));
    for (int k = 0; !s && k < 2; k++) {
        double d = 0;
        for (int64_t i = 0; i < 8 * 64; i++) d = fmax(d, fabs(((float *)want[k].data)[i] - ((float *)got[k].data)[i]));
        CHECK_MSG(d < 1e-5, "layer %d differs by %g (%s names)", k + 1, d, positional ? "positional" : "real");
        kiln_tensor_release(&want[k]);
        kiln_tensor_release(&got[k]);
    }
    CHECK(q && q->n_kernels == 1 && !strcmp(q->kernels[0]->schedule_from, "db"));
    tune_lookup_close(l);
    tune_tasks_free(&tasks);
    kc_plan_free(p);
    kc_plan_free(q);
    kiln_tensor_release(&x);
    gir_graph_free(g);
}

static void layers_share_tuned_kernels(void) {
    layers_run_tuned_kernel(true);
    layers_run_tuned_kernel(false);
}

/* A budget bounds the whole run, confirmations included (loosely: the
** first round of a task has no pace to go by, and this machine is shared). */
static void budget_bounds_the_run(void) {
    fixture fx;
    if (!setup(&fx)) return;
    char db[128];
    snprintf(db, sizeof db, "%s/b.db", g_dir);
    tune_run_opts o;
    tune_run_report r;
    opts_for(&o, db, 100000);
    o.budget_s = 1.5;
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r) == KILN_OK);
    CHECK_MSG(r.seconds < o.budget_s + 3.0, "a 1.5 s budget took %.1f s", r.seconds);
    CHECK(total(&r, true) > 0);
    tune_run_report_free(&r);
    teardown(&fx);
}

static void interrupted_keeps_records(void) {
    fixture fx;
    if (!setup(&fx)) return;
    char db[128];
    snprintf(db, sizeof db, "%s/i.db", g_dir);
    volatile sig_atomic_t stop = 1; /* set before the first round: nothing measured, nothing lost */
    tune_run_opts o;
    tune_run_report r;
    opts_for(&o, db, 4);
    o.interrupted = &stop;
    CHECK(tune_run(g_ctx, &fx.tasks, &fx.plan->cg.target, &o, &r) == KILN_OK);
    CHECK(r.interrupted && total(&r, true) == 0);
    tune_run_report_free(&r);
    teardown(&fx);
}

static void points_parse(void) {
    fixture fx;
    if (!setup(&fx)) return;
    const tune_space *sp = &fx.tasks.v[0].space;
    int64_t def[TUNE_MAX_KNOBS], back[TUNE_MAX_KNOBS];
    char text[512];
    tune_space_default(sp, def);
    tune_point_str(sp, def, text, sizeof text);
    CHECK(tune_point_parse(sp, text, back));
    CHECK(!memcmp(def, back, sizeof(int64_t) * (size_t)sp->n_knobs));
    CHECK(!tune_point_parse(sp, "other tile=1", back));
    if (sp->n_knobs) {
        char *cut = strrchr(text, ' ');
        *cut = 0; /* a knob missing */
        CHECK(!tune_point_parse(sp, text, back));
    }
    teardown(&fx);
}

static void remove_files(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
    kiln_ctx_free(g_ctx);
}

TEST_MAIN(T(points_parse), T(tunes_and_resumes), T(same_seed_same_candidates), T(compile_takes_records), T(layers_share_tuned_kernels), T(budget_bounds_the_run),
          T(interrupted_keeps_records), T(remove_files))
