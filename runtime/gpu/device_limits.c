// SPDX-License-Identifier: MIT
// VKPHI_LIMITS and VKPHI_HEAPS (device.h): stricter limits and simulated memory
// heaps for tests, parsed from the environment (with VKPHI_VALIDATE) and applied
// to each probed device, so that the suite runs the paths of other GPUs on lavapipe.
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "device_internal.h"
#include "env.h"

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
int device_limits_parse(limits_override *l) {
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
            return vkphi_fail(VKPHI_ERR_ARG, "%s: unknown entry '%s%s%s' (see runtime/gpu/device.h)", DEVICE_LIMITS_ENV, key,
                              val ? "=" : "", val ? val : "");
        if (!ok)
            return vkphi_fail(VKPHI_ERR_ARG, "%s: '%s=%s' is not a valid value", DEVICE_LIMITS_ENV, key, val);
    }
    return VKPHI_OK;
}

// After device_limits_apply: a simulated device heap is host-visible only where the
// (possibly overridden) device has unified memory.
void device_heaps_apply(const limits_override *l, device_info *info) {
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
void device_limits_apply(const limits_override *l, device_info *info) {
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
    if (l->no_fp16) info->fp16 = false;
    if (l->no_coopmat || !info->fp16) { // the kernels need both (the shapes stay listed)
        info->coopmat = false;
        info->coopmat_m = info->coopmat_n = info->coopmat_k = 0;
    }
}
#undef LOWER
