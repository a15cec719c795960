/*
** test_lua_schedule.c — the Lua sandbox (escapes, budgets, messages) and
** schedule scripts (bindings, traces, errors with file and line).
*/
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/lua_sandbox.h"
#include "autotune/lua_schedule.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/mem.h"
#include "ir/lir.h"
#include "ir/tensor.h"

static kiln_ctx *g_ctx;
static char g_dir[64];

static void setup(void) {
    if (!g_ctx) kiln_ctx_new(&g_ctx);
    if (!g_dir[0]) {
        snprintf(g_dir, sizeof g_dir, "/tmp/kiln_lua_XXXXXX");
        if (!mkdtemp(g_dir)) g_dir[0] = 0;
    }
    g_ctx->msg[0] = 0;
}

/* Writes `text` to a file in the test folder; returns its path (static buffer). */
static const char *write_script(const char *name, const char *text) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", g_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return path;
    fputs(text, f);
    fclose(f);
    return path;
}

static bool starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

/* Runs `text` as chunk "t.lua" in a fresh sandbox; returns the status. */
static kiln_status run(const char *text, const tune_lua_limits *lim) {
    setup();
    tune_lua *sb = NULL;
    kiln_status st = tune_lua_new(g_ctx, lim, &sb);
    if (st != KILN_OK) return st;
    st = tune_lua_run_string(g_ctx, sb, "t.lua", text);
    tune_lua_free(sb);
    return st;
}

#define CHECK_FAILS(text, status, prefix, needle)                                           \
    do {                                                                                    \
        kiln_status st_ = run(text, NULL);                                                  \
        CHECK_MSG(st_ == (status), "%s -> %d: %s", text, st_, kiln_errmsg(g_ctx));          \
        CHECK_MSG(starts_with(kiln_errmsg(g_ctx), prefix), "%s", kiln_errmsg(g_ctx));       \
        CHECK_MSG(strstr(kiln_errmsg(g_ctx), needle), "%s", kiln_errmsg(g_ctx));            \
    } while (0)

static void t_sandbox_allows_safe_code(void) {
    kiln_status st = run("local t = {}\n"
                         "for i = 1, 10 do t[#t + 1] = string.format('%d', i * i) end\n"
                         "assert(table.concat(t, ',') == '1,4,9,16,25,36,49,64,81,100')\n"
                         "assert(math.max(3, 7) == 7 and math.floor(2.5) == 2)\n"
                         "assert(('key=value'):match('(%w+)=(%w+)') == 'key')\n"
                         "assert(select('#', pcall(error, 'x')) == 2)\n"
                         "assert(utf8.char(72, 105) == 'Hi')\n"
                         "local f = assert(load('return 1 + 2'))\n"
                         "assert(f() == 3)\n"
                         "math.randomseed(7); local r = math.random(1, 10); assert(r >= 1 and r <= 10)\n",
                         NULL);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
}

static void t_sandbox_escapes_refused(void) {
    CHECK_FAILS("local f = io.open('/etc/passwd')", KILN_ERR_INVALID, "t.lua:1:", "global 'io'");
    CHECK_FAILS("\nos.execute('true')", KILN_ERR_INVALID, "t.lua:2:", "global 'os'");
    CHECK_FAILS("require('os')", KILN_ERR_INVALID, "t.lua:1:", "global 'require'");
    CHECK_FAILS("dofile('/etc/passwd')", KILN_ERR_INVALID, "t.lua:1:", "global 'dofile'");
    CHECK_FAILS("loadfile('/etc/passwd')", KILN_ERR_INVALID, "t.lua:1:", "global 'loadfile'");
    CHECK_FAILS("debug.getinfo(1)", KILN_ERR_INVALID, "t.lua:1:", "global 'debug'");
    CHECK_FAILS("local x = package.loaded", KILN_ERR_INVALID, "t.lua:1:", "global 'package'");
    CHECK_FAILS("collectgarbage('count')", KILN_ERR_INVALID, "t.lua:1:", "global 'collectgarbage'");
    CHECK_FAILS("string.dump(print)", KILN_ERR_INVALID, "t.lua:1:", "field 'dump'");
    CHECK_FAILS("local s = ('x').dump(print)", KILN_ERR_INVALID, "t.lua:1:", "field 'dump'");
    CHECK_FAILS("coroutine.create(print)", KILN_ERR_INVALID, "t.lua:1:", "global 'coroutine'");
    CHECK_FAILS("setmetatable({}, {__gc = function() while true do end end})", KILN_ERR_INVALID, "t.lua:1:",
                "__gc");
    CHECK_FAILS("math.randomseed()", KILN_ERR_INVALID, "t.lua:1:", "number expected");
    /* binary chunks: refused by load in any mode */
    CHECK_FAILS("local f, e = load(string.char(27) .. 'LuaT\\0\\25\\147')\n"
                "assert(f == nil and e:find('binary'), e)\n"
                "f, e = load('return 1', 'x', 'b')\n"
                "assert(f == nil and e:find('binary'), e)\n"
                "error('refused: ' .. e)",
                KILN_ERR_INVALID, "t.lua:5:", "refused: binary chunks are not allowed");
}

