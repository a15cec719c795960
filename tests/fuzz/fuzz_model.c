/*
** fuzz_model.c — libFuzzer target: arbitrary bytes as an ONNX model, loaded
** (onnx_load_bytes), bound to ops and freed. Besides ASan/UBSan findings it
** aborts when a load leaves kiln allocations behind. External data resolves
** in a scratch folder holding one 256-byte file, w.bin.
*/
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "frontend/onnx.h"
#include "ir/mem.h"

static char g_dir[64] = "/tmp/kiln_fuzz_XXXXXX";

static char g_bin[128];

static void remove_scratch(void) {
    unlink(g_bin);
    rmdir(g_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (!mkdtemp(g_dir)) abort();
    snprintf(g_bin, sizeof g_bin, "%s/w.bin", g_dir);
    const char *path = g_bin;
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    for (int i = 0; i < 256; i++) fputc(i, f);
    fclose(f);
    atexit(remove_scratch);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static kiln_ctx *ctx;
    if (!ctx && kiln_ctx_new(&ctx) != KILN_OK) abort();
    long live = kiln_mem_live();
    gir_graph *g = NULL;
    if (onnx_load_bytes(ctx, data, size, g_dir, &g) == KILN_OK) {
        onnx_bind_graph(ctx, g);
        gir_graph_free(g);
    }
    if (kiln_mem_live() != live) abort();
    return 0;
}
