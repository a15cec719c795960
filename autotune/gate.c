/*
** gate.c — the correctness gate: a workload's random inputs and expected
** outputs (the reference, computed once), and the elementwise comparison
** of a candidate's outputs with them.
*/
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "measure_internal.h"

/* Below this many stores (about half a second) the loop-IR interpreter
** computes the reference: it is bounds-checked and independent of the
** backend. Above, the compiled default nest does. */
#define TM_INTERP_MAX_WORK 500000.0

void tune_gate_tolerance(kiln_dtype dt, double *rtol, double *atol_scale) {
    switch (dt) {
    case KILN_F32: *rtol = 1e-4, *atol_scale = 1e-5; break;
    case KILN_F64: *rtol = 1e-9, *atol_scale = 1e-11; break;
    case KILN_F16: *rtol = 4e-3, *atol_scale = 1e-3; break;
    case KILN_BF16: *rtol = 3e-2, *atol_scale = 8e-3; break;
    default:
        if (kiln_dtype_is_lowp_float(dt)) *rtol = 0.26, *atol_scale = 0.07;
        else *rtol = 0, *atol_scale = 0;
    }
}

static bool is_floaty(kiln_dtype dt) { return kiln_dtype_is_float(dt) || kiln_dtype_is_lowp_float(dt); }

static bool compare_floats(kiln_dtype dt, const void *got, const void *want, int64_t n, char *msg, size_t size) {
    double rtol, as, maxabs = 0;
    tune_gate_tolerance(dt, &rtol, &as);
    for (int64_t i = 0; i < n; i++) {
        double w = kiln_load_f64(dt, want, i);
        if (isfinite(w) && fabs(w) > maxabs) maxabs = fabs(w);
    }
    double atol = as * maxabs;
    for (int64_t i = 0; i < n; i++) {
        double g = kiln_load_f64(dt, got, i), w = kiln_load_f64(dt, want, i);
        bool ok;
        if (isnan(w) || isinf(w)) ok = isnan(w) ? isnan(g) : g == w;
        else ok = isfinite(g) && fabs(g - w) <= atol + rtol * fabs(w);
        if (!ok) {
            snprintf(msg, size, "element %lld is %.9g, expected %.9g%s", (long long)i, g, w,
                     isnan(g) && !isnan(w) ? " (left unwritten?)" : "");
            return false;
        }
    }
    return true;
}

bool tune_gate_compare(kiln_dtype dt, const void *got, const void *want, int64_t n, char *msg, size_t size) {
    if (is_floaty(dt)) return compare_floats(dt, got, want, n, msg, size);
    size_t es = kiln_dtype_size(dt);
    for (int64_t i = 0; i < n; i++) {
        if (!memcmp((const char *)got + (size_t)i * es, (const char *)want + (size_t)i * es, es)) continue;
        snprintf(msg, size, "element %lld is %lld, expected %lld", (long long)i,
                 (long long)kiln_load_i64(dt, got, i), (long long)kiln_load_i64(dt, want, i));
        return false;
    }
    return true;
}

/* ---- races ---- */

static bool uses_var(const ex_expr *e, const ex_var *v) {
    if (!e) return false;
    if (e->kind == EX_VAR && e->var == v) return true;
    for (int i = 0; i < e->n_args; i++)
        if (uses_var(e->args[i], v)) return true;
    return false;
}

typedef struct race_walk {
    const ex_var *par[16];  /* the parallel loops around, innermost last */
    int n_par;
    const lir_buffer *private_[64]; /* buffers allocated inside the innermost parallel loop */
    int n_private;
    char *msg;
    size_t size;
} race_walk;

static bool is_private(const race_walk *w, const lir_buffer *b) {
    for (int i = 0; i < w->n_private; i++)
        if (w->private_[i] == b) return true;
    return false;
}

/* A store inside a parallel loop at an index that does not depend on the
** loop's variable is made by every iteration: threads race on it (the
** classic parallel reduction without rfactor). */
static bool race_free(race_walk *w, const lir_stmt *s) {
    if (!s) return true;
    switch (s->kind) {
    case LIR_STORE:
        for (int i = 0; i < w->n_par; i++) {
            if (is_private(w, s->buffer) || uses_var(s->index, w->par[i])) continue;
            snprintf(w->msg, w->size, "parallel loop %s writes the same element of %s in every iteration (a race)",
                     w->par[i]->name, s->buffer->name);
            return false;
        }
        return true;
    case LIR_FOR: {
        bool one = s->extent && s->extent->kind == EX_INT && s->extent->ival <= 1;
        bool par = s->loop == LIR_PARALLEL && !one && w->n_par < 16;
        int saved = w->n_private;
        if (par) w->par[w->n_par++] = s->var, w->n_private = 0;
        bool ok = race_free(w, s->body);
        if (par) w->n_par--, w->n_private = saved;
        return ok;
    }
    case LIR_ALLOC: {
        int saved = w->n_private;
        if (w->n_par && w->n_private < 64) w->private_[w->n_private++] = s->buffer;
        bool ok = race_free(w, s->body);
        w->n_private = saved;
        return ok;
    }
    case LIR_IF: return race_free(w, s->body) && race_free(w, s->else_body);
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++)
            if (!race_free(w, s->stmts[i])) return false;
        return true;
    default: return true;
    }
}

