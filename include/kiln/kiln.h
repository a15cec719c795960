/*
** kiln.h — the public API of the kiln compiler.
**
** Conventions (the same everywhere in kiln):
**  - Every fallible call returns a kiln_status; KILN_OK is zero.
**  - On failure a message is left in the context: kiln_errmsg(ctx).
**  - Out-parameters are untouched on failure.
**  - Every *_free function accepts NULL and does nothing with it.
*/
#ifndef KILN_H
#define KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KILN_VERSION_STRING "0.1.0"
#define KILN_MAX_RANK 8

typedef enum kiln_status {
    KILN_OK = 0,
    KILN_ERR_NOMEM,       /* an allocation failed */
    KILN_ERR_IO,          /* a file could not be opened, read or written */
    KILN_ERR_PARSE,       /* malformed bytes: protobuf, text IR, npy */
    KILN_ERR_INVALID,     /* well-formed but invalid: bad model, bad argument */
    KILN_ERR_UNSUPPORTED, /* valid, but kiln does not implement it (yet) */
    KILN_ERR_SHAPE,       /* shapes or dtypes that do not agree */
    KILN_ERR_DYNAMIC,     /* needs a value only known at run time */
    KILN_ERR_MISMATCH,    /* a comparison of results failed */
    KILN_ERR_INTERNAL     /* a broken invariant inside kiln */
} kiln_status;

/* Element types; the numbers are ONNX's TensorProto.DataType. */
typedef enum kiln_dtype {
    KILN_UNDEFINED = 0,
    KILN_F32 = 1,
    KILN_U8 = 2,
    KILN_I8 = 3,
    KILN_U16 = 4,
    KILN_I16 = 5,
    KILN_I32 = 6,
    KILN_I64 = 7,
    KILN_STRING = 8,
    KILN_BOOL = 9,
    KILN_F16 = 10,
    KILN_F64 = 11,
    KILN_U32 = 12,
    KILN_U64 = 13,
    KILN_BF16 = 16,
    /* Low-precision types: in memory ONE BYTE per element, sub-byte types
    ** unpacked (int4/int2 sign-extended, uint4/uint2 and fp4 in the low bits),
    ** float8/e8m0 as their bit pattern. Packing happens only in files. */
    KILN_F8E4M3FN = 17,
    KILN_F8E4M3FNUZ = 18,
    KILN_F8E5M2 = 19,
    KILN_F8E5M2FNUZ = 20,
    KILN_U4 = 21,
    KILN_I4 = 22,
    KILN_F4E2M1 = 23,
    KILN_F8E8M0 = 24,
    KILN_U2 = 25,
    KILN_I2 = 26,
    KILN_DTYPE_COUNT = 27
} kiln_dtype;

/* A dense row-major tensor. `data` may be borrowed (alloc == NULL) or owned
** (alloc is the block to free; usually alloc == data). String tensors hold an
** array of NUL-terminated char* in data. */
typedef struct kiln_tensor {
    kiln_dtype dtype;
    int rank;
    int64_t dims[KILN_MAX_RANK];
    void *data;
    void *alloc;
} kiln_tensor;

typedef struct kiln_ctx kiln_ctx;
typedef struct kiln_model kiln_model;

/* Contexts: one per thread of use; holds the last error message. */
kiln_status kiln_ctx_new(kiln_ctx **out);
void kiln_ctx_free(kiln_ctx *ctx);
const char *kiln_errmsg(const kiln_ctx *ctx);
const char *kiln_status_name(kiln_status s);

/* Models: an ONNX file loaded into the graph IR. Weights stay in the mapped
** file where their alignment allows; the model keeps the mapping alive. */
kiln_status kiln_model_load(kiln_ctx *ctx, const char *path, kiln_model **out);
kiln_status kiln_model_load_memory(kiln_ctx *ctx, const void *bytes, size_t size,
                                   kiln_model **out);
void kiln_model_free(kiln_model *m);

int kiln_model_num_inputs(const kiln_model *m);
int kiln_model_num_outputs(const kiln_model *m);
const char *kiln_model_input_name(const kiln_model *m, int i);
const char *kiln_model_output_name(const kiln_model *m, int i);

/* Runs the model on the reference interpreter. inputs[i] feeds the i-th
** graph input. outputs[] receives owned tensors; release them with
** kiln_tensor_release. */
kiln_status kiln_model_run_ref(kiln_ctx *ctx, kiln_model *m, const kiln_tensor *inputs,
                               int n_inputs, kiln_tensor *outputs, int n_outputs);

/* Frees an owned tensor's data and clears it; safe on borrowed or empty. */
void kiln_tensor_release(kiln_tensor *t);

/* Reads an ONNX TensorProto file (input_0.pb etc.) into an owned tensor. */
kiln_status kiln_tensor_load_pb(kiln_ctx *ctx, const char *path, kiln_tensor *out);
/* Writes a tensor as a serialized ONNX TensorProto. */
kiln_status kiln_tensor_save_pb(kiln_ctx *ctx, const char *path, const kiln_tensor *t,
                                const char *name);

#ifdef __cplusplus
}
#endif
#endif
