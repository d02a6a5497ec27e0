// SPDX-License-Identifier: MIT
// y[t, row0 + r] = W[r,:] . x[t,:] for up to NT tokens (decode: one per sequence),
// quantized weights (the type by define: common/quant.glsl), with the fused modes
// of common/matvec_common.glsl (RMSNorm folded in; SwiGLU over [G; U]).
// Bandwidth-bound: each weight byte is read once, in whole words, for all the
// tokens. A thread takes the parts (32 values) it, it + WG, ... of the ROWS rows,
// decodes each part once, then applies it to every token's x (read once per part
// and token, shared by the rows), applying the group's scale once per 16 values
// (the offset, for Q4_K and Q5_K, through the sum of x). f32 throughout; every
// token's sums are formed in the same order whatever the number of tokens.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef NO_SUBGROUP_ARITH // the _nosg build for devices without it (cmake/shaders.cmake)
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/common.glsl"
#include "common/quant.glsl"
#include "common/matvec_common.glsl"

// The decoded parts of this thread's ROWS rows (see acc in reduce_rows.glsl for
// why these are globals).
vec4 wq_part[ROWS * 8];
vec2 wq_am[ROWS * 2];

void main() {
    q_init();
    uint tid = gl_LocalInvocationID.x, r0 = flat_group() * out_rows();
    uint nb = p.K / QK;
    bool norm = p.mode != 0u;
    [[unroll]] for (uint j = 0; j < ROWS * NT; j++) acc[j] = 0.0;
    [[unroll]] for (uint t = 0; t < NT; t++) acc_ss[t] = 0.0;

    for (uint it = tid; it < nb * QP; it += WG) {
        uint b = it / QP, part = it % QP;
        if (NT == 1u) { // one token: each row's part is used as soon as it is decoded (fewer live registers)
            vec4 xv[8];
            [[unroll]] for (uint g = 0; g < 2; g++) {
                uint x0 = (p.x_off + b * QK + q_pos(part, g)) >> 2;
                [[unroll]] for (uint i = 0; i < 4; i++) xv[4 * g + i] = x4[x0 + i];
            }
            if (norm) {
                float ss = 0.0;
                [[unroll]] for (uint g = 0; g < 2; g++) {
                    uint g0 = (b * QK + q_pos(part, g)) >> 2;
                    [[unroll]] for (uint i = 0; i < 4; i++) {
                        ss += dot(xv[4 * g + i], xv[4 * g + i]);
                        xv[4 * g + i] *= nw4[g0 + i];
                    }
                }
                acc_ss[0] += ss;
            }
#ifdef Q_HAS_MIN
            vec2 xsum = vec2(dot(xv[0] + xv[1] + xv[2] + xv[3], vec4(1.0)), dot(xv[4] + xv[5] + xv[6] + xv[7], vec4(1.0)));
#endif
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (!slot_ok(r0, r)) continue;
                vec4 q[8];
                vec2 am[2];
                q_part(q_blk(w_row(r0, r), b, p.K), part, q, am);
                [[unroll]] for (uint g = 0; g < 2; g++) {
                    float s = dot(q[4 * g], xv[4 * g]) + dot(q[4 * g + 1], xv[4 * g + 1]) +
                              dot(q[4 * g + 2], xv[4 * g + 2]) + dot(q[4 * g + 3], xv[4 * g + 3]);
                    acc[r] += am[g].x * s;
#ifdef Q_HAS_MIN
                    acc[r] += am[g].y * xsum[g];
#endif
                }
            }
            continue;
        }
        [[unroll]] for (uint r = 0; r < ROWS; r++) {
            if (!slot_ok(r0, r)) continue;
            vec4 q[8];
            vec2 am[2];
            q_part(q_blk(w_row(r0, r), b, p.K), part, q, am);
            [[unroll]] for (uint i = 0; i < 8; i++) wq_part[8 * r + i] = q[i];
            wq_am[2 * r] = am[0];
            wq_am[2 * r + 1] = am[1];
        }
        vec4 gv[8];
        if (norm) [[unroll]] for (uint g = 0; g < 2; g++) {
            uint g0 = (b * QK + q_pos(part, g)) >> 2;
            [[unroll]] for (uint i = 0; i < 4; i++) gv[4 * g + i] = nw4[g0 + i];
        }
        [[unroll]] for (uint t = 0; t < NT; t++) {
            if (t >= p.n_tokens) break;
            vec4 xv[8];
            [[unroll]] for (uint g = 0; g < 2; g++) {
                uint x0 = (p.x_off + t * p.x_stride + b * QK + q_pos(part, g)) >> 2;
                [[unroll]] for (uint i = 0; i < 4; i++) xv[4 * g + i] = x4[x0 + i];
            }
            if (norm) {
                float ss = 0.0;
                [[unroll]] for (uint i = 0; i < 8; i++) {
                    ss += dot(xv[i], xv[i]);
                    xv[i] *= gv[i];
                }
                acc_ss[t] += ss;
            }
#ifdef Q_HAS_MIN
            vec2 xsum = vec2(dot(xv[0] + xv[1] + xv[2] + xv[3], vec4(1.0)), dot(xv[4] + xv[5] + xv[6] + xv[7], vec4(1.0)));
#endif
            [[unroll]] for (uint r = 0; r < ROWS; r++) {
                if (!slot_ok(r0, r)) continue;
                [[unroll]] for (uint g = 0; g < 2; g++) {
                    uint q0 = 8 * r + 4 * g;
                    float s = dot(wq_part[q0], xv[4 * g]) + dot(wq_part[q0 + 1], xv[4 * g + 1]) +
                              dot(wq_part[q0 + 2], xv[4 * g + 2]) + dot(wq_part[q0 + 3], xv[4 * g + 3]);
                    acc[t * ROWS + r] += wq_am[2 * r + g].x * s;
#ifdef Q_HAS_MIN
                    acc[t * ROWS + r] += wq_am[2 * r + g].y * xsum[g];
#endif
                }
            }
        }
    }
    reduce_rows_store(r0);
}
