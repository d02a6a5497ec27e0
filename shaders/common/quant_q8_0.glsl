// SPDX-License-Identifier: MIT
// Q8_0: 32 values in 34 bytes: f16 d, then 32 int8; value = q * d.
// One part per block: group g is values 16g..16g+15, bytes 2+16g..17+16g.
#define QK 32u
#define QB 34u
#define QP 1u

uint q_pos(uint part, uint g) { return 16u * g; }

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uvec4 w = ld16(blk + 2u + 16u * grp) ^ 0x80808080u; // int8 -> uint8 + 128
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC + 128.0);
    am = vec2(ld_f16(blk), 0.0);
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
