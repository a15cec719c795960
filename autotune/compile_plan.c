/*
** compile_plan.c — where a compiled plan keeps its values: the arena plan
** (passes/memplan.h) of the values its kernels produce, with in-place reuse
** decided from each kernel's compute DAG, room for outputs that nodes omit,
** and the run-time state kept between runs.
*/
#include <string.h>

#include "compile.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/tensor.h"

/* ---- in-place: does the kernel read the input only where it writes? ---- */

/* t loaded at exactly stage s's own element: the same axes in order (s may
** have leading axes of extent 1); a dim of 1 may be indexed by 0. */
static bool identity_load(const tir_stage *s, const ex_expr *ld) {
    const tir_tensor *t = ld->tensor;
    int r = t->rank, off = s->n_axes - r;
    if (off < 0 || ld->n_args != r) return false;
    for (int a = 0; a < off; a++)
        if (s->axes[a]->extent != 1) return false;
    for (int d = 0; d < r; d++) {
        const ex_expr *e = ld->args[d];
        const ex_var *ax = s->axes[off + d];
        int64_t c;
        if (t->dims[d] != ax->extent) return false;
        if (e->kind == EX_VAR && e->var == ax) continue;
        if (t->dims[d] == 1 && ex_is_const_int(e, &c) && c == 0) continue;
        return false;
    }
    return true;
}

typedef struct id_check {
    const tir_tensor *ph;
    const bool *dep; /* by stage id: reads ph, directly or through other stages */
} id_check;

/* Every load of ph or of a stage that depends on it is an identity load;
** *reads says whether there was one. */
static bool loads_ok(const id_check *c, const tir_stage *s, const ex_expr *e, bool *reads) {
    if (!e) return true;
    if (e->kind == EX_LOAD && e->tensor &&
        (e->tensor == c->ph || (e->tensor->stage && c->dep[e->tensor->stage->id]))) {
        *reads = true;
        if (!identity_load(s, e)) return false;
    }
    for (int i = 0; i < e->n_args; i++)
        if (!loads_ok(c, s, e->args[i], reads)) return false;
    return true;
}

/* Whether a kernel computing f may write its only output over input
** placeholder ph: every stage that depends on ph reads it (and its other
** dependent stages) only at its own element, with no reduction, so output
** element i depends on ph only at i, and is written after ph[i] is read.
** The CPU backend declares argument buffers noalias; an in-place pair breaks
** the letter of that contract but not its effect here: every load of ph[i]
** feeds the value stored to out[i], so no reordering the compiler may do can
** move such a load after that store, and no other element of ph is read. */
static bool reads_only_at_output_index(const tir_func *f, const tir_tensor *ph) {
    if (f->n_outputs != 1 || f->n_stages > 4096) return false;
    bool dep[f->n_stages > 0 ? f->n_stages : 1];
    memset(dep, 0, sizeof dep);
    id_check c = {ph, dep};
    for (int i = 0; i < f->n_stages; i++) {
        const tir_stage *s = f->stages[i];
        bool reads = false;
        if (s->id != i || !loads_ok(&c, s, s->body, &reads)) return false;
        if (reads && s->n_raxes > 0) return false;
        dep[i] = reads;
    }
    return true;
}

static bool kernel_can_share(void *arg, const gir_node *n, int step, int out_slot, int in_slot) {
    const kc_plan *p = arg;
    const kc_step *st = &p->steps[step];
    (void)out_slot;
    if (!st->kernel || !st->kernel->tir || n->n_outputs != 1) return false;
    const tir_func *f = st->kernel->tir;
    int ph = 0; /* placeholders are the present inputs, in order */
    for (int k = 0; k < in_slot; k++) ph += n->inputs[k] != NULL;
    if (ph >= f->n_inputs || f->inputs[ph]->constant) return false;
    return reads_only_at_output_index(f, f->inputs[ph]);
}

/* ---- the plan ---- */

