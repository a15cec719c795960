/*
** cmd_inspect.c — `kiln inspect MODEL.onnx|GRAPH.kir`: loads a model (or a
** graph in the text form), binds its ops, sorts it, infers shapes and
** verifies it, then prints the graph and a summary: op counts, parameters,
** opset imports, inputs and outputs, producer. When a step fails, what is
** known is still printed, then the error. The summary lines are comments
** of the text form, so the whole output of --full parses as a .kir file.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_util.h"
#include "frontend/onnx.h"
#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "cli_exec.h"
#include "cli_inputs.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "passes/pass.h"
#include "autotune/compile.h"
#include "cli_passes.h"

typedef struct inspect_opts {
    const char *path, *schedules;
    bool full, no_graph, text, kernels, llvm, list_passes, memory;
    bool optimize; /* print the graph the passes make (--after, -O, --disable-pass given) */
    cli_input_opts in;
    cli_pass_opts pass;
} inspect_opts;

static int usage(void) {
    fprintf(stderr,
            "usage: kiln inspect MODEL.onnx|GRAPH.kir [--full] [--no-graph]\n"
            "  prints the graph in the text form (constants of more than 16 elements\n"
            "  elided unless --full), then op counts, parameters, opsets, inputs and\n"
            "  outputs. A .kir file holds a graph in the text form.\n"
            "  --full       print all constant data\n"
            "  --no-graph   print the summary only\n"
            "  --kernels    compile for the CPU (input shapes from --inputs DIR / --input\n"
            "               NAME=FILE, else the declared shapes with unknown dims 1) and print\n"
            "               each kernel's compute DAG, trace and loop IR\n"
            "  --llvm       with --kernels, also the optimized LLVM IR\n"
            "  --memory     compile for the CPU (inputs as for --kernels) and print the arena\n"
            "               plan: its size, the lower bound, values in the arena, in-place\n"
            "               reuses; with --full, every value's offset and lifetime\n"
            "  --schedules FILE.lua  with --kernels, schedules from a Lua script\n"
            "  --after PASS  print the graph after the pipeline's pass PASS (input shapes\n"
            "               as for --kernels); -O0/-O2/--disable-pass alone print the graph\n"
            "               after the whole pipeline\n"
            "  --passes     list the graph passes in pipeline order\n");
    cli_pass_usage(stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, inspect_opts *o) {
    memset(o, 0, sizeof *o);
    o->in.seed = 1;
    cli_pass_opts_init(&o->pass);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_input_arg(&o->in, argc, argv, &i)) continue;
        if (cli_pass_arg(&o->pass, argc, argv, &i)) {
            o->optimize = true;
            continue;
        }
        if (!strcmp(a, "--passes")) {
            o->list_passes = true;
            continue;
        }
        if (!strcmp(a, "--full")) o->full = true;
        else if (!strcmp(a, "--kernels")) o->kernels = true;
        else if (!strcmp(a, "--llvm")) o->llvm = true;
        else if (!strcmp(a, "--memory")) o->memory = true;
        else if (!strcmp(a, "--schedules") && i + 1 < argc) o->schedules = argv[++i];
        else if (!strcmp(a, "--no-graph")) o->no_graph = true;
        else if ((a[0] != '-' || !a[1]) && !o->path) o->path = a;
        else return usage();
    }
    if (o->pass.bad) return 2;
    if (o->list_passes) return 0;
    if (!o->path) return usage();
    size_t n = strlen(o->path);
    o->text = n > 4 && !strcmp(o->path + n - 4, ".kir");
    return 0;
}

/* ---- preparing the graph ---- */

static kiln_status bind_all(kiln_ctx *ctx, gir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        if (n->op) continue;
        kiln_status s = gir_bind_op(ctx, n);
        if (s) return s;
    }
    return KILN_OK;
}

static kiln_status prepare(kiln_ctx *ctx, gir_graph *g) {
    kiln_status s = bind_all(ctx, g);
    if (!s) s = gir_toposort(ctx, g);
    if (!s) s = pass_infer_shapes(ctx, g);
    if (!s) s = gir_verify(ctx, g, NULL);
    return s;
}

/* ---- the summary ---- */

