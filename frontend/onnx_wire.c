/*
** onnx_wire.c — a small hand-written walk over the protobuf wire format.
**
** protobuf-c copies every `bytes` field it decodes, so a model's weights
** would be held twice. Before protobuf-c sees a model, this pre-pass walks
** ModelProto.graph(7) -> GraphProto.initializer(5) -> TensorProto.raw_data(9),
** records where each raw_data lies, and writes a compact copy of the bytes
** without those fields (re-encoding the lengths of the enclosing messages).
** The loader then attaches each initializer's data from the original bytes.
**
** A second walk, driven by protobuf-c's descriptors, checks a message before
** protobuf-c decodes it: it bounds the nesting depth (protobuf-c recurses
** without a limit) and names the field path and byte offset of the first
** malformed field, which protobuf-c itself cannot report.
*/
#include <stdio.h>
#include <string.h>

#include "ir/mem.h"
#include "onnx_internal.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_SGROUP = 3, WT_EGROUP = 4, WT_I32 = 5 };

/* Nesting deeper than this is refused before protobuf-c recurses into it. */
#define ONNX_MAX_DEPTH 64

typedef struct wire_field {
    uint32_t number;
    int wt;
    const uint8_t *start;   /* the tag */
    const uint8_t *payload; /* after the tag (and after the length for WT_LEN) */
    size_t len;             /* payload length for WT_LEN */
    const uint8_t *next;    /* the following field */
} wire_field;

