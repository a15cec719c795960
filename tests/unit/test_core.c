/*
** test_core.c — the core helpers: arena, allocation hooks, dtypes, tensors,
** broadcasting, context messages, topological sort.
*/
#include <math.h>
#include <string.h>

#include "harness.h"
#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/gir.h"
#include "ir/mem.h"
#include "ir/tensor.h"

static void arena_allocates_aligned_zeroed_memory(void) {
    kiln_arena *a = kiln_arena_new();
    CHECK(a != NULL);
    for (int i = 1; i < 2000; i += 37) {
        unsigned char *p = kiln_arena_alloc(a, (size_t)i);
        CHECK(p != NULL && ((uintptr_t)p & 15) == 0);
        for (int k = 0; p && k < i; k++) CHECK(p[k] == 0);
    }
    void *big = kiln_arena_alloc(a, 1 << 20); /* bigger than a chunk */
    CHECK(big != NULL);
    CHECK(strcmp(kiln_arena_strdup(a, "kiln"), "kiln") == 0);
    kiln_arena_free(a);
    kiln_arena_free(NULL);
}

static void allocation_failure_hook_fails_and_counts(void) {
    long live = kiln_mem_live();
    kiln_mem_fail_after(1);
    void *p = kiln_malloc(8);
    void *q = kiln_malloc(8);
    kiln_mem_fail_after(-1);
    CHECK(p != NULL);
    CHECK(q == NULL);
    CHECK(kiln_mem_live() == live + 1);
    kiln_free(p);
    CHECK(kiln_mem_live() == live);
}

static void f16_round_trips_and_rounds_to_nearest_even(void) {
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = kiln_f16_to_f32((uint16_t)h);
        if (isnan(f)) continue;
        CHECK_MSG(kiln_f32_to_f16(f) == h, "0x%04x", h);
    }
    CHECK(kiln_f32_to_f16(1.0f) == 0x3c00);
    CHECK(kiln_f32_to_f16(65520.0f) == 0x7c00);   /* rounds up to infinity */
    CHECK(kiln_f32_to_f16(1.0f + 1.0f / 2048) == 0x3c00); /* tie to even */
    CHECK(kiln_f32_to_bf16(1.0f) == 0x3f80);
    CHECK(kiln_bf16_to_f32(0x3f80) == 1.0f);
}

static void generic_element_access_keeps_int64_exact(void) {
    int64_t v[2] = {0};
    kiln_store_i64(KILN_I64, v, 0, INT64_MAX);
    CHECK(kiln_load_i64(KILN_I64, v, 0) == INT64_MAX);
    uint8_t b[1];
    kiln_store_f64(KILN_BOOL, b, 0, 0.5);
    CHECK(b[0] == 1);
    int32_t i32[1];
    kiln_store_f64(KILN_I32, i32, 0, -3.7);
    CHECK(i32[0] == -3);
    CHECK(kiln_dtype_from_name("f16") == KILN_F16 && kiln_dtype_size(KILN_BF16) == 2);
    CHECK(!kiln_dtype_valid(14) && !kiln_dtype_valid(99) && !kiln_dtype_valid(-1));
    const char *strs[1] = {"x"};
    CHECK(kiln_load_i64(KILN_STRING, strs, 0) == 0 && kiln_load_f64(KILN_STRING, strs, 0) == 0);
}

static void broadcasting_follows_numpy(void) {
    kiln_ctx *ctx;
    CHECK(kiln_ctx_new(&ctx) == KILN_OK);
    kiln_tensor a, b, c;
    kiln_tensor_init(&a, KILN_F32, 3, (int64_t[]){2, 1, 4});
    kiln_tensor_init(&b, KILN_F32, 2, (int64_t[]){3, 1});
    const kiln_tensor *ts[] = {&a, &b};
    int rank;
    int64_t dims[KILN_MAX_RANK];
    CHECK(kiln_broadcast_shapes(ctx, 2, ts, &rank, dims) == KILN_OK);
    CHECK(rank == 3 && dims[0] == 2 && dims[1] == 3 && dims[2] == 4);
    int64_t st[KILN_MAX_RANK];
    kiln_broadcast_strides(&b, rank, dims, st);
    CHECK(st[0] == 0 && st[1] == 1 && st[2] == 0);
    kiln_tensor_init(&c, KILN_F32, 1, (int64_t[]){5});
    const kiln_tensor *bad[] = {&a, &c};
    CHECK(kiln_broadcast_shapes(ctx, 2, bad, &rank, dims) == KILN_ERR_SHAPE);
    CHECK(strstr(kiln_errmsg(ctx), "do not broadcast") != NULL);
    kiln_ctx_free(ctx);
}

static void numel_detects_overflow_and_negative_dims(void) {
    kiln_tensor t;
    kiln_tensor_init(&t, KILN_F32, 2, (int64_t[]){INT64_MAX / 2, 3});
    CHECK(kiln_numel(&t) == -1);
    kiln_tensor_init(&t, KILN_F32, 2, (int64_t[]){-1, 3});
    CHECK(kiln_numel(&t) == -1);
    kiln_tensor_init(&t, KILN_F32, 2, (int64_t[]){0, 3});
    CHECK(kiln_numel(&t) == 0);
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    kiln_tensor_init(&t, KILN_F32, 2, (int64_t[]){1 << 30, 1 << 30});
    CHECK(kiln_tensor_alloc(ctx, &t) != KILN_OK);
    kiln_ctx_free(ctx);
}

static void wrap_prefixes_messages(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    kiln_fail(ctx, KILN_ERR_SHAPE, "inner %d", 7);
    kiln_wrap(ctx, KILN_ERR_SHAPE, "outer");
    CHECK(strcmp(kiln_errmsg(ctx), "outer: inner 7") == 0);
    kiln_ctx_free(ctx);
    kiln_ctx_free(NULL);
}

static void toposort_orders_and_finds_cycles(void) {
    kiln_ctx *ctx;
    kiln_ctx_new(&ctx);
    gir_graph *g = gir_graph_new();
    gir_value *x = gir_value_new(g, "x"), *y = gir_value_new(g, "y"), *z = gir_value_new(g, "z");
    gir_add_input(g, x);
    gir_node *second = gir_node_new(g, "Relu", "second", 1, 1, 0);
    gir_node *first = gir_node_new(g, "Relu", "first", 1, 1, 0);
    second->inputs[0] = y;
    second->outputs[0] = z;
    z->producer = second;
    first->inputs[0] = x;
    first->outputs[0] = y;
    y->producer = first;
    CHECK(gir_toposort(ctx, g) == KILN_OK);
    CHECK(g->nodes[0] == first && g->nodes[1] == second);
    first->inputs[0] = z; /* now first and second feed each other */
    CHECK(gir_toposort(ctx, g) == KILN_ERR_INVALID);
    CHECK(strstr(kiln_errmsg(ctx), "cycle") != NULL);
    gir_graph_free(g);
    kiln_ctx_free(ctx);
}

TEST_MAIN(T(arena_allocates_aligned_zeroed_memory), T(allocation_failure_hook_fails_and_counts),
          T(f16_round_trips_and_rounds_to_nearest_even), T(generic_element_access_keeps_int64_exact),
          T(broadcasting_follows_numpy), T(numel_detects_overflow_and_negative_dims),
          T(wrap_prefixes_messages), T(toposort_orders_and_finds_cycles))
