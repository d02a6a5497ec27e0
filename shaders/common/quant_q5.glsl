// SPDX-License-Identifier: MIT
// Shared by Q5_0 and Q5_1: the fifth bits of a block's 32 values, a 32-bit
// little-endian word qh whose bit j belongs to value j.

// Bits 0..15 of h spread to bit 4 of 16 bytes (byte k of word i gets bit 4i + k),
// to OR onto the low nibbles of the values they belong to.
uvec4 q5_spread(uint h) {
    uvec4 n = (uvec4(h) >> uvec4(0u, 4u, 8u, 12u)) & 15u;
    return ((n & 1u) | (n & 2u) << 7 | (n & 4u) << 14 | (n & 8u) << 21) << 4;
}
