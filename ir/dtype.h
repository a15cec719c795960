/*
** dtype.h — element types: sizes, names, and generic element access.
*/
#ifndef KILN_DTYPE_H
#define KILN_DTYPE_H

#include <stdbool.h>
#include "kiln/kiln.h"

/* Bit for a dtype in a dtype set (kiln_op_def.dtypes). */
#define KILN_DT(t) (1u << (t))
#define KILN_DT_FLOATS (KILN_DT(KILN_F32) | KILN_DT(KILN_F64) | KILN_DT(KILN_F16) | KILN_DT(KILN_BF16))
#define KILN_DT_SINTS (KILN_DT(KILN_I8) | KILN_DT(KILN_I16) | KILN_DT(KILN_I32) | KILN_DT(KILN_I64))
#define KILN_DT_UINTS (KILN_DT(KILN_U8) | KILN_DT(KILN_U16) | KILN_DT(KILN_U32) | KILN_DT(KILN_U64))
#define KILN_DT_INTS (KILN_DT_SINTS | KILN_DT_UINTS)
#define KILN_DT_NUMERIC (KILN_DT_FLOATS | KILN_DT_INTS)
#define KILN_DT_ALL (KILN_DT_NUMERIC | KILN_DT(KILN_BOOL) | KILN_DT(KILN_STRING))

size_t kiln_dtype_size(kiln_dtype t);           /* 0 for undefined/unknown */
const char *kiln_dtype_name(kiln_dtype t);      /* "f32", "i64", "bool", ... */
kiln_dtype kiln_dtype_from_name(const char *s); /* KILN_UNDEFINED if unknown */
bool kiln_dtype_valid(int t);                   /* a dtype kiln can hold */
bool kiln_dtype_is_float(kiln_dtype t);
bool kiln_dtype_is_int(kiln_dtype t);
bool kiln_dtype_is_signed(kiln_dtype t);

float kiln_f16_to_f32(uint16_t h);
uint16_t kiln_f32_to_f16(float f);
float kiln_bf16_to_f32(uint16_t h);
uint16_t kiln_f32_to_bf16(float f);

/* Generic element access by flat index (not for strings). */
double kiln_load_f64(kiln_dtype t, const void *data, int64_t i);
void kiln_store_f64(kiln_dtype t, void *data, int64_t i, double v);
int64_t kiln_load_i64(kiln_dtype t, const void *data, int64_t i);
void kiln_store_i64(kiln_dtype t, void *data, int64_t i, int64_t v);

#endif
