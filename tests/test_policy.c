// SPDX-License-Identifier: MIT
// The device policy (kernels/policy.c) on described devices: each path is chosen by
// the rule its device should match, with a reason, and the VKPHI_* variables
// override it. No GPU needed: the devices are device_info values.
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "policy.h"

static device_info dev(uint32_t vendor, uint32_t id, VkPhysicalDeviceType type, bool coopmat, uint32_t sg_min,
                       uint32_t sg_max) {
    device_info d = {0};
    d.vendor_id = vendor, d.device_id = id, d.type = type, d.cpu_driver = type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    d.fp16 = true, d.coopmat = coopmat;
    d.subgroup_size = sg_max, d.subgroup_min = sg_min, d.subgroup_max = sg_max;
    d.subgroup_size_control = sg_min != sg_max;
    return d;
}

static kernel_policy decide(const device_info *d, const char *coop, const char *half, const char *sg) {
    vkphi_env env = {0};
    env.coopmat = coop, env.f16math = half, env.subgroup = sg;
    kernel_policy p;
    kernel_policy_decide(d, &env, &p);
    for (int i = 0; i < POLICY_PATHS; i++) CHECK(p.why[i] && p.why[i][0], "path %d has a reason", i);
    return p;
}

int main(void) {
    const VkPhysicalDeviceType CPU = VK_PHYSICAL_DEVICE_TYPE_CPU, DGPU = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU,
                               IGPU = VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU;
    // Mesa 26's lavapipe: cooperative matrices emulated, so off; f16 tiles off.
    device_info lvp = dev(0x10005, 0, CPU, true, 8, 8);
    kernel_policy p = decide(&lvp, NULL, NULL, NULL);
    CHECK(!p.coopmat && !p.f16math && !p.int_dot && p.matvec_subgroup == 0, "lavapipe: the plain paths");
    CHECK(strstr(p.why[POLICY_COOPMAT], "emulates"), "lavapipe's reason: %s", p.why[POLICY_COOPMAT]);
    p = decide(&lvp, "1", NULL, NULL);
    CHECK(p.coopmat && !p.coopmat_f32 && !strcmp(p.why[POLICY_COOPMAT], "VKPHI_COOPMAT=1"), "VKPHI_COOPMAT=1 forces them on");
    p = decide(&lvp, "f32", "1", NULL);
    CHECK(p.coopmat && p.coopmat_f32 && p.f16math, "VKPHI_COOPMAT=f32, VKPHI_F16MATH=1");
    // A lavapipe that VKPHI_LIMITS makes look discrete is still a CPU driver.
    lvp.type = DGPU;
    CHECK(!decide(&lvp, NULL, NULL, NULL).coopmat && !decide(&lvp, NULL, NULL, NULL).f16math, "a disguised lavapipe");
    // AMD RDNA3 (navi31, Mesa 25): cooperative matrices, f16 tiles, the driver's wave64
    // (ACO's figures give wave32 no more waves), 16 tokens per matvec dispatch.
    device_info navi31 = dev(0x1002, 0x744c, DGPU, true, 32, 64);
    snprintf(navi31.name, sizeof navi31.name, "AMD Radeon RX 7900 XTX (RADV NAVI31)");
    navi31.driver_version = VK_MAKE_API_VERSION(0, 25, 0, 7);
    p = decide(&navi31, NULL, NULL, NULL);
    CHECK(p.coopmat && p.f16math && p.matvec_subgroup == 0 && p.matvec_tokens == KERNEL_FEW_TOKENS, "navi31: %d %d %u %u",
          p.coopmat, p.f16math, p.matvec_subgroup, p.matvec_tokens);
    CHECK(strstr(p.why[POLICY_SUBGROUP], "wave64"), "RDNA's reason: %s", p.why[POLICY_SUBGROUP]);
    CHECK(decide(&navi31, "0", "0", "32").matvec_subgroup == 32 && !decide(&navi31, "0", NULL, NULL).coopmat,
          "the variables override");
    // RDNA3 under Mesa 22 (which names it GFX1100): one token per matvec dispatch.
    device_info gfx1100 = navi31;
    snprintf(gfx1100.name, sizeof gfx1100.name, "AMD Radeon RX 7900 XTX (RADV GFX1100)");
    gfx1100.driver_version = VK_MAKE_API_VERSION(0, 22, 3, 6);
    CHECK(decide(&gfx1100, NULL, NULL, NULL).matvec_tokens == 1, "gfx1100 under Mesa 22: 1 token a dispatch");
    // GCN (vega10): wave64 only, so the driver's size.
    device_info vega = dev(0x1002, 0x687f, DGPU, false, 64, 64);
    p = decide(&vega, NULL, NULL, "32");
    CHECK(p.matvec_subgroup == 0 && p.f16math, "vega10: no wave32 to require (%u)", p.matvec_subgroup);
    // Intel: Alchemist and DG1 keep cooperative matrices off; Battlemage (Xe2) takes them.
    device_info a770 = dev(0x8086, 0x56a0, DGPU, true, 8, 32), dg1 = dev(0x8086, 0x4905, DGPU, true, 8, 32),
                b580 = dev(0x8086, 0xe20b, DGPU, true, 16, 32);
    CHECK(!decide(&a770, NULL, NULL, NULL).coopmat && !decide(&dg1, NULL, NULL, NULL).coopmat, "Intel before Xe2");
    CHECK(decide(&b580, NULL, NULL, NULL).coopmat, "Intel Xe2");
    // NVIDIA: f16 tiles only with matrix cores (Turing and later).
    device_info pascal = dev(0x10de, 0x1b80, DGPU, false, 32, 32), ada = dev(0x10de, 0x2684, DGPU, true, 32, 32);
    CHECK(!decide(&pascal, NULL, NULL, NULL).f16math && decide(&ada, NULL, NULL, NULL).f16math, "NVIDIA f16");
    // No f16 at all: no f16 tiles, whatever the vendor.
    device_info igpu = dev(0x8086, 0x9a49, IGPU, false, 8, 32);
    igpu.fp16 = false;
    CHECK(!decide(&igpu, NULL, NULL, NULL).f16math, "no shaderFloat16");
    return test_finish();
}
