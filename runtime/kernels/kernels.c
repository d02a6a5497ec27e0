// SPDX-License-Identifier: MIT
#include "kernels.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common.h"
#include "env.h"
#include "gguf.h"
#include "push_constants.h"
#include "quant_iq.h"
#include "shaders.h"

// Pipelines being created on worker threads (kernels_prepare): each worker takes
// the next id from `next` and writes only that id's pipeline and flag.
#define MAX_WORKERS 16
struct prepare_job {
    kernels *k;
    enum kernel_id ids[KERNEL_COUNT];
    uint32_t n;
    atomic_uint next;
    pthread_t threads[MAX_WORKERS];
    uint32_t n_threads;
    pthread_mutex_t lock; // guards rc and error
    int rc;
    char error[512]; // the first failure's sentence
};

struct kernels {
    device *dev;
    kernel_policy policy;
    pipeline_cache *cache;
    pipeline pipes[KERNEL_COUNT];
    bool made[KERNEL_COUNT];
    // The matrix-vector kernels for 2 .. KERNEL_FEW_TOKENS tokens (pipes[] holds the
    // one-token ones), by vec_index().
    pipeline vec[KW_COUNT][KERNEL_FEW_TOKENS - 1];
    bool vec_made[KW_COUNT][KERNEL_FEW_TOKENS - 1];
    struct prepare_job *job; // in flight, or NULL
    // The matrix-matrix kernels with tiles of 16 and 32 tokens (kernels_get_matmul).
    pipeline narrow[2][KERNEL_COUNT];
    bool narrow_made[2][KERNEL_COUNT];
    // The codebook grids the IQ kernels bind, uploaded on first use; one per grid
    // (IQ1_S and IQ1_M share theirs).
    gpu_buffer grids[6];
    bool grid_made[6];
};

// Workgroup size for the row reductions: 256 where the subgroup is wide, else 128.
// (128 is the least any device allows.)
static uint32_t reduce_wg(const device_info *info) {
    return info->subgroup_size >= 32 && info->max_workgroup_invocations >= 256 ? 256 : 128;
}

// ---- the weight kernels: a family times the types vkphi runs (kernels.h) ----

// The ggml type of each weight type.
static const uint32_t wtype_ggml[KW_COUNT] = {
#define WTYPE_GGML(name, id, blck, bytes, runs) QUANT_IF_RUNS(runs, GGML_TYPE_##name, )
    QUANT_TYPES(WTYPE_GGML)
#undef WTYPE_GGML
};

// The shader build of each family and type (cmake/shaders.cmake names them
// <family>_<type>). F32 weights have no f16-arithmetic tiles: they keep f32.
#define SHADER_MATMULH_F32 SHADER_COUNT
static const enum shader_id family_shaders[FAMILY_COUNT][KW_COUNT] = {
#define FAMILY_SHADER(family, name, runs) QUANT_IF_RUNS(runs, SHADER_##family##_##name, )
#define MATVEC(name, id, blck, bytes, runs) FAMILY_SHADER(MATVEC, name, runs)
#define MATMUL(name, id, blck, bytes, runs) FAMILY_SHADER(MATMUL, name, runs)
#define MATMULH(name, id, blck, bytes, runs) FAMILY_SHADER(MATMULH, name, runs)
#define MATMUL_COOP(name, id, blck, bytes, runs) FAMILY_SHADER(MATMUL_COOP, name, runs)
    [FAMILY_MATVEC] = {QUANT_TYPES(MATVEC)},
    [FAMILY_MATMUL] = {QUANT_TYPES(MATMUL)},
    [FAMILY_MATMUL_H] = {QUANT_TYPES(MATMULH)},
    [FAMILY_MATMUL_COOP] = {QUANT_TYPES(MATMUL_COOP)},
#undef MATVEC
#undef MATMUL
#undef MATMULH
#undef MATMUL_COOP
#undef FAMILY_SHADER
};

static int wtype_of(uint32_t type) {
    for (int t = 0; t < KW_COUNT; t++)
        if (wtype_ggml[t] == type) return t;
    return -1;
}

enum kernel_id kernel_weights(enum kernel_family f, uint32_t type) {
    int t = wtype_of(type);
    if (t < 0 || f >= FAMILY_COUNT || family_shaders[f][t] == SHADER_COUNT) return KERNEL_COUNT;
    return (enum kernel_id)(KERNEL_WEIGHTS + f * KW_COUNT + t);
}

