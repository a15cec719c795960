/*
** lir_print.c — the loop IR as readable text:
**
**   kernel matmul(in A: f32[481], in B: f32[377] const, out C: f32[1073])
**     for i in [0, 37) parallel:
**       for j in [0, 29):
**         C[((i * 29) + j)] = 0f
**         for k in [0, 13):
**           C[((i * 29) + j)] = (C[((i * 29) + j)] + (A[((i * 13) + k)] * B[((k * 29) + j)]))
*/
#include "dtype.h"
#include "lir.h"

static const char *scope_name(lir_scope s) {
    return s == LIR_SCOPE_SHARED ? "shared" : s == LIR_SCOPE_LOCAL ? "local" : "global";
}

static void indent(FILE *out, int depth) {
    for (int i = 0; i < depth; i++) fputs("  ", out);
}

static void print_buffer(FILE *out, const lir_buffer *b) {
    fprintf(out, "%s: %s[%lld]", b->name, kiln_dtype_name(b->dtype), (long long)b->size);
    if (b->align) fprintf(out, " align %d", b->align);
}

static void print_stmt(FILE *out, const lir_stmt *s, int depth) {
    if (!s) {
        indent(out, depth);
        fputs("<null>\n", out);
        return;
    }
    int64_t lo, ext;
    switch (s->kind) {
    case LIR_FOR:
        indent(out, depth);
        fprintf(out, "for %s in ", s->var ? s->var->name : "<null>");
        if (ex_is_const_int(s->min, &lo) && ex_is_const_int(s->extent, &ext)) {
            fprintf(out, "[%lld, %lld)", (long long)lo, (long long)(lo + ext));
        } else {
            fputc('[', out);
            ex_print(out, s->min);
            fputs(", ", out);
            ex_print(out, s->min);
            fputs(" + ", out);
            ex_print(out, s->extent);
            fputc(')', out);
        }
        if (s->loop != LIR_SERIAL) fprintf(out, " %s", lir_loop_kind_name(s->loop));
        fputs(":\n", out);
        print_stmt(out, s->body, depth + 1);
        break;
    case LIR_STORE:
        indent(out, depth);
        fprintf(out, "%s[", s->buffer ? s->buffer->name : "<null>");
        ex_print(out, s->index);
        fputs("] = ", out);
        ex_print(out, s->value);
        fputc('\n', out);
        break;
    case LIR_ALLOC:
        indent(out, depth);
        fputs("alloc ", out);
        if (s->buffer) {
            print_buffer(out, s->buffer);
            fprintf(out, " %s", scope_name(s->buffer->scope));
        }
        fputs(":\n", out);
        print_stmt(out, s->body, depth + 1);
        break;
    case LIR_IF:
        indent(out, depth);
        fputs("if ", out);
        ex_print(out, s->cond);
        fputs(":\n", out);
        print_stmt(out, s->body, depth + 1);
        if (s->else_body) {
            indent(out, depth);
            fputs("else:\n", out);
            print_stmt(out, s->else_body, depth + 1);
        }
        break;
    case LIR_SEQ:
        for (int i = 0; i < s->n_stmts; i++) print_stmt(out, s->stmts[i], depth);
        if (!s->n_stmts) {
            indent(out, depth);
            fputs("nop\n", out);
        }
        break;
    case LIR_BARRIER:
        indent(out, depth);
        fputs("barrier\n", out);
        break;
    case LIR_NOP:
        indent(out, depth);
        fputs("nop\n", out);
        break;
    }
}

void lir_print(FILE *out, const lir_func *f) {
    if (!f) {
        fputs("<null kernel>\n", out);
        return;
    }
    fprintf(out, "kernel %s(", f->name);
    for (int i = 0; i < f->n_args; i++) {
        const lir_buffer *b = f->args[i];
        fprintf(out, "%s%s ", i ? ", " : "", i < f->n_inputs ? "in" : "out");
        print_buffer(out, b);
        if (b->constant) fputs(" const", out);
    }
    fputs(")\n", out);
    print_stmt(out, f->body, 1);
}
