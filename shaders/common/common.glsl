// SPDX-License-Identifier: MIT
// Included first by every shader.
#extension GL_EXT_control_flow_attributes : enable
#include "push_constants.h" // the push-constant blocks, one declaration for GLSL and C

// Constant 0 is the workgroup size everywhere (pipeline.h).
layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

// Flat index of this workgroup over a 2D grid (grids wider than 65535 groups are
// folded into y by the host).
uint flat_group() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

// ---- f16 by integer arithmetic ----
// Vulkan lets a driver flush subnormal halves that unpackHalf2x16 produces (unless
// the module declares DenormPreserve) and leaves packHalf2x16's rounding open (some
// compilers truncate). Block scales of real weights are often subnormal halves
// (Q6_K: almost all), and the KV cache should hold the same bits on every driver,
// so those two go through these instead. Only the low 16 bits of h are read.
float f16_to_float(uint h) {
    uint e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    // Subnormal: m * 2^-24, a normal f32, so nothing can flush it.
    float v = e == 0u ? float(m) * 5.9604644775390625e-8 : uintBitsToFloat(((e + 112u) << 23) | (m << 13));
    if (e == 31u) v = uintBitsToFloat(0x7f800000u | (m << 13)); // inf, NaN
    return (h & 0x8000u) != 0u ? -v : v;
}
vec2 f16x2_to_vec2(uint w) { return vec2(f16_to_float(w & 0xffffu), f16_to_float(w >> 16)); }

// f32 to f16 bits, rounded to nearest even like runtime/core/common.c's vkphi_f32_to_f16.
uint float_to_f16(float f) {
    uint x = floatBitsToUint(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u;  // NaN
    if (ax >= 0x47800000u) return sign | 0x7c00u; // 65536 and up (and inf): inf
    if (ax < 0x38800000u) // under 2^-14: a subnormal half, in units of 2^-24 (exact scaling)
        return sign | uint(roundEven(uintBitsToFloat(ax) * 16777216.0));
    uint r = (((ax >> 23) - 112u) << 10) | ((ax >> 13) & 0x3ffu), rem = ax & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) r++; // a carry rounds up the exponent (to inf)
    return sign | r;
}
uint float_to_f16x2(vec2 v) { return float_to_f16(v.x) | (float_to_f16(v.y) << 16); }
