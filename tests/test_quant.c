// SPDX-License-Identifier: MIT
// quant: the type table; known-answer blocks for every supported type, packed here
// by hand from the documented layouts (so the CPU code and a GPU kernel cannot
// agree on the same mistake); round trips and edge cases; bad arguments; and the
// quality of our quantizers against the reference quantizer's files in
// ../shared/reference (ours must stay within 2% of its RMS error per type); the
// codebook (IQ) types: known-answer blocks, the shared grids against the format's
// definition, and the reference files' IQ tensors decoded against the F16 weights.
#include "harness.h"

#include "common.h"
#include "gguf.h"
#include "quant.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static void put_f16(uint8_t *p, float v) {
    uint16_t h = vkphi_f32_to_f16(v);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static double rms_diff(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    return sqrt(s / (double)n);
}

static int count_mismatch(const float *got, const float *want, size_t n, size_t *first) {
    int bad = 0;
    for (size_t i = n; i-- > 0;)
        if (got[i] != want[i]) bad++, *first = i;
    return bad;
}

// ---- the type table ----

static void test_types(void) {
    static const struct { uint32_t t; const char *name; uint32_t blck, bytes; bool sup; } want[] = {
        {0, "F32", 1, 4, true},        {1, "F16", 1, 2, true},        {2, "Q4_0", 32, 18, true},
        {3, "Q4_1", 32, 20, true},    {6, "Q5_0", 32, 22, true},    {7, "Q5_1", 32, 24, true},
        {8, "Q8_0", 32, 34, true},     {9, "Q8_1", 32, 36, false},    {10, "Q2_K", 256, 84, true},
        {11, "Q3_K", 256, 110, true},  {12, "Q4_K", 256, 144, true},  {13, "Q5_K", 256, 176, true},
        {14, "Q6_K", 256, 210, true},  {15, "Q8_K", 256, 292, false}, {16, "IQ2_XXS", 256, 66, true},
        {17, "IQ2_XS", 256, 74, true}, {18, "IQ3_XXS", 256, 98, true}, {19, "IQ1_S", 256, 50, true},
        {20, "IQ4_NL", 32, 18, true}, {21, "IQ3_S", 256, 110, true}, {22, "IQ2_S", 256, 82, true},
        {23, "IQ4_XS", 256, 136, true}, {24, "I8", 1, 1, false},     {25, "I16", 1, 2, false},
        {26, "I32", 1, 4, false},      {27, "I64", 1, 8, false},      {28, "F64", 1, 8, false},
        {29, "IQ1_M", 256, 56, true}, {30, "BF16", 1, 2, true},      {34, "TQ1_0", 256, 54, false},
        {35, "TQ2_0", 256, 66, false}, {39, "MXFP4", 32, 17, false},
    };
    int n_sup = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const uint32_t t = want[i].t;
        CHECK(quant_type_known(t), "type %u known", t);
        CHECK(!strcmp(quant_type_name(t), want[i].name), "type %u name %s, want %s", t, quant_type_name(t), want[i].name);
        CHECK(quant_block_elems(t) == want[i].blck, "%s block %u", want[i].name, quant_block_elems(t));
        CHECK(quant_block_bytes(t) == want[i].bytes, "%s bytes %u", want[i].name, quant_block_bytes(t));
        CHECK(quant_type_supported(t) == want[i].sup, "%s supported", want[i].name);
        CHECK(quant_type_from_name(want[i].name) == (int)t, "from_name(%s)", want[i].name);
        char lower[16];
        size_t k = 0;
        for (; want[i].name[k] && k < sizeof lower - 1; k++) lower[k] = (char)tolower((unsigned char)want[i].name[k]);
        lower[k] = 0;
        CHECK(quant_type_from_name(lower) == (int)t, "from_name(%s)", lower);
        n_sup += want[i].sup;
    }
    CHECK(n_sup == 22, "twenty-two supported types, found %d", n_sup);
    static const uint32_t unknown[] = {4, 5, 31, 32, 33, 36, 37, 38, 40, 41, 1000, UINT32_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const uint32_t t = unknown[i];
        CHECK(!quant_type_known(t) && !quant_type_supported(t), "type %u unknown", t);
        CHECK(!strcmp(quant_type_name(t), "unknown"), "type %u name", t);
        CHECK(quant_block_elems(t) == 0 && quant_block_bytes(t) == 0 && quant_row_bytes(t, 256) == 0, "type %u sizes", t);
    }
    CHECK(quant_type_from_name("Q4_K_M") == -1 && quant_type_from_name("Q4") == -1 && quant_type_from_name("") == -1 &&
              quant_type_from_name(NULL) == -1 && quant_type_from_name("unknown") == -1,
          "names that are not types");
    CHECK(quant_row_bytes(GGML_TYPE_Q4_K, 5120) == 20 * 144, "Q4_K row of 5120");
    CHECK(quant_row_bytes(GGML_TYPE_Q6_K, 17920) == 70 * 210, "Q6_K row of 17920");
    CHECK(quant_row_bytes(GGML_TYPE_Q8_0, 5120) == 160 * 34, "Q8_0 row of 5120");
    CHECK(quant_row_bytes(GGML_TYPE_F16, 7) == 14, "F16 row of 7");
    CHECK(quant_row_bytes(GGML_TYPE_Q4_K, 100) == 0 && quant_row_bytes(GGML_TYPE_Q4_0, 33) == 0, "partial blocks");
    CHECK(quant_row_bytes(GGML_TYPE_F32, UINT64_MAX / 2) == 0, "overflow");
    CHECK(quant_bits_per_weight(GGML_TYPE_Q4_K) == 4.5 && quant_bits_per_weight(GGML_TYPE_Q6_K) == 6.5625 &&
              quant_bits_per_weight(GGML_TYPE_Q8_0) == 8.5 && quant_bits_per_weight(4) == 0,
          "bits per weight");
}

// ---- known answers: one hand-packed block per type ----

static void check_block(uint32_t type, const uint8_t *blk, const float *want, size_t n, const char *what) {
    float got[256];
    CHECK(quant_dequantize_row(type, blk, got, n) == VKPHI_OK, "%s: dequantize: %s", what, vkphi_last_error());
    size_t first = 0;
    int bad = count_mismatch(got, want, n, &first);
    CHECK(bad == 0, "%s: %d values wrong, first at %zu: got %g want %g", what, bad, first, got[first], want[first]);
}

static void test_known_floats(void) {
    uint8_t b[16];
    // F32, F16, BF16: plain little-endian numbers.
    const uint8_t f16_bytes[] = {0x00, 0x3c, 0x00, 0xc0, 0x55, 0x35, 0x00, 0x7c, 0x01, 0x00, 0xff, 0x7b, 0x00, 0x80, 0x00, 0x38};
    const float f16_want[] = {1.0f, -2.0f, 0.333251953125f, INFINITY, 5.9604644775390625e-08f, 65504.0f, -0.0f, 0.5f};
    check_block(GGML_TYPE_F16, f16_bytes, f16_want, 8, "F16");
    const uint8_t bf16_bytes[] = {0x80, 0x3f, 0x40, 0xc0, 0x49, 0x40, 0x80, 0x7f};
    const float bf16_want[] = {1.0f, -3.0f, 3.140625f, INFINITY};
    check_block(GGML_TYPE_BF16, bf16_bytes, bf16_want, 4, "BF16");
    const float f32_vals[] = {1.5f, -0.25f, 1e30f, -7.0f};
    memcpy(b, f32_vals, sizeof f32_vals);
    check_block(GGML_TYPE_F32, b, f32_vals, 4, "F32");
}

