// SPDX-License-Identifier: MIT
// Weight access for the float matrix types: w_at(e) is element e of the bound
// window (row-major, rows of K). F16 is read as packed uint pairs, so it needs no
// 16-bit storage feature.
#ifdef W_F16
layout(binding = 0) readonly buffer Wb { uint w[]; };
float w_at(uint e) {
    vec2 v = unpackHalf2x16(w[e >> 1]);
    return (e & 1u) != 0u ? v.y : v.x;
}
#elif defined(W_BF16)
layout(binding = 0) readonly buffer Wb { uint w[]; };
float w_at(uint e) {
    uint u = w[e >> 1];
    return uintBitsToFloat((e & 1u) != 0u ? (u & 0xffff0000u) : (u << 16));
}
#else
layout(binding = 0) readonly buffer Wb { float w[]; };
float w_at(uint e) { return w[e]; }
#endif
