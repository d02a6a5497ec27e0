// SPDX-License-Identifier: MIT
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "memory.h"

#define STAGING_BYTES (64ull << 20)

// The reusable staging buffer for discrete GPUs, made on first use.
struct staging {
    gpu_buffer buf;
    VkCommandPool pool;
    VkCommandBuffer cmd;
    VkFence fence;
};

static int find_memory_type(device *d, uint32_t type_bits, VkMemoryPropertyFlags want, VkMemoryPropertyFlags prefer) {
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(device_physical(d), &mp);
    return memory_type_pick(&mp, type_bits, want, prefer);
}

int buffer_create(device *d, uint64_t size, enum buffer_kind kind, const char *what, gpu_buffer *out) {
    memset(out, 0, sizeof *out);
    const device_info *info = device_get_info(d);
    int rc = device_check_runs(d, "a buffer allocated");
    if (rc) return rc;
    // Whole 16-byte units: shaders read packed 16-bit data as uints and vec4s.
    size = size ? (size + 15) & ~15ull : 16;
    if (size > info->max_alloc_size)
        return vkphi_fail(VKPHI_ERR_NOMEM, "%s needs %.1f MiB in one allocation, more than this device allows (%.1f MiB)",
                          what, size / 1048576.0, info->max_alloc_size / 1048576.0);
    VkBufferCreateInfo bi = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT |
               VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkResult r = vkCreateBuffer(device_vk(d), &bi, NULL, &out->vk);
    if (r != VK_SUCCESS)
        return vkphi_fail(VKPHI_ERR_NOMEM, "could not create %s (%.1f MiB): %s", what, size / 1048576.0, vk_result_name(r));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_vk(d), out->vk, &req);

    const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
    int type = -1;
    if (kind == BUFFER_HOST) {
        type = find_memory_type(d, req.memoryTypeBits, hv, VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
    } else if (info->unified_memory) {
        type = find_memory_type(d, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | hv, 0);
    }
    if (type < 0 && kind == BUFFER_DEVICE)
        type = find_memory_type(d, req.memoryTypeBits, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT, 0);
    if (type < 0) {
        buffer_destroy(d, out);
        return vkphi_fail(VKPHI_ERR_VULKAN, "no suitable memory type for %s", what);
    }
    VkMemoryAllocateInfo ai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = req.size;
    ai.memoryTypeIndex = (uint32_t)type;
    r = vkAllocateMemory(device_vk(d), &ai, NULL, &out->mem);
    bool spilled = false;
    if ((r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) && kind == BUFFER_DEVICE) {
        // Device-local memory is full: host-visible system memory, which the GPU
        // reads over the bus, still works (memory.h's host place).
        VkPhysicalDeviceMemoryProperties mp;
        vkGetPhysicalDeviceMemoryProperties(device_physical(d), &mp);
        int heap[MEM_N_PLACES];
        memory_pick_heaps(info, heap);
        int host = heap[MEM_HOST] >= 0 ? memory_type_for(info, &mp, req.memoryTypeBits, MEM_HOST, heap[MEM_HOST]) : -1;
        if (host >= 0 && host != type) {
            ai.memoryTypeIndex = (uint32_t)(type = host);
            r = vkAllocateMemory(device_vk(d), &ai, NULL, &out->mem);
            spilled = r == VK_SUCCESS;
        }
    }
    if (r != VK_SUCCESS) {
        buffer_destroy(d, out);
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of device memory: %s needs %.1f MiB and the device has %.1f MiB free (%s)",
                          what, size / 1048576.0, device_budget(d) / 1048576.0, vk_result_name(r));
    }
    VK_CHECK(vkBindBufferMemory(device_vk(d), out->vk, out->mem, 0));
    // Mapped only where writes land without flushes (host-coherent), and device
    // buffers only on unified memory: on a discrete GPU a host-visible VRAM type is
    // read by the host over the bus, and the staging path is the one to use.
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(device_physical(d), &mp);
    VkMemoryPropertyFlags f = mp.memoryTypes[type].propertyFlags;
    if ((f & hv) == hv && (kind == BUFFER_HOST || info->unified_memory || spilled))
        VK_CHECK(vkMapMemory(device_vk(d), out->mem, 0, VK_WHOLE_SIZE, 0, &out->mapped));
    out->size = size;
    return VKPHI_OK;
}

void buffer_destroy(device *d, gpu_buffer *b) {
    if (b->vk) vkDestroyBuffer(device_vk(d), b->vk, NULL);
    if (b->mem) vkFreeMemory(device_vk(d), b->mem, NULL);
    memset(b, 0, sizeof *b);
}

static void staging_release(device *d, void *obj) {
    struct staging *s = obj;
    if (s->fence) vkDestroyFence(device_vk(d), s->fence, NULL);
    if (s->pool) vkDestroyCommandPool(device_vk(d), s->pool, NULL);
    buffer_destroy(d, &s->buf);
    free(s);
}