/* Room for the outputs a kernel step writes although its node omits them. */
static size_t omitted_bytes(const kc_step *s) {
    const gir_node *n = s->node;
    const lir_func *lf = s->lir;
    size_t total = 0;
    int a = 0;
    for (int k = 0; k < n->n_inputs; k++) a += n->inputs[k] != NULL;
    for (int k = 0; k < n->n_outputs && a < lf->n_args; k++, a++) {
        if (n->outputs[k]) continue;
        size_t b = (size_t)lf->args[a]->size * kiln_dtype_size(lf->args[a]->dtype);
        total += (b + 63) & ~(size_t)63;
    }
    return total;
}

static void classify_values(kc_plan *p) {
    gir_graph *g = p->g;
    for (int i = 0; i < p->n_steps; i++) {
        const kc_step *s = &p->steps[i];
        for (int k = 0; k < s->node->n_outputs; k++) {
            gir_value *v = s->node->outputs[k];
            if (!v) continue;
            p->where[v->id] = p->mem.offset[v->id] >= 0 ? KC_VAL_ARENA : KC_VAL_HEAP;
        }
        if (s->kernel) {
            size_t b = omitted_bytes(s);
            if (b > p->scratch_bytes) p->scratch_bytes = b;
        }
    }
    /* a kernel writes a graph output into the caller's tensor (once: a value
    ** listed twice is copied for the second) */
    for (int k = 0; k < g->n_outputs; k++) {
        gir_value *v = g->outputs[k];
        if (p->where[v->id] == KC_VAL_HEAP && v->producer && gir_type_is_static(&v->type) &&
            v->type.dtype != KILN_STRING && p->mem.first[v->id] >= 0 && p->steps[p->mem.first[v->id]].kernel)
            p->where[v->id] = KC_VAL_OUTPUT;
    }
}

kiln_status kc_plan_memory(kiln_ctx *ctx, kc_plan *p) {
    gir_graph *g = p->g;
    size_t nv = (size_t)g->n_values + 1;
    const gir_node **nodes = kiln_calloc((size_t)p->n_steps + 1, sizeof *nodes);
    bool *off = kiln_calloc(nv, sizeof *off);
    p->where = kiln_calloc(nv, sizeof *p->where);
    p->vals = kiln_calloc(nv, sizeof *p->vals);
    p->last_use = kiln_calloc(nv, sizeof *p->last_use);
    kiln_status s = KILN_OK;
    if (!nodes || !off || !p->where || !p->vals || !p->last_use)
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory planning the arena");
    for (int i = 0; !s && i < p->n_steps; i++) {
        nodes[i] = p->steps[i].node;
        if (p->steps[i].kernel) continue;
        for (int k = 0; k < nodes[i]->n_outputs; k++) /* reference kernels allocate their outputs */
            if (nodes[i]->outputs[k]) off[nodes[i]->outputs[k]->id] = true;
    }
    mem_plan_options mo;
    pass_mem_options_default(&mo);
    mo.off_arena = off;
    mo.can_share = kernel_can_share;
    mo.share_arg = p;
    if (!s) s = pass_plan_memory(ctx, g, nodes, p->n_steps, &mo, &p->mem);
    if (!s) {
        classify_values(p);
        memcpy(p->last_use, p->mem.last, sizeof(int) * (size_t)g->n_values);
    }
    kiln_free(nodes);
    kiln_free(off);
    return s;
}

/* The arena and the scratch room, allocated at the first run and kept.
** Filled with 0xff (NaN for floats) once: a kernel that relied on zeroed
** outputs would show it in the first results, not by chance later. */
kiln_status kc_plan_arena(kiln_ctx *ctx, kc_plan *p) {
    if (p->arena) return KILN_OK;
    size_t main = (p->mem.arena_bytes + 63) & ~(size_t)63;
    size_t total = main + p->scratch_bytes + 64;
    p->arena_block = kiln_malloc(total);
    if (!p->arena_block)
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory allocating the plan's arena of %zu bytes", total);
    memset(p->arena_block, 0xff, total);
    p->arena = (uint8_t *)(((uintptr_t)p->arena_block + 63) & ~(uintptr_t)63);
    p->scratch = p->arena + main;
    return KILN_OK;
}
