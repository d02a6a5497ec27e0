// SPDX-License-Identifier: MIT
// IQ4_NL: 32 values, value = d * level[q] with the format's 16 levels
// (quant_iq4.glsl) (GGUF: f16 d, then 16 bytes of nibbles as Q4_0's; 18 bytes).
// Device tile as Q4_0's: 4 blocks in 80 bytes, f32 d[4] then the nibbles. The
// stored "level" handed out is the codebook value itself, an integer of at most 7
// bits, so scale * level stays exact. One part per block.
#define QK 32u
#define QB 18u
#define QG 4u
#define QT 80u
#define QH 16u
#define QS 16u
#define QP 1u
#include "quant_iq4.glsl"

uint q_pos(uint part, uint g) { return 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = ld16(t + 16u + 16u * l);
    uvec4 lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = iq4x4(lo[i]);
        q[4u + i] = iq4x4(hi[i]);
    }
    am[0] = am[1] = vec2(ld_f32(t + 4u * l), 0.0);
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = (ld16(t + 16u + 16u * l) >> (4u * grp)) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = iq4x4(w[i]);
    am = vec2(ld_f32(t + 4u * l), 0.0);
}
