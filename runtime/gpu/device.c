// SPDX-License-Identifier: MIT
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "env.h"

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
#define COMPONENT_F16 0u
#define COMPONENT_F32 1u
#define SCOPE_SUBGROUP 3u

struct device {
    VkInstance instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice physical;
    VkDevice vk;
    VkQueue queue;
    uint32_t queue_family;
    device_info info;
    uint32_t validation_messages;
    void *attached; // one object of a module above (buffer.c's staging buffer)
    void (*release)(device *d, void *obj);
    const char *extensions[8]; // enabled device extensions (string literals)
    uint32_t n_extensions;
};

const char *vk_result_name(VkResult r) {
    switch (r) {
#define R(x) case x: return #x;
        R(VK_SUCCESS) R(VK_NOT_READY) R(VK_TIMEOUT) R(VK_INCOMPLETE)
        R(VK_ERROR_OUT_OF_HOST_MEMORY) R(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        R(VK_ERROR_INITIALIZATION_FAILED) R(VK_ERROR_DEVICE_LOST) R(VK_ERROR_MEMORY_MAP_FAILED)
        R(VK_ERROR_LAYER_NOT_PRESENT) R(VK_ERROR_EXTENSION_NOT_PRESENT)
        R(VK_ERROR_FEATURE_NOT_PRESENT) R(VK_ERROR_INCOMPATIBLE_DRIVER)
        R(VK_ERROR_TOO_MANY_OBJECTS) R(VK_ERROR_FORMAT_NOT_SUPPORTED)
        R(VK_ERROR_FRAGMENTED_POOL) R(VK_ERROR_OUT_OF_POOL_MEMORY) R(VK_ERROR_UNKNOWN)
#undef R
    default: return "VK_ERROR_(unknown)";
    }
}

int vk_check_fail(VkResult r, const char *call, const char *file, int line) {
    const char *base = strrchr(file, '/');
    int code = (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY)
                   ? VKPHI_ERR_NOMEM
                   : VKPHI_ERR_VULKAN;
    return vkphi_fail(code, "Vulkan call %s failed with %s (%s:%d)", call, vk_result_name(r),
                      base ? base + 1 : file, line);
}

const char *device_type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

const char *device_vendor_name(uint32_t vendor_id) {
    switch (vendor_id) {
    case 0x1002: return "AMD";
    case 0x10de: return "NVIDIA";
    case 0x8086: return "Intel";
    case 0x13b5: return "ARM";
    case 0x5143: return "Qualcomm";
    case 0x106b: return "Apple";
    case 0x10005: return "Mesa";
    default: return "unknown";
    }
}

void device_driver_version_str(const device_info *info, char *buf, size_t len) {
    uint32_t v = info->driver_version;
    if (info->vendor_id == 0x10de) // NVIDIA: 10.8.8.6 bits
        snprintf(buf, len, "%u.%u.%u.%u", v >> 22, (v >> 14) & 0xff, (v >> 6) & 0xff, v & 0x3f);
    else
        snprintf(buf, len, "%u.%u.%u", VK_API_VERSION_MAJOR(v), VK_API_VERSION_MINOR(v),
                 VK_API_VERSION_PATCH(v));
}

static uint32_t validation_total; // every device of the process

uint32_t device_validation_total(void) { return __atomic_load_n(&validation_total, __ATOMIC_RELAXED); }

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                                     VkDebugUtilsMessageTypeFlagsEXT types,
                                                     const VkDebugUtilsMessengerCallbackDataEXT *data,
                                                     void *user) {
    (void)types;
    device *d = user;
    if (severity >= VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) {
        if (d) d->validation_messages++;
        __atomic_fetch_add(&validation_total, 1, __ATOMIC_RELAXED);
        vkphi_log(VKPHI_LOG_ERROR, "validation: %s", data->pMessage);
    }
    return VK_FALSE;
}

static bool has_extension(const VkExtensionProperties *exts, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(exts[i].extensionName, name) == 0) return true;
    return false;
}

// ---- VKPHI_LIMITS: stricter limits for tests (device.h) ----

typedef struct limits_override {
    bool any, discrete, no_push, no_sg_arith, no_coopmat, no_int_dot, no_fp16;
    uint64_t offset_align, storage_range, max_alloc;
    uint32_t shared, wg, api;
    uint32_t n_heaps;                  // VKPHI_HEAPS: simulated heaps (0: the driver's)
    device_heap heaps[DEVICE_MAX_HEAPS];
    char text[128];                    // VKPHI_LIMITS as given, for device_info.limits
    bool validate;                     // VKPHI_VALIDATE: the validation layer
} limits_override;

