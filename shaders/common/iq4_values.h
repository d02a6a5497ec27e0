// SPDX-License-Identifier: MIT
// IQ4_NL's 16 levels (also IQ4_XS's), a fact of the format: a nibble n stands for
// IQ4_NL_VALUES[n] times the block's scale. The one copy of the codebook, included
// by runtime/core/quant.c and by shaders/common/quant_iq4_nl.glsl / quant_iq4_xs.glsl,
// so the CPU and GPU cannot disagree; ascending, as the quantizer's search needs.
#define IQ4_NL_VALUES -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113
