// SPDX-License-Identifier: MIT
// What the GGUF reader (gguf.c) and writer (gguf_write.c) share: the sizes of the
// value types, the default alignment, and the reader's file structure, whose
// values gguf_writer_copy_kv copies as they are stored. Internal to those two
// files; gguf.h is the interface.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c and gguf_write.c assume a little-endian host (numeric arrays are copied as they are)"
#endif

#define GGUF_DEFAULT_ALIGNMENT 32

static const uint8_t scalar_size[] = {
    [GGUF_TYPE_UINT8] = 1, [GGUF_TYPE_INT8] = 1,   [GGUF_TYPE_UINT16] = 2,  [GGUF_TYPE_INT16] = 2,
    [GGUF_TYPE_UINT32] = 4, [GGUF_TYPE_INT32] = 4, [GGUF_TYPE_FLOAT32] = 4, [GGUF_TYPE_BOOL] = 1,
    [GGUF_TYPE_STRING] = 0, [GGUF_TYPE_ARRAY] = 0, [GGUF_TYPE_UINT64] = 8,  [GGUF_TYPE_INT64] = 8,
    [GGUF_TYPE_FLOAT64] = 8,
};

static inline bool type_valid(uint32_t t) { return t <= GGUF_TYPE_FLOAT64; }

// The name index of gguf.c (open addressing over NUL-terminated names).
struct name_index {
    int64_t *slot; // entry index + 1; 0 = empty
    size_t mask;
};

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
