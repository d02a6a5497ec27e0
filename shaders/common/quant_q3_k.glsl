// SPDX-License-Identifier: MIT
// Q3_K: 256 values in 110 bytes: hmask[32], qs[64] (2 bits each), 12 bytes of
// 6-bit scales for 16 sub-blocks of 16, f16 d. Value e (h = e/128, j = e%128/32,
// l = e%32): low bits (qs[32h + l] >> 2j) & 3, third bit hmask[l] bit 4h + j,
// value = d*(scale - 32) * (q - 4) with q the three bits; its sub-block is
// 8h + 2j + l/16. Scale k: low 4 bits in byte k%8 (low nibble for k < 8, high
// for k >= 8), top 2 bits in byte 8 + k%4 at bit 2(k/4). Device tile: one block
// in 112 bytes, the first 108 as GGUF's and d as f32 at 108 (all of hmask, qs and
// the scales then sit in whole 16-byte words).
#define QK 256u
#define QB 110u
#define QG 1u
#define QT 112u
#define QH 0u
#define QS 112u
#define QP 8u

// Sub-block k's scale, the stored 6 bits minus 32.
float q3_scale(uint blk, uint k) {
    uint lo = (ld_u8(blk + 96u + (k & 7u)) >> (4u * (k >> 3))) & 15u;
    uint hi = (ld_u8(blk + 104u + (k & 3u)) >> (2u * (k >> 2))) & 3u;
    return float(int(lo | hi << 4) - 32);
}

// Part p = (h, k, jp) = (p/4, p/2%2, p%2): the 16 bytes of qs at 32 + 32h + 16k
// and of hmask at 16k; group g is the 16 values of j = 2jp + g.
uint q_pos(uint part, uint g) { return 128u * (part >> 2) + 64u * (part & 1u) + 32u * g + 16u * ((part >> 1) & 1u); }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint h = part >> 2, k = (part >> 1) & 1u, j = 2u * (part & 1u);
    uvec4 qs = ld16(blk + 32u + 32u * h + 16u * k) >> (2u * j);
    uvec4 hm = ld16(blk + 16u * k) >> (4u * h + j);
    uvec4 a = (qs & 0x03030303u) | (hm & 0x01010101u) << 2;
    uvec4 b = ((qs >> 2) & 0x03030303u) | (hm & 0x02020202u) << 1;
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(a[i], Q_MAGIC + 4.0);
        q[4u + i] = u8x4(b[i], Q_MAGIC + 4.0);
    }
    float d = ld_f32(blk + 108u);
    am[0] = vec2(d * q3_scale(blk, 8u * h + 2u * j + k), 0.0);
    am[1] = vec2(d * q3_scale(blk, 8u * h + 2u * j + 2u + k), 0.0);
}

// Group grp: h = grp/8, j = grp/2%4, k = grp%2.
void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint h = grp >> 3, j = (grp >> 1) & 3u, k = grp & 1u;
    uvec4 qs = (ld16(blk + 32u + 32u * h + 16u * k) >> (2u * j)) & 0x03030303u;
    uvec4 hm = (ld16(blk + 16u * k) >> (4u * h + j)) & 0x01010101u;
    uvec4 w = qs | hm << 2;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC + 4.0);
    am = vec2(ld_f32(blk + 108u) * q3_scale(blk, 8u * h + 2u * j + k), 0.0);
}
