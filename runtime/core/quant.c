// SPDX-License-Identifier: MIT
// CPU block formats, dequantization: one routine per type vkphi runs (the codebook
// types are in quant_iq.c) and quant_dequantize_row, which picks one. Quantization
// is in quant_quantize.c, the helpers both use in quant_internal.h.
#include "quant.h"

#include "common.h"
#include "quant_internal.h"
#include "quant_iq.h"

#include <string.h>

// ---- dequantization ----

static void dequant_q4_0(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 18, y += 32) {
        const float d = ld_f16(b);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[2 + j] & 15) - 8) * d;
            y[j + 16] = (float)((b[2 + j] >> 4) - 8) * d;
        }
    }
}

static void dequant_q8_0(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 34, y += 32) {
        const float d = ld_f16(b);
        for (int j = 0; j < 32; j++) y[j] = (float)(int8_t)b[2 + j] * d;
    }
}


static void dequant_q4_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 144) {
        const float d = ld_f16(b), dmin = ld_f16(b + 2);
        const uint8_t *q = b + 16;
        for (int c = 0; c < 4; c++, q += 32, y += 64) { // 64 values: low nibbles, then high
            int sc, m;
            k_scale_min(b + 4, 2 * c, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k_scale_min(b + 4, 2 * c + 1, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[l] = d1 * (float)(q[l] & 15) - m1;
            for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)(q[l] >> 4) - m2;
        }
    }
}

static void dequant_q5_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 176) {
        const float d = ld_f16(b), dmin = ld_f16(b + 2);
        const uint8_t *qh = b + 16, *q = b + 48;
        for (int c = 0; c < 4; c++, q += 32, y += 64) {
            const int u1 = 1 << (2 * c), u2 = 2 << (2 * c); // 5th bits of this chunk's halves
            int sc, m;
            k_scale_min(b + 4, 2 * c, &sc, &m);
            const float d1 = d * (float)sc, m1 = dmin * (float)m;
            k_scale_min(b + 4, 2 * c + 1, &sc, &m);
            const float d2 = d * (float)sc, m2 = dmin * (float)m;
            for (int l = 0; l < 32; l++) y[l] = d1 * (float)((q[l] & 15) + (qh[l] & u1 ? 16 : 0)) - m1;
            for (int l = 0; l < 32; l++) y[l + 32] = d2 * (float)((q[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
        }
    }
}

static void dequant_q6_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 210) {
        const float d = ld_f16(b + 208);
        for (int h = 0; h < 2; h++, y += 128) { // two halves of 128 values
            const uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const int8_t *sc = (const int8_t *)(b + 192 + 8 * h);
            for (int l = 0; l < 32; l++) {
                const int is = l / 16;
                const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
                const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
                const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
                const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
                y[l] = d * (float)sc[is] * (float)q1;
                y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                y[l + 96] = d * (float)sc[is + 6] * (float)q4;
            }
        }
    }
}


static void dequant_q3_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 110) {
        const float d = ld_f16(b + 108);
        const uint8_t *hm = b, *s = b + 96;
        for (int h = 0; h < 2; h++) {
            const uint8_t *q = b + 32 + 32 * h;
            for (int j = 0; j < 4; j++) { // 32 values at bits 2j of q[0..31]
                const int shift = 2 * j, bit = 1 << (4 * h + j);
                for (int k = 0; k < 2; k++, y += 16) {
                    const float dl = d * (float)q3_scale(s, 8 * h + 2 * j + k);
                    for (int l = 0; l < 16; l++) {
                        const int hl = hm[16 * k + l] & bit ? 0 : 4;
                        y[l] = dl * (float)(((q[16 * k + l] >> shift) & 3) - hl);
                    }
                }
            }
        }
    }
}

// Q4_1: f16 d, f16 m, 16 bytes of nibbles as Q4_0's; value = q * d + m.
static void dequant_q4_1(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 20, y += 32) {
        const float d = ld_f16(b), m = ld_f16(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)(b[4 + j] & 15) * d + m;
            y[j + 16] = (float)(b[4 + j] >> 4) * d + m;
        }
    }
}

// Q5_0 / Q5_1: the nibbles of Q4_0 / Q4_1 plus a fifth bit per value in the 32-bit
// little-endian word qh: bit j for value j. Q5_0: f16 d, qh, qs; value = (q - 16) * d.
// Q5_1: f16 d, f16 m, qh, qs; value = q * d + m.
static inline uint32_t ld_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static void dequant_q5_0(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 22, y += 32) {
        const float d = ld_f16(b);
        const uint32_t qh = ld_u32(b + 2);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((int)((b[6 + j] & 15) | ((qh >> j) & 1) << 4) - 16) * d;
            y[j + 16] = (float)((int)((b[6 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - 16) * d;
        }
    }
}

static void dequant_q5_1(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 24, y += 32) {
        const float d = ld_f16(b), m = ld_f16(b + 2);
        const uint32_t qh = ld_u32(b + 4);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b[8 + j] & 15) | ((qh >> j) & 1) << 4) * d + m;
            y[j + 16] = (float)((b[8 + j] >> 4) | ((qh >> (j + 16)) & 1) << 4) * d + m;
        }
    }
}

