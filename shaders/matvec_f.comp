// SPDX-License-Identifier: MIT
// y[row0 + r] = W[r,:] . x for one token (decode), float weights (F32, or F16/BF16
// by define). ROWS rows per workgroup; f32 accumulation; workgroup reduction.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/weights_float.glsl"

layout(constant_id = 1) const uint ROWS = 2;
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) writeonly buffer Y { float y[]; };
layout(push_constant) uniform P { uint K; uint M; uint row0; } p;

shared float part[ROWS][WG];

void main() {
    uint r0 = flat_group() * ROWS, tid = gl_LocalInvocationID.x;
    float acc[ROWS];
    [[unroll]] for (uint j = 0; j < ROWS; j++) acc[j] = 0.0;
    for (uint k = tid; k < p.K; k += WG) {
        float xv = x[k];
        [[unroll]] for (uint j = 0; j < ROWS; j++)
            if (r0 + j < p.M) acc[j] += w_at((r0 + j) * p.K + k) * xv;
    }
    [[unroll]] for (uint j = 0; j < ROWS; j++) part[j][tid] = acc[j];
    barrier();
    [[unroll]] for (uint s = WG / 2; s > 0; s >>= 1) {
        if (tid < s) [[unroll]] for (uint j = 0; j < ROWS; j++) part[j][tid] += part[j][tid + s];
        barrier();
    }
    if (tid < ROWS && r0 + tid < p.M) y[p.row0 + r0 + tid] = part[tid][0];
}
