// SPDX-License-Identifier: MIT
// Q4_1: 32 values in 20 bytes: f16 d, f16 m, then 16 bytes of nibbles as Q4_0's;
// value = q * d + m. One part per block: group g is the nibbles g of all 16 bytes.
// Blocks of 20 bytes start on 4-byte boundaries.
#define QK 32u
#define QB 20u
#define QP 1u
#define Q_HAS_MIN

uint q_pos(uint part, uint g) { return 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uvec4 w = ld16(blk + 4u);
    uvec4 lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC);
        q[4u + i] = u8x4(hi[i], Q_MAGIC);
    }
    am[0] = am[1] = vec2(ld_f16(blk), ld_f16(blk + 2u));
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uvec4 w = (ld16(blk + 4u) >> (4u * grp)) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC);
    am = vec2(ld_f16(blk), ld_f16(blk + 2u));
}
