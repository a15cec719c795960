/*
** gir_text.h — the graph IR's text form (printer and parser) and the IR
** verifier.
**
** The text form states a graph in a few readable lines:
**
**   graph "tiny" {
**     ir_version 8
**     producer "pytorch 2.1"
**     opset 17
**     opset com.microsoft 1
**     input %x : f32[batch,3,8,8]
**     const %w : f32[4,3,1,1] = {0.5, 1, -2.25, ...}
**     %y : f32[batch,4,8,8] = Conv(%x, %w, _) {pads=[0, 0, 0, 0], strides=[1, 1]} name="conv0"
**     %m, _ = Dropout(%y)
**     output %y : f32[batch,4,8,8]
**   }
**
** Values are written `%name` (a name with characters outside
** [A-Za-z0-9_.%/-] is quoted: `%"onnx::Conv_12"`; an automatic name "%7"
** prints as `%%7`); `_` is an omitted optional input or output. A node's
** output types follow its outputs; the name is printed unless it is the
** one gir_node_new would give (OpType_INDEX). A type is `DTYPE[DIMS]`: a dim is an extent, a
** symbol (`batch`, quoted if odd) or `?`; `DTYPE[*]` is an unknown rank and `?`
** an unknown element type. Constant data is a flat row-major list: floats
** print so that they parse back bit for bit (shortest decimal that round
** trips, `nan`, `inf`, `nan(0x7fc00001)` for other NaN payloads; f64 values
** that are not exact f32 values as hex floats in attributes), strings are
** quoted with C escapes, bools are true/false. Attributes are
** `name=VALUE`: 3 (int), 3.0 (float), "s" (string), [1, 2] (ints),
** [1.0] (floats), ["a"] (strings), ints[] / floats[] / strings[] (empty
** lists), f32[2] {1, 2} (tensor), graph "body" { ... } (subgraph). A node whose
** opset differs from the graph's import for its domain says so: Conv@11(...).
** A domain prefixes the op: com.microsoft::FusedConv(...). A subgraph
** prints the header lines (ir_version, producer, opsets) only where they
** differ from its parent's, and the parser copies the parent's down. `#`
** starts a comment. Summary prints elide data as `{1, 2, 3, 4, ...}`,
** which the parser rejects rather than guess. The parser checks syntax only; the verifier checks meaning (so a
** broken graph can still be written down and reported).
*/
#ifndef KILN_GIR_TEXT_H
#define KILN_GIR_TEXT_H

#include <stdio.h>

#include "gir.h"

/* Printer flags. */
#define GIR_PRINT_FULL 0u
#define GIR_PRINT_SUMMARY 1u /* constants of more than 16 elements print elided */

/* Prints g in the text form. Write errors are the caller's to check (ferror). */
void gir_print(FILE *f, const gir_graph *g, unsigned flags);

/* Prints g into a NUL-terminated string allocated with kiln_malloc (free
** with kiln_free); NULL when out of memory. */
char *gir_print_str(const gir_graph *g, unsigned flags);

/* A type as the text form writes it ("f32[batch,3,?]", "f32[*]", "?") into
** buf; returns buf. */
const char *gir_type_str(const gir_type *t, char *buf, size_t n);

/* Parses the text form into a new graph. Errors (KILN_ERR_PARSE) say the
** line and column and what was expected. Nodes are not bound to ops. */
kiln_status gir_parse(kiln_ctx *ctx, const char *text, gir_graph **out);

/* Parses a file in the text form (".kir"). */
kiln_status gir_parse_file(kiln_ctx *ctx, const char *path, gir_graph **out);

/* Shared by the printer and the parser so that floats round-trip: reads one
** element of a float dtype (f32, f64, f16, bf16) from `text` (NUL-terminated:
** a decimal or hex number, inf, nan, or nan(0xBITS)) into its raw bits.
** Returns false when the text is not such a number or overflows the type. */
bool gir_text_float_bits(kiln_dtype dt, const char *text, uint64_t *bits);

/* Checks the graph's invariants: each value produced at most once, inputs
** defined before use (nodes in topological order, no cycles), graph
** outputs defined, arity, required inputs and attribute kinds against the
** bound op, constants' data matching their types, value types agreeing with
** inference where it can run. The message names the pass (when given), the
** node, the op and the reason. Returns KILN_ERR_INTERNAL when pass_name is
** given (a pass broke the graph), KILN_ERR_INVALID otherwise. */
kiln_status gir_verify(kiln_ctx *ctx, const gir_graph *g, const char *pass_name);

#endif
