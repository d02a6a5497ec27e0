// SPDX-License-Identifier: MIT
// The small helpers the CPU block formats share: the f16 load, rounding, the
// unpacking of the sub-block scales of Q4_K/Q5_K and Q3_K, and the IQ4_NL/IQ4_XS
// codebook. Internal to quant.c (dequantization), quant_fit.c (scale searches) and
// quant_quantize.c (quantization); quant.h is the interface.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "common.h"

#include "iq4_values.h" // shaders/common: the codebook the shaders share

static inline float ld_f16(const uint8_t *p) { return vkphi_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

// Round to nearest, ties to even (as ggml's nearest_int), saturating far outside
// any quant range so that inf and nan inputs stay defined behaviour.
static inline int nearest(float x) {
    if (!(x <= 4194303.f && x >= -4194303.f)) return x > 0 ? 4194303 : x < 0 ? -4194303 : 0; // inf, nan
    // Adding 1.5 * 2^23 leaves the rounded integer in the low mantissa bits.
    const float v = x + 12582912.f;
    int32_t i;
    memcpy(&i, &v, 4);
    return (i & 0x007fffff) - 0x00400000;
}

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

// The value of largest magnitude among x[0..n), with its sign (the first on ties).
static inline float signed_max(const float *x, int n) {
    float amax = 0, max = 0;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    return max;
}

// Q4_K/Q5_K: 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed
// into 12 bytes: bytes 0..3 hold scales 0..3 (low 6 bits) and the top 2 bits of
// scales 4..7; bytes 4..7 the same for mins; bytes 8..11 the low 4 bits of scale
// (low nibble) and min (high nibble) of sub-blocks 4..7.
static inline void k_scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

// Q3_K: 16 sub-blocks of 16 with signed 6-bit scales (stored +32): low 4 bits in
// the nibbles of bytes 0..7 (scale j<8 low nibble of byte j, j>=8 high nibble of
// byte j-8), top 2 bits in bytes 8..11 (scale j at byte 8 + j%4, bits 2*(j/4)).
static inline int q3_scale(const uint8_t *s, int j) {
    const int lo = j < 8 ? s[j] & 15 : s[j - 8] >> 4;
    const int hi = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
    return (lo | hi << 4) - 32;
}

// The IQ4_NL / IQ4_XS codebook: value = scale * iq4_values[q].
static const int8_t iq4_values[16] = {IQ4_NL_VALUES};
