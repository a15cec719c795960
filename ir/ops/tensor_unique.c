/*
** tensor_unique.c — Unique: the distinct elements (or slices along an axis)
** of a tensor, with first-occurrence indices, inverse indices and counts.
*/
#include <string.h>

#include "shape_ops.h"

/* The items compared: `count` slices of `inner` elements, `outer` times. */
typedef struct uq_items {
    const kiln_tensor *x;
    int axis; /* -1: the flattened elements */
    int64_t outer, count, inner;
} uq_items;

/* The grouping: order[] lists item indices group by group; group g spans
** order[start[g] .. start[g+1]). */
typedef struct uq_groups {
    int64_t *order, *start, *tmp, *rank;
    int64_t n;
} uq_groups;

static int uq_cmp(const void *p, int64_t a, int64_t b) {
    const uq_items *it = p;
    for (int64_t o = 0; o < it->outer; o++)
        for (int64_t i = 0; i < it->inner; i++) {
            int64_t base = o * it->count * it->inner + i;
            int c = shp_cmp_elem(it->x, base + a * it->inner, it->x, base + b * it->inner);
            if (c) return c;
        }
    return 0;
}

/* Groups first come in value order; unsorted output reorders them by first occurrence. */
static int uq_first_cmp(const void *p, int64_t a, int64_t b) {
    const uq_groups *g = p;
    int64_t fa = g->order[g->start[a]], fb = g->order[g->start[b]];
    return (fa > fb) - (fa < fb);
}

static void uq_free(uq_groups *g) {
    kiln_free(g->order);
    kiln_free(g->start);
    kiln_free(g->tmp);
    kiln_free(g->rank);
}

static kiln_status uq_group(kiln_ctx *ctx, const gir_node *n, const uq_items *it, bool sorted,
                            uq_groups *g) {
    if (it->count > SHP_MAX_ELEMS) return kiln_op_fail(ctx, n, KILN_ERR_UNSUPPORTED, "too many items");
    size_t m = (size_t)it->count + 1;
    memset(g, 0, sizeof *g);
    g->order = kiln_malloc(m * sizeof(int64_t));
    g->start = kiln_malloc(m * sizeof(int64_t));
    g->tmp = kiln_malloc(m * sizeof(int64_t));
    g->rank = kiln_malloc(m * sizeof(int64_t));
    if (!g->order || !g->start || !g->tmp || !g->rank) {
        uq_free(g);
        return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory");
    }
    for (int64_t i = 0; i < it->count; i++) g->order[i] = i;
    shp_stable_sort(g->order, it->count, g->tmp, uq_cmp, it);
    for (int64_t i = 0; i < it->count; i++)
        if (i == 0 || uq_cmp(it, g->order[i - 1], g->order[i])) g->start[g->n++] = i;
    g->start[g->n] = it->count;
    for (int64_t k = 0; k < g->n; k++) g->rank[k] = k;
    if (!sorted) shp_stable_sort(g->rank, g->n, g->tmp, uq_first_cmp, g);
    return KILN_OK;
}

static kiln_status uq_items_of(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *x, uq_items *it) {
    const gir_attr *a = gir_attr_find(n, "axis");
    it->x = x;
    it->axis = -1;
    if (a) {
        kiln_status s = kiln_op_axis(ctx, n, a->i, x->rank, &it->axis);
        if (s) return s;
    }
    if (it->axis < 0) {
        it->outer = it->inner = 1;
        it->count = kiln_numel(x);
    } else {
        it->outer = kiln_numel_dims(it->axis, x->dims);
        it->count = x->dims[it->axis];
        it->inner = kiln_numel_dims(x->rank - it->axis - 1, x->dims + it->axis + 1);
    }
    if (it->count && !x->data) return KILN_ERR_DYNAMIC;
    return KILN_OK;
}

kiln_status tns_unique_infer(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                             kiln_tensor *out) {
    uq_items it;
    uq_groups g;
    kiln_status s = uq_items_of(ctx, n, in[0], &it);
    if (!s) s = uq_group(ctx, n, &it, true, &g);
    if (s) return s;
    int64_t u = g.n;
    uq_free(&g);
    if (it.axis < 0) {
        kiln_tensor_init(&out[0], in[0]->dtype, 1, &u);
    } else {
        kiln_tensor_init(&out[0], in[0]->dtype, in[0]->rank, in[0]->dims);
        out[0].dims[it.axis] = u;
    }
    for (int i = 1; i < n->n_outputs; i++) kiln_tensor_init(&out[i], KILN_I64, 1, i == 2 ? &it.count : &u);
    return KILN_OK;
}

kiln_status tns_unique_ref(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *const *in,
                           kiln_tensor *out) {
    uq_items it;
    uq_groups g;
    kiln_status s = uq_items_of(ctx, n, in[0], &it);
    if (!s) s = uq_group(ctx, n, &it, gir_attr_int(n, "sorted", 1) != 0, &g);
    if (s) return s;
    int64_t u = g.n;
    for (int64_t k = 0; k < u && !s; k++) {
        int64_t grp = g.rank[k], first = g.order[g.start[grp]];
        for (int64_t o = 0; o < it.outer && !s; o++)
            s = shp_copy(ctx, n, &out[0], (o * u + k) * it.inner, it.x, (o * it.count + first) * it.inner,
                         it.inner);
        if (n->n_outputs > 1) ((int64_t *)out[1].data)[k] = first;
        if (n->n_outputs > 3) ((int64_t *)out[3].data)[k] = g.start[grp + 1] - g.start[grp];
        if (n->n_outputs > 2)
            for (int64_t j = g.start[grp]; j < g.start[grp + 1]; j++) ((int64_t *)out[2].data)[g.order[j]] = k;
    }
    uq_free(&g);
    return s;
}
