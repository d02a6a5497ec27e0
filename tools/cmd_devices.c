// SPDX-License-Identifier: MIT
// vkphi devices: what each Vulkan device offers.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "subcommands.h"
#include "vkphi.h"

static const char *yn(bool b) { return b ? "yes" : "no"; }

// VkComponentTypeKHR and VkScopeKHR values, as the registry names them.
static const char *component_name(uint32_t t) {
    static const char *names[] = {"f16", "f32", "f64", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64"};
    if (t < sizeof names / sizeof names[0]) return names[t];
    switch (t) {
    case 1000141000: return "bf16";
    case 1000491000: return "s8x4";
    case 1000491001: return "u8x4";
    case 1000491002: return "e4m3";
    case 1000491003: return "e5m2";
    default: return "?";
    }
}
static const char *scope_name(uint32_t s) {
    return s == 1 ? "device" : s == 2 ? "workgroup" : s == 3 ? "subgroup" : s == 5 ? "queue-family" : "?";
}

int cmd_devices(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: vkphi devices\n\nLists every Vulkan device: name, vendor, driver, memory heaps and budget,\n"
                   "storage-buffer and allocation limits, subgroup sizes, and which of fp16, int8,\n"
                   "integer dot product and cooperative matrix it supports (with every\n"
                   "cooperative-matrix shape, MxNxK, and its types). Pick one for other\n"
                   "commands with --device N or VKPHI_DEVICE=N.\n");
            return 0;
        }
        fprintf(stderr, "vkphi: error: unknown option '%s' for devices\n", argv[i]);
        return 1;
    }
    device_info *infos;
    uint32_t n;
    if (device_list(&infos, &n) != VKPHI_OK) {
        fprintf(stderr, "vkphi: error: %s\n", vkphi_last_error());
        return 1;
    }
    if (n == 0) printf("no Vulkan devices found\n");
    for (uint32_t i = 0; i < n; i++) {
        const device_info *d = &infos[i];
        char drv[64];
        device_driver_version_str(d, drv, sizeof drv);
        printf("device %u: %s\n", d->index, d->name);
        printf("  vendor:                  %s (0x%04x), device id 0x%04x\n", device_vendor_name(d->vendor_id), d->vendor_id,
               d->device_id);
        printf("  driver:                  %s %s (%s)\n", d->driver_name, d->driver_info, drv);
        printf("  type:                    %s\n", device_type_name(d->type));
        printf("  vulkan:                  %u.%u.%u (used at %u.%u)\n", VK_API_VERSION_MAJOR(d->api_version),
               VK_API_VERSION_MINOR(d->api_version), VK_API_VERSION_PATCH(d->api_version),
               VK_API_VERSION_MAJOR(d->effective_api), VK_API_VERSION_MINOR(d->effective_api));
        for (uint32_t h = 0; h < d->n_heaps; h++) {
            char sz[24];
            printf("  memory heap %u:           %s%s", h, memory_size_str(d->heaps[h].size, sz),
                   d->heaps[h].device_local ? ", device-local" : ", host");
            if (d->heaps[h].budget) printf(", budget %s", memory_size_str(d->heaps[h].budget, sz));
            printf("%s\n", d->heaps_simulated ? " (simulated by VKPHI_HEAPS)" : "");
        }
        if (d->limits[0]) printf("  limits:                  stricter than the driver's, by VKPHI_LIMITS=%s\n", d->limits);
        printf("  unified memory:          %s\n", yn(d->unified_memory));
        printf("  maxStorageBufferRange:   %llu bytes\n", (unsigned long long)d->max_storage_buffer_range);
        printf("  maxMemoryAllocationSize: %llu bytes\n", (unsigned long long)d->max_alloc_size);
        printf("  storage offset align:    %llu bytes\n", (unsigned long long)d->min_storage_offset_align);
        printf("  subgroup size:           %u (min %u, max %u%s)\n", d->subgroup_size, d->subgroup_min, d->subgroup_max,
               d->subgroup_size_control ? ", controllable" : "");
        printf("  subgroup arithmetic:     %s\n", yn(d->subgroup_arith));
        printf("  shared memory:           %u bytes per workgroup\n", d->max_shared_memory);
        printf("  workgroup invocations:   %u\n", d->max_workgroup_invocations);
        printf("  push descriptors:        %s\n", yn(d->push_descriptor));
        printf("  fp16 arithmetic:         %s\n", yn(d->fp16));
        printf("  int8 arithmetic:         %s\n", yn(d->int8));
        printf("  16/8-bit storage:        %s / %s\n", yn(d->storage16), yn(d->storage8));
        printf("  integer dot product:     %s\n", yn(d->int_dot));
        if (d->coopmat)
            printf("  cooperative matrix:      yes, kernels use %ux%ux%u f16 x f16 -> f32\n", d->coopmat_m, d->coopmat_n,
                   d->coopmat_k);
        else
            printf("  cooperative matrix:      no%s\n", d->n_coopmat_shapes ? " (no shape or feature the kernels can use)" : "");
        for (uint32_t s = 0; s < d->n_coopmat_shapes; s++) {
            const device_coopmat_shape *c = &d->coopmat_shapes[s];
            char shape[40];
            snprintf(shape, sizeof shape, "%ux%ux%u", c->m, c->n, c->k);
            printf("    %-9s A %s, B %s, C %s, result %s, %s scope%s\n", shape, component_name(c->a_type),
                   component_name(c->b_type), component_name(c->c_type), component_name(c->result_type),
                   scope_name(c->scope), c->saturating ? ", saturating" : "");
        }
        if (d->timestamps) printf("  timestamps:              yes, %u valid bits\n", d->timestamp_bits);
        else printf("  timestamps:              no\n");
        printf("  compiler statistics:     %s\n", d->pipeline_stats ? "yes (vkphi kernels --stats)" : "no");
        kernel_path_choice paths[KERNEL_POLICY_PATHS];
        uint32_t np = kernel_report_policy(d, paths);
        for (uint32_t p = 0; p < np; p++)
            printf("  %-24s %s: %s\n", paths[p].path, paths[p].value, paths[p].why);
        if (d->compile_only) printf("  compiles only:           yes (RADV_FORCE_FAMILY without that GPU): vkphi kernels\n");
        if (i + 1 < n) printf("\n");
    }
    free(infos);
    return 0;
}