static bool parse_size(const char *v, uint64_t *out) {
    char *end;
    unsigned long long n = strtoull(v, &end, 10);
    if (end == v) return false;
    uint64_t mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1ull << 10, end++;
    else if (*end == 'M' || *end == 'm') mul = 1ull << 20, end++;
    else if (*end == 'G' || *end == 'g') mul = 1ull << 30, end++;
    if (*end || n == 0 || n > UINT64_MAX / mul) return false;
    *out = n * mul;
    return true;
}

// VKPHI_HEAPS=KIND:SIZE,... (device.h).
static int heaps_parse(limits_override *l, const char *env) {
    if (!env || !*env) return VKPHI_OK;
    char buf[256];
    if (strlen(env) >= sizeof buf)
        return vkphi_fail(VKPHI_ERR_ARG, "%s is longer than %zu characters", DEVICE_HEAPS_ENV, sizeof buf - 1);
    strcpy(buf, env);
    for (char *save = NULL, *e = strtok_r(buf, ",", &save); e; e = strtok_r(NULL, ",", &save)) {
        char *size = strchr(e, ':');
        if (size) *size++ = 0;
        bool dev = !strcmp(e, "device"), host = !strcmp(e, "host");
        device_heap h = {0};
        if (!size || (!dev && !host) || !parse_size(size, &h.size) || l->n_heaps == DEVICE_MAX_HEAPS)
            return vkphi_fail(VKPHI_ERR_ARG, "%s: '%s%s%s' is not KIND:SIZE with KIND device or host and SIZE in bytes "
                              "(K, M or G allowed), e.g. device:8M,host:2G", DEVICE_HEAPS_ENV, e, size ? ":" : "",
                              size ? size : "");
        h.budget = h.size;
        h.device_local = dev;
        l->heaps[l->n_heaps++] = h;
    }
    return VKPHI_OK;
}

// The environment's device knobs: VKPHI_HEAPS, VKPHI_LIMITS and VKPHI_VALIDATE.
static int limits_parse(limits_override *l) {
    memset(l, 0, sizeof *l);
    const vkphi_env env_now = vkphi_env_read();
    l->validate = env_now.validate && *env_now.validate && strcmp(env_now.validate, "0") != 0;
    int rc = heaps_parse(l, env_now.heaps);
    if (rc) return rc;
    const char *env = env_now.limits;
    if (!env || !*env) return VKPHI_OK;
    snprintf(l->text, sizeof l->text, "%s", env);
    char buf[256];
    if (strlen(env) >= sizeof buf)
        return vkphi_fail(VKPHI_ERR_ARG, "%s is longer than %zu characters", DEVICE_LIMITS_ENV, sizeof buf - 1);
    strcpy(buf, env);
    l->any = true;
    for (char *save = NULL, *key = strtok_r(buf, ",", &save); key; key = strtok_r(NULL, ",", &save)) {
        char *val = strchr(key, '=');
        if (val) *val++ = 0;
        uint64_t n = 0;
        bool ok = true;
        if (!strcmp(key, "discrete") && !val) l->discrete = true;
        else if (!strcmp(key, "no_push_descriptors") && !val) l->no_push = true;
        else if (!strcmp(key, "no_subgroup_arith") && !val) l->no_sg_arith = true;
        else if (!strcmp(key, "no_coopmat") && !val) l->no_coopmat = true;
        else if (!strcmp(key, "no_int_dot") && !val) l->no_int_dot = true;
        else if (!strcmp(key, "no_fp16") && !val) l->no_fp16 = true;
        else if (!strcmp(key, "offset_align") && val) ok = parse_size(val, &l->offset_align) && !(l->offset_align & (l->offset_align - 1));
        else if (!strcmp(key, "storage_range") && val) ok = parse_size(val, &l->storage_range);
        else if (!strcmp(key, "max_alloc") && val) ok = parse_size(val, &l->max_alloc);
        else if (!strcmp(key, "shared") && val) ok = parse_size(val, &n) && n <= UINT32_MAX, l->shared = (uint32_t)n;
        else if (!strcmp(key, "wg") && val) ok = parse_size(val, &n) && n <= 1024, l->wg = (uint32_t)n;
        else if (!strcmp(key, "api") && val) {
            ok = !strcmp(val, "1.2") || !strcmp(val, "1.3");
            l->api = !strcmp(val, "1.2") ? VK_API_VERSION_1_2 : VK_API_VERSION_1_3;
        } else
            return vkphi_fail(VKPHI_ERR_ARG, "%s: unknown entry '%s%s%s' (see runtime/device.h)", DEVICE_LIMITS_ENV, key,
                              val ? "=" : "", val ? val : "");
        if (!ok)
            return vkphi_fail(VKPHI_ERR_ARG, "%s: '%s=%s' is not a valid value", DEVICE_LIMITS_ENV, key, val);
    }
    return VKPHI_OK;
}

