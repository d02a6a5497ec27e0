// SPDX-License-Identifier: MIT
// A model's configuration, read from its GGUF metadata, and the one check of
// whether vkphi can run a file, shared by `vkphi info` and the model loader so that
// both refuse the same files with the same sentence. No Vulkan here.
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

// Reads and checks the hyperparameters and tensors of a phi3 or llama-layout file:
// model_check that also keeps what it read.
int model_config_read(const gguf_file *f, model_config *cfg);
// The LongRoPE frequency divisors for a context of n_ctx tokens per sequence, as
// the reference runtime picks them: rope_factors_long above rope_n_ctx_orig, else
// rope_factors_short. Copies n_rot/2 floats to out and returns true; returns false
// (out untouched) when the model has no LongRoPE.
bool model_rope_factors(const gguf_file *f, const model_config *cfg, uint32_t n_ctx, float *out);

// Returns VKPHI_OK when the file is a model that vkphi runs: the phi3 architecture
// or Phi-4 saved in the llama layout, the required hyperparameters present and
// consistent, even rotary dimensions up to the head dimension, LongRoPE only with
// both factor tensors (phi3), no sliding window inside the trained context, only
// the tensors of Phi-4's graph (RMSNorm, SwiGLU, GQA, no biases) with the right
// shapes, and every tensor of a type vkphi runs. Otherwise returns
// VKPHI_ERR_FORMAT (broken or inconsistent file) or VKPHI_ERR_UNSUPPORTED (valid,
// not supported), with a sentence naming the file and the key or tensor in
// vkphi_last_error().
int model_check(const gguf_file *f);

// Marks types[t] for each weight type t of the file's matrices that the forward
// pass multiplies by: every blk.* matrix and the output projection (the token
// embedding where it is tied). The kernels a model needs follow from these.
void model_matrix_types(const gguf_file *f, bool types[GGML_TYPE_COUNT]);
