// SPDX-License-Identifier: MIT
// Y[t, row0 + r] = W[r,:] . X[t,:] for a batch of tokens (prefill), float weights.
// Tiled through shared memory: a workgroup of 128 threads computes a 64-row x
// 32-token tile, each thread 4 x 4 outputs, walking K in steps of 16.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/weights_float.glsl"

#define BM 64
#define BN 32
#define BK 16
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; }; // p.add: y += W x (the residual)
layout(push_constant) uniform P {
    uint K; uint M; uint N; uint x_stride; uint y_stride; uint row0; uint add;
    uint x_off; // where x starts in its binding, in floats
} p;

shared float ws[BK][BM + 1];
shared float xs[BK][BN + 1];

void main() {
    // WG must be 128 for this tiling.
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
    uint tm = (tid % 16) * 4, tn = (tid / 16) * 4;
    float acc[4][4];
    [[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        [[unroll]] for (uint l = 0; l < BM * BK / 128; l++) {
            uint e = tid + l * 128, r = e / BK, k = e % BK;
            ws[k][r] = (m0 + r < p.M && k0 + k < p.K) ? w_at((m0 + r) * p.K + k0 + k) : 0.0;
        }
        [[unroll]] for (uint l = 0; l < BN * BK / 128; l++) {
            uint e = tid + l * 128, t = e / BK, k = e % BK;
            xs[k][t] = (n0 + t < p.N && k0 + k < p.K) ? x[p.x_off + (n0 + t) * p.x_stride + k0 + k] : 0.0;
        }
        barrier();
        [[unroll]] for (uint k = 0; k < BK; k++) {
            float a[4], b[4];
            [[unroll]] for (uint i = 0; i < 4; i++) a[i] = ws[k][tm + i];
            [[unroll]] for (uint j = 0; j < 4; j++) b[j] = xs[k][tn + j];
            [[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    [[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) {
        uint r = m0 + tm + i, t = n0 + tn + j;
        if (r < p.M && t < p.N) {
            uint o = t * p.y_stride + p.row0 + r;
            y[o] = p.add != 0u ? y[o] + acc[i][j] : acc[i][j];
        }
    }
}