static void t_sandbox_bytecode_file_refused(void) {
    setup();
    const char *path = write_script("bin.lua", "\033LuaT\0\031\223\r\n");
    tune_lua *sb = NULL;
    CHECK(tune_lua_new(g_ctx, NULL, &sb) == KILN_OK);
    kiln_status st = tune_lua_run_file(g_ctx, sb, path);
    CHECK_MSG(st == KILN_ERR_PARSE, "%d %s", st, kiln_errmsg(g_ctx));
    CHECK_MSG(starts_with(kiln_errmsg(g_ctx), path), "%s", kiln_errmsg(g_ctx));
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "binary chunk"), "%s", kiln_errmsg(g_ctx));
    st = tune_lua_run_file(g_ctx, sb, "/nonexistent/x.lua");
    CHECK_MSG(st == KILN_ERR_IO, "%d %s", st, kiln_errmsg(g_ctx));
    CHECK_MSG(strstr(kiln_errmsg(g_ctx), "/nonexistent/x.lua"), "%s", kiln_errmsg(g_ctx));
    tune_lua_free(sb);
}

static void t_sandbox_instruction_budget(void) {
    CHECK_FAILS("local n = 0\nwhile true do n = n + 1 end", KILN_ERR_INVALID, "t.lua:2:",
                "instruction budget of 10000000 exceeded");
    /* pcall and xpcall cannot swallow the end of the budget */
    CHECK_FAILS("while true do\n  pcall(function() while true do end end)\nend", KILN_ERR_INVALID, "t.lua:2:",
                "instruction budget");
    CHECK_FAILS("while true do\n  xpcall(function() while true do end end, function(e) while true do end end)\nend",
                KILN_ERR_INVALID, "t.lua:2:", "instruction budget");
    /* a closing method cannot either */
    CHECK_FAILS("do\n local x <close> = setmetatable({}, {__close = function() while true do end end})\n"
                " while true do end\nend",
                KILN_ERR_INVALID, "t.lua:", "instruction budget");
    tune_lua_limits lim = {1000, 0};
    kiln_status st = run("for i = 1, 100 do end", &lim);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    st = run("for i = 1, 100000 do end", &lim);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "budget of 1000"), "%s", kiln_errmsg(g_ctx));
}

static void t_sandbox_memory_budget(void) {
    CHECK_FAILS("local t = {}\nfor i = 1, 1e9 do\n  t[i] = string.rep('x', 1000) .. i\nend", KILN_ERR_INVALID,
                "t.lua:3:", "memory budget of 67108864 bytes exceeded");
    CHECK_FAILS("local s = 'x'\nwhile true do s = s .. s end", KILN_ERR_INVALID, "t.lua:2:", "memory budget");
    CHECK_FAILS("local t = {}\nlocal i = 0\nwhile true do i = i + 1; t[i] = i end", KILN_ERR_INVALID, "t.lua:3:",
                "memory budget");
    CHECK_FAILS("local s = string.rep('x', 1 << 30)", KILN_ERR_INVALID, "t.lua:1:", "memory budget");
    /* a caught memory error leaves the script bounded by the instruction budget */
    CHECK_FAILS("while true do pcall(string.rep, 'x', 1e9) end", KILN_ERR_INVALID, "t.lua:1:", "budget");
    tune_lua_limits lim = {0, 1 << 20};
    kiln_status st = run("local t = {}\nfor i = 1, 1e6 do t[i] = i end", &lim);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "t.lua:2: memory budget of 1048576"), "%s",
              kiln_errmsg(g_ctx));
    lim.max_bytes = 100;
    setup();
    tune_lua *sb = NULL;
    st = tune_lua_new(g_ctx, &lim, &sb);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "too small"), "%s", kiln_errmsg(g_ctx));
}

static void t_sandbox_pattern_guard(void) {
    CHECK_FAILS("local s = string.rep('a', 100000)\nlocal i = s:find(string.rep('a*', 12) .. 'b')", KILN_ERR_INVALID,
                "t.lua:2:", "backtrack");
    CHECK_FAILS("local s = string.rep('a', 100000)\nfor w in s:gmatch('.-.-.-b') do end", KILN_ERR_INVALID,
                "t.lua:2:", "backtrack");
    /* plain find and ordinary patterns are fine on long subjects */
    kiln_status st = run("local s = string.rep('ab', 50000)\n"
                         "assert(s:find('ba', 1, true) == 2)\n"
                         "assert(select(2, s:gsub('ab', 'x')) == 50000)\n"
                         "assert(s:match('^(a)b') == 'a')\n",
                         NULL);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK_FAILS("string.find()", KILN_ERR_INVALID, "t.lua:1:", "bad argument #1 to 'string.find'");
}

