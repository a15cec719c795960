/*
** lua_schedule.h — schedules written in Lua.
**
** A script (docs/lua-schedules.md) fills the global table `schedule` with
** functions keyed by op class (schedule.matmul, schedule.elemwise, ...)
** and by workload (schedule.workload["<tir_hash in hex>"]). Loading runs
** the script once, in a sandbox (lua_sandbox.h), and checks the table's
** keys. Applying it to a tir_func calls the workload's function if there is
** one, else the op-class function of each stage by tag; the schedule
** primitives they call (s:split, s:reorder, s:vectorize, ...) are checked
** when called, against the schedule state of the function, and recorded as
** a sch_trace; the finished trace is lowered once (sch_lower) to check what
** only lowering can. Any failure — a Lua error, an unknown axis, a
** non-positive factor, a step lowering refuses, a budget exceeded — is
** KILN_ERR_INVALID with the message "FILE:LINE: reason (in ...)" naming the
** script line that made the step.
*/
#ifndef KILN_LUA_SCHEDULE_H
#define KILN_LUA_SCHEDULE_H

#include <stdbool.h>

#include "ir/sched.h"
#include "lua_sandbox.h"

/* At most this many steps per function (a runaway script is an error). */
#define TUNE_LUA_MAX_STEPS 4096

typedef struct tune_lua_schedules tune_lua_schedules;

/* Loads and runs the script at `path` in a new sandbox (lim NULL: default
** budgets); the budgets also bound each later apply. */
kiln_status tune_lua_schedules_load(kiln_ctx *ctx, const char *path, const tune_lua_limits *lim,
                                    tune_lua_schedules **out);
/* The same from text, named `name` in messages (tests, embedded scripts). */
kiln_status tune_lua_schedules_load_string(kiln_ctx *ctx, const char *name, const char *text,
                                           const tune_lua_limits *lim, tune_lua_schedules **out);
void tune_lua_schedules_free(tune_lua_schedules *ls);

/* Runs the script's schedule for f. On success *out is a new trace (empty
** when the script scheduled nothing) and *matched tells whether the script
** had a function for this workload or for a tag of one of its stages (a
** matched empty trace means "the default nest, on purpose"). The trace's
** steps carry the names of what they create, so it prints and replays as
** is. The script's state (globals) persists between calls. */
kiln_status tune_lua_schedule_apply(kiln_ctx *ctx, tune_lua_schedules *ls, const tir_func *f,
                                    sch_trace **out, bool *matched);

/* The workload key scripts use for f: tir_hash as 16 lowercase hex digits. */
void tune_lua_workload_key(const tir_func *f, char out[17]);

#endif
