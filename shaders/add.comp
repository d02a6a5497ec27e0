// SPDX-License-Identifier: MIT
// out = a + b elementwise (the residual); out may be a.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) readonly buffer A { float a[]; };
layout(binding = 1) readonly buffer B { float b[]; };
layout(binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint n; } p;

void main() {
    uint i = flat_group() * WG + gl_LocalInvocationID.x;
    if (i < p.n) o[i] = a[i] + b[i];
}
