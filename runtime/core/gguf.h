// SPDX-License-Identifier: MIT
// GGUF files (versions 2 and 3, little-endian): a checked reader over mmap and a
// streaming writer. No Vulkan here: this module builds and tests anywhere.
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "quant_types.h"

enum gguf_type { // metadata value types, as numbered in the GGUF specification
    GGUF_TYPE_UINT8 = 0, GGUF_TYPE_INT8 = 1, GGUF_TYPE_UINT16 = 2, GGUF_TYPE_INT16 = 3,
    GGUF_TYPE_UINT32 = 4, GGUF_TYPE_INT32 = 5, GGUF_TYPE_FLOAT32 = 6, GGUF_TYPE_BOOL = 7,
    GGUF_TYPE_STRING = 8, GGUF_TYPE_ARRAY = 9, GGUF_TYPE_UINT64 = 10, GGUF_TYPE_INT64 = 11,
    GGUF_TYPE_FLOAT64 = 12,
    GGUF_TYPE_INVALID = -1, // what gguf_key_type answers for an index out of range
};

typedef struct gguf_file gguf_file;

typedef struct gguf_tensor {
    const char *name;  // NUL-terminated copy
    uint32_t type;     // enum ggml_type: always one ggml defines (vkphi may not run it: quant_type_supported)
    uint32_t n_dims;   // 1..4
    uint64_t ne[4];    // ne[0] innermost (row length); unused dims are 1
    uint64_t offset;   // from the start of the tensor data section
    uint64_t size;     // bytes
    const void *data;  // points into the mapping; never copied
} gguf_tensor;

// Opens and validates the whole header: every count, length, offset and size is
// checked against the file size and against overflow; tensors need 1..4 dims,
// rows of whole blocks, a type number ggml defines (types vkphi does not run are
// accepted: model_check refuses them) and aligned data inside the file. On failure
// returns NULL and vkphi_last_error() holds one sentence naming the file and the
// problem, e.g. "m.gguf: truncated: tensor info 12 runs past the end of the file
// (4096 bytes)".
gguf_file *gguf_open(const char *path);
// The same over bytes the caller owns and keeps alive until gguf_close; `name`
// stands for the file in error messages. Tensor data pointers point into `data`
// (aligned only as far as `data` is).
gguf_file *gguf_open_memory(const void *data, size_t size, const char *name);
void gguf_close(gguf_file *f);

const char *gguf_name(const gguf_file *f); // the path (or name) given at open
const char *gguf_type_name(enum gguf_type t); // "uint32", "string", "array", ...; "invalid"

uint32_t gguf_version(const gguf_file *f);
uint64_t gguf_file_size(const gguf_file *f);
uint32_t gguf_alignment(const gguf_file *f);
uint64_t gguf_data_offset(const gguf_file *f); // file offset of the tensor data section

// Metadata. Keys are looked up by exact name; -1 when absent.
int64_t gguf_find_key(const gguf_file *f, const char *key);
int64_t gguf_n_kv(const gguf_file *f);
const char *gguf_key_name(const gguf_file *f, int64_t i);
enum gguf_type gguf_key_type(const gguf_file *f, int64_t i);

// Typed getters: return true and store the value when the key exists and its value
// converts exactly: an integer of any width or signedness whose value fits the
// asked type; for the float getters also float32, float64 and integers that the
// float type holds exactly. Booleans and strings only from their own type.
// Strings point into a NUL-terminated copy owned by the file.
bool gguf_get_u32(const gguf_file *f, const char *key, uint32_t *out);
bool gguf_get_u64(const gguf_file *f, const char *key, uint64_t *out);
bool gguf_get_i32(const gguf_file *f, const char *key, int32_t *out);
bool gguf_get_i64(const gguf_file *f, const char *key, int64_t *out);
bool gguf_get_f32(const gguf_file *f, const char *key, float *out);
bool gguf_get_f64(const gguf_file *f, const char *key, double *out);
bool gguf_get_bool(const gguf_file *f, const char *key, bool *out);
bool gguf_get_str(const gguf_file *f, const char *key, const char **out);
// Arrays: element type and count; elements by index. Strings come back with their
// length (they may hold any bytes, NUL included, and are not NUL-terminated):
// they point into the mapping. Arrays of arrays are validated and copied by
// gguf_writer_copy_kv, but their elements are not exposed one by one.
bool gguf_get_arr(const gguf_file *f, const char *key, enum gguf_type *elem_type, uint64_t *count);
const char *gguf_get_arr_str(const gguf_file *f, const char *key, uint64_t i, uint64_t *len);
// Numeric arrays: the raw little-endian elements (may be unaligned: read them
// with memcpy). NULL for string arrays, arrays of arrays, or no such key.
const void *gguf_get_arr_data(const gguf_file *f, const char *key);

// Tensors.
int64_t gguf_n_tensors(const gguf_file *f);
const gguf_tensor *gguf_tensor_at(const gguf_file *f, int64_t i);
const gguf_tensor *gguf_find_tensor(const gguf_file *f, const char *name); // NULL if absent

// ---- writer ----
// Streams a file: metadata and tensor infos first, then the data of each tensor in
// the order they were declared. Nothing is held in memory but the header.
// Setting a key that is already set replaces its value in place. The setters
// cannot fail visibly: a bad argument or lack of memory is remembered and
// reported by gguf_writer_begin. Tensor data is aligned to general.alignment when
// the caller set it (as a uint32 power of two), else to 32; the key itself is
// written only when the caller set or copied it.
typedef struct gguf_writer gguf_writer;
gguf_writer *gguf_writer_create(void);
void gguf_writer_free(gguf_writer *w);
void gguf_writer_set_u32(gguf_writer *w, const char *key, uint32_t v);
void gguf_writer_set_i32(gguf_writer *w, const char *key, int32_t v);
void gguf_writer_set_f32(gguf_writer *w, const char *key, float v);
void gguf_writer_set_bool(gguf_writer *w, const char *key, bool v);
void gguf_writer_set_str(gguf_writer *w, const char *key, const char *v);
void gguf_writer_set_arr(gguf_writer *w, const char *key, enum gguf_type elem_type, const void *data, uint64_t count);
// lens may be NULL: the strings are then NUL-terminated.
void gguf_writer_set_arr_str(gguf_writer *w, const char *key, const char *const *strs, const uint64_t *lens, uint64_t count);
// Copies key i of src (any type, arrays included) into w.
void gguf_writer_copy_kv(gguf_writer *w, const gguf_file *src, int64_t i);
void gguf_writer_add_tensor(gguf_writer *w, const char *name, enum ggml_type type, uint32_t n_dims, const uint64_t *ne);
// Writes the header to path; then call gguf_writer_write_data once per tensor, in order.
int gguf_writer_begin(gguf_writer *w, const char *path);
int gguf_writer_write_data(gguf_writer *w, const void *data, uint64_t size);
int gguf_writer_finish(gguf_writer *w); // pads, closes; returns 0 or an error code
