/*
** lua_schedule.c — Lua bindings for schedules: a function's stages and
** axes as Lua objects, the schedule primitives as their methods, recorded
** as a sch_trace.
**
** Each primitive is applied at once to the function's schedule state (the
** one sch_lower replays), so a wrong step fails at the script line that
** made it, with the state's own reason, and the script sees the axes the
** step made. The names a step creates are the state's; they are written
** into the step so that the trace prints and replays exactly.
*/
#include "lua_schedule.h"

#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/sched_internal.h"

static const char *const k_tags[] = {"elemwise", "injective", "reduce", "matmul", "conv", "pool", "opaque"};
#define N_TAGS ((int)(sizeof k_tags / sizeof k_tags[0]))

#define MT_FUNC "kiln.func"
#define MT_STAGE "kiln.stage"
#define MT_AXIS "kiln.axis"

static const char k_sched_key = 0; /* registry[&k_sched_key]: the script's schedule table */

struct tune_lua_schedules {
    tune_lua *sb;
    char *name;         /* the script, for messages */
    uint64_t serial;    /* of the current apply; a handle keeps the one it was made in */
    struct ls_run *run; /* the apply in progress, or NULL */
};

typedef struct ls_run {
    kiln_ctx *ctx;
    kiln_ctx own_ctx; /* when the caller gave none */
    tune_lua_schedules *ls;
    const tir_func *f;
    sch_state st;
    bool st_live;
    sch_trace *trace;
    int n_lsteps, cap_lsteps;
    sch_step *lsteps; /* the trace's steps with their script lines, for the state's messages */
    char key[17];
    bool matched;
    char context[256]; /* what the script is scheduling, for messages */
    /* what the last step made */
    int n_new;
    sch_ivar *new_ivars[SCH_MAX_NAMES];
    sch_stage *new_stage;
} ls_run;

/* The payload of a function, stage or axis object. */
typedef struct ls_handle {
    tune_lua_schedules *ls;
    uint64_t serial;
    sch_stage *stage; /* NULL for the function */
    sch_ivar *ivar;   /* axes only */
} ls_handle;

/* ---- objects ---- */

static ls_run *run_of(lua_State *L, const ls_handle *h) {
    if (!h->ls->run || h->serial != h->ls->serial)
        luaL_error(L, "a function, stage or axis object from an earlier schedule call cannot be used now");
    return h->ls->run;
}

static void push_handle(lua_State *L, ls_run *r, const char *mt, sch_stage *s, sch_ivar *iv) {
    ls_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->ls = r->ls;
    h->serial = r->ls->serial;
    h->stage = s;
    h->ivar = iv;
    luaL_setmetatable(L, mt);
}

static ls_handle *check_handle(lua_State *L, int idx, const char *mt, const char *what) {
    ls_handle *h = luaL_testudata(L, idx, mt);
    if (!h) luaL_typeerror(L, idx, what);
    run_of(L, h);
    return h;
}

/* An axis argument: an axis object of stage s, or a name. */
static const char *axis_arg(lua_State *L, int idx, const sch_stage *s) {
    ls_handle *h = luaL_testudata(L, idx, MT_AXIS);
    if (h) {
        run_of(L, h);
        if (s && h->stage != s)
            luaL_error(L, "axis '%s' belongs to stage %s, not %s", h->ivar->name, h->stage->name, s->name);
        return h->ivar->name;
    }
    if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "axis or axis name");
    return lua_tostring(L, idx);
}

static sch_stage *stage_named(ls_run *r, const char *name) {
    for (int i = 0; i < r->st.n_stages; i++)
        if (strcmp(r->st.stages[i]->name, name) == 0) return r->st.stages[i];
    return NULL;
}

/* A stage argument: a stage object or a stage (or tensor) name. */
static const char *stage_arg(lua_State *L, int idx, ls_run *r, sch_stage **out) {
    ls_handle *h = luaL_testudata(L, idx, MT_STAGE);
    if (h) {
        run_of(L, h);
        *out = h->stage;
        return h->stage->name;
    }
    if (lua_type(L, idx) != LUA_TSTRING) luaL_typeerror(L, idx, "stage or name");
    *out = stage_named(r, lua_tostring(L, idx));
    return lua_tostring(L, idx);
}

static void leaf_list(const sch_stage *s, char *buf, size_t n) {
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < s->n_leaves && len + 1 < n; i++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", i ? " " : "", s->leaves[i]->name);
}

/* __index of s.axis / s.raxis: an unknown name is a mistake, say so. */
static int missing_axis(lua_State *L) {
    ls_handle *h = lua_touserdata(L, lua_upvalueindex(1));
    run_of(L, h);
    char names[512];
    leaf_list(h->stage, names, sizeof names);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "axes are looked up by name (s.axis.i); for loop order use s.leaves");
    return luaL_error(L, "stage %s has no %saxis '%s' (its loops: %s)", h->stage->name,
                      lua_toboolean(L, lua_upvalueindex(2)) ? "reduction " : "", lua_tostring(L, 2), names);
}

