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
static uint32_t reduce_wg(const device_info *info) { return info->subgroup_size >= 32 ? 256 : 128; }

static pipeline_desc describe(const device_info *info, enum kernel_id id) {
    pipeline_desc d = {0};
    d.n_spec = 1;
    d.spec[0] = 256;
    switch (id) {
    case KERNEL_RMSNORM: d.shader = SHADER_RMSNORM; d.n_bindings = 3; d.push_size = 16; d.spec[0] = reduce_wg(info); break;
    case KERNEL_ROPE: d.shader = SHADER_ROPE; d.n_bindings = 2; d.push_size = 28; d.spec[0] = 64; break;
    case KERNEL_SOFTMAX: d.shader = SHADER_SOFTMAX; d.n_bindings = 2; d.push_size = 8; d.spec[0] = reduce_wg(info); break;
    case KERNEL_SWIGLU: d.shader = SHADER_SWIGLU; d.n_bindings = 2; d.push_size = 16; d.spec[0] = 256; break;
    case KERNEL_ADD: d.shader = SHADER_ADD; d.n_bindings = 2 + 1; d.push_size = 4; d.spec[0] = 256; break;
    case KERNEL_MATVEC_F32:
    case KERNEL_MATVEC_F16:
    case KERNEL_MATVEC_BF16:
        d.shader = id == KERNEL_MATVEC_F32 ? SHADER_MATVEC_F : id == KERNEL_MATVEC_F16 ? SHADER_MATVEC_F16 : SHADER_MATVEC_BF16;
        d.n_bindings = 3; d.push_size = 12; d.n_spec = 2; d.spec[0] = 128; d.spec[1] = 2;
        break;
    case KERNEL_MATMUL_F32:
    case KERNEL_MATMUL_F16:
    case KERNEL_MATMUL_BF16:
        d.shader = id == KERNEL_MATMUL_F32 ? SHADER_MATMUL_F : id == KERNEL_MATMUL_F16 ? SHADER_MATMUL_F16 : SHADER_MATMUL_BF16;
        d.n_bindings = 3; d.push_size = 24; d.spec[0] = 128;
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
        break;
    case KERNEL_ATTN_COMBINE: d.shader = SHADER_ATTN_COMBINE; d.n_bindings = 2; d.push_size = 8; d.spec[0] = 128; break;
    case KERNEL_ATTN_PREFILL_F16:
    case KERNEL_ATTN_PREFILL_Q8:
        d.shader = id == KERNEL_ATTN_PREFILL_F16 ? SHADER_ATTN_PREFILL : SHADER_ATTN_PREFILL_Q8;
        d.n_bindings = 4; d.push_size = 44; d.spec[0] = 128;
        break;
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
