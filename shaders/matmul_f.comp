// SPDX-License-Identifier: MIT
// Y[t, row0 + r] = W[r,:] . X[t,:] for a batch of tokens (prefill), float weights
// (F32, F16 or BF16 by define: common/weights_float.glsl), tiled by
// common/matmul_tile.glsl, walking K in slices of 16 (K may be any length).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/weights_float.glsl"

#define BK 16u
void q_init() {}

#include "common/matmul_tile.glsl"

void w_stage(uint buf, uint m0, uint k0) {
    [[unroll]] for (uint l = 0; l < (BM * BK + WG - 1) / WG; l++) {
        uint e = gl_LocalInvocationID.x + l * WG, r = e / BK, k = e % BK;
        if (r >= BM) break;
        ws_put(buf, k, r, m0 + r < p.M && k0 + k < p.K ? w_at((m0 + r) * p.K + k0 + k) : 0.0);
    }
}
