// SPDX-License-Identifier: MIT
// GGUF writer: metadata and tensor infos are collected in memory, then
// gguf_writer_begin writes the header and gguf_writer_write_data streams each
// tensor's data after it, aligned. The reader is in gguf.c.
#include "gguf.h"

#include "common.h"
#include "gguf_internal.h"
#include "quant_types.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct buf {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void buf_put(struct buf *b, const void *data, size_t n) {
    if (b->oom) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}
static void buf_u32(struct buf *b, uint32_t v) { buf_put(b, &v, 4); } // little-endian host
static void buf_u64(struct buf *b, uint64_t v) { buf_put(b, &v, 8); }

struct wkv {
    char *key;
    uint32_t type;
    struct buf val; // the value as stored after the type
};

struct wtensor {
    char *name;
    uint32_t type, n_dims;
    uint64_t ne[4], size, offset;
};

struct gguf_writer {
    struct wkv *kv;
    size_t n_kv, cap_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    int err; // first setter failure, reported by begin
    char errmsg[512];
    FILE *fp;
    char *path;
    uint32_t alignment;
    size_t next;  // tensor whose data comes next
    uint64_t pos; // bytes written
};

static void w_error(gguf_writer *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void w_error(gguf_writer *w, int code, const char *fmt, ...) {
    if (!w || w->err) return;
    w->err = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->errmsg, sizeof w->errmsg, fmt, ap);
    va_end(ap);
}

gguf_writer *gguf_writer_create(void) {
    gguf_writer *w = calloc(1, sizeof *w);
    if (!w) vkphi_fail(VKPHI_ERR_NOMEM, "out of memory creating a GGUF writer");
    return w;
}

void gguf_writer_free(gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val.p);
    }
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->kv);
    free(w->t);
    if (w->fp) fclose(w->fp);
    free(w->path);
    free(w);
}

// Installs a finished value for key (replacing an earlier one); takes val.
static void w_set(gguf_writer *w, const char *key, uint32_t type, struct buf val) {
    if (!w || !key || val.oom) {
        free(val.p);
        if (!w) return;
        if (!key) w_error(w, VKPHI_ERR_ARG, "a metadata key was set without a name");
        else w_error(w, VKPHI_ERR_NOMEM, "out of memory storing metadata key '%.64s'", key);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++) {
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val.p);
            w->kv[i].type = type;
            w->kv[i].val = val;
            return;
        }
    }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        struct wkv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) {
            free(val.p);
            w_error(w, VKPHI_ERR_NOMEM, "out of memory storing metadata key '%.64s'", key);
            return;
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        free(val.p);
        w_error(w, VKPHI_ERR_NOMEM, "out of memory storing metadata key '%.64s'", key);
        return;
    }
    w->kv[w->n_kv++] = (struct wkv){k, type, val};
}

static void w_set_scalar(gguf_writer *w, const char *key, uint32_t type, const void *v) {
    struct buf b = {0};
    buf_put(&b, v, scalar_size[type]);
    w_set(w, key, type, b);
}

void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v) { w_set_scalar(w, key, GGUF_TYPE_UINT32, &v); }
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v) { w_set_scalar(w, key, GGUF_TYPE_INT32, &v); }
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v) { w_set_scalar(w, key, GGUF_TYPE_FLOAT32, &v); }
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    w_set_scalar(w, key, GGUF_TYPE_BOOL, &b);
}

void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v) {
    if (!v) return w_error(w, VKPHI_ERR_ARG, "metadata key '%.64s' set to a NULL string", key ? key : "");
    struct buf b = {0};
    const size_t n = strlen(v);
    buf_u64(&b, n);
    buf_put(&b, v, n);
    w_set(w, key, GGUF_TYPE_STRING, b);
}

void gguf_writer_set_arr(gguf_writer *w, const char *key, enum gguf_type elem_type, const void *data, uint64_t count) {
    if (!type_valid((uint32_t)elem_type) || elem_type == GGUF_TYPE_STRING || elem_type == GGUF_TYPE_ARRAY)
        return w_error(w, VKPHI_ERR_ARG, "metadata array '%.64s': element type %d is not numeric (use gguf_writer_set_arr_str for strings)",
                       key ? key : "", (int)elem_type);
    if (count && !data) return w_error(w, VKPHI_ERR_ARG, "metadata array '%.64s' has no data", key ? key : "");
    if (count > SIZE_MAX / 16) return w_error(w, VKPHI_ERR_NOMEM, "metadata array '%.64s' is too large", key ? key : "");
    struct buf b = {0};
    buf_u32(&b, (uint32_t)elem_type);
    buf_u64(&b, count);
    if (count) buf_put(&b, data, (size_t)count * scalar_size[elem_type]);
    w_set(w, key, GGUF_TYPE_ARRAY, b);
}