// After limits_apply: a simulated device heap is host-visible only where the
// (possibly overridden) device has unified memory.
static void heaps_apply(const limits_override *l, device_info *info) {
    if (l->n_heaps) {
        // Simulated heaps get the memory types such heaps have: device-local
        // (host-visible too where the real device's memory is unified), and
        // host-visible coherent system memory, uncached and cached.
        const VkMemoryPropertyFlags DL = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT,
                                    HV = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
        info->heaps_simulated = true;
        info->n_heaps = l->n_heaps;
        memcpy(info->heaps, l->heaps, sizeof l->heaps);
        info->n_types = 0;
        for (uint32_t h = 0; h < l->n_heaps && info->n_types + 2 <= DEVICE_MAX_TYPES; h++) {
            if (l->heaps[h].device_local) {
                info->types[info->n_types++] = (device_mem_type){h, DL | (info->unified_memory ? HV : 0)};
            } else {
                info->types[info->n_types++] = (device_mem_type){h, HV};
                info->types[info->n_types++] = (device_mem_type){h, HV | VK_MEMORY_PROPERTY_HOST_CACHED_BIT};
            }
        }
    }
}

#define LOWER(field, v) if ((v) && (v) < (field)) (field) = (v)
// Only ever stricter than the driver: a limit is lowered, an alignment raised, a
// feature taken away.
static void limits_apply(const limits_override *l, device_info *info) {
    if (!l->any) return;
    snprintf(info->limits, sizeof info->limits, "%s", l->text);
    if (l->offset_align > info->min_storage_offset_align) info->min_storage_offset_align = l->offset_align;
    LOWER(info->max_storage_buffer_range, l->storage_range);
    LOWER(info->max_alloc_size, l->max_alloc);
    LOWER(info->max_shared_memory, l->shared);
    LOWER(info->max_workgroup_invocations, l->wg);
    if (l->discrete) {
        info->type = VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU;
        info->unified_memory = false;
    }
    if (l->no_push) info->push_descriptor = false;
    if (l->no_sg_arith) info->subgroup_arith = false;
    if (l->no_int_dot) info->int_dot = false;
    if (l->no_fp16) info->fp16 = info->fast_f16 = false;
    if (l->no_coopmat || !info->fp16) { // the kernels need both (the shapes stay listed)
        info->coopmat = false;
        info->coopmat_m = info->coopmat_n = info->coopmat_k = 0;
    }
}
#undef LOWER

