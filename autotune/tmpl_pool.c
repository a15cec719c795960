#include "tmpl_internal.h"

static kiln_status sp_fn(kiln_ctx *ctx, const tir_func *f, const cg_cpu_target *t, tune_space *sp, bool *applies) {
    (void)ctx; (void)f; (void)t; (void)sp;
    *applies = false;
    return KILN_OK;
}
static void tr_fn(tb *b, const tir_func *f, const cg_cpu_target *t, const tune_space *sp, const int64_t *pt) {
    (void)b; (void)f; (void)t; (void)sp; (void)pt;
}
const tmpl_def tmpl_pool = {"pool", sp_fn, tr_fn};
