// SPDX-License-Identifier: MIT
// Causal attention for a batch of query tokens (prefill) against the KV cache,
// which already holds this batch's K and V. Workgroup (query tile, head): BQ
// queries, walking the keys in blocks of BKV with an online softmax, so no n x n
// score matrix is ever stored. One thread per head dimension (head_dim <= 128).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/kv.glsl"

// Tile sizes (runtime/kernels.c picks 8 x 16 where shared memory is under 26,944 bytes).
layout(constant_id = 1) const uint BQ = 16;
layout(constant_id = 2) const uint BKV = 32;

layout(binding = 0) readonly buffer QKV { float qkv[]; };
layout(binding = 1) readonly buffer KC { uint kc[]; };
layout(binding = 2) readonly buffer VC { uint vc[]; };
layout(binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P {
    uint n_head; uint n_head_kv; uint head_dim; uint kv_dim; uint qkv_stride; uint o_stride; uint n_tokens; uint pos0;
    uint row0; uint n_rows; float scale;
} p;

shared float qs[BQ][128];
shared float ks[BKV][129];
shared float ss[BQ][BKV];
shared float row_m[BQ], row_l[BQ], row_alpha[BQ];

void main() {
    uint tid = gl_LocalInvocationID.x, t0 = gl_WorkGroupID.x * BQ, h = gl_WorkGroupID.y;
    uint g = h / (p.n_head / p.n_head_kv);
    uint hd = p.head_dim;
    for (uint e = tid; e < BQ * hd; e += WG) {
        uint qi = e / hd, d = e % hd;
        qs[qi][d] = t0 + qi < p.n_tokens ? qkv[(t0 + qi) * p.qkv_stride + h * hd + d] * p.scale : 0.0;
    }
    if (tid < BQ) { row_m[tid] = -1.0 / 0.0; row_l[tid] = 0.0; }
    float acc[BQ];
    [[unroll]] for (uint i = 0; i < BQ; i++) acc[i] = 0.0;
    uint kv_end = p.pos0 + min(t0 + BQ, p.n_tokens); // one past the last query's position
    barrier();
    for (uint kb = 0; kb < kv_end; kb += BKV) {
        for (uint e = tid; e < BKV * hd; e += WG) {
            uint j = e / hd, d = e % hd;
            ks[j][d] = kb + j < kv_end ? KV_READ(kc, p.row0 + kb + j, g * hd + d, p.kv_dim, p.n_rows) : 0.0;
        }
        barrier();
        for (uint e = tid; e < BQ * BKV; e += WG) {
            uint qi = e / BKV, j = e % BKV;
            float s = -1.0 / 0.0;
            if (t0 + qi < p.n_tokens && kb + j <= p.pos0 + t0 + qi) {
                s = 0.0;
                for (uint d = 0; d < hd; d++) s += qs[qi][d] * ks[j][d];
            }
            ss[qi][j] = s;
        }
        barrier();
        if (tid < BQ) {
            float mb = row_m[tid];
            for (uint j = 0; j < BKV; j++) mb = max(mb, ss[tid][j]);
            float alpha = mb == -1.0 / 0.0 ? 1.0 : exp(row_m[tid] - mb);
            float sum = 0.0;
            for (uint j = 0; j < BKV; j++) {
                float pj = ss[tid][j] == -1.0 / 0.0 ? 0.0 : exp(ss[tid][j] - mb);
                ss[tid][j] = pj;
                sum += pj;
            }
            row_l[tid] = row_l[tid] * alpha + sum;
            row_m[tid] = mb;
            row_alpha[tid] = alpha;
        }
        for (uint e = tid; e < BKV * hd; e += WG) { // V block replaces K: K is no longer read
            uint j = e / hd, d = e % hd;
            // (the barrier above ordered the score loop's K reads before these writes)
            ks[j][d] = kb + j < kv_end ? KV_READ(vc, p.row0 + kb + j, g * hd + d, p.kv_dim, p.n_rows) : 0.0;
        }
        barrier();
        if (tid < hd) {
            [[unroll]] for (uint qi = 0; qi < BQ; qi++) {
                float a = acc[qi] * row_alpha[qi];
                for (uint j = 0; j < BKV; j++) a += ss[qi][j] * ks[j][tid];
                acc[qi] = a;
            }
        }
        barrier();
    }
    if (tid < hd)
        for (uint qi = 0; qi < BQ; qi++)
            if (t0 + qi < p.n_tokens) o[(t0 + qi) * p.o_stride + h * hd + tid] = acc[qi] / row_l[qi];
}
