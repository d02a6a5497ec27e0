// SPDX-License-Identifier: MIT
// Reading quantized weights in their device layout (runtime/core/repack.h): the load
// repacks each row of GGUF blocks into tiles of QG blocks, QT bytes each (a
// multiple of 16), whose block scales are f32 and whose quants sit at 16-byte
// boundaries. So the quants are read as whole, aligned uvec4s, and a scale or a
// small field as one aligned word of one; no 8- or 16-bit storage feature is
// needed, and no f16 scale is ever decoded on the GPU. Offsets are in bytes from
// the start of the bound window (a whole number of rows, rows a whole number of
// 16-byte words).
layout(binding = 0) readonly buffer Wq4 { uvec4 wq4[]; };

// The 16 bytes at o (a multiple of 16).
uvec4 ld16(uint o) { return wq4[o >> 4]; }
// The word at o (a multiple of 4), and fields of it.
uint ld32(uint o) { return wq4[o >> 4][(o >> 2) & 3u]; }
float ld_f32(uint o) { return uintBitsToFloat(ld32(o)); }
uint ld_u16(uint o) { return (ld32(o & ~3u) >> ((o & 2u) * 8u)) & 0xffffu; }
uint ld_u8(uint o) { return bitfieldExtract(ld32(o & ~3u), int(o & 3u) * 8, 8); }
int ld_i8(uint o) { return bitfieldExtract(int(ld32(o & ~3u)), int(o & 3u) * 8, 8); }

// A block handle (q_blk) is its tile's byte offset plus its place in the tile
// (tiles start on 16-byte boundaries, QG <= 16).
uint q_tile(uint blk) { return blk & ~15u; }
uint q_lane(uint blk) { return blk & 15u; }

// The four bytes of w as floats minus an offset, exactly: 2^23 + b holds b in its
// mantissa, so an OR and a subtraction replace four int-to-float conversions
// (quarter-rate on many GPUs). bias = 2^23 + offset.
const float Q_MAGIC = 8388608.0;
vec4 u8x4(uint w, float bias) {
    uvec4 b = (uvec4(w) >> uvec4(0u, 8u, 16u, 24u)) & 0xffu;
    return uintBitsToFloat(b | 0x4b000000u) - bias;
}
