// SPDX-License-Identifier: MIT
// The Vulkan device layer: instance (with the validation layer when VKPHI_VALIDATE=1),
// physical-device enumeration and choice, feature probing, one compute queue.
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <volk.h>

#define DEVICE_MAX_HEAPS 16
#define DEVICE_MAX_TYPES 32

typedef struct device_heap {
    uint64_t size;
    uint64_t budget; // bytes the driver says we may use now; 0 when unknown
    uint64_t usage;  // bytes this process already uses there (VK_EXT_memory_budget; else 0)
    bool device_local;
} device_heap;

// One matrix shape VK_KHR_cooperative_matrix offers: C (M x N) = A (M x K) x B (K x N) + C.
// Types are VkComponentTypeKHR values (0 f16, 1 f32, 3 s8, 5 s32, 7 u8, ...), scope a VkScopeKHR
// (3: subgroup).
typedef struct device_coopmat_shape {
    uint32_t m, n, k;
    uint32_t a_type, b_type, c_type, result_type;
    uint32_t scope;
    bool saturating;
} device_coopmat_shape;
#define DEVICE_MAX_COOPMAT_SHAPES 32

typedef struct device_mem_type {
    uint32_t heap;               // index into heaps
    VkMemoryPropertyFlags flags; // VK_MEMORY_PROPERTY_*
} device_mem_type;

// What a physical device offers, as `vkphi devices` prints it.
typedef struct device_info {
    uint32_t index;
    char name[256];
    uint32_t vendor_id, device_id;
    char driver_name[256], driver_info[256];
    uint32_t driver_version, api_version;
    VkPhysicalDeviceType type;
    uint8_t pipeline_cache_uuid[VK_UUID_SIZE];
    uint32_t n_heaps;
    device_heap heaps[DEVICE_MAX_HEAPS];
    uint32_t n_types;
    device_mem_type types[DEVICE_MAX_TYPES];
    bool heaps_simulated;     // heaps and types come from VKPHI_HEAPS, not the driver
    bool has_budget;          // VK_EXT_memory_budget
    bool unified_memory;      // a device-local memory type is also host-visible (iGPU, Deck, lavapipe)
    uint64_t max_storage_buffer_range, max_alloc_size, min_storage_offset_align;
    uint32_t max_push_constants, max_shared_memory, max_workgroup_invocations, max_workgroup_count[3];
    uint32_t subgroup_size, subgroup_min, subgroup_max;
    bool subgroup_arith;      // subgroupAdd etc. in compute shaders
    bool subgroup_size_control, compute_full_subgroups;
    bool fp16;                // shaderFloat16
    bool cpu_driver;          // the driver runs on the CPU (lavapipe): judged on the real device,
                              // whatever VKPHI_LIMITS makes it look like (kernels/policy.c)
    bool int8;                // shaderInt8
    bool storage16, storage8; // 16/8-bit storage buffer access
    bool int_dot;             // VK_KHR_shader_integer_dot_product
    bool coopmat;             // VK_KHR_cooperative_matrix with its feature, and the Vulkan memory model
                              // and shaderFloat16 the kernels need (matmul_coop.comp)
    uint32_t n_coopmat_shapes; // every shape the device offers (coopmat or not), for `vkphi devices`
    device_coopmat_shape coopmat_shapes[DEVICE_MAX_COOPMAT_SHAPES];
    // The shape the matrix kernels use: f16 x f16 -> f32, subgroup scope, K dividing 32;
    // all 0 when there is none (then coopmat is false).
    uint32_t coopmat_m, coopmat_n, coopmat_k;
    bool push_descriptor;     // VK_KHR_push_descriptor
    bool pipeline_stats;      // VK_KHR_pipeline_executable_properties: the compiler's figures per
                              // pipeline (registers, spills, shared memory, waves), pipeline_stats()
    bool compile_only;        // a device that compiles pipelines but runs nothing (RADV's null
                              // device, RADV_FORCE_FAMILY): only device_create_compiler takes it
    bool timestamps;
    uint32_t timestamp_bits;  // valid bits of a compute-queue timestamp (36 on some devices)
    float timestamp_period_ns;
    uint32_t effective_api;   // min(instance, device): what may be used (api_version is the device's)
    char limits[128];         // VKPHI_LIMITS when it overrode what the driver reports, else ""
} device_info;

typedef struct device device;

