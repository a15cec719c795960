/*
** cli_util.h — helpers shared by the kiln command's subcommands.
*/
#ifndef KILN_CLI_UTIL_H
#define KILN_CLI_UTIL_H

#include <stdbool.h>

#include "ir/gir.h"
#include "kiln/kiln.h"

/* Sets an "invalid argument" message; returns KILN_ERR_INVALID. */
kiln_status cli_fail(kiln_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "kiln: <message>" to stderr; returns the exit code 1. */
int cli_error(kiln_ctx *ctx, kiln_status s);
double cli_now_ms(void);
bool cli_file_exists(const char *path);
/* Reads a tensor from .npy (by extension) or an ONNX TensorProto .pb. */
kiln_status cli_load_tensor(kiln_ctx *ctx, const char *path, kiln_tensor *out);
/* A random tensor for a graph input: unknown dims become 1; floats in
** [-1, 1), integers in [0, 10), deterministic for a seed. */
kiln_status cli_random_input(kiln_ctx *ctx, const gir_value *v, unsigned seed, kiln_tensor *out);
/* Prints the K largest elements of t with their labels (one per line in
** the labels file) and softmax probabilities. */
kiln_status cli_print_top(kiln_ctx *ctx, const char *labels_path, const kiln_tensor *t, int k);

#endif