/* A table of the stage's leaves: by name (with an erroring __index) or as
** a list in loop order; which = 0 all, 1 spatial, 2 reduction. */
static void push_axes(lua_State *L, ls_run *r, sch_stage *s, int which, bool by_name, int self) {
    lua_createtable(L, by_name ? 0 : s->n_leaves, by_name ? s->n_leaves : 0);
    int n = 0;
    for (int i = 0; i < s->n_leaves; i++) {
        sch_ivar *iv = s->leaves[i];
        if ((which == 1 && iv->reduce) || (which == 2 && !iv->reduce)) continue;
        push_handle(L, r, MT_AXIS, s, iv);
        if (by_name) lua_setfield(L, -2, iv->name);
        else lua_rawseti(L, -2, ++n);
    }
    if (!by_name) return;
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, self);
    lua_pushboolean(L, which == 2);
    lua_pushcclosure(L, missing_axis, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

static void push_ints(lua_State *L, const int64_t *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, (lua_Integer)v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void collect_reads(const ex_expr *e, const tir_tensor **seen, int *n, int cap) {
    if (!e) return;
    if (e->kind == EX_LOAD && e->tensor) {
        bool dup = false;
        for (int i = 0; i < *n && !dup; i++) dup = seen[i] == e->tensor;
        if (!dup && *n < cap) seen[(*n)++] = e->tensor;
    }
    for (int i = 0; i < e->n_args; i++) collect_reads(e->args[i], seen, n, cap);
}

static void push_reads(lua_State *L, const sch_stage *s) {
    const tir_tensor *seen[64];
    int n = 0;
    collect_reads(s->body, seen, &n, 64);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, seen[i]->name);
        lua_rawseti(L, -2, i + 1);
    }
}

static int field_error(lua_State *L, const char *what, const char *key) {
    return luaL_error(L, "%s has no field '%s'", what, key);
}

static int stage_index(lua_State *L) {
    ls_handle *h = check_handle(L, 1, MT_STAGE, "stage");
    ls_run *r = run_of(L, h);
    sch_stage *s = h->stage;
    const char *k = luaL_checkstring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1; /* a method */
    if (strcmp(k, "name") == 0) lua_pushstring(L, s->name);
    else if (strcmp(k, "tag") == 0) lua_pushstring(L, (unsigned)s->tag < N_TAGS ? k_tags[s->tag] : "opaque");
    else if (strcmp(k, "dtype") == 0) lua_pushstring(L, kiln_dtype_name(s->out->dtype));
    else if (strcmp(k, "shape") == 0) push_ints(L, s->out->dims, s->out->rank);
    else if (strcmp(k, "axis") == 0) push_axes(L, r, s, 0, true, 1);
    else if (strcmp(k, "raxis") == 0) push_axes(L, r, s, 2, true, 1);
    else if (strcmp(k, "leaves") == 0) push_axes(L, r, s, 0, false, 1);
    else if (strcmp(k, "axes") == 0) push_axes(L, r, s, 1, false, 1);
    else if (strcmp(k, "raxes") == 0) push_axes(L, r, s, 2, false, 1);
    else if (strcmp(k, "is_output") == 0) lua_pushboolean(L, s->is_output);
    else if (strcmp(k, "inlined") == 0) lua_pushboolean(L, s->attach == SCH_INLINE);
    else if (strcmp(k, "reads") == 0) push_reads(L, s);
    else if (strcmp(k, "func") == 0) push_handle(L, r, MT_FUNC, NULL, NULL);
    else {
        char what[300];
        snprintf(what, sizeof what, "stage %s", s->name);
        return field_error(L, what, k);
    }
    return 1;
}

static int axis_index(lua_State *L) {
    ls_handle *h = check_handle(L, 1, MT_AXIS, "axis");
    ls_run *r = run_of(L, h);
    const sch_ivar *iv = h->ivar;
    const char *k = luaL_checkstring(L, 2);
    if (strcmp(k, "name") == 0) lua_pushstring(L, iv->name);
    else if (strcmp(k, "extent") == 0) lua_pushinteger(L, (lua_Integer)iv->ext);
    else if (strcmp(k, "reduce") == 0) lua_pushboolean(L, iv->reduce);
    else if (strcmp(k, "kind") == 0) lua_pushstring(L, lir_loop_kind_name(iv->kind));
    else if (strcmp(k, "exists") == 0) lua_pushboolean(L, iv->leaf);
    else if (strcmp(k, "stage") == 0) push_handle(L, r, MT_STAGE, h->stage, NULL);
    else {
        char what[300];
        snprintf(what, sizeof what, "axis %s of stage %s", iv->name, h->stage->name);
        return field_error(L, what, k);
    }
    return 1;
}