// Creates the instance; with validation requested, also the layer and a messenger
// that counts into d (which may be NULL while only listing devices).
// *api gets the version the instance asked for: what the devices may be used at.
static int instance_create(device *d, const limits_override *lim, VkInstance *out, VkDebugUtilsMessengerEXT *messenger,
                           uint32_t *api) {
    static int volk_status = 1;
    if (volk_status == 1) volk_status = volkInitialize() == VK_SUCCESS ? 0 : -1;
    if (volk_status != 0)
        return vkphi_fail(VKPHI_ERR_VULKAN, "no Vulkan loader found (install libvulkan1 and a Vulkan driver, "
                                            "e.g. mesa-vulkan-drivers)");
    uint32_t loader_version = volkGetInstanceVersion();
    if (loader_version < VK_API_VERSION_1_2)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "the Vulkan loader is version %u.%u; vkphi needs 1.2 or newer",
                          VK_API_VERSION_MAJOR(loader_version), VK_API_VERSION_MINOR(loader_version));

    uint32_t n_ext = 0;
    vkEnumerateInstanceExtensionProperties(NULL, &n_ext, NULL);
    VkExtensionProperties *exts = calloc(n_ext + 1, sizeof *exts);
    vkEnumerateInstanceExtensionProperties(NULL, &n_ext, exts);
    const char *enabled_ext[4];
    uint32_t n_enabled = 0;
    VkInstanceCreateFlags flags = 0;
    if (has_extension(exts, n_ext, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME)) {
        enabled_ext[n_enabled++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
        flags |= VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR;
    }
    bool validate = lim->validate;
    const char *layer = "VK_LAYER_KHRONOS_validation";
    bool have_layer = false;
    if (validate) {
        uint32_t n_layers = 0;
        vkEnumerateInstanceLayerProperties(&n_layers, NULL);
        VkLayerProperties *layers = calloc(n_layers + 1, sizeof *layers);
        vkEnumerateInstanceLayerProperties(&n_layers, layers);
        for (uint32_t i = 0; i < n_layers; i++)
            if (strcmp(layers[i].layerName, layer) == 0) have_layer = true;
        free(layers);
        if (!have_layer)
            vkphi_log(VKPHI_LOG_WARN, "VKPHI_VALIDATE is set but %s is not installed "
                                      "(Debian: vulkan-validationlayers)", layer);
        if (have_layer && has_extension(exts, n_ext, VK_EXT_DEBUG_UTILS_EXTENSION_NAME))
            enabled_ext[n_enabled++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
        else
            have_layer = false;
    }
    free(exts);

    VkApplicationInfo app = {VK_STRUCTURE_TYPE_APPLICATION_INFO};
    app.pApplicationName = "vkphi";
    app.pEngineName = "vkphi";
    app.apiVersion = loader_version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2;
    if (lim->api && lim->api < app.apiVersion) app.apiVersion = lim->api;
    *api = app.apiVersion;
    VkInstanceCreateInfo info = {VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
    info.flags = flags;
    info.pApplicationInfo = &app;
    info.enabledExtensionCount = n_enabled;
    info.ppEnabledExtensionNames = enabled_ext;
    info.enabledLayerCount = have_layer ? 1 : 0;
    info.ppEnabledLayerNames = &layer;
    VkResult r = vkCreateInstance(&info, NULL, out);
    if (r != VK_SUCCESS)
        return vkphi_fail(VKPHI_ERR_VULKAN, "could not create a Vulkan instance (%s): is a Vulkan driver installed?",
                          vk_result_name(r));
    volkLoadInstanceOnly(*out);
    *messenger = VK_NULL_HANDLE;
    if (have_layer) {
        VkDebugUtilsMessengerCreateInfoEXT mi = {VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT};
        mi.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT;
        mi.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                         VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT;
        mi.pfnUserCallback = debug_callback;
        mi.pUserData = d;
        VK_CHECK(vkCreateDebugUtilsMessengerEXT(*out, &mi, NULL, messenger));
    }
    return VKPHI_OK;
}

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

static void probe(VkInstance inst, VkPhysicalDevice pd, uint32_t index, uint32_t instance_api, const limits_override *over,
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
    memcpy(info->pipeline_cache_uuid, props.properties.pipelineCacheUUID, VK_UUID_SIZE);
    snprintf(info->driver_name, sizeof info->driver_name, "%s", p12.driverName);
    snprintf(info->driver_info, sizeof info->driver_info, "%s", p12.driverInfo);
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
    // f16 arithmetic at least as fast as f32: GPUs with shaderFloat16 (double rate on AMD
    // since Vega, Intel, mobile), but not CPU drivers (lavapipe converts around every
    // operation: 0.65x of f32 in the prefill tiles) nor NVIDIA GPUs without cooperative
    // matrices (before Turing, f16 runs at a fraction of f32's rate). Decided before the
    // limit profiles: a lavapipe made to look discrete is still a CPU.
    info->fast_f16 = info->fp16 && info->type != VK_PHYSICAL_DEVICE_TYPE_CPU &&
                     !(info->vendor_id == 0x10de && !info->coopmat);

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

    // Timestamps come from the compute queue (the first family with compute).
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq + 1, sizeof *qf);
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &nq, qf);
    for (uint32_t i = 0; i < nq; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) { info->timestamp_bits = qf[i].timestampValidBits; break; }
    free(qf);
    if (info->timestamp_bits == 0) info->timestamps = false;
    limits_apply(over, info);
    heaps_apply(over, info);
}