static void t_sandbox_errors_name_file_and_line(void) {
    CHECK_FAILS("local x = 1\n\nlocal y = = 2\n", KILN_ERR_PARSE, "t.lua:3:", "unexpected symbol");
    CHECK_FAILS("local function f()\n  local t = nil\n  return t.x\nend\nf()", KILN_ERR_INVALID, "t.lua:3:",
                "attempt to index a nil value (local 't')");
    CHECK_FAILS("\nerror('plain')", KILN_ERR_INVALID, "t.lua:2: plain", "plain");
    CHECK_FAILS("\n\nerror('no position', 0)", KILN_ERR_INVALID, "t.lua:3: no position", "no position");
    CHECK_FAILS("error({})", KILN_ERR_INVALID, "t.lua:1:", "error object is a table value");
    CHECK_FAILS("error(setmetatable({}, {__tostring = function() return 'custom' end}))", KILN_ERR_INVALID,
                "t.lua:1:", "custom");
    /* endless recursion: Lua's stack limit or the memory budget, whichever comes first */
    CHECK_FAILS("local function f() return f() + 1 end\nf()", KILN_ERR_INVALID, "t.lua:1:", "");
    tune_lua_limits big = {0, (size_t)512 << 20};
    kiln_status rst = run("local function f() return f() + 1 end\nf()", &big);
    CHECK_MSG(rst == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "t.lua:1: stack overflow"), "%s",
              kiln_errmsg(g_ctx));

    /* a long path is reported in full, not as Lua's "...tail" */
    setup();
    char name[300];
    snprintf(name, sizeof name, "%s", "0123456789/0123456789/0123456789/0123456789/0123456789/0123456789/x.lua");
    tune_lua *sb = NULL;
    CHECK(tune_lua_new(g_ctx, NULL, &sb) == KILN_OK);
    kiln_status st = tune_lua_run_string(g_ctx, sb, name, "\nlocal x = nil + 1");
    CHECK_MSG(st == KILN_ERR_INVALID && starts_with(kiln_errmsg(g_ctx), name) &&
                  strstr(kiln_errmsg(g_ctx), "x.lua:2: attempt to perform arithmetic"),
              "%s", kiln_errmsg(g_ctx));
    st = tune_lua_run_string(g_ctx, sb, name, "\n\nlocal x = = nil");
    CHECK_MSG(st == KILN_ERR_PARSE && starts_with(kiln_errmsg(g_ctx), name) && strstr(kiln_errmsg(g_ctx), "x.lua:3:"),
              "%s", kiln_errmsg(g_ctx));
    tune_lua_free(sb);

    /* a file */
    const char *path = write_script("err.lua", "local a = 1\nlocal b = a .. {}\n");
    char saved[256];
    snprintf(saved, sizeof saved, "%s:2: attempt to concatenate", path);
    CHECK(tune_lua_new(g_ctx, NULL, &sb) == KILN_OK);
    st = tune_lua_run_file(g_ctx, sb, path);
    CHECK_MSG(st == KILN_ERR_INVALID && starts_with(kiln_errmsg(g_ctx), saved), "%s", kiln_errmsg(g_ctx));
    tune_lua_free(sb);
}

/* Every allocation failure is an error, never a crash or a leak. */
static void t_sandbox_allocation_failures(void) {
    setup();
    long live = kiln_mem_live();
    int failures = 0, successes = 0;
    for (long n = 0; n < 2000; n++) {
        tune_lua *sb = NULL;
        kiln_mem_fail_after(n);
        kiln_status st = tune_lua_new(g_ctx, NULL, &sb);
        if (st == KILN_OK)
            st = tune_lua_run_string(g_ctx, sb, "t.lua", "local t = {}\nfor i = 1, 100 do t[i] = 'x' .. i end");
        kiln_mem_fail_after(-1);
        tune_lua_free(sb);
        if (st == KILN_OK) {
            successes++;
            break;
        }
        failures++;
        CHECK_MSG(st == KILN_ERR_NOMEM, "n=%ld: %d %s", n, st, kiln_errmsg(g_ctx));
        CHECK_MSG(strstr(kiln_errmsg(g_ctx), "memory"), "n=%ld: %s", n, kiln_errmsg(g_ctx));
    }
    CHECK(failures > 10 && successes == 1);
    CHECK(kiln_mem_live() == live);
}

/* ---- schedule scripts ---- */

static void rename_axes(tir_func *f, tir_stage *s, const char *a, const char *b) {
    s->axes[0]->name = kiln_arena_strdup(f->arena, a);
    s->axes[1]->name = kiln_arena_strdup(f->arena, b);
}

/* C[i, j] = sum(k) A[i, k] * B[k, j]; with `relu`, D[i, j] = max(C[i, j], 0)
** is the output; B is constant when `bconst` is given. */
static tir_func *matmul_func(int64_t M, int64_t N, int64_t K, bool relu, const kiln_tensor *bconst) {
    tir_func *f = tir_func_new("mm");
    int64_t da[2] = {M, K}, db[2] = {K, N}, dc[2] = {M, N};
    tir_tensor *A = tir_placeholder(f, "A", KILN_F32, 2, da, NULL);
    tir_tensor *B = tir_placeholder(f, "B", KILN_F32, 2, db, bconst);
    tir_stage *C = tir_stage_new(f, "C", KILN_F32, 2, dc, TIR_TAG_MATMUL);
    rename_axes(f, C, "i", "j");
    ex_var *k = tir_stage_add_raxis(f, C, "k", K);
    ex_builder *b = &f->eb;
    ex_expr *ia[2] = {ex_varref(b, C->axes[0]), ex_varref(b, k)};
    ex_expr *ib[2] = {ex_varref(b, k), ex_varref(b, C->axes[1])};
    ex_expr *prod = ex_binary(b, EX_MUL, ex_load_tensor(b, A, ia), ex_load_tensor(b, B, ib));
    const ex_var *rk[1] = {k};
    C->body = ex_reduce(b, EX_SUM, prod, rk, 1, ex_combiner_identity(b, EX_SUM, KILN_F32));
    if (!relu) {
        tir_mark_output(f, C->out);
        return f;
    }
    tir_stage *D = tir_stage_new(f, "D", KILN_F32, 2, dc, TIR_TAG_ELEMWISE);
    rename_axes(f, D, "i", "j");
    ex_expr *ic[2] = {ex_varref(b, D->axes[0]), ex_varref(b, D->axes[1])};
    D->body = ex_binary(b, EX_MAX, ex_load_tensor(b, C->out, ic), ex_const_float(b, KILN_F32, 0));
    tir_mark_output(f, D->out);
    return f;
}

