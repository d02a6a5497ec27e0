// SPDX-License-Identifier: MIT
// Every compute pipeline vkphi uses, indexed by enum and created once per device
// (on first use, through the on-disk pipeline cache). Tuning per vendor happens
// here, through specialization constants.
#pragma once
#include "pipeline.h"

enum kernel_id {
    KERNEL_RMSNORM,
    KERNEL_ROPE,
    KERNEL_SOFTMAX,
    KERNEL_SWIGLU,
    KERNEL_ADD,
    KERNEL_MATVEC_F32,
    KERNEL_MATVEC_F16,
    KERNEL_MATVEC_BF16,
    KERNEL_MATMUL_F32,
    KERNEL_MATMUL_F16,
    KERNEL_MATMUL_BF16,
    KERNEL_KV_STORE_F16,
    KERNEL_KV_STORE_Q8,
    KERNEL_ATTN_DECODE_F16,
    KERNEL_ATTN_DECODE_Q8,
    KERNEL_ATTN_COMBINE,
    KERNEL_ATTN_PREFILL_F16,
    KERNEL_ATTN_PREFILL_Q8,
    KERNEL_COUNT
};

typedef struct kernels kernels;

kernels *kernels_create(device *d);
void kernels_destroy(kernels *k); // also saves the pipeline cache
// The pipeline for id, created on first use; NULL (with the error set) on failure.
const pipeline *kernels_get(kernels *k, enum kernel_id id);
device *kernels_device(const kernels *k);
