/*
** lua_sandbox.c — a Lua state with safe globals, an instruction budget and a
** memory budget; every error becomes "FILE:LINE: message".
*/
#include "lua_sandbox.h"

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ir/mem.h"

struct tune_lua {
    lua_State *L;
    int64_t max_instructions;
    size_t max_bytes, bytes;
    int64_t used;         /* instructions run in this protected call */
    int hook_step;        /* instructions between count hooks */
    bool active;          /* inside tune_lua_protect */
    bool fatal;           /* stop_msg is an error the script cannot catch */
    kiln_status fatal_status;
    bool budget_refused;  /* the memory budget refused an allocation */
    bool load_mem;        /* loading a chunk ran out of memory */
    kiln_status status;   /* status of the next error, KILN_OK for the default */
    char pos_src[LUA_IDSIZE];
    int pos_line;         /* where Lua code last ran, for memory errors */
    char stop_msg[1024];
    int n_paths, cap_paths;
    char **paths;         /* chunk names in full (Lua shortens long ones) */
};

static tune_lua *sandbox_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* ---- the allocator: kiln's allocator under a byte budget ---- */

static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    tune_lua *sb = ud;
    if (!ptr) osize = 0; /* then osize only tells the object's type */
    if (nsize == 0) {
        kiln_free(ptr);
        sb->bytes -= osize;
        return NULL;
    }
    if (nsize > osize && nsize - osize > sb->max_bytes - sb->bytes) {
        sb->budget_refused = true;
        return NULL;
    }
    void *p = kiln_realloc(ptr, nsize);
    if (!p) {
        if (ptr && nsize <= osize) p = ptr; /* a shrink may keep the larger block */
        else return NULL;
    }
    sb->bytes = sb->bytes - osize + nsize;
    return p;
}

/* ---- the hook: instruction budget, and where code runs ---- */

static void note_position(tune_lua *sb, const lua_Debug *ar) {
    memcpy(sb->pos_src, ar->short_src, sizeof sb->pos_src);
    sb->pos_line = ar->currentline;
}

static void sb_hook(lua_State *L, lua_Debug *ar) {
    tune_lua *sb = sandbox_of(L);
    if (ar->event == LUA_HOOKLINE) {
        if (lua_getinfo(L, "S", ar)) note_position(sb, ar);
        return;
    }
    if (ar->event == LUA_HOOKRET) {
        /* back in the caller, mid-line: no line event says so */
        lua_Debug up;
        if (lua_getstack(L, 1, &up) && lua_getinfo(L, "Sl", &up) && up.currentline > 0)
            note_position(sb, &up);
        return;
    }
    if (ar->event != LUA_HOOKCOUNT) return;
    sb->used += sb->hook_step;
    if (sb->used <= sb->max_instructions) return;
    if (!sb->fatal) {
        lua_getinfo(L, "Sl", ar);
        snprintf(sb->stop_msg, sizeof sb->stop_msg,
                 "%s:%d: instruction budget of %lld exceeded (an endless loop?)", ar->short_src,
                 ar->currentline, (long long)sb->max_instructions);
        sb->fatal = true;
        sb->fatal_status = KILN_ERR_INVALID;
    }
    lua_pushstring(L, sb->stop_msg);
    lua_error(L);
}

int tune_lua_fatal(struct lua_State *L, kiln_status s, const char *fmt, ...) {
    tune_lua *sb = sandbox_of(L);
    if (!sb->fatal) {
        size_t n = 0;
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++)
            if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
                n = (size_t)snprintf(sb->stop_msg, sizeof sb->stop_msg, "%s:%d: ", ar.short_src, ar.currentline);
                break;
            }
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sb->stop_msg + n, sizeof sb->stop_msg - n, fmt, ap);
        va_end(ap);
        sb->fatal = true;
        sb->fatal_status = s;
    }
    lua_pushstring(L, sb->stop_msg);
    return lua_error(L);
}

/* ---- error messages ---- */

