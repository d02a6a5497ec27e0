// SPDX-License-Identifier: MIT
// The Vulkan device: the instance (with the validation layer when asked), the
// choice of a physical device among those probed (device_probe.c), and the
// logical device with its one compute queue and the features the kernels use.
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "device_internal.h"
#include "env.h"

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
    bool compiler; // device_create_compiler: pipelines only, with their statistics
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

int device_list(device_info **out, uint32_t *count) {
    *out = NULL;
    *count = 0;
    VkInstance inst;
    VkDebugUtilsMessengerEXT messenger;
    limits_override lim;
    uint32_t api;
    int rc = device_limits_parse(&lim);
    if (!rc) rc = instance_create(NULL, &lim, &inst, &messenger, &api);
    if (rc) return rc;
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(inst, &n, NULL);
    VkPhysicalDevice *pds = calloc(n + 1, sizeof *pds);
    device_info *infos = calloc(n + 1, sizeof *infos);
    vkEnumeratePhysicalDevices(inst, &n, pds);
    for (uint32_t i = 0; i < n; i++) device_probe(inst, pds[i], i, api, &lim, &infos[i]);
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

// Probes every device and keeps the one to use in d->physical and d->info: index,
// else VKPHI_DEVICE, else the best by type and device-local memory (device.h).
static int choose_physical(device *d, int index, uint32_t api, const limits_override *lim) {
    // A device that runs nothing is never chosen to run a model.
#define RANK(info) (!d->compiler && (info).compile_only ? -1 : type_rank((info).type))
    uint32_t n = 0;
    vkEnumeratePhysicalDevices(d->instance, &n, NULL);
    if (n == 0)
        return vkphi_fail(VKPHI_ERR_VULKAN, "no Vulkan device found (for a CPU fallback install mesa-vulkan-drivers)");
    VkPhysicalDevice *pds = calloc(n, sizeof *pds);
    device_info *infos = calloc(n, sizeof *infos);
    vkEnumeratePhysicalDevices(d->instance, &n, pds);
    for (uint32_t i = 0; i < n; i++) device_probe(d->instance, pds[i], i, api, lim, &infos[i]);

    const char *env = vkphi_env_read().device;
    if (index < 0 && env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || v < 0) {
            free(pds); free(infos);
            return vkphi_fail(VKPHI_ERR_ARG, "VKPHI_DEVICE=%s is not a device number", env);
        }
        index = (int)v;
    }
    if (index >= (int)n) {
        free(pds); free(infos);
        return vkphi_fail(VKPHI_ERR_ARG, "device %d does not exist: there %s %u Vulkan device%s (see `vkphi devices`)",
                          index, n == 1 ? "is" : "are", n, n == 1 ? "" : "s");
    }
    if (index < 0) {
        index = 0;
        for (uint32_t i = 1; i < n; i++) {
            int ri = RANK(infos[i]), rb = RANK(infos[index]);
            if (ri > rb || (ri == rb && device_local_bytes(&infos[i]) > device_local_bytes(&infos[index])))
                index = (int)i;
        }
    }
    d->physical = pds[index];
    d->info = infos[index];
    free(pds);
    free(infos);
#undef RANK
    if (d->info.compile_only && !d->compiler)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s compiles pipelines but cannot run them (RADV_FORCE_FAMILY is set "
                          "without that GPU): use `vkphi kernels` on it, or unset RADV_FORCE_FAMILY", d->info.name);
    if (d->info.api_version < VK_API_VERSION_1_2)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s supports Vulkan %u.%u; vkphi needs 1.2 or newer", d->info.name,
                          VK_API_VERSION_MAJOR(d->info.api_version), VK_API_VERSION_MINOR(d->info.api_version));
    return VKPHI_OK;
}

// The queue family the device's one queue comes from: the first with compute.
static int compute_family(device *d) {
    uint32_t nq = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(d->physical, &nq, NULL);
    VkQueueFamilyProperties *qf = calloc(nq + 1, sizeof *qf);
    vkGetPhysicalDeviceQueueFamilyProperties(d->physical, &nq, qf);
    int family = -1;
    for (uint32_t i = 0; i < nq && family < 0; i++)
        if (qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT) family = (int)i;
    free(qf);
    if (family < 0) return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s has no compute queue", d->info.name);
    d->queue_family = (uint32_t)family;
    return VKPHI_OK;
}

// Creates the logical device with the extensions and features d->info offers that
// the kernels use, and gets its queue.
static int create_logical(device *d) {
    const char **exts = d->extensions;
    uint32_t n_exts = 0;
    if (d->info.has_budget) exts[n_exts++] = VK_EXT_MEMORY_BUDGET_EXTENSION_NAME;
    if (d->info.push_descriptor) exts[n_exts++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    bool v13 = d->info.effective_api >= VK_API_VERSION_1_3;
    if (!v13 && d->info.subgroup_size_control) exts[n_exts++] = VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME;
    if (!v13 && d->info.int_dot) exts[n_exts++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;
    if (d->info.coopmat) exts[n_exts++] = COOPMAT_EXTENSION;
    bool stats = d->compiler && d->info.pipeline_stats;
    if (stats) exts[n_exts++] = VK_KHR_PIPELINE_EXECUTABLE_PROPERTIES_EXTENSION_NAME;

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
    VkPhysicalDevicePipelineExecutablePropertiesFeaturesKHR fexec = {
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PIPELINE_EXECUTABLE_PROPERTIES_FEATURES_KHR};
    fexec.pipelineExecutableInfo = VK_TRUE;
    if (stats) { *tail = &fexec; tail = &fexec.pNext; }

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
    if (r != VK_SUCCESS)
        return vkphi_fail(VKPHI_ERR_VULKAN, "could not create a Vulkan device on %s (%s)", d->info.name, vk_result_name(r));
    volkLoadDevice(d->vk);
    vkGetDeviceQueue(d->vk, d->queue_family, 0, &d->queue);
    return VKPHI_OK;
}

static int create(int index, bool compiler, device **out) {
    *out = NULL;
    device *d = calloc(1, sizeof *d);
    if (!d) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    d->compiler = compiler;
    limits_override lim;
    uint32_t api;
    int rc = device_limits_parse(&lim);
    if (!rc) rc = instance_create(d, &lim, &d->instance, &d->messenger, &api);
    if (rc) { free(d); return rc; }
    rc = choose_physical(d, index, api, &lim);
    if (!rc) rc = compute_family(d);
    if (!rc) rc = create_logical(d);
    if (rc) {
        device_destroy(d); // after the message, which may name d->info.name
        return rc;
    }
    *out = d;
    return VKPHI_OK;
}

int device_create(int index, device **out) { return create(index, false, out); }
int device_create_compiler(int index, device **out) { return create(index, true, out); }
bool device_for_compiling(const device *d) { return d->compiler; }
int device_check_runs(const device *d, const char *what) {
    return d->compiler ? vkphi_fail(VKPHI_ERR_ARG, "%s on %s, a device made for compiling only", what, d->info.name)
                       : VKPHI_OK;
}

void device_destroy(device *d) {
    if (!d) return;
    if (d->vk) {
        // Nothing was submitted to a compiling device (and RADV's null device has
        // no queue to wait on: the wait crashes there).
        if (!d->compiler) vkDeviceWaitIdle(d->vk);
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
