/*
** onnx_tensor.c — TensorProto into kiln_tensor: every data field, raw data
** (in place, from the mapping, when the graph may keep it), external data,
** and the .pb files of ONNX's test data.
*/
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "ir/dtype.h"
#include "ir/mem.h"
#include "ir/tensor.h"
#include "onnx_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the ONNX frontend reads little-endian raw_data in place: a big-endian host needs byte swaps"
#endif

static const char *onnx_type_name(int64_t t) {
    static const char *const names[] = {
        "UNDEFINED", "FLOAT",    "UINT8",     "INT8",       "UINT16",       "INT16",
        "INT32",     "INT64",    "STRING",    "BOOL",       "FLOAT16",      "DOUBLE",
        "UINT32",    "UINT64",   "COMPLEX64", "COMPLEX128", "BFLOAT16",     "FLOAT8E4M3FN",
        "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1",
        "FLOAT8E8M0", "UINT2", "INT2"};
    return t >= 0 && t < (int64_t)(sizeof names / sizeof names[0]) ? names[t] : "unknown";
}

kiln_status onnx_dtype(kiln_ctx *ctx, int64_t t, const char *what, kiln_dtype *out) {
    if (t == 0) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: element type is undefined", what);
    if (t < 0 || t > INT_MAX || !kiln_dtype_valid((int)t))
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: element type %lld (%s) is not supported",
                         what, (long long)t, onnx_type_name(t));
    *out = (kiln_dtype)t;
    return KILN_OK;
}

/* The bytes a tensor's data comes from, before it is given a home. */
typedef struct tensor_bytes {
    const uint8_t *p;
    size_t n;
    bool from_source; /* lies in the source (mapping or caller's bytes), not a protobuf-c copy */
    bool mapped;      /* lies in a file mapping that the graph keeps */
} tensor_bytes;

static void *data_alloc(const onnx_tensor_sink *sink, size_t n) {
    if (sink->arena) return kiln_arena_alloc(sink->arena, n ? n : 1);
    return kiln_malloc(n ? n : 1);
}

static kiln_status nomem(kiln_ctx *ctx, const char *what) {
    return kiln_fail(ctx, KILN_ERR_NOMEM, "%s: out of memory", what);
}

static kiln_status read_dims(kiln_ctx *ctx, const Onnx__TensorProto *tp, const char *what,
                             kiln_tensor *t) {
    if (tp->n_dims > KILN_MAX_RANK)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: rank %zu exceeds kiln's limit of %d", what,
                         tp->n_dims, KILN_MAX_RANK);
    t->rank = (int)tp->n_dims;
    for (size_t i = 0; i < tp->n_dims; i++) {
        if (tp->dims[i] < 0)
            return kiln_fail(ctx, KILN_ERR_INVALID, "%s: dimension %zu is negative (%lld)", what, i,
                             (long long)tp->dims[i]);
        t->dims[i] = tp->dims[i];
    }
    int64_t n = kiln_numel(t);
    size_t es = kiln_dtype_size(t->dtype);
    if (n < 0 || (uint64_t)n > (SIZE_MAX / 4) / es)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: the element count of its dimensions overflows", what);
    return KILN_OK;
}

static kiln_status parse_u64(kiln_ctx *ctx, const char *s, const char *key, const char *what,
                             uint64_t *out) {
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+') goto bad;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) goto bad;
    *out = v;
    return KILN_OK;
bad:
    return kiln_fail(ctx, KILN_ERR_INVALID, "%s: external data %s '%s' is not a non-negative integer",
                     what, key, s ? s : "");
}

static kiln_status external_bytes(kiln_ctx *ctx, const Onnx__TensorProto *tp, const onnx_source *src,
                                  size_t nbytes, const char *what, tensor_bytes *out) {
    const char *loc = NULL, *off_s = NULL, *len_s = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        const char *k = e->key ? e->key : "";
        if (strcmp(k, "location") == 0) loc = e->value ? e->value : "";
        else if (strcmp(k, "offset") == 0) off_s = e->value;
        else if (strcmp(k, "length") == 0) len_s = e->value;
    }
    if (!loc) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: external data without a 'location'", what);
    if (tp->data_type == KILN_STRING)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: string tensors cannot hold external data", what);
    uint64_t off = 0, len = nbytes;
    kiln_status s = KILN_OK;
    if (off_s) s = parse_u64(ctx, off_s, "offset", what, &off);
    if (!s && len_s) s = parse_u64(ctx, len_s, "length", what, &len);
    if (s) return s;
    if (len != nbytes)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: external data length %llu does not match its %zu bytes",
                         what, (unsigned long long)len, nbytes);
    if (!src || !src->res)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: external data is only read with a model", what);
    const onnx_mapping *m;
    s = onnx_map_external(ctx, src->res, src->model_dir, loc, what, &m);
    if (s) return s;
    if (off > m->size || len > m->size - off)
        return kiln_fail(ctx, KILN_ERR_INVALID,
                         "%s: external data [%llu, +%llu) lies outside '%s' (%zu bytes)", what,
                         (unsigned long long)off, (unsigned long long)len, loc, m->size);
    *out = (tensor_bytes){m->addr + off, len, true, true};
    return KILN_OK;
}

