/*
** fma_peak.c — measures the machine's fp32 FMA peak: each thread runs
** independent chains of vector FMAs (AVX-512 when the CPU has it, else AVX2)
** long enough to hide latency. Prints GFLOP/s for 1..N threads as JSON.
**   usage: kiln_fma_peak [max_threads]
*/
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12
#define ITERS 50000000L

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

__attribute__((target("avx512f"))) static double run_avx512(long iters) {
    __m512 acc[CHAINS];
    __m512 a = _mm512_set1_ps(1.0000001f), b = _mm512_set1_ps(0.9999999f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
    }
    float sink = 0;
    for (int c = 0; c < CHAINS; c++) sink += _mm512_reduce_add_ps(acc[c]);
    return (double)sink;
}

__attribute__((target("avx2,fma"))) static double run_avx2(long iters) {
    __m256 acc[CHAINS];
    __m256 a = _mm256_set1_ps(1.0000001f), b = _mm256_set1_ps(0.9999999f);
    for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_set1_ps((float)c);
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm256_fmadd_ps(acc[c], a, b);
    }
    float out[8], sink = 0;
    for (int c = 0; c < CHAINS; c++) {
        _mm256_storeu_ps(out, acc[c]);
        for (int k = 0; k < 8; k++) sink += out[k];
    }
    return (double)sink;
}

static int g_lanes;
static volatile double g_sink;

static void *worker(void *arg) {
    long iters = *(long *)arg;
    g_sink += g_lanes == 16 ? run_avx512(iters) : run_avx2(iters);
    return NULL;
}

static double measure(int threads, long iters) {
    pthread_t t[64];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, &iters);
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double dt = now_s() - t0;
    return (double)threads * (double)iters * CHAINS * g_lanes * 2 / dt / 1e9;
}

int main(int argc, char **argv) {
    int max_threads = argc > 1 ? atoi(argv[1]) : 2;
    if (max_threads < 1 || max_threads > 64) max_threads = 2;
    __builtin_cpu_init();
    g_lanes = __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") ? 8 : 0;
    if (!g_lanes) {
        printf("{\"error\": \"no AVX2\"}\n");
        return 1;
    }
    measure(1, ITERS / 20); /* warm up, let the clock settle */
    printf("{\"isa\": \"%s\"", g_lanes == 16 ? "avx512" : "avx2");
    for (int t = 1; t <= max_threads; t++) printf(", \"gflops_%dt\": %.1f", t, measure(t, ITERS / 5));
    printf("}\n");
    return 0;
}
