/*
** tune_kernel.h — the kernel of a one-node graph, for the tuner's tests:
** parses the graph text, binds its last node's op and lowers the node with
** tir_from_node (constant inputs keep their data, the others are types).
*/
#ifndef KILN_TEST_TUNE_KERNEL_H
#define KILN_TEST_TUNE_KERNEL_H

#include <stdio.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/gir_text.h"
#include "ir/interp.h"
#include "ir/tir.h"

typedef struct tk_kernel {
    gir_graph *g;
    tir_func *f;
} tk_kernel;

static inline void tk_free(tk_kernel *k) {
    tir_func_free(k->f);
    gir_graph_free(k->g);
    memset(k, 0, sizeof *k);
}

/* "input %a : f32[8,16]\n..." with the graph's header added; false (and the
** message on stderr) when any step fails. */
static inline bool tk_make(kiln_ctx *ctx, tk_kernel *k, int opset, const char *body) {
    char text[4096];
    memset(k, 0, sizeof *k);
    snprintf(text, sizeof text, "graph \"t\" {\n opset %d\n%s\n}\n", opset, body);
    if (gir_parse(ctx, text, &k->g)) goto fail;
    gir_node *n = k->g->nodes[k->g->n_nodes - 1];
    if (gir_bind_op(ctx, n)) goto fail;
    kiln_tensor types[16];
    const kiln_tensor *tp[16];
    for (int i = 0; i < n->n_inputs && i < 16; i++) {
        tp[i] = NULL;
        if (!n->inputs[i]) continue;
        if (n->inputs[i]->constant) types[i] = *n->inputs[i]->constant;
        else gir_type_to_tensor(&n->inputs[i]->type, &types[i]);
        tp[i] = &types[i];
    }
    if (tir_from_node(ctx, n, tp, &k->f)) goto fail;
    return true;
fail:
    fprintf(stderr, "kernel: %s\n%s", kiln_errmsg(ctx), text);
    tk_free(k);
    return false;
}

#endif
