/*
** plan_memory.c — liveness, in-place reuse and static arena offsets for
** the intermediate values of a compiled plan (see memplan.h).
*/
#include "memplan.h"

#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/op.h"
#include "ir/tensor.h"

/* A buffer: one value, or an in-place chain of values sharing storage
** (indexed by the chain's first value). */
typedef struct mp_buf {
    int id;
    size_t size, asize; /* data bytes; rounded up to the alignment */
    int start, end;     /* steps, inclusive */
    int64_t offset;
} mp_buf;

typedef struct mp_state {
    const gir_graph *g;
    const gir_node *const *steps;
    int n_steps;
    mem_plan_options o;
    mem_plan p;
    int *root; /* by value id: the chain's first value (a buffer), -1 outside the arena */
    int *end;  /* by root: the chain's last step */
} mp_state;

void pass_mem_options_default(mem_plan_options *o) {
    memset(o, 0, sizeof *o);
    o->alignment = 64;
}

bool pass_mem_share_by_op(void *arg, const gir_node *n, int step, int out_slot, int in_slot) {
    (void)arg, (void)step, (void)out_slot, (void)in_slot;
    if (!n->op || (n->domain && !strcmp(n->domain, "ai.kiln") && !strcmp(n->op_type, "FusedKernel"))) return false;
    int outs = 0;
    for (int k = 0; k < n->n_outputs; k++) outs += n->outputs[k] != NULL;
    if (outs != 1 || n->n_outputs != 1) return false;
    return n->op->fusion == KILN_FUSE_ELEMWISE || n->op->fusion == KILN_FUSE_BROADCAST;
}

void pass_mem_plan_free(mem_plan *p) {
    if (!p) return;
    kiln_free(p->offset);
    kiln_free(p->bytes);
    kiln_free(p->first);
    kiln_free(p->last);
    kiln_free(p->share);
    memset(p, 0, sizeof *p);
}

static size_t round_up(size_t n, size_t a) { return (n + a - 1) & ~(a - 1); }

/* The data bytes of a value the arena can hold, or false. */
static bool arena_bytes_of(const mp_state *st, const gir_value *v, size_t *bytes) {
    if (v->constant || v->is_input || (v->is_output && !st->o.outputs_in_arena)) return false;
    if (st->o.off_arena && st->o.off_arena[v->id]) return false;
    if (!gir_type_is_static(&v->type) || v->type.dtype == KILN_STRING || v->type.dtype == KILN_UNDEFINED)
        return false;
    kiln_tensor t;
    gir_type_to_tensor(&v->type, &t);
    if (kiln_numel(&t) < 0) return false;
    *bytes = kiln_nbytes(&t);
    return *bytes > 0 || kiln_numel(&t) == 0;
}

/* first/last steps of every value; which values the arena holds. */
static void liveness(mp_state *st) {
    mem_plan *p = &st->p;
    for (int v = 0; v < p->n_values; v++) p->first[v] = p->last[v] = -1, p->offset[v] = -1, p->share[v] = -1;
    for (int i = 0; i < st->n_steps; i++) {
        const gir_node *n = st->steps[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k]) p->last[n->inputs[k]->id] = i;
        gir_note_outer_uses(st->g, n, i, p->last);
        for (int k = 0; k < n->n_outputs; k++) {
            gir_value *v = n->outputs[k];
            if (!v || p->first[v->id] >= 0) continue;
            p->first[v->id] = i;
            if (p->last[v->id] < i) p->last[v->id] = i;
        }
    }
    for (int k = 0; k < st->g->n_outputs; k++) p->last[st->g->outputs[k]->id] = st->n_steps;
    for (int v = 0; v < p->n_values; v++) {
        const gir_value *val = st->g->values[v];
        size_t b = 0;
        st->root[v] = -1;
        if (p->first[v] < 0 || !arena_bytes_of(st, val, &b)) continue;
        if (p->last[v] < p->first[v]) p->last[v] = p->first[v];
        p->bytes[v] = b;
        st->root[v] = v;
        st->end[v] = p->last[v];
        p->n_in_arena++;
    }
}

