// SPDX-License-Identifier: MIT
// Numerically stable softmax over each row (max subtracted first). One workgroup per row.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/reduce.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; uint stride; } p;

void main() {
    uint b = flat_group() * p.stride;
    float m = -1.0 / 0.0;
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) m = max(m, x[b + i]);
    m = wg_max(m);
    float s = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) s += exp(x[b + i] - m);
    float inv = 1.0 / wg_sum(s);
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) o[b + i] = exp(x[b + i] - m) * inv;
}
