/*
** templates.c — the default CPU schedules: the table of templates, their
** spaces and points, and the default trace of a kernel.
**
** The templates, in the order they are tried (tmpl_*.c):
**   matmul    register-blocked micro-kernel over a MATMUL stage
**   conv      register-blocked direct convolution over a CONV stage
**   pool      window reductions vectorized along the output width
**   attention the Attention DAG per tile of query rows
**   reduce    any function with reductions: vector accumulators or vector
**             partial sums, statistics computed per row inside the consumer
**   elemwise  functions without reductions: producers inlined, the
**             innermost axis vectorized, the rest fused and parallel
** and "default", the empty trace (the default nest), when none applies.
*/
#include "templates.h"

#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "tmpl_internal.h"

extern const tmpl_def tmpl_conv_blocked; /* tmpl_conv_blocked.c: the blocked channel layout */
extern const tmpl_def tmpl_attention; /* tmpl_attention.c: Attention per tile of query rows */
static const tmpl_def *const k_templates[] = {&tmpl_matmul, &tmpl_conv_blocked, &tmpl_conv, &tmpl_pool, &tmpl_attention, &tmpl_winograd, &tmpl_reduce,
                                               &tmpl_elemwise};
#define N_TEMPLATES (int)(sizeof k_templates / sizeof k_templates[0])
#define DEFAULT_ID N_TEMPLATES

/* ---- knobs ---- */

void tmpl_knob(tune_space *s, const char *name, int n, const int64_t *values, int64_t def) {
    if (s->n_knobs >= TUNE_MAX_KNOBS) return;
    tune_knob *k = &s->knobs[s->n_knobs];
    memset(k, 0, sizeof *k);
    k->name = name;
    for (int i = 0; i < n && k->n_values < TUNE_MAX_VALUES; i++) {
        bool dup = false;
        for (int j = 0; j < k->n_values && !dup; j++) dup = k->values[j] == values[i];
        if (!dup) k->values[k->n_values++] = values[i];
    }
    if (k->n_values == 0) k->values[k->n_values++] = def;
    for (int i = 0; i < k->n_values; i++)
        if (k->values[i] == def) k->default_index = i;
    s->n_knobs++;
}

int64_t tmpl_val(const tune_space *s, const int64_t *point, const char *name, int64_t fallback) {
    int k = tune_knob_index(s, name);
    return k < 0 ? fallback : point[k];
}

int tune_knob_index(const tune_space *s, const char *name) {
    for (int k = 0; s && name && k < s->n_knobs; k++)
        if (strcmp(s->knobs[k].name, name) == 0) return k;
    return -1;
}

void tune_space_default(const tune_space *s, int64_t *knob_values) {
    for (int k = 0; k < s->n_knobs; k++) knob_values[k] = s->knobs[k].values[s->knobs[k].default_index];
}

uint64_t tune_space_size(const tune_space *s) {
    uint64_t n = 1;
    for (int k = 0; k < s->n_knobs; k++) {
        uint64_t v = (uint64_t)(s->knobs[k].n_values > 0 ? s->knobs[k].n_values : 1);
        if (n > UINT64_MAX / v) return UINT64_MAX;
        n *= v;
    }
    return n;
}

const char *tune_point_str(const tune_space *s, const int64_t *knob_values, char *buf, size_t n) {
    size_t len = 0;
    if (!n) return buf;
    buf[0] = 0;
    len += (size_t)snprintf(buf, n, "%s", s->template_name ? s->template_name : "?");
    for (int k = 0; k < s->n_knobs && len < n; k++)
        len += (size_t)snprintf(buf + len, n - len, " %s=%lld", s->knobs[k].name, (long long)knob_values[k]);
    return buf;
}

/* ---- spaces and points ---- */

kiln_status tune_space_for(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target, tune_space *out) {
    if (!f || !target || !out) return kiln_fail(ctx, KILN_ERR_INVALID, "tune_space_for: missing argument");
    tune_space sp;
    for (int i = 0; i < N_TEMPLATES; i++) {
        memset(&sp, 0, sizeof sp);
        sp.template_name = k_templates[i]->name;
        sp.template_id = i;
        bool applies = false;
        kiln_status s = k_templates[i]->space(ctx, f, target, &sp, &applies);
        if (s) return s;
        if (applies) {
            *out = sp;
            return KILN_OK;
        }
    }
    memset(&sp, 0, sizeof sp);
    sp.template_name = "default";
    sp.template_id = DEFAULT_ID;
    *out = sp;
    return KILN_OK;
}