/* "name:123: ..." */
static bool has_position(const char *msg) {
    const char *c = strchr(msg, ':');
    if (!c || c == msg || c[1] < '0' || c[1] > '9') return false;
    c++;
    while (*c >= '0' && *c <= '9') c++;
    return *c == ':';
}

static int sb_msgh(lua_State *L) {
    tune_lua *sb = sandbox_of(L);
    if (sb->fatal) {
        lua_pushstring(L, sb->stop_msg);
        return 1;
    }
    const char *msg;
    int t = lua_type(L, 1);
    if (t == LUA_TSTRING || t == LUA_TNUMBER) msg = lua_tostring(L, 1);
    else if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
    else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    if (has_position(msg)) return 1;
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        if (lua_getinfo(L, "Sl", &ar) && ar.currentline > 0) {
            lua_pushfstring(L, "%s:%d: %s", ar.short_src, ar.currentline, msg);
            break;
        }
    }
    return 1;
}

/* Lua shortens a long chunk name to "...tail"; put the full name back. */
static void unshorten(const tune_lua *sb, const char *msg, char *out, size_t cap) {
    if (strncmp(msg, "...", 3) == 0) {
        for (int i = 0; i < sb->n_paths; i++) {
            const char *p = sb->paths[i];
            size_t lp = strlen(p);
            for (size_t k = lp; k > 0; k--) {
                if (strncmp(msg + 3, p + lp - k, k) == 0 && msg[3 + k] == ':') {
                    snprintf(out, cap, "%s%s", p, msg + 3 + k);
                    return;
                }
            }
        }
    }
    snprintf(out, cap, "%s", msg);
}

static kiln_status sb_report(kiln_ctx *ctx, tune_lua *sb, int rc) {
    char buf[sizeof ctx->msg], pos[LUA_IDSIZE + 24] = "";
    /* outside the protected call: no conversion (it could allocate, and fail) */
    const char *msg = lua_type(sb->L, -1) == LUA_TSTRING ? lua_tostring(sb->L, -1) : NULL;
    kiln_status st = sb->status != KILN_OK ? sb->status : KILN_ERR_INVALID;
    if (!msg) msg = "(error object is not a string)";
    if (sb->pos_line > 0) snprintf(pos, sizeof pos, "%s:%d: ", sb->pos_src, sb->pos_line);
    if (sb->fatal) {
        msg = sb->stop_msg;
        st = sb->fatal_status;
    } else if (rc == LUA_ERRMEM || sb->load_mem) {
        if (sb->budget_refused) {
            snprintf(buf, sizeof buf, "%smemory budget of %zu bytes exceeded (not enough memory)", pos,
                     sb->max_bytes);
            st = KILN_ERR_INVALID;
        } else {
            snprintf(buf, sizeof buf, "%snot enough memory", pos);
            st = KILN_ERR_NOMEM;
        }
        msg = buf;
    } else if (rc == LUA_ERRERR) {
        snprintf(buf, sizeof buf, "%serror in the error handler: %s", pos, msg);
        msg = buf;
    }
    char full[sizeof ctx->msg];
    unshorten(sb, msg, full, sizeof full);
    return kiln_fail(ctx, st, "%s", full);
}

/* ---- the safe globals ---- */

/* Forwards all arguments to upvalue 1 (the original function). */
static int call_original(lua_State *L) {
    int n = lua_gettop(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, n, LUA_MULTRET);
    return lua_gettop(L);
}

/* pcall and xpcall must not swallow a fatal error (the end of the budget). */
static int sb_pcall(lua_State *L) {
    int n = call_original(L);
    tune_lua *sb = sandbox_of(L);
    if (sb->fatal) {
        lua_pushstring(L, sb->stop_msg);
        return lua_error(L);
    }
    return n;
}

/* An error raised by the budget hook runs the message handler with hooks
** off, so a script's handler could loop unbudgeted: skip it then. */
static int sb_handler(lua_State *L) {
    if (sandbox_of(L)->fatal) return 1;
    return call_original(L);
}

static int sb_xpcall(lua_State *L) {
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, sb_handler, 1);
    lua_replace(L, 2);
    return sb_pcall(L);
}

