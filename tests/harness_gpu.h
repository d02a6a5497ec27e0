// SPDX-License-Identifier: MIT
// The harness's GPU part (harness_gpu.c), for the tests that run kernels: a device,
// its kernels and a command context, buffers in and out. Linked only into the tests
// that use Vulkan; with it, test_finish also fails a test on any message of the
// validation layer.
#pragma once
#include "harness.h"

#include "buffer.h"
#include "commands.h"
#include "device.h"
#include "kernels.h"

typedef struct test_gpu {
    device *dev;
    kernels *k;
    cmd_ctx *cmd;
} test_gpu;

// True when there is a Vulkan device (VKPHI_LIMITS applied); tests that need one
// skip otherwise.
bool test_vulkan_available(void);
// Opens the default device (lavapipe in CI) with the validation layer as the
// environment asks; false (and a message) when there is no Vulkan device.
bool test_gpu_open(test_gpu *g);
// Checks that the validation layer reported nothing, then frees everything.
void test_gpu_close(test_gpu *g);
// A device buffer holding a copy of n floats (or bytes, for the _bytes form).
gpu_buffer test_upload(test_gpu *g, const void *data, uint64_t bytes);
void test_download(test_gpu *g, const gpu_buffer *b, void *out, uint64_t bytes);
