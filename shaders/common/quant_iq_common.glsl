// SPDX-License-Identifier: MIT
// Shared by the codebook types (quant_iq*.glsl; layouts in runtime/core/quant_iq.h).
// The includer defines IQ_GRID_WORDS, the length in words of its type's grid,
// and q_group; q_pos and q_part are common to all of them (at the end).
//
// Where the grid lives: the host binds the type's grid (the very array the CPU
// reference uses, runtime/core/quant_iq_tables.h, uploaded by runtime/kernels/kernels.c) at
// binding 3. Every 8 values look up one entry at an index that differs from thread
// to thread, so q_init() first copies the grid to shared memory (1 to 8 KiB: a few
// coalesced loads per thread, served by the cache after the first workgroup) and
// the decoding reads it from there. kernels.c gives these types more rows per
// matrix-vector workgroup to spread that copy over more work.
#define Q_HAS_INIT
layout(binding = 3) readonly buffer IqGrid { uint iq_grid_buf[]; };
shared uint iq_grid[IQ_GRID_WORDS];

// Called by every thread of the workgroup at the start of main, before any return.
void q_init() {
    for (uint i = gl_LocalInvocationIndex; i < IQ_GRID_WORDS; i += WG) iq_grid[i] = iq_grid_buf[i];
    barrier();
}

// Most types' device tile is 4 blocks: f32 d[4] (and other small fields) in the
// QH-byte header, then each block's QS bytes; this is where block blk's start.
uint iq_body(uint blk) { return q_tile(blk) + QH + QS * q_lane(blk); }
float iq_d(uint blk) { return ld_f32(q_tile(blk) + 4u * q_lane(blk)); }

// The 8 signs of a 7-bit field: the eighth makes the count of minus signs even.
uint iq_signs7(uint s) {
    s &= 127u;
    return s | (uint(bitCount(s)) & 1u) << 7;
}

// Four magnitudes m with the signs in the low 4 bits of s (bit j: minus on m[j]),
// by flipping the f32 sign bit: exact, and no multiply.
vec4 iq_signed(vec4 m, uint s) {
    uvec4 b = (uvec4(s) >> uvec4(0u, 1u, 2u, 3u)) & 1u;
    return uintBitsToFloat(floatBitsToUint(m) ^ (b << 31));
}

// The 8 signed magnitudes of an IQ2 grid entry (two words: values 0..3, 4..7).
void iq2_octet(uint idx, uint signs, out vec4 lo, out vec4 hi) {
    lo = iq_signed(u8x4(iq_grid[2u * idx], Q_MAGIC), signs);
    hi = iq_signed(u8x4(iq_grid[2u * idx + 1u], Q_MAGIC), signs >> 4);
}

// IQ1 (IQ1_S, IQ1_M): the 8 levels of a grid entry (value+1 in nibbles: the low
// nibbles of its bytes are values 0..3, the high nibbles 4..7) plus delta.
void iq1_octet(uint idx, float delta, out vec4 lo, out vec4 hi) {
    uint e = iq_grid[idx];
    lo = u8x4(e & 0x0f0f0f0fu, Q_MAGIC + 1.0) + delta;
    hi = u8x4((e >> 4) & 0x0f0f0f0fu, Q_MAGIC + 1.0) + delta;
}

// Every codebook type is 8 sub-blocks of 32 in order: a part is a sub-block, its
// group g the values 16g..16g+15 (octets 2g, 2g+1), which share one scale. Each
// type file defines q_group; a part is its two groups.
uint q_pos(uint part, uint g) { return 32u * part + 16u * g; }

void q_group(uint blk, uint grp, out vec4 q[4], out vec2 am);

void q_part(uint blk, uint part, out vec4 q[8], out vec2 am[2]) {
    vec4 a[4], b[4];
    q_group(blk, 2u * part, a, am[0]);
    q_group(blk, 2u * part + 1u, b, am[1]);
    [[unroll]] for (uint i = 0u; i < 4u; i++) {
        q[i] = a[i];
        q[4u + i] = b[i];
    }
}