static int staging_get(device *d, struct staging **out) {
    if ((*out = device_attached(d))) return VKPHI_OK;
    struct staging *s = calloc(1, sizeof *s);
    if (!s) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    // Within maxMemoryAllocationSize: larger copies go through it in pieces.
    uint64_t bytes = device_get_info(d)->max_alloc_size & ~15ull;
    if (!bytes || bytes > STAGING_BYTES) bytes = STAGING_BYTES;
    int rc = buffer_create(d, bytes, BUFFER_HOST, "the staging buffer", &s->buf);
    if (rc) { free(s); return rc; }
    device_attach(d, s, staging_release);
    VkCommandPoolCreateInfo pi = {VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
    pi.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
    pi.queueFamilyIndex = device_queue_family(d);
    VK_CHECK(vkCreateCommandPool(device_vk(d), &pi, NULL, &s->pool));
    VkCommandBufferAllocateInfo ai = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
    ai.commandPool = s->pool;
    ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
    ai.commandBufferCount = 1;
    VK_CHECK(vkAllocateCommandBuffers(device_vk(d), &ai, &s->cmd));
    VkFenceCreateInfo fi = {VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    VK_CHECK(vkCreateFence(device_vk(d), &fi, NULL, &s->fence));
    *out = s;
    return VKPHI_OK;
}

// One copy between the staging buffer and b, submitted and waited for.
static int staging_copy(device *d, struct staging *s, const gpu_buffer *b, uint64_t offset, uint64_t size, bool to_device) {
    VkCommandBufferBeginInfo bi = {VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
    bi.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT;
    VK_CHECK(vkResetCommandBuffer(s->cmd, 0));
    VK_CHECK(vkBeginCommandBuffer(s->cmd, &bi));
    // Earlier compute work on b must finish before the copy reads or overwrites it.
    VkMemoryBarrier mb = {VK_STRUCTURE_TYPE_MEMORY_BARRIER};
    mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT;
    mb.dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VkBufferCopy region = {to_device ? 0 : offset, to_device ? offset : 0, size};
    if (to_device)
        vkCmdCopyBuffer(s->cmd, s->buf.vk, b->vk, 1, &region);
    else
        vkCmdCopyBuffer(s->cmd, b->vk, s->buf.vk, 1, &region);
    mb.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT;
    mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_HOST_READ_BIT;
    vkCmdPipelineBarrier(s->cmd, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    VK_CHECK(vkEndCommandBuffer(s->cmd));
    VkSubmitInfo si = {VK_STRUCTURE_TYPE_SUBMIT_INFO};
    si.commandBufferCount = 1;
    si.pCommandBuffers = &s->cmd;
    VK_CHECK(vkQueueSubmit(device_queue(d), 1, &si, s->fence));
    VK_CHECK(vkWaitForFences(device_vk(d), 1, &s->fence, VK_TRUE, UINT64_MAX));
    VK_CHECK(vkResetFences(device_vk(d), 1, &s->fence));
    return VKPHI_OK;
}

int buffer_write(device *d, gpu_buffer *b, uint64_t offset, const void *src, uint64_t size) {
    if (offset > b->size || size > b->size - offset)
        return vkphi_fail(VKPHI_ERR_ARG, "buffer_write of %llu bytes at %llu past the end of a %llu-byte buffer",
                          (unsigned long long)size, (unsigned long long)offset, (unsigned long long)b->size);
    if (b->mapped) {
        memcpy((char *)b->mapped + offset, src, size);
        return VKPHI_OK;
    }
    struct staging *s;
    int rc = staging_get(d, &s);
    for (uint64_t done = 0; !rc && done < size; done += s->buf.size) {
        uint64_t n = size - done < s->buf.size ? size - done : s->buf.size;
        memcpy(s->buf.mapped, (const char *)src + done, n);
        rc = staging_copy(d, s, b, offset + done, n, true);
    }
    return rc;
}

int buffer_read(device *d, const gpu_buffer *b, uint64_t offset, void *dst, uint64_t size) {
    if (offset > b->size || size > b->size - offset)
        return vkphi_fail(VKPHI_ERR_ARG, "buffer_read of %llu bytes at %llu past the end of a %llu-byte buffer",
                          (unsigned long long)size, (unsigned long long)offset, (unsigned long long)b->size);
    if (b->mapped) {
        memcpy(dst, (const char *)b->mapped + offset, size);
        return VKPHI_OK;
    }
    struct staging *s;
    int rc = staging_get(d, &s);
    for (uint64_t done = 0; !rc && done < size; done += s->buf.size) {
        uint64_t n = size - done < s->buf.size ? size - done : s->buf.size;
        rc = staging_copy(d, s, b, offset + done, n, false);
        if (!rc) memcpy((char *)dst + done, s->buf.mapped, n);
    }
    return rc;
}