static char *trace_text(const sch_trace *t) {
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) return NULL;
    sch_trace_print(m, t);
    fclose(m);
    return buf;
}

/* Runs f lowered on inputs made from `seed` (constants keep their data,
** packed or not); returns the outputs, one malloc'd block per output. */
static bool run_lowered(const tir_func *f, const lir_func *lf, unsigned seed, float **outs) {
    void *args[32] = {0};
    bool ok = lf->n_args <= 32;
    for (int a = 0; ok && a < lf->n_args; a++) {
        const lir_buffer *b = lf->args[a];
        const kiln_tensor *k = b->constant ? b->constant : a < f->n_inputs ? f->inputs[a]->constant : NULL;
        if (k) {
            args[a] = k->data;
            continue;
        }
        float *d = calloc((size_t)(b->size ? b->size : 1), sizeof(float));
        ok = d && b->dtype == KILN_F32;
        for (int64_t k = 0; ok && a < lf->n_inputs && k < b->size; k++)
            d[k] = (float)((seed = seed * 1103515245u + 12345u) >> 16 & 0xff) / 64.0f - 2.0f;
        args[a] = d;
    }
    kiln_ctx *c = NULL;
    kiln_ctx_new(&c);
    ok = ok && lir_interp_run(c, lf, args) == KILN_OK;
    CHECK_MSG(ok, "%s", kiln_errmsg(c));
    kiln_ctx_free(c);
    for (int a = 0; a < lf->n_args; a++) {
        if (a >= lf->n_inputs && a - lf->n_inputs < 8) outs[a - lf->n_inputs] = args[a];
        else if (!(a < f->n_inputs && f->inputs[a]->constant)) free(args[a]);
    }
    return ok;
}

/* Multiply-adds of the function's stages: the interpreter's work. */
static double work(const tir_func *f) {
    double w = 0;
    for (int i = 0; i < f->n_stages; i++) {
        double n = 1;
        for (int d = 0; d < f->stages[i]->out->rank; d++) n *= (double)f->stages[i]->out->dims[d];
        for (int r = 0; r < f->stages[i]->n_raxes; r++) n *= (double)f->stages[i]->raxes[r]->extent;
        w += n;
    }
    return w;
}

/* The trace lowers, and (for small functions, on the loop-IR interpreter)
** computes what the default nest computes. */
static void check_lowering(const tir_func *f, const sch_trace *t) {
    kiln_ctx *c = NULL;
    kiln_ctx_new(&c);
    lir_func *lf = NULL, *ref = NULL;
    sch_trace *empty = sch_trace_new();
    kiln_status st = sch_lower(c, f, t, &lf);
    CHECK_MSG(st == KILN_OK, "lowering the script's trace: %s", kiln_errmsg(c));
    if (st == KILN_OK) st = sch_lower(c, f, empty, &ref);
    CHECK_MSG(st == KILN_OK, "lowering the default nest: %s", kiln_errmsg(c));
    float *got[8] = {0}, *want[8] = {0};
    if (st == KILN_OK && work(f) < 4e5 && run_lowered(f, lf, 7, got) && run_lowered(f, ref, 7, want)) {
        for (int o = 0; o < ref->n_args - ref->n_inputs && o < 8; o++) {
            const lir_buffer *b = ref->args[ref->n_inputs + o];
            int bad = 0;
            for (int64_t k = 0; k < b->size; k++) {
                float d = got[o][k] - want[o][k], m = want[o][k] < 0 ? -want[o][k] : want[o][k];
                if ((d < 0 ? -d : d) > 1e-4f * (1 + m) && bad++ < 3)
                    CHECK_MSG(false, "%s[%lld]: %g, the default nest gives %g", b->name, (long long)k, got[o][k],
                              want[o][k]);
            }
        }
    }
    for (int o = 0; o < 8; o++) free(got[o]), free(want[o]);
    lir_func_free(lf);
    lir_func_free(ref);
    sch_trace_free(empty);
    kiln_ctx_free(c);
}