typedef struct op_count {
    const char *domain, *op_type;
    int count;
} op_count;

typedef struct op_counts {
    op_count *v;
    int n, cap;
    int nodes;
} op_counts;

static bool count_ops(op_counts *c, const gir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const gir_node *n = g->nodes[i];
        c->nodes++;
        int k = 0;
        while (k < c->n && (strcmp(c->v[k].op_type, n->op_type) || strcmp(c->v[k].domain, n->domain))) k++;
        if (k == c->n) {
            if (!kiln_grow((void **)&c->v, &c->cap, c->n + 1, sizeof *c->v)) return false;
            c->v[c->n++] = (op_count){n->domain, n->op_type, 0};
        }
        c->v[k].count++;
        for (int a = 0; a < n->n_attrs; a++)
            if (n->attrs[a].kind == GIR_ATTR_GRAPH && n->attrs[a].g && !count_ops(c, n->attrs[a].g)) return false;
    }
    return true;
}

static int by_count(const void *a, const void *b) {
    const op_count *x = a, *y = b;
    if (x->count != y->count) return x->count < y->count ? 1 : -1;
    int d = strcmp(x->domain, y->domain);
    return d ? d : strcmp(x->op_type, y->op_type);
}

static kiln_status print_ops(kiln_ctx *ctx, const gir_graph *g) {
    op_counts c = {0};
    if (!count_ops(&c, g)) {
        kiln_free(c.v);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory counting ops");
    }
    if (c.n) qsort(c.v, (size_t)c.n, sizeof *c.v, by_count);
    printf("# nodes:      %d (%d op types)\n", c.nodes, c.n);
    for (int i = 0; i < c.n; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s%s%s", c.v[i].domain, c.v[i].domain[0] ? "::" : "", c.v[i].op_type);
        printf("#   %-28s %d\n", name, c.v[i].count);
    }
    kiln_free(c.v);
    return KILN_OK;
}

static void human_bytes(uint64_t b, char *buf, size_t n) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) snprintf(buf, n, "%" PRIu64 " B", b);
    else snprintf(buf, n, "%.1f %s", v, units[u]);
}

static void print_params(const gir_graph *g) {
    uint64_t elems = 0, bytes = 0;
    int tensors = 0;
    for (int i = 0; i < g->n_values; i++) {
        const kiln_tensor *t = g->values[i]->constant;
        int64_t n = t ? kiln_numel(t) : -1;
        if (n < 0) continue;
        tensors++;
        elems += (uint64_t)n;
        if (t->dtype != KILN_STRING) {
            bytes += kiln_nbytes(t);
            continue;
        }
        for (int64_t k = 0; k < n && t->data; k++) {
            const char *s = ((char *const *)t->data)[k];
            bytes += s ? strlen(s) : 0;
        }
    }
    char hb[32];
    human_bytes(bytes, hb, sizeof hb);
    printf("# parameters: %" PRIu64 " in %d constants, %" PRIu64 " bytes (%s)\n", elems, tensors, bytes, hb);
}

static void print_values(const char *title, gir_value *const *vs, int n) {
    printf("# %-11s %d\n", title, n);
    for (int i = 0; i < n; i++) {
        char ty[256];
        const gir_value *v = vs[i];
        printf("#   %-28s %s%s\n", v->name, gir_type_str(&v->type, ty, sizeof ty),
               v->constant ? "  (has a default)" : "");
    }
}

static kiln_status print_summary(kiln_ctx *ctx, const gir_graph *g, const char *path) {
    printf("# %s\n", path);
    if (g->producer && g->producer[0]) printf("# producer:   %s\n", g->producer);
    if (g->ir_version) printf("# ir_version: %" PRId64 "\n", g->ir_version);
    printf("# opsets:    ");
    for (int i = 0; i < g->n_opsets; i++)
        printf(" %s %" PRId64 "%s", g->opsets[i].domain[0] ? g->opsets[i].domain : "ai.onnx", g->opsets[i].version,
               i + 1 < g->n_opsets ? "," : "");
    printf("%s\n", g->n_opsets ? "" : " (none)");
    print_values("inputs:", g->inputs, g->n_inputs);
    print_values("outputs:", g->outputs, g->n_outputs);
    print_params(g);
    return print_ops(ctx, g);
}

