// SPDX-License-Identifier: MIT
#include "kernels.h"

#include <stdlib.h>

#include "common.h"

struct kernels {
    device *dev;
    pipeline_cache *cache;
    pipeline pipes[KERNEL_COUNT];
    bool made[KERNEL_COUNT];
};

// Workgroup size for the row reductions: 256 where the subgroup is wide, else 128.
// (128 is the least any device allows.)
static uint32_t reduce_wg(const device_info *info) {
    return info->subgroup_size >= 32 && info->max_workgroup_invocations >= 256 ? 256 : 128;
}

// Shaders of the quantized-weight families, in enum kernel_id's type order
// (Q8_0, Q4_0, Q3_K, Q4_K, Q5_K, Q6_K, Q4_1, Q5_0, Q5_1, Q2_K, IQ4_NL, IQ4_XS);
// the plain builds are the Q8_0 kernels.
static const enum shader_id matvec_q_shaders[] = {
    SHADER_MATVEC_Q,    SHADER_MATVEC_Q4_0, SHADER_MATVEC_Q3_K, SHADER_MATVEC_Q4_K,   SHADER_MATVEC_Q5_K,   SHADER_MATVEC_Q6_K,
    SHADER_MATVEC_Q4_1, SHADER_MATVEC_Q5_0, SHADER_MATVEC_Q5_1, SHADER_MATVEC_Q2_K, SHADER_MATVEC_IQ4_NL, SHADER_MATVEC_IQ4_XS};
static const enum shader_id matmul_q_shaders[] = {
    SHADER_MATMUL_Q,    SHADER_MATMUL_Q4_0, SHADER_MATMUL_Q3_K, SHADER_MATMUL_Q4_K,   SHADER_MATMUL_Q5_K,   SHADER_MATMUL_Q6_K,
    SHADER_MATMUL_Q4_1, SHADER_MATMUL_Q5_0, SHADER_MATMUL_Q5_1, SHADER_MATMUL_Q2_K, SHADER_MATMUL_IQ4_NL, SHADER_MATMUL_IQ4_XS};
static const enum shader_id get_rows_shaders[] = {
    SHADER_GET_ROWS,      SHADER_GET_ROWS_F16,  SHADER_GET_ROWS_BF16, SHADER_GET_ROWS_Q8_0,   SHADER_GET_ROWS_Q4_0,
    SHADER_GET_ROWS_Q3_K, SHADER_GET_ROWS_Q4_K, SHADER_GET_ROWS_Q5_K, SHADER_GET_ROWS_Q6_K,   SHADER_GET_ROWS_Q4_1,
    SHADER_GET_ROWS_Q5_0, SHADER_GET_ROWS_Q5_1, SHADER_GET_ROWS_Q2_K, SHADER_GET_ROWS_IQ4_NL, SHADER_GET_ROWS_IQ4_XS};

// Elementwise kernels: 256 invocations where the device allows them.
static uint32_t elementwise_wg(const device_info *info) { return info->max_workgroup_invocations >= 256 ? 256 : 128; }

// Quantized matrix-vector tuning. A thread takes 32 weights at a time, so a row
// of 5120 is 160 parts: one subgroup of 32 (NVIDIA, AMD wave32, Intel SIMD32)
// covers it in 5 even steps and reduces with a single subgroupAdd; AMD's wave64
// takes 64. Lavapipe (subgroups of 8 on CPU threads) also runs 32 threads.
static uint32_t matvec_q_wg(const device_info *info) { return info->subgroup_size == 64 ? 64 : 32; }
// Rows per workgroup share each load of x: two keep enough workgroups in flight
// on big GPUs; a CPU prefers fewer, bigger workgroups.
static uint32_t matvec_q_rows(const device_info *info) { return info->type == VK_PHYSICAL_DEVICE_TYPE_CPU ? 4 : 2; }

// Shared memory of common/reduce_rows.glsl: ROWS x NT x WG floats.
static uint32_t matvec_shared(const pipeline_desc *d) { return 4 * d->spec[0] * d->spec[1] * d->spec[3]; }
// Shared memory of attn_prefill.comp at BQ x BKV tiles: qs[BQ][128], ks[BKV][129],
// ss[BQ][BKV] and three rows of BQ floats.
static uint32_t attn_prefill_shared(uint32_t bq, uint32_t bkv) { return 4 * (bq * 128 + bkv * 129 + bq * bkv + 3 * bq); }