/* Loads `script` (named "s.lua"), applies it to f; returns the trace text
** (malloc'd) or NULL with the status in *st. */
static char *apply_text(const char *script, const tir_func *f, kiln_status *st, bool *matched) {
    setup();
    tune_lua_schedules *ls = NULL;
    sch_trace *t = NULL;
    *st = tune_lua_schedules_load_string(g_ctx, "s.lua", script, NULL, &ls);
    if (*st == KILN_OK) *st = tune_lua_schedule_apply(g_ctx, ls, f, &t, matched);
    char *text = *st == KILN_OK ? trace_text(t) : NULL;
    if (text) check_lowering(f, t);
    /* the text form replays: it parses back to the same text */
    if (text) {
        sch_trace *back = NULL;
        kiln_ctx *c2 = NULL;
        kiln_ctx_new(&c2);
        CHECK_MSG(sch_trace_parse(c2, text, &back) == KILN_OK, "%s", kiln_errmsg(c2));
        char *again = back ? trace_text(back) : NULL;
        CHECK_MSG(again && strcmp(again, text) == 0, "%s\nvs\n%s", text, again ? again : "(none)");
        free(again);
        sch_trace_free(back);
        kiln_ctx_free(c2);
    }
    sch_trace_free(t);
    tune_lua_schedules_free(ls);
    return text;
}

#define CHECK_TRACE(script, f, expected)                                                    \
    do {                                                                                    \
        kiln_status st_;                                                                    \
        bool m_ = false;                                                                    \
        char *got_ = apply_text(script, f, &st_, &m_);                                      \
        CHECK_MSG(st_ == KILN_OK, "%s", kiln_errmsg(g_ctx));                                \
        CHECK(m_);                                                                          \
        CHECK_MSG(got_ && strcmp(got_, expected) == 0, "got:\n%s\nexpected:\n%s", got_ ? got_ : "(none)", \
                  expected);                                                                \
        free(got_);                                                                         \
    } while (0)

#define CHECK_APPLY_FAILS(script, f, status, prefix, needle)                                \
    do {                                                                                    \
        kiln_status st_;                                                                    \
        bool m_ = false;                                                                    \
        char *got_ = apply_text(script, f, &st_, &m_);                                      \
        CHECK_MSG(st_ == (status), "%d: %s", st_, kiln_errmsg(g_ctx));                      \
        CHECK_MSG(starts_with(kiln_errmsg(g_ctx), prefix), "%s", kiln_errmsg(g_ctx));       \
        CHECK_MSG(strstr(kiln_errmsg(g_ctx), needle), "%s", kiln_errmsg(g_ctx));            \
        free(got_);                                                                         \
    } while (0)

static const char k_matmul_script[] = "function schedule.matmul(s)\n"
                                      "  local i, j = s.axis.i, s.axis.j\n"
                                      "  local io, ii = s:split(i, 32)\n"
                                      "  local jo, ji = s:split(j, 16)\n"
                                      "  s:reorder(io, jo, s.raxis.k, ii, ji)\n"
                                      "  s:vectorize(ji); s:parallel(io)\n"
                                      "end\n";

static void t_schedule_matmul_trace(void) {
    tir_func *f = matmul_func(128, 64, 256, false, NULL);
    CHECK_TRACE(k_matmul_script, f,
                "# kiln trace 1\n"
                "split        C i [32] -> i_o i_i\n"
                "split        C j [16] -> j_o j_i\n"
                "reorder      C i_o j_o k i_i j_i\n"
                "vectorize    C j_i\n"
                "parallel     C i_o\n");
    tir_func_free(f);
}

static void t_schedule_objects(void) {
    tir_func *f = matmul_func(128, 64, 256, true, NULL);
    const char *script =
        "function schedule.matmul(s, f)\n"
        "  assert(s.name == 'C' and s.tag == 'matmul' and s.dtype == 'f32', s.name)\n"
        "  assert(s.shape[1] == 128 and s.shape[2] == 64 and #s.shape == 2)\n"
        "  assert(#s.axes == 2 and #s.raxes == 1 and #s.leaves == 3)\n"
        "  assert(s.axes[1].name == 'i' and s.raxes[1].extent == 256 and s.raxes[1].reduce)\n"
        "  assert(s.axis.j.extent == 64 and not s.axis.j.reduce and s.axis.k == s.raxis.k)\n"
        "  assert(s.reads[1] == 'A' and s.reads[2] == 'B' and not s.is_output)\n"
        "  assert(f.name == 'mm' and #f.hash == 16 and #f.stages == 2 and f.stage.D.is_output)\n"
        "  assert(f.inputs[2].name == 'B' and f.inputs[2].shape[1] == 256 and not f.inputs[2].constant)\n"
        "  assert(f.outputs[1] == 'D' and s.func.name == 'mm')\n"
        "  local o, m, i = s:split('i', 8, 4)\n"
        "  assert(o.extent == 4 and m.extent == 8 and i.extent == 4 and tostring(m) == 'i_m1')\n"
        "  assert(o.stage == s and o.kind == 'serial' and o.exists and not s.axis.j.kind:find('vector'))\n"
        "  s:unroll(i)\n"
        "  assert(i.kind == 'unrolled')\n"
        "end\n"
        "function schedule.elemwise(s, f)\n"
        "  assert(s.name == 'D' and s.is_output)\n"
        "  local io, ii = s:split(s.axis.i, 16)\n"
        "  f.stage.C:compute_at(s, io)\n"
        "end\n";
    CHECK_TRACE(script, f,
                "# kiln trace 1\n"
                "split        C i [8 4] -> i_o i_m1 i_i\n"
                "unroll       C i_i\n"
                "split        D i [16] -> i_o i_i\n"
                "compute_at   C D i_o\n");
    tir_func_free(f);
}

