// SPDX-License-Identifier: MIT
// The tiled matrix-matrix kernel shared by matmul_f.comp and matmul_q.comp:
// Y[t, row0 + r] = W[r,:] . X[t,:] for a batch of tokens (prefill).
//
// A workgroup computes a BM-row x BN-token tile of Y. Each step along K stages a
// BK-deep slice of W (BM x BK, dequantized to f32) and of X (BN x BK) in shared
// memory, both k-major in vec4s of 4 rows (4 tokens). Each invocation then
// computes a register-blocked micro-tile of TM rows x TN tokens: the row quads
// tr, tr + NR, ... and token quads tc, tc + NC, ... (strided, so neighbouring
// invocations read neighbouring 16-byte words), TM / 4 + TN / 4 vec4 reads of
// shared memory per TM x TN fmas. With NBUF = 2 the slices are double-buffered:
// the next one is staged while this one is used, one barrier per step. All of
// these are specialization constants, picked per device by runtime/kernels/kernels.c.
//
// Batch invariance: every output is one invocation's chain of fma over k = 0, 1,
// ..., K-1, whatever the tile shape and n_tokens: tile shapes may change with the
// batch (runtime/kernels/kernels.c has a narrower one for short prompts), results may not.
//
// Built with F16MATH (the FAMILY_MATMUL_H kernels), the slices hold f16 (weights and
// activations clamped to the f16 range and converted with the driver's rounding, which
// Vulkan leaves open; the tests allow for either) and the micro-tile runs
// in packed f16 arithmetic: per FK consecutive values of k each output's products
// are summed in an f16 accumulator, and that sum is added into the f32 one. FK
// divides BK and chunks start at multiples of FK, so the order of every sum is still
// fixed by k alone (batch invariance holds as above).
//
// Before inclusion the shader defines BK (a multiple of 16) and the weight binding;
// after it, w_stage(buf, m0, k0), which fills ws rows m0 .. m0+BM-1 at columns
// k0 .. k0+BK-1 through ws_put (zeros past M or K). Bindings 1 (x) and 2 (y) are here.
layout(constant_id = 1) const uint BM = 64; // rows per tile, a multiple of TM
layout(constant_id = 2) const uint BN = 64; // tokens per tile, a multiple of TN
layout(constant_id = 3) const uint TM = 4;  // rows per invocation, a multiple of 4
layout(constant_id = 4) const uint TN = 8;  // tokens per invocation, a multiple of 4
layout(constant_id = 5) const uint NBUF = 2; // 2: double-buffered slices
#ifdef F16MATH
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
layout(constant_id = 6) const uint FK = 4; // values of k summed in f16 (divides BK)
#define TV f16vec4
#else
#define TV vec4
#endif
const uint NR = BM / TM; // invocations along rows; along tokens NC (WG = NR x NC)
const uint NC = BN / TN;
const uint WS4 = BM / 4u, XS4 = BN / 4u; // vec4s per k of each slice

layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) buffer Y { float y[]; }; // p.add: y += W x (the residual)
layout(push_constant) uniform P { PUSH_MATMUL } p; // common/push_constants.h

shared TV ws[NBUF * BK * WS4]; // [buf][k][row / 4]
shared TV xs[NBUF * BK * XS4]; // [buf][k][token / 4]
// Globals, not locals: arrays sized by specialization constants.
vec4 acc[TM * (TN / 4u)]; // acc[row * TN / 4 + token quad]
TV av[TM / 4u], bv[TN / 4u];
#ifdef F16MATH
f16vec4 acc16[TM * (TN / 4u)]; // this chunk of FK values of k
float16_t to_tv(float v) { return float16_t(clamp(v, -65504.0, 65504.0)); }
#else
float to_tv(float v) { return v; }
#endif

void ws_put(uint buf, uint k, uint r, float v) { ws[(buf * BK + k) * WS4 + r / 4u][r % 4u] = to_tv(v); }

// X rows n0 .. n0+BN-1 at columns k0 .. k0+BK-1; zeros past N or K. Neighbouring
// invocations take neighbouring tokens (neighbouring shared words).
void x_stage(uint buf, uint n0, uint k0) {
    [[unroll]] for (uint l = 0; l < (BN * BK + WG - 1) / WG; l++) {
        uint e = gl_LocalInvocationID.x + l * WG, t = e % BN, kk = e / BN;
        if (kk >= BK) break;
        xs[(buf * BK + kk) * XS4 + t / 4u][t % 4u] =
            to_tv(n0 + t < p.N && k0 + kk < p.K ? x[p.x_off + (n0 + t) * p.x_stride + k0 + kk] : 0.0);
    }
}

void w_stage(uint buf, uint m0, uint k0);

// One value of k of this invocation's micro-tile: its rows' weights times its
// tokens' activations, into ACC (f32, or the f16 chunk).
#ifdef F16MATH
#define ACC acc16
#else
#define ACC acc
#endif
void micro_step(uint cur, uint kk, uint tr, uint tc) {
    uint wo = (cur * BK + kk) * WS4 + tr, xo = (cur * BK + kk) * XS4 + tc;
    [[unroll]] for (uint i = 0; i < TM / 4u; i++) av[i] = ws[wo + i * NR];
    [[unroll]] for (uint j = 0; j < TN / 4u; j++) bv[j] = xs[xo + j * NC];
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < TN / 4u; j++)
            ACC[i * (TN / 4u) + j] = fma(TV(av[i / 4u][i % 4u]), bv[j], ACC[i * (TN / 4u) + j]);
}

void main() {
    q_init();
    uint tid = gl_LocalInvocationID.x;
    uint m0 = gl_WorkGroupID.x * BM, n0 = gl_WorkGroupID.y * BN;
    uint tr = tid % NR, tc = tid / NR;
    [[unroll]] for (uint i = 0; i < TM * (TN / 4u); i++) acc[i] = vec4(0.0);
    w_stage(0u, m0, 0u);
    x_stage(0u, n0, 0u);
    barrier();
    uint cur = 0u;
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        bool more = k0 + BK < p.K;
        if (NBUF == 2u && more) { // stage the next slice into the buffer the last step read
            w_stage(cur ^ 1u, m0, k0 + BK);
            x_stage(cur ^ 1u, n0, k0 + BK);
        }
#ifdef F16MATH
        for (uint kc = 0; kc < BK; kc += FK) {
            [[unroll]] for (uint i = 0; i < TM * (TN / 4u); i++) acc16[i] = f16vec4(0.0);
            for (uint kk = kc; kk < kc + FK; kk++) micro_step(cur, kk, tr, tc);
            [[unroll]] for (uint i = 0; i < TM * (TN / 4u); i++) acc[i] += vec4(acc16[i]);
        }
#else
        for (uint kk = 0; kk < BK; kk++) micro_step(cur, kk, tr, tc); // (not unrolled: lavapipe compiles that for minutes)
#endif
        barrier();
        if (NBUF == 2u) {
            cur ^= 1u;
        } else if (more) {
            w_stage(0u, m0, k0 + BK);
            x_stage(0u, n0, k0 + BK);
            barrier();
        }
    }
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint r = m0 + 4u * (tr + (i / 4u) * NR) + i % 4u;
        if (r >= p.M) continue;
        [[unroll]] for (uint j = 0; j < TN; j++) {
            uint t = n0 + 4u * (tc + (j / 4u) * NC) + j % 4u;
            if (t >= p.N) continue;
            uint o = t * p.y_stride + p.row0 + r;
            float v = acc[i * (TN / 4u) + j / 4u][j % 4u];
            y[o] = p.add != 0u ? y[o] + v : v;
        }
    }
}
