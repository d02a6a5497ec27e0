// SPDX-License-Identifier: MIT
// Every compute pipeline vkphi uses, indexed by enum and created once per device
// (on first use, through the on-disk pipeline cache). Tuning per vendor happens
// here, through specialization constants.
#pragma once
#include "buffer.h"
#include "pipeline.h"

enum kernel_id {
    KERNEL_RMSNORM,
    KERNEL_ROPE,
    KERNEL_SOFTMAX,
    KERNEL_SWIGLU,
    KERNEL_ADD,
    KERNEL_MATVEC_F32,
    KERNEL_MATVEC_F16,
    KERNEL_MATVEC_BF16,
    KERNEL_MATMUL_F32,
    KERNEL_MATMUL_F16,
    KERNEL_MATMUL_BF16,
    // Quantized weights (shaders/matvec_q.comp, matmul_q.comp), in this type order
    // in each family: Q8_0, Q4_0, Q3_K, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K, IQ4_NL, IQ4_XS, then the
    // codebook types IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M.
    KERNEL_MATVEC_Q8_0, KERNEL_MATVEC_Q4_0, KERNEL_MATVEC_Q3_K, KERNEL_MATVEC_Q4_K, KERNEL_MATVEC_Q5_K, KERNEL_MATVEC_Q6_K,
    KERNEL_MATVEC_Q4_1, KERNEL_MATVEC_Q5_0, KERNEL_MATVEC_Q5_1, KERNEL_MATVEC_Q2_K, KERNEL_MATVEC_IQ4_NL, KERNEL_MATVEC_IQ4_XS,
    KERNEL_MATVEC_IQ3_XXS, KERNEL_MATVEC_IQ3_S, KERNEL_MATVEC_IQ2_XXS, KERNEL_MATVEC_IQ2_XS, KERNEL_MATVEC_IQ2_S,
    KERNEL_MATVEC_IQ1_S, KERNEL_MATVEC_IQ1_M,
    KERNEL_MATMUL_Q8_0, KERNEL_MATMUL_Q4_0, KERNEL_MATMUL_Q3_K, KERNEL_MATMUL_Q4_K, KERNEL_MATMUL_Q5_K, KERNEL_MATMUL_Q6_K,
    KERNEL_MATMUL_Q4_1, KERNEL_MATMUL_Q5_0, KERNEL_MATMUL_Q5_1, KERNEL_MATMUL_Q2_K, KERNEL_MATMUL_IQ4_NL, KERNEL_MATMUL_IQ4_XS,
    KERNEL_MATMUL_IQ3_XXS, KERNEL_MATMUL_IQ3_S, KERNEL_MATMUL_IQ2_XXS, KERNEL_MATMUL_IQ2_XS, KERNEL_MATMUL_IQ2_S,
    KERNEL_MATMUL_IQ1_S, KERNEL_MATMUL_IQ1_M,
    // The matrix-vector kernels for a few tokens at once (short prompts): F32, F16,
    // BF16, then the quantized types in the order above.
    KERNEL_MATVEC_FEW_F32, KERNEL_MATVEC_FEW_F16, KERNEL_MATVEC_FEW_BF16,
    KERNEL_MATVEC_FEW_Q8_0, KERNEL_MATVEC_FEW_Q4_0, KERNEL_MATVEC_FEW_Q3_K,
    KERNEL_MATVEC_FEW_Q4_K, KERNEL_MATVEC_FEW_Q5_K, KERNEL_MATVEC_FEW_Q6_K,
    KERNEL_MATVEC_FEW_Q4_1, KERNEL_MATVEC_FEW_Q5_0, KERNEL_MATVEC_FEW_Q5_1,
    KERNEL_MATVEC_FEW_Q2_K, KERNEL_MATVEC_FEW_IQ4_NL, KERNEL_MATVEC_FEW_IQ4_XS,
    KERNEL_MATVEC_FEW_IQ3_XXS, KERNEL_MATVEC_FEW_IQ3_S, KERNEL_MATVEC_FEW_IQ2_XXS, KERNEL_MATVEC_FEW_IQ2_XS,
    KERNEL_MATVEC_FEW_IQ2_S, KERNEL_MATVEC_FEW_IQ1_S, KERNEL_MATVEC_FEW_IQ1_M,
    // Row lookup with dequantization (shaders/get_rows.comp): F32, F16, BF16, then as above.
    KERNEL_GET_ROWS_F32, KERNEL_GET_ROWS_F16, KERNEL_GET_ROWS_BF16,
    KERNEL_GET_ROWS_Q8_0, KERNEL_GET_ROWS_Q4_0, KERNEL_GET_ROWS_Q3_K, KERNEL_GET_ROWS_Q4_K, KERNEL_GET_ROWS_Q5_K, KERNEL_GET_ROWS_Q6_K,
    KERNEL_GET_ROWS_Q4_1, KERNEL_GET_ROWS_Q5_0, KERNEL_GET_ROWS_Q5_1, KERNEL_GET_ROWS_Q2_K, KERNEL_GET_ROWS_IQ4_NL, KERNEL_GET_ROWS_IQ4_XS,
    KERNEL_GET_ROWS_IQ3_XXS, KERNEL_GET_ROWS_IQ3_S, KERNEL_GET_ROWS_IQ2_XXS, KERNEL_GET_ROWS_IQ2_XS, KERNEL_GET_ROWS_IQ2_S,
    KERNEL_GET_ROWS_IQ1_S, KERNEL_GET_ROWS_IQ1_M,
    KERNEL_KV_STORE_F16,
    KERNEL_KV_STORE_Q8,
    KERNEL_ATTN_DECODE_F16,
    KERNEL_ATTN_DECODE_Q8,
    KERNEL_ATTN_COMBINE,
    KERNEL_ATTN_PREFILL_F16,
    KERNEL_ATTN_PREFILL_Q8,
    KERNEL_COUNT
};

// Most tokens the KERNEL_MATVEC_FEW_* kernels take in one dispatch.
#define KERNEL_FEW_TOKENS 8

typedef struct kernels kernels;

kernels *kernels_create(device *d);
void kernels_destroy(kernels *k); // also saves the pipeline cache
// The pipeline for id, created on first use; NULL (with the error set) on failure.
const pipeline *kernels_get(kernels *k, enum kernel_id id);
// The matrix-matrix kernel id (a KERNEL_MATMUL_*) with a tile that fits n_tokens:
// up to 16 and up to 32 tokens get tiles of 16 and 32 tokens, so a short prompt does
// not pay for a 64-token tile. Every variant computes each output identically
// (common/matmul_tile.glsl), so results do not depend on the choice.
const pipeline *kernels_get_matmul(kernels *k, enum kernel_id id, uint32_t n_tokens);
// True when the device has the shared memory and workgroup size the kernel needs
// (pipeline creation refuses it otherwise).
bool kernels_fit(const kernels *k, enum kernel_id id);
device *kernels_device(const kernels *k);
// The codebook grid that the kernels of an IQ type (quant_iq_type) bind as their
// fourth buffer, uploaded on first use.
int kernels_iq_grid(kernels *k, uint32_t type, buf_view *out);
