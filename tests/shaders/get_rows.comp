// SPDX-License-Identifier: MIT
// Row lookup, a kernel of the tests (tests/get_rows.h: the exact check of the GPU
// block decoders, common/quant_*.glsl, against the CPU's): o[t, :] = dequant(W[ids[t], :])
// for each token t, into f32. The bound window holds rows row0 .. row0+n_rows-1 of the matrix
// (a big matrix is looked up one window at a time); tokens whose id falls outside
// it are left alone. Values are exactly those of the CPU dequantization. Float
// weights (F32, F16/BF16 by define) go element by element; quantized ones (Q8_0,
// Q4_0, Q3_K, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K, IQ4_NL, IQ4_XS and the
// codebook types IQ*, by define) a part of 32 values per thread.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common/common.glsl"
#include "push_get_rows.h"
#if defined(Q8_0) || defined(Q4_0) || defined(Q3_K) || defined(Q4_K) || defined(Q5_K) || defined(Q6_K) || \
    defined(Q4_1) || defined(Q5_0) || defined(Q5_1) || defined(Q2_K) || defined(IQ4_NL) || defined(IQ4_XS) || \
    defined(IQ3_XXS) || defined(IQ3_S) || defined(IQ2_XXS) || defined(IQ2_XS) || defined(IQ2_S) || defined(IQ1_S) || \
    defined(IQ1_M)
#define QUANTIZED
#include "common/quant.glsl"
#else
#include "common/weights_float.glsl"
#endif

layout(binding = 1) readonly buffer Ids { int ids[]; };
layout(binding = 2) writeonly buffer O { float o[]; };
layout(push_constant) uniform P { PUSH_GET_ROWS } p; // push_get_rows.h

void main() {
#ifdef QUANTIZED
    q_init(); // before any return: it ends in a barrier
#endif
    uint t = gl_WorkGroupID.y;
    uint row = uint(ids[t]) - p.row0; // ids below row0 (or negative) wrap past n_rows
    if (row >= p.n_rows) return;
    uint ob = t * p.o_stride, step = WG * gl_NumWorkGroups.x;
#ifdef QUANTIZED
    uint nb = p.K / QK;
    for (uint it = gl_GlobalInvocationID.x; it < nb * QP; it += step) {
        uint b = it / QP, part = it % QP;
        vec4 q[8];
        vec2 am[2];
        q_part(q_blk(row, b, p.K), part, q, am);
        [[unroll]] for (uint g = 0; g < 2; g++) {
            uint o0 = ob + b * QK + q_pos(part, g);
            [[unroll]] for (uint i = 0; i < 4; i++) {
                vec4 v = q_value(q[4 * g + i], am[g]);
                [[unroll]] for (uint c = 0; c < 4; c++) o[o0 + 4 * i + c] = v[c];
            }
        }
    }
#else
    for (uint i = gl_GlobalInvocationID.x; i < p.K; i += step) o[ob + i] = w_at(row * p.K + i);
#endif
}