static void test_known_q4_0_q8_0(void) {
    uint8_t b[256 * 4];
    float want[256];
    // Q4_0: d = 0.5; byte j holds value j (low nibble) and value j+16 (high nibble).
    put_f16(b, 0.5f);
    for (int j = 0; j < 16; j++) {
        const int lo = j, hi = 15 - j;
        b[2 + j] = (uint8_t)(lo | hi << 4);
        want[j] = (float)(lo - 8) * 0.5f;
        want[j + 16] = (float)(hi - 8) * 0.5f;
    }
    put_f16(b + 18, -2.0f); // a second block: all nibbles 0xF -> 7 * -2
    memset(b + 20, 0xff, 16);
    for (int j = 32; j < 64; j++) want[j] = -14.0f;
    check_block(GGML_TYPE_Q4_0, b, want, 64, "Q4_0");

    // Q8_0: d = 0.25, signed bytes.
    put_f16(b, 0.25f);
    for (int j = 0; j < 32; j++) {
        const int q = j * 8 - 128; // -128 .. 120
        b[2 + j] = (uint8_t)(q & 0xff);
        want[j] = (float)q * 0.25f;
    }
    check_block(GGML_TYPE_Q8_0, b, want, 32, "Q8_0");
}

static void test_known_q4_k_q5_k(void) {
    uint8_t b[256 * 4];
    float want[256];
    // Q4_K / Q5_K: d = 1, dmin = 0.5; eight 6-bit (scale, min) pairs. Bytes 0..3:
    // scale j (low 6 bits) + top 2 bits of scale j+4; bytes 4..7: the same for mins;
    // bytes 8..11: low nibble = low 4 bits of scale j+4, high nibble = of min j+4.
    static const int sc[8] = {1, 17, 33, 63, 5, 40, 50, 62}, mn[8] = {0, 63, 2, 31, 48, 7, 16, 59};
    uint8_t scales[12];
    for (int j = 0; j < 4; j++) {
        scales[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        scales[j + 4] = (uint8_t)(mn[j] | (mn[j + 4] >> 4) << 6);
        scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
    memset(b, 0, 176);
    put_f16(b, 1.0f);
    put_f16(b + 2, 0.5f);
    memcpy(b + 4, scales, 12);
    for (int e = 0; e < 256; e++) { // value e: byte 32*(e/64) + e%32, high nibble when e%64 >= 32
        const int q = (e * 7 + 3) % 16, at = 16 + 32 * (e / 64) + e % 32;
        b[at] |= (uint8_t)(e % 64 >= 32 ? q << 4 : q);
        want[e] = (float)(sc[e / 32] * q) - 0.5f * (float)mn[e / 32];
    }
    check_block(GGML_TYPE_Q4_K, b, want, 256, "Q4_K");

    memset(b, 0, 176);
    put_f16(b, 1.0f);
    put_f16(b + 2, 0.5f);
    memcpy(b + 4, scales, 12);
    for (int e = 0; e < 256; e++) { // low 4 bits as Q4_K (qs at 48), 5th bit in qh[e%32] bit e/32
        const int q = (e * 11 + 5) % 32, at = 48 + 32 * (e / 64) + e % 32;
        b[at] |= (uint8_t)(e % 64 >= 32 ? (q & 15) << 4 : (q & 15));
        b[16 + e % 32] |= (uint8_t)((q >> 4) << (e / 32));
        want[e] = (float)(sc[e / 32] * q) - 0.5f * (float)mn[e / 32];
    }
    check_block(GGML_TYPE_Q5_K, b, want, 256, "Q5_K");
}

static void test_known_q6_k_q3_k(void) {
    uint8_t b[256 * 4];
    float want[256];
    // Q6_K: ql[128] qh[64] int8 scales[16] f16 d (at 208). Value e: half h = e/128,
    // r = e%128, k = r/32, l = r%32; low 4 bits in ql[64h + 32*(k&1) + l] (high
    // nibble when k >= 2), top 2 bits in qh[32h + l] bits 2k; scale index e/16.
    static const int s6[16] = {-128, 127, -1, 1, 5, -7, 64, -64, 100, 3, -3, 0, 9, -100, 33, 2};
    memset(b, 0, 210);
    put_f16(b + 208, 0.125f);
    for (int j = 0; j < 16; j++) b[192 + j] = (uint8_t)(s6[j] & 0xff);
    for (int e = 0; e < 256; e++) {
        const int q = (e * 13 + 7) % 64, h = e / 128, r = e % 128, k = r / 32, l = r % 32;
        b[64 * h + 32 * (k & 1) + l] |= (uint8_t)(k >= 2 ? (q & 15) << 4 : (q & 15));
        b[128 + 32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
        want[e] = 0.125f * (float)s6[e / 16] * (float)(q - 32);
    }
    check_block(GGML_TYPE_Q6_K, b, want, 256, "Q6_K");

    // Q3_K: hmask[32] qs[64] scales[12] f16 d (at 108). Scale j (6 bits, +32):
    // low 4 bits in byte j (j < 8) or the high nibble of byte j-8; top 2 bits in
    // byte 8 + j%4 at bits 2*(j/4). Value e (0..7, meaning e-4): low 2 bits in
    // qs[32*(e/128) + e%32] at bits 2*((e%128)/32), third bit in hmask[e%32] bit e/32.
    static const int s3[16] = {0, 63, 32, 31, 1, 16, 47, 48, 15, 33, 60, 3, 40, 24, 8, 56};
    memset(b, 0, 110);
    put_f16(b + 108, 0.5f);
    for (int j = 0; j < 16; j++) {
        if (j < 8) b[96 + j] |= (uint8_t)(s3[j] & 15);
        else b[96 + j - 8] |= (uint8_t)((s3[j] & 15) << 4);
        b[96 + 8 + j % 4] |= (uint8_t)((s3[j] >> 4) << (2 * (j / 4)));
    }
    for (int e = 0; e < 256; e++) {
        const int v = (e * 5 + 1) % 8;
        b[32 + 32 * (e / 128) + e % 32] |= (uint8_t)((v & 3) << (2 * ((e % 128) / 32)));
        b[e % 32] |= (uint8_t)((v >> 2) << (e / 32));
        want[e] = 0.5f * (float)(s3[e / 16] - 32) * (float)(v - 4);
    }
    check_block(GGML_TYPE_Q3_K, b, want, 256, "Q3_K");
}

static void test_known_q4_1_q5(void) {
    uint8_t b[256 * 4];
    float want[256];
    // Q4_1: f16 d = 0.5, f16 m = -3, nibbles as Q4_0's; value = q * d + m.
    put_f16(b, 0.5f);
    put_f16(b + 2, -3.0f);
    for (int j = 0; j < 16; j++) {
        const int lo = (j * 7 + 2) % 16, hi = 15 - j;
        b[4 + j] = (uint8_t)(lo | hi << 4);
        want[j] = (float)lo * 0.5f - 3.0f;
        want[j + 16] = (float)hi * 0.5f - 3.0f;
    }
    check_block(GGML_TYPE_Q4_1, b, want, 32, "Q4_1");

    // Q5_0: f16 d = -0.25, qh (32-bit little-endian: bit j is value j's fifth bit),
    // nibbles as Q4_0's; value = (q - 16) * d. Q5_1: f16 d = 0.125, f16 m = 1,
    // qh, nibbles; value = q * d + m.
    for (int t = 0; t < 2; t++) {
        const int at = t ? 4 : 2; // qh offset; the nibbles follow it
        memset(b, 0, 24);
        put_f16(b, t ? 0.125f : -0.25f);
        if (t) put_f16(b + 2, 1.0f);
        for (int j = 0; j < 32; j++) {
            const int q = (j * 13 + 5) % 32;
            b[at + 4 + j % 16] |= (uint8_t)(j < 16 ? (q & 15) : (q & 15) << 4);
            b[at + j / 8] |= (uint8_t)((q >> 4) << (j % 8));
            want[j] = t ? (float)q * 0.125f + 1.0f : (float)(q - 16) * -0.25f;
        }
        check_block(t ? GGML_TYPE_Q5_1 : GGML_TYPE_Q5_0, b, want, 32, t ? "Q5_1" : "Q5_0");
    }
}

static void test_known_q2_k(void) {
    uint8_t b[256 * 4];
    float want[256];
    // Q2_K: scales[16] (low nibble scale, high nibble min), qs[64], f16 d (at 80),
    // f16 dmin (82). Value e: 2 bits in qs[32*(e/128) + e%32] at bits 2*((e%128)/32);
    // sub-block e/16; value = d*scale * q - dmin*min.
    static const int s2[16] = {0, 15, 1, 7, 8, 3, 12, 5, 9, 14, 2, 11, 4, 13, 6, 10};
    static const int m2[16] = {15, 0, 3, 9, 1, 12, 5, 14, 2, 7, 11, 6, 13, 4, 10, 8};
    memset(b, 0, 84);
    put_f16(b + 80, 0.5f);
    put_f16(b + 82, 0.25f);
    for (int j = 0; j < 16; j++) b[j] = (uint8_t)(s2[j] | m2[j] << 4);
    for (int e = 0; e < 256; e++) {
        const int q = (e * 3 + e / 64) % 4;
        b[16 + 32 * (e / 128) + e % 32] |= (uint8_t)(q << (2 * ((e % 128) / 32)));
        want[e] = 0.5f * (float)s2[e / 16] * (float)q - 0.25f * (float)m2[e / 16];
    }
    check_block(GGML_TYPE_Q2_K, b, want, 256, "Q2_K");
}

static void test_known_iq4(void) {
    uint8_t b[256 * 4];
    float want[256];
    // IQ4_NL: f16 d = 0.5, nibbles as Q4_0's index the 16 levels of the format.
    static const int iq4[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    put_f16(b, 0.5f);
    for (int j = 0; j < 16; j++) {
        const int lo = j, hi = (j * 5 + 3) % 16;
        b[2 + j] = (uint8_t)(lo | hi << 4);
        want[j] = 0.5f * (float)iq4[lo];
        want[j + 16] = 0.5f * (float)iq4[hi];
    }
    check_block(GGML_TYPE_IQ4_NL, b, want, 32, "IQ4_NL");

    // IQ4_XS: f16 d = 0.25, u16 scales_h (bits 2ib: top 2 bits of sub-block ib's
    // 6-bit scale), scales_l[4] (nibble ib%2 of byte ib/2: its low 4 bits), qs[128]
    // (sub-block ib at 16ib, nibbles as IQ4_NL's); value = d*(scale - 32) * level.
    static const int sx[8] = {0, 63, 32, 31, 17, 48, 5, 40};
    memset(b, 0, 136);
    put_f16(b, 0.25f);
    uint16_t sh = 0;
    for (int ib = 0; ib < 8; ib++) {
        b[4 + ib / 2] |= (uint8_t)((sx[ib] & 15) << (4 * (ib % 2)));
        sh |= (uint16_t)((sx[ib] >> 4) << (2 * ib));
    }
    b[2] = (uint8_t)sh;
    b[3] = (uint8_t)(sh >> 8);
    for (int e = 0; e < 256; e++) {
        const int q = (e * 7 + e / 32) % 16, ib = e / 32, l = e % 32;
        b[8 + 16 * ib + l % 16] |= (uint8_t)(l < 16 ? q : q << 4);
        want[e] = 0.25f * (float)(sx[ib] - 32) * (float)iq4[q];
    }
    check_block(GGML_TYPE_IQ4_XS, b, want, 256, "IQ4_XS");
}

static void test_known_quantizers(void) {
    uint8_t b[256 * 4];
    // Quantizer known answers where the arithmetic is exact.
    // Q8_0: the largest magnitude is 127, so d = 1 and values round half away from zero.
    float x[32] = {127, -127, 0.5f, -0.5f, 1.49f, 2.5f, -2.5f, 0};
    static const int8_t q8_want[8] = {127, -127, 1, -1, 1, 3, -3, 0};
    CHECK(quant_quantize_row(GGML_TYPE_Q8_0, x, b, 32, NULL) == VKPHI_OK, "quantize Q8_0");
    CHECK(b[0] == 0x00 && b[1] == 0x3c, "Q8_0 d = 1.0 (got %02x%02x)", b[1], b[0]);
    CHECK(!memcmp(b + 2, q8_want, 8), "Q8_0 levels");
    // Q4_0: the value of largest magnitude (-8) maps to level 0, so d = 1; levels are
    // floor(x + 8.5) capped at 15.
    float y[32] = {-8, 7, 7.9f, -0.5f, 0.49f, 0.5f, -7.6f, 3};
    static const uint8_t q4_want[8] = {0, 15, 15, 8, 8, 9, 0, 11};
    CHECK(quant_quantize_row(GGML_TYPE_Q4_0, y, b, 32, NULL) == VKPHI_OK, "quantize Q4_0");
    CHECK(b[0] == 0x00 && b[1] == 0x3c, "Q4_0 d = 1.0 (got %02x%02x)", b[1], b[0]);
    for (int j = 0; j < 8; j++) CHECK((b[2 + j] & 15) == q4_want[j], "Q4_0 level %d: %d, want %d", j, b[2 + j] & 15, q4_want[j]);
    for (int j = 0; j < 16; j++) CHECK(b[2 + j] >> 4 == 8, "Q4_0 zero in the second half");
}

// A hand-packed block of every supported type, then the quantizers where the
// arithmetic is exact.
static void test_known_answers(void) {
    test_known_floats();
    test_known_q4_0_q8_0();
    test_known_q4_k_q5_k();
    test_known_q6_k_q3_k();
    test_known_q4_1_q5();
    test_known_q2_k();
    test_known_iq4();
    test_known_quantizers();
}

// ---- round trips ----

static const uint32_t supported[] = {GGML_TYPE_F32,  GGML_TYPE_F16,  GGML_TYPE_BF16, GGML_TYPE_Q8_0,   GGML_TYPE_Q4_0,
                                     GGML_TYPE_Q3_K, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K,   GGML_TYPE_Q4_1,
                                     GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q2_K, GGML_TYPE_IQ4_NL, GGML_TYPE_IQ4_XS};

// Relative RMS error of a quantize/dequantize round trip of n values.
static double round_trip(uint32_t type, const float *x, float *y, size_t n, const float *imp) {
    uint8_t *q = malloc(quant_row_bytes(type, n) + 1);
    CHECK(quant_quantize_row(type, x, q, n, imp) == VKPHI_OK, "%s quantize: %s", quant_type_name(type), vkphi_last_error());
    CHECK(quant_dequantize_row(type, q, y, n) == VKPHI_OK, "%s dequantize", quant_type_name(type));
    free(q);
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return rms_diff(x, y, n) / sqrt(s / (double)n);
}

static void test_round_trips(void) {
    enum { N = 256 * 64 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    test_seed(7);
    for (int i = 0; i < N; i++) x[i] = test_rand_normal();
    // Upper bounds on the relative RMS error for Gaussian data, about 10% above
    // what these quantizers measure.
    const struct { uint32_t t; double max; } bound[] = {
        {GGML_TYPE_F32, 0},        {GGML_TYPE_F16, 2.3e-4},   {GGML_TYPE_BF16, 1.85e-3},
        {GGML_TYPE_Q8_0, 5.9e-3},  {GGML_TYPE_Q6_K, 1.95e-2}, {GGML_TYPE_Q5_K, 4.0e-2},
        {GGML_TYPE_Q4_K, 7.9e-2},  {GGML_TYPE_Q4_0, 9.5e-2},  {GGML_TYPE_Q3_K, 1.66e-1},
        {GGML_TYPE_Q5_1, 4.18e-2}, {GGML_TYPE_Q5_0, 4.72e-2}, {GGML_TYPE_Q4_1, 8.66e-2},
        {GGML_TYPE_IQ4_XS, 8.53e-2}, {GGML_TYPE_IQ4_NL, 8.46e-2}, {GGML_TYPE_Q2_K, 3.34e-1},
    };
    double err[GGML_TYPE_COUNT] = {0};
    for (size_t i = 0; i < sizeof bound / sizeof bound[0]; i++) {
        err[bound[i].t] = round_trip(bound[i].t, x, y, N, NULL);
        printf("round trip %-5s relative RMS error %.5f (bound %.5f)\n", quant_type_name(bound[i].t), err[bound[i].t], bound[i].max);
        CHECK(err[bound[i].t] <= bound[i].max, "%s error %g > %g", quant_type_name(bound[i].t), err[bound[i].t], bound[i].max);
    }
    CHECK(err[GGML_TYPE_Q8_0] < err[GGML_TYPE_Q6_K] && err[GGML_TYPE_Q6_K] < err[GGML_TYPE_Q5_K] &&
              err[GGML_TYPE_Q5_K] < err[GGML_TYPE_Q4_K] && err[GGML_TYPE_Q4_K] < err[GGML_TYPE_Q4_0] &&
              err[GGML_TYPE_Q4_0] < err[GGML_TYPE_Q3_K] && err[GGML_TYPE_Q3_K] < err[GGML_TYPE_Q2_K] &&
              err[GGML_TYPE_Q5_K] < err[GGML_TYPE_Q5_1] && err[GGML_TYPE_Q5_1] < err[GGML_TYPE_Q5_0] &&
              err[GGML_TYPE_Q5_0] < err[GGML_TYPE_Q4_K] && err[GGML_TYPE_IQ4_NL] < err[GGML_TYPE_Q4_0] &&
              err[GGML_TYPE_IQ4_XS] < err[GGML_TYPE_Q4_0] && err[GGML_TYPE_Q4_1] < err[GGML_TYPE_Q4_0],
          "more bits, less error");

    // Values that the format holds exactly come back exactly (F16/BF16), and a
    // K-quant block that is itself a dequantized block is found again nearly exactly.
    for (int i = 0; i < 256; i++) x[i] = (float)(i - 128) * 0.0625f;
    CHECK(round_trip(GGML_TYPE_F16, x, y, 256, NULL) == 0, "F16 exact values");
    CHECK(round_trip(GGML_TYPE_BF16, x, y, 256, NULL) == 0, "BF16 exact values");

    // Importance: columns with weight 100 must come out better than without it.
    float *imp = malloc(N * sizeof *imp);
    for (int i = 0; i < N; i++) {
        x[i] = test_rand_normal();
        imp[i] = (i / 7) % 3 == 0 ? 100.0f : 1.0f;
    }
    for (size_t k = 3; k < sizeof supported / sizeof supported[0]; k++) {
        const uint32_t t = supported[k];
        double ew[2];
        for (int with = 0; with < 2; with++) {
            round_trip(t, x, y, N, with ? imp : NULL);
            double s = 0;
            for (int i = 0; i < N; i++) s += imp[i] * ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
            ew[with] = s;
        }
        printf("importance %-5s weighted error %.4g without, %.4g with\n", quant_type_name(t), ew[0], ew[1]);
        if (t == GGML_TYPE_Q8_0) CHECK(ew[1] == ew[0], "Q8_0 ignores importance");
        else CHECK(ew[1] < 0.97 * ew[0], "%s: importance lowers the weighted error (%g vs %g)", quant_type_name(t), ew[1], ew[0]);
    }
    free(imp);

    // Edge cases: zeros give zeros; constant and one-spike blocks come back close;
    // huge, infinite and NaN inputs must not crash (what comes back is unspecified).
    for (size_t k = 0; k < sizeof supported / sizeof supported[0]; k++) {
        const uint32_t t = supported[k];
        const char *name = quant_type_name(t);
        memset(x, 0, 256 * sizeof *x);
        round_trip(t, x, y, 256, NULL);
        size_t first = 0;
        CHECK(count_mismatch(y, x, 256, &first) == 0, "%s: zeros come back as zeros", name);
        for (int i = 0; i < 256; i++) x[i] = 0.75f;
        round_trip(t, x, y, 256, NULL);
        CHECK(test_max_rel_err(y, x, 256, 0, 0.02) <= 1, "%s: constant block", name);
        for (int i = 0; i < 256; i++) x[i] = i == 77 ? -3.0f : 0.0f;
        round_trip(t, x, y, 256, NULL);
        // IQ4 has no zero level: zero comes back as the scale times level 1, and
        // with weights x^2 the scale fits the spike to any of the levels 89..127.
        const float zero_tol = t == GGML_TYPE_IQ4_NL || t == GGML_TYPE_IQ4_XS ? 3.0f / 89 * 1.01f : 0.02f;
        CHECK(fabsf(y[77] + 3.0f) < 0.02f && fabsf(y[78]) < zero_tol, "%s: spike %g, then %g", name, y[77], y[78]);
        for (int i = 0; i < 256; i++) x[i] = i % 3 ? 1e30f : i % 5 ? -INFINITY : NAN;
        round_trip(t, x, y, 256, NULL); // only survival matters here
        for (int i = 0; i < 256; i++) x[i] = 1e-41f * (float)(i - 128); // subnormal
        round_trip(t, x, y, 256, NULL);
    }
    free(x);
    free(y);
}

static void test_bad_arguments(void) {
    float x[64] = {0};
    uint8_t q[64 * 4] = {0};
    CHECK(quant_dequantize_row(GGML_TYPE_Q4_K, q, x, 100) == VKPHI_ERR_ARG, "partial block");
    CHECK(strstr(vkphi_last_error(), "Q4_K") != NULL, "message names the type: %s", vkphi_last_error());
    CHECK(quant_quantize_row(GGML_TYPE_Q8_0, x, q, 33, NULL) == VKPHI_ERR_ARG, "partial block");
    CHECK(quant_dequantize_row(34, q, x, 256) == VKPHI_ERR_UNSUPPORTED, "TQ1_0 is not run");
    CHECK(strstr(vkphi_last_error(), "TQ1_0") != NULL, "message names the type: %s", vkphi_last_error());
    CHECK(quant_quantize_row(40, x, q, 32, NULL) == VKPHI_ERR_UNSUPPORTED, "unknown type");
    CHECK(quant_quantize_row(GGML_TYPE_IQ2_XS, x, q, 256, NULL) == VKPHI_ERR_UNSUPPORTED &&
              strstr(vkphi_last_error(), "IQ2_XS") != NULL,
          "IQ2_XS is read but not written: %s", vkphi_last_error());
    CHECK(quant_dequantize_row(GGML_TYPE_F16, q, x, 0) == VKPHI_OK, "an empty row is fine");
}

// ---- the codebook (IQ) types ----
// Blocks packed here from the layouts in runtime/core/quant_iq.h, from grid entries
// whose values are copied from the format's definition (iq*_grid), so a slip in
// quant_iq.c or in the shared table shows. Octet o (8 values; sub-block o/4,
// octet o%4 within it) takes entry o%4 of the type's list below.

struct iq_entry { uint32_t idx; int v[8]; };
static const struct iq_entry iq2xxs_e[4] = {{0, {8, 8, 8, 8, 8, 8, 8, 8}}, {1, {43, 8, 8, 8, 8, 8, 8, 8}},
                                            {128, {8, 43, 8, 8, 8, 43, 43, 8}}, {255, {8, 25, 8, 8, 25, 43, 43, 43}}};
static const struct iq_entry iq2xs_e[4] = {{1, {43, 8, 8, 8, 8, 8, 8, 8}}, {300, {8, 25, 25, 8, 8, 25, 8, 25}},
                                           {511, {43, 43, 43, 43, 43, 43, 43, 43}}, {256, {43, 25, 8, 8, 8, 8, 8, 25}}};
static const struct iq_entry iq2s_e[4] = {{1, {43, 8, 8, 8, 8, 8, 8, 8}}, {700, {8, 8, 8, 43, 43, 8, 25, 25}},
                                          {1023, {43, 43, 43, 43, 43, 43, 43, 43}}, {512, {25, 25, 43, 8, 25, 8, 8, 25}}};
// IQ3 entries hold 4 values; an octet takes entries o%4 and (o+1)%4.
static const struct iq_entry iq3xxs_e[4] = {{0, {4, 4, 4, 4}}, {5, {62, 12, 4, 4}}, {200, {4, 62, 4, 44}}, {255, {4, 28, 52, 62}}};
static const struct iq_entry iq3s_e[4] = {{1, {3, 1, 1, 1}}, {300, {3, 5, 3, 7}}, {511, {1, 1, 15, 15}}, {256, {7, 5, 9, 5}}};
static const struct iq_entry iq1s_e[4] = {{0, {-1, -1, -1, -1, -1, -1, -1, -1}}, {1, {1, -1, -1, -1, -1, -1, -1, -1}},
                                          {1500, {0, -1, -1, 0, -1, 0, -1, 1}}, {2047, {1, 1, 1, 1, 1, 1, 1, 1}}};

// Grid value j of octet o for a type with 8-value (IQ2, IQ1) or 4-value (IQ3) entries.
static int iq_val(const struct iq_entry *e, bool four, int o, int j) {
    return four ? (j < 4 ? e[o % 4].v[j] : e[(o + 1) % 4].v[j - 4]) : e[o % 4].v[j];
}
static uint32_t sign7(int o) { return (uint32_t)(37 * o + 11) & 127; } // a 7-bit sign field
static uint32_t sign8_of7(uint32_t s) { // bit 7 makes the number of minus signs even
    int c = 0;
    for (int j = 0; j < 7; j++) c += s >> j & 1;
    return s | (uint32_t)(c & 1) << 7;
}
static uint32_t sign8(int o) { return (uint32_t)(53 * o + 7) & 255; }
static void put_u16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { put_u16(p, v), put_u16(p + 2, v >> 16); }

static void test_iq_known_answers(void) {
    uint8_t b[256];
    float want[256];
    const double d = 0.5;

    // IQ2_XXS: per sub-block 4 index bytes, then a u32 of signs (7 bits per octet) and scale (bits 28..31).
    memset(b, 0, sizeof b);
    put_f16(b, (float)d);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t s = (uint32_t)(5 * ib + 3) & 15;
        uint32_t aux = s << 28;
        for (int l = 0; l < 4; l++) {
            const int o = 4 * ib + l;
            b[2 + 8 * ib + l] = (uint8_t)iq2xxs_e[o % 4].idx;
            aux |= sign7(o) << 7 * l;
            for (int j = 0; j < 8; j++)
                want[8 * o + j] = (float)(d * (2 * s + 1) / 8 * iq_val(iq2xxs_e, false, o, j) * (sign8_of7(sign7(o)) >> j & 1 ? -1 : 1));
        }
        put_u32(b + 2 + 8 * ib + 4, aux);
    }
    check_block(GGML_TYPE_IQ2_XXS, b, want, 256, "IQ2_XXS");

    // IQ2_XS: u16 per octet (9-bit index, 7 sign bits); scales[8] at 66, octets 0,1 low nibble.
    memset(b, 0, sizeof b);
    put_f16(b, (float)d);
    for (int o = 0; o < 32; o++) {
        const int ib = o / 4, l = o % 4;
        const uint32_t lo = (uint32_t)(5 * ib + 3) & 15, hi = (uint32_t)(7 * ib + 2) & 15, s = l < 2 ? lo : hi;
        b[66 + ib] = (uint8_t)(lo | hi << 4);
        put_u16(b + 2 + 2 * o, iq2xs_e[o % 4].idx | sign7(o) << 9);
        for (int j = 0; j < 8; j++)
            want[8 * o + j] = (float)(d * (2 * s + 1) / 8 * iq_val(iq2xs_e, false, o, j) * (sign8_of7(sign7(o)) >> j & 1 ? -1 : 1));
    }
    check_block(GGML_TYPE_IQ2_XS, b, want, 256, "IQ2_XS");

    // IQ2_S: qs[32] index bits 0..7, signs[32] at 34, qh[8] at 66 (bits 2l..2l+1), scales[8] at 74.
    memset(b, 0, sizeof b);
    put_f16(b, (float)d);
    for (int o = 0; o < 32; o++) {
        const int ib = o / 4, l = o % 4;
        const uint32_t lo = (uint32_t)(5 * ib + 3) & 15, hi = (uint32_t)(7 * ib + 2) & 15, s = l < 2 ? lo : hi;
        b[74 + ib] = (uint8_t)(lo | hi << 4);
        b[2 + o] = (uint8_t)iq2s_e[o % 4].idx;
        b[66 + ib] |= (uint8_t)((iq2s_e[o % 4].idx >> 8) << 2 * l);
        b[34 + o] = (uint8_t)sign8(o);
        for (int j = 0; j < 8; j++)
            want[8 * o + j] = (float)(d * (2 * s + 1) / 8 * iq_val(iq2s_e, false, o, j) * (sign8(o) >> j & 1 ? -1 : 1));
    }
    check_block(GGML_TYPE_IQ2_S, b, want, 256, "IQ2_S");

    // IQ3_XXS: qs[64] two index bytes per octet, then per sub-block a u32 of signs and scale.
    memset(b, 0, sizeof b);
    put_f16(b, (float)d);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t s = (uint32_t)(5 * ib + 3) & 15;
        uint32_t aux = s << 28;
        for (int l = 0; l < 4; l++) {
            const int o = 4 * ib + l;
            b[2 + 2 * o] = (uint8_t)iq3xxs_e[o % 4].idx;
            b[2 + 2 * o + 1] = (uint8_t)iq3xxs_e[(o + 1) % 4].idx;
            aux |= sign7(o) << 7 * l;
            for (int j = 0; j < 8; j++)
                want[8 * o + j] = (float)(d * (2 * s + 1) / 4 * iq_val(iq3xxs_e, true, o, j) * (sign8_of7(sign7(o)) >> j & 1 ? -1 : 1));
        }
        put_u32(b + 66 + 4 * ib, aux);
    }
    check_block(GGML_TYPE_IQ3_XXS, b, want, 256, "IQ3_XXS");

    // IQ3_S: qs[64] index bits 0..7, qh[8] at 66 (bit k: 9th bit of index k of the
    // sub-block), signs[32] at 74, scales[4] at 106 (sub-block ib: nibble ib%2 of byte ib/2).
    memset(b, 0, sizeof b);
    put_f16(b, (float)d);
    for (int o = 0; o < 32; o++) {
        const int ib = o / 4, l = o % 4;
        const uint32_t s = (uint32_t)(5 * ib + 3) & 15;
        b[106 + ib / 2] |= (uint8_t)(s << 4 * (ib & 1));
        for (int h = 0; h < 2; h++) {
            const uint32_t idx = iq3s_e[(o + h) % 4].idx;
            b[2 + 2 * o + h] = (uint8_t)idx;
            b[66 + ib] |= (uint8_t)((idx >> 8) << (2 * l + h));
        }
        b[74 + o] = (uint8_t)sign8(o);
        for (int j = 0; j < 8; j++)
            want[8 * o + j] = (float)(d * (2 * s + 1) * iq_val(iq3s_e, true, o, j) * (sign8(o) >> j & 1 ? -1 : 1));
    }
    check_block(GGML_TYPE_IQ3_S, b, want, 256, "IQ3_S");

    // IQ1_S: qs[32] index bits 0..7; per sub-block a u16 at 34: index bits 8..10 of
    // octet l at bits 3l, scale at 12..14, delta's sign at bit 15.
    memset(b, 0, sizeof b);
    put_f16(b, (float)d);
    for (int ib = 0; ib < 8; ib++) {
        const uint32_t s = (uint32_t)(3 * ib + 1) & 7, neg = (uint32_t)ib & 1;
        uint32_t qh = s << 12 | neg << 15;
        for (int l = 0; l < 4; l++) {
            const int o = 4 * ib + l;
            b[2 + o] = (uint8_t)iq1s_e[o % 4].idx;
            qh |= (iq1s_e[o % 4].idx >> 8) << 3 * l;
            for (int j = 0; j < 8; j++)
                want[8 * o + j] = (float)(d * (2 * s + 1) * (iq_val(iq1s_e, false, o, j) + (neg ? -0.125 : 0.125)));
        }
        put_u16(b + 34 + 2 * ib, qh);
    }
    check_block(GGML_TYPE_IQ1_S, b, want, 256, "IQ1_S");

    // IQ1_M: qs[32], qh[16] (octet l of sub-block ib: nibble l%2 of byte 2ib + l/2,
    // index bits 8..10 low, delta's sign top), scales as 4 u16: sub-block ib in word
    // ib/2 at bit 6(ib%2) (octets 0,1) and +3 (octets 2,3); the words' top nibbles
    // hold the f16 d = 0.25 (0x3400), lowest nibble in word 0.
    memset(b, 0, sizeof b);
    const uint32_t dh = 0x3400;
    uint32_t sc[4] = {0};
    for (int k = 0; k < 4; k++) sc[k] = ((dh >> 4 * k) & 15) << 12;
    for (int o = 0; o < 32; o++) {
        const int ib = o / 4, l = o % 4;
        const uint32_t s1 = (uint32_t)(3 * ib + 1) & 7, s2 = (uint32_t)(5 * ib + 2) & 7, s = l < 2 ? s1 : s2;
        sc[ib / 2] |= (s1 | s2 << 3) << 6 * (ib & 1);
        const uint32_t neg = o % 3 == 0, idx = iq1s_e[o % 4].idx;
        b[o] = (uint8_t)idx;
        b[32 + 2 * ib + l / 2] |= (uint8_t)(((idx >> 8) | neg << 3) << 4 * (l & 1));
        for (int j = 0; j < 8; j++)
            want[8 * o + j] = (float)(0.25 * (2 * s + 1) * (iq_val(iq1s_e, false, o, j) + (neg ? -0.125 : 0.125)));
    }
    for (int k = 0; k < 4; k++) put_u16(b + 48 + 2 * k, sc[k]);
    check_block(GGML_TYPE_IQ1_M, b, want, 256, "IQ1_M");
}

// The shared grids (runtime/core/quant_iq_tables.h) against the definition: an FNV-1a
// hash of every entry's values in order, one byte each (IQ1_S's -1 as 0xff),
// computed from ggml's iq*_grid tables.
#define IQ_GRID_IQ2XXS
#define IQ_GRID_IQ2XS
#define IQ_GRID_IQ2S
#define IQ_GRID_IQ3XXS
#define IQ_GRID_IQ3S
#define IQ_GRID_IQ1S
#include "quant_iq_tables.h"
#include "repack.h"

static uint64_t fnv_byte(uint64_t h, uint32_t b) { return (h ^ (b & 255)) * 0x100000001b3ull; }

static uint64_t grid_hash(const uint32_t *t, uint32_t words, bool iq1) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint32_t i = 0; i < words; i++) {
        if (!iq1) {
            for (int j = 0; j < 4; j++) h = fnv_byte(h, t[i] >> 8 * j);
        } else {
            for (int j = 0; j < 8; j++) h = fnv_byte(h, ((t[i] >> (8 * (j & 3) + 4 * (j >> 2))) & 15) - 1);
        }
    }
    return h;
}

static void test_iq_tables(void) {
    CHECK(grid_hash(IQ2XXS_GRID, 512, false) == 0xbb4ee025b5ac6e8eull, "IQ2XXS_GRID is the definition's iq2xxs_grid");
    CHECK(grid_hash(IQ2XS_GRID, 1024, false) == 0xc9b1ee61e79909bdull, "IQ2XS_GRID is the definition's iq2xs_grid");
    CHECK(grid_hash(IQ2S_GRID, 2048, false) == 0x123edd38a3b62b90ull, "IQ2S_GRID is the definition's iq2s_grid");
    CHECK(grid_hash(IQ3XXS_GRID, 256, false) == 0xdfa5dc83d6a155d5ull, "IQ3XXS_GRID is the definition's iq3xxs_grid");
    CHECK(grid_hash(IQ3S_GRID, 512, false) == 0xfa37020c25b44829ull, "IQ3S_GRID is the definition's iq3s_grid");
    CHECK(grid_hash(IQ1S_GRID, 2048, true) == 0x6703ed863501ae2eull, "IQ1S_GRID is the definition's iq1s_grid");
    // Every IQ1_S nibble is a value in -1..1 (stored +1), and nothing else is set.
    bool ok = true;
    for (int i = 0; i < 2048; i++) ok &= (IQ1S_GRID[i] & 0xcccccccc) == 0 && (IQ1S_GRID[i] & 0x33333333 & (IQ1S_GRID[i] >> 1)) == 0;
    CHECK(ok, "IQ1S_GRID nibbles are 0, 1 or 2");
}

// The reference quantizer's IQ tensors (../shared/reference/*IQ*-mix.gguf) decode
// close to the F16 weights they were made from: relative RMS error per type below
// a bound that a wrong decoding (a misplaced bit, a wrong table entry, a wrong
// scale) exceeds many times over, and fewer bits cost more.
static void test_iq_reference(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-F16.gguf", dir);
    gguf_file *src = gguf_open(path);
    CHECK(src != NULL, "open %s: %s", path, vkphi_last_error());
    if (!src) return;
    static const char *files[] = {"tiny-phi4-IQ3_M-mix.gguf", "tiny-phi4-IQ2_M-mix.gguf", "tiny-phi4-IQ1_M-mix.gguf"};
    double err[GGML_TYPE_COUNT] = {0}, mag[GGML_TYPE_COUNT] = {0};
    for (int fi = 0; fi < 3; fi++) {
        snprintf(path, sizeof path, "%s/reference/%s", dir, files[fi]);
        gguf_file *f = gguf_open(path);
        CHECK(f != NULL, "open %s: %s", path, vkphi_last_error());
        if (!f) continue;
        for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
            const gguf_tensor *tq = gguf_tensor_at(f, i), *tf = gguf_find_tensor(src, tq->name);
            if (!quant_type_supported(tq->type) || tq->type == GGML_TYPE_F32 || !tf) continue;
            const uint64_t n = tq->ne[0], rows = tq->ne[1], rb = quant_row_bytes(tq->type, n), rbf = quant_row_bytes(tf->type, n);
            float *x = malloc(n * sizeof *x), *z = malloc(n * sizeof *z);
            for (uint64_t r = 0; r < rows; r++) {
                quant_dequantize_row(tf->type, (const uint8_t *)tf->data + r * rbf, x, n);
                CHECK(quant_dequantize_row(tq->type, (const uint8_t *)tq->data + r * rb, z, n) == VKPHI_OK, "%s %s: %s",
                      files[fi], tq->name, vkphi_last_error());
                for (uint64_t j = 0; j < n; j++) {
                    err[tq->type] += ((double)z[j] - x[j]) * ((double)z[j] - x[j]);
                    mag[tq->type] += (double)x[j] * x[j];
                }
            }
            free(x), free(z);
        }
        gguf_close(f);
    }
    gguf_close(src);
    static const struct { uint32_t type; double bound; } iq[] = {
        // measured 0.166, 0.184, 0.250, 0.303, 0.345, 0.454, 0.491; a wrong decoding gives 1 or more
        {GGML_TYPE_IQ3_S, 0.18}, {GGML_TYPE_IQ3_XXS, 0.20}, {GGML_TYPE_IQ2_S, 0.27}, {GGML_TYPE_IQ2_XS, 0.33},
        {GGML_TYPE_IQ2_XXS, 0.38}, {GGML_TYPE_IQ1_M, 0.50}, {GGML_TYPE_IQ1_S, 0.54}};
    double prev = 0;
    for (size_t i = 0; i < sizeof iq / sizeof iq[0]; i++) {
        const uint32_t t = iq[i].type;
        CHECK(mag[t] > 0, "the reference files hold %s tensors", quant_type_name(t));
        const double rel = sqrt(err[t] / mag[t]);
        printf("reference %-7s tensors decode to a relative RMS error of %.4f from the F16 weights\n", quant_type_name(t), rel);
        CHECK(rel <= iq[i].bound, "%s: relative RMS error %.4f above %.2f", quant_type_name(t), rel, iq[i].bound);
        CHECK(rel >= prev, "%s: relative error %.4f below that of a type with more bits (%.4f)", quant_type_name(t), rel, prev);
        prev = rel;
    }
}

