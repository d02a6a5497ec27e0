// SPDX-License-Identifier: MIT
// CPU dequantization of the codebook formats (layouts in quant_iq.h). Every value
// is computed as (sub-block scale) * (level), where the scale is d times a small
// odd integer (times 1/4 or 1/8) and the level is a signed grid magnitude (IQ2,
// IQ3) or grid value plus delta (IQ1): both factors and their product are exact in
// f32, so the shaders (shaders/common/quant_iq*.glsl), which factor the same way,
// give bit-identical values.
#include "quant_iq.h"

#include <string.h>

#include "common.h"
#include "quant_types.h"

#define IQ_GRID_IQ2XXS
#define IQ_GRID_IQ2XS
#define IQ_GRID_IQ2S
#define IQ_GRID_IQ3XXS
#define IQ_GRID_IQ3S
#define IQ_GRID_IQ1S
#include "quant_iq_tables.h"

static inline float ld_f16(const uint8_t *p) { return vkphi_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static inline uint32_t ld_u16(const uint8_t *p) { return (uint32_t)(p[0] | p[1] << 8); }
static inline uint32_t ld_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

bool quant_iq_type(uint32_t type) {
    switch (type) {
    case GGML_TYPE_IQ3_XXS: case GGML_TYPE_IQ3_S: case GGML_TYPE_IQ2_XXS: case GGML_TYPE_IQ2_XS:
    case GGML_TYPE_IQ2_S: case GGML_TYPE_IQ1_S: case GGML_TYPE_IQ1_M:
        return true;
    default:
        return false;
    }
}

// The 8 signs of a 7-bit field: bit 7 makes the count of minus signs even.
static inline uint32_t signs7(uint32_t s) {
    s &= 127;
    uint32_t p = s ^ s >> 4;
    p ^= p >> 2;
    p ^= p >> 1;
    return s | (p & 1) << 7;
}

// 8 values: scale * (+-grid magnitude j), minus where bit j of signs is set.
// grid8 points at an IQ2 entry's two words; g3a, g3b are two IQ3 entries.
static inline void octet2(float *y, float scale, const uint32_t *grid8, uint32_t signs) {
    for (int j = 0; j < 8; j++) {
        const float m = (float)((grid8[j >> 2] >> 8 * (j & 3)) & 255);
        y[j] = scale * (signs >> j & 1 ? -m : m);
    }
}

static inline void octet3(float *y, float scale, uint32_t g3a, uint32_t g3b, uint32_t signs) {
    for (int j = 0; j < 8; j++) {
        const float m = (float)(((j < 4 ? g3a : g3b) >> 8 * (j & 3)) & 255);
        y[j] = scale * (signs >> j & 1 ? -m : m);
    }
}

// IQ1: scale * (grid value + delta); the grid entry holds value+1 in nibbles
// (values 0..3 in the low nibbles of its bytes, 4..7 in the high ones).
static inline void octet1(float *y, float scale, uint32_t entry, float delta) {
    for (int j = 0; j < 8; j++) {
        const int v = (int)((entry >> (8 * (j & 3) + 4 * (j >> 2))) & 15) - 1;
        y[j] = scale * ((float)v + delta);
    }
}

static void dequant_iq2_xxs(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *q = b + 2 + 8 * ib;
        const uint32_t aux = ld_u32(q + 4);
        const float s = d * (float)(2 * (aux >> 28) + 1) * 0.125f;
        for (int l = 0; l < 4; l++, y += 8) octet2(y, s, IQ2XXS_GRID + 2 * q[l], signs7(aux >> 7 * l));
    }
}

static void dequant_iq2_xs(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t sc = b[66 + ib];
        for (int l = 0; l < 4; l++, y += 8) {
            const uint32_t w = ld_u16(b + 2 + 8 * ib + 2 * l);
            const float s = d * (float)(2 * (l < 2 ? sc & 15 : sc >> 4) + 1) * 0.125f;
            octet2(y, s, IQ2XS_GRID + 2 * (w & 511), signs7(w >> 9));
        }
    }
}

static void dequant_iq2_s(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t sc = b[74 + ib], qh = b[66 + ib];
        for (int l = 0; l < 4; l++, y += 8) {
            const uint32_t idx = b[2 + 4 * ib + l] | ((qh >> 2 * l) & 3) << 8;
            const float s = d * (float)(2 * (l < 2 ? sc & 15 : sc >> 4) + 1) * 0.125f;
            octet2(y, s, IQ2S_GRID + 2 * idx, b[34 + 4 * ib + l]);
        }
    }
}

