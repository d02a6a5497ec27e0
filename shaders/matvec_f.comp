// SPDX-License-Identifier: MIT
// y[t, row0 + r] = W[r,:] . x[t,:] for up to NT tokens, float weights (F32, or
// F16/BF16 by define), with the fused modes of common/matvec_common.glsl.
// Bandwidth-bound: rows whose length is a multiple of 8 are read in 16-byte words,
// 8 values a step, each load serving every token. f32 accumulation; every token's
// sums are formed in the same order whatever the number of tokens.
#version 450
#extension GL_GOOGLE_include_directive : require
#ifndef NO_SUBGROUP_ARITH // the _nosg build for devices without it (cmake/shaders.cmake)
#extension GL_KHR_shader_subgroup_arithmetic : require
#endif
#include "common/common.glsl"
#include "common/weights_float.glsl"
#include "common/matvec_common.glsl"

vec4 wa_r[ROWS], wb_r[ROWS];
float wv_r[ROWS];

void main() {
    uint tid = gl_LocalInvocationID.x, r0 = flat_group() * out_rows();
    bool norm = p.mode != 0u;
    [[unroll]] for (uint j = 0; j < ROWS * NT; j++) acc[j] = 0.0;
    [[unroll]] for (uint t = 0; t < NT; t++) acc_ss[t] = 0.0;
    if (p.K % 8u == 0u) {
        uint n8 = p.K / 8u;
        for (uint c = tid; c < n8; c += WG) {
            [[unroll]] for (uint r = 0; r < ROWS; r++)
                if (slot_ok(r0, r)) w_load8(w_row(r0, r) * n8 + c, wa_r[r], wb_r[r]);
            vec4 ga = vec4(1.0), gb = vec4(1.0);
            if (norm) { ga = nw4[2u * c]; gb = nw4[2u * c + 1u]; }
            [[unroll]] for (uint t = 0; t < NT; t++) {
                if (t >= p.n_tokens) break;
                uint x0 = (p.x_off + t * p.x_stride) / 4u + 2u * c;
                vec4 xa = x4[x0], xb = x4[x0 + 1u];
                if (norm) {
                    acc_ss[t] += dot(xa, xa) + dot(xb, xb);
                    xa *= ga;
                    xb *= gb;
                }
                [[unroll]] for (uint r = 0; r < ROWS; r++)
                    if (slot_ok(r0, r)) acc[t * ROWS + r] += dot(wa_r[r], xa) + dot(wb_r[r], xb);
            }
        }
    } else { // ragged rows: one value at a time
        for (uint k = tid; k < p.K; k += WG) {
            [[unroll]] for (uint r = 0; r < ROWS; r++)
                if (slot_ok(r0, r)) wv_r[r] = w_at(w_row(r0, r) * p.K + k);
            float gk = norm ? nw4[k >> 2][k & 3u] : 1.0;
            [[unroll]] for (uint t = 0; t < NT; t++) {
                if (t >= p.n_tokens) break;
                uint e = p.x_off + t * p.x_stride + k;
                float xv = x4[e >> 2][e & 3u];
                if (norm) {
                    acc_ss[t] += xv * xv;
                    xv *= gk;
                }
                [[unroll]] for (uint r = 0; r < ROWS; r++)
                    if (slot_ok(r0, r)) acc[t * ROWS + r] += wv_r[r] * xv;
            }
        }
    }
    reduce_rows_store(r0);
}
