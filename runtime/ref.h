// SPDX-License-Identifier: MIT
// CPU references for every kernel: plain f32 loops (double where it costs nothing),
// the oracle the GPU is tested against. No Vulkan here.
#pragma once
#include <stdint.h>

void ref_rmsnorm(const float *x, const float *w, float *out, uint32_t n_rows, uint32_t n, float eps);
// NEOX rotate-half on `n_heads` heads of head_dim floats per token, rows of x_stride.
void ref_rope(float *x, uint32_t n_tokens, uint32_t n_heads, uint32_t head_dim, uint32_t n_rot, uint32_t x_stride,
              uint32_t head_offset, uint32_t pos0, double base);
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
