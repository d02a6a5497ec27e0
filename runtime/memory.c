// SPDX-License-Identifier: MIT
#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "ops.h"

#define DL VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT
#define HVC (VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)
// Never protected memory (needs a protected queue) nor AMD's device-coherent or
// uncached types (slow, for debugging): as buffer_memory_type.
#define AVOID                                                                                                          \
    (VK_MEMORY_PROPERTY_PROTECTED_BIT | VK_MEMORY_PROPERTY_DEVICE_COHERENT_BIT_AMD |                                   \
     VK_MEMORY_PROPERTY_DEVICE_UNCACHED_BIT_AMD)

const char *memory_place_name(enum mem_place p) { return p == MEM_DEVICE ? "device" : "host"; }

const char *memory_size_str(uint64_t bytes, char buf[24]) {
    if (bytes >= (1ull << 30))
        snprintf(buf, 24, "%.2f GiB", bytes / 1073741824.0);
    else
        snprintf(buf, 24, "%.1f MiB", bytes / 1048576.0);
    return buf;
}

static uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

// Whether heap h has a usable memory type with every flag of `want`.
static bool heap_has_type(const device_info *info, uint32_t h, VkMemoryPropertyFlags want) {
    for (uint32_t t = 0; t < info->n_types; t++)
        if (info->types[t].heap == h && (info->types[t].flags & want) == want && !(info->types[t].flags & AVOID))
            return true;
    return false;
}