static void push_inputs(lua_State *L, const tir_func *f) {
    lua_createtable(L, f->n_inputs, 0);
    for (int i = 0; i < f->n_inputs; i++) {
        const tir_tensor *t = f->inputs[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, t->name);
        lua_setfield(L, -2, "name");
        lua_pushstring(L, kiln_dtype_name(t->dtype));
        lua_setfield(L, -2, "dtype");
        push_ints(L, t->dims, t->rank);
        lua_setfield(L, -2, "shape");
        lua_pushboolean(L, t->constant != NULL);
        lua_setfield(L, -2, "constant");
        lua_rawseti(L, -2, i + 1);
    }
}

/* __index of f.stage: an unknown stage name is a mistake. */
static int missing_stage(lua_State *L) {
    ls_handle *h = lua_touserdata(L, lua_upvalueindex(1));
    ls_run *r = run_of(L, h);
    char names[512];
    size_t len = 0;
    names[0] = 0;
    for (int i = 0; i < r->st.n_stages && len + 1 < sizeof names; i++)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s", i ? " " : "", r->st.stages[i]->name);
    return luaL_error(L, "function '%s' has no stage '%s' (its stages: %s)", r->f->name,
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?", names);
}

static void push_stages(lua_State *L, ls_run *r, bool by_name) {
    lua_createtable(L, by_name ? 0 : r->st.n_stages, by_name ? r->st.n_stages : 0);
    for (int i = 0; i < r->st.n_stages; i++) {
        push_handle(L, r, MT_STAGE, r->st.stages[i], NULL);
        if (by_name) lua_setfield(L, -2, r->st.stages[i]->name);
        else lua_rawseti(L, -2, i + 1);
    }
    if (!by_name) return;
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, missing_stage, 1);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

static int func_index(lua_State *L) {
    ls_handle *h = check_handle(L, 1, MT_FUNC, "function");
    ls_run *r = run_of(L, h);
    const char *k = luaL_checkstring(L, 2);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
    if (strcmp(k, "name") == 0) lua_pushstring(L, r->f->name);
    else if (strcmp(k, "hash") == 0) lua_pushstring(L, r->key);
    else if (strcmp(k, "stages") == 0) push_stages(L, r, false);
    else if (strcmp(k, "stage") == 0) push_stages(L, r, true);
    else if (strcmp(k, "inputs") == 0) push_inputs(L, r->f);
    else if (strcmp(k, "outputs") == 0) {
        lua_createtable(L, r->f->n_outputs, 0);
        for (int i = 0; i < r->f->n_outputs; i++) {
            lua_pushstring(L, r->f->outputs[i]->name);
            lua_rawseti(L, -2, i + 1);
        }
    } else {
        char what[300];
        snprintf(what, sizeof what, "function '%s'", r->f->name);
        return field_error(L, what, k);
    }
    return 1;
}

static int handle_tostring(lua_State *L) {
    ls_handle *h = lua_touserdata(L, 1);
    if (!h->ls->run || h->serial != h->ls->serial) /* its stage and names are gone */
        lua_pushliteral(L, "(schedule object of an earlier call)");
    else if (h->ivar) lua_pushstring(L, h->ivar->name);
    else if (h->stage) lua_pushfstring(L, "stage %s", h->stage->name);
    else lua_pushliteral(L, "function");
    return 1;
}

static int handle_eq(lua_State *L) {
    ls_handle *a = lua_touserdata(L, 1), *b = lua_touserdata(L, 2);
    lua_pushboolean(L, a && b && a->ls == b->ls && a->serial == b->serial && a->stage == b->stage &&
                           a->ivar == b->ivar);
    return 1;
}

static int handle_newindex(lua_State *L) {
    return luaL_error(L, "schedule objects are read-only (cannot set '%s'); keep your own data in a table",
                      lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?");
}

/* ---- steps ---- */

static sch_step step_of(sch_prim prim, const char *stage) {
    sch_step p;
    memset(&p, 0, sizeof p);
    p.prim = prim;
    p.stage = stage;
    return p;
}

/* The trace and the state say "trace step N (STEP): reason" or "trace
** line N (...): reason"; the script's line goes in front instead. */
static int step_failed(lua_State *L, ls_run *r, const sch_step *p, kiln_status rc) {
    char text[512];
    const char *msg = kiln_errmsg(r->ctx), *end;
    sch_step_str(p, text, sizeof text);
    if ((strncmp(msg, "trace step ", 11) == 0 || strncmp(msg, "trace line ", 11) == 0) && (end = strstr(msg, "): ")))
        msg = end + 3;
    return tune_lua_fatal(L, rc, "%s: %s", text, msg);
}

/* The names of what the step made (pointers into the state), and keeps
** the new axes or stage for the caller. */
static int made_names(ls_run *r, const sch_step *p, sch_stage *s, int n_ivars, int next_id, const char **names) {
    int n = 0;
    r->n_new = 0;
    r->new_stage = NULL;
    switch (p->prim) {
    case SCH_SPLIT:
    case SCH_TILE:
    case SCH_FUSE:
        for (int i = 0; i < s->n_leaves && r->n_new < SCH_MAX_NAMES; i++)
            if (s->leaves[i]->index >= n_ivars) r->new_ivars[r->n_new++] = s->leaves[i];
        for (int i = 0; i < r->n_new; i++) names[n++] = r->new_ivars[i]->name;
        break;
    case SCH_RFACTOR:
    case SCH_CACHE_READ:
        for (int i = 0; i < r->st.n_stages; i++)
            if (r->st.stages[i]->id == next_id) r->new_stage = r->st.stages[i];
        if (r->new_stage) names[n++] = r->new_stage->name;
        break;
    case SCH_CACHE_WRITE:
        if (s && s->cw_name) names[n++] = s->cw_name;
        break;
    case SCH_PACK:
        for (int i = 0; i < r->st.n_inputs; i++)
            if (strcmp(r->st.inputs[i].t->name, p->stage) == 0 && r->st.inputs[i].pack_name)
                names[n++] = r->st.inputs[i].pack_name;
        break;
    default: break;
    }
    return n;
}

/* Appends p to the trace (which checks its form) and applies it to the
** schedule state (which checks it against the function); the names the
** state gives to what p makes are written into the recorded step, so the
** trace replays them exactly. A failure is fatal to the script: the state
** may be half changed. `s` is the stage whose loops p changes, if any. */
static void do_step(lua_State *L, ls_run *r, sch_step *p, sch_stage *s) {
    if (r->trace->n_steps >= TUNE_LUA_MAX_STEPS)
        tune_lua_fatal(L, KILN_ERR_INVALID, "more than %d schedule steps for one function", TUNE_LUA_MAX_STEPS);
    lua_Debug ar;
    int line = lua_getstack(L, 1, &ar) && lua_getinfo(L, "l", &ar) && ar.currentline > 0 ? ar.currentline : 0;
    if (!kiln_grow((void **)&r->lsteps, &r->cap_lsteps, r->n_lsteps + 1, sizeof(sch_step)))
        tune_lua_fatal(L, KILN_ERR_NOMEM, "out of memory");
    p->line = 0; /* a script line is not a trace line */
    kiln_status rc = sch_trace_add(r->ctx, r->trace, p);
    if (rc != KILN_OK) step_failed(L, r, p, rc);
    sch_step *rec = &r->trace->steps[r->trace->n_steps - 1], *mine = &r->lsteps[r->n_lsteps];
    *mine = *rec;
    mine->line = line; /* the state's messages about this step name the script line */
    int n_ivars = s ? s->n_ivars : 0, next_id = r->st.next_stage_id;
    r->st.steps = r->lsteps;
    r->st.n_steps = r->n_lsteps + 1;
    if ((rc = sch_state_apply(&r->st, mine, r->n_lsteps)) != KILN_OK) step_failed(L, r, p, rc);
    const char *names[SCH_MAX_NAMES];
    int n = made_names(r, p, s, n_ivars, next_id, names);
    for (int i = 0; i < n; i++)
        if (!(rec->outs[i] = kiln_arena_strdup(r->trace->arena, names[i])))
            tune_lua_fatal(L, KILN_ERR_NOMEM, "out of memory");
    rec->n_outs = n;
    memcpy(mine->outs, rec->outs, sizeof rec->outs);
    mine->n_outs = n;
    r->n_lsteps++;
}

static int push_new_axes(lua_State *L, ls_run *r, sch_stage *s) {
    luaL_checkstack(L, r->n_new, "too many axes");
    for (int i = 0; i < r->n_new; i++) push_handle(L, r, MT_AXIS, s, r->new_ivars[i]);
    return r->n_new;
}

static ls_handle *self_stage(lua_State *L) { return check_handle(L, 1, MT_STAGE, "stage"); }

/* Integers from a table at `idx`, or from the arguments idx..top. */
static void int_args(lua_State *L, int idx, sch_step *p, int lo, int hi, const char *what) {
    bool table = lua_type(L, idx) == LUA_TTABLE;
    int n = table ? (int)luaL_len(L, idx) : lua_gettop(L) - idx + 1;
    if (n < lo || n > hi)
        luaL_error(L, "%s: expected %d to %d %s, got %d", what, lo, hi, lo == hi ? "integers" : "factors", n);
    for (int i = 0; i < n; i++) {
        int isint = 0;
        if (table) lua_geti(L, idx, i + 1);
        else lua_pushvalue(L, idx + i);
        lua_Integer v = lua_tointegerx(L, -1, &isint);
        if (!isint) luaL_error(L, "%s: %s %d is not an integer", what, lo == hi ? "value" : "factor", i + 1);
        lua_pop(L, 1);
        p->ints[p->n_ints++] = (int64_t)v;
    }
}

/* Axes from a table at `idx`, or from the arguments idx..top. */
static void axis_args(lua_State *L, int idx, sch_step *p, const sch_stage *s, int lo, const char *what) {
    bool table = lua_type(L, idx) == LUA_TTABLE;
    int n = table ? (int)luaL_len(L, idx) : lua_gettop(L) - idx + 1;
    if (n < lo || n > SCH_MAX_NAMES) luaL_error(L, "%s: expected %d to %d axes, got %d", what, lo, SCH_MAX_NAMES, n);
    for (int i = 0; i < n; i++) {
        if (table) {
            lua_geti(L, idx, i + 1);
            p->axes[p->n_axes++] = axis_arg(L, lua_gettop(L), s); /* stays on the stack while used */
        } else {
            p->axes[p->n_axes++] = axis_arg(L, idx + i, s);
        }
    }
}

static int m_split(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_step p = step_of(SCH_SPLIT, h->stage->name);
    p.axes[p.n_axes++] = axis_arg(L, 2, h->stage);
    int_args(L, 3, &p, 1, SCH_MAX_INTS, "split");
    do_step(L, r, &p, h->stage);
    return push_new_axes(L, r, h->stage);
}

static int m_tile(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_step p = step_of(SCH_TILE, h->stage->name);
    p.axes[p.n_axes++] = axis_arg(L, 2, h->stage);
    p.axes[p.n_axes++] = axis_arg(L, 3, h->stage);
    int_args(L, 4, &p, 2, 2, "tile");
    do_step(L, r, &p, h->stage);
    return push_new_axes(L, r, h->stage);
}

static int m_fuse(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_step p = step_of(SCH_FUSE, h->stage->name);
    axis_args(L, 2, &p, h->stage, 2, "fuse");
    do_step(L, r, &p, h->stage);
    return push_new_axes(L, r, h->stage);
}

static int m_reorder(lua_State *L) {
    ls_handle *h = self_stage(L);
    sch_step p = step_of(SCH_REORDER, h->stage->name);
    axis_args(L, 2, &p, h->stage, 1, "reorder");
    do_step(L, run_of(L, h), &p, h->stage);
    return 0;
}

/* vectorize, unroll, parallel (the primitive is upvalue 1) and bind. */
static int m_annotate(lua_State *L) {
    ls_handle *h = self_stage(L);
    sch_step p = step_of((sch_prim)lua_tointeger(L, lua_upvalueindex(1)), h->stage->name);
    p.axes[p.n_axes++] = axis_arg(L, 2, h->stage);
    if (p.prim == SCH_BIND) p.arg = luaL_checkstring(L, 3);
    do_step(L, run_of(L, h), &p, h->stage);
    return 0;
}

static int m_compute_at(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_stage *t;
    sch_step p = step_of(SCH_COMPUTE_AT, h->stage->name);
    p.arg = stage_arg(L, 2, r, &t);
    p.axes[p.n_axes++] = axis_arg(L, 3, t);
    do_step(L, r, &p, h->stage);
    return 0;
}

static int m_inline(lua_State *L) {
    ls_handle *h = self_stage(L);
    sch_step p = step_of(SCH_COMPUTE_INLINE, h->stage->name);
    do_step(L, run_of(L, h), &p, h->stage);
    return 0;
}

/* s:cache_read(tensor, scope [, at]): s reads `tensor` through a copy in
** `scope`, computed at s's loop `at` (or as a root nest); returns the copy. */
static int m_cache_read(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_stage *producer;
    sch_step p = step_of(SCH_CACHE_READ, stage_arg(L, 2, r, &producer));
    p.arg = luaL_checkstring(L, 3);
    p.axes[p.n_axes++] = h->stage->name;
    if (!lua_isnoneornil(L, 4)) p.axes[p.n_axes++] = axis_arg(L, 4, h->stage);
    do_step(L, r, &p, h->stage);
    if (!r->new_stage) return tune_lua_fatal(L, KILN_ERR_INTERNAL, "cache_read made no stage");
    push_handle(L, r, MT_STAGE, r->new_stage, NULL);
    return 1;
}

/* s:cache_write(scope [, at]): returns the name of the cache. */
static int m_cache_write(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_step p = step_of(SCH_CACHE_WRITE, h->stage->name);
    p.arg = luaL_checkstring(L, 2);
    if (!lua_isnoneornil(L, 3)) p.axes[p.n_axes++] = axis_arg(L, 3, h->stage);
    do_step(L, r, &p, h->stage);
    lua_pushstring(L, h->stage->cw_name ? h->stage->cw_name : "");
    return 1;
}

static int m_rfactor(lua_State *L) {
    ls_handle *h = self_stage(L);
    ls_run *r = run_of(L, h);
    sch_step p = step_of(SCH_RFACTOR, h->stage->name);
    p.axes[p.n_axes++] = axis_arg(L, 2, h->stage);
    do_step(L, r, &p, h->stage);
    if (!r->new_stage) return tune_lua_fatal(L, KILN_ERR_INTERNAL, "rfactor made no stage");
    push_handle(L, r, MT_STAGE, r->new_stage, NULL);
    return 1;
}

/* s:storage_align(dim, factor, offset): dim names one of the stage's
** dimensions (its root spatial axis). */
static int m_storage_align(lua_State *L) {
    ls_handle *h = self_stage(L);
    sch_step p = step_of(SCH_STORAGE_ALIGN, h->stage->name);
    p.axes[p.n_axes++] = axis_arg(L, 2, h->stage);
    int_args(L, 3, &p, 2, 2, "storage_align");
    do_step(L, run_of(L, h), &p, h->stage);
    return 0;
}

/* f:pack(input, dim, factor): re-lays out a constant input at compile
** time (dim counts from 0, as in the trace); returns the packed name. */
static int m_pack(lua_State *L) {
    ls_handle *h = check_handle(L, 1, MT_FUNC, "function");
    ls_run *r = run_of(L, h);
    sch_step p = step_of(SCH_PACK, luaL_checkstring(L, 2));
    int_args(L, 3, &p, 2, 2, "pack");
    do_step(L, r, &p, NULL);
    const sch_step *rec = &r->trace->steps[r->trace->n_steps - 1];
    if (rec->n_outs) lua_pushstring(L, rec->outs[0]);
    else lua_pushnil(L);
    return 1;
}

/* ---- loading ---- */

/* Makes metatable `name` for handles from the methods table on the stack
** (popped): __index is `index` with the methods as its upvalue. */
static void new_metatable(lua_State *L, const char *name, lua_CFunction index) {
    luaL_newmetatable(L, name);
    lua_insert(L, -2);
    lua_pushcclosure(L, index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, handle_eq);
    lua_setfield(L, -2, "__eq");
    lua_pushcfunction(L, handle_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushliteral(L, "locked");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 1);
}

static void add_annotation(lua_State *L, const char *name, sch_prim prim) {
    lua_pushinteger(L, prim);
    lua_pushcclosure(L, m_annotate, 1);
    lua_setfield(L, -2, name);
}

static int load_setup(lua_State *L) {
    static const luaL_Reg stage_methods[] = {
        {"split", m_split},
        {"tile", m_tile},
        {"fuse", m_fuse},
        {"reorder", m_reorder},
        {"compute_at", m_compute_at},
        {"inline", m_inline},
        {"compute_inline", m_inline},
        {"cache_read", m_cache_read},
        {"cache_write", m_cache_write},
        {"rfactor", m_rfactor},
        {"storage_align", m_storage_align},
        {NULL, NULL}};
    static const luaL_Reg func_methods[] = {{"pack", m_pack}, {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, stage_methods, 0);
    add_annotation(L, "vectorize", SCH_VECTORIZE);
    add_annotation(L, "unroll", SCH_UNROLL);
    add_annotation(L, "parallel", SCH_PARALLEL);
    add_annotation(L, "bind", SCH_BIND);
    new_metatable(L, MT_STAGE, stage_index);
    lua_newtable(L);
    luaL_setfuncs(L, func_methods, 0);
    new_metatable(L, MT_FUNC, func_index);
    lua_newtable(L);
    new_metatable(L, MT_AXIS, axis_index);
    lua_createtable(L, 0, 8);
    lua_newtable(L);
    lua_setfield(L, -2, "workload");
    lua_setglobal(L, "schedule");
    return 0;
}

/* "FILE:LINE: " of a function value at idx (where it is defined), or "FILE: ". */
static const char *where_defined(lua_State *L, int idx, const char *file) {
    lua_Debug ar;
    if (lua_type(L, idx) == LUA_TFUNCTION) {
        lua_pushvalue(L, idx);
        if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0)
            return lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.linedefined);
    }
    return lua_pushfstring(L, "%s: ", file);
}

static bool hex_key(const char *k) {
    size_t n = strlen(k);
    if (n < 8 || n > 16) return false;
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)k[i])) return false;
    return true;
}

