// SPDX-License-Identifier: MIT
// Streaming read of a large buffer, to measure the memory bandwidth a kernel can
// attain (drivers do not report it). Each thread reads 16-byte vectors in a grid-
// stride loop, four independent loads in flight; consecutive threads read
// consecutive vectors, so every load instruction is fully coalesced. The values
// are folded into one word per workgroup and written out, so no load is dead code.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) readonly buffer Src { uvec4 src[]; };
layout(binding = 1) writeonly buffer Dst { uint dst[]; }; // one word per workgroup
layout(push_constant) uniform P { PUSH_BANDWIDTH } p; // common/push_constants.h

shared uint wg_fold;

void main() {
    const uint stride = gl_NumWorkGroups.x * WG;
    uint i = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
    uvec4 a = uvec4(0), b = uvec4(0), c = uvec4(0), d = uvec4(0);
    for (; i + 3 * stride < p.n; i += 4 * stride) {
        a ^= src[i];
        b ^= src[i + stride];
        c ^= src[i + 2 * stride];
        d ^= src[i + 3 * stride];
    }
    for (; i < p.n; i += stride) a ^= src[i];
    const uvec4 v = a ^ b ^ c ^ d;
    if (gl_LocalInvocationID.x == 0) wg_fold = 0;
    barrier();
    atomicXor(wg_fold, v.x ^ v.y ^ v.z ^ v.w);
    barrier();
    if (gl_LocalInvocationID.x == 0) dst[gl_WorkGroupID.x] = wg_fold;
}