enum kernel_family kernel_family_of(enum kernel_id id) {
    return id >= KERNEL_WEIGHTS && id < KERNEL_COUNT ? (enum kernel_family)((id - KERNEL_WEIGHTS) / KW_COUNT)
                                                     : FAMILY_COUNT;
}

uint32_t kernel_weight_type(enum kernel_id id) {
    return id >= KERNEL_WEIGHTS && id < KERNEL_COUNT ? wtype_ggml[(id - KERNEL_WEIGHTS) % KW_COUNT] : GGML_TYPE_COUNT;
}

// The module of a shader id; NULL for SHADER_COUNT (no such build).
static const struct shader_code *shader_of(enum shader_id s) { return s < SHADER_COUNT ? &shader_table[s] : NULL; }

const struct shader_code *kernels_weight_shader(enum kernel_family f, uint32_t type) {
    int t = wtype_of(type);
    return t < 0 || f >= FAMILY_COUNT ? NULL : shader_of(family_shaders[f][t]);
}

// Elementwise kernels: 256 invocations where the device allows them.
static uint32_t elementwise_wg(const device_info *info) { return info->max_workgroup_invocations >= 256 ? 256 : 128; }

// Quantized matrix-vector tuning. A thread takes 32 weights at a time, so a row
// of 5120 is 160 parts: one subgroup of 32 (NVIDIA, AMD wave32, Intel SIMD32)
// covers it in 5 even steps and reduces with a single subgroupAdd; AMD's wave64
// takes 64. Lavapipe (subgroups of 8 on CPU threads) also runs 32 threads.
// The device policy may require a subgroup size (VKPHI_SUBGROUP, policy.c); the
// workgroup is then one subgroup of that size.
static uint32_t matvec_q_wg(const device_info *info, const kernel_policy *p) {
    return p->matvec_subgroup ? p->matvec_subgroup : info->subgroup_size == 64 ? 64 : 32;
}
// Rows per workgroup (for one token; kernels_get_vec sets them for more) share
// each load of x: two keep enough workgroups in flight on big GPUs; a CPU
// prefers fewer, bigger workgroups. The codebook types take
// four on GPUs too: each workgroup first copies its type's grid (2-8 KiB) to
// shared memory, and more rows spread that copy (Phi-4's 5120- to 35840-row
// matrices still give over a thousand workgroups).
static uint32_t matvec_q_rows(const device_info *info, bool grid) {
    return info->type == VK_PHYSICAL_DEVICE_TYPE_CPU || grid ? 4 : 2;
}

// The codebook types' kernels bind their grid as a fourth buffer and copy it to
// shared memory (quant_iq_common.glsl): its bytes, 0 for the other kernels.
static uint32_t grid_bytes(enum kernel_id id) {
    uint32_t words = 0;
    if (kernel_family_of(id) != FAMILY_COUNT) quant_iq_grid(kernel_weight_type(id), &words);
    return 4 * words;
}

// Shared memory of common/reduce_rows.glsl: (ROWS + 1) x WG floats.
static uint32_t matvec_shared(const pipeline_desc *d) { return 4 * d->spec[0] * (d->spec[1] + 1); }

// Shared memory of matmul_coop.comp at matrix shape TM x TN x TK: the f16 tiles
// ws[4 TM][40] and xs[4 TN][40], and cs[4][TM * TN] floats.
static uint32_t matmul_coop_shared(uint32_t tm, uint32_t tn) { return 2 * 40 * 4 * (tm + tn) + 4 * 4 * tm * tn; }
static bool is_coop(enum kernel_id id) {
    return kernel_family_of(id) == FAMILY_MATMUL_COOP || id == KERNEL_ATTN_PREFILL_COOP_F16 ||
           id == KERNEL_ATTN_PREFILL_COOP_Q8;
}
// Shared memory of attn_prefill_coop.comp: qs[16][136] and kvs[32][136] halves,
// ss[16][32] floats, ps[16][40] halves, os[16][128] floats, cs[4][TM * TN] floats
// and three rows of 16 floats.
static uint32_t attn_coop_shared(uint32_t tm, uint32_t tn) {
    return 2 * 16 * 136 + 2 * 32 * 136 + 4 * 16 * 32 + 2 * 16 * 40 + 4 * 16 * 128 + 4 * 4 * tm * tn + 4 * 3 * 16;
}


