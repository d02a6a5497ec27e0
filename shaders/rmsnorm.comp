// SPDX-License-Identifier: MIT
// out[r,:] = x[r,:] / sqrt(mean(x[r,:]^2) + eps) * w. One workgroup per row.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/reduce.glsl"

layout(binding = 0) readonly buffer X { float x[]; };
layout(binding = 1) readonly buffer W { float w[]; };
layout(binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { PUSH_RMSNORM } p; // common/push_constants.h

void main() {
    uint row = flat_group();
    uint xb = row * p.x_stride, ob = row * p.o_stride;
    float ss = 0.0;
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) ss += x[xb + i] * x[xb + i];
    float scale = 1.0 / sqrt(wg_sum(ss) / float(p.n) + p.eps);
    for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) o[ob + i] = x[xb + i] * scale * w[i];
}