static kiln_status check_point(kiln_ctx *ctx, const tune_space *s, const int64_t *v) {
    if (s->template_id < 0 || s->template_id > DEFAULT_ID || s->n_knobs < 0 || s->n_knobs > TUNE_MAX_KNOBS)
        return kiln_fail(ctx, KILN_ERR_INVALID, "schedule space '%s' was not made by tune_space_for",
                         s->template_name ? s->template_name : "?");
    for (int k = 0; k < s->n_knobs; k++) {
        const tune_knob *kn = &s->knobs[k];
        bool ok = false;
        for (int i = 0; i < kn->n_values && !ok; i++) ok = kn->values[i] == v[k];
        if (!ok)
            return kiln_fail(ctx, KILN_ERR_INVALID, "schedule template %s: knob %s = %lld is not one of its values",
                             s->template_name, kn->name, (long long)v[k]);
    }
    return KILN_OK;
}

/* Intermediate tensors computed at the root live on the stack of the
** kernel (the CPU backend's limit is a few MiB): a large one that can be
** inlined is, whatever the template chose. */

static bool read_by_conv(const tir_func *f, const tir_stage *s) {
    for (int i = 0; i < f->n_stages; i++)
        if (f->stages[i]->tag == TIR_TAG_CONV && tmpl_reads(f->stages[i]->body, s->out)) return true;
    return false;
}

/* Before the template (so that it schedules what its loops will compute),
** except the padded inputs of convolutions, which the conv template
** computes per tile; after it, whatever is still at the root. */
static void inline_big(tb *b, const tir_func *f, bool before) {
    for (int i = 0; i < f->n_stages && !b->err; i++) {
        const tir_stage *s = f->stages[i];
        sch_stage *ss = tb_stage(b, s->name);
        if (before && read_by_conv(f, s)) continue;
        int64_t n = tmpl_numel(s->out), bytes = (int64_t)kiln_dtype_size(s->out->dtype);
        if (!ss || ss->attach != SCH_ROOT || ss->is_output || ss->n_raxes || ss->cw || n <= TMPL_ROOT_MAX_BYTES / (bytes ? bytes : 1))
            continue;
        bool held = false;
        for (int k = 0; k < b->st.n_stages; k++)
            held |= b->st.stages[k]->attach == SCH_AT && b->st.stages[k]->at_stage == ss;
        if (!held) tb_inline(b, s->name);
    }
}

kiln_status tune_trace_from_knobs(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                                  const tune_space *s, const int64_t *knob_values, sch_trace **out) {
    if (!f || !target || !s || !out || (s->n_knobs && !knob_values))
        return kiln_fail(ctx, KILN_ERR_INVALID, "tune_trace_from_knobs: missing argument");
    kiln_status st = check_point(ctx, s, knob_values);
    if (st) return st;
    if (s->template_id == DEFAULT_ID) {
        sch_trace *t = sch_trace_new();
        if (!t) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory creating a trace");
        *out = t;
        return KILN_OK;
    }
    tb b;
    if ((st = tb_init(&b, ctx, f))) {
        tb_release(&b);
        return st;
    }
    inline_big(&b, f, true);
    k_templates[s->template_id]->trace(&b, f, target, s, knob_values);
    inline_big(&b, f, false);
    st = tb_finish(&b, out);
    if (st && st != KILN_ERR_NOMEM) {
        char pt[512];
        return kiln_wrap(ctx, KILN_ERR_INTERNAL, "schedule template for '%s' (%s)", f->name,
                         tune_point_str(s, knob_values, pt, sizeof pt));
    }
    return st;
}

kiln_status tune_default_trace(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *target,
                               sch_trace **out) {
    tune_space sp;
    int64_t point[TUNE_MAX_KNOBS];
    kiln_status s = tune_space_for(ctx, f, target, &sp);
    if (s) return s;
    tune_space_default(&sp, point);
    s = tune_trace_from_knobs(ctx, f, target, &sp, point, out);
    if (s != KILN_ERR_INTERNAL) return s;
    /* a template that cannot schedule this function (a bug the tests look
    ** for) costs speed, not the compile: the default nest is always valid */
    sch_trace *t = sch_trace_new();
    if (!t) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory creating a trace");
    *out = t;
    return KILN_OK;
}
