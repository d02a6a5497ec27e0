// SPDX-License-Identifier: MIT
// RoPE in place on the first n_rot dims of each head (the rest pass through). NEOX
// ("rotate half", phi3) pairs dimension i with i + n_rot/2; the normal form (llama
// layout, neox = 0) pairs 2i with 2i+1. The angles come from a cos/sin table
// computed on the host in double precision (LongRoPE factors and attn_factor folded
// in), so large positions lose nothing to GPU sin/cos. x holds n_tokens rows of
// x_stride floats; the heads to rotate start at head_offset, head_dim floats apart.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer T { vec2 cs[]; }; // [pos][n_rot/2] = (cos, sin)
layout(push_constant) uniform P { PUSH_ROPE } p; // common/push_constants.h

void main() {
    uint half_rot = p.n_rot / 2;
    uint id = gl_GlobalInvocationID.x; // over n_heads * half_rot
    uint t = gl_GlobalInvocationID.y;
    if (id >= p.n_heads * half_rot || t >= p.n_tokens) return;
    uint h = id / half_rot, i = id % half_rot;
    uint base = t * p.x_stride + p.head_offset + h * p.head_dim;
    uint i0 = p.neox != 0 ? i : 2 * i, i1 = p.neox != 0 ? i + half_rot : 2 * i + 1;
    vec2 c = cs[(p.pos0 + t) * half_rot + i];
    float a = x[base + i0], b = x[base + i1];
    x[base + i0] = a * c.x - b * c.y;
    x[base + i1] = a * c.y + b * c.x;
}
