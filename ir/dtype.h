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
/* Low-precision types. They are in none of the sets above on purpose: an op
** lists them only where its kernel handles them (Cast, quantization, pure
** data movement), so no op claims float8 arithmetic by accident. */
#define KILN_DT_F8                                                                    \
    (KILN_DT(KILN_F8E4M3FN) | KILN_DT(KILN_F8E4M3FNUZ) | KILN_DT(KILN_F8E5M2) |       \
     KILN_DT(KILN_F8E5M2FNUZ))
#define KILN_DT_INTS_LOWP (KILN_DT(KILN_I4) | KILN_DT(KILN_U4) | KILN_DT(KILN_I2) | KILN_DT(KILN_U2))
#define KILN_DT_FLOATS_LOWP (KILN_DT_F8 | KILN_DT(KILN_F4E2M1) | KILN_DT(KILN_F8E8M0))
#define KILN_DT_SUBBYTE (KILN_DT_INTS_LOWP | KILN_DT(KILN_F4E2M1))
#define KILN_DT_LOWP (KILN_DT_INTS_LOWP | KILN_DT_FLOATS_LOWP)

size_t kiln_dtype_size(kiln_dtype t);           /* 0 for undefined/unknown */
const char *kiln_dtype_name(kiln_dtype t);      /* "f32", "i64", "bool", ... */
kiln_dtype kiln_dtype_from_name(const char *s); /* KILN_UNDEFINED if unknown */
bool kiln_dtype_valid(int t);                   /* a dtype kiln can hold */
bool kiln_dtype_is_float(kiln_dtype t);
bool kiln_dtype_is_int(kiln_dtype t);
bool kiln_dtype_is_signed(kiln_dtype t); /* also int4/int2 and the signed low-precision floats */
/* The low-precision types (KILN_DT_LOWP); is_float/is_int stay false for them. */
bool kiln_dtype_is_lowp(kiln_dtype t);
bool kiln_dtype_is_lowp_float(kiln_dtype t); /* float8 (all five), fp4 */
bool kiln_dtype_is_lowp_int(kiln_dtype t);   /* int4, uint4, int2, uint2 */

float kiln_f16_to_f32(uint16_t h);
uint16_t kiln_f32_to_f16(float f);
float kiln_bf16_to_f32(uint16_t h);
uint16_t kiln_f32_to_bf16(float f);

/* ---- low-precision conversions ----
** Decoding is exact. Encoding rounds to nearest even. With saturate (ONNX's
** default) a value beyond the largest finite one, infinities included,
** becomes that largest value (with its sign). Without saturate it becomes
** NaN for E4M3FN (keeping the sign), E4M3FNUZ and E5M2FNUZ (0x80), and an
** infinity for E5M2. NaN stays NaN. FNUZ types have no negative zero.
** FLOAT4E2M1 has no NaN or infinity and always saturates; a NaN becomes a
** zero of the opposite sign, as ONNX's reference (ml_dtypes) gives. */
/* Any low-precision type: kiln_lowp_to_f32 decodes an in-memory byte,
** kiln_f64_to_lowp encodes (e8m0 with KILN_ROUND_UP, sub-byte integers as
** kiln_f64_to_lowp_int, saturate ignored for both). Other types: NaN / 0. */
float kiln_lowp_to_f32(kiln_dtype t, uint8_t bits);
uint8_t kiln_f64_to_lowp(kiln_dtype t, double v, bool saturate);

/* FLOAT8E8M0 (2^(e-127), 0xFF = NaN, unsigned) from a float32, following
** Cast's round_mode: UP rounds a value with a fraction to the next power of
** two, DOWN drops the fraction, NEAREST rounds up from half a step. Zero,
** negative values and subnormals follow ONNX's reference bit rules (the sign
** is ignored). NaN and infinities give 0xFF; with saturate, rounding never
** goes past 0xFE. */
typedef enum kiln_round_mode { KILN_ROUND_UP = 0, KILN_ROUND_DOWN, KILN_ROUND_NEAREST } kiln_round_mode;
uint8_t kiln_f32_to_e8m0(float v, bool saturate, kiln_round_mode mode);

/* A value truncated toward zero into int4/uint4/int2/uint2 the way Cast does:
** the higher bits are discarded (int4: -9 -> 7); NaN, infinities and values
** beyond int64 give 0. Returns the in-memory byte. */
uint8_t kiln_f64_to_lowp_int(kiln_dtype t, double v);
/* An integer wrapped into int4/uint4/int2/uint2 (higher bits discarded). */
uint8_t kiln_i64_to_lowp_int(kiln_dtype t, int64_t v);

/* ---- packing at the file boundary ----
** ONNX stores int4/uint4/fp4 two per byte and int2/uint2 four per byte,
** first element in the lowest bits, the last byte padded with zero bits.
** Every other type is stored as in memory (the helpers then copy bytes). */
bool kiln_dtype_is_packed(kiln_dtype t);
/* Bytes that n elements take in a file: 0 for n < 0 or an unknown dtype. */
size_t kiln_packed_size(kiln_dtype t, int64_t n);
/* packed holds kiln_packed_size(t, n) bytes; out gets the n in-memory
** elements, int4/int2 sign-extended. For a type that is not packed both
** helpers copy kiln_packed_size(t, n) bytes. */
void kiln_unpack_elems(kiln_dtype t, const uint8_t *packed, int64_t n, uint8_t *out);
/* The reverse: in holds n in-memory elements, packed gets
** kiln_packed_size(t, n) bytes. */
void kiln_pack_elems(kiln_dtype t, const uint8_t *in, int64_t n, uint8_t *packed);

/* Generic element access by flat index (not for strings). Low-precision
** types load exactly and store like Cast's defaults (saturate, round_mode
** "up"; sub-byte integers wrap). */
double kiln_load_f64(kiln_dtype t, const void *data, int64_t i);
void kiln_store_f64(kiln_dtype t, void *data, int64_t i, double v);
int64_t kiln_load_i64(kiln_dtype t, const void *data, int64_t i);
void kiln_store_i64(kiln_dtype t, void *data, int64_t i, int64_t v);

#endif
