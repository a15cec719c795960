/*
** expr.h — scalar expressions shared by the tensor IR and the loop IR.
**
** Expressions are small immutable nodes allocated in an arena. Constructors
** take an ex_builder (arena + sticky failure): when an allocation fails, or
** an operand is NULL, a constructor returns NULL and the builder remembers
** it, so a deep builder checks once at the end (as SQLite's OOM handling).
**
** Index arithmetic is int64 (KILN_I64). Values carry their element dtype.
** In the tensor IR a load reads a tensor at one index expression per
** dimension; in the loop IR a load reads a buffer at one flat index.
*/
#ifndef KILN_EXPR_H
#define KILN_EXPR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln/kiln.h"
#include "mem.h"

struct tir_tensor;
struct lir_buffer;

typedef enum ex_kind {
    EX_INT,    /* integer constant (ival), dtype any int/bool type */
    EX_FLOAT,  /* float constant (fval), dtype any float type */
    EX_VAR,    /* an axis / loop variable */
    EX_LOAD,   /* tensor IR: tensor[args...]; loop IR: buffer[args[0]] */
    EX_BINARY, /* op: ex_binop, args[0], args[1] */
    EX_UNARY,  /* op: ex_fn, args[0] */
    EX_SELECT, /* args[0] ? args[1] : args[2] */
    EX_CAST,   /* args[0] converted to dtype (float->int truncates toward zero, saturating) */
    EX_REDUCE  /* tensor IR only: op: ex_combiner over raxes of args[0]; args[1] = init */
} ex_kind;

typedef enum ex_binop {
    EX_ADD, EX_SUB, EX_MUL,
    EX_DIV,      /* floats: division; ints: truncating (C) division */
    EX_MOD,      /* ints: C remainder; floats: fmod */
    EX_FLOORDIV, /* ints: floor division (index math: the simplifier knows it) */
    EX_FLOORMOD, /* ints: result has the divisor's sign */
    EX_MIN, EX_MAX, EX_POW,
    EX_EQ, EX_NE, EX_LT, EX_LE, EX_GT, EX_GE, /* result dtype bool */
    EX_AND, EX_OR, EX_XOR,                    /* bool or bitwise on ints */
    EX_SHL, EX_SHR,
    EX_BINOP_COUNT
} ex_binop;

typedef enum ex_fn {
    EX_NEG, EX_NOT, EX_ABS, EX_SIGN,
    EX_EXP, EX_LOG, EX_SQRT, EX_RSQRT, EX_RECIP,
    EX_TANH, EX_SIGMOID, EX_ERF,
    EX_SIN, EX_COS, EX_TAN, EX_ASIN, EX_ACOS, EX_ATAN, EX_SINH, EX_COSH,
    EX_ASINH, EX_ACOSH, EX_ATANH,
    EX_FLOOR, EX_CEIL, EX_ROUND_EVEN, /* round half to even */
    EX_ISNAN, EX_ISINF,               /* result dtype bool */
    EX_FN_COUNT
} ex_fn;

typedef enum ex_combiner { EX_SUM, EX_PROD, EX_RMAX, EX_RMIN, EX_COMBINER_COUNT } ex_combiner;

/* An iteration variable. Identity is the pointer; the name is for printing.
** extent is the trip count (loops run [0, extent)). */
typedef struct ex_var {
    const char *name;
    int64_t extent;
    bool reduce; /* a reduction axis */
    int id;
} ex_var;

typedef struct ex_expr {
    ex_kind kind;
    kiln_dtype dtype;
    int op; /* ex_binop / ex_fn / ex_combiner */
    int64_t ival;
    double fval;
    const ex_var *var;
    const struct tir_tensor *tensor;  /* EX_LOAD in the tensor IR */
    const struct lir_buffer *buffer;  /* EX_LOAD in the loop IR */
    int n_args;
    struct ex_expr **args;
    int n_raxes; /* EX_REDUCE */
    const ex_var **raxes;
} ex_expr;

typedef struct ex_builder {
    kiln_arena *arena;
    bool failed; /* sticky: some constructor returned NULL */
    int next_var_id;
} ex_builder;

void ex_builder_init(ex_builder *b, kiln_arena *arena);

ex_var *ex_var_new(ex_builder *b, const char *name, int64_t extent, bool reduce);

ex_expr *ex_int(ex_builder *b, int64_t v);                 /* i64 */
ex_expr *ex_const_int(ex_builder *b, kiln_dtype t, int64_t v);
ex_expr *ex_const_float(ex_builder *b, kiln_dtype t, double v);
ex_expr *ex_varref(ex_builder *b, const ex_var *v);         /* i64 */
ex_expr *ex_load_tensor(ex_builder *b, const struct tir_tensor *t, ex_expr *const *idx);
ex_expr *ex_load_buffer(ex_builder *b, const struct lir_buffer *buf, ex_expr *idx);
/* Binary ops need equal dtypes (comparisons give bool). */
ex_expr *ex_binary(ex_builder *b, ex_binop op, ex_expr *x, ex_expr *y);
ex_expr *ex_unary(ex_builder *b, ex_fn fn, ex_expr *x);
ex_expr *ex_select(ex_builder *b, ex_expr *c, ex_expr *x, ex_expr *y);
ex_expr *ex_cast(ex_builder *b, kiln_dtype t, ex_expr *x);
ex_expr *ex_reduce(ex_builder *b, ex_combiner c, ex_expr *src, const ex_var *const *raxes, int n,
                   ex_expr *init);

/* Shorthands for index math (i64). */
ex_expr *ex_add(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_sub(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_mul(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_min(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_max(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_floordiv(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_floormod(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_lt(ex_builder *b, ex_expr *x, ex_expr *y);
ex_expr *ex_and(ex_builder *b, ex_expr *x, ex_expr *y);

/* The identity element of a combiner for a dtype (0, 1, -inf/min, +inf/max). */
ex_expr *ex_combiner_identity(ex_builder *b, ex_combiner c, kiln_dtype t);

/* Structural equality and a structural hash (for CSE, workload keys). */
bool ex_equal(const ex_expr *a, const ex_expr *b);
uint64_t ex_hash(const ex_expr *e, uint64_t seed);

/* A copy of e (kind, dtype, tensor, op ...) whose arguments are args[0 ..
** e->n_args); NULL (and the builder failed) when out of memory. */
ex_expr *ex_with_args(ex_builder *b, const ex_expr *e, ex_expr *const *args);
/* Replaces variables: returns e with each vars[i] replaced by with[i]. */
ex_expr *ex_substitute(ex_builder *b, ex_expr *e, const ex_var *const *vars, ex_expr *const *with, int n);

/* Prints in a C-like infix form: "(A[i, k] * B[k, j])". */
void ex_print(FILE *f, const ex_expr *e);
const char *ex_binop_name(ex_binop op);
const char *ex_fn_name(ex_fn fn);
const char *ex_combiner_name(ex_combiner c);

/* If e is an integer constant, stores it and returns true. */
bool ex_is_const_int(const ex_expr *e, int64_t *v);

#endif
