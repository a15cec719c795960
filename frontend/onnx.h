/*
** onnx.h — the ONNX frontend: .onnx files into the graph IR, and ONNX
** TensorProto files (.pb) to and from tensors.
*/
#ifndef KILN_ONNX_H
#define KILN_ONNX_H

#include "ir/gir.h"

/* Loads a model file. The file is mapped; weights whose raw bytes are
** suitably aligned are referenced in place (the graph keeps the mapping).
** External data is read relative to the model's folder and may not escape
** it. Nodes are not bound to ops here (see gir_bind_op); node->opset is set
** from the model's opset imports.
**
** Initializers become constant values (also when listed as graph inputs,
** which then are not in g->inputs). In a subgraph (an attribute of kind
** GRAPH), a name of an enclosing graph that the subgraph reads is a value
** with no producer, no constant and not in the subgraph's inputs: an
** outer-scope reference, to be resolved by name when the subgraph runs. */
kiln_status onnx_load_file(kiln_ctx *ctx, const char *path, gir_graph **out);

/* Loads a model from memory; `base_dir` (may be NULL) resolves external
** data. Weights are copied: the bytes need not outlive the call. */
kiln_status onnx_load_bytes(kiln_ctx *ctx, const void *bytes, size_t size, const char *base_dir,
                            gir_graph **out);

/* Decodes a serialized TensorProto into an owned tensor. */
kiln_status onnx_tensor_decode(kiln_ctx *ctx, const void *bytes, size_t size, kiln_tensor *out);
/* Reads a .pb TensorProto file into an owned tensor. */
kiln_status onnx_tensor_read_file(kiln_ctx *ctx, const char *path, kiln_tensor *out);
/* Writes a tensor as a serialized TensorProto (raw_data) with a name. */
kiln_status onnx_tensor_write_file(kiln_ctx *ctx, const char *path, const kiln_tensor *t,
                                   const char *name);

/* The graph IR of a loaded model (owned by the model). */
gir_graph *kiln_model_graph(kiln_model *m);

/* Binds every node of g and of its subgraphs (gir_bind_op); the first
** unknown op or unsupported opset fails, naming the node. */
kiln_status onnx_bind_graph(kiln_ctx *ctx, gir_graph *g);

#endif