// ---- quality against the reference quantizer ----

struct tally { double ours, theirs; uint64_t n, same_blocks, blocks; };

// For every quantized tensor of `file` (of type `only`, or of every type when it is
// UINT32_MAX): quantize the same tensor of the F16 file with our code and add both
// squared errors (against the F16 values) per type.
static void compare_file(const char *dir, const char *file, const gguf_file *src, struct tally *t, uint32_t only) {
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/%s", dir, file);
    gguf_file *f = gguf_open(path);
    CHECK(f != NULL, "open %s: %s", path, vkphi_last_error());
    if (!f) return;
    for (int64_t i = 0; i < gguf_n_tensors(f); i++) {
        const gguf_tensor *tq = gguf_tensor_at(f, i), *tf = gguf_find_tensor(src, tq->name);
        if (tq->type == GGML_TYPE_F32 || tq->type == GGML_TYPE_F16 || (only != UINT32_MAX && tq->type != only)) continue;
        CHECK(tf && tf->ne[0] == tq->ne[0] && tf->ne[1] == tq->ne[1], "%s: %s has a twin in the F16 file", file, tq->name);
        if (!tf) continue;
        const uint64_t n = tq->ne[0], rows = tq->ne[1], rb = quant_row_bytes(tq->type, n), rbf = quant_row_bytes(tf->type, n);
        const uint32_t bb = quant_block_bytes(tq->type);
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *z = malloc(n * sizeof *z);
        uint8_t *q = malloc(rb);
        struct tally *tt = &t[tq->type];
        for (uint64_t r = 0; r < rows; r++) {
            const uint8_t *ref = (const uint8_t *)tq->data + r * rb;
            quant_dequantize_row(tf->type, (const uint8_t *)tf->data + r * rbf, x, n);
            quant_quantize_row(tq->type, x, q, n, NULL);
            quant_dequantize_row(tq->type, q, y, n);
            quant_dequantize_row(tq->type, ref, z, n);
            for (uint64_t j = 0; j < n; j++) {
                tt->ours += ((double)y[j] - x[j]) * ((double)y[j] - x[j]);
                tt->theirs += ((double)z[j] - x[j]) * ((double)z[j] - x[j]);
            }
            for (uint64_t k = 0; k < rb / bb; k++) tt->same_blocks += !memcmp(q + k * bb, ref + k * bb, bb);
            tt->blocks += rb / bb;
            tt->n += n;
        }
        free(x);
        free(y);
        free(z);
        free(q);
    }
    gguf_close(f);
}