static int sb_load(lua_State *L) {
    int n = lua_gettop(L);
    if (n >= 3 && !lua_isnil(L, 3) && strchr(luaL_checkstring(L, 3), 'b')) {
        luaL_pushfail(L);
        lua_pushliteral(L, "binary chunks are not allowed in the sandbox");
        return 2;
    }
    if (n >= 4) {
        lua_pushliteral(L, "t");
        lua_replace(L, 3);
    } else {
        lua_settop(L, 2);
        lua_pushliteral(L, "t");
    }
    return call_original(L);
}

/* Finalizers run with hooks off, so a __gc could loop forever unbudgeted. */
static int sb_setmetatable(lua_State *L) {
    lua_settop(L, 2);
    lua_pushliteral(L, "__gc");
    if (lua_type(L, 2) == LUA_TTABLE && lua_rawget(L, 2) != LUA_TNIL)
        return luaL_error(L, "__gc metamethods are not allowed in the sandbox");
    lua_settop(L, 2);
    return call_original(L);
}

static int sb_randomseed(lua_State *L) {
    luaL_checknumber(L, 1); /* without a seed Lua picks one from the clock */
    return call_original(L);
}

static int sb_print(lua_State *L) {
    lua_Debug ar;
    if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar) && ar.currentline > 0)
        fprintf(stderr, "%s:%d: ", ar.short_src, ar.currentline);
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        size_t len;
        const char *s = luaL_tolstring(L, i, &len);
        if (i > 1) fputc('\t', stderr);
        fwrite(s, 1, len, stderr);
        lua_pop(L, 1);
    }
    fputc('\n', stderr);
    return 0;
}

/* Index just past the set starting at p[i] == '[' (as Lua's matcher reads it). */
static size_t skip_set(const char *p, size_t lp, size_t i) {
    size_t j = i + 1;
    if (j < lp && p[j] == '^') j++;
    do {
        if (j >= lp) return lp;
        j += p[j] == '%' ? 2 : 1;
    } while (j < lp && p[j] != ']');
    return j + 1;
}

/* log10 of an upper bound on the steps Lua's backtracking matcher may take
** for pattern p on a subject of n bytes: each repetition item can be tried
** at every length, at every start position. */
static double pattern_log_cost(const char *p, size_t lp, size_t n) {
    size_t i = 0;
    int reps = 0, opts = 0, starts = 1;
    if (lp && p[0] == '^') starts = 0, i = 1;
    while (i < lp) {
        size_t end;
        char c = p[i];
        if (c == '(' || c == ')' || (c == '$' && i + 1 == lp)) {
            i++;
            continue;
        }
        if (c == '%' && i + 1 < lp && (p[i + 1] == 'b' || p[i + 1] == 'f' || (p[i + 1] >= '0' && p[i + 1] <= '9'))) {
            i += p[i + 1] == 'b' ? 4 : 2;
            if (p[i - 1] == 'f' && i < lp && p[i] == '[') i = skip_set(p, lp, i);
            continue;
        }
        end = c == '%' ? i + 2 : c == '[' ? skip_set(p, lp, i) : i + 1;
        if (end < lp && (p[end] == '*' || p[end] == '+' || p[end] == '-')) reps++, end++;
        else if (end < lp && p[end] == '?') opts++, end++;
        i = end;
    }
    return (reps + starts) * log10((double)n + 1) + opts * log10(2.0) + log10((double)lp + 1);
}

/* find, match, gmatch, gsub: refuse what could run for hours inside C. */
static int sb_pattern(lua_State *L) {
    bool plain = lua_toboolean(L, lua_upvalueindex(2)) && lua_toboolean(L, 4); /* find(s, p, init, plain) */
    if (!plain && lua_type(L, 1) == LUA_TSTRING && lua_type(L, 2) == LUA_TSTRING) {
        size_t n, lp;
        lua_tolstring(L, 1, &n);
        const char *p = lua_tolstring(L, 2, &lp);
        tune_lua *sb = sandbox_of(L);
        double limit = log10(100.0 * (double)sb->max_instructions);
        if (pattern_log_cost(p, lp, n) > limit)
            return luaL_error(L, "pattern '%s' on a subject of %I bytes could backtrack too long for "
                              "the sandbox", lp > 40 ? "(long pattern)" : p, (lua_Integer)n);
    }
    return call_original(L);
}