static kiln_status raw_bytes(kiln_ctx *ctx, const Onnx__TensorProto *tp, const onnx_raw_ref *raw,
                             const onnx_source *src, const char *what, tensor_bytes *out) {
    if (raw && raw->present) {
        if (!src || raw->offset > src->size || raw->length > src->size - raw->offset)
            return kiln_fail(ctx, KILN_ERR_INTERNAL, "%s: raw_data reference out of range", what);
        *out = (tensor_bytes){src->base + raw->offset, raw->length, true, src->mapped};
    } else {
        *out = (tensor_bytes){tp->raw_data.data, tp->raw_data.len, false, false};
    }
    return KILN_OK;
}

/* Gives raw little-endian bytes of n elements a home: in place, an owned
** block, or the arena. Sub-byte types are unpacked to a byte per element. */
static kiln_status place_raw(kiln_ctx *ctx, const tensor_bytes *b, kiln_tensor *t, size_t n,
                             const onnx_tensor_sink *sink, const char *what) {
    size_t es = kiln_dtype_size(t->dtype);
    bool packed = kiln_dtype_is_packed(t->dtype);
    if (!packed && t->dtype != KILN_BOOL && sink->arena && b->from_source && sink->src && sink->src->res) {
        const void *d;
        kiln_status s = onnx_place_bytes(ctx, sink->src->res, b->p, b->n, es, b->mapped, b->mapped, &d);
        if (s) return s;
        t->data = (void *)d;
        return KILN_OK;
    }
    uint8_t *d = data_alloc(sink, n * es);
    if (!d) return nomem(ctx, what);
    if (packed) {
        kiln_unpack_elems(t->dtype, b->p, (int64_t)n, d);
    } else if (t->dtype == KILN_BOOL) {
        for (size_t i = 0; i < b->n; i++) d[i] = b->p[i] != 0; /* a bool holds 0 or 1 */
    } else if (b->n) {
        memcpy(d, b->p, b->n);
    }
    t->data = d;
    if (!sink->arena) t->alloc = d;
    return KILN_OK;
}

/* Which repeated field holds a dtype's values when raw_data is not used. */
static size_t typed_count(const Onnx__TensorProto *tp, kiln_dtype dt, const char **field) {
    switch (dt) {
    case KILN_F32: *field = "float_data"; return tp->n_float_data;
    case KILN_F64: *field = "double_data"; return tp->n_double_data;
    case KILN_I64: *field = "int64_data"; return tp->n_int64_data;
    case KILN_U32:
    case KILN_U64: *field = "uint64_data"; return tp->n_uint64_data;
    case KILN_STRING: *field = "string_data"; return tp->n_string_data;
    default: *field = "int32_data"; return tp->n_int32_data;
    }
}

static size_t total_typed(const Onnx__TensorProto *tp) {
    return tp->n_float_data + tp->n_double_data + tp->n_int64_data + tp->n_uint64_data +
           tp->n_string_data + tp->n_int32_data;
}

static void convert_typed(const Onnx__TensorProto *tp, kiln_dtype dt, void *d, size_t n) {
    for (size_t i = 0; i < n; i++) {
        switch (dt) {
        case KILN_F32: ((float *)d)[i] = tp->float_data[i]; break;
        case KILN_F64: ((double *)d)[i] = tp->double_data[i]; break;
        case KILN_I64: ((int64_t *)d)[i] = tp->int64_data[i]; break;
        case KILN_U64: ((uint64_t *)d)[i] = tp->uint64_data[i]; break;
        case KILN_U32: ((uint32_t *)d)[i] = (uint32_t)tp->uint64_data[i]; break;
        case KILN_I32: ((int32_t *)d)[i] = tp->int32_data[i]; break;
        case KILN_I16: ((int16_t *)d)[i] = (int16_t)tp->int32_data[i]; break;
        case KILN_I8: ((int8_t *)d)[i] = (int8_t)tp->int32_data[i]; break;
        case KILN_U16:
        case KILN_F16:
        case KILN_BF16: ((uint16_t *)d)[i] = (uint16_t)tp->int32_data[i]; break;
        case KILN_BOOL: ((uint8_t *)d)[i] = tp->int32_data[i] != 0; break;
        default: ((uint8_t *)d)[i] = (uint8_t)tp->int32_data[i]; break; /* u8, float8 bit patterns */
        }
    }
}

