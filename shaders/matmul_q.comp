// SPDX-License-Identifier: MIT
// Y[t, row0 + r] = W[r,:] . X[t,:] for a batch of tokens (prefill), quantized
// weights (the type by define: common/quant.glsl), tiled by common/matmul_tile.glsl.
// Each step of 32 along K dequantizes the BM x 32 weight slice into shared memory
// once (an invocation per 16 values), so every weight is decoded once per BN tokens.
// f32 values and accumulation; built with F16MATH, f16 slices and packed f16 sums
// (common/matmul_tile.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/quant.glsl"

#define BK 32u // K is a multiple of 32 for every quantized type

#include "common/matmul_tile.glsl"

void w_stage(uint buf, uint m0, uint k0) {
    // 2 x BM groups of 16 values: group g is row g % BM, values 16 (g / BM) ..
    [[unroll]] for (uint l = 0; l < (2u * BM + WG - 1) / WG; l++) {
        uint g = gl_LocalInvocationID.x + l * WG, wr = g % BM, h = g / BM, k = k0 + 16u * h;
        if (h >= 2u) break;
        if (m0 + wr < p.M) {
            vec4 q[4];
            vec2 am;
            q_group(q_blk(m0 + wr, k / QK, p.K), k % QK / 16u, q, am);
            [[unroll]] for (uint i = 0; i < 4; i++) {
                vec4 v = q_value(q[i], am);
                [[unroll]] for (uint c = 0; c < 4; c++) ws_put(buf, 16u * h + 4u * i + c, wr, v[c]);
            }
        } else {
            [[unroll]] for (uint i = 0; i < 16; i++) ws_put(buf, 16u * h + i, wr, 0.0);
        }
    }
}