// Shared memory of common/matmul_tile.glsl at tiling t = {BM, BN, TM, TN, NBUF}:
// NBUF slices of BK x BM weights and BK x BN activations, f32 (4 bytes) or f16 (2).
static uint32_t matmul_shared(const uint32_t t[5], uint32_t bk, uint32_t elem) {
    return elem * t[4] * bk * (t[0] + t[1]);
}
// Shared memory of attn_prefill.comp at RQ query rows x BKV keys: qs[RQ][32] and
// ks[BKV][33] vec4s, ss[RQ][BKV] and three rows of RQ floats.
static uint32_t attn_prefill_shared(uint32_t rq, uint32_t bkv) { return 16 * (rq * 32 + bkv * 33) + 4 * (rq * bkv + 3 * rq); }

// The tiling of common/matmul_tile.glsl (spec 0-5: WG, BM, BN, TM, TN, NBUF) for
// slices BK deep, with `extra` bytes of shared memory besides the slices (a
// codebook grid): the first candidate that fits the device, its tokens per tile
// cut to `width` (the narrow variants for short prompts, kernels_get_matmul). GPUs get
// 4 x 8 micro-tiles over 128 invocations, double-buffered. A CPU driver (lavapipe
// on Mesa 22) turns every shared-memory read into a loop over the SIMD lanes, so
// there the reads per fma decide: 8 x 8 micro-tiles take 4 vec4 reads per 64 fmas
// (measured on tiny-phi4-Q4_K_M pp128: about 2.5x the 4 x 4 tiles, 128 x 64 tiles
// a little ahead of 64 x 64); the single buffer leaves room for the codebook grid.
static void matmul_tiling(const device_info *info, uint32_t bk, uint32_t elem, uint32_t extra, uint32_t width,
                          pipeline_desc *d) {
    static const uint32_t gpu[][5] = {{64, 64, 4, 8, 2}, {64, 32, 4, 8, 2}, {64, 32, 4, 4, 1}, {32, 32, 4, 4, 1}};
    static const uint32_t cpu[][5] = {{128, 64, 8, 8, 1}, {64, 64, 8, 8, 1}, {64, 32, 4, 4, 1}, {32, 32, 4, 4, 1}};
    const uint32_t(*c)[5] = info->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? cpu : gpu;
    uint32_t t[5];
    for (uint32_t i = 0; i < 4; i++) {
        for (int j = 0; j < 5; j++) t[j] = c[i][j];
        if (t[1] > width) t[1] = width, t[3] = t[3] < width ? t[3] : width;
        if ((t[0] / t[2]) * (t[1] / t[3]) <= info->max_workgroup_invocations &&
            matmul_shared(t, bk, elem) + extra <= info->max_shared_memory)
            break; // (else the last, 8 KiB and 64 invocations at BK 32: kernels_fit tells whether it fits)
    }
    d->n_spec = 6;
    d->spec[0] = (t[0] / t[2]) * (t[1] / t[3]);
    for (int j = 0; j < 5; j++) d->spec[1 + j] = t[j];
    d->shared_bytes = matmul_shared(t, bk, elem) + extra;
}

