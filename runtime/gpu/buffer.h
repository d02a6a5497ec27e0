// SPDX-License-Identifier: MIT
// Device memory. On unified-memory devices (integrated GPUs, the Steam Deck,
// lavapipe) device buffers are host-visible and written in place; on discrete GPUs
// they live in VRAM and are filled through one reusable staging buffer. A device
// buffer that finds device-local memory full falls back to host-visible system
// memory. (A model's weights, KV cache and scratch come from arena.h.)
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "device.h"

enum buffer_kind {
    BUFFER_DEVICE,   // weights, activations, KV cache: device-local
    BUFFER_HOST,     // host-visible, cached: readback of logits, staging
};

typedef struct gpu_buffer {
    VkBuffer vk;
    VkDeviceMemory mem;
    uint64_t size;
    void *mapped; // non-NULL when the host can write/read it directly
} gpu_buffer;

// A window of a buffer that a kernel binds: offset and range in bytes.
typedef struct buf_view {
    const gpu_buffer *buf;
    uint64_t offset, range;
} buf_view;

static inline buf_view buf_all(const gpu_buffer *b) { return (buf_view){b, 0, b->size}; }
static inline buf_view buf_sub(const gpu_buffer *b, uint64_t offset, uint64_t range) {
    return (buf_view){b, offset, range};
}

// `what` names the buffer in the error message if it does not fit.
int buffer_create(device *d, uint64_t size, enum buffer_kind kind, const char *what, gpu_buffer *out);
void buffer_destroy(device *d, gpu_buffer *b);
// Copies host data in: memcpy when mapped, else through the staging buffer (waits).
int buffer_write(device *d, gpu_buffer *b, uint64_t offset, const void *src, uint64_t size);
int buffer_read(device *d, const gpu_buffer *b, uint64_t offset, void *dst, uint64_t size);
