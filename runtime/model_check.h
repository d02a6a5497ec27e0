// SPDX-License-Identifier: MIT
// Can vkphi run this GGUF file? One check shared by `vkphi info` and the model
// loader, so both refuse the same files with the same sentence.
#pragma once
#include "gguf.h"

// Returns VKPHI_OK when the file is a model that vkphi runs: the phi3 architecture
// or Phi-4 saved in the llama layout, the required hyperparameters present and
// consistent, even rotary dimensions up to the head dimension, LongRoPE only with
// both factor tensors (phi3), no sliding window inside the trained context, only
// the tensors of Phi-4's graph (RMSNorm, SwiGLU, GQA, no biases) with the right
// shapes, and every tensor of a type vkphi runs. Otherwise returns
// VKPHI_ERR_FORMAT (broken or inconsistent file) or VKPHI_ERR_UNSUPPORTED (valid,
// not supported), with a sentence naming the file and the key or tensor in
// vkphi_last_error(). model_config_read (model.h) is this check that also keeps
// what it read.
int model_check(const gguf_file *f);
