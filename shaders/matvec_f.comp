// SPDX-License-Identifier: MIT
// y[t, row0 + r] = W[r,:] . x[t,:] for one token (decode) or a few (NT, short
// prompts), float weights (F32, or F16/BF16 by define). Bandwidth-bound: rows whose length is a multiple of 8 are read in
// 16-byte words, 8 values a step; ROWS rows per workgroup share each load of x.
// f32 accumulation; partial sums reduced with subgroupAdd when SUBGROUP_REDUCE,
// else through shared memory.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef NO_SUBGROUP_ARITH // the _nosg build for devices without it (cmake/shaders.cmake)
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/common.glsl"
#include "common/weights_float.glsl"

layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const bool SUBGROUP_REDUCE = false;
layout(constant_id = 3) const uint NT = 1; // tokens per dispatch (as in matvec_q.comp)
layout(binding = 1) readonly buffer X { vec4 x4[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint K; uint M; uint row0; uint add; // add: y += W x
    uint n_tokens; uint x_stride; uint y_stride; // tokens (<= NT) and their row strides, in floats
    uint x_off; // where x starts in its binding, in floats (a multiple of 4)
} p;

#include "common/reduce_rows.glsl"

void main() {
    uint tid = gl_LocalInvocationID.x, r0 = flat_group() * ROWS;
    [[unroll]] for (uint j = 0; j < ROWS * NT; j++) acc[j] = 0.0;
    if (NT == 1u && p.K % 8u == 0u) { // decode: each load of x serves the ROWS rows
        for (uint c = tid; c < p.K / 8u; c += WG) {
            vec4 xa = x4[p.x_off / 4u + 2u * c], xb = x4[p.x_off / 4u + 2u * c + 1u];
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (r0 + r >= p.M) break;
                vec4 wa, wb;
                w_load8((r0 + r) * (p.K / 8u) + c, wa, wb);
                acc[r] += dot(wa, xa) + dot(wb, xb);
            }
        }
    } else if (p.K % 8u == 0u) { // a few tokens: each weight load serves them all
        uint n8 = p.K / 8u;
        for (uint c = tid; c < n8; c += WG) {
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (r0 + r >= p.M) break;
                vec4 wa, wb;
                w_load8((r0 + r) * n8 + c, wa, wb);
                [[unroll]] for (uint t = 0; t < NT; t++) {
                    if (t >= p.n_tokens) break;
                    uint x0 = (p.x_off + t * p.x_stride) / 4u + 2u * c;
                    acc[t * ROWS + r] += dot(wa, x4[x0]) + dot(wb, x4[x0 + 1u]);
                }
            }
        }
    } else { // ragged rows: one value at a time
        for (uint k = tid; k < p.K; k += WG) {
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (r0 + r >= p.M) break;
                float wv = w_at((r0 + r) * p.K + k);
                [[unroll]] for (uint t = 0; t < NT; t++) {
                    if (t >= p.n_tokens) break;
                    uint e = p.x_off + t * p.x_stride + k;
                    acc[t * ROWS + r] += wv * x4[e >> 2][e & 3u];
                }
            }
        }
    }
    reduce_rows_store(r0);
}
