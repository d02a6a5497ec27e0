// SPDX-License-Identifier: MIT
#include "pipeline.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"

struct pipeline_cache {
    VkPipelineCache vk;
    char path[1024];
};

pipeline_cache *pipeline_cache_open(device *d) {
    pipeline_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    const device_info *info = device_get_info(d);
    char dir[900];
    void *data = NULL;
    size_t size = 0;
    if (vkphi_cache_dir(dir, sizeof dir) == VKPHI_OK) {
        char uuid[2 * VK_UUID_SIZE + 1];
        for (unsigned i = 0; i < VK_UUID_SIZE; i++) snprintf(uuid + 2 * i, 3, "%02x", info->pipeline_cache_uuid[i]);
        snprintf(c->path, sizeof c->path, "%s/pipelines-%04x-%04x-%08x-%s.bin", dir, info->vendor_id, info->device_id,
                 info->driver_version, uuid);
        FILE *f = fopen(c->path, "rb");
        if (f) {
            fseek(f, 0, SEEK_END);
            long n = ftell(f);
            fseek(f, 0, SEEK_SET);
            if (n > 0 && (data = malloc((size_t)n)) && fread(data, 1, (size_t)n, f) == (size_t)n) size = (size_t)n;
            fclose(f);
        }
    }
    VkPipelineCacheCreateInfo ci = {VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
    ci.initialDataSize = size;
    ci.pInitialData = size ? data : NULL;
    // The driver validates the header (vendor, device, UUID) and ignores a stale cache.
    if (vkCreatePipelineCache(device_vk(d), &ci, NULL, &c->vk) != VK_SUCCESS) {
        ci.initialDataSize = 0;
        ci.pInitialData = NULL;
        if (vkCreatePipelineCache(device_vk(d), &ci, NULL, &c->vk) != VK_SUCCESS) c->vk = VK_NULL_HANDLE;
    }
    free(data);
    return c;
}

void pipeline_cache_close(device *d, pipeline_cache *c) {
    if (!c) return;
    if (c->vk && c->path[0]) {
        size_t size = 0;
        if (vkGetPipelineCacheData(device_vk(d), c->vk, &size, NULL) == VK_SUCCESS && size > 0) {
            void *data = malloc(size);
            if (data && vkGetPipelineCacheData(device_vk(d), c->vk, &size, data) == VK_SUCCESS) {
                char tmp[1100];
                snprintf(tmp, sizeof tmp, "%s.%d.tmp", c->path, (int)getpid());
                FILE *f = fopen(tmp, "wb");
                if (f) {
                    bool ok = fwrite(data, 1, size, f) == size;
                    ok = fclose(f) == 0 && ok;
                    if (ok) rename(tmp, c->path); // atomic: concurrent processes never see half a file
                    else remove(tmp);
                }
            }
            free(data);
        }
    }
    if (c->vk) vkDestroyPipelineCache(device_vk(d), c->vk, NULL);
    free(c);
}

// True when the SPIR-V module declares capability `cap` (OpCapability = opcode 17).
static bool spirv_has_capability(const struct shader_code *code, uint32_t cap) {
    const uint32_t *w = code->code;
    size_t n = code->size / 4;
    for (size_t i = 5; i < n;) { // after the 5-word header: word count << 16 | opcode
        uint32_t len = w[i] >> 16, op = w[i] & 0xffff;
        if (len == 0) break;
        if (op == 17 && len == 2 && w[i + 1] == cap) return true;
        i += len;
    }
    return false;
}
#define SPV_CAPABILITY_GROUP_NON_UNIFORM_ARITHMETIC 63

int pipeline_create(device *d, pipeline_cache *c, const pipeline_desc *desc, pipeline *out) {
    memset(out, 0, sizeof *out);
    const device_info *info = device_get_info(d);
    const struct shader_code *code = desc->code;
    if (!code) return vkphi_fail(VKPHI_ERR_ARG, "a pipeline without a shader");
    // Without subgroup arithmetic in compute shaders, the build of the kernel that
    // does not declare it (its reductions go through shared memory).
    if (!info->subgroup_arith && code->nosg) code = code->nosg;
    if (!info->subgroup_arith && spirv_has_capability(code, SPV_CAPABILITY_GROUP_NON_UNIFORM_ARITHMETIC))
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "shader %s uses subgroup arithmetic, which %s does not offer to compute "
                          "shaders", code->name, info->name);
    uint32_t wg = desc->n_spec ? desc->spec[0] : 1;
    if (wg > info->max_workgroup_invocations)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "shader %s needs workgroups of %u invocations; %s allows %u", code->name,
                          wg, info->name, info->max_workgroup_invocations);
    if (desc->shared_bytes > info->max_shared_memory)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "shader %s needs %u bytes of shared memory; %s has %u", code->name,
                          desc->shared_bytes, info->name, info->max_shared_memory);
    out->n_bindings = desc->n_bindings;
    out->push_size = desc->push_size;
    out->local_size = desc->n_spec ? desc->spec[0] : 1;
    out->push_descriptor = info->push_descriptor;
    memcpy(out->spec, desc->spec, sizeof out->spec);
    out->subgroup_size = desc->subgroup_size && info->subgroup_size_control ? desc->subgroup_size : 0;
    out->shared_bytes = desc->shared_bytes;
    out->name = code->name;
    if (desc->push_size > info->max_push_constants)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "shader %s needs %u bytes of push constants; the device has %u",
                          code->name, desc->push_size, info->max_push_constants);

    VkDescriptorSetLayoutBinding b[16];
    for (uint32_t i = 0; i < desc->n_bindings; i++)
        b[i] = (VkDescriptorSetLayoutBinding){i, VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, 1, VK_SHADER_STAGE_COMPUTE_BIT, NULL};
    VkDescriptorSetLayoutCreateInfo dl = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
    dl.flags = out->push_descriptor ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR : 0;
    dl.bindingCount = desc->n_bindings;
    dl.pBindings = b;
    VK_CHECK(vkCreateDescriptorSetLayout(device_vk(d), &dl, NULL, &out->set_layout));

    VkPushConstantRange pr = {VK_SHADER_STAGE_COMPUTE_BIT, 0, desc->push_size};
    VkPipelineLayoutCreateInfo pl = {VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
    pl.setLayoutCount = 1;
    pl.pSetLayouts = &out->set_layout;
    pl.pushConstantRangeCount = desc->push_size ? 1 : 0;
    pl.pPushConstantRanges = &pr;
    VK_CHECK(vkCreatePipelineLayout(device_vk(d), &pl, NULL, &out->layout));

    VkShaderModuleCreateInfo mi = {VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
    mi.codeSize = code->size;
    mi.pCode = code->code;
    VkShaderModule module;
    VK_CHECK(vkCreateShaderModule(device_vk(d), &mi, NULL, &module));

    VkSpecializationMapEntry entries[PIPELINE_MAX_SPEC];
    for (uint32_t i = 0; i < desc->n_spec; i++) entries[i] = (VkSpecializationMapEntry){i, i * 4, 4};
    VkSpecializationInfo si = {desc->n_spec, entries, desc->n_spec * 4u, desc->spec};
    VkPipelineShaderStageRequiredSubgroupSizeCreateInfo rs = {
        VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_REQUIRED_SUBGROUP_SIZE_CREATE_INFO};
    rs.requiredSubgroupSize = desc->subgroup_size;
    VkComputePipelineCreateInfo ci = {VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
    ci.stage = (VkPipelineShaderStageCreateInfo){VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
    ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
    ci.stage.module = module;
    ci.stage.pName = "main";
    ci.stage.pSpecializationInfo = desc->n_spec ? &si : NULL;
    if (desc->subgroup_size && info->subgroup_size_control) {
        ci.stage.pNext = &rs;
        if (info->compute_full_subgroups && out->local_size % desc->subgroup_size == 0)
            ci.stage.flags |= VK_PIPELINE_SHADER_STAGE_CREATE_REQUIRE_FULL_SUBGROUPS_BIT;
    }
    ci.layout = out->layout;
    if (device_for_compiling(d) && info->pipeline_stats) ci.flags |= VK_PIPELINE_CREATE_CAPTURE_STATISTICS_BIT_KHR;
    VkResult r = vkCreateComputePipelines(device_vk(d), c ? c->vk : VK_NULL_HANDLE, 1, &ci, NULL, &out->vk);
    vkDestroyShaderModule(device_vk(d), module, NULL);
    if (r != VK_SUCCESS) {
        pipeline_destroy(d, out);
        return vkphi_fail(VKPHI_ERR_VULKAN, "could not create the compute pipeline for shader %s: %s", code->name,
                          vk_result_name(r));
    }
    return VKPHI_OK;
}

int pipeline_get_stats(device *d, const pipeline *p, pipeline_stats *out) {
    memset(out, 0, sizeof *out);
    if (!device_for_compiling(d) || !device_get_info(d)->pipeline_stats) return VKPHI_OK;
    // A compute pipeline has one executable: its shader.
    VkPipelineExecutableInfoKHR ei = {VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_INFO_KHR};
    ei.pipeline = p->vk;
    ei.executableIndex = 0;
    VkPipelineExecutableStatisticKHR st[PIPELINE_MAX_STATS];
    uint32_t n = PIPELINE_MAX_STATS;
    for (uint32_t i = 0; i < n; i++) st[i] = (VkPipelineExecutableStatisticKHR){VK_STRUCTURE_TYPE_PIPELINE_EXECUTABLE_STATISTIC_KHR};
    VkResult r = vkGetPipelineExecutableStatisticsKHR(device_vk(d), &ei, &n, st);
    if (r != VK_SUCCESS && r != VK_INCOMPLETE) return vk_check_fail(r, "vkGetPipelineExecutableStatisticsKHR", __FILE__, __LINE__);
    for (uint32_t i = 0; i < n; i++) {
        pipeline_stat *o = &out->stat[out->n++];
        snprintf(o->name, sizeof o->name, "%s", st[i].name);
        switch (st[i].format) {
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_BOOL32_KHR: o->value = st[i].value.b32; break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_INT64_KHR: o->value = (double)st[i].value.i64; break;
        case VK_PIPELINE_EXECUTABLE_STATISTIC_FORMAT_UINT64_KHR: o->value = (double)st[i].value.u64; break;
        default: o->value = st[i].value.f64; break;
        }
    }
    return VKPHI_OK;
}

void pipeline_destroy(device *d, pipeline *p) {
    if (p->vk) vkDestroyPipeline(device_vk(d), p->vk, NULL);
    if (p->layout) vkDestroyPipelineLayout(device_vk(d), p->layout, NULL);
    if (p->set_layout) vkDestroyDescriptorSetLayout(device_vk(d), p->set_layout, NULL);
    memset(p, 0, sizeof *p);
}
