// SPDX-License-Identifier: MIT
// Where a model's buffers live: the placement plan.
//
// The plan is a pure function (no Vulkan calls) of the device's heaps, memory
// types, budgets and limits (a device_info, real or written by a test) and the
// model's sizes, so that it is tested against the heap layouts of machines we do
// not have:
//   - activations (scratch) and the KV cache go in device-local memory first;
//   - the weights go layer by layer into device-local memory until its budget,
//     less a margin, is used;
//   - the remaining layers (and then the output head) go into host-visible system
//     memory that the GPU reads over the bus (gpu/memory.h's places).
// An APU uses both of its heaps. Decode runs entirely on the GPU either way: only
// where a weight lives changes, and so the bandwidth it is read at. The arena
// (gpu/arena.h) then makes the planned buffers.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "memory.h"

#define MEM_ALIGN 4096ull // each buffer's bytes are counted rounded up to this

// What a model asks for, at any context.
typedef struct mem_model {
    uint32_t n_layer;
    const uint64_t *layer_bytes; // (n_layer) weights per layer, norms too, tensors rounded to MEM_ALIGN
    uint64_t head_bytes;         // output norm and output matrix
    uint32_t kv_dim;             // values of K (and of V) per token and layer
    uint32_t n_seq;              // sequences, each with n_ctx tokens of KV cache
    uint64_t scratch_fixed;      // device-local activations that do not grow with the context
    uint64_t scratch_per_token;  // and those per token of context (RoPE table, attention partials)
    uint32_t n_ctx_train;
} mem_model;

typedef struct mem_plan {
    int heap[MEM_N_PLACES];       // heap index of each place; -1 when the device has no such heap
    uint64_t avail[MEM_N_PLACES]; // bytes the plan may use there: the free budget less the margin
    uint64_t weights[MEM_N_PLACES], kv[MEM_N_PLACES], scratch[MEM_N_PLACES];
    uint32_t n_ctx, n_layer;
    bool kv_q8;
    uint32_t layers_device;    // weights of layers 0 .. layers_device-1 in device-local memory, the rest host
    bool head_device;          // the output head in device-local memory
    uint32_t kv_layers_device; // KV cache of layers 0 .. kv_layers_device-1 in device-local memory
    enum mem_place scratch_place;
    uint64_t kv_layer_bytes; // the K (or V) cache of one layer
    uint64_t block_max;      // largest memory block: min(maxMemoryAllocationSize, 4 GiB)
    uint64_t need, have;     // bytes needed in all, bytes available in both places
    bool fits;
    char why[160]; // when it does not fit for a limit other than bytes: which one
} mem_plan;

// Plans n_ctx tokens per sequence (KV cache f16, or 8-bit when kv_q8).
void memory_plan(const device_info *info, const mem_model *m, uint32_t n_ctx, bool kv_q8, mem_plan *out);
// The largest context up to the trained one that fits (with no_spill: with every
// weight in device-local memory): a multiple of 256 when it is 256 or more; 0 when
// not even one token fits.
uint32_t memory_max_context(const device_info *info, const mem_model *m, bool kv_q8, bool no_spill);
// The context a model gets when none is asked for, for the best speed the device
// allows: the trained context when everything fits in device-local memory; else the
// most that keeps every weight there, if that is at least MEM_MIN_CONTEXT (or the
// trained context, if less); else, weights spilling anyway, at most MEM_MIN_CONTEXT
// of what fits at all (each KV byte in device-local memory pushes a weight byte out
// to the bus). 0 when nothing fits. *why (may be NULL) says which case it was.
#define MEM_MIN_CONTEXT 4096
uint32_t memory_default_context(const device_info *info, const mem_model *m, bool kv_q8, const char **why);
// True when the plan put every weight in device-local memory.
bool memory_plan_no_spill(const mem_plan *p);
// The bytes per second each place is read at, estimated from the device type when
// it is not measured: a discrete card's VRAM ~300 GB/s and system memory over PCIe
// ~16 GB/s; an integrated GPU's shared memory ~60 GB/s; a CPU device ~20 GB/s.
double memory_estimate_gbps(const device_info *info, enum mem_place p);
// Decode tokens/s that reading every weight once per token allows at those rates.
double memory_decode_tps(const mem_plan *p, const double gbps[MEM_N_PLACES]);
// "812.0 MiB", "7.36 GiB": bytes for people, in buf (returned).
const char *memory_size_str(uint64_t bytes, char buf[24]);
// "layers 0-27" / "layers 28-39 and the output head" / "none": the weights of a place.
void memory_plan_layers(const mem_plan *p, enum mem_place where, char *buf, unsigned long len);
// The arena that holds what the plan placed.
void memory_plan_arena(const mem_plan *p, mem_arena_spec *out);
