// SPDX-License-Identifier: MIT
// Per-tensor quantization types of the named mixes (see quant_recipe.h).
#include "quant_recipe.h"

#include <string.h>
#include <strings.h>

#include "gguf.h"
#include "quant.h"

enum mix { MIX_PLAIN, MIX_Q3_K_S, MIX_Q3_K_M, MIX_Q3_K_L, MIX_Q4_K_S, MIX_Q4_K_M, MIX_Q5_K_S, MIX_Q5_K_M, MIX_Q2_K, MIX_IQ4 };

static const struct recipe {
    const char *name;
    uint32_t base;      // the type of every tensor no rule names
    enum mix mix;       // which per-tensor rules apply
    uint32_t file_type; // llama_ftype
} recipes[] = {
    {"F32", GGML_TYPE_F32, MIX_PLAIN, 0},      {"F16", GGML_TYPE_F16, MIX_PLAIN, 1},
    {"BF16", GGML_TYPE_BF16, MIX_PLAIN, 32},   {"Q8_0", GGML_TYPE_Q8_0, MIX_PLAIN, 7},
    {"Q6_K", GGML_TYPE_Q6_K, MIX_PLAIN, 18},   {"Q5_K_M", GGML_TYPE_Q5_K, MIX_Q5_K_M, 17},
    {"Q5_K_S", GGML_TYPE_Q5_K, MIX_Q5_K_S, 16}, {"Q4_K_M", GGML_TYPE_Q4_K, MIX_Q4_K_M, 15},
    {"Q4_K_S", GGML_TYPE_Q4_K, MIX_Q4_K_S, 14}, {"Q4_0", GGML_TYPE_Q4_0, MIX_PLAIN, 2},
    {"Q3_K_L", GGML_TYPE_Q3_K, MIX_Q3_K_L, 13}, {"Q3_K_M", GGML_TYPE_Q3_K, MIX_Q3_K_M, 12},
    {"Q3_K_S", GGML_TYPE_Q3_K, MIX_Q3_K_S, 11}, {"Q5_1", GGML_TYPE_Q5_1, MIX_PLAIN, 9},
    {"Q5_0", GGML_TYPE_Q5_0, MIX_PLAIN, 8},     {"Q4_1", GGML_TYPE_Q4_1, MIX_PLAIN, 3},
    {"IQ4_XS", GGML_TYPE_IQ4_XS, MIX_IQ4, 30},  {"IQ4_NL", GGML_TYPE_IQ4_NL, MIX_IQ4, 25},
    {"Q2_K", GGML_TYPE_Q2_K, MIX_Q2_K, 10},
};
#define N_RECIPES (sizeof recipes / sizeof recipes[0])

static const struct recipe *find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < N_RECIPES; i++)
        if (!strcasecmp(recipes[i].name, name)) return &recipes[i];
    return NULL;
}

bool quant_recipe_known(const char *recipe) { return find(recipe) != NULL; }

const char *quant_recipe_canonical(const char *recipe) {
    const struct recipe *r = find(recipe);
    return r ? r->name : NULL;
}

const char *quant_recipe_names(void) {
    return "F32, F16, BF16, Q8_0, Q6_K, Q5_K_M, Q5_K_S, Q5_1, Q5_0, Q4_K_M, Q4_K_S, Q4_1, Q4_0, IQ4_NL, IQ4_XS, Q3_K_L, "
           "Q3_K_M, Q3_K_S, Q2_K";
}

uint32_t quant_recipe_file_type(const char *recipe) {
    const struct recipe *r = find(recipe);
    return r ? r->file_type : QUANT_RECIPE_UNKNOWN;
}

const char *quant_recipe_from_file_type(uint32_t file_type) {
    for (size_t i = 0; i < N_RECIPES; i++)
        if (recipes[i].file_type == file_type) return recipes[i].name;
    return NULL;
}

static bool has(const char *name, const char *part) { return strstr(name, part) != NULL; }

// The reference's "use more bits" layers: the first and last eighth, and every
// third layer in between.
static bool more_bits(int i, int n) { return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2; }

