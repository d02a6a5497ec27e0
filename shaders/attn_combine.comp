// SPDX-License-Identifier: MIT
// Merges the per-chunk partial attention results of attn_decode.comp: one
// workgroup per (query head, token), one thread per head dimension. A token's
// chunk count follows from its position (token buffer), as in attn_decode.comp.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) readonly buffer PART { float part[]; };
layout(binding = 1) writeonly buffer O { float o[]; };
layout(binding = 2) readonly buffer TOK { uvec2 tok[]; }; // (row0, pos) per token
layout(push_constant) uniform P { PUSH_ATTN_COMBINE } p; // common/push_constants.h

void main() {
    uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y, d = gl_LocalInvocationID.x;
    if (d >= p.head_dim) return;
    uint n_chunks = (tok[t].y + p.chunk) / p.chunk; // ceil((pos + 1) / chunk)
    uint stride = p.head_dim + 2u, base = (t * p.n_head + h) * p.max_chunks * stride;
    float M = -1.0 / 0.0;
    for (uint c = 0; c < n_chunks; c++) M = max(M, part[base + c * stride]);
    float L = 0.0, acc = 0.0;
    for (uint c = 0; c < n_chunks; c++) {
        float w = exp(part[base + c * stride] - M);
        L += part[base + c * stride + 1u] * w;
        acc += part[base + c * stride + 2u + d] * w;
    }
    o[t * p.out_stride + h * p.head_dim + d] = acc / L;
}
