// SPDX-License-Identifier: MIT
// Causal attention for a batch of query tokens (prefill) against the KV cache, as
// attn_prefill.comp computes it (online softmax over blocks of keys, no n x n
// score matrix), with the two products on cooperative matrices: S = Q K^T and
// O += P V, f16 x f16 -> f32. Workgroup (query tile, head): BQ = 16 queries, keys
// in blocks of BKV = 32; four subgroups share each product's TM x TN matrices.
// head_dim a multiple of 32, at most 128 (runtime/kernels/select.c checks; else the plain
// kernel runs). O stays in shared memory in f32: each block rescales it by the
// softmax's correction alpha before adding P V, which a matrix in registers cannot
// do row by row.
//
// Written against GL_NV_cooperative_matrix and rewritten to KHR at build time
// (cmake/spv_coopmat.c): matrix types must stay A = TM x TK, B = TK x TN,
// accumulator = TM x TN in constants 1, 2, 3. Here M runs over queries, N over keys
// (S) or head dimensions (O), K over head dimensions (S) or keys (O).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_NV_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_shader_subgroup_basic : require
#include "common/common.glsl"
#include "common/kv.glsl"

layout(constant_id = 1) const uint TM = 16; // divides BQ
layout(constant_id = 2) const uint TN = 16; // divides BKV and 32
layout(constant_id = 3) const uint TK = 16; // divides BKV and 32
#define BQ 16u
#define BKV 32u
#define HD 128u       // most head dimensions
#define QS (HD + 8u)  // row strides of the f16 tiles (elements; 16-byte multiples)
#define PS (BKV + 8u)