int device_list(device_info **out, uint32_t *count) {
    *out = NULL;
    *count = 0;
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    limits_override lim;
    uint32_t api;
    int rc = limits_parse(&lim);
    if (!rc) rc = instance_create(NULL, &lim, &inst, &messenger, &api);
    if (rc) return rc;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice *pds = calloc(n + 1, sizeof *pds);
    device_info *infos = calloc(n + 1, sizeof *infos);
    vkEnumeratePhysicalDevices(inst, &n, pds);
    for (uint32_t i = 0; i < n; i++) probe(inst, pds[i], i, api, &lim, &infos[i]);
    free(pds);
    if (messenger) vkDestroyDebugUtilsMessengerEXT(inst, messenger, NULL);
    vkDestroyInstance(inst, NULL);
    *out = infos;
    *count = n;
    return VKPHI_OK;
}

static uint64_t device_local_bytes(const device_info *info) {
    uint64_t s = 0;
    for (uint32_t i = 0; i < info->n_heaps; i++)
        if (info->heaps[i].device_local) s += info->heaps[i].size;
    return s;
}

static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 3;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 1;
    default: return 0;
    }
}

int device_create(int index, device **out) {
    *out = NULL;
    device *d = calloc(1, sizeof *d);
    if (!d) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    limits_override lim;
    uint32_t api;
    int rc = limits_parse(&lim);
    if (!rc) rc = instance_create(d, &lim, &d->instance, &d->messenger, &api);
    if (rc) { free(d); return rc; }

    uint32_t n = 0;
    vkEnumeratePhysicalDevices(d->instance, &n, NULL);
    if (n == 0) {
        device_destroy(d);
        return vkphi_fail(VKPHI_ERR_VULKAN, "no Vulkan device found (for a CPU fallback install mesa-vulkan-drivers)");
    }
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    device_info *infos = calloc(n, sizeof *infos);
    vkEnumeratePhysicalDevices(d->instance, &n, pds);
    for (uint32_t i = 0; i < n; i++) probe(d->instance, pds[i], i, api, &lim, &infos[i]);

    const char *env = vkphi_env_read().device;
    if (index < 0 && env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 0) {
            free(pds); free(infos); device_destroy(d);
            return vkphi_fail(VKPHI_ERR_ARG, "VKPHI_DEVICE=%s is not a device number", env);
        }
        index = (int)v;
    }
    if (index >= (int)n) {
        free(pds); free(infos); device_destroy(d);
        return vkphi_fail(VKPHI_ERR_ARG, "device %d does not exist: there %s %u Vulkan device%s (see `vkphi devices`)",
                          index, n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
    }
    if (index < 0) {
        index = 0;
        for (uint32_t i = 1; i < n; i++) {
            int ri = type_rank(infos[i].type), rb = type_rank(infos[index].type);
            if (ri > rb || (ri == rb && device_local_bytes(&infos[i]) > device_local_bytes(&infos[index])))
                index = (int)i;
        }
    }
    d->physical = pds[index];
    d->info = infos[index];
    free(pds);
    free(infos);
    if (d->info.api_version < VK_API_VERSION_1_2) {
        device_destroy(d);
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s supports Vulkan %u.%u; vkphi needs 1.2 or newer", d->info.name,
                          VK_API_VERSION_MAJOR(d->info.api_version), VK_API_VERSION_MINOR(d->info.api_version));
    }

    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->physical, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq + 1, sizeof *qf);
    vkGetPhysicalDeviceQueueFamilyProperties(d->physical, &nq, qf);
    int family = -1;
    for (uint32_t i = 0; i < nq && family < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = (int)i;
    free(qf);
    if (family < 0) {
        device_destroy(d);
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s has no compute queue", d->info.name);
    }
    d->queue_family = (uint32_t)family;

    const char **exts = d->extensions;
    uint32_t n_exts = 0;
    if (d->info.has_budget) exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    if (d->info.push_descriptor) exts[n_exts++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    bool v13 = d->info.effective_api >= VK_API_VERSION_1_3;
    if (!v13 && d->info.subgroup_size_control) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    if (!v13 && d->info.int_dot) exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    if (d->info.coopmat) exts[n_exts++] = COOPMAT_EXTENSION;

    // Enable only what the device has; shaders pick paths by specialization constants.
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    fdot.shaderIntegerDotProduct = d->info.int_dot;
    VkPhysicalDeviceSubgroupSizeControlFeatures fsgc = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_FEATURES};
    fsgc.subgroupSizeControl = d->info.subgroup_size_control;
    fsgc.computeFullSubgroups = d->info.compute_full_subgroups;
    VkPhysicalDeviceVulkan12Features f12 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    f12.shaderFloat16 = d->info.fp16;
    f12.shaderInt8 = d->info.int8;
    f12.storageBuffer8BitAccess = d->info.storage8;
    f12.vulkanMemoryModel = d->info.coopmat; // glslang writes cooperative-matrix modules in it
    f12.vulkanMemoryModelDeviceScope = d->info.coopmat;
    VkPhysicalDeviceCooperativeMatrixFeaturesKHR fcm = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR};
    fcm.cooperativeMatrix = VK_TRUE;
    VkPhysicalDeviceVulkan11Features f11 = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
    f11.storageBuffer16BitAccess = d->info.storage16;
    VkPhysicalDeviceFeatures2 feats = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    feats.pNext = &f11;
    f11.pNext = &f12;
    void **tail = &f12.pNext;
    if (d->info.subgroup_size_control) { *tail = &fsgc; tail = &fsgc.pNext; }
    if (d->info.int_dot) { *tail = &fdot; tail = &fdot.pNext; }
    if (d->info.coopmat) { *tail = &fcm; tail = &fcm.pNext; }

    float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
    qi.queueFamilyIndex = d->queue_family;
    qi.queueCount = 1;
    qi.pQueuePriorities = &prio;
    VkDeviceCreateInfo di = {VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
    di.pNext = &feats;
    di.queueCreateInfoCount = 1;
    di.pQueueCreateInfos = &qi;
    di.enabledExtensionCount = d->n_extensions = n_exts;
    di.ppEnabledExtensionNames = exts;
    VkResult r = vkCreateDevice(d->physical, &di, NULL, &d->vk);
    if (r != VK_SUCCESS) {
        device_destroy(d);
        return vkphi_fail(VKPHI_ERR_VULKAN, "could not create a Vulkan device on %s (%s)", d->info.name, vk_result_name(r));
    }
    volkLoadDevice(d->vk);
    vkGetDeviceQueue(d->vk, d->queue_family, 0, &d->queue);
    *out = d;
    return VKPHI_OK;
}