static void free_strings(char **s, size_t n) {
    for (size_t i = 0; i < n; i++) kiln_free(s[i]);
    kiln_free(s);
}

static kiln_status place_strings(kiln_ctx *ctx, const Onnx__TensorProto *tp, size_t n, kiln_tensor *t,
                                 const onnx_tensor_sink *sink, const char *what) {
    char **arr = data_alloc(sink, n * sizeof(char *));
    if (!arr) return nomem(ctx, what);
    if (!sink->arena) memset(arr, 0, n * sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const ProtobufCBinaryData *b = &tp->string_data[i];
        size_t len = b->data ? b->len : 0;
        char *c = sink->arena ? kiln_arena_strndup(sink->arena, b->data ? (const char *)b->data : "", len)
                              : kiln_malloc(len + 1);
        if (!c) {
            if (!sink->arena) free_strings(arr, i);
            return nomem(ctx, what);
        }
        if (!sink->arena) {
            if (len) memcpy(c, b->data, len);
            c[len] = 0;
        }
        arr[i] = c;
    }
    t->data = arr;
    if (!sink->arena) t->alloc = arr;
    return KILN_OK;
}

/* int4/uint4/fp4 keep two elements, int2/uint2 four, in each int32_data
** value (as in raw bytes, first element in the lowest bits). */
static void unpack_int32_data(const Onnx__TensorProto *tp, kiln_dtype dt, uint8_t *d, size_t n) {
    size_t per = 4 / kiln_packed_size(dt, 4);
    for (size_t g = 0; g * per < n; g++) {
        uint8_t byte = (uint8_t)tp->int32_data[g];
        size_t k = n - g * per < per ? n - g * per : per;
        kiln_unpack_elems(dt, &byte, (int64_t)k, d + g * per);
    }
}

static kiln_status place_typed(kiln_ctx *ctx, const Onnx__TensorProto *tp, size_t n, kiln_tensor *t,
                               const onnx_tensor_sink *sink, const char *what) {
    const char *field;
    size_t have = typed_count(tp, t->dtype, &field);
    bool packed = kiln_dtype_is_packed(t->dtype);
    size_t want = packed ? kiln_packed_size(t->dtype, (int64_t)n) : n;
    if (have != want)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: its dimensions give %zu elements (%zu %s values) but %s holds %zu",
                         what, n, want, field, field, have);
    if (total_typed(tp) != have)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: holds data in a field other than %s (for %s)", what,
                         field, kiln_dtype_name(t->dtype));
    if (t->dtype == KILN_STRING) return place_strings(ctx, tp, n, t, sink, what);
    void *d = data_alloc(sink, n * kiln_dtype_size(t->dtype));
    if (!d) return nomem(ctx, what);
    if (packed) unpack_int32_data(tp, t->dtype, d, n);
    else convert_typed(tp, t->dtype, d, n);
    t->data = d;
    if (!sink->arena) t->alloc = d;
    return KILN_OK;
}

kiln_status onnx_tensor_from_proto(kiln_ctx *ctx, const Onnx__TensorProto *tp,
                                   const onnx_raw_ref *raw, const onnx_tensor_sink *sink,
                                   const char *what, kiln_tensor *out) {
    kiln_tensor t;
    memset(&t, 0, sizeof t);
    kiln_status s = onnx_dtype(ctx, tp->has_data_type ? tp->data_type : 0, what, &t.dtype);
    if (!s) s = read_dims(ctx, tp, what, &t);
    if (s) return s;
    if (tp->segment)
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED, "%s: segmented tensors are not supported", what);
    size_t n = (size_t)kiln_numel(&t), nbytes = kiln_packed_size(t.dtype, (int64_t)n); /* in the file */
    bool has_raw = (raw && raw->present) || tp->has_raw_data;
    bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    if ((has_raw || external) && total_typed(tp))
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: holds both %s data and typed data fields", what,
                         external ? "external" : "raw");
    if (t.dtype == KILN_STRING && has_raw)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: a string tensor cannot use raw_data", what);
    if (!has_raw && !external) {
        s = place_typed(ctx, tp, n, &t, sink, what);
    } else {
        tensor_bytes b = {0};
        s = external ? external_bytes(ctx, tp, sink->src, nbytes, what, &b)
                     : raw_bytes(ctx, tp, raw, sink->src, what, &b);
        if (!s && b.n != nbytes)
            s = kiln_fail(ctx, KILN_ERR_INVALID, "%s: its dimensions give %zu bytes (%zu %s elements) but %s holds %zu",
                          what, nbytes, n, kiln_dtype_name(t.dtype), external ? "external data" : "raw_data", b.n);
        if (!s) s = place_raw(ctx, &b, &t, n, sink, what);
    }
    if (s) return s;
    *out = t;
    return KILN_OK;
}

