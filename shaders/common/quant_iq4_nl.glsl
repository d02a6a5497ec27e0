// SPDX-License-Identifier: MIT
// IQ4_NL: 32 values in 18 bytes: f16 d, then 16 bytes of nibbles as Q4_0's; value
// = d * level[q] with the format's 16 levels (quant_iq4.glsl). The stored "level"
// handed out is the codebook value itself, an integer of at most 7 bits, so
// scale * level stays exact. One part per block.
#define QK 32u
#define QB 18u
#define QP 1u
#include "quant_iq4.glsl"

uint q_pos(uint part, uint g) { return 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uvec4 w = ld16(blk + 2u);
    uvec4 lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = iq4x4(lo[i]);
        q[4u + i] = iq4x4(hi[i]);
    }
    am[0] = am[1] = vec2(ld_f16(blk), 0.0);
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uvec4 w = (ld16(blk + 2u) >> (4u * grp)) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = iq4x4(w[i]);
    am = vec2(ld_f16(blk), 0.0);
}
