// SPDX-License-Identifier: MIT
// IQ2_XS: 256 values in 74 bytes: f16 d, 32 u16 (one per octet: 9-bit grid index,
// 7 sign bits), 8 scale bytes (sub-block ib: octets 0,1 under the low nibble s,
// 2,3 under the high); value = d (2s+1)/8 * grid magnitude * sign.
#define QK 256u
#define QB 74u
#define QP 8u
#define IQ_GRID_WORDS 1024u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint w = ld_u32(blk + 2u + 4u * grp); // the group's two u16
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint e = w >> (16u * k);
        iq2_octet(e & 511u, iq_signs7(e >> 9), q[2u * k], q[2u * k + 1u]);
    }
    uint s = (ld_u8(blk + 66u + (grp >> 1)) >> (4u * (grp & 1u))) & 15u;
    am = vec2(ld_f16(blk) * float(2u * s + 1u) * 0.125, 0.0);
}
