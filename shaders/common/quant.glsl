// SPDX-License-Identifier: MIT
// The quantized weight type of this shader build, chosen by define (Q8_0, Q4_0,
// Q3_K, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K, IQ4_NL, IQ4_XS, and the codebook
// types IQ3_XXS, IQ3_S, IQ2_XXS, IQ2_XS, IQ2_S, IQ1_S, IQ1_M; Q8_0 when none is
// given, so the plain build of a shader that includes this is its Q8_0 kernel).
// Each quant_<type>.glsl gives:
//   QK, QB        values per block, and its bytes in the GGUF file
//   QG, QT        the device layout (runtime/core/repack.c): tiles of QG blocks, QT
//   QH, QS        bytes each: a QH-byte header (the blocks' scales), then QS bytes
//                 per block (all multiples of 16); a row's last tile holds only
//                 its remaining blocks, QH + r QS bytes
//   QP            parts per block; a part is 32 values in two groups of 16, each
//                 group contiguous in the row and under one (scale, offset)
//   q_pos(part, g)             the group's first value within the block
//   q_part(blk, part, q, am)   the part of the block blk (a q_blk handle): q[4g+i]
//                              are the stored levels of group g as exact floats,
//                              am[g] its (scale, offset): value = scale*q + offset
//   q_group(blk, grp, q, am)   the same for the grp-th 16 values of the block
//   q_init()                   called by every thread at the start of main: the
//                              codebook types copy their grid to shared memory
//                              (quant_iq_common.glsl); a no-op for the others
// Parts read whole words (every loaded bit is used: the matrix-vector kernel
// streams each weight byte once); groups serve the tiled kernels, where the
// weights come through the cache many times and only the order matters.
#include "quant_common.glsl"
#if defined(Q4_0)
#include "quant_q4_0.glsl"
#elif defined(Q3_K)
#include "quant_q3_k.glsl"
#elif defined(Q4_K)
#include "quant_q4_k.glsl"
#elif defined(Q5_K)
#include "quant_q5_k.glsl"
#elif defined(Q6_K)
#include "quant_q6_k.glsl"
#elif defined(Q4_1)
#include "quant_q4_1.glsl"
#elif defined(Q5_0)
#include "quant_q5_0.glsl"
#elif defined(Q5_1)
#include "quant_q5_1.glsl"
#elif defined(Q2_K)
#include "quant_q2_k.glsl"
#elif defined(IQ4_NL)
#include "quant_iq4_nl.glsl"
#elif defined(IQ4_XS)
#include "quant_iq4_xs.glsl"
#elif defined(IQ3_XXS)
#include "quant_iq3_xxs.glsl"
#elif defined(IQ3_S)
#include "quant_iq3_s.glsl"
#elif defined(IQ2_XXS)
#include "quant_iq2_xxs.glsl"
#elif defined(IQ2_XS)
#include "quant_iq2_xs.glsl"
#elif defined(IQ2_S)
#include "quant_iq2_s.glsl"
#elif defined(IQ1_S)
#include "quant_iq1_s.glsl"
#elif defined(IQ1_M)
#include "quant_iq1_m.glsl"
#else
#include "quant_q8_0.glsl"
#endif
#ifndef Q_HAS_INIT
void q_init() {}
#endif

// The handle of block b of row `row` in a weight of rows of K values: its tile's
// byte offset plus its place in the tile (common/quant_common.glsl). Kernels
// address blocks only through this and read them only through the readers above,
// which know the type's device layout (mirrored by runtime/core/repack.c).
uint q_blk(uint row, uint b, uint K) {
    uint nb = K / QK, r = nb % QG;
    uint row_bytes = nb / QG * QT + (r != 0u ? QH + r * QS : 0u);
    return row * row_bytes + b / QG * QT + b % QG;
}

// value = scale * q + offset, as the CPU computes it (runtime/core/quant.c). Exactly
// the CPU's value whether or not the compiler fuses the two: every product here is
// exact in f32 (an f16 scale has 11 significant bits, a sub-block scale at most 7,
// a level at most 6; IQ4_XS: a 17-bit scale times a 7-bit codebook level), so only
// the offset's addition rounds, once either way.
vec4 q_value(vec4 q, vec2 am) {
#ifdef Q_HAS_MIN
    return q * am.x + am.y;
#else
    return q * am.x;
#endif
}
