// SPDX-License-Identifier: MIT
// Weight access for the float matrix types, row-major rows of K values. The
// binding is read in 16-byte words (wide loads; F16/BF16 need no 16-bit storage):
//   w_at(e)      element e of the bound window
//   w_load8(c)   elements 8c .. 8c+7 (c-th group of 8), as two vec4
layout(binding = 0) readonly buffer Wb { uvec4 w4[]; };
#ifdef W_F16
float w_at(uint e) {
    vec2 v = unpackHalf2x16(w4[e >> 3][(e >> 1) & 3u]);
    return (e & 1u) != 0u ? v.y : v.x;
}
void w_load8(uint c, out vec4 a, out vec4 b) {
    uvec4 u = w4[c];
    a = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
    b = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
}
#elif defined(W_BF16)
vec2 bf16x2(uint u) { return vec2(uintBitsToFloat(u << 16), uintBitsToFloat(u & 0xffff0000u)); }
float w_at(uint e) {
    vec2 v = bf16x2(w4[e >> 3][(e >> 1) & 3u]);
    return (e & 1u) != 0u ? v.y : v.x;
}
void w_load8(uint c, out vec4 a, out vec4 b) {
    uvec4 u = w4[c];
    a = vec4(bf16x2(u.x), bf16x2(u.y));
    b = vec4(bf16x2(u.z), bf16x2(u.w));
}
#else
float w_at(uint e) { return uintBitsToFloat(w4[e >> 2][e & 3u]); }
void w_load8(uint c, out vec4 a, out vec4 b) {
    a = uintBitsToFloat(w4[2u * c]);
    b = uintBitsToFloat(w4[2u * c + 1u]);
}
#endif