layout(binding = 0) readonly buffer QKV { float qkv[]; };
layout(binding = 1) readonly buffer KC { uint kc[]; };
layout(binding = 2) readonly buffer VC { uint vc[]; };
layout(binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { PUSH_ATTN_PREFILL } p; // common/push_constants.h

shared float16_t qs[BQ * QS];   // queries (scaled), A of S
shared float16_t kvs[BKV * QS]; // the block's keys (B of S, column-major), then its values (B of O)
shared float ss[BQ * BKV];      // scores
shared float16_t ps[BQ * PS];   // probabilities, A of O
shared float os[BQ * HD];       // the output rows so far
shared float cs[4u * TM * TN];  // per subgroup, one product matrix on its way into os
shared float row_m[BQ], row_l[BQ], row_alpha[BQ];

// f16 for the matrices, clamped to its range: an 8-bit cache's value q * scale may
// pass 65504 where the f16 cache held 65504 (inf would turn the row into NaN).
float16_t to_f16(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }

#define MAT_A fcoopmatNV<16, gl_ScopeSubgroup, TM, TK>
#define MAT_B fcoopmatNV<16, gl_ScopeSubgroup, TK, TN>
#define MAT_C fcoopmatNV<32, gl_ScopeSubgroup, TM, TN>

void main() {
    const uint tid = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint t0 = gl_WorkGroupID.x * BQ, h = gl_WorkGroupID.y;
    const uint g = h / (p.n_head / p.n_head_kv), hd = p.head_dim;
    for (uint e = tid; e < BQ * hd; e += WG) {
        uint qi = e / hd, d = e % hd;
        qs[qi * QS + d] = to_f16(t0 + qi < p.n_tokens ? qkv[(t0 + qi) * p.qkv_stride + h * hd + d] * p.scale : 0.0);
        os[qi * HD + d] = 0.0;
    }
    if (tid < BQ) { row_m[tid] = -1.0 / 0.0; row_l[tid] = 0.0; }
    uint kv_end = p.pos0 + min(t0 + BQ, p.n_tokens); // one past the last query's position
    barrier();
    for (uint kb = 0u; kb < kv_end; kb += BKV) {
        for (uint e = tid; e < BKV * hd; e += WG) {
            uint j = e / hd, d = e % hd;
            kvs[j * QS + d] = to_f16(kb + j < kv_end ? KV_READ(kc, p.row0 + kb + j, g * hd + d, p.kv_dim, p.n_rows) : 0.0);
        }
        barrier();
        // S = Q K^T: (BQ / TM) x (BKV / TN) matrices, summed over the head in K order.
        for (uint m = sg; m < (BQ / TM) * (BKV / TN); m += 4u) {
            uint q0 = (m % (BQ / TM)) * TM, j0 = (m / (BQ / TM)) * TN;
            MAT_C acc = MAT_C(0.0);
            for (uint d0 = 0u; d0 < hd; d0 += TK) {
                MAT_A a;
                MAT_B b;
                coopMatLoadNV(a, qs, q0 * QS + d0, QS, false);
                coopMatLoadNV(b, kvs, j0 * QS + d0, QS, true); // (d, j) at j * QS + d
                acc = coopMatMulAddNV(a, b, acc);
            }
            coopMatStoreNV(acc, ss, q0 * BKV + j0, BKV, false);
        }
        barrier();
        if (tid < BQ) { // the causal mask and the online softmax, one row per thread
            float mb = row_m[tid];
            for (uint j = 0u; j < BKV; j++) {
                bool live = t0 + tid < p.n_tokens && kb + j <= p.pos0 + t0 + tid;
                ss[tid * BKV + j] = live ? ss[tid * BKV + j] : -1.0 / 0.0;
                mb = max(mb, ss[tid * BKV + j]);
            }
            float alpha = mb == -1.0 / 0.0 ? 1.0 : exp(row_m[tid] - mb);
            float sum = 0.0;
            for (uint j = 0u; j < BKV; j++) {
                float pj = ss[tid * BKV + j] == -1.0 / 0.0 ? 0.0 : exp(ss[tid * BKV + j] - mb);
                ps[tid * PS + j] = float16_t(pj);
                sum += pj;
            }
            row_l[tid] = row_l[tid] * alpha + sum;
            row_m[tid] = mb;
            row_alpha[tid] = alpha;
        }
        for (uint e = tid; e < BKV * hd; e += WG) { // V replaces K (the barrier above ended the K reads)
            uint j = e / hd, d = e % hd;
            kvs[j * QS + d] = to_f16(kb + j < kv_end ? KV_READ(vc, p.row0 + kb + j, g * hd + d, p.kv_dim, p.n_rows) : 0.0);
        }
        barrier();
        // O = alpha O + P V: (BQ / TM) x (hd / TN) matrices, summed over the block's keys.
        const uint cb = sg * TM * TN;
        for (uint m = sg; m < (BQ / TM) * (hd / TN); m += 4u) {
            uint q0 = (m % (BQ / TM)) * TM, d0 = (m / (BQ / TM)) * TN;
            MAT_C acc = MAT_C(0.0);
            for (uint j0 = 0u; j0 < BKV; j0 += TK) {
                MAT_A a;
                MAT_B b;
                coopMatLoadNV(a, ps, q0 * PS + j0, PS, false);
                coopMatLoadNV(b, kvs, j0 * QS + d0, QS, false); // (j, d) at j * QS + d
                acc = coopMatMulAddNV(a, b, acc);
            }
            coopMatStoreNV(acc, cs, cb, TN, false);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < TM * TN; e += gl_SubgroupSize) {
                uint qi = q0 + e / TN, d = d0 + e % TN;
                os[qi * HD + d] = os[qi * HD + d] * row_alpha[qi] + cs[cb + e];
            }
            subgroupBarrier();
        }
        barrier();
    }
    for (uint e = tid; e < BQ * hd; e += WG) {
        uint qi = e / hd, d = e % hd;
        if (t0 + qi < p.n_tokens) o[(t0 + qi) * p.o_stride + h * hd + d] = os[qi * HD + d] / row_l[qi];
    }
}