static void check_workloads(lua_State *L, int t, const char *file) {
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ki = lua_absindex(L, -2), vi = lua_absindex(L, -1);
        const char *k = lua_type(L, ki) == LUA_TSTRING ? lua_tostring(L, ki) : NULL;
        if (!k || !hex_key(k)) {
            const char *key = k ? lua_pushfstring(L, "\"%s\"", k) : luaL_typename(L, ki);
            luaL_error(L, "%sschedule.workload[%s]: a workload key is 8 to 16 hex digits of its hash",
                       where_defined(L, vi, file), key);
        }
        if (lua_type(L, vi) != LUA_TFUNCTION)
            luaL_error(L, "%s: schedule.workload[\"%s\"] must be a function, not a %s", file, k, luaL_typename(L, vi));
        lua_settop(L, ki);
    }
}

/* The keys of `schedule` are op classes and "workload"; a misspelt one
** would silently never match, so it is an error. */
static int load_check(lua_State *L) {
    const char *file = lua_touserdata(L, 1);
    if (lua_getglobal(L, "schedule") != LUA_TTABLE)
        luaL_error(L, "%s: the script must leave a table in the global 'schedule' (it is a %s)", file,
                   luaL_typename(L, -1));
    int t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int ki = lua_absindex(L, -2), vi = lua_absindex(L, -1);
        const char *k = lua_type(L, ki) == LUA_TSTRING ? lua_tostring(L, ki) : NULL;
        int tag = N_TAGS;
        for (int i = 0; k && i < N_TAGS; i++)
            if (strcmp(k, k_tags[i]) == 0) tag = i;
        if (k && strcmp(k, "workload") == 0) {
            if (!lua_istable(L, vi)) luaL_error(L, "%s: schedule.workload must be a table", file);
            check_workloads(L, vi, file);
        } else if (tag == N_TAGS) {
            const char *where = where_defined(L, vi, file);
            luaL_error(L, "%sschedule.%s is not an op class (elemwise injective reduce matmul conv pool opaque) "
                          "nor 'workload'", where, k ? k : luaL_typename(L, ki));
        } else if (lua_type(L, vi) != LUA_TFUNCTION) {
            luaL_error(L, "%s: schedule.%s must be a function, not a %s", file, k, luaL_typename(L, vi));
        }
        lua_settop(L, ki);
    }
    lua_rawsetp(L, LUA_REGISTRYINDEX, &k_sched_key);
    return 0;
}