static pipeline_desc describe(const device_info *info, enum kernel_id id) {
    pipeline_desc d = {0};
    d.n_spec = 1;
    d.spec[0] = 256;
    switch (id) {
    case KERNEL_RMSNORM: d.shader = SHADER_RMSNORM; d.n_bindings = 3; d.push_size = 16; d.spec[0] = reduce_wg(info);
        d.shared_bytes = 4 * d.spec[0]; break; // common/reduce.glsl: WG floats
    case KERNEL_ROPE: d.shader = SHADER_ROPE; d.n_bindings = 2; d.push_size = 32; d.spec[0] = 64; break;
    case KERNEL_SOFTMAX: d.shader = SHADER_SOFTMAX; d.n_bindings = 2; d.push_size = 8; d.spec[0] = reduce_wg(info);
        d.shared_bytes = 4 * d.spec[0]; break;
    case KERNEL_SWIGLU: d.shader = SHADER_SWIGLU; d.n_bindings = 2; d.push_size = 16; d.spec[0] = elementwise_wg(info); break;
    case KERNEL_ADD: d.shader = SHADER_ADD; d.n_bindings = 2 + 1; d.push_size = 4; d.spec[0] = elementwise_wg(info); break;
    case KERNEL_MATVEC_F32:
    case KERNEL_MATVEC_F16:
    case KERNEL_MATVEC_BF16:
        d.shader = id == KERNEL_MATVEC_F32 ? SHADER_MATVEC_F : id == KERNEL_MATVEC_F16 ? SHADER_MATVEC_F16 : SHADER_MATVEC_BF16;
        d.n_bindings = 3; d.push_size = 32; d.n_spec = 4;
        d.spec[0] = matvec_q_wg(info); d.spec[1] = matvec_q_rows(info); d.spec[2] = info->subgroup_arith; d.spec[3] = 1;
        d.shared_bytes = matvec_shared(&d);
        break;
    case KERNEL_MATMUL_F32:
    case KERNEL_MATMUL_F16:
    case KERNEL_MATMUL_BF16:
        d.shader = id == KERNEL_MATMUL_F32 ? SHADER_MATMUL_F : id == KERNEL_MATMUL_F16 ? SHADER_MATMUL_F16 : SHADER_MATMUL_BF16;
        d.n_bindings = 3; d.push_size = 32; d.spec[0] = 128;
        d.shared_bytes = 4 * (16 * 65 + 16 * 33); // ws[BK][BM + 1], xs[BK][BN + 1] at BK = 16
        break;
    case KERNEL_KV_STORE_F16:
    case KERNEL_KV_STORE_Q8:
        d.shader = id == KERNEL_KV_STORE_F16 ? SHADER_KV_STORE : SHADER_KV_STORE_Q8;
        d.n_bindings = 3; d.push_size = 24; d.spec[0] = 64;
        break;
    case KERNEL_ATTN_DECODE_F16:
    case KERNEL_ATTN_DECODE_Q8:
        d.shader = id == KERNEL_ATTN_DECODE_F16 ? SHADER_ATTN_DECODE : SHADER_ATTN_DECODE_Q8;
        d.n_bindings = 4; d.push_size = 40; d.spec[0] = 128; // one thread per head dimension
        d.shared_bytes = 4 * 2 * 8 * 128; // qs[MAX_G][128], sc[MAX_G][BLK]
        break;
    case KERNEL_ATTN_COMBINE: d.shader = SHADER_ATTN_COMBINE; d.n_bindings = 2; d.push_size = 8; d.spec[0] = 128; break;
    case KERNEL_ATTN_PREFILL_F16:
    case KERNEL_ATTN_PREFILL_Q8:
        d.shader = id == KERNEL_ATTN_PREFILL_F16 ? SHADER_ATTN_PREFILL : SHADER_ATTN_PREFILL_Q8;
        d.n_bindings = 4; d.push_size = 44; d.spec[0] = 128; d.n_spec = 3;
        // Tiles of 16 queries x 32 keys need 26,944 bytes of shared memory; the
        // least a device may offer is 16 KiB, where 8 x 16 tiles take 12,960.
        d.spec[1] = 16; d.spec[2] = 32;
        if (info->max_shared_memory < attn_prefill_shared(16, 32)) d.spec[1] = 8, d.spec[2] = 16;
        d.shared_bytes = attn_prefill_shared(d.spec[1], d.spec[2]);
        break;
    case KERNEL_MATVEC_Q8_0: case KERNEL_MATVEC_Q4_0: case KERNEL_MATVEC_Q3_K:
    case KERNEL_MATVEC_Q4_K: case KERNEL_MATVEC_Q5_K: case KERNEL_MATVEC_Q6_K:
    case KERNEL_MATVEC_Q4_1: case KERNEL_MATVEC_Q5_0: case KERNEL_MATVEC_Q5_1:
    case KERNEL_MATVEC_Q2_K: case KERNEL_MATVEC_IQ4_NL: case KERNEL_MATVEC_IQ4_XS:
        d.shader = matvec_q_shaders[id - KERNEL_MATVEC_Q8_0];
        d.n_bindings = 3; d.push_size = 32; d.n_spec = 4;
        d.spec[0] = matvec_q_wg(info); d.spec[1] = matvec_q_rows(info); d.spec[2] = info->subgroup_arith; d.spec[3] = 1;
        d.shared_bytes = matvec_shared(&d);
        break;
    case KERNEL_MATMUL_Q8_0: case KERNEL_MATMUL_Q4_0: case KERNEL_MATMUL_Q3_K:
    case KERNEL_MATMUL_Q4_K: case KERNEL_MATMUL_Q5_K: case KERNEL_MATMUL_Q6_K:
    case KERNEL_MATMUL_Q4_1: case KERNEL_MATMUL_Q5_0: case KERNEL_MATMUL_Q5_1:
    case KERNEL_MATMUL_Q2_K: case KERNEL_MATMUL_IQ4_NL: case KERNEL_MATMUL_IQ4_XS:
        d.shader = matmul_q_shaders[id - KERNEL_MATMUL_Q8_0];
        d.n_bindings = 3; d.push_size = 32; d.spec[0] = 128; // the tiling needs 128
        d.shared_bytes = 4 * (32 * 65 + 32 * 33); // ws[BK][BM + 1], xs[BK][BN + 1] at BK = 32
        break;
    case KERNEL_GET_ROWS_F32: case KERNEL_GET_ROWS_F16: case KERNEL_GET_ROWS_BF16:
    case KERNEL_GET_ROWS_Q8_0: case KERNEL_GET_ROWS_Q4_0: case KERNEL_GET_ROWS_Q3_K:
    case KERNEL_GET_ROWS_Q4_K: case KERNEL_GET_ROWS_Q5_K: case KERNEL_GET_ROWS_Q6_K:
    case KERNEL_GET_ROWS_Q4_1: case KERNEL_GET_ROWS_Q5_0: case KERNEL_GET_ROWS_Q5_1:
    case KERNEL_GET_ROWS_Q2_K: case KERNEL_GET_ROWS_IQ4_NL: case KERNEL_GET_ROWS_IQ4_XS:
        d.shader = get_rows_shaders[id - KERNEL_GET_ROWS_F32];
        d.n_bindings = 3; d.push_size = 20; d.spec[0] = 64;
        break;
    case KERNEL_MATVEC_FEW_F32: case KERNEL_MATVEC_FEW_F16: case KERNEL_MATVEC_FEW_BF16:
    case KERNEL_MATVEC_FEW_Q8_0: case KERNEL_MATVEC_FEW_Q4_0: case KERNEL_MATVEC_FEW_Q3_K:
    case KERNEL_MATVEC_FEW_Q4_K: case KERNEL_MATVEC_FEW_Q5_K: case KERNEL_MATVEC_FEW_Q6_K:
    case KERNEL_MATVEC_FEW_Q4_1: case KERNEL_MATVEC_FEW_Q5_0: case KERNEL_MATVEC_FEW_Q5_1:
    case KERNEL_MATVEC_FEW_Q2_K: case KERNEL_MATVEC_FEW_IQ4_NL: case KERNEL_MATVEC_FEW_IQ4_XS: {
        // The one-token kernel of the same type, specialized for up to KERNEL_FEW_TOKENS.
        uint32_t i = id - KERNEL_MATVEC_FEW_F32;
        d = describe(info, i < 3 ? KERNEL_MATVEC_F32 + i : KERNEL_MATVEC_Q8_0 + (i - 3));
        d.spec[3] = KERNEL_FEW_TOKENS;
        d.shared_bytes = matvec_shared(&d);
        break;
    }
    case KERNEL_COUNT: break;
    }
    return d;
}

kernels *kernels_create(device *d) {
    kernels *k = calloc(1, sizeof *k);
    if (!k) { vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory"); return NULL; }
    k->dev = d;
    k->cache = pipeline_cache_open(d);
    return k;
}

void kernels_destroy(kernels *k) {
    if (!k) return;
    for (int i = 0; i < KERNEL_COUNT; i++)
        if (k->made[i]) pipeline_destroy(k->dev, &k->pipes[i]);
    pipeline_cache_close(k->dev, k->cache);
    free(k);
}

const pipeline *kernels_get(kernels *k, enum kernel_id id) {
    if (!k->made[id]) {
        pipeline_desc desc = describe(device_get_info(k->dev), id);
        if (pipeline_create(k->dev, k->cache, &desc, &k->pipes[id]) != VKPHI_OK) return NULL;
        k->made[id] = true;
    }
    return &k->pipes[id];
}

device *kernels_device(const kernels *k) { return k->dev; }
