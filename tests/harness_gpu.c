// SPDX-License-Identifier: MIT
#include "harness_gpu.h"

#include <stdlib.h>

#include "common.h"

uint32_t test_validation_messages(void) { return device_validation_total(); }

bool test_gpu_open(test_gpu *g) {
    if (device_create(-1, &g->dev) != VKPHI_OK) {
        fprintf(stderr, "no Vulkan device: %s\n", vkphi_last_error());
        return false;
    }
    g->k = kernels_create(g->dev);
    if (cmd_create(g->dev, &g->cmd) != VKPHI_OK) {
        fprintf(stderr, "cmd_create: %s\n", vkphi_last_error());
        return false;
    }
    return g->k != NULL;
}

void test_gpu_close(test_gpu *g) {
    cmd_destroy(g->cmd);
    kernels_destroy(g->k);
    CHECK(device_validation_messages(g->dev) == 0, "the validation layer reported %u messages",
          device_validation_messages(g->dev));
    device_destroy(g->dev);
}

gpu_buffer test_upload(test_gpu *g, const void *data, uint64_t bytes) {
    gpu_buffer b;
    int rc = buffer_create(g->dev, bytes, BUFFER_DEVICE, "a test buffer", &b);
    if (rc) { fprintf(stderr, "buffer_create: %s\n", vkphi_last_error()); abort(); }
    if (data && buffer_write(g->dev, &b, 0, data, bytes)) { fprintf(stderr, "%s\n", vkphi_last_error()); abort(); }
    return b;
}

void test_download(test_gpu *g, const gpu_buffer *b, void *out, uint64_t bytes) {
    if (buffer_read(g->dev, b, 0, out, bytes)) { fprintf(stderr, "%s\n", vkphi_last_error()); abort(); }
}

bool test_vulkan_available(void) {
    device_info *infos;
    uint32_t n;
    if (device_list(&infos, &n) != VKPHI_OK) return false;
    free(infos);
    return n > 0;
}
