/*
** measure.h — measuring one schedule candidate safely, and the correctness
** gate its output must pass before its time counts.
**
** A candidate (a tir_func with a trace, or a lir_func) is lowered in the
** calling process, then compiled (cg_llvm_jit), checked and timed in a
** forked child with a wall-clock limit (SIGKILL when it runs over) and
** resource limits (RLIMIT_AS, RLIMIT_CPU, no core files). Whatever the
** candidate does, the caller gets a verdict and goes on:
**
**   ok             passed the gate (when a reference is given) and was timed
**   wrong          an output differs from the reference, an element was left
**                  unwritten (outputs are filled with NaN, or a pattern for
**                  integers, before the run) or a write landed outside an
**                  output or in an input
**   crash          the child died of a signal (SIGSEGV, SIGILL, SIGFPE, ...)
**   timeout        compiling or running took longer than the limit
**   oom            the buffers or the stack did not fit the memory limits
**   compile_error  the trace does not apply, or the backend refused the nest
**
** The child JITs: the calling process never holds LLVM state on this path,
** and must be single-threaded while a measurement forks (no other thread
** of it compiling or running kernels).
**
**   tune_measure_opts o;
**   tune_measure_opts_default(&o);
**   tune_reference *ref;
**   tune_reference_new(ctx, f, &o, TUNE_REF_AUTO, &ref);   // once per workload
**   tune_result r;
**   tune_measure(ctx, f, trace, ref, &o, &r);               // per candidate
**   if (r.status == TUNE_STATUS_OK) ... r.median_ns ...
**
** Times are per run of the kernel: each sample runs it `iters` times (as
** many as make a sample last min_sample_ms), samples repeat until
** min_samples are in and budget_ms is spent (or max_samples are in).
*/
#ifndef KILN_MEASURE_H
#define KILN_MEASURE_H

#include "autotune/records.h"
#include "codegen/cg_llvm.h"
#include "ir/sched.h"

typedef struct tune_measure_opts {
    cg_options cg;
    int threads;         /* the runtime pool's size for parallel loops; 1 runs them serially */
    double timeout_s;    /* wall-clock limit of one candidate's check and timing (a slow
                            kernel's samples stop at 40% of it) */
    double compile_timeout_s; /* wall-clock limit of compiling one candidate (a batch: up to 4x) */
    uint64_t mem_limit;  /* bytes of address space the child may add to the parent's, and the
                            most its outputs may take (sanitizer builds: only the latter); 0: none */
    uint64_t seed;       /* of the random inputs */
    int warmup;          /* untimed runs before the samples */
    int min_samples, max_samples;
    double min_sample_ms; /* a sample lasts at least this long */
    double budget_ms;     /* timing stops once this is spent and min_samples are in */
} tune_measure_opts;

/* 1 thread, 10 s per candidate, 30 s to compile, 4 GiB, seed 1, 2 warmup
** runs, 5..50 samples of at least 1 ms, 200 ms of timing. */
void tune_measure_opts_default(tune_measure_opts *o);

typedef struct tune_result {
    tune_status status;
    bool checked;        /* the gate ran (a reference was given) and passed */
    double median_ns;    /* per run; 0 unless status is ok */
    double min_ns, max_ns, p10_ns, p90_ns;
    double spread;       /* (p90 - p10) / median */
    int samples, iters;  /* samples taken; runs per sample */
    double compile_ms;   /* the JIT of the candidate's module (shared by a batch) */
    int signal;          /* the signal that ended the child (crash, timeout), else 0 */
    char msg[320];       /* why, when status is not ok */
} tune_result;

/* ---- the reference (gate.c) ----
** Random inputs for a workload and its expected outputs, computed once and
** shared by every candidate of the workload. Inputs bound to constant data
** keep their data; the others get random values of their dtype drawn from
** the seed (floats uniform in [-1, 1), integers in [0, 4), booleans 0/1). */
typedef enum tune_ref_mode {
    TUNE_REF_AUTO = 0, /* the interpreter for small kernels, else the compiled default nest
                       ** (the interpreter when that cannot be compiled or run) */
    TUNE_REF_INTERP,   /* the loop-IR interpreter (bounds-checked, slow) on the default nest */
    TUNE_REF_COMPILED, /* the default nest compiled and run in a child, like a candidate */
} tune_ref_mode;

typedef struct tune_reference tune_reference;

/* The reference of f: its default nest (the empty trace) run on random
** inputs. Fails when the default nest cannot be built or run. */
kiln_status tune_reference_new(kiln_ctx *ctx, const tir_func *f, const tune_measure_opts *o, tune_ref_mode mode,
                               tune_reference **out);
/* The reference given by a loop nest (its constant-bound arguments keep
** their data); candidates measured against it must take arguments of the
** same dtypes and sizes, in the same order. */
kiln_status tune_reference_from_lir(kiln_ctx *ctx, const lir_func *ref, const tune_measure_opts *o,
                                    tune_ref_mode mode, tune_reference **out);
void tune_reference_free(tune_reference *r);

/* Expected outputs per workload (keyed by tir_hash and the seed), so the
** reference runs once per task, not once per candidate. */
typedef struct tune_ref_cache tune_ref_cache;
tune_ref_cache *tune_ref_cache_new(void);
void tune_ref_cache_free(tune_ref_cache *c);
/* The cached reference of f, built on first use; owned by the cache. */
kiln_status tune_ref_cache_get(kiln_ctx *ctx, tune_ref_cache *c, const tir_func *f, const tune_measure_opts *o,
                               const tune_reference **out);

/* Tolerances of the gate for a dtype: |got - want| <= atol_scale * max|want|
** + rtol * |want| for floats (NaN and infinities must match exactly);
** integers and booleans compare exactly (rtol = atol_scale = 0). */
void tune_gate_tolerance(kiln_dtype dt, double *rtol, double *atol_scale);

/* Compares n elements of got with want; on a mismatch writes what and where
** ("element 17 is 0.5, expected 0.25") into msg and returns false. */
bool tune_gate_compare(kiln_dtype dt, const void *got, const void *want, int64_t n, char *msg, size_t size);

/* A static check the gate adds to the run: every store inside a parallel
** loop depends on the loop's variable (or goes to a buffer private to an
** iteration); otherwise the iterations race on one element and msg says
** where. Races that a run might not show are rejected this way. */
bool tune_gate_race_free(const lir_func *lf, char *msg, size_t size);

/* ---- measuring ----
** The functions fail (kiln_status) only for the harness's own trouble: bad
** arguments, no memory in the caller, fork or pipe failing. Whatever
** happens to a candidate is its result's status. With ref NULL there is no
** gate (inputs are still random from the seed) and checked stays false. */
kiln_status tune_measure(kiln_ctx *ctx, const tir_func *f, const sch_trace *trace, const tune_reference *ref,
                         const tune_measure_opts *o, tune_result *out);
kiln_status tune_measure_lir(kiln_ctx *ctx, const lir_func *lf, const tune_reference *ref,
                             const tune_measure_opts *o, tune_result *out);

/* n candidates of one workload compiled in one module by one child (faster
** than n children); a candidate that crashes or hangs costs only itself:
** the rest go on in a new child. out[i] is the result of traces[i]. */
kiln_status tune_measure_batch(kiln_ctx *ctx, const tir_func *f, const sch_trace *const *traces, int n,
                               const tune_reference *ref, const tune_measure_opts *o, tune_result *out);
kiln_status tune_measure_lir_batch(kiln_ctx *ctx, const lir_func *const *fs, int n, const tune_reference *ref,
                                   const tune_measure_opts *o, tune_result *out);

#endif