static void wrap(lua_State *L, int table, const char *name, lua_CFunction fn, int extra) {
    table = lua_absindex(L, table);
    lua_getfield(L, table, name);
    if (extra) lua_pushboolean(L, 1);
    lua_pushcclosure(L, fn, extra ? 2 : 1);
    lua_setfield(L, table, name);
}

/* Error messages name a C function by finding it in package.loaded (the
** registry's, which scripts cannot reach): keep the originals there. */
static void keep_originals(lua_State *L, const char *lib) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, lib);
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, -3)) {
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, -4);
    }
    lua_setfield(L, -3, lib);
    lua_pop(L, 2);
}

static void open_libs(lua_State *L) {
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},      {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table}, {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8}};
    for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
        luaL_requiref(L, libs[i].name, libs[i].func, 1);
        lua_pop(L, 1);
    }
    keep_originals(L, LUA_GNAME);
    keep_originals(L, LUA_STRLIBNAME);
    keep_originals(L, LUA_MATHLIBNAME);
}

static int sb_setup(lua_State *L) {
    static const char *const removed[] = {"dofile", "loadfile", "collectgarbage", "warn", "require"};
    open_libs(L);
    lua_pushglobaltable(L);
    for (size_t i = 0; i < sizeof removed / sizeof removed[0]; i++) {
        lua_pushnil(L);
        lua_setfield(L, -2, removed[i]);
    }
    wrap(L, -1, "pcall", sb_pcall, 0);
    wrap(L, -1, "xpcall", sb_xpcall, 0);
    wrap(L, -1, "load", sb_load, 0);
    wrap(L, -1, "setmetatable", sb_setmetatable, 0);
    lua_pushcfunction(L, sb_print);
    lua_setfield(L, -2, "print");
    lua_getfield(L, -1, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    wrap(L, -1, "find", sb_pattern, 1);
    wrap(L, -1, "match", sb_pattern, 0);
    wrap(L, -1, "gmatch", sb_pattern, 0);
    wrap(L, -1, "gsub", sb_pattern, 0);
    lua_getfield(L, -2, LUA_MATHLIBNAME);
    lua_getfield(L, -1, "randomseed");
    lua_pushinteger(L, 0);
    lua_call(L, 1, 0); /* a fixed seed: the same script gives the same schedule */
    wrap(L, -1, "randomseed", sb_randomseed, 0);
    return 0;
}

/* ---- the API ---- */

kiln_status tune_lua_protect(kiln_ctx *ctx, tune_lua *sb, tune_lua_fn fn, void *ud) {
    if (sb->active) return kiln_fail(ctx, KILN_ERR_INTERNAL, "tune_lua_protect: nested protected call");
    lua_State *L = sb->L;
    int base = lua_gettop(L);
    sb->active = true;
    sb->used = 0;
    sb->fatal = sb->budget_refused = sb->load_mem = false;
    sb->status = KILN_OK;
    sb->pos_line = 0;
    lua_sethook(L, sb_hook, LUA_MASKCOUNT | LUA_MASKLINE | LUA_MASKRET, sb->hook_step);
    lua_pushcfunction(L, sb_msgh);
    lua_pushcfunction(L, fn);
    lua_pushlightuserdata(L, ud);
    int rc = lua_pcall(L, 1, 0, base + 1);
    lua_sethook(L, NULL, 0, 0);
    kiln_status st = rc == LUA_OK ? KILN_OK : sb_report(ctx, sb, rc);
    lua_settop(L, base);
    sb->active = false;
    return st;
}

kiln_status tune_lua_new(kiln_ctx *ctx, const tune_lua_limits *lim, tune_lua **out) {
    tune_lua *sb = kiln_calloc(1, sizeof *sb);
    if (!sb) return kiln_fail(ctx, KILN_ERR_NOMEM, "lua sandbox: out of memory");
    sb->max_instructions = lim && lim->max_instructions > 0 ? lim->max_instructions : TUNE_LUA_DEFAULT_INSTRUCTIONS;
    sb->max_bytes = lim && lim->max_bytes ? lim->max_bytes : TUNE_LUA_DEFAULT_BYTES;
    sb->hook_step = sb->max_instructions < 1000 ? (int)sb->max_instructions : 1000;
    sb->L = lua_newstate(sb_alloc, sb);
    if (!sb->L) {
        bool budget = sb->budget_refused;
        size_t bytes = sb->max_bytes;
        kiln_free(sb);
        if (budget)
            return kiln_fail(ctx, KILN_ERR_INVALID, "lua sandbox: a memory budget of %zu bytes is too small",
                             bytes);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "lua sandbox: out of memory");
    }
    kiln_status st = tune_lua_protect(ctx, sb, sb_setup, NULL);
    if (st != KILN_OK) {
        kiln_wrap(ctx, st, "lua sandbox setup");
        tune_lua_free(sb);
        return st;
    }
    *out = sb;
    return KILN_OK;
}

