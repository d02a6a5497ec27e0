// SPDX-License-Identifier: MIT
// Q4_0: 32 values, value = (q - 8) * d (GGUF: f16 d, then 16 bytes whose low
// nibbles are values 0..15 and high nibbles values 16..31; 18 bytes). Device tile
// of 4 blocks, 80 bytes: f32 d[4], then each block's 16 bytes of nibbles.
// One part per block: group g is the nibbles g of all 16 bytes.
#define QK 32u
#define QB 18u
#define QG 4u
#define QT 80u
#define QH 16u
#define QS 16u
#define QP 1u

uint q_pos(uint part, uint g) { return 16u * g; }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = ld16(t + 16u + 16u * l);
    uvec4 lo = w & 0x0f0f0f0fu, hi = (w >> 4) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC + 8.0);
        q[4u + i] = u8x4(hi[i], Q_MAGIC + 8.0);
    }
    am[0] = am[1] = vec2(ld_f32(t + 4u * l), 0.0);
}

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = (ld16(t + 16u + 16u * l) >> (4u * grp)) & 0x0f0f0f0fu;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC + 8.0);
    am = vec2(ld_f32(t + 4u * l), 0.0);
}