// Tests only: VKPHI_LIMITS makes every device report stricter limits than its
// driver does, so that the suite exercises the paths of other GPUs on lavapipe. A
// comma-separated list of:
//   offset_align=N       minStorageBufferOffsetAlignment (raised to N)
//   storage_range=SIZE   maxStorageBufferRange (lowered; SIZE takes K, M or G)
//   max_alloc=SIZE       maxMemoryAllocationSize (lowered)
//   shared=N, wg=N       compute shared memory bytes and workgroup invocations (lowered)
//   discrete             a discrete GPU: device buffers unmapped, filled by staging
//   no_push_descriptors, no_subgroup_arith, no_coopmat, no_int_dot, no_fp16
//   api=1.2              the Vulkan version the instance asks for (and so may use)
// A malformed list is refused by device_list and device_create with one sentence.
#define DEVICE_LIMITS_ENV "VKPHI_LIMITS"

// Tests only: VKPHI_HEAPS describes simulated memory heaps over the real device's
// memory, so that the placement across heaps (model/memory_plan.h) runs end to end on any
// device. A comma-separated list of KIND:SIZE, KIND `device` (device-local) or
// `host` (host-visible system memory the GPU reads over the bus), SIZE in bytes
// with an optional K, M or G: e.g. VKPHI_HEAPS=device:8M,host:2G. The heaps,
// their budgets (= their sizes) and memory types replace the driver's in
// device_info; buffers still come from the real device's memory types.
#define DEVICE_HEAPS_ENV "VKPHI_HEAPS"

// Lists every physical device. *out is malloc'ed; free() it.
int device_list(device_info **out, uint32_t *count);

// Creates a logical device. index < 0 picks: VKPHI_DEVICE if set, else the discrete
// GPU with the most device-local memory, else an integrated GPU, else any other.
int device_create(int index, device **out);
// A device to compile pipelines on and nothing else (`vkphi kernels`): it may be one
// that runs nothing (device_info.compile_only), and where the driver offers
// VK_KHR_pipeline_executable_properties its pipelines keep the compiler's
// statistics (pipeline_stats in pipeline.h). Nothing may be allocated or submitted on it.
int device_create_compiler(int index, device **out);
// True for a device from device_create_compiler.
bool device_for_compiling(const device *d);
// VKPHI_OK on a device that runs work; on one made for compiling, an error naming
// `what` (every allocation and submission asks first: the compile-only promise).
int device_check_runs(const device *d, const char *what);
void device_destroy(device *d);

const device_info *device_get_info(const device *d);
VkDevice device_vk(const device *d);
VkPhysicalDevice device_physical(const device *d);
VkQueue device_queue(const device *d);
uint32_t device_queue_family(const device *d);
// Messages the validation layer reported as warnings or errors since creation.
uint32_t device_validation_messages(const device *d);
// The same, summed over every device this process made (tests fail on any).
uint32_t device_validation_total(void);
// True when the logical device was created with this extension.
bool device_extension_enabled(const device *d, const char *name);
// One object a module above keeps per device (buffer.c's staging buffer): release
// runs in device_destroy, once the device is idle.
void *device_attached(const device *d);
void device_attach(device *d, void *obj, void (*release)(device *d, void *obj));
// Device-local bytes still free by the budget (or the heap size when no budget),
// in the largest device-local heap; of the simulated heaps under VKPHI_HEAPS.
uint64_t device_budget(const device *d);
// Refreshes info's heap budgets and usage from the driver (VK_EXT_memory_budget),
// for a plan made now; a no-op for simulated heaps.
void device_refresh_budgets(const device *d, device_info *info);

// The offset alignment vkphi binds storage buffers at: the device's
// minStorageBufferOffsetAlignment, at least 16 bytes (shaders read 16-byte words).
static inline uint64_t device_binding_align(const device_info *info) {
    return info->min_storage_offset_align > 16 ? info->min_storage_offset_align : 16;
}

const char *device_type_name(VkPhysicalDeviceType t);
const char *device_vendor_name(uint32_t vendor_id);
// Driver version as the vendor writes it (NVIDIA's 10.8.8.6 packing, Mesa's major.minor.patch).
void device_driver_version_str(const device_info *info, char *buf, size_t len);

// "VK_ERROR_OUT_OF_DEVICE_MEMORY" etc.
const char *vk_result_name(VkResult r);

// Checks a Vulkan call; on failure records "<call> failed: <result> (file:line)" and
// returns VKPHI_ERR_VULKAN (or VKPHI_ERR_NOMEM for the out-of-memory results) from the
// enclosing function. Active in release builds too.
#define VK_CHECK(call)                                                                     \
    do {                                                                                   \
        VkResult vk_check_r_ = (call);                                                     \
        if (vk_check_r_ != VK_SUCCESS)                                                     \
            return vk_check_fail(vk_check_r_, #call, __FILE__, __LINE__);                  \
    } while (0)
int vk_check_fail(VkResult r, const char *call, const char *file, int line);
