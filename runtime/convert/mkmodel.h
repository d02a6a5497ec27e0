// SPDX-License-Identifier: MIT
// Phi-4-shaped GGUF files with seeded random weights: the built-in default model,
// the test models, and full-size models for the benchmark (no download needed).
#pragma once
#include <stdint.h>

typedef struct mkmodel_preset {
    const char *name;  // "phi-4", "mini", "tiny"
    uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_ctx;
    uint32_t n_vocab;  // 0: the whole tokenizer vocabulary (100352 for Phi-4's)
} mkmodel_preset;

const mkmodel_preset *mkmodel_find_preset(const char *name); // NULL if unknown
// Lists the preset names, comma-separated, for help texts.
const char *mkmodel_preset_names(void);

// Writes out_path: Phi-4's tensor names and layout, the quantization mix of
// type_name ("F16", "Q8_0", "Q4_K_M", ...: see quant_recipe.h), the tokenizer
// metadata of the embedded Phi-4 tokenizer, and seeded random weights (the same
// seed gives the same bytes, whatever the thread count). Generates and quantizes
// one tensor at a time with n_threads threads (0: all cores), so memory holds at
// most one tensor; writes to a temporary name beside out_path and renames it at the
// end, so an interrupted run never leaves a broken file. Returns 0 or an error code.
int mkmodel_write(const mkmodel_preset *p, const char *type_name, uint64_t seed, int n_threads, const char *out_path);

// The same, calling progress (may be NULL) after each tensor with the bytes of
// tensor data written so far and in all.
typedef void (*mkmodel_progress_fn)(const char *tensor, uint64_t done_bytes, uint64_t total_bytes, void *user);
int mkmodel_write_progress(const mkmodel_preset *p, const char *type_name, uint64_t seed, int n_threads,
                           const char *out_path, mkmodel_progress_fn progress, void *user);

// The same with the tokenizer metadata (every tokenizer.* key) of the GGUF file
// tokenizer_path instead of the embedded Phi-4 tokenizer (NULL: the embedded one):
// e.g. Phi-4-mini's, for a small model that tests its tokenizer and chat format.
int mkmodel_write_tokenizer(const mkmodel_preset *p, const char *type_name, uint64_t seed, int n_threads,
                            const char *tokenizer_path, const char *out_path, mkmodel_progress_fn progress, void *user);

// Bytes of tensor data a file of this preset and mix holds (0 for an unknown mix).
uint64_t mkmodel_data_bytes(const mkmodel_preset *p, const char *type_name);

// What a file of this preset and mix would ask of memory (memory_plan.h), without the
// file: model_memory_needs's numbers from the tensors mkmodel_write would write.
// type_name a mix of quant_recipe.h; or one we do not make, with the published
// file_bytes spread over the matrices by their sizes. out->layer_bytes is
// malloc'ed: free((void *)it).
struct mem_model;
int mkmodel_memory_needs(const mkmodel_preset *p, const char *type_name, double file_bytes, uint32_t n_seq,
                         uint32_t n_ubatch, struct mem_model *out);

// The Phi-4 tokenizer GGUF embedded in the binary (runtime/convert/phi4-tokenizer.gguf).
const void *mkmodel_tokenizer_gguf(uint64_t *size);

// The built-in default model: preset MKMODEL_DEFAULT_PRESET in the mix
// MKMODEL_DEFAULT_TYPE with seed 1, real tokenizer, random weights, kept at
// $XDG_CACHE_HOME/vkphi/default-<preset>-<type>-v1.gguf (~/.cache when unset).
// Generated there on first use (about 10 s on two CPU cores); *generated (may be NULL) says
// whether this call made it. Writes the path into buf. Returns 0 or an error.
#define MKMODEL_DEFAULT_PRESET "mini"
#define MKMODEL_DEFAULT_TYPE "Q4_K_M"
int mkmodel_default_path(char *buf, unsigned long len, int *generated);
