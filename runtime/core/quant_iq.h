// SPDX-License-Identifier: MIT
// CPU dequantization of the codebook (IQ) formats; runtime/core/quant.c dispatches here.
// Every block is 256 values in 8 sub-blocks of 32, each of 4 octets (8 values)
// that take 8 magnitudes (IQ2) or two times 4 (IQ3) from a fixed grid
// (runtime/core/quant_iq_tables.h) and 8 signs, under a sub-block scale:
//   IQ3_XXS  98 bytes: f16 d, qs[64] (grid indices, 2 per octet), 8 x u32: signs
//                      7 bits per octet (bits 7l..7l+6), scale s in bits 28..31;
//                      value = d (2s+1)/4 * grid * sign
//   IQ3_S   110 bytes: f16 d, qs[64] (index bits 0..7), qh[8] (bit 8: sub-block
//                      ib, index k of 8 at bit k of qh[ib]), signs[32] (8 per
//                      octet), scales[4] (nibble ib%2 of byte ib/2);
//                      value = d (2s+1) * grid * sign
//   IQ2_XXS  66 bytes: f16 d, 8 x (4 index bytes, u32 of 4 x 7 sign bits and the
//                      scale in bits 28..31); value = d (2s+1)/8 * grid * sign
//   IQ2_XS   74 bytes: f16 d, 32 x u16 (9-bit index, 7 sign bits), scales[8]
//                      (octets 0,1 low nibble, 2,3 high); value as IQ2_XXS
//   IQ2_S    82 bytes: f16 d, qs[32] (index bits 0..7), signs[32], qh[8] (bits
//                      8..9 of octet l at bits 2l..2l+1), scales[8] as IQ2_XS
//   IQ1_S    50 bytes: f16 d, qs[32] (index bits 0..7), 8 x u16: index bits 8..10
//                      of octet l at bits 3l.., scale s in bits 12..14, bit 15 the
//                      sign of delta; value = d (2s+1) * (grid + delta), delta =
//                      +-1/8, grid values in -1..1
//   IQ1_M    56 bytes: qs[32] (index bits 0..7), qh[16]: octet l of sub-block ib
//                      in the nibble l%2 of qh[2ib + l/2], index bits 8..10 in its
//                      low 3 bits and the sign of delta in its top bit; 4 x u16 of
//                      3-bit scales (sub-block ib: word ib/2 at bit 6(ib%2) for
//                      octets 0,1, 3 bits higher for octets 2,3) whose top nibbles
//                      form the block's f16 d; value = d (2s+1) * (grid + delta)
// The 7-bit sign fields stand for 8 signs with an even count of minus signs.
#pragma once
#include <stdbool.h>
#include <stdint.h>

// True for the seven codebook types above.
bool quant_iq_type(uint32_t type);
// nb blocks of `type` at b into y (256 values each); the type must be one of the seven.
void quant_iq_dequantize(uint32_t type, const uint8_t *b, float *y, uint64_t nb);
// The grid `type` decodes with (runtime/core/quant_iq_tables.h), for upload to the GPU:
// its words and their count; NULL for any other type. IQ1_S and IQ1_M share one.
const uint32_t *quant_iq_grid(uint32_t type, uint32_t *n_words);
