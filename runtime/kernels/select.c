// SPDX-License-Identifier: MIT
#include "select.h"

#include <stdio.h>

#include "common.h"
#include "device.h"
#include "gguf.h"

// The kernels for a weight type: the matrix-vector kernel (up to KERNEL_FEW_TOKENS
// tokens), the matrix-matrix kernels (more): tiled in f32, tiled in packed f16
// arithmetic (KERNEL_COUNT for F32 weights, which have none), and on cooperative
// matrices.
struct matmul_kernels { enum kernel_id vec, many, half, coop; };

static bool matmul_kernel_ids(uint32_t type, struct matmul_kernels *ids) {
    ids->vec = kernel_weights(FAMILY_MATVEC, type);
    ids->many = kernel_weights(FAMILY_MATMUL, type);
    ids->half = kernel_weights(FAMILY_MATMUL_H, type);
    ids->coop = kernel_weights(FAMILY_MATMUL_COOP, type);
    return ids->vec != KERNEL_COUNT;
}

bool kernels_matmul_supports(uint32_t type) {
    struct matmul_kernels ids;
    return matmul_kernel_ids(type, &ids);
}

// Whether many tokens go through the cooperative-matrix kernel: where the device has
// a shape it can use (device.c) and the kernel fits, unless the policy says never.
// F32 weights keep the exact f32 tiles unless the policy says otherwise: the f16
// matrices would round every weight to 11 bits, and an F32 model is chosen for
// exactness.
static bool use_coop(const kernels *k, uint32_t type, const struct matmul_kernels *ids) {
    const kernel_policy *p = kernels_policy(k);
    if (!p->coopmat || (type == GGML_TYPE_F32 && !p->coopmat_f32)) return false;
    return kernels_fit(k, ids->coop);
}

// Whether the tiles run in packed f16 arithmetic: f16 slices, products summed in f16
// over a few values of k, then in f32 (common/matmul_tile.glsl). It rounds like the
// cooperative-matrix path and more (f16 products, short f16 sums), so only where the
// policy says it pays (kernel_policy.f16math). Never for F32 weights.
static bool use_half(const kernels *k, const struct matmul_kernels *ids) {
    return kernels_policy(k)->f16math && ids->half != KERNEL_COUNT && kernels_fit(k, ids->half);
}

static const char *label(enum matmul_path path, uint32_t type) {
    static const char *const suffix[] = {[MATMUL_TILES] = "", [MATMUL_TILES_F16] = " f16", [MATMUL_COOP] = " coopmat"};
    static char labels[MATMUL_COOP + 1][GGML_TYPE_COUNT][32];
    char *l = labels[path][type % GGML_TYPE_COUNT];
    if (!l[0]) // the same text whichever thread writes it first
        snprintf(l, sizeof labels[0][0], "%s %s%s", path <= MATMUL_VEC_CHUNKS ? "matvec" : "matmul",
                 quant_type_name(type), path <= MATMUL_VEC_CHUNKS ? "" : suffix[path]);
    return l;
}

int kernels_choose_matmul(const kernels *k, uint32_t type, uint32_t n_tokens, bool rows_aligned, bool start_aligned,
                          matmul_choice *out) {
    struct matmul_kernels ids;
    if (!matmul_kernel_ids(type, &ids))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "no matrix kernel for weight type %s (%u)", quant_type_name(type), type);
    enum kernel_id tiled = use_half(k, &ids) ? ids.half : ids.many;
    bool coop = use_coop(k, type, &ids);
    // One token, or a few whose rows start on 16-byte boundaries: the matrix-vector
    // kernels, which read each weight once. More: the matrix-matrix kernel, on
    // cooperative matrices where the device has them, else tiled, also for a few
    // tokens at unaligned strides. Where the tiled kernel does not fit the device's
    // shared memory (the codebook types' grid on top of the tiles, on a 16 KiB device),
    // the matrix-vector kernel takes the tokens KERNEL_FEW_TOKENS at a time: each
    // weight is read once per chunk instead of once per tile, but it runs.
    const uint32_t few = kernels_few_tokens(k);
    if (start_aligned && (n_tokens == 1 || (n_tokens <= few && rows_aligned)))
        *out = (matmul_choice){MATMUL_VEC, ids.vec, NULL};
    else if (n_tokens > few && rows_aligned && !kernels_fit(k, tiled) && !coop && kernels_fit(k, ids.vec))
        *out = (matmul_choice){MATMUL_VEC_CHUNKS, ids.vec, NULL};
    else if (coop)
        *out = (matmul_choice){MATMUL_COOP, ids.coop, NULL};
    else
        *out = (matmul_choice){tiled == ids.half ? MATMUL_TILES_F16 : MATMUL_TILES, tiled, NULL};
    out->label = label(out->path, type);
    return VKPHI_OK;
}

int kernels_choose_matvec(const kernels *k, uint32_t type, uint32_t n_tokens, matmul_choice *out) {
    struct matmul_kernels ids;
    if (!matmul_kernel_ids(type, &ids))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "no matrix kernel for weight type %s (%u)", quant_type_name(type), type);
    *out = (matmul_choice){n_tokens <= kernels_few_tokens(k) ? MATMUL_VEC : MATMUL_VEC_CHUNKS, ids.vec, NULL};
    out->label = label(out->path, type);
    return VKPHI_OK;
}

uint32_t kernels_matmul_list(const kernels *k, uint32_t type, enum kernel_id out[2]) {
    matmul_choice one = {0}, many = {0};
    if (kernels_choose_matmul(k, type, 1, true, true, &one) ||
        kernels_choose_matmul(k, type, kernels_few_tokens(k) + 1, true, true, &many))
        return 0;
    out[0] = one.id, out[1] = many.id;
    return 2;
}

enum kernel_id kernels_choose_attn_prefill(const kernels *k, bool q8, uint32_t head_dim) {
    enum kernel_id coop = q8 ? KERNEL_ATTN_PREFILL_COOP_Q8 : KERNEL_ATTN_PREFILL_COOP_F16;
    if (kernels_policy(k)->coopmat && head_dim % 32 == 0 && head_dim <= 128 && kernels_fit(k, coop)) return coop;
    return q8 ? KERNEL_ATTN_PREFILL_Q8 : KERNEL_ATTN_PREFILL_F16;
}

uint32_t kernels_model_list(const kernels *k, const kernel_needs *needs, enum kernel_id *ids) {
    const bool q8 = needs->kv_q8;
    const enum kernel_id fixed[] = {
        KERNEL_RMSNORM, KERNEL_ROPE, KERNEL_SWIGLU, KERNEL_ATTN_COMBINE,
        q8 ? KERNEL_KV_STORE_Q8 : KERNEL_KV_STORE_F16, q8 ? KERNEL_ATTN_DECODE_Q8 : KERNEL_ATTN_DECODE_F16,
        kernels_choose_attn_prefill(k, q8, needs->head_dim)};
    uint32_t n = 0;
    for (uint32_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) ids[n++] = fixed[i];
    for (uint32_t t = 0; t < GGML_TYPE_COUNT; t++)
        if (needs->types[t] && n + 2 <= KERNEL_COUNT) n += kernels_matmul_list(k, t, ids + n);
    return n;
}
