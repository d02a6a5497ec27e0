// SPDX-License-Identifier: MIT
// IQ1_M: 256 values in 56 bytes: 32 bytes of grid index bits 0..7 (one per octet),
// 16 bytes qh (octet l of sub-block ib in nibble l%2 of byte 2ib + l/2: index bits
// 8..10 in its low 3 bits, the sign of delta in its top bit), then 4 u16 of 3-bit
// scales (sub-block ib: word ib/2 at bit 6(ib%2) for octets 0,1, 3 bits higher for
// octets 2,3) whose top nibbles, first word lowest, are the block's f16 d.
// value = d (2s+1) * (grid value + delta); the grid is IQ1_S's. delta changes
// every 8 values, so it is part of the level q, not an offset. Device tile of 4
// blocks, 240 bytes: f32 d[4] (assembled at load), each block's 8 bytes of scales
// (at 16 + 8 lane; their d nibbles unread), then each block's first 48 bytes.
#define QK 256u
#define QB 56u
#define QG 4u
#define QT 240u
#define QH 48u
#define QS 48u
#define QP 8u
#define IQ_GRID_WORDS 2048u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint ib = grp >> 1, h = grp & 1u;
    uint o = iq_body(blk), idx = ld_u16(o + 2u * grp), qh = ld_u8(o + 32u + grp);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint n = qh >> (4u * k);
        iq1_octet(((idx >> (8u * k)) & 255u) | (n & 7u) << 8, (n & 8u) != 0u ? -0.125 : 0.125, q[2u * k], q[2u * k + 1u]);
    }
    uint so = q_tile(blk) + 16u + 8u * q_lane(blk), s0 = ld32(so), s1 = ld32(so + 4u); // the four scale words
    uint w = ((ib < 4u ? (ib < 2u ? s0 : s0 >> 16) : (ib < 6u ? s1 : s1 >> 16))) >> (6u * (ib & 1u) + 3u * h);
    am = vec2(iq_d(blk) * float(2u * (w & 7u) + 1u), 0.0);
}
