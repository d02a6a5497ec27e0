// SPDX-License-Identifier: MIT
// Phi-4 (GGUF architecture "phi3", or Phi-4 re-saved in the "llama" layout) on
// Vulkan: configuration from the file's metadata, weights resident on the device,
// the KV cache on the device, and the forward pass. Also the CPU reference forward
// pass used by the tests.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"

typedef struct model_config {
    uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, head_dim, n_vocab, n_ctx_train;
    uint32_t n_rot;          // rotated dims at the start of each head (even, <= head_dim); the rest pass through
    bool rope_neox;          // pairs (i, i + n_rot/2) (phi3); false: adjacent pairs (2i, 2i+1) (llama layout)
    float rope_base, rms_eps;
    // LongRoPE (Phi-4-mini): the long factors when the context exceeds this, else the
    // short ones; 0 when the file has no factor tensors (then no factors, no attn_factor).
    uint32_t rope_n_ctx_orig;
    float rope_attn_factor;  // multiplies RoPE's cos and sin (so Q and K); 1 without LongRoPE
} model_config;

// Reads and checks the hyperparameters and tensors of a phi3 or llama-layout file
// (model_check.c).
int model_config_read(const gguf_file *f, model_config *cfg);
// The LongRoPE frequency divisors for a context of n_ctx tokens per sequence, as
// the reference runtime picks them: rope_factors_long above rope_n_ctx_orig, else
// rope_factors_short. Copies n_rot/2 floats to out and returns true; returns false
// (out untouched) when the model has no LongRoPE.
bool model_rope_factors(const gguf_file *f, const model_config *cfg, uint32_t n_ctx, float *out);

enum kv_type { KV_F16, KV_Q8_0 };

typedef struct model_params {
    int device;            // -1: VKPHI_DEVICE or the best device
    uint32_t n_ctx;        // tokens per sequence; 0: the trained context if it fits, else the most that fits
    uint32_t n_seq;        // sequences (server slots), each with n_ctx tokens of KV cache; 0 means 1
    uint32_t n_ubatch;     // most tokens per forward step (prefill); 0: 512
    enum kv_type kv;
    bool quiet;            // do not log the memory plan (it goes to vkphi_log at INFO level)
    // Called while the weights upload, with the fraction done (0..1); may be NULL.
    void (*on_progress)(double fraction, void *user);
    void *progress_user;
} model_params;

typedef struct model model;

// Loads path onto the device. Prints (unless quiet) a memory plan and refuses with
// a clear error when it cannot fit. On failure *out is NULL and vkphi_last_error()
// says why.
int model_load(const char *path, const model_params *params, model **out);
void model_free(model *m);

const model_config *model_get_config(const model *m);
const gguf_file *model_gguf(const model *m); // the open file (tokenizer metadata)
uint32_t model_n_ctx(const model *m);        // per sequence
uint32_t model_n_seq(const model *m);
const char *model_device_name(const model *m);

// Runs tokens[0..n) at positions pos..pos+n-1 of sequence seq, in ubatches of at
// most n_ubatch tokens (one token goes through the matrix-vector path). The KV
// cache of seq beyond pos is overwritten. logits (n_vocab floats) receives the
// logits after the last token; logits_all (n * n_vocab, may be NULL) after each.
int model_eval(model *m, uint32_t seq, const int32_t *tokens, uint32_t n, uint32_t pos, float *logits,
               float *logits_all);

// One token of a batched forward step: its id, the sequence (KV-cache slot) and the
// position in that sequence it goes to, and whether its logits are wanted.
typedef struct model_token {
    int32_t id;
    uint32_t seq, pos;
    bool logits;
} model_token;

// One forward step over a batch of tokens from any sequences: the next decode token
// of several conversations, chunks of prompts, or both. Each token sees the KV rows
// 0..pos of its own sequence, those of earlier tokens of the same sequence in this
// batch included; tokens of one sequence come in increasing position order, with no
// gap after what the cache holds. logits receives n_vocab floats for each token whose
// .logits is set, in batch order (may be NULL when none is). A token's logits do not
// depend on the other sequences in the batch (batch invariance).
int model_eval_batch(model *m, const model_token *tokens, uint32_t n, float *logits);

// Turns per-kernel GPU timestamps on or off (off by default: they cost a little).
void model_set_profiling(model *m, bool on);
// Per-kernel GPU time of the last model_eval, when the device has timestamps:
// fills up to max (name, milliseconds) pairs summed by kernel; returns the count.
uint32_t model_kernel_times(model *m, const char **names, double *ms, uint32_t max);
// What the model asks of memory (memory.h's mem_model) with n_seq sequences and
// ubatches of n_ubatch tokens (0: 512): each layer's weight bytes, the head, the
// KV shape, the scratch. out->layer_bytes is malloc'ed: free((void *)it).
struct mem_model;
int model_memory_needs(const gguf_file *f, const model_config *cfg, uint32_t n_seq, uint32_t n_ubatch,
                       struct mem_model *out);
// Only the scratch (for a model without a file: mkmodel_memory_needs).
void model_scratch_needs(const model_config *cfg, uint32_t n_ubatch, struct mem_model *out);
// Where the loaded model's buffers went (memory.h).
const struct mem_plan *model_memory_plan(const model *m);
// Bytes of weights read by one decode step, and the KV cache bytes per token.
uint64_t model_weight_bytes(const model *m);
uint64_t model_kv_bytes_per_token(const model *m);

// ---- CPU reference (ref_model.c): f32, weights dequantized on the fly ----
typedef struct ref_model ref_model;
// n_ctx: the context the GPU model would be configured with (it picks the LongRoPE
// factors); 0: the model's trained context. NULL and an error on failure.
ref_model *ref_model_load(const char *path, uint32_t n_ctx);
void ref_model_free(ref_model *r);
const model_config *ref_model_config(const ref_model *r);
// Evaluates token at position pos (positions must come in order from 0);
// writes n_vocab logits.
int ref_model_eval(ref_model *r, int32_t token, uint32_t pos, float *logits);