/* ---- the kernels (--kernels) ---- */

static kiln_status compile_and_print(kiln_ctx *ctx, const inspect_opts *o, kiln_model *m, kiln_tensor *in) {
    cli_exec_opts eo = {"cpu", 1, o->schedules, &o->pass.passes};
    cli_exec *e = NULL;
    kiln_status s = cli_load_inputs(ctx, m, &o->in, in, false);
    if (!s) s = cli_exec_prepare(ctx, m, &eo, in, kiln_model_num_inputs(m), &e);
    if (!s) {
        cli_exec_summary(stdout, e);
        s = cli_exec_print_kernels(ctx, stdout, e, o->llvm);
    }
    cli_exec_free(e);
    return s;
}

/* ---- the arena plan (--memory) ---- */

static void print_value_plan(const kc_plan *p, const gir_value *v) {
    const mem_plan *mp = &p->mem;
    static const char *const where[] = {"", "arena", "output", "heap"};
    char ty[256];
    int id = v->id;
    printf("#   %-32s %-24s", v->name, gir_type_str(&v->type, ty, sizeof ty));
    if (mp->offset[id] >= 0)
        printf(" %10zu B at %10" PRId64, mp->bytes[id], mp->offset[id]);
    else
        printf(" %-27s", where[p->where[id] & 3]);
    printf("  steps %d..%d", mp->first[id], mp->last[id]);
    if (mp->share[id] >= 0) printf("  in place of %s", p->g->values[mp->share[id]]->name);
    printf("\n");
}

static void print_memory(const kc_plan *p, bool full) {
    const mem_plan *mp = &p->mem;
    char a[32], b[32], r[32];
    size_t reused = 0;
    int heap = 0, outs = 0;
    for (int v = 0; v < mp->n_values; v++) {
        if (mp->share[v] >= 0) reused += mp->bytes[v];
        heap += p->where[v] == KC_VAL_HEAP;
        outs += p->where[v] == KC_VAL_OUTPUT;
    }
    human_bytes(mp->arena_bytes, a, sizeof a);
    human_bytes(mp->lower_bound, b, sizeof b);
    human_bytes(reused, r, sizeof r);
    printf("# arena:       %s (%zu bytes, offsets aligned to %zu)\n", a, mp->arena_bytes, mp->alignment);
    printf("# lower bound: %s (%zu bytes: the most bytes live at one step)\n", b, mp->lower_bound);
    printf("# ratio:       %.3f\n", mp->lower_bound ? (double)mp->arena_bytes / (double)mp->lower_bound : 1.0);
    printf("# values:      %d in the arena over %d steps, %d in place (%s reused), %d written into the\n"
           "#              caller's outputs, %d on the heap (reference kernels' outputs)\n",
           mp->n_in_arena, mp->n_steps, mp->n_inplace, r, outs, heap);
    if (p->scratch_bytes) printf("# scratch:     %zu bytes for outputs that nodes omit\n", p->scratch_bytes);
    if (!full) return;
    for (int v = 0; v < mp->n_values; v++)
        if (p->where[v] != KC_VAL_NONE) print_value_plan(p, p->g->values[v]);
}

static kiln_status compile_and_print_memory(kiln_ctx *ctx, const inspect_opts *o, kiln_model *m, kiln_tensor *in) {
    kc_options ko;
    kc_options_default(&ko);
    ko.passes = o->pass.passes;
    kc_plan *p = NULL;
    kiln_status s = o->schedules ? cli_fail(ctx, "--memory takes no --schedules") : KILN_OK;
    if (!s) s = cli_load_inputs(ctx, m, &o->in, in, false);
    if (!s) s = kc_compile(ctx, kiln_model_graph(m), in, kiln_model_num_inputs(m), &ko, &p);
    if (!s) {
        kc_plan_summary(stdout, p);
        print_memory(p, o->full);
    }
    kc_plan_free(p);
    return s;
}

