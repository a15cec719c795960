/*
** onnx_load.c — model files and bytes into a graph: the raw_data pre-pass,
** protobuf-c decoding of the compact rest, then the graph builder with the
** weights attached from the original bytes.
*/
#include <string.h>
#include <sys/mman.h>

#include "ir/mem.h"
#include "onnx_internal.h"

/* Decodes and builds; `res` passes to the graph (its release hook). */
static kiln_status load(kiln_ctx *ctx, onnx_resources *res, const uint8_t *bytes, size_t size,
                        bool mapped, const char *dir, const char *what, gir_graph **out) {
    onnx_compact c;
    kiln_status s = onnx_compact_model(ctx, bytes, size, what, &c);
    if (s) {
        onnx_resources_free(res);
        return s;
    }
    if (mapped) onnx_resources_unmap_pages(res);
    ProtobufCMessage *msg = NULL;
    gir_graph *g = NULL;
    s = onnx_unpack(ctx, &onnx__model_proto__descriptor, c.bytes, c.size, what, &msg);
    kiln_free(c.bytes); /* the refs are still needed */
    c.bytes = NULL;
    if (!s && !(g = gir_graph_new())) s = kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", what);
    if (s) {
        onnx_resources_free(res);
    } else {
        g->release = onnx_resources_free;
        g->release_arg = res;
        onnx_source src = {res, bytes, size, mapped, dir, c.refs, c.n_refs};
        s = onnx_graph_from_model(ctx, (const Onnx__ModelProto *)msg, &src, g);
        if (!s) onnx_resources_unmap_pages(res);
        if (s && s != KILN_ERR_NOMEM) s = kiln_wrap(ctx, s, "%s", what);
    }
    onnx_unpacked_free(msg);
    onnx_compact_free(&c);
    if (s) {
        gir_graph_free(g);
        return s;
    }
    *out = g;
    return KILN_OK;
}

static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return kiln_strdup(".");
    if (slash == path) return kiln_strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = kiln_malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

kiln_status onnx_load_file(kiln_ctx *ctx, const char *path, gir_graph **out) {
    onnx_resources *res = kiln_calloc(1, sizeof *res);
    char *dir = dir_of(path);
    kiln_status s = KILN_OK;
    if (!res || !dir || !kiln_grow((void **)&res->maps, &res->cap_maps, 1, sizeof(onnx_mapping))) {
        onnx_resources_free(res);
        kiln_free(dir);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", path);
    }
    onnx_mapping *m = &res->maps[0];
    memset(m, 0, sizeof *m);
    s = onnx_map_file(ctx, path, &m->addr, &m->size);
    if (s) {
        onnx_resources_free(res);
        kiln_free(dir);
        return s;
    }
    res->n_maps = 1;
    /* the mapping's address is stable even when res->maps grows */
    s = load(ctx, res, m->addr ? m->addr : (const uint8_t *)"", m->size, true, dir, path, out);
    kiln_free(dir);
    return s;
}

kiln_status onnx_load_bytes(kiln_ctx *ctx, const void *bytes, size_t size, const char *base_dir,
                            gir_graph **out) {
    if (!bytes && size) return kiln_fail(ctx, KILN_ERR_INVALID, "onnx_load_bytes: NULL bytes");
    onnx_resources *res = kiln_calloc(1, sizeof *res);
    if (!res) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    return load(ctx, res, bytes ? bytes : "", size, false, base_dir, "model", out);
}