static kiln_status load(kiln_ctx *ctx, const char *name, const char *text, const tune_lua_limits *lim,
                        tune_lua_schedules **out) {
    if (!name) return kiln_fail(ctx, KILN_ERR_INVALID, "lua schedules: no script path");
    tune_lua_schedules *ls = kiln_calloc(1, sizeof *ls);
    if (!ls || !(ls->name = kiln_strdup(name))) {
        kiln_free(ls);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", name);
    }
    kiln_status st = tune_lua_new(ctx, lim, &ls->sb);
    if (!st) st = tune_lua_protect(ctx, ls->sb, load_setup, NULL);
    if (!st) st = text ? tune_lua_run_string(ctx, ls->sb, name, text) : tune_lua_run_file(ctx, ls->sb, name);
    if (!st) st = tune_lua_protect(ctx, ls->sb, load_check, (void *)name);
    if (st) {
        tune_lua_schedules_free(ls);
        return st;
    }
    *out = ls;
    return KILN_OK;
}

kiln_status tune_lua_schedules_load(kiln_ctx *ctx, const char *path, const tune_lua_limits *lim,
                                    tune_lua_schedules **out) {
    return load(ctx, path, NULL, lim, out);
}

kiln_status tune_lua_schedules_load_string(kiln_ctx *ctx, const char *name, const char *text,
                                           const tune_lua_limits *lim, tune_lua_schedules **out) {
    if (!text) return kiln_fail(ctx, KILN_ERR_INVALID, "lua schedules: no script text");
    return load(ctx, name, text, lim, out);
}

