/*
** cli_util.c — helpers shared by the kiln command's subcommands.
*/
#include "cli_util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "npy.h"

kiln_status cli_fail(kiln_ctx *ctx, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return kiln_fail(ctx, KILN_ERR_INVALID, "%s", msg);
}

int cli_error(kiln_ctx *ctx, kiln_status s) {
    fprintf(stderr, "kiln: %s\n", ctx ? kiln_errmsg(ctx) : kiln_status_name(s));
    return 1;
}

double cli_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool cli_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

kiln_status cli_load_tensor(kiln_ctx *ctx, const char *path, kiln_tensor *out) {
    size_t n = strlen(path);
    if (n > 4 && !strcmp(path + n - 4, ".npy")) return cli_npy_read(ctx, path, out);
    return kiln_tensor_load_pb(ctx, path, out);
}

/* xorshift: small, fast, and the same on every machine */
static uint32_t next_random(uint32_t *s) {
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

kiln_status cli_random_input(kiln_ctx *ctx, const gir_value *v, unsigned seed, kiln_tensor *out) {
    if (v->type.rank < 0 || v->type.dtype == KILN_UNDEFINED)
        return cli_fail(ctx, "input '%s' has no declared type; give it with --input", v->name);
    if (v->type.dtype == KILN_STRING)
        return cli_fail(ctx, "input '%s' is a string tensor; give it with --input", v->name);
    int64_t dims[KILN_MAX_RANK];
    for (int d = 0; d < v->type.rank; d++) dims[d] = v->type.dims[d].value < 0 ? 1 : v->type.dims[d].value;
    kiln_tensor t;
    kiln_tensor_init(&t, v->type.dtype, v->type.rank, dims);
    kiln_status s = kiln_tensor_alloc(ctx, &t);
    if (s) return s;
    uint32_t st = seed * 2654435761u + 12345u;
    if (!st) st = 1;
    int64_t n = kiln_numel(&t);
    for (int64_t i = 0; i < n; i++) {
        uint32_t r = next_random(&st);
        if (kiln_dtype_is_float(t.dtype))
            kiln_store_f64(t.dtype, t.data, i, (double)r / 2147483648.0 - 1.0);
        else
            kiln_store_i64(t.dtype, t.data, i, t.dtype == KILN_BOOL ? (int64_t)(r & 1) : (int64_t)(r % 10));
    }
    *out = t;
    return KILN_OK;
}

static int read_labels(const char *path, char labels[][64], int max) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int n = 0;
    char line[256];
    while (n < max && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        snprintf(labels[n++], 64, "%s", line);
    }
    fclose(f);
    return n;
}

kiln_status cli_print_top(kiln_ctx *ctx, const char *labels_path, const kiln_tensor *t, int k) {
    static char labels[4096][64];
    int nl = read_labels(labels_path, labels, 4096);
    if (nl < 0) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot open the labels file", labels_path);
    if (!kiln_dtype_is_float(t->dtype))
        return cli_fail(ctx, "--labels needs a float output, output 0 is %s", kiln_dtype_name(t->dtype));
    int64_t n = kiln_numel(t);
    if (n == 0) return KILN_OK;
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++) mx = fmax(mx, kiln_tensor_f64(t, i));
    for (int64_t i = 0; i < n; i++) sum += exp(kiln_tensor_f64(t, i) - mx);
    if (k > n) k = (int)n;
    printf("top %d of output 0:\n", k);
    int64_t prev = -1;
    double prev_v = INFINITY;
    for (int r = 0; r < k; r++) {
        int64_t best = -1;
        double bv = -INFINITY;
        for (int64_t i = 0; i < n; i++) {
            double v = kiln_tensor_f64(t, i);
            bool after = v < prev_v || (v == prev_v && i > prev);
            if (after && (best < 0 || v > bv)) best = i, bv = v;
        }
        if (best < 0) break;
        printf("  %d. %-20s score %9.4f  p %.4f\n", r + 1, best < nl ? labels[best] : "(no label)", bv,
               exp(bv - mx) / sum);
        prev = best;
        prev_v = bv;
    }
    return KILN_OK;
}
