// SPDX-License-Identifier: MIT
// Q4_K: 256 values in 144 bytes: f16 d, f16 dmin, 12 bytes of 6-bit scales and
// mins for 8 sub-blocks of 32, then 128 bytes of nibbles in 4 chunks of 32 bytes:
// chunk c holds values 64c..64c+31 in its low nibbles and 64c+32..64c+63 in its
// high nibbles. value = d*scale_j * q - dmin*min_j. Blocks are 16-byte multiples,
// so everything is read as whole uvec4s.
#define QK 256u
#define QB 144u
#define QG 1u
#define QT QB
#define QH 0u
#define QS QB
#define QP 8u
#define Q_HAS_MIN
#include "quant_k_scales.glsl"

// Part p reads the 16 bytes at 16 + 32c + 16h (c = p/2, h = p%2): group 0 is
// sub-block 2c (low nibbles), group 1 sub-block 2c+1 (high nibbles).
uint q_pos(uint part, uint g) { return 64u * (part >> 1) + 32u * g + 16u * (part & 1u); }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint c = part >> 1, b = blk >> 4;
    uvec4 h = wq4[b];
    uvec4 w = wq4[b + 1u + 2u * c + (part & 1u)];
    uvec4 lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC);
        q[4u + i] = u8x4(hi[i], Q_MAGIC);
    }
    am[0] = k_scale_min(h, 2u * c);
    am[1] = k_scale_min(h, 2u * c + 1u);
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint j = grp >> 1, b = blk >> 4;
    uvec4 w = (wq4[b + 1u + 2u * (j >> 1) + (grp & 1u)] >> (4u * (j & 1u))) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC);
    am = k_scale_min(wq4[b], j);
}
