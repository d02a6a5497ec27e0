// SPDX-License-Identifier: MIT
// Q2_K: 256 values in 84 bytes: 16 bytes of scales (low nibble: the 4-bit scale,
// high nibble: the 4-bit min of each sub-block of 16), qs[64] (2 bits each), f16 d,
// f16 dmin. Value e (h = e/128, j = e%128/32, l = e%32): q = (qs[32h + l] >> 2j) & 3
// in sub-block 8h + 2j + l/16; value = d*scale * q - dmin*min. Device tile of 2
// blocks, 176 bytes: f32 (d, dmin) of each, then each block's first 80 bytes
// (scales and qs; offsets below from the start of those, body = 16 + 80 lane).
#define QK 256u
#define QB 84u
#define QG 2u
#define QT 176u
#define QH 16u
#define QS 80u
#define QP 8u
#define Q_HAS_MIN

// Scale and offset of sub-block k.
vec2 q2_scale_min(uint blk, uint k) {
    uint t = q_tile(blk), l = q_lane(blk), s = ld_u8(t + 16u + 80u * l + k);
    return vec2(ld_f32(t + 8u * l) * float(s & 15u), -(ld_f32(t + 8u * l + 4u) * float(s >> 4)));
}

// Part p = (h, k, jp) = (p/4, p/2%2, p%2): the 16 bytes of qs at 16 + 32h + 16k;
// group g is the 16 values of j = 2jp + g (Q3_K's order without the high bits).
uint q_pos(uint part, uint g) { return 128u * (part >> 2) + 64u * (part & 1u) + 32u * g + 16u * ((part >> 1) & 1u); }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint h = part >> 2, k = (part >> 1) & 1u, j = 2u * (part & 1u);
    uvec4 qs = ld16(q_tile(blk) + 32u + 80u * q_lane(blk) + 32u * h + 16u * k) >> (2u * j);
    uvec4 a = qs & 0x03030303u, b = (qs >> 2) & 0x03030303u;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(a[i], Q_MAGIC);
        q[4u + i] = u8x4(b[i], Q_MAGIC);
    }
    am[0] = q2_scale_min(blk, 8u * h + 2u * j + k);
    am[1] = q2_scale_min(blk, 8u * h + 2u * j + 2u + k);
}

// Group grp (the grp-th 16 values, sub-block grp): h = grp/8, j = grp/2%4, k = grp%2.
void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint h = grp >> 3, j = (grp >> 1) & 3u, k = grp & 1u;
    uvec4 w = (ld16(q_tile(blk) + 32u + 80u * q_lane(blk) + 32u * h + 16u * k) >> (2u * j)) & 0x03030303u;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC);
    am = q2_scale_min(blk, grp);
}
