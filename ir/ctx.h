/*
** ctx.h — the context's internals: setting the error message.
*/
#ifndef KILN_CTX_H
#define KILN_CTX_H

#include "kiln/kiln.h"

struct kiln_ctx {
    kiln_status status;
    char msg[2048];
};

/* Sets the context's message (printf-style) and returns `s`. A NULL ctx is
** allowed: the message is dropped. */
kiln_status kiln_fail(kiln_ctx *ctx, kiln_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the current message with more context ("node 'x' (Conv): ..."). */
kiln_status kiln_wrap(kiln_ctx *ctx, kiln_status s, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