static void dequant_iq3_xxs(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *q = b + 2 + 8 * ib;
        const uint32_t aux = ld_u32(b + 66 + 4 * ib);
        const float s = d * (float)(2 * (aux >> 28) + 1) * 0.25f;
        for (int l = 0; l < 4; l++, y += 8)
            octet3(y, s, IQ3XXS_GRID[q[2 * l]], IQ3XXS_GRID[q[2 * l + 1]], signs7(aux >> 7 * l));
    }
}

static void dequant_iq3_s(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint8_t *q = b + 2 + 8 * ib;
        const uint32_t qh = b[66 + ib];
        const float s = d * (float)(2 * ((b[106 + ib / 2] >> 4 * (ib & 1)) & 15) + 1);
        for (int l = 0; l < 4; l++, y += 8) {
            const uint32_t i0 = q[2 * l] | ((qh >> 2 * l) & 1) << 8, i1 = q[2 * l + 1] | ((qh >> (2 * l + 1)) & 1) << 8;
            octet3(y, s, IQ3S_GRID[i0], IQ3S_GRID[i1], b[74 + 4 * ib + l]);
        }
    }
}

static void dequant_iq1_s(const uint8_t *b, float *y) {
    const float d = ld_f16(b);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t qh = ld_u16(b + 34 + 2 * ib);
        const float s = d * (float)(2 * ((qh >> 12) & 7) + 1), delta = qh & 0x8000 ? -0.125f : 0.125f;
        for (int l = 0; l < 4; l++, y += 8)
            octet1(y, s, IQ1S_GRID[b[2 + 4 * ib + l] | ((qh >> 3 * l) & 7) << 8], delta);
    }
}

// IQ1_M's f16 d: the top nibbles of the four scale words, first word lowest.
static float iq1_m_d(const uint8_t *sc) {
    uint32_t h = 0;
    for (int k = 0; k < 4; k++) h |= (ld_u16(sc + 2 * k) >> 12) << 4 * k;
    return vkphi_f16_to_f32((uint16_t)h);
}

static void dequant_iq1_m(const uint8_t *b, float *y) {
    const uint8_t *sc = b + 48;
    const float d = iq1_m_d(sc);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t w = ld_u16(sc + 2 * (ib / 2)) >> 6 * (ib & 1);
        for (int l = 0; l < 4; l++, y += 8) {
            const uint32_t h = (b[32 + 2 * ib + l / 2] >> 4 * (l & 1)) & 15; // index bits 8..10, delta sign
            const float s = d * (float)(2 * ((w >> (l < 2 ? 0 : 3)) & 7) + 1);
            octet1(y, s, IQ1S_GRID[b[4 * ib + l] | (h & 7) << 8], h & 8 ? -0.125f : 0.125f);
        }
    }
}

const uint32_t *quant_iq_grid(uint32_t type, uint32_t *n_words) {
    switch (type) {
    case GGML_TYPE_IQ3_XXS: *n_words = 256; return IQ3XXS_GRID;
    case GGML_TYPE_IQ3_S: *n_words = 512; return IQ3S_GRID;
    case GGML_TYPE_IQ2_XXS: *n_words = 512; return IQ2XXS_GRID;
    case GGML_TYPE_IQ2_XS: *n_words = 1024; return IQ2XS_GRID;
    case GGML_TYPE_IQ2_S: *n_words = 2048; return IQ2S_GRID;
    case GGML_TYPE_IQ1_S: case GGML_TYPE_IQ1_M: *n_words = 2048; return IQ1S_GRID;
    default: *n_words = 0; return NULL;
    }
}

void quant_iq_dequantize(uint32_t type, const uint8_t *b, float *y, uint64_t nb) {
    const uint32_t bytes = quant_block_bytes(type);
    for (uint64_t i = 0; i < nb; i++, b += bytes, y += 256) {
        switch (type) {
        case GGML_TYPE_IQ3_XXS: dequant_iq3_xxs(b, y); break;
        case GGML_TYPE_IQ3_S: dequant_iq3_s(b, y); break;
        case GGML_TYPE_IQ2_XXS: dequant_iq2_xxs(b, y); break;
        case GGML_TYPE_IQ2_XS: dequant_iq2_xs(b, y); break;
        case GGML_TYPE_IQ2_S: dequant_iq2_s(b, y); break;
        case GGML_TYPE_IQ1_S: dequant_iq1_s(b, y); break;
        case GGML_TYPE_IQ1_M: dequant_iq1_m(b, y); break;
        }
    }
}
