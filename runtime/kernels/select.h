// SPDX-License-Identifier: MIT
// The one place that chooses kernels. The forward pass, the labels of the
// benchmark's profile, the pipelines a model prepares while it loads and the ops
// all ask here; none of them decides on its own. A choice is a function of the
// kernel policy (kernels_policy: the device's facts, its limits and the VKPHI_*
// overrides, settled when the kernels are created), the op, the weight type, the
// token count and the alignment of the token rows.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "kernels.h"

// How a matrix product y = W x over n tokens runs.
enum matmul_path {
    MATMUL_VEC,       // the matrix-vector kernel: each weight read once for all the tokens (at most kernels_few_tokens)
    MATMUL_VEC_CHUNKS, // the matrix-vector kernel kernels_few_tokens tokens at a time: the tiles do not fit the device
    MATMUL_TILES,     // the tiled matrix-matrix kernel, f32 arithmetic
    MATMUL_TILES_F16, // the same tiles in packed f16 arithmetic
    MATMUL_COOP,      // cooperative matrices (f16 inputs, f32 sums)
};

typedef struct matmul_choice {
    enum matmul_path path;
    enum kernel_id id;  // the kernel (for MATMUL_VEC_CHUNKS the matrix-vector one)
    const char *label;  // the profile's name: "matvec Q4_K", "matmul Q4_K", "matmul Q4_K f16", "matmul Q4_K coopmat"
} matmul_choice;

// True when there are matrix kernels for this weight type (enum ggml_type).
bool kernels_matmul_supports(uint32_t type);
// The kernel for n_tokens token rows of a weight of `type`. rows_aligned: the rows
// lie a multiple of 16 bytes apart; start_aligned: the first starts on a 16-byte
// boundary (the matrix-vector kernels read rows in 16-byte words; the forward
// pass's rows are aligned). Many tokens take cooperative matrices or the tiles by
// device and type only, never by the token count (batch invariance). Fails with a
// sentence for a type without kernels.
int kernels_choose_matmul(const kernels *k, uint32_t type, uint32_t n_tokens, bool rows_aligned, bool start_aligned,
                          matmul_choice *out);
// The matrix-vector kernel for n_tokens aligned token rows, any number of them
// (MATMUL_VEC_CHUNKS past kernels_few_tokens): a decode step's products and the fused
// forms, where a token's sums must not depend on how many tokens share the step.
int kernels_choose_matvec(const kernels *k, uint32_t type, uint32_t n_tokens, matmul_choice *out);
// The kernels a model with weights of this type may run, for kernels_prepare: the
// one for a single token and the one for many; returns how many were written.
uint32_t kernels_matmul_list(const kernels *k, uint32_t type, enum kernel_id out[2]);
// What a model needs of the kernels: the weight types of its matrices
// (model_matrix_types), its KV cache's type and its head dimension.
typedef struct kernel_needs {
    bool types[GGML_TYPE_COUNT];
    bool kv_q8;
    uint32_t head_dim;
} kernel_needs;
// The kernels such a model's forward pass runs, for kernels_prepare and `vkphi
// kernels`: the elementwise and attention kernels, and those of kernels_matmul_list
// for each weight type. Writes at most KERNEL_COUNT ids; returns how many.
uint32_t kernels_model_list(const kernels *k, const kernel_needs *needs, enum kernel_id *ids);
// The prefill attention kernel over a KV cache (q8: 8-bit, else f16) for heads of
// head_dim: on cooperative matrices where the policy allows them, the head
// dimension is a multiple of 32 (at most 128) and the kernel fits the device.
enum kernel_id kernels_choose_attn_prefill(const kernels *k, bool q8, uint32_t head_dim);
