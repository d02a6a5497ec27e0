// SPDX-License-Identifier: MIT
// Recording of each kernel: one function per op, with the buffer layout it expects.
// Shapes are given as (rows x row length); strides are in elements (floats).
// Each op records one or more dispatches into c and returns 0 or an error (a
// pipeline that could not be made, a shape beyond the device's limits).
#pragma once
#include <stdint.h>

#include "buffer.h"
#include "commands.h"
#include "kernels.h"
#include "ref.h"

// A weight matrix resident on the device: n_out rows of n_in values, each row
// quantized in blocks along n_in (type: enum ggml_type), starting at offset.
typedef struct gpu_weight {
    const gpu_buffer *buf;
    uint64_t offset;
    uint32_t type;
    uint32_t n_in, n_out;
    uint64_t row_bytes;
} gpu_weight;

// A weight bigger than one storage-buffer binding is bound a window of rows at a
// time: gpu_weight_window_rows checks w's shape against its type and its buffer and
// gives *max_rows, the rows per window; gpu_weight_window the view of rows row0 ..
// row0+rows-1 (rows <= *max_rows, row0 a multiple of it).
int gpu_weight_window_rows(const device_info *info, const gpu_weight *w, uint64_t *max_rows);
buf_view gpu_weight_window(const gpu_weight *w, uint64_t row0, uint32_t rows);

// out[r,:] = x[r,:] / sqrt(mean(x[r,:]^2) + eps) * w  (w: n floats)
int op_rmsnorm(cmd_ctx *c, kernels *k, buf_view x, buf_view w, buf_view out, uint32_t n_rows, uint32_t n,
               uint32_t x_stride, uint32_t out_stride, float eps);

// RoPE in place on n_heads heads of head_dim floats per token row (rows x_stride
// apart, heads starting at head_offset); positions pos0 .. pos0+n_tokens-1; r gives
// n_rot and the pairing. table holds (cos, sin) pairs [pos][n_rot/2] as written by
// rope_table_fill for the same r.
int op_rope(cmd_ctx *c, kernels *k, buf_view x, buf_view table, uint32_t n_tokens, uint32_t n_heads,
            uint32_t head_dim, uint32_t x_stride, uint32_t head_offset, uint32_t pos0, const rope_spec *r);
// Fills table[pos][i] = attn_factor * (cos, sin)(pos * base^(-2i/n_rot) / factors[i])
// for pos < n_pos, computed in double (without factors, exactly as Phi-4 always had).
void rope_table_fill(float *table, uint32_t n_pos, const rope_spec *r);

// out[t,i] = SiLU(x[t,i]) * x[t,ff+i]: the fused gate/up layout of ffn_up.
int op_swiglu(cmd_ctx *c, kernels *k, buf_view x, buf_view out, uint32_t n_tokens, uint32_t ff, uint32_t x_stride,
              uint32_t out_stride);

// y[t, :] = W . x[t, :] for t < n_tokens: the matrix-vector kernel for one token,
// the tiled matrix-matrix kernel for more. A weight larger than the device's
// storage-buffer range is bound and dispatched in slices of rows.
int op_matmul(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
              uint32_t x_stride, uint32_t y_stride);
// y[t, :] += W . x[t, :]: the same, added to what y holds (the residual stream).
int op_matmul_add(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
                  uint32_t x_stride, uint32_t y_stride);
// y[t, :] += W . x[t, :] by the matrix-vector kernel for any number of tokens
// (kernels_few_tokens at a time): a decode step's products, whose sums must not depend
// on how many tokens share the step. Rows on 16-byte boundaries.
int op_matvec_add(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view y, uint32_t n_tokens,
                  uint32_t x_stride, uint32_t y_stride);