static void t_schedule_all_primitives(void) {
    int64_t db[2] = {64, 32};
    kiln_tensor bconst;
    kiln_tensor_init(&bconst, KILN_F32, 2, db);
    float *bdata = calloc(64 * 32, sizeof(float));
    bconst.data = bdata;
    tir_func *f = matmul_func(64, 32, 64, true, &bconst);
    const char *script =
        "function schedule.workload[string.sub(KEY, 1, 8)](f)\n"
        "  local C, D = f.stage.C, f.stage.D\n"
        "  local rf = C:rfactor(C.raxis.k)\n"
        "  assert(rf.name == 'C_rf' and #rf.axes == 3)\n"
        "  local io, jo, ii, ji = D:tile(D.axis.i, D.axis.j, 8, 16)\n"
        "  local fz = D:fuse(io, jo)\n"
        "  D:parallel(fz)\n"
        "  D:vectorize(ji)\n"
        "  local al = rf:cache_read('A', 'local')\n"
        "  assert(al.name == 'A_local')\n"
        "  assert(C:cache_write('local') == 'C_local')\n"
        "  al:storage_align('ax0', 16, 1)\n"
        "  assert(f:pack('B', 1, 8) == 'B_packed')\n"
        "  D:bind(ii, 'threadIdx.x')\n"
        "end\n";
    char key[17], *text = NULL;
    tune_lua_workload_key(f, key);
    size_t n = strlen(script) + 64;
    text = malloc(n);
    snprintf(text, n, "KEY = '%s'\n%s", key, script);
    /* the function header cannot index with a call; write the table entry instead */
    char *fixed = malloc(n + 64);
    snprintf(fixed, n + 64, "KEY = '%s'\nschedule.workload[KEY:sub(1, 8):upper()] = function(f)\n%s", key,
             strchr(script, '\n') + 1);
    CHECK_TRACE(fixed, f,
                "# kiln trace 1\n"
                "rfactor      C k -> C_rf\n"
                "tile         D i j [8 16] -> i_o j_o i_i j_i\n"
                "fuse         D i_o j_o -> i_o_j_o_fused\n"
                "parallel     D i_o_j_o_fused\n"
                "vectorize    D j_i\n"
                "cache_read   A C_rf local -> A_local\n"
                "cache_write  C local -> C_local\n"
                "storage_align A_local ax0 [16 1]\n"
                "pack         B [1 8] -> B_packed\n"
                "bind         D i_i threadIdx.x\n");
    /* inline: an elementwise stage that is not an output */
    const char *inl = "function schedule.matmul(s, f) f.stage.D:inline() end\n";
    CHECK_APPLY_FAILS(inl, f, KILN_ERR_INVALID, "s.lua:1: inline D: D is an output", "schedule.matmul for stage C");
    free(text);
    free(fixed);
    tir_func_free(f);
    free(bdata);
}

static void t_schedule_inline(void) {
    /* E = A * 2 (not an output), F = E + 1 */
    tir_func *f = tir_func_new("ew");
    int64_t d[2] = {4, 8};
    tir_tensor *A = tir_placeholder(f, "A", KILN_F32, 2, d, NULL);
    ex_builder *b = &f->eb;
    tir_stage *E = tir_stage_new(f, "E", KILN_F32, 2, d, TIR_TAG_ELEMWISE);
    ex_expr *ie[2] = {ex_varref(b, E->axes[0]), ex_varref(b, E->axes[1])};
    E->body = ex_binary(b, EX_MUL, ex_load_tensor(b, A, ie), ex_const_float(b, KILN_F32, 2));
    tir_stage *F = tir_stage_new(f, "F", KILN_F32, 2, d, TIR_TAG_ELEMWISE);
    ex_expr *iff[2] = {ex_varref(b, F->axes[0]), ex_varref(b, F->axes[1])};
    F->body = ex_binary(b, EX_ADD, ex_load_tensor(b, E->out, iff), ex_const_float(b, KILN_F32, 1));
    tir_mark_output(f, F->out);
    /* the elemwise function runs for E, inlines it, and is not called for it again */
    const char *script = "calls = 0\n"
                         "function schedule.elemwise(s)\n"
                         "  calls = calls + 1\n"
                         "  if s.is_output then s:vectorize(s.axes[2]) else s:compute_inline() end\n"
                         "  assert(calls <= 2)\n"
                         "end\n";
    CHECK_TRACE(script, f,
                "# kiln trace 1\n"
                "inline       E\n"
                "vectorize    F i1\n");
    tir_func_free(f);
}

static void t_schedule_no_match(void) {
    tir_func *f = matmul_func(16, 16, 16, false, NULL);
    kiln_status st;
    bool matched = true;
    char *text = apply_text("function schedule.conv(s) s:split('i', 2) end\n"
                            "schedule.workload['0123456789abcdef'] = function(f) error('not me') end\n",
                            f, &st, &matched);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    CHECK(!matched);
    CHECK(text && strcmp(text, "# kiln trace 1\n") == 0);
    free(text);
    /* a function that does nothing matches: "the default nest, on purpose" */
    matched = false;
    text = apply_text("function schedule.matmul(s) end\n", f, &st, &matched);
    CHECK(st == KILN_OK && matched && text && strcmp(text, "# kiln trace 1\n") == 0);
    free(text);
    tir_func_free(f);
}

