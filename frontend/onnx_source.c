/*
** onnx_source.c — where weights live: file mappings (the model and its
** external data files), owned aligned copies, and the release hook that
** frees them with the graph.
*/
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ir/mem.h"
#include "onnx_internal.h"

kiln_status onnx_map_file(kiln_ctx *ctx, const char *path, uint8_t **addr, size_t *size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        int e = errno;
        close(fd);
        return kiln_fail(ctx, KILN_ERR_IO, "%s: not a regular file%s%s", path, e ? ": " : "",
                         e ? strerror(e) : "");
    }
    if ((uint64_t)st.st_size > SIZE_MAX / 2) {
        close(fd);
        return kiln_fail(ctx, KILN_ERR_IO, "%s: file too large", path);
    }
    uint8_t *p = NULL;
    if (st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return kiln_fail(ctx, KILN_ERR_IO, "%s: cannot map: %s", path, strerror(e));
        }
    }
    close(fd);
    *addr = p;
    *size = (size_t)st.st_size;
    return KILN_OK;
}

void onnx_resources_free(void *arg) {
    onnx_resources *res = arg;
    if (!res) return;
    for (int i = 0; i < res->n_maps; i++) {
        if (res->maps[i].addr) munmap(res->maps[i].addr, res->maps[i].size);
        kiln_free(res->maps[i].path);
    }
    for (int i = 0; i < res->n_blocks; i++) kiln_free(res->blocks[i]);
    kiln_free(res->maps);
    kiln_free(res->blocks);
    kiln_free(res);
}

void onnx_resources_unmap_pages(onnx_resources *res) {
    for (int i = 0; i < res->n_maps; i++)
        if (res->maps[i].addr) madvise(res->maps[i].addr, res->maps[i].size, MADV_DONTNEED);
}

static uintptr_t page_size(void) {
    static long page;
    if (!page) page = sysconf(_SC_PAGESIZE);
    return (uintptr_t)page;
}

/* Drops the pages of [p, p+n) of a private, unmodified mapping once they
** were copied. The kernel maps file pages in folios of up to 2 MiB, so the
** range is widened by that much: the neighbours' pages it may drop are only
** needed again by weights used in place, which fault back in on use. */
static void release_pages(const onnx_mapping *m, const uint8_t *p, size_t n) {
    const size_t margin = (size_t)2 << 20;
    uintptr_t base = (uintptr_t)m->addr, end = base + m->size;
    uintptr_t lo = (uintptr_t)p - base > margin ? (uintptr_t)p - margin : base;
    uintptr_t hi = end - ((uintptr_t)p + n) > margin ? (uintptr_t)p + n + margin : end;
    lo &= ~(page_size() - 1);
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Copies out of a mapping in chunks, dropping each chunk's source pages as
** it goes, so a large weight never holds two resident copies. */
static void copy_from_mapping(const onnx_mapping *m, uint8_t *dst, const uint8_t *src, size_t n) {
    const size_t chunk = (size_t)8 << 20;
    const uintptr_t pg = page_size();
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        memcpy(dst + off, src + off, k);
        uintptr_t lo = ((uintptr_t)(src + off) + pg - 1) & ~(pg - 1);
        uintptr_t hi = (uintptr_t)(src + off + k) & ~(pg - 1);
        if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    release_pages(m, src, n);
}

static const onnx_mapping *mapping_of(const onnx_resources *res, const uint8_t *p) {
    for (int i = 0; i < res->n_maps; i++) {
        const onnx_mapping *m = &res->maps[i];
        if (m->addr && p >= m->addr && p < m->addr + m->size) return m;
    }
    return NULL;
}

kiln_status onnx_place_bytes(kiln_ctx *ctx, onnx_resources *res, const uint8_t *src, size_t n,
                             size_t align, bool may_borrow, bool mapped, const void **out) {
    if (may_borrow && align && (uintptr_t)src % align == 0) {
        *out = src;
        return KILN_OK;
    }
    if (!kiln_grow((void **)&res->blocks, &res->cap_blocks, res->n_blocks + 1, sizeof(void *)))
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    void *block = kiln_malloc(n ? n : 1); /* malloc's alignment covers every dtype */
    if (!block) return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory copying %zu bytes of weights", n);
    const onnx_mapping *m = mapped && n ? mapping_of(res, src) : NULL;
    if (m) copy_from_mapping(m, block, src, n);
    else if (n) memcpy(block, src, n);
    res->blocks[res->n_blocks++] = block;
    *out = block;
    return KILN_OK;
}

/* A location may name only a file inside the model's folder. */
static kiln_status check_location(kiln_ctx *ctx, const char *loc, const char *tensor) {
    if (!loc[0]) return kiln_fail(ctx, KILN_ERR_INVALID, "%s: external data has an empty location", tensor);
    if (loc[0] == '/')
        return kiln_fail(ctx, KILN_ERR_INVALID, "%s: external data location '%s' is an absolute path",
                         tensor, loc);
    for (const char *p = loc; *p;) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.')
            return kiln_fail(ctx, KILN_ERR_INVALID,
                             "%s: external data location '%s' leaves the model's folder", tensor, loc);
        p += len + (e ? 1 : 0);
    }
    return KILN_OK;
}

