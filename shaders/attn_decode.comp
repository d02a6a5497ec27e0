// SPDX-License-Identifier: MIT
// Attention for one query token against the KV cache (decode), split over the KV
// length: workgroup (chunk c, KV head g) handles positions [c*chunk, (c+1)*chunk)
// for the G query heads that share KV head g, so each K and V row is read once for
// all of them. Online softmax; the partial (max, sum, output) per (head, chunk)
// goes to `part` and attn_combine.comp merges the chunks.
// One thread per head dimension (head_dim <= WG = 128).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/kv.glsl"

#define MAX_G 8
#define BLK 128

layout(binding = 0) readonly buffer Q { float q[]; };
layout(binding = 1) readonly buffer KC { uint kc[]; };
#ifndef KV_Q8
layout(binding = 1) readonly buffer KC4 { uvec4 kc4[]; }; // the same K rows, 8 halves a load
#endif
layout(binding = 2) readonly buffer VC { uint vc[]; };
layout(binding = 3) writeonly buffer PART { float part[]; }; // [n_head][n_chunks][head_dim + 2]
layout(push_constant) uniform P {
    uint n_head; uint n_head_kv; uint head_dim; uint kv_dim; uint kv_len; uint row0; uint n_rows; uint chunk;
    uint n_chunks; float scale;
} p;

shared float qs[MAX_G][128];
shared float sc[MAX_G][BLK];

void main() {
    uint tid = gl_LocalInvocationID.x, c = gl_WorkGroupID.x, g = gl_WorkGroupID.y;
    uint G = p.n_head / p.n_head_kv;
    uint start = c * p.chunk, end = min(p.kv_len, start + p.chunk);
    for (uint h = 0; h < G; h++)
        if (tid < p.head_dim) qs[h][tid] = q[(g * G + h) * p.head_dim + tid] * p.scale;
    float m[MAX_G], l[MAX_G], acc[MAX_G];
    [[unroll]] for (uint h = 0; h < MAX_G; h++) { m[h] = -1.0 / 0.0; l[h] = 0.0; acc[h] = 0.0; }
    barrier();
    for (uint blk = start; blk < end; blk += BLK) {
        uint n = min(BLK, end - blk);
        // Scores: thread j takes position blk + j.
        if (tid < n) {
            uint row = p.row0 + blk + tid;
            float s[MAX_G];
            [[unroll]] for (uint h = 0; h < MAX_G; h++) s[h] = 0.0;
#ifndef KV_Q8
            if ((p.head_dim & 7u) == 0u && (p.kv_dim & 7u) == 0u) { // the K row in 16-byte loads
                uint base = (row * p.kv_dim + g * p.head_dim) >> 3;
                for (uint c = 0; c < p.head_dim / 8u; c++) {
                    uvec4 u = kc4[base + c];
                    vec4 ka = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
                    vec4 kb = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
                    uint d = 8u * c;
                    [[unroll]] for (uint h = 0; h < MAX_G; h++) {
                        if (h >= G) break;
                        s[h] += dot(vec4(qs[h][d], qs[h][d + 1u], qs[h][d + 2u], qs[h][d + 3u]), ka) +
                                dot(vec4(qs[h][d + 4u], qs[h][d + 5u], qs[h][d + 6u], qs[h][d + 7u]), kb);
                    }
                }
            } else
#endif
            for (uint d = 0; d < p.head_dim; d++) {
                float kv = KV_READ(kc, row, g * p.head_dim + d, p.kv_dim, p.n_rows);
                [[unroll]] for (uint h = 0; h < MAX_G; h++) if (h < G) s[h] += qs[h][d] * kv;
            }
            [[unroll]] for (uint h = 0; h < MAX_G; h++) if (h < G) sc[h][tid] = s[h];
        }
        barrier();
        // New running max per head (every thread computes the same values).
        float alpha[MAX_G], mnew[MAX_G];
        [[unroll]] for (uint h = 0; h < MAX_G; h++) {
            if (h >= G) break;
            float mb = m[h];
            for (uint j = 0; j < n; j++) mb = max(mb, sc[h][j]);
            mnew[h] = mb;
            alpha[h] = exp(m[h] - mb);
        }
        barrier(); // everyone has read the raw scores
        if (tid < n) [[unroll]] for (uint h = 0; h < MAX_G; h++) if (h < G) sc[h][tid] = exp(sc[h][tid] - mnew[h]);
        barrier();
        [[unroll]] for (uint h = 0; h < MAX_G; h++) {
            if (h >= G) break;
            l[h] *= alpha[h];
            acc[h] *= alpha[h];
            m[h] = mnew[h];
        }
        for (uint j = 0; j < n; j++) {
            float v = tid < p.head_dim ? KV_READ(vc, p.row0 + blk + j, g * p.head_dim + tid, p.kv_dim, p.n_rows) : 0.0;
            [[unroll]] for (uint h = 0; h < MAX_G; h++) {
                if (h >= G) break;
                float pj = sc[h][j];
                l[h] += pj;
                acc[h] += pj * v;
            }
        }
        barrier();
    }
    for (uint h = 0; h < G; h++) {
        uint base = ((g * G + h) * p.n_chunks + c) * (p.head_dim + 2u);
        if (tid < p.head_dim) part[base + 2u + tid] = acc[h];
        if (tid == 0u) { part[base] = m[h]; part[base + 1u] = l[h]; }
    }
}
