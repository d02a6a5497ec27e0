// SPDX-License-Identifier: MIT
// Memory places and memory types: which heap a buffer's bytes come from.
//
// A model's buffers go to one of two places: device-local memory (VRAM, an APU's
// device-local heap) or host-visible system memory that the GPU reads over the bus
// (GTT or system RAM on a discrete card, the second heap of an APU). A device with
// one heap (an Intel iGPU, lavapipe) has no host place. These functions read only a
// device_info (real, or written by a test) and the driver's memory properties, so
// that the placement plan above them (model/memory_plan.h) is a pure function too.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "device.h"

enum mem_place {
    MEM_DEVICE, // device-local memory (VRAM, or an APU's device-local heap)
    MEM_HOST,   // host-visible system memory the GPU reads over the bus
    MEM_N_PLACES
};

#define MEM_BLOCK_MAX (4ull << 30)    // the 4 GiB practice: no memory block larger
#define MEM_MARGIN_MAX (512ull << 20) // the margin left free in a heap: 1/16 of its budget, at most this

const char *memory_place_name(enum mem_place p); // "device", "host"

// The heap of each place (-1: none): the largest device-local heap with a
// device-local type; the largest other heap that is not device-local and has a
// host-visible coherent type.
void memory_pick_heaps(const device_info *info, int heap[MEM_N_PLACES]);
// Bytes a plan may use in heap h: its free budget (its size when the driver gives
// no budget) less a margin of 1/16, at most MEM_MARGIN_MAX.
uint64_t memory_heap_avail(const device_info *info, int h);
// The largest memory block: min(maxMemoryAllocationSize, MEM_BLOCK_MAX).
uint64_t memory_block_max(const device_info *info);

// The memory type for a buffer: one of type_bits with every `want` flag, the first
// that also has every `prefer` flag, else the first; never a protected or AMD
// device-coherent/uncached type. -1 when none fits.
int memory_type_pick(const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits, VkMemoryPropertyFlags want,
                     VkMemoryPropertyFlags prefer);
// The memory type for a buffer of `place` among type_bits: on a real layout one of
// that place's heap (device-local, preferring host-visible on unified memory; host:
// host-visible and coherent); on simulated heaps (VKPHI_HEAPS) the real device's
// type of that kind. -1 when none fits.
int memory_type_for(const device_info *info, const VkPhysicalDeviceMemoryProperties *mp, uint32_t type_bits,
                    enum mem_place place, int heap);
