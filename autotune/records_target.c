/*
** records_target.c — target descriptions (canonical "key=value" lines, the
** host CPU's), status names, and the hashes of the records database.
**
** A description is generic so that a new kind of target (a GPU: name,
** compute capability, driver, CUDA and NVRTC versions) only adds keys. It is
** canonical — sorted by key, one "key=value\n" per property — so equal
** targets have byte-equal descriptions, and a lookup compares them whole.
*/
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/records_internal.h"
#include "ir/ctx.h"
#include "ir/mem.h"

/* ---- hashing: FNV-1a, 64 bits ---- */

uint64_t tune_hash_bytes(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Length-prefixed, so ("ab","c") and ("a","bc") differ. */
static uint64_t hash_str(uint64_t h, const char *s) {
    uint64_t n = s ? strlen(s) : 0;
    h = tune_hash_bytes(h, &n, sizeof n);
    return s ? tune_hash_bytes(h, s, n) : h;
}

/* NaN hashes as one value whatever its payload. */
static uint64_t hash_double(uint64_t h, double d) {
    if (isnan(d)) d = NAN;
    return tune_hash_bytes(h, &d, sizeof d);
}

static uint64_t hash_i64(uint64_t h, int64_t v) { return tune_hash_bytes(h, &v, sizeof v); }

uint64_t tune_record_content_hash(const tune_record *r) {
    uint64_t h = hash_i64(TUNE_HASH_SEED, (int64_t)r->workload_hash);
    h = hash_str(h, r->target);
    h = hash_str(h, r->trace);
    h = hash_str(h, r->knobs);
    h = hash_double(h, r->median_s);
    h = hash_double(h, r->spread_s);
    h = hash_double(h, r->compile_s);
    h = hash_i64(h, r->n_repeats);
    h = hash_str(h, tune_status_name(r->status));
    h = hash_str(h, r->error);
    h = hash_i64(h, r->time);
    h = hash_str(h, r->kiln_version);
    h = hash_i64(h, r->seed);
    return hash_i64(h, r->trial);
}

void tune_hex64(uint64_t v, char out[17]) { snprintf(out, 17, "%016llx", (unsigned long long)v); }

bool tune_parse_hex64(const char *s, uint64_t *out) {
    if (!s || strlen(s) != 16) return false;
    uint64_t v = 0;
    for (int i = 0; i < 16; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    *out = v;
    return true;
}

/* ---- statuses ---- */

static const char *const k_status_names[TUNE_STATUS_COUNT] = {"ok", "wrong", "crash", "timeout", "oom",
                                                              "compile_error"};

const char *tune_status_name(tune_status s) {
    return (unsigned)s < TUNE_STATUS_COUNT ? k_status_names[s] : "?";
}

bool tune_status_parse(const char *name, tune_status *out) {
    for (int i = 0; name && i < TUNE_STATUS_COUNT; i++)
        if (!strcmp(name, k_status_names[i])) {
            *out = (tune_status)i;
            return true;
        }
    return false;
}

/* ---- descriptions ---- */

void tune_target_key(const char *desc, char out[17]) {
    tune_hex64(tune_hash_bytes(TUNE_HASH_SEED, desc, strlen(desc)), out);
}

static int key_cmp(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    size_t nx = strcspn(x, "="), ny = strcspn(y, "=");
    int c = memcmp(x, y, nx < ny ? nx : ny);
    return c ? c : (nx > ny) - (nx < ny);
}

static bool key_ok(const char *line, size_t n) {
    if (n == 0) return false;
    for (size_t i = 0; i < n; i++) {
        char c = line[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/* Splits `text` (modified) into its non-empty lines. */
static int split_lines(char *text, char **lines) {
    int n = 0;
    for (char *p = text; *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = '\0';
        if (*p) lines[n++] = p;
        if (!e) break;
        p = e + 1;
    }
    return n;
}

static kiln_status check_lines(kiln_ctx *ctx, char **lines, int n) {
    for (int i = 0; i < n; i++) {
        size_t k = strcspn(lines[i], "=");
        if (!lines[i][k])
            return kiln_fail(ctx, KILN_ERR_INVALID, "target description: line '%s' is not key=value", lines[i]);
        if (!key_ok(lines[i], k))
            return kiln_fail(ctx, KILN_ERR_INVALID, "target description: bad key in '%s'", lines[i]);
        if (i > 0 && key_cmp(&lines[i - 1], &lines[i]) == 0)
            return kiln_fail(ctx, KILN_ERR_INVALID, "target description: key '%.*s' given twice", (int)k,
                             lines[i]);
    }
    return KILN_OK;
}

static kiln_status join_lines(kiln_ctx *ctx, char **lines, int n, char *buf, size_t cap) {
    size_t len = 0;
    for (int i = 0; i < n; i++) len += strlen(lines[i]) + 1;
    if (len + 1 > cap)
        return kiln_fail(ctx, KILN_ERR_INVALID, "target description: %zu bytes do not fit in %zu", len + 1, cap);
    char *p = buf;
    for (int i = 0; i < n; i++) p += sprintf(p, "%s\n", lines[i]);
    *p = '\0';
    return KILN_OK;
}

kiln_status tune_target_canonical(kiln_ctx *ctx, const char *in, char *buf, size_t cap) {
    char *text = kiln_strdup(in ? in : "");
    int max_lines = 1;
    for (const char *p = in ? in : ""; *p; p++) max_lines += *p == '\n';
    char **lines = text ? kiln_malloc((size_t)max_lines * sizeof *lines) : NULL;
    kiln_status s = lines ? KILN_OK : kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory canonicalizing a target");
    int n = 0;
    if (!s) {
        n = split_lines(text, lines);
        qsort(lines, (size_t)n, sizeof *lines, key_cmp);
        s = n ? check_lines(ctx, lines, n) : kiln_fail(ctx, KILN_ERR_INVALID, "target description is empty");
    }
    if (!s) s = join_lines(ctx, lines, n, buf, cap);
    kiln_free(lines);
    kiln_free(text);
    return s;
}

bool tune_target_get(const char *desc, const char *key, char *buf, size_t cap) {
    size_t k = strlen(key);
    for (const char *p = desc; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n > k && !strncmp(p, key, k) && p[k] == '=') {
            snprintf(buf, cap, "%.*s", (int)(n - k - 1), p + k + 1);
            return true;
        }
        p = e ? e + 1 : NULL;
    }
    if (cap) buf[0] = '\0';
    return false;
}

kiln_status tune_target_set(kiln_ctx *ctx, char *desc, size_t cap, const char *key, const char *value) {
    if (strchr(value, '\n'))
        return kiln_fail(ctx, KILN_ERR_INVALID, "target description: the value of '%s' holds a newline", key);
    size_t k = strlen(key), n = strlen(desc) + k + strlen(value) + 3;
    char *text = kiln_malloc(n);
    if (!text) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory setting a target property");
    char *w = text;
    for (const char *p = desc; *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
        if (!(len > k && !strncmp(p, key, k) && p[k] == '=')) memcpy(w, p, len), w += len;
        if (len && w > text && w[-1] != '\n') *w++ = '\n';
        p += len;
    }
    snprintf(w, n - (size_t)(w - text), "%s=%s\n", key, value);
    kiln_status s = tune_target_canonical(ctx, text, desc, cap);
    kiln_free(text);
    return s;
}

/* The "model name" of /proc/cpuinfo (x86), else the implementer and part
** numbers (Arm), which name the core. */
static kiln_status cpu_model(kiln_ctx *ctx, char *out, size_t cap) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return kiln_fail(ctx, KILN_ERR_IO, "/proc/cpuinfo: cannot open: the CPU model is unknown");
    char line[512], impl[64] = "", part[64] = "";
    out[0] = '\0';
    while (fgets(line, sizeof line, f) && !out[0]) {
        char *colon = strchr(line, ':');
        if (!colon) continue;
        char *v = colon + 1 + strspn(colon + 1, " \t");
        v[strcspn(v, "\n")] = '\0';
        if (!strncmp(line, "model name", 10)) snprintf(out, cap, "%s", v);
        else if (!strncmp(line, "CPU implementer", 15) && !impl[0]) snprintf(impl, sizeof impl, "%s", v);
        else if (!strncmp(line, "CPU part", 8) && !part[0]) snprintf(part, sizeof part, "%s", v);
    }
    fclose(f);
    if (!out[0] && impl[0] && part[0]) snprintf(out, cap, "implementer %s part %s", impl, part);
    if (!out[0])
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "/proc/cpuinfo: no 'model name' line: the CPU model is unknown");
    return KILN_OK;
}

kiln_status tune_target_describe_cpu(kiln_ctx *ctx, const cg_cpu_target *t, char *buf, size_t cap) {
    if (!t->triple[0] || !t->cpu[0])
        return kiln_fail(ctx, KILN_ERR_INVALID, "describing a CPU target without a triple or CPU name");
    char model[256];
    kiln_status s = cpu_model(ctx, model, sizeof model);
    if (s) return s;
    char *text = kiln_malloc(TUNE_TARGET_MAX);
    if (!text) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory describing the CPU target");
    int n = snprintf(text, TUNE_TARGET_MAX,
                     "kind=cpu\ncpu.model=%s\ncpu.vector_bits=%d\nllvm.triple=%s\nllvm.cpu=%s\n"
                     "llvm.features=%s\nllvm.version=%s\nkiln.codegen=%d\n",
                     model, t->vector_bits, t->triple, t->cpu, t->features,
                     t->llvm_version[0] ? t->llvm_version : KILN_LLVM_VERSION, KILN_CODEGEN_VERSION);
    s = n < TUNE_TARGET_MAX ? tune_target_canonical(ctx, text, buf, cap)
                            : kiln_fail(ctx, KILN_ERR_INVALID, "the CPU target's description is too long");
    kiln_free(text);
    return s;
}
