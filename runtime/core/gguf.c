// SPDX-License-Identifier: MIT
// GGUF reader. It maps the file and checks the whole header before it answers
// anything: every count and length is compared with the bytes that are left,
// every size is computed with overflow checks, and every tensor must lie,
// aligned, inside the file. Values stay in the mapping; only key names, tensor
// names and scalar strings are copied (arrays of 100k strings get one table of
// offsets, not 100k allocations). The writer is in gguf_write.c.
#include "gguf.h"

#include "common.h"
#include "gguf_internal.h"
#include "quant_types.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAX_DEPTH 8 // arrays of arrays may nest this deep

const char *gguf_type_name(enum gguf_type t) {
    static const char *names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32",  "float32",
                                  "bool",  "string", "array", "uint64", "int64",  "float64"};
    return (int)t >= 0 && (int)t <= GGUF_TYPE_FLOAT64 ? names[t] : "invalid";
}

static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t le64(const uint8_t *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

// ---- name index: open addressing over NUL-terminated names ----

static uint64_t hash_name(const char *s) { // FNV-1a
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static bool index_init(struct name_index *ix, int64_t n) {
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    ix->slot = calloc(cap, sizeof *ix->slot);
    ix->mask = cap - 1;
    return ix->slot != NULL;
}

// Returns the index already holding `name`, or inserts i and returns -1.
static int64_t index_insert(struct name_index *ix, const char *name, int64_t i, const char *(*name_of)(const void *, int64_t),
                            const void *ctx) {
    for (size_t h = hash_name(name) & ix->mask;; h = (h + 1) & ix->mask) {
        if (!ix->slot[h]) {
            ix->slot[h] = i + 1;
            return -1;
        }
        if (!strcmp(name_of(ctx, ix->slot[h] - 1), name)) return ix->slot[h] - 1;
    }
}

static int64_t index_find(const struct name_index *ix, const char *name, const char *(*name_of)(const void *, int64_t),
                          const void *ctx) {
    if (!ix->slot || !name) return -1;
    for (size_t h = hash_name(name) & ix->mask; ix->slot[h]; h = (h + 1) & ix->mask)
        if (!strcmp(name_of(ctx, ix->slot[h] - 1), name)) return ix->slot[h] - 1;
    return -1;
}

// ---- the reader ----


static const char *kv_name_of(const void *ctx, int64_t i) { return ((const gguf_file *)ctx)->kv[i].key; }
static const char *tensor_name_of(const void *ctx, int64_t i) { return ((const gguf_file *)ctx)->tensors[i].name; }

struct cursor {
    gguf_file *f;
    uint64_t pos;
    char what[128]; // what is being read, for "truncated: <what> runs past the end"
};

static bool fail_format(const gguf_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool fail_format(const gguf_file *f, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    vkphi_fail(VKPHI_ERR_FORMAT, "%s: %s", f->name, msg);
    return false;
}

static bool truncated(struct cursor *c) {
    return fail_format(c->f, "truncated: %s runs past the end of the file (%zu bytes)", c->what, c->f->size);
}

static bool need(struct cursor *c, uint64_t n) { return n <= c->f->size - c->pos ? true : truncated(c); }

static bool rd_u32(struct cursor *c, uint32_t *v) {
    if (!need(c, 4)) return false;
    *v = le32(c->f->base + c->pos);
    c->pos += 4;
    return true;
}

static bool rd_u64(struct cursor *c, uint64_t *v) {
    if (!need(c, 8)) return false;
    *v = le64(c->f->base + c->pos);
    c->pos += 8;
    return true;
}

// A GGUF string: uint64 length, then that many bytes (no terminator).
static bool rd_str(struct cursor *c, uint64_t *off, uint64_t *len) {
    if (!rd_u64(c, len) || !need(c, *len)) return false;
    *off = c->pos;
    c->pos += *len;
    return true;
}

static char *copy_str(gguf_file *f, uint64_t off, uint64_t len) {
    char *s = malloc(len + 1);
    if (!s) {
        vkphi_fail(VKPHI_ERR_NOMEM, "%s: out of memory copying a %llu-byte string", f->name, (unsigned long long)len);
        return NULL;
    }
    memcpy(s, f->base + off, len);
    s[len] = 0;
    return s;
}

// Walks one value of type t (already checked valid). For a top-level array, `kv`
// receives the element type and count, and for strings the offset table.
static bool walk_value(struct cursor *c, uint32_t t, int depth, struct gguf_kv *kv) {
    if (t == GGUF_TYPE_STRING) {
        uint64_t off, len;
        return rd_str(c, &off, &len);
    }
    if (t != GGUF_TYPE_ARRAY) {
        if (!need(c, scalar_size[t])) return false;
        c->pos += scalar_size[t];
        return true;
    }
    if (depth >= GGUF_MAX_DEPTH) return fail_format(c->f, "%s nests arrays more than %d deep", c->what, GGUF_MAX_DEPTH);
    uint32_t et;
    uint64_t count;
    if (!rd_u32(c, &et)) return false;
    if (!type_valid(et)) return fail_format(c->f, "%s is an array of unknown value type %u", c->what, et);
    if (!rd_u64(c, &count)) return false;
    const uint64_t left = c->f->size - c->pos;
    // Each element takes at least: 8 bytes (string), 12 (array), its size (scalar).
    const uint64_t least = et == GGUF_TYPE_STRING ? 8 : et == GGUF_TYPE_ARRAY ? 12 : scalar_size[et];
    if (count > left / least)
        return fail_format(c->f, "truncated or corrupt: %s claims %llu elements, more than the %llu bytes left can hold", c->what,
                           (unsigned long long)count, (unsigned long long)left);
    if (kv) {
        kv->arr_type = (enum gguf_type)et;
        kv->arr_count = count;
    }
    if (et == GGUF_TYPE_STRING) {
        if (kv && count) {
            kv->str_off = malloc(count * sizeof *kv->str_off);
            if (!kv->str_off) {
                vkphi_fail(VKPHI_ERR_NOMEM, "%s: out of memory indexing %s (%llu strings)", c->f->name, c->what,
                           (unsigned long long)count);
                return false;
            }
        }
        for (uint64_t i = 0; i < count; i++) {
            uint64_t off, len;
            if (kv) kv->str_off[i] = c->pos;
            if (!rd_str(c, &off, &len)) return false;
        }
    } else if (et == GGUF_TYPE_ARRAY) {
        for (uint64_t i = 0; i < count; i++)
            if (!walk_value(c, GGUF_TYPE_ARRAY, depth + 1, NULL)) return false;
    } else {
        c->pos += count * scalar_size[et];
    }
    return true;
}

static bool parse_kv(struct cursor *c, int64_t i) {
    gguf_file *f = c->f;
    struct gguf_kv *kv = &f->kv[i];
    uint64_t off, len;
    uint32_t type;
    snprintf(c->what, sizeof c->what, "metadata key %lld", (long long)i);
    if (!rd_str(c, &off, &len)) return false;
    if (!(kv->key = copy_str(f, off, len))) return false;
    if (strlen(kv->key) != len) return fail_format(f, "metadata key %lld has a NUL byte in its name", (long long)i);
    snprintf(c->what, sizeof c->what, "metadata key %lld ('%.64s')", (long long)i, kv->key);
    if (!rd_u32(c, &type)) return false;
    if (!type_valid(type)) return fail_format(f, "metadata key '%.64s' has unknown value type %u", kv->key, type);
    kv->type = (enum gguf_type)type;
    kv->val_off = c->pos;
    if (!walk_value(c, type, 0, kv)) return false;
    kv->val_len = c->pos - kv->val_off;
    if (type == GGUF_TYPE_STRING && !(kv->str = copy_str(f, kv->val_off + 8, le64(f->base + kv->val_off)))) return false;
    if (index_insert(&f->kv_index, kv->key, i, kv_name_of, f) >= 0)
        return fail_format(f, "metadata key '%.64s' appears twice", kv->key);
    return true;
}

static bool parse_tensor_info(struct cursor *c, int64_t i) {
    gguf_file *f = c->f;
    gguf_tensor *t = &f->tensors[i];
    uint64_t off, len;
    snprintf(c->what, sizeof c->what, "tensor info %lld", (long long)i);
    if (!rd_str(c, &off, &len)) return false;
    char *name = copy_str(f, off, len);
    if (!(t->name = name)) return false;
    if (strlen(name) != len) return fail_format(f, "tensor %lld has a NUL byte in its name", (long long)i);
    snprintf(c->what, sizeof c->what, "tensor info %lld ('%.64s')", (long long)i, name);
    if (!rd_u32(c, &t->n_dims)) return false;
    if (t->n_dims < 1 || t->n_dims > 4)
        return fail_format(f, "tensor '%.64s' has %u dimensions (1 to 4 are allowed)", name, t->n_dims);
    uint64_t elems = 1;
    bool overflow = false;
    for (uint32_t d = 0; d < 4; d++) {
        t->ne[d] = 1;
        if (d < t->n_dims && !rd_u64(c, &t->ne[d])) return false;
        overflow |= t->ne[d] > (uint64_t)INT64_MAX || __builtin_mul_overflow(elems, t->ne[d], &elems) ||
                    elems > (uint64_t)INT64_MAX;
    }
    if (!rd_u32(c, &t->type) || !rd_u64(c, &t->offset)) return false;
    if (overflow) return fail_format(f, "tensor '%.64s' has dimensions whose product overflows", name);
    if (!quant_type_known(t->type)) return fail_format(f, "tensor '%.64s' has unknown type %u", name, t->type);
    const uint32_t blck = quant_block_elems(t->type);
    if (t->ne[0] % blck)
        return fail_format(f, "tensor '%.64s' has rows of %llu values, not a multiple of the %s block size %u", name,
                           (unsigned long long)t->ne[0], quant_type_name(t->type), blck);
    const uint64_t rows = t->ne[0] ? elems / t->ne[0] : 0;
    if (__builtin_mul_overflow(quant_row_bytes(t->type, t->ne[0]), rows, &t->size))
        return fail_format(f, "tensor '%.64s' is too large: its size overflows", name);
    if (index_insert(&f->tensor_index, name, i, tensor_name_of, f) >= 0)
        return fail_format(f, "tensor '%.64s' appears twice", name);
    return true;
}

static bool parse(gguf_file *f) {
    struct cursor c = {f, 0, "the header"};
    if (f->size < 4 || memcmp(f->base, "GGUF", 4))
        return fail_format(f, "not a GGUF file (%s)", f->size < 4 ? "shorter than the magic" : "bad magic");
    c.pos = 4;
    if (!rd_u32(&c, &f->version)) return false;
    if (f->version == 1) return fail_format(f, "GGUF version 1 is not supported (versions 2 and 3 are)");
    if (f->version != 2 && f->version != 3) {
        if ((f->version & 0xffff) == 0 && (f->version >> 16) != 0)
            return fail_format(f, "big-endian GGUF files are not supported");
        return fail_format(f, "unsupported GGUF version %u (versions 2 and 3 are supported)", f->version);
    }
    uint64_t n_tensors, n_kv;
    if (!rd_u64(&c, &n_tensors) || !rd_u64(&c, &n_kv)) return false;
    // A key takes at least 13 bytes (empty name, type, one byte), a tensor info 32.
    const uint64_t left = f->size - c.pos;
    if (n_kv > left / 13)
        return fail_format(f, "truncated or corrupt: the header claims %llu metadata keys, more than the %llu bytes after it can hold",
                           (unsigned long long)n_kv, (unsigned long long)left);
    if (n_tensors > left / 32)
        return fail_format(f, "truncated or corrupt: the header claims %llu tensors, more than the %llu bytes after it can hold",
                           (unsigned long long)n_tensors, (unsigned long long)left);
    f->n_kv = (int64_t)n_kv;
    f->n_tensors = (int64_t)n_tensors;
    f->kv = calloc(n_kv ? n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors || !index_init(&f->kv_index, f->n_kv) || !index_init(&f->tensor_index, f->n_tensors)) {
        vkphi_fail(VKPHI_ERR_NOMEM, "%s: out of memory for the header", f->name);
        return false;
    }
    for (int64_t i = 0; i < f->n_kv; i++)
        if (!parse_kv(&c, i)) return false;

    f->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (gguf_find_key(f, "general.alignment") >= 0) {
        if (!gguf_get_u32(f, "general.alignment", &f->alignment))
            return fail_format(f, "general.alignment is not an unsigned 32-bit integer");
        if (f->alignment == 0 || (f->alignment & (f->alignment - 1)))
            return fail_format(f, "general.alignment %u is not a power of two", f->alignment);
    }

    for (int64_t i = 0; i < f->n_tensors; i++)
        if (!parse_tensor_info(&c, i)) return false;

    // Tensor data starts at the next multiple of the alignment (pos < 2^63: no overflow).
    f->data_off = (c.pos + f->alignment - 1) / f->alignment * f->alignment;
    if (f->n_tensors == 0) return true;
    if (f->data_off > f->size)
        return fail_format(f, "truncated: the tensor data section would start at byte %llu, past the end of the file (%zu bytes)",
                           (unsigned long long)f->data_off, f->size);
    const uint64_t avail = f->size - f->data_off;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        gguf_tensor *t = &f->tensors[i];
        if (t->offset % f->alignment)
            return fail_format(f, "tensor '%.64s' has data offset %llu, not a multiple of the alignment %u", t->name,
                               (unsigned long long)t->offset, f->alignment);
        if (t->offset > avail || t->size > avail - t->offset)
            return fail_format(f, "truncated: tensor '%.64s' (%llu bytes at data offset %llu) runs past the end of the file (%zu bytes)",
                               t->name, (unsigned long long)t->size, (unsigned long long)t->offset, f->size);
        t->data = f->base + f->data_off + t->offset;
    }
    return true;
}

static gguf_file *file_new(const char *name) {
    gguf_file *f = calloc(1, sizeof *f);
    if (f) f->name = strdup(name ? name : "(memory)");
    if (!f || !f->name) {
        free(f);
        vkphi_fail(VKPHI_ERR_NOMEM, "out of memory opening %s", name ? name : "a GGUF file");
        return NULL;
    }
    return f;
}

gguf_file *gguf_open_memory(const void *data, size_t size, const char *name) {
    if (!data && size) {
        vkphi_fail(VKPHI_ERR_ARG, "gguf_open_memory: no data");
        return NULL;
    }
    gguf_file *f = file_new(name);
    if (!f) return NULL;
    f->base = data;
    f->size = size;
    if (!parse(f)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

gguf_file *gguf_open(const char *path) {
    if (!path) {
        vkphi_fail(VKPHI_ERR_ARG, "gguf_open: no path");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vkphi_fail(VKPHI_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        vkphi_fail(VKPHI_ERR_IO, "%s: not a regular file", path);
        close(fd);
        return NULL;
    }
    gguf_file *f = file_new(path);
    if (!f) {
        close(fd);
        return NULL;
    }
    f->size = (size_t)st.st_size;
    if (f->size) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            vkphi_fail(VKPHI_ERR_IO, "%s: cannot map %zu bytes: %s", path, f->size, strerror(errno));
            close(fd);
            gguf_close(f);
            return NULL;
        }
        f->base = p;
        f->mapped = true;
    }
    close(fd); // the mapping stays valid
    if (!parse(f)) {
        gguf_close(f);
        return NULL;
    }
    return f;
}

void gguf_close(gguf_file *f) {
    if (!f) return;
    if (f->kv) {
        for (int64_t i = 0; i < f->n_kv; i++) {
            free(f->kv[i].key);
            free(f->kv[i].str_off);
            free(f->kv[i].str);
        }
    }
    if (f->tensors)
        for (int64_t i = 0; i < f->n_tensors; i++) free((char *)f->tensors[i].name);
    free(f->kv);
    free(f->tensors);
    free(f->kv_index.slot);
    free(f->tensor_index.slot);
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f->name);
    free(f);
}

const char *gguf_name(const gguf_file *f) { return f->name; }
uint32_t gguf_version(const gguf_file *f) { return f->version; }
uint64_t gguf_file_size(const gguf_file *f) { return f->size; }
uint32_t gguf_alignment(const gguf_file *f) { return f->alignment; }
uint64_t gguf_data_offset(const gguf_file *f) { return f->data_off; }

int64_t gguf_find_key(const gguf_file *f, const char *key) { return index_find(&f->kv_index, key, kv_name_of, f); }
int64_t gguf_n_kv(const gguf_file *f) { return f->n_kv; }
const char *gguf_key_name(const gguf_file *f, int64_t i) { return i >= 0 && i < f->n_kv ? f->kv[i].key : NULL; }
enum gguf_type gguf_key_type(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_kv ? f->kv[i].type : GGUF_TYPE_INVALID;
}

static const struct gguf_kv *find_kv(const gguf_file *f, const char *key) {
    int64_t i = gguf_find_key(f, key);
    return i < 0 ? NULL : &f->kv[i];
}

// Integer value as sign and magnitude, so every conversion is one range check.
static bool kv_integer(const gguf_file *f, const struct gguf_kv *kv, bool *neg, uint64_t *mag) {
    if (!kv) return false;
    const uint8_t *p = f->base + kv->val_off;
    int64_t s;
    switch (kv->type) {
    case GGUF_TYPE_UINT8: *neg = false, *mag = p[0]; return true;
    case GGUF_TYPE_UINT16: *neg = false, *mag = le16(p); return true;
    case GGUF_TYPE_UINT32: *neg = false, *mag = le32(p); return true;
    case GGUF_TYPE_UINT64: *neg = false, *mag = le64(p); return true;
    case GGUF_TYPE_INT8: s = (int8_t)p[0]; break;
    case GGUF_TYPE_INT16: s = (int16_t)le16(p); break;
    case GGUF_TYPE_INT32: s = (int32_t)le32(p); break;
    case GGUF_TYPE_INT64: s = (int64_t)le64(p); break;
    default: return false;
    }
    *neg = s < 0;
    *mag = s < 0 ? (uint64_t)(-(s + 1)) + 1 : (uint64_t)s;
    return true;
}

bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out) {
    bool neg;
    uint64_t m;
    if (!kv_integer(f, find_kv(f, key), &neg, &m) || neg || m > UINT32_MAX) return false;
    *out = (uint32_t)m;
    return true;
}

bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out) {
    bool neg;
    uint64_t m;
    if (!kv_integer(f, find_kv(f, key), &neg, &m) || neg) return false;
    *out = m;
    return true;
}

bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out) {
    bool neg;
    uint64_t m;
    if (!kv_integer(f, find_kv(f, key), &neg, &m) || m > (neg ? 0x80000000ull : 0x7fffffffull)) return false;
    *out = neg ? (int32_t)(-(int64_t)(m - 1) - 1) : (int32_t)m;
    return true;
}

bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out) {
    bool neg;
    uint64_t m;
    if (!kv_integer(f, find_kv(f, key), &neg, &m) || m > (neg ? 0x8000000000000000ull : 0x7fffffffffffffffull))
        return false;
    *out = neg ? -(int64_t)(m - 1) - 1 : (int64_t)m;
    return true;
}

bool gguf_get_f64(const gguf_file *f, const char *key, double *out) {
    const struct gguf_kv *kv = find_kv(f, key);
    if (!kv) return false;
    const uint8_t *p = f->base + kv->val_off;
    if (kv->type == GGUF_TYPE_FLOAT32) {
        uint32_t b = le32(p);
        float v;
        memcpy(&v, &b, 4);
        *out = v;
        return true;
    }
    if (kv->type == GGUF_TYPE_FLOAT64) {
        uint64_t b = le64(p);
        memcpy(out, &b, 8);
        return true;
    }
    bool neg;
    uint64_t m;
    if (!kv_integer(f, kv, &neg, &m) || m > (1ull << 53)) return false; // beyond 2^53 a double may round
    *out = neg ? -(double)m : (double)m;
    return true;
}

