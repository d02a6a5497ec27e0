// SPDX-License-Identifier: MIT
// Device layouts of the quantized types (repack.h). Each is a tile of G blocks: a
// header of h bytes (the blocks' f32 scales converted from their f16 fields, 4
// bytes apart per block from a fixed offset, so the scales of G <= 4 blocks share
// a 16-byte word; IQ2_XS and IQ1_M also keep their 8 bytes of sub-block scales
// there), then s bytes per block. A row's last tile holds only its remaining r
// blocks, h + r s bytes, so short rows waste nothing. The table gives the
// offsets; shaders/common/quant_<type>.glsl reads the same (QG, QH, QS, QT).
#include "repack.h"

#include <string.h>

#include "common.h"
#include "gguf.h"
#include "quant.h"

#define MAX_SCALES 2
#define MAX_COPIES 4

struct tile_layout {
    uint32_t g, h, s; // blocks per tile, header bytes, bytes per block (multiples of 16)
    // f16 scales: src byte offset in the block -> f32 at dst + stride * lane (lane:
    // the block's place in its tile).
    struct {
        int32_t src;
        uint32_t dst, stride;
    } scale[MAX_SCALES];
    uint32_t n_scales;
    struct {
        uint32_t src, len, dst, stride;
    } copy[MAX_COPIES]; // bytes src..src+len-1 -> dst + stride * lane
    uint32_t n_copies;
};

// IQ1_M keeps its f16 d in the top nibbles of its four scale words (bytes 48..55).
#define SRC_IQ1_M_D (-1)

static const struct tile_layout *layout_of(uint32_t type) {
    static const struct tile_layout q8_0 = {4, 16, 32, {{0, 0, 4}}, 1, {{2, 32, 16, 32}}, 1};
    static const struct tile_layout q4_0 = {4, 16, 16, {{0, 0, 4}}, 1, {{2, 16, 16, 16}}, 1}; // IQ4_NL too
    static const struct tile_layout q4_1 = {4, 32, 16, {{0, 0, 4}, {2, 16, 4}}, 2, {{4, 16, 32, 16}}, 1};
    static const struct tile_layout q5_0 = {4, 32, 16, {{0, 0, 4}}, 1, {{2, 4, 16, 4}, {6, 16, 32, 16}}, 2};
    static const struct tile_layout q5_1 = {4, 48, 16, {{0, 0, 4}, {2, 16, 4}}, 2, {{4, 4, 32, 4}, {8, 16, 48, 16}}, 2};
    static const struct tile_layout q6_k = {4, 16, 208, {{208, 0, 4}}, 1, {{0, 208, 16, 208}}, 1};
    static const struct tile_layout q3_k = {1, 0, 112, {{108, 108, 4}}, 1, {{0, 108, 0, 0}}, 1};
    static const struct tile_layout q2_k = {2, 16, 80, {{80, 0, 8}, {82, 4, 8}}, 2, {{0, 80, 16, 80}}, 1};
    static const struct tile_layout iq4_xs = {1, 0, 144, {{0, 0, 4}}, 1, {{2, 2, 4, 0}, {4, 4, 8, 0}, {8, 128, 16, 0}},
                                              3};
    static const struct tile_layout iq3_xxs = {4, 16, 96, {{0, 0, 4}}, 1, {{2, 96, 16, 96}}, 1};
    static const struct tile_layout iq3_s = {1, 0, 112, {{0, 108, 4}}, 1, {{2, 108, 0, 0}}, 1};
    static const struct tile_layout iq2_xxs = {4, 16, 64, {{0, 0, 4}}, 1, {{2, 64, 16, 64}}, 1};
    static const struct tile_layout iq2_xs = {4, 48, 64, {{0, 0, 4}}, 1, {{2, 64, 48, 64}, {66, 8, 16, 8}}, 2};
    static const struct tile_layout iq2_s = {4, 16, 80, {{0, 0, 4}}, 1, {{2, 80, 16, 80}}, 1};
    static const struct tile_layout iq1_s = {4, 16, 48, {{0, 0, 4}}, 1, {{2, 48, 16, 48}}, 1};
    static const struct tile_layout iq1_m = {4, 48, 48, {{SRC_IQ1_M_D, 0, 4}}, 1, {{0, 48, 48, 48}, {48, 8, 16, 8}}, 2};
    switch (type) {
    case GGML_TYPE_Q8_0:
        return &q8_0;
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_IQ4_NL:
        return &q4_0;
    case GGML_TYPE_Q4_1:
        return &q4_1;
    case GGML_TYPE_Q5_0:
        return &q5_0;
    case GGML_TYPE_Q5_1:
        return &q5_1;
    case GGML_TYPE_Q6_K:
        return &q6_k;
    case GGML_TYPE_Q3_K:
        return &q3_k;
    case GGML_TYPE_Q2_K:
        return &q2_k;
    case GGML_TYPE_IQ4_XS:
        return &iq4_xs;
    case GGML_TYPE_IQ3_XXS:
        return &iq3_xxs;
    case GGML_TYPE_IQ3_S:
        return &iq3_s;
    case GGML_TYPE_IQ2_XXS:
        return &iq2_xxs;
    case GGML_TYPE_IQ2_XS:
        return &iq2_xs;
    case GGML_TYPE_IQ2_S:
        return &iq2_s;
    case GGML_TYPE_IQ1_S:
        return &iq1_s;
    case GGML_TYPE_IQ1_M:
        return &iq1_m;
    default:
        return NULL; // F32, F16, BF16, Q4_K, Q5_K: the file's layout
    }
}

