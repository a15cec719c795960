/*
** test_plan_memory.c — memory planning: values live at the same time never
** overlap in the arena (checked pair by pair against liveness computed here,
** on small graphs and on random DAGs), in-place reuse only where it is
** allowed, the arena is at least the lower bound and near it, subgraph reads
** extend lifetimes, and allocation failures leave nothing behind.
*/
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/op.h"
#include "ir/tensor.h"
#include "passes/memplan.h"
#include "passes/pass.h"

static kiln_ctx *g_ctx;

static gir_graph *parse(const char *text) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse(g_ctx, text, &g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (s) return NULL;
    s = pass_infer_shapes(g_ctx, g);
    CHECK_MSG(s == KILN_OK, "%s", kiln_errmsg(g_ctx));
    if (s) {
        gir_graph_free(g);
        return NULL;
    }
    return g;
}

static kiln_status plan(const gir_graph *g, const mem_plan_options *o, mem_plan *p) {
    return pass_plan_memory(g_ctx, g, (const gir_node *const *)g->nodes, g->n_nodes, o, p);
}

/* ---- an oracle: lifetimes computed here, independently ---- */

typedef struct live {
    int *first, *last;
} live;

static bool live_init(const gir_graph *g, live *L) {
    L->first = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    L->last = malloc(sizeof(int) * (size_t)(g->n_values + 1));
    if (!L->first || !L->last) return false;
    for (int v = 0; v < g->n_values; v++) L->first[v] = L->last[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k]) L->first[n->outputs[k]->id] = L->last[n->outputs[k]->id] = i;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] && L->last[n->inputs[k]->id] < i) L->last[n->inputs[k]->id] = i;
        gir_note_outer_uses(g, n, i, L->last);
    }
    for (int k = 0; k < g->n_outputs; k++) L->last[g->outputs[k]->id] = g->n_nodes;
    return true;
}

static void live_free(live *L) {
    free(L->first);
    free(L->last);
}

static bool is_input_of(const gir_node *n, int id) {
    for (int k = 0; k < n->n_inputs; k++)
        if (n->inputs[k] && n->inputs[k]->id == id) return true;
    return false;
}

/* Every property of a plan that does not depend on the heuristic. Returns
** the number of violations (each reported). */
static int check_plan(const gir_graph *g, const mem_plan *p, bool outputs_in_arena) {
    live L;
    int bad = 0;
    if (!live_init(g, &L)) return 1;
    for (int v = 0; v < g->n_values; v++) {
        const gir_value *val = g->values[v];
        if (p->offset[v] < 0) continue;
        bad += !(L.first[v] >= 0 && !val->constant && !val->is_input);
        bad += !(outputs_in_arena || L.last[v] < g->n_nodes);
        bad += p->offset[v] % 64 != 0;
        bad += (size_t)p->offset[v] + p->bytes[v] > p->arena_bytes;
        bad += p->first[v] != L.first[v] || p->last[v] != L.last[v];
        int s = p->share[v];
        if (s >= 0) { /* in place: the producer reads s, which dies there, elementwise */
            const gir_node *n = g->nodes[L.first[v]];
            bool ok = is_input_of(n, s) && L.last[s] == L.first[v] && p->offset[s] == p->offset[v];
            ok &= p->bytes[s] == p->bytes[v] && g->values[s]->type.dtype == val->type.dtype;
            ok &= !g->values[s]->constant && !g->values[s]->is_input && n->n_outputs == 1;
            ok &= n->op && (n->op->fusion == KILN_FUSE_ELEMWISE || n->op->fusion == KILN_FUSE_BROADCAST);
            CHECK_MSG(ok, "value %s in place of %s", val->name, g->values[s]->name);
            bad += !ok;
        }
    }
    for (int u = 0; u < g->n_values; u++) {
        for (int v = u + 1; v < g->n_values; v++) {
            if (p->offset[u] < 0 || p->offset[v] < 0 || !p->bytes[u] || !p->bytes[v]) continue;
            bool mem = p->offset[u] < p->offset[v] + (int64_t)p->bytes[v] &&
                       p->offset[v] < p->offset[u] + (int64_t)p->bytes[u];
            bool time = L.first[u] <= L.last[v] && L.first[v] <= L.last[u];
            bool handoff = (p->share[v] == u && L.last[u] == L.first[v]) ||
                           (p->share[u] == v && L.last[v] == L.first[u]);
            if (mem && time && !handoff) {
                CHECK_MSG(false, "%s and %s are live together and overlap", g->values[u]->name,
                          g->values[v]->name);
                bad++;
            }
        }
    }
    CHECK_MSG(p->arena_bytes >= p->lower_bound, "arena %zu < lower bound %zu", p->arena_bytes, p->lower_bound);
    bad += p->arena_bytes < p->lower_bound;
    live_free(&L);
    return bad;
}