// A weight kernel: family f for weight type `type` (float types: one value per
// block). The codebook types bind their grid as a fourth buffer and copy it to
// shared memory.
static pipeline_desc describe_weights(const kernels *k, enum kernel_id id, uint32_t width) {
    const device_info *info = device_get_info(k->dev);
    const enum kernel_family f = kernel_family_of(id);
    const uint32_t type = kernel_weight_type(id), grid = grid_bytes(id);
    const bool is_float = quant_block_elems(type) == 1;
    pipeline_desc d = {0};
    d.code = shader_of(family_shaders[f][(id - KERNEL_WEIGHTS) % KW_COUNT]);
    d.n_bindings = grid ? 4 : 3;
    d.push_size = sizeof(struct push_matmul);
    switch (f) {
    case FAMILY_MATVEC:
        d.n_bindings = 5; // weights, x, y, the codebook grid (unused by the others), the norm weight
        d.push_size = sizeof(struct push_matvec); d.n_spec = 4;
        d.spec[0] = matvec_q_wg(info, &k->policy); d.spec[1] = matvec_q_rows(info, grid != 0);
        d.subgroup_size = k->policy.matvec_subgroup;
        d.spec[2] = info->subgroup_arith; d.spec[3] = 1; // tokens: kernels_get_vec
        d.shared_bytes = matvec_shared(&d) + grid;
        break;
    case FAMILY_MATMUL: // slices 16 values of k deep for float weights, a 32-value block for quantized ones
        matmul_tiling(info, is_float ? 16 : 32, 4, grid, width, &d);
        break;
    case FAMILY_MATMUL_H:
        // f16 slices (half the shared memory), products summed in f16 over MATMUL_H_CHUNK
        // values of k and then added into f32 (common/matmul_tile.glsl).
        matmul_tiling(info, is_float ? 16 : 32, 2, grid, width, &d);
        d.n_spec = 7;
        d.spec[6] = MATMUL_H_CHUNK;
        break;
    case FAMILY_MATMUL_COOP:
        // Four subgroups of the device's size (required where it can vary: the matrix
        // operations are per subgroup), at the matrix shape device.c picked.
        d.n_spec = 4;
        d.spec[0] = 4 * info->subgroup_size;
        d.spec[1] = info->coopmat_m; d.spec[2] = info->coopmat_n; d.spec[3] = info->coopmat_k;
        if (info->subgroup_size_control) d.subgroup_size = info->subgroup_size;
        d.shared_bytes = matmul_coop_shared(info->coopmat_m, info->coopmat_n) + grid;
        break;
    case FAMILY_COUNT: break;
    }
    return d;
}

static pipeline_desc describe(const kernels *k, enum kernel_id id, uint32_t width) {
    if (kernel_family_of(id) != FAMILY_COUNT) return describe_weights(k, id, width);
    const device_info *info = device_get_info(k->dev);
    pipeline_desc d = {0};
    d.n_spec = 1;
    d.spec[0] = 256;
    switch (id) {
    case KERNEL_RMSNORM:
        d.code = &shader_table[SHADER_RMSNORM]; d.n_bindings = 3; d.push_size = sizeof(struct push_rmsnorm);
        d.spec[0] = reduce_wg(info);
        d.shared_bytes = 4 * d.spec[0]; // common/reduce.glsl: WG floats
        break;
    case KERNEL_ROPE:
        d.code = &shader_table[SHADER_ROPE]; d.n_bindings = 2; d.push_size = sizeof(struct push_rope); d.spec[0] = 64;
        break;
    case KERNEL_SWIGLU:
        d.code = &shader_table[SHADER_SWIGLU]; d.n_bindings = 2; d.push_size = sizeof(struct push_swiglu);
        d.spec[0] = elementwise_wg(info);
        break;
    case KERNEL_KV_STORE_F16:
    case KERNEL_KV_STORE_Q8:
        d.code = &shader_table[id == KERNEL_KV_STORE_F16 ? SHADER_KV_STORE : SHADER_KV_STORE_Q8];
        d.n_bindings = 3; d.push_size = sizeof(struct push_kv_store); d.spec[0] = 64;
        break;
    case KERNEL_ATTN_DECODE_F16:
    case KERNEL_ATTN_DECODE_Q8:
        d.code = &shader_table[id == KERNEL_ATTN_DECODE_F16 ? SHADER_ATTN_DECODE : SHADER_ATTN_DECODE_Q8];
        d.n_bindings = 6; d.push_size = sizeof(struct push_attn_decode);
        d.spec[0] = 128; // one thread per head dimension
        d.shared_bytes = 4 * (2 * 8 * 128 + 2 * 128); // qs[MAX_G][128], sc[MAX_G][BLK], knew, vnew
        break;
    case KERNEL_ATTN_COMBINE:
        d.code = &shader_table[SHADER_ATTN_COMBINE]; d.n_bindings = 3; d.push_size = sizeof(struct push_attn_combine);
        d.spec[0] = 128;
        break;
    case KERNEL_ATTN_PREFILL_F16:
    case KERNEL_ATTN_PREFILL_Q8:
        d.code = &shader_table[id == KERNEL_ATTN_PREFILL_F16 ? SHADER_ATTN_PREFILL : SHADER_ATTN_PREFILL_Q8];
        d.n_bindings = 4; d.push_size = sizeof(struct push_attn_prefill); d.spec[0] = 128; d.n_spec = 3;
        // Query rows (tokens x the heads of one KV group) x keys per block: each K/V
        // block serves RQ rows. 32 x 32 take 37,760 bytes of shared memory, 32 x 16
        // (lavapipe's 32 KiB) 27,264; the least a device may offer is 16 KiB, where
        // 8 x 16 take 13,152 (8 rows: one token of a group of 8 heads). On AMD a
        // workgroup may take the whole of a CU's LDS (RADV: 64 KiB), so the tile takes
        // at most half, leaving room for a second workgroup: 32 x 16 there (ACO on
        // navi21: 4 waves per SIMD at 32 x 32, 6 at 32 x 16; vega10: 1 and 2; bench/AMD.md).
        {
            static const uint32_t tiles[][2] = {{32, 32}, {32, 16}, {16, 16}, {8, 16}};
            const uint32_t budget = info->vendor_id == 0x1002 ? info->max_shared_memory / 2 : info->max_shared_memory;
            int i = 0;
            while (i < 3 && attn_prefill_shared(tiles[i][0], tiles[i][1]) > budget) i++;
            d.spec[1] = tiles[i][0], d.spec[2] = tiles[i][1];
        }
        d.shared_bytes = attn_prefill_shared(d.spec[1], d.spec[2]);
        break;
    case KERNEL_ATTN_PREFILL_COOP_F16:
    case KERNEL_ATTN_PREFILL_COOP_Q8:
        d.code = &shader_table[id == KERNEL_ATTN_PREFILL_COOP_F16 ? SHADER_ATTN_PREFILL_COOP
                                                                : SHADER_ATTN_PREFILL_COOP_Q8];
        d.n_bindings = 4; d.push_size = sizeof(struct push_attn_prefill); d.n_spec = 4;
        d.spec[0] = 4 * info->subgroup_size;
        d.spec[1] = info->coopmat_m; d.spec[2] = info->coopmat_n; d.spec[3] = info->coopmat_k;
        if (info->subgroup_size_control) d.subgroup_size = info->subgroup_size;
        d.shared_bytes = attn_coop_shared(info->coopmat_m, info->coopmat_n);
        break;
    default: break; // KERNEL_WEIGHTS.. above, KERNEL_COUNT
    }
    return d;
}

