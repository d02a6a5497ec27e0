// SPDX-License-Identifier: MIT
// CPU references for every kernel: plain f32 loops (double where it costs nothing),
// the oracle the GPU is tested against. No Vulkan here.
#pragma once
#include <stdbool.h>
#include <stdint.h>

// RoPE as a model configures it (shared by the CPU reference and the GPU table).
// Pair i of n_rot/2 at position p turns by p * base^(-2i/n_rot) / factors[i], its
// cos and sin multiplied by attn_factor; dims from n_rot to head_dim pass through.
typedef struct rope_spec {
    uint32_t n_rot;         // even, at most head_dim
    bool neox;              // pairs (i, i + n_rot/2) ("rotate half", phi3); else (2i, 2i+1) (llama layout)
    double base;
    const float *factors;   // LongRoPE: n_rot/2 frequency divisors; NULL: none (all 1)
    double attn_factor;     // LongRoPE: scales cos and sin, so Q and K; 1 without
} rope_spec;

void ref_rmsnorm(const float *x, const float *w, float *out, uint32_t n_rows, uint32_t n, float eps);
// RoPE on `n_heads` heads of head_dim floats per token (rows of x_stride, heads from
// head_offset), positions pos0 ..; angles computed here in double, independently
// of the GPU's table.
void ref_rope(float *x, uint32_t n_tokens, uint32_t n_heads, uint32_t head_dim, uint32_t x_stride, uint32_t head_offset,
              uint32_t pos0, const rope_spec *r);
void ref_softmax(const float *x, float *out, uint32_t n_rows, uint32_t n);
void ref_swiglu(const float *x, float *out, uint32_t n_tokens, uint32_t ff);
void ref_add(const float *a, const float *b, float *out, uint32_t n);
// y[t, r] = sum_k w[r, k] * x[t, k]; w is n_out x n_in floats.
void ref_matmul(const float *w, const float *x, float *y, uint32_t n_in, uint32_t n_out, uint32_t n_tokens);
// Causal attention of n_tokens queries at positions pos0.. (rows of q_stride floats,
// query head h at h*head_dim) over keys/values k, v of (pos0+n_tokens) rows of
// kv_dim floats; query head h uses KV head h / (n_head / n_head_kv). out rows hold
// n_head*head_dim floats.
void ref_attention(const float *q, uint32_t q_stride, const float *k, const float *v, uint32_t kv_dim, float *out,
                   uint32_t n_tokens, uint32_t pos0, uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim);
