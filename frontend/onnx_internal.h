/*
** onnx_internal.h — what the frontend's files share: the protobuf-c
** allocator, the wire-format pre-pass, tensor decoding and the resources a
** loaded graph keeps alive (file mappings, owned weight blocks).
*/
#ifndef KILN_ONNX_INTERNAL_H
#define KILN_ONNX_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frontend/onnx.h"
#include "ir/ctx.h"
#include "onnx.pb-c.h"

/* Checks the bytes of a message with protobuf-c's descriptor before
** protobuf-c decodes them: bounds the nesting depth (protobuf-c recurses
** without a limit) and names the field path and byte offset of the first
** malformed field. */
kiln_status onnx_check_wire(kiln_ctx *ctx, const ProtobufCMessageDescriptor *desc,
                            const uint8_t *p, size_t n, const char *what);

/* True when the bytes of a would-be TensorProto are rather an ONNX
** SequenceProto, OptionalProto or MapProto (a name in field 1, a kind in
** field 2 and only message fields 3-7), which ONNX test data also uses. */
bool onnx_wire_is_container(const uint8_t *p, size_t n);

/* Checks, then decodes with protobuf-c, whose allocations go through
** kiln_malloc (allocation-failure tests reach them); out of memory and
** malformed bytes are told apart. Free with onnx_unpacked_free. */
kiln_status onnx_unpack(kiln_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                        size_t n, const char *what, ProtobufCMessage **out);
void onnx_unpacked_free(ProtobufCMessage *m);

/* ---- the wire-format pre-pass (onnx_wire.c) ---- */

/* Where one stripped raw_data field lay in the original bytes. */
typedef struct onnx_raw_ref {
    bool present;
    size_t offset, length;
} onnx_raw_ref;

/* The result of the pre-pass: the bytes without the stripped raw_data
** fields, and one entry per stripped-from message in order of appearance. */
typedef struct onnx_compact {
    uint8_t *bytes;
    size_t size;
    onnx_raw_ref *refs;
    int n_refs, cap_refs;
} onnx_compact;

/* Strips ModelProto.graph.initializer[*].raw_data; refs[k] is initializer k. */
kiln_status onnx_compact_model(kiln_ctx *ctx, const uint8_t *p, size_t n, const char *what,
                               onnx_compact *out);
/* Strips TensorProto.raw_data of a lone tensor; refs[0] tells where it was. */
kiln_status onnx_compact_tensor(kiln_ctx *ctx, const uint8_t *p, size_t n, const char *what,
                                onnx_compact *out);
void onnx_compact_free(onnx_compact *c);

/* ---- resources a loaded graph keeps (onnx_source.c) ---- */

typedef struct onnx_mapping {
    char *path; /* NULL for the model file itself */
    uint8_t *addr;
    size_t size;
} onnx_mapping;

typedef struct onnx_resources {
    onnx_mapping *maps;
    int n_maps, cap_maps;
    void **blocks; /* owned weight copies (kiln_malloc) */
    int n_blocks, cap_blocks;
} onnx_resources;

void onnx_resources_free(void *res); /* a gir_graph release hook */

/* Drops every mapped page from the process (not from the page cache):
** after the pre-pass and after the weights are placed, only weights
** referenced in place are read again, and they fault back in on use. The
** kernel maps file pages in large folios, so reading one header can map
** megabytes of a neighbouring weight. */
void onnx_resources_unmap_pages(onnx_resources *res);

/* Where a graph's tensor bytes come from while it is built. */
typedef struct onnx_source {
    onnx_resources *res;   /* NULL when no weight may be kept by reference */
    const uint8_t *base;   /* bytes the raw_data refs index */
    size_t size;
    bool mapped;           /* base is a private file mapping: may reference, may madvise */
    const char *model_dir; /* folder for external data; NULL forbids it */
    const onnx_raw_ref *refs;
    int n_refs;
} onnx_source;

/* Gives `n` bytes at `src` a home aligned for `align`: the bytes themselves
** when `may_borrow` and they are aligned, else an owned copy kept by `res`
** (then, for a mapping, its pages are released). */
kiln_status onnx_place_bytes(kiln_ctx *ctx, onnx_resources *res, const uint8_t *src, size_t n,
                             size_t align, bool may_borrow, bool mapped, const void **out);

/* Maps the external file `location` (relative to dir) once per load; checks
** that it does not leave dir. */
kiln_status onnx_map_external(kiln_ctx *ctx, onnx_resources *res, const char *dir,
                              const char *location, const char *tensor,
                              const onnx_mapping **out);

/* Maps a whole file read-only. An empty file yields addr NULL, size 0. */
kiln_status onnx_map_file(kiln_ctx *ctx, const char *path, uint8_t **addr, size_t *size);

/* ---- tensors (onnx_tensor.c) ---- */

/* How a decoded tensor's memory is obtained. */
typedef struct onnx_tensor_sink {
    kiln_arena *arena;     /* non-NULL: data in the arena, tensor borrowed (alloc NULL) */
    const onnx_source *src; /* for raw refs, external data and mapped weights */
} onnx_tensor_sink;

/* Decodes a TensorProto. `raw` (may be NULL) is its stripped raw_data.
** `what` names the tensor in messages ("initializer 'w'"). With an arena
** sink the result is borrowed; without one it is owned (kiln_tensor_release). */
kiln_status onnx_tensor_from_proto(kiln_ctx *ctx, const Onnx__TensorProto *tp,
                                   const onnx_raw_ref *raw, const onnx_tensor_sink *sink,
                                   const char *what, kiln_tensor *out);

/* Checks an ONNX element type number and gives the kiln dtype. */
kiln_status onnx_dtype(kiln_ctx *ctx, int64_t onnx_type, const char *what, kiln_dtype *out);

/* ---- graphs (onnx_graph.c) ---- */

/* Builds the graph IR of a decoded model. */
kiln_status onnx_graph_from_model(kiln_ctx *ctx, const Onnx__ModelProto *m, const onnx_source *src,
                                  gir_graph *g);

#endif