void tune_lua_schedules_free(tune_lua_schedules *ls) {
    if (!ls) return;
    tune_lua_free(ls->sb);
    kiln_free(ls->name);
    kiln_free(ls);
}

/* ---- applying ---- */

void tune_lua_workload_key(const tir_func *f, char out[17]) {
    snprintf(out, 17, "%016llx", (unsigned long long)tir_hash(f));
}

/* Pushes the function for workload `key` from the table at t: the entry
** whose key is a prefix of it (any case), if exactly one is. */
static bool find_workload(lua_State *L, int t, const char *key) {
    int found = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        size_t n = strlen(k);
        bool match = n >= 8 && n <= 16 && lua_type(L, -1) == LUA_TFUNCTION;
        for (size_t i = 0; match && i < n; i++) match = tolower((unsigned char)k[i]) == key[i];
        if (!match) {
            lua_pop(L, 1);
            continue;
        }
        if (found) luaL_error(L, "schedule.workload: two keys match workload %s", key);
        found = lua_gettop(L);
        lua_pushvalue(L, -2); /* keep the function below the key */
    }
    if (!found) return false;
    lua_settop(L, found);
    return true;
}

static int apply_main(lua_State *L) {
    ls_run *r = lua_touserdata(L, 1);
    lua_rawgetp(L, LUA_REGISTRYINDEX, &k_sched_key);
    int sched = lua_gettop(L);
    if (lua_getfield(L, sched, "workload") == LUA_TTABLE && find_workload(L, lua_gettop(L), r->key)) {
        r->matched = true;
        snprintf(r->context, sizeof r->context, "schedule.workload[\"%s\"] for function '%s'", r->key, r->f->name);
        push_handle(L, r, MT_FUNC, NULL, NULL);
        lua_call(L, 1, 0);
        return 0;
    }
    for (int i = 0; i < r->f->n_stages; i++) {
        const tir_stage *ts = r->f->stages[i];
        sch_stage *s = sch_stage_of_tensor(&r->st, ts->out);
        if (!s || s->attach == SCH_INLINE || (unsigned)ts->tag >= (unsigned)N_TAGS) continue;
        lua_settop(L, sched);
        if (lua_getfield(L, sched, k_tags[ts->tag]) != LUA_TFUNCTION) continue;
        r->matched = true;
        snprintf(r->context, sizeof r->context, "schedule.%s for stage %s of function '%s', workload %s",
                 k_tags[ts->tag], s->name, r->f->name, r->key);
        push_handle(L, r, MT_STAGE, s, NULL);
        push_handle(L, r, MT_FUNC, NULL, NULL);
        lua_call(L, 2, 0);
    }
    return 0;
}