/* Whether output y of step i may take over input slot k's value x. */
static bool may_share(mp_state *st, int i, const gir_node *n, int out_slot, const gir_value *y, int k,
                      const bool *taken) {
    const gir_value *x = n->inputs[k];
    mem_plan *p = &st->p;
    if (!x || st->root[x->id] < 0 || taken[k]) return false;
    if (st->end[st->root[x->id]] != i || p->last[x->id] != i) return false; /* x must die here */
    if (x->type.dtype != y->type.dtype || p->bytes[x->id] != p->bytes[y->id]) return false;
    for (int j = 0; j < n->n_inputs; j++) /* every slot that reads x must allow it */
        if (n->inputs[j] == x && !st->o.can_share(st->o.share_arg, n, i, out_slot, j)) return false;
    return true;
}

static void plan_inplace(mp_state *st) {
    mem_plan *p = &st->p;
    for (int i = 0; i < st->n_steps; i++) {
        const gir_node *n = st->steps[i];
        bool taken[n->n_inputs > 0 ? n->n_inputs : 1];
        memset(taken, 0, sizeof taken);
        for (int o = 0; o < n->n_outputs; o++) {
            const gir_value *y = n->outputs[o];
            if (!y || st->root[y->id] != y->id || p->first[y->id] != i) continue;
            for (int k = 0; k < n->n_inputs; k++) {
                if (!may_share(st, i, n, o, y, k, taken)) continue;
                const gir_value *x = n->inputs[k];
                for (int j = 0; j < n->n_inputs; j++) taken[j] |= n->inputs[j] == x;
                int r = st->root[x->id];
                st->root[y->id] = r;
                st->end[r] = p->last[y->id];
                p->share[y->id] = x->id;
                p->n_inplace++;
                break;
            }
        }
    }
}

/* The largest total of live bytes at one step (a difference array). */
static size_t lower_bound(const mp_state *st, const mp_buf *b, int nb, int64_t *d) {
    for (int i = 0; i < nb; i++) {
        d[b[i].start] += (int64_t)b[i].size;
        d[b[i].end + 1] -= (int64_t)b[i].size;
    }
    int64_t cur = 0, best = 0;
    for (int i = 0; i <= st->n_steps; i++) {
        cur += d[i];
        if (cur > best) best = cur;
    }
    return (size_t)best;
}

static int by_size_desc(const void *pa, const void *pb) {
    const mp_buf *a = pa, *b = pb;
    if (a->asize != b->asize) return a->asize < b->asize ? 1 : -1;
    int la = a->end - a->start, lb = b->end - b->start;
    if (la != lb) return la < lb ? 1 : -1;
    return a->id - b->id;
}

/* Longest lived first (ties: larger first): long-lived buffers at the
** bottom leave the top to short-lived ones. */
static int by_lifetime_desc(const void *pa, const void *pb) {
    const mp_buf *a = pa, *b = pb;
    int la = a->end - a->start, lb = b->end - b->start;
    if (la != lb) return la < lb ? 1 : -1;
    if (a->asize != b->asize) return a->asize < b->asize ? 1 : -1;
    return a->id - b->id;
}

/* In order of first use (a linear scan, best fit). */
static int by_start(const void *pa, const void *pb) {
    const mp_buf *a = pa, *b = pb;
    if (a->start != b->start) return a->start < b->start ? -1 : 1;
    return a->id - b->id;
}

static int by_offset(const void *pa, const void *pb) {
    const mp_buf *a = *(const mp_buf *const *)pa, *b = *(const mp_buf *const *)pb;
    if (a->offset != b->offset) return a->offset < b->offset ? -1 : 1;
    return a->id - b->id;
}

/* Best fit among the gaps that the placed buffers overlapping b in time
** leave; above them all when none fits. */
static int64_t place_one(const mp_buf *b, const mp_buf *placed, int n_placed, const mp_buf **conf) {
    int nc = 0;
    for (int i = 0; i < n_placed; i++)
        if (placed[i].asize && placed[i].start <= b->end && b->start <= placed[i].end) conf[nc++] = &placed[i];
    qsort(conf, (size_t)nc, sizeof *conf, by_offset);
    int64_t top = 0, best = -1, best_gap = INT64_MAX;
    for (int i = 0; i < nc; i++) {
        int64_t gap = conf[i]->offset - top;
        if (gap >= (int64_t)b->asize && gap < best_gap) best = top, best_gap = gap;
        int64_t e = conf[i]->offset + (int64_t)conf[i]->asize;
        if (e > top) top = e;
    }
    return best >= 0 ? best : top;
}

