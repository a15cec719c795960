/*
** features.h — a fixed-length description of one schedule candidate, the
** cost model's input.
**
** The features come from the candidate's lowered loop IR (sch_lower of its
** trace) and from its knob values. Most of them describe the "main nest":
** the store executed most often (the largest product of enclosing loop
** extents; the first such store in program order on a tie), which for the
** templates' kernels is the inner update of the reduction or the
** elementwise body. Sizes are log2(1 + x) so that the model sees ratios.
** The same loop IR and knobs always give the same vector, bit for bit.
**
** Layout (TUNE_FEAT_* are offsets into the vector):
**
**  Per level of the main nest, innermost first (TUNE_FEAT_LEVELS levels,
**  zeros beyond the outermost loop), TUNE_FEAT_PER_LEVEL floats each:
**   +0 extent            log2(1 + the loop's trip count)
**   +1 vectorized        1 if the loop is vectorized
**   +2 unrolled          1 if the loop is unrolled
**   +3 parallel          1 if the loop runs on the thread pool
**   +4 bytes             log2(1 + bytes the main store and its loads touch
**                        while this loop and those inside it run once
**                        through: per access, the distinct elements its
**                        index reaches, estimated from the index's affine
**                        coefficients and the loops' extents)
**   +5 lines             log2(1 + 64-byte cache lines those accesses touch)
**
**  Whole-kernel and main-nest features (TUNE_FEAT_GLOBAL onwards):
**   +0 flops             log2(1 + arithmetic operations executed, all stores)
**   +1 bytes             log2(1 + bytes moved by every load and store executed)
**   +2 intensity         flops / bytes touched by the main nest as a whole
**   +3 stages            number of distinct buffers stored to
**   +4 local_bytes       log2(1 + bytes of local/shared buffers allocated)
**   +5 parallel_extent   log2(1 + the product of the main nest's parallel extents)
**   +6 vector_width      log2(1 + the main nest's vectorized extent)
**   +7 unrolled_extent   log2(1 + the product of the main nest's unrolled extents)
**   +8 depth             loops enclosing the main store
**   +9 inner_guard       1 if a guard (IF) sits among the main nest's 4 innermost loops
**   +10 guards           log2(1 + guard evaluations executed, all nests)
**   +11 main_trips       log2(1 + times the main store executes)
**   +12 nests            number of root statements (loop nests) of the kernel
**   +13 inner_bytes      log2(1 + bytes of one innermost iteration's accesses)
**   +14 inner_contiguous accesses of the main store (its loads and the store)
**                        whose index steps by 1 with the innermost loop
**   +15 inner_invariant  ... that do not change with the innermost loop
**   +16 inner_strided    ... that step by more, or not affinely
**
**  Knobs (TUNE_FEAT_KNOBS onwards), two floats per knob slot, in the
**  space's knob order (zeros for slots the space does not have):
**   +0 position          the value's index among the knob's values / (count - 1)
**   +1 size              log2(1 + |value|)
*/
#ifndef KILN_FEATURES_H
#define KILN_FEATURES_H

#include "autotune/templates.h"
#include "ir/lir.h"

#define TUNE_FEAT_LEVELS 6
#define TUNE_FEAT_PER_LEVEL 6
#define TUNE_FEAT_GLOBAL (TUNE_FEAT_LEVELS * TUNE_FEAT_PER_LEVEL)
#define TUNE_FEAT_N_GLOBAL 17
#define TUNE_FEAT_KNOBS (TUNE_FEAT_GLOBAL + TUNE_FEAT_N_GLOBAL)
#define TUNE_N_FEATURES (TUNE_FEAT_KNOBS + 2 * TUNE_MAX_KNOBS)

/* Offsets of the whole-kernel features (TUNE_FEAT_GLOBAL + ...). */
enum {
    TUNE_FG_FLOPS = 0, TUNE_FG_BYTES, TUNE_FG_INTENSITY, TUNE_FG_STAGES, TUNE_FG_LOCAL_BYTES,
    TUNE_FG_PARALLEL, TUNE_FG_VECTOR, TUNE_FG_UNROLLED, TUNE_FG_DEPTH, TUNE_FG_INNER_GUARD,
    TUNE_FG_GUARDS, TUNE_FG_MAIN_TRIPS, TUNE_FG_NESTS, TUNE_FG_INNER_BYTES, TUNE_FG_INNER_CONTIG,
    TUNE_FG_INNER_INVARIANT, TUNE_FG_INNER_STRIDED
};

/* The loop-IR features of lf into out[0 .. TUNE_FEAT_KNOBS); the knob slots
** are left zero. Fails only when out of memory or for a loop nest deeper
** than 64 loops (KILN_ERR_UNSUPPORTED). */
kiln_status tune_features_lir(kiln_ctx *ctx, const lir_func *lf, float out[TUNE_N_FEATURES]);

/* The knob features of one point of sp into the knob slots of out (the
** other slots untouched). Each value must be one its knob lists
** (KILN_ERR_INVALID naming the knob otherwise). */
kiln_status tune_features_knobs(kiln_ctx *ctx, const tune_space *sp, const int64_t *knobs, float out[TUNE_N_FEATURES]);

/* Every feature of one point: its trace (tune_trace_from_knobs), lowered
** (sch_lower), then tune_features_lir and tune_features_knobs. */
kiln_status tune_features_point(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                                const tune_space *sp, const int64_t *knobs, float out[TUNE_N_FEATURES]);

/* A short name for feature i ("l0.extent", "flops", "k3.size"), for dumps. */
const char *tune_feature_name(int i, char *buf, size_t n);

#endif
