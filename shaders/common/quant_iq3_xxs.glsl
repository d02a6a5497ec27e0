// SPDX-License-Identifier: MIT
// IQ3_XXS: 256 values in 98 bytes: f16 d, 64 bytes of grid indices (two per octet,
// each entry 4 magnitudes), then per sub-block a u32 of 4 x 7 sign bits and the
// scale s in bits 28..31; value = d (2s+1)/4 * grid magnitude * sign. Device tile
// of 4 blocks, 400 bytes: f32 d[4], then each block's 96 bytes after d.
#define QK 256u
#define QB 98u
#define QG 4u
#define QT 400u
#define QH 16u
#define QS 96u
#define QP 8u
#define IQ_GRID_WORDS 256u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint ib = grp >> 1, h = grp & 1u;
    uint o = iq_body(blk), idx = ld32(o + 4u * grp), aux = ld32(o + 64u + 4u * ib);
    [[unroll]] for (uint k = 0u; k < 2u; k++) {
        uint signs = iq_signs7(aux >> (7u * (2u * h + k)));
        q[2u * k] = iq_signed(u8x4(iq_grid[(idx >> (16u * k)) & 255u], Q_MAGIC), signs);
        q[2u * k + 1u] = iq_signed(u8x4(iq_grid[(idx >> (16u * k + 8u)) & 255u], Q_MAGIC), signs >> 4);
    }
    am = vec2(iq_d(blk) * float(2u * (aux >> 28) + 1u) * 0.25, 0.0);
}
