// SPDX-License-Identifier: MIT
// What the device layer's three files share: device.c (instance, choice, logical
// device), device_probe.c (what a physical device offers) and device_limits.c (the
// VKPHI_LIMITS / VKPHI_HEAPS overrides for tests). Internal to them; device.h is the
// interface.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <volk.h>

#include "device.h"

// VK_KHR_cooperative_matrix, which Debian 12's Vulkan headers (1.3.239) predate:
// the values and structures of the registry, declared here when the headers lack them.
#ifndef VK_KHR_cooperative_matrix
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR ((VkStructureType)1000506000)
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef struct VkCooperativeMatrixPropertiesKHR {
    VkStructureType sType;
    void *pNext;
    uint32_t MSize, NSize, KSize;
    uint32_t AType, BType, CType, ResultType; // VkComponentTypeKHR
    VkBool32 saturatingAccumulation;
    uint32_t scope; // VkScopeKHR
} VkCooperativeMatrixPropertiesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
    VkStructureType sType;
    void *pNext;
    VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef VkResult(VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(VkPhysicalDevice, uint32_t *,
                                                                                   VkCooperativeMatrixPropertiesKHR *);
#endif
#define COOPMAT_EXTENSION "VK_KHR_cooperative_matrix"

static inline bool has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0) return true;
    return false;
}

// The environment's device knobs, read once per device_list or device_create.
typedef struct limits_override {
    bool any, discrete, no_push, no_sg_arith, no_coopmat, no_int_dot, no_fp16;
    uint64_t offset_align, storage_range, max_alloc;
    uint32_t shared, wg, api;
    uint32_t n_heaps;                  // VKPHI_HEAPS: simulated heaps (0: the driver's)
    device_heap heaps[DEVICE_MAX_HEAPS];
    char text[128];                    // VKPHI_LIMITS as given, for device_info.limits
    bool validate;                     // VKPHI_VALIDATE: the validation layer
} limits_override;

// device_limits.c: reads VKPHI_HEAPS, VKPHI_LIMITS and VKPHI_VALIDATE into l (a
// malformed value is refused with one sentence); applies them to a probed device.
int device_limits_parse(limits_override *l);
void device_limits_apply(const limits_override *l, device_info *info);
void device_heaps_apply(const limits_override *l, device_info *info);

// device_probe.c: fills info for physical device `index` of inst, the overrides applied.
void device_probe(VkInstance inst, VkPhysicalDevice pd, uint32_t index, uint32_t instance_api, const limits_override *over,
                  device_info *info);
