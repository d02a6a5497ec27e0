// SPDX-License-Identifier: MIT
// The memory bandwidth a kernel attains on a device, measured with a streaming-read
// kernel (shaders/bandwidth.comp): drivers do not report it, and the benchmark
// needs it as the roofline of a decode step, which reads every weight once.
#pragma once
#include <stdint.h>

#include "device.h"
#include "memory.h"

typedef struct bandwidth_result {
    double gb_per_s;     // best pass, 1e9 bytes per second
    double median_gb_per_s;
    uint64_t bytes;      // buffer size read per pass
    uint32_t passes;     // timed passes (after one warm-up)
    int timed_on_device; // 1: timestamp queries; 0: host clock around each submission
} bandwidth_result;

// Reads a buffer of up to 1 GiB (256 MiB on a CPU device; at most half the memory
// budget) filled with random words, several times. The kernel folds all it read
// into one word per workgroup; their XOR must equal the XOR of the buffer, or this
// fails: every byte was read. Returns 0 or an error code.
int bandwidth_measure(device *d, bandwidth_result *out);
// The same for the memory a place of the placement plan (model/memory_plan.h) puts weights in:
// MEM_HOST reads host-visible system memory over the bus, as spilled layers are.
// Fails with one sentence when the device has no such heap.
int bandwidth_measure_place(device *d, enum mem_place where, bandwidth_result *out);
