// SPDX-License-Identifier: MIT
// Decode attention for a batch of tokens, each the next token of its own sequence
// (continuous batching), with RoPE and the KV-cache store folded in. Token t
// (workgroup z) comes as its row of fused [Q;K;V], Q and K not yet rotated, and its
// (row0, pos) from the token buffer: its sequence's cache rows start at row0 and it
// goes to position pos. Workgroup (chunk c, KV head g, token t) handles positions
// [c*chunk, (c+1)*chunk) of that sequence for the G query heads sharing KV head g,
// so each K and V row is read once for all of them. The workgroup whose chunk holds
// pos also rotates and stores this token's K and V for head g (f16 rounded to
// nearest even, or 8-bit), and uses the stored values for that position. Online
// softmax; the partial (max, sum, output) per (token, head, chunk) goes to `part`
// and attn_combine.comp merges the chunks. Per-token values come from buffers, so a
// recorded command buffer serves every step (the host rewrites the token buffer
// and the dispatch size). One thread per head dimension (head_dim <= WG = 128).
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "common/kv.glsl"

#define MAX_G 8
#define BLK 128

layout(binding = 0) readonly buffer QKV { float qkv[]; };
layout(binding = 1) buffer KC { uint kc[]; };
#ifndef KV_Q8
layout(binding = 1) readonly buffer KC4 { uvec4 kc4[]; }; // the same K rows, 8 halves a load
#endif
layout(binding = 2) buffer VC { uint vc[]; };
layout(binding = 3) writeonly buffer PART { float part[]; }; // [token][n_head][max_chunks][head_dim + 2]
layout(binding = 4) readonly buffer TOK { uvec2 tok[]; };    // (row0, pos) per token
layout(binding = 5) readonly buffer T { vec2 cs[]; };        // RoPE (cos, sin) [pos][n_rot/2]
layout(push_constant) uniform P { PUSH_ATTN_DECODE } p; // common/push_constants.h

shared float qs[MAX_G][128];
shared float sc[MAX_G][BLK];
shared float knew[128], vnew[128]; // this token's K and V of head g, as the cache holds them

// Dimension d of the head at qkv[base ..], rotated to position pos as rope.comp does.
float rope_at(uint base, uint d, uint pos) {
    if (d >= p.n_rot) return qkv[base + d];
    uint hr = p.n_rot / 2u;
    uint i = p.neox != 0u ? d % hr : d / 2u;
    uint i0 = p.neox != 0u ? i : 2u * i, i1 = p.neox != 0u ? i + hr : 2u * i + 1u;
    vec2 c = cs[pos * hr + i];
    float a = qkv[base + i0], b = qkv[base + i1];
    return d == i0 ? a * c.x - b * c.y : a * c.y + b * c.x;
}

#ifdef KV_Q8
// Block b (32 values) of head g's K or V into cache row `row`, as kv_store.comp
// does; vals then holds what the cache gives back.
void store_q8(uint row, uint g, uint b, bool is_v) {
    float amax = 0.0;
    for (uint i = 0; i < 32u; i++) amax = max(amax, abs(is_v ? vnew[32u * b + i] : knew[32u * b + i]));
    float d = amax / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
    uint h = float_to_f16(d);
    float dh = f16_to_float(h);
    uint qbase = (row * p.kv_dim + g * p.head_dim + 32u * b) >> 2;
    for (uint w = 0; w < 8u; w++) {
        uint packed = 0u;
        for (uint j = 0; j < 4u; j++) {
            uint e = 32u * b + 4u * w + j;
            int q = clamp(int(roundEven((is_v ? vnew[e] : knew[e]) * id)), -127, 127);
            packed |= (uint(q) & 0xffu) << (8u * j);
            if (is_v) vnew[e] = float(q) * dh; else knew[e] = float(q) * dh;
        }
        if (is_v) vc[qbase + w] = packed; else kc[qbase + w] = packed;
    }
    // Scales are f16, two to a uint: the neighbouring block may belong to another
    // workgroup, hence atomics.
    uint si = row * (p.kv_dim >> 5) + ((g * p.head_dim) >> 5) + b;
    uint idx = ((p.n_rows * p.kv_dim) >> 2) + (si >> 1), shift = (si & 1u) * 16u;
    if (is_v) {
        atomicAnd(vc[idx], ~(0xffffu << shift));
        atomicOr(vc[idx], h << shift);
    } else {
        atomicAnd(kc[idx], ~(0xffffu << shift));
        atomicOr(kc[idx], h << shift);
    }
}
#endif

