/*
** fuzz_model.c — libFuzzer target: arbitrary bytes as an ONNX model, loaded
** (onnx_load_bytes), bound to ops and freed. Besides ASan/UBSan findings it
** aborts when a load leaves kiln allocations behind.
*/
#include <stdint.h>
#include <stdlib.h>

#include "frontend/onnx.h"
#include "ir/mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static kiln_ctx *ctx;
    if (!ctx && kiln_ctx_new(&ctx) != KILN_OK) abort();
    long live = kiln_mem_live();
    gir_graph *g = NULL;
    if (onnx_load_bytes(ctx, data, size, NULL, &g) == KILN_OK) {
        onnx_bind_graph(ctx, g);
        gir_graph_free(g);
    }
    if (kiln_mem_live() != live) abort();
    return 0;
}