/* The graph after the pipeline (or its pass --after), input shapes fixed. */
static kiln_status optimize_and_print(kiln_ctx *ctx, const inspect_opts *o, kiln_model *m, kiln_tensor *in) {
    gir_graph *g = kiln_model_graph(m);
    kiln_status s = cli_load_inputs(ctx, m, &o->in, in, false);
    if (!s) s = kc_prepare_graph(ctx, g, in, kiln_model_num_inputs(m), &o->pass.passes);
    if (s) return s;
    if (!o->no_graph) {
        gir_print(stdout, g, o->full ? GIR_PRINT_FULL : GIR_PRINT_SUMMARY);
        printf("\n");
    }
    return print_summary(ctx, g, o->path);
}

/* A graph in the text form through the pipeline (its declared input types
** are the shapes): for trying a pass on a small hand-written graph. */
static int optimize_text(kiln_ctx *ctx, const inspect_opts *o) {
    gir_graph *g = NULL;
    kiln_status s = gir_parse_file(ctx, o->path, &g);
    if (!s) s = prepare(ctx, g);
    if (!s) s = pass_run_pipeline(ctx, g, &o->pass.passes);
    if (!s && !o->no_graph) {
        gir_print(stdout, g, o->full ? GIR_PRINT_FULL : GIR_PRINT_SUMMARY);
        printf("\n");
    }
    if (!s) s = print_summary(ctx, g, o->path);
    gir_graph_free(g);
    return s ? cli_error(ctx, s) : 0;
}

static int inspect_compiled(kiln_ctx *ctx, const inspect_opts *o) {
    if (o->text && o->optimize && !o->kernels && !o->memory) return optimize_text(ctx, o);
    if (o->text) return cli_error(ctx, cli_fail(ctx, "--kernels and --memory need an ONNX model"));
    kiln_model *m = NULL;
    kiln_status s = kiln_model_load(ctx, o->path, &m);
    if (s) return cli_error(ctx, s);
    int ni = kiln_model_num_inputs(m);
    kiln_tensor *in = kiln_calloc((size_t)ni + 1, sizeof(kiln_tensor));
    if (!in) s = cli_fail(ctx, "out of memory");
    else if (o->memory) s = compile_and_print_memory(ctx, o, m, in);
    else s = o->kernels ? compile_and_print(ctx, o, m, in) : optimize_and_print(ctx, o, m, in);
    for (int k = 0; in && k < ni; k++) kiln_tensor_release(&in[k]);
    kiln_free(in);
    kiln_model_free(m);
    return s ? cli_error(ctx, s) : 0;
}

int cmd_inspect(int argc, char **argv) {
    inspect_opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc) return rc;
    if (o.list_passes) {
        cli_pass_list(stdout);
        return 0;
    }
    if (o.kernels || o.optimize || o.memory) {
        kiln_ctx *kctx;
        if (kiln_ctx_new(&kctx)) return 1;
        rc = inspect_compiled(kctx, &o);
        kiln_ctx_free(kctx);
        return rc;
    }
    kiln_ctx *ctx;
    if (kiln_ctx_new(&ctx)) {
        fprintf(stderr, "kiln: out of memory\n");
        return 1;
    }
    gir_graph *g = NULL;
    kiln_status s = o.text ? gir_parse_file(ctx, o.path, &g) : onnx_load_file(ctx, o.path, &g);
    if (s) {
        rc = cli_error(ctx, s);
        kiln_ctx_free(ctx);
        return rc;
    }
    kiln_status prep = prepare(ctx, g);
    char msg[sizeof ctx->msg];
    snprintf(msg, sizeof msg, "%s", kiln_errmsg(ctx));
    if (!o.no_graph) {
        gir_print(stdout, g, o.full ? GIR_PRINT_FULL : GIR_PRINT_SUMMARY);
        printf("\n");
    }
    s = print_summary(ctx, g, o.path);
    fflush(stdout);
    if (prep) {
        fprintf(stderr, "kiln: %s\n", msg);
        rc = 1;
    } else if (s) {
        rc = cli_error(ctx, s);
    } else if (ferror(stdout)) {
        fprintf(stderr, "kiln: error writing the output\n");
        rc = 1;
    }
    gir_graph_free(g);
    kiln_ctx_free(ctx);
    return rc;
}