// Q2_K: scales[16] (low nibble the 4-bit scale, high nibble the 4-bit min of each
// sub-block of 16), qs[64], f16 d, f16 dmin. Value e (h = e/128, j = e%128/32,
// l = e%32): q = (qs[32h + l] >> 2j) & 3 in sub-block e/16; value = d*scale * q - dmin*min.
static void dequant_q2_k(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 84) {
        const float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
        for (int e = 0; e < QUANT_QK_K; e++, y++) {
            const uint8_t sc = b[e / 16];
            const int q = (b[16 + 32 * (e / 128) + e % 32] >> (2 * (e % 128 / 32))) & 3;
            *y = d * (float)(sc & 15) * (float)q - dmin * (float)(sc >> 4);
        }
    }
}

// IQ4_NL: f16 d, 16 bytes of nibbles as Q4_0's; value = d * IQ4_NL_VALUES[q].

static void dequant_iq4_nl(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 18, y += 32) {
        const float d = ld_f16(b);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)iq4_values[b[2 + j] & 15];
            y[j + 16] = d * (float)iq4_values[b[2 + j] >> 4];
        }
    }
}

// IQ4_XS: f16 d, u16 scales_h, scales_l[4], qs[128]: 8 sub-blocks of 32, each with a
// 6-bit scale ls (low 4 bits: nibble ib%2 of scales_l[ib/2]; top 2 bits: bits 2ib
// of scales_h) and 16 bytes of nibbles as IQ4_NL's; value = d*(ls - 32) * IQ4_NL_VALUES[q].
static inline int iq4_xs_scale(const uint8_t *b, int ib) {
    const int h = b[2] | b[3] << 8;
    return ((b[4 + ib / 2] >> (4 * (ib % 2))) & 15) | ((h >> (2 * ib)) & 3) << 4;
}

static void dequant_iq4_xs(const uint8_t *b, float *y, uint64_t nb) {
    for (uint64_t i = 0; i < nb; i++, b += 136) {
        const float d = ld_f16(b);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            const float dl = d * (float)(iq4_xs_scale(b, ib) - 32);
            const uint8_t *q = b + 8 + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)iq4_values[q[j] & 15];
                y[j + 16] = dl * (float)iq4_values[q[j] >> 4];
            }
        }
    }
}

int quant_dequantize_row(uint32_t type, const void *src, float *dst, uint64_t n) {
    if (!quant_type_supported(type))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "cannot dequantize tensor type %s (%u)", quant_type_name(type), type);
    const uint32_t blck = quant_block_elems(type);
    if (n % blck)
        return vkphi_fail(VKPHI_ERR_ARG, "a %s row of %llu values is not a whole number of %u-value blocks",
                          quant_type_name(type), (unsigned long long)n, blck);
    const uint8_t *b = src;
    const uint64_t nb = n / blck;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case GGML_TYPE_F16:
        for (uint64_t i = 0; i < n; i++) dst[i] = ld_f16(b + 2 * i);
        break;
    case GGML_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++) dst[i] = vkphi_bf16_to_f32((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        break;
    case GGML_TYPE_Q4_0: dequant_q4_0(b, dst, nb); break;
    case GGML_TYPE_Q8_0: dequant_q8_0(b, dst, nb); break;
    case GGML_TYPE_Q3_K: dequant_q3_k(b, dst, nb); break;
    case GGML_TYPE_Q4_K: dequant_q4_k(b, dst, nb); break;
    case GGML_TYPE_Q5_K: dequant_q5_k(b, dst, nb); break;
    case GGML_TYPE_Q6_K: dequant_q6_k(b, dst, nb); break;
    case GGML_TYPE_Q4_1: dequant_q4_1(b, dst, nb); break;
    case GGML_TYPE_Q5_0: dequant_q5_0(b, dst, nb); break;
    case GGML_TYPE_Q5_1: dequant_q5_1(b, dst, nb); break;
    case GGML_TYPE_Q2_K: dequant_q2_k(b, dst, nb); break;
    case GGML_TYPE_IQ4_NL: dequant_iq4_nl(b, dst, nb); break;
    case GGML_TYPE_IQ4_XS: dequant_iq4_xs(b, dst, nb); break;
    default: quant_iq_dequantize(type, b, dst, nb); break; // the codebook types (quant_iq.c)
    }
    return VKPHI_OK;
}
