// SPDX-License-Identifier: MIT
// CPU block formats, quantization: one quantizer per type vkphi writes and
// quant_quantize_row, which picks one. The quantizers follow the searches of ggml's
// reference quantizer (same candidate scales, same weights, same packing; the
// searches are in quant_fit.c), so a file we write is as good as one written by
// llama-quantize; test_quant measures that against the reference files in
// ../shared/reference. Dequantization is in quant.c.
#include "quant.h"

#include "common.h"
#include "quant_fit.h"
#include "quant_internal.h"
#include "quant_iq.h"

#include <math.h>
#include <string.h>

// The f16 store, little-endian (the load is in quant_internal.h).
static inline uint16_t st_f16(uint8_t *p, float f) {
    uint16_t h = vkphi_f32_to_f16(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
    return h;
}

// The mean of x^2 over the call: the noise level the importance-weighted searches
// of the 32-value types add to each weight's importance (as ggml does).
static float mean_square(const float *x, uint64_t n) {
    float s = 0;
    for (uint64_t i = 0; i < n; i++) s += x[i] * x[i];
    return s / (float)n;
}


static void quant_q4_0(const float *x, uint8_t *b, uint64_t n, const float *imp) {
    float sigma2 = imp ? mean_square(x, n) : 0;
    for (uint64_t i = 0; i < n / 32; i++, x += 32, b += 18) {
        if (imp) { // weighted symmetric fit over 16 levels
            float w[32];
            int8_t L[32];
            for (int j = 0; j < 32; j++) w[j] = imp[32 * i + j] * sqrtf(sigma2 + x[j] * x[j]);
            st_f16(b, quant_fit_symmetric(32, 8, x, L, w));
            for (int j = 0; j < 16; j++) b[2 + j] = (uint8_t)(L[j] | L[j + 16] << 4);
            continue;
        }
        const float max = signed_max(x, 32); // the value of largest magnitude maps to level 0 (-8)
        const float d = max / -8, id = d ? 1 / d : 0;
        st_f16(b, d);
        for (int j = 0; j < 16; j++) {
            const float v0 = x[j] * id + 8.5f, v1 = x[j + 16] * id + 8.5f; // truncation = round half up
            const int q0 = v0 >= 0 ? (v0 < 15 ? (int)v0 : 15) : 0;
            const int q1 = v1 >= 0 ? (v1 < 15 ? (int)v1 : 15) : 0;
            b[2 + j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

static void quant_q8_0(const float *x, uint8_t *b, uint64_t n) {
    for (uint64_t i = 0; i < n / 32; i++, x += 32, b += 34) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
        const float d = amax / 127, id = d ? 1 / d : 0;
        st_f16(b, d);
        for (int j = 0; j < 32; j++) {
            const float v = roundf(x[j] * id); // ties away from zero
            b[2 + j] = (uint8_t)(int8_t)(v >= -127 ? (v <= 127 ? (int)v : 127) : -127);
        }
    }
}

// The inverse of k_scale_min (quant_internal.h), into bytes the caller zeroed.
static void k_pack_scale_min(uint8_t *s, int j, int sc, int m) {
    if (j < 4) {
        s[j] = (uint8_t)sc;
        s[j + 4] = (uint8_t)m;
    } else {
        s[j + 4] = (uint8_t)((sc & 15) | (m & 15) << 4);
        s[j - 4] |= (uint8_t)((sc >> 4) << 6);
        s[j] |= (uint8_t)((m >> 4) << 6);
    }
}

// Q4_K and Q5_K share everything but the level count and the packing of the
// fifth bit: nmax = 15 or 31.
static void quant_q45_k(const float *x, uint8_t *b, uint64_t n, const float *imp, int nmax) {
    const size_t bsize = nmax == 15 ? 144 : 176;
    for (uint64_t i = 0; i < n / QUANT_QK_K; i++, x += QUANT_QK_K, b += bsize) {
        uint8_t L[QUANT_QK_K], Ls[8], Lm[8];
        float scales[8], mins[8], w[32], sw[8];
        memset(b, 0, bsize);
        if (!imp) { // reference search; scales and mins to 6 bits by their maxima
            float max_scale = 0, max_min = 0;
            for (int j = 0; j < 8; j++) {
                const float *xs = x + 32 * j;
                float sum_x2 = 0;
                for (int l = 0; l < 32; l++) sum_x2 += xs[l] * xs[l];
                const float av_x = sqrtf(sum_x2 / 32);
                for (int l = 0; l < 32; l++) w[l] = av_x + fabsf(xs[l]);
                scales[j] = nmax == 15
                                ? quant_fit_scale_min(32, 15, xs, w, L + 32 * j, &mins[j], -1.0f, 0.1f, 20, false)
                                : quant_fit_scale_min(32, 31, xs, w, L + 32 * j, &mins[j], -0.5f, 0.1f, 15, false);
                if (scales[j] > max_scale) max_scale = scales[j];
                if (mins[j] > max_min) max_min = mins[j];
            }
            const float inv_scale = max_scale > 0 ? 63 / max_scale : 0, inv_min = max_min > 0 ? 63 / max_min : 0;
            for (int j = 0; j < 8; j++) {
                Ls[j] = (uint8_t)clampi(nearest(inv_scale * scales[j]), 0, 63);
                Lm[j] = (uint8_t)clampi(nearest(inv_min * mins[j]), 0, 63);
            }
            st_f16(b, max_scale / 63);
            st_f16(b + 2, max_min / 63);
        } else { // importance-weighted search, then a weighted fit of the 6-bit scales
            float sum_x2 = 0;
            for (int l = 0; l < QUANT_QK_K; l++) sum_x2 += x[l] * x[l];
            const float sigma2 = 2 * sum_x2 / QUANT_QK_K;
            for (int j = 0; j < 8; j++) {
                const float *xs = x + 32 * j, *qw = imp + QUANT_QK_K * i + 32 * j;
                sw[j] = 0;
                for (int l = 0; l < 32; l++) {
                    w[l] = qw[l] * sqrtf(sigma2 + xs[l] * xs[l]);
                    sw[j] += w[l];
                }
                scales[j] = quant_fit_scale_min(32, nmax, xs, w, L + 32 * j, &mins[j], -0.9f, 0.05f, 36, false);
            }
            st_f16(b, quant_fit_positive(8, 63, scales, Ls, sw));
            st_f16(b + 2, quant_fit_positive(8, 63, mins, Lm, sw));
        }
        for (int j = 0; j < 8; j++) k_pack_scale_min(b + 4, j, Ls[j], Lm[j]);
        // Requantize against the scales as stored (6-bit, times an f16 d).
        const float d = ld_f16(b), dmin = ld_f16(b + 2);
        for (int j = 0; j < 8; j++) {
            int sc, m;
            k_scale_min(b + 4, j, &sc, &m);
            const float ds = d * (float)sc;
            if (!ds) continue;
            const float dm = dmin * (float)m;
            for (int l = 0; l < 32; l++) L[32 * j + l] = (uint8_t)clampi(nearest((x[32 * j + l] + dm) / ds), 0, nmax);
        }
        if (nmax == 15) {
            uint8_t *q = b + 16;
            for (int c = 0; c < 4; c++)
                for (int l = 0; l < 32; l++) q[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
        } else {
            uint8_t *qh = b + 16, *q = b + 48;
            for (int c = 0; c < 4; c++) {
                for (int l = 0; l < 32; l++) {
                    const int l1 = L[64 * c + l], l2 = L[64 * c + 32 + l];
                    q[32 * c + l] = (uint8_t)((l1 & 15) | (l2 & 15) << 4);
                    qh[l] |= (uint8_t)((l1 >> 4) << (2 * c) | (l2 >> 4) << (2 * c + 1));
                }
            }
        }
    }
}

static void quant_q6_k(const float *x, uint8_t *b, uint64_t n, const float *imp) {
    for (uint64_t i = 0; i < n / QUANT_QK_K; i++, x += QUANT_QK_K, b += 210) {
        int8_t L[QUANT_QK_K];
        float scales[16], max_scale = 0, amax = 0;
        memset(b, 0, 210);
        for (int j = 0; j < 16; j++) {
            scales[j] = quant_fit_symmetric(16, 32, x + 16 * j, L + 16 * j, imp ? imp + QUANT_QK_K * i + 16 * j : NULL);
            if (fabsf(scales[j]) > amax) {
                amax = fabsf(scales[j]);
                max_scale = scales[j];
            }
        }
        if (amax < 1e-15f) continue; // all zero: an all-zero block
        // 8-bit sub-block scales; the largest maps to -128, which int8 holds.
        const float iscale = -128 / max_scale;
        st_f16(b + 208, 1 / iscale);
        int8_t *sc = (int8_t *)(b + 192);
        for (int j = 0; j < 16; j++) sc[j] = (int8_t)clampi(nearest(iscale * scales[j]), -128, 127);
        const float d = ld_f16(b + 208);
        for (int j = 0; j < 16; j++) {
            const float ds = d * (float)sc[j];
            if (!ds) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(nearest(x[16 * j + l] / ds), -32, 31) + 32);
        }
        for (int h = 0; h < 2; h++) {
            uint8_t *ql = b + 64 * h, *qh = b + 128 + 32 * h;
            const int8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                ql[l] = (uint8_t)((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
                ql[l + 32] = (uint8_t)((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
                qh[l] = (uint8_t)((Lh[l] >> 4) | (Lh[l + 32] >> 4) << 2 | (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
            }
        }
    }
}

static void q3_pack_scale(uint8_t *s, int j, int l) { // l in 0..63
    if (j < 8)
        s[j] |= (uint8_t)(l & 15);
    else
        s[j - 8] |= (uint8_t)((l & 15) << 4);
    s[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
}

static void quant_q3_k(const float *x, uint8_t *b, uint64_t n, const float *imp) {
    for (uint64_t i = 0; i < n / QUANT_QK_K; i++, x += QUANT_QK_K, b += 110) {
        int8_t L[QUANT_QK_K];
        float scales[16];
        memset(b, 0, 110);
        uint8_t *s = b + 96;
        if (!imp) { // reference: per sub-block iterative fit, scales by their maximum
            float max_scale = 0, amax = 0;
            for (int j = 0; j < 16; j++) {
                scales[j] = quant_fit_symmetric_iter(16, 4, x + 16 * j, L + 16 * j);
                if (fabsf(scales[j]) > amax) {
                    amax = fabsf(scales[j]);
                    max_scale = scales[j];
                }
            }
            if (max_scale != 0) {
                const float iscale = -32 / max_scale;
                for (int j = 0; j < 16; j++) q3_pack_scale(s, j, clampi(nearest(iscale * scales[j]), -32, 31) + 32);
                st_f16(b + 108, 1 / iscale);
            }
        } else {
            float sum_x2 = 0, w[16], sw[16];
            for (int l = 0; l < QUANT_QK_K; l++) sum_x2 += x[l] * x[l];
            const float sigma2 = 2 * sum_x2 / QUANT_QK_K;
            for (int j = 0; j < 16; j++) {
                const float *xs = x + 16 * j, *qw = imp + QUANT_QK_K * i + 16 * j;
                sw[j] = 0;
                for (int l = 0; l < 16; l++) {
                    w[l] = qw[l] * sqrtf(sigma2 + xs[l] * xs[l]);
                    sw[j] += w[l];
                }
                scales[j] = quant_fit_symmetric(16, 4, xs, L + 16 * j, w);
            }
            int8_t Ls[16];
            st_f16(b + 108, quant_fit_symmetric(16, 32, scales, Ls, sw));
            for (int j = 0; j < 16; j++) q3_pack_scale(s, j, Ls[j]);
        }
        const float d = ld_f16(b + 108);
        for (int j = 0; j < 16; j++) {
            const float ds = d * (float)q3_scale(s, j);
            if (!ds) continue;
            for (int l = 0; l < 16; l++) L[16 * j + l] = (int8_t)(clampi(nearest(x[16 * j + l] / ds), -4, 3) + 4);
        }
        // Value e: third bit in hmask[e % 32] bit e / 32; low two bits in
        // qs[32 * (e / 128) + e % 32] at bits 2 * ((e % 128) / 32).
        uint8_t *hm = b, *q = b + 32;
        for (int e = 0; e < QUANT_QK_K; e++) {
            int l = L[e];
            if (l > 3) {
                hm[e % 32] |= (uint8_t)(1 << (e / 32));
                l -= 4;
            }
            q[32 * (e / 128) + e % 32] |= (uint8_t)(l << (2 * ((e % 128) / 32)));
        }
    }
}

// Q4_1 / Q5_1 (nmax 15 / 31). Without importance, ggml's reference: the block's
// range [min, max] in nmax even steps, levels rounded half up. With it, the
// weighted asymmetric search of the K-quants, its noise level over the whole call.
static void quant_q451(const float *x, uint8_t *b, uint64_t n, const float *imp, int nmax) {
    const size_t bsize = nmax == 15 ? 20 : 24, qs_at = nmax == 15 ? 4 : 8;
    float sigma2 = imp ? mean_square(x, n) : 0;
    for (uint64_t i = 0; i < n / 32; i++, x += 32, b += bsize) {
        uint8_t L[32];
        if (imp) {
            float w[32], min;
            for (int j = 0; j < 32; j++) w[j] = imp[32 * i + j] * sqrtf(sigma2 + x[j] * x[j]);
            st_f16(b, quant_fit_scale_min(32, nmax, x, w, L, &min, -0.9f, 0.05f, 36, false));
            st_f16(b + 2, -min);
        } else {
            float lo = x[0], hi = x[0];
            for (int j = 1; j < 32; j++) {
                lo = x[j] < lo ? x[j] : lo;
                hi = x[j] > hi ? x[j] : hi;
            }
            const float d = (hi - lo) / (float)nmax, id = d ? 1 / d : 0;
            st_f16(b, d);
            st_f16(b + 2, lo);
            for (int j = 0; j < 32; j++) {
                const float v = (x[j] - lo) * id + 0.5f; // truncation = round half up
                L[j] = (uint8_t)(v >= 0 ? (v < (float)nmax ? (int)v : nmax) : 0);
            }
        }
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            b[qs_at + j] = (uint8_t)((L[j] & 15) | (L[j + 16] & 15) << 4);
            qh |= (uint32_t)(L[j] >> 4) << j | (uint32_t)(L[j + 16] >> 4) << (j + 16);
        }
        if (nmax == 31)
            for (int k = 0; k < 4; k++) b[4 + k] = (uint8_t)(qh >> (8 * k));
    }
}

// Q5_0: the value of largest magnitude maps to level 0 (-16), or with importance
// the weighted symmetric fit over 32 levels.
static void quant_q5_0(const float *x, uint8_t *b, uint64_t n, const float *imp) {
    float sigma2 = imp ? mean_square(x, n) : 0;
    for (uint64_t i = 0; i < n / 32; i++, x += 32, b += 22) {
        int8_t L[32];
        if (imp) {
            float w[32];
            for (int j = 0; j < 32; j++) w[j] = imp[32 * i + j] * sqrtf(sigma2 + x[j] * x[j]);
            st_f16(b, quant_fit_symmetric(32, 16, x, L, w));
        } else {
            const float d = signed_max(x, 32) / -16, id = d ? 1 / d : 0;
            st_f16(b, d);
            for (int j = 0; j < 32; j++) {
                const float v = x[j] * id + 16.5f;
                L[j] = (int8_t)(v >= 0 ? (v < 31 ? (int)v : 31) : 0);
            }
        }
        uint32_t qh = 0;
        for (int j = 0; j < 16; j++) {
            b[6 + j] = (uint8_t)((L[j] & 15) | (L[j + 16] & 15) << 4);
            qh |= (uint32_t)(L[j] >> 4) << j | (uint32_t)(L[j + 16] >> 4) << (j + 16);
        }
        for (int k = 0; k < 4; k++) b[2 + k] = (uint8_t)(qh >> (8 * k));
    }
}

// Q2_K. Without importance, ggml's reference: each sub-block of 16 fitted as
// scale * L - min over 4 levels, weighted by |x| and ranked by absolute error;
// the 16 scales and 16 mins to 4 bits by their maxima. With importance, the
// weighted search and a weighted fit of the 4-bit scales and mins. Then the
// levels are chosen again against the scales as stored.
static void quant_q2_k(const float *x, uint8_t *b, uint64_t n, const float *imp) {
    for (uint64_t i = 0; i < n / QUANT_QK_K; i++, x += QUANT_QK_K, b += 84) {
        uint8_t L[QUANT_QK_K], Ls[16], Lm[16];
        float scales[16], mins[16], w[16];
        memset(b, 0, 84);
        if (!imp) {
            float max_scale = 0, max_min = 0;
            for (int j = 0; j < 16; j++) {
                for (int l = 0; l < 16; l++) w[l] = fabsf(x[16 * j + l]);
                scales[j] = quant_fit_scale_min(16, 3, x + 16 * j, w, L + 16 * j, &mins[j], -0.5f, 0.1f, 15, true);
                if (scales[j] > max_scale) max_scale = scales[j];
                if (mins[j] > max_min) max_min = mins[j];
            }
            const float is = max_scale > 0 ? 15 / max_scale : 0, im = max_min > 0 ? 15 / max_min : 0;
            for (int j = 0; j < 16; j++) {
                Ls[j] = (uint8_t)clampi(nearest(is * scales[j]), 0, 15);
                Lm[j] = (uint8_t)clampi(nearest(im * mins[j]), 0, 15);
            }
            st_f16(b + 80, max_scale > 0 ? max_scale / 15 : 0);
            st_f16(b + 82, max_min > 0 ? max_min / 15 : 0);
        } else {
            float sum_x2 = 0, sw[16];
            for (int l = 0; l < QUANT_QK_K; l++) sum_x2 += x[l] * x[l];
            const float sigma2 = sum_x2 / QUANT_QK_K;
            for (int j = 0; j < 16; j++) {
                const float *xs = x + 16 * j, *qw = imp + QUANT_QK_K * i + 16 * j;
                sw[j] = 0;
                for (int l = 0; l < 16; l++) {
                    w[l] = qw[l] * sqrtf(sigma2 + xs[l] * xs[l]);
                    sw[j] += w[l];
                }
                scales[j] = quant_fit_scale_min(16, 3, xs, w, L + 16 * j, &mins[j], -0.9f, 0.05f, 36, false);
            }
            st_f16(b + 80, quant_fit_positive(16, 15, scales, Ls, sw));
            st_f16(b + 82, quant_fit_positive(16, 15, mins, Lm, sw));
        }
        for (int j = 0; j < 16; j++) b[j] = (uint8_t)(Ls[j] | Lm[j] << 4);
        const float d = ld_f16(b + 80), dmin = ld_f16(b + 82);
        for (int j = 0; j < 16; j++) {
            const float ds = d * (float)(b[j] & 15);
            if (!ds) continue;
            const float dm = dmin * (float)(b[j] >> 4);
            for (int l = 0; l < 16; l++) L[16 * j + l] = (uint8_t)clampi(nearest((x[16 * j + l] + dm) / ds), 0, 3);
        }
        for (int e = 0; e < QUANT_QK_K; e++) b[16 + 32 * (e / 128) + e % 32] |= (uint8_t)(L[e] << (2 * (e % 128 / 32)));
    }
}

// The codebook index nearest x (the lower one on a tie), by bisection.
static int iq4_nearest(float x) {
    if (x <= iq4_values[0]) return 0;
    if (x >= iq4_values[15]) return 15;
    int lo = 0, hi = 15;
    while (hi - lo > 1) {
        const int mid = (lo + hi) / 2;
        if (x < iq4_values[mid]) hi = mid;
        else lo = mid;
    }
    return x - iq4_values[hi - 1] < iq4_values[hi] - x ? hi - 1 : hi;
}

// IQ4_NL (super = 32: one block of 32 under an f16 scale) and IQ4_XS (super =
// 256: 8 sub-blocks of 32 under 6-bit scales times an f16 d), ggml's search: per
// sub-block of 32, the scale mapping the value of largest magnitude to the first
// level, then 15 nearby inverse scales, keeping the best weighted least-squares
// fit (weights x^2, or importance * sqrt(sigma2 + x^2)); IQ4_XS then rounds the
// sub-block scales to 6 bits against the largest and picks the levels again.
static void quant_iq4(const float *x, uint8_t *b, uint64_t n, const float *imp, int super) {
    const int nsub = super / 32, ntry = 7;
    const size_t bsize = super == 32 ? 18 : 136;
    for (uint64_t i = 0; i < n / (uint64_t)super; i++, x += super, b += bsize) {
        uint8_t L[QUANT_QK_K];
        float scales[8], w[32], sigma2 = 0;
        for (int j = 0; j < super; j++) sigma2 += x[j] * x[j];
        sigma2 *= 2.f / (float)super;
        memset(b, 0, bsize);
        float max_scale = 0, amax_scale = 0;
        for (int ib = 0; ib < nsub; ib++) {
            const float *xb = x + 32 * ib;
            uint8_t *Lb = L + 32 * ib;
            for (int j = 0; j < 32; j++)
                w[j] = imp ? imp[(uint64_t)super * i + 32 * ib + j] * sqrtf(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
            const float max = signed_max(xb, 32);
            if (fabsf(max) < 1e-15f) {
                scales[ib] = 0;
                continue;
            }
            float d = -max / iq4_values[0], id = 1 / d, sumqx = 0, sumq2 = 0;
            for (int j = 0; j < 32; j++) {
                Lb[j] = (uint8_t)iq4_nearest(id * xb[j]);
                const float q = iq4_values[Lb[j]];
                sumqx += w[j] * q * xb[j];
                sumq2 += w[j] * q * q;
            }
            d = sumq2 > 0 ? sumqx / sumq2 : 0;
            float best = d * sumqx;
            for (int t = -ntry; t <= ntry; t++) {
                id = (float)(t + iq4_values[0]) / max;
                sumqx = sumq2 = 0;
                for (int j = 0; j < 32; j++) {
                    const float q = iq4_values[iq4_nearest(id * xb[j])];
                    sumqx += w[j] * q * xb[j];
                    sumq2 += w[j] * q * q;
                }
                if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                    d = sumqx / sumq2;
                    best = d * sumqx;
                }
            }
            scales[ib] = d;
            if (fabsf(d) > amax_scale) {
                amax_scale = fabsf(d);
                max_scale = d;
            }
        }
        uint8_t *qs;
        if (nsub > 1) { // IQ4_XS: 6-bit sub-block scales, stored + 32
            const float d = -max_scale / 32, id = d ? 1 / d : 0;
            st_f16(b, d);
            uint32_t sh = 0;
            for (int ib = 0; ib < nsub; ib++) {
                const int l = clampi(nearest(id * scales[ib]), -32, 31);
                const float dl = d * (float)l, idl = dl ? 1 / dl : 0;
                for (int j = 0; j < 32; j++) L[32 * ib + j] = (uint8_t)iq4_nearest(idl * x[32 * ib + j]);
                b[4 + ib / 2] |= (uint8_t)(((l + 32) & 15) << (4 * (ib % 2)));
                sh |= (uint32_t)((l + 32) >> 4) << (2 * ib);
            }
            b[2] = (uint8_t)sh;
            b[3] = (uint8_t)(sh >> 8);
            qs = b + 8;
        } else { // IQ4_NL: the levels again against the unrounded scale
            st_f16(b, scales[0]);
            const float id = scales[0] ? 1 / scales[0] : 0;
            for (int j = 0; j < 32; j++) L[j] = (uint8_t)iq4_nearest(id * x[j]);
            qs = b + 2;
        }
        for (int ib = 0; ib < nsub; ib++)
            for (int j = 0; j < 16; j++) qs[16 * ib + j] = (uint8_t)(L[32 * ib + j] | L[32 * ib + 16 + j] << 4);
    }
}

int quant_quantize_row(uint32_t type, const float *src, void *dst, uint64_t n, const float *importance) {
    if (!quant_type_supported(type))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "cannot quantize to tensor type %s (%u)", quant_type_name(type), type);
    if (quant_iq_type(type)) // decoded, but the codebook searches are not written
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "vkphi reads %s tensors but cannot quantize to %s", quant_type_name(type),
                          quant_type_name(type));
    const uint32_t blck = quant_block_elems(type);
    if (n % blck)
        return vkphi_fail(VKPHI_ERR_ARG, "a %s row of %llu values is not a whole number of %u-value blocks",
                          quant_type_name(type), (unsigned long long)n, blck);
    uint8_t *b = dst;
    switch (type) {
    case GGML_TYPE_F32: memcpy(dst, src, n * sizeof(float)); break;
    case GGML_TYPE_F16:
        for (uint64_t i = 0; i < n; i++) st_f16(b + 2 * i, src[i]);
        break;
    case GGML_TYPE_BF16:
        for (uint64_t i = 0; i < n; i++) {
            const uint16_t h = vkphi_f32_to_bf16(src[i]);
            b[2 * i] = (uint8_t)h;
            b[2 * i + 1] = (uint8_t)(h >> 8);
        }
        break;
    case GGML_TYPE_Q4_0: quant_q4_0(src, b, n, importance); break;
    case GGML_TYPE_Q8_0: quant_q8_0(src, b, n); break;
    case GGML_TYPE_Q3_K: quant_q3_k(src, b, n, importance); break;
    case GGML_TYPE_Q4_K: quant_q45_k(src, b, n, importance, 15); break;
    case GGML_TYPE_Q5_K: quant_q45_k(src, b, n, importance, 31); break;
    case GGML_TYPE_Q6_K: quant_q6_k(src, b, n, importance); break;
    case GGML_TYPE_Q4_1: quant_q451(src, b, n, importance, 15); break;
    case GGML_TYPE_Q5_0: quant_q5_0(src, b, n, importance); break;
    case GGML_TYPE_Q5_1: quant_q451(src, b, n, importance, 31); break;
    case GGML_TYPE_Q2_K: quant_q2_k(src, b, n, importance); break;
    case GGML_TYPE_IQ4_NL: quant_iq4(src, b, n, importance, 32); break;
    case GGML_TYPE_IQ4_XS: quant_iq4(src, b, n, importance, 256); break;
    }
    return VKPHI_OK;
}
