// SPDX-License-Identifier: MIT
// Causal attention for a batch of query tokens (prefill) against the KV cache,
// which already holds this batch's K and V. A workgroup takes one KV head and
// the query rows of its group: BT = RQ / G tokens x the G query heads that share
// that KV head (Phi-4: 40 heads over 10, G = 4), so each K and V block is loaded
// once for all of them. It walks the keys in blocks of BKV with an online softmax,
// so no n x n score matrix is ever stored. Shared memory holds vec4s along the
// head dimension (head_dim <= 128, a multiple of 4): a CPU driver pays per read
// instruction, a GPU likes the 16-byte reads.
//
// Batch invariance: each row's result depends only on its own position: blocks
// past its causal end add exact zeros (alpha 1, p 0), in the same block order.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/kv.glsl"

// Tile sizes (runtime/kernels/kernels.c): query rows per workgroup and keys per block.
layout(constant_id = 1) const uint RQ = 32;
layout(constant_id = 2) const uint BKV = 16;

layout(binding = 0) readonly buffer QKV { float qkv[]; };
layout(binding = 1) readonly buffer KC { uint kc[]; };
layout(binding = 2) readonly buffer VC { uint vc[]; };
layout(binding = 3) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { PUSH_ATTN_PREFILL } p; // common/push_constants.h

const uint KS4 = 33; // vec4s per key row (32 + 1 of padding)
shared vec4 qs[RQ * 32];  // [row][d / 4], row = head in group * BT + token in tile
shared vec4 ks[BKV * KS4]; // [key][d / 4]: the K block, then the V block
shared float ss[RQ * BKV]; // scores, then probabilities
shared float row_m[RQ], row_l[RQ], row_alpha[RQ];
vec4 acc[(RQ + 3u) / 4u]; // the rows rg, rg + NG, ... (NG >= 4 row groups: head_dim <= 128)

vec4 kv_read4(bool v, uint row, uint d) {
    if (v) return vec4(KV_READ(vc, row, d, p.kv_dim, p.n_rows), KV_READ(vc, row, d + 1u, p.kv_dim, p.n_rows),
                       KV_READ(vc, row, d + 2u, p.kv_dim, p.n_rows), KV_READ(vc, row, d + 3u, p.kv_dim, p.n_rows));
    return vec4(KV_READ(kc, row, d, p.kv_dim, p.n_rows), KV_READ(kc, row, d + 1u, p.kv_dim, p.n_rows),
                KV_READ(kc, row, d + 2u, p.kv_dim, p.n_rows), KV_READ(kc, row, d + 3u, p.kv_dim, p.n_rows));
}

void main() {
    uint tid = gl_LocalInvocationID.x;
    uint G = p.n_head / p.n_head_kv, BT = RQ / G, R = BT * G; // (the host keeps G <= RQ)
    uint t0 = gl_WorkGroupID.x * BT, g = gl_WorkGroupID.y;
    uint hd = p.head_dim, hq = hd / 4u;
    for (uint e = tid; e < R * hq; e += WG) {
        uint rr = e / hq, dq = e % hq, qi = rr % BT, h = g * G + rr / BT;
        uint src = (t0 + qi) * p.qkv_stride + h * hd + 4u * dq;
        qs[rr * 32u + dq] = t0 + qi < p.n_tokens
            ? vec4(qkv[src], qkv[src + 1u], qkv[src + 2u], qkv[src + 3u]) * p.scale : vec4(0.0);
    }
    if (tid < RQ) { row_m[tid] = -1.0 / 0.0; row_l[tid] = 0.0; }
    [[unroll]] for (uint i = 0; i < (RQ + 3u) / 4u; i++) acc[i] = vec4(0.0);
    uint NG = WG / hq, dq = tid % hq, rg = tid / hq; // this thread's 4 dims and row group (PV)
    uint kv_end = p.pos0 + min(t0 + BT, p.n_tokens); // one past the last query's position
    barrier();
    for (uint kb = 0; kb < kv_end; kb += BKV) {
        for (uint e = tid; e < BKV * hq; e += WG) {
            uint j = e / hq, d = e % hq;
            ks[j * KS4 + d] = kb + j < kv_end ? kv_read4(false, p.row0 + kb + j, g * hd + 4u * d) : vec4(0.0);
        }
        barrier();
        // Scores: an invocation takes one row and 4 keys (j, j + BKV/4, ...), so each
        // read of q serves 4 dot products.
        for (uint e = tid; e < R * (BKV / 4u); e += WG) {
            uint rr = e / (BKV / 4u), j = e % (BKV / 4u), qi = rr % BT;
            vec4 s = vec4(0.0);
            for (uint d = 0; d < hq; d++) {
                vec4 q = qs[rr * 32u + d];
                [[unroll]] for (uint c = 0; c < 4u; c++) s[c] += dot(q, ks[(j + c * (BKV / 4u)) * KS4 + d]);
            }
            [[unroll]] for (uint c = 0; c < 4u; c++) {
                uint jc = j + c * (BKV / 4u);
                bool seen = t0 + qi < p.n_tokens && kb + jc <= p.pos0 + t0 + qi;
                ss[rr * BKV + jc] = seen ? s[c] : -1.0 / 0.0;
            }
        }
        barrier();
        if (tid < R) {
            float mb = row_m[tid];
            for (uint j = 0; j < BKV; j++) mb = max(mb, ss[tid * BKV + j]);
            float alpha = mb == -1.0 / 0.0 ? 1.0 : exp(row_m[tid] - mb);
            float sum = 0.0;
            for (uint j = 0; j < BKV; j++) {
                float sj = ss[tid * BKV + j];
                float pj = sj == -1.0 / 0.0 ? 0.0 : exp(sj - mb);
                ss[tid * BKV + j] = pj;
                sum += pj;
            }
            row_l[tid] = row_l[tid] * alpha + sum;
            row_m[tid] = mb;
            row_alpha[tid] = alpha;
        }
        for (uint e = tid; e < BKV * hq; e += WG) { // V block replaces K: K is no longer read
            uint j = e / hq, d = e % hq;
            // (the barrier above ordered the score loop's K reads before these writes)
            ks[j * KS4 + d] = kb + j < kv_end ? kv_read4(true, p.row0 + kb + j, g * hd + 4u * d) : vec4(0.0);
        }
        barrier();
        if (rg < NG) {
            [[unroll]] for (uint i = 0; i < (RQ + 3u) / 4u; i++) {
                uint rr = rg + i * NG;
                if (rr < R) acc[i] *= row_alpha[rr];
            }
            for (uint j = 0; j < BKV; j++) {
                vec4 v = ks[j * KS4 + dq];
                [[unroll]] for (uint i = 0; i < (RQ + 3u) / 4u; i++) {
                    uint rr = rg + i * NG;
                    if (rr < R) acc[i] += ss[rr * BKV + j] * v;
                }
            }
        }
        barrier();
    }
    if (rg < NG)
        [[unroll]] for (uint i = 0; i < (RQ + 3u) / 4u; i++) {
            uint rr = rg + i * NG, qi = rr % BT, h = g * G + rr / BT;
            if (rr < R && t0 + qi < p.n_tokens) {
                uint dst = (t0 + qi) * p.o_stride + h * hd + 4u * dq;
                vec4 r = acc[i] / row_l[rr];
                o[dst] = r.x, o[dst + 1u] = r.y, o[dst + 2u] = r.z, o[dst + 3u] = r.w;
            }
        }
}