/* ---- lone tensors (.pb files) ---- */

static kiln_status decode_owned(kiln_ctx *ctx, const uint8_t *bytes, size_t size, const char *what,
                                kiln_tensor *out) {
    if (onnx_wire_is_container(bytes, size))
        return kiln_fail(ctx, KILN_ERR_UNSUPPORTED,
                         "%s%sholds an ONNX sequence, optional or map (not a TensorProto); kiln reads only tensors",
                         what, what[0] ? ": " : "");
    onnx_compact c;
    kiln_status s = onnx_compact_tensor(ctx, bytes, size, what, &c);
    if (s) return s;
    ProtobufCMessage *msg = NULL;
    s = onnx_unpack(ctx, &onnx__tensor_proto__descriptor, c.bytes, c.size, what, &msg);
    if (!s) {
        const Onnx__TensorProto *tp = (const Onnx__TensorProto *)msg;
        onnx_source src = {NULL, bytes, size, false, NULL, c.refs, c.n_refs};
        onnx_tensor_sink sink = {NULL, &src};
        char name[300];
        snprintf(name, sizeof name, "%s%stensor '%s'", what, what[0] ? ": " : "", tp->name ? tp->name : "");
        s = onnx_tensor_from_proto(ctx, tp, &c.refs[0], &sink, name, out);
    }
    onnx_unpacked_free(msg);
    onnx_compact_free(&c);
    return s;
}

kiln_status onnx_tensor_decode(kiln_ctx *ctx, const void *bytes, size_t size, kiln_tensor *out) {
    if (!bytes && size) return kiln_fail(ctx, KILN_ERR_INVALID, "onnx_tensor_decode: NULL bytes");
    return decode_owned(ctx, bytes ? bytes : (const uint8_t *)"", size, "", out);
}

kiln_status onnx_tensor_read_file(kiln_ctx *ctx, const char *path, kiln_tensor *out) {
    uint8_t *p;
    size_t n;
    kiln_status s = onnx_map_file(ctx, path, &p, &n);
    if (s) return s;
    s = decode_owned(ctx, p ? p : (const uint8_t *)"", n, path, out);
    if (p) munmap(p, n);
    return s;
}

static kiln_status write_all(kiln_ctx *ctx, const char *path, const uint8_t *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    bool ok = fwrite(buf, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok) return kiln_fail(ctx, KILN_ERR_IO, "%s: write failed", path);
    return KILN_OK;
}

kiln_status onnx_tensor_write_file(kiln_ctx *ctx, const char *path, const kiln_tensor *t,
                                   const char *name) {
    if (!kiln_dtype_valid(t->dtype) || t->rank < 0 || t->rank > KILN_MAX_RANK || kiln_numel(t) < 0)
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: cannot write a tensor of this type or shape", path);
    size_t n = (size_t)kiln_numel(t);
    if (n && !t->data) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: the tensor has no data", path);
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[KILN_MAX_RANK];
    memcpy(dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    tp.n_dims = (size_t)t->rank;
    tp.dims = dims;
    tp.has_data_type = true;
    tp.data_type = t->dtype;
    tp.name = (char *)(name ? name : "");
    ProtobufCBinaryData *strs = NULL;
    uint8_t *packed = NULL;
    if (kiln_dtype_is_packed(t->dtype)) {
        size_t pk = kiln_packed_size(t->dtype, (int64_t)n);
        packed = kiln_malloc(pk ? pk : 1);
        if (!packed) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
        kiln_pack_elems(t->dtype, t->data, (int64_t)n, packed);
        tp.has_raw_data = true;
        tp.raw_data = (ProtobufCBinaryData){pk, packed};
    } else if (t->dtype == KILN_STRING) {
        strs = kiln_calloc(n ? n : 1, sizeof *strs);
        if (!strs) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
        char *const *s = t->data;
        for (size_t i = 0; i < n; i++) {
            const char *c = s[i] ? s[i] : "";
            strs[i] = (ProtobufCBinaryData){strlen(c), (uint8_t *)c};
        }
        tp.n_string_data = n;
        tp.string_data = strs;
    } else {
        tp.has_raw_data = true;
        tp.raw_data = (ProtobufCBinaryData){kiln_nbytes(t), t->data ? t->data : (void *)""};
    }
    size_t size = protobuf_c_message_get_packed_size(&tp.base);
    uint8_t *buf = kiln_malloc(size ? size : 1);
    kiln_status s;
    if (!buf) {
        s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory serializing a tensor");
    } else {
        protobuf_c_message_pack(&tp.base, buf);
        s = write_all(ctx, path, buf, size);
    }
    kiln_free(buf);
    kiln_free(strs);
    kiln_free(packed);
    return s;
}