static void t_schedule_errors(void) {
    tir_func *f = matmul_func(128, 64, 256, false, NULL);
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  local x = s.axis.x\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: stage C has no axis 'x' (its loops: i j k)", "(in schedule.matmul for stage C");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:split(s.raxis.i, 4)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: stage C has no reduction axis 'i'", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n\n  s:split('i', 0)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:3: split C i [0]: factor 0 is not positive", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:split('i', -4)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: split C i [-4]: factor -4 is not positive", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:split('i', 2.5)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: split: factor 1 is not an integer", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:split('q', 4)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: split C q [4]: C has no axis 'q' (its loops: i j k)", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  local i = s.axis.i\n  s:split(i, 4)\n  s:split(i, 2)\nend\n",
                      f, KILN_ERR_INVALID, "s.lua:4: split C i [2]: axis 'i' of C no longer exists: line 3 split",
                      "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:vectorize(s.raxis.k)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: vectorize C k: 'k' is a reduction axis of C", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:fuse(s.axis.i, s.axis.k)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: fuse C i k:", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:split()\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: bad argument #1 to 'split' (axis or axis name expected, got no value)", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s.split(5, 'i', 4)\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: bad argument #1 to 'split' (stage expected, got number)", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s.name = 'X'\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: schedule objects are read-only", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  local n = s.nmae\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: stage C has no field 'nmae'", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s, f)\n  local x = f.stage.Q\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: function 'mm' has no stage 'Q' (its stages: C)", "");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:bind(s.axis.i, 'warp.x')\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: bind C i warp.x: tag must be", "threadIdx");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  s:cache_read('A', 'texture')\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: cache_read A C texture: ", "scope");
    CHECK_APPLY_FAILS("local function helper(s)\n  return s.axis.i + 1\nend\n"
                      "function schedule.matmul(s)\n  helper(s)\nend\n",
                      f, KILN_ERR_INVALID, "s.lua:2: attempt to perform arithmetic on a kiln.axis value", "");
    /* what only lowering checks still names the script line */
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  local io, ii = s:split('i', 4)\n"
                      "  local jo, ji = s:split('j', 4)\n"
                      "  s:bind(ii, 'threadIdx.y')\n  s:bind(ji, 'threadIdx.x')\nend\n",
                      f, KILN_ERR_INVALID, "s.lua:5: bind C j_i threadIdx.x: the thread loops of C must be adjacent",
                      "(found lowering function 'mm'");
    /* a failed step cannot be caught and gone past */
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  pcall(s.split, s, 'i', 0)\n  s:split('j', 4)\nend\n", f,
                      KILN_ERR_INVALID, "s.lua:2: split C i [0]: factor 0 is not positive", "");
    /* budgets hold inside schedule functions too */
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  while true do end\nend\n", f, KILN_ERR_INVALID,
                      "s.lua:2: instruction budget", "(in schedule.matmul");
    CHECK_APPLY_FAILS("function schedule.matmul(s)\n  for n = 1, 5000 do s:unroll(s.axis.i) end\nend\n", f,
                      KILN_ERR_INVALID, "s.lua:2: more than 4096 schedule steps", "");
    tir_func_free(f);
}

static void t_schedule_load_errors(void) {
    setup();
    tune_lua_schedules *ls = NULL;
    kiln_status st =
        tune_lua_schedules_load_string(g_ctx, "s.lua", "\nschedule.matmull = function(s)\nend\n", NULL, &ls);
    CHECK_MSG(st == KILN_ERR_INVALID && starts_with(kiln_errmsg(g_ctx), "s.lua:2: schedule.matmull is not an op class"),
              "%s", kiln_errmsg(g_ctx));
    st = tune_lua_schedules_load_string(g_ctx, "s.lua", "schedule.matmul = 3\n", NULL, &ls);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "s.lua: schedule.matmul must be a function"), "%s",
              kiln_errmsg(g_ctx));
    st = tune_lua_schedules_load_string(g_ctx, "s.lua", "schedule.workload.xyz = function(f)\nend\n", NULL, &ls);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "s.lua:1: schedule.workload[\"xyz\"]"), "%s",
              kiln_errmsg(g_ctx));
    st = tune_lua_schedules_load_string(g_ctx, "s.lua", "schedule = nil\n", NULL, &ls);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "s.lua: the script must leave a table"), "%s",
              kiln_errmsg(g_ctx));
    st = tune_lua_schedules_load_string(g_ctx, "s.lua", "function schedule.matmul(s)\n  s:split('i' 4)\nend\n", NULL,
                                        &ls);
    CHECK_MSG(st == KILN_ERR_PARSE && starts_with(kiln_errmsg(g_ctx), "s.lua:2:"), "%s", kiln_errmsg(g_ctx));
    const char *path = write_script("broken.lua", "function schedule.matmul(s)\n  s:split('i', 4\nend\n");
    st = tune_lua_schedules_load(g_ctx, path, NULL, &ls);
    char want[300];
    snprintf(want, sizeof want, "%s:3:", path);
    CHECK_MSG(st == KILN_ERR_PARSE && starts_with(kiln_errmsg(g_ctx), want), "%s", kiln_errmsg(g_ctx));
    st = tune_lua_schedules_load(g_ctx, "/nonexistent/s.lua", NULL, &ls);
    CHECK_MSG(st == KILN_ERR_IO, "%s", kiln_errmsg(g_ctx));
    CHECK(ls == NULL);
}

