// SPDX-License-Identifier: MIT
// IQ4_XS: 256 values in 136 bytes: f16 d, u16 scales_h, scales_l[4], qs[128]. Eight
// sub-blocks of 32: sub-block ib has the 6-bit scale ls (low 4 bits in nibble ib%2
// of scales_l[ib/2], top 2 bits at bit 2ib of scales_h) and the 16 bytes of qs at
// 16ib, nibbles as IQ4_NL's; value = d*(ls - 32) * level[q]. A part is a sub-block.
// Device tile: one block in 144 bytes, f32 d, u32 scales_h (low 16 bits), the
// 4 bytes of scales_l, 4 zero bytes, then qs at 16.
#define QK 256u
#define QB 136u
#define QG 1u
#define QT 144u
#define QH 0u
#define QS 144u
#define QP 8u
#include "quant_iq4.glsl"

float iq4xs_scale(uint blk, uint ib) {
    uvec4 hd = ld16(blk); // d, scales_h, scales_l
    uint ls = ((hd.z >> (4u * ib)) & 15u) | ((hd.y >> (2u * ib)) & 3u) << 4;
    return uintBitsToFloat(hd.x) * float(int(ls) - 32);
}

uint q_pos(uint part, uint g) { return 32u * part + 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uvec4 w = ld16(blk + 16u + 16u * part);
    uvec4 lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = iq4x4(lo[i]);
        q[4u + i] = iq4x4(hi[i]);
    }
    am[0] = am[1] = vec2(iq4xs_scale(blk, part), 0.0);
}

// Group grp: sub-block grp/2, nibbles grp%2.
void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uvec4 w = (ld16(blk + 16u + 16u * (grp >> 1)) >> (4u * (grp & 1u))) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = iq4x4(w[i]);
    am = vec2(iq4xs_scale(blk, grp >> 1), 0.0);
}