static kiln_status assign_offsets(kiln_ctx *ctx, mp_state *st) {
    mem_plan *p = &st->p;
    int nb = 0;
    for (int v = 0; v < p->n_values; v++) nb += st->root[v] == v;
    mp_buf *b = kiln_calloc((size_t)nb + 1, sizeof *b);
    const mp_buf **conf = kiln_calloc((size_t)nb + 1, sizeof *conf);
    int64_t *diff = kiln_calloc((size_t)st->n_steps + 2, sizeof *diff);
    if (!b || !conf || !diff) {
        kiln_free(b);
        kiln_free(conf);
        kiln_free(diff);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "pass plan_memory: out of memory");
    }
    nb = 0;
    for (int v = 0; v < p->n_values; v++)
        if (st->root[v] == v)
            b[nb++] = (mp_buf){v, p->bytes[v], round_up(p->bytes[v], p->alignment), p->first[v], st->end[v], 0};
    p->lower_bound = lower_bound(st, b, nb, diff);
    kiln_free(diff);
    /* greedy placements in three orders; the smallest arena wins */
    static int (*const orders[])(const void *, const void *) = {by_size_desc, by_lifetime_desc, by_start};
    size_t best = SIZE_MAX;
    for (size_t k = 0; k < sizeof orders / sizeof orders[0]; k++) {
        qsort(b, (size_t)nb, sizeof *b, orders[k]);
        size_t arena = 0;
        for (int i = 0; i < nb; i++) {
            b[i].offset = b[i].asize ? place_one(&b[i], b, i, conf) : 0;
            size_t top = (size_t)b[i].offset + b[i].asize;
            if (top > arena) arena = top;
        }
        if (arena >= best) continue;
        best = p->arena_bytes = arena;
        for (int i = 0; i < nb; i++) p->offset[b[i].id] = b[i].offset;
    }
    for (int v = 0; v < p->n_values; v++)
        if (st->root[v] >= 0) p->offset[v] = p->offset[st->root[v]];
    kiln_free(b);
    kiln_free(conf);
    return KILN_OK;
}

static kiln_status alloc_plan(kiln_ctx *ctx, mp_state *st) {
    size_t n = (size_t)st->g->n_values + 1;
    mem_plan *p = &st->p;
    p->n_values = st->g->n_values;
    p->n_steps = st->n_steps;
    p->alignment = st->o.alignment;
    p->offset = kiln_calloc(n, sizeof *p->offset);
    p->bytes = kiln_calloc(n, sizeof *p->bytes);
    p->first = kiln_calloc(n, sizeof *p->first);
    p->last = kiln_calloc(n, sizeof *p->last);
    p->share = kiln_calloc(n, sizeof *p->share);
    st->root = kiln_calloc(n, sizeof *st->root);
    st->end = kiln_calloc(n, sizeof *st->end);
    if (p->offset && p->bytes && p->first && p->last && p->share && st->root && st->end) return KILN_OK;
    return kiln_fail(ctx, KILN_ERR_NOMEM, "pass plan_memory: out of memory");
}

kiln_status pass_plan_memory(kiln_ctx *ctx, const gir_graph *g, const gir_node *const *steps, int n_steps,
                             const mem_plan_options *o, mem_plan *out) {
    mp_state st = {.g = g, .steps = steps, .n_steps = n_steps};
    if (o) st.o = *o;
    else pass_mem_options_default(&st.o);
    if (!st.o.alignment) st.o.alignment = 64;
    if (st.o.alignment & (st.o.alignment - 1))
        return kiln_fail(ctx, KILN_ERR_INVALID, "pass plan_memory: alignment %zu is not a power of two",
                         st.o.alignment);
    if (!st.o.can_share) st.o.can_share = pass_mem_share_by_op;
    for (int i = 0; i < n_steps; i++)
        if (!steps[i])
            return kiln_fail(ctx, KILN_ERR_INVALID, "pass plan_memory: step %d has no node", i);
    kiln_status s = alloc_plan(ctx, &st);
    if (!s) {
        liveness(&st);
        plan_inplace(&st);
        s = assign_offsets(ctx, &st);
    }
    kiln_free(st.root);
    kiln_free(st.end);
    if (s) {
        pass_mem_plan_free(&st.p);
        return s;
    }
    *out = st.p;
    return KILN_OK;
}
