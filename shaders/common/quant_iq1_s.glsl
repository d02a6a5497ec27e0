// SPDX-License-Identifier: MIT
// IQ1_S: 256 values in 50 bytes: f16 d, 32 bytes of grid index bits 0..7 (one per
// octet), then per sub-block a u16: index bits 8..10 of octet l at bits 3l, the
// scale s at bits 12..14 and the sign of delta at bit 15; value = d (2s+1) *
// (grid value + delta), grid values in -1..1, delta = +-1/8. The level q is the
// grid value plus delta (exact in f32), so the offset stays 0. Device tile of 4
// blocks, 208 bytes: f32 d[4], then each block's 48 bytes after d.
#define QK 256u
#define QB 50u
#define QG 4u
#define QT 208u
#define QH 16u
#define QS 48u
#define QP 8u
#define IQ_GRID_WORDS 2048u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint ib = grp >> 1, h = grp & 1u;
    uint o = iq_body(blk), idx = ld_u16(o + 2u * grp), qh = ld_u16(o + 32u + 2u * ib);
    float delta = (qh & 0x8000u) != 0u ? -0.125 : 0.125;
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint i = ((idx >> (8u * k)) & 255u) | ((qh >> (3u * (2u * h + k))) & 7u) << 8;
        iq1_octet(i, delta, q[2u * k], q[2u * k + 1u]);
    }
    am = vec2(iq_d(blk) * float(2u * ((qh >> 12) & 7u) + 1u), 0.0);
}
