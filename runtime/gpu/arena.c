// SPDX-License-Identifier: MIT
#include "arena.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

#define HVC (VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)

static uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

typedef struct mem_block {
    VkDeviceMemory mem;
    uint64_t size, used;
    uint32_t type;
    enum mem_place place;
    void *mapped;
} mem_block;

struct mem_arena {
    device *d;
    int heap[MEM_N_PLACES];
    uint64_t left[MEM_N_PLACES]; // planned bytes not yet in a block
    uint64_t used[MEM_N_PLACES];
    uint64_t block_max;
    mem_block *blocks;
    uint32_t n_blocks, cap;
};

int mem_arena_create(device *d, const mem_arena_spec *spec, mem_arena **out) {
    mem_arena *a = calloc(1, sizeof *a);
    if (!a) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    a->d = d;
    a->block_max = spec->block_max;
    for (int i = 0; i < MEM_N_PLACES; i++) {
        a->heap[i] = spec->heap[i];
        a->left[i] = spec->bytes[i];
    }
    *out = a;
    return VKPHI_OK;
}

// A new block for at least `need` bytes of memory type `type`: as large as what the
// plan still has for this place, within block_max.
static int new_block(mem_arena *a, enum mem_place p, uint32_t type, uint64_t need, const char *what, mem_block **out) {
    const device_info *info = device_get_info(a->d);
    int rc = device_check_runs(a->d, "memory allocated");
    if (rc) return rc;
    if (need > a->block_max)
        return vkphi_fail(VKPHI_ERR_NOMEM,
                          "%s needs %.1f MiB in one allocation, more than this device allows (%.1f MiB)", what,
                          need / 1048576.0, a->block_max / 1048576.0);
    uint64_t size = a->left[p] < a->block_max ? a->left[p] : a->block_max;
    if (size < need) size = need;
    a->left[p] = a->left[p] > size ? a->left[p] - size : 0;
    if (a->n_blocks == a->cap) {
        uint32_t cap = a->cap ? 2 * a->cap : 8;
        mem_block *nb = realloc(a->blocks, cap * sizeof *nb);
        if (!nb) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
        a->blocks = nb;
        a->cap = cap;
    }
    mem_block *b = &a->blocks[a->n_blocks];
    memset(b, 0, sizeof *b);
    VkMemoryAllocateInfo ai = {VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
    ai.allocationSize = size;
    ai.memoryTypeIndex = type;
    VkResult r = vkAllocateMemory(device_vk(a->d), &ai, NULL, &b->mem);
    if (r != VK_SUCCESS)
        return vkphi_fail(VKPHI_ERR_NOMEM, "out of %s memory: a block of %.1f MiB for %s could not be allocated (%s)",
                          memory_place_name(p), size / 1048576.0, what, vk_result_name(r));
    a->n_blocks++;
    b->size = size;
    b->type = type;
    b->place = p;
    // Mapped where writes land in place without flushes: the host place always; the
    // device place on unified memory only (a discrete card's VRAM is filled by staging).
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(device_physical(a->d), &mp);
    if ((mp.memoryTypes[type].propertyFlags & HVC) == HVC && (p == MEM_HOST || info->unified_memory))
        VK_CHECK(vkMapMemory(device_vk(a->d), b->mem, 0, VK_WHOLE_SIZE, 0, &b->mapped));
    *out = b;
    return VKPHI_OK;
}

int mem_arena_buffer(mem_arena *a, enum mem_place p, uint64_t size, const char *what, gpu_buffer *out) {
    memset(out, 0, sizeof *out);
    // Whole 16-byte units: shaders read packed 16-bit data as uints and vec4s.
    size = size ? (size + 15) & ~15ull : 16;
    VkBufferCreateInfo bi = {VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
    bi.size = size;
    bi.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT | VK_BUFFER_USAGE_TRANSFER_DST_BIT;
    bi.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
    VkResult r = vkCreateBuffer(device_vk(a->d), &bi, NULL, &out->vk);
    if (r != VK_SUCCESS)
        return vkphi_fail(VKPHI_ERR_NOMEM, "could not create %s (%.1f MiB): %s", what, size / 1048576.0,
                          vk_result_name(r));
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(device_vk(a->d), out->vk, &req);
    mem_block *b = NULL;
    uint64_t offset = 0;
    for (uint32_t i = 0; i < a->n_blocks && !b; i++) {
        mem_block *x = &a->blocks[i];
        offset = round_up(x->used, req.alignment);
        if (x->place == p && (req.memoryTypeBits & (1u << x->type)) && offset + req.size <= x->size) b = x;
    }
    if (!b) {
        VkPhysicalDeviceMemoryProperties mp;
        vkGetPhysicalDeviceMemoryProperties(device_physical(a->d), &mp);
        int type = memory_type_for(device_get_info(a->d), &mp, req.memoryTypeBits, p, a->heap[p]);
        int rc = type < 0 ? vkphi_fail(VKPHI_ERR_VULKAN, "no %s memory type for %s", memory_place_name(p), what)
                          : new_block(a, p, (uint32_t)type, req.size, what, &b);
        if (rc) {
            buffer_destroy(a->d, out);
            return rc;
        }
        offset = 0;
    }
    VK_CHECK(vkBindBufferMemory(device_vk(a->d), out->vk, b->mem, offset));
    b->used = offset + req.size;
    a->used[p] += req.size;
    out->size = size;
    out->mapped = b->mapped ? (char *)b->mapped + offset : NULL;
    return VKPHI_OK;
}

uint64_t mem_arena_used(const mem_arena *a, enum mem_place p) { return a->used[p]; }

uint64_t mem_arena_reserved(const mem_arena *a, enum mem_place p) {
    uint64_t s = 0;
    for (uint32_t i = 0; i < a->n_blocks; i++)
        if (a->blocks[i].place == p) s += a->blocks[i].size;
    return s;
}

uint32_t mem_arena_blocks(const mem_arena *a, enum mem_place p) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < a->n_blocks; i++)
        n += a->blocks[i].place == p;
    return n;
}

void mem_arena_destroy(mem_arena *a) {
    if (!a) return;
    for (uint32_t i = 0; i < a->n_blocks; i++)
        vkFreeMemory(device_vk(a->d), a->blocks[i].mem, NULL);
    free(a->blocks);
    free(a);
}
