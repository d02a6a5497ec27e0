// SPDX-License-Identifier: MIT
// Probing a physical device: its properties, limits, features, cooperative-matrix
// shapes, memory heaps and types, and timestamp support, read into a device_info
// once (the VKPHI_LIMITS / VKPHI_HEAPS overrides applied last).
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device_internal.h"

#define COMPONENT_F16 0u
#define COMPONENT_F32 1u
#define SCOPE_SUBGROUP 3u

// Lists the device's cooperative-matrix shapes and picks the one the matrix kernels
// use: f16 x f16 -> f32 at subgroup scope, K dividing the kernels' step of 32 along
// K, M and N at most 32; of those the most multiply-adds per operation (16x16x16 on
// NVIDIA and AMD, Intel's 8x16x16, lavapipe's only 8x8x8).
static void coopmat_shapes(VkInstance inst, VkPhysicalDevice pd, device_info *info) {
    PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)
        vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
    uint32_t n = 0;
    if (!get || get(pd, &n, NULL) != VK_SUCCESS || n == 0) return;
    VkCooperativeMatrixPropertiesKHR *props = calloc(n, sizeof *props);
    if (!props) return;
    for (uint32_t i = 0; i < n; i++) props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
    VkResult r = get(pd, &n, props);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) n = 0;
    for (uint32_t i = 0; i < n; i++) {
        const VkCooperativeMatrixPropertiesKHR *p = &props[i];
        if (info->n_coopmat_shapes < DEVICE_MAX_COOPMAT_SHAPES)
            info->coopmat_shapes[info->n_coopmat_shapes++] = (device_coopmat_shape){
                p->MSize, p->NSize, p->KSize, p->AType, p->BType, p->CType, p->ResultType, p->scope,
                p->saturatingAccumulation != 0};
        bool usable = p->AType == COMPONENT_F16 && p->BType == COMPONENT_F16 && p->CType == COMPONENT_F32 &&
                      p->ResultType == COMPONENT_F32 && p->scope == SCOPE_SUBGROUP && p->KSize && 32 % p->KSize == 0 &&
                      p->MSize && p->MSize <= 32 && p->NSize && p->NSize <= 32;
        uint64_t ops = (uint64_t)p->MSize * p->NSize * p->KSize;
        if (usable && ops > (uint64_t)info->coopmat_m * info->coopmat_n * info->coopmat_k) {
            info->coopmat_m = p->MSize;
            info->coopmat_n = p->NSize;
            info->coopmat_k = p->KSize;
        }
    }
    free(props);
}

// The features the kernels may use and the cooperative-matrix shape.
static void probe_features(VkInstance inst, VkPhysicalDevice pd, bool v13, bool ext_sg_control, bool ext_int_dot,
                           bool ext_coopmat, device_info *info) {
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceSubgroupSizeControlFeatures fsgc = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    VkPhysicalDeviceFeatures2 feats = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    feats.pNext = &f11;
    f11.pNext = &f12;
    void **tail = &f12.pNext;
    if (v13 || ext_sg_control) { *tail = &fsgc; tail = &fsgc.pNext; }
    if (v13 || ext_int_dot) { *tail = &fdot; tail = &fdot.pNext; }
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
    if (ext_coopmat) { *tail = &fcm; tail = &fcm.pNext; }
    vkGetPhysicalDeviceFeatures2(pd, &feats);
    info->fp16 = f12.shaderFloat16;
    info->int8 = f12.shaderInt8;
    info->storage16 = f11.storageBuffer16BitAccess;
    info->storage8 = f12.storageBuffer8BitAccess;
    info->subgroup_size_control = fsgc.subgroupSizeControl;
    info->compute_full_subgroups = fsgc.computeFullSubgroups;
    info->int_dot = fdot.shaderIntegerDotProduct;
    // glslang writes cooperative-matrix modules in the Vulkan memory model (cmake/spv_coopmat.c).
    if (ext_coopmat && fcm.cooperativeMatrix) coopmat_shapes(inst, pd, info);
    // (Enabling the memory model makes Device-scope atomics, which other kernels
    // use, need vulkanMemoryModelDeviceScope too.)
    info->coopmat = info->coopmat_m && f12.vulkanMemoryModel && f12.vulkanMemoryModelDeviceScope && info->fp16;
    if (!info->coopmat) info->coopmat_m = info->coopmat_n = info->coopmat_k = 0;
}

// The memory heaps (with their budgets when the driver has VK_EXT_memory_budget) and
// types, and whether memory is unified. After the properties: a discrete GPU never is.
static void probe_memory(VkPhysicalDevice pd, device_info *info) {
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mem = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
    if (info->has_budget) mem.pNext = &budget;
    vkGetPhysicalDeviceMemoryProperties2(pd, &mem);
    const VkPhysicalDeviceMemoryProperties *mp = &mem.memoryProperties;
    info->n_heaps = mp->memoryHeapCount < DEVICE_MAX_HEAPS ? mp->memoryHeapCount : DEVICE_MAX_HEAPS;
    for (uint32_t i = 0; i < info->n_heaps; i++) {
        info->heaps[i].size = mp->memoryHeaps[i].size;
        info->heaps[i].device_local = mp->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT;
        info->heaps[i].budget = info->has_budget ? budget.heapBudget[i] : 0;
        info->heaps[i].usage = info->has_budget ? budget.heapUsage[i] : 0;
    }
    info->n_types = mp->memoryTypeCount < DEVICE_MAX_TYPES ? mp->memoryTypeCount : DEVICE_MAX_TYPES;
    for (uint32_t t = 0; t < info->n_types; t++)
        info->types[t] = (device_mem_type){mp->memoryTypes[t].heapIndex, mp->memoryTypes[t].propertyFlags};
    // Unified: the largest device-local heap is also host-visible (no separate VRAM).
    uint64_t biggest = 0;
    for (uint32_t t = 0; t < mp->memoryTypeCount; t++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[t].propertyFlags;
        uint64_t sz = mp->memoryHeaps[mp->memoryTypes[t].heapIndex].size;
        if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && sz > biggest) {
            biggest = sz;
            info->unified_memory = (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) != 0;
        } else if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && sz == biggest &&
                   (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT)) {
            info->unified_memory = true;
        }
    }
    // A 256 MiB host-visible window into VRAM (ReBAR off) is not unified memory.
    if (info->type == VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU) info->unified_memory = false;
}

