// SPDX-License-Identifier: MIT
// y[t, row0 + r] = W[r,:] . x[t,:] for one token (decode) or a few (NT: short
// prompts), quantized weights (the type by define: common/quant.glsl). Bandwidth-bound: each weight byte is read once, in
// whole words; ROWS rows per workgroup share each load of x. A thread takes the
// parts (32 values) it, it + WG, ... of the row, multiplies the stored levels with
// x and applies the group's scale once per 16 values (the offset, for Q4_K and
// Q5_K, through the sum of x). f32 throughout; common/reduce_rows.glsl sums the
// partials with subgroupAdd when SUBGROUP_REDUCE, else through shared memory.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef NO_SUBGROUP_ARITH // the _nosg build for devices without it (cmake/shaders.cmake)
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/common.glsl"
#include "common/quant.glsl"

layout(constant_id = 1) const uint ROWS = 2;
layout(constant_id = 2) const bool SUBGROUP_REDUCE = false;
// Tokens per dispatch: 1 for decode; more for short prompts, where each weight
// part is decoded once and applied to every token's x.
layout(constant_id = 3) const uint NT = 1;
layout(binding = 1) readonly buffer X { vec4 x4[]; };
layout(binding = 2) buffer Y { float y[]; };
layout(push_constant) uniform P {
    uint K; uint M; uint row0; uint add; // add: y += W x
    uint n_tokens; uint x_stride; uint y_stride; // tokens (<= NT) and their row strides, in floats
    uint x_off; // where x starts in its binding, in floats (a multiple of 4)
} p;

#include "common/reduce_rows.glsl"

void main() {
    q_init();
    uint tid = gl_LocalInvocationID.x, r0 = flat_group() * ROWS;
    uint nb = p.K / QK;
    [[unroll]] for (uint j = 0; j < ROWS * NT; j++) acc[j] = 0.0;

    if (NT == 1u) { // decode: each load of x serves the ROWS rows
        for (uint it = tid; it < nb * QP; it += WG) {
            uint b = it / QP, part = it % QP;
            vec4 xv[8];
            [[unroll]] for (uint g = 0; g < 2; g++) {
                uint x0 = (p.x_off + b * QK + q_pos(part, g)) >> 2;
                [[unroll]] for (uint i = 0; i < 4; i++) xv[4 * g + i] = x4[x0 + i];
            }
#ifdef Q_HAS_MIN
            vec2 xsum = vec2(dot(xv[0] + xv[1] + xv[2] + xv[3], vec4(1.0)), dot(xv[4] + xv[5] + xv[6] + xv[7], vec4(1.0)));
#endif
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (r0 + r >= p.M) break;
                vec4 q[8];
                vec2 am[2];
                q_part(q_blk(r0 + r, b, p.K), part, q, am);
                [[unroll]] for (uint g = 0; g < 2; g++) {
                    float s = dot(q[4 * g], xv[4 * g]) + dot(q[4 * g + 1], xv[4 * g + 1]) +
                              dot(q[4 * g + 2], xv[4 * g + 2]) + dot(q[4 * g + 3], xv[4 * g + 3]);
                    acc[r] += am[g].x * s;
#ifdef Q_HAS_MIN
                    acc[r] += am[g].y * xsum[g];
#endif
                }
            }
        }
        reduce_rows_store(r0);
        return;
    }

    // A few tokens: each weight part is decoded once, then applied to every token.
    for (uint it = tid; it < nb * QP; it += WG) {
        uint b = it / QP, part = it % QP;
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            if (r0 + r >= p.M) break;
            vec4 q[8];
            vec2 am[2];
            q_part(q_blk(r0 + r, b, p.K), part, q, am);
            [[unroll]] for (uint t = 0; t < NT; t++) {
                if (t >= p.n_tokens) break;
                vec4 xv[8];
                [[unroll]] for (uint g = 0; g < 2; g++) {
                    uint x0 = (p.x_off + t * p.x_stride + b * QK + q_pos(part, g)) >> 2;
                    [[unroll]] for (uint i = 0; i < 4; i++) xv[4 * g + i] = x4[x0 + i];
                }
                [[unroll]] for (uint g = 0; g < 2; g++) {
                    float s = dot(q[4 * g], xv[4 * g]) + dot(q[4 * g + 1], xv[4 * g + 1]) +
                              dot(q[4 * g + 2], xv[4 * g + 2]) + dot(q[4 * g + 3], xv[4 * g + 3]);
                    acc[t * ROWS + r] += am[g].x * s;
#ifdef Q_HAS_MIN
                    acc[t * ROWS + r] += am[g].y * dot(xv[4 * g] + xv[4 * g + 1] + xv[4 * g + 2] + xv[4 * g + 3], vec4(1.0));
#endif
                }
            }
        }
    }

    reduce_rows_store(r0);
}