static bool read_varint(const uint8_t **pp, const uint8_t *end, uint64_t *out) {
    const uint8_t *p = *pp;
    uint64_t x = 0;
    for (int i = 0; i < 10; i++) {
        if (p >= end) return false;
        uint8_t b = *p++;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *pp = p;
            *out = x;
            return true;
        }
    }
    return false;
}

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *o, uint64_t v) {
    while (v >= 0x80) {
        *o++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *o++ = (uint8_t)v;
    return o;
}

/* Parses the field at p. On failure *why says what is wrong. */
static bool next_field(const uint8_t *p, const uint8_t *end, wire_field *f, const char **why) {
    uint64_t tag, v;
    f->start = p;
    if (!read_varint(&p, end, &tag)) {
        *why = "truncated or overlong field tag";
        return false;
    }
    if ((tag >> 3) == 0 || (tag >> 3) > 0x1fffffff) {
        *why = "invalid field number";
        return false;
    }
    f->number = (uint32_t)(tag >> 3);
    f->wt = (int)(tag & 7);
    f->payload = p;
    f->len = 0;
    size_t left = (size_t)(end - p);
    switch (f->wt) {
    case WT_VARINT:
        if (!read_varint(&p, end, &v)) {
            *why = "truncated varint";
            return false;
        }
        break;
    case WT_I64:
    case WT_I32: {
        size_t w = f->wt == WT_I64 ? 8 : 4;
        if (left < w) {
            *why = "truncated fixed-width value";
            return false;
        }
        p += w;
        break;
    }
    case WT_LEN:
        if (!read_varint(&p, end, &v)) {
            *why = "truncated length";
            return false;
        }
        if (v > (uint64_t)(end - p)) {
            *why = "length runs past the end of the enclosing message";
            return false;
        }
        f->payload = p;
        f->len = (size_t)v;
        p += v;
        break;
    case WT_SGROUP:
    case WT_EGROUP:
        *why = "group wire types are not supported";
        return false;
    default:
        *why = "invalid wire type";
        return false;
    }
    f->next = p;
    return true;
}

/* ---- the raw_data pre-pass ---- */

typedef enum wire_level { LV_MODEL, LV_GRAPH, LV_TENSOR } wire_level;

static const char *const k_level_path[] = {"ModelProto", "ModelProto.graph", "ModelProto.graph.initializer"};

/* The field of a level that the pre-pass descends into or strips. */
static uint32_t special_field(wire_level lv) {
    return lv == LV_MODEL ? 7 : lv == LV_GRAPH ? 5 : 9;
}

typedef struct compact_state {
    kiln_ctx *ctx;
    wire_level top;
    const char *what;
    const uint8_t *base;
    onnx_compact *out;
} compact_state;

static kiln_status wire_error(compact_state *cs, const uint8_t *at, wire_level lv, const char *why) {
    return kiln_fail(cs->ctx, KILN_ERR_PARSE, "%s: malformed protobuf at byte %zu in %s: %s", cs->what,
                     (size_t)(at - cs->base), cs->top == LV_TENSOR ? "TensorProto" : k_level_path[lv], why);
}

/* Size of the message [p, end) at level lv once compacted. */
static kiln_status compact_size(compact_state *cs, wire_level lv, const uint8_t *p,
                                const uint8_t *end, size_t *out) {
    size_t total = 0;
    while (p < end) {
        wire_field f;
        const char *why;
        if (!next_field(p, end, &f, &why)) return wire_error(cs, p, lv, why);
        if (f.number == special_field(lv)) {
            if (f.wt != WT_LEN)
                return wire_error(cs, p, lv, lv == LV_MODEL ? "field 'graph' is not length-delimited"
                                           : lv == LV_GRAPH ? "field 'initializer' is not length-delimited"
                                                            : "field 'raw_data' is not length-delimited");
            if (lv == LV_TENSOR) {
                p = f.next;
                continue;
            }
            size_t inner;
            kiln_status s = compact_size(cs, lv + 1, f.payload, f.payload + f.len, &inner);
            if (s) return s;
            total += (size_t)(f.payload - f.start) - varint_size(f.len) + varint_size(inner) + inner;
        } else {
            total += (size_t)(f.next - f.start);
        }
        p = f.next;
    }
    *out = total;
    return KILN_OK;
}

static kiln_status add_ref(compact_state *cs) {
    onnx_compact *c = cs->out;
    if (!kiln_grow((void **)&c->refs, &c->cap_refs, c->n_refs + 1, sizeof(onnx_raw_ref)))
        return kiln_fail(cs->ctx, KILN_ERR_NOMEM, "%s: out of memory", cs->what);
    memset(&c->refs[c->n_refs++], 0, sizeof(onnx_raw_ref));
    return KILN_OK;
}

/* Writes the compacted message (already validated by compact_size). */
static kiln_status compact_write(compact_state *cs, wire_level lv, const uint8_t *p,
                                 const uint8_t *end, uint8_t **o) {
    while (p < end) {
        wire_field f;
        const char *why;
        if (!next_field(p, end, &f, &why)) return wire_error(cs, p, lv, why);
        if (f.number != special_field(lv)) {
            memcpy(*o, f.start, (size_t)(f.next - f.start));
            *o += f.next - f.start;
        } else if (lv == LV_TENSOR) {
            onnx_raw_ref *r = &cs->out->refs[cs->out->n_refs - 1];
            r->present = true; /* a repeated optional field: the last one wins */
            r->offset = (size_t)(f.payload - cs->base);
            r->length = f.len;
        } else {
            size_t inner;
            kiln_status s = compact_size(cs, lv + 1, f.payload, f.payload + f.len, &inner);
            if (!s && lv + 1 == LV_TENSOR) s = add_ref(cs);
            if (s) return s;
            size_t tag_len = (size_t)(f.payload - f.start) - varint_size(f.len);
            memcpy(*o, f.start, tag_len);
            *o = put_varint(*o + tag_len, inner);
            s = compact_write(cs, lv + 1, f.payload, f.payload + f.len, o);
            if (s) return s;
        }
        p = f.next;
    }
    return KILN_OK;
}

static kiln_status compact(kiln_ctx *ctx, wire_level top, const uint8_t *p, size_t n,
                           const char *what, onnx_compact *out) {
    onnx_compact c = {0};
    compact_state cs = {ctx, top, what, p, &c};
    size_t size;
    kiln_status s = compact_size(&cs, top, p, p + n, &size);
    if (s) return s;
    c.bytes = kiln_malloc(size ? size : 1);
    if (!c.bytes) return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", what);
    if (top == LV_TENSOR) s = add_ref(&cs);
    uint8_t *o = c.bytes;
    if (!s) s = compact_write(&cs, top, p, p + n, &o);
    if (!s && (size_t)(o - c.bytes) != size)
        s = kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: compacted size disagrees", what);
    if (s) {
        onnx_compact_free(&c);
        return s;
    }
    c.size = size;
    *out = c;
    return KILN_OK;
}

kiln_status onnx_compact_model(kiln_ctx *ctx, const uint8_t *p, size_t n, const char *what,
                               onnx_compact *out) {
    return compact(ctx, LV_MODEL, p, n, what, out);
}

kiln_status onnx_compact_tensor(kiln_ctx *ctx, const uint8_t *p, size_t n, const char *what,
                                onnx_compact *out) {
    return compact(ctx, LV_TENSOR, p, n, what, out);
}

void onnx_compact_free(onnx_compact *c) {
    if (!c) return;
    kiln_free(c->bytes);
    kiln_free(c->refs);
    memset(c, 0, sizeof *c);
}

/* ---- containers that are not tensors ---- */

static bool printable(const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e) return false;
    return true;
}

