// SPDX-License-Identifier: MIT
// Y[t, row0 + r] = W[r,:] . X[t,:] for a batch of tokens (prefill), quantized
// weights (the type by define: common/quant.glsl). The tiling of matmul_f.comp:
// 128 threads compute a 64-row x 32-token tile, each thread 4 x 4 outputs; each
// step of 32 along K dequantizes the 64 x 32 weight tile into shared memory once
// (a thread per 16 values), so every weight is decoded once per 32 tokens. f32
// accumulation; activations stay f32.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/quant.glsl"

#define BM 64
#define BN 32
#define BK 32
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; }; // p.add: y += W x (the residual)
layout(push_constant) uniform P {
    uint K; uint M; uint N; uint x_stride; uint y_stride; uint row0; uint add;
    uint x_off; // where x starts in its binding, in floats
} p;

shared float ws[BK][BM + 1];
shared float xs[BK][BN + 1];

void main() {
    q_init();
    // WG must be 128 for this tiling.
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
    uint tm = (tid % 16) * 4, tn = (tid / 16) * 4;
    uint wr = tid % BM, wg = tid / BM; // this thread's weight row and group of 16 in each step
    float acc[4][4];
    [[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;
    for (uint k0 = 0; k0 < p.K; k0 += BK) { // K is a multiple of 32 for every quantized type
        uint k = k0 + 16 * wg;
        if (m0 + wr < p.M) {
            vec4 q[4];
            vec2 am;
            q_group(q_blk(m0 + wr, k / QK, p.K), k % QK / 16, q, am);
            [[unroll]] for (uint i = 0; i < 4; i++) {
                vec4 v = q_value(q[i], am);
                [[unroll]] for (uint c = 0; c < 4; c++) ws[16 * wg + 4 * i + c][wr] = v[c];
            }
        } else {
            [[unroll]] for (uint i = 0; i < 16; i++) ws[16 * wg + i][wr] = 0.0;
        }
        [[unroll]] for (uint l = 0; l < BN * BK / 128; l++) {
            uint e = tid + l * 128, t = e / BK, kk = e % BK;
            xs[kk][t] = n0 + t < p.N ? x[p.x_off + (n0 + t) * p.x_stride + k0 + kk] : 0.0;
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; kk++) {
            float a[4], b[4];
            [[unroll]] for (uint i = 0; i < 4; i++) a[i] = ws[kk][tm + i];
            [[unroll]] for (uint j = 0; j < 4; j++) b[j] = xs[kk][tn + j];
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
