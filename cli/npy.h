/*
** npy.h — NumPy .npy files (format 1.0/2.0/3.0, little-endian, C order).
*/
#ifndef KILN_CLI_NPY_H
#define KILN_CLI_NPY_H

#include "kiln/kiln.h"

/* Reads an .npy file into an owned tensor. */
kiln_status cli_npy_read(kiln_ctx *ctx, const char *path, kiln_tensor *out);
/* Writes a tensor as .npy (strings are not supported). */
kiln_status cli_npy_write(kiln_ctx *ctx, const char *path, const kiln_tensor *t);

#endif
