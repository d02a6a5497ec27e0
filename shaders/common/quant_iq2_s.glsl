// SPDX-License-Identifier: MIT
// IQ2_S: 256 values in 82 bytes: f16 d, 32 bytes of grid index bits 0..7 (one per
// octet), 32 sign bytes (one per octet, all 8 signs), 8 bytes qh (sub-block ib:
// bits 8..9 of octet l's index at bits 2l..2l+1), 8 scale bytes as IQ2_XS;
// value = d (2s+1)/8 * grid magnitude * sign. Device tile of 4 blocks, 336 bytes:
// f32 d[4], then each block's 80 bytes after d (offsets below from their start).
#define QK 256u
#define QB 82u
#define QG 4u
#define QT 336u
#define QH 16u
#define QS 80u
#define QP 8u
#define IQ_GRID_WORDS 2048u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint ib = grp >> 1, h = grp & 1u;
    uint o = iq_body(blk), idx = ld_u16(o + 2u * grp), signs = ld_u16(o + 32u + 2u * grp);
    uint qh = ld_u8(o + 64u + ib) >> (4u * h);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint i = ((idx >> (8u * k)) & 255u) | ((qh >> (2u * k)) & 3u) << 8;
        iq2_octet(i, signs >> (8u * k), q[2u * k], q[2u * k + 1u]);
    }
    uint s = (ld_u8(o + 72u + ib) >> (4u * h)) & 15u;
    am = vec2(iq_d(blk) * float(2u * s + 1u) * 0.125, 0.0);
}