/* Lowers the trace, so that what only lowering checks (regions, thread
** nesting) is also reported at the script line that made the step. */
static kiln_status validate(ls_run *r) {
    lir_func *lf = NULL;
    kiln_status st = sch_lower(r->ctx, r->f, r->trace, &lf);
    lir_func_free(lf);
    if (st == KILN_OK || st == KILN_ERR_NOMEM) return st;
    char msg[sizeof r->ctx->msg];
    const char *m = r->ctx->msg, *end = strstr(m, "): ");
    int n = 0;
    if (sscanf(m, "trace step %d (", &n) == 1 && n >= 1 && n <= r->n_lsteps && end) {
        const char *text = strchr(m, '(') + 1;
        snprintf(msg, sizeof msg, "%s:%d: %.*s: %s", r->ls->name, r->lsteps[n - 1].line, (int)(end - text), text,
                 end + 3);
    } else {
        snprintf(msg, sizeof msg, "%s: %s", r->ls->name, m);
    }
    return kiln_fail(r->ctx, st, "%s (found lowering function '%s', workload %s)", msg, r->f->name, r->key);
}

static void run_release(ls_run *r) {
    if (r->st_live) sch_state_release(&r->st);
    kiln_free(r->lsteps);
    sch_trace_free(r->trace);
}

