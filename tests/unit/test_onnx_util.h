/*
** test_onnx_util.h — builds ONNX protobuf bytes in tests: a tiny wire-format
** writer, so tests can state valid models and corrupt them field by field.
** Uses plain malloc so the allocation counters see only the loader.
*/
#ifndef KILN_TEST_ONNX_UTIL_H
#define KILN_TEST_ONNX_UTIL_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pb {
    uint8_t *p;
    size_t n, cap;
} pb;

static inline void pb_raw(pb *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->n + n) c *= 2;
        b->p = realloc(b->p, c);
        if (!b->p) abort();
        b->cap = c;
    }
    if (n) memcpy(b->p + b->n, d, n);
    b->n += n;
}

static inline void pb_varint(pb *b, uint64_t v) {
    uint8_t t[10];
    int k = 0;
    while (v >= 0x80) {
        t[k++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[k++] = (uint8_t)v;
    pb_raw(b, t, (size_t)k);
}

static inline void pb_tag(pb *b, int field, int wt) { pb_varint(b, ((uint64_t)field << 3) | (uint64_t)wt); }
static inline void pb_int(pb *b, int field, int64_t v) {
    pb_tag(b, field, 0);
    pb_varint(b, (uint64_t)v);
}
static inline void pb_f32(pb *b, int field, float v) {
    pb_tag(b, field, 5);
    pb_raw(b, &v, 4);
}
static inline void pb_bytes(pb *b, int field, const void *d, size_t n) {
    pb_tag(b, field, 2);
    pb_varint(b, n);
    pb_raw(b, d, n);
}
static inline void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
/* Appends `sub` as a length-delimited field and frees it. */
static inline void pb_msg(pb *b, int field, pb sub) {
    pb_bytes(b, field, sub.p, sub.n);
    free(sub.p);
}
static inline void pb_free(pb *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* ---- ONNX messages ---- */

/* TensorProto with raw_data. */
static inline pb t_raw(const char *name, int dtype, int rank, const int64_t *dims, const void *data,
                       size_t nbytes) {
    pb t = {0};
    for (int i = 0; i < rank; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, dtype);
    if (name) pb_str(&t, 8, name);
    pb_bytes(&t, 9, data, nbytes);
    return t;
}

static inline pb t_floats(const char *name, int rank, const int64_t *dims, const float *v, int n) {
    pb t = {0};
    for (int i = 0; i < rank; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, 1);
    pb_bytes(&t, 4, v, (size_t)n * 4); /* packed float_data */
    if (name) pb_str(&t, 8, name);
    return t;
}

/* ValueInfoProto of a tensor; a dim < 0 becomes dim_param "N". rank < 0: no shape. */
static inline pb vi(const char *name, int elem, int rank, const int64_t *dims) {
    pb shape = {0}, tt = {0}, ty = {0}, v = {0};
    for (int i = 0; i < rank; i++) {
        pb d = {0};
        if (dims[i] >= 0) pb_int(&d, 1, dims[i]);
        else pb_str(&d, 2, "N");
        pb_msg(&shape, 1, d);
    }
    pb_int(&tt, 1, elem);
    if (rank >= 0) pb_msg(&tt, 2, shape);
    else free(shape.p);
    pb_msg(&ty, 1, tt);
    pb_str(&v, 1, name);
    pb_msg(&v, 2, ty);
    return v;
}

static inline pb a_int(const char *name, int64_t i) {
    pb a = {0};
    pb_str(&a, 1, name);
    pb_int(&a, 3, i);
    pb_int(&a, 20, 2);
    return a;
}
static inline pb a_float(const char *name, float f) {
    pb a = {0};
    pb_str(&a, 1, name);
    pb_f32(&a, 2, f);
    pb_int(&a, 20, 1);
    return a;
}
static inline pb a_str(const char *name, const char *s) {
    pb a = {0};
    pb_str(&a, 1, name);
    pb_str(&a, 4, s);
    pb_int(&a, 20, 3);
    return a;
}
static inline pb a_ints(const char *name, int n, const int64_t *v) {
    pb a = {0};
    pb_str(&a, 1, name);
    for (int i = 0; i < n; i++) pb_int(&a, 8, v[i]);
    pb_int(&a, 20, 7);
    return a;
}
static inline pb a_floats(const char *name, int n, const float *v) {
    pb a = {0};
    pb_str(&a, 1, name);
    for (int i = 0; i < n; i++) pb_f32(&a, 7, v[i]);
    pb_int(&a, 20, 6);
    return a;
}
static inline pb a_strs(const char *name, int n, const char *const *v) {
    pb a = {0};
    pb_str(&a, 1, name);
    for (int i = 0; i < n; i++) pb_str(&a, 9, v[i]);
    pb_int(&a, 20, 8);
    return a;
}
static inline pb a_tensor(const char *name, pb t) {
    pb a = {0};
    pb_str(&a, 1, name);
    pb_msg(&a, 5, t);
    pb_int(&a, 20, 4);
    return a;
}
static inline pb a_graph(const char *name, pb g) {
    pb a = {0};
    pb_str(&a, 1, name);
    pb_msg(&a, 6, g);
    pb_int(&a, 20, 5);
    return a;
}

/* NodeProto: ins and outs are NULL-terminated lists ("" = omitted);
** attrs (n_attrs of them) are consumed. */
static inline pb node(const char *op, const char *name, const char *const *ins,
                      const char *const *outs, int n_attrs, pb *attrs) {
    pb n = {0};
    for (int i = 0; ins && ins[i]; i++) pb_str(&n, 1, ins[i]);
    for (int i = 0; outs && outs[i]; i++) pb_str(&n, 2, outs[i]);
    if (name) pb_str(&n, 3, name);
    pb_str(&n, 4, op);
    for (int i = 0; i < n_attrs; i++) pb_msg(&n, 5, attrs[i]);
    return n;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A graph from parts; every part is consumed. */
typedef struct graph_parts {
    const char *name;
    int n_nodes, n_inits, n_inputs, n_outputs;
    pb nodes[16], inits[16], inputs[16], outputs[16];
} graph_parts;

static inline pb graph(graph_parts *gp) {
    pb g = {0};
    for (int i = 0; i < gp->n_nodes; i++) pb_msg(&g, 1, gp->nodes[i]);
    pb_str(&g, 2, gp->name ? gp->name : "g");
    for (int i = 0; i < gp->n_inits; i++) pb_msg(&g, 5, gp->inits[i]);
    for (int i = 0; i < gp->n_inputs; i++) pb_msg(&g, 11, gp->inputs[i]);
    for (int i = 0; i < gp->n_outputs; i++) pb_msg(&g, 12, gp->outputs[i]);
    return g;
}

/* ModelProto with ir_version 8, opset `opset` for the default domain and,
** when `domain` is given, version 1 of it. */
static inline pb model(pb g, int64_t opset, const char *domain) {
    pb m = {0}, os = {0};
    pb_int(&m, 1, 8);
    pb_str(&m, 2, "kiln-test");
    pb_int(&os, 2, opset);
    pb_msg(&m, 8, os);
    if (domain) {
        pb o2 = {0};
        pb_str(&o2, 1, domain);
        pb_int(&o2, 2, 1);
        pb_msg(&m, 8, o2);
    }
    pb_msg(&m, 7, g);
    return m;
}

/* A small complete model: Y = LeakyRelu((X + W) * C, 0.1) * B where W, B
** are initializers (B is also listed as an input) and C a Constant node. */
static inline pb small_model(void) {
    graph_parts gp = {.name = "small"};
    int64_t d3[] = {3}, dN3[] = {-1, 3};
    float w[] = {1, 2, 3}, bb[] = {0.5f, 0.5f, 2};
    gp.inits[gp.n_inits++] = t_raw("W", 1, 1, d3, w, sizeof w);
    gp.inits[gp.n_inits++] = t_floats("B", 1, d3, bb, 3);
    gp.inputs[gp.n_inputs++] = vi("X", 1, 2, dN3);
    gp.inputs[gp.n_inputs++] = vi("B", 1, 1, d3);
    pb ca[1];
    float c1[] = {1, 1, 1};
    ca[0] = a_tensor("value", t_raw(NULL, 1, 1, d3, c1, sizeof c1));
    gp.nodes[gp.n_nodes++] = node("Constant", "c", NULL, LIST("C"), 1, ca);
    gp.nodes[gp.n_nodes++] = node("Add", "add", LIST("X", "W"), LIST("S"), 0, NULL);
    gp.nodes[gp.n_nodes++] = node("Mul", "", LIST("S", "C"), LIST("S2"), 0, NULL);
    pb la[1];
    la[0] = a_float("alpha", 0.1f);
    gp.nodes[gp.n_nodes++] = node("LeakyRelu", "leaky", LIST("S2"), LIST("P"), 1, la);
    gp.nodes[gp.n_nodes++] = node("Mul", "mul", LIST("P", "B"), LIST("Y"), 0, NULL);
    gp.outputs[gp.n_outputs++] = vi("Y", 1, 2, dN3);
    return model(graph(&gp), 13, NULL);
}

#endif
