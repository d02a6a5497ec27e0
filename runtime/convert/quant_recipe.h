// SPDX-License-Identifier: MIT
// Quantization mixes by name ("Q4_K_M", "Q8_0", "F16", ...): which ggml type each
// tensor of a Phi-3-family model gets, following the per-tensor rules these names
// mean in the reference quantizer (llama.cpp's llama-quantize, with or without an
// importance matrix). Shared by `vkphi mkmodel` and `vkphi quantize`. No Vulkan.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define QUANT_RECIPE_UNKNOWN UINT32_MAX // what quant_recipe_type answers for an unknown recipe

// Whether `recipe` names a mix we know (case-insensitive).
bool quant_recipe_known(const char *recipe);
// The known names, comma-separated, for help texts and error messages.
const char *quant_recipe_names(void);
// The canonical spelling of a known recipe ("q4_k_m" -> "Q4_K_M"); NULL if unknown.
const char *quant_recipe_canonical(const char *recipe);
// general.file_type for a file made with this recipe (llama.cpp's llama_ftype
// numbering: 1 F16, 2 Q4_0, 7 Q8_0, 15 Q4_K_M, ...); QUANT_RECIPE_UNKNOWN if unknown.
uint32_t quant_recipe_file_type(const char *recipe);
// The recipe name of a general.file_type value; NULL when it is none of ours.
const char *quant_recipe_from_file_type(uint32_t file_type);

// The ggml type (enum ggml_type) of one tensor under `recipe`:
//   tensor_name  GGUF name, e.g. "blk.7.ffn_down.weight", "output.weight"
//   layer        the block index of the tensor (-1 for tensors outside the blocks)
//   n_layer      number of blocks
//   n_in         row length (ne0): a K-quant needs a multiple of 256, the others 32
//   n_gqa        query heads per KV head (Phi-4: 40 / 10 = 4; Phi-4-mini: 3)
//   imatrix      whether the weights are quantized with an importance matrix
// 1-D tensors (norms, rope factors) are never quantized: for names the recipe knows
// to be vectors ("*_norm.weight", "*rope_factors*") this returns GGML_TYPE_F32, and
// callers converting a file should keep any 1-D tensor as it is.
// Rules (ggml's reference quantizer, Phi-3 family):
//   - F32/F16/BF16: every matrix in that type.
//   - output.weight: Q6_K unless the mix is Q8_0 (then Q8_0); Q8_0 when ne0 is not
//     a multiple of the mix's block size.
//   - attn_v, and the fused attn_qkv which the reference treats as an attn_v:
//     Q4_K_M/Q5_K_M -> Q6_K on "more bits" layers (the first and last eighth and
//     every third layer between), Q3_K_M -> Q5_K on layers 0-1 else Q4_K,
//     Q3_K_L -> Q5_K, Q4_K_S -> Q5_K on layers 0-3, Q2_K -> Q4_K when n_gqa >= 4
//     else Q3_K, IQ4_NL/IQ4_XS -> Q5_K when n_gqa >= 4.
//   - ffn_down: Q4_K_M/Q5_K_M -> Q6_K on "more bits" layers, Q3_K_M -> Q5_K on the
//     first sixteenth else Q4_K, Q3_K_L -> Q5_K, Q4_K_S -> Q5_K on the first eighth,
//     Q2_K -> Q3_K, IQ4_NL/IQ4_XS without an importance matrix -> Q5_K on the first
//     eighth, Q4_0/Q5_0 with one -> Q4_1/Q5_1 on the first eighth.
//   - attn_output: Q3_K_M -> Q4_K, Q3_K_L -> Q5_K, Q2_K -> Q3_K.
//   - everything else (token_embd, the fused ffn_up, ffn_gate, attn_q/k): the mix's
//     base type.
// Fallback when n_in does not fit the chosen type's block, as the reference does:
// Q2_K and Q3_K -> Q4_0, Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0, IQ4_XS ->
// IQ4_NL; F16 when n_in is not even a multiple of 32.
uint32_t quant_recipe_type(const char *recipe, const char *tensor_name, int layer, int n_layer, uint32_t n_in,
                           uint32_t n_gqa, bool imatrix);
