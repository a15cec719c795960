/*
** records_workload.c — the text a workload is stored with: its compute DAG
** as tir_print writes it, for people reading the database (the key is the
** hash; the text is never parsed back).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autotune/records.h"
#include "ir/ctx.h"
#include "ir/mem.h"

kiln_status tune_workload_text(kiln_ctx *ctx, const tir_func *f, char **out) {
    char *buf = NULL;
    size_t n = 0;
    FILE *mem = open_memstream(&buf, &n);
    if (!mem) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory printing workload '%s'", f->name);
    tir_print(mem, f);
    bool bad = ferror(mem) != 0;
    fclose(mem); /* sets buf and n */
    char *copy = !bad && buf ? kiln_malloc(n + 1) : NULL;
    if (copy) memcpy(copy, buf, n + 1);
    free(buf); /* open_memstream's buffer comes from malloc */
    if (!copy) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory printing workload '%s'", f->name);
    *out = copy;
    return KILN_OK;
}