/* ---- small graphs ---- */

static void chain_is_in_place(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %x : f32[1,64]\n"
                         "  input %w : f32[64,64]\n"
                         "  %a = Relu(%x)\n"     /* x is a graph input: never overwritten */
                         "  %b = Sigmoid(%a)\n"  /* a dies here: b takes its room */
                         "  %c = MatMul(%b, %w)\n" /* not elementwise: a new room */
                         "  %d = Add(%c, %c)\n"  /* both slots read c at d's index */
                         "  %e = Relu(%d)\n"
                         "  output %e\n"
                         "}\n");
    if (!g) return;
    mem_plan p;
    CHECK(plan(g, NULL, &p) == KILN_OK);
    CHECK(check_plan(g, &p, false) == 0);
    int a = gir_value_find(g, "a")->id, b = gir_value_find(g, "b")->id, c = gir_value_find(g, "c")->id;
    int d = gir_value_find(g, "d")->id, e = gir_value_find(g, "e")->id;
    CHECK(p.share[a] == -1 && p.share[b] == a && p.share[c] == -1 && p.share[d] == c);
    CHECK(p.offset[e] == -1 && p.share[e] == -1); /* a graph output: the caller's */
    CHECK(p.n_in_arena == 4 && p.n_inplace == 2);
    CHECK(p.lower_bound == 512 && p.arena_bytes == 512); /* b and c live together at the MatMul */
    pass_mem_plan_free(&p);

    mem_plan_options o;
    pass_mem_options_default(&o);
    o.outputs_in_arena = true;
    CHECK(plan(g, &o, &p) == KILN_OK);
    CHECK(check_plan(g, &p, true) == 0);
    CHECK(p.offset[e] >= 0 && p.share[e] == d && p.last[e] == g->n_nodes);
    pass_mem_plan_free(&p);
    pass_mem_plan_free(&p); /* freeing twice is fine */
    gir_graph_free(g);
}

static bool never(void *arg, const gir_node *n, int step, int out_slot, int in_slot) {
    (void)n, (void)step, (void)out_slot, (void)in_slot;
    ++*(int *)arg;
    return false;
}

static void options_are_respected(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %x : f32[4,8]\n"
                         "  %a = Relu(%x)\n"
                         "  %b = Relu(%a)\n"
                         "  %c = Cast(%b) {to=7}\n" /* i64: another size, never in place */
                         "  %d = Relu(%b)\n"
                         "  %e = Add(%d, %a)\n"
                         "  %f = Relu(%e)\n"
                         "  output %c\n"
                         "  output %f\n"
                         "}\n");
    if (!g) return;
    int calls = 0;
    bool off[64] = {false};
    off[gir_value_find(g, "d")->id] = true;
    mem_plan_options o;
    pass_mem_options_default(&o);
    o.can_share = never;
    o.share_arg = &calls;
    o.off_arena = off;
    o.alignment = 256;
    mem_plan p;
    CHECK(plan(g, &o, &p) == KILN_OK);
    CHECK(p.n_inplace == 0 && calls > 0);
    CHECK(p.offset[gir_value_find(g, "d")->id] == -1);
    CHECK(p.n_in_arena == 3 && p.alignment == 256);
    for (int v = 0; v < g->n_values; v++) CHECK(p.offset[v] < 0 || p.offset[v] % 256 == 0);
    pass_mem_plan_free(&p);
    o.alignment = 48;
    memset(&p, 0x5a, sizeof p);
    CHECK(plan(g, &o, &p) == KILN_ERR_INVALID); /* and p is untouched */
    CHECK(p.n_values == 0x5a5a5a5a);
    CHECK(strstr(kiln_errmsg(g_ctx), "alignment 48") != NULL);
    gir_graph_free(g);
}