kernels *kernels_create(device *d) {
    kernels *k = calloc(1, sizeof *k);
    if (!k) { vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory"); return NULL; }
    k->dev = d;
    // A device made for compiling (`vkphi kernels`) times real compiles: no cache.
    k->cache = device_for_compiling(d) ? NULL : pipeline_cache_open(d);
    const vkphi_env env = vkphi_env_read();
    kernel_policy_decide(device_get_info(d), &env, &k->policy);
    return k;
}

const kernel_policy *kernels_policy(const kernels *k) { return &k->policy; }
uint32_t kernels_few_tokens(const kernels *k) { return k->policy.matvec_tokens; }
void kernels_set_policy(kernels *k, const kernel_policy *p) { k->policy = *p; }

// Row of kernels.vec for a matrix-vector kernel id; -1 for the others.
static int vec_index(enum kernel_id id) {
    return kernel_family_of(id) == FAMILY_MATVEC ? (int)((id - KERNEL_WEIGHTS) % KW_COUNT) : -1;
}

void kernels_destroy(kernels *k) {
    if (!k) return;
    kernels_wait(k);
    for (size_t i = 0; i < sizeof k->vec / sizeof k->vec[0]; i++)
        for (int j = 0; j < KERNEL_FEW_TOKENS - 1; j++)
            if (k->vec_made[i][j]) pipeline_destroy(k->dev, &k->vec[i][j]);
    for (int i = 0; i < KERNEL_COUNT; i++)
        if (k->made[i]) pipeline_destroy(k->dev, &k->pipes[i]);
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < KERNEL_COUNT; i++)
            if (k->narrow_made[w][i]) pipeline_destroy(k->dev, &k->narrow[w][i]);
    for (int i = 0; i < 6; i++)
        if (k->grid_made[i]) buffer_destroy(k->dev, &k->grids[i]);
    pipeline_cache_close(k->dev, k->cache);
    free(k);
}

const pipeline *kernels_get(kernels *k, enum kernel_id id) {
    if (k->job && kernels_wait(k) != VKPHI_OK) return NULL;
    if (!k->made[id]) {
        pipeline_desc desc = describe(k, id, UINT32_MAX);
        if (pipeline_create(k->dev, k->cache, &desc, &k->pipes[id]) != VKPHI_OK) return NULL;
        k->made[id] = true;
    }
    return &k->pipes[id];
}