// Free bytes of a heap by its budget (the heap size when the driver gives none).
static uint64_t heap_free(const device_heap *h) {
    if (!h->budget) return h->size;
    return h->budget > h->usage ? h->budget - h->usage : 0;
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

// Puts `bytes` in the device place if device_ok and they fit there, else in the
// host place; false when neither has room (they still count as needed).
static bool place(mem_plan *p, uint64_t used[MEM_N_PLACES], uint64_t bytes, bool device_ok, enum mem_place *where) {
    p->need += bytes;
    enum mem_place order[2] = {MEM_DEVICE, MEM_HOST};
    for (int i = device_ok ? 0 : 1; i < 2; i++) {
        enum mem_place w = order[i];
        if (p->heap[w] >= 0 && used[w] + bytes <= p->avail[w]) {
            used[w] += bytes;
            *where = w;
            return true;
        }
    }
    *where = MEM_HOST;
    return false;
}

void memory_plan(const device_info *info, const mem_model *m, uint32_t n_ctx, bool kv_q8, mem_plan *p) {
    memset(p, 0, sizeof *p);
    p->n_ctx = n_ctx;
    p->n_layer = m->n_layer;
    p->kv_q8 = kv_q8;
    memory_pick_heaps(info, p->heap);
    for (int i = 0; i < MEM_N_PLACES; i++) {
        if (p->heap[i] < 0) continue;
        uint64_t free_bytes = heap_free(&info->heaps[p->heap[i]]), margin = free_bytes / 16;
        if (margin > MEM_MARGIN_MAX) margin = MEM_MARGIN_MAX;
        p->avail[i] = free_bytes - margin;
    }
    p->have = p->avail[MEM_DEVICE] + p->avail[MEM_HOST];
    p->block_max = info->max_alloc_size && info->max_alloc_size < MEM_BLOCK_MAX ? info->max_alloc_size : MEM_BLOCK_MAX;
    uint64_t used[MEM_N_PLACES] = {0};
    bool fits = p->heap[MEM_DEVICE] >= 0 || p->heap[MEM_HOST] >= 0;
    enum mem_place where;

    // Activations first, then the KV cache layer by layer: both are read and written
    // at every step, and are small next to the weights.
    uint64_t scratch = round_up(m->scratch_fixed + m->scratch_per_token * n_ctx, MEM_ALIGN);
    if (!place(p, used, scratch, true, &where)) fits = false;
    p->scratch_place = where;
    p->scratch[where] = scratch;
    p->kv_layer_bytes = round_up(kv_layer_bytes(m->kv_dim, m->n_seq * n_ctx, kv_q8), MEM_ALIGN);
    bool kv_device = true;
    for (uint32_t l = 0; l < m->n_layer; l++) {
        if (!place(p, used, 2 * p->kv_layer_bytes, kv_device, &where)) fits = false;
        p->kv[where] += 2 * p->kv_layer_bytes;
        kv_device = where == MEM_DEVICE;
        if (kv_device) p->kv_layers_device = l + 1;
    }
    // Weights: layers in order, then the head; the first that does not fit in
    // device-local memory sends it and all after it to the host place, so that the
    // plan reads "layers 0-k on device, the rest host".
    bool dev = true;
    for (uint32_t l = 0; l <= m->n_layer; l++) {
        uint64_t bytes = l < m->n_layer ? m->layer_bytes[l] : m->head_bytes;
        if (!place(p, used, bytes, dev, &where)) fits = false;
        p->weights[where] += bytes;
        dev = where == MEM_DEVICE;
        if (dev && l < m->n_layer) p->layers_device = l + 1;
        if (dev && l == m->n_layer) p->head_device = true;
    }
    // One layer's K (or V) cache is one buffer: a binding and a block must hold it.
    uint64_t kv_max = info->max_storage_buffer_range < p->block_max ? info->max_storage_buffer_range : p->block_max;
    if (p->kv_layer_bytes > kv_max) {
        fits = false;
        snprintf(p->why, sizeof p->why,
                 "a KV cache of %u x %u tokens needs %.1f MiB per layer, more than this device "
                 "binds at once (%.1f MiB)",
                 m->n_seq, n_ctx, p->kv_layer_bytes / 1048576.0, kv_max / 1048576.0);
    }
    p->fits = fits;
}

bool memory_plan_no_spill(const mem_plan *p) { return p->fits && p->layers_device == p->n_layer && p->head_device; }

uint32_t memory_max_context(const device_info *info, const mem_model *m, bool kv_q8, bool no_spill) {
    mem_plan p;
    uint32_t lo = 0, hi = m->n_ctx_train; // lo fits (0 trivially), hi + 1 does not
    memory_plan(info, m, hi, kv_q8, &p);
    if (no_spill ? memory_plan_no_spill(&p) : p.fits) return hi;
    hi--;
    while (lo < hi) { // fitting is monotonic in the context: more tokens, more bytes
        uint32_t mid = lo + (hi - lo + 1) / 2;
        memory_plan(info, m, mid, kv_q8, &p);
        if (no_spill ? memory_plan_no_spill(&p) : p.fits)
            lo = mid;
        else
            hi = mid - 1;
    }
    if (lo >= 1) { // a context of 0 tokens "fits" trivially; check 1 really does
        memory_plan(info, m, lo, kv_q8, &p);
        if (!(no_spill ? memory_plan_no_spill(&p) : p.fits)) return 0;
    }
    return lo >= 256 ? lo / 256 * 256 : lo;
}

uint32_t memory_default_context(const device_info *info, const mem_model *m, bool kv_q8, const char **why) {
    const char *w_ = "";
    const char **w = why ? why : &w_;
    uint32_t min_ctx = m->n_ctx_train < MEM_MIN_CONTEXT ? m->n_ctx_train : MEM_MIN_CONTEXT;
    uint32_t dev = memory_max_context(info, m, kv_q8, true);
    if (dev == m->n_ctx_train) {
        *w = "the trained context, every weight in device-local memory";
        return dev;
    }
    if (dev >= min_ctx) {
        *w = "the most that keeps every weight in device-local memory";
        return dev;
    }
    uint32_t all = memory_max_context(info, m, kv_q8, false);
    *w = all > min_ctx ? "weights spill to host memory at any context; a longer one would push out more"
                       : "the most that fits";
    return all < min_ctx ? all : min_ctx;
}

double memory_estimate_gbps(const device_info *info, enum mem_place p) {
    switch (info->type) {
    case VK_PHYSICAL_DEVICE_TYPE_CPU:
        return 20;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        return 60; // both heaps are the same DRAM
    default:
        return p == MEM_DEVICE ? 300 : 16; // VRAM; system memory over PCIe
    }
}

double memory_decode_tps(const mem_plan *p, const double gbps[MEM_N_PLACES]) {
    double s = 0;
    for (int i = 0; i < MEM_N_PLACES; i++)
        if (p->weights[i]) s += p->weights[i] / (gbps[i] * 1e9);
    return s > 0 ? 1 / s : 0;
}

void memory_plan_layers(const mem_plan *p, enum mem_place where, char *buf, unsigned long len) {
    uint32_t first = where == MEM_DEVICE ? 0 : p->layers_device,
             last = where == MEM_DEVICE ? p->layers_device : p->n_layer;
    bool head = where == MEM_DEVICE ? p->head_device : !p->head_device;
    int n = 0;
    if (last > first + 1)
        n = snprintf(buf, len, "layers %u-%u", first, last - 1);
    else if (last == first + 1)
        n = snprintf(buf, len, "layer %u", first);
    if (head)
        snprintf(buf + n, len - (unsigned long)n, "%sthe output head", n ? " and " : "");
    else if (!n)
        snprintf(buf, len, "none");
}

int memory_type_for(const device_info *info, const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits,
                    enum mem_place place, int heap) {
    if (!info->heaps_simulated && heap >= 0) // only the planned heap's types
        for (uint32_t t = 0; t < mp->memoryTypeCount; t++)
            if (mp->memoryTypes[t].heapIndex != (uint32_t)heap) type_bits &= ~(1u << t);
    if (place == MEM_HOST) return buffer_memory_type(mp, type_bits, HVC, 0);
    int t = info->unified_memory ? buffer_memory_type(mp, type_bits, DL | HVC, 0) : -1;
    return t >= 0 ? t : buffer_memory_type(mp, type_bits, DL, 0);
}

// ---- the arena ----

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

int mem_arena_create(device *d, const mem_plan *plan, mem_arena **out) {
    mem_arena *a = calloc(1, sizeof *a);
    if (!a) return vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory");
    a->d = d;
    a->block_max = plan->block_max;
    for (int i = 0; i < MEM_N_PLACES; i++) {
        a->heap[i] = plan->heap[i];
        a->left[i] = plan->weights[i] + plan->kv[i] + plan->scratch[i];
    }
    *out = a;
    return VKPHI_OK;
}

// A new block for at least `need` bytes of memory type `type`: as large as what the
// plan still has for this place, within block_max.
static int new_block(mem_arena *a, enum mem_place p, uint32_t type, uint64_t need, const char *what, mem_block **out) {
    const device_info *info = device_get_info(a->d);
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
