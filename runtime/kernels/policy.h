// SPDX-License-Identifier: MIT
// The device policy: which kernel paths run on which device, in one table
// (policy.c), each rule with its reason and whether it was measured. The kernels
// read it once per device (kernels_create); the VKPHI_* variables override it.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "device.h"
#include "env.h"

// Most tokens the matrix-vector kernels (FAMILY_MATVEC) take in one dispatch on any
// device: decode batches of up to this many sequences read each weight once. The
// policy may lower it (kernel_policy.matvec_tokens).
#define KERNEL_FEW_TOKENS 16

// The paths a rule decides.
enum policy_path {
    POLICY_COOPMAT,  // prompts on cooperative matrices (matmul_coop, attn_prefill_coop)
    POLICY_F16MATH,  // the tiles in packed f16 arithmetic (matmul_h)
    POLICY_INT_DOT,  // integer dot products (VK_KHR_shader_integer_dot_product)
    POLICY_SUBGROUP, // the matrix-vector kernels' subgroup size: 0 the driver's, else required
    POLICY_MATVEC_TOKENS, // most tokens per matrix-vector dispatch (KERNEL_FEW_TOKENS, or fewer)
    POLICY_PATHS
};

typedef struct kernel_policy {
    bool coopmat;     // cooperative matrices where the device has them and they fit
    bool coopmat_f32; // F32 weights on them too (VKPHI_COOPMAT=f32); else F32 keeps the exact f32 tiles
    bool f16math;     // the tiles in packed f16 arithmetic
    bool int_dot;     // integer dot products (no kernel uses them yet: always false)
    uint32_t matvec_subgroup; // 0: the device's subgroup size; 32 or 64: required (subgroup size control)
    uint32_t matvec_tokens;   // most tokens one matrix-vector dispatch takes: more than that many
                              // take the tiles (prompts) or several dispatches (decode steps)
    // For each path, the rule or variable that decided it (a sentence, static).
    const char *why[POLICY_PATHS];
} kernel_policy;

// The policy for a device: the first rule of policy.c that matches it, per path,
// then VKPHI_COOPMAT (0, 1, f32), VKPHI_F16MATH (0, 1) and VKPHI_SUBGROUP (32, 64).
void kernel_policy_decide(const device_info *info, const vkphi_env *env, kernel_policy *out);
// The name of a path ("cooperative matrices", ...).
const char *kernel_policy_path_name(enum policy_path p);