bool gguf_get_f32(const gguf_file *f, const char *key, float *out) {
    double v;
    if (!gguf_get_f64(f, key, &v)) return false;
    if (isfinite(v) && (fabs(v) > FLT_MAX || (double)(float)v != v)) return false; // would round
    *out = (float)v;
    return true;
}

bool gguf_get_bool(const gguf_file *f, const char *key, bool *out) {
    const struct gguf_kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_BOOL) return false;
    *out = f->base[kv->val_off] != 0;
    return true;
}

bool gguf_get_str(const gguf_file *f, const char *key, const char **out) {
    const struct gguf_kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_STRING) return false;
    *out = kv->str;
    return true;
}

bool gguf_get_arr(const gguf_file *f, const char *key, enum gguf_type *elem_type, uint64_t *count) {
    const struct gguf_kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY) return false;
    if (elem_type) *elem_type = kv->arr_type;
    if (count) *count = kv->arr_count;
    return true;
}

const char *gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i, uint64_t *len) {
    const struct gguf_kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->arr_type != GGUF_TYPE_STRING || i >= kv->arr_count) return NULL;
    const uint8_t *p = f->base + kv->str_off[i];
    if (len) *len = le64(p);
    return (const char *)p + 8;
}

const void *gguf_get_arr_data(const gguf_file *f, const char *key) {
    const struct gguf_kv *kv = find_kv(f, key);
    if (!kv || kv->type != GGUF_TYPE_ARRAY || kv->arr_type == GGUF_TYPE_STRING || kv->arr_type == GGUF_TYPE_ARRAY)
        return NULL;
    return f->base + kv->val_off + 12; // after the element type and the count
}

int64_t gguf_n_tensors(const gguf_file *f) { return f->n_tensors; }
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i) {
    return i >= 0 && i < f->n_tensors ? &f->tensors[i] : NULL;
}
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name) {
    int64_t i = index_find(&f->tensor_index, name, tensor_name_of, f);
    return i < 0 ? NULL : &f->tensors[i];
}