// A type whose block does not divide the row length gets the reference's
// replacement (see quant_recipe.h).
static uint32_t fit_block(uint32_t type, uint32_t n_in) {
    if (n_in % quant_block_elems(type) == 0) return type;
    switch (type) {
    case GGML_TYPE_Q2_K:
    case GGML_TYPE_Q3_K: type = GGML_TYPE_Q4_0; break;
    case GGML_TYPE_Q4_K: type = GGML_TYPE_Q5_0; break;
    case GGML_TYPE_Q5_K: type = GGML_TYPE_Q5_1; break;
    case GGML_TYPE_Q6_K: type = GGML_TYPE_Q8_0; break;
    case GGML_TYPE_IQ4_XS: type = GGML_TYPE_IQ4_NL; break;
    default: break;
    }
    return n_in % quant_block_elems(type) == 0 ? type : GGML_TYPE_F16;
}

uint32_t quant_recipe_type(const char *recipe, const char *tensor_name, int layer, int n_layer, uint32_t n_in,
                           uint32_t n_gqa, bool imatrix) {
    const struct recipe *r = find(recipe);
    if (!r || !tensor_name) return QUANT_RECIPE_UNKNOWN;
    const char *name = tensor_name;
    const size_t len = strlen(name);
    // Vectors and non-weights are never quantized.
    if (len < 7 || strcmp(name + len - 7, ".weight") || has(name, "_norm.weight") || has(name, "rope_factors"))
        return GGML_TYPE_F32;
    if (r->base == GGML_TYPE_F32 || r->base == GGML_TYPE_F16 || r->base == GGML_TYPE_BF16) return r->base;
    if (layer < 0) layer = 0;
    if (n_layer < 1) n_layer = 1;

    uint32_t t = r->base;
    const enum mix m = r->mix;
    if (!strcmp(name, "output.weight")) {
        if (n_in % quant_block_elems(t)) t = GGML_TYPE_Q8_0;
        else if (t != GGML_TYPE_Q8_0) t = GGML_TYPE_Q6_K;
    } else if (!strcmp(name, "token_embd.weight")) {
        // the base type
    } else if (has(name, "attn_v.weight") || has(name, "attn_qkv.weight")) {
        if (m == MIX_Q2_K) t = n_gqa >= 4 ? GGML_TYPE_Q4_K : GGML_TYPE_Q3_K;
        else if (m == MIX_Q3_K_M) t = layer < 2 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        else if (m == MIX_Q3_K_L) t = GGML_TYPE_Q5_K;
        else if (m == MIX_IQ4 && n_gqa >= 4) t = GGML_TYPE_Q5_K;
        else if ((m == MIX_Q4_K_M || m == MIX_Q5_K_M) && more_bits(layer, n_layer)) t = GGML_TYPE_Q6_K;
        else if (m == MIX_Q4_K_S && layer < 4) t = GGML_TYPE_Q5_K;
    } else if (has(name, "ffn_down")) {
        if (m == MIX_Q2_K) t = GGML_TYPE_Q3_K;
        else if (m == MIX_Q3_K_M) t = layer < n_layer / 16 ? GGML_TYPE_Q5_K : GGML_TYPE_Q4_K;
        else if (m == MIX_Q3_K_L) t = GGML_TYPE_Q5_K;
        else if ((m == MIX_Q4_K_M || m == MIX_Q5_K_M) && more_bits(layer, n_layer)) t = GGML_TYPE_Q6_K;
        else if (m == MIX_IQ4 && !imatrix && layer < n_layer / 8) t = GGML_TYPE_Q5_K;
        else if (m == MIX_Q4_K_S && layer < n_layer / 8) t = GGML_TYPE_Q5_K;
        else if ((t == GGML_TYPE_Q4_0 || t == GGML_TYPE_Q5_0) && imatrix && layer < n_layer / 8)
            t = t == GGML_TYPE_Q4_0 ? GGML_TYPE_Q4_1 : GGML_TYPE_Q5_1;
    } else if (has(name, "attn_output.weight")) {
        if (m == MIX_Q2_K) t = GGML_TYPE_Q3_K;
        else if (m == MIX_Q3_K_M) t = GGML_TYPE_Q4_K;
        else if (m == MIX_Q3_K_L) t = GGML_TYPE_Q5_K;
    }
    return fit_block(t, n_in);
}