bool tune_gate_race_free(const lir_func *lf, char *msg, size_t size) {
    race_walk w;
    memset(&w, 0, sizeof w);
    w.msg = msg, w.size = size;
    return race_free(&w, lf->body);
}

/* ---- references ---- */

void tune_reference_free(tune_reference *r) {
    if (!r) return;
    for (int i = 0; r->inputs && i < r->n_inputs; i++) tm_buf_unmap(&r->inputs[i]);
    for (int i = 0; r->expected && i < r->n_outputs; i++) tm_buf_unmap(&r->expected[i]);
    kiln_free(r->inputs);
    kiln_free(r->expected);
    kiln_free(r);
}

static kiln_status map_fail(kiln_ctx *ctx, tune_reference *r, const lir_buffer *b) {
    tune_reference_free(r);
    return kiln_fail(ctx, KILN_ERR_NOMEM, "measure: no memory for %s (%lld elements of %s)", b->name,
                     (long long)b->size, kiln_dtype_name(b->dtype));
}

kiln_status tm_reference_inputs(kiln_ctx *ctx, const lir_func *lf, uint64_t seed, tune_reference **out) {
    tune_reference *r = kiln_calloc(1, sizeof *r);
    int ni = lf->n_inputs, no = lf->n_args - lf->n_inputs;
    if (r) r->inputs = kiln_calloc((size_t)ni + 1, sizeof(tm_buf));
    if (r && r->inputs) r->expected = kiln_calloc((size_t)no + 1, sizeof(tm_buf));
    if (!r || !r->expected) {
        tune_reference_free(r);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    }
    r->seed = seed;
    for (int i = 0; i < ni; i++) {
        const lir_buffer *b = lf->args[i];
        if (b->dtype == KILN_STRING || !kiln_dtype_size(b->dtype)) {
            tune_reference_free(r);
            return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "measure: input %s has dtype %s, which cannot be measured",
                             b->name, kiln_dtype_name(b->dtype));
        }
        if (!tm_buf_map(&r->inputs[i], b->dtype, b->size, true)) return map_fail(ctx, r, b);
        r->n_inputs = i + 1;
        if (b->constant && b->constant->data)
            memcpy(r->inputs[i].data, b->constant->data, r->inputs[i].data_bytes);
        else
            tm_fill_random(b->dtype, r->inputs[i].data, b->size, seed, (uint64_t)i);
    }
    *out = r;
    return KILN_OK;
}

/* Stores the loop nest would execute, a measure of the interpreter's work. */
static double work_of(const lir_stmt *s) {
    if (!s) return 0;
    switch (s->kind) {
    case LIR_FOR: {
        double e = s->extent && s->extent->kind == EX_INT ? (double)s->extent->ival : 1e9;
        return e * work_of(s->body);
    }
    case LIR_STORE: return 1;
    case LIR_ALLOC: return work_of(s->body);
    case LIR_IF: return work_of(s->body) + work_of(s->else_body);
    case LIR_SEQ: {
        double w = 0;
        for (int i = 0; i < s->n_stmts; i++) w += work_of(s->stmts[i]);
        return w;
    }
    default: return 0;
    }
}

static kiln_status run_interp(kiln_ctx *ctx, const lir_func *lf, tune_reference *r) {
    void **args = kiln_calloc((size_t)lf->n_args + 1, sizeof(void *));
    if (!args) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    for (int i = 0; i < lf->n_args; i++)
        args[i] = i < r->n_inputs ? r->inputs[i].data : r->expected[i - r->n_inputs].data;
    kiln_status s = lir_interp_run(ctx, lf, args);
    kiln_free(args);
    return s ? kiln_wrap(ctx, s, "measure: the reference (loop-IR interpreter)") : KILN_OK;
}

static kiln_status run_compiled(kiln_ctx *ctx, const lir_func *lf, const tune_measure_opts *o, tune_reference *r) {
    lir_func *fs[1] = {(lir_func *)lf};
    bool done[1] = {false};
    tune_result res;
    /* the default nest is plain loops: slower than any candidate, and it runs once */
    tune_measure_opts ro = *o;
    ro.timeout_s *= 6;
    tm_job job = {fs, 1, done, 0, 1, r, &ro, true};
    kiln_status s = tm_drive(ctx, &job, done, &res);
    if (s) return s;
    if (res.status != TUNE_STATUS_OK)
        return kiln_fail(ctx, KILN_ERR_INTERNAL, "measure: the reference (the default nest, compiled) failed: %s",
                         res.msg);
    return KILN_OK;
}

