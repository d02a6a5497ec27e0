// SPDX-License-Identifier: MIT
// Phi-4 (GGUF architecture "phi3", or Phi-4 re-saved in the "llama" layout) on
// Vulkan: weights resident on the device, the KV cache on the device, and the
// forward pass. The configuration read from the file is core/model_config.h.
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "gguf.h"
#include "model_config.h"
#include "model_params.h" // enum kv_type, model_params: what model_load is asked for

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
// What this process has recorded and run so far, for the benchmark's per-token
// figures: command buffers recorded, dispatches and barriers submitted (a buffer
// submitted again counts its dispatches again), queue submissions.
typedef struct model_counters {
    uint64_t recordings, dispatches, barriers, submits;
} model_counters;
void model_get_counters(model_counters *out);
// What the model asks of memory (memory_plan.h's mem_model) with n_seq sequences and
// ubatches of n_ubatch tokens (0: 512): each layer's weight bytes, the head, the
// KV shape, the scratch. out->layer_bytes is malloc'ed: free((void *)it).
struct mem_model;
int model_memory_needs(const gguf_file *f, const model_config *cfg, uint32_t n_seq, uint32_t n_ubatch,
                       struct mem_model *out);
// Only the scratch (for a model without a file: mkmodel_memory_needs).
void model_scratch_needs(const model_config *cfg, uint32_t n_ubatch, struct mem_model *out);
// Where the loaded model's buffers went (memory_plan.h).
const struct mem_plan *model_memory_plan(const model *m);
// Bytes of weights read by one decode step, and the KV cache bytes per token.
uint64_t model_weight_bytes(const model *m);
uint64_t model_kv_bytes_per_token(const model *m);
