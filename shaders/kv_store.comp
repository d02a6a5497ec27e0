// SPDX-License-Identifier: MIT
// Writes the K and V of n_tokens rows of the fused [Q;K;V] activations (K already
// rotated) into the cache rows row0 .. row0+n_tokens-1, as f16 or (KV_Q8) int8 with
// one f16 scale per 32 values.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"

layout(binding = 0) readonly buffer QKV { float qkv[]; };
layout(binding = 1) buffer KC { uint kc[]; };
layout(binding = 2) buffer VC { uint vc[]; };
layout(push_constant) uniform P { PUSH_KV_STORE } p; // common/push_constants.h

#ifdef KV_Q8
// One invocation per block of 32 values of K and of V.
void store_block(uint t, uint b, uint src, bool is_v) {
    float amax = 0.0;
    for (uint i = 0; i < 32u; i++) amax = max(amax, abs(qkv[src + i]));
    float d = amax / 127.0, id = d > 0.0 ? 1.0 / d : 0.0;
    uint row = p.row0 + t;
    uint qbase = (row * p.kv_dim + b * 32u) >> 2;
    for (uint w = 0; w < 8u; w++) {
        uint packed = 0u;
        for (uint j = 0; j < 4u; j++) {
            int q = clamp(int(roundEven(qkv[src + w * 4u + j] * id)), -127, 127);
            packed |= (uint(q) & 0xffu) << (8u * j);
        }
        if (is_v) vc[qbase + w] = packed; else kc[qbase + w] = packed;
    }
    // Scales are f16, two to a uint: neighbours write the other half, hence atomics.
    uint si = row * (p.kv_dim >> 5) + b;
    uint idx = ((p.n_rows * p.kv_dim) >> 2) + (si >> 1);
    uint shift = (si & 1u) * 16u;
    uint h = float_to_f16(d);
    if (is_v) {
        atomicAnd(vc[idx], ~(0xffffu << shift));
        atomicOr(vc[idx], h << shift);
    } else {
        atomicAnd(kc[idx], ~(0xffffu << shift));
        atomicOr(kc[idx], h << shift);
    }
}

void main() {
    uint nb = p.kv_dim / 32u;
    uint e = flat_group() * WG + gl_LocalInvocationID.x;
    if (e >= p.n_tokens * nb) return;
    uint t = e / nb, b = e % nb;
    uint src = t * p.qkv_stride + p.k_offset + b * 32u;
    store_block(t, b, src, false);
    store_block(t, b, src + p.kv_dim, true);
}
#else
// One invocation per pair of values.
void main() {
    uint half_dim = p.kv_dim / 2u;
    uint e = flat_group() * WG + gl_LocalInvocationID.x;
    if (e >= p.n_tokens * half_dim) return;
    uint t = e / half_dim, i = (e % half_dim) * 2u;
    uint src = t * p.qkv_stride + p.k_offset + i;
    uint dst = ((p.row0 + t) * p.kv_dim + i) >> 1;
    // Rounded to nearest even on every driver (packHalf2x16's rounding is the driver's).
    kc[dst] = float_to_f16x2(vec2(qkv[src], qkv[src + 1u]));
    vc[dst] = float_to_f16x2(vec2(qkv[src + p.kv_dim], qkv[src + p.kv_dim + 1u]));
}
#endif
