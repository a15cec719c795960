/*
** ctx.c — contexts and error messages.
*/
#include "ctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"

kiln_status kiln_ctx_new(kiln_ctx **out) {
    kiln_ctx *c = kiln_calloc(1, sizeof(*c));
    if (!c) return KILN_ERR_NOMEM;
    *out = c;
    return KILN_OK;
}

void kiln_ctx_free(kiln_ctx *ctx) { kiln_free(ctx); }

const char *kiln_errmsg(const kiln_ctx *ctx) {
    if (!ctx) return "no context";
    return ctx->msg[0] ? ctx->msg : "no error";
}

const char *kiln_status_name(kiln_status s) {
    switch (s) {
    case KILN_OK: return "ok";
    case KILN_ERR_NOMEM: return "out of memory";
    case KILN_ERR_IO: return "i/o error";
    case KILN_ERR_PARSE: return "malformed input";
    case KILN_ERR_INVALID: return "invalid";
    case KILN_ERR_UNSUPPORTED: return "unsupported";
    case KILN_ERR_SHAPE: return "shape error";
    case KILN_ERR_DYNAMIC: return "dynamic value";
    case KILN_ERR_MISMATCH: return "mismatch";
    case KILN_ERR_INTERNAL: return "internal error";
    }
    return "unknown status";
}

kiln_status kiln_fail(kiln_ctx *ctx, kiln_status s, const char *fmt, ...) {
    if (!ctx) return s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    ctx->status = s;
    return s;
}

kiln_status kiln_wrap(kiln_ctx *ctx, kiln_status s, const char *fmt, ...) {
    if (!ctx) return s;
    char prefix[512], old[sizeof ctx->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, ctx->msg, sizeof old);
    snprintf(ctx->msg, sizeof ctx->msg, "%s: %s", prefix, old[0] ? old : kiln_status_name(s));
    ctx->status = s;
    return s;
}
