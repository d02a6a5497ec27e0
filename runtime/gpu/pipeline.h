// SPDX-License-Identifier: MIT
// Compute pipelines from the embedded SPIR-V, with specialization and push
// constants, through a VkPipelineCache kept on disk per device and driver.
#pragma once
#include <stdint.h>

#include "device.h"
#include "pipeline_stats.h"
#include "shader_code.h"

#define PIPELINE_MAX_SPEC 8

// Specialization constant i of the shader gets spec[i] (constant_id = i). By
// convention constant 0 is the workgroup size (local_size_x_id = 0).
typedef struct pipeline_desc {
    const struct shader_code *code; // the module: an entry of a table cmake/shaders.cmake generates
    uint32_t n_bindings;  // storage buffers at bindings 0..n-1 of set 0
    uint32_t push_size;   // bytes of push constants
    uint32_t n_spec;
    uint32_t spec[PIPELINE_MAX_SPEC];
    uint32_t subgroup_size; // require this subgroup size (0: the driver's choice)
    uint32_t shared_bytes;  // workgroup shared memory the kernel declares at these constants
} pipeline_desc;

typedef struct pipeline {
    VkPipeline vk;
    VkPipelineLayout layout;
    VkDescriptorSetLayout set_layout;
    uint32_t n_bindings, push_size;
    uint32_t local_size; // spec[0]
    uint32_t spec[PIPELINE_MAX_SPEC];
    uint32_t subgroup_size, shared_bytes; // as the description asked
    bool push_descriptor;
    const char *name;
} pipeline;

typedef struct pipeline_cache pipeline_cache;
// Loads $XDG_CACHE_HOME/vkphi/pipelines-<device>-<driver>.bin when present.
pipeline_cache *pipeline_cache_open(device *d);
// Saves the cache back to disk (best effort) and frees it.
void pipeline_cache_close(device *d, pipeline_cache *c);

int pipeline_create(device *d, pipeline_cache *c, const pipeline_desc *desc, pipeline *out);
void pipeline_destroy(device *d, pipeline *p);
// The compiler's figures for p (pipeline_stats.h): on a device from
// device_create_compiler whose driver offers them (device_info.pipeline_stats);
// out->n is 0 elsewhere.
int pipeline_get_stats(device *d, const pipeline *p, pipeline_stats *out);