// The fused matrix-vector forms, for any number of tokens in dispatches of up to
// kernels_few_tokens (decode: one token per sequence):
//   y[t, :] = W . (RMSNorm(x[t, :]) * norm)       (norm: w->n_in floats; eps as op_rmsnorm)
//   glu: W is the fused gate/up [G; U] (2F rows) and y[t, i] = SiLU(g_i) * u_i, F values,
//        where (g; u) = W . (RMSNorm(x[t, :]) * norm).
// x rows start on 16-byte boundaries. The norm is applied as x is read (no normed
// copy, no separate pass). glu needs the whole weight in one storage-buffer binding
// (op_matvec_glu_fits).
int op_matvec_norm(cmd_ctx *c, kernels *k, const gpu_weight *w, buf_view x, buf_view norm, buf_view y,
                   uint32_t n_tokens, uint32_t x_stride, uint32_t y_stride, float eps, bool glu);
bool op_matvec_glu_fits(const device_info *info, const gpu_weight *w);

// ---- attention over the KV cache ----
// The KV cache of one layer: K and V buffers of n_rows rows (sequence s, position i
// is row s*n_ctx + i) of kv_dim values, f16 or 8-bit (kv.glsl has the layout).
typedef struct kv_layer {
    const gpu_buffer *k, *v;
    uint32_t kv_dim, n_rows;
    bool q8;
} kv_layer;
// Bytes one K (or V) buffer of n_rows rows needs.
uint64_t kv_layer_bytes(uint32_t kv_dim, uint32_t n_rows, bool q8);

// Writes the K and V parts of n_tokens rows of fused [Q;K;V] (K at column k_offset,
// V right after it) into cache rows row0 .. row0+n_tokens-1.
int op_kv_store(cmd_ctx *c, kernels *k, const kv_layer *kv, buf_view qkv, uint32_t qkv_stride, uint32_t k_offset,
                uint32_t n_tokens, uint32_t row0);

typedef struct attn_shape {
    uint32_t n_head, n_head_kv, head_dim;
    float scale; // 1/sqrt(head_dim)
} attn_shape;

// Decode for n_tokens tokens, each the next token of its own sequence. Token t's
// row of fused [Q;K;V] (Q, K not yet rotated) is row t of qkv; tokens holds one
// (row0, pos) pair of uint32 per token: its sequence's cache rows start at row0 and
// it goes to position pos. One kernel rotates Q and K (RoPE as op_rope, table as
// rope_table_fill), stores K and V in cache row row0 + pos, and attends over rows
// row0 .. row0 + pos in chunks; a second merges the chunks into row t of out. The
// chunk grid is attn_decode_chunks(grid_kv_len) x n_head_kv x n_tokens, or read
// from `indirect` (a VkDispatchIndirectCommand the host writes before each submit,
// so a recorded command buffer serves every step). part: attn_decode_part_bytes.
typedef struct attn_decode_args {
    buf_view qkv;   uint32_t qkv_stride, k_offset; // K at column k_offset, V right after it
    buf_view tokens;
    const rope_spec *rope; buf_view rope_table;
    buf_view part;
    buf_view out;   uint32_t out_stride;
    uint32_t n_tokens;
    uint32_t max_kv_len;  // the longest any token may attend over (sizes part's chunk stride)
    uint32_t grid_kv_len; // without indirect: the longest this batch attends over
    buf_view indirect;    // .buf NULL: dispatch directly
} attn_decode_args;
int op_attn_decode(cmd_ctx *c, kernels *k, const kv_layer *kv, const attn_shape *a, const attn_decode_args *d);
uint32_t attn_decode_chunks(uint32_t kv_len);
uint64_t attn_decode_part_bytes(const attn_shape *a, uint32_t max_kv_len, uint32_t n_tokens);

// Prefill: n_tokens queries at positions pos0.. (Q heads at the start of each qkv
// row) attend causally to cache rows row0 .. row0+pos0+n_tokens-1.
int op_attn_prefill(cmd_ctx *c, kernels *k, const kv_layer *kv, const attn_shape *a, buf_view qkv, uint32_t qkv_stride,
                    buf_view out, uint32_t out_stride, uint32_t n_tokens, uint32_t pos0, uint32_t row0);