void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens, uint64_t count) {
    if (count && !strs) return w_error(w, VKPHI_ERR_ARG, "string array '%.64s' has no strings", key ? key : "");
    struct buf b = {0};
    buf_u32(&b, GGUF_TYPE_STRING);
    buf_u64(&b, count);
    for (uint64_t i = 0; i < count && !b.oom; i++) {
        if (!strs[i]) {
            free(b.p);
            return w_error(w, VKPHI_ERR_ARG, "string array '%.64s': element %llu is NULL", key ? key : "",
                           (unsigned long long)i);
        }
        const uint64_t n = lens ? lens[i] : strlen(strs[i]);
        buf_u64(&b, n);
        buf_put(&b, strs[i], (size_t)n);
    }
    w_set(w, key, GGUF_TYPE_ARRAY, b);
}

void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, int64_t i) {
    if (!w) return;
    if (!src || i < 0 || i >= src->n_kv)
        return w_error(w, VKPHI_ERR_ARG, "gguf_writer_copy_kv: key index %lld out of range", (long long)i);
    const struct gguf_kv *kv = &src->kv[i];
    struct buf b = {0};
    buf_put(&b, src->base + kv->val_off, (size_t)kv->val_len);
    w_set(w, kv->key, kv->type, b);
}

void gguf_writer_add_tensor(gguf_writer *w, const char *name, enum ggml_type type, uint32_t n_dims, const uint64_t *ne) {
    if (!w) return;
    if (!name || !ne || n_dims < 1 || n_dims > 4)
        return w_error(w, VKPHI_ERR_ARG, "tensor '%.64s': needs a name and 1 to 4 dimensions", name ? name : "");
    if (!quant_type_known((uint32_t)type))
        return w_error(w, VKPHI_ERR_ARG, "tensor '%.64s': unknown type %d", name, (int)type);
    struct wtensor t = {.type = (uint32_t)type, .n_dims = n_dims, .ne = {1, 1, 1, 1}};
    uint64_t rows = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        t.ne[d] = ne[d];
        if (ne[d] > (uint64_t)INT64_MAX || (d > 0 && __builtin_mul_overflow(rows, ne[d], &rows)))
            return w_error(w, VKPHI_ERR_ARG, "tensor '%.64s': dimensions too large", name);
    }
    const uint64_t row = quant_row_bytes(t.type, t.ne[0]);
    if (!row && t.ne[0])
        return w_error(w, VKPHI_ERR_ARG, "tensor '%.64s': rows of %llu values are not a multiple of the %s block size %u",
                       name, (unsigned long long)t.ne[0], quant_type_name(t.type), quant_block_elems(t.type));
    if (__builtin_mul_overflow(row, rows, &t.size)) return w_error(w, VKPHI_ERR_ARG, "tensor '%.64s': too large", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) return w_error(w, VKPHI_ERR_ARG, "tensor '%.64s' added twice", name);
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        struct wtensor *p = realloc(w->t, cap * sizeof *p);
        if (!p) return w_error(w, VKPHI_ERR_NOMEM, "out of memory adding tensor '%.64s'", name);
        w->t = p;
        w->cap_t = cap;
    }
    if (!(t.name = strdup(name))) return w_error(w, VKPHI_ERR_NOMEM, "out of memory adding tensor '%.64s'", name);
    w->t[w->n_t++] = t;
}