static void test_against_reference(const char *dir) {
    char path[1024];
    snprintf(path, sizeof path, "%s/reference/tiny-phi4-F16.gguf", dir);
    gguf_file *src = gguf_open(path);
    CHECK(src != NULL, "open %s: %s", path, vkphi_last_error());
    if (!src) return;
    struct tally t[GGML_TYPE_COUNT];
    memset(t, 0, sizeof t);
    compare_file(dir, "tiny-phi4-Q4_K_M.gguf", src, t, UINT32_MAX);
    compare_file(dir, "tiny-phi4-Q4_0.gguf", src, t, UINT32_MAX);
    compare_file(dir, "tiny-phi4-Q8_0.gguf", src, t, UINT32_MAX);
    // The Q2_K file was made without an importance matrix: its Q2_K tensors compare.
    compare_file(dir, "tiny-phi4-Q2_K.gguf", src, t, GGML_TYPE_Q2_K);
    int types = 0;
    for (int ty = 0; ty < GGML_TYPE_COUNT; ty++) {
        if (!t[ty].n) continue;
        types++;
        const double ours = sqrt(t[ty].ours / (double)t[ty].n), theirs = sqrt(t[ty].theirs / (double)t[ty].n);
        printf("vs reference %-5s RMS error ours %.6g, reference %.6g, ratio %.4f; identical blocks %llu of %llu\n",
               quant_type_name((uint32_t)ty), ours, theirs, ours / theirs, (unsigned long long)t[ty].same_blocks,
               (unsigned long long)t[ty].blocks);
        CHECK(ours <= 1.02 * theirs, "%s: our RMS error %g is more than 2%% above the reference's %g",
              quant_type_name((uint32_t)ty), ours, theirs);
        // Our errors must be the quantizer's, not a decoding slip: the reference's
        // own blocks decode to within its error of the F16 weights.
        CHECK(theirs < (ty == GGML_TYPE_Q2_K ? 0.2 : 0.1), "%s: reference decodes sensibly", quant_type_name((uint32_t)ty));
    }
    CHECK(types == 5, "Q4_K, Q6_K, Q4_0, Q8_0 and Q2_K all compared (%d types)", types);
    // Q4_0 and Q8_0 follow one rounding rule with no search: most blocks must match
    // the reference bit for bit (it quantized from unrounded weights, so not all).
    CHECK(t[GGML_TYPE_Q4_0].same_blocks > t[GGML_TYPE_Q4_0].blocks * 9 / 10, "Q4_0 blocks identical to the reference");
    CHECK(t[GGML_TYPE_Q8_0].same_blocks > t[GGML_TYPE_Q8_0].blocks / 3, "Q8_0 blocks identical to the reference");
    gguf_close(src);
}

