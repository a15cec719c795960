/*
** cli_exec.c — the targets the kiln command runs models on.
*/
#include "cli_exec.h"

#include <string.h>
#include <time.h>

#include "autotune/compile.h"
#include "autotune/lua_schedule.h"
#include "autotune/tuner.h"
#include "cli_util.h"
#include "frontend/onnx.h"
#include "ir/ctx.h"
#include "ir/mem.h"
#include "runtime/krt_pool.h"

struct cli_exec {
    kiln_model *m;
    bool cpu;
    kc_plan *plan;
    krt_pool *pool;
    tune_lua_schedules *lua;
    tune_lookup *records;
    double prepare_ms;
};

bool cli_exec_db_arg(cli_exec_opts *o, int argc, char **argv, int *i) {
    if (*i + 1 >= argc) return false;
    if (!strcmp(argv[*i], "--db")) o->db = argv[++*i];
    else if (!strcmp(argv[*i], "--db-fallback")) o->db_fallback = argv[++*i];
    else return false;
    return true;
}

#define MAX_FALLBACK 8

/* Opens the records database with the declared fallback keys. */
static kiln_status open_records(kiln_ctx *ctx, const cli_exec_opts *o, const cg_cpu_target *t, tune_lookup **out) {
    char keys[512];
    const char *list[MAX_FALLBACK + 1] = {NULL};
    int n = 0;
    snprintf(keys, sizeof keys, "%s", o->db_fallback ? o->db_fallback : "");
    for (char *save = NULL, *k = strtok_r(keys, ",", &save); k && n < MAX_FALLBACK; k = strtok_r(NULL, ",", &save))
        list[n++] = k;
    kiln_status s = tune_lookup_open(ctx, o->db, t, o->threads > 0 ? o->threads : 1, list, out);
    return s ? kiln_wrap(ctx, s, "--db %s", o->db) : KILN_OK;
}

kiln_status cli_exec_prepare(kiln_ctx *ctx, kiln_model *m, const cli_exec_opts *o, const kiln_tensor *inputs,
                             int n_inputs, cli_exec **out) {
    bool cpu = !strcmp(o->target, "cpu");
    if (!cpu && strcmp(o->target, "ref") != 0)
        return cli_fail(ctx, "target '%s' is not available (targets: ref, cpu)", o->target);
    if (!cpu && o->schedules) return cli_fail(ctx, "--schedules needs --target cpu");
    if (!cpu && o->db) return cli_fail(ctx, "--db needs --target cpu");
    cli_exec *e = kiln_calloc(1, sizeof *e);
    if (!e) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    e->m = m;
    e->cpu = cpu;
    double t0 = cli_now_ms();
    kiln_status s = KILN_OK;
    if (cpu) {
        kc_options ko;
        kc_options_default(&ko);
        if (o->passes) ko.passes = *o->passes;
        e->pool = krt_pool_new(o->threads > 0 ? o->threads : 1);
        if (!e->pool) s = kiln_fail(ctx, KILN_ERR_NOMEM, "cannot start the thread pool");
        if (!s && o->schedules) s = tune_lua_schedules_load(ctx, o->schedules, NULL, &e->lua);
        ko.lua = e->lua;
        if (!s && o->db) s = open_records(ctx, o, &ko.cg.target, &e->records);
        ko.records = e->records;
        if (!s) s = kc_compile(ctx, kiln_model_graph(m), inputs, n_inputs, &ko, &e->plan);
    }
    e->prepare_ms = cli_now_ms() - t0;
    if (s) {
        cli_exec_free(e);
        return s;
    }
    *out = e;
    return KILN_OK;
}

kiln_status cli_exec_run(kiln_ctx *ctx, cli_exec *e, const kiln_tensor *inputs, int n_inputs,
                         kiln_tensor *outputs, int n_outputs) {
    if (!e->cpu) return kiln_model_run_ref(ctx, e->m, inputs, n_inputs, outputs, n_outputs);
    krt_pool_set_current(e->pool);
    kiln_status s = kc_run(ctx, e->plan, inputs, n_inputs, outputs, n_outputs);
    krt_pool_set_current(NULL);
    return s;
}

double cli_exec_prepare_ms(const cli_exec *e) { return e->prepare_ms; }

void cli_exec_summary(FILE *f, const cli_exec *e) {
    if (e->plan) kc_plan_summary(f, e->plan);
    if (e->records) tune_lookup_summary(f, e->records);
}

kiln_status cli_exec_print_kernels(kiln_ctx *ctx, FILE *f, const cli_exec *e, bool llvm) {
    if (!e->plan) return cli_fail(ctx, "kernels exist only for --target cpu");
    return kc_plan_print_kernels(ctx, f, e->plan, llvm);
}

kiln_status cli_exec_profile(kiln_ctx *ctx, cli_exec *e) {
    if (!e->plan) return cli_fail(ctx, "--profile needs --target cpu");
    return kc_plan_profile(ctx, e->plan);
}

void cli_exec_print_profile(FILE *f, const cli_exec *e, int top) {
    if (e->plan) kc_plan_print_profile(f, e->plan, top);
}

void cli_exec_free(cli_exec *e) {
    if (!e) return;
    kc_plan_free(e->plan);
    krt_pool_free(e->pool);
    tune_lua_schedules_free(e->lua);
    tune_lookup_close(e->records);
    kiln_free(e);
}