bool onnx_wire_is_container(const uint8_t *p, size_t n) {
    const uint8_t *end = p + n;
    bool first = true, kind = false;
    while (p < end) {
        wire_field f;
        const char *why;
        if (!next_field(p, end, &f, &why)) return false;
        if (first) {
            /* TensorProto writers put dims (varints) first, never a text name */
            if (f.number != 1 || f.wt != WT_LEN || !printable(f.payload, f.len)) return false;
        } else if (f.number == 2 && f.wt == WT_VARINT) {
            uint64_t v;
            const uint8_t *q = f.payload;
            if (!read_varint(&q, end, &v) || v > 5) return false;
            kind = true;
        } else if (f.number < 3 || f.number > 7 || f.wt != WT_LEN) {
            return false;
        }
        first = false;
        p = f.next;
    }
    return kind;
}

/* ---- the descriptor-driven check ---- */

typedef struct check_state {
    kiln_ctx *ctx;
    const char *what;
    const uint8_t *base;
    char path[512];
} check_state;

static kiln_status check_fail(check_state *st, const uint8_t *at, const char *fmt, const char *arg) {
    char why[256];
    snprintf(why, sizeof why, fmt, arg);
    return kiln_fail(st->ctx, KILN_ERR_PARSE, "%s: malformed protobuf at byte %zu in %s: %s", st->what,
                     (size_t)(at - st->base), st->path, why);
}

static int scalar_wire_type(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT: return WT_I32;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return WT_I64;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: return WT_LEN;
    default: return WT_VARINT;
    }
}

/* A packed run of scalars must hold whole elements. */
static bool packed_ok(const wire_field *f, int elem_wt) {
    if (elem_wt == WT_I32) return f->len % 4 == 0;
    if (elem_wt == WT_I64) return f->len % 8 == 0;
    const uint8_t *p = f->payload, *end = f->payload + f->len;
    uint64_t v;
    while (p < end)
        if (!read_varint(&p, end, &v)) return false;
    return true;
}

static kiln_status check_message(check_state *st, const ProtobufCMessageDescriptor *desc,
                                 const uint8_t *p, const uint8_t *end, int depth);

static kiln_status check_field(check_state *st, const ProtobufCFieldDescriptor *fd,
                               const wire_field *f, int depth) {
    int want = scalar_wire_type(fd->type);
    if (f->wt != want) {
        bool packed = fd->label == PROTOBUF_C_LABEL_REPEATED && want != WT_LEN && f->wt == WT_LEN;
        if (!packed) return check_fail(st, f->start, "field '%s' has the wrong wire type", fd->name);
        if (!packed_ok(f, want))
            return check_fail(st, f->start, "packed field '%s' holds a partial element", fd->name);
        return KILN_OK;
    }
    if (fd->type != PROTOBUF_C_TYPE_MESSAGE) return KILN_OK;
    if (depth >= ONNX_MAX_DEPTH)
        return check_fail(st, f->start, "messages nested deeper than %s levels", "64");
    size_t keep = strlen(st->path);
    snprintf(st->path + keep, sizeof st->path - keep, ".%s", fd->name);
    kiln_status s = check_message(st, fd->descriptor, f->payload, f->payload + f->len, depth + 1);
    if (!s) st->path[keep] = 0;
    return s;
}

static kiln_status check_message(check_state *st, const ProtobufCMessageDescriptor *desc,
                                 const uint8_t *p, const uint8_t *end, int depth) {
    while (p < end) {
        wire_field f;
        const char *why;
        if (!next_field(p, end, &f, &why)) return check_fail(st, p, "%s", why);
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field(desc, f.number);
        if (fd) {
            kiln_status s = check_field(st, fd, &f, depth);
            if (s) return s;
        }
        p = f.next;
    }
    return KILN_OK;
}

kiln_status onnx_check_wire(kiln_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                            size_t n, const char *what) {
    check_state st = {ctx, what, p, {0}};
    snprintf(st.path, sizeof st.path, "%s", desc->short_name);
    return check_message(&st, desc, p, p + n, 0);
}

static void *pb_alloc(void *data, size_t size) {
    void *p = kiln_malloc(size);
    if (!p) *(bool *)data = true;
    return p;
}

static void pb_free(void *data, void *p) { kiln_free(p); }

kiln_status onnx_unpack(kiln_ctx *ctx, const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                        size_t n, const char *what, ProtobufCMessage **out) {
    kiln_status s = onnx_check_wire(ctx, desc, p, n, what);
    if (s) return s;
    bool oom = false;
    ProtobufCAllocator a = {pb_alloc, pb_free, &oom};
    ProtobufCMessage *m = protobuf_c_message_unpack(desc, &a, n, p);
    if (!m && oom) return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory decoding %s", what, desc->short_name);
    if (!m) return kiln_fail(ctx, KILN_ERR_PARSE, "%s: malformed %s (protobuf decoding failed)", what, desc->short_name);
    *out = m;
    return KILN_OK;
}

void onnx_unpacked_free(ProtobufCMessage *m) {
    if (!m) return;
    ProtobufCAllocator a = {pb_alloc, pb_free, NULL};
    protobuf_c_message_free_unpacked(m, &a);
}