/* A value only a subgraph reads after its last direct use lives until the
** node that owns the subgraph: Neg must not write over %a. */
static void subgraph_reads_extend_lifetimes(void) {
    gir_graph *g = parse("graph \"g\" {\n"
                         "  opset 17\n"
                         "  input %c : bool[]\n"
                         "  input %x : f32[3]\n"
                         "  %a = Relu(%x)\n"
                         "  %b = Neg(%a)\n"
                         "  %y = If(%c) {then_branch=graph \"then\" {\n"
                         "      %t = Add(%a, %x)\n"
                         "      output %t : f32[3]\n"
                         "    }, else_branch=graph \"else\" {\n"
                         "      %e = Mul(%b, %x)\n"
                         "      output %e : f32[3]\n"
                         "    }}\n"
                         "  output %y\n"
                         "}\n");
    if (!g) return;
    mem_plan p;
    CHECK(plan(g, NULL, &p) == KILN_OK);
    int a = gir_value_find(g, "a")->id, b = gir_value_find(g, "b")->id;
    CHECK(p.last[a] == 2 && p.last[b] == 2);
    CHECK(p.share[b] == -1 && p.offset[a] != p.offset[b]);
    CHECK(check_plan(g, &p, false) == 0);
    pass_mem_plan_free(&p);
    gir_graph_free(g);
}

/* A ResNet-like block sequence: the arena should be near the bound. */
static void residual_blocks_pack_tightly(void) {
    char text[8192];
    int n = snprintf(text, sizeof text,
                     "graph \"res\" {\n  opset 17\n  input %%x : f32[1,8,16,16]\n"
                     "  input %%w : f32[8,8,3,3]\n  input %%w2 : f32[16,8,1,1]\n"
                     "  %%h0 = Relu(%%x)\n");
    for (int i = 0; i < 6; i++)
        n += snprintf(text + n, sizeof text - (size_t)n,
                      "  %%c%d = Conv(%%h%d, %%w) {pads=[1,1,1,1]}\n  %%r%d = Relu(%%c%d)\n"
                      "  %%d%d = Conv(%%r%d, %%w) {pads=[1,1,1,1]}\n  %%h%d = Add(%%d%d, %%h%d)\n",
                      i, i, i, i, i, i, i + 1, i, i);
    snprintf(text + n, sizeof text - (size_t)n,
             "  %%big = Conv(%%h6, %%w2)\n  %%o = Relu(%%big)\n  output %%o\n}\n");
    gir_graph *g = parse(text);
    if (!g) return;
    mem_plan p;
    CHECK(plan(g, NULL, &p) == KILN_OK);
    CHECK(check_plan(g, &p, false) == 0);
    CHECK_MSG(p.arena_bytes * 10 <= p.lower_bound * 12, "arena %zu, bound %zu", p.arena_bytes, p.lower_bound);
    CHECK(p.n_inplace >= 6); /* every residual Add and the Relus after Convs */
    pass_mem_plan_free(&p);
    gir_graph_free(g);
}

/* ---- random DAGs ---- */