void device_probe(VkInstance inst, VkPhysicalDevice pd, uint32_t index, uint32_t instance_api, const limits_override *over,
                  device_info *info) {
    memset(info, 0, sizeof *info);
    info->index = index;
    uint32_t n_ext = 0;
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, NULL);
    VkExtensionProperties *exts = calloc(n_ext + 1, sizeof *exts);
    vkEnumerateDeviceExtensionProperties(pd, NULL, &n_ext, exts);
    info->has_budget = has_extension(exts, n_ext, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
    bool ext_coopmat = has_extension(exts, n_ext, COOPMAT_EXTENSION);
    info->push_descriptor = has_extension(exts, n_ext, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    bool ext_int_dot = has_extension(exts, n_ext, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    bool ext_sg_control = has_extension(exts, n_ext, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME);
    bool ext_exec_props = has_extension(exts, n_ext, VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME);
    free(exts);

    VkPhysicalDeviceProperties base;
    vkGetPhysicalDeviceProperties(pd, &base);
    // A device may be used at the lower of its version and the instance's: 1.3
    // structures on a 1.3 device under a 1.2 instance are invalid.
    info->effective_api = base.apiVersion < instance_api ? base.apiVersion : instance_api;
    bool v13 = info->effective_api >= VK_API_VERSION_1_3;

    VkPhysicalDeviceSubgroupSizeControlProperties sgc = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES};
    VkPhysicalDeviceVulkan12Properties p12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
    VkPhysicalDeviceVulkan11Properties p11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
    VkPhysicalDeviceProperties2 props = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    props.pNext = &p11;
    p11.pNext = &p12;
    if (v13 || ext_sg_control) p12.pNext = &sgc;
    vkGetPhysicalDeviceProperties2(pd, &props);
    const VkPhysicalDeviceLimits *lim = &props.properties.limits;

    snprintf(info->name, sizeof info->name, "%s", props.properties.deviceName);
    info->vendor_id = props.properties.vendorID;
    info->device_id = props.properties.deviceID;
    info->driver_version = props.properties.driverVersion;
    info->api_version = props.properties.apiVersion;
    info->type = props.properties.deviceType;
    info->cpu_driver = info->type == VK_PHYSICAL_DEVICE_TYPE_CPU;
    memcpy(info->pipeline_cache_uuid, props.properties.pipelineCacheUUID, VK_UUID_SIZE);
    snprintf(info->driver_name, sizeof info->driver_name, "%s", p12.driverName);
    snprintf(info->driver_info, sizeof info->driver_info, "%s", p12.driverInfo);
    // RADV's null device: RADV_FORCE_FAMILY=<family> without that GPU gives a device
    // that compiles pipelines with ACO and runs nothing. Mesa 22.3's null winsys has no
    // memory-usage query, so the budget query crashes on its APU families (vangogh,
    // renoir, gfx1103_r1); it has no memory to budget anyway.
    info->compile_only = p12.driverID == VK_DRIVER_ID_MESA_RADV && strncmp(info->name, "Null hardware", 13) == 0;
    if (info->compile_only) info->has_budget = false;
    info->max_storage_buffer_range = lim->maxStorageBufferRange;
    info->min_storage_offset_align = lim->minStorageBufferOffsetAlignment;
    info->max_push_constants = lim->maxPushConstantsSize;
    info->max_shared_memory = lim->maxComputeSharedMemorySize;
    info->max_workgroup_invocations = lim->maxComputeWorkGroupInvocations;
    memcpy(info->max_workgroup_count, lim->maxComputeWorkGroupCount, sizeof info->max_workgroup_count);
    info->timestamps = lim->timestampComputeAndGraphics;
    info->timestamp_period_ns = lim->timestampPeriod;
    info->max_alloc_size = p11.maxMemoryAllocationSize;
    info->subgroup_size = p11.subgroupSize;
    info->subgroup_arith = (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                           (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
    info->subgroup_min = info->subgroup_max = p11.subgroupSize;
    if (v13 || ext_sg_control) {
        info->subgroup_min = sgc.minSubgroupSize;
        info->subgroup_max = sgc.maxSubgroupSize;
    }

    probe_features(inst, pd, v13, ext_sg_control, ext_int_dot, ext_coopmat, info);
    if (ext_exec_props) {
        VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR fexec = {
            VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
        VkPhysicalDeviceFeatures2 feats = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, &fexec};
        vkGetPhysicalDeviceFeatures2(pd, &feats);
        info->pipeline_stats = fexec.pipelineExecutableInfo;
    }
    probe_memory(pd, info);

    // Timestamps come from the compute queue (the first family with compute).
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq + 1, sizeof *qf);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    for (uint32_t i = 0; i < nq; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) { info->timestamp_bits = qf[i].timestampValidBits; break; }
    free(qf);
    if (info->timestamp_bits == 0) info->timestamps = false;
    device_limits_apply(over, info);
    device_heaps_apply(over, info);
}
