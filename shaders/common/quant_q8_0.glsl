// SPDX-License-Identifier: MIT
// Q8_0: 32 values, value = q * d with q an int8 (GGUF: f16 d, 32 int8 in 34 bytes).
// Device tile of 4 blocks, 144 bytes: f32 d[4], then each block's 32 int8.
// One part per block: group g is values 16g..16g+15, the tile's bytes
// 16 + 32 lane + 16g.
#define QK 32u
#define QB 34u
#define QG 4u
#define QT 144u
#define QH 16u
#define QS 32u
#define QP 1u

uint q_pos(uint part, uint g) { return 16u * g; }

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint t = q_tile(blk), l = q_lane(blk);
    uvec4 w = ld16(t + 16u + 32u * l + 16u * grp) ^ 0x80808080u; // int8 -> uint8 + 128
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC + 128.0);
    am = vec2(ld_f32(t + 4u * l), 0.0);
}

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    vec4 a[4], b[4];
    q_group(blk, 0u, a, am[0]);
    q_group(blk, 1u, b, am[1]);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = a[i];
        q[4u + i] = b[i];
    }
}
