// SPDX-License-Identifier: MIT
// GGUF reader and writer. The reader maps the file and checks the whole header
// before it answers anything: every count and length is compared with the bytes
// that are left, every size is computed with overflow checks, and every tensor
// must lie, aligned, inside the file. Values stay in the mapping; only key names,
// tensor names and scalar strings are copied (arrays of 100k strings get one
// table of offsets, not 100k allocations).
#include "gguf.h"

#include "common.h"
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

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host (numeric arrays are copied as they are)"
#endif

#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DEPTH 8 // arrays of arrays may nest this deep

static const uint8_t scalar_size[] = {
    [GGUF_TYPE_UINT8] = 1, [GGUF_TYPE_INT8] = 1,   [GGUF_TYPE_UINT16] = 2,  [GGUF_TYPE_INT16] = 2,
    [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4, [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
    [GGUF_TYPE_STRING] = 0, [GGUF_TYPE_ARRAY] = 0, [GGUF_TYPE_UINT64] = 8,  [GGUF_TYPE_INT64] = 8,
    [GGUF_TYPE_FLOAT64] = 8,
};

static bool type_valid(uint32_t t) { return t <= GGUF_TYPE_FLOAT64; }

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

struct name_index {
    int64_t *slot; // entry index + 1; 0 = empty
    size_t mask;
};

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

struct gguf_kv {
    char *key;            // NUL-terminated copy
    enum gguf_type type;
    uint64_t val_off;     // file offset of the value (just after its type)
    uint64_t val_len;     // bytes of the value, as stored
    enum gguf_type arr_type;
    uint64_t arr_count;
    uint64_t *str_off;    // string arrays: file offset of each element's length field
    char *str;            // strings: NUL-terminated copy
};

struct gguf_file {
    char *name;
    const uint8_t *base;
    size_t size;
    bool mapped;
    uint32_t version, alignment;
    uint64_t data_off;
    int64_t n_kv, n_tensors;
    struct gguf_kv *kv;
    gguf_tensor *tensors;
    struct name_index kv_index, tensor_index;
};

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

// ---- the writer ----

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
