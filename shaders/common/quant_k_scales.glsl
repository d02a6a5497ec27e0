// SPDX-License-Identifier: MIT
// Shared by Q4_K and Q5_K, whose 144- and 176-byte blocks are whole 16-byte words:
// the block read as uvec4s, and the 6-bit scales and mins of their headers. Their
// device layout is GGUF's (a tile is one block): d and dmin stay f16 in the header
// word, decoded by integer arithmetic (common.glsl), so no driver flushes them.

// Scale and min of sub-block j from the header h (d|dmin, then the 12 bytes):
// bytes 0..3 hold scales 0..3 and the top bits of scales 4..7, bytes 4..7 the same
// for the mins, bytes 8..11 the low nibbles of scale (low) and min (high) 4..7.
vec2 k_scale_min(uvec4 h, uint j) {
    uint s = (j & 3u) * 8u;
    uint lo_sc = (h.y >> s) & 63u, lo_m = (h.z >> s) & 63u;
    uint b = (h.w >> s) & 0xffu;
    uint hi_sc = (b & 15u) | ((h.y >> (s + 6u)) & 3u) << 4;
    uint hi_m = (b >> 4) | ((h.z >> (s + 6u)) & 3u) << 4;
    vec2 d = f16x2_to_vec2(h.x); // d, dmin: often subnormal, never flushed
    return j < 4u ? vec2(d.x * float(lo_sc), -(d.y * float(lo_m))) : vec2(d.x * float(hi_sc), -(d.y * float(hi_m)));
}
