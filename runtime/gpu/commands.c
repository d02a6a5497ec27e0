// SPDX-License-Identifier: MIT
#include "commands.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

// Descriptor sets per context when there are no push descriptors: enough for a
// whole forward pass of a large model (40 layers x ~20 dispatches).
#define CMD_MAX_SETS 4096

struct cmd_ctx {
    device *dev;
    VkCommandPool pool;
    VkCommandBuffer cb;
    VkFence fence;
    VkDescriptorPool dpool;
    VkQueryPool queries;
    bool recording, in_flight;
    bool recorded; // ended by cmd_end: cmd_resubmit may submit it
    uint32_t n_dispatch, n_barrier; // recorded in the buffer: counted as run at each submission
    int error; // first recording error, returned by cmd_submit
    uint32_t n_ts;
    const char *ts_labels[CMD_MAX_TIMESTAMPS];
};

static cmd_counters counters; // updated atomically: several server threads record

void cmd_counters_get(cmd_counters *out) {
    out->recordings = __atomic_load_n(&counters.recordings, __ATOMIC_RELAXED);
    out->dispatches = __atomic_load_n(&counters.dispatches, __ATOMIC_RELAXED);
    out->barriers = __atomic_load_n(&counters.barriers, __ATOMIC_RELAXED);
    out->submits = __atomic_load_n(&counters.submits, __ATOMIC_RELAXED);
}
#define COUNT(field) __atomic_fetch_add(&counters.field, 1, __ATOMIC_RELAXED)