/* State persists between calls, handles do not. */
static void t_schedule_stale_handles(void) {
    setup();
    tir_func *f = matmul_func(32, 32, 32, false, NULL);
    tune_lua_schedules *ls = NULL;
    kiln_status st = tune_lua_schedules_load_string(g_ctx, "s.lua",
                                                    "calls = 0\n"
                                                    "function schedule.matmul(s)\n"
                                                    "  calls = calls + 1\n"
                                                    "  if saved then\n"
                                                    "    assert(tostring(saved) == '(schedule object of an earlier call)')\n"
                                                    "    assert(saved ~= s)\n"
                                                    "    saved:split('i', 2)\n"
                                                    "  end\n"
                                                    "  saved = s\n"
                                                    "end\n",
                                                    NULL, &ls);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    sch_trace *t = NULL;
    bool matched = false;
    st = tune_lua_schedule_apply(g_ctx, ls, f, &t, &matched);
    CHECK_MSG(st == KILN_OK && matched && t && t->n_steps == 0, "%s", kiln_errmsg(g_ctx));
    sch_trace_free(t);
    t = NULL;
    st = tune_lua_schedule_apply(g_ctx, ls, f, &t, &matched);
    CHECK_MSG(st == KILN_ERR_INVALID && strstr(kiln_errmsg(g_ctx), "s.lua:7: a function, stage or axis object from an "
                                                                  "earlier schedule call"),
              "%s", kiln_errmsg(g_ctx));
    CHECK(t == NULL);
    tune_lua_schedules_free(ls);
    tir_func_free(f);
}

static void t_schedule_example_script(void) {
    setup();
    const char *src = getenv("KILN_SOURCE_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/models/schedules/matmul_tiled.lua", src ? src : ".");
    tune_lua_schedules *ls = NULL;
    kiln_status st = tune_lua_schedules_load(g_ctx, path, NULL, &ls);
    CHECK_MSG(st == KILN_OK, "%s", kiln_errmsg(g_ctx));
    int64_t shapes[][3] = {{128, 768, 768}, {64, 64, 64}, {1, 1000, 512}, {7, 9, 5}, {256, 3072, 768},
                           {12, 48, 40},    {8, 64, 96},  {2, 40, 300},   {6, 32, 64}};
    for (size_t i = 0; st == KILN_OK && i < sizeof shapes / sizeof shapes[0]; i++) {
        tir_func *f = matmul_func(shapes[i][0], shapes[i][1], shapes[i][2], i % 2 == 1, NULL);
        sch_trace *t = NULL;
        bool matched = false;
        st = tune_lua_schedule_apply(g_ctx, ls, f, &t, &matched);
        CHECK_MSG(st == KILN_OK && matched, "[%lld %lld %lld]: %s", (long long)shapes[i][0],
                  (long long)shapes[i][1], (long long)shapes[i][2], kiln_errmsg(g_ctx));
        if (getenv("KILN_TEST_VERBOSE") && t) sch_trace_print(stderr, t);
        if (st == KILN_OK) check_lowering(f, t);
        sch_trace_free(t);
        tir_func_free(f);
    }
    tune_lua_schedules_free(ls);
}

/* Every allocation failure while loading and applying is an error, never a
** crash or a leak. */
static void t_schedule_allocation_failures(void) {
    setup();
    tir_func *f = matmul_func(64, 64, 64, true, NULL);
    long live = kiln_mem_live();
    int ok = 0;
    for (long n = 0; n < 5000 && !ok; n++) {
        tune_lua_schedules *ls = NULL;
        sch_trace *t = NULL;
        bool matched;
        kiln_mem_fail_after(n);
        kiln_status st = tune_lua_schedules_load_string(g_ctx, "s.lua", k_matmul_script, NULL, &ls);
        if (st == KILN_OK) st = tune_lua_schedule_apply(g_ctx, ls, f, &t, &matched);
        kiln_mem_fail_after(-1);
        ok = st == KILN_OK;
        CHECK_MSG(ok || st == KILN_ERR_NOMEM, "n=%ld: %d %s", n, st, kiln_errmsg(g_ctx));
        CHECK_MSG(ok || t == NULL, "n=%ld", n);
        sch_trace_free(t);
        tune_lua_schedules_free(ls);
    }
    CHECK(ok);
    CHECK(kiln_mem_live() == live);
    tir_func_free(f);
}

static void t_cleanup(void) {
    if (g_dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    }
    kiln_ctx_free(g_ctx);
}

TEST_MAIN(T(t_sandbox_allows_safe_code), T(t_sandbox_escapes_refused), T(t_sandbox_bytecode_file_refused),
          T(t_sandbox_instruction_budget), T(t_sandbox_memory_budget), T(t_sandbox_pattern_guard),
          T(t_sandbox_errors_name_file_and_line), T(t_sandbox_allocation_failures), T(t_schedule_matmul_trace),
          T(t_schedule_objects), T(t_schedule_all_primitives), T(t_schedule_inline), T(t_schedule_no_match),
          T(t_schedule_errors), T(t_schedule_load_errors), T(t_schedule_stale_handles), T(t_schedule_example_script),
          T(t_schedule_allocation_failures), T(t_cleanup))
