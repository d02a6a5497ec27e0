// SPDX-License-Identifier: MIT
#include "memory.h"

#define DL VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
#define HVC (VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
// Never protected memory (needs a protected queue) nor AMD's device-coherent or
// uncached types (slow, for debugging).
#define AVOID                                                                                                          \
    (VK_MEMORY_PROPERTY_PROTECTED_BIT | VK_MEMORY_PROPERTY_DEVICE_COHERENT_BIT_AMD |                                   \
     VK_MEMORY_PROPERTY_DEVICE_UNCACHED_BIT_AMD)

const char *memory_place_name(enum mem_place p) { return p == MEM_DEVICE ? "device" : "host"; }

// Whether heap h has a usable memory type with every flag of `want`.
static bool heap_has_type(const device_info *info, uint32_t h, VkMemoryPropertyFlags want) {
    for (uint32_t t = 0; t < info->n_types; t++)
        if (info->types[t].heap == h && (info->types[t].flags & want) == want && !(info->types[t].flags & AVOID))
            return true;
    return false;
}

// The device place: the largest device-local heap with a device-local type (a small
// host-visible window into VRAM, ReBAR off, is a second device-local heap whose bytes
// may be the same VRAM: never counted twice). The host place: the largest other heap,
// not device-local, with a host-visible coherent type.
void memory_pick_heaps(const device_info *info, int heap[MEM_N_PLACES]) {
    heap[MEM_DEVICE] = heap[MEM_HOST] = -1;
    for (uint32_t h = 0; h < info->n_heaps; h++) {
        const device_heap *x = &info->heaps[h];
        if (x->device_local && heap_has_type(info, h, DL)) {
            if (heap[MEM_DEVICE] < 0 || x->size > info->heaps[heap[MEM_DEVICE]].size) heap[MEM_DEVICE] = (int)h;
        } else if (!x->device_local && heap_has_type(info, h, HVC)) {
            if (heap[MEM_HOST] < 0 || x->size > info->heaps[heap[MEM_HOST]].size) heap[MEM_HOST] = (int)h;
        }
    }
}

uint64_t memory_heap_avail(const device_info *info, int h) {
    const device_heap *x = &info->heaps[h];
    uint64_t free_bytes = !x->budget ? x->size : x->budget > x->usage ? x->budget - x->usage : 0;
    uint64_t margin = free_bytes / 16;
    if (margin > MEM_MARGIN_MAX) margin = MEM_MARGIN_MAX;
    return free_bytes - margin;
}

uint64_t memory_block_max(const device_info *info) {
    return info->max_alloc_size && info->max_alloc_size < MEM_BLOCK_MAX ? info->max_alloc_size : MEM_BLOCK_MAX;
}

int memory_type_pick(const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits, VkMemoryPropertyFlags want,
                     VkMemoryPropertyFlags prefer) {
    int found = -1;
    for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
        VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
        if (!(type_bits & (1u << i)) || (f & want) != want || (f & AVOID)) continue;
        if ((f & prefer) == prefer) return (int)i;
        if (found < 0) found = (int)i;
    }
    return found;
}

int memory_type_for(const device_info *info, const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits,
                    enum mem_place place, int heap) {
    if (!info->heaps_simulated && heap >= 0) // only the planned heap's types
        for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
            if (mp->memoryTypes[t].heapIndex != (uint32_t)heap) type_bits &= ~(1u << t);
    if (place == MEM_HOST) return memory_type_pick(mp, type_bits, HVC, 0);
    int t = info->unified_memory ? memory_type_pick(mp, type_bits, DL | HVC, 0) : -1;
    return t >= 0 ? t : memory_type_pick(mp, type_bits, DL, 0);
}
