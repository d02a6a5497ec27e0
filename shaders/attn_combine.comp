// SPDX-License-Identifier: MIT
// Merges the per-chunk partial attention results of attn_decode.comp: one
// workgroup per query head, one thread per head dimension.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) readonly buffer PART { float part[]; };
layout(binding = 1) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { uint head_dim; uint n_chunks; } p;

void main() {
    uint h = gl_WorkGroupID.x, d = gl_LocalInvocationID.x;
    if (d >= p.head_dim) return;
    uint stride = p.head_dim + 2u, base = h * p.n_chunks * stride;
    float M = -1.0 / 0.0;
    for (uint c = 0; c < p.n_chunks; c++) M = max(M, part[base + c * stride]);
    float L = 0.0, acc = 0.0;
    for (uint c = 0; c < p.n_chunks; c++) {
        float w = exp(part[base + c * stride] - M);
        L += part[base + c * stride + 1u] * w;
        acc += part[base + c * stride + 2u + d] * w;
    }
    o[h * p.head_dim + d] = acc / L;
}
