// SPDX-License-Identifier: MIT
// The model's insides, shared by model.c (load, memory, free) and forward.c (the
// forward pass); nothing outside runtime/model/ includes this. It does not include
// model.h, whose own model.c includes this header (an include cycle): each .c
// includes model.h first, for the `model` typedef.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "commands.h"
#include "device.h"
#include "gguf.h"
#include "kernels.h"
#include "memory_plan.h"
#include "model_config.h"
#include "model_params.h"
#include "ops.h"

// Command buffers in flight: the host records layer i+1 while the GPU runs layer i.
#define RING 3
#define MAX_PROFILE 64

// A matrix stored whole (n = 1) or in parts (the Llama layout's q, k, v or gate,
// up) whose outputs fill consecutive columns of one activation row.
typedef struct weight_parts {
    gpu_weight part[3];
    uint32_t n;
} weight_parts;

typedef struct layer {
    gpu_buffer attn_norm, ffn_norm;      // (n_embd) f32
    weight_parts qkv;                    // fused: (n_embd, n_embd + 2 kv_dim); split: q, k, v
    gpu_weight attn_output;              // (n_embd, n_embd)
    weight_parts up;                     // fused: (n_embd, 2 n_ff) = [G;U]; split: gate, up
    bool glu_fused;                      // [G;U] one tensor within one binding: decode folds SwiGLU into it
    gpu_weight ffn_down;                 // (n_ff, n_embd)
    gpu_buffer k_cache, v_cache;         // (n_seq * n_ctx rows, kv_dim)
    kv_layer kv;
} layer;

struct model {
    gguf_file *f;
    model_config cfg;
    model_params params;
    uint32_t n_ctx, n_seq, n_ubatch, kv_dim, qkv_dim;
    device *dev;
    kernels *k;
    cmd_ctx *ring[RING];
    bool ring_fresh[RING]; // submitted since its timestamps were last collected
    uint32_t ring_next;

    mem_arena *arena;    // the blocks every planned buffer is bound into
    mem_plan plan;       // where each layer's weights and KV cache live (memory_plan.h)
    gpu_buffer *tensors; // one buffer per uploaded tensor
    uint32_t n_tensors;
    layer *layers;
    gpu_buffer output_norm;
    gpu_weight output;
    const gguf_tensor *tok_embd; // looked up on the host, from the mapped file
    uint64_t weight_bytes;

    // Activations for one ubatch of B = n_ubatch tokens, rows of the given width.
    gpu_buffer x;       // (B, n_embd) residual stream
    gpu_buffer xn;      // (B, n_embd) normed
    gpu_buffer qkv;     // (B, n_embd + 2 kv_dim)
    gpu_buffer attn;    // (B, n_embd)
    gpu_buffer up;      // (B, 2 n_ff)
    gpu_buffer act;     // (B, n_ff)
    gpu_buffer tmp;     // (B, n_embd)
    gpu_buffer part;    // decode attention partials, for up to max_decode tokens
    gpu_buffer step;    // host-visible: the decode step's (row0, pos) per token, then its attention grid
    gpu_buffer rope;    // (n_ctx, n_rot/2) cos, sin
    rope_spec rope_cfg; // pairing, base, LongRoPE factors (the set this context picks) and attn_factor
    float *rope_factors; // (n_rot/2) LongRoPE factors that rope_cfg points to
    gpu_buffer logits;  // (logit_rows, n_vocab)
    gpu_buffer in_host;     // (B, n_embd) host-visible: token embeddings in
    gpu_buffer logits_host; // (logit_rows, n_vocab) host-visible: logits out
    uint32_t logit_rows;

    // Decode steps (one token from each of B sequences) are recorded once per B and
    // replayed: graph[B - 1] (NULL until first used). The per-step values live in
    // `step`, and the embeddings in in_host, both written by the host before each submit.
    uint32_t max_decode; // most tokens of one decode step: min(n_seq, n_ubatch)
    cmd_ctx **graph;

    bool profiling;
    uint32_t n_prof;
    const char *prof_name[MAX_PROFILE];
    double prof_ms[MAX_PROFILE];
};

// The step buffer: (row0, pos) per decode token, then the attention grid
// (VkDispatchIndirectCommand) at this offset past the tokens.
static inline uint64_t step_grid_offset(uint32_t max_decode) { return (8ull * max_decode + 15) & ~15ull; }

// forward.c: drops the recorded decode steps (they write the buffers that model.c
// frees); grows the logits buffers to `rows` rows (one at load).
void forward_drop_graphs(struct model *m);
int forward_ensure_logit_rows(struct model *m, uint32_t rows);
