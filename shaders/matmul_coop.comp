// SPDX-License-Identifier: MIT
// Y[t, row0 + r] = W[r,:] . X[t,:] for a batch of tokens (prefill, logits over many
// rows) on cooperative matrices (tensor cores, WMMA, XMX): f16 x f16 products, f32
// accumulation. The weight type by define: W_FLOAT (with W_F16 / W_BF16, else F32:
// common/weights_float.glsl) or a quantized type (common/quant.glsl; Q8_0 when none).
// The same push constants as matmul_q.comp and matmul_f.comp, so ops.c swaps them.
//
// Written against GL_NV_cooperative_matrix, which Debian 12's glslang compiles, and
// rewritten to VK_KHR_cooperative_matrix at build time (cmake/spv_coopmat.c). That
// tool reads each matrix type's role from its shape, so the shapes must stay
// A = TM x TK, B = TK x TN, accumulator = TM x TN in constants 1, 2, 3.
//
// The matrix shape (TM, TN, TK) is the device's (device.c picks it); WG = 4
// subgroups, each computing 2 x 2 matrices of TM x TN, so a workgroup's tile is
// BM = 4 TM weight rows x BN = 4 TN tokens. Each step of BK = 32 along K writes the
// BM x 32 weight tile to shared memory as f16 (dequantized once per workgroup) and
// the BN x 32 activation tile as f16; every output's sum over K runs in K order
// whatever the batch (batch invariance), in f32.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common/common.glsl"
#ifdef W_FLOAT
#include "common/weights_float.glsl"
#else
#include "common/quant.glsl"
#endif

layout(constant_id = 1) const uint TM = 16;
layout(constant_id = 2) const uint TN = 16;
layout(constant_id = 3) const uint TK = 16; // divides BK
const uint BM = 4u * TM, BN = 4u * TN;
#define BK 32u
// Row stride of the f16 tiles, in elements: 80 bytes keeps each matrix load
// 16-byte aligned and staggers the rows over shared-memory banks.
#define SA (BK + 8u)

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; }; // p.add: y += W x (the residual)
layout(push_constant) uniform P { PUSH_MATMUL } p; // common/push_constants.h

shared float16_t ws[BM * SA]; // ws[r][k]: weight rows, the A matrices (row-major)
shared float16_t xs[BN * SA]; // xs[t][k]: token rows, the B matrices (column-major)
shared float cs[4u * TM * TN]; // per subgroup, one TM x TN result on its way out (column-major)

// f16 for the matrices, clamped to its range (inf would turn whole outputs into NaN).
float16_t to_f16(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }

#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, TM, TK>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, TK, TN>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, TM, TN>

void main() {
#ifndef W_FLOAT
    q_init();
#endif
    const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
    const uint sm = (sg & 1u) * 2u * TM, sn = (sg >> 1) * 2u * TN; // this subgroup's 2TM x 2TN
    MAT_C acc[4];
    [[unroll]] for (uint i = 0u; i < 4u; i++) acc[i] = MAT_C(0.0);

    for (uint k0 = 0u; k0 < p.K; k0 += BK) {
#ifdef W_FLOAT
        for (uint e = tid; e < BM * BK; e += WG) {
            uint r = e / BK, k = e % BK;
            float v = m0 + r < p.M && k0 + k < p.K ? w_at((m0 + r) * p.K + k0 + k) : 0.0;
            ws[r * SA + k] = to_f16(v);
        }
#else
        // Groups of 16 values (K is a multiple of 32 for every quantized type).
        for (uint g = tid; g < BM * 2u; g += WG) {
            uint r = g >> 1, h = g & 1u, k = k0 + 16u * h, o = r * SA + 16u * h;
            if (m0 + r < p.M) {
                vec4 q[4];
                vec2 am;
                q_group(q_blk(m0 + r, k / QK, p.K), k % QK / 16u, q, am);
                [[unroll]] for (uint i = 0u; i < 4u; i++) {
                    vec4 v = q_value(q[i], am);
                    [[unroll]] for (uint c = 0u; c < 4u; c++) ws[o + 4u * i + c] = to_f16(v[c]);
                }
            } else {
                [[unroll]] for (uint i = 0u; i < 16u; i++) ws[o + i] = float16_t(0.0);
            }
        }
#endif
        for (uint e = tid; e < BN * BK; e += WG) {
            uint t = e / BK, k = e % BK;
            float v = n0 + t < p.N && k0 + k < p.K ? x[p.x_off + (n0 + t) * p.x_stride + k0 + k] : 0.0;
            xs[t * SA + k] = to_f16(v);
        }
        barrier();
        for (uint kk = 0u; kk < BK; kk += TK) {
            MAT_A a[2];
            MAT_B b[2];
            [[unroll]] for (uint i = 0u; i < 2u; i++) coopMatLoadNV(a[i], ws, (sm + i * TM) * SA + kk, SA, false);
            [[unroll]] for (uint j = 0u; j < 2u; j++) coopMatLoadNV(b[j], xs, (sn + j * TN) * SA + kk, SA, true);
            [[unroll]] for (uint i = 0u; i < 2u; i++)
                [[unroll]] for (uint j = 0u; j < 2u; j++) acc[2u * i + j] = coopMatMulAddNV(a[i], b[j], acc[2u * i + j]);
        }
        barrier();
    }

    // Out through shared memory: y is token-major (element (r, t) at t * y_stride + r),
    // rows and tokens may end mid-matrix, and p.add reads y first.
    const uint cb = sg * TM * TN;
    [[unroll]] for (uint i = 0u; i < 2u; i++) [[unroll]] for (uint j = 0u; j < 2u; j++) {
        coopMatStoreNV(acc[2u * i + j], cs, cb, TM, true);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint e = lane; e < TM * TN; e += gl_SubgroupSize) {
            uint r = m0 + sm + i * TM + e % TM, t = n0 + sn + j * TN + e / TM;
            if (r < p.M && t < p.N) {
                uint o = t * p.y_stride + p.row0 + r;
                y[o] = p.add != 0u ? y[o] + cs[cb + e] : cs[cb + e];
            }
        }
        subgroupBarrier();
    }
}
