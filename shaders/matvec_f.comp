// SPDX-License-Identifier: MIT
// y[row0 + r] = W[r,:] . x for one token (decode), float weights (F32, or F16/BF16
// by define). Bandwidth-bound: rows whose length is a multiple of 8 are read in
// 16-byte words, 8 values a step; ROWS rows per workgroup share each load of x.
// f32 accumulation; partial sums reduced with subgroupAdd when SUBGROUP_REDUCE,
// else through shared memory.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#include "common/common.glsl"
#include "common/weights_float.glsl"

layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const bool SUBGROUP_REDUCE = false;
layout(binding = 1) readonly buffer X { vec4 x4[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform P { uint K; uint M; uint row0; uint add; } p; // add: y += W x

#include "common/reduce_rows.glsl"

void main() {
    uint tid = gl_LocalInvocationID.x, r0 = flat_group() * ROWS;
    float acc[ROWS];
    [[unroll]] for (uint r = 0; r < ROWS; r++) acc[r] = 0.0;
    if (p.K % 8u == 0u) {
        uint n8 = p.K / 8u;
        for (uint c = tid; c < n8; c += WG) {
            vec4 xa = x4[2u * c], xb = x4[2u * c + 1u];
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (r0 + r >= p.M) break;
                vec4 wa, wb;
                w_load8((r0 + r) * n8 + c, wa, wb);
                acc[r] += dot(wa, xa) + dot(wb, xb);
            }
        }
    } else { // ragged rows: one value at a time
        for (uint k = tid; k < p.K; k += WG) {
            float xv = x4[k >> 2][k & 3u];
            [[unroll]] for (uint r = 0; r < ROWS; r++)
                if (r0 + r < p.M) acc[r] += w_at((r0 + r) * p.K + k) * xv;
        }
    }
    reduce_rows_store(acc, r0);
}