const pipeline *kernels_get_vec(kernels *k, enum kernel_id id, uint32_t n_tokens) {
    int i = vec_index(id);
    if (i < 0 || n_tokens == 0 || n_tokens > KERNEL_FEW_TOKENS) {
        vkphi_fail(VKPHI_ERR_ARG, "no matrix-vector kernel %d for %u tokens", (int)id, n_tokens);
        return NULL;
    }
    if (n_tokens == 1) return kernels_get(k, id);
    uint32_t j = n_tokens - 2;
    if (!k->vec_made[i][j]) {
        const device_info *info = device_get_info(k->dev);
        pipeline_desc desc = describe(k, id, UINT32_MAX);
        desc.spec[3] = n_tokens;
        // On a CPU (lavapipe turns every storage-buffer read into a loop over its SIMD
        // lanes) what decides is how many rows share each read of the tokens' x: 16
        // rows per workgroup took 4 sequences' decode on the default model from 1.31x
        // to 2.03x of one sequence's throughput (vkphi bench --parallel 1,4), against
        // 4. Fewer rows for more tokens keep the unrolled rows x tokens body (and the JIT
        // compile) at 64. A row's sums do not depend on the rows beside it (batch invariance).
        // On a GPU each row's decoded part stays in registers while every token's x
        // passes (32 VGPRs a row), so rows x tokens set the register count: the
        // codebook types' four rows spilled from 10 tokens on (up to 221 VGPRs, every
        // AMD family in tests/radv.sh); two, the least the fused gate/up takes (a row
        // of G and its row of U), keep every type at 16 tokens within 200 VGPRs, 4-6
        // waves on RDNA2, without spills (bench/AMD.md).
        if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) desc.spec[1] = n_tokens <= 4 ? 16 : n_tokens <= 8 ? 8 : 4;
        else desc.spec[1] = 2;
        desc.shared_bytes = matvec_shared(&desc) + grid_bytes(id);
        if (pipeline_create(k->dev, k->cache, &desc, &k->vec[i][j]) != VKPHI_OK) return NULL;
        k->vec_made[i][j] = true;
    }
    return &k->vec[i][j];
}

static bool is_matmul(enum kernel_id id) {
    return kernel_family_of(id) == FAMILY_MATMUL || kernel_family_of(id) == FAMILY_MATMUL_H;
}

const pipeline *kernels_get_matmul(kernels *k, enum kernel_id id, uint32_t n_tokens) {
    const uint32_t w = n_tokens <= 16 ? 0 : 1;
    if (!is_matmul(id) || n_tokens > 32) return kernels_get(k, id);
    pipeline_desc desc = describe(k, id, 16u << w);
    pipeline_desc wide = describe(k, id, UINT32_MAX);
    if (desc.spec[2] == wide.spec[2]) return kernels_get(k, id); // the wide tile is no wider
    if (!k->narrow_made[w][id]) {
        if (pipeline_create(k->dev, k->cache, &desc, &k->narrow[w][id]) != VKPHI_OK) return NULL;
        k->narrow_made[w][id] = true;
    }
    return &k->narrow[w][id];
}

device *kernels_device(const kernels *k) { return k->dev; }

bool kernels_fit(const kernels *k, enum kernel_id id) {
    const device_info *info = device_get_info(k->dev);
    if (is_coop(id) && !info->coopmat) return false;
    if (kernel_family_of(id) == FAMILY_MATMUL_H && !info->fp16) return false;
    // The attention tiles: 16 queries (M) by blocks of 32 keys (N, and K of P V) over
    // head dimensions in steps of 32 (N of P V, K of Q K^T).
    if ((id == KERNEL_ATTN_PREFILL_COOP_F16 || id == KERNEL_ATTN_PREFILL_COOP_Q8) &&
        (16 % info->coopmat_m || 32 % info->coopmat_n || 32 % info->coopmat_k))
        return false;
    pipeline_desc d = describe(k, id, UINT32_MAX); // (the narrow variants need no more)
    if (!d.code) return false; // no such build (F32 in packed f16)
    return d.shared_bytes <= info->max_shared_memory && (d.n_spec == 0 || d.spec[0] <= info->max_workgroup_invocations);
}

