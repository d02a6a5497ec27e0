// SPDX-License-Identifier: MIT
// Command recording: one command buffer with its fence, descriptor pool (when the
// device lacks push descriptors) and timestamp queries. Several contexts in a ring
// let the host record the next layer while the GPU runs this one.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "pipeline.h"

#define CMD_MAX_TIMESTAMPS 1024

typedef struct cmd_ctx cmd_ctx;

int cmd_create(device *d, cmd_ctx **out);
void cmd_destroy(cmd_ctx *c);

// Waits for this context's last submission, then starts recording anew.
int cmd_begin(cmd_ctx *c);
// Records one dispatch: bindings 0..n-1 are the views, push constants are copied
// (their size must equal the pipeline's), groups are workgroup counts.
void cmd_dispatch(cmd_ctx *c, const pipeline *p, const buf_view *views, uint32_t n_views, const void *push,
                  uint32_t push_size, uint32_t gx, uint32_t gy, uint32_t gz);
// The same with the workgroup counts read from a VkDispatchIndirectCommand in
// `args` (a buffer the host may rewrite between submissions of a recorded buffer).
void cmd_dispatch_indirect(cmd_ctx *c, const pipeline *p, const buf_view *views, uint32_t n_views, const void *push,
                           uint32_t push_size, buf_view args);
// Makes every earlier shader write visible to later shaders (and transfers).
void cmd_barrier(cmd_ctx *c);
void cmd_copy(cmd_ctx *c, const gpu_buffer *src, uint64_t src_off, const gpu_buffer *dst, uint64_t dst_off, uint64_t size);
void cmd_fill_zero(cmd_ctx *c, const gpu_buffer *dst, uint64_t offset, uint64_t size);
// A GPU timestamp labelled `label` (a string literal: the pointer is kept). Ignored
// when the device has no timestamps or the query pool is full.
void cmd_timestamp(cmd_ctx *c, const char *label);
// Ends recording and submits; with wait, blocks until the GPU is done.
int cmd_submit(cmd_ctx *c, bool wait);
// Record once, submit many times: cmd_begin_reusable starts a recording that
// cmd_end closes without submitting; cmd_resubmit then submits it again and again
// (waiting for the previous submission first). Per-step values must come from
// buffers the host writes between submissions, not from recorded push constants.
int cmd_begin_reusable(cmd_ctx *c);
int cmd_end(cmd_ctx *c);
int cmd_resubmit(cmd_ctx *c, bool wait);
int cmd_wait(cmd_ctx *c);

// After cmd_wait: the timestamps of the last submission, in milliseconds since the
// first one. Returns the count.
uint32_t cmd_timestamps(cmd_ctx *c, const char **labels, double *ms, uint32_t max);
device *cmd_device(const cmd_ctx *c);

// What this process has recorded and run, for the benchmark's per-token figures:
// command buffers recorded, dispatches and barriers submitted (a buffer submitted
// again counts its dispatches again), queue submissions.
typedef struct cmd_counters {
    uint64_t recordings, dispatches, barriers, submits;
} cmd_counters;
void cmd_counters_get(cmd_counters *out);
// Ticks from timestamp a to b of a counter with `bits` valid bits, which may have
// wrapped in between (36 bits on some devices).
static inline uint64_t cmd_ticks_between(uint64_t a, uint64_t b, uint32_t bits) {
    uint64_t mask = bits >= 64 ? ~0ull : (1ull << bits) - 1;
    return (b - a) & mask;
}
