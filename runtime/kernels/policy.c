// SPDX-License-Identifier: MIT
#include "policy.h"

#include <stdlib.h>
#include <string.h>

// ---- matching devices ----
#define VENDOR_AMD 0x1002
#define VENDOR_NVIDIA 0x10de
#define VENDOR_INTEL 0x8086

static bool any(const device_info *d) { (void)d; return true; }
// A driver that runs on the CPU (lavapipe), whatever VKPHI_LIMITS makes it look like.
static bool cpu_driver(const device_info *d) { return d->cpu_driver; }
static bool no_fp16(const device_info *d) { return !d->fp16; }
static bool nvidia_before_turing(const device_info *d) { return d->vendor_id == VENDOR_NVIDIA && !d->coopmat; }
static bool in(const device_info *d, uint32_t vendor, uint32_t lo, uint32_t hi) {
    return d->vendor_id == vendor && d->device_id >= lo && d->device_id <= hi;
}
// Intel before Xe2 with cooperative matrices: DG1 (0x4905-0x4909), Alchemist (DG2,
// Arc A-series: 0x5690-0x56bf), Meteor and Arrow Lake's Xe-LPG (0x7d40-0x7dff).
static bool intel_before_xe2(const device_info *d) {
    return in(d, VENDOR_INTEL, 0x4905, 0x4909) || in(d, VENDOR_INTEL, 0x5690, 0x56bf) ||
           in(d, VENDOR_INTEL, 0x7d40, 0x7dff);
}
// AMD RDNA (gfx10 and later): waves of 32 or 64 under subgroup size control; GCN
// has only 64.
static bool amd_rdna(const device_info *d) {
    return d->vendor_id == VENDOR_AMD && d->subgroup_size_control && d->subgroup_min == 32 && d->subgroup_max >= 64;
}

// RDNA3 under RADV before Mesa 23 (Debian 12's 22.3 names the chips GFX11xx).
static bool radv_gfx11_mesa22(const device_info *d) {
    return d->vendor_id == VENDOR_AMD && strstr(d->name, "RADV GFX11") && VK_API_VERSION_MAJOR(d->driver_version) < 23;
}

// ---- the table ----
// Per path, the first rule that matches decides. `measured` says whether the reason
// is a figure taken on this project's machines (the command is in the reason) or
// a fact reported elsewhere (cited), which cannot be checked here without the GPU.
typedef struct policy_rule {
    enum policy_path path;
    bool (*match)(const device_info *d);
    uint32_t value; // on (1) / off (0), or the subgroup size (0: the driver's)
    bool measured;
    const char *why;
} policy_rule;

static const policy_rule rules[] = {
    // Cooperative matrices.
    {POLICY_COOPMAT, cpu_driver, 0, true,
     "a CPU driver emulates them: on Mesa 26's lavapipe pp512 of tiny-phi4-Q4_K_M ran at 263 tokens/s with "
     "them and 801 without (VKPHI_COOPMAT=1, =0: vkphi bench -p 512 -n 0 -r 3 under tools/mesa.sh 26)"},
    {POLICY_COOPMAT, intel_before_xe2, 0, false,
     "Intel before Xe2 is slower with them (Arc A770 pp512 unchanged or lower, llama.cpp PR 14001; 26% of matrix "
     "products 5% slower or worse, PR 24404) and DG1 gave wrong output (llama.cpp issue 12690)"},
    {POLICY_COOPMAT, any, 1, false,
     "matrix cores (NVIDIA since Turing, AMD RDNA3's WMMA, Intel Xe2's XMX): the fastest prompt path where "
     "the driver offers them (llama.cpp PR 14001: Arc B580 pp512 3.3x)"},
    // Packed f16 arithmetic in the tiles.
    {POLICY_F16MATH, no_fp16, 0, true, "the device has no f16 arithmetic (shaderFloat16)"},
    {POLICY_F16MATH, cpu_driver, 0, true,
     "a CPU driver converts around every f16 operation: lavapipe's f16 tiles ran at 0.65x of the f32 ones"},
    {POLICY_F16MATH, nvidia_before_turing, 0, false,
     "NVIDIA before Turing runs f16 at a fraction of f32's rate (Pascal consumer parts: 1/64)"},
    {POLICY_F16MATH, any, 1, false, "f16 at twice f32's rate: AMD since Vega, Intel Xe, Turing and later, mobile GPUs"},
    // Integer dot products.
    {POLICY_INT_DOT, any, 0, true,
     "no kernel uses them yet: the quantized products dequantize to f32, which keeps every f32 path exact"},
    // The matrix-vector kernels' subgroup size.
    {POLICY_SUBGROUP, amd_rdna, 0, true,
     "RDNA keeps the driver's wave64: in wave32 ACO's figures give no more waves in flight (matvec_q4_k at one "
     "token: 12 per SIMD either way on navi21, 24 in wave64 and 16 in wave32 on navi31; bench/AMD.md)"},
    {POLICY_SUBGROUP, any, 0, true, "the driver's subgroup size"},
    // How many tokens one matrix-vector dispatch takes.
    {POLICY_MATVEC_TOKENS, radv_gfx11_mesa22, 1, true,
     "Mesa 22's ACO keeps RDNA3 at 10 waves (at most 132 VGPRs in wave64, 144 in wave32): the matrix-vector "
     "kernels spill from 2 tokens on at the two rows the fused gate/up needs (tests/radv.sh on gfx1100 and "
     "gfx1103_r1; bench/AMD.md), so a decode step takes one dispatch per token and prompts the tiles"},
    {POLICY_MATVEC_TOKENS, any, KERNEL_FEW_TOKENS, true,
     "decode batches of up to 16 sequences read each weight once, without spills on the AMD families "
     "tests/radv.sh compiles for"},
};

