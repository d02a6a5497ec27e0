// SPDX-License-Identifier: MIT
// The device layout of quantized weights. The file keeps GGUF's blocks (18, 34,
// 110, 210 ... bytes, so most start off any 16-byte boundary, their scales f16);
// on upload each row is repacked into tiles of G blocks (1, 2 or 4 by type) whose
// f16 block scales (d, and dmin / m where the type has one) become f32 and whose
// remaining bytes are regrouped so every quant the kernels read is a whole,
// aligned 16-byte word. A tile's size is a multiple of 16 bytes and a row is a
// whole number of tiles (the last one holding only the blocks left). The
// shaders mirror every layout (shaders/common/quant_<type>.glsl: QG, QH, QS, QT and the
// readers); the CPU reference and vkphi quantize keep GGUF's blocks. F32, F16,
// BF16, Q4_K and Q5_K (144- and 176-byte blocks, already whole words) keep their
// file layout. No Vulkan here.
#pragma once
#include <stdint.h>

// Device bytes of one row of n values of `type` (a ggml type number); the file's
// row size for the types that are not repacked; 0 when quant_row_bytes is 0.
uint64_t repack_row_bytes(uint32_t type, uint64_t n);
// Device bytes of a whole tensor of `rows` rows of n values; 0 on overflow.
uint64_t repack_tensor_bytes(uint32_t type, uint64_t n, uint64_t rows);
// Writes `rows` rows of n values from the file's layout (src, quant_row_bytes
// apart) into the device layout (dst, repack_row_bytes apart). n must be a
// multiple of the type's block.
void repack_rows(uint32_t type, const void *src, void *dst, uint64_t n, uint64_t rows);
