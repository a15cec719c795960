/*
** test_lua_schedule.c — the Lua sandbox (escapes, budgets, messages) and
** schedule scripts (bindings, traces, errors with file and line).
*/
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "autotune/lua_sandbox.h"
#include "harness.h"
#include "ir/ctx.h"
#include "ir/mem.h"

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
        if (st == KILN_OK) st = tune_lua_run_string(g_ctx, sb, "t.lua", "local t = {}\nfor i = 1, 100 do t[i] = 'x' .. i end");
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
          T(t_sandbox_errors_name_file_and_line), T(t_sandbox_allocation_failures), T(t_cleanup))
