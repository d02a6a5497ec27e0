// SPDX-License-Identifier: MIT
// Q5_1: 32 values, value = q * d + m (GGUF: f16 d, f16 m, u32 qh (bit j: the fifth
// bit of value j), 16 bytes of nibbles as Q4_0's; 24 bytes). Device tile of 4
// blocks, 112 bytes: f32 d[4], f32 m[4], u32 qh[4], then each block's 16 bytes of
// nibbles. One part per block, as Q5_0's.
#define QK 32u
#define QB 24u
#define QG 4u
#define QT 112u
#define QH 48u
#define QS 16u
#define QP 1u
#define Q_HAS_MIN
#include "quant_q5.glsl"

uint q_pos(uint part, uint g) { return 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = ld16(t + 48u + 16u * l);
    uint qh = ld32(t + 32u + 4u * l);
    uvec4 lo = (w & 0x0f0f0f0fu) | q5_spread(qh), hi = ((w >> 4) & 0x0f0f0f0fu) | q5_spread(qh >> 16);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC);
        q[4u + i] = u8x4(hi[i], Q_MAGIC);
    }
    am[0] = am[1] = vec2(ld_f32(t + 4u * l), ld_f32(t + 16u + 4u * l));
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = ((ld16(t + 48u + 16u * l) >> (4u * grp)) & 0x0f0f0f0fu) | q5_spread(ld32(t + 32u + 4u * l) >> (16u * grp));
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC);
    am = vec2(ld_f32(t + 4u * l), ld_f32(t + 16u + 4u * l));
}
