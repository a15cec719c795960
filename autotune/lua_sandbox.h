/*
** lua_sandbox.h — a Lua 5.4 state that runs untrusted text with bounded cost.
**
** Schedule scripts come from users and from other people's repositories, so
** a script must not reach the file system, the process or the host's memory,
** and must not run forever. A tune_lua holds one Lua state with:
**
**  - only safe globals: assert error getmetatable ipairs next pairs pcall
**    print (to stderr) rawequal rawget rawlen rawset select setmetatable
**    tonumber tostring type xpcall load (text only) _G _VERSION, and the
**    string (without dump), table, math and utf8 libraries. No io, os,
**    package, require, debug, dofile, loadfile, collectgarbage, coroutine.
**    setmetatable refuses __gc (finalizers run with hooks off, unbounded);
**    math.randomseed needs a seed (a schedule must be reproducible); the
**    string pattern functions refuse a pattern/subject pair whose worst-case
**    backtracking would be far beyond the instruction budget (that time is
**    spent in C, where the budget cannot interrupt it).
**  - an instruction budget per protected call (tune_lua_protect, the run
**    functions): past it every hook raises an error that pcall inside the
**    script cannot swallow;
**  - a memory budget on the state's live bytes: allocations past it fail,
**    which Lua turns into a "not enough memory" error.
**
** Chunks are loaded as text only (binary chunks are refused). Every failure
** becomes a kiln_fail message "FILE:LINE: message" (FILE is the chunk name
** given at load, in full); nothing ever reaches lua_atpanic.
**
** Status codes: KILN_ERR_IO (file cannot be read), KILN_ERR_PARSE (syntax),
** KILN_ERR_INVALID (a runtime error, a budget exceeded), KILN_ERR_NOMEM
** (the host allocator failed), or what a C function chose with
** tune_lua_set_status before raising.
*/
#ifndef KILN_LUA_SANDBOX_H
#define KILN_LUA_SANDBOX_H

#include <stddef.h>
#include <stdint.h>

#include "ir/ctx.h"

struct lua_State;

#define TUNE_LUA_DEFAULT_INSTRUCTIONS 10000000LL
#define TUNE_LUA_DEFAULT_BYTES ((size_t)64 << 20)

typedef struct tune_lua_limits {
    int64_t max_instructions; /* per protected call; <= 0: the default */
    size_t max_bytes;         /* live bytes of the state; 0: the default */
} tune_lua_limits;

typedef struct tune_lua tune_lua;

/* A new sandbox; lim may be NULL for the defaults. */
kiln_status tune_lua_new(kiln_ctx *ctx, const tune_lua_limits *lim, tune_lua **out);
void tune_lua_free(tune_lua *sb);

/* The Lua state, for bindings that add their own globals. Use it only
** inside a function run by tune_lua_protect. */
struct lua_State *tune_lua_state(tune_lua *sb);

/* Loads the file (text only; the chunk is named after the path) and runs it. */
kiln_status tune_lua_run_file(kiln_ctx *ctx, tune_lua *sb, const char *path);
/* Loads `text` as a chunk named `name` (used as FILE in messages) and runs it. */
kiln_status tune_lua_run_string(kiln_ctx *ctx, tune_lua *sb, const char *name, const char *text);

/* Runs fn(L) in protected mode, with the light userdata `ud` as its only
** argument and a fresh instruction budget; fn's results are dropped. An
** error raised by fn or by Lua code it calls becomes kiln_fail's message. */
typedef int (*tune_lua_fn)(struct lua_State *L);
kiln_status tune_lua_protect(kiln_ctx *ctx, tune_lua *sb, tune_lua_fn fn, void *ud);

/* Inside a protected call: the status the next error should report (it
** applies to one error; by default a runtime error is KILN_ERR_INVALID). */
void tune_lua_set_status(struct lua_State *L, kiln_status s);

/* Inside a protected call: raises an error that the script cannot catch
** (pcall and xpcall pass it on), for a failure after which the script must
** not go on. The message gets the calling Lua line's "FILE:LINE: ". */
int tune_lua_fatal(struct lua_State *L, kiln_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Bytes the state holds now, and instructions the current or last
** protected call ran (rounded up to the hook's granularity). */
size_t tune_lua_bytes(const tune_lua *sb);
int64_t tune_lua_instructions(const tune_lua *sb);

#endif
