// SPDX-License-Identifier: MIT
// Q5_K: 256 values in 176 bytes: f16 d, f16 dmin, 12 bytes of scales and mins as
// in Q4_K, qh[32], then 128 bytes of nibbles laid out as Q4_K's. The fifth bit of
// value 64c+l is bit 2c of qh[l], of value 64c+32+l bit 2c+1. value = d*scale_j *
// q - dmin*min_j. Blocks are 16-byte multiples: read as whole uvec4s.
#define QK 256u
#define QB 176u
#define QG 1u
#define QT QB
#define QH 0u
#define QS QB
#define QP 8u
#define Q_HAS_MIN
#include "quant_k_scales.glsl"

// Part p (c = p/2, h = p%2): nibbles at 48 + 32c + 16h, fifth bits at 16 + 16h.
uint q_pos(uint part, uint g) { return 64u * (part >> 1) + 32u * g + 16u * (part & 1u); }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint c = part >> 1, b = blk >> 4;
    uvec4 h = wq4[b];
    uvec4 qh = wq4[b + 1u + (part & 1u)] >> (2u * c);
    uvec4 w = wq4[b + 3u + 2u * c + (part & 1u)];
    uvec4 lo = (w & 0x0f0f0f0fu) | (qh & 0x01010101u) << 4;
    uvec4 hi = ((w >> 4) & 0x0f0f0f0fu) | (qh & 0x02020202u) << 3;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC);
        q[4u + i] = u8x4(hi[i], Q_MAGIC);
    }
    am[0] = k_scale_min(h, 2u * c);
    am[1] = k_scale_min(h, 2u * c + 1u);
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint j = grp >> 1, b = blk >> 4; // j: sub-block of 32; its bit in qh is j
    uvec4 w = (wq4[b + 3u + 2u * (j >> 1) + (grp & 1u)] >> (4u * (j & 1u))) & 0x0f0f0f0fu;
    uvec4 qh = (wq4[b + 1u + (grp & 1u)] >> j) & 0x01010101u;
    w |= qh << 4;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC);
    am = k_scale_min(wq4[b], j);
}
