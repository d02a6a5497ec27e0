// SPDX-License-Identifier: MIT
// Streaming-read bandwidth (see bandwidth.h).
#include "bandwidth.h"

#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "buffer.h"
#include "commands.h"
#include "common.h"
#include "pipeline.h"
#include "push_constants.h"
#include "shaders.h"

enum { BW_PASSES = 10 };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bandwidth_measure(device *d, bandwidth_result *out) { return bandwidth_measure_place(d, MEM_DEVICE, out); }

int bandwidth_measure_place(device *d, enum mem_place where, bandwidth_result *out) {
    memset(out, 0, sizeof *out);
    const device_info *info = device_get_info(d);
    uint64_t bytes = 1ull << 30; // far past the last-level cache of any GPU
    if (info->type == VK_PHYSICAL_DEVICE_TYPE_CPU) bytes = 256ull << 20; // past a CPU's caches, quick to fill
    // The heaps and budgets as a placement plan sees them now.
    device_info now = *info;
    device_refresh_budgets(d, &now);
    mem_arena_spec spec = {.block_max = memory_block_max(&now)};
    memory_pick_heaps(&now, spec.heap);
    if (spec.heap[where] < 0)
        return vkphi_fail(VKPHI_ERR_UNSUPPORTED, "%s has no %s memory heap to measure", info->name,
                          memory_place_name(where));
    const uint64_t budget = where == MEM_HOST ? memory_heap_avail(&now, spec.heap[MEM_HOST]) / 2 : device_budget(d) / 2;
    if (budget && bytes > budget) bytes = budget;
    if (bytes > info->max_storage_buffer_range) bytes = info->max_storage_buffer_range;
    if (info->max_alloc_size && bytes > info->max_alloc_size) bytes = info->max_alloc_size;
    const uint64_t chunk = 16ull << 20;
    bytes = bytes / chunk * chunk;
    if (bytes < chunk) return vkphi_fail(VKPHI_ERR_NOMEM, "not enough device memory for the bandwidth test (16 MiB)");

    const uint32_t n_vec = (uint32_t)(bytes / 16); // uvec4 loads
    const uint32_t wg = info->max_workgroup_invocations >= 256 ? 256 : 128; // 128: the least any device allows
    uint32_t groups = n_vec / (wg * 64);           // 64 loads per thread
    if (groups < 1) groups = 1;
    if (groups > 65535) groups = 65535;

    gpu_buffer src = {0}, dst = {0};
    pipeline_cache *cache = NULL;
    pipeline pipe = {0};
    cmd_ctx *c = NULL;
    uint32_t *pattern = NULL, *folds = NULL;
    double gbps[BW_PASSES];
    uint32_t n_pass = 0;
    // Host-visible system memory comes from an arena block, as spilled weights do.
    mem_arena *arena = NULL;
    spec.bytes[MEM_HOST] = where == MEM_HOST ? bytes : 0;
    int rc = where == MEM_DEVICE ? buffer_create(d, bytes, BUFFER_DEVICE, "the bandwidth test buffer", &src)
                                 : mem_arena_create(d, &spec, &arena);
    if (!rc && arena) rc = mem_arena_buffer(arena, MEM_HOST, bytes, "the bandwidth test buffer", &src);
    if (!rc) rc = buffer_create(d, (uint64_t)groups * 4, BUFFER_HOST, "the bandwidth test result", &dst);
    if (!rc && (!(pattern = malloc(chunk)) || !(folds = malloc((size_t)groups * 4))))
        rc = vkphi_fail(VKPHI_ERR_NOMEM, "out of host memory for the bandwidth test");

    // Random words: compressible data (zeros above all) could flatter the result.
    uint32_t want = 0;
    if (!rc) {
        uint64_t s = 0x2545f4914f6cdd1dull;
        uint32_t chunk_fold = 0;
        for (uint64_t i = 0; i < chunk / 4; i++) {
            s ^= s << 13, s ^= s >> 7, s ^= s << 17;
            pattern[i] = (uint32_t)(s >> 16);
            chunk_fold ^= pattern[i];
        }
        if ((bytes / chunk) % 2) want = chunk_fold; // the chunk repeats; pairs cancel
        for (uint64_t off = 0; !rc && off < bytes; off += chunk) rc = buffer_write(d, &src, off, pattern, chunk);
    }
    if (!rc) cache = pipeline_cache_open(d);
    const struct push_bandwidth pc = {n_vec};
    const pipeline_desc desc = {.code = &shader_table[SHADER_BANDWIDTH], .n_bindings = 2, .push_size = sizeof pc,
                                .n_spec = 1, .spec = {wg}};
    if (!rc) rc = pipeline_create(d, cache, &desc, &pipe);
    if (!rc) rc = cmd_create(d, &c);

    const buf_view views[2] = {buf_all(&src), buf_all(&dst)};
    if (!rc && info->timestamps) {
        // One submission: a warm-up pass, then the timed passes between timestamps.
        rc = cmd_begin(c);
        for (int k = 0; !rc && k <= BW_PASSES; k++) {
            cmd_dispatch(c, &pipe, views, 2, &pc, sizeof pc, groups, 1, 1);
            cmd_barrier(c);
            cmd_timestamp(c, "bandwidth pass");
        }
        if (!rc) rc = cmd_submit(c, true);
        const char *labels[BW_PASSES + 1];
        double ms[BW_PASSES + 1];
        const uint32_t n = rc ? 0 : cmd_timestamps(c, labels, ms, BW_PASSES + 1);
        for (uint32_t k = 1; k < n; k++)
            if (ms[k] > ms[k - 1]) gbps[n_pass++] = bytes / ((ms[k] - ms[k - 1]) * 1e-3) / 1e9;
        out->timed_on_device = n_pass > 0;
    }
    if (!rc && n_pass == 0) {
        // No timestamps: each pass timed on the host, submission and wait included.
        for (int k = 0; !rc && k <= BW_PASSES; k++) {
            const double t0 = vkphi_now();
            rc = cmd_begin(c);
            if (!rc) cmd_dispatch(c, &pipe, views, 2, &pc, sizeof pc, groups, 1, 1);
            if (!rc) rc = cmd_submit(c, true);
            const double dt = vkphi_now() - t0;
            if (!rc && k > 0 && dt > 0) gbps[n_pass++] = bytes / dt / 1e9;
        }
    }
    if (!rc) rc = buffer_read(d, &dst, 0, folds, (uint64_t)groups * 4);
    if (!rc) {
        uint32_t got = 0;
        for (uint32_t g = 0; g < groups; g++) got ^= folds[g];
        if (got != want)
            rc = vkphi_fail(VKPHI_ERR_VULKAN, "the bandwidth kernel did not read the whole buffer (checksum %08x, want %08x)",
                            got, want);
    }
    if (!rc && n_pass == 0) rc = vkphi_fail(VKPHI_ERR_VULKAN, "the bandwidth test timed no pass");
    if (!rc) {
        qsort(gbps, n_pass, sizeof gbps[0], cmp_double);
        out->gb_per_s = gbps[n_pass - 1];
        out->median_gb_per_s = gbps[n_pass / 2];
        out->bytes = bytes;
        out->passes = n_pass;
    }
    cmd_destroy(c);
    if (pipe.vk) pipeline_destroy(d, &pipe);
    if (cache) pipeline_cache_close(d, cache);
    buffer_destroy(d, &dst);
    buffer_destroy(d, &src);
    mem_arena_destroy(arena);
    free(pattern);
    free(folds);
    return rc;
}
