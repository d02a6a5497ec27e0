// SPDX-License-Identifier: MIT
// IQ2_XS: 256 values in 74 bytes: f16 d, 32 u16 (one per octet: 9-bit grid index,
// 7 sign bits), 8 scale bytes (sub-block ib: octets 0,1 under the low nibble s,
// 2,3 under the high); value = d (2s+1)/8 * grid magnitude * sign. Device tile
// of 4 blocks, 304 bytes: f32 d[4], each block's 8 scale bytes (at 16 + 8 lane),
// then each block's 64 bytes of u16 (at 48 + 64 lane).
#define QK 256u
#define QB 74u
#define QG 4u
#define QT 304u
#define QH 48u
#define QS 64u
#define QP 8u
#define IQ_GRID_WORDS 1024u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint w = ld32(iq_body(blk) + 4u * grp); // the group's two u16
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint e = w >> (16u * k);
        iq2_octet(e & 511u, iq_signs7(e >> 9), q[2u * k], q[2u * k + 1u]);
    }
    uint s = (ld_u8(q_tile(blk) + 16u + 8u * q_lane(blk) + (grp >> 1)) >> (4u * (grp & 1u))) & 15u;
    am = vec2(iq_d(blk) * float(2u * s + 1u) * 0.125, 0.0);
}
