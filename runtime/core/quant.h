// SPDX-License-Identifier: MIT
// CPU block formats: sizes of every tensor type ggml defines, and dequantization /
// quantization of the types vkphi runs (F32, F16, BF16, Q8_0, Q4_0, Q3_K, Q4_K,
// Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K, IQ4_NL, IQ4_XS; the codebook types IQ3_XXS,
// IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M are dequantized only, layouts in
// quant_iq.h). Block layouts are ggml's,
// byte for byte:
//   Q4_0  32 values  18 bytes: f16 d, 16 bytes of nibbles (low = values 0..15,
//                              high = 16..31), value = (q - 8) * d
//   Q4_1  32 values  20 bytes: f16 d, f16 m, nibbles as Q4_0, value = q * d + m
//   Q5_0  32 values  22 bytes: f16 d, u32 qh (bit j = fifth bit of value j), nibbles,
//                              value = (q - 16) * d
//   Q5_1  32 values  24 bytes: f16 d, f16 m, u32 qh, nibbles, value = q * d + m
//   IQ4_NL 32 values 18 bytes: f16 d, nibbles as Q4_0, value = d * codebook[q]
//   Q2_K 256 values  84 bytes: scales[16] (4-bit scale | 4-bit min << 4), qs[64], f16 d, f16 dmin
//   IQ4_XS 256 values 136 bytes: f16 d, u16 scales_h, scales_l[4] (8 x 6-bit scales), qs[128]
//   Q8_0  32 values  34 bytes: f16 d, 32 int8, value = q * d
//   Q3_K 256 values 110 bytes: hmask[32], qs[64] (2 bits), scales[12] (16 x 6 bits), f16 d
//   Q4_K 256 values 144 bytes: f16 d, f16 dmin, scales[12] (8 x 6-bit scale + min), qs[128]
//   Q5_K 256 values 176 bytes: f16 d, f16 dmin, scales[12], qh[32], qs[128]
//   Q6_K 256 values 210 bytes: ql[128], qh[64], int8 scales[16], f16 d
// Every routine reads and writes bytes, so blocks need no alignment. No Vulkan here.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "quant_types.h"

// Row conversion. n must be a multiple of quant_block_elems(type) and the type
// supported (quantize_row refuses the codebook types); otherwise nothing is written and VKPHI_ERR_ARG / VKPHI_ERR_UNSUPPORTED
// comes back with a sentence in vkphi_last_error().
int quant_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n);
// `importance` (may be NULL) holds one non-negative weight per value of the row
// (an importance matrix column sum); with it every type but Q8_0 and the float
// types uses the weighted searches, without it they produce what ggml's reference
// quantizer does. Q4_0, Q4_1, Q5_0 and Q5_1 with importance compute their noise
// level over the whole call, so pass one matrix row per call.
int quant_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n, const float *importance);
