/*
** tir_print.c — the tensor IR's text form, one stage a line:
**
**   tir "mm" {
**     input A : f32[128, 64]
**     input B : f32[64, 32] const
**     C[i, j] = sum(k) (A[i, k] * B[k, j])    # f32[128, 32] matmul
**     output C
**   }
**
** A reduction whose init is not the combiner's identity prints it:
** "sum(k; init=1.0f)". The form is for people and tests; nothing parses it.
*/
#include "dtype.h"
#include "tir.h"

static const char *const k_tag_names[] = {"elemwise", "injective", "reduce", "matmul", "conv", "pool", "opaque"};

static void tp_dims(FILE *out, const tir_tensor *t) {
    fprintf(out, "%s[", kiln_dtype_name(t->dtype));
    for (int d = 0; d < t->rank; d++) fprintf(out, "%s%lld", d ? ", " : "", (long long)t->dims[d]);
    fputc(']', out);
}

static bool tp_is_identity(const ex_expr *r) {
    ex_builder b;
    kiln_arena *a = kiln_arena_new();
    if (!a) return true;
    ex_builder_init(&b, a);
    ex_expr *id = ex_combiner_identity(&b, (ex_combiner)r->op, r->dtype);
    bool same = id && ex_equal(id, r->args[1]);
    kiln_arena_free(a);
    return same;
}

static void tp_body(FILE *out, const ex_expr *e) {
    if (!e || e->kind != EX_REDUCE) {
        ex_print(out, e);
        return;
    }
    fprintf(out, "%s(", ex_combiner_name((ex_combiner)e->op));
    for (int i = 0; i < e->n_raxes; i++) fprintf(out, "%s%s", i ? ", " : "", e->raxes[i]->name);
    if (!tp_is_identity(e)) {
        fputs("; init=", out);
        ex_print(out, e->args[1]);
    }
    fputs(") ", out);
    ex_print(out, e->args[0]);
}

static void tp_stage(FILE *out, const tir_stage *s) {
    fprintf(out, "  %s[", s->name);
    for (int d = 0; d < s->n_axes; d++) fprintf(out, "%s%s", d ? ", " : "", s->axes[d]->name);
    fputs("] = ", out);
    tp_body(out, s->body);
    fputs("    # ", out);
    tp_dims(out, s->out);
    fprintf(out, " %s", (unsigned)s->tag < sizeof k_tag_names / sizeof *k_tag_names ? k_tag_names[s->tag] : "?");
    for (int r = 0; r < s->n_raxes; r++)
        fprintf(out, "%s%s=%lld", r ? ", " : ", over ", s->raxes[r]->name, (long long)s->raxes[r]->extent);
    fputc('\n', out);
}

void tir_print(FILE *out, const tir_func *f) {
    if (!f) {
        fputs("tir <null>\n", out);
        return;
    }
    fprintf(out, "tir \"%s\" {\n", f->name);
    for (int i = 0; i < f->n_inputs; i++) {
        const tir_tensor *t = f->inputs[i];
        fprintf(out, "  input %s : ", t->name);
        tp_dims(out, t);
        fputs(t->constant ? " const\n" : "\n", out);
    }
    for (int k = 0; k < f->n_stages; k++) tp_stage(out, f->stages[k]);
    for (int i = 0; i < f->n_outputs; i++) fprintf(out, "  output %s\n", f->outputs[i]->name);
    fputs("}\n", out);
}