static int w_write(gguf_writer *w, const void *p, size_t n) {
    if (n && fwrite(p, 1, n, w->fp) != n)
        return vkphi_fail(VKPHI_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    w->pos += n;
    return VKPHI_OK;
}

static int w_pad(gguf_writer *w) {
    static const uint8_t zeros[256];
    while (w->pos % w->alignment) {
        size_t n = (size_t)(w->alignment - w->pos % w->alignment);
        int rc = w_write(w, zeros, n < sizeof zeros ? n : sizeof zeros);
        if (rc) return rc;
    }
    return VKPHI_OK;
}

int gguf_writer_begin(gguf_writer *w, const char *path) {
    if (!w || !path) return vkphi_fail(VKPHI_ERR_ARG, "gguf_writer_begin: no writer or no path");
    if (w->err) return vkphi_fail(w->err, "%s: %s", path, w->errmsg);
    if (w->fp) return vkphi_fail(VKPHI_ERR_ARG, "%s: gguf_writer_begin called twice", path);
    w->alignment = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment")) continue;
        if (w->kv[i].type != GGUF_TYPE_UINT32)
            return vkphi_fail(VKPHI_ERR_ARG, "%s: general.alignment must be a uint32", path);
        memcpy(&w->alignment, w->kv[i].val.p, 4);
        if (!w->alignment || (w->alignment & (w->alignment - 1)))
            return vkphi_fail(VKPHI_ERR_ARG, "%s: general.alignment %u is not a power of two", path, w->alignment);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        w->t[i].offset = off;
        const uint64_t padded = (w->t[i].size + w->alignment - 1) / w->alignment * w->alignment;
        if (padded < w->t[i].size || __builtin_add_overflow(off, padded, &off))
            return vkphi_fail(VKPHI_ERR_ARG, "%s: tensor data too large", path);
    }
    free(w->path);
    if (!(w->path = strdup(path))) return vkphi_fail(VKPHI_ERR_NOMEM, "out of memory");
    if (!(w->fp = fopen(path, "wb"))) return vkphi_fail(VKPHI_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    setvbuf(w->fp, NULL, _IOFBF, 1 << 20);
    w->pos = 0;
    w->next = 0;

    struct buf h = {0};
    buf_put(&h, "GGUF", 4);
    buf_u32(&h, 3);
    buf_u64(&h, w->n_t);
    buf_u64(&h, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        const struct wkv *kv = &w->kv[i];
        buf_u64(&h, strlen(kv->key));
        buf_put(&h, kv->key, strlen(kv->key));
        buf_u32(&h, kv->type);
        buf_put(&h, kv->val.p, kv->val.len);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        buf_u64(&h, strlen(t->name));
        buf_put(&h, t->name, strlen(t->name));
        buf_u32(&h, t->n_dims);
        for (uint32_t d = 0; d < t->n_dims; d++) buf_u64(&h, t->ne[d]);
        buf_u32(&h, t->type);
        buf_u64(&h, t->offset);
    }
    int rc = h.oom ? vkphi_fail(VKPHI_ERR_NOMEM, "%s: out of memory building the header", path) : w_write(w, h.p, h.len);
    free(h.p);
    if (!rc) rc = w_pad(w);
    return rc;
}

int gguf_writer_write_data(gguf_writer *w, const void *data, uint64_t size) {
    if (!w || !w->fp) return vkphi_fail(VKPHI_ERR_ARG, "gguf_writer_write_data before gguf_writer_begin");
    if (w->next >= w->n_t)
        return vkphi_fail(VKPHI_ERR_ARG, "%s: more tensor data than the %zu tensors declared", w->path, w->n_t);
    const struct wtensor *t = &w->t[w->next];
    if (size != t->size || (size && !data))
        return vkphi_fail(VKPHI_ERR_ARG, "%s: tensor '%.64s' needs %llu bytes of data, got %llu", w->path, t->name,
                          (unsigned long long)t->size, (unsigned long long)size);
    int rc = w_write(w, data, (size_t)size);
    if (!rc) rc = w_pad(w);
    if (!rc) w->next++;
    return rc;
}

int gguf_writer_finish(gguf_writer *w) {
    if (!w || !w->fp) return vkphi_fail(VKPHI_ERR_ARG, "gguf_writer_finish before gguf_writer_begin");
    int rc = VKPHI_OK;
    if (w->next != w->n_t)
        rc = vkphi_fail(VKPHI_ERR_ARG, "%s: only %zu of %zu tensors were written", w->path, w->next, w->n_t);
    if (fflush(w->fp) != 0 && !rc) rc = vkphi_fail(VKPHI_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    if (fclose(w->fp) != 0 && !rc) rc = vkphi_fail(VKPHI_ERR_IO, "%s: close failed: %s", w->path, strerror(errno));
    w->fp = NULL;
    return rc;
}
