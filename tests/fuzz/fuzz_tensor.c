/*
** fuzz_tensor.c — libFuzzer target: arbitrary bytes as an ONNX TensorProto
** (onnx_tensor_decode). A decoded tensor must be self-consistent: its data
** is read end to end before it is released.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/onnx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static kiln_ctx *ctx;
    if (!ctx && kiln_ctx_new(&ctx) != KILN_OK) abort();
    long live = kiln_mem_live();
    kiln_tensor t;
    if (onnx_tensor_decode(ctx, data, size, &t) == KILN_OK) {
        int64_t n = kiln_numel(&t);
        if (n < 0 || (n > 0 && !t.data)) abort();
        volatile size_t sink = 0;
        if (t.dtype == KILN_STRING) {
            for (int64_t i = 0; i < n; i++) sink += strlen(((char **)t.data)[i]);
        } else {
            const uint8_t *p = t.data;
            for (size_t i = 0; i < kiln_nbytes(&t); i++) sink += p[i];
        }
        kiln_tensor_release(&t);
    }
    if (kiln_mem_live() != live) abort();
    return 0;
}