void main() {
    uint tid = gl_LocalInvocationID.x, c = gl_WorkGroupID.x, g = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
    uint G = p.n_head / p.n_head_kv;
    uint row0 = tok[t].x, pos = tok[t].y, kv_len = pos + 1u;
    uint n_chunks = (kv_len + p.chunk - 1u) / p.chunk;
    if (c >= n_chunks) return; // the grid covers the longest sequence of the batch
    uint start = c * p.chunk, end = min(kv_len, start + p.chunk);
    uint qb = t * p.qkv_stride, cur = row0 + pos;
    for (uint h = 0; h < G; h++)
        if (tid < p.head_dim) qs[h][tid] = rope_at(qb + (g * G + h) * p.head_dim, tid, pos) * p.scale;
    if (c == n_chunks - 1u) { // this chunk holds pos: store the token's K and V
        if (tid < p.head_dim) {
            knew[tid] = rope_at(qb + p.k_offset + g * p.head_dim, tid, pos);
            vnew[tid] = qkv[qb + p.k_offset + p.kv_dim + g * p.head_dim + tid];
        }
        barrier();
#ifdef KV_Q8
        if (tid < p.head_dim / 32u) store_q8(cur, g, tid, false);
        else if (tid >= 64u && tid - 64u < p.head_dim / 32u) store_q8(cur, g, tid - 64u, true);
#else
        if (tid < p.head_dim && (tid & 1u) == 0u) {
            // Rounded to nearest even on every driver (packHalf2x16's rounding is the driver's).
            uint dst = (cur * p.kv_dim + g * p.head_dim + tid) >> 1;
            uint kw = float_to_f16x2(vec2(knew[tid], knew[tid + 1u]));
            uint vw = float_to_f16x2(vec2(vnew[tid], vnew[tid + 1u]));
            kc[dst] = kw;
            vc[dst] = vw;
            knew[tid] = kv_half(kw, 0u);
            knew[tid + 1u] = kv_half(kw, 1u);
            vnew[tid] = kv_half(vw, 0u);
            vnew[tid + 1u] = kv_half(vw, 1u);
        }
#endif
    }
    float m[MAX_G], l[MAX_G], acc[MAX_G];
    [[unroll]] for (uint h = 0; h < MAX_G; h++) { m[h] = -1.0 / 0.0; l[h] = 0.0; acc[h] = 0.0; }
    barrier();
    for (uint blk = start; blk < end; blk += BLK) {
        uint n = min(BLK, end - blk);
        // Scores: thread j takes position blk + j.
        if (tid < n) {
            uint row = row0 + blk + tid;
            float s[MAX_G];
            [[unroll]] for (uint h = 0; h < MAX_G; h++) s[h] = 0.0;
            if (row == cur) {
                for (uint d = 0; d < p.head_dim; d++) {
                    float kv = knew[d];
                    [[unroll]] for (uint h = 0; h < MAX_G; h++) if (h < G) s[h] += qs[h][d] * kv;
                }
            } else
#ifndef KV_Q8
            if ((p.head_dim & 7u) == 0u && (p.kv_dim & 7u) == 0u) { // the K row in 16-byte loads
                uint base = (row * p.kv_dim + g * p.head_dim) >> 3;
                for (uint c8 = 0; c8 < p.head_dim / 8u; c8++) {
                    uvec4 u = kc4[base + c8];
                    vec4 ka = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
                    vec4 kb = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
                    uint d = 8u * c8;
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
            uint row = row0 + blk + j;
            float v = tid >= p.head_dim ? 0.0 : row == cur ? vnew[tid]
                                                          : KV_READ(vc, row, g * p.head_dim + tid, p.kv_dim, p.n_rows);
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
        uint base = ((t * p.n_head + g * G + h) * p.max_chunks + c) * (p.head_dim + 2u);
        if (tid < p.head_dim) part[base + 2u + tid] = acc[h];
        if (tid == 0u) { part[base] = m[h]; part[base + 1u] = l[h]; }
    }
}
