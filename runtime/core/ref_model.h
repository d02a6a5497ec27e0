// SPDX-License-Identifier: MIT
// The CPU reference forward pass: f32, weights dequantized on the fly, one token
// at a time. The oracle the tests hold the GPU model against; no Vulkan here.
#pragma once
#include <stdint.h>

#include "model_config.h"

typedef struct ref_model ref_model;
// n_ctx: the context the GPU model would be configured with (it picks the LongRoPE
// factors); 0: the model's trained context. NULL and an error on failure.
ref_model *ref_model_load(const char *path, uint32_t n_ctx);
void ref_model_free(ref_model *r);
const model_config *ref_model_config(const ref_model *r);
// Evaluates token at position pos (positions must come in order from 0);
// writes n_vocab logits.
int ref_model_eval(ref_model *r, int32_t token, uint32_t pos, float *logits);
