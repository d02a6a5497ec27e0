// SPDX-License-Identifier: MIT
// Q6_K: 256 values in 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), 16
// int8 scales, f16 d; value = d*scale * (q - 32) over sub-blocks of 16. Device tile
// of 4 blocks, 848 bytes: f32 d[4], then each block's first 208 bytes (13 words),
// offsets below from the start of those (body = 16 + 208 lane). Each half
// H of 128 values uses ql[64H..], qh[32H..], scales[8H..]: for l < 32,
//   value l      <- ql[l] low nibble,    qh[l] bits 0-1, scale l/16
//   value l + 32 <- ql[l+32] low nibble, qh[l] bits 2-3, scale l/16 + 2
//   value l + 64 <- ql[l] high nibble,   qh[l] bits 4-5, scale l/16 + 4
//   value l + 96 <- ql[l+32] high nibble, qh[l] bits 6-7, scale l/16 + 6
#define QK 256u
#define QB 210u
#define QG 4u
#define QT 848u
#define QH 16u
#define QS 208u
#define QP 8u

// Part p = (H, s, t) = (p/4, p/2%2, p%2): the 16 bytes of ql at 64H + 32t + 16s
// and of qh at 128 + 32H + 16s; group 0 the low nibbles (quarter t), group 1
// the high nibbles (quarter t + 2).
uint q_pos(uint part, uint g) { return 128u * (part >> 2) + 64u * g + 32u * (part & 1u) + 16u * ((part >> 1) & 1u); }

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    uint tb = q_tile(blk), ln = q_lane(blk);
    blk = tb + 16u + 208u * ln;
    uint H = part >> 2, s = (part >> 1) & 1u, t = part & 1u;
    uvec4 ql = ld16(blk + 64u * H + 32u * t + 16u * s);
    uvec4 qh = ld16(blk + 128u + 32u * H + 16u * s) >> (2u * t);
    uvec4 lo = (ql & 0x0f0f0f0fu) | (qh & 0x03030303u) << 4;
    uvec4 hi = ((ql >> 4) & 0x0f0f0f0fu) | (qh & 0x30303030u);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = u8x4(lo[i], Q_MAGIC + 32.0);
        q[4u + i] = u8x4(hi[i], Q_MAGIC + 32.0);
    }
    float d = ld_f32(tb + 4u * ln);
    uint sc = blk + 192u + 8u * H + s + 2u * t;
    am[0] = vec2(d * float(ld_i8(sc)), 0.0);
    am[1] = vec2(d * float(ld_i8(sc + 4u)), 0.0);
}

// Group grp: half H = grp/8, then quarter Q = grp/2%4 and s = grp%2 within it.
void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am) {
    uint tb = q_tile(blk), ln = q_lane(blk);
    blk = tb + 16u + 208u * ln;
    uint H = grp >> 3, Q = (grp >> 1) & 3u, s = grp & 1u;
    uvec4 ql = (ld16(blk + 64u * H + 32u * (Q & 1u) + 16u * s) >> (4u * (Q >> 1))) & 0x0f0f0f0fu;
    uvec4 qh = (ld16(blk + 128u + 32u * H + 16u * s) >> (2u * Q)) & 0x03030303u;
    uvec4 w = ql | qh << 4;
    [[unroll]] for (uint i = 0u; i < 4u; i++) q[i] = u8x4(w[i], Q_MAGIC + 32.0);
    am = vec2(ld_f32(tb + 4u * ln) * float(ld_i8(blk + 192u + 8u * H + s + 2u * Q)), 0.0);
}