static unsigned rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* Values of 1 to 4 rows of 16 floats; nodes Relu, Sigmoid, Add (same
** shapes), Concat (rows add up), ReduceSum (one row): some elementwise,
** some not. */
static gir_graph *random_dag(unsigned seed, int n_nodes) {
    static char text[1 << 16];
    int rows[512];
    int nv = 2, n = snprintf(text, sizeof text, "graph \"r\" {\n  opset 17\n  input %%v0 : f32[1,16]\n"
                                                 "  input %%v1 : f32[2,16]\n  const %%ax : i64[1] = {0}\n");
    rows[0] = 1, rows[1] = 2;
    for (int i = 0; i < n_nodes && nv < 500; i++) {
        int x = (int)(rnd(&seed) % (unsigned)nv), y = (int)(rnd(&seed) % (unsigned)nv), k = (int)(rnd(&seed) % 6);
        if (k == 2 || k == 3) { /* Add needs equal rows: find one */
            int tries = 0;
            while (rows[y] != rows[x] && tries++ < 50) y = (int)(rnd(&seed) % (unsigned)nv);
            if (rows[y] != rows[x]) y = x;
        }
        if (k == 4 && rows[x] + rows[y] > 4) k = 0;
        static const char *const ops[] = {"Relu", "Sigmoid", "Add", "Add", "Concat", "ReduceSum"};
        if (k == 0 || k == 1) n += snprintf(text + n, sizeof text - (size_t)n, "  %%v%d = %s(%%v%d)\n", nv, ops[k], x);
        else if (k < 4) n += snprintf(text + n, sizeof text - (size_t)n, "  %%v%d = Add(%%v%d, %%v%d)\n", nv, x, y);
        else if (k == 4)
            n += snprintf(text + n, sizeof text - (size_t)n, "  %%v%d = Concat(%%v%d, %%v%d) {axis=0}\n", nv, x, y);
        else n += snprintf(text + n, sizeof text - (size_t)n, "  %%v%d = ReduceSum(%%v%d, %%ax)\n", nv, x);
        rows[nv] = k < 4 ? rows[x] : k == 4 ? rows[x] + rows[y] : 1;
        nv++;
    }
    for (int v = nv - 1; v >= nv - 3 && v >= 2; v--) n += snprintf(text + n, sizeof text - (size_t)n, "  output %%v%d\n", v);
    snprintf(text + n, sizeof text - (size_t)n, "}\n");
    return parse(text);
}

static void random_dags_never_overlap(void) {
    int failures = 0;
    double worst = 1.0;
    for (unsigned seed = 1; seed <= 150 && failures == 0; seed++) {
        gir_graph *g = random_dag(seed, 10 + (int)(seed % 60));
        if (!g) return;
        for (int io = 0; io < 2; io++) {
            mem_plan_options o;
            pass_mem_options_default(&o);
            o.outputs_in_arena = io;
            mem_plan p;
            CHECK(plan(g, &o, &p) == KILN_OK);
            int bad = check_plan(g, &p, io);
            CHECK_MSG(bad == 0, "seed %u, outputs in the arena %d: %d violations", seed, io, bad);
            failures += bad;
            if (p.lower_bound) {
                double r = (double)p.arena_bytes / (double)p.lower_bound;
                if (r > worst) worst = r;
            }
            pass_mem_plan_free(&p);
        }
        gir_graph_free(g);
    }
    CHECK_MSG(worst < 2.0, "worst arena / lower bound on random DAGs: %.3f", worst);
}

/* ---- allocation failures ---- */

static void allocation_failures_leave_nothing(void) {
    gir_graph *g = random_dag(7, 40);
    if (!g) return;
    bool done = false;
    for (long nth = 0; nth < 64 && !done; nth++) {
        long before = kiln_mem_live();
        mem_plan p;
        memset(&p, 0, sizeof p);
        kiln_mem_fail_after(nth);
        kiln_status s = plan(g, NULL, &p);
        kiln_mem_fail_after(-1);
        if (s == KILN_OK) {
            done = true;
            pass_mem_plan_free(&p);
        } else {
            CHECK(s == KILN_ERR_NOMEM && p.offset == NULL);
        }
        CHECK_MSG(kiln_mem_live() == before, "failing allocation %ld leaks", nth);
    }
    CHECK(done);
    gir_graph_free(g);
}

static void open_ctx(void) { CHECK(kiln_ctx_new(&g_ctx) == KILN_OK); }
static void close_ctx(void) { kiln_ctx_free(g_ctx); }

TEST_MAIN(T(open_ctx), T(chain_is_in_place), T(options_are_respected), T(subgraph_reads_extend_lifetimes),
          T(residual_blocks_pack_tightly), T(random_dags_never_overlap), T(allocation_failures_leave_nothing),
          T(close_ctx))