int kernels_iq_grid(kernels *k, uint32_t type, buf_view *out) {
    uint32_t words;
    const uint32_t *grid = quant_iq_grid(type, &words);
    if (!grid) return vkphi_fail(VKPHI_ERR_ARG, "type %u has no codebook grid", type);
    static const uint32_t slot_types[6] = {GGML_TYPE_IQ3_XXS, GGML_TYPE_IQ3_S, GGML_TYPE_IQ2_XXS,
                                           GGML_TYPE_IQ2_XS,  GGML_TYPE_IQ2_S, GGML_TYPE_IQ1_S};
    const uint32_t t = type == GGML_TYPE_IQ1_M ? GGML_TYPE_IQ1_S : type;
    int i = 0;
    while (slot_types[i] != t) i++;
    if (!k->grid_made[i]) {
        int rc = buffer_create(k->dev, 4ull * words, BUFFER_DEVICE, "a codebook grid", &k->grids[i]);
        if (rc) return rc;
        if ((rc = buffer_write(k->dev, &k->grids[i], 0, grid, 4ull * words))) {
            buffer_destroy(k->dev, &k->grids[i]);
            return rc;
        }
        k->grid_made[i] = true;
    }
    *out = buf_all(&k->grids[i]);
    return VKPHI_OK;
}

// ---- creating pipelines ahead, on worker threads ----
// Creating a pipeline compiles its shader (on lavapipe, through LLVM: about a
// second each); a cold start creating a model's dozen or two one by one on first
// use spent most of its time before the first token there. Vulkan lets threads
// create pipelines at once (vkCreateComputePipelines, and a VkPipelineCache is
// internally synchronized unless made with the externally-synchronized flag,
// which pipeline.c does not set), so the load starts them all here and uploads
// weights meanwhile.

static void *prepare_worker(void *arg) {
    struct prepare_job *j = arg;
    for (;;) {
        uint32_t i = atomic_fetch_add(&j->next, 1);
        if (i >= j->n) break;
        enum kernel_id id = j->ids[i];
        pipeline_desc desc = describe(j->k, id, UINT32_MAX);
        if (pipeline_create(j->k->dev, j->k->cache, &desc, &j->k->pipes[id]) == VKPHI_OK) {
            j->k->made[id] = true;
            continue;
        }
        pthread_mutex_lock(&j->lock);
        if (!j->rc) {
            j->rc = VKPHI_ERR_VULKAN;
            snprintf(j->error, sizeof j->error, "%s", vkphi_last_error()); // this thread's message
        }
        pthread_mutex_unlock(&j->lock);
    }
    return NULL;
}

int kernels_prepare(kernels *k, const enum kernel_id *ids, uint32_t n) {
    int rc = kernels_wait(k);
    if (rc) return rc;
    struct prepare_job *j = calloc(1, sizeof *j);
    if (!j) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    j->k = k;
    bool listed[KERNEL_COUNT] = {0};
    for (uint32_t i = 0; i < n; i++) // each id once; none already made, none the device cannot run
        if (ids[i] < KERNEL_COUNT && !listed[ids[i]] && !k->made[ids[i]] && kernels_fit(k, ids[i]))
            listed[ids[i]] = true, j->ids[j->n++] = ids[i];
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t want = cpus < 1 ? 1 : cpus > MAX_WORKERS ? MAX_WORKERS : (uint32_t)cpus;
    if (want > j->n) want = j->n;
    atomic_init(&j->next, 0);
    pthread_mutex_init(&j->lock, NULL);
    for (uint32_t i = 0; i < want; i++)
        if (pthread_create(&j->threads[j->n_threads], NULL, prepare_worker, j) == 0) j->n_threads++;
    k->job = j;
    if (j->n_threads == 0) prepare_worker(j); // no thread to be had: create them here
    return VKPHI_OK;
}

int kernels_wait(kernels *k) {
    struct prepare_job *j = k->job;
    if (!j) return VKPHI_OK;
    for (uint32_t i = 0; i < j->n_threads; i++) pthread_join(j->threads[i], NULL);
    k->job = NULL;
    int rc = j->rc ? vkphi_fail(j->rc, "%s", j->error) : VKPHI_OK;
    pthread_mutex_destroy(&j->lock);
    free(j);
    return rc;
}