static const char *const path_names[POLICY_PATHS] = {"cooperative matrices", "f16 tiles", "integer dot product",
                                                     "matvec subgroup size", "matvec tokens"};
const char *kernel_policy_path_name(enum policy_path p) { return p < POLICY_PATHS ? path_names[p] : "?"; }

void kernel_policy_decide(const device_info *info, const vkphi_env *env, kernel_policy *out) {
    memset(out, 0, sizeof *out);
    uint32_t value[POLICY_PATHS] = {0};
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const policy_rule *r = &rules[i];
        if (out->why[r->path] || !r->match(info)) continue;
        value[r->path] = r->value;
        out->why[r->path] = r->why;
    }
    const char *coop = env->coopmat, *half = env->f16math, *sg = env->subgroup;
    if (coop && (!strcmp(coop, "0") || !strcmp(coop, "1") || !strcmp(coop, "f32"))) {
        value[POLICY_COOPMAT] = strcmp(coop, "0") != 0;
        out->coopmat_f32 = !strcmp(coop, "f32");
        out->why[POLICY_COOPMAT] = !strcmp(coop, "0") ? "VKPHI_COOPMAT=0" : !strcmp(coop, "1") ? "VKPHI_COOPMAT=1"
                                                                                                : "VKPHI_COOPMAT=f32";
    }
    if (half && (!strcmp(half, "0") || !strcmp(half, "1"))) {
        value[POLICY_F16MATH] = !strcmp(half, "1");
        out->why[POLICY_F16MATH] = !strcmp(half, "1") ? "VKPHI_F16MATH=1" : "VKPHI_F16MATH=0";
    }
    if (sg && (!strcmp(sg, "32") || !strcmp(sg, "64"))) {
        value[POLICY_SUBGROUP] = (uint32_t)atoi(sg);
        out->why[POLICY_SUBGROUP] = !strcmp(sg, "32") ? "VKPHI_SUBGROUP=32" : "VKPHI_SUBGROUP=64";
    }
    // A required size must be one the device can run at.
    uint32_t s = value[POLICY_SUBGROUP];
    if (s && (!info->subgroup_size_control || s < info->subgroup_min || s > info->subgroup_max)) {
        value[POLICY_SUBGROUP] = 0;
        out->why[POLICY_SUBGROUP] = "the driver's subgroup size (it cannot require another)";
    }
    out->coopmat = value[POLICY_COOPMAT] != 0;
    out->f16math = value[POLICY_F16MATH] != 0;
    out->int_dot = value[POLICY_INT_DOT] != 0;
    out->matvec_subgroup = value[POLICY_SUBGROUP];
    out->matvec_tokens = value[POLICY_MATVEC_TOKENS];
}