int cmd_create(device *d, cmd_ctx **out) {
    cmd_ctx *c = calloc(1, sizeof *c);
    if (!c) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    c->dev = d;
    *out = c;
    VkDevice vk = device_vk(d);
    VkCommandPoolCreateInfo pi = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pi.queueFamilyIndex = device_queue_family(d);
    VK_CHECK(vkCreateCommandPool(vk, &pi, NULL, &c->pool));
    VkCommandBufferAllocateInfo ai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = c->pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VK_CHECK(vkAllocateCommandBuffers(vk, &ai, &c->cb));
    VkFenceCreateInfo fi = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(vk, &fi, NULL, &c->fence));
    if (!device_get_info(d)->push_descriptor) {
        VkDescriptorPoolSize ps = {VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, CMD_MAX_SETS * 8};
        VkDescriptorPoolCreateInfo dp = {VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
        dp.maxSets = CMD_MAX_SETS;
        dp.poolSizeCount = 1;
        dp.pPoolSizes = &ps;
        VK_CHECK(vkCreateDescriptorPool(vk, &dp, NULL, &c->dpool));
    }
    if (device_get_info(d)->timestamps) {
        VkQueryPoolCreateInfo qi = {VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
        qi.queryType = VK_QUERY_TYPE_TIMESTAMP;
        qi.queryCount = CMD_MAX_TIMESTAMPS;
        VK_CHECK(vkCreateQueryPool(vk, &qi, NULL, &c->queries));
    }
    return VKPHI_OK;
}

void cmd_destroy(cmd_ctx *c) {
    if (!c) return;
    VkDevice vk = device_vk(c->dev);
    if (c->in_flight) vkWaitForFences(vk, 1, &c->fence, VK_TRUE, UINT64_MAX);
    if (c->queries) vkDestroyQueryPool(vk, c->queries, NULL);
    if (c->dpool) vkDestroyDescriptorPool(vk, c->dpool, NULL);
    if (c->fence) vkDestroyFence(vk, c->fence, NULL);
    if (c->pool) vkDestroyCommandPool(vk, c->pool, NULL);
    free(c);
}

device *cmd_device(const cmd_ctx *c) { return c->dev; }

int cmd_wait(cmd_ctx *c) {
    if (!c->in_flight) return VKPHI_OK;
    VkResult r = vkWaitForFences(device_vk(c->dev), 1, &c->fence, VK_TRUE, UINT64_MAX);
    c->in_flight = false;
    VK_CHECK(r);
    VK_CHECK(vkResetFences(device_vk(c->dev), 1, &c->fence));
    return VKPHI_OK;
}

static int begin(cmd_ctx *c, bool reusable) {
    int rc = cmd_wait(c);
    if (rc) return rc;
    c->error = 0;
    c->n_ts = 0;
    c->recorded = false;
    c->n_dispatch = c->n_barrier = 0;
    VK_CHECK(vkResetCommandBuffer(c->cb, 0));
    if (c->dpool) VK_CHECK(vkResetDescriptorPool(device_vk(c->dev), c->dpool, 0));
    VkCommandBufferBeginInfo bi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = reusable ? 0 : VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VK_CHECK(vkBeginCommandBuffer(c->cb, &bi));
    if (c->queries) vkCmdResetQueryPool(c->cb, c->queries, 0, CMD_MAX_TIMESTAMPS);
    c->recording = true;
    COUNT(recordings);
    return VKPHI_OK;
}

int cmd_begin(cmd_ctx *c) { return begin(c, false); }
int cmd_begin_reusable(cmd_ctx *c) { return begin(c, true); }

// Binds the pipeline, its buffers and push constants; false (and c->error set) on
// a bad call.
static bool bind(cmd_ctx *c, const pipeline *p, const buf_view *views, uint32_t n_views, const void *push,
                 uint32_t push_size) {
    const device_info *info = device_get_info(c->dev);
    VkDescriptorBufferInfo bi[16];
    VkWriteDescriptorSet w[16];
    for (uint32_t i = 0; i < n_views; i++) {
        if (views[i].range > info->max_storage_buffer_range || views[i].offset % info->min_storage_offset_align) {
            c->error = vkphi_fail(VKPHI_ERR_ARG, "%s binding %u: range %llu at offset %llu breaks the device's storage-buffer limits",
                                  p->name, i, (unsigned long long)views[i].range, (unsigned long long)views[i].offset);
            return false;
        }
        bi[i] = (VkDescriptorBufferInfo){views[i].buf->vk, views[i].offset, views[i].range};
        w[i] = (VkWriteDescriptorSet){VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
        w[i].dstBinding = i;
        w[i].descriptorCount = 1;
        w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
        w[i].pBufferInfo = &bi[i];
    }
    vkCmdBindPipeline(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->vk);
    if (p->push_descriptor) {
        vkCmdPushDescriptorSetKHR(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, n_views, w);
    } else {
        VkDescriptorSetAllocateInfo ai = {VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
        ai.descriptorPool = c->dpool;
        ai.descriptorSetCount = 1;
        ai.pSetLayouts = &p->set_layout;
        VkDescriptorSet set;
        VkResult r = vkAllocateDescriptorSets(device_vk(c->dev), &ai, &set);
        if (r != VK_SUCCESS) {
            c->error = vkphi_fail(VKPHI_ERR_VULKAN, "out of descriptor sets in one command buffer (%s)", vk_result_name(r));
            return false;
        }
        for (uint32_t i = 0; i < n_views; i++) w[i].dstSet = set;
        vkUpdateDescriptorSets(device_vk(c->dev), n_views, w, 0, NULL);
        vkCmdBindDescriptorSets(c->cb, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, 1, &set, 0, NULL);
    }
    if (push_size) vkCmdPushConstants(c->cb, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, push_size, push);
    return true;
}

static bool check_call(cmd_ctx *c, const pipeline *p, uint32_t n_views, uint32_t push_size) {
    if (c->error) return false;
    if (n_views != p->n_bindings || push_size != p->push_size) {
        c->error = vkphi_fail(VKPHI_ERR_ARG, "dispatch of %s with %u buffers and %u bytes of push constants; it takes %u and %u",
                              p->name, n_views, push_size, p->n_bindings, p->push_size);
        return false;
    }
    return true;
}

void cmd_dispatch(cmd_ctx *c, const pipeline *p, const buf_view *views, uint32_t n_views, const void *push,
                  uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz) {
    if (!check_call(c, p, n_views, push_size)) return;
    if (gx == 0 || gy == 0 || gz == 0) return;
    const device_info *info = device_get_info(c->dev);
    if (gx > info->max_workgroup_count[0] || gy > info->max_workgroup_count[1] || gz > info->max_workgroup_count[2]) {
        c->error = vkphi_fail(VKPHI_ERR_UNSUPPORTED, "dispatch of %s with %u x %u x %u workgroups exceeds the device limit",
                              p->name, gx, gy, gz);
        return;
    }
    if (!bind(c, p, views, n_views, push, push_size)) return;
    vkCmdDispatch(c->cb, gx, gy, gz);
    c->n_dispatch++;
}

void cmd_dispatch_indirect(cmd_ctx *c, const pipeline *p, const buf_view *views, uint32_t n_views, const void *push,
                           uint32_t push_size, buf_view args) {
    if (!check_call(c, p, n_views, push_size) || !bind(c, p, views, n_views, push, push_size)) return;
    vkCmdDispatchIndirect(c->cb, args.buf->vk, args.offset);
    c->n_dispatch++;
}

void cmd_barrier(cmd_ctx *c) {
    VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_READ_BIT |
                       VK_ACCESS_TRANSFER_WRITE_BIT;
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0,
                         NULL);
    c->n_barrier++;
}

void cmd_copy(cmd_ctx *c, const gpu_buffer *src, uint64_t src_off, const gpu_buffer *dst, uint64_t dst_off, uint64_t size) {
    VkBufferCopy region = {src_off, dst_off, size};
    vkCmdCopyBuffer(c->cb, src->vk, dst->vk, 1, &region);
}

void cmd_fill_zero(cmd_ctx *c, const gpu_buffer *dst, uint64_t offset, uint64_t size) {
    vkCmdFillBuffer(c->cb, dst->vk, offset, size, 0);
}

void cmd_timestamp(cmd_ctx *c, const char *label) {
    if (!c->queries || c->n_ts >= CMD_MAX_TIMESTAMPS) return;
    c->ts_labels[c->n_ts] = label;
    vkCmdWriteTimestamp(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, c->queries, c->n_ts);
    c->n_ts++;
}

int cmd_end(cmd_ctx *c) {
    if (!c->recording) return vkphi_fail(VKPHI_ERR_ARG, "cmd_end without cmd_begin");
    c->recording = false;
    // Make results visible to the host (logits readback through a mapped buffer).
    VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(c->cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VK_CHECK(vkEndCommandBuffer(c->cb));
    if (c->error) return c->error;
    c->recorded = true;
    return VKPHI_OK;
}

int cmd_resubmit(cmd_ctx *c, bool wait) {
    if (!c->recorded) return vkphi_fail(VKPHI_ERR_ARG, "cmd_resubmit of a buffer that was not recorded to the end");
    int rc = cmd_wait(c);
    if (!rc) rc = device_check_runs(c->dev, "work submitted");
    if (rc) return rc;
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &c->cb;
    VK_CHECK(vkQueueSubmit(device_queue(c->dev), 1, &si, c->fence));
    COUNT(submits);
    __atomic_fetch_add(&counters.dispatches, c->n_dispatch, __ATOMIC_RELAXED);
    __atomic_fetch_add(&counters.barriers, c->n_barrier, __ATOMIC_RELAXED);
    c->in_flight = true;
    return wait ? cmd_wait(c) : VKPHI_OK;
}

int cmd_submit(cmd_ctx *c, bool wait) {
    int rc = cmd_end(c);
    if (!rc) rc = cmd_resubmit(c, wait);
    c->recorded = false; // recorded for one submission (VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT)
    return rc;
}

uint32_t cmd_timestamps(cmd_ctx *c, const char **labels, double *ms, uint32_t max) {
    uint32_t n = c->n_ts < max ? c->n_ts : max;
    if (!c->queries || n == 0) return 0;
    uint64_t ticks[CMD_MAX_TIMESTAMPS];
    if (vkGetQueryPoolResults(device_vk(c->dev), c->queries, 0, n, sizeof ticks, ticks, sizeof ticks[0],
                              VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT) != VK_SUCCESS)
        return 0;
    const device_info *info = device_get_info(c->dev);
    for (uint32_t i = 0; i < n; i++) {
        labels[i] = c->ts_labels[i];
        ms[i] = (double)cmd_ticks_between(ticks[0], ticks[i], info->timestamp_bits) * info->timestamp_period_ns * 1e-6;
    }
    return n;
}
