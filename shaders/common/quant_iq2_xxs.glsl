// SPDX-License-Identifier: MIT
// IQ2_XXS: 256 values in 66 bytes: f16 d, then per sub-block of 32 the 4 grid
// indices of its octets (bytes) and a u32 of 4 x 7 sign bits and the scale s in
// bits 28..31; value = d (2s+1)/8 * grid magnitude * sign. Device tile of 4
// blocks, 272 bytes: f32 d[4], then each block's 64 bytes after d.
#define QK 256u
#define QB 66u
#define QG 4u
#define QT 272u
#define QH 16u
#define QS 64u
#define QP 8u
#define IQ_GRID_WORDS 512u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint ib = grp >> 1, h = grp & 1u;
    uint o = iq_body(blk), idx = ld32(o + 8u * ib), aux = ld32(o + 4u + 8u * ib);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint l = 2u * h + k;
        iq2_octet((idx >> (8u * l)) & 255u, iq_signs7(aux >> (7u * l)), q[2u * k], q[2u * k + 1u]);
    }
    am = vec2(iq_d(blk) * float(2u * (aux >> 28) + 1u) * 0.125, 0.0);
}