uint64_t repack_row_bytes(uint32_t type, uint64_t n) {
    uint64_t file = quant_row_bytes(type, n);
    const struct tile_layout *l = layout_of(type);
    if (!file || !l) return file;
    uint64_t nb = n / quant_block_elems(type), r = nb % l->g;
    return nb / l->g * (l->h + l->g * l->s) + (r ? l->h + r * l->s : 0); // no overflow: at most 4x the file's
}

uint64_t repack_tensor_bytes(uint32_t type, uint64_t n, uint64_t rows) {
    uint64_t rb = repack_row_bytes(type, n);
    return rows && rb > UINT64_MAX / rows ? 0 : rb * rows;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void put_f32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(u >> 8 * i);
}

void repack_rows(uint32_t type, const void *src, void *dst, uint64_t n, uint64_t rows) {
    const struct tile_layout *l = layout_of(type);
    const uint64_t file_rb = quant_row_bytes(type, n), dev_rb = repack_row_bytes(type, n);
    if (!l) {
        memcpy(dst, src, file_rb * rows);
        return;
    }
    const uint32_t qb = quant_block_bytes(type);
    const uint64_t nb = n / quant_block_elems(type);
    for (uint64_t r = 0; r < rows; r++) {
        const uint8_t *s = (const uint8_t *)src + r * file_rb;
        uint8_t *d = (uint8_t *)dst + r * dev_rb;
        memset(d, 0, dev_rb); // the unused words of each tile's header
        for (uint64_t b = 0; b < nb; b++) {
            const uint8_t *blk = s + b * qb;
            uint8_t *tile = d + b / l->g * (l->h + l->g * l->s);
            uint32_t lane = (uint32_t)(b % l->g);
            for (uint32_t i = 0; i < l->n_scales; i++) {
                uint16_t h;
                if (l->scale[i].src == SRC_IQ1_M_D) {
                    const uint8_t *sc = blk + 48; // four u16, top nibble of each: d, first word lowest
                    h = (uint16_t)(rd16(sc) >> 12 | (rd16(sc + 2) >> 12) << 4 | (rd16(sc + 4) >> 12) << 8 |
                                   (rd16(sc + 6) >> 12) << 12);
                } else {
                    h = rd16(blk + l->scale[i].src);
                }
                put_f32(tile + l->scale[i].dst + l->scale[i].stride * lane, vkphi_f16_to_f32(h));
            }
            for (uint32_t i = 0; i < l->n_copies; i++)
                memcpy(tile + l->copy[i].dst + l->copy[i].stride * lane, blk + l->copy[i].src, l->copy[i].len);
        }
    }
}
