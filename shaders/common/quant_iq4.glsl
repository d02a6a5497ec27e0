// SPDX-License-Identifier: MIT
// Shared by IQ4_NL and IQ4_XS: the format's 16 levels (the one copy of the codebook,
// shared with runtime/core/quant.c) and their lookup for four nibbles at once.
#include "iq4_values.h"

const float IQ4_LEVELS[16] = float[16](IQ4_NL_VALUES);

// The levels of the four nibbles in bytes 0..3 of w (each byte holds one nibble).
vec4 iq4x4(uint w) {
    return vec4(IQ4_LEVELS[w & 15u], IQ4_LEVELS[(w >> 8) & 15u], IQ4_LEVELS[(w >> 16) & 15u], IQ4_LEVELS[w >> 24]);
}
