/*
** measure_internal.h — what measure.c (the parent), measure_child.c (the
** forked child), measure_buf.c (guarded buffers, random data) and gate.c
** (references and comparison) share.
*/
#ifndef KILN_MEASURE_INTERNAL_H
#define KILN_MEASURE_INTERNAL_H

#include "measure.h"

/* A buffer in its own mapping: a PROT_NONE page before and after, the data
** at the start of its pages, the slack up to the guard filled with a
** canary pattern (a write just past the end shows; a write far past it
** faults). Shared mappings survive fork: a child's writes reach the parent. */
typedef struct tm_buf {
    kiln_dtype dtype;
    int64_t n;
    void *data;
    void *map;
    size_t map_bytes, data_bytes, slack_bytes;
} tm_buf;

bool tm_buf_map(tm_buf *b, kiln_dtype dt, int64_t n, bool shared);
void tm_buf_unmap(tm_buf *b);
bool tm_buf_canary_ok(const tm_buf *b);
/* Makes the buffer's pages read-only (a kernel that writes an input faults). */
void tm_buf_protect(const tm_buf *b);

/* Random values of dt from (seed, stream): floats uniform in [-1, 1),
** integers in [0, 4), booleans 0/1. */
void tm_fill_random(kiln_dtype dt, void *data, int64_t n, uint64_t seed, uint64_t stream);
/* Fills an output before a run: NaN for floats, a byte pattern for the rest
** (second = the complement pattern, for a second run of integer outputs). */
void tm_poison(kiln_dtype dt, void *data, int64_t n, bool second);

struct tune_reference {
    uint64_t hash; /* tir_hash of the workload, 0 when built from a nest */
    uint64_t seed;
    int n_inputs, n_outputs;
    tm_buf *inputs;   /* read by every candidate */
    tm_buf *expected; /* the reference's outputs; NULL entries when there is none */
    bool has_expected;
};

/* Inputs only (no expected outputs): what a measurement without a gate runs on. */
kiln_status tm_reference_inputs(kiln_ctx *ctx, const lir_func *lf, uint64_t seed, tune_reference **out);
/* The reference of a tir_func: the inputs of its default nest (its
** constants bound), with the expected outputs when asked. */
kiln_status tm_reference_tir(kiln_ctx *ctx, const tir_func *f, const tune_measure_opts *o, tune_ref_mode mode,
                             bool with_expected, tune_reference **out);

/* Most arguments a measured kernel may take, and candidates one child compiles. */
#define TM_MAX_ARGS 256
#define TM_MAX_BATCH 64

/* Messages from the child, one fixed struct each (atomic pipe writes). */
/* TM_FAULT: the child's signal handler reports the signal and the faulting
** address (in r.msg) before the child dies of it. */
typedef enum tm_msg_kind { TM_COMPILED = 1, TM_START, TM_RESULT, TM_DONE, TM_FAULT } tm_msg_kind;

typedef struct tm_msg {
    int kind;
    int index;
    tune_result r;
} tm_msg;

/* One child's work: candidates [lo, hi) of fs not yet done. */
typedef struct tm_job {
    lir_func **fs;
    int n;
    const bool *done;
    int lo, hi;
    const tune_reference *ref;
    const tune_measure_opts *o;
    bool reference_run; /* write the outputs into ref->expected; no gate, no timing */
} tm_job;

/* The child's body: never returns (exits with _exit). */
_Noreturn void tm_child_main(const tm_job *job, int fd);

/* Runs a job in children until every candidate in [lo, hi) has a result. */
kiln_status tm_drive(kiln_ctx *ctx, tm_job *job, bool *done, tune_result *out);

#endif