void tune_lua_free(tune_lua *sb) {
    if (!sb) return;
    if (sb->L) lua_close(sb->L);
    for (int i = 0; i < sb->n_paths; i++) kiln_free(sb->paths[i]);
    kiln_free(sb->paths);
    kiln_free(sb);
}

struct lua_State *tune_lua_state(tune_lua *sb) { return sb->L; }

void tune_lua_set_status(struct lua_State *L, kiln_status s) { sandbox_of(L)->status = s; }

size_t tune_lua_bytes(const tune_lua *sb) { return sb->bytes; }

int64_t tune_lua_instructions(const tune_lua *sb) { return sb->used; }

typedef struct load_req {
    const char *path; /* a file, or the name of `text` */
    const char *text;
} load_req;

static int sb_load_and_run(lua_State *L) {
    const load_req *rq = lua_touserdata(L, 1);
    tune_lua *sb = sandbox_of(L);
    int rc;
    if (rq->text) {
        const char *chunkname = lua_pushfstring(L, "@%s", rq->path);
        rc = luaL_loadbufferx(L, rq->text, strlen(rq->text), chunkname, "t");
    } else {
        rc = luaL_loadfilex(L, rq->path, "t");
    }
    if (rc != LUA_OK) {
        sb->status = rc == LUA_ERRFILE ? KILN_ERR_IO : rc == LUA_ERRSYNTAX ? KILN_ERR_PARSE : KILN_OK;
        sb->load_mem = rc == LUA_ERRMEM;
        if (rc != LUA_ERRMEM && !has_position(lua_tostring(L, -1)))
            lua_pushfstring(L, "%s: %s", rq->path, lua_tostring(L, -1));
        return lua_error(L);
    }
    lua_call(L, 0, 0);
    return 0;
}

static kiln_status remember_path(kiln_ctx *ctx, tune_lua *sb, const char *path) {
    for (int i = 0; i < sb->n_paths; i++)
        if (strcmp(sb->paths[i], path) == 0) return KILN_OK;
    char *copy = kiln_strdup(path);
    if (!copy || !kiln_grow((void **)&sb->paths, &sb->cap_paths, sb->n_paths + 1, sizeof(char *))) {
        kiln_free(copy);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", path);
    }
    sb->paths[sb->n_paths++] = copy;
    return KILN_OK;
}

kiln_status tune_lua_run_file(kiln_ctx *ctx, tune_lua *sb, const char *path) {
    load_req rq = {path, NULL};
    kiln_status st = remember_path(ctx, sb, path);
    return st != KILN_OK ? st : tune_lua_protect(ctx, sb, sb_load_and_run, &rq);
}

kiln_status tune_lua_run_string(kiln_ctx *ctx, tune_lua *sb, const char *name, const char *text) {
    load_req rq = {name, text};
    kiln_status st = remember_path(ctx, sb, name);
    return st != KILN_OK ? st : tune_lua_protect(ctx, sb, sb_load_and_run, &rq);
}
