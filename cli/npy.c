/*
** npy.c — reading and writing NumPy .npy files.
*/
#include "npy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ctx.h"
#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"

typedef struct npy_type {
    const char *descr;
    kiln_dtype dtype;
} npy_type;

static const npy_type k_npy_types[] = {
    {"<f4", KILN_F32}, {"<f8", KILN_F64}, {"<f2", KILN_F16}, {"|i1", KILN_I8},
    {"|u1", KILN_U8},  {"<i2", KILN_I16}, {"<u2", KILN_U16}, {"<i4", KILN_I32},
    {"<u4", KILN_U32}, {"<i8", KILN_I64}, {"<u8", KILN_U64}, {"|b1", KILN_BOOL},
};
#define N_NPY_TYPES (int)(sizeof k_npy_types / sizeof k_npy_types[0])

/* Finds `'key': ` in a header dict and returns a pointer after it. */
static const char *dict_value(const char *hdr, const char *key) {
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(hdr, pat);
    if (!p) return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p) return NULL;
    p++;
    while (*p == ' ') p++;
    return p;
}

static kiln_status parse_header(kiln_ctx *ctx, const char *path, const char *hdr, kiln_tensor *t) {
    const char *d = dict_value(hdr, "descr"), *fo = dict_value(hdr, "fortran_order"),
               *sh = dict_value(hdr, "shape");
    if (!d || !fo || !sh || *d != '\'' || *sh != '(')
        return kiln_fail(ctx, KILN_ERR_PARSE, "%s: malformed .npy header", path);
    if (strncmp(fo, "False", 5) != 0)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: Fortran-ordered arrays are not supported", path);
    kiln_dtype dt = KILN_UNDEFINED;
    for (int i = 0; i < N_NPY_TYPES; i++)
        if (strncmp(d + 1, k_npy_types[i].descr, 3) == 0 && d[4] == '\'') dt = k_npy_types[i].dtype;
    if (dt == KILN_UNDEFINED)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: unsupported .npy dtype %.8s", path, d);
    int64_t dims[KILN_MAX_RANK];
    int rank = 0;
    const char *p = sh + 1;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0) return kiln_fail(ctx, KILN_ERR_PARSE, "%s: malformed shape in .npy header", path);
        if (rank == KILN_MAX_RANK)
            return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: rank above %d", path, KILN_MAX_RANK);
        dims[rank++] = v;
        p = end;
    }
    kiln_tensor_init(t, dt, rank, dims);
    return KILN_OK;
}

static kiln_status read_all(kiln_ctx *ctx, const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot open", path);
    size_t cap = 1 << 16, n = 0;
    unsigned char *b = kiln_malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n, f);
        n += r;
        if (r == 0) break;
        if (n == cap) {
            unsigned char *nb = kiln_realloc(b, cap * 2);
            if (!nb) {
                kiln_free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!b) return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", path);
    *buf = b;
    *len = n;
    return KILN_OK;
}

kiln_status cli_npy_read(kiln_ctx *ctx, const char *path, kiln_tensor *out) {
    unsigned char *b = NULL;
    size_t n = 0;
    kiln_status s = read_all(ctx, path, &b, &n);
    if (s) return s;
    kiln_tensor t;
    size_t hlen = 0, off = 0;
    if (n < 10 || memcmp(b, "\x93NUMPY", 6) != 0) {
        s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: not an .npy file", path);
        goto done;
    }
    if (b[6] == 1) {
        hlen = b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (n >= 12) {
        hlen = b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    }
    if (off == 0 || hlen > n - off) {
        s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: truncated .npy header", path);
        goto done;
    }
    char *hdr = kiln_malloc(hlen + 1);
    if (!hdr) {
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
        goto done;
    }
    memcpy(hdr, b + off, hlen);
    hdr[hlen] = 0;
    s = parse_header(ctx, path, hdr, &t);
    kiln_free(hdr);
    if (s) goto done;
    size_t need = kiln_nbytes(&t);
    if (kiln_numel(&t) < 0 || (need == 0 && kiln_numel(&t) != 0) || n - off - hlen < need) {
        s = kiln_fail(ctx, KILN_ERR_PARSE, "%s: data shorter than its shape says", path);
        goto done;
    }
    s = kiln_tensor_alloc(ctx, &t);
    if (s) goto done;
    if (need) memcpy(t.data, b + off + hlen, need);
    *out = t;
done:
    kiln_free(b);
    return s;
}

kiln_status cli_npy_write(kiln_ctx *ctx, const char *path, const kiln_tensor *t) {
    const char *descr = NULL;
    for (int i = 0; i < N_NPY_TYPES; i++)
        if (k_npy_types[i].dtype == t->dtype) descr = k_npy_types[i].descr;
    if (!descr)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: cannot write %s as .npy", path,
                         kiln_dtype_name(t->dtype));
    char hdr[256], shape[200] = "";
    size_t k = 0;
    for (int i = 0; i < t->rank; i++)
        k += (size_t)snprintf(shape + k, sizeof shape - k, "%lld,%s", (long long)t->dims[i],
                              i + 1 < t->rank ? " " : "");
    if (t->rank > 1) shape[k - 1] = 0; /* numpy writes (2, 3) but (4,) */
    int h = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape);
    int total = 10 + h + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot create", path);
    unsigned hl = (unsigned)(h + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff),
                             (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, (size_t)h, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    size_t nb = kiln_nbytes(t);
    if (nb) fwrite(t->data, 1, nb, f);
    if (fclose(f) != 0) return kiln_fail(ctx, KILN_ERR_IO, "%s: write failed", path);
    return KILN_OK;
}
