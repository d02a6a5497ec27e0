// SPDX-License-Identifier: MIT
// Q5_0: 32 values in 22 bytes: f16 d, u32 qh (bit j: the fifth bit of value j),
// 16 bytes of nibbles as Q4_0's; value = (q - 16) * d. One part per block: group
// g is the nibbles g of all 16 bytes and bits 16g..16g+15 of qh.
#define QK 32u
#define QB 22u
#define QP 1u
#include "quant_q5.glsl"

uint q_pos(uint part, uint g) { return 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uvec4 w = ld16(blk + 6u);
    uint qh = q5_qh(blk + 2u);
    uvec4 lo = (w & 0x0f0f0f0fu) | q5_spread(qh), hi = ((w >> 4) & 0x0f0f0f0fu) | q5_spread(qh >> 16);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC + 16.0);
        q[4u + i] = u8x4(hi[i], Q_MAGIC + 16.0);
    }
    am[0] = am[1] = vec2(ld_f16(blk), 0.0);
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uvec4 w = ((ld16(blk + 6u) >> (4u * grp)) & 0x0f0f0f0fu) | q5_spread(q5_qh(blk + 2u) >> (16u * grp));
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC + 16.0);
    am = vec2(ld_f16(blk), 0.0);
}