void device_destroy(device *d) {
    if (!d) return;
    if (d->vk) {
        vkDeviceWaitIdle(d->vk);
        if (d->attached) d->release(d, d->attached);
    }
    if (d->vk) vkDestroyDevice(d->vk, NULL);
    if (d->messenger) vkDestroyDebugUtilsMessengerEXT(d->instance, d->messenger, NULL);
    if (d->instance) vkDestroyInstance(d->instance, NULL);
    free(d);
}

const device_info *device_get_info(const device *d) { return &d->info; }
VkDevice device_vk(const device *d) { return d->vk; }
VkPhysicalDevice device_physical(const device *d) { return d->physical; }
VkQueue device_queue(const device *d) { return d->queue; }
uint32_t device_queue_family(const device *d) { return d->queue_family; }
uint32_t device_validation_messages(const device *d) { return d->validation_messages; }
void *device_attached(const device *d) { return d->attached; }
void device_attach(device *d, void *obj, void (*release)(device *d, void *obj)) {
    d->attached = obj;
    d->release = release;
}

bool device_extension_enabled(const device *d, const char *name) {
    for (uint32_t i = 0; i < d->n_extensions; i++)
        if (strcmp(d->extensions[i], name) == 0) return true;
    return false;
}

void device_refresh_budgets(const device *d, device_info *info) {
    if (info->heaps_simulated || !d->info.has_budget) return;
    VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT};
    VkPhysicalDeviceMemoryProperties2 mem = {VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2};
    mem.pNext = &budget;
    vkGetPhysicalDeviceMemoryProperties2(d->physical, &mem);
    for (uint32_t i = 0; i < info->n_heaps && i < mem.memoryProperties.memoryHeapCount; i++) {
        info->heaps[i].budget = budget.heapBudget[i];
        info->heaps[i].usage = budget.heapUsage[i];
    }
}

uint64_t device_budget(const device *d) {
    device_info info = d->info;
    device_refresh_budgets(d, &info);
    uint64_t best = 0;
    for (uint32_t i = 0; i < info.n_heaps; i++) {
        const device_heap *h = &info.heaps[i];
        if (!h->device_local) continue;
        uint64_t free_bytes = h->budget ? (h->budget > h->usage ? h->budget - h->usage : 0) : h->size;
        if (free_bytes > best) best = free_bytes;
    }
    return best;
}
