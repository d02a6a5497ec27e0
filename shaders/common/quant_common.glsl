// SPDX-License-Identifier: MIT
// Reading ggml's quantized blocks (layouts in runtime/quant.h) from the bound
// weight window as 32-bit words, so no 8- or 16-bit storage feature is needed.
// Blocks of 18, 34, 110 and 210 bytes start on 2-byte boundaries: ld16 rebuilds
// the words that straddle two with one shift when an offset is 2 mod 4. (Q4_K and
// Q5_K blocks are 16-byte multiples and read whole uvec4s instead.) Offsets are in
// bytes from the start of the window.
layout(binding = 0) readonly buffer Wq { uint wq[]; };

uint ld_u8(uint o) { return bitfieldExtract(wq[o >> 2], int(o & 3u) * 8, 8); }
int ld_i8(uint o) { return bitfieldExtract(int(wq[o >> 2]), int(o & 3u) * 8, 8); }
// An f16 at an even offset (block scales: decoded by integer arithmetic, so a
// subnormal scale is never flushed; common/common.glsl).
float ld_f16(uint o) { return f16_to_float(wq[o >> 2] >> ((o & 2u) * 8u)); }
// An f16 given as its 16 bits (IQ1_M assembles its d from four nibbles); converts
// exactly as ld_f16 does.
float f16_from_bits(uint h) { return f16_to_float(h); }
// Sixteen bytes at an even offset: four loads, or five and a shift.
uvec4 ld16(uint o) {
    uint w = o >> 2;
    uvec4 a = uvec4(wq[w], wq[w + 1u], wq[w + 2u], wq[w + 3u]);
    if ((o & 2u) == 0u) return a;
    return (a >> 16) | (uvec4(a.yzw, wq[w + 4u]) << 16);
}

// The four bytes of w as floats minus an offset, exactly: 2^23 + b holds b in its
// mantissa, so an OR and a subtraction replace four int-to-float conversions
// (quarter-rate on many GPUs). bias = 2^23 + offset.
const float Q_MAGIC = 8388608.0;
vec4 u8x4(uint w, float bias) {
    uvec4 b = (uvec4(w) >> uvec4(0u, 8u, 16u, 24u)) & 0xffu;
    return uintBitsToFloat(b | 0x4b000000u) - bias;
}
