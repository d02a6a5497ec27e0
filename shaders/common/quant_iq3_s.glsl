// SPDX-License-Identifier: MIT
// IQ3_S: 256 values in 110 bytes: f16 d, 64 bytes of grid index bits 0..7 (two per
// octet, each entry 4 magnitudes), 8 bytes qh (sub-block ib: bit 8 of its index k
// at bit k), 32 sign bytes (one per octet), 4 scale bytes (sub-block ib: nibble
// ib%2 of byte ib/2); value = d (2s+1) * grid magnitude * sign. Device tile: one
// block in 112 bytes, its 108 bytes after d, then d as f32 at 108.
#define QK 256u
#define QB 110u
#define QG 1u
#define QT 112u
#define QH 0u
#define QS 112u
#define QP 8u
#define IQ_GRID_WORDS 512u
#include "quant_iq_common.glsl"

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint ib = grp >> 1, h = grp & 1u;
    uint idx = ld32(blk + 4u * grp), signs = ld_u16(blk + 72u + 2u * grp);
    uint qh = ld_u8(blk + 64u + ib) >> (4u * h);
    [[unroll]] for (uint k = 0u; k < 4u; k++) { // the group's 4 indices, 4 values each
        uint i = ((idx >> (8u * k)) & 255u) | ((qh >> k) & 1u) << 8;
        q[k] = iq_signed(u8x4(iq_grid[i], Q_MAGIC), signs >> (4u * k));
    }
    uint s = (ld_u8(blk + 104u + (ib >> 1)) >> (4u * (ib & 1u))) & 15u;
    am = vec2(ld_f32(blk + 108u) * float(2u * s + 1u), 0.0);
}
