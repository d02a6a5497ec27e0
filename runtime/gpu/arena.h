// SPDX-License-Identifier: MIT
// The arena: buffers bound into large memory blocks per place (memory.h), each
// block within maxMemoryAllocationSize and 4 GiB (what drivers such as RADV allow
// in one allocation). A model's weights, KV cache and scratch come from here, in
// the amounts its placement plan (model/memory_plan.h) gives each place.
#pragma once
#include <stdint.h>

#include "buffer.h"
#include "memory.h"

// What the arena may allocate: the heap of each place (-1: none), the bytes planned
// there (blocks are sized to hold them in as few allocations as block_max allows),
// and the largest block.
typedef struct mem_arena_spec {
    int heap[MEM_N_PLACES];
    uint64_t bytes[MEM_N_PLACES];
    uint64_t block_max;
} mem_arena_spec;

typedef struct mem_arena mem_arena;

int mem_arena_create(device *d, const mem_arena_spec *spec, mem_arena **out);
// A buffer of `size` bytes in place p, bound into one of the arena's blocks (its
// .mem stays VK_NULL_HANDLE: buffer_destroy frees the VkBuffer, the arena the block).
// Mapped where the place is host-visible and written in place (host, or unified).
int mem_arena_buffer(mem_arena *a, enum mem_place p, uint64_t size, const char *what, gpu_buffer *out);
// Bytes of buffers made in place p, and the blocks' bytes there.
uint64_t mem_arena_used(const mem_arena *a, enum mem_place p);
uint64_t mem_arena_reserved(const mem_arena *a, enum mem_place p);
uint32_t mem_arena_blocks(const mem_arena *a, enum mem_place p);
void mem_arena_destroy(mem_arena *a); // after every buffer of it
