// SPDX-License-Identifier: MIT
// Row lookup with dequantization (tests/shaders/get_rows.comp), a kernel of the
// tests only: the model dequantizes its token embedding on the host, and
// test_quant_gpu looks rows up on the GPU to check the shaders' block decoders
// (shaders/common/quant_*.glsl) bit for bit against quant_dequantize_row.
#pragma once
#include <stdint.h>

#include "ops.h"
#include "test_shaders.h"

// The lookup's pipelines, one per weight type, made on first use.
typedef struct get_rows get_rows;

// k: the device, and the codebook grids the IQ types bind (kernels_iq_grid).
get_rows *get_rows_create(kernels *k);
void get_rows_destroy(get_rows *r);
// The module of the lookup for a weight type (enum ggml_type); NULL for a type
// vkphi does not run.
const struct shader_code *get_rows_shader(uint32_t type);

// out[t, :] = dequant(W[ids[t], :]) in f32 for t < n_tokens, token rows out_stride
// floats apart; ids holds n_tokens int32. Every type op_matmul runs is supported;
// values equal quant_dequantize_row's exactly. A table larger than the device's
// storage-buffer range is bound one window of rows at a time (gpu_weight_window_rows),
// and each dispatch skips the ids outside its window. host_ids (may be NULL) is the
// host's copy of the ids: with it, ids are checked against the table (an error names
// the first bad one) and only windows holding one of them are dispatched; without it
// every window is, and out-of-range ids are left unwritten.
int get_rows_record(get_rows *r, cmd_ctx *c, const gpu_weight *w, buf_view ids, const int32_t *host_ids,
                    buf_view out, uint32_t n_tokens, uint32_t out_stride);