/* Maps the expected outputs and computes them with the reference nest. */
static kiln_status expect(kiln_ctx *ctx, const lir_func *ref, const tune_measure_opts *o, tune_ref_mode mode,
                          tune_reference *r) {
    for (int i = ref->n_inputs; i < ref->n_args; i++) {
        const lir_buffer *b = ref->args[i];
        if (!tm_buf_map(&r->expected[i - ref->n_inputs], b->dtype, b->size, true))
            return kiln_fail(ctx, KILN_ERR_NOMEM, "measure: no memory for %s (%lld elements of %s)", b->name,
                             (long long)b->size, kiln_dtype_name(b->dtype));
        r->n_outputs++;
    }
    bool automatic = mode == TUNE_REF_AUTO;
    if (automatic) mode = work_of(ref->body) <= TM_INTERP_MAX_WORK ? TUNE_REF_INTERP : TUNE_REF_COMPILED;
    kiln_status s = mode == TUNE_REF_INTERP ? run_interp(ctx, ref, r) : run_compiled(ctx, ref, o, r);
    /* a default nest the backend refuses (e.g. a root buffer too large for
    ** the stack) still has the interpreter, slow but without that limit */
    if (s && automatic && mode == TUNE_REF_COMPILED) s = run_interp(ctx, ref, r);
    if (!s) r->has_expected = true;
    return s;
}

kiln_status tune_reference_from_lir(kiln_ctx *ctx, const lir_func *ref, const tune_measure_opts *o,
                                    tune_ref_mode mode, tune_reference **out) {
    if (!ref || !o || !out) return kiln_fail(ctx, KILN_ERR_INVALID, "tune_reference_from_lir: a NULL argument");
    tune_reference *r = NULL;
    kiln_status s = tm_reference_inputs(ctx, ref, o->seed, &r);
    if (!s) s = expect(ctx, ref, o, mode, r);
    if (s) {
        tune_reference_free(r);
        return s;
    }
    *out = r;
    return KILN_OK;
}

/* Inputs bound to constant data in the tir_func keep it (the default nest's
** arguments do not carry it: only packed copies do). */
static void bind_constants(const tir_func *f, tune_reference *r) {
    for (int i = 0; i < f->n_inputs && i < r->n_inputs; i++) {
        const kiln_tensor *c = f->inputs[i]->constant;
        if (c && c->data && c->dtype == r->inputs[i].dtype && kiln_numel(c) == r->inputs[i].n)
            memcpy(r->inputs[i].data, c->data, r->inputs[i].data_bytes);
    }
}

kiln_status tm_reference_tir(kiln_ctx *ctx, const tir_func *f, const tune_measure_opts *o, tune_ref_mode mode,
                             bool with_expected, tune_reference **out) {
    sch_trace *empty = sch_trace_new();
    if (!empty) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    lir_func *lf = NULL;
    kiln_status s = sch_lower(ctx, f, empty, &lf);
    sch_trace_free(empty);
    if (s) return kiln_wrap(ctx, s, "measure: the default nest of %s", f->name);
    tune_reference *r = NULL;
    s = tm_reference_inputs(ctx, lf, o->seed, &r);
    if (!s) bind_constants(f, r);
    if (!s && with_expected) s = expect(ctx, lf, o, mode, r);
    lir_func_free(lf);
    if (s) {
        tune_reference_free(r);
        return s;
    }
    r->hash = tir_hash(f);
    *out = r;
    return KILN_OK;
}

kiln_status tune_reference_new(kiln_ctx *ctx, const tir_func *f, const tune_measure_opts *o, tune_ref_mode mode,
                               tune_reference **out) {
    if (!f || !o || !out) return kiln_fail(ctx, KILN_ERR_INVALID, "tune_reference_new: a NULL argument");
    return tm_reference_tir(ctx, f, o, mode, true, out);
}

/* ---- the cache ---- */

struct tune_ref_cache {
    int n, cap;
    tune_reference **refs;
};

tune_ref_cache *tune_ref_cache_new(void) { return kiln_calloc(1, sizeof(tune_ref_cache)); }

void tune_ref_cache_free(tune_ref_cache *c) {
    if (!c) return;
    for (int i = 0; i < c->n; i++) tune_reference_free(c->refs[i]);
    kiln_free(c->refs);
    kiln_free(c);
}

kiln_status tune_ref_cache_get(kiln_ctx *ctx, tune_ref_cache *c, const tir_func *f, const tune_measure_opts *o,
                               const tune_reference **out) {
    if (!c || !f || !o || !out) return kiln_fail(ctx, KILN_ERR_INVALID, "tune_ref_cache_get: a NULL argument");
    uint64_t h = tir_hash(f);
    for (int i = 0; i < c->n; i++) {
        if (c->refs[i]->hash == h && c->refs[i]->seed == o->seed) {
            *out = c->refs[i];
            return KILN_OK;
        }
    }
    if (!kiln_grow((void **)&c->refs, &c->cap, c->n + 1, sizeof(tune_reference *)))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    tune_reference *r = NULL;
    kiln_status s = tune_reference_new(ctx, f, o, TUNE_REF_AUTO, &r);
    if (s) return s;
    c->refs[c->n++] = r;
    *out = r;
    return KILN_OK;
}
