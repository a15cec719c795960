/*
** extra_util.c — helpers of the extra op family: scalar inputs, attribute
** lookup, string slots, UTF-8 and simple case mapping.
*/
#include <string.h>

#include "extra_ops.h"

kiln_status xo_scalar_i64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what,
                          int64_t *v) {
    if (!kiln_dtype_is_int(t->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s must be an integer, got %s", what,
                            kiln_dtype_name(t->dtype));
    if (kiln_numel(t) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must hold one value, it holds %lld", what,
                            (long long)kiln_numel(t));
    if (!t->data) return KILN_ERR_DYNAMIC;
    *v = kiln_tensor_i64(t, 0);
    return KILN_OK;
}

kiln_status xo_scalar_f64(kiln_ctx *ctx, const gir_node *n, const kiln_tensor *t, const char *what,
                          double *v) {
    if (!kiln_dtype_is_float(t->dtype) && !kiln_dtype_is_int(t->dtype))
        return kiln_op_fail(ctx, n, KILN_ERR_INVALID, "%s must be numeric, got %s", what,
                            kiln_dtype_name(t->dtype));
    if (kiln_numel(t) != 1)
        return kiln_op_fail(ctx, n, KILN_ERR_SHAPE, "%s must hold one value, it holds %lld", what,
                            (long long)kiln_numel(t));
    if (!t->data) return KILN_ERR_DYNAMIC;
    *v = kiln_tensor_f64(t, 0);
    return KILN_OK;
}

const gir_attr *xo_attr(const gir_node *n, const char *name, gir_attr_kind kind) {
    const gir_attr *a = gir_attr_find(n, name);
    return a && a->kind == kind ? a : NULL;
}

kiln_status xo_set_str(kiln_ctx *ctx, const gir_node *n, char **slot, const char *s, size_t len) {
    char *c = kiln_malloc(len + 1);
    if (!c) return kiln_op_fail(ctx, n, KILN_ERR_NOMEM, "out of memory for a string of %zu bytes", len);
    if (len) memcpy(c, s, len);
    c[len] = '\0';
    kiln_free(*slot);
    *slot = c;
    return KILN_OK;
}

/* ---- UTF-8 ---- */

static int utf8_need(uint8_t b, uint32_t *cp) {
    if (b < 0x80) return *cp = b, 0;
    if ((b & 0xE0) == 0xC0) return *cp = b & 0x1F, 1;
    if ((b & 0xF0) == 0xE0) return *cp = b & 0x0F, 2;
    if ((b & 0xF8) == 0xF0) return *cp = b & 0x07, 3;
    return -1;
}

uint32_t xo_utf8_next(const char *s, size_t len, size_t *i) {
    const uint8_t *u = (const uint8_t *)s;
    uint32_t cp;
    int need = utf8_need(u[*i], &cp);
    if (need == 0) {
        (*i)++;
        return cp;
    }
    if (need < 0 || *i + (size_t)need >= len) {
        (*i)++;
        return 0xFFFD;
    }
    for (int k = 1; k <= need; k++) {
        if ((u[*i + (size_t)k] & 0xC0) != 0x80) {
            (*i)++;
            return 0xFFFD;
        }
        cp = cp << 6 | (u[*i + (size_t)k] & 0x3F);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        (*i)++;
        return 0xFFFD;
    }
    *i += (size_t)need + 1;
    return cp;
}

int xo_utf8_put(uint32_t cp, char *buf) {
    uint8_t *b = (uint8_t *)buf;
    if (cp < 0x80) return b[0] = (uint8_t)cp, 1;
    if (cp < 0x800) {
        b[0] = (uint8_t)(0xC0 | cp >> 6);
        b[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        b[0] = (uint8_t)(0xE0 | cp >> 12);
        b[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        b[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    b[0] = (uint8_t)(0xF0 | cp >> 18);
    b[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    b[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    b[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- case mapping: the scripts whose case pairs follow simple offsets ---- */

uint32_t xo_lower(uint32_t c) {
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c < 0xC0) return c;
    if ((c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) ||
        (c >= 0x410 && c <= 0x42F))
        return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
        /* Latin Extended-A pairs upper/lower at even/odd, except 0x139-0x148
        ** and 0x179-0x17E, which pair at odd/even. */
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (c == 0x178) return 0xFF;
        if (odd_upper ? (c & 1) : !(c & 1)) return c + 1;
        return c;
    }
    return c;
}

uint32_t xo_upper(uint32_t c) {
    if (c >= 'a' && c <= 'z') return c - 32;
    if (c < 0xB5) return c;
    if (c == 0xFF) return 0x178;
    if ((c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) ||
        (c >= 0x430 && c <= 0x44F))
        return c - 32;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    if (c > 0x100 && c <= 0x17E && c != 0x131 && c != 0x138 && c != 0x149) {
        bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
        if (odd_upper ? !(c & 1) : (c & 1)) return c - 1;
        return c;
    }
    return c;
}
