// SPDX-License-Identifier: MIT
// out[t,i] = SiLU(G[t,i]) * U[t,i] over the fused [G;U] rows of ffn_up (PHI4.md):
// each input row holds ff gate values, then ff up values.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { PUSH_SWIGLU } p; // common/push_constants.h

void main() {
    uint i = gl_GlobalInvocationID.x, t = gl_GlobalInvocationID.y;
    if (i >= p.ff || t >= p.n_tokens) return;
    float g = x[t * p.x_stride + i], u = x[t * p.x_stride + p.ff + i];
    o[t * p.o_stride + i] = g / (1.0 + exp(-g)) * u;
}