/* Resolves dir/loc with symlinks followed; it must stay inside dir. */
static kiln_status resolve_inside(kiln_ctx *ctx, const char *dir, const char *loc, const char *tensor,
                                  char **out) {
    char *rdir = realpath(dir, NULL);
    if (!rdir)
        return kiln_fail(ctx, KILN_ERR_IO, "%s: model folder '%s': %s", tensor, dir, strerror(errno));
    size_t n = strlen(dir) + strlen(loc) + 2;
    char *full = kiln_malloc(n);
    if (!full) {
        free(rdir);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    }
    snprintf(full, n, "%s/%s", dir, loc);
    char *rfull = realpath(full, NULL);
    kiln_status s = KILN_OK;
    if (!rfull) {
        s = kiln_fail(ctx, KILN_ERR_IO, "%s: external data file '%s': %s", tensor, full, strerror(errno));
    } else {
        size_t k = strlen(rdir);
        bool inside = strncmp(rfull, rdir, k) == 0 && (rfull[k] == '/' || (k == 1 && rdir[0] == '/'));
        if (!inside)
            s = kiln_fail(ctx, KILN_ERR_INVALID,
                          "%s: external data location '%s' resolves to '%s', outside the model's folder",
                          tensor, loc, rfull);
        else if (!(*out = kiln_strdup(rfull)))
            s = kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    }
    free(rfull);
    free(rdir);
    kiln_free(full);
    return s;
}

kiln_status onnx_map_external(kiln_ctx *ctx, onnx_resources *res, const char *dir,
                              const char *location, const char *tensor, const onnx_mapping **out) {
    if (!dir)
        return kiln_fail(ctx, KILN_ERR_INVALID,
                         "%s: uses external data but the model was loaded without a folder", tensor);
    kiln_status s = check_location(ctx, location, tensor);
    char *path = NULL;
    if (!s) s = resolve_inside(ctx, dir, location, tensor, &path);
    if (s) return s;
    for (int i = 0; i < res->n_maps; i++) {
        if (res->maps[i].path && strcmp(res->maps[i].path, path) == 0) {
            kiln_free(path);
            *out = &res->maps[i];
            return KILN_OK;
        }
    }
    if (!kiln_grow((void **)&res->maps, &res->cap_maps, res->n_maps + 1, sizeof(onnx_mapping))) {
        kiln_free(path);
        return kiln_fail(ctx, KILN_ERR_NOMEM, "out of memory");
    }
    onnx_mapping *m = &res->maps[res->n_maps];
    s = onnx_map_file(ctx, path, &m->addr, &m->size);
    if (s) {
        kiln_free(path);
        return kiln_wrap(ctx, s, "%s: external data", tensor);
    }
    m->path = path;
    res->n_maps++;
    *out = m;
    return KILN_OK;
}
