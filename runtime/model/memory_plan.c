// SPDX-License-Identifier: MIT
#include "memory_plan.h"

#include <stdio.h>
#include <string.h>

#include "ops.h"

const char *memory_size_str(uint64_t bytes, char buf[24]) {
    if (bytes >= (1ull << 30))
        snprintf(buf, 24, "%.2f GiB", bytes / 1073741824.0);
    else
        snprintf(buf, 24, "%.1f MiB", bytes / 1048576.0);
    return buf;
}

static uint64_t round_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

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
        p->avail[i] = memory_heap_avail(info, p->heap[i]);
    }
    p->have = p->avail[MEM_DEVICE] + p->avail[MEM_HOST];
    p->block_max = memory_block_max(info);
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


void memory_plan_arena(const mem_plan *p, mem_arena_spec *out) {
    memset(out, 0, sizeof *out);
    out->block_max = p->block_max;
    for (int i = 0; i < MEM_N_PLACES; i++) {
        out->heap[i] = p->heap[i];
        out->bytes[i] = p->weights[i] + p->kv[i] + p->scratch[i];
    }
}
