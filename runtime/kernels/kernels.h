// SPDX-License-Identifier: MIT
// Every compute pipeline vkphi uses, indexed by enum and created once per device,
// through the on-disk pipeline cache: those a model needs ahead, on worker threads
// while it loads (kernels_prepare), any other on first use. Tuning per vendor
// happens here, through specialization constants.
#pragma once
#include "buffer.h"
#include "pipeline.h"

enum kernel_id {
    KERNEL_RMSNORM,
    KERNEL_ROPE,
    KERNEL_SWIGLU,
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
    // The same tiles in packed f16 arithmetic (matmul_f.comp, matmul_q.comp built with
    // F16MATH): F16, BF16 (F32 weights keep f32), then the quantized types as above.
    KERNEL_MATMUL_H_F16, KERNEL_MATMUL_H_BF16,
    KERNEL_MATMUL_H_Q8_0, KERNEL_MATMUL_H_Q4_0, KERNEL_MATMUL_H_Q3_K, KERNEL_MATMUL_H_Q4_K, KERNEL_MATMUL_H_Q5_K,
    KERNEL_MATMUL_H_Q6_K, KERNEL_MATMUL_H_Q4_1, KERNEL_MATMUL_H_Q5_0, KERNEL_MATMUL_H_Q5_1, KERNEL_MATMUL_H_Q2_K,
    KERNEL_MATMUL_H_IQ4_NL, KERNEL_MATMUL_H_IQ4_XS, KERNEL_MATMUL_H_IQ3_XXS, KERNEL_MATMUL_H_IQ3_S,
    KERNEL_MATMUL_H_IQ2_XXS, KERNEL_MATMUL_H_IQ2_XS, KERNEL_MATMUL_H_IQ2_S, KERNEL_MATMUL_H_IQ1_S, KERNEL_MATMUL_H_IQ1_M,
    // Matrix-matrix products on cooperative matrices (shaders/matmul_coop.comp), where
    // the device has them: F32, F16, BF16, then the quantized types in the order above.
    KERNEL_MATMUL_COOP_F32, KERNEL_MATMUL_COOP_F16, KERNEL_MATMUL_COOP_BF16,
    KERNEL_MATMUL_COOP_Q8_0, KERNEL_MATMUL_COOP_Q4_0, KERNEL_MATMUL_COOP_Q3_K,
    KERNEL_MATMUL_COOP_Q4_K, KERNEL_MATMUL_COOP_Q5_K, KERNEL_MATMUL_COOP_Q6_K,
    KERNEL_MATMUL_COOP_Q4_1, KERNEL_MATMUL_COOP_Q5_0, KERNEL_MATMUL_COOP_Q5_1,
    KERNEL_MATMUL_COOP_Q2_K, KERNEL_MATMUL_COOP_IQ4_NL, KERNEL_MATMUL_COOP_IQ4_XS,
    KERNEL_MATMUL_COOP_IQ3_XXS, KERNEL_MATMUL_COOP_IQ3_S, KERNEL_MATMUL_COOP_IQ2_XXS, KERNEL_MATMUL_COOP_IQ2_XS,
    KERNEL_MATMUL_COOP_IQ2_S, KERNEL_MATMUL_COOP_IQ1_S, KERNEL_MATMUL_COOP_IQ1_M,
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
    // Prefill attention on cooperative matrices (shaders/attn_prefill_coop.comp).
    KERNEL_ATTN_PREFILL_COOP_F16,
    KERNEL_ATTN_PREFILL_COOP_Q8,
    KERNEL_COUNT
};

// Most tokens the matrix-vector kernels (KERNEL_MATVEC_*) take in one dispatch:
// decode batches of up to this many sequences read each weight once.
#define KERNEL_FEW_TOKENS 16

// Values of k whose products common/matmul_tile.glsl sums in f16 before adding the
// sum into its f32 accumulator (the F16MATH builds): one f32 add per 4 f16 fmas.
// Longer chunks round more: on the Phi-4-mini-shaped reference file (the least
// margin) mean KL from exact math was 5.4e-5 at 1 (f16 inputs and products only),
// 8.8e-5 at 4, 1.3e-4 at 8 and 1.9e-4 at 16; on tiny-phi4-Q4_K_M 5.3e-6 to 2.2e-5
// (VKPHI_F16MATH=1 vkphi logits --ubatch 512 on Debian 12's lavapipe).
#define MATMUL_H_CHUNK 4

typedef struct kernels kernels;

kernels *kernels_create(device *d);
void kernels_destroy(kernels *k); // also saves the pipeline cache
// The pipeline for id, created on first use; NULL (with the error set) on failure.
const pipeline *kernels_get(kernels *k, enum kernel_id id);
// The matrix-vector kernel id (KERNEL_MATVEC_*) specialized for exactly n_tokens
// tokens (1 .. KERNEL_FEW_TOKENS): no loop over unused token slots, which devices
// that run uniform branches with a mask (lavapipe) would pay for. Each token's
// sums are formed the same way at every count (batch invariance).
const pipeline *kernels_get_vec(kernels *k, enum kernel_id id, uint32_t n_tokens);
// The matrix-matrix kernel id (a KERNEL_MATMUL_*) with a tile that fits n_tokens:
// up to 16 and up to 32 tokens get tiles of 16 and 32 tokens, so a short prompt does
// not pay for a 64-token tile. Every variant computes each output identically
// (common/matmul_tile.glsl), so results do not depend on the choice.
const pipeline *kernels_get_matmul(kernels *k, enum kernel_id id, uint32_t n_tokens);
// True when the device has the shared memory and workgroup size the kernel needs
// (pipeline creation refuses it otherwise), and for the cooperative-matrix kernels
// a matrix shape they can use (device_info.coopmat).
bool kernels_fit(const kernels *k, enum kernel_id id);
device *kernels_device(const kernels *k);
// Starts creating the pipelines ids[0..n) (those not made yet that the device can
// run) on worker threads and returns; kernels_get and kernels_destroy wait for
// them. Not thread-safe itself: call from the thread that owns k.
int kernels_prepare(kernels *k, const enum kernel_id *ids, uint32_t n);
// Waits for kernels_prepare's pipelines; the first failure's error, else 0.
int kernels_wait(kernels *k);
// The codebook grid that the kernels of an IQ type (quant_iq_type) bind as their
// fourth buffer, uploaded on first use.
int kernels_iq_grid(kernels *k, uint32_t type, buf_view *out);
