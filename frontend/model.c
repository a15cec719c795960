/*
** model.c — the public model API of kiln.h: an ONNX file loaded into the
** graph IR with every node bound to its op, run on the reference
** interpreter; and TensorProto files.
*/
#include "frontend/onnx.h"
#include "ir/ctx.h"
#include "ir/interp.h"
#include "ir/mem.h"

struct kiln_model {
    gir_graph *g;
};

kiln_status onnx_bind_graph(kiln_ctx *ctx, gir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        gir_node *n = g->nodes[i];
        kiln_status s = gir_bind_op(ctx, n);
        if (s) return s;
        for (int a = 0; a < n->n_attrs; a++) {
            if (!n->attrs[a].g) continue;
            s = onnx_bind_graph(ctx, n->attrs[a].g);
            if (s) return s;
        }
    }
    return KILN_OK;
}

static kiln_status wrap_graph(kiln_ctx *ctx, kiln_status s, gir_graph *g, kiln_model **out) {
    if (!s) s = onnx_bind_graph(ctx, g);
    kiln_model *m = NULL;
    if (!s && !(m = kiln_calloc(1, sizeof *m))) s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    if (s) {
        gir_graph_free(g);
        return s;
    }
    m->g = g;
    *out = m;
    return KILN_OK;
}

kiln_status kiln_model_load(kiln_ctx *ctx, const char *path, kiln_model **out) {
    gir_graph *g = NULL;
    kiln_status s = onnx_load_file(ctx, path, &g);
    if (s) return s;
    s = wrap_graph(ctx, s, g, out);
    if (s && s != KILN_ERR_NOMEM) kiln_wrap(ctx, s, "%s", path);
    return s;
}

kiln_status kiln_model_load_memory(kiln_ctx *ctx, const void *bytes, size_t size, kiln_model **out) {
    gir_graph *g = NULL;
    kiln_status s = onnx_load_bytes(ctx, bytes, size, NULL, &g);
    if (s) return s;
    return wrap_graph(ctx, s, g, out);
}

void kiln_model_free(kiln_model *m) {
    if (!m) return;
    gir_graph_free(m->g);
    kiln_free(m);
}

gir_graph *kiln_model_graph(kiln_model *m) { return m ? m->g : NULL; }

int kiln_model_num_inputs(const kiln_model *m) { return m ? m->g->n_inputs : 0; }
int kiln_model_num_outputs(const kiln_model *m) { return m ? m->g->n_outputs : 0; }

const char *kiln_model_input_name(const kiln_model *m, int i) {
    return m && i >= 0 && i < m->g->n_inputs ? m->g->inputs[i]->name : NULL;
}

const char *kiln_model_output_name(const kiln_model *m, int i) {
    return m && i >= 0 && i < m->g->n_outputs ? m->g->outputs[i]->name : NULL;
}

kiln_status kiln_model_run_ref(kiln_ctx *ctx, kiln_model *m, const kiln_tensor *inputs, int n_inputs,
                               kiln_tensor *outputs, int n_outputs) {
    if (!m) return kiln_fail(ctx, KILN_ERR_INVALID, "kiln_model_run_ref: no model");
    if (n_inputs > 0 && !inputs) return kiln_fail(ctx, KILN_ERR_INVALID, "kiln_model_run_ref: no inputs");
    if (n_outputs > 0 && !outputs) return kiln_fail(ctx, KILN_ERR_INVALID, "kiln_model_run_ref: no outputs");
    return gir_interp_run(ctx, m->g, inputs, n_inputs, outputs, n_outputs);
}

kiln_status kiln_tensor_load_pb(kiln_ctx *ctx, const char *path, kiln_tensor *out) {
    return onnx_tensor_read_file(ctx, path, out);
}

kiln_status kiln_tensor_save_pb(kiln_ctx *ctx, const char *path, const kiln_tensor *t, const char *name) {
    return onnx_tensor_write_file(ctx, path, t, name);
}
