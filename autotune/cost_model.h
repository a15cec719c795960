/*
** cost_model.h — predicts which schedule candidates run fastest, from their
** features (features.h), with gradient-boosted trees (XGBoost's C API).
**
** The model learns from measured records: per record a task id, the
** features and the measured time (or a failure). Times are comparable only
** within a task, so the label of a record is its task's best time divided
** by its own (1 for the task's fastest, towards 0 for slow ones, 0 for a
** failed candidate, which counts a quarter of a success in the fit); one
** model serves every task it has records of. A
** prediction is a score, higher for faster. Scores compare candidates of
** one task; their scale means nothing across tasks.
**
** Until the model has been trained on at least TUNE_COST_MIN_RECORDS
** records, predictions are a deterministic pseudo-random function of the
** seed and the features (a random ranking, the same on every run).
** Training and prediction are deterministic: one thread, histogram-based
** tree construction (several times faster than exact greedy on thousands
** of records, as accurate here), the seed fixed.
**
**   tune_cost_model *m;
**   tune_cost_model_new(ctx, seed, &m);
**   tune_cost_model_add(ctx, m, task, feats, 1.2e-4, true);  // per record
**   tune_cost_model_train(ctx, m);
**   tune_cost_model_predict(ctx, m, cand_feats, n, scores);
**   tune_cost_model_free(m);
*/
#ifndef KILN_COST_MODEL_H
#define KILN_COST_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "autotune/features.h"

#define TUNE_COST_MIN_RECORDS 8

typedef struct tune_cost_model tune_cost_model;

kiln_status tune_cost_model_new(kiln_ctx *ctx, uint64_t seed, tune_cost_model **out);
void tune_cost_model_free(tune_cost_model *m); /* NULL is fine */

/* Adds one record: a candidate of task `task` (any int naming the kernel)
** with features feat (TUNE_N_FEATURES floats) ran in `seconds`; ok false
** records a failed candidate (seconds ignored). seconds must be finite and
** > 0 when ok (KILN_ERR_INVALID otherwise). The model changes on the next
** train. */
kiln_status tune_cost_model_add(kiln_ctx *ctx, tune_cost_model *m, int task, const float *feat, double seconds,
                                bool ok);

/* Fits the trees on every record added so far (from scratch; nothing to do
** when no record came since the last train). With fewer than
** TUNE_COST_MIN_RECORDS records, or no successful one, it keeps the random
** ranking and succeeds. */
kiln_status tune_cost_model_train(kiln_ctx *ctx, tune_cost_model *m);

/* Scores of n candidates (feat: n rows of TUNE_N_FEATURES floats) into
** scores[n]; higher predicts faster. */
kiln_status tune_cost_model_predict(kiln_ctx *ctx, tune_cost_model *m, const float *feat, int n, double *scores);

/* Records added, and whether predictions come from trained trees. */
int tune_cost_model_n_records(const tune_cost_model *m);
bool tune_cost_model_trained(const tune_cost_model *m);

#endif