kiln_status tune_lua_schedule_apply(kiln_ctx *ctx, tune_lua_schedules *ls, const tir_func *f, sch_trace **out,
                                    bool *matched) {
    if (!ls || !f || !out) return kiln_fail(ctx, KILN_ERR_INVALID, "tune_lua_schedule_apply: missing argument");
    if (ls->run) return kiln_fail(ctx, KILN_ERR_INTERNAL, "tune_lua_schedule_apply: already applying");
    ls_run *r = kiln_calloc(1, sizeof *r);
    if (!r) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    r->ctx = ctx ? ctx : &r->own_ctx;
    r->ls = ls;
    r->f = f;
    tune_lua_workload_key(f, r->key);
    kiln_status st = sch_state_init(r->ctx, &r->st, f);
    r->st_live = true;
    if (!st && !(r->trace = sch_trace_new())) st = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (!st) {
        ls->serial++;
        ls->run = r;
        st = tune_lua_protect(r->ctx, ls->sb, apply_main, r);
        ls->run = NULL;
        if (st && r->context[0]) {
            size_t n = strlen(r->ctx->msg);
            snprintf(r->ctx->msg + n, sizeof r->ctx->msg - n, " (in %s)", r->context);
        }
        if (!st && r->trace->n_steps) st = validate(r);
    }
    if (!st) {
        *out = r->trace;
        r->trace = NULL;
        if (matched) *matched = r->matched;
    }
    run_release(r);
    kiln_free(r);
    return st;
}