// ---- the device layout (runtime/core/repack.h) ----
// Row sizes (whole 16-byte words, and not much more than the file's) and the f32
// scales: an f16 scale, subnormal included, becomes exactly its value. The GPU
// kernels' readers of each layout are tested against the CPU in test_quant_gpu.
static void test_repack(void) {
    CHECK(repack_row_bytes(GGML_TYPE_Q8_0, 5120) == 40 * 144, "Q8_0 device row of 5120");
    CHECK(repack_row_bytes(GGML_TYPE_Q6_K, 17920) == 17 * 848 + 16 + 2 * 208, "Q6_K device row of 17920 (70 blocks)");
    CHECK(repack_row_bytes(GGML_TYPE_Q6_K, 512) == 16 + 2 * 208, "Q6_K device row of 512 (2 blocks of a tile)");
    CHECK(repack_row_bytes(GGML_TYPE_Q4_K, 5120) == 20 * 144, "Q4_K keeps its layout");
    CHECK(repack_row_bytes(GGML_TYPE_F16, 7) == 14 && repack_row_bytes(GGML_TYPE_Q4_0, 33) == 0, "F16; partial blocks");
    CHECK(repack_tensor_bytes(GGML_TYPE_Q8_0, 32, UINT64_MAX / 8) == 0, "tensor size overflow");
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++) {
        if (!quant_type_supported(t) || t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16) continue;
        uint32_t qk = quant_block_elems(t);
        for (uint32_t nb = 1; nb <= 9; nb++) {
            uint64_t file = quant_row_bytes(t, (uint64_t)qk * nb), dev = repack_row_bytes(t, (uint64_t)qk * nb);
            CHECK(dev % 16 == 0 && dev >= file, "%s: %u blocks: %llu device bytes for %llu", quant_type_name(t), nb,
                  (unsigned long long)dev, (unsigned long long)file);
        }
        uint64_t file = quant_row_bytes(t, 17920), dev = repack_row_bytes(t, 17920); // Phi-4's longest row
        CHECK(dev <= file * 1.21 + 48, "%s: %llu device bytes for a row of %llu", quant_type_name(t), (unsigned long long)dev,
              (unsigned long long)file);
    }
    // Q8_0, 5 blocks (two tiles of 4): d of block b at tile b/4, word b%4; block 2's
    // d is the smallest subnormal half, block 4's the largest.
    uint8_t src[5 * 34] = {0}, dst[144 + 48];
    const uint16_t d[5] = {0x3c00, 0xb800, 0x0001, 0x7bff, 0x03ff};
    for (int b = 0; b < 5; b++) {
        src[34 * b] = (uint8_t)d[b], src[34 * b + 1] = (uint8_t)(d[b] >> 8);
        for (int i = 0; i < 32; i++) src[34 * b + 2 + i] = (uint8_t)(7 * b + i);
    }
    memset(dst, 0xee, sizeof dst);
    repack_rows(GGML_TYPE_Q8_0, src, dst, 5 * 32, 1);
    for (int b = 0; b < 5; b++) {
        float f;
        memcpy(&f, dst + 144 * (b / 4) + 4 * (b % 4), 4);
        CHECK(f == vkphi_f16_to_f32(d[b]) && f != 0, "Q8_0 block %d: f32 d %g, f16 %g", b, f, vkphi_f16_to_f32(d[b]));
        CHECK(!memcmp(dst + 144 * (b / 4) + 16 + 32 * (b % 4), src + 34 * b + 2, 32), "Q8_0 block %d quants", b);
    }
    bool zero = true;
    for (int i = 144 + 4; i < 144 + 16; i++) zero &= dst[i] == 0; // the second tile's unused scale words
    CHECK(zero, "Q8_0: the last tile's unused scale words are zero");
    CHECK(repack_row_bytes(GGML_TYPE_Q8_0, 5 * 32) == 144 + 16 + 32, "Q8_0 row of 5 blocks: a tile and a block");
}

int main(void) {
    test_types();
    test_repack();
    test_known_answers();
    test_iq_known_answers();
    test_iq_tables();
    test_round_trips();
    test_bad_arguments();
    const char *dir = test_shared_dir("the comparison with the reference quantizer");
    if (dir) test_against_reference(dir), test_iq_reference(dir);
    return test_finish();
}
